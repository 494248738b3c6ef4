//! The extern table: which undefined symbols are ksyms (or kconfig), of what
//! kind, and in which order libbpf numbers them.

use crate::btf::{linkage, Btf, Kind};
use crate::elf::{Elf, Symbol, SHN_UNDEF, STB_GLOBAL, STB_WEAK, STT_NOTYPE};
use crate::error::{Error, Name, NamePair, Result};
use crate::index::{BtfId, ExternIdx};

/// What an extern is, as ksymrelo resolves it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExternKind {
    /// A `.ksyms` VAR with a type: resolved to a kernel BTF id.
    #[default]
    Typed,
    /// A `.ksyms` VAR of type void: resolved to an address from kallsyms.
    Typeless,
    /// A `.ksyms` FUNC: resolved to a kernel BTF id and an fd_array slot.
    Kfunc,
    /// A `.kconfig` extern: not resolved by ksymrelo, counted for ordering.
    Kconfig,
}

impl ExternKind {
    /// Short lowercase name used by the command and JSON ("var", "typeless",
    /// "func", "kconfig").
    pub fn as_str(self) -> &'static str {
        match self {
            ExternKind::Typed => "var",
            ExternKind::Typeless => "typeless",
            ExternKind::Kfunc => "func",
            ExternKind::Kconfig => "kconfig",
        }
    }

    /// Whether ksymrelo resolves this kind.
    pub fn is_ksym(self) -> bool {
        self != ExternKind::Kconfig
    }
}

/// One extern of an object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extern<'a> {
    /// Full symbol name.
    pub name: &'a str,
    /// Name without a `___flavor` suffix; kfuncs are looked up by it.
    pub essential_name: &'a str,
    /// Kind.
    pub kind: ExternKind,
    /// `__weak`.
    pub weak: bool,
    /// ELF symbol index.
    pub sym_idx: u32,
    /// The VAR or FUNC type id in the object's BTF.
    pub btf_id: BtfId,
    /// Typed: the variable's type after modifiers/typedefs; kfunc: its
    /// FUNC_PROTO; typeless and kconfig: 0.
    pub type_id: BtfId,
    /// libbpf's index of this extern (kconfig first, then ksyms, by name).
    pub index: ExternIdx,
}

impl<'a> Extern<'a> {
    /// The name a kernel lookup uses: the essential name for kfuncs, the
    /// full name for variables.
    pub fn lookup_name(&self) -> &'a str {
        match self.kind {
            ExternKind::Kfunc => self.essential_name,
            _ => self.name,
        }
    }
}

/// The essential name of `X___Y` is `X` (X not ending in `_`, Y not starting
/// with `_`, the separator searched from the end); other names are their own.
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() >= 5 {
        for i in (0..=b.len() - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return &name[..i + 1];
            }
        }
    }
    name
}

pub(super) fn is_extern(sym: &Symbol) -> bool {
    let bind = sym.binding();
    sym.st_shndx.get() == SHN_UNDEF
        && sym.kind() == STT_NOTYPE
        && (bind == STB_GLOBAL || bind == STB_WEAK)
        && sym.st_name.get() != 0
}

/// Undefined global/weak NOTYPE symbols with a non-empty name.
pub(super) fn candidates<'e, 'a>(elf: &'e Elf<'a>) -> impl Iterator<Item = (u32, &'a Symbol)> + 'e {
    elf.symbols()
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, s)| is_extern(s) && elf.symbol_name(s).is_ok_and(|n| !n.is_empty()))
        .map(|(i, s)| (i as u32, s))
}

pub(super) fn collect<'o, 'a>(elf: &Elf<'a>, btf: &Btf<'a>, out: &'o mut [Extern<'a>]) -> Result<&'o mut [Extern<'a>]> {
    let capacity = out.len();
    let mut n = 0usize;
    for (sym_idx, sym) in candidates(elf) {
        let raw = elf.symbol_name(sym)?;
        let name = core::str::from_utf8(raw).map_err(|_| Error::ExternNameEncoding { symbol: sym_idx })?;
        let slot = out.get_mut(n).ok_or(Error::CapacityExceeded {
            what: "extern table",
            capacity,
        })?;
        *slot = Extern {
            name,
            essential_name: essential_name(name),
            weak: sym.binding() == STB_WEAK,
            sym_idx,
            ..Extern::default()
        };
        n += 1;
    }
    let table = &mut out[..n];
    describe_all(btf, table)?;
    Ok(table)
}

