//! The loader program itself: for each site, the lookup (or a copy of the
//! first same site's result) written into the blob's copy of the program;
//! then, if asked, the module BTF fds closed. Written with [`Asm`], so
//! every jump goes to a label and no distance is counted by hand.

use super::layout::{field, name_room, name_size, status, Layout, SLOT_SIZE};
use super::lookups::{Entry, Lookup, Lookups};
use super::GenOptions;
use crate::asm::{Asm, Label, Reg};
use crate::bpf::{helper, op, ENOENT};
use crate::btf::Kind;
use crate::error::Result;
use crate::index::ExternIdx;
use crate::object::Site;

use Reg::{R0, R1, R2, R3, R4};

/// Points at the site's instruction in the blob, for the whole site.
const SITE: Reg = Reg::R8;
/// The lookup helper's result, kept across the checks.
const RESULT: Reg = Reg::R7;
/// Scratch: a word being copied, or the BTF object fd.
const TMP: Reg = Reg::R9;
/// Map index of the blob (`ld_imm64 src_reg=BPF_PSEUDO_MAP_IDX_VALUE`).
const BLOB: i32 = 0;

/// The labels every site binds again.
struct Labels {
    /// The site is done.
    done: Label,
    /// The lookup succeeded (or missed harmlessly): store its result.
    found: Label,
    /// A kfunc found in vmlinux, which needs no fd_array slot.
    vmlinux: Label,
}

/// Writes the whole loader: every site, the cleanup if asked, `return 0`.
pub(super) fn emit_loader(
    lookups: &Lookups<'_, '_>,
    layout: &Layout,
    opts: &GenOptions,
    a: &mut Asm<'_>,
) -> Result<()> {
    let labels = Labels {
        done: a.label()?,
        found: a.label()?,
        vmlinux: a.label()?,
    };
    let mut name_off = layout.names_off;
    let mut slot_off = layout.slots_off;
    let mut fd_slot = 0u32;
    for entry in lookups.entries() {
        let entry = entry?;
        a.ld_map_value(SITE, BLOB, layout.insn_at(entry.site.insn_idx)?)?;
        if let Some(first) = entry.first {
            copy_first(a, layout, entry.lookup, first, labels.done)?;
            continue;
        }
        let name = entry.ext.lookup_name();
        a.ld_map_value(R1, BLOB, name_off)?;
        a.mov_imm(R2, name_size(name)? as i32)?;
        name_off += name_room(name)?;
        match entry.lookup {
            Lookup::Typeless => {
                kallsyms_lookup(a, layout, &entry, slot_off, &labels)?;
                slot_off += SLOT_SIZE;
            }
            Lookup::Btf { kind } => btf_lookup(a, layout, &entry, kind, &labels)?,
            Lookup::Kfunc => {
                fd_slot += 1;
                kfunc_lookup(a, layout, &entry, fd_slot, &labels)?;
            }
        }
    }
    if opts.cleanup {
        close_module_fds(a, lookups, layout)?;
    }
    a.mov_imm(R0, 0)?;
    a.exit()
}

/// A later site of a lookup: the first site's result copied (R1 at it).
fn copy_first(a: &mut Asm<'_>, layout: &Layout, lookup: Lookup, first: &Site, done: Label) -> Result<()> {
    a.ld_map_value(R1, BLOB, layout.insn_at(first.insn_idx)?)?;
    copy_field(a, field::IMM, op::LDX_W, op::STX_W)?;
    match lookup {
        Lookup::Typeless => copy_field(a, field::NEXT_IMM, op::LDX_W, op::STX_W),
        Lookup::Btf { .. } => {
            copy_field(a, field::NEXT_IMM, op::LDX_W, op::STX_W)?;
            // A weak miss copied as id 0: clear src_reg here too.
            a.load(op::LDX_W, TMP, R1, field::IMM)?;
            a.jump(op::JNE_IMM, TMP, 0, done)?;
            clear_src_reg(a)?;
            a.bind(done)
        }
        Lookup::Kfunc => copy_field(a, field::OFF, op::LDX_H, op::STX_H),
    }
}

/// `SITE->at = R1->at`.
fn copy_field(a: &mut Asm<'_>, at: i16, load: u8, store: u8) -> Result<()> {
    a.load(load, TMP, R1, at)?;
    a.store(store, SITE, at, TMP)
}

/// `bpf_kallsyms_lookup_name(R1 name, R2 size, 0, slot)`; the address
/// into both halves of the `ld_imm64`.
fn kallsyms_lookup(a: &mut Asm<'_>, layout: &Layout, entry: &Entry<'_, '_>, slot_off: u32, l: &Labels) -> Result<()> {
    a.mov_imm(R3, 0)?;
    a.ld_map_value(R4, BLOB, slot_off)?;
    a.call_helper(helper::KALLSYMS_LOOKUP_NAME)?;
    a.mov(RESULT, R0)?;
    // -ENOENT: address 0 (the slot stays zero).
    a.jump(op::JEQ_IMM, RESULT, -ENOENT, l.found)?;
    abort_unless_ok(a, layout, entry.site.extern_idx, l.found)?;
    a.ld_map_value(R1, BLOB, slot_off)?;
    a.load(op::LDX_DW, TMP, R1, 0)?;
    a.store(op::STX_W, SITE, field::IMM, TMP)?;
    a.alu_imm(op::RSH64_IMM, TMP, 32)?;
    a.store(op::STX_W, SITE, field::NEXT_IMM, TMP)
}

