//! The system calls ksymrelo makes — `bpf(2)`, `mmap(2)` and two queries
//! about open files — behind a safe API. This is the only module of the
//! crate with `unsafe`; every block says why it is sound.
//!
//! Attribute structs are the prefixes of `union bpf_attr` (UAPI
//! `linux/bpf.h`) that each command reads; the kernel treats a shorter
//! attribute as zero-extended. They have no implicit padding, so every byte
//! handed to the kernel is initialized (it refuses non-zero bytes in fields
//! a command does not use).
//!
//! Every buffer the kernel writes into is an exclusive borrow whose length is
//! either passed to the kernel or checked beforehand against what the kernel
//! will write (map keys and values against the map's sizes), so no safe call
//! can make the kernel write outside a borrow.
//!
//! Failures are `io::Error`s built from errno; where there is more to say (a
//! verifier log, a size mismatch) the message says it and [`errno`] still
//! recovers the number.

use std::ffi::{c_void, CStr};
use std::fmt;
use std::fs::File;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// `BPF_PROG_TYPE_SYSCALL`: programs run only through `BPF_PROG_TEST_RUN`,
/// with a context the caller passes in and gets back.
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;
/// `BPF_MAP_TYPE_HASH`.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_SLEEPABLE` (program flag; `BPF_PROG_TYPE_SYSCALL` programs need it
/// to call sleepable helpers such as `bpf_sys_bpf`).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_ANY`: create or replace a map element.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create a map element only if it does not exist.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: replace a map element only if it exists.
pub const BPF_EXIST: u64 = 2;

const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_BTF_LOAD: u32 = 18;
const BPF_BTF_GET_FD_BY_ID: u32 = 19;
const BPF_MAP_FREEZE: u32 = 22;
const BPF_BTF_GET_NEXT_ID: u32 = 23;

/// `BPF_OBJ_NAME_LEN`, counting the terminating NUL.
const BPF_OBJ_NAME_LEN: usize = 16;
/// Per-CPU map types, whose lookups write one value per possible CPU.
const PERCPU_MAP_TYPES: [u32; 4] = [5, 6, 10, 21];
/// The verifier refuses log buffers outside this range.
const LOG_SIZE_MIN: usize = 128;
const LOG_SIZE_MAX: usize = (u32::MAX >> 2) as usize;
/// `BPF_LD | BPF_DW | BPF_IMM` and `BPF_JMP | BPF_CALL`.
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;
/// `src_reg` values that make an instruction index into `fd_array`.
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
const BPF_PSEUDO_MAP_IDX: u8 = 5;
const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;
/// `statfs::f_type` of sysfs.
const SYSFS_MAGIC: u32 = 0x6265_6572;
/// Where the kernel exposes its BTF, immutable while it runs.
const SYSFS_BTF_DIR: &str = "/sys/kernel/btf/";

// No implicit padding (see the module docs), and the offsets of `linux/bpf.h`.
const _: () = {
    assert!(size_of::<GetIdAttr>() == 12);
    assert!(size_of::<InfoAttr>() == 16);
    assert!(size_of::<BtfInfoRaw>() == 32);
    assert!(size_of::<MapInfoRaw>() == 40);
    assert!(size_of::<ProgInfoRaw>() == 24);
    assert!(size_of::<BtfLoadAttr>() == 32);
    assert!(size_of::<ProgLoadAttr>() == 128);
    assert!(std::mem::offset_of!(ProgLoadAttr, fd_array) == 120);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(std::mem::offset_of!(TestRunAttr, batch_size) == 72);
    assert!(size_of::<MapCreateAttr>() == 44);
    assert!(size_of::<MapElemAttr>() == 32);
};

