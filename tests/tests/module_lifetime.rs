//! Module lifetime under one `Kernel`: a module unloaded between two
//! relocations, then loaded again after the handle listed modules without
//! it. The handle must never hand out a closed or reused fd (every fd in an
//! fd_array or instruction is an open BTF object of the right module, the
//! one loaded now), and each relocation must see the kernel as it is: an
//! unloaded module's kfunc no longer resolves, a newly loaded one does. A
//! relocation keeps its modules' fds open while it lives.
//!
//! These tests unload and load `nf_nat` with busybox's rmmod/insmod, so they
//! run only inside the VM suite (`KSYMRELO_VM=1`, set by tests/vm/init).

use std::os::fd::BorrowedFd;
use std::process::Command;
use std::time::{Duration, Instant};

use ksymrelo_std::{relocate_with, Kernel, Mode, Relocation};
use ksymrelo_tests::{assert_module_btf_fd, fixture_bytes, in_vm, kernel_usable, live_module_btf, modules_loaded};

const MODULE: &str = "nf_nat";

fn gate(test: &str) -> bool {
    if !in_vm() {
        ksymrelo_tests::skip(format_args!(
            "unloads and loads {MODULE}: runs only in the VM suite (KSYMRELO_VM=1)"
        ));
        return false;
    }
    kernel_usable(test) && modules_loaded(test, &["nf_conntrack", MODULE])
}

