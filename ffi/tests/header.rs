//! The checked-in header is what cbindgen generates from the sources now.
//! Regenerate with `KSYMRELO_BLESS=1 cargo test -p ksymrelo-ffi`.

#[test]
fn header_is_current() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = format!("{dir}/include/ksymrelo.h");
    if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == generated,
        "ffi/include/ksymrelo.h is stale: run KSYMRELO_BLESS=1 cargo test -p ksymrelo-ffi"
    );
}
