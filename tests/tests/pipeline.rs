//! The one pipeline behind every mode and caller: the default mode gives
//! libbpf's (user mode's) result, errors included; a warm `Kernel` reads
//! and walks nothing again; one `Kernel` serves many threads; the kallsyms
//! record is shared through its file.

use ksymrelo_core::resolve::Outcome;
use ksymrelo_std::report::to_json;
use ksymrelo_std::{relocate, relocate_with, Kernel, Mode};
use ksymrelo_tests::{fixture_bytes, kallsyms_map, kernel_usable, live_kernel_files};

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

/// Fixtures that resolve on this kernel.
const RESOLVING: [&str; 6] = [
    "typeless.bpf.o",
    "kfuncs.bpf.o",
    "mixed.bpf.o",
    "typed.bpf.o",
    "multi_section.bpf.o",
    "weak_kfuncs.bpf.o",
];

#[test]
fn kernel_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Kernel>();
}

#[test]
fn default_mode_fails_on_an_ambiguous_name_as_libbpf() {
    if !gate("default_mode_fails_on_an_ambiguous_name_as_libbpf") {
        return;
    }
    let obj = fixture_bytes("err_ambiguous.bpf.o");
    let user = relocate_with(&obj, &Kernel::live(), Mode::User)
        .unwrap_err()
        .to_string();
    let auto = relocate(&obj, &Kernel::live()).unwrap_err().to_string();
    assert_eq!(auto, user);
    let addrs = &kallsyms_map()["init_once"];
    assert!(
        auto.contains(&format!("{:#x} or {:#x}", addrs[0], addrs[1])),
        "{auto} names both addresses"
    );
    // gen_loader semantics: the kernel's first match, no error.
    let kernel = relocate_with(&obj, &Kernel::live(), Mode::Kernel).unwrap();
    match kernel.extern_named("init_once").unwrap().resolution.outcome {
        Outcome::Address { addr } => assert!(addrs.contains(&addr)),
        o => panic!("{o:?}"),
    }
}

#[test]
fn every_mode_fails_a_missing_strong_extern_in_libbpf_words() {
    if !gate("every_mode_fails_a_missing_strong_extern_in_libbpf_words") {
        return;
    }
    let obj = fixture_bytes("err_strong_missing.bpf.o");
    for mode in [Mode::User, Mode::Auto, Mode::Kernel] {
        let err = relocate_with(&obj, &Kernel::live(), mode).unwrap_err().to_string();
        assert_eq!(
            err, "extern 'ksymrelo_strong_missing' (strong): not resolved",
            "{mode:?}"
        );
    }
}

#[test]
fn a_warm_kernel_reads_and_walks_nothing_again() {
    // Without the per-boot BTF facts (tests/tests/btf_facts.rs has them),
    // so that the one walk of vmlinux BTF is what is counted.
    if !gate("a_warm_kernel_reads_and_walks_nothing_again") {
        return;
    }
    let obj = fixture_bytes("mixed.bpf.o");
    for mode in [Mode::Auto, Mode::User] {
        let kernel = Kernel::live().without_btf_facts();
        let first = relocate_with(&obj, &kernel, mode).unwrap();
        let after_first = kernel.stats();
        assert_eq!(after_first.vmlinux_parses, 1, "{mode:?}");
        let second = relocate_with(&obj, &kernel, mode).unwrap();
        assert_eq!(
            kernel.stats(),
            after_first,
            "{mode:?}: the second relocation asked again"
        );
        assert_eq!(to_json(&first), to_json(&second));
    }
    // A new name costs one walk over vmlinux, never a second parse.
    let kernel = Kernel::live().without_btf_facts();
    relocate(&obj, &kernel).unwrap();
    relocate(&fixture_bytes("kfuncs.bpf.o"), &kernel).unwrap();
    let stats = kernel.stats();
    assert_eq!((stats.vmlinux_parses, stats.vmlinux_walks), (1, 1));
}

