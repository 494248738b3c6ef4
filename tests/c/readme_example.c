/* Relocate a BPF object in memory against the running kernel, then hand
 * its instructions and fd_array to your own BPF_PROG_LOAD. */
#include <stdio.h>
#include <stdlib.h>
#include <ksymrelo.h>

int main(int argc, char **argv)
{
	ksymrelo_kernel *kernel;
	int fd_array[64];
	size_t fd_array_len, len;
	char *obj;
	FILE *f;
	int err;

	if (argc != 2 || !(f = fopen(argv[1], "rb")))
		return 2;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	obj = malloc(len);
	if (fread(obj, 1, len, f) != len)
		return 2;
	fclose(f);

	err = ksymrelo_kernel_open_live(&kernel);
	if (!err)
		err = ksymrelo_relocate_object(kernel, obj, len, fd_array, 64, &fd_array_len);
	if (err) {
		fprintf(stderr, "ksymrelo: %s: %s\n", ksymrelo_strerror(err), ksymrelo_last_error());
		return 1;
	}
	printf("relocated %s; fd_array has %zu entries\n", argv[1], fd_array_len);
	/* ... load the patched sections of `obj` with fd_array here ... */
	ksymrelo_kernel_free(kernel); /* closes module BTF fds: load first */
	free(obj);
	return 0;
}
