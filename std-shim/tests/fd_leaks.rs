//! Resolving many times — successes and failures, live and offline — leaves
//! the process's open file descriptors as they were.

use ksymrelo_std::{relocate, Kernel};

/// Number of open descriptors of this process (the count includes the one
/// that reads `/proc/self/fd`, the same every time).
fn fd_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn repeated_resolution_does_not_leak_fds() {
    if std::fs::metadata("/sys/kernel/btf/vmlinux").is_err() {
        assert!(!ksymrelo_test_skip::kernel_required());
        ksymrelo_test_skip::skip("no /sys/kernel/btf/vmlinux");
        return;
    }
    if !ksymrelo_test_skip::fixtures_fit_or_skip(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"),
    ) {
        return;
    }
    let objects: Vec<(Vec<u8>, bool)> = [
        ("mixed.bpf.o", true),
        ("kfuncs.bpf.o", true),
        ("typed.bpf.o", true),
        ("err_strong_missing.bpf.o", false),
        ("err_ambiguous.bpf.o", false),
        ("err_kfunc_proto.bpf.o", false),
        ("err_var_type.bpf.o", false),
    ]
    .into_iter()
    .map(|(n, ok)| (fixture(n), ok))
    .collect();
    // Warm up once: lazily opened process-wide things (e.g. the allocator's
    // or std's) must not be counted as leaks.
    for (obj, _) in &objects {
        let _ = relocate(obj, &Kernel::live());
    }
    let before = fd_count().unwrap();
    for _ in 0..8 {
        for (obj, ok) in &objects {
            // A new kernel each time: its vmlinux mapping, module fds and
            // kallsyms file are opened and must all be released.
            let kernel = Kernel::live();
            let r = relocate(obj, &kernel);
            assert_eq!(r.is_ok(), *ok, "{:?}", r.err().map(|e| e.to_string()));
        }
        let offline = Kernel::from_files(Some(std::path::Path::new("/sys/kernel/btf/vmlinux")), None);
        assert!(relocate(&objects[1].0, &offline).is_ok());
        assert!(
            relocate(&objects[0].0, &offline).is_err(),
            "typeless without --kallsyms"
        );
        assert!(relocate(b"garbage", &offline).is_err());
    }
    assert_eq!(fd_count().unwrap(), before, "open fds changed");
}