#[test]
fn one_kernel_serves_many_threads() {
    if !gate("one_kernel_serves_many_threads") {
        return;
    }
    let objects: Vec<Vec<u8>> = RESOLVING.iter().map(|f| fixture_bytes(f)).collect();
    let expected: Vec<String> = objects
        .iter()
        .map(|o| to_json(&relocate(o, &Kernel::live().without_btf_facts()).unwrap()).to_string())
        .collect();
    let kernel = Kernel::live().without_btf_facts();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (kernel, objects, expected) = (&kernel, &objects, &expected);
            s.spawn(move || {
                for round in 0..12 {
                    let i = (t + round) % objects.len();
                    let mode = [Mode::Auto, Mode::User, Mode::Kernel][round % 3];
                    let got = to_json(&relocate_with(&objects[i], kernel, mode).unwrap()).to_string();
                    assert_eq!(got, expected[i], "thread {t}, {} in {mode:?}", RESOLVING[i]);
                }
            });
        }
    });
    assert_eq!(kernel.stats().vmlinux_parses, 1);
}

#[test]
fn the_kallsyms_record_file_is_shared_between_kernels() {
    if !gate("the_kallsyms_record_file_is_shared_between_kernels") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksymrelo-pipeline-{}", std::process::id()));
    let path = dir.join("kallsyms-record");
    let obj = fixture_bytes("typeless.bpf.o");
    let first = Kernel::live().with_kallsyms_record(&path);
    let a = relocate(&obj, &first).unwrap();
    assert_eq!((first.stats().record_builds, first.stats().record_loads), (1, 0));
    assert!(path.exists(), "the record was saved");
    let second = Kernel::live().with_kallsyms_record(&path);
    let b = relocate(&obj, &second).unwrap();
    let stats = second.stats();
    assert_eq!((stats.record_builds, stats.record_loads), (0, 1));
    assert_eq!(stats.kallsyms_scans, 0, "the default mode never scanned kallsyms");
    assert_eq!(to_json(&a), to_json(&b));
    // A library Kernel without a record path writes nothing.
    let _ = std::fs::remove_dir_all(&dir);
    relocate(&obj, &Kernel::live()).unwrap();
    assert!(!dir.exists());
}

#[test]
fn the_in_kernel_resolver_answers_thousands_of_names_in_one_run() {
    if !gate("the_in_kernel_resolver_answers_thousands_of_names_in_one_run") {
        return;
    }
    use ksymrelo_core::lookup::{Answer, Query};
    let map = kallsyms_map();
    let mut names: Vec<&String> = map
        .iter()
        .filter(|(n, a)| a.len() == 1 && !n.starts_with("__pfx_") && !n.contains('.') && !n.contains('$'))
        .map(|(n, _)| n)
        .collect();
    names.sort();
    let picked: Vec<&String> = names.iter().step_by(names.len() / 3000).copied().take(3000).collect();
    let mut queries: Vec<Query<'_>> = picked.iter().map(|n| Query::Address(n.as_bytes())).collect();
    queries.push(Query::Address(b"ksymrelo_no_such_symbol"));
    let (answers, _) = ksymrelo_std::inkernel::lookup(&queries).unwrap();
    for (n, a) in picked.iter().zip(&answers) {
        assert_eq!(*a, Answer::Address(map[*n][0]), "{n}");
    }
    assert_eq!(answers[picked.len()], Answer::NotFound);
}

#[test]
fn the_commands_json_writer_writes_the_report_value() {
    if !gate("the_commands_json_writer_writes_the_report_value") {
        return;
    }
    for fixture in ["mixed.bpf.o", "many_1000.bpf.o", "weak_kfuncs.bpf.o"] {
        let r = relocate(&fixture_bytes(fixture), &Kernel::live()).unwrap();
        let mut text = String::new();
        ksymrelo_std::report::write_json(&r, &mut text);
        assert_eq!(text, to_json(&r).to_string(), "{fixture}");
    }
}
