//! The exported C functions — the only `unsafe` code of this crate.
//!
//! Each function has the same shape: `guard` catches panics and turns
//! failures into a status plus a thread-local message; pointers and lengths
//! are checked before anything is read; outputs are written only after
//! everything succeeded.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ksymrelo_core::insn::{self, Insn};
use ksymrelo_std::{relocate_in_place, relocate_insns, InsnSite, Kernel};

use crate::{fail, ksymrelo_kernel, status_text, Failure, LAST_ERROR};

/// `struct bpf_insn` of `<linux/bpf.h>` (8 bytes, 4-byte aligned); opaque here.
#[repr(C)]
pub struct bpf_insn {
    _opaque: [u32; 2],
}

/// `ksymrelo_site.flags`: the extern is `__weak`.
pub const KSYMRELO_SITE_WEAK: u32 = 1;

/// One instruction that refers to an extern: its index in the program's
/// instructions, flags (`KSYMRELO_SITE_WEAK`), and the extern's name as in
/// the object's symbol table and BTF (NUL-terminated, UTF-8).
#[repr(C)]
pub struct ksymrelo_site {
    /// Index of the `ld_imm64` or `call` instruction.
    pub insn_idx: u32,
    /// `KSYMRELO_SITE_WEAK` or 0.
    pub flags: u32,
    /// The extern's name; borrowed for the duration of the call.
    pub name: *const c_char,
}

/// Most instructions in one program (the kernel's own limit).
const MAX_INSNS: usize = 1_000_000;
/// Longest buffer accepted (BTF, ELF).
const MAX_BYTES: usize = 1 << 30;
/// Most sites in one call.
const MAX_SITES: usize = 1 << 20;

fn guard(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(failure)) => fail(failure),
        Err(_) => fail(Failure::new(
            -libc::EFAULT,
            "internal error: a panic was caught at the C boundary",
        )),
    }
}

/// Borrows `len` bytes at `ptr` after checking them.
///
/// # Safety
/// If non-null, `ptr` must point to `len` readable bytes that stay valid and
/// unmodified for `'a`.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if len == 0 || len > MAX_BYTES {
        return Err(Failure::invalid(format!("{what}: length {len} is zero or absurd")));
    }
    // SAFETY: non-null and length-checked; validity is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// A C string as UTF-8.
///
/// # Safety
/// If non-null, `ptr` must point to a NUL-terminated string valid for `'a`.
unsafe fn string<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null; NUL termination is the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// Checks the fd_array output arguments and that `fds` fits.
fn check_fd_array(fd_array: *mut c_int, cap: usize, len_out: *mut usize, fds: &[i32]) -> Result<(), Failure> {
    if len_out.is_null() {
        return Err(Failure::invalid("fd_array_len is NULL"));
    }
    if cap > 0 && fd_array.is_null() {
        return Err(Failure::invalid("fd_array is NULL but fd_array_cap is not 0"));
    }
    if fds.len() > cap {
        return Err(Failure::new(
            -libc::ENOSPC,
            format!("fd_array needs {} entries but has room for {cap}", fds.len()),
        ));
    }
    Ok(())
}

/// Writes the fd_array (checked by `check_fd_array`).
///
/// # Safety
/// `fd_array` must have room for `fds.len()` ints and `len_out` be writable.
unsafe fn write_fd_array(fd_array: *mut c_int, len_out: *mut usize, fds: &[i32]) {
    if !fds.is_empty() {
        // SAFETY: `fds.len() <= cap` was checked, and `fd_array` holds `cap`.
        unsafe { std::ptr::copy_nonoverlapping(fds.as_ptr(), fd_array, fds.len()) };
    }
    // SAFETY: checked non-null; writable by contract.
    unsafe { *len_out = fds.len() };
}

