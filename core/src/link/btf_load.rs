//! The object's `.BTF` as libbpf hands it to `BPF_BTF_LOAD` in gen_loader
//! mode. libbpf then assumes every kernel feature, so none of its
//! feature-based sanitizing happens; what remains, in libbpf's order:
//!
//! 1. `add_dummy_ksym_var`: when `.ksyms` lists a function, a VAR
//!    `dummy_ksym` (global, of the first 32-bit INT) is appended.
//! 2. `bpf_object__collect_externs`: every `.ksyms` entry becomes a 4-byte
//!    slot (VARs: global, of that INT; FUNCs: global linkage, unnamed
//!    parameters named `dummy_ksym`, replaced in the DATASEC by the dummy
//!    VAR); `.kconfig` VARs become global, laid out by alignment, size and
//!    name.
//! 3. `btf_fixup_datasec`: DATASEC sizes and VAR offsets from the ELF
//!    sections and symbols, hidden globals made static, entries sorted by
//!    offset.
//! 4. `bpf_object__sanitize_and_load_btf`: `.text` functions with hidden
//!    visibility get a static FUNC.
//!
//! Without an appended type, the bytes are the section's with those
//! fields changed in place (as libbpf patches its copy). With one, libbpf
//! writes header, types and strings back to back; so does this (header
//! `type_off` 0, `str_off` the new type length: libbpf's header for every
//! object a compiler writes).

use super::functions::{text_section, STB_LOCAL, STT_FUNC};
use super::problem::{err, LinkProblem};
use crate::btf::{linkage, Btf, Header, Kind, Type};
use crate::elf::{Elf, STB_GLOBAL, STB_WEAK};
use crate::error::{Error, Result};
use crate::object::{Extern, ExternKind, Object};
use crate::read;

/// libbpf's `KSYMS_SEC` and `KCONFIG_SEC`.
const KSYMS: &[u8] = b".ksyms";
const KCONFIG: &[u8] = b".kconfig";
/// The VAR `add_dummy_ksym_var` appends, and its name.
const DUMMY: &[u8] = b"dummy_ksym";
const VAR_LEN: usize = 16;
/// `STT_OBJECT`.
const STT_OBJECT: u8 = 1;
/// `STV_INTERNAL`, `STV_HIDDEN`.
const STV_INTERNAL: u8 = 1;
const STV_HIDDEN: u8 = 2;

/// Size of the BTF [`write_load_btf`] writes for `object`. An error when
/// the object has no `.BTF`.
pub fn load_btf_size(object: &Object<'_>) -> Result<usize> {
    Ok(plan(object)?.size)
}

/// Writes the object's `.BTF` as libbpf passes it to `BPF_BTF_LOAD` in
/// gen_loader mode (see the module documentation) into `out` and returns
/// its length. `externs` is the object's extern table
/// ([`Object::externs`]). `out` needs [`load_btf_size`] bytes; on error
/// its contents are unspecified.
pub fn write_load_btf(object: &Object<'_>, externs: &[Extern<'_>], out: &mut [u8]) -> Result<usize> {
    let p = plan(object)?;
    let data = object.btf_data().ok_or(Error::NoObjectBtf)?;
    let btf = Btf::parse(data)?;
    let capacity = out.len();
    let out = out.get_mut(..p.size).ok_or(Error::CapacityExceeded {
        what: "BTF for BPF_BTF_LOAD",
        capacity,
    })?;
    let hdr: &Header = read::pod(data, 0, "BTF header")?;
    let hdr_len = hdr.hdr_len.get() as usize;
    let types_at = match p.dummy {
        None => {
            out.copy_from_slice(data);
            hdr_len + hdr.type_off.get() as usize
        }
        Some(d) => {
            let types = btf.type_bytes();
            let strings = read::bytes(
                data,
                hdr_len + hdr.str_off.get() as usize,
                hdr.str_len.get() as usize,
                "BTF",
            )?;
            let type_len = types.len() + VAR_LEN;
            let str_len = strings.len() + if d.new_name { DUMMY.len() + 1 } else { 0 };
            out[..hdr_len].copy_from_slice(&data[..hdr_len]);
            put(out, 8, 0)?;
            put(out, 12, type_len as u32)?;
            put(out, 16, type_len as u32)?;
            put(out, 20, str_len as u32)?;
            let mut at = hdr_len;
            out[at..at + types.len()].copy_from_slice(types);
            at += types.len();
            put(out, at, d.name_off)?;
            put(out, at + 4, (Kind::Var as u32) << 24)?;
            put(out, at + 8, int_type_id(&btf)?)?;
            put(out, at + 12, linkage::GLOBAL)?;
            at += VAR_LEN;
            out[at..at + strings.len()].copy_from_slice(strings);
            at += strings.len();
            if d.new_name {
                out[at..at + DUMMY.len()].copy_from_slice(DUMMY);
                out[at + DUMMY.len()] = 0;
            }
            hdr_len
        }
    };
    let types_end = types_at + btf.type_bytes().len();
    let types = out.get_mut(types_at..types_end).ok_or(Error::Malformed {
        what: "BTF type section offset/length",
        offset: types_at,
    })?;
    let elf = object.elf();
    let mut w = Writer { btf: &btf, types };
    w.fix_externs(externs, p.dummy.map(|d| (d.id, d.name_off)))?;
    w.fix_datasecs(elf)?;
    w.mark_static(elf)?;
    Ok(p.size)
}

