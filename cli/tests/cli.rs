//! The `ksymrelo` command: JSON and table output on the fixtures, and the
//! errors it reports (non-zero exit, a message naming the extern).

use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether kallsyms shows addresses (not all zero, as under
/// `kptr_restrict`); not judged by the first line alone: older x86 kernels
/// (Debian's 6.1 and 6.12) list the per-CPU `fixed_percpu_data` first, at 0.
fn addresses_visible(kallsyms: &str) -> bool {
    kallsyms.lines().take(1000).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|a| a.bytes().any(|b| b != b'0'))
    })
}

fn live() -> bool {
    let ok = std::fs::metadata("/sys/kernel/btf/vmlinux").is_ok()
        && std::fs::read_to_string("/proc/kallsyms").is_ok_and(|t| addresses_visible(&t));
    if !ok {
        assert!(
            !ksymrelo_test_skip::kernel_required(),
            "kernel files unavailable but KSYMRELO_REQUIRE_KERNEL=1"
        );
        ksymrelo_test_skip::skip("no /sys/kernel/btf/vmlinux or kallsyms addresses");
        return false;
    }
    ksymrelo_test_skip::fixtures_fit_or_skip(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"),
    )
}

fn ksymrelo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ksymrelo"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_has_externs_fd_array_and_whole_sections() {
    if !live() {
        return;
    }
    let out = ksymrelo(&["resolve", &fixture("mixed.bpf.o"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let externs = v["externs"].as_array().unwrap();
    assert_eq!(externs.len(), 11);
    let kinds: Vec<&str> = externs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "typeless").count(), 6);
    assert_eq!(kinds.iter().filter(|k| **k == "func").count(), 5);
    for e in externs {
        assert_eq!(e["resolved"], true);
        for key in [
            "name",
            "kind",
            "weak",
            "btf_id",
            "btf_obj_fd",
            "fd_array_slot",
            "addr",
            "module",
        ] {
            assert!(e.get(key).is_some(), "missing {key}");
        }
    }
    assert_eq!(v["fd_array"], serde_json::json!([]));
    // Every executable section, whole: as many rows as 8-byte slots.
    let data = std::fs::read(fixture("mixed.bpf.o")).unwrap();
    let obj = ksymrelo_core::object::Object::parse(&data).unwrap();
    let exec: Vec<_> = obj.exec_sections().map(|s| s.unwrap()).collect();
    let sections = v["sections"].as_array().unwrap();
    assert_eq!(sections.len(), exec.len());
    for (s, e) in sections.iter().zip(&exec) {
        assert_eq!(s["name"].as_str().unwrap().as_bytes(), e.name);
        assert_eq!(s["insns"].as_array().unwrap().len(), e.file_range().unwrap().len() / 8);
    }
    let vfs_read = externs.iter().find(|e| e["name"] == "vfs_read").unwrap();
    assert!(vfs_read["addr"].as_str().unwrap().starts_with("0xffff"));
}

