//! Where everything of a whole load lives in the blob: a walk over the
//! load, in the order the loader runs it, that places each piece (every
//! `bpf_attr`, the data it points at, each program's ksym names, result
//! slots and instructions). The emitter, the blob writer and the read-back
//! all take their offsets from this one walk.
//!
//! | offset | what |
//! |---|---|
//! | `btf_fd_off` | `i32` the BTF fd (0 until loaded) |
//! | `fd_array_off` | `i32` fd_array: map `i`'s fd at slot `i`, then each program's kfunc module BTF fds (from slot 1 when there is no map) |
//! | `prog_fds_off` | `i32` program fds |
//! | then | BTF bytes and their `BPF_BTF_LOAD` attribute |
//! | then, per map | `BPF_MAP_CREATE` attribute; initial value, key 0 and `BPF_MAP_UPDATE_ELEM` attribute; `BPF_MAP_FREEZE` attribute |
//! | then, per program | license, instructions, func_info, line_info, core_relos, attach target name, `BPF_PROG_LOAD` attribute, ksym names, kallsyms result slots |
//!
//! Every piece starts 8-aligned.

use super::attr;
use super::layout::{self, add, align8, Layout};
use super::load::{ctx_size, Load, MapDef, ProgDef, Records, MAX_MAPS, MAX_PROGS};
use super::lookups::Lookups;
use crate::bpf::INSN_SIZE;
use crate::error::{Error, Result};

/// Where the descriptors are, how big the blob and the context are, and
/// the loader's length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadLayout {
    /// `i32` BTF fd.
    pub btf_fd_off: u32,
    /// The fd_array every program is loaded with.
    pub fd_array_off: u32,
    /// Its entries.
    pub fd_array_len: u32,
    /// `i32` program fds.
    pub prog_fds_off: u32,
    /// Size of the blob (the loader's map value).
    pub end: u32,
    /// Size of the context (see [`super::load::ctx`]).
    pub ctx_size: u32,
    /// Loader instructions.
    pub loader_len: u32,
}

/// The BTF's place.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BtfPlace {
    pub data_off: u32,
    pub size: u32,
    pub attr_off: u32,
}

/// A map's places (0: absent).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MapPlace {
    pub attr_off: u32,
    pub value_off: u32,
    pub key_off: u32,
    pub update_off: u32,
    pub freeze_off: u32,
}

/// A program's places (0: absent).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProgPlace {
    pub license_off: u32,
    pub func_info_off: u32,
    pub line_info_off: u32,
    pub core_relos_off: u32,
    pub attach_name_off: u32,
    pub attr_off: u32,
    /// Its ksym stage: names, slots, instructions (`insns_off`), and the
    /// load's fd_array (`status_off` unused).
    pub ksym: Layout,
    /// The fd_array slot before its first kfunc's.
    pub slot_before: u32,
}

