//! Loading a relocated program, for users who want the last step too (and
//! for the end-to-end tests).

use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};

use ksymrelo_core::insn::Insn;

use crate::error::{Error, Result};
use crate::sys;

pub use sys::BPF_PROG_TYPE_SYSCALL;

/// How to load a program.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// License (GPL-compatible for GPL-only helpers and kfuncs).
    pub license: &'a CStr,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// Expected attach type.
    pub expected_attach_type: u32,
    /// Program name (at most 15 bytes are kept).
    pub name: Option<&'a str>,
}

/// Loads `insns` with `fd_array` (from [`crate::Relocation::fd_array`]);
/// on failure the error carries the verifier log.
pub fn load_program(insns: &[Insn], fd_array: &[i32], opts: &LoadOptions<'_>) -> Result<OwnedFd> {
    let mut log = vec![0u8; 1 << 20];
    let fd_array: Option<&[RawFd]> = if fd_array.is_empty() { None } else { Some(fd_array) };
    sys::prog_load(&mut sys::ProgLoad {
        prog_type: opts.prog_type,
        insns: ksymrelo_core::insn::as_bytes(insns),
        license: opts.license,
        name: opts.name,
        prog_flags: opts.prog_flags,
        expected_attach_type: opts.expected_attach_type,
        fd_array,
        log: Some(&mut log),
        btf: None,
    })
    .map_err(|e| Error::io(format!("loading program {}", opts.name.unwrap_or("")), e))
}
