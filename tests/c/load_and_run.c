/* From relocation to a running program: relocate a BPF object in memory
 * with libksymrelo, load one of its programs with bpf(2) and the fd_array,
 * run it once with BPF_PROG_TEST_RUN and print what it wrote into its
 * context (u64 words).
 * Usage: load_and_run OBJECT SECTION CTX_WORDS [LAST_WORD]
 * The section must hold a sleepable BPF_PROG_TYPE_SYSCALL program
 * (SEC("syscall")) that needs no other section (no .text calls, no maps). */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksymrelo.h>

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* The bytes of the section called `name` inside the ELF image at `obj`. */
static struct bpf_insn *find_section(void *obj, size_t len, const char *name, size_t *insn_cnt)
{
	Elf *elf = elf_memory(obj, len);
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	struct bpf_insn *found = NULL;

	if (!elf || elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || strcmp(elf_strptr(elf, shstrndx, sh.sh_name), name))
			continue;
		/* Point into `obj` itself: that is where ksymrelo patched. */
		found = (struct bpf_insn *)((char *)obj + sh.sh_offset);
		*insn_cnt = sh.sh_size / sizeof(struct bpf_insn);
		break;
	}
	elf_end(elf);
	return found;
}

int main(int argc, char **argv)
{
	int fd_array[64], prog_fd, err, i, words;
	size_t fd_array_len, obj_len, insn_cnt = 0;
	uint64_t ctx[64] = { 0 };
	struct bpf_insn *insns;
	ksymrelo_kernel *kernel;
	union bpf_attr attr;
	char log[65536];
	void *obj;
	FILE *f;

	if (argc < 4 || (words = atoi(argv[3])) <= 0 || words > 64)
		return 2;
	if (argc > 4)
		ctx[words - 1] = strtoull(argv[4], NULL, 0);
	if (!(f = fopen(argv[1], "rb")))
		return 2;
	fseek(f, 0, SEEK_END);
	obj_len = ftell(f);
	rewind(f);
	obj = aligned_alloc(8, (obj_len + 7) / 8 * 8);
	if (!obj || fread(obj, 1, obj_len, f) != obj_len)
		return 2;
	fclose(f);
	elf_version(EV_CURRENT);

	/* 1. Relocate the object in place. */
	err = ksymrelo_kernel_open_live(&kernel);
	if (!err)
		err = ksymrelo_relocate_object(kernel, obj, obj_len, fd_array, 64, &fd_array_len);
	if (err) {
		fprintf(stderr, "ksymrelo: %s: %s\n", ksymrelo_strerror(err), ksymrelo_last_error());
		return 1;
	}

	/* 2. Load the program with the fd_array that goes with it. */
	insns = find_section(obj, obj_len, argv[2], &insn_cnt);
	if (!insns) {
		fprintf(stderr, "no section %s\n", argv[2]);
		return 1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SYSCALL;
	attr.prog_flags = BPF_F_SLEEPABLE;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = insn_cnt;
	attr.license = (uintptr_t) "GPL";
	attr.fd_array = fd_array_len ? (uintptr_t)fd_array : 0;
	attr.log_buf = (uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	prog_fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (prog_fd < 0) {
		fprintf(stderr, "BPF_PROG_LOAD: %s\n%s\n", strerror(errno), log);
		return 1;
	}

	/* 3. Run it once over the context. */
	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = prog_fd;
	/* Syscall programs write their context back into ctx_in. */
	attr.test.ctx_in = (uintptr_t)ctx;
	attr.test.ctx_size_in = words * sizeof(uint64_t);
	if (sys_bpf(BPF_PROG_TEST_RUN, &attr)) {
		fprintf(stderr, "BPF_PROG_TEST_RUN: %s\n", strerror(errno));
		return 1;
	}
	printf("retval %u\n", attr.test.retval);
	for (i = 0; i < words; i++)
		printf("ctx[%d] = %#llx\n", i, (unsigned long long)ctx[i]);

	close(prog_fd);
	ksymrelo_kernel_free(kernel); /* the module fds close with it, after the load */
	free(obj);
	return 0;
}
