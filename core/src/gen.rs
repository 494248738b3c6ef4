//! The in-kernel resolver: emits a `BPF_PROG_TYPE_SYSCALL` loader program
//! that looks ksyms up with `bpf_kallsyms_lookup_name` and
//! `bpf_btf_find_by_name_kind` and patches a copy of the program's
//! instructions held in a data blob (libbpf's gen_loader way).
//!
//! The blob is the value of the loader's map index 0 (reached with
//! `ld_imm64 src_reg=BPF_PSEUDO_MAP_IDX_VALUE`). Its layout, from a base
//! offset the caller chooses (so a light-skeleton loader can embed it in a
//! bigger value):
//!
//! | offset | what |
//! |---|---|
//! | `status_off` | `u32` index + 1 of the extern whose lookup failed (0: none), `i32` its error |
//! | `names_off` | each looked-up name, NUL-terminated, 8-aligned |
//! | `slots_off` | one 8-byte `kallsyms_lookup_name` result per typeless lookup |
//! | `insns_off` | the program's instructions, patched in place by the loader |
//! | `fd_array_off` | `i32` fd_array; slot `n` holds the module BTF fd of the `n`-th kfunc called |
//!
//! One lookup is made per distinct (lookup name, BTF kind, `ld_imm64` or
//! `call`); later sites copy the first site's result. Per site, R8 points at
//! the instruction in the blob.

use core::fmt;

use crate::bpf::{helper, op::*, pseudo, ENOENT};
use crate::btf::Kind;
use crate::error::{Error, Result};
use crate::insn::Insn;
use crate::object::{Extern, ExternKind, Site, SiteKind};

/// Options of the emitter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenOptions {
    /// Offset of the blob region inside the map value.
    pub base: u32,
    /// Close the module BTF fds obtained before exiting (for loaders that
    /// load the program themselves; the ksymrelo runner takes them instead).
    pub cleanup: bool,
}

/// Where everything is in the blob (offsets inside the map value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Status header (8 bytes).
    pub status_off: u32,
    /// Names.
    pub names_off: u32,
    /// kallsyms result slots.
    pub slots_off: u32,
    /// The program's instructions.
    pub insns_off: u32,
    /// Number of program instructions.
    pub insn_cnt: u32,
    /// fd_array.
    pub fd_array_off: u32,
    /// fd_array entries (slot 0 unused).
    pub fd_array_len: u32,
    /// End of the blob region (`base` + its size): the map value must be at
    /// least this long.
    pub end: u32,
    /// Loader instructions emitted.
    pub loader_len: u32,
}

/// The lookup a site needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Typeless,
    Btf { kind: i32 },
    Kfunc,
}

struct Plan<'a, 'e> {
    externs: &'a [Extern<'e>],
    sites: &'a [Site],
}

impl<'e> Plan<'_, 'e> {
    fn ext(&self, site: &Site) -> Result<&Extern<'e>> {
        self.externs.get(site.extern_idx.get()).ok_or(Error::Mismatch {
            what: "site refers to an extern index past the table",
        })
    }

    fn lookup(&self, site: &Site) -> Result<Option<Lookup>> {
        let e = self.ext(site)?;
        Ok(match (e.kind, site.kind) {
            (ExternKind::Kconfig, _) => None,
            (ExternKind::Typeless, SiteKind::Ld64) => Some(Lookup::Typeless),
            (ExternKind::Typed, SiteKind::Ld64) => Some(Lookup::Btf { kind: Kind::Var as i32 }),
            (ExternKind::Kfunc, SiteKind::Ld64) => Some(Lookup::Btf {
                kind: Kind::Func as i32,
            }),
            (ExternKind::Kfunc, SiteKind::Call) => Some(Lookup::Kfunc),
            (_, SiteKind::Call) => {
                return Err(Error::Mismatch {
                    what: "a call site of a variable extern",
                })
            }
        })
    }

    /// The first earlier site with the same lookup, if any.
    fn first_of(&self, i: usize) -> Result<Option<usize>> {
        let site = &self.sites[i];
        let (name, lookup) = (self.ext(site)?.lookup_name(), self.lookup(site)?);
        for (j, other) in self.sites[..i].iter().enumerate() {
            if self.lookup(other)? == lookup && self.ext(other)?.lookup_name() == name {
                return Ok(Some(j));
            }
        }
        Ok(None)
    }
}

