//! BTF: parse (base and split over it), iterate every type, look names up,
//! check compatibility between arbitrary ids.
#![no_main]

use arbitrary::Arbitrary;
use ksymrelo_core::btf::{types_are_compat, Btf, Kind};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    base: &'a [u8],
    split: &'a [u8],
    name: &'a [u8],
    pairs: Vec<(u32, u32)>,
}

fuzz_target!(|input: Input<'_>| {
    let Ok(base) = Btf::parse(input.base) else { return };
    let mut index = vec![0u32; Btf::max_type_count(input.base)];
    let indexed = Btf::parse_indexed(input.base, None, &mut index).expect("indexed parse agrees with plain parse");
    assert_eq!(indexed.own_type_count(), base.own_type_count());
    // A sparse table: every 2^k-th offset, a short walk for the rest.
    let mut sparse_index = [0u32; 2];
    let sparse = Btf::parse_indexed(input.base, None, &mut sparse_index).expect("sparse parse agrees with plain parse");
    for ty in base.own_types() {
        let ty = ty.expect("a validated BTF iterates without error");
        let _ = base.name(&ty);
        let _ = base.skip_mods_and_typedefs(ty.id());
        let _ = (
            ty.members(),
            ty.params(),
            ty.datasec_vars(),
            ty.array(),
            ty.enum_values(),
            ty.enum64_values(),
        );
        let by_id = indexed.type_by_id(ty.id()).expect("every iterated id resolves");
        assert_eq!(by_id.kind(), ty.kind());
        let by_sparse = sparse.type_by_id(ty.id()).expect("every iterated id resolves sparsely");
        assert_eq!((by_sparse.kind(), by_sparse.name_off()), (ty.kind(), ty.name_off()));
    }
    for kind in [Kind::Var, Kind::Func, Kind::Struct] {
        let _ = base.find_by_name_kind(input.name, kind);
    }
    let split = Btf::parse_split(input.split, &base).ok();
    for (a, b) in input.pairs.iter().take(64) {
        let _ = types_are_compat(&base, *a, &base, *b);
        if let Some(split) = &split {
            let _ = types_are_compat(&base, *a, split, *b);
            let _ = split.find_own_by_name_kind(input.name, Kind::Func);
            let _ = split.type_by_id(*b).map(|t| split.name(&t));
        }
    }
});
