/* One kernel handle shared by many threads relocating at once: every
 * result must equal a single-threaded relocation's, byte for byte (the
 * patched object, the fd_array, every extern's outcome).
 * Usage: threads_test THREADS ROUNDS OBJECT... */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksymrelo.h>

#define MAX_EXTERNS 2048

struct object {
	void *bytes;
	size_t len;
	void *expected;
	int fd_array[64];
	size_t fd_array_len;
	struct ksymrelo_extern externs[MAX_EXTERNS];
	size_t extern_count;
};

static struct object objects[16];
static int object_count, rounds;
static ksymrelo_kernel *shared;

static int relocate(ksymrelo_kernel *k, const struct object *o, void *out, int *fd_array, size_t *fd_array_len,
		    struct ksymrelo_extern *externs, size_t *extern_count)
{
	struct ksymrelo_opts opts = { .sz = sizeof(opts) };
	ksymrelo_result *result = NULL;
	size_t i;
	int err;

	memcpy(out, o->bytes, o->len);
	err = ksymrelo_relocate_object_opts(k, out, o->len, fd_array, 64, fd_array_len, &opts, &result);
	if (err) {
		fprintf(stderr, "relocation failed: %s\n", ksymrelo_last_error());
		ksymrelo_result_free(result);
		return err;
	}
	*extern_count = ksymrelo_result_extern_count(result);
	if (*extern_count > MAX_EXTERNS) {
		fprintf(stderr, "more than %d externs\n", MAX_EXTERNS);
		ksymrelo_result_free(result);
		return -1;
	}
	for (i = 0; i < *extern_count; i++) {
		externs[i].sz = sizeof(externs[i]);
		ksymrelo_result_extern(result, i, &externs[i]);
		/* Strings die with the result: compare them now, keep none. */
		externs[i].name = NULL;
		externs[i].module = NULL;
	}
	ksymrelo_result_free(result);
	return 0;
}

static void *worker(void *arg)
{
	long t = (long)arg, bad = 0;
	int r;

	for (r = 0; r < rounds; r++) {
		const struct object *o = &objects[(t + r) % object_count];
		struct ksymrelo_extern *externs = calloc(MAX_EXTERNS, sizeof(*externs));
		size_t fd_array_len, extern_count;
		int fd_array[64];
		void *out = malloc(o->len);

		if (relocate(shared, o, out, fd_array, &fd_array_len, externs, &extern_count) ||
		    memcmp(out, o->expected, o->len) || fd_array_len != o->fd_array_len ||
		    memcmp(fd_array, o->fd_array, fd_array_len * sizeof(int)) || extern_count != o->extern_count ||
		    memcmp(externs, o->externs, extern_count * sizeof(externs[0]))) {
			fprintf(stderr, "thread %ld round %d: differs from the single-threaded result\n", t, r);
			bad++;
		}
		free(out);
		free(externs);
	}
	return (void *)bad;
}

int main(int argc, char **argv)
{
	ksymrelo_kernel *single;
	pthread_t threads[64];
	long bad = 0, threads_n;
	int i;

	if (argc < 4 || (threads_n = atol(argv[1])) <= 0 || threads_n > 64 || (rounds = atoi(argv[2])) <= 0)
		return 2;
	for (i = 3; i < argc && object_count < 16; i++) {
		struct object *o = &objects[object_count++];
		FILE *f = fopen(argv[i], "rb");

		if (!f)
			return 2;
		fseek(f, 0, SEEK_END);
		o->len = ftell(f);
		rewind(f);
		o->bytes = malloc(o->len);
		o->expected = malloc(o->len);
		if (fread(o->bytes, 1, o->len, f) != o->len)
			return 2;
		fclose(f);
	}
	/* The reference: each object alone, on a handle of its own. */
	for (i = 0; i < object_count; i++) {
		struct object *o = &objects[i];

		if (ksymrelo_kernel_open_live(&single) ||
		    relocate(single, o, o->expected, o->fd_array, &o->fd_array_len, o->externs, &o->extern_count))
			return 1;
		ksymrelo_kernel_free(single);
	}
	/* Then every thread at once on one fresh handle. */
	if (ksymrelo_kernel_open_live(&shared))
		return 1;
	for (i = 0; i < threads_n; i++)
		pthread_create(&threads[i], NULL, worker, (void *)(long)i);
	for (i = 0; i < threads_n; i++) {
		void *ret;

		pthread_join(threads[i], &ret);
		bad += (long)ret;
	}
	ksymrelo_kernel_free(shared);
	for (i = 0; i < object_count; i++) {
		free(objects[i].bytes);
		free(objects[i].expected);
	}
	if (bad) {
		fprintf(stderr, "%ld relocations differed\n", bad);
		return 1;
	}
	printf("threads ok: %ld threads x %d relocations\n", threads_n, rounds);
	return 0;
}
