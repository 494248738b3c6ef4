//! Builds the libbpf 1.7 differential harness: tests/harness/libbpf_dump.c
//! linked against the static libbpf that libbpf-sys vendors and builds
//! (its `links = "bpf"` metadata gives `DEP_BPF_INCLUDE`, the installed
//! headers; `libbpf.a` sits in the directory above). The harness's path is
//! given to the tests as `KSYMRELO_LIBBPF17_DUMP`; it is empty when the
//! build failed (the differential tests then skip, or fail under
//! `KSYMRELO_REQUIRE_KERNEL=1`), with the reason in `KSYMRELO_LIBBPF17_ERROR`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let script = manifest.join("harness/build.sh");
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("harness/libbpf_dump.c").display()
    );
    println!("cargo:rerun-if-env-changed=DEP_BPF_INCLUDE");
    // Set by tests/vm/run.sh: a fully static harness (see build.sh).
    println!("cargo:rerun-if-env-changed=KSYMRELO_HARNESS_STATIC");

    let result = match std::env::var_os("DEP_BPF_INCLUDE") {
        None => Err("libbpf-sys gave no DEP_BPF_INCLUDE".to_owned()),
        Some(include) => {
            let libbpf_dir = PathBuf::from(include).parent().unwrap().to_owned();
            let out = out_dir.join("libbpf17_dump");
            match Command::new("bash").arg(&script).arg(&out).arg(&libbpf_dir).output() {
                Ok(o) if o.status.success() => Ok(out),
                Ok(o) => Err(format!(
                    "{} {} failed: {}",
                    script.display(),
                    libbpf_dir.display(),
                    String::from_utf8_lossy(&o.stderr).replace('\n', " ")
                )),
                Err(e) => Err(format!("cannot run bash: {e}")),
            }
        }
    };
    match result {
        Ok(path) => {
            println!("cargo:rustc-env=KSYMRELO_LIBBPF17_DUMP={}", path.display());
            println!("cargo:rustc-env=KSYMRELO_LIBBPF17_ERROR=");
        }
        Err(e) => {
            println!("cargo:warning=libbpf 1.7 harness not built: {e}");
            println!("cargo:rustc-env=KSYMRELO_LIBBPF17_DUMP=");
            println!("cargo:rustc-env=KSYMRELO_LIBBPF17_ERROR={e}");
        }
    }
}
