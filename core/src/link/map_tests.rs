//! Tests of map attributes and of the BTF for `BPF_BTF_LOAD` over the
//! fixtures (the comparison with libbpf's own calls is in
//! tests/tests/maps.rs).

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::bpf::{flags, map_type};
use crate::btf::{linkage, Btf, Kind};
use crate::object::{Extern, Object};

const HOST: Host = Host {
    page_size: 4096,
    possible_cpus: 4,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

fn externs<'a>(object: &Object<'a>) -> Vec<Extern<'a>> {
    let Ok(btf) = object.btf() else { return Vec::new() };
    let mut ex = vec![Extern::default(); object.extern_count()];
    let n = object.externs(&btf, &mut ex).unwrap().len();
    ex.truncate(n);
    ex
}

fn defs<'a>(object: &Object<'a>, obj_name: &[u8]) -> Vec<(Map<'a>, MapDef<'a>)> {
    let ex = externs(object);
    let has_kconfig = ex.iter().any(|e| !e.kind.is_ksym());
    let mut maps = vec![Map::default(); map_count(object, has_kconfig).unwrap()];
    let maps = super::maps(object, obj_name, has_kconfig, &mut maps).unwrap();
    maps.iter()
        .map(|m| (*m, map_def(object, m, &ex, &HOST).unwrap()))
        .collect()
}

fn name_of(btf: &Btf<'_>, id: u32) -> (Kind, Vec<u8>) {
    let t = btf.type_by_id(id).unwrap();
    (t.kind(), btf.name(&t).unwrap().to_vec())
}

#[test]
#[cfg_attr(miri, ignore)]
fn maps_fixture_attributes() {
    let data = fixture("maps.bpf.o");
    let object = Object::parse(&data).unwrap();
    let btf = object.btf().unwrap();
    let defs = defs(&object, b"maps");
    let names: Vec<&[u8]> = defs.iter().map(|(m, _)| m.name).collect();
    assert_eq!(
        names,
        [
            &b"m_array"[..],
            b"m_percpu_array",
            b"m_hash",
            b"m_lru_hash",
            b"m_percpu_hash",
            b"m_ringbuf",
            b"m_prog_array",
            b".data",
            b".data.x",
            b".rodata",
            b".bss",
        ]
    );
    // Offsets in .maps come from the symbols (the compiler leaves 0).
    let offs: Vec<u32> = defs[..7].iter().map(|(m, _)| m.sec_offset).collect();
    assert!(offs.windows(2).all(|w| w[0] < w[1]), "{offs:?}");
    let a = |i: usize| defs[i].1.attrs;
    let key_val = |i: usize| (a(i).key_size, a(i).value_size, a(i).max_entries, a(i).map_flags);
    assert_eq!(a(0).map_type, map_type::ARRAY);
    assert_eq!(key_val(0), (4, 8, 4, 0));
    assert_eq!(name_of(&btf, a(0).btf_key_type_id), (Kind::Typedef, b"__u32".to_vec()));
    assert_eq!(
        name_of(&btf, a(0).btf_value_type_id),
        (Kind::Typedef, b"__u64".to_vec())
    );
    assert_eq!(a(1).map_type, map_type::PERCPU_ARRAY);
    assert_eq!(key_val(1), (4, 16, 2, 0));
    assert_eq!(btf.type_by_id(a(1).btf_value_type_id).unwrap().kind(), Kind::Struct);
    assert_eq!(a(2).map_type, map_type::HASH);
    assert_eq!(key_val(2), (8, 4, 64, 1));
    assert_eq!(a(3).map_type, map_type::LRU_HASH);
    assert_eq!(key_val(3), (4, 12, 32, 0));
    assert_eq!(btf.type_by_id(a(3).btf_value_type_id).unwrap().kind(), Kind::Array);
    assert_eq!(a(4).map_type, map_type::PERCPU_HASH);
    assert_eq!(key_val(4), (8, 16, 16, 0));
    assert_eq!((a(4).btf_key_type_id, a(4).btf_value_type_id), (0, 0));
    assert_eq!(a(5).map_type, map_type::RINGBUF);
    assert_eq!(key_val(5), (0, 0, 8192, 0));
    assert_eq!(a(6).map_type, map_type::PROG_ARRAY);
    assert_eq!(key_val(6), (4, 4, 8, 0));
    for (m, d) in &defs[..7] {
        assert_eq!((d.initial_value, d.freeze), (InitialValue::None, false), "{:?}", m.name);
    }
    // Global data: one-element arrays of the section, valued by the
    // DATASEC; .data holds a hidden variable and a visible one.
    let rw_mmap = flags::MMAPABLE;
    for (i, name, flags, freeze) in [
        (7, ".data", rw_mmap, false),
        (8, ".data.x", rw_mmap, false),
        (9, ".rodata", flags::RDONLY_PROG | flags::MMAPABLE, true),
        (10, ".bss", rw_mmap, false),
    ] {
        let (m, d) = &defs[i];
        assert_eq!(
            (d.attrs.map_type, d.attrs.key_size, d.attrs.max_entries),
            (map_type::ARRAY, 4, 1)
        );
        assert_eq!(u64::from(d.attrs.value_size), m.size);
        assert_eq!(d.attrs.map_flags, flags, "{name}");
        assert_eq!(d.freeze, freeze);
        assert_eq!(
            name_of(&btf, d.attrs.btf_value_type_id),
            (Kind::Datasec, name.as_bytes().to_vec())
        );
        assert_eq!(d.attrs.btf_key_type_id, 0);
    }
    assert_eq!(defs[10].1.initial_value, InitialValue::Zeros);
    assert!(matches!(defs[7].1.initial_value, InitialValue::Bytes(b) if b.len() == 16));
}

