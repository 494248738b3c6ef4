//! Kernel end-to-end tests of the light-skeleton loader `ksymrelo gen`
//! writes (`ksymrelo_std::generate`): generated from each fixture, run
//! once inside the running kernel, it must
//! - hand the kernel, for every program, the instructions libbpf 1.7 (and
//!   1.1) hands to `BPF_PROG_LOAD` for the same object, subprograms
//!   appended, except for: map references (libbpf: `src_reg` 1/2 with map
//!   fds; the loader: 5/6 with map indexes — the maps are compared by
//!   name, value offsets exactly), module BTF fds and fd_array slots (only
//!   whether one is vmlinux's, 0, is compared: fds are numbers of each
//!   process, and the loader numbers slots per kfunc as gen_loader does),
//!   and libbpf 1.1's documented differences (tests/tests/differential.rs:
//!   no poisoning of weak kfunc calls, no flavored kfuncs, no module fd in
//!   an ld_imm64 of a module kfunc);
//! - load programs that run (`BPF_PROG_TEST_RUN` on the fds it returned)
//!   as the same object relocated in user space and loaded the ordinary
//!   way does;
//! - create the global-data maps, `.rodata` frozen;
//! - fail, naming the extern or program, and leave no descriptor behind.
//!
//! The module fixtures (conntrack, weak_module, percpu) and typed variables
//! (typed, percpu: the verifier needs data symbols in kallsyms) run in the
//! VM suite (tests/vm/run.sh).

use std::os::fd::{AsFd, AsRawFd};

use ksymrelo_core::bpf::{op, pseudo, POISON_CALL_KFUNC_BASE};
use ksymrelo_core::gen::Step;
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::ExternKind;
use ksymrelo_core::resolve::Outcome;
use ksymrelo_std::generate::{self, Ran};
use ksymrelo_std::load::{load_program, prog_test_run, LoadOptions, TestRun, BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};
use ksymrelo_std::loader_file::LoaderFile;
use ksymrelo_std::{relocate, Error, Kernel, Reason, Relocation};
use ksymrelo_tests::libbpf::{self, Oracle};
use ksymrelo_tests::{
    data_symbols_in_kallsyms, fds, fixture, fixture_bytes, fixture_kfuncs_in_vmlinux, in_vm, kallsyms_addr,
    kernel_has_kfunc, kernel_usable, kernel_version, live_kernel_files, modules_loaded,
};

// --- shared -----------------------------------------------------------------

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

/// The loader of fixture `obj`, generated as `ksymrelo gen` does.
fn generate(obj: &str) -> LoaderFile {
    generate::generate(
        &fixture_bytes(obj),
        &fixture(obj).to_string_lossy(),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("generate {obj}: {e}"))
}

fn gen_and_run(obj: &str) -> Result<Ran, Error> {
    generate::run(&generate(obj), &Default::default())
}

/// Each program's instructions as the loader handed them to the kernel:
/// from a successful run, or, when the kernel refused program `refused`,
/// from the blob of a second run of the bare loader (programs up to the
/// refused one; later ones were never patched).
fn loaded_insns(file: &LoaderFile, ran: &Result<Ran, Error>) -> Vec<(String, Vec<Insn>)> {
    match ran {
        Ok(ran) => ran.progs.iter().map(|(n, _, i)| (n.clone(), i.clone())).collect(),
        Err(Error::Loader {
            at: Step::Program(refused),
            ..
        }) => {
            let run = ksymrelo_std::skel::run_loader(&file.loader, &file.blob, file.ctx_size, None, None, 0).unwrap();
            assert_ne!(run.retval, 0, "the loader succeeded the second time");
            file.progs[..=*refused as usize]
                .iter()
                .map(|p| {
                    let start = p.blob_insns_off as usize;
                    let bytes = &run.blob[start..start + p.insn_cnt as usize * 8];
                    (p.name.clone(), ksymrelo_core::insn::insns(bytes).unwrap().to_vec())
                })
                .collect()
        }
        Err(e) => panic!("no instructions to compare: {e}"),
    }
}

/// What the user-space relocation of `obj` says about its externs: the
/// BTF ids of module kfuncs (libbpf 1.1 leaves their ld_imm64's second slot
/// 0), and the poison value of each unresolved weak kfunc.
struct Externs {
    module_kfunc_ids: Vec<u32>,
    poisons: Vec<i32>,
}

