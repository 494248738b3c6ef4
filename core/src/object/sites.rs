//! Relocation sites: the instructions that refer to externs.

use super::Extern;
use crate::bpf::INSN_SIZE;
use crate::elf::{Elf, SHT_REL};
use crate::error::{Error, Name, NamePair, Result};
use crate::index::{ExternIdx, InsnIdx, SectionIndex};
use crate::insn::{self, Insn};

/// What instruction a site is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// `ld_imm64` (two slots).
    #[default]
    Ld64,
    /// `call`.
    Call,
}

impl SiteKind {
    /// What the instruction at `idx` is as a relocation site: the one
    /// decision every caller (the ELF reader, the patcher, the loader
    /// generator, instruction-slice callers) makes the same way.
    pub fn classify(insns: &[Insn], idx: usize) -> core::result::Result<SiteKind, NotASite> {
        match insns.get(idx) {
            None => Err(NotASite::PastEnd),
            Some(insn) if insn.is_call() => Ok(SiteKind::Call),
            Some(insn) if insn.is_ld_imm64() => {
                if idx + 1 < insns.len() {
                    Ok(SiteKind::Ld64)
                } else {
                    Err(NotASite::LastSlot)
                }
            }
            Some(insn) => Err(NotASite::Opcode(insn.code)),
        }
    }

    /// Whether the instruction at `idx` is a site of this kind.
    pub fn matches(self, insns: &[Insn], idx: usize) -> bool {
        SiteKind::classify(insns, idx) == Ok(self)
    }
}

/// Why an instruction cannot be a relocation site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotASite {
    /// The index is past the last instruction.
    PastEnd,
    /// An `ld_imm64` in the last slot: its second half is missing.
    LastSlot,
    /// Neither an `ld_imm64` nor a `call`: the opcode.
    Opcode(u8),
}

/// One instruction that refers to an extern.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Site {
    /// ELF index of the executable section holding the instruction.
    pub section: SectionIndex,
    /// Instruction index within that section.
    pub insn_idx: InsnIdx,
    /// Index into the extern table.
    pub extern_idx: ExternIdx,
    /// Instruction kind.
    pub kind: SiteKind,
}

impl Site {
    /// Checks that the site points, inside `insns`, at an instruction of
    /// its kind: what the patcher and the loader generator require of every
    /// site they are given before they touch any.
    pub fn check(&self, insns: &[Insn]) -> Result<()> {
        if self.kind.matches(insns, self.insn_idx.get()) {
            Ok(())
        } else {
            Err(Error::Mismatch {
                what: "site does not point at a matching ld_imm64/call instruction",
            })
        }
    }
}

/// Counts relocations that apply to executable sections.
pub(super) fn max_count(elf: &Elf<'_>) -> Result<usize> {
    let mut n = 0usize;
    for rel_sec in elf.sections() {
        let rel_sec = rel_sec?;
        if rel_sec.header.sh_type.get() != SHT_REL {
            continue;
        }
        let target = elf.section(SectionIndex(rel_sec.header.sh_info.get()))?;
        if target.is_exec() {
            n += elf.rels(&rel_sec)?.len();
        }
    }
    Ok(n)
}

/// The extern of symbol `sym`, if it is one. A table in libbpf's order
/// (kconfig run, then ksym run, each sorted by name) is searched by name in
/// O(log n); any other table, and symbols that look like externs but are
/// not found so, linearly.
fn find_extern<'t, 'a>(elf: &Elf<'_>, externs: &'t [Extern<'a>], sym: u32) -> Option<&'t Extern<'a>> {
    let symbol = elf.symbols().get(sym as usize)?;
    if !super::externs::is_extern(symbol) {
        return None;
    }
    if let Ok(name) = elf.symbol_name(symbol) {
        let split = externs.partition_point(|e| e.kind == super::ExternKind::Kconfig);
        for run in [&externs[..split], &externs[split..]] {
            if let Ok(i) = run.binary_search_by(|e| e.name.as_bytes().cmp(name)) {
                if run[i].sym_idx == sym {
                    return Some(&run[i]);
                }
            }
        }
    }
    externs.iter().find(|e| e.sym_idx == sym)
}

pub(super) fn collect<'o>(elf: &Elf<'_>, externs: &[Extern<'_>], out: &'o mut [Site]) -> Result<&'o mut [Site]> {
    let capacity = out.len();
    let mut n = 0usize;
    for rel_sec in elf.sections() {
        let rel_sec = rel_sec?;
        if rel_sec.header.sh_type.get() != SHT_REL {
            continue;
        }
        let target = elf.section(SectionIndex(rel_sec.header.sh_info.get()))?;
        if !target.is_exec() {
            continue;
        }
        if Some(SectionIndex(rel_sec.header.sh_link.get())) != elf.symtab_index() {
            return Err(Error::Malformed {
                what: "ELF relocation section's symbol table link",
                offset: rel_sec.header.sh_offset.get() as usize,
            });
        }
        let data = elf.data_of(&target)?;
        let insns = insn::insns(data).map_err(|_| Error::Malformed {
            what: "executable section size (not a multiple of 8)",
            offset: target.header.sh_offset.get() as usize,
        })?;
        for rel in elf.rels(&rel_sec)? {
            let sym = rel.symbol();
            let Some(ext) = find_extern(elf, externs, sym) else {
                if sym as usize >= elf.symbols().len() {
                    return Err(Error::Malformed {
                        what: "relocation symbol index",
                        offset: rel_sec.header.sh_offset.get() as usize,
                    });
                }
                continue;
            };
            let offset = rel.r_offset.get();
            let section = || Name::new(target.name);
            if offset % INSN_SIZE as u64 != 0 {
                return Err(Error::SiteMisaligned {
                    section: section(),
                    offset,
                });
            }
            let idx = offset / INSN_SIZE as u64;
            let kind = match SiteKind::classify(insns, idx as usize) {
                Ok(kind) => kind,
                Err(NotASite::PastEnd) => {
                    return Err(Error::SitePastEnd {
                        section: section(),
                        offset,
                    })
                }
                Err(NotASite::LastSlot) => {
                    return Err(Error::SitePastEnd {
                        section: section(),
                        offset: offset + INSN_SIZE as u64,
                    })
                }
                Err(NotASite::Opcode(code)) => {
                    return Err(Error::SiteOpcode {
                        names: NamePair::new(ext.name.as_bytes(), target.name),
                        insn_idx: idx as u32,
                        code,
                    })
                }
            };
            let slot = out.get_mut(n).ok_or(Error::CapacityExceeded {
                what: "site table",
                capacity,
            })?;
            *slot = Site {
                section: target.index,
                insn_idx: InsnIdx(idx as u32),
                extern_idx: ext.index,
                kind,
            };
            n += 1;
        }
    }
    Ok(&mut out[..n])
}
