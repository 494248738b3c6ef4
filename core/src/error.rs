//! The one error type of the core crate, its variants grouped by who must
//! act on them ([`Group`]), each with its message beside it.
//!
//! Every variant carries the context a user needs to find the problem (extern
//! name, section, instruction index, byte offset). The wording follows
//! libbpf's messages where libbpf has one, so people can search for it.
//! Names are copied into small fixed buffers ([`Name`], [`NamePair`]) so
//! that errors own their data, outlive the input and never allocate — and
//! the error stays small enough to return by value (under 128 bytes).

use core::fmt;

pub use crate::link::LinkProblem;

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

    /// A view of the name, to print or compare.
    pub fn view(&self) -> NameView<'_> {
        NameView {
            bytes: self.as_bytes(),
            truncated: self.truncated,
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::new(s.as_bytes())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A borrowed name as an error keeps it: the kept bytes and whether the
/// name was longer. Prints invalid UTF-8 as `\xNN` and a cut name with a
/// trailing `...`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NameView<'a> {
    bytes: &'a [u8],
    truncated: bool,
}

impl<'a> NameView<'a> {
    /// The kept bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the name was cut.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl PartialEq<str> for NameView<'_> {
    fn eq(&self, other: &str) -> bool {
        !self.truncated && self.bytes == other.as_bytes()
    }
}

impl fmt::Display for NameView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.bytes.utf8_chunks() {
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

impl fmt::Debug for NameView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Two names (an extern and its section) sharing one buffer, so that an
/// error naming both is no larger than one naming one. When both do not
/// fit, the second keeps at least a third of the room.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NamePair {
    buf: [u8; NamePair::CAPACITY],
    first_len: u8,
    second_len: u8,
    first_truncated: bool,
    second_truncated: bool,
}

impl NamePair {
    /// Bytes kept for both names together.
    pub const CAPACITY: usize = 104;

    /// Copies (prefixes of) `first` and `second`.
    pub fn new(first: &[u8], second: &[u8]) -> Self {
        let second_len = second
            .len()
            .min(Self::CAPACITY - first.len().min(Self::CAPACITY * 2 / 3));
        let first_len = first.len().min(Self::CAPACITY - second_len);
        let mut buf = [0u8; Self::CAPACITY];
        buf[..first_len].copy_from_slice(&first[..first_len]);
        buf[first_len..first_len + second_len].copy_from_slice(&second[..second_len]);
        NamePair {
            buf,
            first_len: first_len as u8,
            second_len: second_len as u8,
            first_truncated: first.len() > first_len,
            second_truncated: second.len() > second_len,
        }
    }

    /// The first name.
    pub fn first(&self) -> NameView<'_> {
        NameView {
            bytes: &self.buf[..usize::from(self.first_len)],
            truncated: self.first_truncated,
        }
    }

    /// The second name.
    pub fn second(&self) -> NameView<'_> {
        let start = usize::from(self.first_len);
        NameView {
            bytes: &self.buf[start..start + usize::from(self.second_len)],
            truncated: self.second_truncated,
        }
    }
}

impl fmt::Debug for NamePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:?}, {:?})", self.first(), self.second())
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

impl LookupKind {
    /// Where libbpf says it looked.
    fn searched(self) -> &'static str {
        match self {
            LookupKind::Var => "kernel BTF",
            LookupKind::Func => "kernel or module BTFs",
        }
    }
}

impl fmt::Display for LookupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupKind::Var => "var",
            LookupKind::Func => "func",
        })
    }
}

/// Who must act on an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The input (object, BTF, kallsyms text) is malformed: whoever built it
    /// must fix it.
    BadInput,
    /// The input is well formed but does not resolve on this kernel (as this
    /// process sees it): change the object, or run it on another kernel.
    NotResolvable,
    /// The caller passed buffers or tables that do not fit the call.
    CallerMisuse,
}

