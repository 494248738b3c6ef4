//! The C entry points of `ksymrelo gen`: a light-skeleton loader generated
//! into the caller's buffer (the bytes of `ksymrelo gen -o FILE`), and a
//! loader file run in this kernel, its descriptors into the caller's
//! arrays. Part of the one fenced `unsafe` module of this crate.

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::IntoRawFd;

use ksymrelo_std::generate;
use ksymrelo_std::loader_file::LoaderFile;
use ksymrelo_std::Kernel;

use super::{bytes, bytes_mut, guard, string};

/// `ksymrelo_gen` flag: seal the loader to its data: the data goes into a
/// map exclusive to the loader, which refuses data whose SHA-256 is not
/// the one it was generated with (Linux 6.18).
pub const KSYMRELO_GEN_SEALED: u32 = 1;
use crate::Failure;

/// Generates the light-skeleton loader of the BPF object `obj` (`obj_len`
/// bytes; `obj_name` its file name, which gives libbpf's object name and
/// so the global-data maps' names) as a loader file — the bytes `ksymrelo
/// gen -o FILE` writes — into `out` (`out_cap` bytes). `*out_len` receives
/// the file's length, also when `out` is too short (`-ENOSPC`), so a
/// caller may ask with `out_cap` 0 first. Nothing else is written on
/// failure. `flags`: 0, or [`KSYMRELO_GEN_SEALED`] for a loader sealed to
/// its data (it then runs on Linux 6.18 or later only).
///
/// # Safety
/// `obj` must be valid for `obj_len` bytes, `obj_name` NUL-terminated,
/// `out` NULL (with `out_cap` 0) or valid for `out_cap` bytes, `out_len`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_gen(
    obj: *const c_void,
    obj_len: usize,
    obj_name: *const c_char,
    out: *mut c_void,
    out_cap: usize,
    out_len: *mut usize,
    flags: u32,
) -> c_int {
    guard(|| {
        if flags & !KSYMRELO_GEN_SEALED != 0 {
            return Err(Failure::invalid(format!("unknown flags {flags:#x}")));
        }
        // SAFETY (all blocks below): forwarded contract, checked pointers.
        let object = unsafe { bytes(obj, obj_len, "obj") }?;
        let name = unsafe { string(obj_name, "obj_name") }?;
        if out_len.is_null() {
            return Err(Failure::invalid("out_len is NULL"));
        }
        let opts = generate::GenerateOptions {
            sealed: flags & KSYMRELO_GEN_SEALED != 0,
        };
        let file = generate::generate(object, name, &opts)?.to_bytes()?;
        unsafe { *out_len = file.len() };
        if file.len() > out_cap {
            return Err(Failure::new(
                -libc::ENOSPC,
                format!("the loader file needs {} bytes, out has room for {out_cap}", file.len()),
            ));
        }
        let out = unsafe { bytes_mut(out, out_cap, "out") }?;
        out[..file.len()].copy_from_slice(&file);
        Ok(())
    })
}

/// Runs a loader file (`file`, `file_len` bytes, as `ksymrelo_gen` or
/// `ksymrelo gen -o` made it) in this kernel: the object's extern types
/// are checked against the kernel's BTF first where it is readable (an
/// incompatible one fails, named, before anything is created), then the
/// loader creates every map and loads every program inside the kernel.
/// On success their descriptors — the caller's to close — are in
/// `map_fds` and `prog_fds`, in the file's map and program order, and
/// `*map_cnt`/`*prog_cnt` say how many; the counts are also set when an
/// array is too short (`-ENOSPC`, nothing created). On failure nothing is
/// left open and the message (`ksymrelo_last_error`) names the map,
/// program or extern that failed, with the verifier log of a program.
/// `keyring_id` checks a signed loader's signature (a key serial, a
/// special keyring id, or 0 for the kernel's built-in trusted keys); it
/// is not used for an unsigned loader.
///
/// # Safety
/// `file` must be valid for `file_len` bytes; `map_fds` NULL (with
/// `map_cap` 0) or valid for `map_cap` ints, likewise `prog_fds`;
/// `map_cnt` and `prog_cnt` writable.
#[no_mangle]
pub unsafe extern "C" fn ksymrelo_run_loader(
    file: *const c_void,
    file_len: usize,
    map_fds: *mut c_int,
    map_cap: usize,
    map_cnt: *mut usize,
    prog_fds: *mut c_int,
    prog_cap: usize,
    prog_cnt: *mut usize,
    keyring_id: c_int,
) -> c_int {
    guard(|| {
        // SAFETY (all blocks below): forwarded contract, checked pointers.
        let data = unsafe { bytes(file, file_len, "file") }?;
        if map_cnt.is_null() || prog_cnt.is_null() {
            return Err(Failure::invalid("map_cnt or prog_cnt is NULL"));
        }
        let loader = LoaderFile::from_bytes(data)?;
        let (maps, progs) = (loader.maps.len(), loader.progs.len());
        unsafe {
            *map_cnt = maps;
            *prog_cnt = progs;
        }
        for (what, ptr, cap, need) in [
            ("map_fds", map_fds, map_cap, maps),
            ("prog_fds", prog_fds, prog_cap, progs),
        ] {
            if need > cap {
                return Err(Failure::new(
                    -libc::ENOSPC,
                    format!("{what} needs {need} entries but has room for {cap}"),
                ));
            }
            if need > 0 && ptr.is_null() {
                return Err(Failure::invalid(format!("{what} is NULL")));
            }
        }
        generate::preflight(&loader.object, &Kernel::live())?;
        let opts = ksymrelo_std::skel::SkelOptions {
            keyring_id,
            ..Default::default()
        };
        let ran = generate::run(&loader, &opts)?;
        for (i, (_, fd)) in ran.maps.into_iter().enumerate() {
            // SAFETY: i < maps <= map_cap, checked above.
            unsafe { map_fds.add(i).write(fd.into_raw_fd()) };
        }
        for (i, (_, fd, _)) in ran.progs.into_iter().enumerate() {
            // SAFETY: i < progs <= prog_cap, checked above.
            unsafe { prog_fds.add(i).write(fd.into_raw_fd()) };
        }
        Ok(())
    })
}
