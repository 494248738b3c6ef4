//! The error type of ksymrelo-std: a core error, or an OS error with the
//! file or operation it happened in.

use std::fmt;
use std::io;

pub use crate::sys::{BpfCommand, BpfError};

/// Anything that can go wrong when resolving on a real system.
#[derive(Debug)]
pub enum Error {
    /// Malformed input or a failed resolution (names the extern).
    Core(ksymrelo_core::Error),
    /// A file operation failed.
    Io {
        /// What was being done, e.g. "reading /proc/kallsyms".
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A `bpf(2)` command failed: [`BpfError`] names it and holds the errno
    /// and, for a refused program, the verifier log.
    Bpf {
        /// What was being done, e.g. "loading the in-kernel resolver".
        context: String,
        /// The command's error.
        source: BpfError,
    },
    /// A request that cannot be served, e.g. typeless externs but no kallsyms.
    Usage(String),
    /// kallsyms shows this process only zero addresses; `cause` says which
    /// setting or capability hides them.
    AddressesHidden {
        /// The extern that needed an address.
        name: String,
        /// What hides them, and what to change.
        cause: String,
    },
    /// An extern whose type differs from the kernel's, told with both types
    /// as C and where they first differ.
    Incompatible {
        /// The core error (ids only).
        source: Box<ksymrelo_core::Error>,
        /// The whole message.
        message: String,
    },
    /// A strong extern not found, with what the kernel has instead.
    NotFound {
        /// The error the resolution stopped with.
        source: Box<Error>,
        /// Why it may be missing (another kind, another module, ...).
        hints: Vec<String>,
        /// Close names in kernel BTF (at most 3, nearest first).
        candidates: Vec<String>,
    },
    /// The in-kernel resolver's lookup of a strong extern failed.
    InKernel {
        /// The extern.
        name: String,
        /// The positive errno the kernel helper returned.
        errno: i32,
    },
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
            Error::Io { .. } | Error::Bpf { .. } => Reason::KernelFacts,
            Error::AddressesHidden { .. } => Reason::AddressesHidden,
            Error::NotFound { .. } => Reason::NotFound,
            Error::Incompatible { .. } => Reason::Incompatible,
            Error::Usage(_) => Reason::Usage,
            Error::InKernel { .. } => Reason::NotFound,
        }
    }

    /// The extern this error is about, if any.
    pub fn extern_name(&self) -> Option<String> {
        match self {
            Error::Core(e) => e.extern_name().map(|n| n.to_string()),
            Error::InKernel { name, .. } | Error::AddressesHidden { name, .. } => Some(name.clone()),
            Error::NotFound { source, .. } => source.extern_name(),
            Error::Incompatible { source, .. } => source.extern_name().map(|n| n.to_string()),
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => e.fmt(f),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Bpf { context, source } => write!(f, "{context}: {source}"),
            Error::Usage(msg) => f.write_str(msg),
            Error::NotFound {
                source,
                hints,
                candidates,
            } => {
                write!(f, "{source}")?;
                for h in hints {
                    write!(f, "; {h}")?;
                }
                if !candidates.is_empty() {
                    write!(f, "; close names in kernel BTF: {}", candidates.join(", "))?;
                }
                Ok(())
            }
            Error::Incompatible { message, .. } => f.write_str(message),
            Error::AddressesHidden { name, cause } => {
                write!(f, "extern (ksym) '{name}': kallsyms shows only zero addresses: {cause}")
            }
            Error::InKernel { name, errno } => write!(
                f,
                "extern '{name}' (strong): not resolved: the kernel's lookup failed: {}",
                io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            Error::Bpf { source, .. } => Some(source),
            Error::NotFound { source, .. } => Some(source.as_ref()),
            Error::Incompatible { source, .. } => Some(source.as_ref()),
            Error::Usage(_) | Error::InKernel { .. } | Error::AddressesHidden { .. } => None,
        }
    }
}

impl From<ksymrelo_core::Error> for Error {
    fn from(e: ksymrelo_core::Error) -> Self {
        Error::Core(e)
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
