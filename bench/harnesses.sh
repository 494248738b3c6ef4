# Sourced by the whole-process benches: builds the libbpf harness
# (tests/harness/libbpf_dump.c) against Debian's libbpf 1.1 and against
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