#[derive(Clone, Copy)]
struct Dummy {
    id: u32,
    name_off: u32,
    new_name: bool,
}

struct Plan {
    size: usize,
    dummy: Option<Dummy>,
}

fn plan(object: &Object<'_>) -> Result<Plan> {
    let data = object.btf_data().ok_or(Error::NoObjectBtf)?;
    let btf = Btf::parse(data)?;
    let needs_dummy = match btf.find_own_by_name_kind(KSYMS, Kind::Datasec)? {
        Some(id) => {
            let sec = btf.type_by_id(id)?;
            let mut func = false;
            for vs in sec.datasec_vars() {
                func |= btf.type_by_id(vs.type_id.get())?.kind() == Kind::Func;
            }
            func
        }
        None => false,
    };
    if !needs_dummy {
        return Ok(Plan {
            size: data.len(),
            dummy: None,
        });
    }
    let hdr: &Header = read::pod(data, 0, "BTF header")?;
    let strings = read::bytes(
        data,
        (hdr.hdr_len.get() as usize).saturating_add(hdr.str_off.get() as usize),
        hdr.str_len.get() as usize,
        "BTF string section",
    )?;
    // libbpf's string set reuses a string that starts after a NUL.
    let mut existing = None;
    let mut off = 0usize;
    while off < strings.len() {
        let s = read::cstr(strings, off).ok_or(Error::BtfString { offset: off as u32 })?;
        if s == DUMMY {
            existing = Some(off as u32);
            break;
        }
        off += s.len() + 1;
    }
    let overflow = Error::Overflow { what: "BTF size" };
    let mut size = (hdr.hdr_len.get() as usize)
        .checked_add(btf.type_bytes().len() + VAR_LEN)
        .and_then(|s| s.checked_add(strings.len()))
        .ok_or(overflow)?;
    if existing.is_none() {
        size = size.checked_add(DUMMY.len() + 1).ok_or(overflow)?;
    }
    if u32::try_from(size).is_err() {
        return Err(overflow);
    }
    Ok(Plan {
        size,
        dummy: Some(Dummy {
            id: btf.end_id()?,
            name_off: existing.unwrap_or(strings.len() as u32),
            new_name: existing.is_none(),
        }),
    })
}

