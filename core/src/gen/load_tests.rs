//! The whole-load emitter on hand-made loads: the plan agrees with the
//! emit, every jump (forward and back) lands inside the loader, the blob
//! holds each attribute where the walk placed it, the ctx reads back, bad
//! loads are errors, and a golden disassembly.

extern crate std;
use super::attr::{map_create, prog_load};
use super::place::{walk, Piece};
use super::*;
use crate::bpf::{helper, op::*};
use crate::btf::Kind;
use crate::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
use crate::object::ExternKind;
use std::string::String;
use std::vec;
use std::vec::Vec;

fn site(insn_idx: u32, extern_idx: u32, kind: SiteKind) -> Site {
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(insn_idx),
        extern_idx: ExternIdx(extern_idx),
        kind,
    }
}

const EXTERNS: [Extern<'static>; 4] = [
    Extern {
        name: "f",
        essential_name: "f",
        kind: ExternKind::Kfunc,
        weak: false,
        sym_idx: 1,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(0),
    },
    Extern {
        name: "g",
        essential_name: "g",
        kind: ExternKind::Kfunc,
        weak: true,
        sym_idx: 2,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(1),
    },
    Extern {
        name: "v",
        essential_name: "v",
        kind: ExternKind::Typed,
        weak: false,
        sym_idx: 3,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(2),
    },
    Extern {
        name: "vfs_read",
        essential_name: "vfs_read",
        kind: ExternKind::Typeless,
        weak: false,
        sym_idx: 4,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(3),
    },
];

/// ld typeless; ld typed; call f; call g; call g; ld map 1 value; exit.
fn insns() -> Vec<Insn> {
    let ld = Insn::new(LD_IMM64, 1, 0, 0, 0);
    let call = Insn::new(CALL, 0, 0, 0, 0);
    vec![
        ld,
        Insn::default(),
        ld,
        Insn::default(),
        call,
        call,
        call,
        Insn::new(LD_IMM64, 1, pseudo::MAP_IDX_VALUE, 0, 1),
        Insn::default(),
        Insn::new(MOV64_IMM, 0, 0, 0, 0),
        Insn::new(EXIT, 0, 0, 0, 0),
    ]
}

fn sites() -> [Site; 5] {
    [
        site(0, 3, SiteKind::Ld64),
        site(2, 2, SiteKind::Ld64),
        site(4, 0, SiteKind::Call),
        site(5, 1, SiteKind::Call),
        site(6, 1, SiteKind::Call),
    ]
}

const BTF: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const VALUE: [u8; 8] = [9; 8];
const FUNC_INFO: [u8; 8] = [0, 0, 0, 0, 4, 0, 0, 0];

fn maps() -> [MapDef<'static>; 2] {
    let mut with_btf = MapCreate::new(2, 4, 8, 1, "data");
    with_btf.btf_key_type_id = 1;
    with_btf.btf_value_type_id = 2;
    [
        MapDef {
            attr: with_btf,
            initial_value: Some(&VALUE),
            freeze: false,
        },
        MapDef {
            attr: MapCreate::new(2, 4, 8, 1, "a_name_longer_than_fifteen"),
            initial_value: Some(&VALUE),
            freeze: true,
        },
    ]
}

fn prog<'a>(insns: &'a [Insn], sites: &'a [Site], attach: bool) -> ProgDef<'a> {
    ProgDef {
        name: "p",
        prog_type: 31,
        prog_flags: 1 << 4,
        license: "GPL",
        insns,
        func_info: Some(Records {
            bytes: &FUNC_INFO,
            rec_size: 8,
        }),
        attach: attach.then_some(AttachTarget {
            name: "bpf_fentry_test1",
            kind: Kind::Func,
        }),
        externs: &EXTERNS,
        sites,
        ..Default::default()
    }
}

