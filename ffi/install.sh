#!/usr/bin/env bash
# Installs the C library of ksymrelo.
#
# Usage: ffi/install.sh [--prefix PREFIX] [--destdir DESTDIR] [--libdir LIBDIR]
#                       [--no-build]
#
#   --prefix PREFIX    where the library will live (default /usr/local)
#   --libdir LIBDIR    absolute directory for the libraries (default PREFIX/lib)
#   --destdir DESTDIR  stage the installation under DESTDIR (packaging); the
#                      DESTDIR environment variable is honoured too, as with
#                      `make install`; the option wins over the variable
#   --no-build         install what the last `cargo build --release -p
#                      ksymrelo-ffi` left in the target directory
#
# Builds `cargo build --release -p ksymrelo-ffi` ($CARGO or cargo; the target
# directory is the one cargo reports, so CARGO_TARGET_DIR is honoured), then
# installs under DESTDIR+PREFIX:
#
#   LIBDIR/libksymrelo.so.X.Y.Z        shared library, strip --strip-unneeded
#   LIBDIR/libksymrelo.so.0            -> libksymrelo.so.X.Y.Z (the SONAME)
#   LIBDIR/libksymrelo.so              -> libksymrelo.so.0 (for -lksymrelo)
#   LIBDIR/libksymrelo.a               static library, strip --strip-debug
#   LIBDIR/pkgconfig/ksymrelo.pc       from ffi/ksymrelo-installed.pc.in
#   PREFIX/include/ksymrelo.h          needs <linux/bpf.h> (linux-libc-dev)
#
# X.Y.Z is the workspace version (Cargo.toml, [workspace.package]). Needs
# binutils (strip, readelf). Without DESTDIR and as root, runs ldconfig.
set -euo pipefail

usage() {
    sed -n '4,5s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

prefix=/usr/local
libdir=
destdir=${DESTDIR:-}
build=1
while (($#)); do
    case $1 in
    --prefix) (($# >= 2)) || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --libdir) (($# >= 2)) || usage; libdir=$2; shift 2 ;;
    --libdir=*) libdir=${1#*=}; shift ;;
    --destdir) (($# >= 2)) || usage; destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
libdir=${libdir:-$prefix/lib}
libdir=${libdir%/}
for d in "$prefix" "$libdir"; do
    case $d in
    /*) ;;
    *) echo "install.sh: $d: PREFIX and LIBDIR must be absolute" >&2; exit 2 ;;
    esac
done
includedir=${prefix%/}/include
pcdir=$libdir/pkgconfig

ffi=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$ffi")
cargo=${CARGO:-cargo}

# The version: the first `version = "..."` of [workspace.package].
version=$(awk '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && /^version[ \t]*=/ {
        sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit
    }' "$root/Cargo.toml")
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "install.sh: no version in [workspace.package] of $root/Cargo.toml" >&2
    exit 1
fi

if ((build)); then
    (cd "$root" && "$cargo" build --release -p ksymrelo-ffi)
fi
target=
if command -v "$cargo" >/dev/null; then
    target=$(cd "$root" && "$cargo" metadata --format-version 1 --no-deps 2>/dev/null |
        grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//') || true
fi
target=${target:-${CARGO_TARGET_DIR:-$root/target}}
so=$target/release/libksymrelo.so
archive=$target/release/libksymrelo.a
for f in "$so" "$archive" "$ffi/include/ksymrelo.h" "$ffi/ksymrelo-installed.pc.in"; do
    [ -f "$f" ] || { echo "install.sh: missing $f (build with cargo build --release -p ksymrelo-ffi)" >&2; exit 1; }
done

# The SONAME the library was linked with (ffi/build.rs) names the middle link.
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
case $soname in
libksymrelo.so.*) ;;
*) echo "install.sh: $so has no SONAME libksymrelo.so.N (got '$soname')" >&2; exit 1 ;;
esac
real=libksymrelo.so.$version

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
strip --strip-unneeded -o "$stage/$real" "$so"
strip --strip-debug -o "$stage/libksymrelo.a" "$archive"

# libdir and includedir relative to the prefix where they are under it, so
# the .pc can be relocated by editing one line.
pc_libdir=$libdir
case $libdir in
"$prefix"/*) [ "$prefix" = / ] || pc_libdir="\${exec_prefix}${libdir#"$prefix"}" ;;
esac
# A sed replacement text: escape \, & and the | delimiter.
sed_text() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
sed -e "s|@PREFIX@|$(sed_text "$prefix")|g" \
    -e "s|@LIBDIR@|$(sed_text "$pc_libdir")|g" \
    -e "s|@INCLUDEDIR@|\${prefix}/include|g" \
    -e "s|@VERSION@|$version|g" \
    "$ffi/ksymrelo-installed.pc.in" >"$stage/ksymrelo.pc"

dest_lib=$destdir$libdir
install -d -m 0755 "$dest_lib" "$destdir$pcdir" "$destdir$includedir"
install -m 0755 "$stage/$real" "$dest_lib/$real"
ln -sfn "$real" "$dest_lib/$soname"
ln -sfn "$soname" "$dest_lib/libksymrelo.so"
install -m 0644 "$stage/libksymrelo.a" "$dest_lib/libksymrelo.a"
install -m 0644 "$ffi/include/ksymrelo.h" "$destdir$includedir/ksymrelo.h"
install -m 0644 "$stage/ksymrelo.pc" "$destdir$pcdir/ksymrelo.pc"

if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then
    ldconfig
fi
echo "installed ksymrelo $version under ${destdir:-}$prefix: $dest_lib/$real ($soname), libksymrelo.a, $destdir$includedir/ksymrelo.h, $destdir$pcdir/ksymrelo.pc"
