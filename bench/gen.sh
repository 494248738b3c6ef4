#!/usr/bin/env bash
# Whole process, exec to loaded program fds, at 10, 100 and 1000 ksyms:
# ksymrelo's generated loaders against libbpf's bpf_object__load of the
# same object (tests/harness/libbpf_dump.c, linked against Debian's libbpf
# 1.1 and libbpf-sys's 1.7) and against the light skeleton Debian's
# `bpftool gen skeleton -L` makes of it, in one hyperfine run per object.
#
#   ksymrelo run FILE     the loader file of `ksymrelo gen -o FILE`, run by
#                         the command: extern types pre-flighted in user
#                         space, then the loader
#   ksymrelo header       a C program around `ksymrelo gen -o NAME.h`
#                         (the loader alone, like a light skeleton)
#   bpftool -L            a C program around bpftool's light skeleton
#
# Objects (default): tests/fixtures/mixed.bpf.o (11 externs) and
# many_100/many_1000 (105/1005 externs) generated from the running kernel
# (tests/src/generated.rs). Needs root, hyperfine, bpftool, libbpf-dev.
# Usage: bench/gen.sh [-r RUNS] [-w WARMUP] [OBJECT...]   (default 30, 3)
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
ksymrelo=$PWD/target/release/ksymrelo
build_libbpf_harnesses "$work"

for obj in "${objects[@]}"; do
    name=$(basename "$obj" .bpf.o)
    dir=$work/$name
    mkdir -p "$dir"
    cp "$obj" "$dir/obj.bpf.o"
    externs=$("$ksymrelo" resolve --json "$obj" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["externs"]))')
    "$ksymrelo" gen "$obj" -o "$dir/loader.ksymrelo"
    "$ksymrelo" gen "$obj" -o "$dir/kskel.h"
    printf '#include "kskel.h"\nint main(void)\n{\n\tstruct kskel s;\n\n\tif (kskel__load(&s))\n\t\treturn 1;\n\tkskel__close(&s);\n\treturn 0;\n}\n' >"$dir/kskel.c"
    gcc -O2 -I"$dir" -o "$dir/kskel" "$dir/kskel.c"
    bpftool gen skeleton -L "$dir/obj.bpf.o" name lskel >"$dir/lskel.h"
    printf '#include <errno.h>\n#include "lskel.h"\nint main(void)\n{\n\tstruct lskel *s = lskel__open_and_load();\n\n\tif (!s)\n\t\treturn 1;\n\tlskel__destroy(s);\n\treturn 0;\n}\n' >"$dir/lskel.c"
    gcc -O2 -I"$dir" -o "$dir/lskel" "$dir/lskel.c"
    for exe in "$dir/kskel" "$dir/lskel"; do
        "$exe" || { echo "bench/gen.sh: $exe failed on $obj" >&2; exit 1; }
    done
    "$ksymrelo" run "$dir/loader.ksymrelo" >/dev/null
    echo "measuring $name ($externs externs), $runs runs per command"
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$dir/times.json" \
        -n "libbpf 1.1 bpf_object__load" "$work/libbpf11_dump $obj" \
        -n "libbpf 1.7 bpf_object__load" "$work/libbpf17_dump $obj" \
        -n "bpftool 7.1 light skeleton" "$dir/lskel" \
        -n "ksymrelo run FILE" "$ksymrelo run $dir/loader.ksymrelo" \
        -n "ksymrelo header (C)" "$dir/kskel" >"$dir/hyperfine.log"
    echo "$name $externs" >>"$work/objects"
done

python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
print()
print(f"{'object':10} {'externs':>7}  {'command':30} {'median':>10} {'vs libbpf 1.7':>14} {'vs bpftool -L':>14}")
for line in open(os.path.join(work, "objects")):
    name, externs = line.split()
    results = json.load(open(os.path.join(work, name, "times.json")))["results"]
    median = {r["command"]: r["median"] for r in results}
    v17, lskel = median["libbpf 1.7 bpf_object__load"], median["bpftool 7.1 light skeleton"]
    for r in results:
        m = r["median"]
        print(f"{name:10} {externs:>7}  {r['command']:30} {m * 1e3:7.2f} ms {v17 / m:13.1f}x {lskel / m:13.2f}x")
PY
