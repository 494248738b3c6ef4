//! Maps: creating one (`BPF_MAP_CREATE`) and copying an element in or out
//! (`BPF_MAP_UPDATE_ELEM`, `BPF_MAP_LOOKUP_ELEM`), with the buffers checked
//! against the map's key and value sizes first.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::fd::obj_get_info;
use super::uapi::{BpfCommand, MapCreateAttr, MapElemAttr, MapHashInfo, MapInfoRaw, BPF_ANY, PERCPU_MAP_TYPES};
use super::{bpf, bpf_fd, c_string, obj_name, ptr_of, ptr_of_mut, BpfError};

/// Creates a map (`BPF_MAP_CREATE`) without flags; `name` is cut to 15
/// bytes (letters, digits, `_` and `.`).
pub(crate) fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: &str,
) -> Result<OwnedFd, BpfError> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_name: obj_name(name),
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers; the command returns a new fd.
    unsafe { bpf_fd(BpfCommand::MapCreate, &mut attr) }
}

/// Creates a one-entry array map of `value_size`-byte values that only
/// the program whose instructions hash to `excl_prog_hash` (SHA-256) may
/// use (`BPF_MAP_CREATE` `excl_prog_hash`, Linux 6.18; older kernels
/// refuse the field with `E2BIG`).
pub(crate) fn exclusive_array_create(
    value_size: u32,
    name: &str,
    excl_prog_hash: &[u8; 32],
) -> Result<OwnedFd, BpfError> {
    let mut attr = MapCreateAttr {
        map_type: super::uapi::BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        map_name: obj_name(name),
        excl_prog_hash: excl_prog_hash.as_ptr() as u64,
        excl_prog_hash_size: excl_prog_hash.len() as u32,
        ..Default::default()
    };
    // SAFETY: `excl_prog_hash` is live for the call and the kernel reads
    // `excl_prog_hash_size` (its length) bytes there; the command returns
    // a new fd.
    unsafe { bpf_fd(BpfCommand::MapCreate, &mut attr) }
}

/// The SHA-256 of the frozen array map `fd`'s values, as the kernel
/// computes it and keeps it in the map (`BPF_OBJ_GET_INFO_BY_FD` with
/// `hash`, Linux 6.18): what a sealed loader compares.
pub(crate) fn map_hash(fd: BorrowedFd<'_>) -> Result<[u8; 32], BpfError> {
    let mut hash = [0u8; 32];
    let mut info = MapHashInfo {
        hash: ptr_of_mut(&mut hash),
        hash_size: 32,
        ..Default::default()
    };
    // SAFETY: `hash` is exclusively borrowed for its 32 bytes, which is
    // the `hash_size` the kernel writes at most.
    unsafe { obj_get_info(fd, &mut info)? };
    Ok(hash)
}

/// Type, id, sizes and name of the map `fd`.
fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfoRaw, BpfError> {
    let mut info = MapInfoRaw::default();
    // SAFETY: an all-zero prefix (of `struct bpf_map_info`): no pointers
    // and zero lengths whatever kind of object `fd` is.
    unsafe { obj_get_info(fd, &mut info)? };
    Ok(info)
}

/// Checks `key` and a value of `value_len` bytes against the map's sizes
/// before `cmd`: the kernel copies exactly `key_size` and `value_size` bytes.
fn check_elem(cmd: BpfCommand, fd: BorrowedFd<'_>, key: &[u8], value_len: usize) -> Result<(), BpfError> {
    let info = map_info(fd)?;
    let name = c_string(&info.name);
    if PERCPU_MAP_TYPES.contains(&info.map_type) {
        return Err(BpfError::new(
            cmd,
            libc::EOPNOTSUPP,
            format!("map '{name}' is per-CPU, which this interface does not serve"),
        ));
    }
    if key.len() != info.key_size as usize || value_len != info.value_size as usize {
        return Err(BpfError::invalid(
            cmd,
            format!(
                "map '{name}' has {}-byte keys and {}-byte values, not {} and {}",
                info.key_size,
                info.value_size,
                key.len(),
                value_len
            ),
        ));
    }
    Ok(())
}

