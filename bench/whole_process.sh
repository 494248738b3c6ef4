#!/usr/bin/env bash
# Whole-process comparison: `ksymrelo resolve --json` in each mode against a C
# program that loads the same object with the system's libbpf
# (tests/harness/libbpf_dump.c). Reports medians and the speed-up over libbpf.
#
# The command is measured twice: as `cargo build --release` makes it
# (dynamically linked), and statically linked (glibc's static-pie), which
# starts a few hundred microseconds sooner:
#   RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --release -p ksymrelo-std --target x86_64-unknown-linux-gnu
#
# Needs root (libbpf loads the program), hyperfine, python3, libbpf-dev.
# Usage: bench/whole_process.sh [OBJECT] [RUNS]
#   (default: tests/fixtures/mixed.bpf.o, 200 runs per command)
set -euo pipefail
cd "$(dirname "$0")/.."
obj=${1:-tests/fixtures/mixed.bpf.o}
runs=${2:-200}

cargo build -q --release -p ksymrelo-std
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build -q --release -p ksymrelo-std --target x86_64-unknown-linux-gnu --target-dir target/static
dynamic=./target/release/ksymrelo
static=./target/static/x86_64-unknown-linux-gnu/release/ksymrelo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash tests/harness/build.sh "$work/libbpf_dump" >/dev/null

hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/results.json" \
    -n "libbpf 1.1 (bpf_object__load)" "$work/libbpf_dump $obj" \
    -n "ksymrelo --mode auto" "$dynamic resolve --json --mode auto $obj" \
    -n "ksymrelo --mode kernel" "$dynamic resolve --json --mode kernel $obj" \
    -n "ksymrelo --mode user" "$dynamic resolve --json --mode user $obj" \
    -n "ksymrelo --mode auto (static)" "$static resolve --json --mode auto $obj" \
    -n "ksymrelo --mode kernel (static)" "$static resolve --json --mode kernel $obj"

python3 - "$work/results.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
libbpf = results[0]["median"]
print()
print(f"{'command':34} {'median':>10} {'vs libbpf':>10}")
for r in results:
    print(f"{r['command']:34} {r['median'] * 1e3:8.2f} ms {libbpf / r['median']:9.1f}x")
EOF
