//! Differential tests against two libbpf oracles: the instructions libbpf
//! hands to BPF_PROG_LOAD (captured by tests/harness/libbpf_dump.c) and
//! ksymrelo's must be bit-identical at every ksym site of every program.
//!
//! - libbpf 1.1 (Debian's libbpf-dev, linked by tests/harness/build.sh at
//!   test time). Known differences, where the rules (docs/RULES.md) follow newer libbpf: an
//!   unresolved weak kfunc call is poisoned (`call 2002000000 + index`)
//!   where 1.1 writes `src_reg=2, imm=0, off=0`; 1.1 looks kfuncs up by
//!   their full name, so it refuses a flavored kfunc (`foo___v2`); and an
//!   ld_imm64 of a module kfunc (`bpf_ksym_exists()`, which 1.1 predates)
//!   gets the module's BTF fd in its second slot, where 1.1 leaves 0.
//! - libbpf 1.7 (vendored by the libbpf-sys crate, linked by tests/build.rs):
//!   no exception at all.
//!
//! Every mode is compared (`Mode::User`, the default `Mode::Auto`, and
//! `Mode::Kernel` where the object loads with libbpf); the refusals in user
//! and auto mode. `Mode::Kernel` has gen_loader's semantics, and differs
//! from libbpf only as docs/RULES.md §7, ruling 7 documents, which
//! `kernel_mode_differs_from_libbpf_only_as_documented` checks: it checks
//! no types (an incompatible declaration resolves) and takes the kernel's
//! first kallsyms match (an ambiguous name resolves). Everything else is
//! equal in every mode, module kfuncs' fd_array slots (the calls' `off`)
//! included. Module BTF fds are numbers of each process: only whether one
//! is zero (vmlinux) is compared.
//!
//! The module fixtures (conntrack, weak_module, percpu) need the netfilter
//! modules loaded: they run in the VM suite (tests/vm/run.sh), which also
//! runs the rest on Debian's 6.1 and 6.12 kernels; where a kernel lacks
//! kfuncs a fixture calls strongly, libbpf and ksymrelo both refuse it and
//! the comparison is skipped (`ksymrelo_tests::skip`).

use ksymrelo_core::bpf::{op, pseudo, POISON_CALL_KFUNC_BASE};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::{Object, Site, SiteKind};
use ksymrelo_std::{relocate_with, Kernel, Mode, Relocation};
use ksymrelo_tests::libbpf::{programs, Oracle, Program};
use ksymrelo_tests::{
    fixture_bytes, fixture_kfuncs_in_vmlinux, kallsyms_map, kernel_usable, live_kernel_files, modules_loaded,
};

/// An `ld_imm64` pair with a module BTF fd in its second slot: the fd is
/// replaced by a marker (fds are numbers of each process).
fn normalize_fd(pair: [Insn; 2]) -> [Insn; 2] {
    let [lo, hi] = pair;
    if lo.code == op::LD_IMM64 && lo.src_reg() == 3 && hi.imm() != 0 {
        [lo, Insn::new(hi.code, hi.dst_reg(), hi.src_reg(), hi.off.get(), -1)]
    } else {
        pair
    }
}