/// Everything that can go wrong in ksymrelo's core, grouped by [`Group`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- bad input: the raw shape ----
    /// Input ended before a structure that should be there.
    #[error("truncated input: {what} at byte offset {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset where it should have started.
        offset: usize,
    },
    /// A structure is present but its contents are inconsistent.
    #[error("invalid {what} (at offset {offset})")]
    Malformed {
        /// What is wrong, e.g. "BTF header length".
        what: &'static str,
        /// Byte offset (or other position) the problem was found at.
        offset: usize,
    },
    /// Arithmetic on input-provided numbers overflowed.
    #[error("arithmetic overflow computing {what}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// An instruction buffer whose length is not a multiple of 8.
    #[error("instruction buffer of {len} bytes is not a multiple of 8 (struct bpf_insn)")]
    InsnBufferLength {
        /// Length in bytes.
        len: usize,
    },

    // ---- bad input: ELF ----
    /// Not a 64-bit little-endian ELF file, or not relocatable BPF.
    #[error("unsupported ELF: {what}")]
    UnsupportedElf {
        /// Which property is unsupported.
        what: &'static str,
    },
    /// A section index that points nowhere.
    #[error("invalid ELF section index {index}")]
    SectionIndex {
        /// The index.
        index: u32,
    },

    // ---- bad input: BTF ----
    /// The BTF magic number is wrong.
    #[error("invalid BTF magic: {found:#06x}")]
    BtfMagic {
        /// The magic that was found.
        found: u16,
    },
    /// A BTF type id past the last type.
    #[error("BTF type id {id} is out of range")]
    BtfTypeId {
        /// The id.
        id: u32,
    },
    /// A BTF string offset past the string section, or a string with no NUL.
    #[error("invalid BTF string offset {offset}")]
    BtfString {
        /// The offset.
        offset: u32,
    },
    /// A BTF type of an unknown kind.
    #[error("BTF type [{id}] has unknown kind {kind}")]
    BtfKind {
        /// Type id.
        id: u32,
        /// Kind number.
        kind: u8,
    },
    /// A chain of modifiers/typedefs that never ends.
    #[error("BTF type [{id}]: modifier/typedef chain does not end")]
    BtfTypeLoop {
        /// The type id the chain started from.
        id: u32,
    },
    /// A type whose size or alignment libbpf cannot determine
    /// (`btf__resolve_size`, `btf__align_of`): void, a function, a chain
    /// deeper than 32, or a size past `u32`.
    #[error("BTF type [{id}]: can't determine size or alignment")]
    BtfSize {
        /// The type id asked about.
        id: u32,
    },
    /// Type compatibility recursed deeper than libbpf allows (32 levels).
    #[error("type compatibility check of local type [{local_id}] is nested too deeply")]
    CompatDepth {
        /// Local type id at which the check started.
        local_id: u32,
    },
    /// The object has no `.BTF` section but has externs.
    #[error("object has externs but no .BTF section")]
    NoObjectBtf,

    // ---- bad input: externs and sites ----
    /// An extern symbol with no VAR/FUNC in the object's BTF.
    #[error("failed to find BTF for extern '{name}'")]
    ExternNoBtf {
        /// Extern name.
        name: Name,
    },
    /// An extern whose BTF VAR/FUNC does not have extern linkage.
    #[error("extern '{name}': BTF linkage {linkage} is not extern (2)")]
    ExternLinkage {
        /// Extern name.
        name: Name,
        /// Linkage found.
        linkage: u32,
    },
    /// An extern listed in neither `.ksyms` nor `.kconfig`.
    #[error("extern '{}' is in unsupported section '{}'", names.first(), names.second())]
    ExternSection {
        /// The extern's name, then the DATASEC that lists it ("" when none
        /// does).
        names: NamePair,
    },
    /// An extern symbol name that is not valid UTF-8.
    #[error("extern symbol #{symbol} has a name that is not UTF-8")]
    ExternNameEncoding {
        /// Symbol table index.
        symbol: u32,
    },
    /// A relocation against an extern at an instruction that is neither
    /// `ld_imm64` nor `call`.
    #[error(
        "invalid relo for extern '{}' in section '{}' at insn #{insn_idx}: opcode {code:#04x} is neither ld_imm64 nor call",
        names.first(),
        names.second()
    )]
    SiteOpcode {
        /// The extern's name, then the section's.
        names: NamePair,
        /// Instruction index within the section.
        insn_idx: u32,
        /// The opcode found.
        code: u8,
    },
    /// A relocation offset not aligned to 8 bytes.
    #[error("relo in section '{section}' at byte offset {offset} is not aligned to an instruction")]
    SiteMisaligned {
        /// Section name.
        section: Name,
        /// Byte offset.
        offset: u64,
    },
    /// A relocation offset past the end of its section, or an `ld_imm64`
    /// without its second slot.
    #[error("relo in section '{section}' at byte offset {offset} is past the end of the section")]
    SitePastEnd {
        /// Section name.
        section: Name,
        /// Byte offset.
        offset: u64,
    },

    // ---- bad input: kallsyms text ----
    /// A kallsyms line that cannot be parsed.
    #[error("failed to read kallsyms entry at line {line}")]
    KallsymsLine {
        /// 1-based line number.
        line: u64,
    },

    // ---- not resolvable on this kernel ----
    /// Two different addresses for one wanted name.
    #[error("extern (ksym) '{name}': resolution is ambiguous: {first:#x} or {second:#x}")]
    KallsymsAmbiguous {
        /// Extern name.
        name: Name,
        /// Address seen first.
        first: u64,
        /// Different address seen later.
        second: u64,
    },
    /// Every address in kallsyms is zero (kptr_restrict): addresses are hidden.
    #[error(
        "extern (ksym) '{name}': kallsyms addresses are all zero (kptr_restrict); cannot resolve without privileges"
    )]
    KallsymsRestricted {
        /// The extern that needed an address.
        name: Name,
    },
    /// A strong ksym absent from kernel (and module) BTF.
    #[error("extern ({kind} ksym) '{name}': not found in {}", kind.searched())]
    NotInKernelBtf {
        /// Extern name.
        name: Name,
        /// What was looked up.
        kind: LookupKind,
    },
    /// A typed ksym whose local type differs from the kernel's.
    #[error("extern (var ksym) '{name}': incompatible types, expected [{local_id}], but kernel has [{kernel_id}]")]
    IncompatibleVar {
        /// Extern name.
        name: Name,
        /// Local (object) type id.
        local_id: u32,
        /// Kernel type id.
        kernel_id: u32,
    },
    /// A strong kfunc whose prototype differs from the kernel's.
    #[error("extern (func ksym) '{name}': func_proto [{local_id}] incompatible with kernel [{kernel_id}]")]
    IncompatibleFunc {
        /// Extern name.
        name: Name,
        /// Local FUNC_PROTO id.
        local_id: u32,
        /// Kernel FUNC_PROTO id.
        kernel_id: u32,
    },
    /// A strong extern left unresolved.
    #[error("extern '{name}' (strong): not resolved")]
    StrongUnresolved {
        /// Extern name.
        name: Name,
    },
    /// More module BTFs than fit in `insn->off` (s16).
    #[error("extern (func ksym) '{name}': too many module BTFs for fd_array")]
    FdArrayFull {
        /// Extern that needed a new slot.
        name: Name,
    },

    // ---- bad input (or not handled): linking programs ----
    /// A function, relocation, map or `.BTF.ext` record that libbpf would
    /// refuse to link, or that the linker does not handle: [`LinkProblem`]
    /// says which; `names` are the program (function, map) and the symbol
    /// or section; `at` an instruction index or offset, as the message says.
    #[error("{}", crate::link::Message { names, at: *at, problem: *problem })]
    Link {
        /// The program (or function, or map), then the symbol or section.
        names: NamePair,
        /// An instruction index, a relocation's offset or a symbol index.
        at: u32,
        /// What is wrong.
        problem: LinkProblem,
    },

    // ---- caller misuse ----
    /// An instruction buffer that is not aligned for `struct bpf_insn`.
    #[error("instruction buffer is not aligned for struct bpf_insn")]
    InsnBufferMisaligned,
    /// A caller-provided output buffer or container is full.
    #[error("out of room: {what} (capacity {capacity})")]
    CapacityExceeded {
        /// What did not fit.
        what: &'static str,
        /// The capacity that was available.
        capacity: usize,
    },
    /// A patch argument does not match the object (wrong table or buffers).
    #[error("mismatched arguments: {what}")]
    Mismatch {
        /// What does not match.
        what: &'static str,
    },
}

