//! Loading a relocated program and running it, for users who want the last
//! step too (and for the end-to-end tests): the few `bpf(2)` commands a
//! loader needs, safe and typed, with errors that name the command.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use ksymrelo_std::load::{load_program, prog_test_run, LoadOptions, TestRun};
//! use ksymrelo_std::load::{BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};
//!
//! let relocation = ksymrelo_std::relocate(&std::fs::read("prog.bpf.o")?, &ksymrelo_std::Kernel::live())?;
//! let insns = &relocation.section("syscall").expect("a syscall section").insns;
//! let opts = LoadOptions {
//!     prog_type: BPF_PROG_TYPE_SYSCALL,
//!     license: c"GPL",
//!     prog_flags: BPF_F_SLEEPABLE,
//!     expected_attach_type: 0,
//!     name: Some("example"),
//! };
//! let prog = load_program(insns, &relocation.fd_array, &opts)?;
//! let mut ctx = [0u8; 16];
//! let run = prog_test_run(prog.as_fd(), &mut TestRun { ctx_in: Some(&mut ctx), ..Default::default() })?;
//! println!("returned {}", run.retval);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};

use ksymrelo_core::insn::Insn;

use crate::error::{Error, Result};
use crate::sys;

pub use sys::{
    bpf_available, btf_info, btf_load, btf_objects, prog_test_run, BtfInfo, BtfObject, TestRun, TestRunResult,
    BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL,
};

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
/// on failure the error ([`Error::Bpf`]) carries the verifier log.
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
        signature: None,
    })
    .map_err(|e| Error::bpf(format!("loading program {}", opts.name.unwrap_or("")), e))
}
