//! The system calls ksymrelo makes — `bpf(2)` and `mmap(2)` — behind a safe
//! API. This is the only module of the crate with `unsafe`; every block says
//! why it is sound.
//!
//! Attribute structs mirror the prefixes of `union bpf_attr` (from
//! `linux/bpf.h`) that each command uses; the kernel accepts a shorter
//! attribute as long as the size passed matches.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `BPF_PROG_TYPE_SYSCALL`.
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;
/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_SLEEPABLE`.
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;

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

// Attribute structs must have no implicit padding: padding bytes are not
// initialized, and the kernel refuses non-zero bytes it does not know.
const _: () = {
    assert!(std::mem::size_of::<TestRunAttr>() == 80);
    assert!(std::mem::size_of::<BtfLoadAttr>() == 32);
    assert!(std::mem::size_of::<ProgLoadAttr>() == 128);
    assert!(std::mem::size_of::<MapCreateAttr>() == 44);
    assert!(std::mem::size_of::<BtfInfoRaw>() == 32);
};

/// Calls `bpf(cmd, attr, size_of(attr))`.
fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` attribute
    // struct of the layout the kernel expects for `cmd`, and its exact size
    // is passed, so the kernel reads and writes only inside it. Pointers
    // stored in it were derived from live borrows held by the caller for the
    // duration of this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of an fd the kernel just returned.
fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` was just returned by a successful bpf(2) call that
    // creates a new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes ownership of a descriptor the kernel installed in this process
/// on our behalf outside a syscall's return value — e.g. a module BTF fd
/// written into a map value by an in-kernel loader program.
///
/// The caller must know that nothing else owns `fd`: it is closed when the
/// returned `OwnedFd` drops. Returns `None` for negative values.
pub fn adopt_kernel_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // Verify it is open before claiming it.
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the caller guarantees no other owner (see above); the fd is
    // open, as just checked.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `bpf(2)` is permitted here (a cheap BTF id query).
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

/// The next BTF object id after `start` (None when there is none).
pub fn btf_get_next_id(start: u32) -> io::Result<Option<u32>> {
    let mut attr = GetIdAttr {
        start_id: start,
        ..Default::default()
    };
    match bpf(BPF_BTF_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An fd for the BTF object `id`.
pub fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetIdAttr {
        start_id: id,
        ..Default::default()
    };
    owned(bpf(BPF_BTF_GET_FD_BY_ID, &mut attr)?)
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

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// What the kernel says about a BTF object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfInfo {
    /// Object id.
    pub id: u32,
    /// "vmlinux", a module name, or "" for program BTF.
    pub name: String,
    /// Kernel (vmlinux or module) BTF rather than loaded by a program.
    pub kernel_btf: bool,
    /// Size of the raw BTF.
    pub btf_size: u32,
}

fn btf_info_raw(fd: BorrowedFd<'_>, info: &mut BtfInfoRaw) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<BtfInfoRaw>() as u32,
        info: info as *mut BtfInfoRaw as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(|_| ())
}

/// Id, name and kind of a BTF object.
pub fn btf_info(fd: BorrowedFd<'_>) -> io::Result<BtfInfo> {
    let mut name = [0u8; 64];
    let mut info = BtfInfoRaw {
        name: name.as_mut_ptr() as u64,
        name_len: name.len() as u32,
        ..Default::default()
    };
    btf_info_raw(fd, &mut info)?;
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(BtfInfo {
        id: info.id,
        name: String::from_utf8_lossy(&name[..len]).into_owned(),
        kernel_btf: info.kernel_btf != 0,
        btf_size: info.btf_size,
    })
}

/// The raw BTF of a BTF object (for a module: split BTF over vmlinux).
pub fn btf_data(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let size = btf_info(fd)?.btf_size;
    let mut data = vec![0u8; size as usize];
    let mut info = BtfInfoRaw {
        btf: data.as_mut_ptr() as u64,
        btf_size: size,
        ..Default::default()
    };
    btf_info_raw(fd, &mut info)?;
    data.truncate(info.btf_size.min(size) as usize);
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
    _pad: u32,
}

/// Loads a BTF blob into the kernel (tests use it to make BTF objects).
pub fn btf_load(data: &[u8]) -> io::Result<OwnedFd> {
    let mut attr = BtfLoadAttr {
        btf: data.as_ptr() as u64,
        btf_size: data.len() as u32,
        ..Default::default()
    };
    owned(bpf(BPF_BTF_LOAD, &mut attr)?)
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
    prog_name: [u8; 16],
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

/// A program to load.
pub struct ProgLoad<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Instruction bytes (a multiple of 8).
    pub insns: &'a [u8],
    /// License string.
    pub license: &'a CStr,
    /// Name (at most 15 bytes are kept).
    pub name: Option<&'a str>,
    /// `BPF_F_*` flags.
    pub prog_flags: u32,
    /// Expected attach type.
    pub expected_attach_type: u32,
    /// fd_array (maps by index, module BTF fds for kfuncs).
    pub fd_array: Option<&'a [RawFd]>,
    /// Verifier log buffer; its text is added to the error on failure.
    pub log: Option<&'a mut [u8]>,
}

/// `BPF_PROG_LOAD`.
pub fn prog_load(p: &mut ProgLoad<'_>) -> io::Result<OwnedFd> {
    if p.insns.len() % 8 != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt: (p.insns.len() / 8) as u32,
        insns: p.insns.as_ptr() as u64,
        license: p.license.as_ptr() as u64,
        prog_flags: p.prog_flags,
        expected_attach_type: p.expected_attach_type,
        fd_array: p.fd_array.map_or(0, |f| f.as_ptr() as u64),
        ..Default::default()
    };
    if let Some(name) = p.name {
        let n = name.len().min(15);
        attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    }
    if let Some(log) = p.log.as_deref_mut() {
        if !log.is_empty() {
            log[0] = 0;
            attr.log_level = 1;
            attr.log_size = log.len().min(u32::MAX as usize) as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
    }
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => owned(fd),
        Err(e) => {
            let text = p.log.as_deref().map_or(String::new(), |log| {
                let len = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                String::from_utf8_lossy(&log[..len]).trim_end().to_owned()
            });
            if text.is_empty() {
                Err(e)
            } else {
                Err(io::Error::new(e.kind(), format!("{e}; verifier log:\n{text}")))
            }
        }
    }
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
    // Explicit, so it is zeroed: the kernel refuses non-zero bytes past the
    // last field it knows.
    _pad: u32,
}

/// Result of [`prog_test_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value.
    pub retval: u32,
    /// Average run time in ns.
    pub duration: u32,
}

