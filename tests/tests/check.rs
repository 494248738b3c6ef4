//! `ksymrelo_std::check` on synthesized kernel directories: both layouts,
//! module BTF beside vmlinux, a kallsyms file that is no module, kernels
//! without kallsyms, and every extern's outcome past the first failure.

use std::path::Path;

use ksymrelo_std::check::{check_kernels, KernelDir, Outcome};
use ksymrelo_tests::{fixture_bytes, kallsyms_addresses_visible, kallsyms_text, synth_module_dir, Dir};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn outcomes(check: &ksymrelo_std::check::KernelCheck) -> Vec<(&str, Outcome)> {
    check.externs.iter().map(|e| (e.name.as_str(), e.outcome)).collect()
}

#[test]
fn both_layouts_modules_and_missing_kallsyms() {
    let Some((synth, [f1, f2, v, f3])) = synth_module_dir("check") else {
        return;
    };
    let root = Dir(std::env::temp_dir().join(format!("ksymrelo-check-synth-{}", std::process::id())));
    // a-flat: vmlinux with the modules beside it, and a kallsyms file (no
    // module: it is not BTF and must not be read as one).
    copy_dir(&synth.0, &root.0.join("a-flat"));
    let kallsyms = kallsyms_text();
    let has_kallsyms = kallsyms_addresses_visible(&kallsyms);
    if has_kallsyms {
        std::fs::write(root.0.join("a-flat/kallsyms"), &kallsyms).unwrap();
    }
    // b-sysfs: btf/ laid out like /sys/kernel/btf, vmlinux only, no kallsyms.
    std::fs::create_dir_all(root.0.join("b-sysfs/btf")).unwrap();
    std::fs::copy(synth.0.join("vmlinux"), root.0.join("b-sysfs/btf/vmlinux")).unwrap();
    // Ignored: a hidden directory and a plain file.
    std::fs::create_dir_all(root.0.join(".hidden")).unwrap();
    std::fs::write(root.0.join("README"), "kernels").unwrap();

    let dirs = KernelDir::list(&root.0).unwrap();
    let names: Vec<&str> = dirs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a-flat", "b-sysfs"]);
    assert_eq!(dirs[0].btf, root.0.join("a-flat"));
    assert_eq!(dirs[1].btf, root.0.join("b-sysfs/btf"));
    assert_eq!(dirs[1].kallsyms, None);

    // Module kfuncs and a module variable: resolved from the files beside
    // vmlinux; without them, every module extern missing (not only the
    // first), the vmlinux one still ok.
    let checks = check_kernels(&fixture_bytes("modules.bpf.o"), &dirs).unwrap();
    use Outcome::*;
    assert_eq!(
        outcomes(&checks[0]),
        [
            ("bpf_task_release", Ok),
            ("ksymrelo_absent_kfunc", WeakMissing),
            ("ksymrelo_mod_kfunc", Ok),
            ("ksymrelo_mod_kfunc2", Ok),
            ("ksymrelo_mod_var", Ok),
            ("ksymrelo_other_kfunc", Ok),
        ]
    );
    assert!(checks[0].loads());
    let by_name = |n: &str| checks[0].externs.iter().find(|e| e.name == n).unwrap();
    assert_eq!(by_name("ksymrelo_mod_kfunc").btf_id, Some(f1));
    assert_eq!(by_name("ksymrelo_mod_kfunc2").btf_id, Some(f2));
    assert_eq!(by_name("ksymrelo_mod_var").btf_id, Some(v));
    assert_eq!(by_name("ksymrelo_other_kfunc").btf_id, Some(f3));
    assert_eq!(
        by_name("ksymrelo_other_kfunc").module.as_deref(),
        Some("ksymrelo_other")
    );
    assert_eq!(by_name("bpf_task_release").module, None);
    assert_eq!(
        outcomes(&checks[1]),
        [
            ("bpf_task_release", Ok),
            ("ksymrelo_absent_kfunc", WeakMissing),
            ("ksymrelo_mod_kfunc", Missing),
            ("ksymrelo_mod_kfunc2", Missing),
            ("ksymrelo_mod_var", Missing),
            ("ksymrelo_other_kfunc", Missing),
        ]
    );
    assert!(!checks[1].loads());
    let var = checks[1].externs.iter().find(|e| e.name == "ksymrelo_mod_var").unwrap();
    assert_eq!(
        var.message.as_deref(),
        Some("extern (var ksym) 'ksymrelo_mod_var': not found in kernel BTF")
    );

    // Typeless ksyms: checked where kallsyms was saved, `no kallsyms` (and
    // not loading) where not; the weak one too.
    let checks = check_kernels(&fixture_bytes("typeless.bpf.o"), &dirs).unwrap();
    if has_kallsyms {
        assert!(checks[0].loads(), "{:?}", outcomes(&checks[0]));
        let weak = checks[0].externs.iter().find(|e| e.weak).unwrap();
        assert_eq!(weak.outcome, WeakMissing);
        assert!(checks[0].externs.iter().filter(|e| !e.weak).all(|e| e.addr.is_some()));
    } else {
        ksymrelo_tests::skip("(typeless on a-flat) kallsyms addresses hidden here");
    }
    assert!(!checks[1].externs.is_empty());
    assert!(checks[1].externs.iter().all(|e| e.outcome == NoKallsyms));
    assert!(!checks[1].loads());
    assert!(checks[1].error.is_none());

    // A kallsyms saved without the right to see addresses: all zeros. Every
    // typeless ksym says so (found in one scan, not one per extern).
    let zeroed = root.0.join("c-zeroed");
    std::fs::create_dir_all(&zeroed).unwrap();
    std::fs::copy(synth.0.join("vmlinux"), zeroed.join("vmlinux")).unwrap();
    let zeros: String = [
        "T kfree",
        "T ksys_read",
        "T schedule",
        "T vfs_open",
        "T vfs_read",
        "T vfs_write",
    ]
    .iter()
    .map(|l| format!("0000000000000000 {l}\n"))
    .collect();
    std::fs::write(zeroed.join("kallsyms"), zeros).unwrap();
    let checks = check_kernels(&fixture_bytes("typeless.bpf.o"), &[KernelDir::open(&zeroed).unwrap()]).unwrap();
    assert!(checks[0].error.is_none());
    for e in &checks[0].externs {
        assert_eq!(e.outcome, NoKallsyms, "{}", e.name);
        assert!(e.message.as_deref().unwrap().contains("only zero addresses"), "{e:?}");
    }
    assert!(!checks[0].loads());

    // Two ambiguous names: each gets its outcome, and the names after them
    // in the file still resolve (a pass ends at an ambiguity; the next one
    // goes on without that extern).
    let twice = root.0.join("d-ambiguous");
    std::fs::create_dir_all(&twice).unwrap();
    std::fs::copy(synth.0.join("vmlinux"), twice.join("vmlinux")).unwrap();
    let lines = [
        "ffffffff81000100 T kfree",
        "ffffffff81000200 t vfs_open",
        "ffffffff81000300 T kfree",
        "ffffffff81000400 T ksys_read",
        "ffffffff81000500 T schedule",
        "ffffffff81000600 T vfs_open",
        "ffffffff81000700 T vfs_read",
        "ffffffff81000800 T vfs_write",
    ];
    std::fs::write(twice.join("kallsyms"), lines.join("\n") + "\n").unwrap();
    let checks = check_kernels(&fixture_bytes("typeless.bpf.o"), &[KernelDir::open(&twice).unwrap()]).unwrap();
    assert_eq!(
        outcomes(&checks[0]),
        [
            ("kfree", Ambiguous),
            ("ksymrelo_no_such_symbol", WeakMissing),
            ("ksys_read", Ok),
            ("schedule", Ok),
            ("vfs_open", Ambiguous),
            ("vfs_read", Ok),
            ("vfs_write", Ok),
        ]
    );
    let addr = |n: &str| checks[0].externs.iter().find(|e| e.name == n).unwrap().addr;
    assert_eq!(addr("vfs_write"), Some(0xffffffff81000800));
    assert!(!checks[0].loads());

    // Mixed: the kfuncs are checked even where the typeless ones cannot be.
    let checks = check_kernels(&fixture_bytes("mixed.bpf.o"), &dirs[1..]).unwrap();
    for e in &checks[0].externs {
        let want = if e.kind == ksymrelo_core::object::ExternKind::Typeless {
            NoKallsyms
        } else {
            Ok
        };
        assert_eq!(e.outcome, want, "{}", e.name);
    }
}

