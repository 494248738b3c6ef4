//! The whole pipeline: object + synthetic kernel BTF + kallsyms text →
//! resolve → patch. Invariants: no panic; on error the instructions are
//! unchanged; on success only site instructions changed.
#![no_main]

use arbitrary::Arbitrary;
use ksymrelo_core::btf::Btf;
use ksymrelo_core::insn::Insn;
use ksymrelo_core::kallsyms::{match_all, Match};
use ksymrelo_core::object::{Extern, Object, Site, SiteKind};
use ksymrelo_core::patch::patch_section;
use ksymrelo_core::resolve::{kallsyms_names, resolve, FdArray, KernelBtf, ModuleBtf, Resolution};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Use the object's own .BTF as vmlinux, so names really match.
    own_btf_as_kernel: bool,
    kernel_btf: &'a [u8],
    module_btf: &'a [u8],
    kallsyms: &'a [u8],
    /// Last, so it takes the rest of the input: a raw object seed stays
    /// (mostly) an object.
    object: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Ok(obj) = Object::parse(input.object) else { return };
    let Ok(btf) = obj.btf() else { return };
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let Ok(externs) = obj.externs(&btf, &mut externs) else {
        return;
    };
    let Ok(max) = obj.max_site_count() else { return };
    let mut sites = vec![Site::default(); max];
    let Ok(sites) = obj.sites(externs, &mut sites) else {
        return;
    };

    let kernel_bytes = if input.own_btf_as_kernel {
        obj.btf_data().unwrap_or(&[])
    } else {
        input.kernel_btf
    };
    let Ok(vmlinux) = Btf::parse(kernel_bytes) else { return };
    let module = Btf::parse_split(input.module_btf, &vmlinux).ok();
    let modules: Vec<ModuleBtf<'_>> = module
        .into_iter()
        .map(|btf| ModuleBtf {
            btf,
            fd: 42,
            name: "mod",
        })
        .collect();
    let kernel = KernelBtf {
        vmlinux: &vmlinux,
        modules: &modules,
        vmlinux_found: None,
    };

    let mut names: Vec<&[u8]> = vec![&[]; externs.len()];
    let n = kallsyms_names(externs, &mut names).unwrap();
    let mut matches: Vec<Option<Match>> = vec![None; n];
    if match_all(input.kallsyms, &names[..n], &mut matches).is_err() {
        return;
    }
    let mut slots = vec![0i32; 4];
    let mut fd_array = FdArray::new(&mut slots);
    let mut res = vec![Resolution::default(); externs.len()];
    let resolved = resolve(externs, &btf, Some(&kernel), Some(&matches), &mut fd_array, &mut res);

    for section in obj.exec_sections().flatten() {
        let Ok(original) = obj.insns(&section) else { continue };
        let mut insns: Vec<Insn> = original.to_vec();
        if resolved.is_err() {
            continue;
        }
        match patch_section(&mut insns, section.index, sites, &res) {
            Err(_) => assert_eq!(insns, original, "instructions changed on error"),
            Ok(()) => {
                for (i, (a, b)) in original.iter().zip(&insns).enumerate() {
                    if a == b {
                        continue;
                    }
                    let is_site = sites.iter().any(|s| {
                        s.section == section.index
                            && (s.insn_idx.get() == i || (s.kind == SiteKind::Ld64 && s.insn_idx.get() + 1 == i))
                    });
                    assert!(is_site, "instruction {i} changed but is no site");
                }
            }
        }
    }
});
