//! The system calls ksymrelo makes — `bpf(2)`, `mmap(2)` and two queries
//! about open files — behind a safe API, split by object kind. This is the
//! only module of the crate with `unsafe`; every block says why it is sound.
//!
//! Every `bpf(2)` goes through [`bpf`], the one choke point (in tests a
//! per-thread fake can stand in for the kernel there, see `fake`). Every
//! buffer the kernel writes into is an exclusive borrow whose length is
//! either passed to the kernel or checked beforehand against what the kernel
//! will write (map keys and values against the map's sizes), so no safe call
//! can make the kernel write outside a borrow.
//!
//! Failures are [`BpfError`]s: the command, the errno, and a message or
//! verifier log where there is more to say.

mod btf;
mod error;
#[cfg(test)]
mod fake;
mod fd;
mod keyring;
mod map;
mod mmap;
mod prog;
mod uapi;

use std::ffi::c_void;
use std::io;
use std::mem::size_of;
use std::os::fd::OwnedFd;

pub(crate) use btf::{btf_data, btf_get_fd_by_id, btf_get_next_id};
pub use btf::{btf_info, btf_load, btf_objects, BtfInfo, BtfObject};
pub use error::BpfError;
pub(crate) use fd::adopt_kernel_fd;
pub(crate) use keyring::check_keyring;
pub(crate) use map::{exclusive_array_create, map_create, map_freeze, map_hash, map_lookup_elem, map_update_elem};
pub use mmap::Mmap;
pub(crate) use prog::loader_test_run;
pub(crate) use prog::{prog_load, ProgBtf, ProgLoad, ProgSignature};
pub use prog::{prog_test_run, TestRun, TestRunResult};
pub(crate) use uapi::BPF_MAP_TYPE_ARRAY;
pub use uapi::{BpfCommand, BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};

/// Calls `bpf(cmd, attr, sizeof(*attr))`; returns the non-negative result.
///
/// # Safety
///
/// `T` must be the attribute prefix `cmd` reads (a [`uapi`] struct, without
/// padding), and every pointer stored in `attr` must be null or valid, for
/// the whole call, for everything the kernel reads through it for `cmd`,
/// and — where the kernel writes through it — exclusively borrowed and
/// large enough for what it writes.
unsafe fn bpf<T>(cmd: BpfCommand, attr: &mut T) -> Result<libc::c_long, BpfError> {
    #[cfg(test)]
    {
        // SAFETY: `attr` is a live exclusive borrow of `size_of::<T>()`
        // bytes, all initialized (no padding, by this function's contract).
        let bytes = unsafe { std::slice::from_raw_parts_mut((attr as *mut T).cast::<u8>(), size_of::<T>()) };
        if let Some(answer) = fake::answer(cmd, bytes) {
            return answer.map_err(|errno| BpfError::from_errno(cmd, errno));
        }
    }
    // SAFETY: `attr` is a live exclusive borrow of exactly the size passed,
    // so the kernel reads and writes the attribute only inside it; pointers
    // inside it are valid by this function's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            (attr as *mut T).cast::<c_void>(),
            size_of::<T>() as libc::c_long,
        )
    };
    if ret < 0 {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        Err(BpfError::from_errno(cmd, errno))
    } else {
        Ok(ret)
    }
}

/// [`bpf`] for a command that returns a new descriptor, which it owns.
///
/// # Safety
///
/// As for [`bpf`], and `cmd` must install a new descriptor on success
/// (`*_LOAD`, `*_CREATE`, `*_GET_FD_BY_ID`).
unsafe fn bpf_fd<T>(cmd: BpfCommand, attr: &mut T) -> Result<OwnedFd, BpfError> {
    // SAFETY: this function's contract.
    let ret = unsafe { bpf(cmd, attr)? };
    // SAFETY: `cmd` installed `ret` as a new descriptor (contract).
    unsafe { fd::new_fd(cmd, ret) }
}

/// Whether this process may use `bpf(2)` as ksymrelo does: one cheap
/// `BPF_BTF_GET_NEXT_ID` (which needs `CAP_SYS_ADMIN`, like walking module
/// BTFs). The error says why not (`EPERM`, `ENOSYS`, a seccomp filter's
/// errno).
pub fn bpf_available() -> Result<(), BpfError> {
    btf_get_next_id(0).map(|_| ())
}

fn len_u32(cmd: BpfCommand, len: usize, what: &str) -> Result<u32, BpfError> {
    u32::try_from(len).map_err(|_| BpfError::invalid(cmd, format!("{what} is too large ({len} bytes)")))
}

/// A user pointer for the kernel: null for an empty slice (the kernel treats
/// "size 0, null" as absent, but may refuse a dangling non-null pointer).
fn ptr_of(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        0
    } else {
        bytes.as_ptr() as u64
    }
}

fn ptr_of_mut(bytes: &mut [u8]) -> u64 {
    if bytes.is_empty() {
        0
    } else {
        bytes.as_mut_ptr() as u64
    }
}

/// A NUL-terminated object name of at most 15 bytes (the kernel's limit).
fn obj_name(name: &str) -> [u8; uapi::BPF_OBJ_NAME_LEN] {
    let mut out = [0u8; uapi::BPF_OBJ_NAME_LEN];
    let n = name.len().min(uapi::BPF_OBJ_NAME_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// The text of a NUL-terminated buffer the kernel filled.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// Helpers of the tests of every `sys` module.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use super::fake::{read_attr, user_bytes, with_fake, write_attr};

    pub(crate) use ksymrelo_test_skip::kernel_required as require_kernel;

    /// Whether the test may use bpf(2); says so loudly when it may not.
    pub(crate) fn kernel(test: &str) -> bool {
        match super::bpf_available() {
            Ok(()) => true,
            Err(e) if require_kernel() => panic!("{test}: bpf(2) not permitted ({e}) but KSYMRELO_REQUIRE_KERNEL=1"),
            Err(e) => {
                ksymrelo_test_skip::skip(format_args!("bpf(2) not permitted: {e}"));
                false
            }
        }
    }
}
