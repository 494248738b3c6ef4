#!/usr/bin/env bash
# Extracts the kernel facts `ksymrelo check` reads from Debian's kernel
# packages, for the check tests and bench/check.sh:
#
#   target/kernels/debian-<short>/btf/vmlinux        vmlinux BTF (.BTF of the ELF)
#   target/kernels/debian-<short>/btf/<module>       split BTF of a few modules
#   target/kernels/debian-<short>/kallsyms           /proc/kallsyms, those modules loaded
#
#   bash tests/kernels/fetch.sh            # every kernel below
#   bash tests/kernels/fetch.sh --offline  # use cached .debs only, never apt
#
# Packages are looked for in $KSYMRELO_DEBS (a directory), then in
# target/vm-cache/debs (where tests/vm/run.sh keeps them), and otherwise
# fetched there with `apt-get download`. Nothing needs root. A kernel already
# extracted from the same package is left alone. Exits 0 having extracted
# every kernel it found a package for; prints `SKIP <kernel>` for the others
# (and exits 1 for them if KSYMRELO_REQUIRE_KERNEL=1).
#
# kallsyms: Debian's package ships a placeholder System.map (the real one is
# in the -dbg package, about 1 GB), and the vmlinux inside vmlinuz has no
# symbol table. So the kernel is booted in QEMU (TCG, about 10-20 s), with
# an initramfs of busybox and the modules below, and its /proc/kallsyms is
# read back over a second serial port. Without qemu the kernel directory
# gets no kallsyms file (`ksymrelo check` then says `no kallsyms` for its
# typeless ksyms).
set -euo pipefail

# A short name, then an extended regex the package file name must match
# (the same kernels as tests/vm/run.sh).
KERNELS=(
    '6.1  ^linux-image-6\.1\.0-[0-9]+-amd64-unsigned_'
    '6.12 ^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned_'
)
# Modules whose BTF is extracted (as /sys/kernel/btf would list them once
# loaded).
MODULES=(x_tables nf_defrag_ipv4 nf_conntrack nf_nat)
QEMU=${KSYMRELO_VM_QEMU:-qemu-system-x86_64}

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/target/kernels
cache=$repo/target/vm-cache/debs
offline=0
[ "${1:-}" = --offline ] && offline=1

say() { printf 'fetch: %s\n' "$*" >&2; }
skip() {
    say "SKIP $1: $2"
    if [ "${KSYMRELO_REQUIRE_KERNEL:-}" = 1 ]; then exit 1; fi
}

# The newest cached .deb whose file name matches regex $1.
cached_deb() {
    local dir
    for dir in ${KSYMRELO_DEBS:+"$KSYMRELO_DEBS"} "$cache"; do
        [ -d "$dir" ] || continue
        # No match is an empty answer, not a failure (pipefail, set -e).
        { find -L "$dir" -maxdepth 1 -name '*.deb' -printf '%f\n' | grep -E "$1" || true; } | sort -V | tail -n1 |
            sed "s|^|$dir/|"
    done | head -n1
}

