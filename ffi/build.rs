//! Gives the shared library its SONAME, so programs linked against it record
//! `NEEDED libksymrelo.so.0` and an install (`ffi/install.sh`) carries the
//! usual `libksymrelo.so.X.Y.Z` <- `.so.0` <- `.so` chain. The `0` is the ABI
//! version: bump it together with an incompatible change of the C ABI.
//!
//! A program linked in the source tree (`-L target/<profile> -lksymrelo`)
//! then looks for `libksymrelo.so.0`, which cargo does not make: the C tests
//! link it beside the library themselves.

const SONAME: &str = "libksymrelo.so.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
}
