//! Which kernel lookup each relocation site needs, and which earlier site
//! already made the same one (its result is copied instead): decided in one
//! pass over the sites into a fixed-size table, so each question after that
//! is answered in constant time.

use crate::btf::Kind;
use crate::error::{Error, Result};
use crate::object::{Extern, ExternKind, Site, SiteKind};

/// The lookup a site needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// `bpf_kallsyms_lookup_name` for a typeless `ld_imm64`.
    Typeless,
    /// `bpf_btf_find_by_name_kind` of this BTF kind for an `ld_imm64`.
    Btf { kind: i32 },
    /// `bpf_btf_find_by_name_kind` of a FUNC for a kfunc call.
    Kfunc,
}

/// Most distinct lookups (lookup name, its kind) one loader makes; more
/// is [`Error::CapacityExceeded`]. Sites that repeat a lookup do not count.
pub const MAX_LOOKUPS: usize = 2048;

/// Slots of the first-site table: a power of two, never more than half
/// full, so a probe always reaches an empty slot and stays short.
const TABLE_SLOTS: usize = 2 * MAX_LOOKUPS;

/// The extern a site refers to.
pub(super) fn extern_of<'a, 'e>(externs: &'a [Extern<'e>], site: &Site) -> Result<&'a Extern<'e>> {
    externs.get(site.extern_idx.get()).ok_or(Error::Mismatch {
        what: "site refers to an extern index past the table",
    })
}

/// The lookup a site needs; `None` for a Kconfig extern (not the loader's).
pub(super) fn lookup_of(externs: &[Extern<'_>], site: &Site) -> Result<Option<Lookup>> {
    Ok(match (extern_of(externs, site)?.kind, site.kind) {
        (ExternKind::Kconfig, _) => None,
        (ExternKind::Typeless, SiteKind::Ld64) => Some(Lookup::Typeless),
        (ExternKind::Typed, SiteKind::Ld64) => Some(Lookup::Btf { kind: Kind::Var as i32 }),
        (ExternKind::Kfunc, SiteKind::Ld64) => Some(Lookup::Btf {
            kind: Kind::Func as i32,
        }),
        (ExternKind::Kfunc, SiteKind::Call) => Some(Lookup::Kfunc),
        (_, SiteKind::Call) => {
            return Err(Error::Mismatch {
                what: "a call site of a variable extern",
            })
        }
    })
}

/// One site the loader handles.
pub(super) struct Entry<'a, 'e> {
    pub site: &'a Site,
    pub ext: &'a Extern<'e>,
    pub lookup: Lookup,
    /// The first site with the same lookup, whose result this one copies;
    /// `None` when this site is that first one and makes the lookup.
    pub first: Option<&'a Site>,
}

/// The sites' lookups, with the first site of each distinct one.
pub(super) struct Lookups<'a, 'e> {
    externs: &'a [Extern<'e>],
    sites: &'a [Site],
    /// Open addressing on (lookup name, lookup): index + 1 of the first
    /// site with it; 0 is an empty slot.
    first: [u32; TABLE_SLOTS],
}

impl<'a, 'e> Lookups<'a, 'e> {
    /// Checks every site's extern and lookup (errors in site order) and
    /// records the first site of each distinct lookup.
    pub fn new(externs: &'a [Extern<'e>], sites: &'a [Site]) -> Result<Self> {
        let mut table = Lookups {
            externs,
            sites,
            first: [0; TABLE_SLOTS],
        };
        let mut distinct = 0;
        for (i, site) in sites.iter().enumerate() {
            let Some(lookup) = lookup_of(externs, site)? else {
                continue;
            };
            let slot = table.probe(extern_of(externs, site)?.lookup_name(), lookup)?;
            if table.first[slot] == 0 {
                if distinct == MAX_LOOKUPS {
                    return Err(Error::CapacityExceeded {
                        what: "distinct loader lookups",
                        capacity: MAX_LOOKUPS,
                    });
                }
                distinct += 1;
                table.first[slot] = u32::try_from(i + 1).map_err(|_| Error::Overflow { what: "site count" })?;
            }
        }
        Ok(table)
    }

    /// Every site that needs a lookup, in site order.
    pub fn entries(&self) -> impl Iterator<Item = Result<Entry<'a, 'e>>> + '_ {
        self.sites
            .iter()
            .enumerate()
            .filter_map(move |(i, site)| self.entry(i, site).transpose())
    }

    /// The sites that make their lookup (the first of each), in site order.
    pub fn firsts(&self) -> impl Iterator<Item = Result<Entry<'a, 'e>>> + '_ {
        self.entries()
            .filter(|entry| entry.as_ref().map_or(true, |e| e.first.is_none()))
    }

    fn entry(&self, i: usize, site: &'a Site) -> Result<Option<Entry<'a, 'e>>> {
        let Some(lookup) = lookup_of(self.externs, site)? else {
            return Ok(None);
        };
        let ext = extern_of(self.externs, site)?;
        let first = self.first[self.probe(ext.lookup_name(), lookup)?] as usize;
        let first = match first.checked_sub(1) {
            Some(j) if j == i => None,
            Some(j) if j < i => self.sites.get(j),
            _ => {
                return Err(Error::Mismatch {
                    what: "loader lookups of other sites",
                })
            }
        };
        Ok(Some(Entry {
            site,
            ext,
            lookup,
            first,
        }))
    }

    /// The slot of (`name`, `lookup`): the one holding its first site, or
    /// the empty one where that goes.
    fn probe(&self, name: &str, lookup: Lookup) -> Result<usize> {
        let mut slot = hash(name, lookup) as usize & (TABLE_SLOTS - 1);
        loop {
            let Some(j) = (self.first[slot] as usize).checked_sub(1) else {
                return Ok(slot);
            };
            let site = self.sites.get(j).ok_or(Error::Mismatch {
                what: "loader lookups of other sites",
            })?;
            if lookup_of(self.externs, site)? == Some(lookup) && extern_of(self.externs, site)?.lookup_name() == name {
                return Ok(slot);
            }
            slot = (slot + 1) & (TABLE_SLOTS - 1);
        }
    }
}