/// `BPF_PROG_TEST_RUN` of a `BPF_PROG_TYPE_SYSCALL` program: the kernel
/// passes `ctx` to the program and copies it back into the same buffer
/// (syscall programs refuse `ctx_out`, data, repeat and flags).
pub fn prog_test_run(fd: BorrowedFd<'_>, ctx: Option<&mut [u8]>) -> io::Result<TestRunResult> {
    let mut attr = TestRunAttr {
        prog_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    if let Some(ctx) = ctx {
        attr.ctx_size_in = ctx.len() as u32;
        attr.ctx_in = ctx.as_ptr() as u64;
    }
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(TestRunResult {
        retval: attr.retval,
        duration: attr.duration,
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
    map_name: [u8; 16],
}

/// `BPF_MAP_CREATE`.
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, name: &str) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        ..Default::default()
    };
    let n = name.len().min(15);
    attr.map_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    owned(bpf(BPF_MAP_CREATE, &mut attr)?)
}

#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `BPF_MAP_UPDATE_ELEM`. `value` must be the map's value size.
pub fn map_update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
}

/// `BPF_MAP_LOOKUP_ELEM`. `value` must be the map's value size.
pub fn map_lookup_elem(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).map(|_| ())
}

/// `BPF_MAP_FREEZE`.
pub fn map_freeze(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = [fd.as_raw_fd() as u32];
    bpf(BPF_MAP_FREEZE, &mut attr).map(|_| ())
}

/// A read-only private mapping of a whole file.
pub struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; sharing
// immutable bytes between threads is sound.
unsafe impl Send for Mmap {}
// SAFETY: as above: only `&[u8]` access is ever given out.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `file` (its current size). Fails for empty files and where the
    /// file system refuses `mmap`.
    pub fn map(file: &File) -> io::Result<Mmap> {
        let len = usize::try_from(file.metadata()?.len()).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh private read-only mapping of an open fd; the
        // kernel picks the address; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }
}

