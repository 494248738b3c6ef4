//! `ksymrelo gen -o NAME.h`: the header compiles cleanly (`-Wall -Wextra
//! -Werror`), its runner loads an object's programs in this kernel with
//! nothing but libc and `bpf(2)`, and a strong extern the kernel lacks
//! fails with `-ENOENT`, named, nothing left open.

use std::path::{Path, PathBuf};
use std::process::Command;

use ksymrelo_std::generate::{self, GenerateOptions};
use ksymrelo_std::loader_file::LoaderFile;

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

/// Writes header `name`.h of `file` (generated from `object`) into `dir`.
fn header_of(dir: &Path, file: &LoaderFile, object: &str, name: &str) {
    let externs = generate::extern_names(&file.object).unwrap();
    let text = ksymrelo_std::loader_header::header(file, name, object, &externs);
    std::fs::write(dir.join(format!("{name}.h")), text).unwrap();
}

/// Sealed headers of multi_section.bpf.o: as generated, with one byte of
/// its data flipped, and with one byte of its loader flipped (in the
/// blob's SHA-256 it carries, so that only the seal can refuse it).
fn sealed_headers(dir: &Path) {
    let object = "multi_section.bpf.o";
    let bytes = std::fs::read(fixture(object)).unwrap();
    let sealed = generate::generate(&bytes, object, &GenerateOptions { sealed: true }).unwrap();
    header_of(dir, &sealed, object, "skel_sealed");
    let mut data = sealed.clone();
    let at = data.progs[1].blob_insns_off as usize + 4;
    data.blob[at] ^= 1;
    header_of(dir, &data, object, "skel_data");
    let mut code = sealed.clone();
    let digest = ksymrelo_std::skel::sha256(&sealed.blob);
    let imm = code
        .loader
        .iter()
        .position(|i| i.imm().to_le_bytes() == digest[..4])
        .expect("the loader carries its blob's SHA-256");
    code.loader[imm] = ksymrelo_core::insn::Insn::new(
        code.loader[imm].code,
        code.loader[imm].dst_reg(),
        code.loader[imm].src_reg(),
        code.loader[imm].off(),
        code.loader[imm].imm() ^ 1,
    );
    header_of(dir, &code, object, "skel_code");
    let mut signed = sealed.clone();
    signed.seal.as_mut().unwrap().signature = Some(vec![0x30, 0x82, 0x01, 0x00, 0x06, 0x09]);
    header_of(dir, &signed, object, "skel_signed");
}

#[test]
fn generated_headers_load_and_fail_clearly_from_c() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gen-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    header(&dir, "multi_section.bpf.o", "skel_ok");
    header(&dir, "err_strong_missing.bpf.o", "skel_bad");
    sealed_headers(&dir);
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
    if run.status.code() == Some(77) {
        // A kernel before 6.18: said so, clearly.
        assert!(text.contains("exclusive maps need Linux 6.18 or later"), "{text}");
        assert!(ksymrelo_test_skip::kernel_version() < (6, 18), "{text}");
    } else {
        assert!(run.status.success(), "{text}{}", String::from_utf8_lossy(&run.stderr));
        assert!(text.contains("sealed loaded: ms_syscall ms_xdp"), "{text}");
        assert!(
            text.contains("data: sealed loader: the loader refused its data"),
            "{text}"
        );
        assert!(text.contains("the data was altered"), "{text}");
        assert!(
            text.contains("code: sealed loader: the kernel refused the loader"),
            "{text}"
        );
        assert!(text.contains("the loader was altered"), "{text}");
        assert!(text.contains("signed: signed loader:"), "{text}");
        if ksymrelo_test_skip::kernel_verifies_signatures() == Some(false) {
            assert!(text.contains("built without CONFIG_SYSTEM_DATA_VERIFICATION"), "{text}");
        }
    }
    assert!(text.contains("ok loaded: ms_syscall ms_xdp"), "{text}");
    assert!(
        text.contains("bad: extern 'ksymrelo_strong_missing' (strong): not resolved (in program 'err')"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
