//! What [`crate::Error::Link`] says: one variant for everything the linker
//! refuses, its messages in libbpf's words where libbpf has them.

use core::fmt;

use crate::error::NamePair;

/// Why an object cannot be linked. [`crate::Error::Link`] carries it with
/// two names (the program, function or map first; the symbol or section
/// second) and a number (`at`: an instruction index, a relocation index or
/// a byte offset, as the message says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkProblem {
    // ---- functions ----
    /// A function of size 0, or size or offset not a multiple of 8.
    CorruptedProgram,
    /// A function that ends past its section.
    CrossesSection,
    /// A static function outside `.text`.
    StaticProgram,
    /// Two functions at one offset of a section (libbpf's order is then
    /// undefined; beyond libbpf).
    SameOffset,
    /// A program whose section name libbpf does not know.
    UnknownSection,
    /// `SEC("fentry")` (and the like) with no `/target`.
    NoAttachTarget,
    /// `freplace` needs a target program.
    NeedsTargetProgram,
    /// struct_ops programs (not handled).
    StructOps,
    /// `fentry.multi` and the like (not handled).
    TracingMulti,
    /// A legacy `maps` section.
    LegacyMaps,
    // ---- relocations ----
    /// A relocation at an instruction that is neither call nor ld_imm64.
    ReloOpcode,
    /// A relocation offset not aligned or past its section.
    ReloOffset,
    /// A relocation's symbol points to a section that does not exist.
    ReloSymbolSection,
    /// A relocated call that is not a BPF-to-BPF call.
    CallOpcode,
    /// A BPF-to-BPF call relocated against a symbol outside `.text`.
    CallOutsideText,
    /// A call relocated against a symbol not aligned to an instruction.
    CallMisaligned,
    /// A relocation against `SHN_UNDEF` (not an extern) or a special section.
    SpecialSection,
    /// A function address relocation not aligned to an instruction.
    SubprogAddrMisaligned,
    /// An ld_imm64 relocated against a section that is no map.
    BadMapRelo,
    /// No map at that offset of `.maps`.
    MapNotFound,
    /// A relocation against a data section that made no map (empty).
    DataMapNotFound,
    /// A relocation against the arena or jump tables (not handled).
    ArenaOrJumpTable,
    /// A call or function address with another kind of relocation.
    UnexpectedRelo,
    /// An ld_imm64 of a function (`src_reg=4`) without relocation.
    MissingSubprogAddrRelo,
    /// A BPF-to-BPF call to no function of `.text`.
    NoSubprog,
    /// A linked program past the `i32` reach of an instruction's `imm`.
    TooLarge,
    // ---- maps ----
    /// No `.maps` DATASEC in BTF while the object has a `.maps` section.
    NoMapsDatasec,
    /// A `.maps` variable without a name.
    MapEmptyName,
    /// A `.maps` variable past the section.
    MapCorrupted,
    /// A `.maps` entry that is not a VAR.
    MapVarKind,
    /// A `.maps` variable that is not global.
    MapLinkage,
    /// A `.maps` variable whose type is not a struct.
    MapDefKind,
    /// A `.maps` variable smaller than its struct.
    MapDefSize,
    /// A map definition field this linker does not handle (`at` its index).
    MapUnsupported,
    /// A malformed map definition field (`at` its index).
    MapField,
    /// `key`/`key_size` (or `value`/`value_size`) that disagree.
    MapConflictingSize,
    /// A map definition field libbpf does not know (strict parsing).
    MapUnknownField,
    /// A map definition without `type`.
    MapNoType,
    // ---- BTF fix-ups before BPF_BTF_LOAD ----
    /// A DATASEC of size 0 whose ELF section is missing or empty.
    DatasecSize,
    /// A DATASEC entry that is not a VAR.
    DatasecNonVar,
    /// A global VAR of a DATASEC without its ELF symbol.
    DatasecNoSymbol,
    /// A `.ksyms`/`.kconfig` entry that is no extern of the object.
    ExternNoDefinition,
    /// A function in `.kconfig`.
    KconfigFunc,
    /// A kconfig extern of a type libbpf does not take.
    KconfigType,
    // ---- .BTF.ext ----
    /// A subprogram without func_info while its main program has some.
    MissingFuncInfo,
    /// A subprogram without line_info while its main program has some.
    MissingLineInfo,
}

