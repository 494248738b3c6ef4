//! BTF objects: walking the kernel's (`BPF_BTF_GET_NEXT_ID`,
//! `BPF_BTF_GET_FD_BY_ID`), reading one's info and raw bytes, and loading a
//! blob (`BPF_BTF_LOAD`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::fd::{fd_target, obj_get_info};
use super::uapi::{BpfCommand, BtfInfoRaw, BtfLoadAttr, GetIdAttr, LOG_LEVEL_VERBOSE, MODULE_NAME_LEN};
use super::{bpf, bpf_fd, c_string, len_u32, ptr_of, ptr_of_mut, BpfError};

/// The first BTF object id after `start` (`None` after the last one).
pub(crate) fn btf_get_next_id(start: u32) -> Result<Option<u32>, BpfError> {
    let mut attr = GetIdAttr {
        start_id: start,
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers.
    match unsafe { bpf(BpfCommand::BtfGetNextId, &mut attr) } {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.errno() == libc::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new fd for the BTF object `id` (`ENOENT` if it went away meanwhile).
pub(crate) fn btf_get_fd_by_id(id: u32) -> Result<OwnedFd, BpfError> {
    let mut attr = GetIdAttr {
        start_id: id,
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers; the command returns a new fd.
    unsafe { bpf_fd(BpfCommand::BtfGetFdById, &mut attr) }
}

/// What the kernel says about a BTF object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfInfo {
    /// Object id.
    pub id: u32,
    /// `"vmlinux"`, a module's name, or `""` for BTF a program loaded.
    pub name: String,
    /// Kernel BTF (vmlinux or a module's) rather than loaded from user space.
    pub kernel_btf: bool,
    /// Size of the raw BTF in bytes.
    pub btf_size: u32,
}

/// A BTF object the kernel holds now, with an fd of it.
#[derive(Debug)]
pub struct BtfObject {
    /// What the kernel says about it.
    pub info: BtfInfo,
    /// A new descriptor of it, owned here.
    pub fd: OwnedFd,
}

/// Every BTF object the kernel holds (vmlinux, modules, BTF programs
/// loaded), in id order, each opened: what `bpftool btf list` shows. An
/// object that goes away during the walk is left out; the walk ends after
/// the first error (`EPERM` without `CAP_SYS_ADMIN`).
pub fn btf_objects() -> impl Iterator<Item = Result<BtfObject, BpfError>> {
    let mut id = Some(0);
    std::iter::from_fn(move || loop {
        let next = match btf_get_next_id(id?) {
            Ok(next) => next,
            Err(e) => {
                id = None;
                return Some(Err(e));
            }
        };
        id = next;
        let fd = match btf_get_fd_by_id(id?) {
            Ok(fd) => fd,
            Err(e) if e.errno() == libc::ENOENT => continue,
            Err(e) => return Some(Err(e)),
        };
        return Some(btf_info(fd.as_fd()).map(|info| BtfObject { info, fd }));
    })
}

/// Refuses fds that are not BTF objects: `struct bpf_btf_info` holds user
/// pointers that the kernel would read as other fields (even as pointers to
/// write to) for another object type.
fn check_btf_fd(fd: BorrowedFd<'_>) -> Result<(), BpfError> {
    let cmd = BpfCommand::ObjGetInfoByFd;
    let target = fd_target(fd.as_raw_fd()).map_err(|e| BpfError::from_io(cmd, &e))?;
    if target != "anon_inode:btf" {
        return Err(BpfError::invalid(
            cmd,
            format!("fd {} is not a BTF object but {target}", fd.as_raw_fd()),
        ));
    }
    Ok(())
}

/// Id, name and kind of the BTF object `fd` (`EINVAL` for other fds, which
/// are never passed to the kernel: its answer for them would be read as
/// pointers).
pub fn btf_info(fd: BorrowedFd<'_>) -> Result<BtfInfo, BpfError> {
    check_btf_fd(fd)?;
    // The kernel reports ENOSPC rather than truncating a name silently.
    let mut name = [0u8; MODULE_NAME_LEN];
    let mut info = BtfInfoRaw {
        name: ptr_of_mut(&mut name),
        name_len: name.len() as u32,
        ..Default::default()
    };
    // SAFETY: `fd` is a BTF object (checked above) and `BtfInfoRaw` is
    // `struct bpf_btf_info`; `name` is a live local buffer of `name_len`
    // bytes; `btf` is null.
    unsafe { obj_get_info(fd, &mut info)? };
    Ok(BtfInfo {
        id: info.id,
        name: c_string(&name),
        kernel_btf: info.kernel_btf != 0,
        btf_size: info.btf_size,
    })
}

/// The raw BTF of the BTF object `fd` (for a module: split BTF over
/// vmlinux). Two calls: one for the size, one for the bytes.
pub(crate) fn btf_data(fd: BorrowedFd<'_>) -> Result<Vec<u8>, BpfError> {
    let size = btf_info(fd)?.btf_size;
    let mut data = vec![0u8; size as usize];
    let mut info = BtfInfoRaw {
        btf: ptr_of_mut(&mut data),
        btf_size: size,
        ..Default::default()
    };
    // SAFETY: `fd` is a BTF object (`btf_info` checked) and `BtfInfoRaw`
    // is `struct bpf_btf_info`; `data` is a live buffer of `btf_size` bytes,
    // which bounds the kernel's copy; `name` is null.
    unsafe { obj_get_info(fd, &mut info)? };
    if info.btf_size != size {
        // BTF objects are immutable; a different size means a different object.
        return Err(BpfError::new(
            BpfCommand::ObjGetInfoByFd,
            libc::EAGAIN,
            format!("BTF object changed size ({size} then {} bytes)", info.btf_size),
        ));
    }
    Ok(data)
}

/// Loads a BTF blob into the kernel (`BPF_BTF_LOAD`): a program's BTF, or
/// a BTF object for tests. On failure the load is repeated with a log,
/// which the error carries ([`BpfError::verifier_log`]).
pub fn btf_load(data: &[u8]) -> Result<OwnedFd, BpfError> {
    let cmd = BpfCommand::BtfLoad;
    let mut attr = BtfLoadAttr {
        btf: ptr_of(data),
        btf_size: len_u32(cmd, data.len(), "BTF")?,
        ..Default::default()
    };
    // SAFETY: `data` is live and `btf_size` bytes long; no log buffer; the
    // command returns a new fd.
    let err = match unsafe { bpf_fd(cmd, &mut attr) } {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 16];
    attr.btf_log_buf = ptr_of_mut(&mut log);
    attr.btf_log_size = log.len() as u32;
    attr.btf_log_level = LOG_LEVEL_VERBOSE;
    // SAFETY: as above, plus `log`, live and exclusively borrowed for
    // `btf_log_size` bytes, which bounds what the kernel writes.
    unsafe { bpf_fd(cmd, &mut attr) }.map_err(|e| with_log(e, &log).unwrap_or(err))
}

/// `err` with the text in `log` attached, or `None` if the log is empty.
pub(super) fn with_log(err: BpfError, log: &[u8]) -> Option<BpfError> {
    let raw = c_string(log);
    // A full buffer means the kernel kept only part of the log (the tail,
    // since Linux 6.4).
    let truncated = raw.len() + 1 >= log.len();
    let text = raw.trim_end();
    if text.is_empty() {
        return None;
    }
    let log = if truncated {
        format!("(truncated)\n{text}")
    } else {
        text.to_owned()
    };
    Some(err.with_log(log))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::testing::{kernel, read_attr, user_bytes, with_fake, write_attr};
    use crate::sys::uapi::BPF_MAP_TYPE_ARRAY;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    /// A BTF blob with one type, `int`.
    pub(crate) fn int_btf() -> Vec<u8> {
        let strings = b"\0int\0";
        let types: Vec<u8> = [1u32, 1 << 24, 4, 32].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut blob = Vec::new();
        blob.extend(0xeb9fu16.to_ne_bytes());
        blob.extend([1u8, 0]); // version, flags
        for word in [24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            blob.extend(word.to_ne_bytes()); // hdr_len, type_off, type_len, str_off, str_len
        }
        blob.extend(types);
        blob.extend(strings);
        blob
    }

    /// A BTF object of [`int_btf`].
    pub(crate) fn int_btf_fd() -> OwnedFd {
        btf_load(&int_btf()).unwrap()
    }

    #[test]
    pub(crate) fn vmlinux_btf_objects_hold_the_sysfs_bytes() {
        if !kernel("vmlinux_btf_objects_hold_the_sysfs_bytes") {
            return;
        }
        let file_bytes = std::fs::read(VMLINUX).unwrap();
        let mut id = 0;
        let mut found = 0;
        while let Some(next) = btf_get_next_id(id).unwrap() {
            assert!(next > id);
            id = next;
            // Objects may go away between the two calls.
            let Ok(fd) = btf_get_fd_by_id(id) else {
                continue;
            };
            let info = btf_info(fd.as_fd()).unwrap();
            assert_eq!(info.id, id);
            if info.kernel_btf && info.name == "vmlinux" {
                assert_eq!(info.btf_size as usize, file_bytes.len());
                assert!(
                    btf_data(fd.as_fd()).unwrap() == file_bytes,
                    "vmlinux BTF object differs from {VMLINUX}"
                );
                found += 1;
            }
        }
        assert_eq!(found, 1, "vmlinux BTF objects");
        let vmlinux: Vec<_> = btf_objects()
            .map(Result::unwrap)
            .filter(|o| o.info.kernel_btf && o.info.name == "vmlinux")
            .collect();
        assert_eq!(vmlinux.len(), 1, "btf_objects' vmlinux");
    }

    #[test]
    pub(crate) fn btf_loads_and_reads_back() {
        if !kernel("btf_loads_and_reads_back") {
            return;
        }
        let blob = int_btf();
        let fd = btf_load(&blob).unwrap();
        let info = btf_info(fd.as_fd()).unwrap();
        assert!(!info.kernel_btf);
        assert_eq!(info.name, "");
        assert_eq!(btf_data(fd.as_fd()).unwrap(), blob);
        assert!(btf_get_fd_by_id(info.id).is_ok());
        let map = crate::sys::map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 1, "ksymrelo_nobtf").unwrap();
        assert_eq!(btf_info(map.as_fd()).unwrap_err().errno(), libc::EINVAL);
        assert_eq!(btf_data(map.as_fd()).unwrap_err().errno(), libc::EINVAL);

        // A 33-bit int is malformed; the checker's log says why.
        let mut bad = blob.clone();
        bad[24 + 12..24 + 16].copy_from_slice(&33u32.to_ne_bytes());
        let err = btf_load(&bad).unwrap_err();
        assert_eq!((err.command(), err.errno()), (BpfCommand::BtfLoad, libc::EINVAL));
        assert!(err.verifier_log().is_some_and(|log| !log.is_empty()), "{err}");
    }

    #[test]
    fn the_walk_ends_at_enoent_and_reports_other_errnos() {
        let next = with_fake(
            |cmd, attr| {
                assert_eq!(cmd, BpfCommand::BtfGetNextId);
                let mut a: GetIdAttr = read_attr(attr);
                assert_eq!((a.start_id, a.open_flags), (7, 0));
                a.next_id = 9;
                write_attr(attr, a);
                Ok(0)
            },
            || btf_get_next_id(7),
        );
        assert_eq!(next, Ok(Some(9)));
        assert_eq!(with_fake(|_, _| Err(libc::ENOENT), || btf_get_next_id(9)), Ok(None));
        let err = with_fake(|_, _| Err(libc::EPERM), crate::sys::bpf_available).unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::BtfGetNextId, libc::EPERM));
        assert_eq!(err.to_string(), "Operation not permitted (os error 1)");
        // The walk reports the error once, then stops.
        let walk: Vec<_> = with_fake(|_, _| Err(libc::EPERM), || btf_objects().collect());
        assert_eq!(walk.len(), 1);
        assert!(matches!(&walk[0], Err(e) if e.errno() == libc::EPERM));
    }

    #[test]
    fn a_refused_load_is_repeated_with_a_log() {
        let blob = int_btf();
        let (blob_at, blob_len) = (blob.as_ptr() as u64, blob.len() as u32);
        let mut calls = 0;
        let err = with_fake(
            move |cmd, attr| {
                assert_eq!(cmd, BpfCommand::BtfLoad);
                let a: BtfLoadAttr = read_attr(attr);
                assert_eq!((a.btf, a.btf_size), (blob_at, blob_len));
                calls += 1;
                if calls == 1 {
                    assert_eq!((a.btf_log_buf, a.btf_log_size, a.btf_log_level), (0, 0, 0));
                } else {
                    assert_eq!((a.btf_log_size, a.btf_log_level), (1 << 16, LOG_LEVEL_VERBOSE));
                    // SAFETY: `btf_load` lends the kernel `btf_log_size` bytes there.
                    let log = unsafe { user_bytes(a.btf_log_buf, a.btf_log_size) };
                    log[..12].copy_from_slice(b"[1] INT int\0");
                }
                Err(libc::EINVAL)
            },
            || btf_load(&blob),
        )
        .unwrap_err();
        assert_eq!(err.verifier_log(), Some("[1] INT int"));
        assert_eq!(
            err.to_string(),
            "Invalid argument (os error 22); verifier log:\n[1] INT int"
        );

        // An empty log: the first error, bare.
        let err = with_fake(|_, _| Err(libc::EINVAL), || btf_load(&int_btf())).unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::BtfLoad, libc::EINVAL));
    }

    #[test]
    fn only_btf_fds_are_asked_about() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let err = with_fake(|cmd, _| panic!("{cmd} reached the kernel"), || btf_info(file.as_fd())).unwrap_err();
        assert_eq!((err.command(), err.errno()), (BpfCommand::ObjGetInfoByFd, libc::EINVAL));
        assert!(err.to_string().contains("is not a BTF object but /proc/"), "{err}");
    }
}
