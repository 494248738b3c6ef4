//! The one error type of the core crate.
//!
//! Every variant carries the context a user needs to find the problem (extern
//! name, section, instruction index, byte offset). The `Display` wording
//! follows libbpf's messages where libbpf has one, so people can search for it.
//! Names are copied into a small fixed buffer ([`Name`]) so that errors own
//! their data, outlive the input and never allocate.

use core::fmt;

/// A symbol or section name kept inside an error, truncated to a fixed size.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    buf: [u8; Name::CAPACITY],
    len: u8,
    truncated: bool,
}

impl Name {
    /// Bytes kept; longer names are cut and shown with a trailing `...`.
    pub const CAPACITY: usize = 96;

    /// Copies (a prefix of) `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let len = bytes.len().min(Self::CAPACITY);
        let mut buf = [0u8; Self::CAPACITY];
        buf[..len].copy_from_slice(&bytes[..len]);
        Name {
            buf,
            len: len as u8,
            truncated: bytes.len() > Self::CAPACITY,
        }
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::new(s.as_bytes())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.as_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Which kernel BTF kind a lookup wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// A `BTF_KIND_VAR` (typed ksym variable).
    Var,
    /// A `BTF_KIND_FUNC` (kfunc).
    Func,
}

/// Everything that can go wrong in ksymrelo's core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- raw input shape ----
    /// Input ended before a structure that should be there.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset where it should have started.
        offset: usize,
    },
    /// A structure is present but its contents are inconsistent.
    Malformed {
        /// What is wrong, e.g. "BTF header length".
        what: &'static str,
        /// Byte offset (or other position) the problem was found at.
        offset: usize,
    },
    /// Arithmetic on input-provided numbers overflowed.
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// An instruction buffer whose length is not a multiple of 8.
    InsnBufferLength {
        /// Length in bytes.
        len: usize,
    },
    /// An instruction buffer that is not aligned for `struct bpf_insn`.
    InsnBufferMisaligned,
    /// A caller-provided output buffer or container is full.
    CapacityExceeded {
        /// What did not fit.
        what: &'static str,
        /// The capacity that was available.
        capacity: usize,
    },

    // ---- ELF ----
    /// Not a 64-bit little-endian ELF file, or not relocatable BPF.
    UnsupportedElf {
        /// Which property is unsupported.
        what: &'static str,
    },
    /// A section index that points nowhere.
    SectionIndex {
        /// The index.
        index: u32,
    },

    // ---- BTF ----
    /// The BTF magic number is wrong.
    BtfMagic {
        /// The magic that was found.
        found: u16,
    },
    /// A BTF type id past the last type.
    BtfTypeId {
        /// The id.
        id: u32,
    },
    /// A BTF string offset past the string section, or a string with no NUL.
    BtfString {
        /// The offset.
        offset: u32,
    },
    /// A BTF type of an unknown kind.
    BtfKind {
        /// Type id.
        id: u32,
        /// Kind number.
        kind: u8,
    },
    /// A chain of modifiers/typedefs that never ends.
    BtfTypeLoop {
        /// The type id the chain started from.
        id: u32,
    },
    /// Type compatibility recursed deeper than libbpf allows (32 levels).
    CompatDepth {
        /// Local type id at which the check started.
        local_id: u32,
    },
    /// The object has no `.BTF` section but has externs.
    NoObjectBtf,

    // ---- externs and sites ----
    /// An extern symbol with no VAR/FUNC in the object's BTF.
    ExternNoBtf {
        /// Extern name.
        name: Name,
    },
    /// An extern whose BTF VAR/FUNC does not have extern linkage.
    ExternLinkage {
        /// Extern name.
        name: Name,
        /// Linkage found.
        linkage: u32,
    },
    /// An extern listed in neither `.ksyms` nor `.kconfig`.
    ExternSection {
        /// Extern name.
        name: Name,
        /// The DATASEC that lists it ("" when none does).
        section: Name,
    },
    /// An extern symbol name that is not valid UTF-8.
    ExternNameEncoding {
        /// Symbol table index.
        symbol: u32,
    },
    /// A relocation against an extern at an instruction that is neither
    /// `ld_imm64` nor `call`.
    SiteOpcode {
        /// Extern name.
        name: Name,
        /// Section name.
        section: Name,
        /// Instruction index within the section.
        insn_idx: u32,
        /// The opcode found.
        code: u8,
    },
    /// A relocation offset not aligned to 8 bytes.
    SiteMisaligned {
        /// Section name.
        section: Name,
        /// Byte offset.
        offset: u64,
    },
    /// A relocation offset past the end of its section, or an `ld_imm64`
    /// without its second slot.
    SitePastEnd {
        /// Section name.
        section: Name,
        /// Byte offset.
        offset: u64,
    },

    // ---- kallsyms ----
    /// A kallsyms line that cannot be parsed.
    KallsymsLine {
        /// 1-based line number.
        line: u64,
    },
    /// Two different addresses for one wanted name.
    KallsymsAmbiguous {
        /// Extern name.
        name: Name,
        /// Address seen first.
        first: u64,
        /// Different address seen later.
        second: u64,
    },
    /// Every address in kallsyms is zero (kptr_restrict): addresses are hidden.
    KallsymsRestricted {
        /// The extern that needed an address.
        name: Name,
    },

    // ---- resolution ----
    /// A strong ksym absent from kernel (and module) BTF.
    NotInKernelBtf {
        /// Extern name.
        name: Name,
        /// What was looked up.
        kind: LookupKind,
    },
    /// A typed ksym whose local type differs from the kernel's.
    IncompatibleVar {
        /// Extern name.
        name: Name,
        /// Local (object) type id.
        local_id: u32,
        /// Kernel type id.
        kernel_id: u32,
    },
    /// A strong kfunc whose prototype differs from the kernel's.
    IncompatibleFunc {
        /// Extern name.
        name: Name,
        /// Local FUNC_PROTO id.
        local_id: u32,
        /// Kernel FUNC_PROTO id.
        kernel_id: u32,
    },
    /// A strong extern left unresolved.
    StrongUnresolved {
        /// Extern name.
        name: Name,
    },
    /// More module BTFs than fit in `insn->off` (s16).
    FdArrayFull {
        /// Extern that needed a new slot.
        name: Name,
    },
    /// A patch argument does not match the object (wrong table or buffers).
    Mismatch {
        /// What does not match.
        what: &'static str,
    },
}

