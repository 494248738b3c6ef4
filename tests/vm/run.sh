#!/usr/bin/env bash
# Runs ksymrelo's kernel tests on real Debian kernels, with modules loaded,
# inside QEMU (TCG: /dev/kvm here is nested and far slower than emulation).
#
#   bash tests/vm/run.sh                       # every kernel below
#   bash tests/vm/run.sh 6.1                   # one kernel (its short name)
#   bash tests/vm/run.sh 6.12 -- typeless      # libtest name filters after --
#
# Nothing needs root: packages are fetched with `apt-get download`, unpacked
# with `dpkg-deb -x`, and the initramfs is a cpio archive of a staging
# directory (the guest mounts devtmpfs instead of us creating device nodes).
# Everything is cached under target/vm-cache/ and reused by later runs.
# Exits non-zero on any test failure, kernel panic, timeout or missing end
# line; without qemu it skips (exit 0) unless KSYMRELO_REQUIRE_KERNEL=1.
set -euo pipefail

# Kernels to test: a short name, then an extended regex that the Debian
# package name must match. The newest version apt knows is used. To add a
# kernel, add a line (and check its modules are in MODULES' reach).
KERNELS=(
    '6.1  ^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$'
    '6.12 ^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$'
)

# Modules loaded in the guest, so that module BTF (/sys/kernel/btf/nf_*) and
# module symbols in kallsyms exist as on a real machine. Their dependencies
# are added from modules.dep. crc32c_generic is listed by hand: libcrc32c
# only asks for "crc32c" through the crypto API at run time, which
# modules.dep does not record, and nf_conntrack then fails to load.
MODULES=(crc32c_generic libcrc32c x_tables nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack nf_nat)

# Test binaries to run in the guest: cargo package and integration test.
TESTS=(
    'ksymrelo-tests e2e'
    'ksymrelo-tests modules'
    'ksymrelo-std fd_leaks'
    'ksymrelo-cli cli'
    'ksymrelo-tests differential'
    'ksymrelo-tests module_lifetime'
    'ksymrelo-tests gen'
    'ksymrelo-tests sealed'
)

# Per-kernel expected failures (a fixture needs what a kernel lacks).
EXPECTED=$(dirname "$0")/expected-failures

TIMEOUT=${KSYMRELO_VM_TIMEOUT:-900} # seconds per kernel, boot to power-off (TCG on a busy 2-core machine: 6.12 has taken 500)
QEMU=${KSYMRELO_VM_QEMU:-qemu-system-x86_64}
# KSYMRELO_VM_FACTS=1 logs kallsyms facts and `ksymrelo resolve` of every
# fixture in the guest before the tests (about 30 s more per kernel).

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=$repo/target/vm-cache
here=$repo/tests/vm
target=x86_64-unknown-linux-gnu

say() { printf 'vm: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

# --- arguments: kernel short names, then `--` and libtest arguments ----------
selected=()
test_args=()
while (($#)); do
    case $1 in
    --)
        shift
        test_args=("$@")
        break
        ;;
    -h | --help)
        sed -n '2,14p' "$0"
        exit 0
        ;;
    *)
        selected+=("$1")
        shift
        ;;
    esac
