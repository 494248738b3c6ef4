//! The vmlinux BTF facts file (`ksymrelo_std::btf_facts`): every fixture
//! relocates bit-identically with the kept facts and with a walk of vmlinux
//! BTF, and a facts file that is foreign, corrupt, truncated or not trusted
//! is ignored (vmlinux BTF is walked) and replaced by a good one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ksymrelo_core::btf::{facts, Btf};
use ksymrelo_std::btf_facts::BtfFacts;
use ksymrelo_std::report::to_json;
use ksymrelo_std::{relocate_with, Kernel, KernelStats, Mode};
use ksymrelo_tests::{fixture, fixture_bytes, kernel_usable, live_kernel_files};

fn gate(test: &str) -> bool {
    kernel_usable(test) && live_kernel_files(test)
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ksymrelo-btf-facts-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every fixture object: the hand-written ones and the generated many_N.
fn all_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bpf.o"))
        .collect();
    names.sort();
    names.extend(["many_100.bpf.o".to_owned(), "many_1000.bpf.o".to_owned()]);
    names
}

/// The whole outcome as text: the report, fd_array and every relocated
/// instruction (JSON), or the error.
fn outcome(obj: &[u8], kernel: &Kernel, mode: Mode) -> String {
    match relocate_with(obj, kernel, mode) {
        Ok(r) => to_json(&r).to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_fixture_relocates_the_same_with_and_without_kept_facts() {
    if !gate("every_fixture_relocates_the_same_with_and_without_kept_facts") {
        return;
    }
    let dir = temp_dir("same");
    let path = dir.join("vmlinux-btf-facts");
    // A first kernel walks vmlinux BTF and keeps the facts.
    let mixed = fixture_bytes("mixed.bpf.o");
    let builder = Kernel::live().with_btf_facts(&path);
    let _ = outcome(&mixed, &builder, Mode::Auto);
    assert_eq!(
        (builder.stats().vmlinux_parses, builder.stats().btf_facts_builds),
        (1, 1)
    );
    let walker = Kernel::live().without_btf_facts();
    let mut used = 0;
    for name in all_fixtures() {
        let obj = fixture_bytes(&name);
        for mode in [Mode::Auto, Mode::User] {
            let walked = outcome(&obj, &walker, mode);
            // A fresh kernel for each: it loads the facts and walks nothing.
            let kept = Kernel::live().with_btf_facts(&path);
            let answered = outcome(&obj, &kept, mode);
            assert_eq!(answered, walked, "{name} in {mode:?}");
            let s = kept.stats();
            assert_eq!(s.vmlinux_parses + s.vmlinux_walks, 0, "{name} in {mode:?}: {s:?}");
            used += s.btf_facts_loads;
        }
    }
    assert!(
        used > 10,
        "the facts answered the BTF ksyms of the fixtures ({used} loads)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Puts a bad facts file at the path it is given.
type Spoil<'a> = Box<dyn Fn(&Path) + 'a>;

/// Relocates `mixed.bpf.o` with a kernel keeping its facts at `path`.
fn relocate_mixed(path: &Path) -> (String, KernelStats) {
    let kernel = Kernel::live().with_btf_facts(path);
    let out = outcome(&fixture_bytes("mixed.bpf.o"), &kernel, Mode::Auto);
    (out, kernel.stats())
}

#[test]
fn foreign_corrupt_truncated_or_untrusted_facts_are_ignored_and_replaced() {
    if !gate("foreign_corrupt_truncated_or_untrusted_facts_are_ignored_and_replaced") {
        return;
    }
    let dir = temp_dir("bad");
    let path = dir.join("vmlinux-btf-facts");
    let expected = outcome(
        &fixture_bytes("mixed.bpf.o"),
        &Kernel::live().without_btf_facts(),
        Mode::Auto,
    );
    let (first, stats) = relocate_mixed(&path);
    assert_eq!(first, expected);
    assert_eq!(
        (stats.vmlinux_parses, stats.btf_facts_builds, stats.btf_facts_loads),
        (1, 1, 0)
    );
    let good = std::fs::read(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let (again, stats) = relocate_mixed(&path);
    assert_eq!(again, expected);
    assert_eq!((stats.vmlinux_parses, stats.btf_facts_loads), (0, 1));

    // The same vmlinux BTF's facts, but of another boot: well formed, foreign.
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let mut index = vec![0u32; 8192];
    let count = Btf::parse_indexed(&vmlinux, None, &mut index).unwrap().own_type_count();
    let btf = Btf::reindexed(&vmlinux, None, &index, count).unwrap();
    let key = facts::Key::new(b"another-boot", &vmlinux).unwrap();
    let foreign = BtfFacts::build(&btf, &index, &key).unwrap();
    // And a BTF that is not this vmlinux's (one byte changed at its end).
    let mut other = vmlinux.clone();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    let other_key = BtfFacts::key(&other).unwrap();
    assert_ne!(Some(other_key), BtfFacts::key(&vmlinux));
    let not_this_btf = BtfFacts::build(&btf, &index, &other_key).unwrap();

    let front = facts::front_len(&good).unwrap();
    let corrupt_body = {
        let mut b = good.clone();
        for at in (front..b.len()).step_by(facts::BLOCK * 8) {
            b[at] ^= 0x40;
        }
        b
    };
    let corrupt_front = {
        let mut b = good.clone();
        b[front - 3] ^= 1;
        b
    };
    let cases: Vec<(&str, Spoil<'_>)> = vec![
        ("another boot", Box::new(|p| foreign.save(p).unwrap())),
        ("another BTF", Box::new(|p| not_this_btf.save(p).unwrap())),
        ("corrupt body", Box::new(|p| std::fs::write(p, &corrupt_body).unwrap())),
        (
            "corrupt front",
            Box::new(|p| std::fs::write(p, &corrupt_front).unwrap()),
        ),
        (
            "truncated",
            Box::new(|p| std::fs::write(p, &good[..good.len() - 100]).unwrap()),
        ),
        (
            "header only",
            Box::new(|p| std::fs::write(p, &good[..facts::HEADER_LEN]).unwrap()),
        ),
        ("empty", Box::new(|p| std::fs::write(p, b"").unwrap())),
        (
            "writable by others",
            Box::new(|p| {
                std::fs::write(p, &good).unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
            }),
        ),
        (
            "a symlink",
            Box::new(|p| {
                let target = p.with_extension("target");
                std::fs::write(&target, &good).unwrap();
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
                let _ = std::fs::remove_file(p);
                std::os::unix::fs::symlink(&target, p).unwrap();
            }),
        ),
        (
            "owned by another user",
            Box::new(|p| {
                std::fs::write(p, &good).unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
                // Only root can give a file away; others skip this case.
                let _ = std::os::unix::fs::chown(p, Some(65534), Some(65534));
            }),
        ),
    ];
    let root = euid_is_root();
    for (what, make) in cases {
        if what == "owned by another user" && !root {
            continue;
        }
        make(&path);
        let (out, stats) = relocate_mixed(&path);
        assert_eq!(out, expected, "{what}");
        assert_eq!(
            (stats.btf_facts_loads, stats.vmlinux_parses, stats.btf_facts_builds),
            (0, 1, 1),
            "{what}: ignored, walked and rebuilt"
        );
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.is_file() && meta.permissions().mode() & 0o777 == 0o600,
            "{what}: replaced"
        );
        let (out, stats) = relocate_mixed(&path);
        assert_eq!(out, expected, "{what}, replaced");
        assert_eq!(
            (stats.btf_facts_loads, stats.vmlinux_parses),
            (1, 0),
            "{what}: the new file is used"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether this process runs as root (`/proc/self` belongs to its euid).
fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[test]
fn a_library_kernel_reads_but_never_writes_facts_unless_asked() {
    if !gate("a_library_kernel_reads_but_never_writes_facts_unless_asked") {
        return;
    }
    let dir = temp_dir("readonly");
    let obj = fixture_bytes("kfuncs.bpf.o");
    let kernel = Kernel::live().without_btf_facts();
    let _ = outcome(&obj, &kernel, Mode::Auto);
    assert_eq!(kernel.stats().btf_facts_builds, 0);
    assert!(!dir.exists());
    // Offline kernels keep nothing: their BTF is not this boot's.
    let offline = Kernel::from_files(Some(Path::new("/sys/kernel/btf/vmlinux")), None).with_btf_facts(dir.join("f"));
    let _ = outcome(&obj, &offline, Mode::User);
    assert_eq!(offline.stats().btf_facts_builds, 0);
    assert!(!dir.exists());
}
