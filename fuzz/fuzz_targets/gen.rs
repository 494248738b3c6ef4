//! The in-kernel loader emitter on arbitrary extern tables and sites: never
//! a panic; when it succeeds, the plan matches what was emitted and every
//! emitted jump lands on an instruction inside the loader.
#![no_main]

use arbitrary::Arbitrary;
use ksymrelo_core::gen::{self, GenOptions};
use ksymrelo_core::bpf::op;
use ksymrelo_core::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::{Extern, ExternKind, Site, SiteKind};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "vfs_read",
    "bpf_iter_num_new",
    "x___flavor",
    "x",
    "",
    "a_very_long_kernel_symbol_name_indeed",
];

#[derive(Arbitrary, Debug)]
struct ExternIn {
    name: u8,
    kind: u8,
    weak: bool,
}

#[derive(Arbitrary, Debug)]
struct SiteIn {
    insn_idx: u16,
    extern_idx: u8,
    call: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    externs: Vec<ExternIn>,
    sites: Vec<SiteIn>,
    insns: Vec<(u8, u8, i16, i32)>,
    base: u16,
    cleanup: bool,
}

fuzz_target!(|input: Input| {
    let externs: Vec<Extern<'static>> = input
        .externs
        .iter()
        .take(16)
        .enumerate()
        .map(|(i, e)| {
            let name = NAMES[e.name as usize % NAMES.len()];
            Extern {
                name,
                essential_name: ksymrelo_core::object::essential_name(name),
                kind: [
                    ExternKind::Typed,
                    ExternKind::Typeless,
                    ExternKind::Kfunc,
                    ExternKind::Kconfig,
                ][e.kind as usize % 4],
                weak: e.weak,
                sym_idx: i as u32,
                btf_id: BtfId(1),
                type_id: BtfId(1),
                index: ExternIdx(i as u32),
            }
        })
        .collect();
    let sites: Vec<Site> = input
        .sites
        .iter()
        .take(64)
        .map(|s| Site {
            section: SectionIndex(0),
            insn_idx: InsnIdx(u32::from(s.insn_idx % 512)),
            extern_idx: ExternIdx(u32::from(s.extern_idx)),
            kind: if s.call { SiteKind::Call } else { SiteKind::Ld64 },
        })
        .collect();
    let mut insns: Vec<Insn> = input
        .insns
        .iter()
        .take(512)
        .map(|&(c, r, o, i)| Insn::new(c, r & 0xf, r >> 4, o, i))
        .collect();
    let opts = GenOptions {
        base: u32::from(input.base),
        cleanup: input.cleanup,
    };
    if gen::prepatch(&mut insns, &externs, &sites).is_err() {
        return;
    }
    let Ok(planned) = gen::plan(&externs, &sites, insns.len(), &opts) else {
        return;
    };
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0u8; planned.end as usize];
    let Ok(layout) = gen::emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob) else {
        return;
    };
    assert_eq!(layout, planned);
    // Instruction starts (an ld_imm64 takes two slots).
    let mut starts = vec![false; loader.len()];
    let mut i = 0;
    while i < loader.len() {
        starts[i] = true;
        i += if loader[i].code == op::LD_IMM64 { 2 } else { 1 };
    }
    for (i, x) in loader.iter().enumerate() {
        if starts[i] && x.code & 0x07 == 0x05 && x.code != 0x85 && x.code != 0x95 {
            let target = i as i64 + 1 + i64::from(x.off());
            assert!(
                target >= 0 && (target as usize) < loader.len() && starts[target as usize],
                "jump at {i} to {target}"
            );
        }
    }
    let _ = gen::patched_insns(&blob, &layout).unwrap();
    assert_eq!(gen::status(&blob, &layout), None);
});
