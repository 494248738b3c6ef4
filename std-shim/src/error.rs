//! The error type of ksymrelo-std: a core error, or an OS error with the
//! file or operation it happened in.

use std::fmt;
use std::io;

/// Anything that can go wrong when resolving on a real system.
#[derive(Debug)]
pub enum Error {
    /// Malformed input or a failed resolution (names the extern).
    Core(ksymrelo_core::Error),
    /// A file or `bpf(2)` operation failed.
    Io {
        /// What was being done, e.g. "reading /proc/kallsyms".
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A request that cannot be served, e.g. typeless externs but no kallsyms.
    Usage(String),
    /// The in-kernel resolver's lookup of a strong extern failed.
    InKernel {
        /// The extern.
        name: String,
        /// The positive errno the kernel helper returned.
        errno: i32,
    },
}

impl Error {
    /// Wraps an OS error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
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

    /// A negative errno for C callers.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Core(e) => e.errno(),
            Error::Io { source, .. } => -crate::sys::errno(source).unwrap_or(libc::EIO),
            Error::Usage(_) => -libc::EINVAL,
            Error::InKernel { .. } => -libc::ESRCH,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => e.fmt(f),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Usage(msg) => f.write_str(msg),
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
            Error::Usage(_) | Error::InKernel { .. } => None,
        }
    }
}

impl From<ksymrelo_core::Error> for Error {
    fn from(e: ksymrelo_core::Error) -> Self {
        Error::Core(e)
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
