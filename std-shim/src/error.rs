//! The error type of ksymrelo-std: a core error, or an OS error with the
//! file or operation it happened in.

use std::io;
use std::path::PathBuf;

pub use crate::sys::{BpfCommand, BpfError};

/// Anything that can go wrong when resolving on a real system, each with
/// its message. Who must act is [`Error::reason`]'s grouping.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- the object does not resolve on this kernel, or is malformed ----
    /// Malformed input or a failed resolution (names the extern).
    #[error("{0}")]
    Core(#[from] ksymrelo_core::Error),
    /// An extern whose type differs from the kernel's, told with both types
    /// as C and where they first differ.
    #[error("{message}")]
    Incompatible {
        /// The core error (ids only).
        source: Box<ksymrelo_core::Error>,
        /// The whole message.
        message: String,
    },
    /// A strong extern not found, with what the kernel has instead.
    #[error("{source}{}", not_found_notes(hints, candidates))]
    NotFound {
        /// The error the resolution stopped with.
        source: Box<Error>,
        /// Why it may be missing (another kind, another module, ...).
        hints: Vec<String>,
        /// Close names in kernel BTF (at most 3, nearest first).
        candidates: Vec<String>,
    },
    /// The in-kernel resolver's lookup of a strong extern failed.
    #[error(
        "extern '{name}' (strong): not resolved: the kernel's lookup failed: {}",
        io::Error::from_raw_os_error(*errno)
    )]
    InKernel {
        /// The extern.
        name: String,
        /// The positive errno the kernel helper returned.
        errno: i32,
    },
    /// A site of a program given as instructions ([`crate::relocate_insns`])
    /// that cannot be one.
    #[error("extern '{name}': {problem}")]
    InsnSite {
        /// The extern the site refers to.
        name: String,
        /// What is wrong with it.
        problem: InsnSiteProblem,
    },

    // ---- the kernel's facts cannot be read ----
    /// kallsyms shows this process only zero addresses; `cause` says which
    /// setting or capability hides them.
    #[error("extern (ksym) '{name}': kallsyms shows only zero addresses: {cause}")]
    AddressesHidden {
        /// The extern that needed an address.
        name: String,
        /// What hides them, and what to change.
        cause: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "reading /proc/kallsyms".
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A `bpf(2)` command failed: [`BpfError`] names it and holds the errno
    /// and, for a refused program, the verifier log.
    #[error("{context}: {source}")]
    Bpf {
        /// What was being done, e.g. "loading the in-kernel resolver".
        context: String,
        /// The command's error.
        source: BpfError,
    },
    /// A step of a light-skeleton loader ([`crate::skel`]) failed inside
    /// the kernel; the loader closed what it had created.
    #[error(
        "{step}: {}{}",
        io::Error::from_raw_os_error(*errno),
        log.as_deref().map(|l| format!("\nlog:\n{l}")).unwrap_or_default()
    )]
    Loader {
        /// What failed, its map, program or extern named (a strong extern
        /// the kernel lacks in libbpf's words).
        step: String,
        /// The step as the loader recorded it.
        at: ksymrelo_core::gen::Step,
        /// The positive errno.
        errno: i32,
        /// The BTF or verifier log of a failed BTF or program load.
        log: Option<String>,
    },
    /// The in-kernel resolver answered what it cannot have: the kernel (or
    /// the resolver program) misbehaved.
    #[error("{0}")]
    ResolverFault(ResolverFault),
    /// A sealed or signed loader that could not run, and why: the kernel
    /// lacks what it needs, or the loader, its data or its signature was
    /// refused.
    #[error("{0}")]
    Seal(SealProblem),
    /// A loader file ([`crate::loader_file`]) that cannot be one.
    #[error("loader file: {problem}")]
    LoaderFile {
        /// What is wrong with it.
        problem: String,
    },

    // ---- the caller asked for what cannot be done ----
    /// The object has typeless ksyms, but the kernel facts were given as
    /// saved BTF files without a saved kallsyms file.
    #[error(
        "the object has typeless ksyms: with saved BTF, a saved kallsyms file is needed too \
         (`--kallsyms` of the command, `kallsyms_path` in C)"
    )]
    NoKallsyms,
    /// A signing key or certificate that cannot be used, or a signature
    /// that cannot be made (`sign::SigningKey`); `reason` says what to do.
    #[error(
        "{what}{}: {reason}",
        path.as_deref().map(|p| format!(" {}", p.display())).unwrap_or_default()
    )]
    Signing {
        /// What failed: `"signing key"`, `"certificate"` or `"signing"`.
        what: &'static str,
        /// The key or certificate file, if the problem is with one.
        path: Option<PathBuf>,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// A caller's request that cannot be served (e.g. an fd_array too
    /// small for the relocation); the message says what to change.
    #[error("{0}")]
    Usage(String),
}

