//! The exported C functions — the only `unsafe` code of this crate.
//!
//! Each function has the same shape: `guard` catches panics and turns
//! failures into a status plus a thread-local message; pointers and lengths
//! are checked before anything is read; outputs are written only after
//! everything succeeded.
//!
//! Here: the C types, the shared checks, the kernel handle; in
//! `relocate.rs` the relocation entry points, in `result.rs` the result
//! handle's accessors, in `gen.rs` the light-skeleton loaders.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ksymrelo_std::{Kernel, Mode, Reason};

use crate::{fail, ksymrelo_kernel, status_text, Failure, LAST_ERROR};

mod gen;
mod relocate;
mod result;

// Every entry point is reachable as `ksymrelo::export::*` (Rust callers,
// the fuzz target), whichever file defines it.
pub use gen::*;
pub use relocate::*;
pub use result::*;

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

/// `ksymrelo_opts.mode`: the default, libbpf's result, fast (as 0).
pub const KSYMRELO_MODE_AUTO: u32 = 1;
/// `ksymrelo_opts.mode`: everything in user space, exactly as libbpf
/// (reads `/proc/kallsyms`).
pub const KSYMRELO_MODE_USER: u32 = 2;
/// `ksymrelo_opts.mode`: everything looked up by the kernel, as libbpf's
/// gen_loader: no file read, but no type checks and no kallsyms ambiguity
/// check.
pub const KSYMRELO_MODE_KERNEL: u32 = 3;

/// `ksymrelo_extern.kind`: a typed variable (`extern const struct rq runqueues __ksym`).
pub const KSYMRELO_KIND_VAR: u32 = 1;
/// `ksymrelo_extern.kind`: a typeless variable (`extern const void x __ksym`).
pub const KSYMRELO_KIND_TYPELESS: u32 = 2;
/// `ksymrelo_extern.kind`: a kfunc.
pub const KSYMRELO_KIND_FUNC: u32 = 3;
/// `ksymrelo_extern.kind`: a `__kconfig` extern (left to the loader).
pub const KSYMRELO_KIND_KCONFIG: u32 = 4;

/// `ksymrelo_extern.flags`: declared `__weak`.
pub const KSYMRELO_EXTERN_WEAK: u32 = 1;
/// `ksymrelo_extern.flags`: resolved.
pub const KSYMRELO_EXTERN_RESOLVED: u32 = 2;
/// `ksymrelo_extern.flags`: an unresolved weak kfunc whose calls are
/// poisoned (`call 2002000000 + index`: the verifier refuses them only if
/// reachable). Not set when it is only tested (`bpf_ksym_exists`).
pub const KSYMRELO_EXTERN_POISONED: u32 = 4;

/// `reason` values: no failure.
pub const KSYMRELO_REASON_NONE: i32 = 0;
/// A strong extern is not in the kernel (BTF or kallsyms); for a weak one,
/// why it is unresolved.
pub const KSYMRELO_REASON_NOT_FOUND: i32 = 1;
/// kallsyms lists the name at two different addresses.
pub const KSYMRELO_REASON_AMBIGUOUS: i32 = 2;
/// The object's type of the extern differs from the kernel's.
pub const KSYMRELO_REASON_INCOMPATIBLE: i32 = 3;
/// kallsyms addresses are hidden from this process (`kptr_restrict`).
pub const KSYMRELO_REASON_ADDRESSES_HIDDEN: i32 = 4;
/// The object is malformed.
pub const KSYMRELO_REASON_BAD_OBJECT: i32 = 5;
/// Kernel facts could not be read (a file, or `bpf(2)` refused).
pub const KSYMRELO_REASON_KERNEL_FACTS: i32 = 6;
/// An output buffer or a limit is too small.
pub const KSYMRELO_REASON_CAPACITY: i32 = 7;
/// Arguments that do not belong together.
pub const KSYMRELO_REASON_USAGE: i32 = 8;

/// Options of a relocation, libbpf style: set `sz` to
/// `sizeof(struct ksymrelo_opts)`. A library older than the caller's
/// header refuses non-zero fields it does not know (`-EINVAL`); a newer
/// one reads fields past `sz` as zero. NULL means all defaults.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ksymrelo_opts {
    /// `sizeof(struct ksymrelo_opts)`.
    pub sz: usize,
    /// `KSYMRELO_MODE_*`; 0 is the default (`KSYMRELO_MODE_AUTO`).
    pub mode: u32,
    /// Reserved: 0.
    pub flags: u32,
}

/// Options of `ksymrelo_kernel_open_live_opts` (`sz` as for
/// `struct ksymrelo_opts`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ksymrelo_kernel_opts {
    /// `sizeof(struct ksymrelo_kernel_opts)`.
    pub sz: usize,
    /// Keep the per-boot kallsyms record (what the default mode needs from
    /// `/proc/kallsyms` to be exact without reading it on every call) in
    /// this file, shared with other processes: e.g. the `ksymrelo`
    /// command's `/run/ksymrelo/kallsyms-record.3`. NULL: kept in the handle
    /// only, no file written.
    pub kallsyms_record_path: *const c_char,
}

impl Default for ksymrelo_kernel_opts {
    fn default() -> Self {
        ksymrelo_kernel_opts {
            sz: 0,
            kallsyms_record_path: std::ptr::null(),
        }
    }
}