/// One placed piece, in loader order.
pub(super) enum Piece<'p, 'a> {
    Btf(&'a [u8], BtfPlace),
    Map(u32, &'p MapDef<'a>, MapPlace),
    Prog(u32, &'p ProgDef<'a>, ProgPlace, &'p Lookups<'p, 'a>),
}

struct Cursor(u32);

impl Cursor {
    /// `size` bytes, 8-aligned; 0 bytes take no room and place at 0.
    fn take(&mut self, size: u32) -> Result<u32> {
        if size == 0 {
            return Ok(0);
        }
        let at = self.0;
        self.0 = add(at, align8(size)?)?;
        Ok(at)
    }

    fn take_len(&mut self, len: usize) -> Result<u32> {
        self.take(u32::try_from(len).map_err(|_| Error::Overflow { what: "blob layout" })?)
    }

    fn records(&mut self, r: Option<Records<'_>>) -> Result<u32> {
        match r {
            None => Ok(0),
            Some(r) if r.rec_size == 0 || r.bytes.len() % r.rec_size as usize != 0 => Err(Error::Mismatch {
                what: "BTF.ext records not a whole number of rec_size",
            }),
            Some(r) => self.take_len(r.bytes.len()),
        }
    }
}

/// Checks what the kernel would refuse late or the loader cannot express.
fn check(load: &Load<'_>) -> Result<()> {
    if load.maps.len() > MAX_MAPS {
        return Err(Error::CapacityExceeded {
            what: "maps of one load",
            capacity: MAX_MAPS,
        });
    }
    if load.progs.len() > MAX_PROGS {
        return Err(Error::CapacityExceeded {
            what: "programs of one load",
            capacity: MAX_PROGS,
        });
    }
    let no_btf = load.btf.is_none();
    for m in load.maps {
        if no_btf && m.attr.uses_btf() {
            return Err(Error::Mismatch {
                what: "a map with BTF type ids in a load without BTF",
            });
        }
        if m.initial_value
            .is_some_and(|v| v.len() as u64 != u64::from(m.attr.value_size))
        {
            return Err(Error::Mismatch {
                what: "a map's initial value is not its value size",
            });
        }
    }
    for p in load.progs {
        if no_btf && p.uses_btf() {
            return Err(Error::Mismatch {
                what: "a program with BTF records in a load without BTF",
            });
        }
        for site in p.sites {
            site.check(p.insns)?;
        }
    }
    Ok(())
}

/// Walks the load, calling `visit` for every piece in loader order, and
/// returns the layout (`loader_len` 0).
pub(super) fn walk<'p, 'a>(
    load: &'p Load<'a>,
    mut visit: impl FnMut(Piece<'_, 'a>) -> Result<()>,
) -> Result<LoadLayout> {
    check(load)?;
    let mut kfuncs = 0u32;
    for p in load.progs {
        let lookups = Lookups::new(p.externs, p.sites)?;
        kfuncs = add(kfuncs, layout::lookup_room(&lookups)?.kfuncs)?;
    }
    let maps = load.maps.len() as u32;
    let first_slot = if kfuncs == 0 { maps } else { maps.max(1) };
    let fd_array_len = add(first_slot, kfuncs)?;
    if fd_array_len > i16::MAX as u32 {
        return Err(Error::CapacityExceeded {
            what: "fd_array slots",
            capacity: i16::MAX as usize,
        });
    }
    let mut c = Cursor(0);
    let btf_fd_off = c.take(4)?;
    let fd_array_off = c.take(fd_array_len.max(1) * 4)?;
    let prog_fds_off = c.take((load.progs.len() as u32).max(1) * 4)?;
    if let Some(btf) = load.btf {
        let data_off = c.take_len(btf.len())?;
        let size = btf.len() as u32;
        let attr_off = c.take(attr::btf_load::SIZE)?;
        visit(Piece::Btf(
            btf,
            BtfPlace {
                data_off,
                size,
                attr_off,
            },
        ))?;
    }
    for (i, m) in load.maps.iter().enumerate() {
        let mut place = MapPlace {
            attr_off: c.take(attr::map_create::SIZE)?,
            ..Default::default()
        };
        if let Some(v) = m.initial_value {
            place.value_off = c.take_len(v.len().max(1))?;
            place.key_off = c.take(4)?;
            place.update_off = c.take(attr::map_elem::SIZE)?;
        }
        if m.freeze {
            place.freeze_off = c.take(attr::map_freeze::SIZE)?;
        }
        visit(Piece::Map(i as u32, m, place))?;
    }
    let mut slot_before = first_slot.saturating_sub(1);
    for (i, p) in load.progs.iter().enumerate() {
        let lookups = Lookups::new(p.externs, p.sites)?;
        let room = layout::lookup_room(&lookups)?;
        let license_off = c.take_len(p.license.len() + 1)?;
        let insn_cnt = u32::try_from(p.insns.len()).map_err(|_| Error::Overflow { what: "insn count" })?;
        let insns_off = c.take(
            insn_cnt
                .checked_mul(INSN_SIZE as u32)
                .ok_or(Error::Overflow { what: "insns" })?,
        )?;
        let func_info_off = c.records(p.func_info)?;
        let line_info_off = c.records(p.line_info)?;
        let core_relos_off = c.records(p.core_relos)?;
        let attach_name_off = match p.attach {
            Some(t) => c.take_len(t.name.len() + 1)?,
            None => 0,
        };
        let attr_off = c.take(attr::prog_load::SIZE)?;
        let names_off = c.take(room.names)?;
        let slots_off = c.take(room.slots)?;
        let place = ProgPlace {
            license_off,
            func_info_off,
            line_info_off,
            core_relos_off,
            attach_name_off,
            attr_off,
            ksym: Layout {
                status_off: 0,
                names_off,
                slots_off,
                insns_off,
                insn_cnt,
                fd_array_off,
                fd_array_len,
                end: c.0,
                loader_len: 0,
            },
            slot_before,
        };
        visit(Piece::Prog(i as u32, p, place, &lookups))?;
        slot_before = add(slot_before, room.kfuncs)?;
    }
    Ok(LoadLayout {
        btf_fd_off,
        fd_array_off,
        fd_array_len,
        prog_fds_off,
        end: c.0,
        ctx_size: ctx_size(load.maps.len(), load.progs.len()),
        loader_len: 0,
    })
}
