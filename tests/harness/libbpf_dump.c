/* libbpf_dump: opens and loads a BPF object with the libbpf it is linked
 * against (Debian's 1.1, or libbpf-sys's vendored 1.7: see build.sh) and prints, for each BPF_PROG_LOAD of one of the
 * object's programs, the instructions libbpf hands to the kernel, i.e. after
 * libbpf has appended subprograms and relocated the ksyms. It is the oracle
 * of ksymrelo's differential tests.
 *
 * How: libbpf is linked statically and reaches the kernel through the C
 * library's syscall(); this file defines its own `syscall`, which the static
 * libbpf binds to at link time. Each call is forwarded to the C library's
 * syscall() (found with dlsym(RTLD_NEXT)); a BPF_PROG_LOAD whose instruction
 * pointer is one of the object's programs' (bpf_program__insns) is dumped
 * after the kernel answered. libbpf's feature probes load programs of their
 * own and are not dumped.
 *
 * Usage: libbpf_dump [--fake-load] OBJECT
 *        libbpf_dump --version   prints the linked libbpf's version (e.g. v1.7)
 *   --fake-load  when the kernel refuses one of the object's programs (e.g.
 *                typed ksyms on a kernel whose kallsyms has no data symbols),
 *                hand libbpf an fd of /dev/null instead, so that it goes on
 *                and every program is dumped.
 * Output (stdout), one JSON object per line and per BPF_PROG_LOAD:
 *   {"name": "PROG", "section": "SEC", "loaded": true|false,
 *    "insns": [[code, dst_reg, src_reg, off, imm], ...], "fd_array": [fd, ...],
 *    "maps": [["NAME", fd], ...]}
 *   - name: the program's full name; section: its ELF section;
 *   - loaded: whether the kernel accepted it (false when faked or refused;
 *     without --fake-load a refused program is printed twice, since libbpf
 *     retries with a verifier log);
 *   - insns: numbers as in struct bpf_insn (off and imm signed);
 *   - fd_array: [] when libbpf passed none, else its slots 0..N, N being the
 *     highest slot the instructions use (kfunc call `off`, or `imm` of an
 *     ld_imm64 with src_reg 5/6); the values are fds of this process.
 *   - maps: the object's maps as created so far, [[name, fd], ...] (fd -1
 *     when not created), so that map fds in the instructions (src_reg 1/2)
 *     can be told by name.
 * Exit: 0 when libbpf's load succeeded (or was faked); 1 when it failed
 * (libbpf's log and the error on stderr); 2 on bad usage; 3 when the load
 * succeeded but some program was not seen (the syscall was not interposed). */
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
static unsigned int dumped;

/* The object's program whose instructions are being loaded, if any. */
static struct bpf_program *object_program(const union bpf_attr *attr)
{
	struct bpf_program *prog;

	if (!dump_obj)
		return NULL;
	bpf_object__for_each_program(prog, dump_obj) {
		if ((unsigned long)bpf_program__insns(prog) == (unsigned long)attr->insns)
			return prog;
	}
	return NULL;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void dump(const struct bpf_program *prog, const union bpf_attr *attr, int loaded)
{
	const struct bpf_insn *insns = (const struct bpf_insn *)(unsigned long)attr->insns;
	const int *fd_array = (const int *)(unsigned long)attr->fd_array;
	const struct bpf_map *map;
	long max_slot = -1, i;

	printf("{\"name\": ");
	json_string(bpf_program__name(prog));
	printf(", \"section\": ");
	json_string(bpf_program__section_name(prog));
	printf(", \"loaded\": %s, \"insns\": [", loaded ? "true" : "false");
	for (i = 0; i < (long)attr->insn_cnt; i++) {
		const struct bpf_insn *in = &insns[i];

		printf("%s[%u, %u, %u, %d, %d]", i ? ", " : "", in->code, in->dst_reg, in->src_reg, in->off,
		       in->imm);
		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_KFUNC_CALL && in->off > max_slot)
			max_slot = in->off;
		if (in->code == (BPF_LD | BPF_IMM | BPF_DW) &&
		    (in->src_reg == BPF_PSEUDO_MAP_IDX || in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE) &&
		    in->imm > max_slot)
			max_slot = in->imm;
	}
	printf("], \"fd_array\": [");
	for (i = 0; fd_array && i <= max_slot; i++)
		printf("%s%d", i ? ", " : "", fd_array[i]);
	printf("], \"maps\": [");
	i = 0;
	bpf_object__for_each_map(map, dump_obj) {
		printf("%s[", i++ ? ", " : "");
		json_string(bpf_map__name(map));
		printf(", %d]", bpf_map__fd(map));
	}
	printf("]}\n");
	fflush(stdout);
	dumped++;
}

#ifdef KSYMRELO_STATIC
/* A static binary has no dynamic linker to find libc's syscall() with:
 * make the system call here (x86-64 convention: number in rax, arguments
 * in rdi, rsi, rdx, r10, r8, r9; -errno back in rax). */
static long raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#endif

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6], ret;
	va_list ap;
	int i, saved;

	/* Every caller passes at most six long-sized arguments. */
	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#ifdef KSYMRELO_STATIC
	(void)real;
	ret = raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
#else
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	ret = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
#endif
	if (nr != __NR_bpf || a[0] != BPF_PROG_LOAD)
		return ret;

	saved = errno;
	{
		const union bpf_attr *attr = (const union bpf_attr *)a[1];
		struct bpf_program *prog = object_program(attr);

		if (prog) {
			dump(prog, attr, ret >= 0);
			if (ret < 0 && fake_load) {
				ret = open("/dev/null", O_RDONLY | O_CLOEXEC);
				if (ret >= 0)
					saved = 0;
			}
		}
	}
	errno = saved; /* libbpf reads the kernel's errno after us */
	return ret;
}

static int warnings_only(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv)
{
	struct bpf_program *prog;
	unsigned int expected = 0;
	const char *path;
	int err;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("%s\n", libbpf_version_string());
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--fake-load") == 0) {
		fake_load = 1;
		path = argv[2];
	} else if (argc == 2 && argv[1][0] != '-') {
		path = argv[1];
	} else {
		fprintf(stderr, "usage: %s [--fake-load] OBJECT | --version\n", argv[0]);
		return 2;
	}
	libbpf_set_print(warnings_only);
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
	bpf_object__for_each_program(prog, dump_obj)
		expected += bpf_program__autoload(prog);
	bpf_object__close(dump_obj);
	if (dumped < expected) {
		fprintf(stderr, "libbpf_dump: %u of %u programs seen: syscall() not interposed?\n", dumped,
			expected);
		return 3;
	}
	return 0;
}
