//! Gives the shared library its SONAME, so programs linked against it record
//! `NEEDED libksymrelo.so.0` and an install (`ffi/install.sh`) carries the
//! usual `libksymrelo.so.X.Y.Z` <- `.so.0` <- `.so` chain. The `0` is the ABI
//! version: bump it together with an incompatible change of the C ABI.
//!
//! A program linked in the source tree (`-L target/<profile> -lksymrelo`,
//! with an rpath there, as tests/tests/ffi.rs does) then looks for
//! `libksymrelo.so.0`, which cargo does not make: this script also puts a
//! `libksymrelo.so.0 -> libksymrelo.so` symlink beside the library cargo
//! builds (dangling until the link step has run).

use std::path::PathBuf;

const SONAME: &str = "libksymrelo.so.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");

    // OUT_DIR is <target>/<profile>/build/ksymrelo-ffi-<hash>/out; the
    // library lands in <target>/<profile>. If that layout ever differs
    // (a separate build-dir), leave the tree alone: only the in-tree
    // linking convenience is lost, never the SONAME.
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    if profile_dir.join("build").is_dir() && profile_dir.join("deps").is_dir() {
        symlink_soname(&profile_dir.join(SONAME));
    }
}

#[cfg(unix)]
fn symlink_soname(link: &std::path::Path) {
    if std::fs::symlink_metadata(link).is_err() {
        if let Err(e) = std::os::unix::fs::symlink("libksymrelo.so", link) {
            println!("cargo:warning=cannot create {}: {e}", link.display());
        }
    }
}

#[cfg(not(unix))]
fn symlink_soname(_link: &std::path::Path) {}