fn generate(load: &Load<'_>) -> (LoadLayout, Vec<Insn>, Vec<u8>) {
    let planned = plan_load(load).unwrap();
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0xa5u8; planned.end as usize + 8];
    let layout = emit_load(load, &mut loader, &mut blob).unwrap();
    assert_eq!(layout, planned, "plan and emit agree");
    assert!(
        blob[planned.end as usize..].iter().all(|&b| b == 0xa5),
        "past the end untouched"
    );
    (layout, loader, blob)
}

/// Every jump, forward or back, lands on an instruction start inside the
/// loader; the loader ends with `exit`; every map-value load stays inside
/// the blob; every helper is one the loader may call.
fn assert_well_formed(loader: &[Insn], blob_len: u32) {
    let mut starts = vec![false; loader.len()];
    let mut i = 0;
    while i < loader.len() {
        starts[i] = true;
        i += if loader[i].code == LD_IMM64 { 2 } else { 1 };
    }
    for (i, x) in loader.iter().enumerate() {
        if !starts[i] {
            continue;
        }
        if matches!(x.code, JA | JEQ_IMM | JNE_IMM | JSGE_IMM | JSLT_IMM | JSLE_IMM) {
            let target = i as i64 + 1 + i64::from(x.off());
            assert!(
                (0..loader.len() as i64).contains(&target) && starts[target as usize],
                "jump at {i} to {target}"
            );
        }
        if x.code == LD_IMM64 && x.src_reg() == pseudo::MAP_IDX_VALUE {
            assert_eq!(x.imm(), 0);
            assert!((loader[i + 1].imm() as u32) < blob_len, "map value at {i}");
        }
        if x.code == CALL {
            assert!(
                [
                    helper::SYS_BPF,
                    helper::SYS_CLOSE,
                    helper::BTF_FIND_BY_NAME_KIND,
                    helper::KALLSYMS_LOOKUP_NAME
                ]
                .contains(&x.imm()),
                "helper {} at {i}",
                x.imm()
            );
        }
    }
    assert_eq!(loader.last().unwrap().code, EXIT);
}

fn u32_at(blob: &[u8], at: u32) -> u32 {
    u32::from_le_bytes(blob[at as usize..at as usize + 4].try_into().unwrap())
}

#[test]
fn plan_and_emit_agree_and_jumps_land() {
    let insns = insns();
    let sites = sites();
    let maps = maps();
    for attach in [false, true] {
        let progs = [prog(&insns, &sites, attach), prog(&insns, &sites, !attach)];
        for (btf, maps) in [(Some(&BTF[..]), &maps[..]), (None, &[][..])] {
            let mut progs = progs;
            if btf.is_none() {
                progs.iter_mut().for_each(|p| p.func_info = None);
            }
            let load = Load {
                btf,
                maps,
                progs: &progs,
            };
            let (layout, loader, _) = generate(&load);
            assert_well_formed(&loader, layout.end);
            assert_eq!(layout.ctx_size, ctx::FDS + 4 * (maps.len() as u32 + 2));
            // One slot per kfunc lookup of each program, after the maps
            // (from 1 without maps).
            assert_eq!(layout.fd_array_len, maps.len().max(1) as u32 + 4);
        }
    }
}

