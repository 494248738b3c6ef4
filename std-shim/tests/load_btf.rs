//! The BTF ksymrelo prepares for `BPF_BTF_LOAD` (core's
//! `link::write_load_btf`, libbpf's gen_loader preparation) is accepted by
//! the running kernel, for every fixture object. Skips when bpf(2) is not
//! permitted, unless KSYMRELO_REQUIRE_KERNEL=1.

use std::path::Path;

use ksymrelo_core::link;
use ksymrelo_core::object::{Extern, Object};
use ksymrelo_std::load::{bpf_available, btf_load};

#[test]
fn every_fixture_btf_loads() {
    if let Err(e) = bpf_available() {
        assert!(
            !ksymrelo_test_skip::kernel_required(),
            "bpf(2) not permitted ({e}) but KSYMRELO_REQUIRE_KERNEL=1"
        );
        ksymrelo_test_skip::skip(format_args!("bpf(2) not permitted: {e}"));
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    paths.sort();
    assert!(paths.len() > 10);
    let mut loaded = 0;
    for path in &paths {
        let data = std::fs::read(path).unwrap();
        let object = Object::parse(&data).unwrap();
        let Ok(btf) = object.btf() else { continue };
        let mut externs = vec![Extern::default(); object.extern_count()];
        let externs = match object.externs(&btf, &mut externs) {
            Ok(e) => e,
            // The objects libbpf refuses on open (bad extern BTF).
            Err(_) => continue,
        };
        let size = link::load_btf_size(&object).unwrap();
        let mut out = vec![0u8; size];
        link::write_load_btf(&object, externs, &mut out).unwrap();
        if let Err(e) = btf_load(&out) {
            panic!("{}: BPF_BTF_LOAD refused the prepared BTF: {e}", path.display());
        }
        loaded += 1;
    }
    assert!(loaded > 10, "only {loaded} fixtures loaded");
}
