//! `ksymrelo gen -o NAME.h`: the header compiles cleanly (`-Wall -Wextra
//! -Werror`), its runner loads an object's programs in this kernel with
//! nothing but libc and `bpf(2)`, and a strong extern the kernel lacks
//! fails with `-ENOENT`, named, nothing left open.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Generates header `name`.h of `object` into `dir`.
fn header(dir: &Path, object: &str, name: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_ksymrelo"))
        .arg("gen")
        .arg(fixture(object))
        .arg("-o")
        .arg(dir.join(format!("{name}.h")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gen {object}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generated_headers_load_and_fail_clearly_from_c() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gen-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    header(&dir, "multi_section.bpf.o", "skel_ok");
    header(&dir, "err_strong_missing.bpf.o", "skel_bad");
    let exe = dir.join("gen_header_test");
    let cc = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-I"])
        .arg(&dir)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/gen_header_test.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc");
    assert!(cc.status.success(), "gcc: {}", String::from_utf8_lossy(&cc.stderr));
    if let Err(e) = ksymrelo_std::load::bpf_available() {
        assert!(
            !ksymrelo_test_skip::kernel_required(),
            "bpf(2) not usable ({e}) but KSYMRELO_REQUIRE_KERNEL=1"
        );
        ksymrelo_test_skip::skip(format_args!("the header compiles; running it needs bpf(2): {e}"));
        return;
    }
    let run = Command::new(&exe).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}{}", String::from_utf8_lossy(&run.stderr));
    assert!(text.contains("ok loaded: ms_syscall ms_xdp"), "{text}");
    assert!(
        text.contains("bad: extern 'ksymrelo_strong_missing' (strong): not resolved (in program 'err')"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
