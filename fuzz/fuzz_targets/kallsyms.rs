//! kallsyms matcher: the same text fed in arbitrary chunks gives the same
//! result (or the same error) as one chunk.
#![no_main]

use arbitrary::Arbitrary;
use ksymrelo_core::kallsyms::{match_all, Match, Matcher};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a [u8],
    names: Vec<&'a [u8]>,
    cuts: Vec<u16>,
}

fuzz_target!(|input: Input<'_>| {
    let names: Vec<&[u8]> = input.names.into_iter().take(32).collect();
    let mut whole: Vec<Option<Match>> = vec![None; names.len()];
    let expected = match_all(input.text, &names, &mut whole);

    let mut chunked: Vec<Option<Match>> = vec![None; names.len()];
    let got = (|| {
        let mut m = Matcher::new(&names, &mut chunked)?;
        let mut rest = input.text;
        for cut in &input.cuts {
            if rest.is_empty() {
                break;
            }
            let n = (*cut as usize % (rest.len() + 1)).max(1).min(rest.len());
            m.feed(&rest[..n])?;
            rest = &rest[n..];
        }
        m.feed(rest)?;
        m.finish()
    })();
    assert_eq!(expected.is_ok(), got.is_ok(), "{expected:?} vs {got:?}");
    match (expected, got) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert_eq!(whole, chunked);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => unreachable!(),
    }
});
