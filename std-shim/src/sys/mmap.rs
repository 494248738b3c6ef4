//! Read-only mappings of kernel BTF files (`mmap(2)`), refused for any
//! other file.

use std::fmt;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::fd::fd_target;

/// `statfs::f_type` of sysfs.
const SYSFS_MAGIC: u32 = 0x6265_6572;
/// Where the kernel exposes its BTF, immutable while it runs.
const SYSFS_BTF_DIR: &str = "/sys/kernel/btf/";

/// A read-only mapping of a whole kernel BTF file (`/sys/kernel/btf/*`),
/// unmapped on drop.
///
/// Only kernel BTF is mapped: it is immutable while the kernel runs, so the
/// bytes behind the `&[u8]` cannot change. The contents of other files can
/// (another process may write or truncate them), which a shared byte slice
/// must not observe; read those instead.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone and only ever read
// (immutable kernel data); moving it to another thread is sound.
unsafe impl Send for Mmap {}
// SAFETY: only `&[u8]` access is given out, to immutable bytes.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `file`, at its current size, read-only.
    ///
    /// Errors: `Unsupported` for a file outside `/sys/kernel/btf`,
    /// `InvalidInput` for an empty one, and the kernel's error where it
    /// refuses (sysfs maps vmlinux BTF since Linux 6.16, module BTF not at
    /// all). Callers fall back to reading the file.
    pub fn map(file: &File) -> io::Result<Mmap> {
        if !is_sysfs_btf(file)? {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "only kernel BTF (/sys/kernel/btf) is mapped; other files may change under a mapping",
            ));
        }
        let len = usize::try_from(file.metadata()?.len()).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot map an empty file"));
        }
        // SAFETY: asks for a new private read-only mapping of an open fd at
        // an address the kernel picks, so no existing memory is affected;
        // the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }
}

/// Whether `file` is a sysfs file under `/sys/kernel/btf/`.
fn is_sysfs_btf(file: &File) -> io::Result<bool> {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable memory of the size `fstatfs` fills; the fd
    // is open for the borrow of `file`.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fstatfs` succeeded, so it initialized `st`.
    let st = unsafe { st.assume_init() };
    if st.f_type as u32 != SYSFS_MAGIC {
        return Ok(false);
    }
    Ok(fd_target(file.as_raw_fd())?.starts_with(SYSFS_BTF_DIR))
}

impl std::ops::Deref for Mmap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is a live read-only mapping owned by
        // `self` until drop, readable throughout (the file's size, which
        // kernel BTF files keep), of bytes that never change (see `Mmap`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Mmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmap").field("len", &self.len).finish()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns, once; no
        // borrow of it outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::testing::require_kernel;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    #[test]
    pub(crate) fn vmlinux_mmap_equals_read() {
        let Ok(file) = File::open(VMLINUX) else {
            assert!(!require_kernel(), "no {VMLINUX}");
            ksymrelo_test_skip::skip(format_args!("no {VMLINUX}"));
            return;
        };
        let map = match Mmap::map(&file) {
            Ok(map) => map,
            // Before Linux 6.16 sysfs did not map BTF.
            Err(e) if !require_kernel() => {
                ksymrelo_test_skip::skip(format_args!("{VMLINUX} not mappable: {e}"));
                return;
            }
            Err(e) => panic!("mapping {VMLINUX}: {e}"),
        };
        let bytes = std::fs::read(VMLINUX).unwrap();
        assert!(map[..] == bytes[..], "mapped and read BTF differ");
        // Shareable across threads.
        let map = std::sync::Arc::new(map);
        let other = std::sync::Arc::clone(&map);
        let len = std::thread::spawn(move || other.len()).join().unwrap();
        assert_eq!(len, bytes.len());
    }

    #[test]
    pub(crate) fn only_kernel_btf_is_mapped() {
        let exe = File::open(std::env::current_exe().unwrap()).unwrap();
        let err = Mmap::map(&exe).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        if let Ok(file) = File::open("/sys/kernel/notes") {
            // sysfs, but not BTF.
            assert_eq!(Mmap::map(&file).unwrap_err().kind(), io::ErrorKind::Unsupported);
        }
    }
}
