//! The whole-load loader (libbpf's gen_loader, with SPEC §5's additions):
//! one `BPF_PROG_TYPE_SYSCALL` program that, run once with
//! `BPF_PROG_TEST_RUN` over the context of [`super::load::ctx`], loads the
//! BTF, creates, fills and freezes the maps, resolves each program's ksyms
//! (the ksym stage of [`super::emit`]) and loads the programs, all with
//! `bpf_sys_bpf`, and hands the descriptors back in the context.
//!
//! Shape:
//!
//! ```text
//!   r6 = ctx; goto start
//! cleanup:          every failure jumps back here with the error in r7
//!   status (stack) -> ctx; close the failing program's module BTF fds,
//!   the BTF fd, every map fd, every program fd; return r7
//! start:
//!   zero the status and the blob's descriptor table
//!   [sealed: the blob's map exclusive to this loader, its SHA-256 the one
//!   the loader was generated for]
//!   BTF_LOAD; per map MAP_CREATE [UPDATE_ELEM] [FREEZE];
//!   per program: ksym stage, [attach target], PROG_LOAD, close its module fds
//!   close the BTF fd; map and program fds -> ctx; return 0
//! ```
//!
//! The status lives on the stack while the loader runs (the step and its
//! index are stored before each step, the extern before each lookup that
//! may fail), so a failure costs one backward jump wherever it happens.

use super::attr::{self, cmd};
use super::emit::{close_module_fds, emit_sites, module_fd_offsets, Abort, Labels, Stage, REACH};
use super::load::{ctx, Load, Step};
use super::place::{walk, LoadLayout, Piece, ProgPlace};
use crate::asm::{Asm, Label, Reg};
use crate::bpf::{helper, op, pseudo, EBADMSG, EPERM, MAP_EXCL_OFF, MAP_SHA_OFF};
use crate::error::{Error, Result};
use crate::insn::Insn;

use Reg::{R0, R1, R10, R2, R3, R4, R6, R7, R8};

/// Map index of the blob.
const BLOB: i32 = 0;
/// The context, for the whole run.
const CTX: Reg = R6;
/// The last command's result (an fd or `-errno`).
const RET: Reg = R7;
/// Stack slots of the status: step kind, its index, extern index + 1, and
/// the program (index + 1) whose module BTF fds are open.
const STEP_SLOT: i16 = -8;
const INDEX_SLOT: i16 = -4;
const EXTERN_SLOT: i16 = -12;
const OPEN_SLOT: i16 = -16;

/// Counts the loader's instructions and lays out the blob and the context
/// for `load`, writing nothing.
pub fn plan_load(load: &Load<'_>) -> Result<LoadLayout> {
    let layout = walk(load, |_| Ok(()))?;
    assemble(load, layout, None, None)
}

/// [`plan_load`] for [`emit_sealed_load`] (the seal check makes the
/// loader about 36 instructions longer).
pub fn plan_sealed_load(load: &Load<'_>) -> Result<LoadLayout> {
    let layout = walk(load, |_| Ok(()))?;
    assemble(load, layout, None, Some(&[0; 32]))
}

/// Emits the loader into `loader` and the blob into `blob` (its first
/// [`LoadLayout::end`] bytes; the rest is left alone). Programs' ksym
/// sites are marked in the blob's copy as [`super::prepatch`] marks them.
///
/// If `loader` is too short the error comes with `loader` partly written
/// and `blob` untouched.
pub fn emit_load(load: &Load<'_>, loader: &mut [Insn], blob: &mut [u8]) -> Result<LoadLayout> {
    let layout = walk(load, |_| Ok(()))?;
    if (blob.len() as u64) < u64::from(layout.end) {
        return Err(Error::CapacityExceeded {
            what: "loader blob",
            capacity: blob.len(),
        });
    }
    let layout = assemble(load, layout, Some(loader), None)?;
    super::blob::write(load, &layout, blob)?;
    Ok(layout)
}

