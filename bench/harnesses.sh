# Sourced by the benches: the objects to measure (bench_objects), and the
# libbpf harness (tests/harness/libbpf_dump.c) built against Debian's libbpf 1.1 and against
# libbpf-sys's vendored 1.7 (built here in release; its build script
# installs libbpf.a and its headers in its OUT_DIR, which cargo reports as
# the script's `out_dir`), as "$1/libbpf11_dump" and "$1/libbpf17_dump".
build_libbpf_harnesses() {
    local work=$1 libbpf17
    bash tests/harness/build.sh "$work/libbpf11_dump" >/dev/null
    libbpf17=$(cargo build -j1 --release -p libbpf-sys --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "libbpf-sys" in m["package_id"]:
        print(m["out_dir"])
')
    bash tests/harness/build.sh "$work/libbpf17_dump" "$libbpf17" >/dev/null
}

# Builds the harness against libbpf built from a source tree (a checkout of
# github.com/libbpf/libbpf; its src/Makefile) as "$1/$3": the way to
# measure a libbpf no package or crate ships yet (1.8).
build_libbpf_source_harness() {
    local work=$1 src=$2 name=$3 dir
    dir=$work/$name.lib
    mkdir -p "$dir"
    make -s -C "$src/src" -j2 BUILD_STATIC_ONLY=1 OBJDIR="$dir/obj" DESTDIR="$dir/inst" PREFIX= LIBDIR=/lib \
        install >/dev/null
    cp "$dir/inst/lib/libbpf.a" "$dir/libbpf.a"
    rm -rf "$dir/include" && cp -r "$dir/inst/include" "$dir/include"
    bash tests/harness/build.sh "$work/$name" "$dir" >/dev/null
}

# The objects a bench measures, into the array `objects`: those given, or
# the fixture mixed.bpf.o and this kernel's generated many_100/many_1000.
bench_objects() {
    objects=("$@")
    if [ ${#objects[@]} -eq 0 ]; then
        local generated
        generated=$(cargo run -q -p ksymrelo-tests --bin gen_fixtures)
        objects=(tests/fixtures/mixed.bpf.o "$generated/many_100.bpf.o" "$generated/many_1000.bpf.o")
    fi
}
