//! What a relocation of a code section means to libbpf
//! (`bpf_program__record_reloc`): an extern, a BPF-to-BPF call, a
//! function's address, a map, or a global variable.

use super::functions::{self, Function, STB_LOCAL, STT_FUNC};
use super::maps::{data_kind, Map, MapKind};
use super::problem::{err, LinkProblem};
use crate::bpf::{op, pseudo, INSN_SIZE};
use crate::elf::{Elf, Section, Symbol, SHN_UNDEF, SHT_REL, STB_GLOBAL, STB_WEAK, STT_NOTYPE};
use crate::error::{Error, Result};
use crate::index::SectionIndex;
use crate::insn::Insn;

/// `STT_SECTION`.
const STT_SECTION: u8 = 3;
/// `SHN_LORESERVE`.
const SHN_LORESERVE: u16 = 0xff00;

/// One relocation, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relo {
    /// A `call` of an extern (a kfunc): patched later, as a ksym site.
    ExternCall,
    /// An `ld_imm64` of an extern: a ksym (or kconfig) site.
    ExternLd64,
    /// A BPF-to-BPF call; `sym_off` is the symbol's value (libbpf keeps
    /// 32 bits of it).
    Call { sym_off: u32 },
    /// An `ld_imm64` of a `.text` function's address.
    SubprogAddr { sym_off: u32 },
    /// An `ld_imm64` of a BTF-defined map.
    Map { map: u32 },
    /// An `ld_imm64` of a global variable of an internal map.
    Data { map: u32, sym_off: u32 },
}

/// What classifying a relocation needs to know of the object.
pub(crate) struct Context<'c, 'a> {
    pub elf: &'c Elf<'a>,
    pub text: Option<SectionIndex>,
    pub maps_section: Option<SectionIndex>,
    pub maps: &'c [Map<'a>],
}

fn is_extern(sym: &Symbol) -> bool {
    let bind = sym.binding();
    sym.st_shndx.get() == SHN_UNDEF && (bind == STB_GLOBAL || bind == STB_WEAK) && sym.kind() == STT_NOTYPE
}

impl Context<'_, '_> {
    /// The name libbpf shows for a relocation's symbol: a section
    /// symbol's section name, else its own name.
    fn sym_name(&self, sym: &Symbol) -> &[u8] {
        let name = if sym.kind() == STT_SECTION && sym.st_name.get() == 0 {
            self.elf
                .section(SectionIndex(u32::from(sym.st_shndx.get())))
                .map(|s| s.name)
        } else {
            self.elf.symbol_name(sym)
        };
        name.unwrap_or(b"<?")
    }

    /// Classifies the relocation of `insn` (instruction `at` of `prog`)
    /// against symbol `sym`, with every check of libbpf's, in its order.
    pub fn classify(&self, prog: &Function<'_>, at: u32, insn: &Insn, sym: &Symbol) -> Result<Relo> {
        let name = self.sym_name(sym);
        let problem = |p| err(p, prog.name, name, u64::from(at));
        if !insn.is_call() && !insn.is_ld_imm64() {
            return Err(problem(LinkProblem::ReloOpcode));
        }
        if is_extern(sym) {
            return Ok(if insn.is_call() {
                Relo::ExternCall
            } else {
                Relo::ExternLd64
            });
        }
        let shndx = sym.st_shndx.get();
        let value = sym.st_value.get();
        let in_text = self.text.is_some_and(|t| t.0 == u32::from(shndx));
        if insn.is_call() {
            if insn.src_reg() != pseudo::CALL {
                return Err(problem(LinkProblem::CallOpcode));
            }
            if shndx == SHN_UNDEF || !in_text {
                return Err(problem(LinkProblem::CallOutsideText));
            }
            if value % INSN_SIZE as u64 != 0 {
                return Err(problem(LinkProblem::CallMisaligned));
            }
            return Ok(Relo::Call { sym_off: value as u32 });
        }
        if shndx == SHN_UNDEF || shndx >= SHN_LORESERVE {
            return Err(problem(LinkProblem::SpecialSection));
        }
        let bind = sym.binding();
        let subprog = in_text
            && ((bind == STB_LOCAL && sym.kind() == STT_SECTION)
                || ((bind == STB_GLOBAL || bind == STB_WEAK) && sym.kind() == STT_FUNC));
        if subprog {
            if value % INSN_SIZE as u64 != 0 || insn.imm() % INSN_SIZE as i32 != 0 {
                return Err(problem(LinkProblem::SubprogAddrMisaligned));
            }
            return Ok(Relo::SubprogAddr { sym_off: value as u32 });
        }
        let section = self.elf.section(SectionIndex(u32::from(shndx)))?;
        if matches!(section.name, b".addr_space.1" | b".jumptables") {
            return Err(problem(LinkProblem::ArenaOrJumpTable));
        }
        // The symbol table's index is libbpf's kconfig map "section": no
        // data section, so such a relocation fails below, as in libbpf.
        let kind = if Some(section.index) == self.elf.symtab_index() {
            Some(MapKind::Kconfig)
        } else {
            data_kind(&section)
        };
        let Some(kind) = kind else {
            if Some(section.index) != self.maps_section {
                return Err(problem(LinkProblem::BadMapRelo));
            }
            let map = self
                .maps
                .iter()
                .position(|m| m.kind == MapKind::Btf && m.section == section.index && u64::from(m.sec_offset) == value)
                .ok_or_else(|| problem(LinkProblem::MapNotFound))?;
            return Ok(Relo::Map { map: map as u32 });
        };
        if kind == MapKind::Kconfig {
            return Err(problem(LinkProblem::BadMapRelo));
        }
        let map = self
            .maps
            .iter()
            .position(|m| m.kind == kind && m.section == section.index)
            .ok_or_else(|| problem(LinkProblem::DataMapNotFound))?;
        Ok(Relo::Data {
            map: map as u32,
            sym_off: value as u32,
        })
    }
}