impl Error {
    /// Who must act on this error.
    pub fn group(&self) -> Group {
        match self {
            Error::Truncated { .. }
            | Error::Malformed { .. }
            | Error::Overflow { .. }
            | Error::InsnBufferLength { .. }
            | Error::UnsupportedElf { .. }
            | Error::SectionIndex { .. }
            | Error::BtfMagic { .. }
            | Error::BtfTypeId { .. }
            | Error::BtfString { .. }
            | Error::BtfKind { .. }
            | Error::BtfTypeLoop { .. }
            | Error::BtfSize { .. }
            | Error::CompatDepth { .. }
            | Error::NoObjectBtf
            | Error::ExternNoBtf { .. }
            | Error::ExternLinkage { .. }
            | Error::ExternSection { .. }
            | Error::ExternNameEncoding { .. }
            | Error::SiteOpcode { .. }
            | Error::SiteMisaligned { .. }
            | Error::SitePastEnd { .. }
            | Error::KallsymsLine { .. }
            | Error::Link { .. } => Group::BadInput,
            Error::KallsymsAmbiguous { .. }
            | Error::KallsymsRestricted { .. }
            | Error::NotInKernelBtf { .. }
            | Error::IncompatibleVar { .. }
            | Error::IncompatibleFunc { .. }
            | Error::StrongUnresolved { .. }
            | Error::FdArrayFull { .. } => Group::NotResolvable,
            Error::InsnBufferMisaligned | Error::CapacityExceeded { .. } | Error::Mismatch { .. } => {
                Group::CallerMisuse
            }
        }
    }