/// [`emit_load`], sealed: the loader first checks that its blob's map is
/// exclusive to it (`struct bpf_map`'s `excl`) and that the map's SHA-256
/// (`sha`, which the kernel fills when `BPF_OBJ_GET_INFO_BY_FD` asks for a
/// frozen map's hash) is `sha256(blob)`, and otherwise fails at
/// [`Step::Seal`] before it reads a byte of the blob. `sha256` is given
/// the blob's first [`LoadLayout::end`] bytes (a multiple of 8, so the
/// kernel's hash of the array value covers exactly them).
///
/// Whoever runs it creates the blob's map with `excl_prog_hash` =
/// SHA-256 of the loader's instructions, writes the blob, freezes the
/// map and asks for its hash before loading the loader (Linux 6.18).
pub fn emit_sealed_load(
    load: &Load<'_>,
    loader: &mut [Insn],
    blob: &mut [u8],
    sha256: impl FnOnce(&[u8]) -> [u8; 32],
) -> Result<LoadLayout> {
    let layout = walk(load, |_| Ok(()))?;
    let Some(blob) = blob.get_mut(..layout.end as usize) else {
        return Err(Error::CapacityExceeded {
            what: "loader blob",
            capacity: blob.len(),
        });
    };
    super::blob::write(load, &layout, blob)?;
    let digest = sha256(blob);
    assemble(load, layout, Some(loader), Some(&digest))
}

/// The program `prog`'s instructions in `blob` as the loader left them
/// (its ksym sites patched), for tests and for comparing with libbpf.
pub fn program_insns<'b>(load: &Load<'_>, blob: &'b [u8], prog: usize) -> Result<&'b [Insn]> {
    let mut found = None;
    walk(load, |piece| {
        if let Piece::Prog(i, _, place, _) = piece {
            if i as usize == prog {
                found = Some(place.ksym);
            }
        }
        Ok(())
    })?;
    let ksym = found.ok_or(Error::Mismatch {
        what: "program index past the load's programs",
    })?;
    super::patched_insns(blob, &ksym)
}

fn assemble(
    load: &Load<'_>,
    layout: LoadLayout,
    loader: Option<&mut [Insn]>,
    seal: Option<&[u8; 32]>,
) -> Result<LoadLayout> {
    let mut a = Asm::new(loader);
    emit_program(load, &layout, seal, &mut a)?;
    let loader_len = u32::try_from(a.finish()?).map_err(|_| Error::Overflow {
        what: "loader instructions",
    })?;
    Ok(LoadLayout { loader_len, ..layout })
}

/// The loader's labels: the stage's, and the loader's own.
#[derive(Clone, Copy)]
struct Marks {
    stage: Labels,
    cleanup: Label,
    /// The cleanup's: another program's module fds; all closed.
    other: Label,
    done: Label,
}

fn emit_program(load: &Load<'_>, layout: &LoadLayout, seal: Option<&[u8; 32]>, a: &mut Asm<'_>) -> Result<()> {
    let m = Marks {
        stage: Labels::new(a)?,
        cleanup: a.label()?,
        other: a.label()?,
        done: a.label()?,
    };
    a.mov(CTX, R1)?;
    let start = a.label()?;
    a.goto(start)?;
    a.bind(m.cleanup)?;
    emit_cleanup(load, layout, m, a)?;
    a.bind(start)?;
    a.store_imm(op::ST_DW, R10, STEP_SLOT, 0)?;
    a.store_imm(op::ST_DW, R10, OPEN_SLOT, 0)?;
    // The descriptor table first: the cleanup closes what it holds.
    zero_blob(a, m, 0, layout.prog_fds_off + 4 * (load.progs.len() as u32).max(1))?;
    if let Some(digest) = seal {
        emit_seal_check(a, m, digest)?;
    }
    walk(load, |piece| emit_piece(a, layout, m, piece))?;
    if load.btf.is_some() {
        close_fd_at(a, m, layout.btf_fd_off)?;
    }
    for i in 0..load.maps.len() as u32 {
        fd_to_ctx(a, layout.fd_array_off + 4 * i, ctx::FDS + 4 * i)?;
    }
    let maps = load.maps.len() as u32;
    for i in 0..load.progs.len() as u32 {
        fd_to_ctx(a, layout.prog_fds_off + 4 * i, ctx::FDS + 4 * (maps + i))?;
    }
    a.mov_imm(R0, 0)?;
    a.exit()
}