#[test]
fn a_kernel_that_cannot_be_read_is_an_error_of_its_own() {
    let root = Dir(std::env::temp_dir().join(format!("ksymrelo-check-bad-{}", std::process::id())));
    std::fs::create_dir_all(root.0.join("broken")).unwrap();
    std::fs::write(root.0.join("broken/vmlinux"), b"no BTF here").unwrap();
    std::fs::create_dir_all(root.0.join("empty")).unwrap();
    // A subdirectory with neither btf/ nor vmlinux is refused by name.
    let err = KernelDir::list(&root.0).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    std::fs::remove_dir(root.0.join("empty")).unwrap();
    let dirs = KernelDir::list(&root.0).unwrap();
    let checks = check_kernels(&fixture_bytes("typed.bpf.o"), &dirs).unwrap();
    assert!(checks[0].error.is_some());
    assert!(checks[0].externs.is_empty());
    assert!(!checks[0].loads());
    // The object is checked first: a non-object is an error of the call.
    assert!(check_kernels(b"not an object", &dirs).is_err());
}

/// Tests hold on any kernel build: the fixtures generated from a kernel's
/// kallsyms resolve on that kernel, here on Debian's 6.1 and 6.12 (the
/// kallsyms tests/kernels/fetch.sh saved from a boot of each), whose
/// builds are not the one the tests run on; and the hand-written fixtures'
/// names fit those kernels too.
#[test]
fn fixtures_generated_for_another_kernel_resolve_there() {
    let extracted = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernels");
    let mut checked = 0;
    for key in ["debian-6.1", "debian-6.12"] {
        let kdir = extracted.join(key);
        let Ok(kallsyms) = std::fs::read_to_string(kdir.join("kallsyms")) else {
            continue;
        };
        ksymrelo_test_skip::fixture_names_fit_in(&ksymrelo_tests::fixture(""), &kallsyms)
            .unwrap_or_else(|why| panic!("{key}: {why}"));
        let out = Dir(std::env::temp_dir().join(format!("ksymrelo-gen-{key}-{}", std::process::id())));
        let sets = ksymrelo_tests::generated::generate(&kallsyms, &out.0).unwrap();
        let kernel = KernelDir::open(&kdir).unwrap();
        for (n, names) in ksymrelo_tests::generated::SIZES.iter().zip(&sets) {
            let obj = std::fs::read(out.0.join(format!("many_{n}.bpf.o"))).unwrap();
            let checks = check_kernels(&obj, std::slice::from_ref(&kernel)).unwrap();
            let typeless: Vec<(&str, Outcome)> = outcomes(&checks[0])
                .into_iter()
                .filter(|(name, _)| names.iter().any(|n| n == name))
                .collect();
            assert_eq!(typeless.len(), *n, "{key}: many_{n}'s typeless externs");
            for (name, outcome) in typeless {
                assert_eq!(outcome, Outcome::Ok, "{key}: many_{n}: {name}");
            }
        }
        checked += 1;
    }
    if checked < 2 {
        assert!(
            !ksymrelo_tests::kernel_required(),
            "Debian kernels' kallsyms missing in {} but KSYMRELO_REQUIRE_KERNEL=1: run bash tests/kernels/fetch.sh",
            extracted.display()
        );
        ksymrelo_tests::skip("Debian kernels' kallsyms not saved (run bash tests/kernels/fetch.sh)");
    }
}
