//! The emitter on a small sample: markers, one lookup per symbol, jumps
//! that land, buffers too small, and a golden disassembly.

extern crate std;
use super::*;
use crate::bpf::{helper, op::*, ENOENT};
use crate::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
use crate::object::ExternKind;
use std::string::String;
use std::vec;

fn ext(name: &'static str, kind: ExternKind, weak: bool, index: u32) -> Extern<'static> {
    Extern {
        name,
        essential_name: crate::object::essential_name(name),
        kind,
        weak,
        sym_idx: index + 1,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(index),
    }
}

fn site(insn_idx: u32, extern_idx: u32, kind: SiteKind) -> Site {
    Site {
        section: SectionIndex(3),
        insn_idx: InsnIdx(insn_idx),
        extern_idx: ExternIdx(extern_idx),
        kind,
    }
}

/// typeless `vfs_read` at 3 sites, weak typed `v`, kfunc `f`, weak kfunc `g`.
fn sample() -> ([Extern<'static>; 4], [Site; 6], [Insn; 12]) {
    let externs = [
        ext("f", ExternKind::Kfunc, false, 0),
        ext("g___flavor", ExternKind::Kfunc, true, 1),
        ext("v", ExternKind::Typed, true, 2),
        ext("vfs_read", ExternKind::Typeless, false, 3),
    ];
    let sites = [
        site(0, 3, SiteKind::Ld64),
        site(2, 3, SiteKind::Ld64),
        site(4, 2, SiteKind::Ld64),
        site(6, 0, SiteKind::Call),
        site(7, 1, SiteKind::Call),
        site(8, 3, SiteKind::Ld64),
    ];
    let ld = Insn::new(LD_IMM64, 1, 0, 0, 0);
    let call = Insn::new(CALL, 0, 1, -1, -1);
    let insns = [
        ld,
        Insn::default(),
        ld,
        Insn::default(),
        ld,
        Insn::default(),
        call,
        call,
        ld,
        Insn::default(),
        Insn::new(MOV64_IMM, 0, 0, 0, 0),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    (externs, sites, insns)
}

fn generate(opts: GenOptions) -> (Layout, vec::Vec<Insn>, vec::Vec<u8>) {
    let (externs, sites, mut insns) = sample();
    prepatch(&mut insns, &externs, &sites).unwrap();
    let planned = plan(&externs, &sites, insns.len(), &opts).unwrap();
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0xffu8; planned.end as usize];
    let layout = emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob).unwrap();
    assert_eq!(layout, planned, "plan and emit agree");
    (layout, loader, blob)
}

#[test]
fn prepatch_marks_btf_sites_and_clears_what_the_object_carried() {
    let (externs, sites, mut insns) = sample();
    // Whatever numbers the object carried at its sites.
    for i in [0usize, 1, 2, 3, 4, 5, 8, 9] {
        insns[i].set_imm(7);
    }
    let before = insns;
    prepatch(&mut insns, &externs, &sites).unwrap();
    // Typed `v` at 4: marked, id and fd cleared.
    assert_eq!(
        (insns[4].src_reg(), insns[4].imm(), insns[5].imm()),
        (pseudo::BTF_ID, 0, 0)
    );
    // Kfunc calls at 6 and 7: marked, id and slot cleared.
    for i in [6, 7] {
        assert_eq!(
            (insns[i].src_reg(), insns[i].imm(), insns[i].off()),
            (pseudo::KFUNC_CALL, 0, 0)
        );
    }
    // Typeless sites are the loader's alone.
    for i in [0, 1, 2, 3, 8, 9] {
        assert_eq!(insns[i], before[i]);
    }
    // A bad site: nothing is touched.
    let mut bad_sites = sites;
    bad_sites[5].insn_idx = InsnIdx(10);
    let mut untouched = before;
    assert!(prepatch(&mut untouched, &externs, &bad_sites).is_err());
    assert_eq!(untouched, before);
}

/// Every jump lands on an instruction start inside the loader (never in
/// the middle of an `ld_imm64`), and the loader ends with `exit`.
fn assert_jumps_land(loader: &[Insn]) {
    let mut starts = vec![false; loader.len()];
    let mut i = 0;
    while i < loader.len() {
        starts[i] = true;
        i += if loader[i].code == LD_IMM64 { 2 } else { 1 };
    }
    for (i, x) in loader.iter().enumerate() {
        if starts[i] && matches!(x.code, JA | JEQ_IMM | JNE_IMM | JSGE_IMM) {
            let target = i as i64 + 1 + i64::from(x.off());
            assert!(
                (0..loader.len() as i64).contains(&target) && starts[target as usize],
                "jump at {i} to {target}"
            );
        }
    }
    assert_eq!(loader.last().unwrap().code, EXIT);
}

#[test]
fn every_jump_lands_inside_the_program() {
    for cleanup in [false, true] {
        let (_, loader, _) = generate(GenOptions { base: 0, cleanup });
        assert_jumps_land(&loader);
    }
}

#[test]
fn far_more_sites_than_the_assembler_has_labels() {
    // Every kind of site, weak and strong, 600 externs at 1200 sites (under
    // miri, which is slow, 120 at 240: still far more than the labels).
    const EXTERNS: usize = if cfg!(miri) { 120 } else { 600 };
    let names: vec::Vec<String> = (0..EXTERNS).map(|i| std::format!("sym{i}")).collect();
    let kinds = [ExternKind::Typeless, ExternKind::Typed, ExternKind::Kfunc];
    let externs: vec::Vec<Extern<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Extern {
            name,
            essential_name: name,
            kind: kinds[i % 3],
            weak: i % 2 == 0,
            sym_idx: i as u32 + 1,
            btf_id: BtfId(1),
            type_id: BtfId(1),
            index: ExternIdx(i as u32),
        })
        .collect();
    let mut insns = vec::Vec::new();
    let mut sites = vec::Vec::new();
    for round in 0..2 {
        for (i, e) in externs.iter().enumerate() {
            let call = e.kind == ExternKind::Kfunc && round == 1;
            sites.push(site(
                insns.len() as u32,
                i as u32,
                if call { SiteKind::Call } else { SiteKind::Ld64 },
            ));
            if call {
                insns.push(Insn::new(CALL, 0, 1, -1, -1));
            } else {
                insns.extend([Insn::new(LD_IMM64, 1, 0, 0, 0), Insn::default()]);
            }
        }
    }
    insns.push(Insn::new(EXIT, 0, 0, 0, 0));
    prepatch(&mut insns, &externs, &sites).unwrap();
    for cleanup in [false, true] {
        let opts = GenOptions { base: 0, cleanup };
        let planned = plan(&externs, &sites, insns.len(), &opts).unwrap();
        let mut loader = vec![Insn::default(); planned.loader_len as usize];
        let mut blob = vec![0u8; planned.end as usize];
        let layout = emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob).unwrap();
        assert_eq!(layout, planned);
        assert_eq!(
            layout.fd_array_len as usize,
            EXTERNS / 3 + 1,
            "one slot per kfunc called, slot 0 unused"
        );
        assert_jumps_land(&loader);
    }
}