/// FNV-1a over the name, then the lookup.
fn hash(name: &str, lookup: Lookup) -> u32 {
    let tag = match lookup {
        Lookup::Typeless => 0,
        Lookup::Kfunc => 1,
        Lookup::Btf { kind } => 2u8.wrapping_add(kind as u8),
    };
    name.bytes()
        .chain([tag])
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
    use crate::object::essential_name;
    use std::string::String;
    use std::vec::Vec;

    const NAMES: [&str; 6] = ["a", "a___x", "a___y", "b", "", "b___x"];
    const KINDS: [ExternKind; 4] = [
        ExternKind::Typed,
        ExternKind::Typeless,
        ExternKind::Kfunc,
        ExternKind::Kconfig,
    ];

    fn ext(name: &str, kind: ExternKind, index: u32) -> Extern<'_> {
        Extern {
            name,
            essential_name: essential_name(name),
            kind,
            weak: false,
            sym_idx: index,
            btf_id: BtfId(1),
            type_id: BtfId(1),
            index: ExternIdx(index),
        }
    }

    /// The definition: the first earlier site with the same lookup name and
    /// lookup, found by looking at every earlier site.
    fn first_of_by_scan(externs: &[Extern<'_>], sites: &[Site], i: usize) -> Option<usize> {
        let key = |s: &Site| {
            (
                externs[s.extern_idx.get()].lookup_name(),
                lookup_of(externs, s).unwrap(),
            )
        };
        (0..i).find(|&j| key(&sites[j]) == key(&sites[i]))
    }

    #[test]
    fn the_first_site_of_each_lookup_is_the_one_a_scan_finds() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        // Fewer tables under miri, which is slow.
        for _ in 0..if cfg!(miri) { 12 } else { 500 } {
            let externs: Vec<Extern<'_>> = (0..1 + next(8))
                .map(|i| ext(NAMES[next(NAMES.len())], KINDS[next(KINDS.len())], i as u32))
                .collect();
            let sites: Vec<Site> = (0..next(40))
                .map(|i| {
                    let extern_idx = next(externs.len());
                    let call = externs[extern_idx].kind == ExternKind::Kfunc && next(2) == 0;
                    Site {
                        section: SectionIndex(0),
                        insn_idx: InsnIdx(2 * i as u32),
                        extern_idx: ExternIdx(extern_idx as u32),
                        kind: if call { SiteKind::Call } else { SiteKind::Ld64 },
                    }
                })
                .collect();
            let lookups = Lookups::new(&externs, &sites).unwrap();
            let mut seen = 0;
            for entry in lookups.entries() {
                let entry = entry.unwrap();
                let i = sites.iter().position(|s| core::ptr::eq(s, entry.site)).unwrap();
                let first = entry
                    .first
                    .map(|f| sites.iter().position(|s| core::ptr::eq(s, f)).unwrap());
                assert_eq!(first, first_of_by_scan(&externs, &sites, i), "site {i} of {sites:?}");
                seen += 1;
            }
            let kconfig = sites
                .iter()
                .filter(|s| externs[s.extern_idx.get()].kind == ExternKind::Kconfig)
                .count();
            assert_eq!(seen + kconfig, sites.len());
        }
    }

    #[test]
    fn more_distinct_lookups_than_the_table_holds_is_an_error() {
        let names: Vec<String> = (0..=MAX_LOOKUPS).map(|i| std::format!("s{i}")).collect();
        let externs: Vec<Extern<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ext(n, ExternKind::Typeless, i as u32))
            .collect();
        // Each extern at two sites: repeats do not count against the table.
        let sites: Vec<Site> = (0..2 * externs.len())
            .map(|i| Site {
                section: SectionIndex(0),
                insn_idx: InsnIdx(2 * i as u32),
                extern_idx: ExternIdx((i % externs.len()) as u32),
                kind: SiteKind::Ld64,
            })
            .collect();
        let fits = &sites[..MAX_LOOKUPS];
        assert!(Lookups::new(&externs, fits).is_ok());
        let fits_twice: Vec<Site> = fits.iter().chain(fits).copied().collect();
        assert!(Lookups::new(&externs, &fits_twice).is_ok());
        assert!(matches!(
            Lookups::new(&externs, &sites),
            Err(Error::CapacityExceeded {
                what: "distinct loader lookups",
                capacity: MAX_LOOKUPS
            })
        ));
    }
}
