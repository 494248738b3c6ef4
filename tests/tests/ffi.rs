//! The C ABI from C: tests/c/*.c compiled against ffi/include/ksymrelo.h and
//! linked through pkg-config (a ksymrelo.pc generated for this build), run
//! directly and under valgrind (no leaks, no invalid accesses).

use std::path::{Path, PathBuf};
use std::process::Command;

use ksymrelo_tests::{fixture, kernel_required, synth_module_dir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds libksymrelo (debug) and writes a ksymrelo.pc pointing at it;
/// returns the directory holding the .pc.
fn build_library() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "ksymrelo-ffi"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(status.success(), "building libksymrelo failed");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let libdir = tmp.parent().unwrap().join("debug");
    assert!(
        libdir.join("libksymrelo.so").exists(),
        "no libksymrelo.so in {}",
        libdir.display()
    );
    let pc = std::fs::read_to_string(repo().join("ffi/ksymrelo.pc.in"))
        .unwrap()
        .replace("@PREFIX@", repo().to_str().unwrap())
        .replace("@LIBDIR@", libdir.to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    let pcdir = tmp.join("pkgconfig");
    std::fs::create_dir_all(&pcdir).unwrap();
    std::fs::write(pcdir.join("ksymrelo.pc"), pc).unwrap();
    pcdir
}

/// Compiles one C program with `pkg-config --cflags --libs ksymrelo`.
fn compile(pcdir: &Path, source: &str, extra: &[&str]) -> PathBuf {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "ksymrelo"])
        .env("PKG_CONFIG_PATH", pcdir)
        .output()
        .expect("pkg-config");
    assert!(
        flags.status.success(),
        "pkg-config: {}",
        String::from_utf8_lossy(&flags.stderr)
    );
    let flags = String::from_utf8(flags.stdout).unwrap();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(source.trim_end_matches(".c"));
    let status = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-g", "-o"])
        .arg(&out)
        .arg(repo().join("tests/c").join(source))
        .args(flags.split_whitespace())
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "compiling {source}");
    out
}

fn bpf_usable() -> bool {
    match ksymrelo_std::sys::bpf_available() {
        Ok(()) => true,
        Err(e) => {
            assert!(
                !kernel_required(),
                "bpf(2) unusable ({e}) but KSYMRELO_REQUIRE_KERNEL=1"
            );
            eprintln!("SKIP (kernel part of the C tests): bpf(2) not permitted: {e}");
            false
        }
    }
}

fn command(wrapper: &[&str], program: &Path, args: &[&Path], run_kernel: bool) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args);
    // cargo test points LD_LIBRARY_PATH at its own target directories, which
    // would win over the rpath: run against the library the program was
    // linked with, as a user's program would.
    cmd.env_remove("LD_LIBRARY_PATH");
    if !run_kernel {
        cmd.env("KSYMRELO_C_NO_KERNEL", "1");
    }
    cmd
}

#[test]
fn c_programs_relocate_load_and_run() {
    if std::fs::metadata("/sys/kernel/btf/vmlinux").is_err() {
        assert!(!kernel_required());
        eprintln!("SKIP: no /sys/kernel/btf/vmlinux");
        return;
    }
    let Some((modules, _)) = synth_module_dir("ffi") else {
        return;
    };
    let pcdir = build_library();
    let test = compile(&pcdir, "ffi_test.c", &["-lelf"]);
    let example = compile(&pcdir, "readme_example.c", &[]);
    let fixtures = fixture("");
    let run_kernel = bpf_usable();

    let out = command(&[], &test, &[&fixtures, &modules.0], run_kernel)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffi_test failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");

    let out = command(&[], &example, &[], true)
        .arg(fixture("mixed.bpf.o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "readme example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fd_array has 0 entries"));
    let out = command(&[], &example, &[], true)
        .arg(fixture("err_strong_missing.bpf.o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ksymrelo_strong_missing"));

    // The whole suite again under valgrind.
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(!kernel_required(), "valgrind missing but KSYMRELO_REQUIRE_KERNEL=1");
        eprintln!("SKIP: valgrind not installed");
        return;
    }
    let valgrind = [
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--show-leak-kinds=definite,indirect",
        "--quiet",
    ];
    let out = command(&valgrind, &test, &[&fixtures, &modules.0], run_kernel)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ffi_test under valgrind (exit {:?}):\n{text}",
        out.status.code()
    );
    assert!(text.contains("all checks passed"), "{text}");
}
