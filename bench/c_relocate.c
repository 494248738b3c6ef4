/* A C loader's cost: relocate one object with libksymrelo, once on a fresh
 * kernel handle (what a loader pays at start-up), then ROUNDS more times on
 * the same, now warm, handle. Prints the first call's time and the median
 * of the warm ones, in microseconds.
 * Usage: c_relocate OBJECT [ROUNDS] [auto|user|kernel]
 * With ROUNDS 0 (the default) it is a whole-process subject for hyperfine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ksymrelo.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct ksymrelo_opts opts = { .sz = sizeof(opts) };
	int rounds = argc > 2 ? atoi(argv[2]) : 0, fd_array[64], i;
	size_t len, fd_array_len;
	ksymrelo_kernel *kernel;
	double t0, first, *warm;
	char *pristine, *work;
	FILE *f;

	if (argc < 2 || rounds < 0 || !(f = fopen(argv[1], "rb")))
		return 2;
	if (argc > 3)
		opts.mode = !strcmp(argv[3], "user") ? KSYMRELO_MODE_USER
			  : !strcmp(argv[3], "kernel") ? KSYMRELO_MODE_KERNEL
						     : KSYMRELO_MODE_AUTO;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	pristine = malloc(len);
	work = malloc(len);
	warm = calloc(rounds + 1, sizeof(*warm));
	if (fread(pristine, 1, len, f) != len)
		return 2;
	fclose(f);

	t0 = now_us();
	memcpy(work, pristine, len);
	if (ksymrelo_kernel_open_live(&kernel) ||
	    ksymrelo_relocate_object_opts(kernel, work, len, fd_array, 64, &fd_array_len, &opts, NULL)) {
		fprintf(stderr, "ksymrelo: %s\n", ksymrelo_last_error());
		return 1;
	}
	first = now_us() - t0;
	for (i = 0; i < rounds; i++) {
		memcpy(work, pristine, len);
		t0 = now_us();
		if (ksymrelo_relocate_object_opts(kernel, work, len, fd_array, 64, &fd_array_len, &opts, NULL)) {
			fprintf(stderr, "ksymrelo: %s\n", ksymrelo_last_error());
			return 1;
		}
		warm[i] = now_us() - t0;
	}
	if (rounds) {
		qsort(warm, rounds, sizeof(*warm), cmp);
		printf("first %.1f us, warm median %.1f us (%.1f%% of the first)\n", first, warm[rounds / 2],
		       100 * warm[rounds / 2] / first);
	}
	ksymrelo_kernel_free(kernel);
	free(pristine);
	free(work);
	free(warm);
	return 0;
}
