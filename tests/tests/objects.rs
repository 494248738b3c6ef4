//! The extern tables and sites of the fixtures, as the core reads them from
//! the ELF objects (no kernel involved).

use ksymrelo_core::object::{Extern, ExternKind, Object, Site, SiteKind};
use ksymrelo_tests::{externs_and_sites, fixture_bytes};

/// (name, kind, weak, number of sites, site kinds) in libbpf's extern order.
type Row = (&'static str, ExternKind, bool, &'static [SiteKind]);

fn check(fixture: &str, expected: &[Row]) {
    let data = fixture_bytes(fixture);
    let obj = Object::parse(&data).unwrap();
    let (externs, sites) = externs_and_sites(&obj);
    let got: Vec<(&str, ExternKind, bool, Vec<SiteKind>)> = externs
        .iter()
        .map(|e| {
            let kinds = sites
                .iter()
                .filter(|s| s.extern_idx == e.index)
                .map(|s| s.kind)
                .collect();
            (e.name, e.kind, e.weak, kinds)
        })
        .collect();
    let want: Vec<(&str, ExternKind, bool, Vec<SiteKind>)> =
        expected.iter().map(|(n, k, w, s)| (*n, *k, *w, s.to_vec())).collect();
    assert_eq!(got, want, "{fixture}");
    for (i, e) in externs.iter().enumerate() {
        assert_eq!(e.index.get(), i);
        match e.kind {
            ExternKind::Typeless => assert_eq!(e.type_id.0, 0),
            _ => assert_ne!(e.type_id.0, 0, "{}", e.name),
        }
    }
    // Every site points at its instruction kind inside an executable section.
    for s in sites.iter() {
        let section = obj.elf().section(s.section).unwrap();
        assert!(section.is_exec());
        let insn = obj.insns(&section).unwrap()[s.insn_idx.get()];
        assert_eq!(insn.is_call(), s.kind == SiteKind::Call);
    }
}

use ExternKind::{Kfunc, Typed, Typeless};
use SiteKind::{Call, Ld64};

#[test]
fn typeless_fixture() {
    check(
        "typeless.bpf.o",
        &[
            ("kfree", Typeless, false, &[Ld64]),
            ("ksymrelo_no_such_symbol", Typeless, true, &[Ld64]),
            ("ksys_read", Typeless, false, &[Ld64]),
            ("schedule", Typeless, false, &[Ld64]),
            ("vfs_open", Typeless, false, &[Ld64]),
            ("vfs_read", Typeless, false, &[Ld64, Ld64, Ld64]),
            ("vfs_write", Typeless, false, &[Ld64]),
        ],
    );
}

#[test]
fn kfuncs_fixture() {
    check(
        "kfuncs.bpf.o",
        &[
            ("bpf_iter_num_destroy", Kfunc, false, &[Call, Call]),
            ("bpf_iter_num_new", Kfunc, false, &[Call, Call]),
            ("bpf_iter_num_next", Kfunc, false, &[Call, Call]),
            ("bpf_iter_num_next___ksymrelo", Kfunc, false, &[Call, Call]),
            ("bpf_rcu_read_lock", Kfunc, true, &[Ld64, Call]),
            ("bpf_rcu_read_unlock", Kfunc, true, &[Ld64, Call]),
            ("bpf_task_from_pid", Kfunc, false, &[Call]),
            ("bpf_task_release", Kfunc, false, &[Call]),
            ("ksymrelo_missing_kfunc", Kfunc, true, &[Ld64, Call]),
        ],
    );
    let data = fixture_bytes("kfuncs.bpf.o");
    let obj = Object::parse(&data).unwrap();
    let btf = obj.btf().unwrap();
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let externs = obj.externs(&btf, &mut externs).unwrap();
    let flavored = externs
        .iter()
        .find(|e| e.name == "bpf_iter_num_next___ksymrelo")
        .unwrap();
    assert_eq!(flavored.essential_name, "bpf_iter_num_next");
    assert_eq!(flavored.lookup_name(), "bpf_iter_num_next");
}

#[test]
fn typed_fixture() {
    check(
        "typed.bpf.o",
        &[
            ("bpf_prog_active", Typed, false, &[Ld64]),
            ("ksymrelo_no_such_var", Typed, true, &[Ld64]),
            ("process_counts", Typed, true, &[Ld64]),
            ("runqueues", Typed, false, &[Ld64]),
        ],
    );
}

#[test]
fn modules_fixture() {
    check(
        "modules.bpf.o",
        &[
            ("bpf_task_release", Kfunc, false, &[Call]),
            ("ksymrelo_absent_kfunc", Kfunc, true, &[Ld64, Call]),
            ("ksymrelo_mod_kfunc", Kfunc, false, &[Call]),
            ("ksymrelo_mod_kfunc2", Kfunc, false, &[Call]),
            ("ksymrelo_mod_var", Typed, false, &[Ld64]),
            ("ksymrelo_other_kfunc", Kfunc, false, &[Call]),
        ],
    );
}

#[test]
fn a_site_at_another_opcode_is_an_error_naming_section_and_index() {
    let mut data = fixture_bytes("typeless.bpf.o");
    // Turn the first ld_imm64 of the syscall section into a `mov`.
    let (off, name) = {
        let obj = Object::parse(&data).unwrap();
        let s = obj.elf().section_by_name(b"syscall").unwrap().unwrap();
        let insns = obj.insns(&s).unwrap();
        let i = insns.iter().position(|i| i.is_ld_imm64()).unwrap();
        (s.file_range().unwrap().start + i * 8, i)
    };
    data[off] = 0xb7;
    let obj = Object::parse(&data).unwrap();
    let btf = obj.btf().unwrap();
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let externs = obj.externs(&btf, &mut externs).unwrap();
    let mut sites = vec![Site::default(); obj.max_site_count().unwrap()];
    let err = obj.sites(externs, &mut sites).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("section 'syscall'") && msg.contains(&format!("insn #{name}")) && msg.contains("0xb7"),
        "{msg}"
    );
}