/// Sets the element `key` of the map `fd` to `value`, creating or
/// replacing it (`BPF_MAP_UPDATE_ELEM`, `BPF_ANY`). `key` and `value` must
/// have the map's sizes (`EINVAL` otherwise; per-CPU maps: `EOPNOTSUPP`).
pub(crate) fn map_update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<(), BpfError> {
    map_update_elem_with_flags(fd, key, value, BPF_ANY)
}

/// [`map_update_elem`] with flags (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
fn map_update_elem_with_flags(fd: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> Result<(), BpfError> {
    let cmd = BpfCommand::MapUpdateElem;
    check_elem(cmd, fd, key, value.len())?;
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: ptr_of(key),
        value: ptr_of(value),
        flags,
        ..Default::default()
    };
    // SAFETY: `key` and `value` are live and exactly the map's key and
    // value sizes (checked above), which is what the kernel reads.
    unsafe { bpf(cmd, &mut attr) }.map(|_| ())
}

/// Copies the element `key` of the map `fd` into `value`
/// (`BPF_MAP_LOOKUP_ELEM`). Sizes as for [`map_update_elem`].
pub(crate) fn map_lookup_elem(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> Result<(), BpfError> {
    let cmd = BpfCommand::MapLookupElem;
    check_elem(cmd, fd, key, value.len())?;
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: ptr_of(key),
        value: ptr_of_mut(value),
        ..Default::default()
    };
    // SAFETY: `key` is live and the map's key size; `value` is exclusively
    // borrowed and exactly the map's value size (checked above, per-CPU
    // maps refused), which is what the kernel writes.
    unsafe { bpf(cmd, &mut attr) }.map(|_| ())
}

