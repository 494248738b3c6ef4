//! The result handle's accessors: what a `*_opts` relocation found, per
//! extern, after it ran (failed ones included).

use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ksymrelo_core::object::ExternKind;
use ksymrelo_core::resolve::Outcome;

use super::{
    guard, ksymrelo_extern, KSYMRELO_EXTERN_POISONED, KSYMRELO_EXTERN_RESOLVED, KSYMRELO_EXTERN_WEAK,
    KSYMRELO_KIND_FUNC, KSYMRELO_KIND_KCONFIG, KSYMRELO_KIND_TYPELESS, KSYMRELO_KIND_VAR, KSYMRELO_REASON_USAGE,
    MAX_BYTES,
};
use crate::{ksymrelo_result, Failure};

/// The result handle behind `r`.
///
/// # Safety
/// If non-null, `r` must come from a `*_opts` relocation and not be freed.
unsafe fn result_ref<'a>(r: *const ksymrelo_result) -> Option<&'a ksymrelo_result> {
    // SAFETY: a live handle by contract.
    unsafe { r.as_ref() }
}

/// Number of externs in a result (libbpf's extern order); 0 for NULL.
///
/// # Safety
/// `r` must be NULL or a live result handle.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_extern_count(r: *const ksymrelo_result) -> usize {
    // SAFETY: forwarded contract.
    unsafe { result_ref(r) }.map_or(0, |r| r.externs.len())
}

/// Fills `*out` (whose `sz` the caller set) with extern `i` of `r`. The
/// strings stay valid until `ksymrelo_result_free(r)`. Returns 0, or
/// `-EINVAL` for a NULL argument, an index past the count or a bad `sz`.
///
/// # Safety
/// `r` must be NULL or a live result handle; `out` NULL or a writable
/// `struct ksymrelo_extern` of `out->sz` bytes.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_extern(
    r: *const ksymrelo_result,
    i: usize,
    out: *mut ksymrelo_extern,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { result_ref(r) }.ok_or_else(|| Failure::invalid("result is NULL"))?;
        if out.is_null() || out.align_offset(std::mem::align_of::<usize>()) != 0 {
            return Err(Failure::invalid("out is NULL or misaligned"));
        }
        // SAFETY: non-null and aligned; its size field is readable by contract.
        let sz = unsafe { out.cast::<usize>().read() };
        let ours = std::mem::size_of::<ksymrelo_extern>();
        if sz < std::mem::size_of::<usize>() || sz > MAX_BYTES {
            return Err(Failure::invalid(format!("out->sz is {sz}")));
        }
        let e = r
            .externs
            .get(i)
            .ok_or_else(|| Failure::invalid(format!("extern {i} of {}", r.externs.len())))?;
        let rep = &e.report;
        let (btf_id, btf_obj_fd, fd_array_slot, addr) = match rep.resolution.outcome {
            Outcome::Btf {
                btf_id,
                btf_obj_fd,
                fd_array_slot,
                ..
            } => (btf_id.0, btf_obj_fd, u32::from(fd_array_slot), 0),
            Outcome::Address { addr } => (0, 0, 0, addr),
            Outcome::Unresolved(_) => (0, 0, 0, 0),
        };
        let resolved = rep.resolution.is_resolved();
        let mut flags = 0;
        if rep.weak {
            flags |= KSYMRELO_EXTERN_WEAK;
        }
        if resolved {
            flags |= KSYMRELO_EXTERN_RESOLVED;
        } else if rep.poisoned && r.status == 0 {
            flags |= KSYMRELO_EXTERN_POISONED;
        }
        let info = ksymrelo_extern {
            sz: sz.min(ours),
            name: e.name.as_ptr(),
            module: e.module.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            kind: match rep.kind {
                ExternKind::Typed => KSYMRELO_KIND_VAR,
                ExternKind::Typeless => KSYMRELO_KIND_TYPELESS,
                ExternKind::Kfunc => KSYMRELO_KIND_FUNC,
                ExternKind::Kconfig => KSYMRELO_KIND_KCONFIG,
            },
            flags,
            btf_id,
            btf_obj_fd,
            fd_array_slot,
            sites: u32::try_from(rep.sites).unwrap_or(u32::MAX),
            addr,
            reason: e.reason as i32,
            _reserved: 0,
        };
        // SAFETY: `out` holds `sz` writable bytes by contract; at most
        // `ours` are copied from a padding-free repr(C) value.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&info as *const ksymrelo_extern).cast::<u8>(),
                out.cast::<u8>(),
                sz.min(ours),
            )
        };
        Ok(())
    })
}

/// The status of the relocation behind `r`: 0 or a negative errno
/// (`-EINVAL` for NULL).
///
/// # Safety
/// `r` must be NULL or a live result handle.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_status(r: *const ksymrelo_result) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { result_ref(r) }.map_or(-libc::EINVAL, |r| r.status)
}

/// Why the relocation behind `r` failed: `KSYMRELO_REASON_*`
/// (`KSYMRELO_REASON_NONE` on success; `KSYMRELO_REASON_USAGE` for NULL).
///
/// # Safety
/// `r` must be NULL or a live result handle.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_reason(r: *const ksymrelo_result) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { result_ref(r) }.map_or(KSYMRELO_REASON_USAGE, |r| r.reason as i32)
}

/// The failure message of `r` ("" on success or for NULL), owned by `r`.
///
/// # Safety
/// `r` must be NULL or a live result handle.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_message(r: *const ksymrelo_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { result_ref(r) }.map_or(c"".as_ptr(), |r| r.message.as_ptr())
}

/// The extern the relocation behind `r` failed on, or NULL (success, a
/// failure not about one extern, or NULL `r`). Owned by `r`.
///
/// # Safety
/// `r` must be NULL or a live result handle.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_failed_extern(r: *const ksymrelo_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { result_ref(r) }
        .and_then(|r| r.failed_extern.as_ref())
        .map_or(std::ptr::null(), |n| n.as_ptr())
}

/// Frees a result handle (its strings with it). NULL is fine.
///
/// # Safety
/// `r` must be NULL or a result handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_result_free(r: *mut ksymrelo_result) {
    if r.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live handle from `give_result`, freed once by contract.
        drop(unsafe { Box::from_raw(r) });
    }));
}
