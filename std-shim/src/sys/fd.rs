//! Descriptors of BPF objects: taking ownership of the ones a command
//! returns or the kernel installed, telling what kind of file an fd is, and
//! asking the kernel about the object behind one (`BPF_OBJ_GET_INFO_BY_FD`).

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::uapi::{BpfCommand, InfoAttr};
use super::{bpf, BpfError};

/// Takes ownership of the fd a `bpf(2)` command returned.
///
/// # Safety
///
/// `ret` must be the result of a successful `cmd` that installs a new
/// descriptor (`*_LOAD`, `*_CREATE`, `*_GET_FD_BY_ID`): nothing else owns it.
pub(super) unsafe fn new_fd(cmd: BpfCommand, ret: libc::c_long) -> Result<OwnedFd, BpfError> {
    let fd = RawFd::try_from(ret).map_err(|_| BpfError::from_errno(cmd, libc::EBADF))?;
    // SAFETY: a fresh descriptor, owned by no one else (function contract).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes ownership of a descriptor that the kernel installed in this process
/// outside a syscall's return value — a module BTF fd that the in-kernel
/// loader program obtained with `bpf_sys_bpf` and wrote into its map, say.
///
/// Ownership: the caller must know that nothing else owns `fd` (no `File`,
/// `OwnedFd`, …); it is closed when the returned value drops. To keep a
/// wrong number from closing an unrelated descriptor, only open BPF object
/// descriptors (BTF, map, program, link) are taken; anything else, and
/// negative numbers, give `None` and are left alone.
pub(crate) fn adopt_kernel_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    let target = fd_target(fd).ok()?;
    let is_bpf = target == "anon_inode:btf" || target.starts_with("anon_inode:bpf");
    if !is_bpf {
        return None;
    }
    // SAFETY: `fd` is open (its /proc link exists) and names a BPF object;
    // the caller guarantees it has no other owner (documented above).
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What kind of file `fd` is, as `/proc/self/fd` says: `anon_inode:btf`,
/// `anon_inode:bpf-map`, a path, ….
pub(super) fn fd_target(fd: RawFd) -> std::io::Result<String> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    Ok(target.to_string_lossy().into_owned())
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`, an info struct prefix; the kernel
/// writes `size_of::<T>()` bytes at most.
///
/// # Safety
///
/// Read as the info struct of whatever object `fd` is (program, map, BTF,
/// link), `info` must hold only null pointers or pointers to live,
/// exclusively borrowed buffers at least as long as the lengths the kernel
/// finds beside them. An all-zero prefix satisfies this for any `fd`.
pub(super) unsafe fn obj_get_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> Result<(), BpfError> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    // SAFETY: `info` is exclusively borrowed for `info_len` bytes, which
    // bounds what the kernel writes there; its inner pointers are valid by
    // this function's contract.
    unsafe { bpf(BpfCommand::ObjGetInfoByFd, &mut attr) }.map(|_| ())
}

/// Number of open descriptors of this process, for leak tests (the count
/// includes the one that reads `/proc/self/fd`, the same every time).
#[cfg(test)]
pub(crate) fn fd_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::testing::{kernel, read_attr, with_fake};
    use std::fs::File;
    use std::os::fd::{AsFd, IntoRawFd};

    #[test]
    pub(crate) fn kernel_fds_are_adopted_only_if_bpf_objects() {
        if !kernel("kernel_fds_are_adopted_only_if_bpf_objects") {
            return;
        }
        assert!(adopt_kernel_fd(-1).is_none());
        let raw = crate::sys::btf::tests::int_btf_fd().into_raw_fd();
        let adopted = adopt_kernel_fd(raw).expect("a BTF fd is adopted");
        assert_eq!(adopted.as_raw_fd(), raw);
        // Whether dropping it closes it is checked by `no_descriptor_leaks`,
        // which runs alone: here, a test on another thread may already have
        // been given the same number.
        drop(adopted);
        let file = File::open("/proc/self/status").unwrap();
        assert!(adopt_kernel_fd(file.as_raw_fd()).is_none());
        // Still open: nothing took it.
        assert!(std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).is_ok());
    }

    #[test]
    fn info_asks_for_the_prefix_it_can_hold() {
        let file = File::open("/proc/self/status").unwrap();
        let mut info = [0u32; 6];
        let info_at = info.as_ptr() as u64;
        let err = with_fake(
            move |cmd, attr| {
                assert_eq!(cmd, BpfCommand::ObjGetInfoByFd);
                let attr: InfoAttr = read_attr(attr);
                assert_eq!((attr.info_len, attr.info), (24, info_at));
                Err(libc::EINVAL)
            },
            // SAFETY: an all-zero prefix (no pointers); the fake writes nothing.
            || unsafe { obj_get_info(file.as_fd(), &mut info) },
        )
        .unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::ObjGetInfoByFd, libc::EINVAL));
    }

    /// Every kernel test of `sys`, for [`no_descriptor_leaks`].
    const ALL: [fn(); 9] = [
        crate::sys::btf::tests::vmlinux_btf_objects_hold_the_sysfs_bytes,
        crate::sys::btf::tests::btf_loads_and_reads_back,
        crate::sys::mmap::tests::vmlinux_mmap_equals_read,
        crate::sys::mmap::tests::only_kernel_btf_is_mapped,
        crate::sys::prog::tests::syscall_programs_run,
        crate::sys::prog::tests::refused_programs_carry_the_verifier_log,
        crate::sys::map::tests::maps_roundtrip,
        crate::sys::prog::tests::programs_reach_maps_through_fd_array,
        kernel_fds_are_adopted_only_if_bpf_objects,
    ];

    const LEAK_CHILD: &str = "KSYMRELO_SYS_FD_LEAK_CHILD";

    /// Runs every kernel test of `sys` again in a process of its own (other
    /// tests of the binary would open descriptors concurrently) and checks
    /// that the descriptor count ends where it started.
    #[test]
    fn no_descriptor_leaks() {
        if std::env::var_os(LEAK_CHILD).is_some() {
            let before = fd_count().unwrap();
            for test in ALL {
                test();
            }
            assert_eq!(fd_count().unwrap(), before, "descriptors leaked");
            return;
        }
        // The test's name as the harness knows it: the path without the crate.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = format!("{module}::no_descriptor_leaks");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([&name, "--exact", "--test-threads=1", "--nocapture"])
            .env(LEAK_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} in a child process: {}\n{stdout}",
            out.status
        );
    }
}