/// Fails at [`Step::Seal`] unless the blob's map is exclusive (`-EPERM`)
/// and its SHA-256 is `digest` (`-EBADMSG`).
fn emit_seal_check(a: &mut Asm<'_>, m: Marks, digest: &[u8; 32]) -> Result<()> {
    step(a, m, Step::Seal)?;
    a.ld_imm64(R1, pseudo::MAP_IDX, BLOB, 0)?;
    a.load(op::LDX_W, R2, R1, MAP_EXCL_OFF)?;
    a.mov_imm(RET, -EPERM)?;
    a.jump_back(op::JNE_IMM, R2, 1, m.cleanup)?;
    a.mov_imm(RET, -EBADMSG)?;
    for (i, dword) in digest.chunks_exact(8).enumerate() {
        // The map's bytes read as a little-endian u64, as the target is.
        let lo = i32::from_le_bytes([dword[0], dword[1], dword[2], dword[3]]);
        let hi = i32::from_le_bytes([dword[4], dword[5], dword[6], dword[7]]);
        a.ld_imm64(R1, pseudo::MAP_IDX, BLOB, 0)?;
        a.load(op::LDX_DW, R2, R1, MAP_SHA_OFF + 8 * i as i16)?;
        a.ld_imm64(R3, 0, lo, hi)?;
        a.op(op::XOR64_REG, R2, R3, 0, 0)?;
        a.jump_back(op::JNE_IMM, R2, 0, m.cleanup)?;
    }
    Ok(())
}

/// The cleanup every failure jumps back to (R7: the error).
fn emit_cleanup(load: &Load<'_>, layout: &LoadLayout, m: Marks, a: &mut Asm<'_>) -> Result<()> {
    for (slot, at) in [
        (STEP_SLOT, ctx::STEP),
        (INDEX_SLOT, ctx::INDEX),
        (EXTERN_SLOT, ctx::EXTERN),
    ] {
        a.load(op::LDX_W, R1, R10, slot)?;
        a.store(op::STX_W, CTX, at as i16, R1)?;
    }
    a.store(op::STX_W, CTX, ctx::ERROR as i16, RET)?;
    // The module fds of the program being resolved or loaded, if any.
    a.load(op::LDX_W, R8, R10, OPEN_SLOT)?;
    walk(load, |piece| {
        let Piece::Prog(i, _, place, lookups) = piece else {
            return Ok(());
        };
        let stage = stage_of(&place, m);
        if module_fd_offsets(lookups, &stage).next().is_none() {
            return Ok(());
        }
        a.jump(op::JNE_IMM, R8, i as i32 + 1, m.other)?;
        for at in module_fd_offsets(lookups, &stage) {
            close_fd_at(a, m, at?)?;
        }
        a.goto(m.done)?;
        a.bind(m.other)
    })?;
    a.bind(m.done)?;
    if load.btf.is_some() {
        close_fd_at(a, m, layout.btf_fd_off)?;
    }
    for i in 0..load.maps.len() as u32 {
        close_fd_at(a, m, layout.fd_array_off + 4 * i)?;
    }
    for i in 0..load.progs.len() as u32 {
        close_fd_at(a, m, layout.prog_fds_off + 4 * i)?;
    }
    a.mov(R0, RET)?;
    a.exit()
}

/// A program's ksym stage as the whole load runs it.
fn stage_of(place: &ProgPlace, m: Marks) -> Stage<'_> {
    Stage {
        layout: &place.ksym,
        slot_before: place.slot_before,
        abort: Abort::Cleanup {
            cleanup: m.cleanup,
            extern_slot: EXTERN_SLOT,
        },
        labels: m.stage,
    }
}

