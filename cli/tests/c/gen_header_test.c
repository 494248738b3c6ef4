/* Loads the headers `ksymrelo gen -o NAME.h` wrote: skel_ok.h (an object
 * whose programs load here), skel_bad.h (a strong typeless ksym no kernel
 * has), and three sealed ones: skel_sealed.h as generated, skel_data.h
 * with one byte of its data flipped, skel_code.h with one byte of its
 * loader flipped, skel_signed.h with a signature no key made (its load
 * is refused, in words). Prints one line per check; exits non-zero on the first
 * failure, or with 77 when the kernel has no exclusive maps (before 6.18;
 * the Rust side checks that this is said clearly). */
#include <dirent.h>
#include <stdlib.h>
#include "skel_ok.h"
#include "skel_bad.h"
#include "skel_sealed.h"
#include "skel_data.h"
#include "skel_code.h"
#include "skel_signed.h"

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
	char why[512], name[BPF_OBJ_NAME_LEN];
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

	{
		struct skel_sealed sealed;
		struct skel_data data;
		struct skel_code code;

		err = skel_sealed__load(&sealed);
		if (err && sealed.failed_call == 1) {
			printf("sealed: %s\n", skel_sealed__failure(&sealed, why, sizeof(why)));
			return 77;
		}
		CHECK(err == 0, "skel_sealed__load: %d %s", err, skel_sealed__failure(&sealed, why, sizeof(why)));
		prog_name(sealed.progs.ms_xdp, name);
		CHECK(!strcmp(name, "ms_xdp"), "sealed second program is %s", name);
		skel_sealed__close(&sealed);
		printf("sealed loaded: ms_syscall ms_xdp\n");

		err = skel_data__load(&data);
		CHECK(err == -EBADMSG, "skel_data__load: %d %s", err, skel_data__failure(&data, why, sizeof(why)));
		CHECK(open_fds() == before, "nothing left open: %d -> %d", before, open_fds());
		printf("data: %s\n", skel_data__failure(&data, why, sizeof(why)));

		err = skel_code__load(&code);
		CHECK(err == -EACCES, "skel_code__load: %d %s", err, skel_code__failure(&code, why, sizeof(why)));
		CHECK(open_fds() == before, "nothing left open: %d -> %d", before, open_fds());
		printf("code: %s\n", skel_code__failure(&code, why, sizeof(why)));
	}
	{
		struct skel_signed sig;

		err = skel_signed__load_keyring(&sig, 0);
		CHECK(err < 0, "a signature no key made loaded");
		CHECK(open_fds() == before, "nothing left open: %d -> %d", before, open_fds());
		printf("signed: %s\n", skel_signed__failure(&sig, why, sizeof(why)));
	}
	return 0;
}
