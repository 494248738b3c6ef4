/* libbpf-style options and per-extern results of libksymrelo: sizes older
 * and newer than the library's, every mode, results of failed relocations,
 * a kallsyms record file, and the NULL cases.
 * Usage: opts_test FIXTURES_DIR TMP_DIR */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ksymrelo.h>

#include "check.h"
}

/* Relocates a copy of `obj` with `opts`; the copy is returned in *out. */
static int relocate(ksymrelo_kernel *k, const char *obj, size_t len, const void *opts, ksymrelo_result **result,
		    char **out)
{
	int fd_array[64];
	size_t fd_array_len;

	*out = malloc(len);
	memcpy(*out, obj, len);
	return ksymrelo_relocate_object_opts(k, *out, len, fd_array, 64, &fd_array_len, opts, result);
}

int main(int argc, char **argv)
{
	struct ksymrelo_opts opts = { .sz = sizeof(opts) };
	unsigned char bigger[sizeof(struct ksymrelo_opts) + 16];
	char *mixed, *ambiguous, *ref, *got;
	size_t mixed_len, ambiguous_len, i;
	ksymrelo_result *result = NULL;
	struct ksymrelo_extern e;
	ksymrelo_kernel *k;
	int err, modes[] = { KSYMRELO_MODE_USER, KSYMRELO_MODE_KERNEL, KSYMRELO_MODE_AUTO, 0 };

	if (argc != 3)
		return 2;
	mixed = read_file(argv[1], "mixed.bpf.o", &mixed_len);
	ambiguous = read_file(argv[1], "err_ambiguous.bpf.o", &ambiguous_len);
	CHECK(ksymrelo_kernel_open_live(&k) == 0, "%s", ksymrelo_last_error());

	/* Every mode patches the same bytes as the default (NULL options). */
	CHECK(relocate(k, mixed, mixed_len, NULL, NULL, &ref) == 0, "%s", ksymrelo_last_error());
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		opts.mode = modes[i];
		err = relocate(k, mixed, mixed_len, &opts, NULL, &got);
		CHECK(err == 0 && !memcmp(got, ref, mixed_len), "mode %d: %d %s", modes[i], err, ksymrelo_last_error());
		free(got);
	}

	/* An older caller: only `sz` is known to it, the rest reads as zero. */
	opts.mode = 0;
	opts.sz = sizeof(size_t);
	CHECK(relocate(k, mixed, mixed_len, &opts, NULL, &got) == 0 && !memcmp(got, ref, mixed_len), "%s",
	      ksymrelo_last_error());
	free(got);
	/* A newer caller: zero bytes past our struct are fine, others not. */
	memset(bigger, 0, sizeof(bigger));
	opts.sz = sizeof(bigger);
	memcpy(bigger, &opts, sizeof(opts));
	CHECK(relocate(k, mixed, mixed_len, bigger, NULL, &got) == 0, "%s", ksymrelo_last_error());
	free(got);
	bigger[sizeof(struct ksymrelo_opts) + 3] = 1;
	err = relocate(k, mixed, mixed_len, bigger, &result, &got);
	CHECK(err == -EINVAL && strstr(ksymrelo_last_error(), "newer header"), "%d %s", err, ksymrelo_last_error());
	CHECK(!memcmp(got, mixed, mixed_len), "the object changed on a refused call");
	CHECK(result == NULL, "no result for refused arguments");
	free(got);
	opts.sz = sizeof(opts);
	opts.mode = 99;
	CHECK(relocate(k, mixed, mixed_len, &opts, NULL, &got) == -EINVAL, "mode 99");
	free(got);
	opts.mode = 0;
	opts.flags = 1;
	CHECK(relocate(k, mixed, mixed_len, &opts, NULL, &got) == -EINVAL, "flags 1");
	free(got);
	opts.flags = 0;

	/* Results of a success: every extern, and an older, smaller struct. */
	CHECK(relocate(k, mixed, mixed_len, &opts, &result, &got) == 0, "%s", ksymrelo_last_error());
	CHECK(ksymrelo_result_status(result) == 0 && ksymrelo_result_reason(result) == KSYMRELO_REASON_NONE, "status");
	CHECK(ksymrelo_result_extern_count(result) == 11, "%zu externs", ksymrelo_result_extern_count(result));
	CHECK(ksymrelo_result_failed_extern(result) == NULL, "no failed extern");
	for (i = 0; i < ksymrelo_result_extern_count(result); i++) {
		e.sz = sizeof(e);
		CHECK(ksymrelo_result_extern(result, i, &e) == 0, "extern %zu", i);
		CHECK(e.flags & KSYMRELO_EXTERN_RESOLVED, "%s resolved", e.name);
		CHECK(e.kind == KSYMRELO_KIND_FUNC ? e.btf_id > 0 : e.addr != 0, "%s has its id or address", e.name);
	}
	memset(&e, 0xab, sizeof(e));
	e.sz = offsetof(struct ksymrelo_extern, module);
	CHECK(ksymrelo_result_extern(result, 0, &e) == 0, "small sz");
	CHECK(e.name && !strcmp(e.name, "bpf_iter_num_destroy"), "name within the old size");
	CHECK(e.kind == 0xabababab, "nothing written past the caller's size");
	e.sz = sizeof(e);
	CHECK(ksymrelo_result_extern(result, 11, &e) == -EINVAL, "index past the count");
	CHECK(ksymrelo_result_extern(result, 0, NULL) == -EINVAL, "NULL out");
	ksymrelo_result_free(result);
	free(got);

	/* Results of a failure: the extern, its reason, the message; the
	 * object untouched. */
	result = NULL;
	err = relocate(k, ambiguous, ambiguous_len, NULL, &result, &got);
	CHECK(err < 0 && result, "ambiguous fails with a result");
	CHECK(!memcmp(got, ambiguous, ambiguous_len), "object unchanged");
	CHECK(ksymrelo_result_status(result) == err, "status %d", ksymrelo_result_status(result));
	CHECK(ksymrelo_result_reason(result) == KSYMRELO_REASON_AMBIGUOUS, "reason %d", ksymrelo_result_reason(result));
	CHECK(ksymrelo_result_failed_extern(result) && !strcmp(ksymrelo_result_failed_extern(result), "init_once"),
	      "failed extern");
	CHECK(strstr(ksymrelo_result_message(result), "resolution is ambiguous"), "%s", ksymrelo_result_message(result));
	CHECK(ksymrelo_result_extern_count(result) == 1, "the object's externs");
	e.sz = sizeof(e);
	CHECK(ksymrelo_result_extern(result, 0, &e) == 0 && e.reason == KSYMRELO_REASON_AMBIGUOUS &&
		      !(e.flags & KSYMRELO_EXTERN_RESOLVED) && e.kind == KSYMRELO_KIND_TYPELESS,
	      "the failing extern's reason");
	ksymrelo_result_free(result);
	free(got);

	/* NULLs. */
	CHECK(ksymrelo_result_extern_count(NULL) == 0, "count of NULL");
	CHECK(ksymrelo_result_status(NULL) == -EINVAL, "status of NULL");
	CHECK(ksymrelo_result_reason(NULL) == KSYMRELO_REASON_USAGE, "reason of NULL");
	CHECK(!strcmp(ksymrelo_result_message(NULL), ""), "message of NULL");
	CHECK(ksymrelo_result_failed_extern(NULL) == NULL, "failed extern of NULL");
	ksymrelo_result_free(NULL);
	ksymrelo_kernel_free(k);

	/* A kallsyms record file of the caller's choice. */
	{
		struct ksymrelo_kernel_opts kopts = { .sz = sizeof(kopts) };
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/record/kallsyms-record", argv[2]);
		kopts.kallsyms_record_path = path;
		CHECK(ksymrelo_kernel_open_live_opts(&kopts, &k) == 0, "%s", ksymrelo_last_error());
		CHECK(relocate(k, mixed, mixed_len, NULL, NULL, &got) == 0 && !memcmp(got, ref, mixed_len), "%s",
		      ksymrelo_last_error());
		free(got);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "record written at %s, readable by its owner only", path);
		ksymrelo_kernel_free(k);
		CHECK(ksymrelo_kernel_open_live_opts(NULL, &k) == 0, "NULL kernel options");
		ksymrelo_kernel_free(k);
	}

	free(ref);
	free(mixed);
	free(ambiguous);
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
