/* One program with N distinct externs, one site each, through
 * ksymrelo_relocate_insns: the cost must grow as n log n, not n^2 (issue
 * 22). The BTF files come from the driver (tests/tests/ffi.rs): OBJ_BTF
 * declares `int lin_NNNNNN` for 0 <= i < N in `.ksyms` (strong when i % 7
 * is 0, weak otherwise) and one strong `lin_strong_missing`; VMLINUX has
 * `int lin_NNNNNN` for every i % 7 == 0. Checks a sample of the patched
 * sites, that a failing call leaves the instructions byte-identical, and
 * prints how long the call took (not asserted: a shared machine's time). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <ksymrelo.h>

#include "check.h"
} /* read_file, which check.h leaves open */

struct insn {
	uint8_t code;
	uint8_t regs;
	int16_t off;
	int32_t imm;
};

#define GARBAGE 0x5a5a5a5a

static char *read_path(const char *path, size_t *len)
{
	return read_file(path[0] == '/' ? "" : ".", path, len);
}

int main(int argc, char **argv)
{
	ksymrelo_kernel *k = NULL;
	size_t btf_len, unused, n, i, fd_len = 77;
	char *btf, (*names)[32];
	struct insn *insns, *before;
	struct ksymrelo_site *sites;
	struct timespec t0, t1;
	int st, fd_array[1] = {12345};

	if (argc != 4) {
		fprintf(stderr, "usage: %s OBJ_BTF VMLINUX_BTF N\n", argv[0]);
		return 2;
	}
	btf = read_path(argv[1], &btf_len);
	free(read_path(argv[2], &unused)); /* exists: open_files checks it too */
	n = strtoul(argv[3], NULL, 10);
	CHECK(ksymrelo_kernel_open_files(argv[2], NULL, &k) == 0, "%s", ksymrelo_last_error());

	names = malloc((n + 1) * sizeof(*names));
	sites = malloc((n + 1) * sizeof(*sites));
	insns = malloc((2 * n + 2) * sizeof(*insns));
	before = malloc((2 * n + 2) * sizeof(*insns));
	for (i = 0; i <= n; i++) {
		if (i < n)
			snprintf(names[i], sizeof(names[i]), "lin_%06zu", i);
		else
			snprintf(names[i], sizeof(names[i]), "lin_strong_missing");
		/* ld_imm64 r1, garbage: every patched word is seen written. */
		insns[2 * i] = (struct insn){0x18, 1, 0, GARBAGE};
		insns[2 * i + 1] = (struct insn){0, 0, 0, GARBAGE};
		sites[i] = (struct ksymrelo_site){2 * i, i % 7 && i < n ? KSYMRELO_SITE_WEAK : 0, names[i]};
	}
	memcpy(before, insns, (2 * n + 2) * sizeof(*insns));

	/* A strong extern the kernel lacks, after all the others: -ESRCH,
	 * nothing written. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = ksymrelo_relocate_insns(k, btf, btf_len, (struct bpf_insn *)insns, 2 * n + 2, sites, n + 1, fd_array, 1,
				     &fd_len);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%zu distinct sites, failing (the first call: vmlinux walked): %.3f s\n", n + 1,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	CHECK(st == -ESRCH, "strong missing -> %d (%s)", st, ksymrelo_last_error());
	CHECK(strstr(ksymrelo_last_error(), "lin_strong_missing") != NULL, "%s", ksymrelo_last_error());
	CHECK(memcmp(before, insns, (2 * n + 2) * sizeof(*insns)) == 0, "insns byte-identical after a failure");
	CHECK(fd_len == 77 && fd_array[0] == 12345, "fd_array untouched");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = ksymrelo_relocate_insns(k, btf, btf_len, (struct bpf_insn *)insns, 2 * n, sites, n, fd_array, 1, &fd_len);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(st == 0, "relocate %zu sites: %s", n, ksymrelo_last_error());
	CHECK(fd_len == 0, "no module: fd_array_len %zu", fd_len);
	printf("%zu distinct sites, patched: %.3f s\n", n, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

	/* A sample: every 7th is in vmlinux (ld_imm64 of a BTF id, vmlinux's
	 * fd 0); the rest are weak and absent (zeros). VMLINUX numbers them
	 * from id 2 (`int` is 1), in order. */
	for (i = 0; i < n; i += (i % 1000 == 0 ? 1 : 997)) {
		struct insn *a = &insns[2 * i], *b = &insns[2 * i + 1];

		if (i % 7 == 0) {
			CHECK(a->code == 0x18 && (a->regs >> 4) == 3 && a->imm == (int32_t)(2 + i / 7) && b->imm == 0,
			      "site %zu: regs %#x imm %d/%d", i, a->regs, a->imm, b->imm);
		} else {
			CHECK(a->code == 0x18 && (a->regs >> 4) == 0 && a->imm == 0 && b->imm == 0,
			      "site %zu (weak, absent): regs %#x imm %d/%d", i, a->regs, a->imm, b->imm);
		}
	}
	CHECK(memcmp(&before[2 * n], &insns[2 * n], 2 * sizeof(*insns)) == 0, "past insn_cnt untouched");

	ksymrelo_kernel_free(k);
	free(btf);
	free(names);
	free(sites);
	free(insns);
	free(before);
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("many sites: all checks passed\n");
	return 0;
}