/// A typed (or kfunc-address) `ld_imm64`: id and BTF object fd; a weak
/// miss leaves both 0 and clears `src_reg`.
fn btf_lookup(a: &mut Asm<'_>, layout: &Layout, entry: &Entry<'_, '_>, kind: i32, l: &Labels) -> Result<()> {
    btf_find(a, kind)?;
    unless_found(a, layout, entry, l, |a| {
        a.store_imm(op::ST_W, SITE, field::IMM, 0)?;
        a.store_imm(op::ST_W, SITE, field::NEXT_IMM, 0)?;
        clear_src_reg(a)
    })?;
    store_id_take_fd(a)?;
    a.store(op::STX_W, SITE, field::NEXT_IMM, TMP)?;
    a.bind(l.done)
}

/// A kfunc call: id into `imm`; a module's BTF fd into this kfunc's
/// fd_array slot and the slot into `off` (vmlinux: `off` 0). A weak miss
/// leaves `imm` and `off` 0 (poisoning is user space's).
fn kfunc_lookup(a: &mut Asm<'_>, layout: &Layout, entry: &Entry<'_, '_>, fd_slot: u32, l: &Labels) -> Result<()> {
    btf_find(a, Kind::Func as i32)?;
    unless_found(a, layout, entry, l, |a| {
        a.store_imm(op::ST_W, SITE, field::IMM, 0)?;
        a.store_imm(op::ST_H, SITE, field::OFF, 0)
    })?;
    store_id_take_fd(a)?;
    a.jump(op::JEQ_IMM, TMP, 0, l.vmlinux)?;
    a.ld_map_value(R1, BLOB, layout.fd_slot_at(fd_slot)?)?;
    a.store(op::STX_W, R1, 0, TMP)?;
    a.store_imm(op::ST_H, SITE, field::OFF, fd_slot as i32)?;
    a.goto(l.done)?;
    a.bind(l.vmlinux)?;
    a.store_imm(op::ST_H, SITE, field::OFF, 0)?;
    a.bind(l.done)
}

/// Unless `RESULT >= 0` (found): for a weak extern, `miss` and on to the
/// site's end; for a strong one, the abort. Binds `l.found` after that.
fn unless_found(
    a: &mut Asm<'_>,
    layout: &Layout,
    entry: &Entry<'_, '_>,
    l: &Labels,
    miss: impl FnOnce(&mut Asm<'_>) -> Result<()>,
) -> Result<()> {
    if entry.ext.weak {
        a.jump(op::JSGE_IMM, RESULT, 0, l.found)?;
        miss(a)?;
        a.goto(l.done)?;
        a.bind(l.found)
    } else {
        abort_unless_ok(a, layout, entry.site.extern_idx, l.found)
    }
}

/// Unless `RESULT >= 0`: records the failing extern in the status header
/// and exits with the error. Binds `ok` after that, for jumps already made
/// to it too.
fn abort_unless_ok(a: &mut Asm<'_>, layout: &Layout, extern_idx: ExternIdx, ok: Label) -> Result<()> {
    a.jump(op::JSGE_IMM, RESULT, 0, ok)?;
    a.ld_map_value(R1, BLOB, layout.status_off)?;
    a.store_imm(op::ST_W, R1, status::EXTERN, extern_idx.0.wrapping_add(1) as i32)?;
    a.store(op::STX_W, R1, status::ERROR, RESULT)?;
    a.mov(R0, RESULT)?;
    a.exit()?;
    a.bind(ok)
}

/// `RESULT = bpf_btf_find_by_name_kind(R1 name, R2 size, kind, 0)`.
fn btf_find(a: &mut Asm<'_>, kind: i32) -> Result<()> {
    a.mov_imm(R3, kind)?;
    a.mov_imm(R4, 0)?;
    a.call_helper(helper::BTF_FIND_BY_NAME_KIND)?;
    a.mov(RESULT, R0)
}

/// The id (low half of `RESULT`) into the site's `imm`; the BTF object fd
/// (high half) left in `TMP`.
fn store_id_take_fd(a: &mut Asm<'_>) -> Result<()> {
    a.store(op::STX_W, SITE, field::IMM, RESULT)?;
    a.mov(TMP, RESULT)?;
    a.alu_imm(op::RSH64_IMM, TMP, 32)
}

/// `SITE->src_reg = 0`, `dst_reg` kept.
fn clear_src_reg(a: &mut Asm<'_>) -> Result<()> {
    a.load(op::LDX_B, TMP, SITE, field::REGS)?;
    a.alu_imm(op::AND64_IMM, TMP, field::KEEP_DST_REG)?;
    a.store(op::STX_B, SITE, field::REGS, TMP)
}

/// `bpf_sys_close` on every non-zero BTF object fd the lookups obtained.
fn close_module_fds(a: &mut Asm<'_>, lookups: &Lookups<'_, '_>, layout: &Layout) -> Result<()> {
    let skip = a.label()?;
    let mut fd_slot = 0u32;
    for entry in lookups.firsts() {
        let entry = entry?;
        let fd_at = match entry.lookup {
            Lookup::Typeless => continue,
            Lookup::Btf { .. } => layout.insn_at(entry.site.insn_idx)? + field::NEXT_IMM as u32,
            Lookup::Kfunc => {
                fd_slot += 1;
                layout.fd_slot_at(fd_slot)?
            }
        };
        a.ld_map_value(R2, BLOB, fd_at)?;
        a.load(op::LDX_W, R1, R2, 0)?;
        a.jump(op::JEQ_IMM, R1, 0, skip)?;
        a.call_helper(helper::SYS_CLOSE)?;
        a.bind(skip)?;
    }
    Ok(())
}
