//! Runs ksymrelo's programs inside the kernel, each a
//! `BPF_PROG_TYPE_SYSCALL` program over an array map, run once with
//! `BPF_PROG_TEST_RUN`; no file is read:
//! - [`lookup()`]: kernel mode's resolver ([`ksymrelo_core::lookup`]): names
//!   in, the kernel's answers out;
//! - [`resolve_in_kernel`]: a generated light-skeleton loader
//!   ([`ksymrelo_core::gen`]) that patches a copy of the program in its
//!   blob, which is read back.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use ksymrelo_core::gen::{self, GenOptions, Layout};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::lookup;
use ksymrelo_core::object::{Extern, Site};

use crate::error::{Error, ResolverFault, Result};
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
        .map_err(|e| Error::bpf("creating the loader's blob map", e))?;
    sys::map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &blob)
        .map_err(|e| Error::bpf("writing the loader blob", e))?;
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
        btf: None,
        signature: None,
    })
    .map_err(|e| Error::bpf("loading the in-kernel resolver", e))?;
    let started = std::time::Instant::now();
    let run = sys::prog_test_run(prog.as_fd(), &mut sys::TestRun::default())
        .map_err(|e| Error::bpf("running the in-kernel resolver", e))?;
    let run_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    sys::map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut blob)
        .map_err(|e| Error::bpf("reading the loader blob back", e))?;

    // Take the module fds first, so they are closed on every path below.
    let mut module_fds = Vec::new();
    let patched = gen::patched_insns(&blob, &layout)?.to_vec();
    for site in sites {
        let at = site.insn_idx.get();
        let fd = match site.kind {
            ksymrelo_core::object::SiteKind::Ld64 if patched[at].src_reg() == ksymrelo_core::bpf::pseudo::BTF_ID => {
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
        return Err(Error::ResolverFault(ResolverFault::Returned(run.retval as i32)));
    }
    Ok(InKernel {
        insns: patched,
        fd_array,
        module_fds,
        layout,
        run_ns,
    })
}

/// Module BTF objects the in-kernel lookups returned fds for, one entry per
/// object (the kernel installs a new fd per lookup; duplicates are closed).
#[derive(Debug, Default)]
pub struct LookupModules {
    /// `(BTF object id, module name, fd)` in first-seen order.
    pub modules: Vec<(u32, String, OwnedFd)>,
}

/// Runs the in-kernel resolver ([`ksymrelo_core::lookup`]) over `queries`
/// and returns one answer per query. A BTF answer's `fd`, when non-zero, is
/// one of `modules`' fds (the same module's other fds are closed).
///
/// Errors: the kernel refusing the program (no `CAP_BPF`, a kernel older
/// than 5.17 without `bpf_loop`, …, with the verifier log), or an answer
/// that is neither found nor `ENOENT` (e.g. `EPERM` for addresses when
/// `kptr_restrict` hides them from this process).
pub fn lookup(queries: &[lookup::Query<'_>]) -> Result<(Vec<lookup::Answer>, LookupModules)> {
    let mut modules = LookupModules::default();
    if queries.is_empty() {
        return Ok((Vec::new(), modules));
    }
    let table = lookup::plan(queries)?;
    let mut program = [Insn::default(); lookup::PROGRAM_LEN];
    let mut value = vec![0u8; table.value_size as usize];
    lookup::emit(queries, &mut program, &mut value)?;

    let map = sys::map_create(sys::BPF_MAP_TYPE_ARRAY, 4, table.value_size, 1, "ksymrelo_lookup")
        .map_err(|e| Error::bpf("creating the in-kernel resolver's table", e))?;
    sys::map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &value)
        .map_err(|e| Error::bpf("writing the in-kernel resolver's table", e))?;
    let fd_array = [map.as_raw_fd()];
    let btf = sys::btf_load(&lookup::PROGRAM_BTF).map_err(|e| Error::bpf("loading the in-kernel resolver's BTF", e))?;
    let func_info: Vec<u8> = lookup::FUNC_INFO.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut log = vec![0u8; 1 << 16];
    let prog = sys::prog_load(&mut sys::ProgLoad {
        prog_type: sys::BPF_PROG_TYPE_SYSCALL,
        insns: ksymrelo_core::insn::as_bytes(&program),
        license: c"Dual BSD/GPL",
        name: Some("ksymrelo_lookup"),
        prog_flags: sys::BPF_F_SLEEPABLE,
        expected_attach_type: 0,
        fd_array: Some(&fd_array),
        log: Some(&mut log),
        btf: Some(sys::ProgBtf {
            fd: btf.as_fd(),
            func_info: &func_info,
        }),
        signature: None,
    })
    .map_err(|e| Error::bpf("loading the in-kernel resolver", e))?;
    let run = sys::prog_test_run(prog.as_fd(), &mut sys::TestRun::default())
        .map_err(|e| Error::bpf("running the in-kernel resolver", e))?;
    sys::map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut value)
        .map_err(|e| Error::bpf("reading the in-kernel resolver's answers", e))?;

    // Take every module fd first, so each is closed on every path below.
    let mut answers = Vec::with_capacity(queries.len());
    for i in 0..queries.len() {
        let mut answer = lookup::answer(queries, &value, i)?;
        if let lookup::Answer::Btf { fd, .. } = &mut answer {
            if *fd > 0 {
                *fd = modules.adopt(*fd)?;
            }
        }
        answers.push(answer);
    }
    if run.retval != table.count {
        return Err(Error::ResolverFault(ResolverFault::Visited {
            visited: run.retval as i32,
            count: table.count,
        }));
    }
    for (q, a) in queries.iter().zip(&answers) {
        if let lookup::Answer::Failed(errno) = *a {
            let name = match q {
                lookup::Query::Address(n) | lookup::Query::Btf(n, _) => String::from_utf8_lossy(n),
            };
            return Err(Error::io(
                format!("the in-kernel lookup of '{name}'"),
                std::io::Error::from_raw_os_error(i32::try_from(-errno).unwrap_or(libc::EIO)),
            ));
        }
    }
    Ok((answers, modules))
}

