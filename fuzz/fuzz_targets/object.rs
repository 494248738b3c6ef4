//! ELF object: sections, extern table, sites.
#![no_main]

use ksymrelo_core::object::{Extern, Object, Site};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = Object::parse(data) else { return };
    for s in obj.exec_sections().flatten() {
        let _ = obj.insns(&s);
    }
    let Ok(btf) = obj.btf() else { return };
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let Ok(externs) = obj.externs(&btf, &mut externs) else {
        return;
    };
    for (i, e) in externs.iter().enumerate() {
        assert_eq!(e.index.get(), i);
    }
    let Ok(max) = obj.max_site_count() else { return };
    let mut sites = vec![Site::default(); max];
    if let Ok(sites) = obj.sites(externs, &mut sites) {
        for s in sites.iter() {
            assert!((s.extern_idx.get()) < externs.len());
        }
    }
});
