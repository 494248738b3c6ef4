/* C tests of libksymrelo: both entry points on the fixtures, the results
 * loaded and run with raw bpf(2), and every error path.
 * Usage: ffi_test FIXTURES_DIR MODULES_DIR
 * Env: KSYMRELO_C_NO_KERNEL=1 skips loading/running (bpf(2) not permitted). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksymrelo.h>

static int failures;
static int run_kernel = 1;

#define CHECK(cond, ...)                                                          \
	do {                                                                          \
		if (!(cond)) {                                                            \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
			fprintf(stderr, __VA_ARGS__);                                         \
			fprintf(stderr, "\n");                                                \
			failures++;                                                           \
		}                                                                         \
	} while (0)

static void *read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	void *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = aligned_alloc(8, (n + 7) / 8 * 8);
	if (fread(buf, 1, n, f) != (size_t)n)
		exit(2);
	fclose(f);
	*len = n;
	return buf;
}

/* A program as a C loader holds it, pulled out of the ELF with libelf. */
struct prog {
	void *btf;
	size_t btf_len;
	struct bpf_insn *insns;
	size_t insn_cnt;
	struct ksymrelo_site sites[64];
	size_t site_cnt;
};

static int extract(void *elf_bytes, size_t len, const char *sec_name, struct prog *p)
{
	Elf *elf = elf_memory(elf_bytes, len);
	Elf_Scn *scn = NULL, *target = NULL, *rel = NULL, *symtab = NULL;
	size_t shstrndx, target_idx = 0;
	GElf_Shdr sh;

	memset(p, 0, sizeof(*p));
	if (!elf || elf_getshdrstrndx(elf, &shstrndx))
		return -1;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		gelf_getshdr(scn, &sh);
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (strcmp(name, sec_name) == 0) {
			target = scn;
			target_idx = elf_ndxscn(scn);
		} else if (strcmp(name, ".BTF") == 0) {
			Elf_Data *d = elf_getdata(scn, NULL);

			p->btf = malloc(d->d_size);
			memcpy(p->btf, d->d_buf, d->d_size);
			p->btf_len = d->d_size;
		} else if (sh.sh_type == SHT_SYMTAB) {
			symtab = scn;
		}
	}
	scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		gelf_getshdr(scn, &sh);
		if (sh.sh_type == SHT_REL && sh.sh_info == target_idx)
			rel = scn;
	}
	if (!target || !symtab || !p->btf)
		return -1;
	{
		Elf_Data *d = elf_getdata(target, NULL);

		p->insns = aligned_alloc(8, d->d_size);
		memcpy(p->insns, d->d_buf, d->d_size);
		p->insn_cnt = d->d_size / sizeof(struct bpf_insn);
	}
	if (rel) {
		Elf_Data *rd = elf_getdata(rel, NULL), *sd = elf_getdata(symtab, NULL);
		GElf_Shdr symsh;
		size_t i, n;

		gelf_getshdr(rel, &sh);
		gelf_getshdr(symtab, &symsh);
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Rel r;
			GElf_Sym s;

			gelf_getrel(rd, i, &r);
			gelf_getsym(sd, GELF_R_SYM(r.r_info), &s);
			if (s.st_shndx != SHN_UNDEF || GELF_ST_TYPE(s.st_info) != STT_NOTYPE)
				continue; /* not an extern */
			p->sites[p->site_cnt].insn_idx = r.r_offset / sizeof(struct bpf_insn);
			p->sites[p->site_cnt].flags = GELF_ST_BIND(s.st_info) == STB_WEAK ? KSYMRELO_SITE_WEAK : 0;
			p->sites[p->site_cnt].name = strdup(elf_strptr(elf, symsh.sh_link, s.st_name));
			p->site_cnt++;
		}
	}
	elf_end(elf);
	return 0;
}

static void free_prog(struct prog *p)
{
	size_t i;

	for (i = 0; i < p->site_cnt; i++)
		free((void *)p->sites[i].name);
	free(p->btf);
	free(p->insns);
}

/* Loads a SEC("syscall") program and runs it over ctx; returns retval or -errno. */
static long load_and_run(const struct bpf_insn *insns, size_t cnt, const int *fd_array, void *ctx, size_t ctx_len)
{
	static char log[65536];
	union bpf_attr attr;
	long fd, err;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SYSCALL;
	attr.prog_flags = BPF_F_SLEEPABLE;
	attr.insns = (unsigned long)insns;
	attr.insn_cnt = cnt;
	attr.license = (unsigned long)"GPL";
	attr.fd_array = (unsigned long)fd_array;
	attr.log_buf = (unsigned long)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd < 0) {
		fprintf(stderr, "BPF_PROG_LOAD: %s\n%s\n", strerror(errno), log);
		return -errno;
	}
	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = fd;
	attr.test.ctx_in = (unsigned long)ctx;
	attr.test.ctx_size_in = ctx_len;
	err = syscall(__NR_bpf, BPF_PROG_TEST_RUN, &attr, sizeof(attr));
	close(fd);
	return err < 0 ? -errno : (long)attr.test.retval;
}

