//! Kernel end-to-end: each runnable fixture relocated by ksymrelo, loaded
//! into the running kernel with its fd_array, run with BPF_PROG_TEST_RUN;
//! what the program writes into its context is checked against
//! /proc/kallsyms and the expected computation.

use std::os::fd::AsFd;

use ksymrelo_core::bpf::{op, pseudo};
use ksymrelo_core::index::{ExternIdx, InsnIdx, SectionIndex};
use ksymrelo_std::load::{load_program, prog_test_run, LoadOptions, TestRun, BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};
use ksymrelo_std::{relocate, relocate_with, Kernel, Mode, Relocation};
use ksymrelo_tests::{
    assert_module_btf_fd, data_symbols_in_kallsyms, fixture_bytes, fixture_kfuncs_in_vmlinux, kallsyms_addr,
    kernel_has_kfunc, kernel_usable, kernel_version, live_kernel_files, missing_vmlinux_kfuncs, modules_loaded,
};

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
    let mut run = TestRun {
        ctx_in: Some(&mut ctx),
        ..Default::default()
    };
    let result = prog_test_run(prog.as_fd(), &mut run).unwrap();
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
    let test = "kfuncs_run_with_weak_and_flavored_externs";
    if !gate(test) || !fixture_kfuncs_in_vmlinux("kfuncs.bpf.o") {
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
        .filter(|i| i.code == op::CALL && i.imm() == 2_002_000_000 + missing.0 as i32)
        .count();
    assert_eq!(poisoned, 1);
    assert!(insns
        .iter()
        .any(|i| i.code == op::CALL && i.src_reg() == pseudo::KFUNC_CALL));
}