/// One extern of a result, filled by `ksymrelo_result_extern`: set `sz` to
/// `sizeof(struct ksymrelo_extern)` first (a smaller, older size gets the
/// fields that fit). Strings are owned by the result.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ksymrelo_extern {
    /// `sizeof(struct ksymrelo_extern)`, set by the caller.
    pub sz: usize,
    /// The extern's full name.
    pub name: *const c_char,
    /// The module that provides it (module BTF, or kallsyms `[module]`);
    /// NULL for vmlinux or when unresolved.
    pub module: *const c_char,
    /// `KSYMRELO_KIND_*`.
    pub kind: u32,
    /// `KSYMRELO_EXTERN_*` bits.
    pub flags: u32,
    /// Kernel BTF id (typed variables, kfuncs); 0 otherwise.
    pub btf_id: u32,
    /// BTF object fd: 0 for vmlinux, a module BTF fd (owned by the kernel
    /// handle) otherwise.
    pub btf_obj_fd: i32,
    /// fd_array slot of a module kfunc; 0 otherwise.
    pub fd_array_slot: u32,
    /// Instructions that refer to it.
    pub sites: u32,
    /// Address (typeless variables); 0 otherwise.
    pub addr: u64,
    /// `KSYMRELO_REASON_*`: why it is unresolved, or why the relocation
    /// failed on it.
    pub reason: i32,
    /// Reserved.
    pub _reserved: u32,
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

/// Borrows `len` writable bytes at `ptr` after checking them.
///
/// # Safety
/// If non-null, `ptr` must point to `len` writable bytes, not otherwise
/// accessed during `'a`.
unsafe fn bytes_mut<'a>(ptr: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if len == 0 || len > MAX_BYTES {
        return Err(Failure::invalid(format!("{what}: length {len} is zero or absurd")));
    }
    // SAFETY: non-null and length-checked; validity and exclusivity are the
    // caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
}

/// Reads a libbpf-style options struct whose first field is its size:
/// fields past the caller's `sz` read as zero; bytes past ours must be zero.
///
/// # Safety
/// If non-null, `ptr` must point to at least `sz` readable bytes, where
/// `sz` is the `size_t` it starts with.
unsafe fn options<T: Copy + Default>(ptr: *const T, what: &str) -> Result<T, Failure> {
    let mut out = T::default();
    if ptr.is_null() {
        return Ok(out);
    }
    if ptr.align_offset(std::mem::align_of::<usize>()) != 0 {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: non-null, aligned; the size field is readable by contract.
    let sz = unsafe { ptr.cast::<usize>().read() };
    let ours = std::mem::size_of::<T>();
    if !(std::mem::size_of::<usize>()..=MAX_BYTES).contains(&sz) {
        return Err(Failure::invalid(format!("{what}->sz is {sz}")));
    }
    // SAFETY: the caller's struct is `sz` bytes long by contract.
    let theirs = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), sz) };
    if let Some(i) = theirs.iter().skip(ours).position(|&b| b != 0) {
        return Err(Failure::invalid(format!(
            "{what}: byte {} is set but this library's struct ends at {ours} (a newer header?)",
            ours + i
        )));
    }
    let n = sz.min(ours);
    // SAFETY: `out` is a plain repr(C) value of `ours` bytes without
    // padding; any bytes the caller's `n` gives are valid for its
    // integer and pointer fields.
    unsafe { std::ptr::copy_nonoverlapping(theirs.as_ptr(), (&mut out as *mut T).cast::<u8>(), n) };
    Ok(out)
}

/// The numbers above are `Reason`'s, one for one.
const _: () = {
    assert!(KSYMRELO_REASON_NONE == Reason::None as i32);
    assert!(KSYMRELO_REASON_NOT_FOUND == Reason::NotFound as i32);
    assert!(KSYMRELO_REASON_AMBIGUOUS == Reason::Ambiguous as i32);
    assert!(KSYMRELO_REASON_INCOMPATIBLE == Reason::Incompatible as i32);
    assert!(KSYMRELO_REASON_ADDRESSES_HIDDEN == Reason::AddressesHidden as i32);
    assert!(KSYMRELO_REASON_BAD_OBJECT == Reason::BadObject as i32);
    assert!(KSYMRELO_REASON_KERNEL_FACTS == Reason::KernelFacts as i32);
    assert!(KSYMRELO_REASON_CAPACITY == Reason::Capacity as i32);
    assert!(KSYMRELO_REASON_USAGE == Reason::Usage as i32);
    assert!(std::mem::size_of::<ksymrelo_extern>() == 64);
    assert!(std::mem::size_of::<ksymrelo_opts>() == 16);
};

fn mode_of(opts: &ksymrelo_opts) -> Result<Mode, Failure> {
    if opts.flags != 0 {
        return Err(Failure::invalid(format!(
            "opts->flags {:#x}: no flags exist",
            opts.flags
        )));
    }
    match opts.mode {
        0 | KSYMRELO_MODE_AUTO => Ok(Mode::Auto),
        KSYMRELO_MODE_USER => Ok(Mode::User),
        KSYMRELO_MODE_KERNEL => Ok(Mode::Kernel),
        m => Err(Failure::invalid(format!("opts->mode {m} is not a KSYMRELO_MODE_*"))),
    }
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

/// `ksymrelo_kernel_open_live` with options (NULL: the defaults).
///
/// # Safety
/// `opts` must be NULL or a `struct ksymrelo_kernel_opts` of `opts->sz`
/// bytes whose path is NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_kernel_open_live_opts(
    opts: *const ksymrelo_kernel_opts,
    out: *mut *mut ksymrelo_kernel,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded contract.
        let opts = unsafe { options(opts, "opts") }?;
        let mut kernel = Kernel::live();
        if !opts.kallsyms_record_path.is_null() {
            // SAFETY: forwarded contract.
            let path = unsafe { string(opts.kallsyms_record_path, "opts->kallsyms_record_path") }?;
            kernel = kernel.with_kallsyms_record(path);
        }
        // SAFETY: forwarded contract.
        unsafe { give(out, kernel) }
    })
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
