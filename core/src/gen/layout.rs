//! Where everything is in the loader's blob: the region's [`Layout`] and
//! the named byte offsets the loader reads and writes inside it.

use super::lookups::{Lookup, Lookups};
use super::GenOptions;
use crate::bpf::INSN_SIZE;
use crate::error::{Error, Result};
use crate::index::InsnIdx;

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

/// The status header at [`Layout::status_off`].
pub(super) mod status {
    /// `u32`: index + 1 of the extern whose lookup failed (0: none).
    pub const EXTERN: i16 = 0;
    /// `i32`: the error that lookup returned.
    pub const ERROR: i16 = 4;
    /// Size of the header.
    pub const SIZE: u32 = 8;
}

/// Byte offsets inside one `struct bpf_insn` of the blob's copy of the
/// program (and the second slot of an `ld_imm64`).
pub(super) mod field {
    use crate::bpf::INSN_SIZE;

    /// The register byte, `dst_reg:4 | src_reg:4` (little endian).
    pub const REGS: i16 = 1;
    /// What to AND the register byte with to clear `src_reg`.
    pub const KEEP_DST_REG: i32 = 0x0f;
    /// `off` (`s16`): a kfunc call's fd_array slot.
    pub const OFF: i16 = 2;
    /// `imm` (`s32`): the BTF id, or the low half of an address.
    pub const IMM: i16 = 4;
    /// The `imm` of an `ld_imm64`'s second slot: the BTF object fd, or the
    /// high half of an address.
    pub const NEXT_IMM: i16 = INSN_SIZE as i16 + IMM;
}

/// A kallsyms result slot: the `u64` address.
pub(super) const SLOT_SIZE: u32 = 8;
/// An fd_array entry: an `i32` fd.
pub(super) const FD_SIZE: u32 = 4;

impl Layout {
    /// Offset of the program's instruction `insn_idx` in the blob.
    pub(super) fn insn_at(&self, insn_idx: InsnIdx) -> Result<u32> {
        insn_idx
            .0
            .checked_mul(INSN_SIZE as u32)
            .and_then(|o| o.checked_add(self.insns_off))
            .ok_or(Error::Overflow { what: "blob layout" })
    }

    /// Offset of fd_array slot `slot` in the blob.
    pub(super) fn fd_slot_at(&self, slot: u32) -> Result<u32> {
        slot.checked_mul(FD_SIZE)
            .and_then(|o| o.checked_add(self.fd_array_off))
            .ok_or(Error::Overflow { what: "blob layout" })
    }
}

/// The size the helpers are given for a name: its length with the NUL.
pub(super) fn name_size(name: &str) -> Result<u32> {
    let len = u32::try_from(name.len()).map_err(|_| Error::Overflow { what: "name" })?;
    add(len, 1)
}

/// The room a name takes in the blob (NUL-terminated, 8-aligned).
pub(super) fn name_room(name: &str) -> Result<u32> {
    align8(name_size(name)?)
}

pub(super) fn align8(n: u32) -> Result<u32> {
    n.checked_add(7)
        .map(|n| n & !7)
        .ok_or(Error::Overflow { what: "blob layout" })
}

pub(super) fn add(a: u32, b: u32) -> Result<u32> {
    a.checked_add(b).ok_or(Error::Overflow { what: "blob layout" })
}

/// What a program's lookups need in the blob.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LookupRoom {
    /// Bytes of names.
    pub names: u32,
    /// Bytes of kallsyms result slots.
    pub slots: u32,
    /// kfuncs called (one fd_array slot each).
    pub kfuncs: u32,
}

/// The room these lookups take.
pub(super) fn lookup_room(lookups: &Lookups<'_, '_>) -> Result<LookupRoom> {
    let mut room = LookupRoom::default();
    for entry in lookups.firsts() {
        let entry = entry?;
        room.names = add(room.names, name_room(entry.ext.lookup_name())?)?;
        match entry.lookup {
            Lookup::Typeless => room.slots = add(room.slots, SLOT_SIZE)?,
            Lookup::Kfunc => room.kfuncs = add(room.kfuncs, 1)?,
            Lookup::Btf { .. } => {}
        }
    }
    Ok(room)
}

/// The layout for a program of `insn_cnt` instructions with these lookups
/// (`loader_len` left 0: the emitter tells it).
pub(super) fn compute(lookups: &Lookups<'_, '_>, insn_cnt: usize, opts: &GenOptions) -> Result<Layout> {
    let LookupRoom { names, slots, kfuncs } = lookup_room(lookups)?;
    let insn_cnt = u32::try_from(insn_cnt).map_err(|_| Error::Overflow { what: "insn count" })?;
    let status_off = align8(opts.base)?;
    let names_off = add(status_off, status::SIZE)?;
    let slots_off = add(names_off, names)?;
    let insns_off = add(slots_off, slots)?;
    let fd_array_off = add(
        insns_off,
        insn_cnt
            .checked_mul(INSN_SIZE as u32)
            .ok_or(Error::Overflow { what: "insns" })?,
    )?;
    let fd_array_len = if kfuncs == 0 { 0 } else { add(kfuncs, 1)? };
    if fd_array_len > i16::MAX as u32 {
        return Err(Error::CapacityExceeded {
            what: "fd_array slots",
            capacity: i16::MAX as usize,
        });
    }
    let end = add(fd_array_off, align8(fd_array_len * FD_SIZE)?)?;
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