/// One site compared: ksymrelo's instruction(s) at `i` of its section
/// (`mine`) with libbpf's at `j` of its program (`theirs`).
fn compare_site(
    what: &str,
    oracle: Oracle,
    ours: &Relocation,
    site: &Site,
    (mine, i): (&[Insn], usize),
    (theirs, j): (&[Insn], usize),
) {
    let r = ours.externs[site.extern_idx.get()].resolution;
    let poisoned = site.kind == SiteKind::Call && !r.is_resolved();
    if poisoned {
        assert_eq!(
            mine[i],
            Insn::new(op::CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + r.index.0 as i32),
            "{what} #{i}"
        );
    }
    if poisoned && oracle == Oracle::V1_1 {
        assert_eq!(
            theirs[j],
            Insn::new(op::CALL, 0, 2, 0, 0),
            "{what} #{i}: libbpf 1.1's unresolved weak kfunc call"
        );
    } else if site.kind == SiteKind::Ld64 {
        let m = normalize_fd([mine[i], mine[i + 1]]);
        let mut t = normalize_fd([theirs[j], theirs[j + 1]]);
        let module_kfunc = r.kind == ksymrelo_core::object::ExternKind::Kfunc
            && matches!(r.outcome, ksymrelo_core::resolve::Outcome::Btf { module: Some(_), .. });
        if oracle == Oracle::V1_1 && module_kfunc {
            assert_eq!(t[1].imm(), 0, "{what} ld_imm64 #{i}: libbpf 1.1's module kfunc");
            t[1] = m[1];
        }
        assert_eq!(m, t, "{what} ld_imm64 #{i} (libbpf #{j})");
    } else {
        assert_eq!(mine[i], theirs[j], "{what} call #{i} (libbpf #{j})");
    }
}

/// Where libbpf appended the `.text` function `[start, end)` in a program:
/// the one position after the program's own instructions where each
/// instruction is ksymrelo's, except for what libbpf may patch: at ksym
/// sites (ld_imm64 pairs, calls) and BPF-to-BPF calls only the opcode and
/// destination register must be the same. `None` when the program does
/// not call it.
fn appended_at(text: &[Insn], sites: &[usize], start: usize, end: usize, prog: &[Insn], own: usize) -> Option<usize> {
    let same = |i: usize, theirs: Insn| {
        let mine = text[i];
        let patched = sites.contains(&i)
            || (i > 0 && sites.contains(&(i - 1)) && text[i - 1].code == op::LD_IMM64)
            || (mine.code == op::CALL && mine.src_reg() == pseudo::CALL);
        if patched {
            (mine.code, mine.dst_reg()) == (theirs.code, theirs.dst_reg())
        } else {
            mine == theirs
        }
    };
    let len = end - start;
    let found: Vec<usize> = (own..=prog.len().saturating_sub(len))
        .filter(|&p| (start..end).all(|i| same(i, prog[p + i - start])))
        .collect();
    assert!(
        found.len() <= 1,
        ".text function at {start}..{end} appears at {found:?}"
    );
    found.first().copied()
}

/// Compares ksymrelo's sites with libbpf's instructions in every dumped
/// program: the sites of the program's own section (its instructions come
/// first in what libbpf loads), and those of each `.text` function libbpf
/// appended to it. Returns the numbers of sites compared: in programs'
/// sections, in `.text`.
fn compare_sites(obj: &str, oracle: Oracle, mode: Mode, ours: &Relocation, theirs: &[Program]) -> (usize, usize) {
    const STT_FUNC: u8 = 2;
    let data = fixture_bytes(obj);
    let object = Object::parse(&data).unwrap();
    let elf = object.elf();
    let text = ours.section(".text");
    // `.text` functions: (start, end) in instructions.
    let functions: Vec<(usize, usize)> = text
        .map(|t| {
            elf.symbols()
                .iter()
                .filter(|s| s.kind() == STT_FUNC && u32::from(s.st_shndx.get()) == t.index.0)
                .map(|s| {
                    let start = s.st_value.get() as usize / 8;
                    (start, start + s.st_size.get() as usize / 8)
                })
                .collect()
        })
        .unwrap_or_default();
    let (mut compared, mut in_text) = (0, 0);
    for prog in theirs {
        let what = format!("{obj} ({mode:?}) program {} vs libbpf {}", prog.name, oracle.version());
        let section = ours
            .section(&prog.section)
            .unwrap_or_else(|| panic!("{what}: no section {}", prog.section));
        assert!(
            prog.insns.len() >= section.insns.len(),
            "{what}: libbpf's program is shorter"
        );
        for site in ours.sites.iter().filter(|s| s.section == section.index) {
            let i = site.insn_idx.get();
            compare_site(&what, oracle, ours, site, (&section.insns, i), (&prog.insns, i));
            compared += 1;
        }
        let Some(text) = text else { continue };
        let text_sites: Vec<&Site> = ours.sites.iter().filter(|s| s.section == text.index).collect();
        let at: Vec<usize> = text_sites.iter().map(|s| s.insn_idx.get()).collect();
        for &(start, end) in &functions {
            let Some(p) = appended_at(&text.insns, &at, start, end, &prog.insns, section.insns.len()) else {
                continue;
            };
            for site in text_sites.iter().filter(|s| (start..end).contains(&(s.insn_idx.get()))) {
                let i = site.insn_idx.get();
                let what = format!("{what} (.text #{i})");
                compare_site(
                    &what,
                    oracle,
                    ours,
                    site,
                    (&text.insns, i),
                    (&prog.insns, p + i - start),
                );
                in_text += 1;
            }
        }
    }
    (compared, in_text)
}

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

