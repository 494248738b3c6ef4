/* libbpf_dump: opens and loads a BPF object with the system's libbpf and
 * prints, for each of the object's programs, the instructions libbpf passes
 * to BPF_PROG_LOAD — i.e. after libbpf relocated its ksyms. Used by
 * ksymrelo's differential tests.
 *
 * How: libbpf is linked statically and reaches the kernel through
 * syscall(2); this file defines `syscall`, so libbpf's calls land here,
 * are recorded, and are forwarded to the C library's syscall().
 *
 * Usage: libbpf_dump [--fake-load] OBJECT
 *   --fake-load  when the kernel refuses a program (e.g. typed ksyms on a
 *                kernel without data symbols in kallsyms), hand libbpf a
 *                dummy fd so it goes on to the next program.
 * Output: one JSON object per line:
 *   {"name": "...", "loaded": true|false, "insns": [[code, dst, src, off, imm], ...]}
 * Exit: 0 when libbpf's load succeeded (or was faked), 1 otherwise. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/libbpf.h>

static struct bpf_object *dump_obj;
static int fake_load;

static int is_object_program(const char *attr_name)
{
	struct bpf_program *prog;

	if (!dump_obj)
		return 0;
	bpf_object__for_each_program(prog, dump_obj) {
		/* The kernel keeps BPF_OBJ_NAME_LEN - 1 bytes of the name. */
		if (strncmp(bpf_program__name(prog), attr_name, BPF_OBJ_NAME_LEN - 1) == 0)
			return 1;
	}
	return 0;
}

static void dump(const union bpf_attr *attr, int loaded)
{
	const struct bpf_insn *insns = (const struct bpf_insn *)(unsigned long)attr->insns;
	__u32 i;

	printf("{\"name\": \"%.*s\", \"loaded\": %s, \"insns\": [", BPF_OBJ_NAME_LEN, attr->prog_name,
	       loaded ? "true" : "false");
	for (i = 0; i < attr->insn_cnt; i++)
		printf("%s[%u, %u, %u, %d, %d]", i ? ", " : "", insns[i].code, insns[i].dst_reg,
		       insns[i].src_reg, insns[i].off, insns[i].imm);
	printf("]}\n");
	fflush(stdout);
}

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");

	if (nr == __NR_bpf && a[0] == BPF_PROG_LOAD) {
		const union bpf_attr *attr = (const union bpf_attr *)a[1];
		int ours = is_object_program(attr->prog_name);
		long ret = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);

		if (ours)
			dump(attr, ret >= 0);
		if (ret < 0 && ours && fake_load) {
			int saved = errno;
			long fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

			errno = saved;
			return fd;
		}
		return ret;
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv)
{
	const char *path;
	int err;

	if (argc == 3 && strcmp(argv[1], "--fake-load") == 0) {
		fake_load = 1;
		path = argv[2];
	} else if (argc == 2) {
		path = argv[1];
	} else {
		fprintf(stderr, "usage: %s [--fake-load] OBJECT\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	dump_obj = bpf_object__open_file(path, NULL);
	if (!dump_obj) {
		fprintf(stderr, "libbpf_dump: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	err = bpf_object__load(dump_obj);
	if (err) {
		fprintf(stderr, "libbpf_dump: load %s: %s\n", path, strerror(-err));
		bpf_object__close(dump_obj);
		return 1;
	}
	bpf_object__close(dump_obj);
	return 0;
}
