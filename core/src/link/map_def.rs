//! What `BPF_MAP_CREATE` gets for each map, as libbpf prepares it in
//! gen_loader mode: BTF-defined maps parsed as `parse_btf_map_def` and
//! `fill_map_from_def` do, global-data maps as
//! `bpf_object__init_internal_map` makes them, then the adjustments of
//! `bpf_object__create_maps` / `bpf_object__create_map` (ring buffer
//! sizes, perf event array sizes, BTF ids cleared for the map types the
//! kernel takes none for).
//!
//! A generated loader creates no pinned maps and no map-in-map: both are
//! refused with an error naming the map.

use super::btf_load;
use super::maps::{Map, MapKind};
use super::problem::{err, LinkProblem};
use crate::bpf::{flags, map_type};
use crate::btf::{linkage, Btf, Kind, Member, Type};
use crate::elf::Elf;
use crate::error::{Error, Result};
use crate::object::{Extern, Object};

/// The attributes of `BPF_MAP_CREATE` that come from the object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapAttrs {
    /// `map_type`.
    pub map_type: u32,
    /// `key_size`.
    pub key_size: u32,
    /// `value_size`.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// `numa_node`.
    pub numa_node: u32,
    /// `map_extra`.
    pub map_extra: u64,
    /// `btf_key_type_id` (in the object's `.BTF`).
    pub btf_key_type_id: u32,
    /// `btf_value_type_id` (in the object's `.BTF`).
    pub btf_value_type_id: u32,
}

/// What a map holds once created, before any program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitialValue<'a> {
    /// Nothing written (BTF-defined maps).
    #[default]
    None,
    /// Element 0 gets these bytes (`.data*`, `.rodata*`).
    Bytes(&'a [u8]),
    /// Element 0 gets `value_size` zeros (`.bss*`).
    Zeros,
    /// Element 0 gets the kconfig externs' values, which the object does
    /// not hold (libbpf reads them from the kernel's configuration).
    Kconfig,
}

/// One map as a generated loader creates it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapDef<'a> {
    /// The `BPF_MAP_CREATE` attributes.
    pub attrs: MapAttrs,
    /// What libbpf writes into it after creating it.
    pub initial_value: InitialValue<'a>,
    /// Whether libbpf freezes it after that (`.rodata*`, `.kconfig`).
    pub freeze: bool,
}

/// What libbpf asks of the machine it runs on while preparing maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// `sysconf(_SC_PAGE_SIZE)`: ring buffer sizes are rounded to a
    /// power-of-two multiple of it.
    pub page_size: u32,
    /// `libbpf_num_possible_cpus()`: the size of a perf event array that
    /// sets none.
    pub possible_cpus: u32,
}

/// The map types whose BTF ids libbpf clears before `BPF_MAP_CREATE`
/// (`bpf_object__create_map`).
fn takes_no_btf(t: u32) -> bool {
    use map_type::*;
    matches!(
        t,
        PERF_EVENT_ARRAY
            | CGROUP_ARRAY
            | STACK_TRACE
            | ARRAY_OF_MAPS
            | HASH_OF_MAPS
            | DEVMAP
            | DEVMAP_HASH
            | CPUMAP
            | XSKMAP
            | SOCKMAP
            | SOCKHASH
            | QUEUE
            | STACK
            | ARENA
    )
}

/// libbpf's `adjust_ringbuf_sz`: the smallest power-of-two multiple of the
/// page size above `sz` (0 stays 0; what cannot be satisfied stays as is).
pub fn adjust_ringbuf_sz(sz: u32, page_size: u32) -> u32 {
    if sz == 0 || page_size == 0 {
        return sz;
    }
    if sz % page_size == 0 && (sz / page_size).is_power_of_two() {
        return sz;
    }
    let mut mul: u32 = 1;
    while mul <= u32::MAX / page_size {
        if mul * page_size > sz {
            return mul * page_size;
        }
        match mul.checked_mul(2) {
            Some(m) => mul = m,
            None => break,
        }
    }
    sz
}

