//! The C loader's view: one program held as instructions, the object's
//! `.BTF`, and its extern sites by instruction index and name — no ELF.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use ksymrelo_core::btf::Btf;
use ksymrelo_core::error::{Error as CoreError, NamePair};
use ksymrelo_core::index::{ExternIdx, InsnIdx, SectionIndex};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::{describe_all, essential_name, Extern, NotASite, Site, SiteKind};
use ksymrelo_core::patch;

use super::{resolve_externs, write_if_accepted, ExternReport};
use crate::error::{Error, InsnSiteProblem, Result};
use crate::kernel::{Kernel, ModuleBtfData};
use crate::modes::Mode;

/// A site as a loader that holds instructions but no ELF knows it: the
/// instruction index and the extern's name and binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsnSite<'n> {
    /// Index of the `ld_imm64` or `call` instruction.
    pub insn_idx: u32,
    /// The extern is `__weak`.
    pub weak: bool,
    /// The extern's name (as in the object's BTF).
    pub name: &'n str,
}

/// The result of [`relocate_insns`].
#[derive(Debug, Default)]
pub struct InsnRelocation {
    /// Externs, in libbpf's extern order.
    pub externs: Vec<ExternReport>,
    /// fd_array to load with (empty unless a module kfunc is called).
    pub fd_array: Vec<i32>,
    /// The module BTF objects the instructions refer to (see
    /// [`super::Relocation::modules`]).
    pub modules: Vec<Arc<ModuleBtfData>>,
}

/// Resolves and patches one program held as instructions, given the
/// object's `.BTF` and its extern sites — the C loader's view, with no ELF —
/// in the default mode. `insns` are modified only on success.
pub fn relocate_insns(
    kernel: &Kernel,
    obj_btf: &[u8],
    insns: &mut [Insn],
    sites: &[InsnSite<'_>],
) -> Result<InsnRelocation> {
    relocate_insns_with(kernel, obj_btf, insns, sites, Mode::default())
}

/// [`relocate_insns`] in a chosen [`Mode`].
pub fn relocate_insns_with(
    kernel: &Kernel,
    obj_btf: &[u8],
    insns: &mut [Insn],
    sites: &[InsnSite<'_>],
    mode: Mode,
) -> Result<InsnRelocation> {
    relocate_insns_if(kernel, obj_btf, insns, sites, mode, |_| Ok(()))
}

/// [`relocate_insns_with`], writing only if `accept` agrees with the
/// result (a C caller's fd_array must have room, say): the rule of
/// [`super::relocate_in_place_if`]. On any error, `accept`'s included,
/// `insns` are unchanged, so a caller's own buffer can be patched in place.
///
/// Each site's extern is found by hash, the object's types through a full
/// index: the cost grows as `n log n` in sites and externs, whatever names
/// the caller gives.
pub fn relocate_insns_if(
    kernel: &Kernel,
    obj_btf: &[u8],
    insns: &mut [Insn],
    sites: &[InsnSite<'_>],
    mode: Mode,
    accept: impl FnOnce(&InsnRelocation) -> Result<()>,
) -> Result<InsnRelocation> {
    let mut index = vec![0u32; Btf::max_type_count(obj_btf).max(1)];
    let btf = Btf::parse_indexed(obj_btf, None, &mut index)?;
    // Name to extern: first its place in `externs`, after `describe_all`
    // (which puts the table in libbpf's order) its index.
    let mut by_name: HashMap<&str, ExternIdx> = HashMap::with_capacity(sites.len());
    let mut externs: Vec<Extern<'_>> = Vec::new();
    for s in sites {
        match by_name.entry(s.name) {
            Entry::Occupied(e) if externs[e.get().get()].weak != s.weak => {
                return Err(Error::InsnSite {
                    name: s.name.to_owned(),
                    problem: InsnSiteProblem::WeakDisagrees,
                })
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(ExternIdx(externs.len() as u32));
                externs.push(Extern {
                    name: s.name,
                    essential_name: essential_name(s.name),
                    weak: s.weak,
                    sym_idx: externs.len() as u32,
                    ..Extern::default()
                });
            }
        }
    }
    describe_all(&btf, &mut externs)?;
    for e in &externs {
        by_name.insert(e.name, e.index);
    }
    let mut core_sites = Vec::with_capacity(sites.len());
    for s in sites {
        let extern_idx = by_name[s.name];
        let i = s.insn_idx as usize;
        let kind = match SiteKind::classify(insns, i) {
            Ok(kind) => kind,
            Err(NotASite::Opcode(code)) => {
                return Err(CoreError::SiteOpcode {
                    names: NamePair::new(s.name.as_bytes(), b"(insns)"),
                    insn_idx: s.insn_idx,
                    code,
                }
                .into())
            }
            Err(NotASite::LastSlot) => {
                return Err(Error::InsnSite {
                    name: s.name.to_owned(),
                    problem: InsnSiteProblem::LastSlot {
                        insn_idx: s.insn_idx,
                        insn_count: insns.len(),
                    },
                })
            }
            Err(NotASite::PastEnd) => {
                return Err(Error::InsnSite {
                    name: s.name.to_owned(),
                    problem: InsnSiteProblem::PastEnd {
                        insn_idx: s.insn_idx,
                        insn_count: insns.len(),
                    },
                })
            }
        };
        core_sites.push(Site {
            section: SectionIndex::UNDEF,
            insn_idx: InsnIdx(s.insn_idx),
            extern_idx,
            kind,
        });
    }
    let resolved = resolve_externs(&externs, &btf, kernel, mode)?;
    let relocation = InsnRelocation {
        externs: resolved.reports(&externs, &core_sites),
        fd_array: resolved.fd_array.clone(),
        modules: resolved.held_modules(),
    };
    write_if_accepted(relocation, accept, |_| {
        patch::patch_section(insns, SectionIndex::UNDEF, &core_sites, &resolved.resolutions)
    })
}
