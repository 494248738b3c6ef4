#!/usr/bin/env bash
# Whole process, as a user meets it: every command runs right after
# libbpf's load of the same object (tests/harness/libbpf_dump.c), so it
# finds the caches as another process left them. One alternating run
# (bench/alternate.c) per object: libbpf, ksymrelo resolve --json,
# libbpf, the C client (bench/c_relocate.c: ksymrelo_kernel_open_live +
# one relocation), libbpf, /bin/true; medians of every position, the
# speed-up over libbpf and the distance to /bin/true measured the same way.
# Then the warm handle: c_relocate relocating again on the same handle.
#
# libbpf: built from a libbpf source tree, LIBBPF_SRC (default
# target/libbpf18-src, a checkout of github.com/libbpf/libbpf at 1.8);
# without one, libbpf-sys's vendored 1.7. Needs root (libbpf loads the
# program), gcc, make, libelf-dev, zlib.
# BEFORE=path/to/an/older/ksymrelo adds that binary's resolve --json (and
# --no-btf-facts, this one walking vmlinux BTF every run) to the rotation.
# Usage: bench/alternate.sh [-r PAIRS] [OBJECT...]   (default 21 pairs;
# objects: mixed.bpf.o, many_100.bpf.o, many_1000.bpf.o)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=21
while getopts "r:" opt; do
    case $opt in
        r) pairs=$OPTARG ;;
        *) echo "usage: $0 [-r PAIRS] [OBJECT...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
. bench/harnesses.sh
bench_objects "$@"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build -q -j1 --release -p ksymrelo-cli
cargo build -q -j1 --release -p ksymrelo-ffi
cmd=$PWD/target/release/ksymrelo
gcc -O2 -o "$work/c_relocate" bench/c_relocate.c -Iffi/include target/release/libksymrelo.a \
    -lgcc_s -lpthread -ldl -lm
gcc -O2 -Wall -o "$work/alternate" bench/alternate.c

src=${LIBBPF_SRC:-target/libbpf18-src}
if [ -f "$src/src/Makefile" ]; then
    build_libbpf_source_harness "$work" "$src" libbpf_dump
else
    echo "no libbpf source at $src (LIBBPF_SRC): measuring libbpf-sys's 1.7" >&2
    build_libbpf_harnesses "$work"
    mv "$work/libbpf17_dump" "$work/libbpf_dump"
fi
libbpf=$work/libbpf_dump
echo "libbpf: $("$libbpf" --version); ksymrelo: $(git rev-parse --short HEAD); $pairs pairs per command"

printf '\n%-16s %8s  %-26s %9s %8s %12s\n' object externs command median "vs libbpf" "- /bin/true"
for obj in "${objects[@]}"; do
    name=$(basename "$obj" .bpf.o)
    externs=$("$cmd" resolve --json --mode user "$obj" | python3 -c '
import json, sys
print(len(json.load(sys.stdin)["externs"]))')
    # The per-boot files exist (as after any earlier run this boot).
    "$cmd" resolve --json "$obj" >/dev/null
    extra=()
    if [ -n "${BEFORE:-}" ]; then
        extra=(:: "$BEFORE" resolve --json "$obj" :: "$cmd" resolve --json --no-btf-facts "$obj")
    fi
    "$work/alternate" "$pairs" "$libbpf" "$obj" \
        :: "$cmd" resolve --json "$obj" \
        :: "$work/c_relocate" "$obj" \
        :: /bin/true "${extra[@]}" >"$work/out"
    python3 - "$work/out" "$name" "$externs" <<'PY'
import sys
rows = [float(l.split("\t")[0]) for l in open(sys.argv[1])]
libbpf, command, c_client, true = rows[:4]
name, externs = sys.argv[2], sys.argv[3]
labels = [("libbpf", libbpf), ("ksymrelo resolve --json", command),
          ("C client (libksymrelo)", c_client), ("/bin/true", true)]
if len(rows) == 6:
    labels += [("BEFORE resolve --json", rows[4]), ("resolve --no-btf-facts", rows[5])]
for label, m in labels:
    print(f"{name:16} {externs:>8}  {label:26} {m:6.2f} ms {libbpf / m:7.1f}x {m - true:+9.2f} ms")
PY
    echo "$name warm handle (C, 200 rounds): $("$work/c_relocate" "$obj" 200)"
done
