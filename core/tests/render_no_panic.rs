//! Any bytes that parse as BTF render every type and compare any two types
//! without a panic or an endless loop, and the comparison agrees with
//! `types_are_compat`.

use ksymrelo_core::btf::{first_difference, types_are_compat, write_c_type, Btf, FixedText, Why};
use ksymrelo_core::Error;
use proptest::prelude::*;

fn exercise(data: &[u8], pairs: &[(u32, u32)]) {
    let Ok(btf) = Btf::parse(data) else { return };
    let end = btf.end_id().unwrap_or(0);
    // Every id, one past the end and a far one; into an unbounded writer,
    // a small one and a full one.
    for id in (0..end.min(2000)).chain([end, u32::MAX]) {
        let mut s = String::new();
        write_c_type(&btf, id, &mut s).unwrap();
        assert!(s.len() < 1 << 20, "[{id}] rendered {} bytes", s.len());
        let mut t = FixedText::<24>::new();
        let _ = write_c_type(&btf, id, &mut t);
        assert!(t.as_str().len() <= 24);
        let mut h = heapless::String::<0>::new();
        let _ = write_c_type(&btf, id, &mut h);
    }
    for &(l, k) in pairs {
        let (l, k) = (l % (end + 1), k % (end + 1));
        let compat = types_are_compat(&btf, l, &btf, k);
        let diff = first_difference(&btf, l, &btf, k);
        let agree = match (&compat, &diff) {
            (Ok(true), Ok(None)) => true,
            (Ok(false), Ok(Some(d))) => d.why != Why::TooDeep,
            (Err(Error::CompatDepth { .. }), Ok(Some(d))) => d.why == Why::TooDeep,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        assert!(agree, "[{l}] vs [{k}]: {compat:?} vs {diff:?}");
        if let Ok(Some(d)) = diff {
            let mut t = FixedText::<128>::new();
            let _ = ksymrelo_core::btf::write_difference(&btf, &btf, &d, &mut t);
        }
    }
}

/// Every kind at least once: int, ptr, const, typedef, array, struct,
/// union, enum, enum64, fwd, float, volatile, restrict, type tag,
/// func_proto (named, variadic), func, var, datasec, decl tag.
fn sample_btf() -> Vec<u8> {
    let strs = b"\0int\0t\0f\0v\0s\0a\0.ksyms\0tag\0".to_vec();
    let info = |k: u32, vlen: u32| (k << 24) | vlen;
    #[rustfmt::skip]
    let types: Vec<u32> = vec![
        1, info(1, 0), 4, 32,            // [1] int
        0, info(2, 0), 1,                // [2] ptr -> 1
        0, info(10, 0), 2,               // [3] const -> 2
        5, info(8, 0), 3,                // [4] typedef t -> 3
        0, info(13, 2), 1, 13, 4, 0, 0,  // [5] proto(a: t, ...) -> int
        7, info(12, 2), 5,               // [6] func f
        9, info(14, 0), 4, 2,            // [7] var v
        11, info(4, 1), 4, 13, 1, 0,     // [8] struct s { int a }
        0, info(3, 0), 0, 8, 1, 4,       // [9] array of 4 struct s
        0, info(5, 0), 4,                // [10] union
        0, info(6, 1), 4, 13, 3,         // [11] enum { a = 3 }
        0, info(19, 0), 8,               // [12] enum64
        11, (1 << 31) | info(7, 0), 0,   // [13] fwd union s
        0, info(16, 0), 8,               // [14] float
        0, info(9, 0), 2,                // [15] volatile -> 2
        0, info(11, 0), 2,               // [16] restrict -> 2
        22, info(18, 0), 8,              // [17] type tag -> struct s
        0, info(2, 0), 5,                // [18] ptr -> proto
        15, info(15, 2), 0, 7, 0, 4, 6, 0, 0, // [19] datasec .ksyms
        22, info(17, 0), 6, u32::MAX,    // [20] decl tag -> func
    ];
    let mut out = Vec::new();
    let type_len = (types.len() * 4) as u32;
    for w in [0x0001_eb9fu32, 24, 0, type_len, type_len, strs.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&strs);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 2000 }, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512),
                    pairs in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..32)) {
        exercise(&data, &pairs);
    }

    #[test]
    fn corrupted_sample(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                        pairs in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..32)) {
        let mut data = sample_btf();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        exercise(&data, &pairs);
    }
}

#[test]
fn sample_renders() {
    let data = sample_btf();
    let btf = Btf::parse(&data).unwrap();
    assert_eq!(btf.own_type_count(), 20);
    // Every pair natively; a stride of them under miri, ~1000x slower.
    let step = if cfg!(miri) { 5 } else { 1 };
    let all: Vec<(u32, u32)> = (0..=21)
        .step_by(step)
        .flat_map(|l| (0..=21).step_by(step).map(move |k| (l, k)))
        .collect();
    exercise(&data, &all);
    let c = |id| {
        let mut s = String::new();
        write_c_type(&btf, id, &mut s).unwrap();
        s
    };
    assert_eq!(c(6), "int f(t a, ...)");
    assert_eq!(c(9), "struct s[4]");
    assert_eq!(c(17), "struct s __attribute__((btf_type_tag(\"tag\")))");
    assert_eq!(c(18), "int (*)(t, ...)");
}