impl LookupModules {
    /// Takes a module BTF fd the kernel installed; returns the fd kept for
    /// its BTF object (this one, or an earlier one of the same object).
    fn adopt(&mut self, fd: i32) -> Result<i32> {
        let Some(owned) = sys::adopt_kernel_fd(fd) else {
            return Err(Error::ResolverFault(ResolverFault::NotBpfFd(fd)));
        };
        let info = sys::btf_info(owned.as_fd()).map_err(|e| Error::bpf(format!("reading info of BTF fd {fd}"), e))?;
        if let Some((_, _, kept)) = self.modules.iter().find(|(id, _, _)| *id == info.id) {
            return Ok(kept.as_raw_fd());
        }
        self.modules.push((info.id, info.name, owned));
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksymrelo_core::btf::Kind;

    #[test]
    fn lookup_answers_like_kallsyms_and_btf() {
        if crate::sys::bpf_available().is_err() {
            ksymrelo_test_skip::skip("bpf(2) not permitted");
            return;
        }
        let queries = [
            lookup::Query::Address(b"vfs_read"),
            lookup::Query::Address(b"no_such_symbol_here"),
            lookup::Query::Btf(b"bpf_iter_num_new", Kind::Func),
            lookup::Query::Btf(b"no_such_kfunc", Kind::Func),
        ];
        let (answers, modules) = lookup(&queries).unwrap();
        assert!(matches!(answers[0], lookup::Answer::Address(a) if a > 0), "{answers:?}");
        assert_eq!(answers[1], lookup::Answer::NotFound);
        assert!(matches!(answers[2], lookup::Answer::Btf { btf_id, fd: 0 } if btf_id.0 > 0));
        assert_eq!(answers[3], lookup::Answer::NotFound);
        assert!(modules.modules.is_empty());
    }
}
