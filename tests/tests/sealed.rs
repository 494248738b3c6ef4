//! Sealed and signed loaders (`ksymrelo gen --sealed`, `--sign`) checked
//! by the kernel: a sealed loader loads and runs like an open one; one
//! flipped byte of its data is refused by the loader ("data altered"),
//! one flipped byte of the loader by the kernel, never loaded, nothing
//! left open; a kernel before 6.18 is told to lack exclusive maps; a
//! signature the kernel cannot check, or a keyring that does not exist,
//! is said so.

use ksymrelo_core::insn::Insn;
use ksymrelo_std::error::SealProblem;
use ksymrelo_std::generate::{self, GenerateOptions, Ran};
use ksymrelo_std::load::{prog_test_run, TestRun};
use ksymrelo_std::loader_file::LoaderFile;
use ksymrelo_std::skel::{self, Seal, Sealed, SkelOptions};
use ksymrelo_std::{Error, Reason};
use ksymrelo_tests::{fds, fixture, fixture_bytes, kernel_usable, kernel_version, live_kernel_files};
use std::os::fd::AsFd;

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

/// Whether this kernel has exclusive maps and map hashes (Linux 6.18).
fn sealing_kernel() -> bool {
    kernel_version() >= (6, 18)
}

fn generate(obj: &str, sealed: bool) -> LoaderFile {
    generate::generate(
        &fixture_bytes(obj),
        &fixture(obj).to_string_lossy(),
        &GenerateOptions { sealed },
    )
    .unwrap_or_else(|e| panic!("generate {obj}: {e}"))
}

/// `file` written and read back, as `ksymrelo run FILE` gets it.
fn through_file(file: &LoaderFile) -> LoaderFile {
    LoaderFile::from_bytes(&file.to_bytes().unwrap()).unwrap()
}

fn run(file: &LoaderFile) -> Result<Ran, Error> {
    generate::run(&through_file(file), &SkelOptions::default())
}

fn insns(ran: &Ran) -> Vec<(String, Vec<Insn>)> {
    ran.progs.iter().map(|(n, _, i)| (n.clone(), i.clone())).collect()
}