#[test]
fn mixed_fixture_runs() {
    if !gate("mixed_fixture_runs") || !fixture_kfuncs_in_vmlinux("mixed.bpf.o") {
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
        let e = &r.externs[site.extern_idx.get()];
        let i = site.insn_idx.get();
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
    let (r, c) = run("weak_kfuncs.bpf.o", &[0; 3]);
    if kernel_has_kfunc("bpf_iter_num_new") {
        assert_eq!(c, [1, 0, 3]);
        return;
    }
    // A kernel without bpf_iter_num_* (before 6.4): the program still
    // loads, its calls poisoned behind `if (f)` tests that read zeros.
    assert_eq!(c, [0, 0, 0], "no iterator kfuncs here: nothing called");
    let insns = &r.section("syscall").unwrap().insns;
    for name in ["bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy"] {
        let e = r.extern_named(name).unwrap();
        assert!(!e.resolution.is_resolved() && e.poisoned, "{name}");
        let poison = 2_002_000_000 + e.resolution.index.0 as i32;
        assert!(
            insns.iter().any(|i| i.code == op::CALL && i.imm() == poison),
            "{name}'s call poisoned"
        );
    }
}

#[test]
fn multi_section_object_is_patched_identically_in_every_mode() {
    let test = "multi_section_object_is_patched_identically_in_every_mode";
    if !gate(test) || !fixture_kfuncs_in_vmlinux("multi_section.bpf.o") {
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
    let sections_with_sites: std::collections::BTreeSet<u32> = user.sites.iter().map(|s| s.section.0).collect();
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
        let e = &externs[site.extern_idx.get()];
        assert_eq!(e.kind, ExternKind::Typeless);
        let (lo, hi) = (run.insns[site.insn_idx.get()], run.insns[site.insn_idx.get() + 1]);
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
    use ksymrelo_core::insn::Insn;
    use ksymrelo_core::object::{Extern, ExternKind, Site, SiteKind};
    use std::os::fd::AsRawFd;
    // A BPF object of ours (a tiny BTF), the kind the runner would adopt.
    let mut w = ksymrelo_tests::BtfWriter::base();
    w.add("int", ksymrelo_core::btf::Kind::Int, 0, 4, &[32]);
    let ours = ksymrelo_std::load::btf_load(&w.finish()).unwrap();
    let fd = ours.as_raw_fd();

    let typed = |name: &'static str, index: u32| Extern {
        name,
        essential_name: name,
        kind: ExternKind::Typed,
        weak: false,
        index: ExternIdx(index),
        ..Extern::default()
    };
    let externs = [typed("ksymrelo_no_such_var", 0), typed("bpf_prog_active", 1)];
    let sites = [
        Site {
            section: SectionIndex(0),
            insn_idx: InsnIdx(0),
            extern_idx: ExternIdx(0),
            kind: SiteKind::Ld64,
        },
        Site {
            section: SectionIndex(0),
            insn_idx: InsnIdx(2),
            extern_idx: ExternIdx(1),
            kind: SiteKind::Ld64,
        },
    ];
    let insns = [
        Insn::new(op::LD_IMM64, 1, 0, 0, 0),
        Insn::default(),
        Insn::new(op::LD_IMM64, 2, 0, 0, 0),
        Insn::new(0, 0, 0, 0, fd),
        // r0 = 0 (BPF_ALU64 | BPF_MOV | BPF_K)
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(op::EXIT, 0, 0, 0, 0),
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

/// A fixture generated from this kernel's kallsyms with `n` typeless ksyms
/// and 5 kfunc calls (tests/src/generated.rs), relocated in every mode, loaded and run:
/// the xor of all addresses and the 8 stored one by one match kallsyms.
fn many(n: usize) {
    let fixture = format!("many_{n}.bpf.o");
    if !gate(&fixture) || !fixture_kfuncs_in_vmlinux(&fixture) {
        return;
    }
    let kallsyms = ksymrelo_tests::kallsyms_map();
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

// --- kernel modules and per-CPU variables (run in the VM suite) -------------

const BPF_PROG_TYPE_XDP: u32 = 6;
const XDP_PASS: u32 = 2;

/// Relocates `fixture` against `kernel` in `mode`; loads its `section` as
/// a program of `prog_type` and runs it (XDP: over `packet`, returning the
/// packet after the run; syscall: over `packet` as its context). The load
/// error (with the verifier log) is returned as text.
fn relocate_and_run(
    fixture: &str,
    kernel: &Kernel,
    mode: Mode,
    section: &str,
    packet: &[u8],
) -> (Relocation, Result<(u32, Vec<u8>), String>) {
    let r =
        relocate_with(&fixture_bytes(fixture), kernel, mode).unwrap_or_else(|e| panic!("{fixture} ({mode:?}): {e}"));
    let insns = &r.section(section).expect("the program's section").insns;
    let xdp = section == "xdp";
    let loaded = load_program(
        insns,
        &r.fd_array,
        &LoadOptions {
            prog_type: if xdp { BPF_PROG_TYPE_XDP } else { BPF_PROG_TYPE_SYSCALL },
            license: c"GPL",
            prog_flags: if xdp { 0 } else { BPF_F_SLEEPABLE },
            expected_attach_type: 0,
            name: Some("ksymrelo_e2e"),
        },
    );
    let prog = match loaded {
        Ok(p) => p,
        Err(e) => {
            let log = match &e {
                ksymrelo_std::Error::Bpf { source, .. } => source.verifier_log().unwrap_or(""),
                _ => "",
            };
            return (r, Err(format!("{e}\n{log}")));
        }
    };
    let mut out = packet.to_vec();
    let result = if xdp {
        let mut data_out = vec![0u8; packet.len() + 256];
        let res = prog_test_run(
            prog.as_fd(),
            &mut TestRun {
                data_in: Some(packet),
                data_out: Some(&mut data_out),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{fixture} ({mode:?}): test run: {e}"));
        data_out.truncate(res.data_size_out as usize);
        out = data_out;
        res
    } else {
        let mut run = TestRun {
            ctx_in: Some(&mut out),
            ..Default::default()
        };
        prog_test_run(prog.as_fd(), &mut run).unwrap_or_else(|e| panic!("{fixture} ({mode:?}): test run: {e}"))
    };
    (r, Ok((result.retval, out)))
}

/// `__s32` words of a packet.
fn words32(bytes: &[u8], n: usize) -> Vec<i32> {
    bytes[..n * 4]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Every mode's relocation of one object with one [`Kernel`]: the same
/// instructions, fd_array and report (fds included: a module has one fd in
/// a Kernel, whichever mode found it).
fn assert_modes_agree(fixture: &str, user: &Relocation, other: &Relocation, mode: Mode) {
    assert_eq!(
        other.sections, user.sections,
        "{fixture}: {mode:?} mode patched differently"
    );
    assert_eq!(other.fd_array, user.fd_array, "{fixture}: {mode:?} fd_array");
    assert_eq!(
        ksymrelo_std::report::to_json(other),
        ksymrelo_std::report::to_json(user),
        "{fixture}: {mode:?} mode reports differently"
    );
}

/// The kfunc call sites of `r`'s `section`: (extern name, off, imm).
fn kfunc_calls(r: &Relocation, section: &str) -> Vec<(String, i16, i32)> {
    let sec = r.section(section).unwrap();
    r.sites
        .iter()
        .filter(|s| s.section == sec.index)
        .filter(|s| s.kind == ksymrelo_core::object::SiteKind::Call)
        .map(|s| {
            let i = sec.insns[s.insn_idx.get()];
            assert_eq!(i.code, op::CALL);
            let name = r.externs[s.extern_idx.get()].name.clone();
            if r.externs[s.extern_idx.get()].resolution.is_resolved() {
                assert_eq!(i.src_reg(), pseudo::KFUNC_CALL, "{name}");
            }
            (name, i.off(), i.imm())
        })
        .collect()
}

/// The BTF ids of FUNCs or VARs in `module`'s BTF now (`"vmlinux"` for
/// vmlinux's), by name. Looked up once per test: under TCG parsing
/// vmlinux BTF takes a while.
fn btf_ids(module: &str, names: &[&str], kind: ksymrelo_core::btf::Kind) -> std::collections::HashMap<String, u32> {
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let base = ksymrelo_core::btf::Btf::parse(&vmlinux).unwrap();
    let data = if module == "vmlinux" {
        Vec::new()
    } else {
        std::fs::read(format!("/sys/kernel/btf/{module}")).unwrap()
    };
    let split;
    let btf = if module == "vmlinux" {
        &base
    } else {
        split = ksymrelo_core::btf::Btf::parse_split(&data, &base).unwrap();
        &split
    };
    names
        .iter()
        .map(|&n| {
            let id = btf
                .find_by_name_kind(n.as_bytes(), kind)
                .unwrap()
                .unwrap_or_else(|| panic!("{n} not in {module}'s BTF"));
            (n.to_owned(), id)
        })
        .collect()
}

/// kfuncs of nf_conntrack and nf_nat in one XDP program: one fd_array slot
/// per module (1 and 2), the module BTF's slot in each call's `off`, the
/// same result in every mode, and a program that runs: a lookup of a
/// connection nobody made finds nothing (-ENOENT), an allocated one takes
/// a NAT mapping and is inserted.
#[test]
fn kfuncs_of_two_modules_share_slots_per_module_and_run() {
    let test = "kfuncs_of_two_modules_share_slots_per_module_and_run";
    if !gate(test) || !modules_loaded(test, &["nf_conntrack", "nf_nat"]) {
        return;
    }
    let fixture = "conntrack.bpf.o";
    let kernel = Kernel::live();
    let func = ksymrelo_core::btf::Kind::Func;
    let mut ids = btf_ids(
        "nf_conntrack",
        &[
            "bpf_xdp_ct_lookup",
            "bpf_xdp_ct_alloc",
            "bpf_ct_insert_entry",
            "bpf_ct_release",
        ],
        func,
    );
    ids.extend(btf_ids("nf_nat", &["bpf_ct_set_nat_info"], func));
    let mut user: Option<Relocation> = None;
    for (n, mode) in [Mode::User, Mode::Kernel, Mode::Auto].into_iter().enumerate() {
        // A source port of its own per run: each run inserts a connection.
        let mut packet = vec![0u8; 64];
        packet[..4].copy_from_slice(&(100 + n as u32).to_le_bytes());
        let (r, run) = relocate_and_run(fixture, &kernel, mode, "xdp", &packet);
        let (retval, out) = run.unwrap_or_else(|e| panic!("{fixture} ({mode:?}) refused: {e}"));
        assert_eq!(retval, XDP_PASS, "{mode:?}");
        assert_eq!(
            words32(&out, 6),
            [1, -2, 1, 0, 1, 0x6b73796d],
            "{mode:?}: lookup NULL with -ENOENT, alloc, NAT set, inserted, marker"
        );
        assert_eq!(
            r.fd_array.len(),
            3,
            "{mode:?}: slot 0 and one per module: {:?}",
            r.fd_array
        );
        assert_eq!(r.fd_array[0], 0);
        let ct_id = assert_module_btf_fd(r.fd_array[1], "nf_conntrack");
        let nat_id = assert_module_btf_fd(r.fd_array[2], "nf_nat");
        assert_ne!(ct_id, nat_id);
        for (name, off, imm) in kfunc_calls(&r, "xdp") {
            let (module, slot) = if name == "bpf_ct_set_nat_info" {
                ("nf_nat", 2)
            } else {
                ("nf_conntrack", 1)
            };
            assert_eq!(off, slot, "{mode:?}: {name} calls through slot {slot}");
            assert_eq!(imm as u32, ids[&name], "{name} in {module}");
        }
        for e in &r.externs {
            let want = if e.name == "bpf_ct_set_nat_info" {
                "nf_nat"
            } else {
                "nf_conntrack"
            };
            assert_eq!(e.module.as_deref(), Some(want), "{}", e.name);
        }
        let mut held: Vec<&str> = r.modules.iter().map(|m| m.name.as_str()).collect();
        held.sort_unstable();
        assert_eq!(held, ["nf_conntrack", "nf_nat"], "the relocation holds both modules");
        match &user {
            None => user = Some(r),
            Some(u) => assert_modes_agree(fixture, u, &r, mode),
        }
    }
}

/// Typed per-CPU variables, vmlinux's (bpf_prog_active, runqueues: BTF
/// object fd 0) and a module's (x_tables' xt_recseq: its BTF fd in the
/// second ld_imm64 slot), loaded and run in every mode.
#[test]
fn typed_percpu_vars_of_vmlinux_and_a_module_run() {
    let test = "typed_percpu_vars_of_vmlinux_and_a_module_run";
    if !gate(test)
        || !modules_loaded(test, &["x_tables"])
        || !data_symbols_in_kallsyms(test, &["bpf_prog_active", "runqueues", "xt_recseq"])
    {
        return;
    }
    let fixture = "percpu.bpf.o";
    let kernel = Kernel::live();
    let kallsyms = ksymrelo_tests::kallsyms_map();
    let var = ksymrelo_core::btf::Kind::Var;
    let mut ids = btf_ids("vmlinux", &["bpf_prog_active", "runqueues"], var);
    ids.extend(btf_ids("x_tables", &["xt_recseq"], var));
    let mut user: Option<Relocation> = None;
    for mode in [Mode::User, Mode::Kernel, Mode::Auto] {
        let (r, run) = relocate_and_run(fixture, &kernel, mode, "syscall", &[0u8; 40]);
        let (retval, ctx) = run.unwrap_or_else(|e| panic!("{fixture} ({mode:?}) refused: {e}"));
        assert_eq!(retval, 0);
        let c: Vec<u64> = ctx
            .chunks(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let (active, rq0, recseq_here, read, recseq0) = (c[0], c[1], c[2], c[3], c[4]);
        assert!(active < 16, "{mode:?}: bpf_prog_active {active}");
        assert_eq!(read as i64, 0, "{mode:?}: reading this CPU's xt_recseq");
        assert_ne!(rq0, 0, "{mode:?}: CPU 0's runqueues");
        assert_ne!(recseq0, 0, "{mode:?}: CPU 0's xt_recseq");
        assert_ne!(recseq_here, 0, "{mode:?}: this CPU's xt_recseq");
        // Both are CPU 0's copies: the same per-CPU offset from the
        // symbols' kallsyms addresses.
        assert_eq!(
            rq0.wrapping_sub(kallsyms["runqueues"][0]),
            recseq0.wrapping_sub(kallsyms["xt_recseq"][0]),
            "{mode:?}: CPU 0's per-CPU offset"
        );
        assert!(r.fd_array.is_empty(), "variables need no fd_array");
        let insns = &r.section("syscall").unwrap().insns;
        let mut recseq_sites = 0;
        for site in &r.sites {
            let e = &r.externs[site.extern_idx.get()];
            let i = site.insn_idx.get();
            let fd = match e.name.as_str() {
                "xt_recseq" => {
                    recseq_sites += 1;
                    assert_module_btf_fd(insns[i + 1].imm(), "x_tables");
                    insns[i + 1].imm()
                }
                _ => 0,
            };
            assert_eq!(
                (insns[i].src_reg(), insns[i].imm() as u32, insns[i + 1].imm()),
                (ksymrelo_core::bpf::pseudo::BTF_ID, ids[&e.name], fd),
                "{mode:?}: {}",
                e.name
            );
        }
        assert_eq!(recseq_sites, 2);
        match &user {
            None => user = Some(r),
            Some(u) => assert_modes_agree(fixture, u, &r, mode),
        }
    }
}

/// typed.bpf.o, relocated everywhere, runs where kallsyms has data symbols.
#[test]
fn typed_vmlinux_vars_run() {
    let test = "typed_vmlinux_vars_run";
    if !gate(test) || !data_symbols_in_kallsyms(test, &["bpf_prog_active", "runqueues"]) {
        return;
    }
    let (_, c) = run("typed.bpf.o", &[0; 4]);
    assert!(c[0] < 16, "bpf_prog_active {}", c[0]);
    assert_ne!(c[1], 0, "CPU 0's runqueues");
    assert_eq!(c[3], 0, "the weak missing variable is NULL");
}

/// Weak module kfuncs behind bpf_ksym_exists(): an ld_imm64 of the
/// function (BTF id, module BTF fd) before the call. Linux 6.4 and later
/// load and run it; older verifiers refuse an ld_imm64 of a FUNC, which is
/// asserted too.
#[test]
fn weak_module_kfuncs_with_ksym_exists() {
    let test = "weak_module_kfuncs_with_ksym_exists";
    if !gate(test) || !modules_loaded(test, &["nf_conntrack"]) {
        return;
    }
    let fixture = "weak_module.bpf.o";
    let kernel = Kernel::live();
    let supports_ld_imm64_kfunc = kernel_version() >= (6, 4);
    let ids = btf_ids(
        "nf_conntrack",
        &["bpf_xdp_ct_lookup", "bpf_ct_release"],
        ksymrelo_core::btf::Kind::Func,
    );
    let mut user: Option<Relocation> = None;
    for mode in [Mode::User, Mode::Kernel, Mode::Auto] {
        let (r, run) = relocate_and_run(fixture, &kernel, mode, "xdp", &[0u8; 64]);
        assert_eq!(r.fd_array.len(), 2, "{mode:?}: {:?}", r.fd_array);
        let ct_fd = r.fd_array[1];
        assert_module_btf_fd(ct_fd, "nf_conntrack");
        let insns = &r.section("xdp").unwrap().insns;
        let missing = r.extern_named("ksymrelo_missing_kfunc").unwrap();
        assert!(missing.poisoned);
        for site in &r.sites {
            let e = &r.externs[site.extern_idx.get()];
            let i = insns[site.insn_idx.get()];
            match (site.kind, e.name.as_str()) {
                (ksymrelo_core::object::SiteKind::Ld64, "ksymrelo_missing_kfunc") => {
                    let hi = insns[site.insn_idx.get() + 1];
                    assert_eq!((i.src_reg(), i.imm(), hi.imm()), (0, 0, 0));
                }
                (ksymrelo_core::object::SiteKind::Ld64, name) => {
                    let hi = insns[site.insn_idx.get() + 1];
                    assert_eq!(
                        (i.src_reg(), i.imm() as u32, hi.imm()),
                        (ksymrelo_core::bpf::pseudo::BTF_ID, ids[name], ct_fd),
                        "{mode:?}: {name}'s ld_imm64"
                    );
                }
                (_, "ksymrelo_missing_kfunc") => {
                    assert_eq!(
                        (i.code, i.src_reg(), i.imm()),
                        (op::CALL, 0, 2_002_000_000 + missing.resolution.index.0 as i32)
                    );
                }
                (_, name) => assert_eq!((i.src_reg(), i.off()), (pseudo::KFUNC_CALL, 1), "{mode:?}: {name}"),
            }
        }
        match run {
            Ok((retval, out)) => {
                assert!(supports_ld_imm64_kfunc, "{mode:?}: loaded on a kernel before 6.4");
                assert_eq!(retval, XDP_PASS);
                assert_eq!(
                    words32(&out, 2),
                    [1, 0],
                    "{mode:?}: present ones called, the missing one not"
                );
            }
            Err(e) => {
                assert!(!supports_ld_imm64_kfunc, "{mode:?}: refused: {e}");
                assert!(e.contains("isn't KIND_VAR"), "{mode:?}: refused, not as expected: {e}");
                eprintln!("{test}: refused as expected before 6.4 ({mode:?})");
            }
        }
        match &user {
            None => user = Some(r),
            Some(u) => assert_modes_agree(fixture, u, &r, mode),
        }
    }
}

/// A kernel without some kfuncs a fixture calls (Linux 6.1: bpf_iter_num_*,
/// bpf_task_from_pid): strong ones make every mode fail naming the first
/// missing extern in libbpf's words; weak ones still load and run
/// (weak_kfuncs_present_run_absent_are_skipped).
#[test]
fn strong_kfuncs_this_kernel_lacks_name_the_first_missing() {
    let test = "strong_kfuncs_this_kernel_lacks_name_the_first_missing";
    if !live_kernel_files(test) {
        return;
    }
    let missing = missing_vmlinux_kfuncs("mixed.bpf.o");
    let Some(first) = missing.first() else {
        ksymrelo_tests::skip("this kernel has every kfunc mixed.bpf.o calls");
        return;
    };
    let kernel = Kernel::live();
    let modes: &[Mode] = if kernel_usable(test) {
        &[Mode::User, Mode::Kernel, Mode::Auto]
    } else {
        &[Mode::User]
    };
    for &mode in modes {
        let err = relocate_with(&fixture_bytes("mixed.bpf.o"), &kernel, mode).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("extern (func ksym) '{first}': not found in kernel or module BTFs"),
            "{mode:?}"
        );
    }
}
