//! Keyrings: whether a keyring a signed loader names exists
//! (`keyctl(KEYCTL_DESCRIBE)`), so that a wrong id is told as such and not
//! as a refused signature.

/// `KEYCTL_DESCRIBE` (`linux/keyctl.h`).
const KEYCTL_DESCRIBE: libc::c_long = 6;

/// Ids `BPF_PROG_LOAD` reads as the kernel's own keyrings (built-in,
/// secondary, platform) rather than as key serials.
const SYSTEM_KEYRINGS: std::ops::RangeInclusive<i32> = 0..=2;

/// `Ok` if `keyring_id` is one of the kernel's own keyrings or a key this
/// process can see (a serial, or a special id such as
/// `KEY_SPEC_USER_KEYRING`); otherwise the positive errno (`ENOKEY`:
/// none such, `EACCES`: not visible to this process).
pub(crate) fn check_keyring(keyring_id: i32) -> Result<(), i32> {
    if SYSTEM_KEYRINGS.contains(&keyring_id) {
        return Ok(());
    }
    // SAFETY: KEYCTL_DESCRIBE with a null buffer of length 0 writes
    // nothing; it only returns the description's length or an error.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            libc::c_long::from(keyring_id),
            std::ptr::null_mut::<libc::c_char>(),
            0 as libc::c_long,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_keyrings_and_missing_serials() {
        assert_eq!(check_keyring(0), Ok(()));
        assert_eq!(check_keyring(2), Ok(()));
        // Serials are positive and random; this one is never handed out
        // (the kernel starts at 3 and skips what exists), but a test must
        // not rely on luck: find one that is not there.
        let missing = (0x7fff_0000..0x7fff_ffff).find(|id| check_keyring(*id).is_err());
        assert!(missing.is_some());
        assert_eq!(check_keyring(missing.unwrap()), Err(libc::ENOKEY));
        // The process's user keyring exists (created on demand).
        const KEY_SPEC_USER_KEYRING: i32 = -4;
        assert_eq!(check_keyring(KEY_SPEC_USER_KEYRING), Ok(()));
    }
}
