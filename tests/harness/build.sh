#!/usr/bin/env bash
# Builds the libbpf differential harness: build.sh [OUTPUT] (default /tmp/libbpf_dump).
# libbpf is linked statically so that the harness's own syscall() wraps it.
set -euo pipefail
out=${1:-/tmp/libbpf_dump}
here=$(dirname "$0")
libdir=/usr/lib/$(gcc -print-multiarch)
gcc -O1 -Wall -o "$out" "$here/libbpf_dump.c" "$libdir/libbpf.a" -lelf -lz -ldl
