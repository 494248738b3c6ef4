//! The maps of an object and their indexes, as libbpf numbers them
//! (`bpf_object__init_maps`): the BTF-defined maps of `.maps` in the order
//! of its DATASEC, then one internal map per non-empty `.data*`,
//! `.rodata*` and `.bss*` section in section order, then `.kconfig` when
//! the object has kconfig externs. (struct_ops maps, which libbpf adds
//! last, are not listed: struct_ops programs are not linked.) A generated
//! loader creates them in this order, so that `BPF_PSEUDO_MAP_IDX(_VALUE)`
//! references are indexes into this list.

use super::problem::{err, LinkProblem};
use crate::btf::{linkage, Btf, Kind};
use crate::elf::{Elf, Section, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS};
use crate::error::{Error, Result};
use crate::index::SectionIndex;

/// `BPF_OBJ_NAME_LEN`: a kernel object name and its NUL.
pub const OBJ_NAME_LEN: usize = 16;

/// What a map is made from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// A variable of `.maps` (`LIBBPF_MAP_UNSPEC`).
    #[default]
    Btf,
    /// A `.data` or `.data.*` section.
    Data,
    /// A `.rodata` or `.rodata.*` section (`BPF_F_RDONLY_PROG`).
    Rodata,
    /// A `.bss` or `.bss.*` section.
    Bss,
    /// The kconfig externs' values.
    Kconfig,
}

/// A map name as the kernel gets it: at most 15 bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MapName {
    bytes: [u8; OBJ_NAME_LEN],
    len: u8,
}

impl MapName {
    /// The name's bytes (no NUL).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn push(&mut self, b: &[u8]) {
        for &c in b {
            if usize::from(self.len) < OBJ_NAME_LEN - 1 {
                self.bytes[usize::from(self.len)] = c;
                self.len += 1;
            }
        }
    }
}

impl core::fmt::Debug for MapName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

/// One map of the object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Map<'a> {
    /// libbpf's `real_name`: the variable's name for a BTF-defined map,
    /// the section's name for the others.
    pub name: &'a [u8],
    /// The name the kernel gets: [`internal_map_name`] for internal maps,
    /// the variable's name cut to 15 bytes for the others.
    pub kernel_name: MapName,
    /// What it is made from.
    pub kind: MapKind,
    /// Its ELF section (`.maps`, the data section, or the symbol table
    /// for `.kconfig`, as libbpf records it).
    pub section: SectionIndex,
    /// BTF-defined maps: offset of the variable within `.maps`; internal
    /// maps: 0.
    pub sec_offset: u32,
    /// Internal maps: the section's size (the value size); BTF-defined
    /// maps: the variable's size in `.maps`.
    pub size: u64,
    /// BTF-defined maps: the VAR's type id; internal maps: 0.
    pub btf_var: u32,
}

/// libbpf's object name from a file path: the base name, cut to 15 bytes,
/// then at its first `.` (`bpf_object__new`).
///
/// ```
/// assert_eq!(ksymrelo_core::link::object_name(b"out/my_prog.bpf.o"), b"my_prog");
/// ```
pub fn object_name(path: &[u8]) -> &[u8] {
    let base = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    let base = &base[..base.len().min(OBJ_NAME_LEN - 1)];
    match base.iter().position(|&b| b == b'.') {
        Some(i) => &base[..i],
        None => base,
    }
}

/// libbpf's `internal_map_name`: as much of the object name as fits before
/// the section name (which keeps at least 7 bytes), none for a custom
/// `.data.x`-like name; 15 bytes at most; bytes other than alphanumerics,
/// `_` and `.` become `_`.
pub fn internal_map_name(obj_name: &[u8], real_name: &[u8]) -> MapName {
    let sfx_len = real_name.len().clamp(7, OBJ_NAME_LEN - 1);
    let custom = real_name.get(1..).is_some_and(|r| r.contains(&b'.'));
    let pfx_len = if custom {
        0
    } else {
        (OBJ_NAME_LEN - sfx_len - 1).min(obj_name.len())
    };
    let mut name = MapName::default();
    name.push(&obj_name[..pfx_len]);
    name.push(&real_name[..sfx_len.min(real_name.len())]);
    for b in &mut name.bytes[..usize::from(name.len)] {
        if !b.is_ascii_alphanumeric() && *b != b'_' && *b != b'.' {
            *b = b'_';
        }
    }
    name
}

