//! The whole load's blob: every piece [`super::place::walk`] places,
//! written where it says — data copied, each `bpf_attr` with the fields
//! known before the run (the loader fills in the rest), and each program's
//! ksym names and marked instructions.

use super::attr::{self, put, put32, OBJ_NAME_LEN};
use super::load::{Load, Records};
use super::lookups::Lookups;
use super::place::{walk, LoadLayout, Piece};
use crate::error::{Error, Result};
use crate::insn;

const SHORT: Error = Error::Mismatch {
    what: "blob shorter than its layout",
};

/// `blob[at..at + len]`.
fn region(blob: &mut [u8], at: u32, len: usize) -> Result<&mut [u8]> {
    let at = at as usize;
    blob.get_mut(at..at.checked_add(len).ok_or(SHORT)?).ok_or(SHORT)
}

/// Writes the blob (its first `layout.end` bytes, zeroed first).
pub(super) fn write(load: &Load<'_>, layout: &LoadLayout, blob: &mut [u8]) -> Result<()> {
    region(blob, 0, layout.end as usize)?.fill(0);
    walk(load, |piece| match piece {
        Piece::Btf(data, place) => {
            region(blob, place.data_off, data.len())?.copy_from_slice(data);
            let a = region(blob, place.attr_off, attr::btf_load::SIZE as usize)?;
            put32(a, attr::btf_load::SIZE_FIELD, place.size);
            Ok(())
        }
        Piece::Map(_, map, place) => {
            map.attr
                .write(region(blob, place.attr_off, attr::map_create::SIZE as usize)?);
            if let Some(v) = map.initial_value {
                region(blob, place.value_off, v.len())?.copy_from_slice(v);
            }
            Ok(())
        }
        Piece::Prog(_, prog, place, lookups) => {
            use attr::prog_load as p;
            region(blob, place.license_off, prog.license.len())?.copy_from_slice(prog.license.as_bytes());
            let code = insn::as_bytes(prog.insns);
            let insns = region(blob, place.ksym.insns_off, code.len())?;
            insns.copy_from_slice(code);
            super::prepatch(insn::insns_mut(insns)?, prog.externs, prog.sites)?;
            let records = [
                (
                    prog.func_info,
                    place.func_info_off,
                    p::FUNC_INFO_REC_SIZE,
                    p::FUNC_INFO_CNT,
                ),
                (
                    prog.line_info,
                    place.line_info_off,
                    p::LINE_INFO_REC_SIZE,
                    p::LINE_INFO_CNT,
                ),
                (
                    prog.core_relos,
                    place.core_relos_off,
                    p::CORE_RELO_REC_SIZE,
                    p::CORE_RELO_CNT,
                ),
            ];
            for (r, off, _, _) in records {
                if let Some(Records { bytes, .. }) = r {
                    region(blob, off, bytes.len())?.copy_from_slice(bytes);
                }
            }
            if let Some(t) = prog.attach {
                region(blob, place.attach_name_off, t.name.len())?.copy_from_slice(t.name.as_bytes());
            }
            let a = region(blob, place.attr_off, p::SIZE as usize)?;
            put32(a, p::PROG_TYPE, prog.prog_type);
            put32(a, p::INSN_CNT, place.ksym.insn_cnt);
            put32(a, p::PROG_FLAGS, prog.prog_flags);
            let n = prog.name.len().min(OBJ_NAME_LEN - 1);
            put(a, p::NAME, &prog.name.as_bytes()[..n]);
            put32(a, p::EXPECTED_ATTACH_TYPE, prog.expected_attach_type);
            for (r, _, rec_size, cnt) in records {
                if let Some(r) = r {
                    put32(a, rec_size, r.rec_size);
                    put32(a, cnt, (r.bytes.len() / r.rec_size as usize) as u32);
                }
            }
            write_names(lookups, place.ksym.names_off, blob)
        }
    })?;
    Ok(())
}

/// Each looked-up name, NUL-terminated and 8-aligned, from `at`.
pub(super) fn write_names(lookups: &Lookups<'_, '_>, mut at: u32, blob: &mut [u8]) -> Result<()> {
    for entry in lookups.firsts() {
        let name = entry?.ext.lookup_name();
        region(blob, at, name.len())?.copy_from_slice(name.as_bytes());
        at = at
            .checked_add(super::layout::name_room(name)?)
            .ok_or(Error::Overflow { what: "blob layout" })?;
    }
    Ok(())
}