fn put(buf: &mut [u8], at: usize, v: u32) -> Result<()> {
    buf.get_mut(at..at + 4)
        .ok_or(Error::Truncated {
            what: "BTF",
            offset: at,
        })?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

fn get(buf: &[u8], at: usize) -> Result<u32> {
    let b = buf.get(at..at + 4).ok_or(Error::Truncated {
        what: "BTF",
        offset: at,
    })?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// libbpf's `find_int_btf_id`: the first INT of 32 bits, or 0.
fn int_type_id(btf: &Btf<'_>) -> Result<u32> {
    for ty in btf.own_types() {
        let ty = ty?;
        if ty.kind() == Kind::Int && ty.int_bits() == 32 {
            return Ok(ty.id());
        }
    }
    Ok(0)
}

/// Edits the copied type section in place, reading names from `btf`.
struct Writer<'b, 'a> {
    btf: &'b Btf<'a>,
    types: &'b mut [u8],
}

impl Writer<'_, '_> {
    fn at(&self, ty: &Type<'_>) -> Result<usize> {
        self.btf.type_offset(ty).ok_or(Error::BtfTypeId { id: ty.id() })
    }

    fn extern_by_name<'e, 'x>(externs: &'e [Extern<'x>], name: &[u8], sec: &[u8]) -> Result<&'e Extern<'x>> {
        externs
            .iter()
            .find(|e| e.name.as_bytes() == name)
            .ok_or_else(|| err(LinkProblem::ExternNoDefinition, name, sec, 0))
    }

    /// Step 2: the `.ksyms` and `.kconfig` DATASECs.
    fn fix_externs(&mut self, externs: &[Extern<'_>], dummy: Option<(u32, u32)>) -> Result<()> {
        let btf = self.btf;
        if externs.iter().any(|e| e.kind.is_ksym()) {
            if let Some(id) = btf.find_own_by_name_kind(KSYMS, Kind::Datasec)? {
                let sec = btf.type_by_id(id)?;
                let sec_at = self.at(&sec)?;
                let int_id = int_type_id(btf)?;
                let mut off: u32 = 0;
                for (i, vs) in sec.datasec_vars().iter().enumerate() {
                    let vt = btf.type_by_id(vs.type_id.get())?;
                    let name = btf.name(&vt)?;
                    Self::extern_by_name(externs, name, KSYMS)?;
                    let vt_at = self.at(&vt)?;
                    let vs_at = sec_at + 12 + 12 * i;
                    match vt.kind() {
                        Kind::Func => {
                            let (dummy_id, dummy_name) = dummy.ok_or(Error::Mismatch {
                                what: "a .ksyms function without the dummy VAR",
                            })?;
                            let proto = btf.type_by_id(vt.type_id())?;
                            if proto.kind() == Kind::FuncProto {
                                let proto_at = self.at(&proto)?;
                                for (j, p) in proto.params().iter().enumerate() {
                                    if p.type_id.get() != 0 && p.name_off.get() == 0 {
                                        put(self.types, proto_at + 12 + 8 * j, dummy_name)?;
                                    }
                                }
                            }
                            put(self.types, vs_at, dummy_id)?;
                            let info = get(self.types, vt_at + 4)?;
                            put(self.types, vt_at + 4, (info & !0xffff) | linkage::GLOBAL)?;
                        }
                        Kind::Var => {
                            put(self.types, vt_at + 12, linkage::GLOBAL)?;
                            put(self.types, vt_at + 8, int_id)?;
                        }
                        _ => return Err(err(LinkProblem::DatasecNonVar, name, KSYMS, i as u64)),
                    }
                    put(self.types, vs_at + 4, off)?;
                    put(self.types, vs_at + 8, 4)?;
                    off = off.checked_add(4).ok_or(Error::Overflow { what: ".ksyms size" })?;
                }
                put(self.types, sec_at + 8, off)?;
            }
        }
        if externs.iter().any(|e| e.kind == ExternKind::Kconfig) {
            if let Some(id) = btf.find_own_by_name_kind(KCONFIG, Kind::Datasec)? {
                let sec = btf.type_by_id(id)?;
                let sec_at = self.at(&sec)?;
                let size = kconfig_layout(btf, externs, |_, _| Ok(()))?;
                put(self.types, sec_at + 8, size)?;
                for (i, vs) in sec.datasec_vars().iter().enumerate() {
                    let vt = btf.type_by_id(vs.type_id.get())?;
                    let name = btf.name(&vt)?;
                    let ext = Self::extern_by_name(externs, name, KCONFIG)?;
                    let mut data_off = 0;
                    if ext.kind == ExternKind::Kconfig {
                        kconfig_layout(btf, externs, |e, off| {
                            if e.name == ext.name {
                                data_off = off;
                            }
                            Ok(())
                        })?;
                    }
                    put(self.types, self.at(&vt)? + 12, linkage::GLOBAL)?;
                    put(self.types, sec_at + 12 + 12 * i + 4, data_off)?;
                }
            }
        }
        Ok(())
    }

    /// Step 3: `btf_fixup_datasec` on every DATASEC, in id order.
    fn fix_datasecs(&mut self, elf: &Elf<'_>) -> Result<()> {
        let btf = self.btf;
        for ty in btf.own_types() {
            let sec = ty?;
            if sec.kind() != Kind::Datasec {
                continue;
            }
            let sec_at = self.at(&sec)?;
            let sec_name = btf.name(&sec)?;
            let n = sec.datasec_vars().len();
            if sec_name != KSYMS && sec_name != KCONFIG {
                let mut fixup_offsets = false;
                if get(self.types, sec_at + 8)? == 0 {
                    let size = match elf.section_by_name(sec_name)? {
                        Some(s) => u32::try_from(s.header.sh_size.get()).unwrap_or(0),
                        None => 0,
                    };
                    if size == 0 {
                        return Err(err(LinkProblem::DatasecSize, b"", sec_name, 0));
                    }
                    put(self.types, sec_at + 8, size)?;
                    fixup_offsets = true;
                }
                for (i, vs) in sec.datasec_vars().iter().enumerate() {
                    let vt = btf.type_by_id(vs.type_id.get())?;
                    if vt.kind() != Kind::Var {
                        return Err(err(LinkProblem::DatasecNonVar, b"", sec_name, i as u64));
                    }
                    let vt_at = self.at(&vt)?;
                    let l = get(self.types, vt_at + 12)?;
                    if l == linkage::STATIC || l == linkage::EXTERN {
                        continue;
                    }
                    let name = btf.name(&vt)?;
                    let sym =
                        var_symbol(elf, name)?.ok_or_else(|| err(LinkProblem::DatasecNoSymbol, name, sec_name, 0))?;
                    if fixup_offsets {
                        let off = u32::try_from(sym.st_value.get()).map_err(|_| Error::Overflow {
                            what: "DATASEC variable offset",
                        })?;
                        put(self.types, sec_at + 12 + 12 * i + 4, off)?;
                    }
                    if matches!(sym.st_other & 3, STV_HIDDEN | STV_INTERNAL) {
                        put(self.types, vt_at + 12, linkage::STATIC)?;
                    }
                }
            }
            // Sort the entries by offset, stably (as glibc's qsort does
            // for arrays this size).
            let recs = self
                .types
                .get_mut(sec_at + 12..sec_at + 12 + 12 * n)
                .ok_or(Error::BtfTypeId { id: sec.id() })?;
            for i in 1..n {
                let mut j = i;
                while j > 0 && get(recs, 12 * (j - 1) + 4)? > get(recs, 12 * j + 4)? {
                    let (a, b) = recs.split_at_mut(12 * j);
                    a[12 * (j - 1)..].swap_with_slice(&mut b[..12]);
                    j -= 1;
                }
            }
        }
        Ok(())
    }

    /// Step 4: `.text` functions of hidden visibility get a static FUNC
    /// (the first global FUNC of their name).
    fn mark_static(&mut self, elf: &Elf<'_>) -> Result<()> {
        let Some(text) = text_section(elf)? else {
            return Ok(());
        };
        let btf = self.btf;
        for sym in elf.symbols() {
            if sym.kind() != STT_FUNC
                || u32::from(sym.st_shndx.get()) != text.0
                || sym.binding() == STB_LOCAL
                || !matches!(sym.st_other & 3, STV_HIDDEN | STV_INTERNAL)
            {
                continue;
            }
            let name = elf.symbol_name(sym)?;
            for ty in btf.own_types() {
                let ty = ty?;
                if ty.kind() != Kind::Func || btf.name(&ty)? != name {
                    continue;
                }
                let at = self.at(&ty)?;
                if get(self.types, at + 4)? & 0xffff != linkage::GLOBAL {
                    continue;
                }
                put(self.types, at + 4, (Kind::Func as u32) << 24)?;
                break;
            }
        }
        Ok(())
    }
}

/// libbpf's `find_elf_var_sym`: the first global or weak `STT_OBJECT`
/// symbol of that name.
pub(crate) fn var_symbol<'a>(elf: &Elf<'a>, name: &[u8]) -> Result<Option<&'a crate::elf::Symbol>> {
    for sym in elf.symbols() {
        if sym.kind() != STT_OBJECT || !matches!(sym.binding(), STB_GLOBAL | STB_WEAK) {
            continue;
        }
        if elf.symbol_name(sym)? == name {
            return Ok(Some(sym));
        }
    }
    Ok(None)
}