/// Calls `bpf(cmd, attr, sizeof(*attr))`; returns the non-negative result.
///
/// # Safety
///
/// `T` must be the attribute prefix `cmd` reads, and every pointer stored in
/// `attr` must be null or valid, for the whole call, for everything the
/// kernel reads through it for `cmd`, and — where the kernel writes through
/// it — exclusively borrowed and large enough for what it writes.
unsafe fn sys_bpf<T>(cmd: u32, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live exclusive borrow of exactly the size passed,
    // so the kernel reads and writes the attribute only inside it; pointers
    // inside it are valid by this function's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T as *mut c_void,
            size_of::<T>() as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of the fd a `bpf(2)` command returned.
///
/// # Safety
///
/// `ret` must be the result of a successful command that installs a new
/// descriptor (`*_LOAD`, `*_CREATE`, `*_GET_FD_BY_ID`): nothing else owns it.
unsafe fn new_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a fresh descriptor, owned by no one else (function contract).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An errno with a message saying more than `strerror`, and maybe a log.
#[derive(Debug)]
struct SysError {
    errno: i32,
    message: String,
    log: Option<String>,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(log) = &self.log {
            write!(f, "; verifier log:\n{log}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SysError {}

fn sys_error(errno: i32, message: String, log: Option<String>) -> io::Error {
    let kind = io::Error::from_raw_os_error(errno).kind();
    io::Error::new(kind, SysError { errno, message, log })
}

fn invalid(message: String) -> io::Error {
    sys_error(libc::EINVAL, message, None)
}

/// The errno of an error from this module (`raw_os_error` is `None` for the
/// errors that carry a longer message, such as a verifier log).
pub fn errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
        .or_else(|| err.get_ref()?.downcast_ref::<SysError>().map(|e| e.errno))
}

/// The verifier's (or BTF checker's) log attached to a failed
/// [`prog_load`] or [`btf_load`], if there was one.
pub fn verifier_log(err: &io::Error) -> Option<&str> {
    err.get_ref()?.downcast_ref::<SysError>()?.log.as_deref()
}

fn len_u32(len: usize, what: &str) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| invalid(format!("{what} is too large ({len} bytes)")))
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
fn obj_name(name: &str) -> [u8; BPF_OBJ_NAME_LEN] {
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    let n = name.len().min(BPF_OBJ_NAME_LEN - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

fn c_string(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
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
pub fn adopt_kernel_fd(fd: RawFd) -> Option<OwnedFd> {
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

/// Whether this process may use `bpf(2)` as ksymrelo does: one cheap
/// `BPF_BTF_GET_NEXT_ID` (which needs `CAP_SYS_ADMIN`, like walking module
/// BTFs). The error says why not (`EPERM`, `ENOSYS`, a seccomp filter's
/// errno).
pub fn bpf_available() -> io::Result<()> {
    btf_get_next_id(0).map(|_| ())
}

#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    start_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The first BTF object id after `start` (`None` after the last one).
pub fn btf_get_next_id(start: u32) -> io::Result<Option<u32>> {
    let mut attr = GetIdAttr {
        start_id: start,
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers.
    match unsafe { sys_bpf(BPF_BTF_GET_NEXT_ID, &mut attr) } {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new fd for the BTF object `id` (`ENOENT` if it went away meanwhile).
pub fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetIdAttr {
        start_id: id,
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers; the command returns a new fd.
    unsafe { new_fd(sys_bpf(BPF_BTF_GET_FD_BY_ID, &mut attr)?) }
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
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
unsafe fn obj_get_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    // SAFETY: `info` is exclusively borrowed for `info_len` bytes, which
    // bounds what the kernel writes there; its inner pointers are valid by
    // this function's contract.
    unsafe { sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }.map(|_| ())
}

#[repr(C)]
#[derive(Default)]
struct BtfInfoRaw {
    btf: u64,
    btf_size: u32,
    id: u32,
    name: u64,
    name_len: u32,
    kernel_btf: u32,
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

/// What kind of file `fd` is, as `/proc/self/fd` says: `anon_inode:btf`,
/// `anon_inode:bpf-map`, a path, ….
fn fd_target(fd: RawFd) -> io::Result<String> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    Ok(target.to_string_lossy().into_owned())
}

/// Refuses fds that are not BTF objects: `struct bpf_btf_info` holds user
/// pointers that the kernel would read as other fields (even as pointers to
/// write to) for another object type.
fn check_btf_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    let target = fd_target(fd.as_raw_fd())?;
    if target != "anon_inode:btf" {
        return Err(invalid(format!(
            "fd {} is not a BTF object but {target}",
            fd.as_raw_fd()
        )));
    }
    Ok(())
}

/// Id, name and kind of the BTF object `fd` (`EINVAL` for other fds).
pub fn btf_info(fd: BorrowedFd<'_>) -> io::Result<BtfInfo> {
    check_btf_fd(fd)?;
    // Module names are shorter than MODULE_NAME_LEN (64); the kernel
    // reports ENOSPC rather than truncating silently.
    let mut name = [0u8; 64];
    let mut info = BtfInfoRaw {
        name: name.as_mut_ptr() as u64,
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
pub fn btf_data(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
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
        return Err(sys_error(
            libc::EAGAIN,
            format!("BTF object changed size ({size} then {} bytes)", info.btf_size),
            None,
        ));
    }
    Ok(data)
}

#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    // Explicit so that it is zeroed (the kernel's `btf_log_true_size`,
    // an output).
    _pad: u32,
}

/// Loads a BTF blob into the kernel (`BPF_BTF_LOAD`; tests use it to make
/// BTF objects). On failure the load is repeated with a log, which the
/// error carries (see [`verifier_log`]).
pub fn btf_load(data: &[u8]) -> io::Result<OwnedFd> {
    let mut attr = BtfLoadAttr {
        btf: ptr_of(data),
        btf_size: len_u32(data.len(), "BTF")?,
        ..Default::default()
    };
    // SAFETY: `data` is live and `btf_size` bytes long; no log buffer.
    let err = match unsafe { sys_bpf(BPF_BTF_LOAD, &mut attr) } {
        // SAFETY: the command returns a new fd.
        Ok(fd) => return unsafe { new_fd(fd) },
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 16];
    attr.btf_log_buf = log.as_mut_ptr() as u64;
    attr.btf_log_size = log.len() as u32;
    attr.btf_log_level = 1;
    // SAFETY: as above, plus `log`, live and exclusively borrowed for
    // `btf_log_size` bytes, which bounds what the kernel writes.
    match unsafe { sys_bpf(BPF_BTF_LOAD, &mut attr) } {
        // SAFETY: the command returns a new fd.
        Ok(fd) => unsafe { new_fd(fd) },
        Err(e) => Err(with_log(e, &log).unwrap_or(err)),
    }
}

/// `err` with the text in `log` attached, or `None` if the log is empty.
fn with_log(err: io::Error, log: &[u8]) -> Option<io::Error> {
    let errno = err.raw_os_error()?;
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
    Some(sys_error(errno, err.to_string(), Some(log)))
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; BPF_OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
}

/// A program to load with [`prog_load`].
pub struct ProgLoad<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Instruction bytes, 8 per instruction, in host byte order.
    pub insns: &'a [u8],
    /// License; GPL-only helpers and kfuncs need a GPL-compatible one.
    pub license: &'a CStr,
    /// Name; the kernel keeps 15 bytes of letters, digits, `_` and `.`.
    pub name: Option<&'a str>,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// `BPF_*` expected attach type (0 where the type has none).
    pub expected_attach_type: u32,
    /// Descriptors the instructions refer to by index: maps
    /// (`BPF_PSEUDO_MAP_IDX[_VALUE]`) and module BTFs of kfunc calls (the
    /// call's `off`). Every such index must be in range.
    pub fd_array: Option<&'a [RawFd]>,
    /// Buffer for the verifier log of a failed load (at least 128 bytes to
    /// be used); its text is attached to the error.
    pub log: Option<&'a mut [u8]>,
    /// The program's BTF and `bpf_func_info` records (needed by programs
    /// that pass callbacks to helpers).
    pub btf: Option<ProgBtf<'a>>,
}

/// BTF of a program being loaded: the loaded BTF object and the
/// `struct bpf_func_info` records (`insn_off`, `type_id`, 8 bytes each).
#[derive(Clone, Copy, Debug)]
pub struct ProgBtf<'a> {
    /// A BTF object from [`btf_load`].
    pub fd: BorrowedFd<'a>,
    /// The records, in host byte order.
    pub func_info: &'a [u8],
}

/// Loads a program (`BPF_PROG_LOAD`).
///
/// The first attempt runs without a log: the verifier is faster without
/// one, and since Linux 6.4 a log that overflows fails even a valid
/// program with `ENOSPC`. If it fails and `log` is given, the load is
/// repeated at log level 1 and the error carries the log's text (the
/// kernel keeps the log's tail, which names the failure; see
/// [`verifier_log`]).
///
/// Errors: `EINVAL` for a length that is not a multiple of 8 or an
/// `fd_array` index out of range (checked here, so the kernel never reads
/// past the slice); otherwise the kernel's errno.
///
/// ```no_run
/// # use ksymrelo_std::sys::*;
/// let exit0 = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]; // r0 = 0; exit
/// let mut log = vec![0u8; 1 << 16];
/// let prog = prog_load(&mut ProgLoad {
///     prog_type: BPF_PROG_TYPE_SYSCALL,
///     insns: &exit0,
///     license: c"GPL",
///     name: Some("example"),
///     prog_flags: BPF_F_SLEEPABLE,
///     expected_attach_type: 0,
///     fd_array: None,
///     log: Some(&mut log),
///     btf: None,
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn prog_load(p: &mut ProgLoad<'_>) -> io::Result<OwnedFd> {
    if p.insns.len() % 8 != 0 {
        return Err(invalid(format!(
            "program is {} bytes, not a whole number of 8-byte instructions",
            p.insns.len()
        )));
    }
    check_fd_array_refs(p.insns, p.fd_array)?;
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt: len_u32(p.insns.len() / 8, "program")?,
        insns: ptr_of(p.insns),
        license: p.license.as_ptr() as u64,
        prog_flags: p.prog_flags,
        prog_name: obj_name(p.name.unwrap_or("")),
        expected_attach_type: p.expected_attach_type,
        fd_array: p.fd_array.map_or(0, |f| f.as_ptr() as u64),
        ..Default::default()
    };
    if let Some(btf) = &p.btf {
        if btf.func_info.len() % FUNC_INFO_SIZE != 0 {
            return Err(invalid("func_info is not a whole number of 8-byte records".into()));
        }
        attr.prog_btf_fd = btf.fd.as_raw_fd() as u32;
        attr.func_info_rec_size = FUNC_INFO_SIZE as u32;
        attr.func_info = ptr_of(btf.func_info);
        attr.func_info_cnt = len_u32(btf.func_info.len() / FUNC_INFO_SIZE, "func_info")?;
    }
    let err = match prog_load_attr(&mut attr) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let Some(log) = p.log.as_deref_mut().filter(|l| l.len() >= LOG_SIZE_MIN) else {
        return Err(err);
    };
    let len = log.len().min(LOG_SIZE_MAX);
    log[0] = 0;
    attr.log_level = 1;
    attr.log_size = len as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match prog_load_attr(&mut attr) {
        Ok(fd) => Ok(fd),
        Err(e) => Err(with_log(e, &log[..len]).unwrap_or(err)),
    }
}

/// `sizeof(struct bpf_func_info)`.
const FUNC_INFO_SIZE: usize = 8;

/// One `BPF_PROG_LOAD`, repeated (as libbpf does) while the verifier
/// reports `EAGAIN` (interrupted by a signal).
fn prog_load_attr(attr: &mut ProgLoadAttr) -> io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        // SAFETY: `prog_load` filled `attr` from live borrows it holds
        // across this call: `insns` (`insn_cnt` * 8 bytes), the
        // NUL-terminated license, `fd_array` (every index the instructions
        // use was checked to be in range), the func_info records
        // (`func_info_cnt` whole records) and, if set, the exclusively
        // borrowed log (`log_size` bytes, bounding the kernel's writes).
        match unsafe { sys_bpf(BPF_PROG_LOAD, attr) } {
            // SAFETY: the command returns a new fd.
            Ok(fd) => return unsafe { new_fd(fd) },
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Checks that every `fd_array` index in `insns` is within `fd_array`.
/// (Without an `fd_array`, the kernel refuses such indices itself.)
fn check_fd_array_refs(insns: &[u8], fd_array: Option<&[RawFd]>) -> io::Result<()> {
    let Some(fd_array) = fd_array else {
        return Ok(());
    };
    let mut at = 0;
    let mut chunks = insns.chunks_exact(8);
    while let Some(insn) = chunks.next() {
        let code = insn[0];
        let src_reg = if cfg!(target_endian = "little") {
            insn[1] >> 4
        } else {
            insn[1] & 0xf
        };
        let off = i16::from_ne_bytes([insn[2], insn[3]]);
        let imm = i32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
        let idx = match (code, src_reg) {
            (LD_IMM64, BPF_PSEUDO_MAP_IDX | BPF_PSEUDO_MAP_IDX_VALUE) => Some(i64::from(imm)),
            (CALL, BPF_PSEUDO_KFUNC_CALL) if off != 0 => Some(i64::from(off)),
            _ => None,
        };
        if let Some(idx) = idx {
            if idx < 0 || idx as u64 >= fd_array.len() as u64 {
                return Err(invalid(format!(
                    "instruction {at} refers to fd_array[{idx}], but fd_array has {} entries",
                    fd_array.len()
                )));
            }
        }
        // The second half of an ld_imm64 is not an instruction.
        let width = if code == LD_IMM64 { 2 } else { 1 };
        if width == 2 {
            chunks.next();
        }
        at += width;
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct ProgInfoRaw {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
}

/// What the kernel says about a loaded program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Program id.
    pub id: u32,
    /// Size of the JIT-compiled code in bytes (0 without the JIT).
    pub jited_len: u32,
    /// Size of the instructions after the verifier's rewrites, in bytes.
    pub xlated_len: u32,
}

/// Type, id and sizes of the program `fd`.
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    let mut info = ProgInfoRaw::default();
    // SAFETY: an all-zero prefix (of `struct bpf_prog_info`): no pointers
    // and zero lengths whatever kind of object `fd` is.
    unsafe { obj_get_info(fd, &mut info)? };
    Ok(ProgInfo {
        prog_type: info.prog_type,
        id: info.id,
        jited_len: info.jited_prog_len,
        xlated_len: info.xlated_prog_len,
    })
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    // Explicit so that it is zeroed (see the module docs).
    _pad: u32,
}

/// Buffers and options of one [`prog_test_run_with`].
///
/// What a program type accepts differs: `BPF_PROG_TYPE_SYSCALL` programs
/// take only `ctx_in`, which they may modify and which the kernel copies
/// back into the same buffer (hence `&mut`); they refuse `ctx_out`, data
/// and `repeat` with `EINVAL`. Packet programs (XDP, tc, …) take data in
/// and out, an optional context and `repeat`.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Context passed to the program (syscall programs: written back).
    pub ctx_in: Option<&'a mut [u8]>,
    /// Buffer for the context after the run (not for syscall programs).
    pub ctx_out: Option<&'a mut [u8]>,
    /// Packet data passed to the program.
    pub data_in: Option<&'a [u8]>,
    /// Buffer for the packet data after the run.
    pub data_out: Option<&'a mut [u8]>,
    /// Number of runs to average `duration` over (0 means 1).
    pub repeat: u32,
}

/// What a [`prog_test_run_with`] reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (of the last run).
    pub retval: u32,
    /// Average run time in ns (0 for syscall programs, which the kernel
    /// does not time).
    pub duration: u32,
    /// Size of the data the program produced (may exceed `data_out`, in
    /// which case the kernel failed the run with `ENOSPC`).
    pub data_size_out: u32,
    /// Size of the context the program produced, likewise.
    pub ctx_size_out: u32,
}

/// Runs a `BPF_PROG_TYPE_SYSCALL` program once (`BPF_PROG_TEST_RUN`) with
/// `ctx` as its context; the kernel copies the context back into `ctx`.
pub fn prog_test_run(fd: BorrowedFd<'_>, ctx: Option<&mut [u8]>) -> io::Result<TestRunResult> {
    prog_test_run_with(
        fd,
        &mut TestRun {
            ctx_in: ctx,
            ..Default::default()
        },
    )
}

/// Runs a program with `BPF_PROG_TEST_RUN` (see [`TestRun`] for what each
/// program type accepts).
pub fn prog_test_run_with(fd: BorrowedFd<'_>, run: &mut TestRun<'_>) -> io::Result<TestRunResult> {
    let mut attr = TestRunAttr {
        prog_fd: fd.as_raw_fd() as u32,
        repeat: run.repeat,
        ..Default::default()
    };
    if let Some(ctx) = run.ctx_in.as_deref_mut() {
        attr.ctx_size_in = len_u32(ctx.len(), "ctx_in")?;
        attr.ctx_in = ptr_of_mut(ctx);
    }
    if let Some(ctx) = run.ctx_out.as_deref_mut() {
        attr.ctx_size_out = len_u32(ctx.len(), "ctx_out")?;
        attr.ctx_out = ptr_of_mut(ctx);
    }
    if let Some(data) = run.data_in {
        attr.data_size_in = len_u32(data.len(), "data_in")?;
        attr.data_in = ptr_of(data);
    }
    if let Some(data) = run.data_out.as_deref_mut() {
        attr.data_size_out = len_u32(data.len(), "data_out")?;
        attr.data_out = ptr_of_mut(data);
    }
    // SAFETY: every pointer comes from a borrow in `run`, live across the
    // call, with its length beside it; the kernel reads at most those
    // lengths and writes at most `ctx_size_in` bytes to `ctx_in` (syscall
    // programs; the borrow is exclusive), `ctx_size_out` to `ctx_out` and
    // `data_size_out` to `data_out`, all exclusively borrowed.
    unsafe { sys_bpf(BPF_PROG_TEST_RUN, &mut attr)? };
    Ok(TestRunResult {
        retval: attr.retval,
        duration: attr.duration,
        data_size_out: attr.data_size_out,
        ctx_size_out: attr.ctx_size_out,
    })
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; BPF_OBJ_NAME_LEN],
}

/// Creates a map (`BPF_MAP_CREATE`) without flags; `name` is cut to 15
/// bytes (letters, digits, `_` and `.`).
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, name: &str) -> io::Result<OwnedFd> {
    map_create_with_flags(map_type, key_size, value_size, max_entries, 0, name)
}

/// Creates a map (`BPF_MAP_CREATE`) with `BPF_F_*` map flags.
pub fn map_create_with_flags(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: &str,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        map_name: obj_name(name),
        ..Default::default()
    };
    // SAFETY: the attribute holds no pointers; the command returns a new fd.
    unsafe { new_fd(sys_bpf(BPF_MAP_CREATE, &mut attr)?) }
}

#[repr(C)]
#[derive(Default)]
struct MapInfoRaw {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; BPF_OBJ_NAME_LEN],
}

