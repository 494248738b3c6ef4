//! The ksym stage of a loader: for each site, the lookup (or a copy of the
//! first same site's result) written into the blob's copy of the program;
//! then, if asked, the module BTF fds closed. Written with [`Asm`], so
//! every jump goes to a label and no distance is counted by hand.
//!
//! One piece of code serves both loaders: the standalone patcher
//! ([`emit_loader`]: a failure exits with the status in the blob) and each
//! program of a whole load ([`emit_sites`] with [`Abort::Cleanup`]: a
//! failure jumps to the load's cleanup, a strong typeless ksym the kernel
//! lacks is such a failure, and a called weak kfunc it lacks is poisoned
//! as libbpf's user space poisons it).

use super::layout::{field, name_room, name_size, status, Layout, SLOT_SIZE};
use super::lookups::{Entry, Lookup, Lookups};
use super::GenOptions;
use crate::asm::{Asm, Label, Reg};
use crate::bpf::{helper, op, ENOENT, POISON_CALL_KFUNC_BASE};
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

/// What a failed lookup of a strong extern does.
#[derive(Clone, Copy, Debug)]
pub(super) enum Abort {
    /// Record the extern in the blob's status header and exit with the
    /// error (the standalone patcher; gen_loader's semantics otherwise).
    Exit,
    /// Record the extern index + 1 at `R10 + extern_slot` and jump back to
    /// `cleanup` with the error in R7 (a whole load; SPEC §5's semantics).
    Cleanup {
        /// The load's cleanup, already bound.
        cleanup: Label,
        /// Stack offset of the failing extern's index + 1.
        extern_slot: i16,
    },
}

/// Where one program's ksym stage reads and writes, and how it fails.
pub(super) struct Stage<'l> {
    /// Names, slots, instructions and the fd_array.
    pub layout: &'l Layout,
    /// The fd_array slot before this program's first kfunc slot.
    pub slot_before: u32,
    /// What a strong failure does.
    pub abort: Abort,
    /// The labels its code binds again and again.
    pub labels: Labels,
}

/// How far behind the cleanup (or its latest relay) may fall before a
/// relay is emitted: a stretch emitted between two calls of
/// [`Stage::keep_in_reach`] must stay under `i16::MAX - REACH`.
pub(super) const REACH: u32 = 8192;

impl Stage<'_> {
    fn whole_load(&self) -> bool {
        matches!(self.abort, Abort::Cleanup { .. })
    }

    /// Keeps the cleanup in reach of the next failure (whole load only).
    pub fn keep_in_reach(&self, a: &mut Asm<'_>) -> Result<()> {
        match self.abort {
            Abort::Cleanup { cleanup, .. } => a.keep_in_reach(cleanup, REACH),
            Abort::Exit => Ok(()),
        }
    }
}

/// The labels every site binds again: allocated once per loader, since
/// the assembler holds a fixed number.
#[derive(Clone, Copy, Debug)]
pub(super) struct Labels {
    /// The site is done.
    done: Label,
    /// The lookup succeeded (or missed harmlessly): store its result.
    found: Label,
    /// A kfunc found in vmlinux, which needs no fd_array slot.
    vmlinux: Label,
    /// A copied kfunc site that is no poisoned one.
    copy: Label,
    /// Past one descriptor's close.
    pub skip: Label,
}

impl Labels {
    /// Allocates them in `a`.
    pub fn new(a: &mut Asm<'_>) -> Result<Labels> {
        Ok(Labels {
            done: a.label()?,
            found: a.label()?,
            vmlinux: a.label()?,
            copy: a.label()?,
            skip: a.label()?,
        })
    }
}

/// Writes the standalone loader: every site, the cleanup if asked,
/// `return 0`.
pub(super) fn emit_loader(
    lookups: &Lookups<'_, '_>,
    layout: &Layout,
    opts: &GenOptions,
    a: &mut Asm<'_>,
) -> Result<()> {
    let stage = Stage {
        layout,
        slot_before: 0,
        abort: Abort::Exit,
        labels: Labels::new(a)?,
    };
    emit_sites(lookups, &stage, a)?;
    if opts.cleanup {
        close_module_fds(a, lookups, &stage)?;
    }
    a.mov_imm(R0, 0)?;
    a.exit()
}