fn emit_piece(a: &mut Asm<'_>, layout: &LoadLayout, m: Marks, piece: Piece<'_, '_>) -> Result<()> {
    let cleanup = m.cleanup;
    match piece {
        Piece::Btf(_, place) => {
            step(a, m, Step::Btf)?;
            let at = place.attr_off;
            a.load(op::LDX_W, R0, CTX, ctx::FLAGS as i16)?;
            a.alu_imm(op::AND64_IMM, R0, ctx::PROGRAM_LOG_ONLY as i32)?;
            a.jump(op::JNE_IMM, R0, 0, m.stage.skip)?;
            log_to_attr(
                a,
                at,
                attr::btf_load::LOG_LEVEL,
                attr::btf_load::LOG_SIZE,
                attr::btf_load::LOG_BUF,
            )?;
            a.bind(m.stage.skip)?;
            rel_store(a, at + attr::btf_load::BTF, place.data_off)?;
            sys_bpf(a, cmd::BTF_LOAD, at, attr::btf_load::SIZE)?;
            check(a, cleanup)?;
            store_ret(a, layout.btf_fd_off)
        }
        Piece::Map(i, map, place) => {
            let fd_at = layout.fd_array_off + 4 * i;
            step(a, m, Step::MapCreate(i))?;
            if map.attr.uses_btf() {
                blob_to_blob(a, place.attr_off + attr::map_create::BTF_FD, layout.btf_fd_off)?;
            }
            sys_bpf(a, cmd::MAP_CREATE, place.attr_off, attr::map_create::SIZE)?;
            check(a, cleanup)?;
            store_ret(a, fd_at)?;
            if map.initial_value.is_some() {
                step(a, m, Step::MapUpdate(i))?;
                let at = place.update_off;
                blob_to_blob(a, at + attr::map_elem::MAP_FD, fd_at)?;
                rel_store(a, at + attr::map_elem::KEY, place.key_off)?;
                rel_store(a, at + attr::map_elem::VALUE, place.value_off)?;
                sys_bpf(a, cmd::MAP_UPDATE_ELEM, at, attr::map_elem::SIZE)?;
                check(a, cleanup)?;
            }
            if map.freeze {
                step(a, m, Step::MapFreeze(i))?;
                blob_to_blob(a, place.freeze_off + attr::map_freeze::MAP_FD, fd_at)?;
                sys_bpf(a, cmd::MAP_FREEZE, place.freeze_off, attr::map_freeze::SIZE)?;
                check(a, cleanup)?;
            }
            Ok(())
        }
        Piece::Prog(i, prog, place, lookups) => {
            use attr::prog_load as p;
            let stage = stage_of(&place, m);
            step(a, m, Step::Extern { prog: i, extern_idx: 0 })?;
            a.store_imm(op::ST_W, R10, OPEN_SLOT, i as i32 + 1)?;
            // Module fd places hold 0 or an fd of this run (see cleanup).
            for at in module_fd_offsets(lookups, &stage) {
                a.ld_map_value(R1, BLOB, at?)?;
                a.store_imm(op::ST_W, R1, 0, 0)?;
            }
            emit_sites(lookups, &stage, a)?;
            let at = place.attr_off;
            if let Some(target) = prog.attach {
                step(a, m, Step::AttachTarget(i))?;
                a.ld_map_value(R1, BLOB, place.attach_name_off)?;
                a.mov_imm(R2, super::layout::name_size(target.name)? as i32)?;
                a.mov_imm(R3, target.kind as i32)?;
                a.mov_imm(R4, 0)?;
                a.call_helper(helper::BTF_FIND_BY_NAME_KIND)?;
                a.mov(RET, R0)?;
                check(a, cleanup)?;
                a.ld_map_value(R0, BLOB, at)?;
                a.store(op::STX_W, R0, p::ATTACH_BTF_ID as i16, RET)?;
                a.alu_imm(op::RSH64_IMM, RET, 32)?;
                a.store(op::STX_W, R0, p::ATTACH_BTF_OBJ_FD as i16, RET)?;
            }
            step(a, m, Step::Program(i))?;
            rel_store(a, at + p::LICENSE, place.license_off)?;
            rel_store(a, at + p::INSNS, place.ksym.insns_off)?;
            for (field, off) in [
                (p::FUNC_INFO, place.func_info_off),
                (p::LINE_INFO, place.line_info_off),
                (p::CORE_RELOS, place.core_relos_off),
            ] {
                if off != 0 {
                    rel_store(a, at + field, off)?;
                }
            }
            if layout.fd_array_len != 0 {
                rel_store(a, at + p::FD_ARRAY, layout.fd_array_off)?;
            }
            log_to_attr(a, at, p::LOG_LEVEL, p::LOG_SIZE, p::LOG_BUF)?;
            if prog.uses_btf() {
                blob_to_blob(a, at + p::PROG_BTF_FD, layout.btf_fd_off)?;
            }
            sys_bpf(a, cmd::PROG_LOAD, at, p::SIZE)?;
            // Loaded or not, the module fds have served (R7 survives calls).
            close_module_fds(a, lookups, &stage)?;
            if prog.attach.is_some() {
                close_fd_at(a, m, at + p::ATTACH_BTF_OBJ_FD)?;
            }
            a.store_imm(op::ST_W, R10, OPEN_SLOT, 0)?;
            check(a, cleanup)?;
            store_ret(a, layout.prog_fds_off + 4 * i)
        }
    }
}