done
if ((${#selected[@]} == 0)); then
    for k in "${KERNELS[@]}"; do selected+=("${k%% *}"); done
fi

known=$(for k in "${KERNELS[@]}"; do printf '%s ' "${k%% *}"; done)
for key in "${selected[@]}"; do
    [[ " $known" == *" $key "* ]] || die "unknown kernel '$key' (known: $known)"
done

if ! command -v "$QEMU" >/dev/null; then
    if [ "${KSYMRELO_REQUIRE_KERNEL:-}" = 1 ]; then
        die "$QEMU not found but KSYMRELO_REQUIRE_KERNEL=1 (install qemu-system-x86)"
    fi
    echo "=================================================================="
    echo "SKIP vm suite: $QEMU not found"
    echo "=================================================================="
    exit 0
fi
for tool in apt-get apt-cache dpkg-deb cpio depmod modprobe jq xz strip; do
    command -v "$tool" >/dev/null || die "$tool not found (bash .ci/setup installs it)"
done
mkdir -p "$cache/debs"
t_start=$SECONDS

# --- packages -----------------------------------------------------------------

# Prints the newest package name matching regex $1 that apt can download;
# falls back to the newest one already in the cache (offline runs).
newest_package() {
    local re=$1 prefix name
    # apt-cache pkgnames wants a literal prefix: the regex up to its first
    # backslash or bracket, e.g. "linux-image-6".
    prefix=${re#^}
    prefix=${prefix%%[\\\[]*}
    # Names apt merely heard of (e.g. from Provides) have no version in
    # madison's answer: only those with one are downloadable.
    name=$(apt-cache pkgnames "$prefix" 2>/dev/null | grep -E "$re" |
        xargs -r apt-cache madison 2>/dev/null | awk '{ print $1 }' |
        sort -uV | tail -n1) || true
    if [ -z "$name" ]; then
        name=$(find "$cache/debs" -name '*.deb' -printf '%f\n' | sed 's/_.*//' |
            grep -E "$re" | sort -V | tail -n1) || true
    fi
    [ -n "$name" ] || die "no package matches $re (apt-get update?)"
    echo "$name"
}

# Downloads package $1 into the cache (once per version) and prints the
# directory it is unpacked in.
fetch_package() {
    local name=$1 deb version dir
    version=$(apt-cache policy "$name" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    if [ -n "$version" ] && [ "$version" != "(none)" ]; then
        # apt escapes ':' (epochs) as %3a in file names.
        deb=$(find "$cache/debs" -name "${name}_${version/:/%3a}_*.deb" | head -n1)
        if [ -z "$deb" ]; then
            say "downloading $name $version"
            (cd "$cache/debs" && apt-get download -q "$name=$version" >&2)
            deb=$(find "$cache/debs" -name "${name}_${version/:/%3a}_*.deb" | head -n1)
        fi
    else
        deb=$(find "$cache/debs" -name "${name}_*.deb" | sort -V | tail -n1)
    fi
    [ -n "$deb" ] || die "cannot download $name"
    dir=$cache/x/$(basename "$deb" .deb)
    if [ ! -e "$dir/.done" ]; then
        say "unpacking $(basename "$deb")"
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg-deb -x "$deb" "$dir"
        touch "$dir/.done"
    fi
    echo "$dir"
}

# --- test binaries (static, so that they run under busybox) -------------------
# A separate target dir: crt-static in RUSTFLAGS would otherwise rebuild the
# normal target/ from scratch on every switch.
build_tests() {
    local args=() pt json
    for pt in "${TESTS[@]}"; do args+=(-p "${pt% *}" --test "${pt#* }"); done
    say "building static test binaries"
    # Optimized (debug assertions stay on): under TCG an unoptimized build
    # spends minutes scanning /proc/kallsyms. No debug info: it is stripped.
    # KSYMRELO_HARNESS_STATIC: tests/build.rs links the libbpf 1.7
    # differential harness statically too.
    json=$(RUSTFLAGS="-C target-feature=+crt-static" KSYMRELO_HARNESS_STATIC=1 \
        CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_DEV_DEBUG=0 \
        cargo test -j1 --no-run \
        --target "$target" --target-dir "$repo/target/vm-build" \
        --message-format=json "${args[@]}") || die "cargo build failed"
    bins=()
    for pt in "${TESTS[@]}"; do
        local exe
        exe=$(jq -r --arg pkg "${pt% *}" --arg t "${pt#* }" \
            'select(.reason == "compiler-artifact" and .profile.test
                    and .target.name == $t and (.package_id | contains($pkg)))
             | .executable // empty' <<<"$json" | tail -n1)
        [ -n "$exe" ] || die "no executable for ${pt} in cargo's output"
        bins+=("${pt#* }=$exe")
    done
    # The CLI tests run the `ksymrelo` binary at the absolute path compiled
    # into them (CARGO_BIN_EXE_ksymrelo): it goes to the same path in the guest.
    cli_exe=$(jq -r 'select(.reason == "compiler-artifact" and (.profile.test | not)
                            and .target.name == "ksymrelo" and (.target.kind | index("bin")))
                     | .executable // empty' <<<"$json" | tail -n1)
    [ -n "$cli_exe" ] || die "no ksymrelo binary in cargo's output"
    # The differential tests' libbpf harnesses: 1.7's at the path compiled
    # into them (KSYMRELO_LIBBPF17_DUMP, from tests/build.rs), 1.1's built
    # here (the guest has no compiler) and named by KSYMRELO_LIBBPF11_DUMP.
    harness17=$(jq -r 'select(.reason == "build-script-executed" and (.package_id | contains("ksymrelo-tests")))
                       | .env[]? | select(.[0] == "KSYMRELO_LIBBPF17_DUMP") | .[1]' <<<"$json" | tail -n1)
    [ -n "$harness17" ] || die "the libbpf 1.7 harness was not built (see tests/build.rs's warning)"
    harness11=$repo/target/vm-build/libbpf11_dump
    KSYMRELO_HARNESS_STATIC=1 bash "$repo/tests/harness/build.sh" "$harness11" ||
        die "cannot build the libbpf 1.1 harness (libbpf-dev installed?)"
}

# --- initramfs ----------------------------------------------------------------

# The part every kernel shares: busybox, init, test binaries, fixtures.
stage_common() {
    local stage=$1 bb=$2 b name exe lib
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,root,vm/bin}
    cp "$bb/bin/busybox" "$stage/bin/"
    for name in $("$bb/bin/busybox" --list); do
        [ -e "$stage/bin/$name" ] || ln -s busybox "$stage/bin/$name"
    done
    # busybox's setpriv lacks --bounding-set, which the CLI tests use to drop
    # capabilities: take util-linux's and the shared libraries it needs.
    if [ -x /usr/bin/setpriv ]; then
        rm -f "$stage/bin/setpriv"
        cp /usr/bin/setpriv "$stage/bin/setpriv"
        for lib in $(ldd /usr/bin/setpriv | grep -o '/[^ ]*'); do
            mkdir -p "$stage$(dirname "$lib")"
            cp -L "$lib" "$stage$lib"
        done
    fi
    cp "$here/init" "$stage/init"
    chmod 755 "$stage/init"
    for b in "${bins[@]}"; do
        name=${b%%=*}
        exe=${b#*=}
        # Stripped: debug info would triple the archive the kernel unpacks.
        strip -o "$stage/vm/bin/$name" "$exe"
    done
    mkdir -p "$stage$(dirname "$cli_exe")"
    strip -o "$stage$cli_exe" "$cli_exe"
    mkdir -p "$stage$(dirname "$harness17")"
    strip -o "$stage$harness17" "$harness17"
    strip -o "$stage/vm/bin/libbpf11_dump" "$harness11"
    # Fixtures at the absolute path compiled into the tests
    # (CARGO_MANIFEST_DIR of ksymrelo-tests; ksymrelo-std and ksymrelo-cli
    # reach them through ../tests/fixtures, so their directories must exist too).
    mkdir -p "$stage$repo/tests/fixtures" "$stage$repo/std-shim" "$stage$repo/cli"
    cp "$repo"/tests/fixtures/*.bpf.o "$stage$repo/tests/fixtures/"
}

# The kernel's part: its modules (decompressed, busybox insmod reads plain
# ELF only) with a depmod index, and their load order.
stage_modules() {
    local stage=$1 kdir=$2 release=$3 m ko src dst
    local mods=$kdir/lib/modules/$release
    local out=$stage/lib/modules/$release
    mkdir -p "$out"
    # The package ships no modules.dep (its postinst makes one): make it
    # once in the unpacked tree, where it gives each module's dependencies.
    [ -s "$mods/modules.dep" ] || depmod -b "$kdir" "$release"
    for m in "${MODULES[@]}"; do
        ko=$(grep -E "(^|/)${m//_/[_-]}\.ko(\.xz|\.zst)?:" "$mods/modules.dep" | head -n1) ||
            die "$m: not in $release's modules.dep"
        for src in ${ko/:/}; do
            dst=$out/${src%.xz}
            dst=${dst%.zst}
            [ -e "$dst" ] && continue
            mkdir -p "$(dirname "$dst")"
            case $src in
            *.xz) xz -dc "$mods/$src" >"$dst" ;;
            *.zst) zstd -qdc "$mods/$src" >"$dst" ;;
            *) cp "$mods/$src" "$dst" ;;
            esac
        done
    done
    cp "$mods"/modules.{order,builtin}* "$out/" 2>/dev/null || true
    depmod -b "$stage" "$release"
    # Load order: each module after its dependencies, as modprobe would.
    : >"$stage/vm/modules.order"
    for m in "${MODULES[@]}"; do
        modprobe -d "$stage" -S "$release" --show-depends "$m" |
            awk '$1 == "insmod" { print $2 }' | sed "s|^$stage/||" |
            while read -r ko; do
                grep -qxF "$ko" "$stage/vm/modules.order" || echo "$ko" >>"$stage/vm/modules.order"
            done
    done
}

# The fixtures generated from a kernel's kallsyms (many_100, many_1000;
# tests/src/generated.rs), made here for guest kernel $2 from the kallsyms
# tests/kernels/fetch.sh saved from a boot of it: the guest has no clang.
stage_generated() {
    local stage=$1 key=$2 kallsyms=$repo/target/kernels/debian-$2/kallsyms
    if [ ! -s "$kallsyms" ]; then
        say "[$key] no saved kallsyms: running tests/kernels/fetch.sh"
        bash "$repo/tests/kernels/fetch.sh" >&2 || die "tests/kernels/fetch.sh failed"
    fi
    [ -s "$kallsyms" ] || die "[$key] $kallsyms missing after tests/kernels/fetch.sh"
    (cd "$repo" && cargo run -q -j1 -p ksymrelo-tests --bin gen_fixtures -- \
        --kallsyms "$kallsyms" "$stage/vm/generated" >&2) ||
        die "[$key] cannot generate the kallsyms fixtures"
}

# --- expected failures --------------------------------------------------------

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    echo "${s%"${s##*[![:space:]]}"}"
}

# Prints "binary|test|text" for kernel $1's expected failures that the
# libtest name filters given after `--` (if any) select.
expected_failures() {
    local key=$1 k b n text a keep skip_next
    while IFS='|' read -r k b n text; do
        [[ $k =~ ^[[:space:]]*(#|$) ]] && continue
        [ "$(trim "$k")" = "$key" ] || continue
        b=$(trim "$b")
        n=$(trim "$n")
        # Selected unless name filters were given and none is part of it,
        # or a --skip names part of it (libtest's rules, roughly).
        keep=1 skip_next=
        for a in "${test_args[@]}"; do
            if [ -n "$skip_next" ]; then
                skip_next=
                [[ $n == *"$a"* ]] && keep=0 && break
                continue
            fi
            if [[ $a == -* ]]; then
                [ "$a" = --skip ] && skip_next=1
                continue
            fi
            [ "$keep" = 1 ] && keep=0
            [[ $n == *"$a"* ]] && keep=2
        done
        [ "$keep" != 0 ] && echo "$b|$n|$(trim "$text")"
    done <"$EXPECTED"
}

# Checks, in serial log $2, that each expected failure of kernel $1 failed
# with its text. Prints what is wrong; returns non-zero if anything is.
check_expected() {
    local key=$1 log=$2 b n text line bad=0
    while IFS='|' read -r b n text; do
        line=$(grep -a -m1 "^test $n \.\.\. " "$log" || true)
        case $line in
        *" ... FAILED")
            if awk -v head="---- $n stdout ----" '
                    $0 == head { on = 1; next }
                    on && (/^---- / || /^failures:$/) { exit }
                    on { print }' "$log" | grep -qF -- "$text"; then
                say "[$key] expected failure: $b $n"
            else
                say "[$key] $b $n failed, but not as expected (without: $text)"
                bad=1
            fi
            ;;
        *" ... ok")
            say "[$key] $b $n PASSED but is listed in $EXPECTED: remove the line"
            bad=1
            ;;
        *)
            say "[$key] $b $n (an expected failure) did not run"
            bad=1
            ;;
        esac
    done < <(expected_failures "$key")
    return $bad
}

# --- one kernel ---------------------------------------------------------------

run_kernel() {
    local key=$1 re=$2 pkg kdir release stage initrd log token t0 rc status
    t0=$SECONDS
    pkg=$(newest_package "$re")
    kdir=$(fetch_package "$pkg")
    release=$(ls "$kdir/lib/modules")
    say "[$key] $pkg ($release)"

    stage=$cache/stage-$key
    initrd=$cache/$key.initrd
    log=$cache/$key.log
    stage_common "$stage" "$busybox_dir"
    stage_modules "$stage" "$kdir" "$release"
    stage_generated "$stage" "$key"

    token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    {
        echo "VM_TOKEN=$token"
        echo "VM_TESTS='${bins[*]%%=*}'"
        printf 'VM_ARGS=%q\n' "${test_args[*]:-}"
        echo "VM_XFAIL='$(expected_failures "$key" | cut -d'|' -f1,2 | tr '|\n' ': ')'"
        echo "VM_REQUIRE=${KSYMRELO_REQUIRE_KERNEL:-0}"
        echo "VM_FACTS=${KSYMRELO_VM_FACTS:-0}"
        echo "VM_CLI=$cli_exe"
        echo "VM_LIBBPF11=/vm/bin/libbpf11_dump"
        echo "VM_FIXTURES=$repo/tests/fixtures"
        echo "VM_GENERATED=/vm/generated"
    } >"$stage/vm/conf"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc --owner=0:0 --quiet) >"$initrd"
    say "[$key] initramfs $(du -h "$initrd" | cut -f1), booting (timeout ${TIMEOUT}s)"

    rc=0
    timeout "$TIMEOUT" "$QEMU" -accel tcg -cpu max -m 1G -smp 1 \
        -nographic -no-reboot \
        -kernel "$kdir/boot/vmlinuz-$release" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 oops=panic quiet" \
        </dev/null >"$log" 2>&1 || rc=$?
    times+=("$key: $((SECONDS - t0)) s")

    # The serial console ends lines with CR LF.
    tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
    status=$(sed -n "s/^KSYMRELO-VM-END $token status=\([0-9]*\)$/\1/p" "$log")
    local why= xbad=
    if [ -n "$status" ]; then check_expected "$key" "$log" || xbad=1; fi
    if ((rc == 124)); then
        why="timed out after ${TIMEOUT}s"
    elif grep -aq 'Kernel panic' "$log"; then
        why="kernel panic"
    elif [ -z "$status" ]; then
        why="no end line in the log (qemu exit $rc)"
    elif [ "$status" != 0 ]; then
        why="tests failed in the guest (status $status)"
    elif [ -n "$xbad" ]; then
        why="expected failures did not fail as expected"
    fi
    if [ -n "$why" ]; then
        say "[$key] FAILED: $why; log $log, its end:"
        tail -n 60 "$log" >&2
        failed+=("$key")
    else
        grep -a -e '^test result:' -e '^SKIPPED ' -e '^vm: running' "$log" | sed "s/^vm: //; s/^/vm: [$key] /" >&2
        say "[$key] passed in $((SECONDS - t0)) s; log $log"
    fi
}

# --- main ---------------------------------------------------------------------
build_tests
say "build done in $((SECONDS - t_start)) s"
busybox_dir=$(fetch_package busybox-static)
failed=()
times=()
for key in "${selected[@]}"; do
    for k in "${KERNELS[@]}"; do
        [ "${k%% *}" = "$key" ] && run_kernel "$key" "$(trim "${k#* }")"
    done
done
say "times: ${times[*]}; total $((SECONDS - t_start)) s"
if ((${#failed[@]})); then
    say "FAILED on: ${failed[*]}"
    exit 1
fi
say "all kernels passed"