/// Every site of one program: its lookup, or the copy of its first site's.
pub(super) fn emit_sites(lookups: &Lookups<'_, '_>, stage: &Stage<'_>, a: &mut Asm<'_>) -> Result<()> {
    let layout = stage.layout;
    let labels = stage.labels;
    let mut name_off = layout.names_off;
    let mut slot_off = layout.slots_off;
    let mut fd_slot = stage.slot_before;
    for entry in lookups.entries() {
        let entry = entry?;
        stage.keep_in_reach(a)?;
        a.ld_map_value(SITE, BLOB, layout.insn_at(entry.site.insn_idx)?)?;
        if let Some(first) = entry.first {
            copy_first(a, stage, &entry, first, labels.done)?;
            continue;
        }
        let name = entry.ext.lookup_name();
        a.ld_map_value(R1, BLOB, name_off)?;
        a.mov_imm(R2, name_size(name)? as i32)?;
        name_off += name_room(name)?;
        match entry.lookup {
            Lookup::Typeless => {
                kallsyms_lookup(a, stage, &entry, slot_off, &labels)?;
                slot_off += SLOT_SIZE;
            }
            Lookup::Btf { kind } => btf_lookup(a, stage, &entry, kind, &labels)?,
            Lookup::Kfunc => {
                fd_slot += 1;
                kfunc_lookup(a, stage, &entry, fd_slot, &labels)?;
            }
        }
    }
    Ok(())
}

/// A later site of a lookup: the first site's result copied (R1 at it).
fn copy_first(a: &mut Asm<'_>, stage: &Stage<'_>, entry: &Entry<'_, '_>, first: &Site, done: Label) -> Result<()> {
    a.ld_map_value(R1, BLOB, stage.layout.insn_at(first.insn_idx)?)?;
    match entry.lookup {
        Lookup::Typeless => {
            copy_field(a, field::IMM, op::LDX_W, op::STX_W)?;
            copy_field(a, field::NEXT_IMM, op::LDX_W, op::STX_W)
        }
        Lookup::Btf { .. } => {
            copy_field(a, field::IMM, op::LDX_W, op::STX_W)?;
            copy_field(a, field::NEXT_IMM, op::LDX_W, op::STX_W)?;
            // A weak miss copied as id 0: clear src_reg here too.
            a.load(op::LDX_W, TMP, R1, field::IMM)?;
            a.jump(op::JNE_IMM, TMP, 0, done)?;
            clear_src_reg(a)?;
            a.bind(done)
        }
        Lookup::Kfunc if stage.whole_load() => {
            // The first site poisoned (src_reg cleared): poison this one
            // too, with its own extern's index, as libbpf does.
            a.load(op::LDX_B, TMP, R1, field::REGS)?;
            a.alu_imm(op::AND64_IMM, TMP, !field::KEEP_DST_REG & 0xff)?;
            let copy = stage.labels.copy;
            a.jump(op::JNE_IMM, TMP, 0, copy)?;
            poison(a, entry)?;
            a.goto(done)?;
            a.bind(copy)?;
            copy_field(a, field::IMM, op::LDX_W, op::STX_W)?;
            copy_field(a, field::OFF, op::LDX_H, op::STX_H)?;
            a.bind(done)
        }
        Lookup::Kfunc => {
            copy_field(a, field::IMM, op::LDX_W, op::STX_W)?;
            copy_field(a, field::OFF, op::LDX_H, op::STX_H)
        }
    }
}

/// The site's call poisoned: `src_reg` 0, `off` 0, `imm` the poison base
/// plus the extern's index (the verifier refuses it only if reachable).
fn poison(a: &mut Asm<'_>, entry: &Entry<'_, '_>) -> Result<()> {
    let imm = POISON_CALL_KFUNC_BASE.wrapping_add(entry.ext.index.0 as i32);
    a.store_imm(op::ST_W, SITE, field::IMM, imm)?;
    a.store_imm(op::ST_H, SITE, field::OFF, 0)?;
    clear_src_reg(a)
}

/// `SITE->at = R1->at`.
fn copy_field(a: &mut Asm<'_>, at: i16, load: u8, store: u8) -> Result<()> {
    a.load(load, TMP, R1, at)?;
    a.store(store, SITE, at, TMP)
}

/// `bpf_kallsyms_lookup_name(R1 name, R2 size, 0, slot)`; the address
/// into both halves of the `ld_imm64`.
fn kallsyms_lookup(a: &mut Asm<'_>, stage: &Stage<'_>, entry: &Entry<'_, '_>, slot_off: u32, l: &Labels) -> Result<()> {
    a.mov_imm(R3, 0)?;
    a.ld_map_value(R4, BLOB, slot_off)?;
    a.call_helper(helper::KALLSYMS_LOOKUP_NAME)?;
    a.mov(RESULT, R0)?;
    // -ENOENT: address 0 (the slot stays zero), for a weak extern; for a
    // strong one too in the standalone patcher, as gen_loader.
    if entry.ext.weak || !stage.whole_load() {
        a.jump(op::JEQ_IMM, RESULT, -ENOENT, l.found)?;
    }
    abort_unless_ok(a, stage, entry.site.extern_idx, l.found)?;
    a.ld_map_value(R1, BLOB, slot_off)?;
    a.load(op::LDX_DW, TMP, R1, 0)?;
    a.store(op::STX_W, SITE, field::IMM, TMP)?;
    a.alu_imm(op::RSH64_IMM, TMP, 32)?;
    a.store(op::STX_W, SITE, field::NEXT_IMM, TMP)
}