#[test]
#[cfg_attr(miri, ignore)]
fn link_fixture_attributes() {
    let data = fixture("link.bpf.o");
    let object = Object::parse(&data).unwrap();
    let defs = defs(&object, b"link");
    let counts = &defs[0].1.attrs;
    assert_eq!(
        (counts.map_type, counts.key_size, counts.value_size, counts.max_entries),
        (map_type::ARRAY, 4, 8, 4)
    );
    let kinds: Vec<MapKind> = defs.iter().map(|(m, _)| m.kind).collect();
    assert!(kinds.contains(&MapKind::Data) && kinds.contains(&MapKind::Rodata) && kinds.contains(&MapKind::Bss));
    for (m, d) in &defs[1..] {
        assert_eq!(d.attrs.value_size as u64, m.size);
        assert_ne!(d.attrs.btf_value_type_id, 0, "{:?}", m.name);
    }
}

#[test]
fn ringbuf_sizes_as_libbpf() {
    assert_eq!(adjust_ringbuf_sz(0, 4096), 0);
    assert_eq!(adjust_ringbuf_sz(4096, 4096), 4096);
    assert_eq!(adjust_ringbuf_sz(4097, 4096), 8192);
    assert_eq!(adjust_ringbuf_sz(3 * 4096, 4096), 4 * 4096);
    assert_eq!(adjust_ringbuf_sz(u32::MAX - 1, 4096), u32::MAX - 1);
}

/// The BTF for BPF_BTF_LOAD of maps.bpf.o: the dummy VAR appended, the
/// .ksyms slots, DATASEC sizes and offsets filled, hidden things static.
#[test]
#[cfg_attr(miri, ignore)]
fn load_btf_of_maps_fixture() {
    let data = fixture("maps.bpf.o");
    let object = Object::parse(&data).unwrap();
    let ex = externs(&object);
    let size = load_btf_size(&object).unwrap();
    assert_eq!(size, object.btf_data().unwrap().len() + 16 + 11);
    let mut out = vec![0u8; size];
    assert_eq!(write_load_btf(&object, &ex, &mut out).unwrap(), size);
    assert!(write_load_btf(&object, &ex, &mut out[..size - 1]).is_err());
    let btf = Btf::parse(&out).unwrap();
    let orig = object.btf().unwrap();
    let dummy = btf.type_by_id(orig.end_id().unwrap()).unwrap();
    assert_eq!(
        (dummy.kind(), btf.name(&dummy).unwrap()),
        (Kind::Var, &b"dummy_ksym"[..])
    );
    assert_eq!(dummy.linkage(), linkage::GLOBAL);
    let find = |name: &[u8], kind| {
        btf.type_by_id(btf.find_by_name_kind(name, kind).unwrap().unwrap())
            .unwrap()
    };
    let ksyms = find(b".ksyms", Kind::Datasec);
    assert_eq!(ksyms.size(), 12);
    for (i, vs) in ksyms.datasec_vars().iter().enumerate() {
        assert_eq!((vs.offset.get(), vs.size.get()), (4 * i as u32, 4));
        let v = btf.type_by_id(vs.type_id.get()).unwrap();
        assert_eq!((v.kind(), v.linkage()), (Kind::Var, linkage::GLOBAL));
    }
    let new = find(b"bpf_iter_num_new", Kind::Func);
    assert_eq!(new.linkage(), linkage::GLOBAL);
    let proto = btf.type_by_id(new.type_id()).unwrap();
    assert_eq!(
        btf.name_by_offset(proto.params()[0].name_off.get()).unwrap(),
        b"dummy_ksym"
    );
    assert_eq!(find(b"hidden_var", Kind::Var).linkage(), linkage::STATIC);
    assert_eq!(find(b"data_var", Kind::Var).linkage(), linkage::GLOBAL);
    assert_eq!(find(b"hidden_sub", Kind::Func).linkage(), linkage::STATIC);
    let data_sec = find(b".data", Kind::Datasec);
    assert_eq!(data_sec.size(), 16);
    let offs: Vec<u32> = data_sec.datasec_vars().iter().map(|v| v.offset.get()).collect();
    assert_eq!(offs, [0, 8]);
    let maps = find(b".maps", Kind::Datasec);
    assert!(maps
        .datasec_vars()
        .windows(2)
        .all(|w| w[0].offset.get() < w[1].offset.get()));
}

/// Objects without a function in .ksyms keep their bytes but for the
/// fixed fields.
#[test]
#[cfg_attr(miri, ignore)]
fn load_btf_in_place_when_nothing_is_added() {
    let data = fixture("typed.bpf.o");
    let object = Object::parse(&data).unwrap();
    let ex = externs(&object);
    let size = load_btf_size(&object).unwrap();
    assert_eq!(size, object.btf_data().unwrap().len());
    let mut out = vec![0u8; size];
    write_load_btf(&object, &ex, &mut out).unwrap();
    let btf = Btf::parse(&out).unwrap();
    assert_eq!(btf.own_type_count(), object.btf().unwrap().own_type_count());
    let id = btf.find_by_name_kind(b".ksyms", Kind::Datasec).unwrap().unwrap();
    let ksyms = btf.type_by_id(id).unwrap();
    assert_eq!(ksyms.size(), 4 * ksyms.vlen() as u32);
}
