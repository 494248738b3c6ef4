//! A golden, human-readable disassembly of the in-kernel loader emitted for
//! mixed.bpf.o (it depends only on the object, not on the kernel).
//! Regenerate with KSYMRELO_BLESS=1.

use ksymrelo_core::gen::{self, GenOptions};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::Object;
use ksymrelo_tests::{externs_and_sites, fixture_bytes};

#[test]
fn mixed_loader_disassembly() {
    let data = fixture_bytes("mixed.bpf.o");
    let obj = Object::parse(&data).unwrap();
    let (externs, sites) = externs_and_sites(&obj);
    let (externs, sites) = (&externs[..], &sites[..]);
    let section = obj.elf().section_by_name(b"syscall").unwrap().unwrap();
    let mut insns = obj.insns(&section).unwrap().to_vec();
    gen::prepatch(&mut insns, externs, sites).unwrap();
    let opts = GenOptions::default();
    let layout = gen::plan(externs, sites, insns.len(), &opts).unwrap();
    let mut loader = vec![Insn::default(); layout.loader_len as usize];
    let mut blob = vec![0u8; layout.end as usize];
    gen::emit(externs, sites, &insns, &opts, &mut loader, &mut blob).unwrap();
    let mut text = format!("; loader for mixed.bpf.o: {layout:?}\n");
    gen::disasm(&loader, &mut text).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/mixed_loader.txt");
    if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/golden")).unwrap();
        std::fs::write(path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(path).expect("golden file (KSYMRELO_BLESS=1 to create)");
    assert_eq!(text, golden, "loader changed; review and bless with KSYMRELO_BLESS=1");
}
