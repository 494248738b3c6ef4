/* What every extern of an object resolved to, printed as `ksymrelo
 * resolve` prints it: a C loader logging its relocation.
 * Usage: print_externs OBJECT [auto|user|kernel] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksymrelo.h>

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case KSYMRELO_KIND_VAR:
		return "var";
	case KSYMRELO_KIND_TYPELESS:
		return "typeless";
	case KSYMRELO_KIND_FUNC:
		return "func";
	default:
		return "kconfig";
	}
}

static void outcome(const struct ksymrelo_extern *e, char *out, size_t len)
{
	char where[256];
	int n;

	if (e->kind == KSYMRELO_KIND_KCONFIG) {
		n = snprintf(out, len, "kconfig: left to the loader");
	} else if (!(e->flags & KSYMRELO_EXTERN_RESOLVED)) {
		n = snprintf(out, len, "%s: %s (weak)",
			     e->reason == KSYMRELO_REASON_INCOMPATIBLE ? "incompatible prototype" : "not found",
			     e->flags & KSYMRELO_EXTERN_POISONED ? "calls poisoned" : "0");
	} else if (e->kind == KSYMRELO_KIND_TYPELESS) {
		n = e->module ? snprintf(out, len, "address %#llx [%s]", (unsigned long long)e->addr, e->module)
			      : snprintf(out, len, "address %#llx", (unsigned long long)e->addr);
	} else {
		if (e->module)
			snprintf(where, sizeof(where), "%s (btf fd %d)", e->module, e->btf_obj_fd);
		else
			snprintf(where, sizeof(where), "vmlinux");
		n = snprintf(out, len, "btf id %u in %s", e->btf_id, where);
		if (e->kind == KSYMRELO_KIND_FUNC && e->fd_array_slot)
			n += snprintf(out + n, len - n, ", fd_array[%u]", e->fd_array_slot);
	}
	snprintf(out + n, len - n, " (%u site%s)", e->sites, e->sites == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
	struct ksymrelo_opts opts = { .sz = sizeof(opts) };
	size_t fd_array_len, obj_len, count, i, w[3] = { 6, 4, 7 };
	struct ksymrelo_extern e;
	ksymrelo_result *result = NULL;
	ksymrelo_kernel *kernel;
	int fd_array[64], err;
	char (*outcomes)[512];
	void *obj;
	FILE *f;

	if (argc < 2 || !(f = fopen(argv[1], "rb")))
		return 2;
	if (argc > 2)
		opts.mode = !strcmp(argv[2], "user") ? KSYMRELO_MODE_USER
			  : !strcmp(argv[2], "kernel") ? KSYMRELO_MODE_KERNEL
						     : KSYMRELO_MODE_AUTO;
	fseek(f, 0, SEEK_END);
	obj_len = ftell(f);
	rewind(f);
	obj = malloc(obj_len);
	if (!obj || fread(obj, 1, obj_len, f) != obj_len)
		return 2;
	fclose(f);

	err = ksymrelo_kernel_open_live(&kernel);
	if (err) {
		fprintf(stderr, "ksymrelo: %s\n", ksymrelo_last_error());
		return 1;
	}
	err = ksymrelo_relocate_object_opts(kernel, obj, obj_len, fd_array, 64, &fd_array_len, &opts, &result);
	if (err) {
		/* The result still says which extern failed, and why. */
		fprintf(stderr, "ksymrelo: %s (extern %s, reason %d)\n", ksymrelo_result_message(result),
			ksymrelo_result_failed_extern(result) ? ksymrelo_result_failed_extern(result) : "-",
			ksymrelo_result_reason(result));
		ksymrelo_result_free(result);
		ksymrelo_kernel_free(kernel);
		free(obj);
		return 1;
	}

	count = ksymrelo_result_extern_count(result);
	outcomes = calloc(count + 1, sizeof(*outcomes));
	for (i = 0; i < count; i++) {
		e.sz = sizeof(e);
		ksymrelo_result_extern(result, i, &e);
		outcome(&e, outcomes[i], sizeof(outcomes[i]));
		if (strlen(e.name) > w[0])
			w[0] = strlen(e.name);
		if (strlen(kind_name(e.kind)) > w[1])
			w[1] = strlen(kind_name(e.kind));
	}
	printf("%-*s  %-*s  %-*s  %s\n", (int)w[0], "EXTERN", (int)w[1], "KIND", (int)w[2], "BINDING", "OUTCOME");
	for (i = 0; i < count; i++) {
		e.sz = sizeof(e);
		ksymrelo_result_extern(result, i, &e);
		printf("%-*s  %-*s  %-*s  %s\n", (int)w[0], e.name, (int)w[1], kind_name(e.kind), (int)w[2],
		       e.flags & KSYMRELO_EXTERN_WEAK ? "weak" : "strong", outcomes[i]);
	}
	if (fd_array_len) {
		printf("fd_array: [");
		for (i = 0; i < fd_array_len; i++)
			printf("%s%d", i ? ", " : "", fd_array[i]);
		printf("]\n");
	}
	free(outcomes);
	ksymrelo_result_free(result);
	ksymrelo_kernel_free(kernel);
	free(obj);
	return 0;
}
