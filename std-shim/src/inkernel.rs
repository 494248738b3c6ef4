//! Runs the in-kernel resolver: the emitted loader (see
//! [`ksymrelo_core::gen`]) is loaded as a `BPF_PROG_TYPE_SYSCALL` program
//! over an array map holding its blob, run once with `BPF_PROG_TEST_RUN`,
//! and the patched instructions are read back. No file is read.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use ksymrelo_core::gen::{self, GenOptions, Layout};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::{Extern, Site};

use crate::error::{Error, Result};
use crate::sys;

/// What one loader run produced.
#[derive(Debug)]
pub struct InKernel {
    /// The program's instructions, patched by the loader.
    pub insns: Vec<Insn>,
    /// The fd_array the loader filled (slot 0 unused; empty without kfunc
    /// calls). Module fds in it are owned by [`InKernel::module_fds`].
    pub fd_array: Vec<i32>,
    /// Module BTF fds the loader obtained (installed in this process by the
    /// kernel), now owned here.
    pub module_fds: Vec<OwnedFd>,
    /// The layout the loader used.
    pub layout: Layout,
    /// Time the loader's run took, in ns, measured around
    /// `BPF_PROG_TEST_RUN` (the kernel reports no duration for syscall
    /// programs).
    pub run_ns: u64,
}

/// Emits, loads and runs a loader for one program (`sites` with instruction
/// indices relative to `insns`, `extern_idx` into `externs`).
///
/// Errors: the kernel refusing the loader (no `CAP_BPF`, missing helpers —
/// with the verifier log), or a strong extern's lookup failing (named).
pub fn resolve_in_kernel(externs: &[Extern<'_>], sites: &[Site], insns: &[Insn]) -> Result<InKernel> {
    let opts = GenOptions::default();
    let mut program = insns.to_vec();
    gen::prepatch(&mut program, externs, sites)?;
    let planned = gen::plan(externs, sites, program.len(), &opts)?;
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0u8; planned.end as usize];
    let layout = gen::emit(externs, sites, &program, &opts, &mut loader, &mut blob)?;

    let map = sys::map_create(sys::BPF_MAP_TYPE_ARRAY, 4, blob.len() as u32, 1, "ksymrelo_blob")
        .map_err(|e| Error::io("creating the loader's blob map", e))?;
    sys::map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &blob)
        .map_err(|e| Error::io("writing the loader blob", e))?;
    let fd_array = [map.as_raw_fd()];
    let mut log = vec![0u8; 1 << 20];
    let prog = sys::prog_load(&mut sys::ProgLoad {
        prog_type: sys::BPF_PROG_TYPE_SYSCALL,
        insns: ksymrelo_core::insn::as_bytes(&loader),
        license: c"Dual BSD/GPL",
        name: Some("ksymrelo_loader"),
        prog_flags: sys::BPF_F_SLEEPABLE,
        expected_attach_type: 0,
        fd_array: Some(&fd_array),
        log: Some(&mut log),
    })
    .map_err(|e| Error::io("loading the in-kernel resolver", e))?;
    let started = std::time::Instant::now();
    let run = sys::prog_test_run(prog.as_fd(), None).map_err(|e| Error::io("running the in-kernel resolver", e))?;
    let run_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    sys::map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut blob)
        .map_err(|e| Error::io("reading the loader blob back", e))?;

    // Take the module fds first, so they are closed on every path below.
    let mut module_fds = Vec::new();
    let patched = gen::patched_insns(&blob, &layout)?.to_vec();
    for site in sites {
        let at = site.insn_idx as usize;
        let fd = match site.kind {
            ksymrelo_core::object::SiteKind::Ld64 if patched[at].src_reg() == ksymrelo_core::insn::PSEUDO_BTF_ID => {
                patched[at + 1].imm()
            }
            _ => 0,
        };
        if fd > 0 && !module_fds.iter().any(|f: &OwnedFd| f.as_raw_fd() == fd) {
            module_fds.extend(sys::adopt_kernel_fd(fd));
        }
    }
    let fd_array: Vec<i32> = gen::fd_array(&blob, &layout).collect();
    for &fd in fd_array.iter().skip(1) {
        if fd > 0 && !module_fds.iter().any(|f| f.as_raw_fd() == fd) {
            module_fds.extend(sys::adopt_kernel_fd(fd));
        }
    }
    if let Some((idx, err)) = gen::status(&blob, &layout) {
        let name = externs.get(idx as usize).map_or("?", |e| e.name);
        return Err(Error::InKernel {
            name: name.to_owned(),
            errno: -err,
        });
    }
    if run.retval != 0 {
        return Err(Error::Usage(format!(
            "the in-kernel resolver returned {}",
            run.retval as i32
        )));
    }
    Ok(InKernel {
        insns: patched,
        fd_array,
        module_fds,
        layout,
        run_ns,
    })
}
