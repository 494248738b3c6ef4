//! `ksymrelo check` on real kernels: Debian's 6.1 and 6.12 (extracted by
//! tests/kernels/fetch.sh into target/kernels/) and this machine's, every
//! cell of the table and of the JSON checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use ksymrelo_test_skip::kernel_required as required;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn ksymrelo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ksymrelo"))
        .args(args)
        .output()
        .unwrap()
}

/// A directory removed on drop.
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One kernel of the set: its directory name and whether it has kallsyms.
struct Kernels {
    dir: Dir,
    names: Vec<(String, bool)>,
}

/// A kernels directory: `debian-6.1` and `debian-6.12` (links to
/// target/kernels/), and `host` (this machine's vmlinux BTF and kallsyms,
/// copied: the `vmlinux` layout), or `None` after a skip.
fn kernels(test: &str) -> Option<Kernels> {
    let extracted = std::env::var_os("KSYMRELO_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernels"));
    let debian: Vec<PathBuf> = ["debian-6.1", "debian-6.12"]
        .iter()
        .map(|k| extracted.join(k))
        .filter(|d| d.join("btf/vmlinux").is_file())
        .collect();
    if debian.len() < 2 {
        assert!(
            !required(),
            "{test}: no Debian kernels in {} but KSYMRELO_REQUIRE_KERNEL=1: run bash tests/kernels/fetch.sh",
            extracted.display()
        );
        ksymrelo_test_skip::skip(format_args!(
            "Debian kernels not extracted in {} (run bash tests/kernels/fetch.sh)",
            extracted.display()
        ));
        return None;
    }
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let visible = kallsyms.lines().take(1000).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|a| a.bytes().any(|b| b != b'0'))
    });
    let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        assert!(!required(), "{test}: no /sys/kernel/btf/vmlinux");
        ksymrelo_test_skip::skip("no /sys/kernel/btf/vmlinux");
        return None;
    };
    if !visible {
        assert!(!required(), "{test}: kallsyms addresses hidden");
        ksymrelo_test_skip::skip("kallsyms addresses hidden");
        return None;
    }
    let dir = Dir(std::env::temp_dir().join(format!("ksymrelo-check-{test}-{}", std::process::id())));
    let host = dir.0.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("vmlinux"), vmlinux).unwrap();
    std::fs::write(host.join("kallsyms"), kallsyms).unwrap();
    let mut names = Vec::new();
    for d in &debian {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        std::os::unix::fs::symlink(d, dir.0.join(&name)).unwrap();
        names.push((name, d.join("kallsyms").is_file()));
    }
    names.push(("host".to_owned(), true));
    Some(Kernels { dir, names })
}

const MIXED: [&str; 11] = [
    "bpf_iter_num_destroy",
    "bpf_iter_num_new",
    "bpf_iter_num_next",
    "bpf_prog_put",
    "bpf_task_from_pid",
    "bpf_task_release",
    "do_sys_open",
    "kfree",
    "schedule",
    "vfs_read",
    "vfs_write",
];
const MIXED_TYPELESS: [&str; 6] = [
    "bpf_prog_put",
    "do_sys_open",
    "kfree",
    "schedule",
    "vfs_read",
    "vfs_write",
];

/// mixed.bpf.o's expected cells on a kernel: 6.1 has none of its kfuncs.
fn mixed_expected(kernel: &str, has_kallsyms: bool) -> (Vec<&'static str>, bool) {
    let cells: Vec<&str> = MIXED
        .iter()
        .map(|e| {
            if MIXED_TYPELESS.contains(e) {
                if has_kallsyms {
                    "ok"
                } else {
                    "no kallsyms"
                }
            } else if kernel == "debian-6.1" {
                "missing"
            } else {
                "ok"
            }
        })
        .collect();
    let loads = cells.iter().all(|c| *c == "ok");
    (cells, loads)
}

#[test]
fn table_has_one_row_per_kernel_and_every_cell() {
    let Some(k) = kernels("table") else { return };
    let out = ksymrelo(&["check", &fixture("mixed.bpf.o"), "--kernels", k.dir.0.to_str().unwrap()]);
    // 6.1 lacks the kfuncs: the object does not load everywhere.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| {
            // Cells are separated by two spaces or more ("no kallsyms" has one).
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let mut header = vec!["KERNEL".to_owned()];
    header.extend(MIXED.iter().map(|s| s.to_string()));
    header.push("LOADS HERE".to_owned());
    assert_eq!(rows[0], header, "{text}");
    assert_eq!(rows.len(), 1 + k.names.len(), "{text}");
    for (row, (name, has_kallsyms)) in rows[1..].iter().zip(&k.names) {
        let (cells, loads) = mixed_expected(name, *has_kallsyms);
        let mut want = vec![name.clone()];
        want.extend(cells.iter().map(|s| s.to_string()));
        want.push(if loads { "yes" } else { "no" }.to_owned());
        assert_eq!(row, &want, "{text}");
    }
}

