//! The error of a `bpf(2)` command: which command failed, its errno, and —
//! where there is more to say than `strerror` — a message (a size mismatch,
//! a bad `fd_array` index) and the verifier's or BTF checker's log.

use std::fmt;
use std::io;

use super::uapi::BpfCommand;

/// A failed `bpf(2)` command.
///
/// Its message is the one `io::Error` would give for the errno
/// (`"Permission denied (os error 13)"`), or what a check before the call
/// found; a verifier log follows after `"; verifier log:\n"`.
///
/// ```no_run
/// # use ksymrelo_std::error::BpfCommand;
/// let err = ksymrelo_std::load::bpf_available().unwrap_err();
/// assert_eq!(err.command(), BpfCommand::BtfGetNextId);
/// eprintln!("{} failed: errno {}: {err}", err.command(), err.errno());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfError {
    command: BpfCommand,
    errno: i32,
    /// Said instead of `strerror(errno)`.
    message: Option<String>,
    log: Option<String>,
}

impl BpfError {
    /// `command` failed with `errno` (positive).
    pub(crate) fn from_errno(command: BpfCommand, errno: i32) -> Self {
        BpfError {
            command,
            errno,
            message: None,
            log: None,
        }
    }

    /// `command` refused with `errno` before or after the kernel ran it, for
    /// the reason `message` says.
    pub(crate) fn new(command: BpfCommand, errno: i32, message: String) -> Self {
        BpfError {
            message: Some(message),
            ..BpfError::from_errno(command, errno)
        }
    }

    /// `command` refused with `EINVAL` for the reason `message` says.
    pub(crate) fn invalid(command: BpfCommand, message: String) -> Self {
        BpfError::new(command, libc::EINVAL, message)
    }

    /// An OS error met on the way to `command` (reading `/proc/self/fd`, say).
    pub(crate) fn from_io(command: BpfCommand, err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(errno) => BpfError::from_errno(command, errno),
            None => BpfError::new(command, libc::EIO, err.to_string()),
        }
    }

    /// This error with the verifier's (or BTF checker's) log attached.
    pub(crate) fn with_log(self, log: String) -> Self {
        BpfError { log: Some(log), ..self }
    }

    /// The command that failed.
    pub fn command(&self) -> BpfCommand {
        self.command
    }

    /// The errno (positive), as the kernel returned it or as a check before
    /// the call chose it (`EINVAL` for a buffer of the wrong size, ...).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The verifier's (or BTF checker's) log of a failed `BPF_PROG_LOAD` or
    /// `BPF_BTF_LOAD`, if a log was asked for and the kernel wrote one.
    pub fn verifier_log(&self) -> Option<&str> {
        self.log.as_deref()
    }

    /// The errno's [`io::ErrorKind`].
    pub fn kind(&self) -> io::ErrorKind {
        io::Error::from_raw_os_error(self.errno).kind()
    }
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => f.write_str(message)?,
            None => io::Error::from_raw_os_error(self.errno).fmt(f)?,
        }
        if let Some(log) = &self.log {
            write!(f, "; verifier log:\n{log}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BpfError {}

/// For callers that speak `io::Error`: a bare errno stays one
/// (`raw_os_error` gives it); one with a message or log keeps its text.
impl From<BpfError> for io::Error {
    fn from(err: BpfError) -> Self {
        if err.message.is_none() && err.log.is_none() {
            io::Error::from_raw_os_error(err.errno)
        } else {
            io::Error::new(err.kind(), err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_strerror_or_the_checks_own() {
        let bare = BpfError::from_errno(BpfCommand::ProgLoad, libc::EACCES);
        assert_eq!(bare.to_string(), io::Error::from_raw_os_error(libc::EACCES).to_string());
        assert_eq!(bare.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io::Error::from(bare.clone()).raw_os_error(), Some(libc::EACCES));

        let logged = bare.with_log("0: (95) exit\nR0 !read_ok".into());
        assert_eq!(
            logged.to_string(),
            "Permission denied (os error 13); verifier log:\n0: (95) exit\nR0 !read_ok"
        );
        assert_eq!(logged.verifier_log(), Some("0: (95) exit\nR0 !read_ok"));
        let io = io::Error::from(logged.clone());
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io.to_string(), logged.to_string());

        let checked = BpfError::invalid(BpfCommand::MapLookupElem, "map 'm' has 4-byte keys".into());
        assert_eq!(checked.to_string(), "map 'm' has 4-byte keys");
        assert_eq!(
            (checked.command(), checked.errno()),
            (BpfCommand::MapLookupElem, libc::EINVAL)
        );
        assert_eq!(checked.command().to_string(), "BPF_MAP_LOOKUP_ELEM");

        let gone = BpfError::from_io(BpfCommand::ObjGetInfoByFd, &io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(gone, BpfError::from_errno(BpfCommand::ObjGetInfoByFd, libc::ENOENT));
    }
}