#[test]
fn table_lists_every_extern_with_its_outcome() {
    if !live() {
        return;
    }
    let out = ksymrelo(&["resolve", &fixture("kfuncs.bpf.o")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("EXTERN"), "{text}");
    assert_eq!(text.lines().count(), 1 + 9, "{text}");
    assert!(
        text.contains("ksymrelo_missing_kfunc") && text.contains("not found: calls poisoned (weak)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("bpf_iter_num_new ") && l.contains("btf id")),
        "{text}"
    );
}

#[test]
fn errors_exit_non_zero_and_name_the_extern() {
    if !live() {
        return;
    }
    let cases = [
        (
            "err_strong_missing.bpf.o",
            "extern 'ksymrelo_strong_missing' (strong): not resolved",
        ),
        (
            "err_ambiguous.bpf.o",
            "extern (ksym) 'init_once': resolution is ambiguous: 0x",
        ),
        (
            "err_var_type.bpf.o",
            "extern (var ksym) 'bpf_prog_active': incompatible types",
        ),
        (
            "err_kfunc_proto.bpf.o",
            "extern (func ksym) 'bpf_iter_num_new': func_proto",
        ),
        (
            "err_kfunc_fwd.bpf.o",
            "extern (func ksym) 'bpf_task_release': func_proto",
        ),
    ];
    for (obj, msg) in cases {
        // Ambiguity is visible only to the kallsyms scan of user mode (the
        // kernel's lookup answers with its first match, as for libbpf's
        // gen_loader); the others fail in every mode that checks types.
        let out = ksymrelo(&["resolve", &fixture(obj), "--json", "--mode", "user"]);
        assert!(!out.status.success(), "{obj} succeeded");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("{\"error\""),
            "{obj}: a JSON failure"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{obj}: {err}");
    }
}

#[test]
fn modes_agree_and_auto_is_the_default() {
    if !live() {
        return;
    }
    let run = |extra: &[&str]| {
        let mut args = vec!["resolve", "--json"];
        let f = fixture("mixed.bpf.o");
        args.push(&f);
        args.extend_from_slice(extra);
        let out = ksymrelo(&args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let user = run(&["--mode", "user"]);
    assert_eq!(run(&["--mode", "kernel"]), user);
    assert_eq!(run(&["--mode", "auto"]), user);
    assert_eq!(run(&[]), user);
    let out = ksymrelo(&["resolve", &fixture("mixed.bpf.o"), "--mode", "sideways"]);
    assert!(!out.status.success());
    // Errors that need type checks fail in auto mode too.
    let out = ksymrelo(&["resolve", &fixture("err_var_type.bpf.o")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("incompatible types"));
    let out = ksymrelo(&["resolve", &fixture("err_strong_missing.bpf.o"), "--mode", "kernel"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("'ksymrelo_strong_missing' (strong): not resolved"));
}

#[test]
fn offline_btf_without_kallsyms_refuses_typeless_ksyms_clearly() {
    if !live() {
        return;
    }
    let out = ksymrelo(&[
        "resolve",
        &fixture("typeless.bpf.o"),
        "--btf",
        "/sys/kernel/btf/vmlinux",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kallsyms"));
    // With a saved kallsyms it works, and kfunc-only objects need none.
    let saved = std::env::temp_dir().join(format!("ksymrelo-kallsyms-{}", std::process::id()));
    std::fs::write(&saved, std::fs::read("/proc/kallsyms").unwrap()).unwrap();
    let out = ksymrelo(&[
        "resolve",
        &fixture("typeless.bpf.o"),
        "--btf",
        "/sys/kernel/btf/vmlinux",
        "--kallsyms",
        saved.to_str().unwrap(),
    ]);
    std::fs::remove_file(&saved).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ksymrelo(&["resolve", &fixture("kfuncs.bpf.o"), "--btf", "/sys/kernel/btf/vmlinux"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn garbage_input_is_an_error_not_a_crash() {
    let path = std::env::temp_dir().join(format!("ksymrelo-garbage-{}", std::process::id()));
    std::fs::write(&path, b"\x7fELF\x02\x01\x01 definitely not an object").unwrap();
    let out = ksymrelo(&["resolve", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(3), "bad input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ksymrelo:"));
}

/// `ksymrelo ARGS` run with `caps` (e.g. `"-sys_admin"`, setpriv's syntax)
/// dropped from the bounding and inheritable sets, so that root runs it
/// without them; `None` (having skipped) where setpriv cannot do that.
fn ksymrelo_without(caps: &str, args: &[&str]) -> Option<std::process::Output> {
    let setpriv = |program: &str| {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", caps, "--inh-caps", caps, program]);
        c
    };
    if !setpriv("true").status().is_ok_and(|s| s.success()) {
        assert!(
            !ksymrelo_test_skip::kernel_required(),
            "setpriv cannot drop {caps} but KSYMRELO_REQUIRE_KERNEL=1"
        );
        ksymrelo_test_skip::skip(format_args!(
            "setpriv cannot drop {caps} here (needs root and util-linux)"
        ));
        return None;
    }
    Some(setpriv(env!("CARGO_BIN_EXE_ksymrelo")).args(args).output().unwrap())
}

fn json(out: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Without `CAP_SYS_ADMIN`, `BPF_BTF_GET_NEXT_ID` is refused: as libbpf,
/// module BTFs are then not searched, and a weak kfunc only a module could
/// have resolves to zero instead of failing the whole object.
#[test]
fn module_listing_refused_means_no_modules() {
    if !live() {
        return;
    }
    let object = fixture("weak_kfuncs.bpf.o");
    for mode in ["user", "auto"] {
        let Some(out) = ksymrelo_without("-sys_admin", &["resolve", &object, "--json", "--mode", mode]) else {
            return;
        };
        let v = json(&out, &format!("--mode {mode}"));
        let missing: Vec<&str> = v["externs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resolved"] == false)
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            missing,
            ["ksymrelo_missing_kfunc", "ksymrelo_missing_kfunc2"],
            "--mode {mode}"
        );
    }
}

/// Without `CAP_BPF` the kernel refuses the loader program: `auto` falls
/// back to user space (kallsyms) and patches exactly what it patches with
/// the loader; `kernel` says what was refused.
#[test]
fn without_cap_bpf_auto_falls_back_and_kernel_says_why() {
    if !live() {
        return;
    }
    let object = fixture("mixed.bpf.o");
    let caps = "-bpf,-sys_admin,-perfmon";
    let with_loader = json(
        &ksymrelo(&["resolve", &object, "--json", "--mode", "auto"]),
        "auto as root",
    );
    let Some(out) = ksymrelo_without(caps, &["resolve", &object, "--json", "--mode", "auto"]) else {
        return;
    };
    let fallback = json(&out, "auto without CAP_BPF");
    assert_eq!(fallback["sections"], with_loader["sections"]);
    assert_eq!(fallback["externs"], with_loader["externs"]);
    let out = ksymrelo_without(caps, &["resolve", &object, "--mode", "kernel"]).unwrap();
    assert_eq!(out.status.code(), Some(4), "kernel facts cannot be read");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in-kernel resolver") && err.contains("Operation not permitted"),
        "{err}"
    );
}

/// A failure with `--json` still prints one document on stdout, and the
/// exit status says who must act.
#[test]
fn json_failures_are_documents_and_exit_codes_say_why() {
    if !live() {
        return;
    }
    let out = ksymrelo(&["resolve", &fixture("err_ambiguous.bpf.o"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = doc(&out);
    assert_eq!(v["error"]["extern"], "init_once");
    assert_eq!(v["error"]["kind"], "typeless");
    assert_eq!(v["error"]["reason"], "ambiguous");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("resolution is ambiguous"));
    assert_eq!(v["externs"][0]["name"], "init_once");
    assert_eq!(v["externs"][0]["resolved"], false);

    let out = ksymrelo(&["resolve", &fixture("err_strong_missing.bpf.o"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc(&out)["error"]["reason"], "not_found");

    // Bad input: 3; usage: 2.
    let garbage = std::env::temp_dir().join(format!("ksymrelo-garbage-{}", std::process::id()));
    std::fs::write(&garbage, b"not an ELF object at all").unwrap();
    let out = ksymrelo(&["resolve", garbage.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&garbage).unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(doc(&out)["error"]["reason"], "bad_object");
    let out = ksymrelo(&["resolve", "/nonexistent/object.o"]);
    assert_eq!(out.status.code(), Some(3));
    let out = ksymrelo(&[
        "resolve",
        &fixture("mixed.bpf.o"),
        "--mode",
        "kernel",
        "--btf",
        "/sys/kernel/btf/vmlinux",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode kernel asks the running kernel"));
    let help = String::from_utf8_lossy(&ksymrelo(&["--help"]).stdout).into_owned();
    assert!(help.contains("Exit status: 0 resolved; 1"), "{help}");
}

/// Unresolved weak kfuncs say their calls are poisoned; an object without
/// ksyms says there is nothing to resolve.
#[test]
fn poisoned_calls_and_empty_objects_are_told_as_such() {
    if !live() {
        return;
    }
    let out = ksymrelo(&["resolve", &fixture("weak_kfuncs.bpf.o")]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("ksymrelo_missing_kfunc "))
        .unwrap();
    assert!(row.contains("not found: calls poisoned (weak)"), "{row}");
    let v = json(
        &ksymrelo(&["resolve", &fixture("weak_kfuncs.bpf.o"), "--json"]),
        "weak_kfuncs",
    );
    let missing = v["externs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "ksymrelo_missing_kfunc")
        .unwrap();
    assert_eq!(missing["poisoned"], true);

    // An object without externs, made here.
    let empty = std::env::temp_dir().join(format!("ksymrelo-empty-{}.o", std::process::id()));
    let status = Command::new("clang-19")
        .args(["-target", "bpf", "-O2", "-c", "-x", "c", "-", "-o"])
        .arg(&empty)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"int f(void *ctx) { return 0; }\n")?;
            c.wait()
        });
    if !status.is_ok_and(|s| s.success()) {
        ksymrelo_test_skip::skip("(the empty-object half) clang-19 unavailable");
        return;
    }
    let out = ksymrelo(&["resolve", empty.to_str().unwrap()]);
    std::fs::remove_file(&empty).unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no ksym externs: nothing to resolve\n"
    );
}

/// Without CAP_SYSLOG, kallsyms shows zeros: the error names the setting
/// that hides them (read from this system), not just kptr_restrict.
#[test]
fn hidden_addresses_name_their_cause() {
    if !live() {
        return;
    }
    let Some(out) = ksymrelo_without("-syslog", &["resolve", &fixture("typeless.bpf.o"), "--json"]) else {
        return;
    };
    let v = doc(&out);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(v["error"]["reason"], "addresses_hidden");
    let msg = v["error"]["message"].as_str().unwrap();
    let restrict = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap();
    assert!(
        msg.contains(&format!("kernel.kptr_restrict is {}", restrict.trim())),
        "{msg}"
    );
    if restrict.trim() == "0" {
        assert!(msg.contains("kernel.perf_event_paranoid"), "{msg}");
    } else {
        assert!(msg.contains("CAP_SYSLOG"), "{msg}");
    }
}

/// The JSON document on stdout, whatever the exit status.
fn doc(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A strong extern not found says what the kernel has instead: the name
/// with another kind, or close names (also in the JSON's `candidates`).
#[test]
fn missing_externs_come_with_hints_and_close_names() {
    if !live() {
        return;
    }
    // The hints name kernel functions the fixtures rely on (Linux 6.4+).
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let btf = ksymrelo_core::btf::Btf::parse(&vmlinux).unwrap();
    for f in ["bpf_iter_num_next", "bpf_task_release"] {
        if btf
            .find_by_name_kind(f.as_bytes(), ksymrelo_core::btf::Kind::Func)
            .unwrap()
            .is_none()
        {
            ksymrelo_test_skip::skip(format_args!("this kernel has no {f}"));
            return;
        }
    }
    let out = ksymrelo(&["resolve", &fixture("err_kfunc_typo.bpf.o"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = doc(&out);
    assert_eq!(v["error"]["reason"], "not_found");
    assert_eq!(v["error"]["extern"], "bpf_iter_num_nxt");
    assert_eq!(v["error"]["candidates"][0], "bpf_iter_num_next");
    for mode in ["auto", "user", "kernel"] {
        let out = ksymrelo(&["resolve", &fixture("err_var_is_func.bpf.o"), "--mode", mode]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("extern (var ksym) 'bpf_task_release': not found in kernel BTF; kernel BTF has 'bpf_task_release' as a function (FUNC)"),
            "{mode}: {err}"
        );
    }
}

// --- `ksymrelo gen` and `ksymrelo run` ---------------------------------------

/// Gate of the commands that load into the kernel: kernel files readable
/// and `bpf(2)` permitted (fails under `KSYMRELO_REQUIRE_KERNEL=1`).
fn can_load() -> bool {
    if !live() {
        return false;
    }
    match ksymrelo_std::load::bpf_available() {
        Ok(()) => true,
        Err(e) => {
            assert!(
                !ksymrelo_test_skip::kernel_required(),
                "bpf(2) not usable ({e}) but KSYMRELO_REQUIRE_KERNEL=1"
            );
            ksymrelo_test_skip::skip(format_args!("bpf(2) not permitted here: {e}"));
            false
        }
    }
}

/// A file of this test process, removed on drop.
struct TempFile(std::path::PathBuf);
impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("ksymrelo-cli-{}-{name}", std::process::id())))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `gen -o FILE`, then `run FILE` (table and JSON): every map and program.
#[test]
fn gen_writes_a_loader_that_run_loads() {
    if !can_load() {
        return;
    }
    let file = TempFile::new("gen_data.ksl");
    let out = ksymrelo(&["gen", &fixture("gen_data.bpf.o"), "-o", file.path()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ksymrelo(&["run", file.path()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    for name in ["gen_data.data", "gen_data.rodata", "gen_data.bss"] {
        assert!(
            table.lines().any(|l| l.starts_with("map") && l.contains(name)),
            "{table}"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("program") && l.contains("gen_data")),
        "{table}"
    );
    let v = json(&ksymrelo(&["run", file.path(), "--json"]), "run --json");
    let maps: Vec<&str> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(maps, ["gen_data.data", "gen_data.rodata", "gen_data.bss"]);
    let progs = v["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 1);
    assert_eq!(progs[0]["name"], "gen_data");
    assert_eq!(progs[0]["section"], "syscall");
    assert!(!progs[0]["insns"].as_array().unwrap().is_empty());
    let externs = v["externs"].as_array().unwrap();
    assert_eq!(externs.len(), 1);
    assert_eq!(externs[0]["name"], "vfs_read");
}

/// `gen --run --json`: two programs sharing `.text`, every extern listed.
#[test]
fn gen_run_json_reports_programs_and_externs() {
    if !can_load() {
        return;
    }
    let missing: Vec<&str> = ["bpf_iter_num_new", "bpf_task_from_pid"]
        .into_iter()
        .filter(|k| {
            let btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
            let btf = ksymrelo_core::btf::Btf::parse(&btf).unwrap();
            btf.find_by_name_kind(k.as_bytes(), ksymrelo_core::btf::Kind::Func)
                .unwrap()
                .is_none()
        })
        .collect();
    if !missing.is_empty() {
        ksymrelo_test_skip::skip(format_args!("multi_section.bpf.o calls {missing:?}, absent here"));
        return;
    }
    let v = json(
        &ksymrelo(&["gen", &fixture("multi_section.bpf.o"), "--run", "--json"]),
        "gen --run --json",
    );
    let mut progs: Vec<&str> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    progs.sort_unstable();
    assert_eq!(progs.len(), 2, "{progs:?}");
    assert!(progs.contains(&"ms_syscall"), "{progs:?}");
    assert!(v["maps"].as_array().unwrap().is_empty());
    let externs: Vec<&str> = v["externs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        externs.contains(&"vfs_read") && externs.contains(&"bpf_iter_num_new"),
        "{externs:?}"
    );
}

/// Any flipped byte, or a truncation, of a loader file: exit status 3 and
/// a message, never a crash.
#[test]
fn altered_loader_files_are_refused_with_status_3() {
    let file = TempFile::new("typeless.ksl");
    let out = ksymrelo(&["gen", &fixture("typeless.bpf.o"), "-o", file.path()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let good = std::fs::read(&file.0).unwrap();
    let bad = TempFile::new("typeless-bad.ksl");
    let len = good.len();
    let flips = [0, 8, 12, 16, 24, 40, 63, 64, 65, len / 3, len / 2, len - 1];
    for at in flips {
        let mut data = good.clone();
        data[at] ^= 0x20;
        std::fs::write(&bad.0, &data).unwrap();
        for json_flag in [false, true] {
            let mut args = vec!["run", bad.path()];
            if json_flag {
                args.push("--json");
            }
            let out = ksymrelo(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "byte {at} flipped: {stderr}");
            assert!(stderr.contains("loader file"), "byte {at} flipped: {stderr}");
            if json_flag {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(v["error"]["message"].as_str().is_some(), "{v}");
            }
        }
    }
    for keep in [0, 7, 63, 64, len / 2, len - 1] {
        std::fs::write(&bad.0, &good[..keep]).unwrap();
        let out = ksymrelo(&["run", bad.path()]);
        assert_eq!(out.status.code(), Some(3), "truncated to {keep}");
        assert!(!out.stderr.is_empty());
    }
    let out = ksymrelo(&["run", "/nonexistent/ksymrelo.ksl"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.status.code().is_some(), "no crash");
}

/// Exit statuses of gen and run follow `--help`'s table.
#[test]
fn gen_and_run_exit_statuses() {
    // Usage: no -o and no --run.
    let out = ksymrelo(&["gen", &fixture("typeless.bpf.o")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o FILE"));
    // Bad input: not an object; no object at all.
    let garbage = TempFile::new("garbage.bpf.o");
    std::fs::write(&garbage.0, b"not an ELF object at all").unwrap();
    let out = ksymrelo(&["gen", garbage.path(), "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ksymrelo(&["gen", "/nonexistent.bpf.o", "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(3));
    if !can_load() {
        return;
    }
    // A strong extern this kernel lacks: 1, naming it, as JSON too.
    let out = ksymrelo(&["gen", &fixture("err_strong_missing.bpf.o"), "--run", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["extern"], "ksymrelo_strong_missing", "{v}");
    assert_eq!(v["error"]["reason"], "not_found", "{v}");
    // A type mismatch: refused by the pre-flight, 1.
    let out = ksymrelo(&["gen", &fixture("err_var_type.bpf.o"), "--run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'bpf_prog_active'"));
}

/// `gen --sealed -o FILE`, `run FILE`: it loads (Linux 6.18); its data or
/// its loader altered (the file's checksum made right again, as anyone
/// who alters it on purpose would), `run` refuses it, each in its words,
/// exit status 3; a kernel before 6.18 is told to lack exclusive maps.
#[test]
fn sealed_loader_files_run_and_altered_ones_are_refused() {
    use ksymrelo_std::loader_file::LoaderFile;
    if !can_load() {
        return;
    }
    let file = TempFile::new("sealed.ksl");
    let out = ksymrelo(&["gen", &fixture("gen_data.bpf.o"), "--sealed", "-o", file.path()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let good = LoaderFile::from_bytes(&std::fs::read(&file.0).unwrap()).unwrap();
    assert!(good.seal.is_some());
    let out = ksymrelo(&["run", file.path(), "--keyring-id", "-4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if ksymrelo_test_skip::kernel_version() < (6, 18) {
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("no exclusive maps"), "{stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let bad = TempFile::new("sealed-bad.ksl");
    let mut data = good.clone();
    let at = data.blob.len() / 2;
    data.blob[at] ^= 4;
    let mut loader = good.clone();
    loader.loader[1] = ksymrelo_core::insn::Insn::new(0xb7, 0, 0, 0, 7);
    for (altered, words) in [(data, "the data was altered"), (loader, "the loader was altered")] {
        std::fs::write(&bad.0, altered.to_bytes().unwrap()).unwrap();
        let out = ksymrelo(&["run", bad.path()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(words), "{stderr}");
    }
}