/// The notes a "not found" message ends with: hints, then close names.
fn not_found_notes(hints: &[String], candidates: &[String]) -> String {
    let mut notes = String::new();
    for h in hints {
        notes.push_str("; ");
        notes.push_str(h);
    }
    if !candidates.is_empty() {
        notes.push_str("; close names in kernel BTF: ");
        notes.push_str(&candidates.join(", "));
    }
    notes
}

/// What is wrong with a site of a program given as instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsnSiteProblem {
    /// Two sites of the extern disagree on whether it is weak.
    #[error("its sites disagree on whether it is weak")]
    WeakDisagrees,
    /// An `ld_imm64` site in the last slot (it takes two).
    #[error("its ld_imm64 site at instruction {insn_idx} is the last of {insn_count} (it takes two slots)")]
    LastSlot {
        /// The site's instruction.
        insn_idx: u32,
        /// Instructions in the program.
        insn_count: usize,
    },
    /// A site past the end of the program.
    #[error("site at instruction {insn_idx} is past the end of the program ({insn_count} instructions)")]
    PastEnd {
        /// The site's instruction.
        insn_idx: u32,
        /// Instructions in the program.
        insn_count: usize,
    },
}

/// Why a sealed or signed loader ([`crate::skel`]) did not run, each
/// with what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealProblem {
    /// `BPF_MAP_CREATE` refused `excl_prog_hash` (`E2BIG` before 6.18).
    #[error(
        "sealed loader: this kernel has no exclusive maps (BPF_MAP_CREATE with excl_prog_hash: {}); \
         sealed loaders need Linux 6.18 or later: generate the loader without --sealed to run it here",
        io::Error::from_raw_os_error(*errno)
    )]
    NoExclusiveMaps {
        /// The kernel's errno.
        errno: i32,
    },
    /// `BPF_OBJ_GET_INFO_BY_FD` did not give the data map's hash.
    #[error(
        "sealed loader: this kernel does not hash maps (BPF_OBJ_GET_INFO_BY_FD with hash: {}); \
         sealed loaders need Linux 6.18 or later",
        io::Error::from_raw_os_error(*errno)
    )]
    NoMapHash {
        /// The kernel's errno.
        errno: i32,
    },
    /// The loader's instructions do not hash to the `excl_prog_hash` its
    /// data map is created with (the kernel refuses it with `EACCES`; the
    /// runner checks it first).
    #[error(
        "sealed loader: the kernel refused the loader: its instructions' SHA-256 is not the one \
         its data was sealed to (excl_prog_hash): the loader was altered"
    )]
    LoaderAltered,
    /// The loader refused its data: the blob's SHA-256 differs from the
    /// one the loader was generated for.
    #[error(
        "sealed loader: the loader refused its data: the blob's SHA-256 is not the one the loader \
         was generated for: the data was altered"
    )]
    DataAltered,
    /// The loader refused its data map: not exclusive to it.
    #[error("sealed loader: the loader refused its data map: the map is not exclusive to the loader")]
    NotExclusive,
    /// The kernel cannot check signatures (`EOPNOTSUPP`).
    #[error(
        "signed loader: this kernel cannot verify BPF program signatures (BPF_PROG_LOAD with a \
         signature: EOPNOTSUPP): it is built without CONFIG_SYSTEM_DATA_VERIFICATION (see \
         /boot/config-$(uname -r) or /proc/config.gz); run the loader on a kernel that has it, \
         or without --sign"
    )]
    SignaturesUnsupported,
    /// The keyring given does not exist or cannot be searched.
    #[error(
        "signed loader: keyring {keyring_id} does not exist or this process may not search it ({})",
        io::Error::from_raw_os_error(*errno)
    )]
    NoSuchKeyring {
        /// The keyring's serial.
        keyring_id: i32,
        /// The errno of looking it up.
        errno: i32,
    },
    /// No key of the keyring made the signature (`ENOKEY`).
    #[error(
        "signed loader: keyring {keyring_id} holds no key that made the loader's signature (ENOKEY): \
         add the signing certificate's key to it"
    )]
    KeyNotInKeyring {
        /// The keyring's serial.
        keyring_id: i32,
    },
    /// The kernel refused the signature.
    #[error(
        "signed loader: the kernel refused the loader's signature ({}): the loader or its \
         signature was altered, or the signing key is not trusted",
        io::Error::from_raw_os_error(*errno)
    )]
    SignatureRefused {
        /// The kernel's errno.
        errno: i32,
    },
}

