//! Kernel end-to-end: each runnable fixture relocated by ksymrelo, loaded
//! into the running kernel with its fd_array, run with BPF_PROG_TEST_RUN;
//! what the program writes into its context is checked against
//! /proc/kallsyms and the expected computation.

use std::os::fd::AsFd;

use ksymrelo_core::insn::{CALL, PSEUDO_KFUNC_CALL};
use ksymrelo_std::load::{load_program, LoadOptions};
use ksymrelo_std::sys::{prog_test_run, BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};
use ksymrelo_std::{relocate, relocate_with, Kernel, Mode, Relocation};
use ksymrelo_tests::{fixture_bytes, kallsyms_addr, kernel_usable, live_kernel_files};

/// Relocates `fixture` against the running kernel, loads its `syscall`
/// section and runs it over a context of u64 words (`ctx_in`).
/// Every mode is run; all must load, run and write the same context, and
/// patch the same instructions. Returns the user-mode relocation.
fn run(fixture: &str, ctx_in: &[u64]) -> (Relocation, Vec<u64>) {
    let (user, ctx) = run_mode(fixture, ctx_in, Mode::User);
    for mode in [Mode::Kernel, Mode::Auto] {
        let (r, c) = run_mode(fixture, ctx_in, mode);
        assert_eq!(c, ctx, "{fixture}: {mode:?} mode ran differently");
        assert_eq!(
            r.sections, user.sections,
            "{fixture}: {mode:?} mode patched differently"
        );
        assert_eq!(r.fd_array, user.fd_array, "{fixture}: {mode:?} fd_array");
        assert_eq!(
            ksymrelo_std::report::to_json(&r),
            ksymrelo_std::report::to_json(&user),
            "{fixture}: {mode:?} mode reports differently"
        );
    }
    (user, ctx)
}

fn run_mode(fixture: &str, ctx_in: &[u64], mode: Mode) -> (Relocation, Vec<u64>) {
    let r = relocate_with(&fixture_bytes(fixture), &Kernel::live(), mode).unwrap();
    let insns = &r.section("syscall").expect("a syscall section").insns;
    let prog = load_program(
        insns,
        &r.fd_array,
        &LoadOptions {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            license: c"GPL",
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            name: Some("ksymrelo_e2e"),
        },
    )
    .unwrap_or_else(|e| panic!("{fixture} ({mode:?}): {e}"));
    let mut ctx: Vec<u8> = ctx_in.iter().flat_map(|w| w.to_le_bytes()).collect();
    let result = prog_test_run(prog.as_fd(), Some(&mut ctx)).unwrap();
    assert_eq!(result.retval, 0, "{fixture} returned {}", result.retval);
    let words = ctx
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (r, words)
}

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

#[test]
fn typeless_addresses_match_kallsyms() {
    if !gate("typeless_addresses_match_kallsyms") {
        return;
    }
    let (_, c) = run("typeless.bpf.o", &[0; 10]);
    let names = ["vfs_read", "vfs_write", "schedule", "kfree", "vfs_open", "ksys_read"];
    for (i, name) in names.iter().enumerate() {
        assert_eq!(c[i], kallsyms_addr(name), "{name}");
    }
    assert_eq!(c[6], 0, "weak missing typeless is 0");
    assert_eq!(c[7], kallsyms_addr("vfs_read"), "second vfs_read site");
    assert_eq!(c[8], kallsyms_addr("vfs_read"), "third vfs_read site");
}

#[test]
fn kfuncs_run_with_weak_and_flavored_externs() {
    if !gate("kfuncs_run_with_weak_and_flavored_externs") {
        return;
    }
    let (r, c) = run("kfuncs.bpf.o", &[0, 0, 0, 0, 0, u64::from(std::process::id())]);
    assert_eq!(c[0] as i64, 45, "sum 0..10 through bpf_iter_num_*");
    assert_eq!(c[1] as i64, 10, "sum 0..5 through the ___ksymrelo flavor");
    assert_eq!(c[2], 1, "bpf_task_from_pid found this process");
    assert_eq!(c[3], 1, "weak bpf_rcu_read_lock exists");
    assert_eq!(c[4], 0, "weak missing kfunc not called");
    assert!(r.fd_array.is_empty(), "vmlinux kfuncs need no fd_array");
    // The flavored extern resolved to the same kernel function.
    let id = |n: &str| match r.extern_named(n).unwrap().resolution.outcome {
        ksymrelo_core::resolve::Outcome::Btf { btf_id, .. } => btf_id,
        o => panic!("{n}: {o:?}"),
    };
    assert_eq!(id("bpf_iter_num_next___ksymrelo"), id("bpf_iter_num_next"));
    // The missing weak kfunc's call is poisoned with its extern index.
    let missing = r.extern_named("ksymrelo_missing_kfunc").unwrap().resolution.index;
    let insns = &r.section("syscall").unwrap().insns;
    let poisoned = insns
        .iter()
        .filter(|i| i.code == CALL && i.imm() == 2_002_000_000 + missing as i32)
        .count();
    assert_eq!(poisoned, 1);
    assert!(insns.iter().any(|i| i.code == CALL && i.src_reg() == PSEUDO_KFUNC_CALL));
}