/// The linkage a VAR of DATASEC `sec_name` has once the fix-ups are done
/// (for `map_is_mmapable`).
pub(crate) fn fixed_var_linkage(elf: &Elf<'_>, btf: &Btf<'_>, sec_name: &[u8], var: &Type<'_>) -> Result<u32> {
    let l = var.linkage();
    if sec_name == KSYMS || sec_name == KCONFIG {
        return Ok(if l == linkage::EXTERN { linkage::GLOBAL } else { l });
    }
    if l == linkage::STATIC || l == linkage::EXTERN {
        return Ok(l);
    }
    let name = btf.name(var)?;
    let sym = var_symbol(elf, name)?.ok_or_else(|| err(LinkProblem::DatasecNoSymbol, name, sec_name, 0))?;
    Ok(if matches!(sym.st_other & 3, STV_HIDDEN | STV_INTERNAL) {
        linkage::STATIC
    } else {
        l
    })
}

/// Size and alignment of a kconfig extern, checked as libbpf checks them.
fn kconfig_shape(btf: &Btf<'_>, e: &Extern<'_>) -> Result<(u32, u32)> {
    let name = e.name.as_bytes();
    let t = btf.type_by_id(e.btf_id.0)?;
    if t.kind() == Kind::Func {
        return Err(err(LinkProblem::KconfigFunc, name, KCONFIG, 0));
    }
    let bad = || err(LinkProblem::KconfigType, name, KCONFIG, 0);
    let size = btf.resolve_size(t.type_id()).map_err(|_| bad())?;
    let align = btf.align_of(t.type_id()).map_err(|_| bad())?;
    if size == 0 || align == 0 || !kconfig_type_ok(btf, t.type_id(), true)? {
        return Err(bad());
    }
    Ok((size, align))
}