impl std::ops::Deref for Mmap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is a live read-only mapping owned by self
        // until drop. (sysfs and /proc files do not shrink under a mapping
        // in a way that invalidates mapped pages of a fixed-size blob.)
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping this value owns, once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Number of open file descriptors of this process (for leak tests).
pub fn fd_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Tests that count fds run one at a time.
    static FD_COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn usable(test: &str) -> bool {
        match bpf_available() {
            Ok(()) => true,
            Err(e) if std::env::var("KSYMRELO_REQUIRE_KERNEL").is_ok_and(|v| v == "1") => {
                panic!("{test}: bpf(2) unusable ({e}) but KSYMRELO_REQUIRE_KERNEL=1")
            }
            Err(e) => {
                eprintln!("SKIP {test}: bpf(2) not permitted: {e}");
                false
            }
        }
    }

    fn insn(code: u8, regs: u8, off: i16, imm: i32) -> [u8; 8] {
        let mut b = [code, regs, 0, 0, 0, 0, 0, 0];
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        b
    }

    #[test]
    fn vmlinux_btf_object_matches_sysfs_and_mmap() {
        if !usable("vmlinux_btf_object_matches_sysfs_and_mmap") {
            return;
        }
        let _serial = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let before = fd_count().unwrap();
        let file_bytes = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
        let map = Mmap::map(&File::open("/sys/kernel/btf/vmlinux").unwrap()).unwrap();
        assert_eq!(&map[..], &file_bytes[..]);
        let mut id = 0;
        let mut found = false;
        while let Some(next) = btf_get_next_id(id).unwrap() {
            id = next;
            let Ok(fd) = btf_get_fd_by_id(id) else {
                continue;
            };
            let info = btf_info(fd.as_fd()).unwrap();
            if info.kernel_btf && info.name == "vmlinux" {
                assert_eq!(btf_data(fd.as_fd()).unwrap(), file_bytes);
                found = true;
            }
        }
        assert!(found, "no vmlinux BTF object");
        drop(map);
        assert_eq!(fd_count().unwrap(), before);
    }

    #[test]
    fn syscall_program_writes_its_context_and_maps_roundtrip() {
        if !usable("syscall_program_writes_its_context_and_maps_roundtrip") {
            return;
        }
        let _serial = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let before = fd_count().unwrap();
        // r2 = 7; *(u64 *)(r1 + 0) = r2; r0 = 42; exit
        let prog = [
            insn(0xb7, 0x02, 0, 7),
            insn(0x7b, 0x21, 0, 0),
            insn(0xb7, 0x00, 0, 42),
            insn(0x95, 0, 0, 0),
        ]
        .concat();
        let mut log = vec![0u8; 65536];
        let fd = prog_load(&mut ProgLoad {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insns: &prog,
            license: c"GPL",
            name: Some("ksymrelo_test"),
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            fd_array: None,
            log: Some(&mut log),
        })
        .unwrap();
        let mut ctx = [0u8; 8];
        let r = prog_test_run(fd.as_fd(), Some(&mut ctx)).unwrap();
        assert_eq!(r.retval, 42);
        assert_eq!(u64::from_le_bytes(ctx), 7);

        // A refused program: the error carries the verifier log.
        let bad = [insn(0xb7, 0x00, 0, 0)].concat();
        let err = prog_load(&mut ProgLoad {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insns: &bad,
            license: c"GPL",
            name: None,
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            fd_array: None,
            log: Some(&mut log),
        })
        .unwrap_err();
        assert!(err.to_string().contains("verifier log"), "{err}");

        let map = map_create(BPF_MAP_TYPE_ARRAY, 4, 16, 1, "ksymrelo_t").unwrap();
        let value: Vec<u8> = (0..16).collect();
        map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &value).unwrap();
        let mut back = [0u8; 16];
        map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut back).unwrap();
        assert_eq!(&back[..], &value[..]);
        map_freeze(map.as_fd()).unwrap();
        drop((fd, map));
        assert_eq!(fd_count().unwrap(), before);
    }
}