#[test]
fn mixed_fixture_runs() {
    if !gate("mixed_fixture_runs") {
        return;
    }
    let (_, c) = run("mixed.bpf.o", &[0, 0, 0, 0, 0, 0, 0, 0, u64::from(std::process::id())]);
    let names = [
        "vfs_read",
        "vfs_write",
        "schedule",
        "kfree",
        "do_sys_open",
        "bpf_prog_put",
    ];
    for (i, name) in names.iter().enumerate() {
        assert_eq!(c[i], kallsyms_addr(name), "{name}");
    }
    assert_eq!(c[6] as i64, 190);
    assert_eq!(c[7], 1);
}

#[test]
fn typed_vars_resolve_to_vmlinux_btf_ids() {
    if !live_kernel_files("typed_vars_resolve_to_vmlinux_btf_ids") {
        return;
    }
    // This kernel's verifier refuses typed variables (no data symbols in
    // kallsyms), so check the instructions against the BTF instead.
    let r = relocate(&fixture_bytes("typed.bpf.o"), &Kernel::live()).unwrap();
    if kernel_usable("typed vars in kernel mode") {
        let k = relocate_with(&fixture_bytes("typed.bpf.o"), &Kernel::live(), Mode::Kernel).unwrap();
        assert_eq!(
            k.sections, r.sections,
            "kernel mode: same typed-var patches, src_reg cleared for the weak miss"
        );
    }
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let btf = ksymrelo_core::btf::Btf::parse(&vmlinux).unwrap();
    let insns = &r.section("syscall").unwrap().insns;
    for site in &r.sites {
        let e = &r.externs[site.extern_idx as usize];
        let i = site.insn_idx as usize;
        match e.name.as_str() {
            "ksymrelo_no_such_var" => {
                assert_eq!((insns[i].src_reg(), insns[i].imm(), insns[i + 1].imm()), (0, 0, 0));
            }
            name => {
                let id = btf
                    .find_by_name_kind(name.as_bytes(), ksymrelo_core::btf::Kind::Var)
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (insns[i].src_reg(), insns[i].imm(), insns[i + 1].imm()),
                    (3, id as i32, 0),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn weak_kfuncs_present_run_absent_are_skipped() {
    if !gate("weak_kfuncs_present_run_absent_are_skipped") {
        return;
    }
    let (_, c) = run("weak_kfuncs.bpf.o", &[0; 3]);
    assert_eq!(c, [1, 0, 3]);
}

#[test]
fn multi_section_object_is_patched_identically_in_every_mode() {
    if !gate("multi_section_object_is_patched_identically_in_every_mode") {
        return;
    }
    // Sites in `.text`, `syscall` and `xdp`: one in-kernel loader covers all
    // sections, each symbol looked up once. (Running it needs `.text`
    // linked into each program, which is the loader's job, not ours.)
    let data = fixture_bytes("multi_section.bpf.o");
    let user = relocate_with(&data, &Kernel::live(), Mode::User).unwrap();
    let names: Vec<&str> = user.sections.iter().map(|s| s.name.as_str()).collect();
    for want in [".text", "syscall", "xdp"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert_eq!(user.extern_named("vfs_read").unwrap().sites, 3);
    let sections_with_sites: std::collections::BTreeSet<u32> = user.sites.iter().map(|s| s.section).collect();
    assert_eq!(sections_with_sites.len(), 3);
    for mode in [Mode::Kernel, Mode::Auto] {
        let r = relocate_with(&data, &Kernel::live(), mode).unwrap();
        assert_eq!(r.sections, user.sections, "{mode:?}");
    }
}

/// The runner on its own: one loader run over the `syscall` section of the
/// typeless fixture patches every site with the kallsyms address, obtains
/// no module fd, and reports how long the run took (measured in user space:
/// the kernel gives no duration for syscall programs).
#[test]
fn in_kernel_runner_patches_and_times_its_run() {
    if !gate("in_kernel_runner_patches_and_times_its_run") {
        return;
    }
    use ksymrelo_core::object::{ExternKind, Object};
    let data = fixture_bytes("typeless.bpf.o");
    let obj = Object::parse(&data).unwrap();
    let s = obj.elf().section_by_name(b"syscall").unwrap().unwrap();
    let (externs, sites) = ksymrelo_tests::externs_and_sites(&obj);
    let sites: Vec<_> = sites.into_iter().filter(|x| x.section == s.index).collect();
    let run = ksymrelo_std::inkernel::resolve_in_kernel(&externs, &sites, obj.insns(&s).unwrap()).unwrap();
    assert!(run.run_ns > 0, "run time not measured");
    assert!(run.module_fds.is_empty());
    for site in &sites {
        let e = &externs[site.extern_idx as usize];
        assert_eq!(e.kind, ExternKind::Typeless);
        let (lo, hi) = (run.insns[site.insn_idx as usize], run.insns[site.insn_idx as usize + 1]);
        let addr = u64::from(lo.imm() as u32) | (u64::from(hi.imm() as u32) << 32);
        let want = if e.weak && e.name.starts_with("ksymrelo_") {
            0
        } else {
            kallsyms_addr(e.name)
        };
        assert_eq!(addr, want, "{}", e.name);
    }
}

/// A loader that aborts on a strong lookup leaves later sites as prepatched:
/// a descriptor number the object carried there must not be taken for one
/// the loader obtained (the runner would close a descriptor of its caller).
#[test]
fn aborted_loader_leaves_the_callers_descriptors_alone() {
    if !gate("aborted_loader_leaves_the_callers_descriptors_alone") {
        return;
    }
    use ksymrelo_core::insn::{Insn, EXIT, LD_IMM64};
    use ksymrelo_core::object::{Extern, ExternKind, Site, SiteKind};
    use std::os::fd::AsRawFd;
    // A BPF object of ours (a tiny BTF), the kind the runner would adopt.
    let mut w = ksymrelo_tests::BtfWriter::base();
    w.add("int", ksymrelo_tests::kind::INT, 0, 4, &[32]);
    let ours = ksymrelo_std::sys::btf_load(&w.finish()).unwrap();
    let fd = ours.as_raw_fd();

    let typed = |name: &'static str, index: u32| Extern {
        name,
        essential_name: name,
        kind: ExternKind::Typed,
        weak: false,
        index,
        ..Extern::default()
    };
    let externs = [typed("ksymrelo_no_such_var", 0), typed("bpf_prog_active", 1)];
    let sites = [
        Site {
            section: 0,
            insn_idx: 0,
            extern_idx: 0,
            kind: SiteKind::Ld64,
        },
        Site {
            section: 0,
            insn_idx: 2,
            extern_idx: 1,
            kind: SiteKind::Ld64,
        },
    ];
    let insns = [
        Insn::new(LD_IMM64, 1, 0, 0, 0),
        Insn::default(),
        Insn::new(LD_IMM64, 2, 0, 0, 0),
        Insn::new(0, 0, 0, 0, fd),
        // r0 = 0 (BPF_ALU64 | BPF_MOV | BPF_K)
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    let err = ksymrelo_std::inkernel::resolve_in_kernel(&externs, &sites, &insns).unwrap_err();
    assert!(err.to_string().contains("ksymrelo_no_such_var"), "{err}");
    match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        Ok(target) if target.to_string_lossy().contains("btf") => drop(ours),
        other => {
            // Not ours to close any more.
            std::mem::forget(ours);
            panic!("the runner closed our descriptor {fd}: now {other:?}");
        }
    }
}

/// A generated fixture with `n` typeless ksyms and 5 kfunc calls
/// (tests/fixtures/gen_many.sh), relocated in every mode, loaded and run:
/// the xor of all addresses and the 8 stored one by one match kallsyms.
fn many(n: usize) {
    let fixture = format!("many_{n}.bpf.o");
    if !gate(&fixture) {
        return;
    }
    let kallsyms = ksymrelo_tests::kallsyms_map();
    if !ksymrelo_tests::generated_fits_this_kernel(&fixture, &kallsyms) {
        return;
    }
    let addr = |name: &str| kallsyms[name][0];
    // struct many_ctx: xor_all, addr[8], sum, task_found, pid (in).
    let mut ctx = [0u64; 12];
    ctx[11] = u64::from(std::process::id());
    let (r, c) = run(&fixture, &ctx);
    let typeless: Vec<&str> = r
        .externs
        .iter()
        .filter(|e| e.kind == ksymrelo_core::object::ExternKind::Typeless)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(typeless.len(), n);
    assert_eq!(r.externs.len(), n + 5, "and 5 kfuncs");
    let xor = typeless.iter().fold(0, |x, name| x ^ addr(name));
    assert_eq!(c[0], xor, "xor of the {n} addresses");
    // The stored ones, as the source names them: `c->addr[I] = (__u64)&NAME;`.
    let source = std::fs::read_to_string(ksymrelo_tests::fixture(&format!("many_{n}.bpf.c"))).unwrap();
    let mut stored = 0;
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("c->addr[") else {
            continue;
        };
        let (i, rest) = rest.split_once("] = (__u64)&").unwrap();
        let name = rest.strip_suffix(';').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(c[1 + i], addr(name), "addr[{i}] = {name}");
        stored += 1;
    }
    assert_eq!(stored, 8);
    assert_eq!(c[9] as i64, 190, "sum 0..20 through bpf_iter_num_*");
    assert_eq!(c[10], 1, "bpf_task_from_pid found this process");
    assert!(r.fd_array.is_empty(), "vmlinux kfuncs need no fd_array");
}

#[test]
fn many_100_ksyms_run_in_every_mode() {
    many(100);
}

#[test]
fn many_1000_ksyms_run_in_every_mode() {
    many(1000);
}