/// `relocate_insns` (the C loader's entry, sites given by index): a site
/// outside the program, or an `ld_imm64` cut in half by the end, is refused
/// with the extern's name, before any kernel file is read, and the
/// instructions are left as they were.
#[test]
fn relocate_insns_names_the_extern_of_a_bad_site() {
    use ksymrelo_std::{relocate_insns, InsnSite, Kernel};
    let data = fixture_bytes("typeless.bpf.o");
    let obj = Object::parse(&data).unwrap();
    let s = obj.elf().section_by_name(b"syscall").unwrap().unwrap();
    let original = obj.insns(&s).unwrap().to_vec();
    let (externs, sites) = externs_and_sites(&obj);
    let site = sites.iter().find(|x| x.section == s.index).unwrap();
    let name = externs[site.extern_idx.get()].name;
    // Offline BTF that does not exist: reading it would be an I/O error.
    let kernel = Kernel::from_files(Some(std::path::Path::new("/nonexistent/vmlinux")), None);
    let len = original.len() as u32;
    for (insn_idx, insns_len, want) in [
        (
            len + 3,
            original.len(),
            format!("extern '{name}': site at instruction {} is past the end", len + 3),
        ),
        (
            site.insn_idx.0,
            site.insn_idx.get() + 1,
            format!(
                "extern '{name}': its ld_imm64 site at instruction {} is the last",
                site.insn_idx
            ),
        ),
    ] {
        let mut insns = original[..insns_len].to_vec();
        let bad = [InsnSite {
            insn_idx,
            weak: false,
            name,
        }];
        let err = relocate_insns(&kernel, obj.btf_data().unwrap(), &mut insns, &bad).unwrap_err();
        assert!(err.to_string().contains(&want), "{err}");
        assert!(
            matches!(&err, ksymrelo_std::Error::InsnSite { name: n, .. } if n == name),
            "{err:?}"
        );
        assert_eq!(err.reason(), ksymrelo_std::Reason::BadObject);
        assert_eq!(insns, original[..insns_len]);
    }
    // Two sites of one extern that disagree on whether it is weak.
    let mut insns = original.clone();
    let both = [true, false].map(|weak| InsnSite {
        insn_idx: site.insn_idx.0,
        weak,
        name,
    });
    let err = relocate_insns(&kernel, obj.btf_data().unwrap(), &mut insns, &both).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("extern '{name}': its sites disagree on whether it is weak")
    );
    assert_eq!(err.reason(), ksymrelo_std::Reason::BadObject);
    assert_eq!(insns, original);
}

/// Saved BTF without a saved kallsyms file cannot resolve a typeless ksym:
/// the error says which file is missing (a usage error, exit status 2).
#[test]
fn typeless_ksyms_with_saved_btf_need_a_saved_kallsyms() {
    // typeless.bpf.o has only typeless ksyms: no BTF file is read.
    let kernel = ksymrelo_std::Kernel::from_files(Some(std::path::Path::new("/nonexistent/vmlinux")), None);
    let err = ksymrelo_std::relocate(&fixture_bytes("typeless.bpf.o"), &kernel).unwrap_err();
    assert!(matches!(err, ksymrelo_std::Error::NoKallsyms), "{err:?}");
    assert!(err.to_string().contains("a saved kallsyms file is needed"), "{err}");
    assert_eq!(err.reason(), ksymrelo_std::Reason::Usage);
}

/// A call through an unresolved weak variable is poisoned, as libbpf does
/// for any unresolved call site, and the report says so (not only for
/// kfuncs).
#[test]
fn a_called_weak_variable_left_unresolved_is_poisoned_and_told() {
    use ksymrelo_core::bpf::{op, pseudo};
    use ksymrelo_core::insn::Insn;
    use ksymrelo_std::{relocate_insns, InsnSite, Kernel};
    let data = fixture_bytes("typeless.bpf.o");
    let obj = Object::parse(&data).unwrap();
    let dir = std::env::temp_dir().join(format!("ksymrelo-poison-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kallsyms = dir.join("kallsyms");
    std::fs::write(&kallsyms, "ffffffff81000000 T vfs_read\n").unwrap();
    let kernel = Kernel::from_files(Some(std::path::Path::new("/nonexistent/vmlinux")), Some(&kallsyms));
    let mut insns = [
        Insn::new(op::CALL, 0, pseudo::CALL, 0, -1),
        Insn::new(op::EXIT, 0, 0, 0, 0),
    ];
    let sites = [InsnSite {
        insn_idx: 0,
        weak: true,
        name: "ksymrelo_no_such_symbol",
    }];
    let r = relocate_insns(&kernel, obj.btf_data().unwrap(), &mut insns, &sites).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let e = r.externs.iter().find(|e| e.name == "ksymrelo_no_such_symbol").unwrap();
    assert!(!e.resolution.is_resolved());
    assert!(e.poisoned, "{e:?}");
    let poison = 2_002_000_000 + e.resolution.index.0 as i32;
    assert_eq!(insns[0], Insn::new(op::CALL, 0, 0, 0, poison));
}