#[test]
fn json_gives_every_outcome_and_the_details() {
    let Some(k) = kernels("json") else { return };
    let dir = k.dir.0.to_str().unwrap();
    let out = ksymrelo(&["check", &fixture("mixed.bpf.o"), "--kernels", dir, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["externs"], serde_json::json!(MIXED));
    let kernels = v["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), k.names.len());
    for (kv, (name, has_kallsyms)) in kernels.iter().zip(&k.names) {
        assert_eq!(kv["kernel"], name.as_str());
        let (cells, loads) = mixed_expected(name, *has_kallsyms);
        assert_eq!(kv["loads"], loads, "{name}");
        assert_eq!(kv["error"], Value::Null);
        let externs = kv["externs"].as_object().unwrap();
        assert_eq!(externs.len(), MIXED.len());
        for (e, cell) in MIXED.iter().zip(&cells) {
            assert_eq!(externs[*e], *cell, "{name} {e}");
            let d = &kv["detail"][*e];
            match *cell {
                "ok" if MIXED_TYPELESS.contains(e) => {
                    assert!(d["addr"].as_str().unwrap().starts_with("0xffffffff"), "{d}")
                }
                "ok" => assert!(d["btf_id"].as_u64().unwrap() > 0, "{d}"),
                "missing" => assert_eq!(
                    d["message"],
                    format!("extern (func ksym) '{e}': not found in kernel or module BTFs"),
                    "{name}"
                ),
                _ => assert!(d["message"].is_string(), "{d}"),
            }
        }
    }
    // A weak kfunc the kernels lack, and strong kfuncs of another prototype.
    let out = ksymrelo(&["check", &fixture("kfuncs.bpf.o"), "--kernels", dir, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for kv in v["kernels"].as_array().unwrap() {
        assert_eq!(kv["externs"]["ksymrelo_missing_kfunc"], "weak-missing");
        let weak_rcu = if kv["kernel"] == "debian-6.1" {
            "weak-missing"
        } else {
            "ok"
        };
        assert_eq!(kv["externs"]["bpf_rcu_read_lock"], weak_rcu);
        assert_eq!(kv["loads"], kv["kernel"] != "debian-6.1");
    }
    let out = ksymrelo(&["check", &fixture("err_kfunc_proto.bpf.o"), "--kernels", dir, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cells: Vec<&str> = v["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv["externs"]["bpf_iter_num_new"].as_str().unwrap())
        .collect();
    assert_eq!(cells, ["missing", "incompatible", "incompatible"]);
}

#[test]
fn loads_everywhere_exits_zero() {
    let Some(k) = kernels("everywhere") else { return };
    let out = ksymrelo(&["check", &fixture("typed.bpf.o"), "--kernels", k.dir.0.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1 + k.names.len());
    for l in text.lines().skip(1) {
        assert!(l.contains("weak-missing") && l.ends_with(" yes"), "{text}");
    }
}

#[test]
fn usage_and_input_errors_have_their_exit_codes() {
    let empty = Dir(std::env::temp_dir().join(format!("ksymrelo-check-empty-{}", std::process::id())));
    std::fs::create_dir_all(&empty.0).unwrap();
    let dir = empty.0.to_str().unwrap();
    // No kernel in DIR: usage.
    assert_eq!(
        ksymrelo(&["check", &fixture("mixed.bpf.o"), "--kernels", dir])
            .status
            .code(),
        Some(2)
    );
    // No --kernels: usage.
    assert_eq!(ksymrelo(&["check", &fixture("mixed.bpf.o")]).status.code(), Some(2));
    // The object unreadable or malformed: bad input.
    assert_eq!(
        ksymrelo(&["check", "/nonexistent.o", "--kernels", dir]).status.code(),
        Some(3)
    );
    assert_eq!(
        ksymrelo(&["check", &fixture("mixed.bpf.c"), "--kernels", dir])
            .status
            .code(),
        Some(3)
    );
    // A kernel directory with neither btf/ nor vmlinux: its facts cannot be read.
    std::fs::create_dir(empty.0.join("k1")).unwrap();
    let out = ksymrelo(&["check", &fixture("mixed.bpf.o"), "--kernels", dir]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither btf/ nor vmlinux"));
    // A vmlinux that is no BTF: that kernel's row says error, bad input.
    std::fs::write(empty.0.join("k1/vmlinux"), b"not btf").unwrap();
    let out = ksymrelo(&["check", &fixture("typed.bpf.o"), "--kernels", dir]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("k1 "), "{text}");
    assert!(text.lines().nth(1).unwrap().contains("error"), "{text}");
    assert!(text.trim_end().ends_with(" no"), "{text}");
}