/// Sorts an extern table into libbpf's order and numbers it (`index`):
/// kconfig before ksyms, then by name, byte-wise. (libbpf further orders the
/// kconfig group by alignment and size; that changes no ksym's index, which
/// is all the patcher needs.)
pub fn order(table: &mut [Extern<'_>]) {
    table.sort_unstable_by(|a, b| {
        (a.kind != ExternKind::Kconfig)
            .cmp(&(b.kind != ExternKind::Kconfig))
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
    for (i, e) in table.iter_mut().enumerate() {
        e.index = ExternIdx(i as u32);
    }
}

/// `Extern::index` of an entry [`describe_all`] has not classified yet.
const UNCLASSIFIED: ExternIdx = ExternIdx(u32::MAX);
/// ... whose VAR/FUNC has the wrong linkage (kept in `type_id`).
const BAD_LINKAGE: ExternIdx = ExternIdx(u32::MAX - 1);
/// ... listed by a DATASEC other than `.ksyms`/`.kconfig` (its id in `type_id`).
const OTHER_SECTION: ExternIdx = ExternIdx(u32::MAX - 2);

/// Describes a whole extern table at once, as [`describe`] does one
/// extern, in two passes over the object's BTF whatever the table's size:
/// `table` holds each extern's `name`, `essential_name`, `weak` and
/// `sym_idx`; the rest is filled in, and the table is put in libbpf's order
/// ([`order`]). Names must be distinct. Errors are those of [`describe`],
/// for the first failing extern in `sym_idx` order.
pub fn describe_all<'a>(btf: &Btf<'a>, table: &mut [Extern<'a>]) -> Result<()> {
    table.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for e in table.iter_mut() {
        e.btf_id = BtfId(0);
        e.index = UNCLASSIFIED;
    }
    // Pass 1: the first VAR or FUNC of each name, in id order; its kind
    // (Kfunc for a FUNC, Typed for a VAR, refined below) and its type.
    let mut pending = table.len();
    for ty in btf.own_types() {
        if pending == 0 {
            break;
        }
        let ty = ty?;
        if !matches!(ty.kind(), Kind::Var | Kind::Func) {
            continue;
        }
        let name = btf.name(&ty)?;
        let Ok(i) = table.binary_search_by(|e| e.name.as_bytes().cmp(name)) else {
            continue;
        };
        let e = &mut table[i];
        if e.btf_id != BtfId(0) {
            continue;
        }
        pending -= 1;
        e.btf_id = BtfId(ty.id());
        e.kind = if ty.kind() == Kind::Func {
            ExternKind::Kfunc
        } else {
            ExternKind::Typed
        };
        if ty.linkage() != linkage::EXTERN {
            e.index = BAD_LINKAGE;
            e.type_id = BtfId(ty.linkage());
        } else {
            e.type_id = BtfId(ty.type_id());
        }
    }
    // Pass 2: the first DATASEC that lists each one decides its class.
    table.sort_unstable_by_key(|e| e.btf_id);
    let mut pending = table
        .iter()
        .filter(|e| e.btf_id != BtfId(0) && e.index == UNCLASSIFIED)
        .count();
    for sec in btf.own_types() {
        if pending == 0 {
            break;
        }
        let sec = sec?;
        if sec.kind() != Kind::Datasec {
            continue;
        }
        let sec_name = btf.name(&sec)?;
        for v in sec.datasec_vars() {
            let Ok(i) = table.binary_search_by_key(&BtfId(v.type_id.get()), |e| e.btf_id) else {
                continue;
            };
            let e = &mut table[i];
            if e.btf_id == BtfId(0) || e.index != UNCLASSIFIED {
                continue;
            }
            pending -= 1;
            e.index = ExternIdx(0);
            match sec_name {
                b".ksyms" if e.kind == ExternKind::Kfunc => {
                    e.type_id = BtfId(btf.skip_mods_and_typedefs(e.type_id.0)?.id())
                }
                b".ksyms" => {
                    e.type_id = BtfId(btf.skip_mods_and_typedefs(e.type_id.0)?.id());
                    if e.type_id == BtfId(0) {
                        e.kind = ExternKind::Typeless;
                    }
                }
                b".kconfig" => {
                    e.kind = ExternKind::Kconfig;
                    e.type_id = BtfId(0);
                }
                _ => {
                    e.index = OTHER_SECTION;
                    e.type_id = BtfId(sec.id());
                }
            }
        }
    }
    // Errors, for the first failing extern in symbol order (sorted so only
    // when there is one).
    let failed = |e: &Extern<'_>| e.btf_id == BtfId(0) || matches!(e.index, BAD_LINKAGE | UNCLASSIFIED | OTHER_SECTION);
    if table.iter().any(failed) {
        table.sort_unstable_by_key(|e| e.sym_idx);
    }
    for e in table.iter() {
        let name = || Name::from(e.name);
        if e.btf_id == BtfId(0) {
            return Err(Error::ExternNoBtf { name: name() });
        }
        match e.index {
            BAD_LINKAGE => {
                return Err(Error::ExternLinkage {
                    name: name(),
                    linkage: e.type_id.0,
                })
            }
            UNCLASSIFIED => {
                return Err(Error::ExternSection {
                    names: NamePair::new(e.name.as_bytes(), b""),
                })
            }
            OTHER_SECTION => {
                let sec = btf.type_by_id(e.type_id.0)?;
                return Err(Error::ExternSection {
                    names: NamePair::new(e.name.as_bytes(), btf.name(&sec)?),
                });
            }
            _ => {}
        }
    }
    order(table);
    Ok(())
}

/// Describes the extern `name` from an object's BTF alone (no ELF): its
/// kind from the DATASEC that lists it, its local type. `index` is left 0;
/// number a whole table with [`order`]. This is how a loader that holds
/// instructions and `.BTF` but no ELF (the C ABI) builds its extern table.
pub fn describe<'a>(btf: &Btf<'a>, name: &'a str, sym_idx: u32, weak: bool) -> Result<Extern<'a>> {
    let err_name = || Name::from(name);
    // The first VAR or FUNC of that name, in id order.
    let mut btf_id = None;
    for ty in btf.own_types() {
        let ty = ty?;
        if matches!(ty.kind(), Kind::Var | Kind::Func) && btf.name(&ty)? == name.as_bytes() {
            if ty.linkage() != linkage::EXTERN {
                return Err(Error::ExternLinkage {
                    name: err_name(),
                    linkage: ty.linkage(),
                });
            }
            btf_id = Some(ty);
            break;
        }
    }
    let ty = btf_id.ok_or_else(|| Error::ExternNoBtf { name: err_name() })?;

    // The DATASEC that lists it decides its class.
    let mut section: Option<&[u8]> = None;
    'secs: for sec in btf.own_types() {
        let sec = sec?;
        if sec.kind() != Kind::Datasec {
            continue;
        }
        for v in sec.datasec_vars() {
            if v.type_id.get() == ty.id() {
                section = Some(btf.name(&sec)?);
                break 'secs;
            }
        }
    }
    let kind = match section {
        Some(b".ksyms") if ty.kind() == Kind::Func => ExternKind::Kfunc,
        Some(b".ksyms") => {
            if btf.skip_mods_and_typedefs(ty.type_id())?.id() == 0 {
                ExternKind::Typeless
            } else {
                ExternKind::Typed
            }
        }
        Some(b".kconfig") => ExternKind::Kconfig,
        other => {
            return Err(Error::ExternSection {
                names: NamePair::new(name.as_bytes(), other.unwrap_or(b"")),
            })
        }
    };
    let type_id = match kind {
        ExternKind::Typed | ExternKind::Kfunc => BtfId(btf.skip_mods_and_typedefs(ty.type_id())?.id()),
        ExternKind::Typeless | ExternKind::Kconfig => BtfId(0),
    };
    Ok(Extern {
        name,
        essential_name: essential_name(name),
        kind,
        weak,
        sym_idx,
        btf_id: BtfId(ty.id()),
        type_id,
        index: ExternIdx(0),
    })
}