/// A typed (or kfunc-address) `ld_imm64`: id and BTF object fd; a weak
/// miss leaves both 0 and clears `src_reg`.
fn btf_lookup(a: &mut Asm<'_>, stage: &Stage<'_>, entry: &Entry<'_, '_>, kind: i32, l: &Labels) -> Result<()> {
    btf_find(a, kind)?;
    unless_found(a, stage, entry, l, |a| {
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
/// leaves `imm` and `off` 0 in the standalone patcher (whose caller
/// poisons), and poisons the call in a whole load.
fn kfunc_lookup(a: &mut Asm<'_>, stage: &Stage<'_>, entry: &Entry<'_, '_>, fd_slot: u32, l: &Labels) -> Result<()> {
    btf_find(a, Kind::Func as i32)?;
    let whole_load = stage.whole_load();
    unless_found(a, stage, entry, l, |a| {
        if whole_load {
            return poison(a, entry);
        }
        a.store_imm(op::ST_W, SITE, field::IMM, 0)?;
        a.store_imm(op::ST_H, SITE, field::OFF, 0)
    })?;
    store_id_take_fd(a)?;
    a.jump(op::JEQ_IMM, TMP, 0, l.vmlinux)?;
    a.ld_map_value(R1, BLOB, stage.layout.fd_slot_at(fd_slot)?)?;
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
    stage: &Stage<'_>,
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
        abort_unless_ok(a, stage, entry.site.extern_idx, l.found)
    }
}

/// Unless `RESULT >= 0`: records the failing extern and fails as the
/// stage says (exit, or the load's cleanup). Binds `ok` after that, for
/// jumps already made to it too.
fn abort_unless_ok(a: &mut Asm<'_>, stage: &Stage<'_>, extern_idx: ExternIdx, ok: Label) -> Result<()> {
    a.jump(op::JSGE_IMM, RESULT, 0, ok)?;
    let recorded = extern_idx.0.wrapping_add(1) as i32;
    match stage.abort {
        Abort::Exit => {
            a.ld_map_value(R1, BLOB, stage.layout.status_off)?;
            a.store_imm(op::ST_W, R1, status::EXTERN, recorded)?;
            a.store(op::STX_W, R1, status::ERROR, RESULT)?;
            a.mov(R0, RESULT)?;
            a.exit()?;
        }
        Abort::Cleanup { cleanup, extern_slot } => {
            a.store_imm(op::ST_W, Reg::R10, extern_slot, recorded)?;
            a.jump_back(op::JA, R0, 0, cleanup)?;
        }
    }
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

/// `bpf_sys_close` on every positive BTF object fd the lookups obtained.
pub(super) fn close_module_fds(a: &mut Asm<'_>, lookups: &Lookups<'_, '_>, stage: &Stage<'_>) -> Result<()> {
    let skip = stage.labels.skip;
    for fd_at in module_fd_offsets(lookups, stage) {
        stage.keep_in_reach(a)?;
        a.ld_map_value(R2, BLOB, fd_at?)?;
        a.load(op::LDX_W, R1, R2, 0)?;
        if stage.whole_load() {
            a.jump(op::JSLE_IMM, R1, 0, skip)?;
        } else {
            a.jump(op::JEQ_IMM, R1, 0, skip)?;
        }
        a.call_helper(helper::SYS_CLOSE)?;
        a.bind(skip)?;
    }
    Ok(())
}

/// Blob offsets of the `i32`s where the lookups leave module BTF fds: the
/// second `imm` of typed sites' first `ld_imm64`, kfuncs' fd_array slots.
pub(super) fn module_fd_offsets<'s>(
    lookups: &'s Lookups<'_, '_>,
    stage: &'s Stage<'_>,
) -> impl Iterator<Item = Result<u32>> + 's {
    let mut fd_slot = stage.slot_before;
    lookups.firsts().filter_map(move |entry| {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        match entry.lookup {
            Lookup::Typeless => None,
            Lookup::Btf { .. } => Some(
                stage
                    .layout
                    .insn_at(entry.site.insn_idx)
                    .map(|at| at + field::NEXT_IMM as u32),
            ),
            Lookup::Kfunc => {
                fd_slot += 1;
                Some(stage.layout.fd_slot_at(fd_slot))
            }
        }
    })
}