/// The fixture's programs, as loaded by libbpf `oracle`, must carry
/// ksymrelo's instructions at every ksym site.
fn compare(obj: &str, fake_load: bool, oracle: Oracle) {
    if !gate(&format!("differential {obj} {}", oracle.version())) {
        return;
    }
    let test = format!("differential {obj} {}", oracle.version());
    let modules = fixture_modules(obj);
    if modules.is_empty() {
        if !fixture_kfuncs_in_vmlinux(obj) {
            return;
        }
    } else if !modules_loaded(&test, modules) {
        return;
    }
    let Some(harness) = oracle.harness() else { return };
    let theirs = programs(&harness, obj, fake_load)
        .unwrap_or_else(|e| panic!("libbpf {} failed on {obj}: {e}", oracle.version()));
    assert!(!theirs.is_empty(), "no program dumped for {obj}");
    for mode in [Mode::User, Mode::Auto, Mode::Kernel] {
        let ours = relocate_with(&fixture_bytes(obj), &Kernel::live(), mode)
            .unwrap_or_else(|e| panic!("ksymrelo ({mode:?}) failed on {obj}: {e}"));
        let (compared, in_text) = compare_sites(obj, oracle, mode, &ours, &theirs);
        assert!(compared > 0, "{obj}: no sites compared");
        let text_sites = ours
            .section(".text")
            .map_or(0, |t| ours.sites.iter().filter(|s| s.section == t.index).count());
        assert!(
            text_sites == 0 || in_text >= text_sites,
            "{obj}: {in_text} .text sites compared, of {text_sites} (each once per program that calls its function)"
        );
    }
}

/// The fixture must be refused by both libbpf and ksymrelo (in `mode`), and
/// ksymrelo's error must name the extern libbpf names (the first quoted name).
fn both_refuse(obj: &str, oracle: Oracle, mode: Mode) {
    if !gate(&format!("differential {obj} {}", oracle.version())) {
        return;
    }
    let Some(harness) = oracle.harness() else { return };
    let theirs = match programs(&harness, obj, false) {
        Ok(_) => panic!("libbpf {} loaded {obj}", oracle.version()),
        Err(e) => e,
    };
    let name = theirs
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no extern named in {theirs}"));
    let ours = match relocate_with(&fixture_bytes(obj), &Kernel::live(), mode) {
        Ok(_) => panic!(
            "ksymrelo ({mode:?}) relocated {obj}; libbpf {} said: {theirs}",
            oracle.version()
        ),
        Err(e) => e.to_string(),
    };
    assert!(
        ours.contains(&format!("'{name}'")),
        "{obj} ({mode:?}): ksymrelo said {ours:?}, libbpf {}: {theirs:?}",
        oracle.version()
    );
}

/// The kernel modules a fixture's externs live in.
fn fixture_modules(obj: &str) -> &'static [&'static str] {
    match obj {
        "conntrack.bpf.o" => &["nf_conntrack", "nf_nat"],
        "weak_module.bpf.o" => &["nf_conntrack"],
        "percpu.bpf.o" => &["x_tables"],
        _ => &[],
    }
}