/// Records the step about to run (and keeps the cleanup in reach of it).
fn step(a: &mut Asm<'_>, m: Marks, step: Step) -> Result<()> {
    a.keep_in_reach(m.cleanup, REACH)?;
    let (kind, index) = step.code();
    a.store_imm(op::ST_W, R10, STEP_SLOT, kind as i32)?;
    a.store_imm(op::ST_W, R10, INDEX_SLOT, index as i32)
}

/// `if (r7 < 0) goto cleanup`.
fn check(a: &mut Asm<'_>, cleanup: Label) -> Result<()> {
    a.jump_back(op::JSLT_IMM, RET, 0, cleanup)
}

/// `r7 = bpf_sys_bpf(cmd, &blob[attr], size)`.
fn sys_bpf(a: &mut Asm<'_>, command: i32, attr_off: u32, size: u32) -> Result<()> {
    a.mov_imm(R1, command)?;
    a.ld_map_value(R2, BLOB, attr_off)?;
    a.mov_imm(R3, size as i32)?;
    a.call_helper(helper::SYS_BPF)?;
    a.mov(RET, R0)
}

/// `*(u32 *)&blob[at] = r7`.
fn store_ret(a: &mut Asm<'_>, at: u32) -> Result<()> {
    a.ld_map_value(R1, BLOB, at)?;
    a.store(op::STX_W, R1, 0, RET)
}

/// `*(u64 *)&blob[at] = &blob[data]`: a pointer the kernel reads.
fn rel_store(a: &mut Asm<'_>, at: u32, data: u32) -> Result<()> {
    a.ld_map_value(R0, BLOB, data)?;
    a.ld_map_value(R1, BLOB, at)?;
    a.store(op::STX_DW, R1, 0, R0)
}

/// `*(u32 *)&blob[at] = *(u32 *)&blob[from]`.
fn blob_to_blob(a: &mut Asm<'_>, at: u32, from: u32) -> Result<()> {
    a.ld_map_value(R2, BLOB, from)?;
    a.load(op::LDX_W, R0, R2, 0)?;
    a.ld_map_value(R1, BLOB, at)?;
    a.store(op::STX_W, R1, 0, R0)
}

/// The context's log level, size and buffer into an attribute at `at`.
fn log_to_attr(a: &mut Asm<'_>, at: u32, level: u32, size: u32, buf: u32) -> Result<()> {
    a.ld_map_value(R1, BLOB, at)?;
    for (code_ld, code_st, from, to) in [
        (op::LDX_W, op::STX_W, ctx::LOG_LEVEL, level),
        (op::LDX_W, op::STX_W, ctx::LOG_SIZE, size),
        (op::LDX_DW, op::STX_DW, ctx::LOG_BUF, buf),
    ] {
        a.load(code_ld, R0, CTX, from as i16)?;
        a.store(code_st, R1, to as i16, R0)?;
    }
    Ok(())
}

/// `*(u32 *)(ctx + to) = *(u32 *)&blob[from]`.
fn fd_to_ctx(a: &mut Asm<'_>, from: u32, to: u32) -> Result<()> {
    a.ld_map_value(R1, BLOB, from)?;
    a.load(op::LDX_W, R0, R1, 0)?;
    a.store(op::STX_W, CTX, to as i16, R0)
}

/// `bpf_sys_close(*(u32 *)&blob[at])` if it is positive.
fn close_fd_at(a: &mut Asm<'_>, m: Marks, at: u32) -> Result<()> {
    let skip = m.stage.skip;
    a.ld_map_value(R2, BLOB, at)?;
    a.load(op::LDX_W, R1, R2, 0)?;
    a.jump(op::JSLE_IMM, R1, 0, skip)?;
    a.call_helper(helper::SYS_CLOSE)?;
    a.bind(skip)
}

/// Zeroes `blob[from..from + len]` (`len` a multiple of 8) with 8-byte
/// stores, the base reloaded before the stores' offsets leave `i16`.
fn zero_blob(a: &mut Asm<'_>, m: Marks, from: u32, len: u32) -> Result<()> {
    const SPAN: u32 = 1 << 14;
    let mut base = from;
    while base < from + len {
        a.keep_in_reach(m.cleanup, REACH)?;
        a.ld_map_value(R1, BLOB, base)?;
        let mut off = 0;
        while off < SPAN && base + off < from + len {
            a.store_imm(op::ST_DW, R1, off as i16, 0)?;
            off += 8;
        }
        base += SPAN;
    }
    Ok(())
}
