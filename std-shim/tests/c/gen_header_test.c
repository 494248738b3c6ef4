/* Loads two headers `ksymrelo gen -o NAME.h` wrote: skel_ok.h (an object
 * whose programs load here) and skel_bad.h (a strong typeless ksym no kernel
 * has). Prints one line per check; exits non-zero on the first failure. */
#include <dirent.h>
#include <stdlib.h>
#include "skel_ok.h"
#include "skel_bad.h"

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);      \
			printf(__VA_ARGS__);                              \
			printf("\n");                                     \
			exit(1);                                          \
		}                                                         \
	} while (0)

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* The kernel's name of program fd. */
static void prog_name(int fd, char *name)
{
	struct bpf_prog_info info;
	union bpf_attr attr;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (unsigned long)&info;
	CHECK(syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) == 0, "info of fd %d: %s", fd,
	      strerror(errno));
	memcpy(name, info.name, sizeof(info.name));
}

int main(void)
{
	struct skel_ok ok;
	struct skel_bad bad;
	char why[256], name[BPF_OBJ_NAME_LEN];
	int before = open_fds(), err;

	err = skel_ok__load(&ok);
	CHECK(err == 0, "skel_ok__load: %d %s", err, skel_ok__failure(&ok, why, sizeof(why)));
	prog_name(ok.progs.ms_syscall, name);
	CHECK(!strcmp(name, "ms_syscall"), "first program is %s", name);
	prog_name(ok.progs.ms_xdp, name);
	CHECK(!strcmp(name, "ms_xdp"), "second program is %s", name);
	CHECK(open_fds() == before + 2, "two programs open: %d -> %d", before, open_fds());
	skel_ok__close(&ok);
	CHECK(open_fds() == before, "closed: %d -> %d", before, open_fds());
	printf("ok loaded: ms_syscall ms_xdp\n");

	err = skel_bad__load(&bad);
	CHECK(err == -ENOENT, "skel_bad__load: %d", err);
	CHECK(open_fds() == before, "nothing left open: %d -> %d", before, open_fds());
	printf("bad: %s\n", skel_bad__failure(&bad, why, sizeof(why)));
	return 0;
}