/// On a kernel before 6.18 a sealed loader fails, saying why.
fn assert_no_exclusive_maps(result: Result<Ran, Error>) {
    match result {
        Err(e @ Error::Seal(SealProblem::NoExclusiveMaps { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("no exclusive maps") && text.contains("Linux 6.18"),
                "{text}"
            );
            assert_eq!(e.reason(), Reason::KernelFacts);
        }
        other => panic!("a sealed loader before 6.18: {other:?}"),
    }
}

#[test]
fn sealed_loaders_load_what_open_ones_load() {
    let _g = fds::shared();
    if !gate("sealed_loaders_load_what_open_ones_load") {
        return;
    }
    for obj in [
        "typeless.bpf.o",
        "mixed.bpf.o",
        "link.bpf.o",
        "gen_data.bpf.o",
        "multi_section.bpf.o",
    ] {
        let sealed = generate(obj, true);
        let open = generate(obj, false);
        assert_eq!(
            sealed.blob, open.blob,
            "{obj}: sealing changes the loader, not the data"
        );
        assert!(sealed.loader.len() > open.loader.len());
        assert_eq!(sealed.seal, Some(Seal::of(&sealed.loader)));
        if !sealing_kernel() {
            assert_no_exclusive_maps(run(&sealed));
            continue;
        }
        let a = run(&sealed).unwrap_or_else(|e| panic!("{obj} sealed: {e}"));
        let b = run(&open).unwrap_or_else(|e| panic!("{obj} open: {e}"));
        assert_eq!(insns(&a), insns(&b), "{obj}: the same programs loaded");
        assert_eq!(a.maps.len(), b.maps.len());
    }
    if sealing_kernel() {
        // And what it loaded runs as the open loader's does.
        let ctx = [0u8; 80];
        let (sealed, open) = (
            run(&generate("typeless.bpf.o", true)).unwrap(),
            run(&generate("typeless.bpf.o", false)).unwrap(),
        );
        let outputs: Vec<Vec<u8>> = [sealed, open]
            .iter()
            .map(|ran| {
                let mut c = ctx.to_vec();
                let res = prog_test_run(
                    ran.progs[0].1.as_fd(),
                    &mut TestRun {
                        ctx_in: Some(&mut c),
                        ..Default::default()
                    },
                )
                .unwrap();
                assert_eq!(res.retval, 0);
                c
            })
            .collect();
        assert_eq!(
            outputs[0], outputs[1],
            "the sealed loader's program computes what the open one's does"
        );
        assert_ne!(
            outputs[0],
            ctx.to_vec(),
            "and computes something (the addresses it read)"
        );
    }
}

/// Blob offsets to flip: each program's first and last instruction byte,
/// and 40 spread over the whole blob (BTF, map data, attributes, names).
fn blob_positions(file: &LoaderFile) -> Vec<usize> {
    let mut at: Vec<usize> = file
        .progs
        .iter()
        .flat_map(|p| {
            let start = p.blob_insns_off as usize;
            [start, start + p.insn_cnt as usize * 8 - 1]
        })
        .collect();
    let n = file.blob.len();
    at.extend((0..40).map(|k| k * n / 40 + k % 7));
    at.push(n - 1);
    at.sort_unstable();
    at.dedup();
    at.retain(|i| *i < n);
    at
}

#[test]
fn a_flipped_byte_of_the_data_is_refused_by_the_loader() {
    let _g = fds::exclusive();
    if !gate("a_flipped_byte_of_the_data_is_refused_by_the_loader") {
        return;
    }
    let sealed = generate("link.bpf.o", true);
    let before = fds::count();
    for at in blob_positions(&sealed) {
        let mut altered = sealed.clone();
        altered.blob[at] ^= 0x10;
        match run(&altered) {
            Err(e @ Error::Seal(SealProblem::DataAltered)) => {
                assert!(e.to_string().contains("the data was altered"), "{e}");
                assert_eq!(e.reason(), Reason::BadObject);
            }
            Err(e) if !sealing_kernel() => assert_no_exclusive_maps(Err(e)),
            other => panic!("blob byte {at} flipped: {:?}", other.map(|r| insns(&r))),
        }
        assert_eq!(fds::count(), before, "blob byte {at} flipped: descriptors left open");
    }
}

#[test]
fn a_flipped_byte_of_the_loader_is_refused_by_the_kernel() {
    let _g = fds::exclusive();
    if !gate("a_flipped_byte_of_the_loader_is_refused_by_the_kernel") {
        return;
    }
    let sealed = generate("mixed.bpf.o", true);
    let seal = sealed.seal.clone().unwrap();
    let before = fds::count();
    // Through the runner: told before the kernel is asked.
    let mut altered = sealed.clone();
    altered.loader[3] = Insn::new(0xb7, 0, 0, 0, 1);
    match run(&altered) {
        Err(e @ Error::Seal(SealProblem::LoaderAltered)) => assert!(e.to_string().contains("loader was altered")),
        other => panic!("altered loader through the runner: {:?}", other.map(|r| insns(&r))),
    }
    if !sealing_kernel() {
        return;
    }
    // To the kernel itself, with the seal as generated: every byte of the
    // seal check (the blob's hash it carries included) and a spread of
    // the rest.
    let digest = skel::sha256(&sealed.blob);
    let first = i32::from_le_bytes(digest[..4].try_into().unwrap());
    let check = sealed.loader.iter().position(|i| i.imm() == first).unwrap();
    let bytes = ksymrelo_core::insn::as_bytes(&sealed.loader).to_vec();
    let mut positions: Vec<usize> = (check.saturating_sub(12) * 8..(check + 12) * 8).collect();
    positions.extend((0..48).map(|k| k * bytes.len() / 48 + k % 8));
    positions.retain(|p| *p < bytes.len());
    let sealed_run = Sealed {
        seal: &seal,
        keyring_id: 0,
    };
    let mut by_hash = 0;
    for at in positions {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        let loader = ksymrelo_core::insn::insns(&flipped).unwrap();
        let result = skel::run_loader(loader, &sealed.blob, sealed.ctx_size, Some(&sealed_run), None, 0);
        match result {
            Err(Error::Seal(SealProblem::LoaderAltered)) => by_hash += 1,
            // Made invalid by the flip: the verifier refuses it first.
            Err(Error::Bpf { source, .. }) => assert_ne!(source.errno(), 0),
            other => panic!("loader byte {at} flipped: loaded ({:?})", other.map(|r| r.retval)),
        }
        assert_eq!(fds::count(), before, "loader byte {at} flipped: descriptors left open");
    }
    assert!(by_hash > 0, "no flip reached the kernel's excl_prog_hash check");
}

#[test]
fn a_signature_is_checked_with_the_keyring_given() {
    let _g = fds::shared();
    if !gate("a_signature_is_checked_with_the_keyring_given") {
        return;
    }
    let mut signed = generate("mixed.bpf.o", true);
    // Not a real signature: what matters here is what the kernel and the
    // runner say before any check of its bytes could pass.
    signed.seal.as_mut().unwrap().signature = Some(vec![0x30, 0x82, 0x01, 0x00, 0x06]);
    let keyring = |keyring_id| {
        generate::run(
            &through_file(&signed),
            &SkelOptions {
                keyring_id,
                ..Default::default()
            },
        )
    };
    // A serial no key has: said before the kernel is asked.
    let missing = (0x7fff_0000..0x7fff_ffff)
        .find(|id| keyring(*id).is_err_and(|e| matches!(e, Error::Seal(SealProblem::NoSuchKeyring { .. }))))
        .expect("a serial no key has");
    let e = keyring(missing).unwrap_err();
    assert!(
        e.to_string().contains(&format!("keyring {missing} does not exist")),
        "{e}"
    );
    if !sealing_kernel() {
        assert_no_exclusive_maps(keyring(0));
        return;
    }
    const KEY_SPEC_USER_KEYRING: i32 = -4;
    for id in [0, KEY_SPEC_USER_KEYRING] {
        match keyring(id) {
            Err(e @ Error::Seal(SealProblem::SignaturesUnsupported)) => {
                let text = e.to_string();
                assert!(text.contains("CONFIG_SYSTEM_DATA_VERIFICATION"), "{text}");
            }
            // A kernel that checks signatures refuses these bytes.
            Err(Error::Seal(SealProblem::SignatureRefused { .. } | SealProblem::KeyNotInKeyring { .. }))
                if ksymrelo_test_skip::kernel_verifies_signatures() != Some(false) => {}
            other => panic!("keyring {id}: {:?}", other.map(|r| insns(&r))),
        }
    }
}