/// The internal map kind of a section, as libbpf's `bpf_object__elf_collect`
/// sorts sections (empty ones included; they make no map).
pub(crate) fn data_kind(s: &Section<'_>) -> Option<MapKind> {
    let is = |base: &[u8]| s.name == base || s.name.strip_prefix(base).is_some_and(|r| r.starts_with(b"."));
    let h = s.header;
    match h.sh_type.get() {
        SHT_PROGBITS if h.sh_size.get() > 0 && h.sh_flags.get() & SHF_EXECINSTR == 0 => {
            if is(b".data") {
                Some(MapKind::Data)
            } else if is(b".rodata") {
                Some(MapKind::Rodata)
            } else {
                None
            }
        }
        SHT_NOBITS if is(b".bss") => Some(MapKind::Bss),
        _ => None,
    }
}

/// The `.maps` section (the last of that name, as libbpf keeps it).
pub(crate) fn maps_section<'a>(elf: &Elf<'a>) -> Result<Option<Section<'a>>> {
    let mut found = None;
    for s in elf.sections() {
        let s = s?;
        if s.name == b".maps" {
            found = Some(s);
        }
    }
    Ok(found)
}

/// Counts the maps, to size the table [`collect`] fills.
pub fn count(elf: &Elf<'_>, btf: Option<&Btf<'_>>, has_kconfig: bool) -> Result<usize> {
    let mut n = usize::from(has_kconfig);
    if maps_section(elf)?.is_some() {
        n += maps_datasec(btf)?.1.datasec_vars().len();
    }
    for s in elf.sections() {
        let s = s?;
        if data_kind(&s).is_some() && s.header.sh_size.get() > 0 {
            n += 1;
        }
    }
    Ok(n)
}

fn maps_datasec<'a>(btf: Option<&Btf<'a>>) -> Result<(u32, crate::btf::Type<'a>)> {
    let btf = btf.ok_or(Error::NoObjectBtf)?;
    for ty in btf.own_types() {
        let ty = ty?;
        if ty.kind() == Kind::Datasec && btf.name(&ty)? == b".maps" {
            return Ok((ty.id(), ty));
        }
    }
    Err(err(LinkProblem::NoMapsDatasec, b"", b".maps", 0))
}

