//! The one way a ksymrelo test skips.
//!
//! A test that cannot run here (no `bpf(2)`, no vmlinux BTF, a module not
//! loaded, a kfunc this kernel lacks, a VM-only test outside the VM) calls
//! [`skip`] and returns. libtest still counts it as passed, so [`skip`]
//! also records it, and when the process exits — after libtest's
//! `test result:` line — one last line on stderr counts and names them:
//!
//! ```text
//! SKIPPED 2 tests of this binary (counted as passed above; they did not run, or not in full): mixed_fixture_runs (bpf(2) not permitted here: ...), typed_vmlinux_vars_run (kallsyms lists no ...)
//! ```
//!
//! libtest captures a test's own output, so the `SKIP` line printed at the
//! call is seen only with `--nocapture`; the last line is always seen.
//! Whether a skip is allowed at all (`KSYMRELO_REQUIRE_KERNEL=1`, see
//! [`kernel_required`]; the VM suite) stays the caller's decision: it
//! panics instead of calling [`skip`].
//!
//! A crate of its own, with no ksymrelo dependency, so that every test can
//! use it: the core's unit tests (whose crate forbids the `unsafe` that
//! `atexit` needs), std-shim's tests (the tests crate depends on std-shim)
//! and the benches.

mod fixtures;
mod kernel;

pub use fixtures::{fixture_names_fit, fixture_names_fit_in, fixtures_fit_or_skip};
pub use kernel::{kernel_verifies_signatures, kernel_version};

use std::fmt::Display;
use std::sync::Mutex;

/// Whether `KSYMRELO_REQUIRE_KERNEL=1`: kernel tests must run, not skip.
pub fn kernel_required() -> bool {
    std::env::var("KSYMRELO_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
}

/// (test, reason) of every skip so far, in order.
static SKIPS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Skips (the rest of) the calling test: prints `SKIP <test>: <reason>`
/// now and counts it on the line printed at exit. The test is named by its
/// thread, which libtest names after it (a bench's `main` is left
/// unnamed); `reason` says what is missing, and which part is skipped when
/// the test goes on without it.
pub fn skip(reason: impl Display) {
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_owned);
    match &test {
        Some(t) => eprintln!("SKIP {t}: {reason}"),
        None => eprintln!("SKIP: {reason}"),
    }
    lock().push((test.unwrap_or_default(), reason.to_string()));
    // Miri runs no foreign functions: its runs show the SKIP lines only.
    #[cfg(not(miri))]
    {
        static AT_EXIT: std::sync::Once = std::sync::Once::new();
        AT_EXIT.call_once(|| {
            // SAFETY: `print_summary` is an `extern "C" fn()` that never
            // unwinds (it catches panics and ignores write errors); atexit
            // keeps the pointer, which is 'static.
            let rc = unsafe { libc::atexit(print_summary) };
            assert_eq!(rc, 0, "atexit refused the skip summary");
        });
    }
}

/// The skips so far, also after a test panicked holding the lock: one
/// failure must not hide the others' skips.
fn lock() -> std::sync::MutexGuard<'static, Vec<(String, String)>> {
    SKIPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last line: skipped tests counted once each, with their reasons.
#[cfg_attr(miri, allow(dead_code))]
fn summary() -> Option<String> {
    let skips = lock();
    if skips.is_empty() {
        return None;
    }
    let mut tests: Vec<(&str, Vec<&str>)> = Vec::new();
    for (test, reason) in skips.iter() {
        match tests.iter_mut().find(|(t, _)| t == test) {
            Some((_, reasons)) => reasons.push(reason),
            None => tests.push((test, vec![reason])),
        }
    }
    let list: Vec<String> = tests
        .iter()
        .map(|(t, reasons)| match (*t, reasons.join("; ")) {
            ("", r) => r,
            (t, r) => format!("{t} ({r})"),
        })
        .collect();
    let n = tests.len();
    Some(format!(
        "SKIPPED {n} test{} of this binary (counted as passed above; they did not run, or not in full): {}",
        if n == 1 { "" } else { "s" },
        list.join(", ")
    ))
}

/// Runs at process exit, after libtest printed its summary and std
/// flushed stdout; writes straight to stderr, which libtest never captures
/// outside a test.
#[cfg(not(miri))]
extern "C" fn print_summary() {
    use std::io::Write;
    let line = std::panic::catch_unwind(summary).ok().flatten();
    if let Some(line) = line {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
