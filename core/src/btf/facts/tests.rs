//! The facts image against the walk it stands for.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::btf::tests::{blob, info};

/// `[1] int`, `[2] proto`, then FUNCs and VARs named from a small set, in
/// an order that puts equal names in different blocks.
fn many() -> Vec<u8> {
    let names: &[u8] = b"\0int\0a\0b\0c\0dd\0e\0";
    let offs = [5u32, 7, 9, 11, 14];
    let mut types = std::vec![1, info(Kind::Int, 0), 4, 32, 0, info(Kind::FuncProto, 0), 1];
    for i in 0..300u32 {
        let name = offs[(i as usize * 7 + i as usize / 50) % offs.len()];
        if i % 3 == 0 {
            types.extend_from_slice(&[name, info(Kind::Var, 0), 1, 1]);
        } else {
            types.extend_from_slice(&[name, info(Kind::Func, 1), 2]);
        }
    }
    blob(&types, names)
}

fn image_of(data: &[u8], slots: usize, boot: &[u8]) -> (Vec<u8>, Vec<u32>) {
    let mut index = std::vec![0u32; slots];
    let count = Btf::parse_indexed(data, None, &mut index).unwrap().own_type_count();
    let btf = Btf::reindexed(data, None, &index, count).unwrap();
    let key = Key::new(boot, data).unwrap();
    let mut out = std::vec![0u8; image_len(&btf, index.len()).unwrap()];
    let n = write(&btf, &index, &key, &mut out).unwrap();
    assert_eq!(n, out.len());
    (out, index)
}

/// Every answer of the image, as a result, for `names` × {Func, Var}.
fn answers(image: &[u8], data: &[u8], names: &[&[u8]]) -> Result<Vec<Option<u32>>> {
    let front = image
        .get(..front_len(image)?)
        .ok_or(Error::Truncated { what: "t", offset: 0 })?;
    let facts = Facts::parse(front)?;
    let mut index = std::vec![0u32; facts.index_len()];
    facts.index_into(&mut index)?;
    let btf = Btf::reindexed(data, None, &index, facts.type_count())?;
    let body = &image[front.len()..];
    let mut out = Vec::new();
    for name in names {
        for kind in [Kind::Func, Kind::Var] {
            out.push(facts.lookup(&btf, body, name, kind)?);
        }
    }
    Ok(out)
}

fn walked(data: &[u8], names: &[&[u8]]) -> Vec<Option<u32>> {
    let btf = Btf::parse(data).unwrap();
    let wanted: Vec<(&[u8], Kind)> = names.iter().flat_map(|n| [(*n, Kind::Func), (*n, Kind::Var)]).collect();
    let mut out = std::vec![None; wanted.len()];
    btf.find_own_batch(&wanted, &mut out).unwrap();
    out
}

const NAMES: &[&[u8]] = &[b"a", b"b", b"c", b"dd", b"e", b"", b"0", b"d", b"ddd", b"int", b"zz"];

#[test]
fn answers_as_the_walk_does() {
    let data = many();
    for slots in [1, 3, 8, Btf::max_type_count(&data)] {
        let (image, _) = image_of(&data, slots, b"boot");
        assert_eq!(
            answers(&image, &data, NAMES).unwrap(),
            walked(&data, NAMES),
            "{slots} slots"
        );
    }
    let (image, index) = image_of(&data, 8, b"boot");
    let facts = Facts::parse(&image[..front_len(&image).unwrap()]).unwrap();
    assert_eq!(facts.key(), &Key::new(b"boot", &data).unwrap());
    assert_ne!(facts.key(), &Key::new(b"boot2", &data).unwrap());
    assert_eq!(facts.type_count(), 302);
    let mut back = std::vec![0; facts.index_len()];
    facts.index_into(&mut back).unwrap();
    assert_eq!(back, index);
    assert!(Key::new(&[b'x'; BOOT_ID_LEN + 1], &data).is_none());
}

#[test]
fn keys_tell_blobs_apart() {
    let data = many();
    let mut other = data.clone();
    let last = other.len() - 2;
    other[last] ^= 1;
    assert_ne!(Key::new(b"b", &data), Key::new(b"b", &other));
    assert_ne!(Key::new(b"b", &data), Key::new(b"b", &data[..data.len() - 1]));
}

#[test]
fn a_changed_byte_is_refused_or_harmless() {
    let data = many();
    let right = walked(&data, NAMES);
    let (image, _) = image_of(&data, 8, b"b");
    // Every byte natively; under miri (each lookup rehashes the image) a
    // spread of them, so that CI's miri run stays in minutes.
    let step = if cfg!(miri) { 61 } else { 1 };
    for i in (0..image.len()).step_by(step) {
        for v in [0u8, 0xff, 0x5a] {
            let mut bad = image.clone();
            if bad[i] == v {
                continue;
            }
            bad[i] = v;
            // The body's blocks are checked only when read: a lookup
            // answers right, or fails; it never answers wrong.
            if let Ok(got) = answers(&bad, &data, NAMES) {
                assert_eq!(got, right, "byte {i} = {v:#x}");
            }
        }
    }
    for cut in (0..image.len()).step_by(step) {
        assert!(answers(&image[..cut], &data, NAMES).is_err(), "cut at {cut}");
    }
}

#[test]
fn split_btf_is_refused_and_small_buffers_are_errors() {
    let data = many();
    let base = Btf::parse(&data).unwrap();
    let key = Key::new(b"b", &data).unwrap();
    let mut out = [0u8; 64];
    assert!(matches!(
        write(&base, &[0; 4], &key, &mut out),
        Err(Error::CapacityExceeded { .. })
    ));
    let split = crate::btf::tests::blob(&[], b"\0");
    if let Ok(s) = Btf::parse_split(&split, &base) {
        assert!(matches!(
            write(&s, &[0; 4], &key, &mut out),
            Err(Error::Mismatch { .. })
        ));
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn vmlinux_answers_as_the_walk_does() {
    let Some(data) = crate::btf::tests::vmlinux() else {
        return;
    };
    let (image, _) = image_of(&data, 8192, b"boot");
    let btf = Btf::parse(&data).unwrap();
    let mut names: Vec<&[u8]> = btf
        .own_types()
        .map(|t| t.unwrap())
        .filter(|t| kept(t.kind()))
        .step_by(41)
        .map(|t| btf.name(&t).unwrap())
        .collect();
    names.extend_from_slice(&[
        b"bpf_iter_num_new",
        b"runqueues",
        b"ksymrelo_strong_missing",
        b"",
        b"\xff",
    ]);
    assert_eq!(answers(&image, &data, &names).unwrap(), walked(&data, &names));
}