impl Externs {
    fn of(r: &Relocation) -> Self {
        let mut e = Externs {
            module_kfunc_ids: vec![],
            poisons: vec![],
        };
        for x in &r.externs {
            let res = x.resolution;
            match res.outcome {
                Outcome::Btf {
                    btf_id,
                    module: Some(_),
                    ..
                } if res.kind == ExternKind::Kfunc => e.module_kfunc_ids.push(btf_id.0),
                _ if res.kind == ExternKind::Kfunc && !res.is_resolved() => {
                    e.poisons.push(POISON_CALL_KFUNC_BASE + res.index.0 as i32)
                }
                _ => {}
            }
        }
        e
    }
}

/// One program's instructions, the loader's (`mine`, with map `names` by
/// index) against libbpf's (`theirs`), in full.
fn compare_program(
    what: &str,
    oracle: Oracle,
    mine: &[Insn],
    names: &[String],
    theirs: &libbpf::Program,
    externs: &Externs,
) {
    let t = &theirs.insns;
    assert_eq!(mine.len(), t.len(), "{what}: instruction count");
    let mut i = 0;
    while i < mine.len() {
        let (m, th) = (mine[i], t[i]);
        let pair = m.code == op::LD_IMM64;
        if pair {
            assert!(i + 1 < mine.len(), "{what}: #{i} ld_imm64 without its second slot");
        }
        match (m.code, m.src_reg()) {
            (op::LD_IMM64, pseudo::MAP_IDX | pseudo::MAP_IDX_VALUE) => {
                let want = if m.src_reg() == pseudo::MAP_IDX {
                    pseudo::MAP_FD
                } else {
                    pseudo::MAP_VALUE
                };
                assert_eq!(th.src_reg(), want, "{what}: #{i} {m:?} vs {th:?}");
                assert_eq!(
                    (m.code, m.dst_reg(), m.off()),
                    (th.code, th.dst_reg(), th.off()),
                    "{what}: #{i}"
                );
                let ours = names.get(m.imm() as usize).map(String::as_str);
                let libbpfs = theirs.map_named_by_fd(th.imm());
                assert!(ours.is_some(), "{what}: #{i}: map index {} out of range", m.imm());
                assert_eq!(ours, libbpfs, "{what}: #{i}: map identity");
                assert_eq!(mine[i + 1], t[i + 1], "{what}: #{} (map value offset)", i + 1);
            }
            (op::LD_IMM64, pseudo::BTF_ID) => {
                assert_eq!(m, th, "{what}: #{i} (BTF id)");
                let (m1, mut t1) = (mine[i + 1], t[i + 1]);
                let module_kfunc = externs.module_kfunc_ids.contains(&(m.imm() as u32));
                if oracle == Oracle::V1_1 && module_kfunc && t1.imm() == 0 {
                    // Documented: libbpf 1.1 leaves a module kfunc's fd out.
                    t1 = m1;
                }
                // Module BTF fds: only vmlinux (0) or a module (not 0).
                assert_eq!(
                    (m1.code, m1.dst_reg(), m1.src_reg(), m1.off(), m1.imm() != 0),
                    (t1.code, t1.dst_reg(), t1.src_reg(), t1.off(), t1.imm() != 0),
                    "{what}: #{} (BTF object: vmlinux or a module)",
                    i + 1
                );
                assert!(m1.imm() >= 0, "{what}: #{}: fd {}", i + 1, m1.imm());
            }
            (op::CALL, pseudo::KFUNC_CALL) => {
                assert_eq!(
                    (m.code, m.dst_reg(), m.src_reg(), m.imm(), m.off() != 0),
                    (th.code, th.dst_reg(), th.src_reg(), th.imm(), th.off() != 0),
                    "{what}: #{i} kfunc call {m:?} vs {th:?} (slot: vmlinux or a module)"
                );
            }
            (op::CALL, 0) if externs.poisons.contains(&m.imm()) && oracle == Oracle::V1_1 => {
                assert_eq!(m, Insn::new(op::CALL, 0, 0, 0, m.imm()), "{what}: #{i}");
                assert_eq!(
                    th,
                    Insn::new(op::CALL, 0, pseudo::KFUNC_CALL, 0, 0),
                    "{what}: #{i}: libbpf 1.1's unresolved weak kfunc call"
                );
            }
            _ => {
                assert_eq!(m, th, "{what}: #{i}");
                if pair {
                    assert_eq!(mine[i + 1], t[i + 1], "{what}: #{}", i + 1);
                }
            }
        }
        i += if pair { 2 } else { 1 };
    }
}