/// What the in-kernel resolver answered that it cannot have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolverFault {
    /// The loader program returned this instead of 0.
    #[error("the in-kernel resolver returned {0}")]
    Returned(i32),
    /// The lookup program visited this many of its names.
    #[error("the in-kernel resolver visited {visited} of {count} names")]
    Visited {
        /// Names visited.
        visited: i32,
        /// Names given.
        count: u32,
    },
    /// A returned fd is not a BPF object.
    #[error("the in-kernel resolver returned fd {0}, which is not a BPF object")]
    NotBpfFd(i32),
    /// A returned BTF fd is none the resolver obtained.
    #[error("the in-kernel resolver returned an unknown BTF fd {0}")]
    UnknownBtfFd(i32),
}

/// Why a relocation failed, as a stable number: the `KSYMRELO_REASON_*`
/// of the C ABI. Grouped by who must act: the kernel lacks something
/// (1-4), the input is bad (5), the facts could not be read (6), the
/// caller asked for something impossible (7-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Reason {
    /// No failure.
    None = 0,
    /// A strong extern is not in the kernel (BTF or kallsyms).
    NotFound = 1,
    /// kallsyms lists the name at two different addresses.
    Ambiguous = 2,
    /// The object's type of the extern differs from the kernel's.
    Incompatible = 3,
    /// kallsyms addresses are hidden from this process (`kptr_restrict`).
    AddressesHidden = 4,
    /// The object (ELF, BTF, an instruction at a site) is malformed.
    BadObject = 5,
    /// Kernel facts could not be read: a file, or `bpf(2)` refused.
    KernelFacts = 6,
    /// An output buffer or a limit is too small.
    Capacity = 7,
    /// The call itself is wrong (arguments that do not belong together).
    Usage = 8,
}

impl Reason {
    /// A short lowercase name (`"not_found"`, ...), for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::NotFound => "not_found",
            Reason::Ambiguous => "ambiguous",
            Reason::Incompatible => "incompatible",
            Reason::AddressesHidden => "addresses_hidden",
            Reason::BadObject => "bad_object",
            Reason::KernelFacts => "kernel_facts",
            Reason::Capacity => "capacity",
            Reason::Usage => "usage",
        }
    }
}

impl Error {
    /// Why, as a [`Reason`].
    pub fn reason(&self) -> Reason {
        use ksymrelo_core::Error as C;
        match self {
            Error::Core(e) => match e {
                C::NotInKernelBtf { .. } | C::StrongUnresolved { .. } => Reason::NotFound,
                C::KallsymsAmbiguous { .. } => Reason::Ambiguous,
                C::IncompatibleVar { .. } | C::IncompatibleFunc { .. } => Reason::Incompatible,
                C::KallsymsRestricted { .. } => Reason::AddressesHidden,
                C::CapacityExceeded { .. } | C::FdArrayFull { .. } => Reason::Capacity,
                C::Mismatch { .. } => Reason::Usage,
                _ => Reason::BadObject,
            },
            Error::Loader {
                at: ksymrelo_core::gen::Step::Extern { .. },
                errno: libc::ENOENT,
                ..
            } => Reason::NotFound,
            Error::Io { .. } | Error::Bpf { .. } | Error::Loader { .. } => Reason::KernelFacts,
            Error::AddressesHidden { .. } => Reason::AddressesHidden,
            Error::NotFound { .. } => Reason::NotFound,
            Error::Incompatible { .. } => Reason::Incompatible,
            Error::Usage(_) | Error::NoKallsyms | Error::Signing { .. } => Reason::Usage,
            Error::InsnSite { .. } | Error::LoaderFile { .. } => Reason::BadObject,
            Error::ResolverFault(_) => Reason::KernelFacts,
            Error::Seal(p) => match p {
                SealProblem::NoExclusiveMaps { .. }
                | SealProblem::NoMapHash { .. }
                | SealProblem::SignaturesUnsupported => Reason::KernelFacts,
                SealProblem::NoSuchKeyring { .. } | SealProblem::KeyNotInKeyring { .. } => Reason::Usage,
                SealProblem::LoaderAltered
                | SealProblem::DataAltered
                | SealProblem::NotExclusive
                | SealProblem::SignatureRefused { .. } => Reason::BadObject,
            },
            Error::InKernel { .. } => Reason::NotFound,
        }
    }