/// Makes the map `fd` read-only for user space (`BPF_MAP_FREEZE`, Linux 5.2).
pub(crate) fn map_freeze(fd: BorrowedFd<'_>) -> Result<(), BpfError> {
    let mut attr = super::uapi::MapFreezeAttr {
        map_fd: fd.as_raw_fd() as u32,
    };
    // SAFETY: the attribute holds no pointers.
    unsafe { bpf(BpfCommand::MapFreeze, &mut attr) }.map(|_| ())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::testing::{kernel, read_attr, user_bytes, with_fake, write_attr};
    use crate::sys::uapi::{InfoAttr, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_NOEXIST};
    use std::os::fd::AsFd;

    #[test]
    pub(crate) fn maps_roundtrip() {
        if !kernel("maps_roundtrip") {
            return;
        }
        let map = map_create(BPF_MAP_TYPE_ARRAY, 4, 16, 2, "ksymrelo_t").unwrap();
        let info = map_info(map.as_fd()).unwrap();
        assert_eq!(
            (
                info.map_type,
                info.key_size,
                info.value_size,
                info.max_entries,
                &c_string(&info.name)[..]
            ),
            (BPF_MAP_TYPE_ARRAY, 4, 16, 2, "ksymrelo_t")
        );
        let value: Vec<u8> = (1..=16).collect();
        map_update_elem(map.as_fd(), &1u32.to_ne_bytes(), &value).unwrap();
        let mut back = [0u8; 16];
        map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut back).unwrap();
        assert_eq!(back[..], value[..]);
        map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut back).unwrap();
        assert_eq!(back, [0; 16]);
        let err = map_lookup_elem(map.as_fd(), &2u32.to_ne_bytes(), &mut back).unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::MapLookupElem, libc::ENOENT));

        // Sizes are checked before the kernel copies anything.
        let err = map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(err.to_string().contains("16-byte values"), "{err}");
        let err = map_update_elem(map.as_fd(), &0u64.to_ne_bytes(), &value).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        let percpu = map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, "ksymrelo_pcpu").unwrap();
        let err = map_lookup_elem(percpu.as_fd(), &0u32.to_ne_bytes(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.errno(), libc::EOPNOTSUPP);

        let hash = map_create(BPF_MAP_TYPE_HASH, 4, 16, 4, "ksymrelo_h").unwrap();
        map_update_elem_with_flags(hash.as_fd(), &3u32.to_ne_bytes(), &value, BPF_NOEXIST).unwrap();
        let err = map_update_elem_with_flags(hash.as_fd(), &3u32.to_ne_bytes(), &value, BPF_NOEXIST).unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::MapUpdateElem, libc::EEXIST));

        map_freeze(map.as_fd()).unwrap();
        let err = map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &value).unwrap_err();
        assert_eq!(err.errno(), libc::EPERM);
        map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut back).unwrap();
    }

    /// A fake kernel with one map of `map_type`, 4-byte keys and 8-byte
    /// values named "m"; lookups answer `value`.
    fn one_map(map_type: u32, value: u64) -> impl FnMut(BpfCommand, &mut [u8]) -> Result<libc::c_long, i32> {
        move |cmd, attr| {
            match cmd {
                BpfCommand::ObjGetInfoByFd => {
                    let a: InfoAttr = read_attr(attr);
                    let info = MapInfoRaw {
                        map_type,
                        key_size: 4,
                        value_size: 8,
                        name: *b"m\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                        ..Default::default()
                    };
                    // SAFETY: `obj_get_info` lends the kernel `info_len` bytes there.
                    write_attr(unsafe { user_bytes(a.info, a.info_len) }, info);
                }
                BpfCommand::MapLookupElem => {
                    let a: MapElemAttr = read_attr(attr);
                    assert_eq!((a.map_fd, a.flags), (3, 0));
                    // SAFETY: `map_lookup_elem` lends the value size (8) there.
                    unsafe { user_bytes(a.value, 8) }.copy_from_slice(&value.to_ne_bytes());
                }
                other => panic!("unexpected {other}"),
            }
            Ok(0)
        }
    }

    #[test]
    fn elements_are_checked_against_the_map_then_copied() {
        // SAFETY: an fd number only lent to the fake, never used as a file.
        let fd = unsafe { BorrowedFd::borrow_raw(3) };
        let mut value = [0u8; 8];
        with_fake(one_map(BPF_MAP_TYPE_ARRAY, 0x55), || {
            map_lookup_elem(fd, &0u32.to_ne_bytes(), &mut value)
        })
        .unwrap();
        assert_eq!(u64::from_ne_bytes(value), 0x55);

        let err = with_fake(one_map(BPF_MAP_TYPE_ARRAY, 0), || {
            map_update_elem(fd, &0u64.to_ne_bytes(), &value)
        })
        .unwrap_err();
        assert_eq!(
            err,
            BpfError::invalid(
                BpfCommand::MapUpdateElem,
                "map 'm' has 4-byte keys and 8-byte values, not 8 and 8".into()
            )
        );
        let err = with_fake(one_map(BPF_MAP_TYPE_PERCPU_ARRAY, 0), || {
            map_lookup_elem(fd, &0u32.to_ne_bytes(), &mut value)
        })
        .unwrap_err();
        assert_eq!(
            (err.command(), err.errno()),
            (BpfCommand::MapLookupElem, libc::EOPNOTSUPP)
        );
        assert_eq!(
            err.to_string(),
            "map 'm' is per-CPU, which this interface does not serve"
        );
    }

    #[test]
    fn creation_names_the_map_and_reports_the_errno() {
        let err = with_fake(
            |cmd, attr| {
                assert_eq!(cmd, BpfCommand::MapCreate);
                let a: MapCreateAttr = read_attr(attr);
                assert_eq!((a.map_type, a.key_size, a.value_size, a.max_entries), (2, 4, 100, 1));
                assert_eq!((a.map_flags, a.inner_map_fd, a.numa_node), (0, 0, 0));
                assert_eq!(&a.map_name, b"ksymrelo_blob\0\0\0");
                Err(libc::EPERM)
            },
            || map_create(BPF_MAP_TYPE_ARRAY, 4, 100, 1, "ksymrelo_blob"),
        )
        .unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::MapCreate, libc::EPERM));
    }
}