impl Error {
    /// libbpf-style errno for this error (negative), for C callers.
    pub fn errno(&self) -> i32 {
        const EINVAL: i32 = 22;
        const ENOENT: i32 = 2;
        const ESRCH: i32 = 3;
        const E2BIG: i32 = 7;
        const ENOSPC: i32 = 28;
        const EOPNOTSUPP: i32 = 95;
        const EACCES: i32 = 13;
        -match self {
            Error::CapacityExceeded { .. } => ENOSPC,
            Error::UnsupportedElf { .. } => EOPNOTSUPP,
            Error::ExternNoBtf { .. } => ENOENT,
            Error::NotInKernelBtf { .. } | Error::StrongUnresolved { .. } => ESRCH,
            Error::FdArrayFull { .. } => E2BIG,
            Error::KallsymsRestricted { .. } => EACCES,
            _ => EINVAL,
        }
    }

    /// The extern this error is about, if any.
    pub fn extern_name(&self) -> Option<&Name> {
        match self {
            Error::ExternNoBtf { name }
            | Error::ExternLinkage { name, .. }
            | Error::ExternSection { name, .. }
            | Error::SiteOpcode { name, .. }
            | Error::KallsymsAmbiguous { name, .. }
            | Error::KallsymsRestricted { name }
            | Error::NotInKernelBtf { name, .. }
            | Error::IncompatibleVar { name, .. }
            | Error::IncompatibleFunc { name, .. }
            | Error::StrongUnresolved { name }
            | Error::FdArrayFull { name } => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, offset } => {
                write!(f, "truncated input: {what} at byte offset {offset}")
            }
            Error::Malformed { what, offset } => {
                write!(f, "invalid {what} (at offset {offset})")
            }
            Error::Overflow { what } => write!(f, "arithmetic overflow computing {what}"),
            Error::InsnBufferLength { len } => write!(
                f,
                "instruction buffer of {len} bytes is not a multiple of 8 (struct bpf_insn)"
            ),
            Error::InsnBufferMisaligned => {
                f.write_str("instruction buffer is not aligned for struct bpf_insn")
            }
            Error::CapacityExceeded { what, capacity } => {
                write!(f, "out of room: {what} (capacity {capacity})")
            }
            Error::UnsupportedElf { what } => write!(f, "unsupported ELF: {what}"),
            Error::SectionIndex { index } => write!(f, "invalid ELF section index {index}"),
            Error::BtfMagic { found } => write!(f, "invalid BTF magic: {found:#06x}"),
            Error::BtfTypeId { id } => write!(f, "BTF type id {id} is out of range"),
            Error::BtfString { offset } => {
                write!(f, "invalid BTF string offset {offset}")
            }
            Error::BtfKind { id, kind } => write!(f, "BTF type [{id}] has unknown kind {kind}"),
            Error::BtfTypeLoop { id } => {
                write!(f, "BTF type [{id}]: modifier/typedef chain does not end")
            }
            Error::CompatDepth { local_id } => write!(
                f,
                "type compatibility check of local type [{local_id}] is nested too deeply"
            ),
            Error::NoObjectBtf => f.write_str("object has externs but no .BTF section"),
            Error::ExternNoBtf { name } => {
                write!(f, "failed to find BTF for extern '{name}'")
            }
            Error::ExternLinkage { name, linkage } => write!(
                f,
                "extern '{name}': BTF linkage {linkage} is not extern (2)"
            ),
            Error::ExternSection { name, section } => write!(
                f,
                "extern '{name}' is in unsupported section '{section}'"
            ),
            Error::ExternNameEncoding { symbol } => {
                write!(f, "extern symbol #{symbol} has a name that is not UTF-8")
            }
            Error::SiteOpcode {
                name,
                section,
                insn_idx,
                code,
            } => write!(
                f,
                "invalid relo for extern '{name}' in section '{section}' at insn #{insn_idx}: opcode {code:#04x} is neither ld_imm64 nor call"
            ),
            Error::SiteMisaligned { section, offset } => write!(
                f,
                "relo in section '{section}' at byte offset {offset} is not aligned to an instruction"
            ),
            Error::SitePastEnd { section, offset } => write!(
                f,
                "relo in section '{section}' at byte offset {offset} is past the end of the section"
            ),
            Error::KallsymsLine { line } => {
                write!(f, "failed to read kallsyms entry at line {line}")
            }
            Error::KallsymsAmbiguous {
                name,
                first,
                second,
            } => write!(
                f,
                "extern (ksym) '{name}': resolution is ambiguous: {first:#x} or {second:#x}"
            ),
            Error::KallsymsRestricted { name } => write!(
                f,
                "extern (ksym) '{name}': kallsyms addresses are all zero (kptr_restrict); cannot resolve without privileges"
            ),
            Error::NotInKernelBtf { name, kind } => match kind {
                LookupKind::Var => {
                    write!(f, "extern (var ksym) '{name}': not found in kernel BTF")
                }
                LookupKind::Func => write!(
                    f,
                    "extern (func ksym) '{name}': not found in kernel or module BTFs"
                ),
            },
            Error::IncompatibleVar {
                name,
                local_id,
                kernel_id,
            } => write!(
                f,
                "extern (var ksym) '{name}': incompatible types, expected [{local_id}], but kernel has [{kernel_id}]"
            ),
            Error::IncompatibleFunc {
                name,
                local_id,
                kernel_id,
            } => write!(
                f,
                "extern (func ksym) '{name}': func_proto [{local_id}] incompatible with kernel [{kernel_id}]"
            ),
            Error::StrongUnresolved { name } => {
                write!(f, "extern '{name}' (strong): not resolved")
            }
            Error::FdArrayFull { name } => write!(
                f,
                "extern (func ksym) '{name}': too many module BTFs for fd_array"
            ),
            Error::Mismatch { what } => write!(f, "mismatched arguments: {what}"),
        }
    }
}

impl core::error::Error for Error {}

/// Result with the core [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
