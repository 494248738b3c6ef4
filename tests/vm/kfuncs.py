#!/usr/bin/env python3
"""Lists the kfuncs of a packaged kernel and of its modules, offline.

    python3 tests/vm/kfuncs.py VMLINUZ [MODULE.ko[.xz|.zst] ...]

Debian's kernels carry no `bpf_kfunc` decl tags in their BTF (their pahole is
too old), so kfuncs are found the way the kernel registers them: arrays in
the `.BTF_ids` section shaped like a kfunc id set (u32 count, u32 flags of 0
or 1, then count pairs of a BTF id and u32 flags), whose every id is a FUNC
of the object's BTF. A heuristic, but one that agrees with the decl tags of
a newer kernel on the functions both have.

Needs bpftool, objcopy, and zstd for kernels compressed with it. Prints one
line per object: its name and its kfuncs, sorted.
"""

import lzma
import os
import re
import struct
import subprocess
import sys
import tempfile


def vmlinux_from_bzimage(data):
    """The ELF vmlinux inside a bzImage: the first compressed stream that
    decompresses to an ELF header (xz and zstd are what Debian uses)."""
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd")):
        at = data.find(magic)
        while at >= 0:
            try:
                if kind == "xz":
                    out = lzma.LZMADecompressor().decompress(data[at:])
                else:
                    out = subprocess.run(
                        ["zstd", "-dc"], input=data[at:], capture_output=True
                    ).stdout
                if out[:4] == b"\x7fELF":
                    return out
            except lzma.LZMAError:
                pass
            at = data.find(magic, at + 1)
    sys.exit("no compressed ELF found in the kernel image")


def section(elf_path, name, tmp):
    """Bytes of section `name` of an ELF file (empty if it has none)."""
    out = os.path.join(tmp, "section")
    r = subprocess.run(
        ["objcopy", "--dump-section", f"{name}={out}", elf_path, os.path.join(tmp, "scratch")],
        capture_output=True,
    )
    if r.returncode != 0:
        return b""
    with open(out, "rb") as f:
        return f.read()


def btf_funcs(btf_path, base=None):
    """BTF id -> name of every FUNC (split BTF over `base` for modules)."""
    cmd = ["bpftool"] + (["-B", base] if base else []) + ["btf", "dump", "file", btf_path]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return {int(m[1]): m[2] for m in re.finditer(r"^\[(\d+)\] FUNC '([^']+)'", text, re.M)}


def kfunc_sets(ids_section, funcs):
    words = struct.unpack(f"<{len(ids_section) // 4}I", ids_section[: len(ids_section) // 4 * 4])
    found, i = set(), 0
    while i + 2 < len(words):
        count, flags = words[i], words[i + 1]
        end = i + 2 + 2 * count
        if 1 <= count <= 1000 and flags in (0, 1) and end <= len(words):
            ids, id_flags = words[i + 2 : end : 2], words[i + 3 : end : 2]
            if all(x in funcs for x in ids) and all(f < 1 << 16 for f in id_flags):
                found.update(funcs[x] for x in ids)
                i = end
                continue
        i += 1
    return sorted(found)


def plain(path, tmp):
    """A decompressed copy of a module if it is compressed."""
    if path.endswith(".xz"):
        out = os.path.join(tmp, os.path.basename(path)[:-3])
        with lzma.open(path) as src, open(out, "wb") as dst:
            dst.write(src.read())
        return out
    if path.endswith(".zst"):
        out = os.path.join(tmp, os.path.basename(path)[:-4])
        subprocess.run(["zstd", "-qdf", path, "-o", out], check=True)
        return out
    return path


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        vmlinux = os.path.join(tmp, "vmlinux")
        with open(sys.argv[1], "rb") as f, open(vmlinux, "wb") as out:
            out.write(vmlinux_from_bzimage(f.read()))
        base = os.path.join(tmp, "vmlinux.btf")
        with open(base, "wb") as f:
            f.write(section(vmlinux, ".BTF", tmp))
        names = kfunc_sets(section(vmlinux, ".BTF_ids", tmp), btf_funcs(base))
        print(f"vmlinux ({len(names)}): {' '.join(names)}")
        for module in sys.argv[2:]:
            ko = plain(module, tmp)
            btf = os.path.join(tmp, "module.btf")
            with open(btf, "wb") as f:
                f.write(section(ko, ".BTF", tmp))
            names = kfunc_sets(section(ko, ".BTF_ids", tmp), btf_funcs(btf, base)) if os.path.getsize(btf) else []
            name = re.sub(r"\.ko(\.xz|\.zst)?$", "", os.path.basename(module))
            print(f"{name} ({len(names)}): {' '.join(names)}")


if __name__ == "__main__":
    main()
