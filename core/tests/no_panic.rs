//! Any byte string fed to the BTF reader, the ELF reader or the object view
//! gives `Ok` or `Err` — never a panic, never an endless loop. Inputs are
//! random bytes and, to reach deeper, valid inputs with random corruption.

use ksymrelo_core::btf::{types_are_compat, Btf, Kind};
use ksymrelo_core::object::{Extern, Object, Site};
use proptest::prelude::*;

fn exercise_btf(data: &[u8]) {
    let Ok(btf) = Btf::parse(data) else { return };
    let end = btf.end_id().unwrap_or(0);
    for ty in btf.own_types().take(10_000) {
        let Ok(ty) = ty else { break };
        let _ = btf.name(&ty);
        let _ = btf.skip_mods_and_typedefs(ty.id());
        let _ = (
            ty.members(),
            ty.params(),
            ty.datasec_vars(),
            ty.array(),
            ty.enum_values(),
            ty.enum64_values(),
        );
        let _ = types_are_compat(&btf, ty.id(), &btf, ty.type_id());
        let _ = types_are_compat(&btf, ty.id(), &btf, end.saturating_sub(1));
    }
    let _ = btf.find_by_name_kind(b"x", Kind::Var);
    let _ = btf.type_by_id(end);
    let mut index = vec![0u32; Btf::max_type_count(data)];
    if let Ok(indexed) = Btf::parse_indexed(data, None, &mut index) {
        for id in 0..end.min(2000) {
            assert_eq!(indexed.type_by_id(id).is_ok(), btf.type_by_id(id).is_ok());
        }
    }
    // A sparse table (every 2^k-th offset) answers the same.
    let mut sparse_index = [0u32; 3];
    if let Ok(sparse) = Btf::parse_indexed(data, None, &mut sparse_index) {
        for id in 0..end.min(2000) {
            let (a, b) = (sparse.type_by_id(id), btf.type_by_id(id));
            assert_eq!(a.is_ok(), b.is_ok());
            if let (Ok(a), Ok(b)) = (a, b) {
                assert_eq!((a.kind(), a.name_off()), (b.kind(), b.name_off()));
            }
        }
    }
    // The same bytes as a split BTF over themselves.
    if let Ok(split) = Btf::parse_split(data, &btf) {
        for ty in split.own_types().take(1000) {
            let Ok(ty) = ty else { break };
            let _ = split.name(&ty);
            let _ = types_are_compat(&btf, 1, &split, ty.id());
        }
    }
}

fn exercise_object(data: &[u8]) {
    let Ok(obj) = Object::parse(data) else { return };
    for s in obj.exec_sections().flatten() {
        let _ = obj.insns(&s);
    }
    let Ok(btf) = obj.btf() else { return };
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let Ok(externs) = obj.externs(&btf, &mut externs) else {
        return;
    };
    let Ok(max) = obj.max_site_count() else {
        return;
    };
    let mut sites = vec![Site::default(); max];
    let _ = obj.sites(externs, &mut sites);
    // Too little room is an error, not a panic.
    if !externs.is_empty() {
        let mut small = vec![Extern::default(); externs.len() - 1];
        assert!(obj.externs(&btf, &mut small).is_err());
    }
}

fn sample_btf() -> Vec<u8> {
    // int, ptr->int, const->ptr, typedef->const, func_proto(int)->int,
    // func extern, var extern, struct{int}, datasec .ksyms{var, func}
    let strs = b"\0int\0t\0f\0v\0s\0a\0.ksyms\0";
    let info = |k: u32, vlen: u32| (k << 24) | vlen;
    let types: Vec<u32> = vec![
        1,
        info(1, 0),
        4,
        32,
        0,
        info(2, 0),
        1,
        0,
        info(10, 0),
        2,
        5,
        info(8, 0),
        3,
        0,
        info(13, 1),
        1,
        0,
        4,
        7,
        info(12, 2),
        5,
        9,
        info(14, 0),
        4,
        2,
        11,
        info(4, 1),
        4,
        13,
        1,
        0,
        15,
        info(15, 2),
        0,
        7,
        0,
        8,
        6,
        0,
        0,
    ];
    let mut out = Vec::new();
    let type_len = (types.len() * 4) as u32;
    for w in [0x0001_eb9fu32, 24, 0, type_len, type_len, strs.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(strs);
    out
}

fn fixture_objects() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "o") {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

proptest! {
    // Fewer cases under miri, which is ~1000x slower.
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 2000 }, .. ProptestConfig::default() })]

    #[test]
    fn btf_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise_btf(&data);
    }

    #[test]
    fn btf_corrupted(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut data = sample_btf();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        exercise_btf(&data);
    }

    #[test]
    fn elf_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        exercise_object(&data);
    }

    // Reads the fixture files, which miri's isolation forbids.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn object_corrupted(pick in any::<prop::sample::Index>(),
                        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
                        cut in any::<prop::sample::Index>()) {
        let objects = fixture_objects();
        prop_assume!(!objects.is_empty());
        let mut data = objects[pick.index(objects.len())].clone();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        exercise_object(&data);
        let cut = cut.index(data.len());
        exercise_object(&data[..cut]);
    }
}

#[test]
fn sample_btf_is_valid() {
    let data = sample_btf();
    let btf = Btf::parse(&data).unwrap();
    assert_eq!(btf.own_type_count(), 9);
    assert_eq!(btf.find_by_name_kind(b".ksyms", Kind::Datasec).unwrap(), Some(9));
}