/// What the kernel says about a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub map_flags: u32,
    /// Name.
    pub name: String,
}

/// Type, id, sizes and name of the map `fd`.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = MapInfoRaw::default();
    // SAFETY: an all-zero prefix (of `struct bpf_map_info`): no pointers
    // and zero lengths whatever kind of object `fd` is.
    unsafe { obj_get_info(fd, &mut info)? };
    Ok(MapInfo {
        map_type: info.map_type,
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
        name: c_string(&info.name),
    })
}

/// Checks `key` and a value of `value_len` bytes against the map's sizes:
/// the kernel copies exactly `key_size` and `value_size` bytes.
fn check_elem(fd: BorrowedFd<'_>, key: &[u8], value_len: usize) -> io::Result<()> {
    let info = map_info(fd)?;
    if PERCPU_MAP_TYPES.contains(&info.map_type) {
        return Err(sys_error(
            libc::EOPNOTSUPP,
            format!("map '{}' is per-CPU, which this interface does not serve", info.name),
            None,
        ));
    }
    if key.len() != info.key_size as usize || value_len != info.value_size as usize {
        return Err(invalid(format!(
            "map '{}' has {}-byte keys and {}-byte values, not {} and {}",
            info.name,
            info.key_size,
            info.value_size,
            key.len(),
            value_len
        )));
    }
    Ok(())
}

