#!/usr/bin/env bash
# Builds the libbpf differential harness: build.sh [OUTPUT [LIBBPF_DIR]]
# (default output /tmp/libbpf_dump).
#   without LIBBPF_DIR: against the system's libbpf (Debian's 1.1, libbpf-dev);
#   with LIBBPF_DIR:    against the static libbpf in LIBBPF_DIR/libbpf.a with
#                       its headers in LIBBPF_DIR/include (libbpf-sys's build
#                       output: the 1.7 oracle, see tests/build.rs).
# libbpf is linked statically so that the harness's own syscall() wraps it.
# KSYMRELO_HARNESS_STATIC=1 links everything statically (libc, libelf, zlib
# too), for the VM suite's busybox guests (tests/vm/run.sh).
set -euo pipefail
out=${1:-/tmp/libbpf_dump}
here=$(dirname "$0")
static=()
[ "${KSYMRELO_HARNESS_STATIC:-}" = 1 ] && static=(-static -DKSYMRELO_STATIC)
if [ $# -ge 2 ]; then
    dir=$2
    gcc -O1 -Wall "${static[@]}" -I "$dir/include" -o "$out" "$here/libbpf_dump.c" "$dir/libbpf.a" -lelf -lz -ldl
else
    libdir=/usr/lib/$(gcc -print-multiarch)
    gcc -O1 -Wall "${static[@]}" -o "$out" "$here/libbpf_dump.c" "$libdir/libbpf.a" -lelf -lz -ldl
fi