# Downloads the newest package matching regex $1 (file name) into the cache.
download_deb() {
    local re=$1 name prefix
    command -v apt-get >/dev/null || return 0
    prefix=${re#^}
    prefix=${prefix%%[\\[]*}
    prefix=${prefix%_}
    name=$(apt-cache pkgnames "$prefix" 2>/dev/null | sed 's/$/_/' | grep -E "$re" | sed 's/_$//' |
        xargs -r apt-cache madison 2>/dev/null | awk '{ print $1 }' | sort -uV | tail -n1) || true
    [ -n "$name" ] || return 0
    mkdir -p "$cache"
    say "downloading $name"
    (cd "$cache" && apt-get download -q "$name" >&2) || true
}

# Decompresses the vmlinux ELF inside bzImage $1 to $2: the payload starts
# at a compressor's magic; the first offset that decompresses to an ELF wins.
extract_vmlinux() {
    local image=$1 dest=$2 magic tool off
    for pair in '\xfd7zXZ\x00:xz -dcq' '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dcq' \
        '\x02\x21\x4c\x18:lz4 -dcq' 'BZh:bzip2 -dcq' '\x5d\x00\x00:xz -F lzma -dcq'; do
        magic=${pair%%:*}
        tool=${pair#*:}
        command -v "${tool%% *}" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
            # Trailing data after the stream makes the tools complain: the
            # output is judged by its ELF header instead.
            tail -c +$((off + 1)) "$image" | $tool >"$dest" 2>/dev/null || true
            if [ "$(head -c4 "$dest" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
                return 0
            fi
        done
    done
    rm -f "$dest"
    return 1
}

# Writes the .BTF section of ELF $1 to $2.
btf_section() {
    local objcopy
    objcopy=$(command -v llvm-objcopy-19 || command -v llvm-objcopy || command -v objcopy)
    # --dump-section, not -O binary: a module's .BTF is not an allocated
    # section, and -O binary writes only those.
    rm -f "$2"
    "$objcopy" --dump-section ".BTF=$2" "$1" "$2.elf" && rm -f "$2.elf"
    [ -s "$2" ]
}

# Boots kernel image $2 (package unpacked in $1) with MODULES loaded and
# writes its /proc/kallsyms to $3.
boot_kallsyms() {
    local x=$1 image=$2 dest=$3 release mods stage bb m ko src dst
    release=$(ls "$x/lib/modules")
    mods=$x/lib/modules/$release
    stage=$tmp/stage
    bb=$(cached_deb '^busybox-static_')
    if [ -z "$bb" ] && ((offline == 0)); then
        download_deb '^busybox-static_'
        bb=$(cached_deb '^busybox-static_')
    fi
    [ -n "$bb" ] || { say "no busybox-static package"; return 1; }
    dpkg-deb -x "$bb" "$tmp/bb"
    mkdir -p "$stage"/{bin,proc,sys,dev,tmp}
    cp "$tmp/bb/bin/busybox" "$stage/bin/"
    for m in sh mount insmod cat gzip poweroff stty sleep; do ln -s busybox "$stage/bin/$m"; done
    [ -s "$mods/modules.dep" ] || depmod -b "$x" "$release"
    mkdir -p "$stage/lib/modules/$release"
    # crc32c_generic: libcrc32c asks for "crc32c" through the crypto API
    # at run time, which modules.dep does not record.
    : >"$stage/modules.order"
    for m in crc32c_generic libcrc32c "${MODULES[@]}"; do
        modprobe -d "$x" -S "$release" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }' |
            while read -r src; do
                dst=${src#"$mods/"}
                dst=${dst%.xz}
                dst=${dst%.zst}
                grep -qxF "$dst" "$stage/modules.order" && continue
                mkdir -p "$stage/$(dirname "$dst")"
                case $src in
                *.xz) xz -dc "$src" >"$stage/$dst" ;;
                *.zst) zstd -qdc "$src" >"$stage/$dst" ;;
                *) cp "$src" "$stage/$dst" ;;
                esac
                echo "$dst" >>"$stage/modules.order"
            done
    done
    cat >"$stage/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "/$ko" || echo "fetch-vm: insmod $ko failed"; done </modules.order
stty -F /dev/ttyS1 raw -echo 115200
cat /proc/kallsyms | gzip -1 >/dev/ttyS1
echo "fetch-vm: kallsyms written"
sleep 1
poweroff -f
INIT
    chmod 755 "$stage/init"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) >"$tmp/initrd"
    say "booting $release in QEMU for its kallsyms"
    timeout "${KSYMRELO_VM_TIMEOUT:-150}" "$QEMU" -accel tcg -cpu max -m 512M -smp 1 -nographic -no-reboot \
        -kernel "$image" -initrd "$tmp/initrd" -append "console=ttyS0 panic=-1 quiet nokaslr" \
        -serial "file:$(dirname "$dest")/boot.log" -serial "file:$tmp/kallsyms.gz" -monitor none \
        </dev/null >/dev/null 2>&1 || true
    grep -q 'fetch-vm: kallsyms written' "$(dirname "$dest")/boot.log" || return 1
    gzip -dc "$tmp/kallsyms.gz" >"$dest" 2>/dev/null || true
    # A truncated stream still decompresses in part: only whole files count.
    gzip -t "$tmp/kallsyms.gz" || { rm -f "$dest"; return 1; }
    rm -f "$(dirname "$dest")/boot.log"
}

for k in "${KERNELS[@]}"; do
    short=${k%% *}
    re=${k##* }
    deb=$(cached_deb "$re")
    if [ -z "$deb" ] && ((offline == 0)); then
        download_deb "$re"
        deb=$(cached_deb "$re")
    fi
    if [ -z "$deb" ]; then
        skip "debian-$short" "no package matching $re (in \$KSYMRELO_DEBS or $cache; apt-get download failed or --offline)"
        continue
    fi
    dir=$out/debian-$short
    # Up to date: same package, and kallsyms unless it cannot be had here.
    if [ -f "$dir/source" ] && [ "$(cat "$dir/source")" = "$(basename "$deb")" ] &&
        { [ -f "$dir/kallsyms" ] || ! command -v "$QEMU" >/dev/null; }; then
        say "debian-$short: up to date ($(basename "$deb"))"
        continue
    fi
    say "debian-$short: extracting $(basename "$deb")"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ksymrelo-fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    dpkg-deb -x "$deb" "$tmp/x"
    rm -rf "$dir"
    mkdir -p "$dir/btf"
    image=$(find "$tmp/x/boot" -name 'vmlinuz-*' | head -n1)
    extract_vmlinux "$image" "$tmp/vmlinux" || {
        skip "debian-$short" "no compressed vmlinux found in $image"
        continue
    }
    btf_section "$tmp/vmlinux" "$dir/btf/vmlinux"
    for m in "${MODULES[@]}"; do
        ko=$(find "$tmp/x/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
        [ -n "$ko" ] || { say "debian-$short: no module $m"; continue; }
        case $ko in
        *.xz) xz -dc "$ko" >"$tmp/$m.ko" ;;
        *.zst) zstd -dcq "$ko" >"$tmp/$m.ko" ;;
        *) cp "$ko" "$tmp/$m.ko" ;;
        esac
        btf_section "$tmp/$m.ko" "$dir/btf/$m"
    done
    if command -v "$QEMU" >/dev/null; then
        boot_kallsyms "$tmp/x" "$image" "$dir/kallsyms" ||
            say "debian-$short: no kallsyms (the boot failed: see $dir/boot.log)"
    else
        say "debian-$short: no kallsyms ($QEMU not found)"
    fi
    basename "$deb" >"$dir/source"
    rm -rf "$tmp"
    trap - EXIT
    say "debian-$short: $(du -sh "$dir" | cut -f1) in $dir"
done