#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Sets the element `key` of the map `fd` to `value`, creating or
/// replacing it (`BPF_MAP_UPDATE_ELEM`, `BPF_ANY`). `key` and `value` must
/// have the map's sizes (`EINVAL` otherwise; per-CPU maps: `EOPNOTSUPP`).
pub fn map_update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    map_update_elem_with_flags(fd, key, value, BPF_ANY)
}

/// [`map_update_elem`] with flags (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
pub fn map_update_elem_with_flags(fd: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    check_elem(fd, key, value.len())?;
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        _pad: 0,
        key: ptr_of(key),
        value: ptr_of(value),
        flags,
    };
    // SAFETY: `key` and `value` are live and exactly the map's key and
    // value sizes (checked above), which is what the kernel reads.
    unsafe { sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(|_| ())
}

/// Copies the element `key` of the map `fd` into `value`
/// (`BPF_MAP_LOOKUP_ELEM`). Sizes as for [`map_update_elem`].
pub fn map_lookup_elem(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    check_elem(fd, key, value.len())?;
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        _pad: 0,
        key: ptr_of(key),
        value: ptr_of_mut(value),
        flags: 0,
    };
    // SAFETY: `key` is live and the map's key size; `value` is exclusively
    // borrowed and exactly the map's value size (checked above, per-CPU
    // maps refused), which is what the kernel writes.
    unsafe { sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }.map(|_| ())
}