/// The fixture's loader, run here, hands the kernel libbpf's instructions
/// (every program, by name). `fake_load`: libbpf's harness goes on where
/// this kernel's verifier refuses a program, as the loader's refusal is
/// expected then (`refused`: the verifier's words).
fn same_insns_as_libbpf(obj: &str, oracle: Oracle, refused: Option<&str>) {
    let file = generate(obj);
    let ran = generate::run(&file, &Default::default());
    match (&ran, refused) {
        (Ok(_), None) => {}
        (
            Err(
                e @ Error::Loader {
                    at: Step::Program(_),
                    log,
                    ..
                },
            ),
            Some(words),
        ) => {
            let log = log.as_deref().unwrap_or("");
            assert!(log.contains(words), "{obj}: refused, not as expected: {e}\n{log}");
        }
        (Ok(_), Some(words)) => panic!("{obj}: loaded, the verifier was expected to refuse ({words})"),
        (Err(e), _) => panic!("{obj}: {e}"),
    }
    let mine = loaded_insns(&file, &ran);
    let names: Vec<String> = file.maps.iter().map(|m| m.name.clone()).collect();
    let Some(harness) = oracle.harness() else { return };
    // libbpf 1.1 writes no module BTF fd into an ld_imm64 of a module kfunc
    // (documented), so the kernel refuses its load of weak_module.bpf.o:
    // its harness fakes the load to show what it handed over.
    let fake_load = refused.is_some() || (obj == "weak_module.bpf.o" && oracle == Oracle::V1_1);
    let theirs = libbpf::programs(&harness, obj, fake_load)
        .unwrap_or_else(|e| panic!("libbpf {} failed on {obj}: {e}", oracle.version()));
    let externs = Externs::of(&relocate(&fixture_bytes(obj), &Kernel::live()).unwrap());
    if refused.is_none() {
        let mut a: Vec<&str> = mine.iter().map(|(n, _)| n.as_str()).collect();
        let mut b: Vec<&str> = theirs.iter().map(|p| p.name.as_str()).collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{obj}: the programs loaded");
    }
    assert!(!mine.is_empty(), "{obj}: no program");
    for (name, insns) in &mine {
        let t = theirs
            .iter()
            .find(|p| &p.name == name)
            .unwrap_or_else(|| panic!("{obj}: libbpf {} loaded no {name}", oracle.version()));
        let what = format!("{obj} program {name} vs libbpf {}", oracle.version());
        compare_program(&what, oracle, insns, &names, t, &externs);
    }
}

/// The modules a fixture's externs live in.
fn fixture_modules(obj: &str) -> &'static [&'static str] {
    match obj {
        "conntrack.bpf.o" => &["nf_conntrack", "nf_nat"],
        "weak_module.bpf.o" => &["nf_conntrack"],
        "percpu.bpf.o" => &["x_tables"],
        _ => &[],
    }
}

/// Runs the comparison with both oracles when `obj` applies to this kernel.
fn compare_fixture(obj: &str) {
    let test = format!("gen {obj}");
    let _g = fds::shared();
    if !gate(&test) {
        return;
    }
    let modules = fixture_modules(obj);
    if !modules.is_empty() && !modules_loaded(&test, modules) {
        return;
    }
    if !fixture_kfuncs_in_vmlinux(obj) {
        return;
    }
    let refused = match obj {
        "typed.bpf.o" | "percpu.bpf.o" => {
            let names: &[&str] = if obj == "typed.bpf.o" {
                &["bpf_prog_active", "runqueues"]
            } else {
                &["bpf_prog_active", "runqueues", "xt_recseq"]
            };
            let map = ksymrelo_tests::kallsyms_map();
            if names.iter().all(|n| map.contains_key(*n)) {
                None
            } else {
                assert!(!in_vm(), "{obj}: no data symbols in kallsyms inside the VM suite");
                // The verifier finds a typed ksym's address in kallsyms.
                Some("ldimm64 failed to find the address for kernel symbol")
            }
        }
        "weak_module.bpf.o" if kernel_version() < (6, 4) => Some("isn't KIND_VAR"),
        // SEC("syscall") programs are sleepable (libbpf's table): the
        // kernel refuses them LRU and per-CPU hash maps, as it would
        // libbpf's load; the maps and instructions are still compared.
        "maps.bpf.o" => Some("Sleepable programs can only use"),
        _ => None,
    };
    for oracle in Oracle::ALL {
        if obj == "kfuncs.bpf.o" && oracle == Oracle::V1_1 {
            // Documented: libbpf 1.1 refuses the flavored kfunc.
            let Some(harness) = oracle.harness() else { continue };
            let err = libbpf::programs(&harness, obj, false).expect_err("libbpf 1.1 loaded kfuncs.bpf.o");
            assert!(err.contains("bpf_iter_num_next___ksymrelo"), "{err}");
            continue;
        }
        same_insns_as_libbpf(obj, oracle, refused);
    }
}

