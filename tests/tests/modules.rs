//! Resolution into kernel modules, offline: a /sys/kernel/btf-like directory
//! with the real vmlinux BTF and two synthesized module split BTFs.

use ksymrelo_core::bpf::{op, pseudo};
use ksymrelo_core::btf::{Btf, Kind};
use ksymrelo_core::resolve::Outcome;
use ksymrelo_std::{relocate, Kernel};
use ksymrelo_tests::{btf_counts as header, fixture_bytes, synth_module_dir as module_dir, BtfWriter};

#[test]
fn kfuncs_and_vars_resolve_into_modules_with_fd_array_slots() {
    let Some((dir, [f1, f2, v, f3])) = module_dir("modules") else {
        return;
    };
    let obj = fixture_bytes("modules.bpf.o");
    let kernel = Kernel::from_files(Some(&dir.0), None);
    let r = relocate(&obj, &kernel).unwrap();

    // Offline module "fds" are placeholders: -2 - (module index by name).
    let (mod_fd, other_fd) = (-2, -3);
    assert_eq!(r.fd_array, vec![0, mod_fd, other_fd]);

    let btf = |name: &str| match r.extern_named(name).unwrap().resolution.outcome {
        Outcome::Btf {
            btf_id,
            btf_obj_fd,
            fd_array_slot,
            ..
        } => (btf_id.0, btf_obj_fd, fd_array_slot),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(btf("ksymrelo_mod_kfunc"), (f1, mod_fd, 1));
    assert_eq!(btf("ksymrelo_mod_kfunc2"), (f2, mod_fd, 1));
    assert_eq!(btf("ksymrelo_other_kfunc"), (f3, other_fd, 2));
    assert_eq!(btf("ksymrelo_mod_var"), (v, mod_fd, 0));
    let (task_release, fd, slot) = btf("bpf_task_release");
    assert_eq!((fd, slot), (0, 0), "vmlinux kfunc: slot 0");
    assert_eq!(
        r.extern_named("ksymrelo_mod_kfunc").unwrap().module.as_deref(),
        Some("ksymrelo_mod")
    );
    assert_eq!(
        r.extern_named("ksymrelo_other_kfunc").unwrap().module.as_deref(),
        Some("ksymrelo_other")
    );
    assert!(!r
        .extern_named("ksymrelo_absent_kfunc")
        .unwrap()
        .resolution
        .is_resolved());

    // The instructions, as in the disassembly of modules.bpf.o.
    let insns = &r.section("syscall").unwrap().insns;
    let call = |i: usize| (insns[i].code, insns[i].src_reg(), insns[i].off(), insns[i].imm());
    assert_eq!(call(1), (op::CALL, pseudo::KFUNC_CALL, 1, f1 as i32));
    assert_eq!(call(4), (op::CALL, pseudo::KFUNC_CALL, 1, f2 as i32));
    assert_eq!(call(7), (op::CALL, pseudo::KFUNC_CALL, 2, f3 as i32));
    assert_eq!(call(16), (op::CALL, pseudo::KFUNC_CALL, 0, task_release as i32));
    // The weak, absent kfunc: ld_imm64 zeroed, call poisoned with its index.
    let absent = r.extern_named("ksymrelo_absent_kfunc").unwrap().resolution.index;
    assert_eq!((insns[9].imm(), insns[10].imm(), insns[9].src_reg()), (0, 0, 0));
    assert_eq!(call(12), (op::CALL, 0, 0, 2_002_000_000 + absent.0 as i32));
    // The module variable: BTF id and the module's BTF object fd.
    assert_eq!(
        (insns[17].src_reg(), insns[17].imm(), insns[18].imm()),
        (pseudo::BTF_ID, v as i32, mod_fd)
    );
}

#[test]
fn a_kfunc_in_vmlinux_wins_over_modules() {
    let Some((dir, _)) = module_dir("shadow") else {
        return;
    };
    // Shadow bpf_task_release in a module: vmlinux is searched first.
    let vmlinux = std::fs::read(dir.0.join("vmlinux")).unwrap();
    let (types, str_len) = header(&vmlinux);
    let base = Btf::parse(&vmlinux).unwrap();
    let vm_id = base
        .find_by_name_kind(b"bpf_task_release", Kind::Func)
        .unwrap()
        .unwrap();
    let proto = base.type_by_id(vm_id).unwrap().type_id();
    let mut w = BtfWriter::split(types, str_len);
    w.add("bpf_task_release", Kind::Func, 1, proto, &[]);
    std::fs::write(dir.0.join("aaa_shadow"), w.finish()).unwrap();
    let r = relocate(&fixture_bytes("modules.bpf.o"), &Kernel::from_files(Some(&dir.0), None)).unwrap();
    match r.extern_named("bpf_task_release").unwrap().resolution.outcome {
        Outcome::Btf {
            btf_id,
            btf_obj_fd,
            module,
            ..
        } => {
            assert_eq!((btf_id.0, btf_obj_fd, module), (vm_id, 0, None));
        }
        other => panic!("{other:?}"),
    }
}