/// Fills `out` with the maps in libbpf's order (a map's index there is the
/// `imm` of `BPF_PSEUDO_MAP_IDX(_VALUE)`) and returns the filled part.
/// `obj_name` is libbpf's object name ([`object_name`] of the file path);
/// `has_kconfig` whether the object has kconfig externs. BTF-defined maps
/// are checked as libbpf's `bpf_object__init_user_btf_map` checks them.
pub fn collect<'o, 'a>(
    elf: &Elf<'a>,
    btf: Option<&Btf<'a>>,
    obj_name: &[u8],
    has_kconfig: bool,
    out: &'o mut [Map<'a>],
) -> Result<&'o mut [Map<'a>]> {
    let capacity = out.len();
    let mut n = 0usize;
    let mut push = |map: Map<'a>| -> Result<()> {
        let slot = out.get_mut(n).ok_or(Error::CapacityExceeded {
            what: "map table",
            capacity,
        })?;
        *slot = map;
        n += 1;
        Ok(())
    };
    let mut btf_maps = 0usize;
    if let Some(sec) = maps_section(elf)? {
        let (_, datasec) = maps_datasec(btf)?;
        // maps_datasec succeeded, so there is BTF.
        let btf = btf.ok_or(Error::NoObjectBtf)?;
        for (i, vi) in datasec.datasec_vars().iter().enumerate() {
            let var = btf.type_by_id(vi.type_id.get())?;
            let name = btf.name(&var)?;
            let at = i as u64;
            if name.is_empty() {
                return Err(err(LinkProblem::MapEmptyName, b"", b".maps", at));
            }
            let problem = |p, at| err(p, name, b".maps", at);
            // libbpf reads the DATASEC after `btf_fixup_datasec`: a
            // compiler leaves size and offsets 0, the symbols tell them.
            let off = if datasec.size() == 0 && var.kind() == Kind::Var && var.linkage() == linkage::GLOBAL {
                let sym = super::btf_load::var_symbol(elf, name)?
                    .ok_or_else(|| err(LinkProblem::DatasecNoSymbol, name, b".maps", 0))?;
                u32::try_from(sym.st_value.get()).map_err(|_| problem(LinkProblem::MapCorrupted, at))?
            } else {
                vi.offset.get()
            };
            let size = vi.size.get();
            if u64::from(off) + u64::from(size) > sec.header.sh_size.get() {
                return Err(problem(LinkProblem::MapCorrupted, at));
            }
            if var.kind() != Kind::Var {
                return Err(problem(LinkProblem::MapVarKind, at));
            }
            if var.linkage() != linkage::GLOBAL {
                return Err(problem(LinkProblem::MapLinkage, u64::from(var.linkage())));
            }
            let def = btf.skip_mods_and_typedefs(var.type_id())?;
            if def.kind() != Kind::Struct {
                return Err(problem(LinkProblem::MapDefKind, at));
            }
            if def.size() > size {
                return Err(problem(LinkProblem::MapDefSize, at));
            }
            push(Map {
                name,
                kernel_name: {
                    let mut k = MapName::default();
                    k.push(name);
                    k
                },
                kind: MapKind::Btf,
                section: sec.index,
                sec_offset: off,
                size: u64::from(size),
                btf_var: var.id(),
            })?;
            btf_maps += 1;
        }
    }
    for s in elf.sections() {
        let s = s?;
        let Some(kind) = data_kind(&s) else { continue };
        if s.header.sh_size.get() == 0 {
            continue;
        }
        push(Map {
            name: s.name,
            kernel_name: internal_map_name(obj_name, s.name),
            kind,
            section: s.index,
            sec_offset: 0,
            size: s.header.sh_size.get(),
            btf_var: 0,
        })?;
    }
    if has_kconfig {
        push(Map {
            name: b".kconfig",
            kernel_name: internal_map_name(obj_name, b".kconfig"),
            kind: MapKind::Kconfig,
            section: elf.symtab_index().unwrap_or(SectionIndex::UNDEF),
            ..Map::default()
        })?;
    }
    let table = &mut out[..n];
    // ... then sorts the DATASEC by offset (stably).
    sort_by_offset(&mut table[..btf_maps]);
    Ok(table)
}

/// Stable sort by `sec_offset` (insertion: `.maps` sections are small).
fn sort_by_offset(maps: &mut [Map<'_>]) {
    for i in 1..maps.len() {
        let mut j = i;
        while j > 0 && maps[j - 1].sec_offset > maps[j].sec_offset {
            maps.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_as_libbpf() {
        assert_eq!(object_name(b"a/b/link.bpf.o"), b"link");
        assert_eq!(object_name(b"very_long_object_name.bpf.o"), b"very_long_objec");
        assert_eq!(object_name(b"dir/"), b"");
        assert_eq!(object_name(b"x"), b"x");
    }

    #[test]
    fn internal_map_names_as_libbpf() {
        let n = |o: &str, r: &str| internal_map_name(o.as_bytes(), r.as_bytes());
        assert_eq!(n("my_object_name", ".rodata").as_bytes(), b"my_objec.rodata");
        assert_eq!(n("my_object_name", ".bss").as_bytes(), b"my_objec.bss");
        assert_eq!(n("my_object_name", ".kconfig").as_bytes(), b"my_obje.kconfig");
        assert_eq!(
            n("my_object_name", ".rodata.abracadabra").as_bytes(),
            b".rodata.abracad"
        );
        assert_eq!(n("link", ".data.x").as_bytes(), b".data.x");
        assert_eq!(n("li-nk", ".data").as_bytes(), b"li_nk.data");
        assert_eq!(n("", ".bss").as_bytes(), b".bss");
    }
}