#[test]
fn the_status_header_reads_back_from_its_named_fields() {
    let (layout, _, mut blob) = generate(GenOptions {
        base: 16,
        cleanup: false,
    });
    assert_eq!(status(&blob, &layout), None);
    let at = layout.status_off as usize;
    blob[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
    blob[at + 4..at + 8].copy_from_slice(&(-ENOENT).to_le_bytes());
    assert_eq!(status(&blob, &layout), Some((2, -ENOENT)));
    assert_eq!(status(&blob[..at + 7], &layout), None, "a short blob has no status");
    assert_eq!(fd_array(&blob, &layout).count(), 3);
}

#[test]
fn one_lookup_per_symbol_and_names_in_the_blob() {
    let (layout, loader, blob) = generate(GenOptions::default());
    let calls = |id| loader.iter().filter(|x| x.code == CALL && x.imm() == id).count();
    assert_eq!(
        calls(helper::KALLSYMS_LOOKUP_NAME),
        1,
        "vfs_read looked up once for 3 sites"
    );
    assert_eq!(calls(helper::BTF_FIND_BY_NAME_KIND), 3);
    assert_eq!(calls(helper::SYS_CLOSE), 0);
    let names = &blob[layout.names_off as usize..layout.slots_off as usize];
    assert_eq!(
        names,
        b"vfs_read\0\0\0\0\0\0\0\0v\0\0\0\0\0\0\0f\0\0\0\0\0\0\0g\0\0\0\0\0\0\0"
    );
    assert_eq!(layout.fd_array_len, 3);
    // Pre-patched markers are in the blob's copy.
    let insns = patched_insns(&blob, &layout).unwrap();
    assert_eq!(insns[4].src_reg(), pseudo::BTF_ID);
    assert_eq!(insns[6].src_reg(), pseudo::KFUNC_CALL);
    assert_eq!(insns[0].src_reg(), 0);
    assert_eq!(status(&blob, &layout), None);
    let (_, with_cleanup, _) = generate(GenOptions { base: 0, cleanup: true });
    assert_eq!(
        with_cleanup
            .iter()
            .filter(|x| x.code == CALL && x.imm() == helper::SYS_CLOSE)
            .count(),
        3
    );
}

#[test]
fn caller_chosen_base_and_small_buffers() {
    let (externs, sites, insns) = sample();
    let opts = GenOptions {
        base: 100,
        cleanup: false,
    };
    let planned = plan(&externs, &sites, insns.len(), &opts).unwrap();
    assert_eq!(planned.status_off, 104);
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0x5au8; planned.end as usize];
    emit(&externs, &sites, &insns, &opts, &mut loader, &mut blob).unwrap();
    assert!(blob[..100].iter().all(|&b| b == 0x5a), "bytes before base untouched");
    let mut short = vec![Insn::default(); planned.loader_len as usize - 1];
    assert!(matches!(
        emit(&externs, &sites, &insns, &opts, &mut short, &mut blob),
        Err(Error::CapacityExceeded { .. })
    ));
    let mut small = vec![0u8; planned.end as usize - 1];
    assert!(matches!(
        emit(&externs, &sites, &insns, &opts, &mut loader, &mut small),
        Err(Error::CapacityExceeded { .. })
    ));
    let bad = [site(10, 3, SiteKind::Ld64)];
    assert!(emit(&externs, &bad, &insns, &opts, &mut loader, &mut blob).is_err());
    // Found by review: a huge index must be an error in plan() too, not
    // an overflow while computing offsets.
    let huge = [site(u32::MAX, 3, SiteKind::Call)];
    assert!(plan(&externs, &huge, insns.len(), &opts).is_err());
}

#[test]
fn golden_disassembly() {
    let (_, loader, _) = generate(GenOptions::default());
    let mut text = String::new();
    disasm(&loader, &mut text).unwrap();
    let expected = include_str!("../../tests/golden/gen_sample.txt");
    if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/gen_sample.txt"),
            &text,
        )
        .unwrap();
    } else {
        assert_eq!(text, expected);
    }
}