/// Calls `f(insn_idx, symbol)` for every relocation of code section
/// `target`, in relocation order, after libbpf's checks of each
/// (`bpf_object__collect_prog_relos`): entry size, symbol index, the
/// symbol's section, the offset's alignment and range.
pub(crate) fn each<'a>(
    elf: &Elf<'a>,
    target: &Section<'a>,
    mut f: impl FnMut(u64, &'a Symbol) -> Result<()>,
) -> Result<()> {
    for rel_sec in elf.sections() {
        let rel_sec = rel_sec?;
        if rel_sec.header.sh_type.get() != SHT_REL || rel_sec.header.sh_info.get() != target.index.0 {
            continue;
        }
        if rel_sec.header.sh_entsize.get() != 16 {
            return Err(Error::Malformed {
                what: "ELF relocation entry size",
                offset: rel_sec.header.sh_offset.get() as usize,
            });
        }
        for rel in elf.rels(&rel_sec)? {
            let sym_idx = rel.symbol();
            let sym = elf.symbols().get(sym_idx as usize).ok_or(Error::Malformed {
                what: "relocation symbol index",
                offset: rel_sec.header.sh_offset.get() as usize,
            })?;
            if u32::from(sym.st_shndx.get()) >= elf.section_count() {
                return Err(err(
                    LinkProblem::ReloSymbolSection,
                    b"",
                    rel_sec.name,
                    u64::from(sym_idx),
                ));
            }
            let off = rel.r_offset.get();
            if off % INSN_SIZE as u64 != 0 || off >= target.header.sh_size.get() {
                return Err(err(LinkProblem::ReloOffset, b"", rel_sec.name, off));
            }
            f(off / INSN_SIZE as u64, sym)?;
        }
    }
    Ok(())
}

/// libbpf's `insn_is_subprog_call`.
pub(crate) fn is_subprog_call(insn: &Insn) -> bool {
    insn.code == op::CALL && insn.src_reg() == pseudo::CALL && insn.dst_reg() == 0 && insn.off() == 0
}

/// Checks every relocation of every code section the way libbpf does when
/// it opens an object (a bad one fails the whole object, whichever
/// program it is in). Relocations outside every function are skipped, as
/// libbpf skips them (left over from overridden weak functions).
pub(crate) fn check_all(cx: &Context<'_, '_>, funcs: &[Function<'_>]) -> Result<()> {
    for s in cx.elf.sections() {
        let s = s?;
        if !functions::holds_code(&s) {
            continue;
        }
        let insns = crate::insn::insns(cx.elf.data_of(&s)?)?;
        each(cx.elf, &s, |idx, sym| {
            let Some(fi) = functions::find(funcs, s.index, idx) else {
                return Ok(());
            };
            let f = &funcs[fi];
            // In range: `each` checked the offset against the section.
            let insn = &insns[idx as usize];
            cx.classify(f, (idx - u64::from(f.insn_off)) as u32, insn, sym)
                .map(|_| ())
        })?;
    }
    Ok(())
}

/// The first relocation of code section `target` at instruction `idx`.
pub(crate) fn find_at<'a>(elf: &Elf<'a>, target: &Section<'a>, idx: u64) -> Result<Option<&'a Symbol>> {
    let mut found = None;
    each(elf, target, |at, sym| {
        if at == idx && found.is_none() {
            found = Some(sym);
        }
        Ok(())
    })?;
    Ok(found)
}