/// Waits until `/sys/kernel/btf/nf_nat` is there (`present`) or gone.
fn wait_for_btf(present: bool) {
    let t0 = Instant::now();
    while std::fs::metadata(format!("/sys/kernel/btf/{MODULE}")).is_ok() != present {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{MODULE} BTF present={present}: timed out"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rmmod() {
    let t0 = Instant::now();
    loop {
        let out = Command::new("rmmod").arg(MODULE).output().expect("running rmmod");
        if out.status.success() {
            break;
        }
        // Programs that used it drop their module references after an RCU
        // grace period: busy for a moment.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(t0.elapsed() < Duration::from_secs(20), "rmmod {MODULE}: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_btf(false);
}

fn insmod() {
    let order = std::fs::read_to_string("/vm/modules.order").expect("/vm/modules.order");
    let ko = order
        .lines()
        .find(|l| l.ends_with(&format!("/{MODULE}.ko")))
        .unwrap_or_else(|| panic!("{MODULE}.ko not in /vm/modules.order"));
    let out = Command::new("insmod")
        .arg(format!("/{ko}"))
        .output()
        .expect("running insmod");
    assert!(
        out.status.success(),
        "insmod {ko}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_btf(true);
}

/// Loads nf_nat again if a test ends (or fails) without it, so that the
/// tests after it find it loaded.
struct Restore;
impl Drop for Restore {
    fn drop(&mut self) {
        if std::fs::metadata(format!("/sys/kernel/btf/{MODULE}")).is_err() {
            insmod();
        }
    }
}

/// How many of this process's fds are BTF objects named `name`.
fn open_btf_fds_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| {
            // SAFETY: only inspected; btf_info refuses anything but BTF.
            ksymrelo_std::load::btf_info(unsafe { BorrowedFd::borrow_raw(fd) }).is_ok_and(|i| i.name == name)
        })
        .count()
}

/// (id, name) of BTF fd `fd`, which must be open.
fn btf_of(fd: i32) -> (u32, String) {
    // SAFETY: inspected while the relocation holding it lives; btf_info
    // refuses anything but a BTF object.
    let info = ksymrelo_std::load::btf_info(unsafe { BorrowedFd::borrow_raw(fd) })
        .unwrap_or_else(|e| panic!("fd {fd} is not an open BTF object: {e}"));
    (info.id, info.name)
}

/// conntrack.bpf.o relocated with both modules loaded: fd_array slot 1 is
/// nf_conntrack, slot 2 nf_nat, both the modules loaded now.
fn both(kernel: &Kernel, mode: Mode) -> Relocation {
    let r = relocate_with(&fixture_bytes("conntrack.bpf.o"), kernel, mode).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert_eq!(r.fd_array.len(), 3, "{mode:?}: {:?}", r.fd_array);
    assert_module_btf_fd(r.fd_array[1], "nf_conntrack");
    assert_module_btf_fd(r.fd_array[2], MODULE);
    r
}

/// weak_module.bpf.o (nf_conntrack kfuncs only): slot 1 and its ld_imm64s
/// name the loaded nf_conntrack.
fn conntrack_only(kernel: &Kernel, mode: Mode) -> Relocation {
    let r =
        relocate_with(&fixture_bytes("weak_module.bpf.o"), kernel, mode).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert_eq!(r.fd_array.len(), 2, "{mode:?}: {:?}", r.fd_array);
    assert_module_btf_fd(r.fd_array[1], "nf_conntrack");
    let insns = &r.section("xdp").unwrap().insns;
    for s in &r.sites {
        let i = s.insn_idx.get();
        if s.kind == ksymrelo_core::object::SiteKind::Ld64 && insns[i].src_reg() == ksymrelo_core::bpf::pseudo::BTF_ID {
            assert_module_btf_fd(insns[i + 1].imm(), "nf_conntrack");
        }
    }
    r
}

fn unload_and_reload(mode: Mode) {
    let kernel = Kernel::live();
    let first = both(&kernel, mode);
    let (old_id, _) = btf_of(first.fd_array[2]);
    let ct_fd = first.fd_array[1];

    let _restore = Restore;
    rmmod();
    // The first relocation still holds the unloaded module's BTF: open, the
    // old object, not some other one under the same number. (The kernel
    // frees a module BTF's id when the module goes: 6.12 reports id 0 for
    // it from then on.)
    let (id, name) = btf_of(first.fd_array[2]);
    assert_eq!(name, MODULE, "{mode:?}: held fd");
    assert!(
        id == old_id || id == 0,
        "{mode:?}: held fd is BTF object {id}, not {old_id}"
    );
    assert!(
        first.modules.iter().any(|m| m.name == MODULE && m.id == old_id),
        "{mode:?}: the relocation holds the unloaded module"
    );
    // A later relocation sees the kernel as it is now.
    let err = relocate_with(&fixture_bytes("conntrack.bpf.o"), &kernel, mode).unwrap_err();
    assert_eq!(
        err.to_string(),
        "extern (func ksym) 'bpf_ct_set_nat_info': not found in kernel or module BTFs",
        "{mode:?}"
    );
    let ct = conntrack_only(&kernel, mode);
    assert_eq!(
        ct.fd_array[1], ct_fd,
        "{mode:?}: nf_conntrack keeps its fd in the handle"
    );
    // Once no relocation holds the unloaded module, is its BTF still kept
    // open (by the handle)? Observed, not asserted: the handle drops it at
    // its next module listing.
    drop(first);
    eprintln!(
        "{mode:?}: BTF fds of the unloaded {MODULE} open after the last relocation holding it dropped: {}",
        open_btf_fds_named(MODULE)
    );
    let listed: Vec<String> = kernel.module_btfs().unwrap().iter().map(|m| m.name.clone()).collect();
    assert!(
        !listed.iter().any(|n| n == MODULE),
        "{mode:?}: still listed: {listed:?}"
    );
    assert_eq!(
        open_btf_fds_named(MODULE),
        0,
        "{mode:?}: unloaded {MODULE}'s BTF kept after a listing"
    );

    // Loaded again after the handle listed modules without it: a new BTF
    // object, found, with an fd of its own.
    insmod();
    let (new_id, _) = live_module_btf(MODULE).unwrap();
    assert_ne!(new_id, old_id, "a reloaded module has a new BTF object");
    let again = both(&kernel, mode);
    assert_eq!(btf_of(again.fd_array[2]).0, new_id, "{mode:?}");
    assert_eq!(
        again.fd_array[1], ct_fd,
        "{mode:?}: nf_conntrack keeps its fd in the handle"
    );
    let insns = &again.section("xdp").unwrap().insns;
    for s in &again.sites {
        let i = insns[s.insn_idx.get()];
        if again.externs[s.extern_idx.get()].name == "bpf_ct_set_nat_info" {
            assert_eq!(i.off(), 2, "{mode:?}: nf_nat's calls use slot 2");
        }
    }
}

#[test]
fn module_unloaded_and_reloaded_under_one_kernel_user_mode() {
    if gate("module_unloaded_and_reloaded_under_one_kernel_user_mode") {
        unload_and_reload(Mode::User);
    }
}

#[test]
fn module_unloaded_and_reloaded_under_one_kernel_kernel_mode() {
    if gate("module_unloaded_and_reloaded_under_one_kernel_kernel_mode") {
        unload_and_reload(Mode::Kernel);
    }
}

#[test]
fn module_unloaded_and_reloaded_under_one_kernel_auto_mode() {
    if gate("module_unloaded_and_reloaded_under_one_kernel_auto_mode") {
        unload_and_reload(Mode::Auto);
    }
}

/// A handle that first listed modules while nf_nat was not loaded finds it
/// once it is, in every mode, with the fds of the modules loaded now.
#[test]
fn module_loaded_after_the_kernel_listed_modules() {
    let test = "module_loaded_after_the_kernel_listed_modules";
    if !gate(test) {
        return;
    }
    let _restore = Restore;
    rmmod();
    let kernel = Kernel::live();
    for mode in [Mode::User, Mode::Kernel, Mode::Auto] {
        conntrack_only(&kernel, mode);
        assert!(relocate_with(&fixture_bytes("conntrack.bpf.o"), &kernel, mode).is_err());
    }
    assert!(!kernel.module_btfs().unwrap().iter().any(|m| m.name == MODULE));
    insmod();
    let mut fd_arrays = Vec::new();
    for mode in [Mode::User, Mode::Kernel, Mode::Auto] {
        fd_arrays.push(both(&kernel, mode).fd_array);
    }
    assert!(
        fd_arrays.windows(2).all(|w| w[0] == w[1]),
        "one fd per module: {fd_arrays:?}"
    );
}

/// Kernel mode alone never lists modules: the handle learns of module BTF
/// objects from the in-kernel lookups. When a reloaded module's new BTF
/// object is adopted, the handle must let go of the unloaded one (only one
/// module of a name can be loaded), not keep it open for its lifetime.
#[test]
fn kernel_mode_alone_lets_go_of_an_unloaded_module_once_reloaded() {
    let test = "kernel_mode_alone_lets_go_of_an_unloaded_module_once_reloaded";
    if !gate(test) {
        return;
    }
    let _restore = Restore;
    let kernel = Kernel::live();
    drop(both(&kernel, Mode::Kernel));
    assert_eq!(open_btf_fds_named(MODULE), 1, "the handle keeps {MODULE}");
    rmmod();
    insmod();
    let r = both(&kernel, Mode::Kernel);
    assert_eq!(
        open_btf_fds_named(MODULE),
        1,
        "only the reloaded {MODULE}'s BTF is open (fd_array {:?})",
        r.fd_array
    );
}
