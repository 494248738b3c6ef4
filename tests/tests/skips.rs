//! Skipped tests are counted, not passed off as passes: this binary runs
//! its own ignored helpers, which meet the real gates of
//! tests/src/lib.rs where they must skip, and reads what they print.

use std::process::{Command, Stdio};

use ksymrelo_tests::{kernel_required, kernel_usable, modules_loaded};

const NO_MODULE: &str = "ksymrelo_no_such_module";

#[test]
#[ignore = "run by the tests below"]
fn helper_needs_a_module_no_kernel_has() {
    if !modules_loaded("helper_needs_a_module_no_kernel_has", &[NO_MODULE]) {
        return;
    }
    unreachable!("{NO_MODULE} is loaded");
}

#[test]
#[ignore = "run by the tests below"]
fn helper_skips_part_then_fails() {
    ksymrelo_tests::skip("(its first half) nothing to run it on");
    ksymrelo_tests::skip("(its second half) nothing to run that on either");
    panic!("and then it fails");
}

#[test]
#[ignore = "run by the tests below"]
fn helper_needs_bpf() {
    if kernel_usable("helper_needs_bpf") {
        eprintln!("bpf(2) usable");
    }
}

/// Runs this binary's `helpers` (exactly) with `env` set and KSYMRELO_*
/// unset unless given, stdout and stderr in one file in the order
/// written; `wrap` goes before the binary (e.g. setpriv). (exit code, text).
fn run_helpers(wrap: &[&str], env: &[(&str, &str)], helpers: &[&str]) -> (Option<i32>, String) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(["--ignored", "--exact", "--test-threads=1"]).args(helpers);
    for (k, _) in std::env::vars() {
        if k.starts_with("KSYMRELO_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let path = std::env::temp_dir().join(format!("ksymrelo-skips-{}-{}", std::process::id(), helpers.join("-")));
    let out = std::fs::File::create(&path).unwrap();
    cmd.stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .stdin(Stdio::null());
    let status = cmd.status().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    (status.code(), text)
}

/// The line after libtest's `test result:` line, which must be the last.
fn after_result(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let result = lines
        .iter()
        .position(|l| l.starts_with("test result:"))
        .unwrap_or_else(|| panic!("no test result line in:\n{text}"));
    assert_eq!(result + 2, lines.len(), "not one line after the result:\n{text}");
    lines[result + 1]
}

#[test]
fn a_skipped_test_is_counted_on_the_last_line() {
    let (code, text) = run_helpers(&[], &[], &["helper_needs_a_module_no_kernel_has"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("test result: ok. 1 passed"), "{text}");
    assert_eq!(
        after_result(&text),
        format!(
            "SKIPPED 1 test of this binary (counted as passed above; they did not run, or not in full): \
             helper_needs_a_module_no_kernel_has (module(s) {NO_MODULE} not loaded (no /sys/kernel/btf/{NO_MODULE}); \
             tests/vm/run.sh loads them)"
        )
    );
}

#[test]
fn a_failing_run_keeps_its_status_and_counts_its_skips() {
    let (code, text) = run_helpers(
        &[],
        &[],
        &["helper_needs_a_module_no_kernel_has", "helper_skips_part_then_fails"],
    );
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("test result: FAILED. 1 passed; 1 failed"), "{text}");
    let last = after_result(&text);
    assert!(last.starts_with("SKIPPED 2 tests of this binary"), "{last}");
    assert!(
        last.ends_with(
            ", helper_skips_part_then_fails ((its first half) nothing to run it on; \
             (its second half) nothing to run that on either)"
        ),
        "{last}"
    );
}

#[test]
fn where_a_skip_is_not_allowed_the_gate_fails() {
    let (code, text) = run_helpers(&[], &[("KSYMRELO_VM", "1")], &["helper_needs_a_module_no_kernel_has"]);
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("missing inside the VM suite"), "{text}");
    assert!(!text.contains("SKIPPED"), "{text}");
}

/// Without privileges the bpf(2) probe fails: the helper skips, or fails
/// under KSYMRELO_REQUIRE_KERNEL=1.
#[test]
fn without_privileges_a_kernel_test_skips_visibly_or_fails_where_required() {
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ];
    if !Command::new(nobody[0])
        .args(&nobody[1..])
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            !kernel_required(),
            "setpriv cannot drop privileges but KSYMRELO_REQUIRE_KERNEL=1"
        );
        ksymrelo_tests::skip("setpriv cannot drop privileges here (needs root and util-linux)");
        return;
    }
    let (code, text) = run_helpers(&nobody, &[], &["helper_needs_bpf"]);
    assert_eq!(code, Some(0), "{text}");
    let last = after_result(&text);
    assert!(
        last.starts_with(
            "SKIPPED 1 test of this binary (counted as passed above; they did not run, or not in full): \
             helper_needs_bpf (bpf(2) not permitted here: "
        ),
        "{last}"
    );
    let (code, text) = run_helpers(&nobody, &[("KSYMRELO_REQUIRE_KERNEL", "1")], &["helper_needs_bpf"]);
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("but KSYMRELO_REQUIRE_KERNEL=1"), "{text}");
    assert!(!text.contains("SKIPPED"), "{text}");
}
