#!/usr/bin/env bash
# Whole-process comparison at 10, 100 and 1000 ksyms: `ksymrelo resolve
# --json` in each mode against a C program that loads the same object with
# libbpf (tests/harness/libbpf_dump.c), linked against Debian's libbpf 1.1
# and against libbpf 1.7 (vendored by the libbpf-sys crate, built here in
# release). Prints, per object, the medians and the speed-up over each libbpf.
#
# Objects (default): tests/fixtures/mixed.bpf.o (6 typeless ksyms + 5
# kfuncs), many_100.bpf.o and many_1000.bpf.o (100/1000 typeless ksyms + 5
# kfuncs, generated from the running kernel's kallsyms by the tests' rule,
# tests/src/generated.rs, so the numbers mean the same on every machine).
#
# With STATIC=1 the command is also measured statically linked (glibc's
# static-pie), which starts a few hundred microseconds sooner:
#   RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --release -p ksymrelo-cli --target x86_64-unknown-linux-gnu
#
# Needs root (libbpf loads the program), hyperfine, python3, libbpf-dev,
# make and pkg-config (libbpf-sys).
# Usage: bench/whole_process.sh [-r RUNS] [-w WARMUP] [OBJECT...]
#   (default: 30 runs and 3 warm-up runs per command)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=30
warmup=3
while getopts "r:w:" opt; do
    case $opt in
        r) runs=$OPTARG ;;
        w) warmup=$OPTARG ;;
        *) echo "usage: $0 [-r RUNS] [-w WARMUP] [OBJECT...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
. bench/harnesses.sh
bench_objects "$@"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q -j1 --release -p ksymrelo-cli
cargo build -q -j1 --release -p ksymrelo-ffi
dynamic=./target/release/ksymrelo
# A C loader linking libksymrelo (statically: no library path to set up).
gcc -O2 -o "$work/c_relocate" bench/c_relocate.c -Iffi/include target/release/libksymrelo.a \
    -lgcc_s -lpthread -ldl -lm
if [ "${STATIC:-0}" = 1 ]; then
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build -q -j1 --release -p ksymrelo-cli --target x86_64-unknown-linux-gnu --target-dir target/static
    static=./target/static/x86_64-unknown-linux-gnu/release/ksymrelo
fi

build_libbpf_harnesses "$work"
for v in 11 17; do
    echo "libbpf_dump $v: $("$work/libbpf${v}_dump" --version)"
done

for obj in "${objects[@]}"; do
    name=$(basename "$obj" .bpf.o)
    externs=$("$dynamic" resolve --json --mode user "$obj" | python3 -c '
import json, sys
print(len(json.load(sys.stdin)["externs"]))')
    echo "measuring $obj ($externs externs), $runs runs per command"
    cmds=(
        -n "libbpf 1.1" "$work/libbpf11_dump $obj"
        -n "libbpf 1.7" "$work/libbpf17_dump $obj"
        -n "ksymrelo --mode auto" "$dynamic resolve --json --mode auto $obj"
        -n "ksymrelo --mode kernel" "$dynamic resolve --json --mode kernel $obj"
        -n "ksymrelo --mode user" "$dynamic resolve --json --mode user $obj"
        -n "C loader (libksymrelo, default mode)" "$work/c_relocate $obj"
    )
    if [ -n "${static:-}" ]; then
        cmds+=(
            -n "ksymrelo --mode auto (static)" "$static resolve --json --mode auto $obj"
            -n "ksymrelo --mode kernel (static)" "$static resolve --json --mode kernel $obj"
        )
    fi
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" \
        --export-json "$work/$name.json" "${cmds[@]}" >"$work/$name.log"
    echo "$name $externs" >>"$work/objects"
    # A warm handle relocating again, against its first call.
    echo "$name: C loader, $("$work/c_relocate" "$obj" 200)"
done

python3 - "$work" <<'EOF'
import json, os, sys
work = sys.argv[1]
print()
print(f"{'object':12} {'externs':>7}  {'command':38} {'median':>10} {'vs 1.1':>8} {'vs 1.7':>8}")
for line in open(os.path.join(work, "objects")):
    name, externs = line.split()
    results = json.load(open(os.path.join(work, name + ".json")))["results"]
    median = {r["command"]: r["median"] for r in results}
    v11, v17 = median["libbpf 1.1"], median["libbpf 1.7"]
    for r in results:
        m = r["median"]
        print(f"{name:12} {externs:>7}  {r['command']:38} {m * 1e3:7.2f} ms {v11 / m:7.1f}x {v17 / m:7.1f}x")
EOF