/// libbpf's `find_kcfg_type` is not `KCFG_UNKNOWN`.
fn kconfig_type_ok(btf: &Btf<'_>, id: u32, arrays: bool) -> Result<bool> {
    let t = btf.skip_mods_and_typedefs(id)?;
    Ok(match t.kind() {
        Kind::Int if t.int_encoding() & 4 != 0 => t.size() == 1,
        Kind::Int => t.size() == 1 || (t.size() <= 8 && t.size().is_power_of_two()),
        Kind::Enum | Kind::Enum64 => (t.kind() == Kind::Enum64 || t.size() == 4) && btf.name(&t)? == b"libbpf_tristate",
        Kind::Array if arrays => {
            let Some(a) = t.array() else { return Ok(false) };
            let elem = btf.skip_mods_and_typedefs(a.elem_type.get())?;
            a.nelems.get() != 0 && elem.kind() == Kind::Int && elem.int_encoding() & 4 == 0 && elem.size() == 1
        }
        _ => false,
    })
}

/// Lays the kconfig externs out as libbpf does (by alignment, largest
/// first, then size, then name), showing each with its offset to `f`;
/// returns the `.kconfig` size. Quadratic in the number of kconfig
/// externs, without storage.
fn kconfig_layout<'x>(
    btf: &Btf<'_>,
    externs: &[Extern<'x>],
    mut f: impl FnMut(&Extern<'x>, u32) -> Result<()>,
) -> Result<u32> {
    type Key<'k> = (core::cmp::Reverse<u32>, u32, &'k [u8]);
    let mut last: Option<Key<'x>> = None;
    let mut off: u32 = 0;
    loop {
        let mut next: Option<(Key<'x>, &Extern<'x>)> = None;
        for e in externs.iter().filter(|e| e.kind == ExternKind::Kconfig) {
            let (size, align) = kconfig_shape(btf, e)?;
            let key = (core::cmp::Reverse(align), size, e.name.as_bytes());
            if last.is_some_and(|l| key <= l) {
                continue;
            }
            if next.is_none_or(|(k, _)| key < k) {
                next = Some((key, e));
            }
        }
        let Some((key, e)) = next else { return Ok(off) };
        let (core::cmp::Reverse(align), size, _) = key;
        let overflow = Error::Overflow { what: ".kconfig size" };
        let data_off = off.checked_next_multiple_of(align).ok_or(overflow)?;
        f(e, data_off)?;
        off = data_off.checked_add(size).ok_or(overflow)?;
        last = Some(key);
    }
}

/// Size of the `.kconfig` map's value: the kconfig externs laid out.
pub(crate) fn kconfig_size(btf: &Btf<'_>, externs: &[Extern<'_>]) -> Result<u32> {
    kconfig_layout(btf, externs, |_, _| Ok(()))
}