/// The kernel handle behind `k`.
///
/// # Safety
/// If non-null, `k` must come from `ksymrelo_kernel_open_*` and not be freed.
unsafe fn kernel<'a>(k: *mut ksymrelo_kernel) -> Result<&'a ksymrelo_kernel, Failure> {
    if k.is_null() {
        return Err(Failure::invalid("kernel handle is NULL"));
    }
    // SAFETY: a live handle by contract; only shared access is taken.
    Ok(unsafe { &*k })
}

/// Stores a new handle into `*out`.
///
/// # Safety
/// `out` must be writable (checked non-null here).
unsafe fn give(out: *mut *mut ksymrelo_kernel, kernel: Kernel) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid("out is NULL"));
    }
    let handle = Box::into_raw(Box::new(ksymrelo_kernel::new(kernel)));
    // SAFETY: checked non-null; writable by contract.
    unsafe { *out = handle };
    Ok(())
}

/// Opens the running kernel: `/sys/kernel/btf/vmlinux`, module BTFs through
/// `bpf(2)` and `/proc/kallsyms`, each read only when first needed. On
/// success `*out` is a handle to free with `ksymrelo_kernel_free`.
///
/// # Safety
/// `out` must be NULL (an error) or writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_kernel_open_live(out: *mut *mut ksymrelo_kernel) -> c_int {
    // SAFETY: forwarded contract.
    guard(|| unsafe { give(out, Kernel::live()) })
}

/// Opens another kernel's saved files: `btf_path` is a vmlinux BTF file or a
/// directory laid out like `/sys/kernel/btf` (`vmlinux` plus one split BTF
/// file per module); `kallsyms_path` a saved `/proc/kallsyms`, or NULL (then
/// objects with typeless ksyms fail to resolve).
///
/// # Safety
/// The paths must be NULL or NUL-terminated strings; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_kernel_open_files(
    btf_path: *const c_char,
    kallsyms_path: *const c_char,
    out: *mut *mut ksymrelo_kernel,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded contract.
        let btf = unsafe { string(btf_path, "btf_path") }?;
        let kallsyms = if kallsyms_path.is_null() {
            None
        } else {
            // SAFETY: forwarded contract.
            Some(unsafe { string(kallsyms_path, "kallsyms_path") }?)
        };
        for path in std::iter::once(btf).chain(kallsyms) {
            std::fs::metadata(path).map_err(|e| Failure::new(-libc::ENOENT, format!("{path}: {e}")))?;
        }
        let kernel = Kernel::from_files(Some(Path::new(btf)), kallsyms.map(Path::new));
        // SAFETY: forwarded contract.
        unsafe { give(out, kernel) }
    })
}

/// Frees a handle and closes the module BTF fds it owns. NULL is fine.
///
/// # Safety
/// `k` must be NULL or a handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_kernel_free(k: *mut ksymrelo_kernel) {
    if k.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live handle from `give`, freed once by contract.
        drop(unsafe { Box::from_raw(k) });
    }));
}