    /// The extern this error is about, if any.
    pub fn extern_name(&self) -> Option<String> {
        match self {
            Error::Core(e) => e.extern_name().map(|n| n.to_string()),
            Error::InKernel { name, .. } | Error::AddressesHidden { name, .. } | Error::InsnSite { name, .. } => {
                Some(name.clone())
            }
            Error::NotFound { source, .. } => source.extern_name(),
            Error::Incompatible { source, .. } => source.extern_name().map(|n| n.to_string()),
            // The light-skeleton loader's step text names it first, quoted
            // (skel::loader_error).
            Error::Loader {
                at: ksymrelo_core::gen::Step::Extern { .. },
                step,
                ..
            } => step.split('\'').nth(1).map(str::to_owned),
            _ => None,
        }
    }

    /// Close names the kernel has, for a strong extern not found.
    pub fn candidates(&self) -> &[String] {
        match self {
            Error::NotFound { candidates, .. } => candidates,
            _ => &[],
        }
    }

    /// Wraps an OS error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a failed `bpf(2)` command with context.
    pub(crate) fn bpf(context: impl Into<String>, source: BpfError) -> Self {
        Error::Bpf {
            context: context.into(),
            source,
        }
    }

    /// The core error, if this is one.
    pub fn core(&self) -> Option<&ksymrelo_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// A core "addresses are all zero" error told with its cause: this
    /// system's settings for the live kallsyms, how it was saved for a file.
    pub(crate) fn with_hidden_cause(self, live: bool) -> Error {
        match self {
            Error::Core(ksymrelo_core::Error::KallsymsRestricted { name }) => Error::AddressesHidden {
                name: name.to_string(),
                cause: if live {
                    hidden_addresses_cause()
                } else {
                    "the saved kallsyms file lists only zero addresses: save /proc/kallsyms as root \
                     (or with CAP_SYSLOG)"
                        .into()
                },
            },
            e => e,
        }
    }
}

/// Which setting or missing capability hides kallsyms addresses from this
/// process, read from the system (`kallsyms_show_value`'s rules).
pub fn hidden_addresses_cause() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
    };
    let cap_syslog = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("CapEff:")
                    .map(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
        })
        .flatten()
        .is_some_and(|caps| caps & (1 << 34) != 0);
    match read("/proc/sys/kernel/kptr_restrict") {
        Some(2) => "kernel.kptr_restrict is 2, which hides them from everyone: set it to 1 \
                    (sysctl kernel.kptr_restrict=1) and run with CAP_SYSLOG"
            .into(),
        Some(1) if !cap_syslog => "kernel.kptr_restrict is 1 and this process lacks CAP_SYSLOG: \
                                   run as root or grant CAP_SYSLOG"
            .into(),
        Some(0) if !cap_syslog => format!(
            "kernel.kptr_restrict is 0, so kernel.perf_event_paranoid ({}) above 1 hides them: \
             lower it to 1 (sysctl kernel.perf_event_paranoid=1) or grant CAP_SYSLOG",
            read("/proc/sys/kernel/perf_event_paranoid").map_or("unknown".into(), |v| v.to_string())
        ),
        Some(v) => format!("kernel.kptr_restrict is {v} and this process has CAP_SYSLOG: the file was saved that way"),
        None => "kernel.kptr_restrict cannot be read (a saved kallsyms file with hidden addresses?)".into(),
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_failures_keep_their_message_and_reason() {
        let refused = BpfError::from_errno(BpfCommand::ProgLoad, libc::EACCES).with_log("R0 !read_ok".into());
        let err = Error::bpf("loading program p", refused);
        assert_eq!(
            err.to_string(),
            "loading program p: Permission denied (os error 13); verifier log:\nR0 !read_ok"
        );
        assert_eq!(err.reason(), Reason::KernelFacts);
        let Error::Bpf { source, .. } = &err else {
            unreachable!()
        };
        assert_eq!(
            (source.command(), source.errno(), source.verifier_log()),
            (BpfCommand::ProgLoad, libc::EACCES, Some("R0 !read_ok"))
        );
    }
}