macro_rules! differential {
    ($($test:ident: $obj:literal $(, $fake:ident)?;)*) => {
        mod libbpf_1_1 {
            $(#[test]
            fn $test() {
                super::compare($obj, differential!(@fake $($fake)?), super::Oracle::V1_1);
            })*
        }
        mod libbpf_1_7 {
            $(#[test]
            fn $test() {
                super::compare($obj, differential!(@fake $($fake)?), super::Oracle::V1_7);
            })*
        }
    };
    (@fake fake_load) => { true };
    (@fake) => { false };
}

differential! {
    typeless: "typeless.bpf.o";
    mixed: "mixed.bpf.o";
    weak_kfuncs: "weak_kfuncs.bpf.o";
    // Refused by this kernel's verifier; the harness captures what libbpf
    // would have loaded.
    typed_vars: "typed.bpf.o", fake_load;
    // Both programs, and the sites of the `.text` functions libbpf appends
    // to each of them.
    multi_section: "multi_section.bpf.o";
    // Generated from the running kernel's kallsyms (tests/src/generated.rs):
    // 100 and 1000 typeless ksyms and 5 kfunc calls.
    many_100: "many_100.bpf.o";
    many_1000: "many_1000.bpf.o";
    // Module kfuncs of nf_conntrack and nf_nat: fd_array slots 1 and 2.
    conntrack: "conntrack.bpf.o";
    // Weak module kfuncs behind bpf_ksym_exists(), which verifiers before
    // 6.4 refuse (an ld_imm64 of a FUNC).
    weak_module: "weak_module.bpf.o", fake_load;
    // Typed per-CPU variables of vmlinux and x_tables (module BTF fd in the
    // ld_imm64); refused where kallsyms has no data symbols.
    percpu: "percpu.bpf.o", fake_load;
}

/// Flavored kfunc (`bpf_iter_num_next___ksymrelo`): libbpf 1.7 looks it up
/// as `bpf_iter_num_next`, as ksymrelo does.
#[test]
fn flavored_kfuncs_match_libbpf_1_7() {
    compare("kfuncs.bpf.o", false, Oracle::V1_7);
}

/// libbpf 1.1 looks kfuncs up by their full name and refuses the flavor
/// (docs/RULES.md follows newer libbpf).
#[test]
fn flavored_kfuncs_are_refused_by_libbpf_1_1() {
    let test = "flavored_kfuncs_are_refused_by_libbpf_1_1";
    // Where the unflavored kfuncs are missing, 1.1 fails on those first.
    if !gate(test) || !fixture_kfuncs_in_vmlinux("kfuncs.bpf.o") {
        return;
    }
    let Some(harness) = Oracle::V1_1.harness() else { return };
    let err = programs(&harness, "kfuncs.bpf.o", false).expect_err("libbpf 1.1 loaded kfuncs.bpf.o");
    assert!(
        err.contains("'bpf_iter_num_next___ksymrelo': not found in kernel or module BTFs"),
        "{err}"
    );
}

#[test]
fn both_oracles_refuse_what_ksymrelo_refuses() {
    for obj in [
        "err_ambiguous.bpf.o",
        "err_kfunc_fwd.bpf.o",
        "err_kfunc_proto.bpf.o",
        "err_strong_missing.bpf.o",
        "err_var_type.bpf.o",
    ] {
        for oracle in [Oracle::V1_1, Oracle::V1_7] {
            both_refuse(obj, oracle, Mode::User);
            if obj != "err_ambiguous.bpf.o" {
                both_refuse(obj, oracle, Mode::Auto);
            }
        }
    }
}

