//! The one mapping from ksymrelo's errors to the negative errno a C caller
//! gets, libbpf's numbers where libbpf fails the same way.

use ksymrelo_core::Error as CoreError;
use ksymrelo_std::Error;

/// The status (a negative errno) a C entry point returns for `err`.
pub(crate) fn of(err: &Error) -> i32 {
    -match err {
        Error::Core(e) => core_errno(e),
        Error::Incompatible { source, .. } => core_errno(source),
        Error::NotFound { source, .. } => return of(source),
        Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        Error::Bpf { source, .. } => source.errno(),
        Error::Loader { errno, .. } => *errno,
        Error::Usage(_)
        | Error::NoKallsyms
        | Error::InsnSite { .. }
        | Error::LoaderFile { .. }
        | Error::Signing { .. } => libc::EINVAL,
        Error::ResolverFault(_) => libc::EIO,
        Error::AddressesHidden { .. } => libc::EACCES,
        Error::InKernel { .. } => libc::ESRCH,
        Error::Seal(problem) => seal_errno(problem),
    }
}

/// The (positive) errno of a sealed or signed loader's refusal: the
/// kernel's where it refused, the loader's status where it did.
fn seal_errno(problem: &ksymrelo_std::error::SealProblem) -> i32 {
    use ksymrelo_std::error::SealProblem as P;
    match *problem {
        P::NoExclusiveMaps { errno } | P::NoMapHash { errno } | P::SignatureRefused { errno } => errno,
        P::NoSuchKeyring { errno, .. } => errno,
        P::LoaderAltered => libc::EACCES,
        P::DataAltered => libc::EBADMSG,
        P::NotExclusive => libc::EPERM,
        P::SignaturesUnsupported => libc::EOPNOTSUPP,
        P::KeyNotInKeyring { .. } => libc::ENOKEY,
    }
}

/// The (positive) errno of a core error.
fn core_errno(e: &CoreError) -> i32 {
    match e {
        CoreError::CapacityExceeded { .. } => libc::ENOSPC,
        CoreError::UnsupportedElf { .. } => libc::EOPNOTSUPP,
        CoreError::ExternNoBtf { .. } => libc::ENOENT,
        CoreError::NotInKernelBtf { .. } | CoreError::StrongUnresolved { .. } => libc::ESRCH,
        CoreError::FdArrayFull { .. } => libc::E2BIG,
        CoreError::KallsymsRestricted { .. } => libc::EACCES,
        _ => libc::EINVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksymrelo_core::error::{LookupKind, Name};

    #[test]
    fn libbpfs_numbers() {
        let name = Name::from("x");
        let missing = CoreError::NotInKernelBtf {
            name,
            kind: LookupKind::Func,
        };
        assert_eq!(of(&Error::Core(missing)), -libc::ESRCH);
        assert_eq!(
            of(&Error::NotFound {
                source: Box::new(Error::Core(missing)),
                hints: vec![],
                candidates: vec![],
            }),
            -libc::ESRCH
        );
        assert_eq!(of(&Error::Core(CoreError::NoObjectBtf)), -libc::EINVAL);
        assert_eq!(of(&Error::Core(CoreError::FdArrayFull { name })), -libc::E2BIG);
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(of(&Error::io("bpf", eperm)), -libc::EPERM);
    }
}
