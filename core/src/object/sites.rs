//! Relocation sites: the instructions that refer to externs.

use super::Extern;
use crate::elf::{Elf, SHT_REL};
use crate::error::{Error, Name, Result};
use crate::insn::{self, INSN_SIZE};

/// What instruction a site is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SiteKind {
    /// `ld_imm64` (two slots).
    #[default]
    Ld64,
    /// `call`.
    Call,
}

/// One instruction that refers to an extern.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Site {
    /// ELF index of the executable section holding the instruction.
    pub section: u32,
    /// Instruction index within that section.
    pub insn_idx: u32,
    /// Index into the extern table.
    pub extern_idx: u32,
    /// Instruction kind.
    pub kind: SiteKind,
}

/// Counts relocations that apply to executable sections.
pub(super) fn max_count(elf: &Elf<'_>) -> Result<usize> {
    let mut n = 0usize;
    for rel_sec in elf.sections() {
        let rel_sec = rel_sec?;
        if rel_sec.header.sh_type.get() != SHT_REL {
            continue;
        }
        let target = elf.section(rel_sec.header.sh_info.get())?;
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
        let target = elf.section(rel_sec.header.sh_info.get())?;
        if !target.is_exec() {
            continue;
        }
        if Some(rel_sec.header.sh_link.get()) != elf.symtab_index() {
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
            let Some(ins) = insns.get(idx as usize) else {
                return Err(Error::SitePastEnd {
                    section: section(),
                    offset,
                });
            };
            let kind = if ins.is_call() {
                SiteKind::Call
            } else if ins.is_ld_imm64() {
                if idx as usize + 1 >= insns.len() {
                    return Err(Error::SitePastEnd {
                        section: section(),
                        offset: offset + INSN_SIZE as u64,
                    });
                }
                SiteKind::Ld64
            } else {
                return Err(Error::SiteOpcode {
                    name: Name::from(ext.name),
                    section: section(),
                    insn_idx: idx as u32,
                    code: ins.code,
                });
            };
            let slot = out.get_mut(n).ok_or(Error::CapacityExceeded {
                what: "site table",
                capacity,
            })?;
            *slot = Site {
                section: target.index,
                insn_idx: idx as u32,
                extern_idx: ext.index,
                kind,
            };
            n += 1;
        }
    }
    Ok(&mut out[..n])
}