fn align8(n: u32) -> Result<u32> {
    n.checked_add(7)
        .map(|n| n & !7)
        .ok_or(Error::Overflow { what: "blob layout" })
}

fn add(a: u32, b: u32) -> Result<u32> {
    a.checked_add(b).ok_or(Error::Overflow { what: "blob layout" })
}

/// Computes the blob layout and the loader length for a program of
/// `insn_cnt` instructions with these sites (insn indices relative to the
/// program), without writing anything.
pub fn plan(externs: &[Extern<'_>], sites: &[Site], insn_cnt: usize, opts: &GenOptions) -> Result<Layout> {
    // Every offset below is derived from a site index; bounding the indices
    // by the (checked) program size keeps all that arithmetic in range.
    for site in sites {
        let last = u64::from(site.insn_idx.0) + u64::from(site.kind == SiteKind::Ld64);
        if last >= insn_cnt as u64 {
            return Err(Error::Mismatch {
                what: "site past the end of the program's instructions",
            });
        }
    }
    let mut out = Emitter { buf: None, len: 0 };
    let layout = layout(externs, sites, insn_cnt, opts)?;
    emit_loader(&Plan { externs, sites }, &layout, opts, &mut out)?;
    Ok(Layout {
        loader_len: out.len as u32,
        ..layout
    })
}

fn layout(externs: &[Extern<'_>], sites: &[Site], insn_cnt: usize, opts: &GenOptions) -> Result<Layout> {
    let plan = Plan { externs, sites };
    let mut names = 0u32;
    let mut slots = 0u32;
    let mut kfuncs = 0u32;
    for (i, site) in sites.iter().enumerate() {
        let Some(lookup) = plan.lookup(site)? else { continue };
        if plan.first_of(i)?.is_some() {
            continue;
        }
        let len = u32::try_from(plan.ext(site)?.lookup_name().len()).map_err(|_| Error::Overflow { what: "name" })?;
        names = add(names, align8(add(len, 1)?)?)?;
        match lookup {
            Lookup::Typeless => slots = add(slots, 8)?,
            Lookup::Kfunc => kfuncs = add(kfuncs, 1)?,
            Lookup::Btf { .. } => {}
        }
    }
    let insn_cnt = u32::try_from(insn_cnt).map_err(|_| Error::Overflow { what: "insn count" })?;
    let status_off = align8(opts.base)?;
    let names_off = add(status_off, 8)?;
    let slots_off = add(names_off, names)?;
    let insns_off = add(slots_off, slots)?;
    let fd_array_off = add(
        insns_off,
        insn_cnt.checked_mul(8).ok_or(Error::Overflow { what: "insns" })?,
    )?;
    let fd_array_len = if kfuncs == 0 { 0 } else { add(kfuncs, 1)? };
    if fd_array_len > i16::MAX as u32 {
        return Err(Error::CapacityExceeded {
            what: "fd_array slots",
            capacity: i16::MAX as usize,
        });
    }
    let end = add(fd_array_off, align8(fd_array_len * 4)?)?;
    Ok(Layout {
        status_off,
        names_off,
        slots_off,
        insns_off,
        insn_cnt,
        fd_array_off,
        fd_array_len,
        end,
        loader_len: 0,
    })
}

/// Sets the `src_reg` markers libbpf's gen mode writes before the loader
/// runs: `BPF_PSEUDO_BTF_ID` on typed (and kfunc) `ld_imm64` sites,
/// `BPF_PSEUDO_KFUNC_CALL` on kfunc calls; typeless sites are untouched. The
/// loader clears the marker again where a weak lookup fails.
///
/// The immediates of BTF sites (id and BTF object fd of an `ld_imm64`, id
/// and slot of a call) are zeroed too. A loader that runs to the end
/// overwrites them all anyway; one that aborts on a strong failure leaves
/// later sites as they are, and a non-zero fd there must be one the loader
/// obtained, never a number the object happened to carry (its owner would
/// close a descriptor it does not own).
pub fn prepatch(insns: &mut [Insn], externs: &[Extern<'_>], sites: &[Site]) -> Result<()> {
    let plan = Plan { externs, sites };
    // Every site checked before any is touched: all or nothing.
    for site in sites {
        check_site(insns, site)?;
        plan.lookup(site)?;
    }
    for site in sites {
        let i = site.insn_idx.get();
        match plan.lookup(site)? {
            Some(Lookup::Btf { .. }) => {
                insns[i].set_src_reg(pseudo::BTF_ID);
                insns[i].set_imm(0);
                insns[i + 1].set_imm(0);
            }
            Some(Lookup::Kfunc) => {
                insns[i].set_src_reg(pseudo::KFUNC_CALL);
                insns[i].set_imm(0);
                insns[i].set_off(0);
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_site(insns: &[Insn], site: &Site) -> Result<()> {
    let i = site.insn_idx.get();
    let ok = site.kind.matches(insns, i);
    if ok {
        Ok(())
    } else {
        Err(Error::Mismatch {
            what: "site does not point at a matching ld_imm64/call instruction",
        })
    }
}

/// Emits the loader into `loader` and the blob into `blob` (from
/// `opts.base`; bytes before it are left alone). `insns` are the program's
/// instructions, already [`prepatch`]ed. Returns the layout.
pub fn emit(
    externs: &[Extern<'_>],
    sites: &[Site],
    insns: &[Insn],
    opts: &GenOptions,
    loader: &mut [Insn],
    blob: &mut [u8],
) -> Result<Layout> {
    for site in sites {
        check_site(insns, site)?;
    }
    let layout = plan(externs, sites, insns.len(), opts)?;
    if (loader.len() as u64) < u64::from(layout.loader_len) {
        return Err(Error::CapacityExceeded {
            what: "loader instructions",
            capacity: loader.len(),
        });
    }
    if (blob.len() as u64) < u64::from(layout.end) {
        return Err(Error::CapacityExceeded {
            what: "loader blob",
            capacity: blob.len(),
        });
    }
    let plan = Plan { externs, sites };
    // The blob: zeroed region, names, instructions.
    let region = &mut blob[opts.base as usize..layout.end as usize];
    region.fill(0);
    let mut name_off = layout.names_off as usize;
    for (i, site) in sites.iter().enumerate() {
        if plan.lookup(site)?.is_none() || plan.first_of(i)?.is_some() {
            continue;
        }
        let name = plan.ext(site)?.lookup_name().as_bytes();
        blob[name_off..name_off + name.len()].copy_from_slice(name);
        name_off += align8(name.len() as u32 + 1)? as usize;
    }
    let start = layout.insns_off as usize;
    blob[start..start + insns.len() * 8].copy_from_slice(crate::insn::as_bytes(insns));
    let mut out = Emitter {
        buf: Some(loader),
        len: 0,
    };
    emit_loader(&plan, &layout, opts, &mut out)?;
    Ok(layout)
}

struct Emitter<'b> {
    buf: Option<&'b mut [Insn]>,
    len: usize,
}

impl Emitter<'_> {
    fn put(&mut self, insn: Insn) -> Result<()> {
        if let Some(buf) = self.buf.as_deref_mut() {
            let capacity = buf.len();
            *buf.get_mut(self.len).ok_or(Error::CapacityExceeded {
                what: "loader instructions",
                capacity,
            })? = insn;
        }
        self.len += 1;
        Ok(())
    }

    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Result<()> {
        self.put(Insn::new(code, dst, src, off, imm))
    }

    /// `dst = &map[0].value[off]`
    fn map_ptr(&mut self, dst: u8, off: u32) -> Result<()> {
        self.op(LD_IMM64, dst, pseudo::MAP_IDX_VALUE, 0, 0)?;
        self.op(0, 0, 0, 0, off as i32)
    }
}

/// Records the failing extern and exits with the error in r7 — 6 insns,
/// skipped when r7 >= 0.
fn abort_unless_ok(e: &mut Emitter<'_>, layout: &Layout, extern_idx: u32) -> Result<()> {
    e.op(JSGE_IMM, 7, 0, 6, 0)?;
    e.map_ptr(1, layout.status_off)?;
    e.op(ST_W, 1, 0, 0, extern_idx as i32 + 1)?;
    e.op(STX_W, 1, 7, 4, 0)?;
    e.op(MOV64_REG, 0, 7, 0, 0)?;
    e.op(EXIT, 0, 0, 0, 0)
}

/// `r7 = btf_find_by_name_kind(r1 name, r2 size, kind, 0)` (r1, r2 set).
fn btf_find(e: &mut Emitter<'_>, kind: i32) -> Result<()> {
    e.op(MOV64_IMM, 3, 0, 0, kind)?;
    e.op(MOV64_IMM, 4, 0, 0, 0)?;
    e.op(CALL, 0, 0, 0, helper::BTF_FIND_BY_NAME_KIND)?;
    e.op(MOV64_REG, 7, 0, 0, 0)
}

/// The id (low half of r7) into insn.imm; the BTF object fd (high half)
/// left in r9.
fn store_id_take_fd(e: &mut Emitter<'_>) -> Result<()> {
    e.op(STX_W, 8, 7, 4, 0)?;
    e.op(MOV64_REG, 9, 7, 0, 0)?;
    e.op(RSH64_IMM, 9, 0, 0, 32)
}

fn emit_loader(plan: &Plan<'_, '_>, layout: &Layout, opts: &GenOptions, e: &mut Emitter<'_>) -> Result<()> {
    let mut name_off = layout.names_off;
    let mut slot_off = layout.slots_off;
    let mut fd_slot = 0u32;
    for (i, site) in plan.sites.iter().enumerate() {
        let Some(lookup) = plan.lookup(site)? else { continue };
        let ext = plan.ext(site)?;
        let insn_off = layout.insns_off + site.insn_idx.0 * 8;
        e.map_ptr(8, insn_off)?;
        if let Some(first) = plan.first_of(i)? {
            // Copy the first site's result.
            let first_off = layout.insns_off + plan.sites[first].insn_idx.0 * 8;
            e.map_ptr(1, first_off)?;
            e.op(LDX_W, 9, 1, 4, 0)?;
            e.op(STX_W, 8, 9, 4, 0)?;
            match lookup {
                Lookup::Typeless => {
                    e.op(LDX_W, 9, 1, 12, 0)?;
                    e.op(STX_W, 8, 9, 12, 0)?;
                }
                Lookup::Btf { .. } => {
                    e.op(LDX_W, 9, 1, 12, 0)?;
                    e.op(STX_W, 8, 9, 12, 0)?;
                    // A weak miss copied as id 0: clear src_reg here too.
                    e.op(LDX_W, 9, 1, 4, 0)?;
                    e.op(JNE_IMM, 9, 0, 3, 0)?;
                    e.op(LDX_B, 9, 8, 1, 0)?;
                    e.op(AND64_IMM, 9, 0, 0, 0x0f)?;
                    e.op(STX_B, 8, 9, 1, 0)?;
                }
                Lookup::Kfunc => {
                    e.op(LDX_H, 9, 1, 2, 0)?;
                    e.op(STX_H, 8, 9, 2, 0)?;
                }
            }
            continue;
        }
        let name_len = ext.lookup_name().len() as u32;
        e.map_ptr(1, name_off)?;
        e.op(MOV64_IMM, 2, 0, 0, name_len as i32 + 1)?;
        name_off += align8(name_len + 1)?;
        match lookup {
            Lookup::Typeless => {
                e.op(MOV64_IMM, 3, 0, 0, 0)?;
                e.map_ptr(4, slot_off)?;
                e.op(CALL, 0, 0, 0, helper::KALLSYMS_LOOKUP_NAME)?;
                e.op(MOV64_REG, 7, 0, 0, 0)?;
                // -ENOENT: address 0 (the slot stays zero).
                e.op(JEQ_IMM, 7, 0, 7, -ENOENT)?;
                abort_unless_ok(e, layout, site.extern_idx.0)?;
                e.map_ptr(1, slot_off)?;
                e.op(LDX_DW, 9, 1, 0, 0)?;
                e.op(STX_W, 8, 9, 4, 0)?;
                e.op(RSH64_IMM, 9, 0, 0, 32)?;
                e.op(STX_W, 8, 9, 12, 0)?;
                slot_off += 8;
            }
            Lookup::Btf { kind } => {
                btf_find(e, kind)?;
                if ext.weak {
                    // Missing: both imms 0 and src_reg cleared (6 insns).
                    e.op(JSGE_IMM, 7, 0, 6, 0)?;
                    e.op(ST_W, 8, 0, 4, 0)?;
                    e.op(ST_W, 8, 0, 12, 0)?;
                    e.op(LDX_B, 9, 8, 1, 0)?;
                    e.op(AND64_IMM, 9, 0, 0, 0x0f)?;
                    e.op(STX_B, 8, 9, 1, 0)?;
                    e.op(JA, 0, 0, 4, 0)?;
                } else {
                    abort_unless_ok(e, layout, site.extern_idx.0)?;
                }
                store_id_take_fd(e)?;
                e.op(STX_W, 8, 9, 12, 0)?;
            }
            Lookup::Kfunc => {
                fd_slot += 1;
                btf_find(e, Kind::Func as i32)?;
                if ext.weak {
                    // Missing: imm 0, off 0 (poisoning is user space's).
                    e.op(JSGE_IMM, 7, 0, 3, 0)?;
                    e.op(ST_W, 8, 0, 4, 0)?;
                    e.op(ST_H, 8, 0, 2, 0)?;
                    e.op(JA, 0, 0, 10, 0)?;
                } else {
                    abort_unless_ok(e, layout, site.extern_idx.0)?;
                }
                store_id_take_fd(e)?;
                // vmlinux (fd 0): off 0; a module: its fd into this
                // kfunc's fd_array slot, the slot into off.
                e.op(JEQ_IMM, 9, 0, 5, 0)?;
                e.map_ptr(1, layout.fd_array_off + fd_slot * 4)?;
                e.op(STX_W, 1, 9, 0, 0)?;
                e.op(ST_H, 8, 0, 2, fd_slot as i32)?;
                e.op(JA, 0, 0, 1, 0)?;
                e.op(ST_H, 8, 0, 2, 0)?;
            }
        }
    }
    if opts.cleanup {
        let mut fd_slot = 0u32;
        for (i, site) in plan.sites.iter().enumerate() {
            let Some(lookup) = plan.lookup(site)? else { continue };
            if plan.first_of(i)?.is_some() {
                continue;
            }
            let fd_at = match lookup {
                Lookup::Typeless => continue,
                Lookup::Btf { .. } => layout.insns_off + site.insn_idx.0 * 8 + 12,
                Lookup::Kfunc => {
                    fd_slot += 1;
                    layout.fd_array_off + fd_slot * 4
                }
            };
            e.map_ptr(2, fd_at)?;
            e.op(LDX_W, 1, 2, 0, 0)?;
            e.op(JEQ_IMM, 1, 0, 1, 0)?;
            e.op(CALL, 0, 0, 0, helper::SYS_CLOSE)?;
        }
    }
    e.op(MOV64_IMM, 0, 0, 0, 0)?;
    e.op(EXIT, 0, 0, 0, 0)
}

/// The status the loader left in `blob`: `Some((extern index, error))` when
/// a lookup failed.
pub fn status(blob: &[u8], layout: &Layout) -> Option<(u32, i32)> {
    let at = layout.status_off as usize;
    let word = |o: usize| blob.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    match (word(at)?, word(at + 4)?) {
        (0, _) => None,
        (idx, err) => Some((idx - 1, err as i32)),
    }
}

/// The program's instructions inside the blob, as the loader left them.
pub fn patched_insns<'b>(blob: &'b [u8], layout: &Layout) -> Result<&'b [Insn]> {
    let start = layout.insns_off as usize;
    let bytes = blob
        .get(start..start + layout.insn_cnt as usize * 8)
        .ok_or(Error::Mismatch {
            what: "blob shorter than its layout",
        })?;
    crate::insn::insns(bytes)
}

/// The fd_array inside the blob (slot 0 unused; empty without kfunc calls).
pub fn fd_array<'b>(blob: &'b [u8], layout: &Layout) -> impl Iterator<Item = i32> + 'b {
    let start = layout.fd_array_off as usize;
    let n = layout.fd_array_len as usize;
    blob.get(start..start + n * 4)
        .unwrap_or(&[])
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// A human-readable disassembly of loader instructions, one per line.
pub fn disasm(insns: &[Insn], out: &mut impl fmt::Write) -> fmt::Result {
    let mut i = 0;
    while i < insns.len() {
        let x = &insns[i];
        let (d, s, off, imm) = (x.dst_reg(), x.src_reg(), x.off(), x.imm());
        write!(out, "{i:4}: ")?;
        match x.code {
            LD_IMM64 if s == pseudo::MAP_IDX_VALUE => {
                let next = insns.get(i + 1).map_or(0, |n| n.imm());
                writeln!(out, "r{d} = map[{imm}][+{next}]")?;
                i += 1;
            }
            LD_IMM64 => {
                let next = insns.get(i + 1).map_or(0, |n| n.imm());
                writeln!(
                    out,
                    "r{d} = {:#x} ll",
                    (u64::from(next as u32) << 32) | u64::from(imm as u32)
                )?;
                i += 1;
            }
            MOV64_IMM => writeln!(out, "r{d} = {imm}")?,
            MOV64_REG => writeln!(out, "r{d} = r{s}")?,
            RSH64_IMM => writeln!(out, "r{d} >>= {imm}")?,
            AND64_IMM => writeln!(out, "r{d} &= {imm:#x}")?,
            JA => writeln!(out, "goto {off:+}")?,
            JEQ_IMM => writeln!(out, "if r{d} == {imm} goto {off:+}")?,
            JNE_IMM => writeln!(out, "if r{d} != {imm} goto {off:+}")?,
            JSGE_IMM => writeln!(out, "if r{d} s>= {imm} goto {off:+}")?,
            LDX_B | LDX_H | LDX_W | LDX_DW => writeln!(out, "r{d} = *({} *)(r{s} {off:+})", size_name(x.code))?,
            STX_B | STX_H | STX_W => writeln!(out, "*({} *)(r{d} {off:+}) = r{s}", size_name(x.code))?,
            ST_H | ST_W => writeln!(out, "*({} *)(r{d} {off:+}) = {imm}", size_name(x.code))?,
            CALL => match imm {
                helper::BTF_FIND_BY_NAME_KIND => writeln!(out, "call bpf_btf_find_by_name_kind#{imm}")?,
                helper::KALLSYMS_LOOKUP_NAME => writeln!(out, "call bpf_kallsyms_lookup_name#{imm}")?,
                helper::SYS_CLOSE => writeln!(out, "call bpf_sys_close#{imm}")?,
                _ => writeln!(out, "call #{imm}")?,
            },
            EXIT => writeln!(out, "exit")?,
            code => writeln!(out, "(code {code:#04x}) dst r{d} src r{s} off {off} imm {imm}")?,
        }
        i += 1;
    }
    Ok(())
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
    use std::string::String;
    use std::vec;

    fn ext(name: &'static str, kind: ExternKind, weak: bool, index: u32) -> Extern<'static> {
        Extern {
            name,
            essential_name: crate::object::essential_name(name),
            kind,
            weak,
            sym_idx: index + 1,
            btf_id: BtfId(1),
            type_id: BtfId(1),
            index: ExternIdx(index),
        }
    }

    fn site(insn_idx: u32, extern_idx: u32, kind: SiteKind) -> Site {
        Site {
            section: SectionIndex(3),
            insn_idx: InsnIdx(insn_idx),
            extern_idx: ExternIdx(extern_idx),
            kind,
        }
    }

    /// typeless `vfs_read` at 3 sites, weak typed `v`, kfunc `f`, weak kfunc `g`.
    fn sample() -> ([Extern<'static>; 4], [Site; 6], [Insn; 12]) {
        let externs = [
            ext("f", ExternKind::Kfunc, false, 0),
            ext("g___flavor", ExternKind::Kfunc, true, 1),
            ext("v", ExternKind::Typed, true, 2),
            ext("vfs_read", ExternKind::Typeless, false, 3),
        ];
        let sites = [
            site(0, 3, SiteKind::Ld64),
            site(2, 3, SiteKind::Ld64),
            site(4, 2, SiteKind::Ld64),
            site(6, 0, SiteKind::Call),
            site(7, 1, SiteKind::Call),
            site(8, 3, SiteKind::Ld64),
        ];
        let ld = Insn::new(LD_IMM64, 1, 0, 0, 0);
        let call = Insn::new(CALL, 0, 1, -1, -1);
        let insns = [
            ld,
            Insn::default(),
            ld,
            Insn::default(),
            ld,
            Insn::default(),
            call,
            call,
            ld,
            Insn::default(),
            Insn::new(MOV64_IMM, 0, 0, 0, 0),
            Insn::new(EXIT, 0, 0, 0, 0),
        ];
        (externs, sites, insns)
    }

    fn generate(opts: GenOptions) -> (Layout, vec::Vec<Insn>, vec::Vec<u8>) {
        let (externs, sites, mut insns) = sample();
        prepatch(&mut insns, &externs, &sites).unwrap();
        let planned = plan(&externs, &sites, insns.len(), &opts).unwrap();
        let mut loader = vec![Insn::default(); planned.loader_len as usize];
        let mut blob = vec![0xffu8; planned.end as usize];
        let layout = emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob).unwrap();
        assert_eq!(layout, planned, "plan and emit agree");
        (layout, loader, blob)
    }

    #[test]
    fn prepatch_marks_btf_sites_and_clears_what_the_object_carried() {
        let (externs, sites, mut insns) = sample();
        // Whatever numbers the object carried at its sites.
        for i in [0usize, 1, 2, 3, 4, 5, 8, 9] {
            insns[i].set_imm(7);
        }
        let before = insns;
        prepatch(&mut insns, &externs, &sites).unwrap();
        // Typed `v` at 4: marked, id and fd cleared.
        assert_eq!(
            (insns[4].src_reg(), insns[4].imm(), insns[5].imm()),
            (pseudo::BTF_ID, 0, 0)
        );
        // Kfunc calls at 6 and 7: marked, id and slot cleared.
        for i in [6, 7] {
            assert_eq!(
                (insns[i].src_reg(), insns[i].imm(), insns[i].off()),
                (pseudo::KFUNC_CALL, 0, 0)
            );
        }
        // Typeless sites are the loader's alone.
        for i in [0, 1, 2, 3, 8, 9] {
            assert_eq!(insns[i], before[i]);
        }
        // A bad site: nothing is touched.
        let mut bad_sites = sites;
        bad_sites[5].insn_idx = InsnIdx(10);
        let mut untouched = before;
        assert!(prepatch(&mut untouched, &externs, &bad_sites).is_err());
        assert_eq!(untouched, before);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        for cleanup in [false, true] {
            let (_, loader, _) = generate(GenOptions { base: 0, cleanup });
            let mut i = 0;
            while i < loader.len() {
                let x = loader[i];
                if matches!(x.code, JA | JEQ_IMM | JNE_IMM | JSGE_IMM) {
                    let target = i as i64 + 1 + i64::from(x.off());
                    assert!((0..loader.len() as i64).contains(&target), "jump at {i} to {target}");
                    // Never into the middle of an ld_imm64.
                    assert!(
                        target == 0 || loader[target as usize - 1].code != LD_IMM64 || {
                            let mut k = 0;
                            let mut ok = true;
                            while k < target as usize {
                                if loader[k].code == LD_IMM64 {
                                    if k + 1 == target as usize {
                                        ok = false;
                                    }
                                    k += 1;
                                }
                                k += 1;
                            }
                            ok
                        }
                    );
                }
                if x.code == LD_IMM64 {
                    i += 1;
                }
                i += 1;
            }
            assert_eq!(loader.last().unwrap().code, EXIT);
        }
    }

    #[test]
    fn one_lookup_per_symbol_and_names_in_the_blob() {
        let (layout, loader, blob) = generate(GenOptions::default());
        let calls = |id| loader.iter().filter(|x| x.code == CALL && x.imm() == id).count();
        assert_eq!(
            calls(helper::KALLSYMS_LOOKUP_NAME),
            1,
            "vfs_read looked up once for 3 sites"
        );
        assert_eq!(calls(helper::BTF_FIND_BY_NAME_KIND), 3);
        assert_eq!(calls(helper::SYS_CLOSE), 0);
        let names = &blob[layout.names_off as usize..layout.slots_off as usize];
        assert_eq!(
            names,
            b"vfs_read\0\0\0\0\0\0\0\0v\0\0\0\0\0\0\0f\0\0\0\0\0\0\0g\0\0\0\0\0\0\0"
        );
        assert_eq!(layout.fd_array_len, 3);
        // Pre-patched markers are in the blob's copy.
        let insns = patched_insns(&blob, &layout).unwrap();
        assert_eq!(insns[4].src_reg(), pseudo::BTF_ID);
        assert_eq!(insns[6].src_reg(), pseudo::KFUNC_CALL);
        assert_eq!(insns[0].src_reg(), 0);
        assert_eq!(status(&blob, &layout), None);
        let (_, with_cleanup, _) = generate(GenOptions { base: 0, cleanup: true });
        assert_eq!(
            with_cleanup
                .iter()
                .filter(|x| x.code == CALL && x.imm() == helper::SYS_CLOSE)
                .count(),
            3
        );
    }

    #[test]
    fn caller_chosen_base_and_small_buffers() {
        let (externs, sites, insns) = sample();
        let opts = GenOptions {
            base: 100,
            cleanup: false,
        };
        let planned = plan(&externs, &sites, insns.len(), &opts).unwrap();
        assert_eq!(planned.status_off, 104);
        let mut loader = vec![Insn::default(); planned.loader_len as usize];
        let mut blob = vec![0x5au8; planned.end as usize];
        emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob).unwrap();
        assert!(blob[..100].iter().all(|&b| b == 0x5a), "bytes before base untouched");
        let mut short = vec![Insn::default(); planned.loader_len as usize - 1];
        assert!(matches!(
            emit(&externs, &sites, &insns, &opts, &mut short, &mut blob),
            Err(Error::CapacityExceeded { .. })
        ));
        let mut small = vec![0u8; planned.end as usize - 1];
        assert!(matches!(
            emit(&externs, &sites, &insns, &opts, &mut loader, &mut small),
            Err(Error::CapacityExceeded { .. })
        ));
        let bad = [site(10, 3, SiteKind::Ld64)];
        assert!(emit(&externs, &bad, &insns, &opts, &mut loader, &mut blob).is_err());
        // Found by review: a huge index must be an error in plan() too, not
        // an overflow while computing offsets.
        let huge = [site(u32::MAX, 3, SiteKind::Call)];
        assert!(plan(&externs, &huge, insns.len(), &opts).is_err());
    }

    #[test]
    fn golden_disassembly() {
        let (_, loader, _) = generate(GenOptions::default());
        let mut text = String::new();
        disasm(&loader, &mut text).unwrap();
        let expected = include_str!("../tests/golden/gen_sample.txt");
        if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/gen_sample.txt"),
                &text,
            )
            .unwrap();
        } else {
            assert_eq!(text, expected);
        }
    }
}