/// docs/RULES.md §7, ruling 7: the default mode must give libbpf's result on every object,
/// ambiguity included. Both libbpfs refuse `init_once` (many addresses in
/// kallsyms); `Mode::Auto` resolves typeless ksyms with the kernel's
/// `bpf_kallsyms_lookup_name`, which answers with its first match.
#[test]
fn default_mode_refuses_ambiguous_typeless_like_libbpf() {
    for oracle in [Oracle::V1_1, Oracle::V1_7] {
        both_refuse("err_ambiguous.bpf.o", oracle, Mode::Auto);
    }
}

/// The documented differences of `Mode::Kernel` (gen_loader semantics,
/// docs/RULES.md §7, ruling 7) from libbpf, each one asserted: where libbpf refuses an
/// object for a type check or an ambiguous kallsyms name, kernel mode
/// resolves it (no type checks; the kernel's first kallsyms match); where
/// libbpf refuses for anything else, kernel mode refuses too, naming the
/// same extern.
#[test]
fn kernel_mode_differs_from_libbpf_only_as_documented() {
    use ksymrelo_core::resolve::Outcome;
    if !gate("kernel_mode_differs_from_libbpf_only_as_documented") {
        return;
    }
    let Some(harness) = Oracle::V1_7.harness() else { return };
    let kallsyms = kallsyms_map();
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let vmlinux = ksymrelo_core::btf::Btf::parse(&vmlinux).unwrap();
    // (object, extern, kind in vmlinux BTF or None for a kallsyms name)
    let documented = [
        // No type checks: the kernel's FUNC whatever the declaration.
        (
            "err_kfunc_proto.bpf.o",
            "bpf_iter_num_new",
            Some(ksymrelo_core::btf::Kind::Func),
        ),
        (
            "err_kfunc_fwd.bpf.o",
            "bpf_task_release",
            Some(ksymrelo_core::btf::Kind::Func),
        ),
        (
            "err_var_type.bpf.o",
            "bpf_prog_active",
            Some(ksymrelo_core::btf::Kind::Var),
        ),
        // The kernel's first match of an ambiguous name.
        ("err_ambiguous.bpf.o", "init_once", None),
    ];
    for (obj, name, kind) in documented {
        let theirs = programs(&harness, obj, true);
        assert!(theirs.is_err(), "libbpf 1.7 loaded {obj}");
        let in_kernel = match kind {
            Some(k) => vmlinux.find_by_name_kind(name.as_bytes(), k).unwrap(),
            None => kallsyms.get(name).map(|_| 0),
        };
        let ours = relocate_with(&fixture_bytes(obj), &Kernel::live(), Mode::Kernel);
        let Some(id) = in_kernel else {
            // This kernel lacks it (6.1: bpf_iter_num_new, bpf_task_release):
            // refused like libbpf, for the same extern.
            let err = ours
                .err()
                .unwrap_or_else(|| panic!("{obj}: kernel mode resolved {name}, absent here"));
            assert!(err.to_string().contains(&format!("'{name}'")), "{obj}: {err}");
            continue;
        };
        let ours = ours.unwrap_or_else(|e| panic!("{obj}: kernel mode refused (gen_loader would not): {e}"));
        match (ours.extern_named(name).unwrap().resolution.outcome, kind) {
            (
                Outcome::Btf {
                    btf_id, btf_obj_fd: 0, ..
                },
                Some(_),
            ) => assert_eq!(btf_id.0, id, "{obj}"),
            (Outcome::Address { addr }, None) => {
                assert!(
                    kallsyms[name].contains(&addr),
                    "{obj}: {addr:#x} is no {name} of kallsyms"
                );
            }
            (other, _) => panic!("{obj}: {name} resolved to {other:?}"),
        }
    }
    // Not a documented difference: a strong ksym no kernel has.
    let err = relocate_with(
        &fixture_bytes("err_strong_missing.bpf.o"),
        &Kernel::live(),
        Mode::Kernel,
    )
    .unwrap_err();
    assert!(err.to_string().contains("'ksymrelo_strong_missing'"), "{err}");
    assert!(programs(&harness, "err_strong_missing.bpf.o", false).is_err());
}