macro_rules! same_as_libbpf {
    ($($test:ident: $obj:literal;)*) => {
        mod same_insns_as_libbpf {
            $(#[test]
            fn $test() {
                super::compare_fixture($obj);
            })*
        }
    };
}

same_as_libbpf! {
    typeless: "typeless.bpf.o";
    mixed: "mixed.bpf.o";
    kfuncs: "kfuncs.bpf.o";
    weak_kfuncs: "weak_kfuncs.bpf.o";
    multi_section: "multi_section.bpf.o";
    gen_data: "gen_data.bpf.o";
    // BTF-defined maps (an array map) and global data, subprograms and
    // callbacks, three program types.
    link: "link.bpf.o";
    // One BTF-defined map of each common type.
    maps: "maps.bpf.o";
    many_100: "many_100.bpf.o";
    many_1000: "many_1000.bpf.o";
    // Refused by the verifier where kallsyms lists no data symbols.
    typed: "typed.bpf.o";
    // Module fixtures: in the VM suite.
    conntrack: "conntrack.bpf.o";
    weak_module: "weak_module.bpf.o";
    percpu: "percpu.bpf.o";
}

/// Every fixture is covered above or by a failure test below; a new
/// fixture must be added to one of them.
#[test]
fn every_fixture_is_covered() {
    let covered = [
        "typeless",
        "mixed",
        "kfuncs",
        "weak_kfuncs",
        "multi_section",
        "gen_data",
        "typed",
        "conntrack",
        "weak_module",
        "percpu",
        "err_ambiguous",
        "err_kfunc_fwd",
        "err_kfunc_proto",
        "err_kfunc_typo",
        "err_strong_missing",
        "err_var_is_func",
        "err_var_type",
        "modules",
        "link",
        "maps",
    ];
    for e in std::fs::read_dir(fixture("")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".bpf.o") {
            assert!(covered.contains(&stem), "{name} is not covered by tests/tests/gen.rs");
        }
    }
}

// --- programs run as the user-space relocation's ---------------------------