/// The map `map` (from [`super::maps`]) as a generated loader creates it.
/// `externs` is the object's extern table ([`Object::externs`]; only its
/// kconfig externs matter, for the size of `.kconfig`).
pub fn map_def<'a>(object: &Object<'a>, map: &Map<'a>, externs: &[Extern<'a>], host: &Host) -> Result<MapDef<'a>> {
    let btf = object.btf_data().map(Btf::parse).transpose()?;
    let mut def = match map.kind {
        MapKind::Btf => {
            let btf = btf.as_ref().ok_or(Error::NoObjectBtf)?;
            MapDef {
                attrs: parse_btf_map(btf, map)?,
                ..MapDef::default()
            }
        }
        kind => internal(object.elf(), btf.as_ref(), map, kind, externs)?,
    };
    let a = &mut def.attrs;
    if matches!(a.map_type, map_type::RINGBUF | map_type::USER_RINGBUF) {
        a.max_entries = adjust_ringbuf_sz(a.max_entries, host.page_size);
    }
    if a.map_type == map_type::PERF_EVENT_ARRAY && a.max_entries == 0 {
        a.max_entries = host.possible_cpus;
    }
    if takes_no_btf(a.map_type) {
        a.btf_key_type_id = 0;
        a.btf_value_type_id = 0;
    } else if a.map_type == map_type::STRUCT_OPS {
        a.btf_value_type_id = 0;
    }
    Ok(def)
}

/// `bpf_object__init_internal_map` and `map_fill_btf_type_info`.
fn internal<'a>(
    elf: &Elf<'a>,
    btf: Option<&Btf<'a>>,
    map: &Map<'a>,
    kind: MapKind,
    externs: &[Extern<'a>],
) -> Result<MapDef<'a>> {
    let (value_size, initial_value) = match kind {
        MapKind::Kconfig => {
            let btf = btf.ok_or(Error::NoObjectBtf)?;
            (btf_load::kconfig_size(btf, externs)?, InitialValue::Kconfig)
        }
        _ => {
            let s = elf.section(map.section)?;
            let size = u32::try_from(s.header.sh_size.get()).map_err(|_| Error::Overflow {
                what: "global data section size",
            })?;
            let init = if kind == MapKind::Bss {
                InitialValue::Zeros
            } else {
                InitialValue::Bytes(elf.data_of(&s)?)
            };
            (size, init)
        }
    };
    let readonly = matches!(kind, MapKind::Rodata | MapKind::Kconfig);
    let mut attrs = MapAttrs {
        map_type: map_type::ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        map_flags: if readonly { flags::RDONLY_PROG } else { 0 },
        ..MapAttrs::default()
    };
    if let Some(btf) = btf {
        // btf__find_by_name: the first type of any kind with that name.
        if let Some(id) = find_by_name(btf, map.name)? {
            attrs.btf_value_type_id = id;
            if mmapable(elf, btf, id)? {
                attrs.map_flags |= flags::MMAPABLE;
            }
        }
    }
    Ok(MapDef {
        attrs,
        initial_value,
        freeze: readonly,
    })
}

fn find_by_name(btf: &Btf<'_>, name: &[u8]) -> Result<Option<u32>> {
    for ty in btf.own_types() {
        let ty = ty?;
        if btf.name(&ty)? == name {
            return Ok(Some(ty.id()));
        }
    }
    Ok(None)
}

