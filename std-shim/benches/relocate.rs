//! What a Rust loader pays per relocation of `tests/fixtures/mixed.bpf.o`
//! (6 typeless ksyms, 5 kfuncs): on a fresh `Kernel` (vmlinux BTF mapped
//! and walked once, the kallsyms record loaded, the in-kernel resolver run)
//! and on a warm one that relocated it before (nothing is read, walked or
//! asked again). Needs `bpf(2)`; without it the benches skip.

use criterion::{criterion_group, criterion_main, Criterion};
use ksymrelo_std::{relocate_with, Kernel, Mode};

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/mixed.bpf.o")).unwrap()
}

fn relocations(c: &mut Criterion) {
    if let Err(e) = ksymrelo_std::load::bpf_available() {
        ksymrelo_test_skip::skip(format_args!("relocate benches: bpf(2) not permitted: {e}"));
        return;
    }
    let obj = fixture();
    for (name, mode) in [("auto", Mode::Auto), ("user", Mode::User), ("kernel", Mode::Kernel)] {
        c.bench_function(&format!("mixed.bpf.o {name}: fresh Kernel"), |b| {
            b.iter(|| relocate_with(&obj, &Kernel::live(), mode).unwrap())
        });
        let warm = Kernel::live();
        relocate_with(&obj, &warm, mode).unwrap();
        c.bench_function(&format!("mixed.bpf.o {name}: warm Kernel"), |b| {
            b.iter(|| relocate_with(&obj, &warm, mode).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = relocations
}
criterion_main!(benches);