fn words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A syscall program run over `ctx` (written back).
fn run_syscall(prog: std::os::fd::BorrowedFd<'_>, ctx: &[u64]) -> Vec<u64> {
    let mut c = bytes(ctx);
    let res = prog_test_run(
        prog,
        &mut TestRun {
            ctx_in: Some(&mut c),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(res.retval, 0);
    words(&c)
}

/// The fixture's `syscall` program run through its generated loader and
/// through the ordinary way (relocated in user space, loaded with its
/// fd_array), over the same context: both contexts after the runs.
fn run_both(obj: &str, ctx: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let ran = gen_and_run(obj).unwrap_or_else(|e| panic!("{obj}: {e}"));
    assert_eq!(ran.progs.len(), 1, "{obj}: one program");
    let mine = run_syscall(ran.progs[0].1.as_fd(), ctx);
    let r = relocate(&fixture_bytes(obj), &Kernel::live()).unwrap();
    let prog = load_program(
        &r.section("syscall").unwrap().insns,
        &r.fd_array,
        &LoadOptions {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            license: c"GPL",
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            name: Some("ksymrelo_gen"),
        },
    )
    .unwrap_or_else(|e| panic!("{obj} relocated in user space: {e}"));
    let theirs = run_syscall(prog.as_fd(), ctx);
    (mine, theirs)
}

#[test]
fn typeless_runs_as_relocated() {
    let _g = fds::shared();
    if !gate("typeless_runs_as_relocated") {
        return;
    }
    let (c, user) = run_both("typeless.bpf.o", &[0; 10]);
    assert_eq!(c, user);
    for (i, name) in ["vfs_read", "vfs_write", "schedule", "kfree", "vfs_open", "ksys_read"]
        .iter()
        .enumerate()
    {
        assert_eq!(c[i], kallsyms_addr(name), "{name}");
    }
    assert_eq!(c[6], 0, "weak missing typeless is 0");
    assert_eq!(c[7], kallsyms_addr("vfs_read"));
    assert_eq!(c[8], kallsyms_addr("vfs_read"));
}

#[test]
fn mixed_runs_as_relocated() {
    let _g = fds::shared();
    if !gate("mixed_runs_as_relocated") || !fixture_kfuncs_in_vmlinux("mixed.bpf.o") {
        return;
    }
    let mut ctx = [0u64; 9];
    ctx[8] = u64::from(std::process::id());
    let (c, user) = run_both("mixed.bpf.o", &ctx);
    assert_eq!(c, user);
    for (i, name) in [
        "vfs_read",
        "vfs_write",
        "schedule",
        "kfree",
        "do_sys_open",
        "bpf_prog_put",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(c[i], kallsyms_addr(name), "{name}");
    }
    assert_eq!((c[6] as i64, c[7]), (190, 1));
}

#[test]
fn kfuncs_run_as_relocated() {
    let _g = fds::shared();
    if !gate("kfuncs_run_as_relocated") || !fixture_kfuncs_in_vmlinux("kfuncs.bpf.o") {
        return;
    }
    let (c, user) = run_both("kfuncs.bpf.o", &[0, 0, 0, 0, 0, u64::from(std::process::id())]);
    assert_eq!(c, user);
    assert_eq!(
        &c[..5],
        [45, 10, 1, 1, 0],
        "iterators, flavor, task found, weak present, weak absent"
    );
}

#[test]
fn weak_kfuncs_run_as_relocated() {
    let _g = fds::shared();
    if !gate("weak_kfuncs_run_as_relocated") {
        return;
    }
    let (c, user) = run_both("weak_kfuncs.bpf.o", &[0; 3]);
    assert_eq!(c, user);
    if kernel_has_kfunc("bpf_iter_num_new") {
        assert_eq!(c, [1, 0, 3]);
    } else {
        assert_eq!(c, [0, 0, 0], "no iterator kfuncs here: nothing called");
    }
}

/// Two programs sharing `.text` functions (a static subprogram with a
/// kfunc loop, a global one): the loader links them as libbpf does, and
/// both run. (User space relocates sections, not linked programs: the
/// values are checked against kallsyms instead.)
#[test]
fn multi_section_programs_run() {
    let _g = fds::shared();
    if !gate("multi_section_programs_run") || !fixture_kfuncs_in_vmlinux("multi_section.bpf.o") {
        return;
    }
    let ran = gen_and_run("multi_section.bpf.o").unwrap();
    let names: Vec<&str> = ran.progs.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let (_, fd, _) = ran.progs.iter().find(|p| p.0 == "ms_syscall").unwrap();
    let c = run_syscall(fd.as_fd(), &[0, 0, 0, 0, 0, 0, u64::from(std::process::id())]);
    assert_eq!(c[0], kallsyms_addr("vfs_read"), "through the subprogram");
    assert_eq!(c[1], kallsyms_addr("vfs_read"));
    assert_eq!(c[2], kallsyms_addr("vfs_write"));
    assert_eq!(c[3], kallsyms_addr("schedule"), "through the global function");
    assert_eq!((c[4] as i64, c[5]), (45, 1));
    let (_, xdp, _) = ran.progs.iter().find(|p| p.0 != "ms_syscall").unwrap();
    let packet = [0u8; 64];
    let mut out = vec![0u8; 64 + 256];
    let res = prog_test_run(
        xdp.as_fd(),
        &mut TestRun {
            data_in: Some(&packet),
            data_out: Some(&mut out),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(res.retval, XDP_PASS, "the xdp program ran");
}

/// Generated fixtures: `n` typeless ksyms of this kernel and 5 kfunc calls.
fn many(n: usize) {
    let obj = format!("many_{n}.bpf.o");
    let _g = fds::shared();
    if !gate(&obj) || !fixture_kfuncs_in_vmlinux(&obj) {
        return;
    }
    let mut ctx = [0u64; 12];
    ctx[11] = u64::from(std::process::id());
    let (c, user) = run_both(&obj, &ctx);
    assert_eq!(c, user, "{obj}");
    assert_eq!((c[9] as i64, c[10]), (190, 1), "{obj}");
    assert_ne!(c[0], 0, "{obj}: xor of the addresses");
}

#[test]
fn many_100_runs_as_relocated() {
    many(100);
}

#[test]
fn many_1000_runs_as_relocated() {
    many(1000);
}

const XDP_PASS: u32 = 2;

/// nf_conntrack's and nf_nat's kfuncs in an XDP program (VM suite).
#[test]
fn conntrack_runs_as_relocated() {
    let test = "conntrack_runs_as_relocated";
    let _g = fds::shared();
    if !gate(test) || !modules_loaded(test, &["nf_conntrack", "nf_nat"]) {
        return;
    }
    let ran = gen_and_run("conntrack.bpf.o").unwrap();
    let r = relocate(&fixture_bytes("conntrack.bpf.o"), &Kernel::live()).unwrap();
    let user = load_program(
        &r.section("xdp").unwrap().insns,
        &r.fd_array,
        &LoadOptions {
            prog_type: 6,
            license: c"GPL",
            prog_flags: 0,
            expected_attach_type: 0,
            name: Some("ksymrelo_gen"),
        },
    )
    .unwrap();
    // A source port of its own per run: each run inserts a connection.
    for (n, fd) in [ran.progs[0].1.as_fd(), user.as_fd()].into_iter().enumerate() {
        let mut packet = vec![0u8; 64];
        packet[..4].copy_from_slice(&(300 + n as u32).to_le_bytes());
        let mut out = vec![0u8; 64 + 256];
        let res = prog_test_run(
            fd,
            &mut TestRun {
                data_in: Some(&packet),
                data_out: Some(&mut out),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(res.retval, XDP_PASS);
        let w: Vec<i32> = out[..24]
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(w, [1, -2, 1, 0, 1, 0x6b73796d], "run {n}");
    }
}

/// Typed per-CPU variables of vmlinux and x_tables (VM suite).
#[test]
fn percpu_runs_as_relocated() {
    let test = "percpu_runs_as_relocated";
    let _g = fds::shared();
    if !gate(test)
        || !modules_loaded(test, &["x_tables"])
        || !data_symbols_in_kallsyms(test, &["bpf_prog_active", "runqueues", "xt_recseq"])
    {
        return;
    }
    let (c, user) = run_both("percpu.bpf.o", &[0; 5]);
    assert_eq!(c[3] as i64, 0, "reading this CPU's xt_recseq");
    assert_eq!((c[1], c[4]), (user[1], user[4]), "CPU 0's copies");
    assert!(c[0] < 16 && c[1] != 0 && c[2] != 0 && c[4] != 0, "{c:?}");
}

/// typed.bpf.o where kallsyms has data symbols (VM suite).
#[test]
fn typed_runs_as_relocated() {
    let test = "typed_runs_as_relocated";
    let _g = fds::shared();
    if !gate(test) || !data_symbols_in_kallsyms(test, &["bpf_prog_active", "runqueues"]) {
        return;
    }
    let (c, user) = run_both("typed.bpf.o", &[0; 4]);
    assert_eq!((c[1], c[3]), (user[1], user[3]));
    assert!(c[0] < 16 && c[1] != 0, "{c:?}");
    assert_eq!(c[3], 0, "the weak missing variable is NULL");
}

// --- global data ----------------------------------------------------------

/// `.data`, `.rodata` and `.bss` of gen_data.bpf.o: created with their
/// initial values, written by a run, read back through the fds the loader
/// returned; `.rodata` frozen.
#[test]
fn global_data_through_the_loaders_map_fds() {
    let _g = fds::shared();
    if !gate("global_data_through_the_loaders_map_fds") {
        return;
    }
    let ran = gen_and_run("gen_data.bpf.o").unwrap();
    let names: Vec<&str> = ran.maps.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["gen_data.data", "gen_data.rodata", "gen_data.bss"]);
    let map = |name: &str| ran.maps.iter().find(|m| m.0 == name).unwrap().1.as_fd();
    let value = |name: &str, size: usize| {
        let mut v = vec![0u8; size];
        ksymrelo_std::skel::map_lookup(map(name), 0, &mut v).unwrap();
        words(&v)
    };
    assert_eq!(value("gen_data.data", 8), [5], "initial .data");
    assert_eq!(value("gen_data.rodata", 8), [3], "initial .rodata");
    assert_eq!(value("gen_data.bss", 16), [0, 0], "initial .bss");
    let c = run_syscall(ran.progs[0].1.as_fd(), &[10, 0, 0]);
    assert_eq!(c, [10, 33, 3], "(5 + 10) * 2 + 3");
    assert_eq!(value("gen_data.data", 8), [15]);
    assert_eq!(value("gen_data.bss", 16), [33, kallsyms_addr("vfs_read")]);
    let c = run_syscall(ran.progs[0].1.as_fd(), &[1, 0, 0]);
    assert_eq!(c[1], 35, "the program's .data persists");
    // Frozen: user space cannot write .rodata; .data it can.
    assert!(map_update(map("gen_data.rodata"), &7u64.to_le_bytes()).is_err());
    assert_eq!(value("gen_data.rodata", 8), [3]);
    map_update(map("gen_data.data"), &100u64.to_le_bytes()).unwrap();
    let c = run_syscall(ran.progs[0].1.as_fd(), &[0, 0, 0]);
    assert_eq!(c[1], 203, "the program sees .data written through the fd");
}

/// `BPF_MAP_UPDATE_ELEM` of key 0 (the library offers no update).
fn map_update(fd: std::os::fd::BorrowedFd<'_>, value: &[u8]) -> std::io::Result<()> {
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let key = 0u32;
    let attr = Attr {
        map_fd: fd.as_raw_fd() as u32,
        pad: 0,
        key: &key as *const u32 as u64,
        value: value.as_ptr() as u64,
        flags: 0,
    };
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    // SAFETY: attr and the buffers it points to outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_UPDATE_ELEM,
            &attr as *const Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

// --- failures ---------------------------------------------------------------

/// `f` fails and leaves this process's descriptors as they were.
fn fails_without_fds<T: std::fmt::Debug>(what: &str, f: impl Fn() -> Result<T, Error>) -> Error {
    // Once first: lazily opened process-wide things (the kernel's BTF...).
    let _ = f();
    let before = fds::count();
    let err = f().expect_err(what);
    assert_eq!(fds::count(), before, "{what}: descriptors left behind ({err})");
    err
}

#[test]
fn failures_name_the_extern_or_program_and_leave_no_fd() {
    let test = "failures_name_the_extern_or_program_and_leave_no_fd";
    let _g = fds::exclusive();
    if !gate(test) {
        return;
    }
    // A strong typeless ksym no kernel has: libbpf's words, not_found.
    let err = fails_without_fds("err_strong_missing", || gen_and_run("err_strong_missing.bpf.o"));
    assert_eq!(err.reason(), Reason::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains("extern 'ksymrelo_strong_missing' (strong): not resolved"),
        "{err}"
    );
    // A strong kfunc no kernel has.
    let err = fails_without_fds("err_kfunc_typo", || gen_and_run("err_kfunc_typo.bpf.o"));
    assert_eq!(err.reason(), Reason::NotFound, "{err}");
    let name = kfunc_typo_name();
    assert!(err.to_string().contains(&format!("'{name}'")), "{err}");
    // Types the loader cannot compare: the pre-flight refuses, as C.
    for (obj, name) in [
        ("err_kfunc_proto.bpf.o", "bpf_iter_num_new"),
        ("err_var_type.bpf.o", "bpf_prog_active"),
        ("err_kfunc_fwd.bpf.o", "bpf_task_release"),
    ] {
        let in_vmlinux = if obj == "err_var_type.bpf.o" {
            true
        } else {
            kernel_has_kfunc(name)
        };
        if !in_vmlinux {
            // Linux 6.1: nothing to compare with; the loader decides (and
            // fails: a strong kfunc missing), the pre-flight says why.
            let pre = generate::preflight(&fixture_bytes(obj), &Kernel::live()).unwrap();
            let note = pre.note.unwrap_or_default();
            assert!(note.contains(&format!("'{name}'")), "{obj}: {note}");
            let err = fails_without_fds(obj, || gen_and_run(obj));
            assert_eq!(err.reason(), Reason::NotFound, "{obj}: {err}");
            continue;
        }
        let err = fails_without_fds(obj, || generate::preflight(&fixture_bytes(obj), &Kernel::live()));
        let text = err.to_string();
        assert!(text.contains(&format!("'{name}'")), "{obj}: {text}");
        assert_eq!(err.reason(), Reason::Incompatible, "{obj}: {err}");
        assert!(text.contains('('), "{obj}: the types as C: {text}");
    }
    // A program the verifier refuses: named, with the log.
    let obj = "a refused program";
    let err = fails_without_fds(obj, run_refused_program);
    match &err {
        Error::Loader {
            at: Step::Program(0),
            log: Some(log),
            ..
        } => {
            assert!(err.to_string().contains("'refused'"), "{err}");
            assert!(log.contains("R0 !read_ok"), "{log}");
        }
        other => panic!("{obj}: {other}"),
    }
}

/// The misspelled kfunc of err_kfunc_typo.bpf.c, read from its source.
fn kfunc_typo_name() -> String {
    let obj = fixture_bytes("err_kfunc_typo.bpf.o");
    let list = ksymrelo_std::list_externs(&obj).unwrap();
    list.into_iter()
        .find(|e| !e.weak && !kernel_has_kfunc(&e.name))
        .map(|e| e.name)
        .expect("a strong kfunc this kernel lacks")
}

/// A loader of one program the verifier refuses (reads r0 before writing
/// it), written by the same generator `ksymrelo gen` uses.
fn run_refused_program() -> Result<Vec<std::os::fd::OwnedFd>, Error> {
    use ksymrelo_core::gen::{Load, ProgDef};
    let insns = [Insn::new(op::EXIT, 0, 0, 0, 0)];
    let progs = [ProgDef {
        name: "refused",
        prog_type: BPF_PROG_TYPE_SYSCALL,
        prog_flags: BPF_F_SLEEPABLE,
        license: "GPL",
        insns: &insns,
        ..Default::default()
    }];
    ksymrelo_std::skel::load(
        &Load {
            btf: None,
            maps: &[],
            progs: &progs,
        },
        &Default::default(),
    )
    .map(|l| l.progs)
}

/// Objects the loader resolves otherwise than libbpf, as documented: an
/// ambiguous typeless name gets the kernel's first match (gen_loader
/// semantics); the pre-flight says so.
#[test]
fn ambiguous_typeless_loads_with_the_kernels_first_match() {
    let _g = fds::shared();
    if !gate("ambiguous_typeless_loads_with_the_kernels_first_match") {
        return;
    }
    let obj = "err_ambiguous.bpf.o";
    let pre = generate::preflight(&fixture_bytes(obj), &Kernel::live()).unwrap();
    let note = pre.note.expect("a note");
    assert!(note.contains("ambiguous") && note.contains("'init_once'"), "{note}");
    let ran = gen_and_run(obj).unwrap_or_else(|e| panic!("{obj}: {e}"));
    assert_eq!(ran.progs.len(), 1);
}

/// Objects every libbpf refuses are refused by the loader too, naming the
/// extern libbpf names (or, where several strong ones are missing, one of
/// them: the loader goes in instruction order, libbpf in extern order).
#[test]
fn refused_like_libbpf() {
    let _g = fds::shared();
    if !gate("refused_like_libbpf") {
        return;
    }
    let Some(harness) = Oracle::V1_7.harness() else { return };
    for obj in ["err_var_is_func.bpf.o", "modules.bpf.o", "err_kfunc_typo.bpf.o"] {
        let theirs = libbpf::programs(&harness, obj, false).expect_err(obj);
        let name = theirs.split('\'').nth(1).unwrap_or_else(|| panic!("{obj}: {theirs}"));
        let name = name.split("___").next().unwrap();
        let err = match gen_and_run(obj) {
            Ok(_) => panic!("{obj}: loaded; libbpf said {theirs}"),
            Err(e) => e,
        };
        let ours = err.to_string();
        if ours.contains(&format!("'{name}")) {
            continue;
        }
        // The loader looks externs up in instruction order, libbpf in its
        // extern order: where several strong ones are missing (modules.bpf.o
        // on Linux 6.1, which also lacks bpf_task_release), each may name a
        // different one — but it must be one this kernel lacks too.
        let named = ours.split('\'').nth(1).unwrap_or_else(|| panic!("{obj}: {ours}"));
        assert!(
            obj == "modules.bpf.o" && !ksymrelo_tests::kernel_has_kfunc(named) && named.starts_with("ksymrelo_"),
            "{obj}: ours {ours}; libbpf {theirs}"
        );
    }
}