#[test]
fn the_blob_holds_each_attribute_where_the_walk_placed_it() {
    let insns = insns();
    let sites = sites();
    let maps = maps();
    let progs = [prog(&insns, &sites, true)];
    let load = Load {
        btf: Some(&BTF),
        maps: &maps,
        progs: &progs,
    };
    let (layout, _, blob) = generate(&load);
    assert_eq!(layout.fd_array_len, 2 + 2, "maps 0 and 1, then f and g");
    let mut seen = 0;
    walk(&load, |piece| {
        match piece {
            Piece::Btf(_, place) => {
                assert_eq!(&blob[place.data_off as usize..][..8], &BTF);
                assert_eq!(u32_at(&blob, place.attr_off + 16), 8, "btf_size");
            }
            Piece::Map(i, _, place) => {
                let at = place.attr_off;
                assert_eq!(u32_at(&blob, at + map_create::VALUE_SIZE), 8);
                assert_eq!(u32_at(&blob, at + map_create::BTF_VALUE_TYPE_ID), [2, 0][i as usize]);
                let name = &blob[(at + map_create::NAME) as usize..][..16];
                assert_eq!(
                    name,
                    [&b"data\0\0\0\0\0\0\0\0\0\0\0\0"[..], b"a_name_longer_t\0"][i as usize]
                );
                assert_eq!(&blob[place.value_off as usize..][..8], &VALUE);
                assert_eq!((place.freeze_off != 0), i == 1);
            }
            Piece::Prog(_, _, place, _) => {
                let at = place.attr_off;
                assert_eq!(u32_at(&blob, at + prog_load::PROG_TYPE), 31);
                assert_eq!(u32_at(&blob, at + prog_load::INSN_CNT), 11);
                assert_eq!(u32_at(&blob, at + prog_load::FUNC_INFO_CNT), 1);
                assert_eq!(u32_at(&blob, at + prog_load::FUNC_INFO_REC_SIZE), 8);
                assert_eq!(&blob[place.license_off as usize..][..4], b"GPL\0");
                assert_eq!(&blob[place.attach_name_off as usize..][..17], b"bpf_fentry_test1\0");
                assert_eq!(place.slot_before, 1, "the kfunc slots follow the two maps");
            }
        }
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 4);
    // The program's copy is marked as prepatch marks it.
    let copy = program_insns(&load, &blob, 0).unwrap();
    let mut expected = insns.clone();
    prepatch(&mut expected, &EXTERNS, &sites).unwrap();
    assert_eq!(copy, &expected[..]);
    assert!(program_insns(&load, &blob, 1).is_err());
}

#[test]
fn the_ctx_reads_back() {
    let mut ctx = vec![0u8; ctx_size(2, 1) as usize];
    assert_eq!(failure(&ctx), None);
    let put = |ctx: &mut [u8], at: u32, v: u32| ctx[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
    for (step, ext) in [
        (Step::Btf, 0),
        (Step::MapCreate(1), 0),
        (Step::MapUpdate(1), 0),
        (Step::MapFreeze(0), 0),
        (Step::Extern { prog: 0, extern_idx: 3 }, 4),
        (Step::AttachTarget(0), 0),
        (Step::Program(0), 0),
    ] {
        let (kind, index) = step.code();
        put(&mut ctx, ctx::STEP, kind);
        put(&mut ctx, ctx::INDEX, index);
        put(&mut ctx, ctx::EXTERN, ext);
        put(&mut ctx, ctx::ERROR, (-13i32) as u32);
        assert_eq!(failure(&ctx), Some(Failure { step, error: -13 }));
    }
    assert_eq!(failure(&ctx[..ctx::ERROR as usize]), None, "too short");
    for (i, fd) in [5u32, 6, 7].into_iter().enumerate() {
        put(&mut ctx, ctx::FDS + 4 * i as u32, fd);
    }
    assert_eq!(fds(&ctx, 2, 1).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(fds(&ctx, 3, 1).last(), Some(0), "past the end reads 0");
}

#[test]
fn bad_loads_are_errors() {
    let insns = insns();
    let sites = sites();
    let maps = maps();
    let progs = [prog(&insns, &sites, false)];
    let no_btf = Load {
        btf: None,
        maps: &maps,
        progs: &[],
    };
    assert!(
        matches!(plan_load(&no_btf), Err(Error::Mismatch { .. })),
        "map type ids without BTF"
    );
    let no_btf = Load {
        btf: None,
        maps: &[],
        progs: &progs,
    };
    assert!(
        matches!(plan_load(&no_btf), Err(Error::Mismatch { .. })),
        "func_info without BTF"
    );
    let mut short = maps;
    short[1].initial_value = Some(&VALUE[..4]);
    let load = Load {
        btf: Some(&BTF),
        maps: &short,
        progs: &[],
    };
    assert!(matches!(plan_load(&load), Err(Error::Mismatch { .. })), "value size");
    let many = vec![MapDef::default(); MAX_MAPS + 1];
    let load = Load {
        btf: None,
        maps: &many,
        progs: &[],
    };
    assert!(matches!(plan_load(&load), Err(Error::CapacityExceeded { .. })));
    let mut odd = progs;
    odd[0].func_info = Some(Records {
        bytes: &FUNC_INFO[..6],
        rec_size: 8,
    });
    let load = Load {
        btf: Some(&BTF),
        maps: &[],
        progs: &odd,
    };
    assert!(plan_load(&load).is_err(), "records not whole");
    let bad_site = [site(9, 3, SiteKind::Ld64)];
    let bad = [prog(&insns, &bad_site, false)];
    let load = Load {
        btf: Some(&BTF),
        maps: &[],
        progs: &bad,
    };
    assert!(plan_load(&load).is_err(), "a site that is no ld_imm64");

    // Buffers too small: errors, and the blob untouched.
    let load = Load {
        btf: Some(&BTF),
        maps: &maps,
        progs: &progs,
    };
    let planned = plan_load(&load).unwrap();
    let mut loader = vec![Insn::default(); planned.loader_len as usize - 1];
    let mut blob = vec![0x5au8; planned.end as usize];
    assert!(matches!(
        emit_load(&load, &mut loader, &mut blob),
        Err(Error::CapacityExceeded { .. })
    ));
    assert!(blob.iter().all(|&b| b == 0x5a));
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut small = vec![0u8; planned.end as usize - 1];
    assert!(matches!(
        emit_load(&load, &mut loader, &mut small),
        Err(Error::CapacityExceeded { .. })
    ));
}

/// A load of `progs` programs, each with `n` externs at `2 n` sites of
/// every kind, and every map the loader takes.
fn big_load(progs: usize, n: usize, check: impl FnOnce(Result<(LoadLayout, Vec<Insn>)>)) {
    let names: Vec<String> = (0..n).map(|i| std::format!("k{i}")).collect();
    let kinds = [ExternKind::Typeless, ExternKind::Typed, ExternKind::Kfunc];
    let externs: Vec<Extern<'_>> = names
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
    let mut insns = Vec::new();
    let mut sites = Vec::new();
    for round in 0..2 {
        for (i, e) in externs.iter().enumerate() {
            let call = e.kind == ExternKind::Kfunc && round == 1;
            let kind = if call { SiteKind::Call } else { SiteKind::Ld64 };
            sites.push(site(insns.len() as u32, i as u32, kind));
            if call {
                insns.push(Insn::new(CALL, 0, 0, 0, 0));
            } else {
                insns.extend([Insn::new(LD_IMM64, 1, 0, 0, 0), Insn::default()]);
            }
        }
    }
    insns.push(Insn::new(EXIT, 0, 0, 0, 0));
    let prog = ProgDef {
        name: "p",
        license: "GPL",
        insns: &insns,
        externs: &externs,
        sites: &sites,
        ..Default::default()
    };
    let progs = vec![prog; progs];
    let maps = vec![
        MapDef {
            attr: MapCreate::new(2, 4, 8, 1, "m"),
            initial_value: Some(&VALUE),
            freeze: true,
        };
        MAX_MAPS
    ];
    let load = Load {
        btf: None,
        maps: &maps,
        progs: &progs,
    };
    check(plan_load(&load).map(|_| {
        let (layout, loader, _) = generate(&load);
        (layout, loader)
    }));
}

#[test]
fn many_programs_and_sites_fit_the_assembler() {
    // More sites, programs and descriptors than the assembler has labels
    // or pending jumps, and a loader long enough that failures reach the
    // cleanup through relays.
    let (progs, n) = if cfg!(miri) { (2, 30) } else { (8, 120) };
    big_load(progs, n, |r| {
        let (layout, loader) = r.unwrap();
        assert_well_formed(&loader, layout.end);
        assert_eq!(layout.fd_array_len as usize, MAX_MAPS + progs * (n / 3));
        if !cfg!(miri) {
            assert!(loader.len() > 32768, "{}", loader.len());
        }
    });
}

#[test]
#[cfg_attr(miri, ignore = "a loader of 100k instructions: too slow under miri; runs natively")]
fn a_loader_too_long_for_its_jumps_is_an_error() {
    // The cleanup, which closes every program's module fds, outgrows the
    // forward jump over it (gen_loader fails such loads with ERANGE).
    big_load(MAX_PROGS, 300, |r| {
        assert!(matches!(r, Err(Error::Overflow { what: "jump distance" })), "{r:?}");
    });
}

#[test]
fn golden_disassembly() {
    let insns = insns();
    let sites = sites();
    let maps = maps();
    let progs = [prog(&insns, &sites, true)];
    let load = Load {
        btf: Some(&BTF),
        maps: &maps,
        progs: &progs,
    };
    let (layout, loader, _) = generate(&load);
    let mut text = std::format!("; {layout:?}\n");
    disasm(&loader, &mut text).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/gen_load_sample.txt");
    if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
        std::fs::write(path, &text).unwrap();
    } else {
        let expected = include_str!("../../tests/golden/gen_load_sample.txt");
        assert_eq!(text, expected, "loader changed; review and bless with KSYMRELO_BLESS=1");
    }
}

#[test]
fn random_loads_plan_and_emit_or_fail_cleanly() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let kinds = [
        ExternKind::Typeless,
        ExternKind::Typed,
        ExternKind::Kfunc,
        ExternKind::Kconfig,
    ];
    let names = ["a", "b___x", "b___y", "c", ""];
    for _ in 0..if cfg!(miri) { 8 } else { 300 } {
        let externs: Vec<Extern<'_>> = (0..1 + next(6))
            .map(|i| {
                let name = names[next(names.len())];
                Extern {
                    name,
                    essential_name: crate::object::essential_name(name),
                    kind: kinds[next(kinds.len())],
                    weak: next(2) == 0,
                    sym_idx: i as u32 + 1,
                    btf_id: BtfId(1),
                    type_id: BtfId(1),
                    index: ExternIdx(i as u32),
                }
            })
            .collect();
        let mut insns = Vec::new();
        let mut sites = Vec::new();
        for _ in 0..next(12) {
            let e = next(externs.len());
            // Now and then a site that does not fit its extern or its
            // instruction: the load must then be an error.
            let call = if next(8) == 0 {
                next(2) == 0
            } else {
                externs[e].kind == ExternKind::Kfunc && next(2) == 0
            };
            sites.push(site(
                insns.len() as u32,
                e as u32,
                if call { SiteKind::Call } else { SiteKind::Ld64 },
            ));
            if call {
                insns.push(Insn::new(CALL, 0, 0, 0, 0));
            } else {
                insns.extend([Insn::new(LD_IMM64, 1, 0, 0, 0), Insn::default()]);
            }
        }
        insns.push(Insn::new(EXIT, 0, 0, 0, 0));
        let progs: Vec<ProgDef<'_>> = (0..next(4))
            .map(|_| ProgDef {
                name: "p",
                license: "GPL",
                insns: &insns,
                externs: &externs,
                sites: &sites,
                func_info: (next(2) == 0).then_some(Records {
                    bytes: &FUNC_INFO,
                    rec_size: 8,
                }),
                attach: (next(3) == 0).then_some(AttachTarget {
                    name: "t",
                    kind: Kind::Typedef,
                }),
                ..Default::default()
            })
            .collect();
        let all_maps = maps();
        let maps = &all_maps[..next(3)];
        let load = Load {
            btf: (next(4) != 0).then_some(&BTF[..]),
            maps,
            progs: &progs,
        };
        let Ok(planned) = plan_load(&load) else {
            continue;
        };
        let mut loader = vec![Insn::default(); planned.loader_len as usize];
        let mut blob = vec![0u8; planned.end as usize];
        let layout = emit_load(&load, &mut loader, &mut blob).unwrap();
        assert_eq!(layout, planned);
        assert_well_formed(&loader, layout.end);
        for i in 0..progs.len() {
            assert_eq!(program_insns(&load, &blob, i).unwrap().len(), insns.len());
        }
    }
}

#[test]
fn a_sealed_loader_checks_its_blob_before_it_uses_it() {
    let insns = insns();
    let sites = sites();
    let maps = maps();
    let progs = [prog(&insns, &sites, true), prog(&insns, &sites, false)];
    let load = Load {
        btf: Some(&BTF[..]),
        maps: &maps,
        progs: &progs,
    };
    let (open_layout, open_loader, open_blob) = generate(&load);
    let planned = plan_sealed_load(&load).unwrap();
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0xa5u8; planned.end as usize + 8];
    let digest: [u8; 32] = core::array::from_fn(|i| 0x11 * (i as u8 % 8) + i as u8);
    let mut hashed = None;
    let layout = emit_sealed_load(&load, &mut loader, &mut blob, |b| {
        hashed = Some(b.to_vec());
        digest
    })
    .unwrap();
    assert_eq!(layout, planned, "plan and emit agree");
    assert_eq!(
        LoadLayout {
            loader_len: open_layout.loader_len,
            ..layout
        },
        open_layout,
        "sealing moves nothing in the blob"
    );
    assert_eq!(
        hashed.as_deref(),
        Some(&open_blob[..layout.end as usize]),
        "the blob is hashed whole"
    );
    assert_eq!(layout.end % 8, 0, "the kernel hashes whole 8-byte elements");
    assert_eq!(blob[..layout.end as usize], open_blob[..layout.end as usize]);
    assert_well_formed(&loader, layout.end);
    assert!(loader.len() > open_loader.len());

    // The check: the map's `excl` word, then its hash dword by dword
    // against the digest, each mismatch a jump back to the cleanup, all
    // before the first bpf_sys_bpf.
    let first_sys_bpf = loader
        .iter()
        .position(|i| i.code == CALL && i.imm() == helper::SYS_BPF)
        .unwrap();
    let map_ptr = |i: &Insn| i.code == LD_IMM64 && i.src_reg() == pseudo::MAP_IDX && i.imm() == 0;
    let ptrs: Vec<usize> = (0..loader.len()).filter(|&i| map_ptr(&loader[i])).collect();
    assert_eq!(ptrs.len(), 5, "one read of excl, four of sha");
    assert!(ptrs[4] < first_sys_bpf, "checked before the first command");
    let excl = loader[ptrs[0] + 2];
    assert_eq!((excl.code, excl.off()), (LDX_W, crate::bpf::MAP_EXCL_OFF));
    for (k, &at) in ptrs[1..].iter().enumerate() {
        let read = loader[at + 2];
        assert_eq!(
            (read.code, read.off()),
            (LDX_DW, crate::bpf::MAP_SHA_OFF + 8 * k as i16)
        );
        let (lo, hi) = (loader[at + 3], loader[at + 4]);
        assert_eq!(lo.code, LD_IMM64);
        let mut want = [0u8; 8];
        want[..4].copy_from_slice(&lo.imm().to_le_bytes());
        want[4..].copy_from_slice(&hi.imm().to_le_bytes());
        assert_eq!(want, digest[8 * k..8 * k + 8], "dword {k} of the digest");
        let jump = loader[at + 6];
        assert_eq!(jump.code, JNE_IMM);
        assert!(jump.off() < 0, "a mismatch jumps back to the cleanup");
    }
    // The descriptor table the cleanup closes is zeroed before the check.
    let zeroing = loader
        .iter()
        .position(|i| i.code == ST_DW && i.imm() == 0 && i.dst_reg() == 1);
    assert!(zeroing.is_some_and(|z| z < ptrs[0]));
    assert_eq!(Step::from_code(8, 0, 0), Some(Step::Seal));
    assert_eq!(Step::Seal.code(), (8, 0));

    // A blob too short is refused, the caller's hash never asked.
    let mut short = vec![0u8; layout.end as usize - 1];
    let err = emit_sealed_load(&load, &mut loader, &mut short, |_| panic!("hashed")).unwrap_err();
    assert!(matches!(err, Error::CapacityExceeded { .. }), "{err:?}");
}
