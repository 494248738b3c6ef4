//! Tests of the BTF reader over hand-built blobs and the real vmlinux BTF.

extern crate std;
use std::vec::Vec;

use super::*;

/// Builds a little BTF blob from raw type words and a string table.
pub(crate) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let type_len = (types.len() * 4) as u32;
    for w in [0x0001_eb9fu32, 24, 0, type_len, type_len, strings.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(strings);
    out
}

pub(crate) fn info(kind: Kind, vlen: u32) -> u32 {
    ((kind as u32) << 24) | vlen
}

// [1] int "int" size 4, [2] ptr -> 1, [3] const -> 2, [4] typedef "t" -> 3,
// [5] func_proto ret 1 (params: 4), [6] func "f" -> 5 linkage extern,
// [7] var "v" -> 4 extern, [8] struct "s" size 4 { "int" a: 1 }
const STRS: &[u8] = b"\0int\0t\0f\0v\0s\0a\0";
fn sample() -> Vec<u8> {
    blob(
        &[
            1,
            info(Kind::Int, 0),
            4,
            32,
            0,
            info(Kind::Ptr, 0),
            1,
            0,
            info(Kind::Const, 0),
            2,
            5,
            info(Kind::Typedef, 0),
            3,
            0,
            info(Kind::FuncProto, 1),
            1,
            0,
            4,
            7,
            info(Kind::Func, 2),
            5,
            9,
            info(Kind::Var, 0),
            4,
            2,
            11,
            info(Kind::Struct, 1),
            4,
            13,
            1,
            0,
        ],
        STRS,
    )
}

#[test]
fn parses_and_walks_every_kind_used() {
    let data = sample();
    let btf = Btf::parse(&data).unwrap();
    assert_eq!(btf.own_type_count(), 8);
    let kinds: Vec<Kind> = btf.own_types().map(|t| t.unwrap().kind()).collect();
    assert_eq!(
        kinds,
        [
            Kind::Int,
            Kind::Ptr,
            Kind::Const,
            Kind::Typedef,
            Kind::FuncProto,
            Kind::Func,
            Kind::Var,
            Kind::Struct
        ]
    );
    let v = btf.type_by_id(7).unwrap();
    assert_eq!(btf.name(&v).unwrap(), b"v");
    assert_eq!(v.linkage(), linkage::EXTERN);
    assert_eq!(btf.type_by_id(6).unwrap().linkage(), linkage::EXTERN);
    assert_eq!(btf.skip_mods_and_typedefs(4).unwrap().kind(), Kind::Ptr);
    assert_eq!(btf.type_by_id(8).unwrap().members().len(), 1);
    assert_eq!(btf.type_by_id(5).unwrap().params()[0].type_id.get(), 4);
    assert_eq!(btf.type_by_id(9).unwrap_err(), Error::BtfTypeId { id: 9 });
    assert_eq!(btf.find_by_name_kind(b"f", Kind::Func).unwrap(), Some(6));
    assert_eq!(btf.find_by_name_kind(b"f", Kind::Var).unwrap(), None);
}

#[test]
fn index_gives_the_same_types() {
    let data = sample();
    let mut index = std::vec![0u32; Btf::max_type_count(&data)];
    let indexed = Btf::parse_indexed(&data, None, &mut index).unwrap();
    let plain = Btf::parse(&data).unwrap();
    for id in 0..=8 {
        let (a, b) = (indexed.type_by_id(id).unwrap(), plain.type_by_id(id).unwrap());
        assert_eq!((a.id(), a.kind(), a.name_off()), (b.id(), b.kind(), b.name_off()));
    }
    // Smaller tables keep every 2^k-th offset and walk the rest: the same
    // types for every id, and an error for ids past the end.
    for capacity in 1..Btf::max_type_count(&data) {
        let mut small = std::vec![u32::MAX; capacity];
        let sparse = Btf::parse_indexed(&data, None, &mut small).unwrap();
        for id in 0..=8 {
            let (a, b) = (sparse.type_by_id(id).unwrap(), plain.type_by_id(id).unwrap());
            assert_eq!(
                (a.id(), a.kind(), a.name_off()),
                (b.id(), b.kind(), b.name_off()),
                "capacity {capacity}"
            );
        }
        assert_eq!(sparse.type_by_id(9).unwrap_err(), Error::BtfTypeId { id: 9 });
    }
    let mut empty: [u32; 0] = [];
    assert!(matches!(
        Btf::parse_indexed(&data, None, &mut empty),
        Err(Error::CapacityExceeded { .. })
    ));
}

