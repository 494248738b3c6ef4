//! vmlinux BTF facts (`btf::facts`): arbitrary images over arbitrary BTF
//! never panic and never answer a type of another name or kind; facts
//! written for a BTF answer every lookup as the walk does, and a changed
//! byte makes a lookup fail or still answer right.
#![no_main]

use arbitrary::Arbitrary;
use ksymrelo_core::btf::facts::{self, Facts, Key};
use ksymrelo_core::btf::{Btf, Kind};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    btf: &'a [u8],
    image: &'a [u8],
    names: Vec<&'a [u8]>,
    slots: u8,
    flip: (u32, u8),
}

/// Every lookup through `image`, or the first error.
fn answers(image: &[u8], btf_bytes: &[u8], names: &[&[u8]]) -> Option<Vec<Option<u32>>> {
    let front = image.get(..facts::front_len(image).ok()?)?;
    let f = Facts::parse(front).ok()?;
    let mut index = vec![0u32; f.index_len().min(1 << 20)];
    f.index_into(&mut index).ok()?;
    let btf = Btf::reindexed(btf_bytes, None, &index, f.type_count()).ok()?;
    let body = &image[front.len()..];
    let mut out = Vec::new();
    for name in names {
        for kind in [Kind::Func, Kind::Var] {
            let got = f.lookup(&btf, body, name, kind).ok()?;
            if let Some(id) = got {
                let ty = btf.type_by_id(id).expect("an answer is a type");
                assert_eq!((ty.kind(), btf.name(&ty).expect("named")), (kind, *name));
            }
            out.push(got);
        }
    }
    Some(out)
}

fuzz_target!(|input: Input<'_>| {
    let names: Vec<&[u8]> = input.names.into_iter().take(16).collect();
    let Ok(_) = Btf::parse(input.btf) else {
        // Facts over bytes that are no BTF are refused or answer nothing.
        let _ = answers(input.image, input.btf, &names);
        return;
    };
    let _ = answers(input.image, input.btf, &names);

    let mut index = vec![0u32; usize::from(input.slots).max(1)];
    let count = Btf::parse_indexed(input.btf, None, &mut index)
        .expect("indexed parse agrees with plain parse")
        .own_type_count();
    let btf = Btf::reindexed(input.btf, None, &index, count).expect("a parsed BTF reindexes");
    let key = Key::new(b"boot", input.btf).expect("short boot id");
    let mut image = vec![0u8; facts::image_len(&btf, index.len()).expect("walks as the parse did")];
    facts::write(&btf, &index, &key, &mut image).expect("writes into its own length");
    let walked: Vec<Option<u32>> = names
        .iter()
        .flat_map(|n| [(*n, Kind::Func), (*n, Kind::Var)])
        .map(|(n, k)| btf.find_own_by_name_kind(n, k).expect("a parsed BTF walks"))
        .collect();
    assert_eq!(answers(&image, input.btf, &names).as_ref(), Some(&walked));
    if !image.is_empty() {
        let at = input.flip.0 as usize % image.len();
        image[at] ^= input.flip.1 | 1;
        if let Some(got) = answers(&image, input.btf, &names) {
            assert_eq!(got, walked, "a changed byte at {at} answered wrong");
        }
    }
});
