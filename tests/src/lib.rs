//! Shared helpers of ksymrelo's integration tests: fixture paths, the
//! kernel-availability gate, and naive reference parsers to check against.

use std::collections::HashMap;
use std::path::PathBuf;

/// Path of a file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Bytes of a built fixture object.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether `KSYMRELO_REQUIRE_KERNEL=1`: kernel tests must run, not skip.
pub fn kernel_required() -> bool {
    std::env::var("KSYMRELO_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
}

/// Gate for tests that need `bpf(2)`: `true` when usable. Otherwise prints a
/// SKIP line and returns `false` — or panics under
/// `KSYMRELO_REQUIRE_KERNEL=1`.
pub fn kernel_usable(test: &str) -> bool {
    match ksymrelo_std::sys::bpf_available() {
        Ok(()) => true,
        Err(e) if kernel_required() => {
            panic!("{test}: bpf(2) is not usable ({e}) but KSYMRELO_REQUIRE_KERNEL=1")
        }
        Err(e) => {
            eprintln!("SKIP {test}: bpf(2) not permitted here: {e}");
            false
        }
    }
}

/// Gate for tests that read the running kernel's BTF and kallsyms.
pub fn live_kernel_files(test: &str) -> bool {
    let ok = std::fs::metadata("/sys/kernel/btf/vmlinux").is_ok()
        && kallsyms_text().lines().next().is_some_and(|l| !l.starts_with("0000000000000000"));
    if !ok {
        if kernel_required() {
            panic!("{test}: /sys/kernel/btf/vmlinux or /proc/kallsyms addresses unavailable but KSYMRELO_REQUIRE_KERNEL=1");
        }
        eprintln!("SKIP {test}: no /sys/kernel/btf/vmlinux or readable /proc/kallsyms addresses");
    }
    ok
}

/// The running kernel's kallsyms text.
pub fn kallsyms_text() -> String {
    std::fs::read_to_string("/proc/kallsyms").unwrap_or_default()
}

/// Every address per name in kallsyms — the naive reference.
pub fn kallsyms_map() -> HashMap<String, Vec<u64>> {
    let mut map: HashMap<String, Vec<u64>> = HashMap::new();
    for line in kallsyms_text().lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_ty), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(addr) = u64::from_str_radix(addr, 16) {
            map.entry(name.to_owned()).or_default().push(addr);
        }
    }
    map
}

/// The single address of `name` in kallsyms (panics if absent or ambiguous).
pub fn kallsyms_addr(name: &str) -> u64 {
    let map = kallsyms_map();
    let addrs = map.get(name).unwrap_or_else(|| panic!("{name} not in kallsyms"));
    assert!(addrs.iter().all(|a| *a == addrs[0]), "{name} is ambiguous in kallsyms");
    addrs[0]
}