#[test]
fn split_btf_continues_ids_and_strings() {
    let base_data = sample();
    let base = Btf::parse(&base_data).unwrap();
    // Split strings start at base's string length (STRS.len()).
    let off = STRS.len() as u32;
    // [9] var "modvar" -> 1 (base int), [10] func "modf" -> 5 (base proto)
    let split_data = blob(
        &[off, info(Kind::Var, 0), 1, 1, off + 7, info(Kind::Func, 1), 5],
        b"modvar\0modf\0",
    );
    let split = Btf::parse_split(&split_data, &base).unwrap();
    assert_eq!(split.start_id(), 9);
    assert_eq!(split.find_own_by_name_kind(b"modf", Kind::Func).unwrap(), Some(10));
    assert_eq!(split.find_own_by_name_kind(b"f", Kind::Func).unwrap(), None);
    assert_eq!(split.find_by_name_kind(b"f", Kind::Func).unwrap(), Some(6));
    let t = split.type_by_id(9).unwrap();
    assert_eq!(split.name(&t).unwrap(), b"modvar");
    assert_eq!(split.type_by_id(1).unwrap().kind(), Kind::Int);
    assert_eq!(split.name_by_offset(1).unwrap(), b"int");
    assert!(types_are_compat(&base, 1, &split, t.type_id()).unwrap());
}

#[test]
fn malformed_blobs_are_errors() {
    let data = sample();
    assert!(matches!(Btf::parse(&data[..10]), Err(Error::Truncated { .. })));
    assert!(Btf::parse(&data[..data.len() - 1]).is_err());
    let mut bad = data.clone();
    bad[0] = 0;
    assert!(matches!(Btf::parse(&bad), Err(Error::BtfMagic { .. })));
    // vlen past the end of the type section
    let bad = blob(&[0, info(Kind::Struct, 100), 4], b"\0");
    assert!(matches!(Btf::parse(&bad), Err(Error::Truncated { .. })));
    // unknown kind
    let bad = blob(&[0, 25 << 24, 0], b"\0");
    assert_eq!(Btf::parse(&bad).unwrap_err(), Error::BtfKind { id: 1, kind: 25 });
    // string offset past the end
    let bad = blob(&[100, info(Kind::Int, 0), 4, 32], b"\0");
    let btf = Btf::parse(&bad).unwrap();
    assert_eq!(
        btf.name(&btf.type_by_id(1).unwrap()).unwrap_err(),
        Error::BtfString { offset: 100 }
    );
    // typedef loop
    let bad = blob(&[0, info(Kind::Typedef, 0), 2, 0, info(Kind::Typedef, 0), 1], b"\0");
    let btf = Btf::parse(&bad).unwrap();
    assert_eq!(btf.skip_mods_and_typedefs(1).unwrap_err(), Error::BtfTypeLoop { id: 1 });
}

#[test]
fn compatibility_rules() {
    // [1] int, [2] int bitfield-ish (offset 3), [3] ptr->1, [4] ptr->2,
    // [5] struct a, [6] union, [7] enum, [8] enum64, [9] proto(int)->int,
    // [10] proto(int, int)->int, [11] array of 1, [12] typedef->5, [13] fwd,
    // [14] ptr->12, [15] ptr->5
    let data = blob(
        &[
            1,
            info(Kind::Int, 0),
            4,
            32,
            1,
            info(Kind::Int, 0),
            4,
            (3 << 16) | 8,
            0,
            info(Kind::Ptr, 0),
            1,
            0,
            info(Kind::Ptr, 0),
            2,
            0,
            info(Kind::Struct, 0),
            0,
            0,
            info(Kind::Union, 0),
            0,
            0,
            info(Kind::Enum, 0),
            4,
            0,
            info(Kind::Enum64, 0),
            8,
            0,
            info(Kind::FuncProto, 1),
            1,
            0,
            1,
            0,
            info(Kind::FuncProto, 2),
            1,
            0,
            1,
            0,
            1,
            0,
            info(Kind::Array, 0),
            0,
            1,
            1,
            4,
            0,
            info(Kind::Typedef, 0),
            5,
            0,
            info(Kind::Fwd, 0),
            0,
            0,
            info(Kind::Ptr, 0),
            12,
            0,
            info(Kind::Ptr, 0),
            5,
        ],
        b"\0int\0",
    );
    let b = Btf::parse(&data).unwrap();
    let c = |x, y| types_are_compat(&b, x, &b, y).unwrap();
    assert!(c(1, 1));
    assert!(!c(1, 2), "int with bit offset");
    assert!(c(3, 3));
    assert!(!c(3, 4), "pointee int with bit offset");
    assert!(c(7, 8), "any two enums");
    assert!(!c(5, 6));
    assert!(c(9, 9));
    assert!(!c(9, 10), "param count");
    assert!(c(11, 11));
    assert!(!c(11, 1));
    // As in libbpf, the very first step compares the kinds as given (callers
    // skip modifiers first); every later step skips typedefs.
    assert!(!c(12, 5), "first step: typedef vs struct");
    assert!(c(14, 15), "ptr to typedef vs ptr to struct");
    assert!(c(13, 13));
    assert!(c(0, 0), "void");
}

