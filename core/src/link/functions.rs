//! The functions of an object, as libbpf finds them
//! (`bpf_object__add_programs`): every `STT_FUNC` symbol of a non-empty
//! executable section. Those of `.text` are subprograms; the others are
//! programs (and must not be static). libbpf's order: section index, then
//! offset within the section.

use super::problem::{err, LinkProblem};
use crate::bpf::INSN_SIZE;
use crate::elf::{Elf, Section, SHF_EXECINSTR, SHT_PROGBITS};
use crate::error::{Error, Result};
use crate::index::SectionIndex;

/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STB_LOCAL`.
pub const STB_LOCAL: u8 = 0;

/// One function: a program, or a subprogram of `.text`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Function<'a> {
    /// Symbol name.
    pub name: &'a [u8],
    /// Its section.
    pub section: SectionIndex,
    /// The section's name as in the ELF file (a leading `?` included).
    pub section_name: &'a [u8],
    /// First instruction, within the section (libbpf's `sec_insn_off`).
    pub insn_off: u32,
    /// Number of instructions (`sec_insn_cnt`).
    pub insn_cnt: u32,
    /// Global or weak binding (not static).
    pub global: bool,
    /// In `.text`: appended to the programs that call it, never loaded
    /// on its own.
    pub subprog: bool,
}

impl<'a> Function<'a> {
    /// The section name without libbpf's leading `?` (which only turns
    /// autoload off).
    pub fn sec_name(&self) -> &'a [u8] {
        self.section_name.strip_prefix(b"?").unwrap_or(self.section_name)
    }

    /// Whether libbpf loads this program by default (`SEC("?...")`: no).
    pub fn autoload(&self) -> bool {
        !self.section_name.starts_with(b"?")
    }

    /// Whether section instruction `idx` belongs to this function.
    pub fn contains(&self, idx: u64) -> bool {
        idx >= u64::from(self.insn_off) && idx < u64::from(self.insn_off) + u64::from(self.insn_cnt)
    }
}

/// Whether libbpf takes a section's functions: a non-empty `PROGBITS`
/// executable section that is none of the sections it reads by name first.
pub(crate) fn holds_code(s: &Section<'_>) -> bool {
    s.header.sh_type.get() == SHT_PROGBITS
        && s.header.sh_size.get() > 0
        && s.header.sh_flags.get() & SHF_EXECINSTR != 0
        && !matches!(
            s.name,
            b"license" | b"version" | b"maps" | b".maps" | b".BTF" | b".BTF.ext"
        )
}

/// libbpf's `.text`: the (last) non-empty executable `.text` section.
pub(crate) fn text_section(elf: &Elf<'_>) -> Result<Option<SectionIndex>> {
    let mut text = None;
    for s in elf.sections() {
        let s = s?;
        if s.name == b".text" && holds_code(&s) {
            text = Some(s.index);
        }
    }
    Ok(text)
}

/// Counts the functions, to size the table [`collect`] fills.
pub fn count(elf: &Elf<'_>) -> Result<usize> {
    let mut n = 0usize;
    for s in elf.sections() {
        let s = s?;
        if holds_code(&s) {
            n += elf
                .symbols()
                .iter()
                .filter(|sym| sym.kind() == STT_FUNC && u32::from(sym.st_shndx.get()) == s.index.0)
                .count();
        }
    }
    Ok(n)
}

/// Fills `out` with the functions in libbpf's order and returns the filled
/// part; every check of libbpf's `bpf_object__add_programs` and
/// `bpf_object__init_prog` is made, in its order.
pub fn collect<'o, 'a>(elf: &Elf<'a>, out: &'o mut [Function<'a>]) -> Result<&'o mut [Function<'a>]> {
    let text = text_section(elf)?;
    let capacity = out.len();
    let mut n = 0usize;
    for s in elf.sections() {
        let s = s?;
        if !holds_code(&s) {
            continue;
        }
        let sec_size = s.header.sh_size.get();
        for sym in elf.symbols() {
            if sym.kind() != STT_FUNC || u32::from(sym.st_shndx.get()) != s.index.0 {
                continue;
            }
            let name = elf.symbol_name(sym)?;
            let (off, size) = (sym.st_value.get(), sym.st_size.get());
            let problem = |p| err(p, name, s.name, off);
            match off.checked_add(size) {
                Some(end) if end <= sec_size => {}
                _ => return Err(problem(LinkProblem::CrossesSection)),
            }
            let subprog = Some(s.index) == text;
            if !subprog && sym.binding() == STB_LOCAL {
                return Err(problem(LinkProblem::StaticProgram));
            }
            let insn = INSN_SIZE as u64;
            if size == 0 || size % insn != 0 || off % insn != 0 {
                return Err(problem(LinkProblem::CorruptedProgram));
            }
            // Both fit: they lie inside a section of the (usize-sized) file.
            let slot = out.get_mut(n).ok_or(Error::CapacityExceeded {
                what: "function table",
                capacity,
            })?;
            *slot = Function {
                name,
                section: s.index,
                section_name: s.name,
                insn_off: (off / insn) as u32,
                insn_cnt: (size / insn) as u32,
                global: sym.binding() != STB_LOCAL,
                subprog,
            };
            n += 1;
        }
    }
    let table = &mut out[..n];
    table.sort_unstable_by_key(|f| (f.section, f.insn_off));
    for pair in table.windows(2) {
        if (pair[0].section, pair[0].insn_off) == (pair[1].section, pair[1].insn_off) {
            let f = &pair[1];
            return Err(err(
                LinkProblem::SameOffset,
                f.name,
                f.section_name,
                u64::from(f.insn_off) * INSN_SIZE as u64,
            ));
        }
    }
    Ok(table)
}

/// libbpf's `find_prog_by_sec_insn`: the function of `section` with the
/// greatest start at or before `idx`, if it contains `idx`.
pub fn find(table: &[Function<'_>], section: SectionIndex, idx: u64) -> Option<usize> {
    let after = table.partition_point(|f| (f.section, u64::from(f.insn_off)) <= (section, idx));
    let i = after.checked_sub(1)?;
    let f = &table[i];
    (f.section == section && f.contains(idx)).then_some(i)
}