    /// The extern this error is about, if any.
    pub fn extern_name(&self) -> Option<NameView<'_>> {
        match self {
            Error::ExternNoBtf { name }
            | Error::ExternLinkage { name, .. }
            | Error::KallsymsAmbiguous { name, .. }
            | Error::KallsymsRestricted { name }
            | Error::NotInKernelBtf { name, .. }
            | Error::IncompatibleVar { name, .. }
            | Error::IncompatibleFunc { name, .. }
            | Error::StrongUnresolved { name }
            | Error::FdArrayFull { name } => Some(name.view()),
            Error::ExternSection { names } | Error::SiteOpcode { names, .. } => Some(names.first()),
            _ => None,
        }
    }
}

// Returned by value everywhere: keep it small (clippy's large-error bound).
const _: () = assert!(core::mem::size_of::<Error>() < 128);

/// Result with the core [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_keeps_both_names_whole_when_they_fit() {
        let p = NamePair::new(b"bpf_task_release", b"tracepoint/syscalls/sys_enter_openat");
        assert!(p.first() == *"bpf_task_release");
        assert!(p.second() == *"tracepoint/syscalls/sys_enter_openat");
    }

    #[test]
    fn a_pair_cuts_fairly_when_they_do_not() {
        let long = [b'a'; 200];
        let p = NamePair::new(&long, b"syscall");
        assert!(p.second() == *"syscall");
        assert!(p.first().is_truncated());
        assert_eq!(p.first().as_bytes().len() + 7, NamePair::CAPACITY);
        let p = NamePair::new(&long, &long);
        assert!(p.first().is_truncated() && p.second().is_truncated());
        assert!(p.second().as_bytes().len() >= NamePair::CAPACITY / 3);
        assert_eq!(
            p.first().as_bytes().len() + p.second().as_bytes().len(),
            NamePair::CAPACITY
        );
        let p = NamePair::new(b"x", &long);
        assert!(p.first() == *"x");
        assert_eq!(p.second().as_bytes().len(), NamePair::CAPACITY - 1);
    }

    #[test]
    fn every_group_has_its_variants() {
        let name = Name::from("x");
        assert_eq!(Error::NoObjectBtf.group(), Group::BadInput);
        assert_eq!(Error::StrongUnresolved { name }.group(), Group::NotResolvable);
        assert_eq!(Error::Mismatch { what: "t" }.group(), Group::CallerMisuse);
    }

    #[test]
    fn messages_are_libbpfs() {
        extern crate std;
        use std::string::ToString;
        let name = Name::from("bpf_foo");
        let e = Error::NotInKernelBtf {
            name,
            kind: LookupKind::Func,
        };
        assert_eq!(
            e.to_string(),
            "extern (func ksym) 'bpf_foo': not found in kernel or module BTFs"
        );
        let e = Error::NotInKernelBtf {
            name,
            kind: LookupKind::Var,
        };
        assert_eq!(e.to_string(), "extern (var ksym) 'bpf_foo': not found in kernel BTF");
        let e = Error::SiteOpcode {
            names: NamePair::new(b"bpf_foo", b"syscall"),
            insn_idx: 3,
            code: 0xb7,
        };
        assert_eq!(
            e.to_string(),
            "invalid relo for extern 'bpf_foo' in section 'syscall' at insn #3: opcode 0xb7 is neither ld_imm64 nor call"
        );
        assert_eq!(e.extern_name().unwrap().to_string(), "bpf_foo");
    }
}