#[test]
fn compatibility_of_cyclic_types_is_bounded() {
    // [1] ptr -> 2, [2] ptr -> 1 : a pointer cycle
    let data = blob(&[0, info(Kind::Ptr, 0), 2, 0, info(Kind::Ptr, 0), 1], b"\0");
    let b = Btf::parse(&data).unwrap();
    assert_eq!(
        types_are_compat(&b, 1, &b, 1).unwrap_err(),
        Error::CompatDepth { local_id: 1 }
    );
    // [1] proto(param: ptr[2] -> 1) -> void : nested function pointers forever
    let data = blob(&[0, info(Kind::FuncProto, 1), 0, 0, 2, 0, info(Kind::Ptr, 0), 1], b"\0");
    let b = Btf::parse(&data).unwrap();
    assert!(matches!(types_are_compat(&b, 1, &b, 1), Err(Error::CompatDepth { .. })));
}

#[test]
#[cfg_attr(miri, ignore = "16384 steps twice: minutes under miri; runs natively")]
fn compatibility_of_branching_prototypes_is_bounded_in_steps() {
    // [1] proto() -> void; then for k in 1..=30: [2k] ptr -> [2k-1],
    // [2k+1] proto(ptr [2k], ptr [2k]) -> void. Every level is compatible
    // and branches twice: 2^30 comparisons, all within the depth bound.
    // The step budget ends it, and the renderer, which walks the same
    // steps, says "too deep" there too.
    let mut types = std::vec![0, info(Kind::FuncProto, 0), 0];
    for k in 1..=30u32 {
        types.extend([0, info(Kind::Ptr, 0), 2 * k - 1]);
        types.extend([0, info(Kind::FuncProto, 2), 0, 0, 2 * k, 0, 2 * k]);
    }
    let data = blob(&types, b"\0");
    let b = Btf::parse(&data).unwrap();
    let top = 61;
    assert_eq!(
        types_are_compat(&b, top, &b, top).unwrap_err(),
        Error::CompatDepth { local_id: top }
    );
    let d = crate::btf::first_difference(&b, top, &b, top).unwrap().unwrap();
    assert_eq!(d.why, crate::btf::Why::TooDeep);
    // A few levels fit the budget and are compatible, as libbpf says.
    assert!(types_are_compat(&b, 11, &b, 11).unwrap());
    assert_eq!(crate::btf::first_difference(&b, 11, &b, 11).unwrap(), None);
}

