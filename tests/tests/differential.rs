//! Differential tests against Debian's libbpf 1.1: the instructions libbpf
//! hands to BPF_PROG_LOAD (captured by tests/harness/libbpf_dump.c) and
//! ksymrelo's must be bit-identical at every ksym site — except where SPEC
//! follows newer libbpf: an unresolved weak kfunc call is poisoned
//! (`call 2002000000 + index`) where 1.1 writes `src_reg=2, imm=0, off=0`.

use std::path::PathBuf;
use std::process::Command;

use ksymrelo_core::insn::{Insn, CALL, POISON_CALL_KFUNC_BASE};
use ksymrelo_core::object::SiteKind;
use ksymrelo_std::{relocate, Kernel};
use ksymrelo_tests::{fixture, fixture_bytes, kernel_required, kernel_usable, live_kernel_files};

/// Builds the harness once per test process (tests run in parallel).
fn harness() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_harness).clone()
}

fn build_harness() -> Option<PathBuf> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("libbpf_dump");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/build.sh");
    let status = Command::new("bash").arg(&script).arg(&out).status();
    match status {
        Ok(s) if s.success() => Some(out),
        other => {
            assert!(
                !kernel_required(),
                "cannot build the libbpf harness ({other:?}): is libbpf-dev installed?"
            );
            eprintln!("SKIP differential: cannot build the libbpf harness: {other:?}");
            None
        }
    }
}

/// libbpf's instructions for the object's single program.
fn libbpf_insns(harness: &PathBuf, obj: &str, fake_load: bool) -> Vec<Insn> {
    let mut cmd = Command::new(harness);
    if fake_load {
        cmd.arg("--fake-load");
    }
    let out = cmd.arg(fixture(obj)).output().unwrap();
    assert!(
        out.status.success(),
        "libbpf failed on {obj}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no program dumped for {obj}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["insns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let f: Vec<i64> = i.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            Insn::new(f[0] as u8, f[1] as u8, f[2] as u8, f[3] as i16, f[4] as i32)
        })
        .collect()
}

fn compare(obj: &str, fake_load: bool) {
    let test = format!("differential {obj}");
    if !kernel_usable(&test) || !live_kernel_files(&test) {
        return;
    }
    let Some(harness) = harness() else { return };
    let theirs = libbpf_insns(&harness, obj, fake_load);
    let ours = relocate(&fixture_bytes(obj), &Kernel::live()).unwrap();
    let section = ours.section("syscall").unwrap();
    let mut compared = 0;
    for site in ours.sites.iter().filter(|s| s.section == section.index) {
        let i = site.insn_idx as usize;
        let r = ours.externs[site.extern_idx as usize].resolution;
        let mine = section.insns[i];
        let poisoned = site.kind == SiteKind::Call && !r.is_resolved();
        if poisoned {
            assert_eq!(
                mine,
                Insn::new(CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + r.index as i32),
                "{obj} #{i}"
            );
            assert_eq!(
                theirs[i],
                Insn::new(CALL, 0, 2, 0, 0),
                "{obj} #{i}: libbpf 1.1's unresolved weak kfunc call"
            );
        } else {
            assert_eq!(mine, theirs[i], "{obj} insn #{i}");
            if site.kind == SiteKind::Ld64 {
                assert_eq!(section.insns[i + 1], theirs[i + 1], "{obj} insn #{}", i + 1);
            }
        }
        compared += 1;
    }
    assert!(compared > 0, "{obj}: no sites compared");
}

#[test]
fn typeless_matches_libbpf() {
    compare("typeless.bpf.o", false);
}

#[test]
fn mixed_matches_libbpf() {
    compare("mixed.bpf.o", false);
}

#[test]
fn weak_kfuncs_match_libbpf_except_poison() {
    compare("weak_kfuncs.bpf.o", false);
}

#[test]
fn typed_vars_match_libbpf() {
    // Refused by this kernel's verifier; the harness captures what libbpf
    // would have loaded.
    compare("typed.bpf.o", true);
}
