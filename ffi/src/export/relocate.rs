//! The relocation entry points. Both patch the caller's own bytes in place
//! under one rule (ksymrelo-std's `write_if_accepted`): everything is
//! resolved, then the fd_array must fit (`fd_array_fits`, the accept hook),
//! and only then is anything written; on failure nothing is.

use std::ffi::{c_int, c_void};

use ksymrelo_core::insn;
use ksymrelo_std::{list_externs, relocate_in_place_if, relocate_insns_if, InsnSite};

use super::{
    bpf_insn, bytes, bytes_mut, guard, kernel, ksymrelo_opts, ksymrelo_site, mode_of, options, string,
    KSYMRELO_SITE_WEAK, MAX_INSNS, MAX_SITES,
};
use crate::{ksymrelo_kernel, ksymrelo_result, Failure};

/// Stores a result handle into `*out` (if `out` is non-NULL).
///
/// # Safety
/// `out` must be NULL or writable.
unsafe fn give_result(out: *mut *mut ksymrelo_result, result: ksymrelo_result) {
    if !out.is_null() {
        // SAFETY: checked non-null; writable by contract.
        unsafe { *out = Box::into_raw(Box::new(result)) };
    }
}

/// The outputs of a successful relocation: the module BTFs it names kept
/// open by the handle, the fd_array, the result handle if asked for.
///
/// # Safety
/// As `write_fd_array` (checked by `check_fd_array`) and `give_result`.
unsafe fn deliver(
    k: &ksymrelo_kernel,
    fd_array: *mut c_int,
    fd_array_len: *mut usize,
    result: *mut *mut ksymrelo_result,
    externs: &[ksymrelo_std::ExternReport],
    modules: Vec<std::sync::Arc<ksymrelo_std::kernel::ModuleBtfData>>,
    fds: &[i32],
) {
    k.hold(&modules);
    // SAFETY: forwarded contract.
    unsafe {
        write_fd_array(fd_array, fd_array_len, fds);
        if !result.is_null() {
            give_result(result, ksymrelo_result::success(externs, modules));
        }
    }
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

/// The accept hook of both in-place relocations: `check_fd_array`, its
/// failure kept in `refused` (returned to C as it is, not as a relocation
/// error).
fn fd_array_fits(
    fd_array: *mut c_int,
    cap: usize,
    len_out: *mut usize,
    fds: &[i32],
    refused: &mut Option<Failure>,
) -> ksymrelo_std::error::Result<()> {
    check_fd_array(fd_array, cap, len_out, fds).map_err(|f| {
        let e = ksymrelo_std::Error::Usage(f.message().to_owned());
        *refused = Some(f);
        e
    })
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

/// Resolves and patches one program held as instructions: `obj_btf` is the
/// object's `.BTF` section, `sites` the instructions that refer to externs.
/// On success the instructions are patched in place and the fd_array to
/// load with is in `fd_array[0..*fd_array_len]` (length 0 when no module
/// kfunc is called; module fds stay owned by `k`). On failure nothing is
/// written and `ksymrelo_last_error()` says why, naming the extern.
/// Resolves in the default mode (`KSYMRELO_MODE_AUTO`).
///
/// # Safety
/// Every pointer must be NULL (an error) or valid for its length:
/// `obj_btf` for `obj_btf_len` bytes, `insns` for `insn_cnt` instructions
/// (4-byte aligned, written in place), `sites` for `site_cnt` entries
/// with NUL-terminated names, `fd_array` for `fd_array_cap` ints;
/// `fd_array_len` writable. `insns` must not overlap any other argument.
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
    // SAFETY: forwarded contract; NULL options and result are allowed.
    unsafe {
        ksymrelo_relocate_insns_opts(
            k,
            obj_btf,
            obj_btf_len,
            insns,
            insn_cnt,
            sites,
            site_cnt,
            fd_array,
            fd_array_cap,
            fd_array_len,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    }
}

/// `ksymrelo_relocate_insns` with options (NULL: the defaults) and, if
/// `result` is non-NULL, a result handle in `*result` (free it with
/// `ksymrelo_result_free`): set after every relocation that ran, failed
/// ones included (then it names the failing extern and its reason); not set
/// when the arguments are refused.
///
/// # Safety
/// As `ksymrelo_relocate_insns`; `opts` NULL or a `struct ksymrelo_opts` of
/// `opts->sz` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_relocate_insns_opts(
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
    opts: *const ksymrelo_opts,
    result: *mut *mut ksymrelo_result,
) -> c_int {
    guard(|| {
        // SAFETY (all blocks below): forwarded contract, each pointer checked
        // by the helper before use.
        let k = unsafe { kernel(k) }?;
        let mode = mode_of(&unsafe { options(opts, "opts") }?)?;
        let btf = unsafe { bytes(obj_btf, obj_btf_len, "obj_btf") }?;
        if insn_cnt == 0 || insn_cnt > MAX_INSNS {
            return Err(Failure::invalid(format!("insn_cnt {insn_cnt} is zero or absurd")));
        }
        let raw = unsafe {
            bytes_mut(
                insns.cast::<c_void>(),
                insn_cnt * ksymrelo_core::bpf::INSN_SIZE,
                "insns",
            )
        }?;
        // The caller's own instructions, patched in place: written only
        // once everything resolved and the fd_array fits.
        let insns =
            insn::insns_aligned_mut(raw).map_err(|_| Failure::invalid("insns is not aligned for struct bpf_insn"))?;
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
        if fd_array_len.is_null() {
            return Err(Failure::invalid("fd_array_len is NULL"));
        }
        let mut refused = None;
        let outcome = relocate_insns_if(&k.kernel, btf, insns, &rust_sites, mode, |r| {
            fd_array_fits(fd_array, fd_array_cap, fd_array_len, &r.fd_array, &mut refused)
        });
        let relocation = match outcome {
            Ok(r) => r,
            Err(e) => {
                if let Some(f) = refused {
                    return Err(f);
                }
                unsafe { give_result(result, ksymrelo_result::failure(&e, Vec::new())) };
                return Err(e.into());
            }
        };
        unsafe {
            deliver(
                k,
                fd_array,
                fd_array_len,
                result,
                &relocation.externs,
                relocation.modules,
                &relocation.fd_array,
            );
        }
        Ok(())
    })
}

/// Resolves every ksym of a whole ELF object in memory and patches every
/// executable section in place, in the default mode. fd_array as for
/// `ksymrelo_relocate_insns`. The object is parsed once and patched
/// directly; on failure nothing is written.
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
    // SAFETY: forwarded contract; NULL options and result are allowed.
    unsafe {
        ksymrelo_relocate_object_opts(
            k,
            elf,
            elf_len,
            fd_array,
            fd_array_cap,
            fd_array_len,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    }
}

/// `ksymrelo_relocate_object` with options (NULL: the defaults) and an
/// optional result handle, as for `ksymrelo_relocate_insns_opts`.
///
/// # Safety
/// As `ksymrelo_relocate_object`; `opts` NULL or a `struct ksymrelo_opts`
/// of `opts->sz` bytes; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_relocate_object_opts(
    k: *mut ksymrelo_kernel,
    elf: *mut c_void,
    elf_len: usize,
    fd_array: *mut c_int,
    fd_array_cap: usize,
    fd_array_len: *mut usize,
    opts: *const ksymrelo_opts,
    result: *mut *mut ksymrelo_result,
) -> c_int {
    guard(|| {
        // SAFETY (all blocks below): forwarded contract, checked pointers.
        let k = unsafe { kernel(k) }?;
        let mode = mode_of(&unsafe { options(opts, "opts") }?)?;
        let object = unsafe { bytes_mut(elf, elf_len, "elf") }?;
        if fd_array_len.is_null() {
            return Err(Failure::invalid("fd_array_len is NULL"));
        }
        let mut refused = None;
        let outcome = relocate_in_place_if(object, &k.kernel, mode, |r| {
            fd_array_fits(fd_array, fd_array_cap, fd_array_len, &r.fd_array, &mut refused)
        });
        let relocation = match outcome {
            Ok(r) => r,
            Err(e) => {
                if let Some(f) = refused {
                    return Err(f);
                }
                let externs = list_externs(object).unwrap_or_default();
                unsafe { give_result(result, ksymrelo_result::failure(&e, externs)) };
                return Err(e.into());
            }
        };
        unsafe {
            deliver(
                k,
                fd_array,
                fd_array_len,
                result,
                &relocation.externs,
                relocation.modules,
                &relocation.fd_array,
            )
        };
        Ok(())
    })
}