/// libbpf's `map_is_mmapable`, over the BTF as `btf_fixup_datasec` and the
/// extern fix-ups leave it: a DATASEC with a VAR that is not static.
fn mmapable(elf: &Elf<'_>, btf: &Btf<'_>, id: u32) -> Result<bool> {
    let t = btf.type_by_id(id)?;
    if t.kind() != Kind::Datasec {
        return Ok(false);
    }
    let sec_name = btf.name(&t)?;
    for vsi in t.datasec_vars() {
        let vt = btf.type_by_id(vsi.type_id.get())?;
        if vt.kind() != Kind::Var {
            continue;
        }
        if btf_load::fixed_var_linkage(elf, btf, sec_name, &vt)? != linkage::STATIC {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `parse_btf_map_def` (strict, as `bpf_object__open` is by default) and
/// `fill_map_from_def`.
fn parse_btf_map(btf: &Btf<'_>, map: &Map<'_>) -> Result<MapAttrs> {
    let var = btf.type_by_id(map.btf_var)?;
    let def = btf.skip_mods_and_typedefs(var.type_id())?;
    let mut a = MapAttrs::default();
    for (i, m) in def.members().iter().enumerate() {
        let field = btf
            .name_by_offset(m.name_off.get())
            .map_err(|_| err(LinkProblem::MapField, map.name, b"", i as u64))?;
        let bad = |p| err(p, map.name, field, i as u64);
        let int = || map_field_int(btf, m).map_err(|_| bad(LinkProblem::MapField));
        match field {
            b"type" => a.map_type = int()?,
            b"max_entries" => a.max_entries = int()?,
            b"map_flags" => a.map_flags = int()?,
            b"numa_node" => a.numa_node = int()?,
            b"key_size" | b"value_size" | b"key" | b"value" => {
                let (sz, type_id) = if field.ends_with(b"_size") {
                    (int()?, None)
                } else {
                    let (sz, id) = map_field_type(btf, m).map_err(|_| bad(LinkProblem::MapField))?;
                    (sz, Some(id))
                };
                let (size, id) = if field.starts_with(b"key") {
                    (&mut a.key_size, &mut a.btf_key_type_id)
                } else {
                    (&mut a.value_size, &mut a.btf_value_type_id)
                };
                if *size != 0 && *size != sz {
                    return Err(bad(LinkProblem::MapConflictingSize));
                }
                *size = sz;
                if let Some(type_id) = type_id {
                    *id = type_id;
                }
            }
            b"values" => return Err(bad(LinkProblem::MapUnsupported)),
            b"pinning" => match int()? {
                0 => {}
                1 => return Err(bad(LinkProblem::MapUnsupported)),
                _ => return Err(bad(LinkProblem::MapField)),
            },
            b"map_extra" => a.map_extra = map_field_long(btf, m).map_err(|_| bad(LinkProblem::MapField))?,
            _ => return Err(bad(LinkProblem::MapUnknownField)),
        }
    }
    if a.map_type == 0 {
        return Err(err(LinkProblem::MapNoType, map.name, b"type", 0));
    }
    Ok(a)
}

/// `get_map_field_int`: `int (*name)[N]` encodes N.
fn map_field_int(btf: &Btf<'_>, m: &Member) -> Result<u32> {
    let t = btf.skip_mods_and_typedefs(m.type_id.get())?;
    if t.kind() != Kind::Ptr {
        return Err(Error::Mismatch { what: "map field" });
    }
    let arr = btf.type_by_id(t.type_id())?;
    arr.array()
        .map(|a| a.nelems.get())
        .ok_or(Error::Mismatch { what: "map field" })
}

/// `get_map_field_long`: `__uint` as above, or `__ulong`: an enum of one
/// value (a 32-bit enum's value sign-extends, as in libbpf).
fn map_field_long(btf: &Btf<'_>, m: &Member) -> Result<u64> {
    let t: Type<'_> = btf.skip_mods_and_typedefs(m.type_id.get())?;
    match t.kind() {
        Kind::Ptr => map_field_int(btf, m).map(u64::from),
        Kind::Enum if t.vlen() == 1 => Ok(i64::from(t.enum_values()[0].val.get()) as u64),
        Kind::Enum64 if t.vlen() == 1 => {
            let v = &t.enum64_values()[0];
            Ok(u64::from(v.val_hi32.get()) << 32 | u64::from(v.val_lo32.get()))
        }
        _ => Err(Error::Mismatch { what: "map field" }),
    }
}

/// `__type(key, T)`: a PTR (not through modifiers) to T; T's size and id.
fn map_field_type(btf: &Btf<'_>, m: &Member) -> Result<(u32, u32)> {
    let t = btf.type_by_id(m.type_id.get())?;
    if t.kind() != Kind::Ptr {
        return Err(Error::Mismatch { what: "map field" });
    }
    Ok((btf.resolve_size(t.type_id())?, t.type_id()))
}