static unsigned long long kallsyms_addr(const char *want)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	unsigned long long addr, found = 0;
	char type, name[512];

	while (f && fscanf(f, "%llx %c %511s%*[^\n]\n", &addr, &type, name) == 3) {
		if (strcmp(name, want) == 0) {
			found = addr;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* The syscall section of an ELF image (after relocate_object). */
static struct bpf_insn *section_insns(void *elf_bytes, size_t len, size_t *cnt)
{
	struct prog p;

	if (extract(elf_bytes, len, "syscall", &p))
		return NULL;
	*cnt = p.insn_cnt;
	free(p.btf);
	for (size_t i = 0; i < p.site_cnt; i++)
		free((void *)p.sites[i].name);
	return p.insns;
}

static void check_mixed_run(const struct bpf_insn *insns, size_t cnt, const int *fd_array, const char *how)
{
	static const char *names[] = {"vfs_read", "vfs_write", "schedule", "kfree", "do_sys_open", "bpf_prog_put"};
	unsigned long long ctx[9] = {0};
	long ret;

	if (!run_kernel)
		return;
	ctx[8] = getpid();
	ret = load_and_run(insns, cnt, fd_array, ctx, sizeof(ctx));
	CHECK(ret == 0, "%s: run returned %ld", how, ret);
	for (int i = 0; i < 6; i++)
		CHECK(ctx[i] == kallsyms_addr(names[i]), "%s: %s = %llx", how, names[i], ctx[i]);
	CHECK(ctx[6] == 190, "%s: sum %llu", how, ctx[6]);
	CHECK(ctx[7] == 1, "%s: task_found %llu", how, ctx[7]);
}

int main(int argc, char **argv)
{
	const char *fixtures = argv[1], *modules = argc > 2 ? argv[2] : NULL;
	ksymrelo_kernel *k = NULL, *offline = NULL;
	int fd_array[8], st;
	size_t fd_len = 99, len, cnt;
	struct prog p;
	void *elf, *copy;
	struct bpf_insn *insns;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FIXTURES_DIR [MODULES_DIR]\n", argv[0]);
		return 2;
	}
	if (getenv("KSYMRELO_C_NO_KERNEL")) {
		run_kernel = 0;
		printf("SKIP: loading and running programs (bpf(2) not permitted)\n");
	}
	elf_version(EV_CURRENT);
	CHECK(strlen(ksymrelo_version()) > 0, "version");
	CHECK(ksymrelo_kernel_open_live(&k) == 0, "%s", ksymrelo_last_error());

	/* 1. A whole object in memory. */
	elf = read_file(fixtures, "mixed.bpf.o", &len);
	copy = malloc(len);
	memcpy(copy, elf, len);
	st = ksymrelo_relocate_object(k, copy, len, fd_array, 8, &fd_len);
	CHECK(st == 0, "relocate_object: %s", ksymrelo_last_error());
	CHECK(fd_len == 0, "no module kfuncs: fd_array_len %zu", fd_len);
	insns = section_insns(copy, len, &cnt);
	check_mixed_run(insns, cnt, NULL, "relocate_object");

	/* 2. The same program as instructions + .BTF + sites. */
	CHECK(extract(elf, len, "syscall", &p) == 0, "extract");
	CHECK(p.site_cnt == 12, "mixed has 12 sites, got %zu", p.site_cnt);
	st = ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len);
	CHECK(st == 0, "relocate_insns: %s", ksymrelo_last_error());
	CHECK(memcmp(p.insns, insns, cnt * sizeof(*insns)) == 0, "both entry points patch identically");
	check_mixed_run(p.insns, p.insn_cnt, NULL, "relocate_insns");

	/* 3. Errors: status, message, buffers untouched. */
	{
		size_t n = p.insn_cnt;
		struct bpf_insn *before = malloc(n * sizeof(*before));
		char *misaligned = malloc(n * 8 + 8);
		struct ksymrelo_site bad_name, bad_insn, bad_flags;

		free_prog(&p);
		CHECK(extract(elf, len, "syscall", &p) == 0, "extract again");
		memset(misaligned, 0xa5, n * 8 + 8); /* garbage, but defined */
		memcpy(before, p.insns, p.insn_cnt * sizeof(*before));
		bad_name = (struct ksymrelo_site){p.sites[0].insn_idx, 0, "ksymrelo_not_in_btf"};
		bad_insn = (struct ksymrelo_site){0, 0, p.sites[0].name}; /* insn 0 is a mov */
		bad_flags = (struct ksymrelo_site){p.sites[0].insn_idx, 0x80, p.sites[0].name};
#define EXPECT_ERR(expected, call)                                                               \
	do {                                                                                         \
		fd_len = 77;                                                                             \
		st = (call);                                                                             \
		CHECK(st == (expected), "%s -> %d (%s), want %d", #call, st, ksymrelo_last_error(), expected); \
		CHECK(strlen(ksymrelo_last_error()) > 0, "message for %s", #call);                      \
		CHECK(fd_len == 77, "fd_array_len untouched by %s", #call);                              \
		CHECK(memcmp(before, p.insns, p.insn_cnt * 8) == 0, "insns untouched by %s", #call);    \
	} while (0)
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(NULL, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, NULL, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, 0, p.insns, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, 0, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, (size_t)1 << 40, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, NULL, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, (struct bpf_insn *)(misaligned + 1), p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, NULL, 3, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt, NULL, 8, &fd_len));
		CHECK(ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt, fd_array, 8, NULL) == -EINVAL, "NULL fd_array_len");
		EXPECT_ERR(-ENOENT, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, &bad_name, 1, fd_array, 8, &fd_len));
		CHECK(strstr(ksymrelo_last_error(), "ksymrelo_not_in_btf") != NULL, "names the extern: %s", ksymrelo_last_error());
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, &bad_insn, 1, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_insns(k, p.btf, p.btf_len, p.insns, p.insn_cnt, &bad_flags, 1, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_object(k, NULL, len, fd_array, 8, &fd_len));
		EXPECT_ERR(-EINVAL, ksymrelo_relocate_object(k, elf, 0, fd_array, 8, &fd_len));
		EXPECT_ERR(-EOPNOTSUPP, ksymrelo_relocate_object(k, misaligned, 64, fd_array, 8, &fd_len));
		free(before);
		free(misaligned);
	}
	free_prog(&p);
	free(insns);
	free(copy);
	free(elf);

	/* A strong ksym the kernel lacks: -ESRCH naming it; the object unchanged. */
	elf = read_file(fixtures, "err_strong_missing.bpf.o", &len);
	copy = malloc(len);
	memcpy(copy, elf, len);
	st = ksymrelo_relocate_object(k, copy, len, fd_array, 8, &fd_len);
	CHECK(st == -ESRCH, "strong missing -> %d", st);
	CHECK(strstr(ksymrelo_last_error(), "ksymrelo_strong_missing") != NULL, "%s", ksymrelo_last_error());
	CHECK(memcmp(copy, elf, len) == 0, "object untouched on error");
	free(copy);
	free(elf);

	/* Modules, offline: fd_array slots, and a too-small fd_array. */
	if (modules) {
		int small[1] = {12345};

		CHECK(ksymrelo_kernel_open_files(modules, NULL, &offline) == 0, "%s", ksymrelo_last_error());
		elf = read_file(fixtures, "modules.bpf.o", &len);
		copy = malloc(len);
		memcpy(copy, elf, len);
		fd_len = 77;
		st = ksymrelo_relocate_object(offline, copy, len, small, 1, &fd_len);
		CHECK(st == -ENOSPC, "too-small fd_array -> %d (%s)", st, ksymrelo_last_error());
		CHECK(small[0] == 12345 && fd_len == 77 && memcmp(copy, elf, len) == 0, "nothing written");
		/* The same refusal through the instructions, patched in place:
		 * the caller's instructions stay byte-identical. */
		CHECK(extract(elf, len, "syscall", &p) == 0, "extract modules");
		{
			struct bpf_insn *before = malloc(p.insn_cnt * sizeof(*before));

			memcpy(before, p.insns, p.insn_cnt * sizeof(*before));
			st = ksymrelo_relocate_insns(offline, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt,
						     small, 1, &fd_len);
			CHECK(st == -ENOSPC, "insns, too-small fd_array -> %d (%s)", st, ksymrelo_last_error());
			CHECK(small[0] == 12345 && fd_len == 77 && memcmp(before, p.insns, p.insn_cnt * sizeof(*before)) == 0,
			      "insns: nothing written");
			st = ksymrelo_relocate_insns(offline, p.btf, p.btf_len, p.insns, p.insn_cnt, p.sites, p.site_cnt,
						     fd_array, 8, &fd_len);
			CHECK(st == 0 && fd_len == 3, "insns, modules: %d %s", st, ksymrelo_last_error());
			CHECK(memcmp(before, p.insns, p.insn_cnt * sizeof(*before)) != 0, "insns patched in place");
			free(before);
			free_prog(&p);
		}
		st = ksymrelo_relocate_object(offline, copy, len, fd_array, 8, &fd_len);
		CHECK(st == 0, "modules: %s", ksymrelo_last_error());
		CHECK(fd_len == 3 && fd_array[0] == 0 && fd_array[1] == -2 && fd_array[2] == -3,
		      "fd_array len %zu [%d %d %d]", fd_len, fd_array[0], fd_array[1], fd_array[2]);
		free(copy);
		free(elf);
		ksymrelo_kernel_free(offline);
	}
	CHECK(ksymrelo_kernel_open_files("/nonexistent/ksymrelo", NULL, &offline) == -ENOENT, "missing btf path");
	CHECK(ksymrelo_kernel_open_files(NULL, NULL, &offline) == -EINVAL, "NULL btf path");
	CHECK(ksymrelo_kernel_open_live(NULL) == -EINVAL, "NULL out");
	CHECK(strlen(ksymrelo_strerror(-ESRCH)) > 0 && strlen(ksymrelo_strerror(-12345)) > 0, "strerror");
	ksymrelo_kernel_free(NULL);
	ksymrelo_kernel_free(k);

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("ffi_test: all checks passed\n");
	return 0;
}