/// Resolves and patches one program held as instructions: `obj_btf` is the
/// object's `.BTF` section, `sites` the instructions that refer to externs.
/// On success the instructions are patched in place and the fd_array to
/// load with is in `fd_array[0..*fd_array_len]` (length 0 when no module
/// kfunc is called; module fds stay owned by `k`). On failure nothing is
/// written and `ksymrelo_last_error()` says why, naming the extern.
///
/// # Safety
/// Every pointer must be NULL (an error) or valid for its length:
/// `obj_btf` for `obj_btf_len` bytes, `insns` for `insn_cnt` instructions
/// (4-byte aligned), `sites` for `site_cnt` entries with NUL-terminated
/// names, `fd_array` for `fd_array_cap` ints; `fd_array_len` writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_relocate_insns(
    k: *mut ksymrelo_kernel,
    obj_btf: *const c_void,
    obj_btf_len: usize,
    insns: *mut bpf_insn,
    insn_cnt: usize,
    sites: *const ksymrelo_site,
    site_cnt: usize,
    fd_array: *mut c_int,
    fd_array_cap: usize,
    fd_array_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY (all blocks below): forwarded contract, each pointer checked
        // by the helper before use.
        let k = unsafe { kernel(k) }?;
        let btf = unsafe { bytes(obj_btf, obj_btf_len, "obj_btf") }?;
        if insn_cnt == 0 || insn_cnt > MAX_INSNS {
            return Err(Failure::invalid(format!("insn_cnt {insn_cnt} is zero or absurd")));
        }
        let raw = unsafe { bytes(insns.cast::<c_void>(), insn_cnt * insn::INSN_SIZE, "insns") }?;
        let mut work: Vec<Insn> = insn::insns_aligned(raw)
            .map_err(|_| Failure::invalid("insns is not aligned for struct bpf_insn"))?
            .to_vec();
        if site_cnt > MAX_SITES {
            return Err(Failure::invalid(format!("site_cnt {site_cnt} is absurd")));
        }
        let c_sites: &[ksymrelo_site] = if site_cnt == 0 {
            &[]
        } else {
            if sites.is_null() {
                return Err(Failure::invalid("sites is NULL but site_cnt is not 0"));
            }
            if sites.align_offset(std::mem::align_of::<ksymrelo_site>()) != 0 {
                return Err(Failure::invalid("sites is misaligned"));
            }
            unsafe { std::slice::from_raw_parts(sites, site_cnt) }
        };
        let mut rust_sites = Vec::with_capacity(site_cnt);
        for (i, s) in c_sites.iter().enumerate() {
            if s.flags & !KSYMRELO_SITE_WEAK != 0 {
                return Err(Failure::invalid(format!("sites[{i}]: unknown flags {:#x}", s.flags)));
            }
            let name = unsafe { string(s.name, &format!("sites[{i}].name")) }?;
            rust_sites.push(InsnSite {
                insn_idx: s.insn_idx,
                weak: s.flags & KSYMRELO_SITE_WEAK != 0,
                name,
            });
        }
        let result = relocate_insns(&k.kernel, btf, &mut work, &rust_sites)?;
        check_fd_array(fd_array, fd_array_cap, fd_array_len, &result.fd_array)?;
        let out = insn::as_bytes(&work);
        unsafe {
            std::ptr::copy_nonoverlapping(out.as_ptr(), insns.cast::<u8>(), out.len());
            write_fd_array(fd_array, fd_array_len, &result.fd_array);
        }
        Ok(())
    })
}

/// Resolves every ksym of a whole ELF object in memory and patches every
/// executable section in place. fd_array as for `ksymrelo_relocate_insns`.
/// On failure nothing is written.
///
/// # Safety
/// `elf` must be valid for `elf_len` bytes, `fd_array` for `fd_array_cap`
/// ints, `fd_array_len` writable (NULLs are errors).
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_relocate_object(
    k: *mut ksymrelo_kernel,
    elf: *mut c_void,
    elf_len: usize,
    fd_array: *mut c_int,
    fd_array_cap: usize,
    fd_array_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY (all blocks below): forwarded contract, checked pointers.
        let k = unsafe { kernel(k) }?;
        let mut work = unsafe { bytes(elf, elf_len, "elf") }?.to_vec();
        let result = relocate_in_place(&mut work, &k.kernel)?;
        check_fd_array(fd_array, fd_array_cap, fd_array_len, &result.fd_array)?;
        unsafe {
            std::ptr::copy_nonoverlapping(work.as_ptr(), elf.cast::<u8>(), work.len());
            write_fd_array(fd_array, fd_array_len, &result.fd_array);
        }
        Ok(())
    })
}

/// A static description of a status code. Never NULL.
#[no_mangle]
pub extern "C" fn ksymrelo_strerror(status: c_int) -> *const c_char {
    status_text(status).as_ptr().cast()
}

/// The message of this thread's last failure ("" if none). Valid until the
/// next failing ksymrelo call on this thread. Never NULL.
#[no_mangle]
pub extern "C" fn ksymrelo_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library version, e.g. "0.1.0". Never NULL.
#[no_mangle]
pub extern "C" fn ksymrelo_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