/// Makes the map `fd` read-only for user space (`BPF_MAP_FREEZE`).
pub fn map_freeze(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = [fd.as_raw_fd() as u32];
    // SAFETY: the attribute (just `map_fd`) holds no pointers.
    unsafe { sys_bpf(BPF_MAP_FREEZE, &mut attr) }.map(|_| ())
}

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

/// Number of open descriptors of this process, for leak tests (the count
/// includes the one that reads `/proc/self/fd`, the same every time).
pub fn fd_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, IntoRawFd};

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    fn require_kernel() -> bool {
        std::env::var("KSYMRELO_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
    }

    /// Whether the test may use bpf(2); says so loudly when it may not.
    fn kernel(test: &str) -> bool {
        match bpf_available() {
            Ok(()) => true,
            Err(e) if require_kernel() => panic!("{test}: bpf(2) not permitted ({e}) but KSYMRELO_REQUIRE_KERNEL=1"),
            Err(e) => {
                eprintln!("SKIP {test}: bpf(2) not permitted: {e}");
                false
            }
        }
    }

    fn insn(code: u8, regs: u8, off: i16, imm: i32) -> [u8; 8] {
        let mut b = [code, regs, 0, 0, 0, 0, 0, 0];
        b[2..4].copy_from_slice(&off.to_ne_bytes());
        b[4..8].copy_from_slice(&imm.to_ne_bytes());
        b
    }

    // r0 = 42; exit
    fn ret42() -> Vec<u8> {
        [insn(0xb7, 0x00, 0, 42), insn(0x95, 0, 0, 0)].concat()
    }

    // r2 = 7; *(u64 *)(r1 + 0) = r2; r0 = 0; exit
    fn writes_ctx() -> Vec<u8> {
        [
            insn(0xb7, 0x02, 0, 7),
            insn(0x7b, 0x21, 0, 0),
            insn(0xb7, 0x00, 0, 0),
            insn(0x95, 0, 0, 0),
        ]
        .concat()
    }

    fn load_syscall(insns: &[u8], fd_array: Option<&[RawFd]>, log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
        prog_load(&mut ProgLoad {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insns,
            license: c"GPL",
            name: Some("ksymrelo_test"),
            // The verifier refuses syscall programs that are not sleepable.
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            fd_array,
            log,
            btf: None,
        })
    }

    /// A BTF blob with one type, `int`.
    fn int_btf() -> Vec<u8> {
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

    #[test]
    fn vmlinux_btf_objects_hold_the_sysfs_bytes() {
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
    }

    #[test]
    fn btf_loads_and_reads_back() {
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
        let map = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 1, "ksymrelo_nobtf").unwrap();
        assert_eq!(errno(&btf_info(map.as_fd()).unwrap_err()), Some(libc::EINVAL));
        assert_eq!(errno(&btf_data(map.as_fd()).unwrap_err()), Some(libc::EINVAL));

        // A 33-bit int is malformed; the checker's log says why.
        let mut bad = blob.clone();
        bad[24 + 12..24 + 16].copy_from_slice(&33u32.to_ne_bytes());
        let err = btf_load(&bad).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EINVAL));
        assert!(verifier_log(&err).is_some_and(|log| !log.is_empty()), "{err}");
    }

    #[test]
    fn vmlinux_mmap_equals_read() {
        let Ok(file) = File::open(VMLINUX) else {
            assert!(!require_kernel(), "no {VMLINUX}");
            eprintln!("SKIP vmlinux_mmap_equals_read: no {VMLINUX}");
            return;
        };
        let map = match Mmap::map(&file) {
            Ok(map) => map,
            // Before Linux 6.16 sysfs did not map BTF.
            Err(e) if !require_kernel() => {
                eprintln!("SKIP vmlinux_mmap_equals_read: {VMLINUX} not mappable: {e}");
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
    fn only_kernel_btf_is_mapped() {
        let exe = File::open(std::env::current_exe().unwrap()).unwrap();
        let err = Mmap::map(&exe).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        if let Ok(file) = File::open("/sys/kernel/notes") {
            // sysfs, but not BTF.
            assert_eq!(Mmap::map(&file).unwrap_err().kind(), io::ErrorKind::Unsupported);
        }
    }

    #[test]
    fn syscall_programs_run() {
        if !kernel("syscall_programs_run") {
            return;
        }
        let fd = load_syscall(&ret42(), None, None).unwrap();
        let info = prog_info(fd.as_fd()).unwrap();
        assert_eq!(info.prog_type, BPF_PROG_TYPE_SYSCALL);
        assert!(info.id > 0 && info.xlated_len > 0);
        let r = prog_test_run(fd.as_fd(), None).unwrap();
        assert_eq!(r.retval, 42);
        // The kernel does not time syscall programs.
        assert_eq!(r.duration, 0);

        let fd = load_syscall(&writes_ctx(), None, None).unwrap();
        let mut ctx = [0xffu8; 12];
        let r = prog_test_run_with(
            fd.as_fd(),
            &mut TestRun {
                ctx_in: Some(&mut ctx),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.retval, 0);
        // Written back in place; bytes the program left alone are kept.
        assert_eq!(ctx, [7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);

        // The context must cover every offset the program touches...
        let mut short = [0u8; 4];
        assert_eq!(
            prog_test_run(fd.as_fd(), Some(&mut short)).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        assert_eq!(
            prog_test_run(fd.as_fd(), None).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        // ...and syscall programs take neither ctx_out nor data nor repeat.
        let mut ctx = [0u8; 8];
        let mut out = [0u8; 8];
        let refused = [
            TestRun {
                ctx_in: Some(&mut ctx),
                ctx_out: Some(&mut out),
                ..Default::default()
            },
            TestRun {
                data_in: Some(&[0u8; 8]),
                ..Default::default()
            },
            TestRun {
                repeat: 2,
                ..Default::default()
            },
        ];
        for mut run in refused {
            assert_eq!(
                prog_test_run_with(fd.as_fd(), &mut run).unwrap_err().raw_os_error(),
                Some(libc::EINVAL)
            );
        }
    }

    #[test]
    fn refused_programs_carry_the_verifier_log() {
        if !kernel("refused_programs_carry_the_verifier_log") {
            return;
        }
        // exit without setting r0
        let bad = insn(0x95, 0, 0, 0);
        let mut log = vec![0u8; 1 << 16];
        let err = load_syscall(&bad, None, Some(&mut log)).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EACCES));
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            verifier_log(&err).is_some_and(|log| log.contains("R0 !read_ok")),
            "{err}"
        );
        assert!(err.to_string().contains("verifier log:\n"), "{err}");

        // Without a log (or with one too small for the kernel): the bare errno.
        let err = load_syscall(&bad, None, None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
        let err = load_syscall(&bad, None, Some(&mut [0u8; 64])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));

        // A small log does not fail a valid program (the kernel would, with
        // ENOSPC, had the log been used).
        load_syscall(&ret42(), None, Some(&mut [0u8; 128])).unwrap();

        let err = load_syscall(&bad[..7], None, None).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EINVAL));
    }

    #[test]
    fn maps_roundtrip() {
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
                &info.name[..]
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
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));

        // Sizes are checked before the kernel copies anything.
        let err = map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EINVAL));
        assert!(err.to_string().contains("16-byte values"), "{err}");
        let err = map_update_elem(map.as_fd(), &0u64.to_ne_bytes(), &value).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EINVAL));
        let percpu = map_create(6, 4, 8, 1, "ksymrelo_pcpu").unwrap();
        let err = map_lookup_elem(percpu.as_fd(), &0u32.to_ne_bytes(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EOPNOTSUPP));

        let hash = map_create_with_flags(BPF_MAP_TYPE_HASH, 4, 16, 4, 0, "ksymrelo_h").unwrap();
        map_update_elem_with_flags(hash.as_fd(), &3u32.to_ne_bytes(), &value, BPF_NOEXIST).unwrap();
        let err = map_update_elem_with_flags(hash.as_fd(), &3u32.to_ne_bytes(), &value, BPF_NOEXIST).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));

        map_freeze(map.as_fd()).unwrap();
        let err = map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &value).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        map_lookup_elem(map.as_fd(), &1u32.to_ne_bytes(), &mut back).unwrap();
    }

    #[test]
    fn programs_reach_maps_through_fd_array() {
        if !kernel("programs_reach_maps_through_fd_array") {
            return;
        }
        let map = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "ksymrelo_fda").unwrap();
        map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &0x1234_5678u64.to_ne_bytes()).unwrap();
        // r1 = &map_value(fd_array[0]); r0 = *(u64 *)(r1 + 0); exit
        let prog = |idx: i32| {
            [
                insn(0x18, 6 << 4 | 1, 0, idx),
                insn(0, 0, 0, 0),
                insn(0x79, 0x10, 0, 0),
                insn(0x95, 0, 0, 0),
            ]
            .concat()
        };
        let fd_array = [map.as_fd().as_raw_fd()];
        let fd = load_syscall(&prog(0), Some(&fd_array), None).unwrap();
        assert_eq!(prog_test_run(fd.as_fd(), None).unwrap().retval, 0x1234_5678);

        let err = load_syscall(&prog(1), Some(&fd_array), None).unwrap_err();
        assert_eq!(errno(&err), Some(libc::EINVAL));
        assert!(err.to_string().contains("fd_array[1]"), "{err}");
        // A kfunc call's module slot is checked too.
        let call = insn(0x85, 2 << 4, 3, 1);
        let err = load_syscall(&call, Some(&fd_array), None).unwrap_err();
        assert!(err.to_string().contains("fd_array[3]"), "{err}");
    }

    #[test]
    fn kernel_fds_are_adopted_only_if_bpf_objects() {
        if !kernel("kernel_fds_are_adopted_only_if_bpf_objects") {
            return;
        }
        assert!(adopt_kernel_fd(-1).is_none());
        let raw = btf_load(&int_btf()).unwrap().into_raw_fd();
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

    /// Every test above, for [`no_descriptor_leaks`].
    const ALL: [fn(); 9] = [
        vmlinux_btf_objects_hold_the_sysfs_bytes,
        btf_loads_and_reads_back,
        vmlinux_mmap_equals_read,
        only_kernel_btf_is_mapped,
        syscall_programs_run,
        refused_programs_carry_the_verifier_log,
        maps_roundtrip,
        programs_reach_maps_through_fd_array,
        kernel_fds_are_adopted_only_if_bpf_objects,
    ];

    const LEAK_CHILD: &str = "KSYMRELO_SYS_FD_LEAK_CHILD";

    /// Runs every test of this module again in a process of its own (other
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
