#!/usr/bin/env bash
# Whole-process comparison: `ksymrelo resolve --json` against a C program that
# loads the same object with the system's libbpf (tests/harness/libbpf_dump.c).
# Needs root (libbpf loads the program), hyperfine, libbpf-dev.
# Usage: bench/whole_process.sh [OBJECT]   (default: tests/fixtures/mixed.bpf.o)
set -euo pipefail
cd "$(dirname "$0")/.."
obj=${1:-tests/fixtures/mixed.bpf.o}
cargo build -q --release -p ksymrelo-std
harness=$(mktemp -d)/libbpf_dump
bash tests/harness/build.sh "$harness"
hyperfine -N --warmup 5 --runs 50 \
    "./target/release/ksymrelo resolve --json $obj" \
    "$harness $obj"
