/* libksymrelo's light-skeleton entry points from C: ksymrelo_gen into a
 * caller's buffer (sized by asking first), ksymrelo_run_loader into the
 * caller's fd arrays (sized likewise), failures named with nothing left
 * open, and a loader file with one flipped byte refused.
 * Usage: gen_test FIXTURES_DIR */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ksymrelo.h>

#include "check.h"
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The loader file of fixture `name` (with `flags`), generated in a buffer
 * sized by asking. */
static char *gen_flags(const char *dir, const char *name, size_t *len, unsigned int flags)
{
	size_t obj_len, need = 0;
	char *obj = read_file(dir, name, &obj_len), *out;
	int err;

	err = ksymrelo_gen(obj, obj_len, name, NULL, 0, &need, flags);
	CHECK(err == -ENOSPC && need > 64, "asking the size of %s: %d, %zu", name, err, need);
	out = malloc(need);
	memset(out, 0x5a, need);
	*len = 12345;
	err = ksymrelo_gen(obj, obj_len, name, out, need - 1, len, flags);
	CHECK(err == -ENOSPC && *len == need && (unsigned char)out[0] == 0x5a, "one byte short: %d", err);
	err = ksymrelo_gen(obj, obj_len, name, out, need, len, flags);
	CHECK(err == 0 && *len == need && !memcmp(out, "KSYMRELO", 8), "%s: %d %s", name, err, ksymrelo_last_error());
	free(obj);
	return out;
}

static char *gen(const char *dir, const char *name, size_t *len)
{
	return gen_flags(dir, name, len, 0);
}

int main(int argc, char **argv)
{
	int map_fds[4], prog_fds[4], err, before = open_fds();
	size_t len, map_cnt = 99, prog_cnt = 99, i;
	char *file;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_test FIXTURES_DIR\n");
		return 2;
	}
	file = gen(argv[1], "multi_section.bpf.o", &len);
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 1, &prog_cnt, 0);
	CHECK(err == -ENOSPC && map_cnt == 0 && prog_cnt == 2, "prog_fds too short: %d %zu %zu", err, map_cnt, prog_cnt);
	CHECK(open_fds() == before, "nothing created");
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 4, &prog_cnt, 0);
	CHECK(err == 0 && prog_cnt == 2, "run: %d %s", err, ksymrelo_last_error());
	CHECK(open_fds() == before + 2, "two programs open");
	for (i = 0; i < prog_cnt; i++)
		close(prog_fds[i]);
	file[len / 2] ^= 1;
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 4, &prog_cnt, 0);
	CHECK(err == -EINVAL && strstr(ksymrelo_last_error(), "altered"), "flipped byte: %d %s", err,
	      ksymrelo_last_error());
	free(file);

	/* Sealed (Linux 6.18): loads; an unknown flag is refused. */
	file = gen_flags(argv[1], "multi_section.bpf.o", &len, KSYMRELO_GEN_SEALED);
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 4, &prog_cnt, 0);
	if (err && strstr(ksymrelo_last_error(), "no exclusive maps")) {
		printf("gen: sealed: %s\n", ksymrelo_last_error());
	} else {
		CHECK(err == 0 && prog_cnt == 2, "sealed run: %d %s", err, ksymrelo_last_error());
		for (i = 0; i < prog_cnt; i++)
			close(prog_fds[i]);
	}
	free(file);
	err = ksymrelo_gen("", 0, "x.bpf.o", NULL, 0, &len, 2);
	CHECK(err == -EINVAL && strstr(ksymrelo_last_error(), "unknown flags"), "flags 2: %d %s", err, ksymrelo_last_error());

	file = gen(argv[1], "err_strong_missing.bpf.o", &len);
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 4, &prog_cnt, 0);
	CHECK(err == -ENOENT && strstr(ksymrelo_last_error(), "extern 'ksymrelo_strong_missing' (strong): not resolved"),
	      "strong missing: %d %s", err, ksymrelo_last_error());
	free(file);

	file = gen(argv[1], "err_kfunc_proto.bpf.o", &len);
	err = ksymrelo_run_loader(file, len, map_fds, 4, &map_cnt, prog_fds, 4, &prog_cnt, 0);
	CHECK(err < 0 && strstr(ksymrelo_last_error(), "bpf_iter_num_new") && strstr(ksymrelo_last_error(), "incompatible"),
	      "incompatible prototype, before the loader: %d %s", err, ksymrelo_last_error());
	free(file);
	CHECK(open_fds() == before, "nothing left open: %d -> %d", before, open_fds());

	if (failures)
		return 1;
	printf("gen: all checks passed\n");
	return 0;
}