pub(crate) fn vmlinux() -> Option<Vec<u8>> {
    match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(d) => Some(d),
        Err(e) => {
            ksymrelo_test_skip::skip(format_args!("/sys/kernel/btf/vmlinux unreadable: {e}"));
            None
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn real_vmlinux_btf() {
    let Some(data) = vmlinux() else { return };
    let mut index = std::vec![0u32; Btf::max_type_count(&data)];
    let btf = Btf::parse_indexed(&data, None, &mut index).unwrap();
    assert!(btf.own_type_count() > 1000);
    let mut names = 0usize;
    for ty in btf.own_types() {
        let ty = ty.unwrap();
        btf.name(&ty).unwrap();
        names += 1;
    }
    assert_eq!(names, btf.own_type_count() as usize);
    let f = btf
        .find_by_name_kind(b"bpf_iter_num_new", Kind::Func)
        .unwrap()
        .expect("bpf_iter_num_new");
    let f = btf.type_by_id(f).unwrap();
    assert_eq!(f.kind(), Kind::Func);
    assert_eq!(btf.type_by_id(f.type_id()).unwrap().kind(), Kind::FuncProto);
    let v = btf
        .find_by_name_kind(b"bpf_prog_active", Kind::Var)
        .unwrap()
        .expect("bpf_prog_active");
    let v = btf.type_by_id(v).unwrap();
    assert_eq!(btf.skip_mods_and_typedefs(v.type_id()).unwrap().kind(), Kind::Int);
    // The batch gives the same answers as single lookups.
    let wanted: [(&[u8], Kind); 3] = [
        (b"bpf_iter_num_new", Kind::Func),
        (b"bpf_prog_active", Kind::Var),
        (b"no_such_ksymrelo_thing", Kind::Func),
    ];
    let mut found = [None; 3];
    assert_eq!(btf.find_own_batch(&wanted, &mut found).unwrap(), 2);
    assert_eq!(found[0], Some(f.id()));
    assert_eq!(found[1], Some(v.id()));
    assert_eq!(found[2], None);
    // Every FUNC_PROTO is compatible with itself, well within the step
    // budget (which only hostile BTF reaches).
    assert!(types_are_compat(&btf, f.type_id(), &btf, f.type_id()).unwrap());
    for ty in btf.own_types() {
        let ty = ty.unwrap();
        if ty.kind() == Kind::Func {
            let proto = ty.type_id();
            assert!(types_are_compat(&btf, proto, &btf, proto).unwrap(), "[{}]", ty.id());
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn batch_lookup_agrees_with_a_naive_scan_on_vmlinux() {
    let Some(data) = vmlinux() else { return };
    let btf = Btf::parse(&data).unwrap();
    // Every 500th named VAR/FUNC, plus names that exist under another kind.
    let mut wanted: Vec<(Vec<u8>, Kind)> = Vec::new();
    for (n, ty) in btf
        .own_types()
        .map(|t| t.unwrap())
        .filter(|t| matches!(t.kind(), Kind::Func | Kind::Var))
        .enumerate()
    {
        if n % 500 == 0 {
            wanted.push((btf.name(&ty).unwrap().to_vec(), ty.kind()));
        }
    }
    wanted.push((b"task_struct".to_vec(), Kind::Func));
    wanted.push((b"a".to_vec(), Kind::Func));
    wanted.push((b"".to_vec(), Kind::Var));
    wanted.push((b"task_struct".to_vec(), Kind::Struct));
    let pairs: Vec<(&[u8], Kind)> = wanted.iter().map(|(n, k)| (&n[..], *k)).collect();
    let mut found = std::vec![None; pairs.len()];
    btf.find_own_batch(&pairs, &mut found).unwrap();
    // Sorted by name (found by binary search, not compared with every
    // name), the same answers; the pairs above are not sorted, so `found`
    // came from the comparison with every name.
    assert!(!pairs.is_sorted_by(|a, b| a.0 <= b.0));
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|&a, &b| pairs[a].0.cmp(pairs[b].0));
    let sorted: Vec<(&[u8], Kind)> = order.iter().map(|&i| pairs[i]).collect();
    let mut found_sorted = std::vec![None; sorted.len()];
    btf.find_own_batch(&sorted, &mut found_sorted).unwrap();
    for (k, &i) in order.iter().enumerate() {
        assert_eq!(found_sorted[k], found[i], "{:?}", core::str::from_utf8(pairs[i].0));
    }
    assert!(found[pairs.len() - 1].is_some() && found[pairs.len() - 4].is_none());
    // The indexed fast path gives the same answers.
    let mut index = std::vec![0u32; Btf::max_type_count(&data)];
    let indexed = Btf::parse_indexed(&data, None, &mut index).unwrap();
    let mut found_indexed = std::vec![None; pairs.len()];
    indexed.find_own_batch(&pairs, &mut found_indexed).unwrap();
    assert_eq!(found, found_indexed);
    // The one-walk parse with a sparse table (the resolver's way) too, and
    // its lookups by id agree with the full table's.
    let mut sparse_index = std::vec![0u32; 4096];
    let mut found_sparse = std::vec![None; pairs.len()];
    let sparse = Btf::parse_indexed_batch(&data, None, &mut sparse_index, &pairs, &mut found_sparse).unwrap();
    assert_eq!(found, found_sparse);
    let last = indexed.end_id().unwrap() - 1;
    for id in (0..=last).step_by(97).chain([last]) {
        let (a, b) = (sparse.type_by_id(id).unwrap(), indexed.type_by_id(id).unwrap());
        assert_eq!(
            (a.id(), a.kind(), a.name_off(), a.vlen()),
            (b.id(), b.kind(), b.name_off(), b.vlen())
        );
    }
    assert!(sparse.type_by_id(last + 1).is_err());
    for ((name, kind), got) in pairs.iter().zip(&found) {
        let naive = btf
            .own_types()
            .map(|t| t.unwrap())
            .find(|t| t.kind() == *kind && btf.name(t).unwrap() == *name)
            .map(|t| t.id());
        assert_eq!(*got, naive, "{:?}", std::string::String::from_utf8_lossy(name));
    }
}
