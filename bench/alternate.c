/* Runs commands in turn, each right after the reference command, so that
 * every command meets the caches as the reference leaves them (as a user
 * meets them: after another process), and prints each one's median.
 * Usage: alternate ROUNDS REF... :: CMD1... [:: CMD2...]...
 * Each round runs REF, CMD1, REF, CMD2, ...; every run is timed from
 * posix_spawn to waitpid (stdout and stderr to /dev/null). Prints one line
 * per command: "median_ms<TAB>name", REF first (all its runs). A command
 * that exits non-zero stops the measurement (exit 1). */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double run(char **argv)
{
	posix_spawn_file_actions_t fa;
	struct timespec a, b;
	int status;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) ||
	    waitpid(pid, &status, 0) != pid) {
		perror(argv[0]);
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "alternate: %s failed (status %d)\n", argv[0], status);
		exit(1);
	}
	return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
}

static int cmp(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;

	return p < q ? -1 : p > q;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 0, ncmd = 0, i, r, c;
	char **cmds[64];
	double *t[64];

	if (rounds < 1 || argc < 5) {
		fprintf(stderr, "usage: alternate ROUNDS REF... :: CMD... [:: CMD...]...\n");
		return 2;
	}
	cmds[ncmd++] = &argv[2];
	for (i = 2; i < argc && ncmd < 64; i++)
		if (!strcmp(argv[i], "::")) {
			argv[i] = NULL;
			cmds[ncmd++] = &argv[i + 1];
		}
	for (c = 0; c < ncmd; c++)
		t[c] = calloc((size_t)rounds * ncmd, sizeof(double));
	for (r = 0; r < rounds; r++)
		for (c = 1; c < ncmd; c++) {
			t[0][r * (ncmd - 1) + c - 1] = run(cmds[0]);
			t[c][r] = run(cmds[c]);
		}
	printf("%.3f\t%s\n", median(t[0], rounds * (ncmd - 1)), cmds[0][0]);
	for (c = 1; c < ncmd; c++)
		printf("%.3f\t%s\n", median(t[c], rounds), cmds[c][0]);
	return 0;
}
