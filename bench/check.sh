#!/usr/bin/env bash
# Time of `ksymrelo check` over 10 kernels: 10 kernel directories, copies
# (not links, so that no file is shared in the page cache more than a real
# set would share it) of the kernels tests/kernels/fetch.sh extracted
# (target/kernels/debian-*) and of this machine's /sys/kernel/btf and
# /proc/kallsyms, in turn.
#
# Usage: bench/check.sh [-r RUNS] [-w WARMUP] [OBJECT...]
#   (default: 20 runs, 3 warm-up runs; objects tests/fixtures/mixed.bpf.o
#   and many_1000.bpf.o, generated from the running kernel by the tests'
#   rule, tests/src/generated.rs). Needs hyperfine; run tests/kernels/fetch.sh first
#   (without it only copies of this machine's kernel are used).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
warmup=3
while getopts "r:w:" opt; do
    case $opt in
    r) runs=$OPTARG ;;
    w) warmup=$OPTARG ;;
    *)
        echo "usage: $0 [-r RUNS] [-w WARMUP] [OBJECT...]" >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
objects=("$@")
if [ ${#objects[@]} -eq 0 ]; then
    objects=(tests/fixtures/mixed.bpf.o "$(cargo run -q -p ksymrelo-tests --bin gen_fixtures)/many_1000.bpf.o")
fi
command -v hyperfine >/dev/null || {
    echo "bench/check.sh: hyperfine not found" >&2
    exit 2
}

cargo build -q -j1 --release -p ksymrelo-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/host"
cp /sys/kernel/btf/vmlinux "$work/host/vmlinux"
cat /proc/kallsyms >"$work/host/kallsyms"
sources=("$work/host")
for d in target/kernels/debian-*; do
    [ -f "$d/btf/vmlinux" ] && sources+=("$d")
done
mkdir "$work/kernels"
for i in $(seq 0 9); do
    src=${sources[$((i % ${#sources[@]}))]}
    cp -r "$src" "$work/kernels/$(printf 'k%02d-%s' "$i" "$(basename "$src")")"
done
echo "10 kernels from: ${sources[*]##*/}"
for obj in "${objects[@]}"; do
    hyperfine -N -r "$runs" -w "$warmup" -i \
        "target/release/ksymrelo check $obj --kernels $work/kernels"
done
