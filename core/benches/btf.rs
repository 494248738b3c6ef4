//! Parsing the real vmlinux BTF: a full validating walk, the indexed parse,
//! and a batch of name lookups, compared with reading the file.

use criterion::{criterion_group, criterion_main, Criterion};
use ksymrelo_core::btf::{Btf, Kind};
use std::hint::black_box;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const WANTED: [(&[u8], Kind); 10] = [
    (b"bpf_iter_num_new", Kind::Func),
    (b"bpf_iter_num_next", Kind::Func),
    (b"bpf_iter_num_destroy", Kind::Func),
    (b"bpf_task_from_pid", Kind::Func),
    (b"bpf_task_release", Kind::Func),
    (b"bpf_rcu_read_lock", Kind::Func),
    (b"bpf_prog_active", Kind::Var),
    (b"runqueues", Kind::Var),
    (b"no_such_kfunc_ksymrelo", Kind::Func),
    (b"no_such_var_ksymrelo", Kind::Var),
];

fn bench(c: &mut Criterion) {
    let data = match std::fs::read(VMLINUX) {
        Ok(d) => d,
        Err(e) => {
            ksymrelo_test_skip::skip(format_args!("{VMLINUX} unreadable: {e}"));
            return;
        }
    };
    c.bench_function("read /sys/kernel/btf/vmlinux", |b| {
        b.iter(|| black_box(std::fs::read(VMLINUX).unwrap()))
    });
    c.bench_function("parse vmlinux BTF (validate all types)", |b| {
        b.iter(|| black_box(Btf::parse(black_box(&data)).unwrap().own_type_count()))
    });
    let mut index = vec![0u32; Btf::max_type_count(&data)];
    c.bench_function("parse vmlinux BTF with id index", |b| {
        b.iter(|| {
            let btf = Btf::parse_indexed(black_box(&data), None, &mut index).unwrap();
            black_box(btf.own_type_count())
        })
    });
    let btf = Btf::parse(&data).unwrap();
    c.bench_function("iterate all types + names", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for t in btf.own_types() {
                n += btf.name(&t.unwrap()).unwrap().len();
            }
            black_box(n)
        })
    });
    c.bench_function("batch lookup of 10 names (one pass)", |b| {
        b.iter(|| {
            let mut found = [None; 10];
            black_box(btf.find_own_batch(&WANTED, &mut found).unwrap())
        })
    });
    let mut index2 = vec![0u32; Btf::max_type_count(&data)];
    c.bench_function("parse + id index + 10 lookups in one pass", |b| {
        b.iter(|| {
            let mut found = [None; 10];
            let btf = Btf::parse_indexed_batch(black_box(&data), None, &mut index2, &WANTED, &mut found).unwrap();
            black_box((btf.own_type_count(), found))
        })
    });
    let mut sparse = vec![0u32; 8192];
    c.bench_function("parse + sparse index (8192 slots) + 10 lookups in one pass", |b| {
        b.iter(|| {
            let mut found = [None; 10];
            let btf = Btf::parse_indexed_batch(black_box(&data), None, &mut sparse, &WANTED, &mut found).unwrap();
            black_box((btf.own_type_count(), found))
        })
    });
    c.bench_function("parse + batch lookup of 10 names", |b| {
        b.iter(|| {
            let btf = Btf::parse(black_box(&data)).unwrap();
            let mut found = [None; 10];
            black_box(btf.find_own_batch(&WANTED, &mut found).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
