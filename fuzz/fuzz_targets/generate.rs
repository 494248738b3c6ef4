//! `ksymrelo gen` on arbitrary object bytes (`ksymrelo_std::generate`:
//! link, map definitions, the whole-load loader): never a panic; when it
//! succeeds the output is bounded by the input and its loader file reads
//! back as written; any one flipped byte of that file is refused. Every
//! other input (by its length) is generated sealed: the seal is the
//! loader's hash, and the loader carries the blob's.
#![no_main]

use ksymrelo_std::generate;
use ksymrelo_std::loader_file::LoaderFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = generate::GenerateOptions {
        sealed: data.len() % 2 == 1,
    };
    let Ok(file) = generate::generate(data, "fuzz.bpf.o", &opts) else {
        return;
    };
    if opts.sealed {
        let seal = file.seal.as_ref().expect("sealed");
        assert_eq!(*seal, ksymrelo_std::skel::Seal::of(&file.loader));
        let digest = ksymrelo_std::skel::sha256(&file.blob);
        let first = i32::from_le_bytes(digest[..4].try_into().unwrap());
        assert!(file.loader.iter().any(|i| i.imm() == first), "the blob's hash is in the loader");
    }
    // Every program may append every subprogram (at most 32 programs), and
    // each ksym site costs the loader a few instructions.
    let out = file.loader.len() * 8 + file.blob.len();
    assert!(out <= 512 * data.len() + (1 << 20), "{out} bytes out of {} in", data.len());
    let bytes = file.to_bytes().expect("a generated file writes");
    assert_eq!(LoaderFile::from_bytes(&bytes).expect("and reads back"), file);
    let i = data.len() % bytes.len();
    let mut flipped = bytes.clone();
    flipped[i] ^= 0x20;
    assert!(LoaderFile::from_bytes(&flipped).is_err(), "byte {i} flipped, accepted");
});