/// The message of an [`crate::Error::Link`].
pub struct Message<'e> {
    /// The error's names.
    pub names: &'e NamePair,
    /// The error's number.
    pub at: u32,
    /// The error's problem.
    pub problem: LinkProblem,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LinkProblem::*;
        let (a, b, at) = (self.names.first(), self.names.second(), self.at);
        match self.problem {
            CorruptedProgram => write!(f, "sec '{b}': corrupted program '{a}', offset {at}"),
            CrossesSection => write!(f, "sec '{b}': program '{a}' at offset {at} crosses section boundary"),
            StaticProgram => write!(f, "sec '{b}': program '{a}' is static and not supported"),
            SameOffset => write!(f, "sec '{b}': program '{a}' starts at offset {at}, as another does"),
            UnknownSection => write!(f, "prog '{a}': unrecognized ELF section name '{b}'"),
            NoAttachTarget => write!(
                f,
                "prog '{a}': no BTF-based attach target is specified in section '{b}'"
            ),
            NeedsTargetProgram => write!(
                f,
                "prog '{a}': section '{b}' needs a target program (freplace), which a generated loader does not have"
            ),
            StructOps => write!(f, "prog '{a}': struct_ops programs (section '{b}') are not supported"),
            TracingMulti => write!(f, "prog '{a}': section '{b}' (multi-function tracing) is not supported"),
            LegacyMaps => write!(
                f,
                "elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+"
            ),
            ReloOpcode => write!(f, "prog '{a}': invalid relo against '{b}' for insns[{at}]"),
            ReloOffset => write!(f, "sec '{b}': invalid offset {at:#x} for relo"),
            ReloSymbolSection => write!(
                f,
                "sec '{b}': corrupted symbol #{at} pointing to invalid section"
            ),
            CallOpcode => write!(f, "prog '{a}': incorrect bpf_call opcode at insn #{at}"),
            CallOutsideText => write!(f, "prog '{a}': bad call relo against '{b}' (not in .text) at insn #{at}"),
            CallMisaligned => write!(f, "prog '{a}': bad call relo against '{b}' at insn #{at}"),
            SpecialSection => write!(
                f,
                "prog '{a}': invalid relo against '{b}' in special section at insn #{at}; forgot to initialize global var?.."
            ),
            SubprogAddrMisaligned => write!(f, "prog '{a}': bad subprog addr relo against '{b}' at insn #{at}"),
            BadMapRelo => write!(f, "prog '{a}': bad map relo against '{b}' at insn #{at}"),
            MapNotFound => write!(f, "prog '{a}': map relo failed to find map for '{b}' at insn #{at}"),
            DataMapNotFound => write!(
                f,
                "prog '{a}': data relo failed to find map for section '{b}' at insn #{at}"
            ),
            ArenaOrJumpTable => write!(
                f,
                "prog '{a}': relocation against '{b}' (arena or jump table) at insn #{at} is not supported"
            ),
            UnexpectedRelo => write!(f, "prog '{a}': unexpected relo against '{b}' for insn #{at}"),
            MissingSubprogAddrRelo => write!(f, "prog '{a}': missing subprog addr relo for insn #{at}"),
            NoSubprog => write!(
                f,
                "prog '{a}': no .text section found yet sub-program call exists (insn #{at})"
            ),
            TooLarge => write!(f, "prog '{a}': linked program too large ({at} instructions)"),
            NoMapsDatasec => write!(f, "DATASEC '.maps' not found."),
            MapEmptyName => write!(f, "map #{at}: empty name."),
            MapCorrupted => write!(f, "map '{a}' BTF data is corrupted."),
            MapVarKind => write!(f, "map '{a}': unexpected var kind."),
            MapLinkage => write!(f, "map '{a}': unsupported map linkage {at}."),
            MapDefKind => write!(f, "map '{a}': unexpected def kind."),
            MapDefSize => write!(f, "map '{a}': invalid def size."),
            MapUnsupported => write!(
                f,
                "map '{a}': field '{b}' is not supported by a generated loader (no pinning, no inner maps, no prog-array values)"
            ),
            MapField => write!(f, "map '{a}': invalid field '{b}'"),
            MapConflictingSize => write!(f, "map '{a}': conflicting size in field '{b}'."),
            MapUnknownField => write!(f, "map '{a}': unknown field '{b}'."),
            MapNoType => write!(f, "map '{a}': map type isn't specified."),
            DatasecSize => write!(f, "sec '{b}': failed to determine size from ELF"),
            DatasecNonVar => write!(f, "sec '{b}': unexpected non-VAR type found (entry #{at})"),
            DatasecNoSymbol => write!(f, "sec '{b}': failed to find ELF symbol for VAR '{a}'"),
            ExternNoDefinition => write!(f, "failed to find extern definition for BTF '{a}' (in '{b}')"),
            KconfigFunc => write!(f, "extern function {a} is unsupported under {b} section"),
            KconfigType => write!(f, "extern (kcfg) '{a}': type is unsupported"),
            MissingFuncInfo => write!(f, "prog '{a}': missing .BTF.ext function info."),
            MissingLineInfo => write!(f, "prog '{a}': missing .BTF.ext line info."),
        }
    }
}

/// A [`crate::Error::Link`].
pub(crate) fn err(problem: LinkProblem, first: &[u8], second: &[u8], at: u64) -> crate::Error {
    crate::Error::Link {
        names: NamePair::new(first, second),
        at: u32::try_from(at).unwrap_or(u32::MAX),
        problem,
    }
}
