//! Loader signatures (`sign::SigningKey`) checked by an independent
//! verifier, the `openssl` command: throwaway keys and self-signed
//! certificates are made in a temporary directory; each signature must
//! verify against its certificate, fail after a one-byte change of the
//! data, and have the form the kernel's PKCS#7 parser and bpftool use.
//! Without the `openssl` command the tests skip, loudly, and fail under
//! `KSYMRELO_REQUIRE_KERNEL=1` (CI installs it).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ksymrelo_cli::sign::{Curve, KeyAlgorithm, SigningKey};
use ksymrelo_std::Error;

/// A loader's instructions stand-in: 16 of them, `r0 = i` ... `exit`.
fn insns() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..15u8 {
        bytes.extend_from_slice(&[0xb7, 0, 0, 0, i, 0, 0, 0]);
    }
    bytes.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

/// A temporary directory, removed with everything in it when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory for `test`, or `None` (skipped) without `openssl`.
fn dir(test: &str) -> Option<Dir> {
    if let Err(e) = Command::new("openssl").arg("version").output() {
        assert!(
            !ksymrelo_test_skip::kernel_required(),
            "no `openssl` command ({e}) but KSYMRELO_REQUIRE_KERNEL=1: install Debian's `openssl`"
        );
        ksymrelo_test_skip::skip(format!("no `openssl` command ({e}) to make keys and verify signatures"));
        return None;
    }
    let d = std::env::temp_dir().join(format!("ksymrelo-sign-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    Some(Dir(d))
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        // No system or user configuration: the same certificates everywhere.
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .unwrap()
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A key (mode 0600) and its self-signed certificate, PEM, made by
/// `openssl req -newkey <newkey>`; with a subject key identifier (as the
/// kernel's own signing certificates) when `skid`.
fn pair(dir: &Dir, name: &str, newkey: &[&str], skid: bool) -> (PathBuf, PathBuf) {
    let key = dir.0.join(format!("{name}.key"));
    let cert = dir.0.join(format!("{name}.crt"));
    let subject = format!("/CN=ksymrelo test {name}");
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-config",
        "/dev/null",
        "-subj",
        &subject,
    ];
    args.extend_from_slice(&["-keyout", path(&key), "-out", path(&cert)]);
    args.push("-newkey");
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-addext", "keyUsage=digitalSignature"]);
    // req adds a subject key identifier to a certificate with extensions
    // unless told not to.
    let skid = if skid {
        "subjectKeyIdentifier=hash"
    } else {
        "subjectKeyIdentifier=none"
    };
    args.extend_from_slice(&["-addext", skid]);
    openssl_ok(&args);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    (key, cert)
}

const RSA: &[&str] = &["rsa:2048"];
const P256: &[&str] = &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
const P384: &[&str] = &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"];

/// Whether `openssl cms -verify` accepts `signature` of `data`. The
/// signature carries no certificate, so the signer's is given as an
/// untrusted one (`-certfile`) and, being self-signed, as the trust anchor
/// (`-CAfile`): the signature is checked against that certificate's key
/// and the certificate itself is verified, not skipped (`-noverify`).
/// `-purpose any`: a signing certificate need not be an S/MIME one.
fn verifies(dir: &Dir, signature: &[u8], data: &[u8], cert: &Path) -> bool {
    let sig = dir.0.join("signature.der");
    let content = dir.0.join("content.bin");
    fs::write(&sig, signature).unwrap();
    fs::write(&content, data).unwrap();
    #[rustfmt::skip]
    let out = openssl(&[
        "cms", "-verify", "-binary", "-inform", "DER", "-in", path(&sig), "-content", path(&content),
        "-certfile", path(cert), "-CAfile", path(cert), "-purpose", "any", "-out", "/dev/null",
    ]);
    out.status.success()
}

/// Signs, verifies, flips each of three bytes of the data and of the
/// signature's last byte: every change must be caught.
fn signs_and_verifies(dir: &Dir, key: &Path, cert: &Path) -> Vec<u8> {
    let signer = SigningKey::from_files(key, cert).unwrap();
    let data = insns();
    let signature = signer.sign(&data).unwrap();
    assert!(verifies(dir, &signature, &data, cert), "the signature does not verify");
    for at in [0, data.len() / 2, data.len() - 1] {
        let mut changed = data.clone();
        changed[at] ^= 1;
        assert!(
            !verifies(dir, &signature, &changed, cert),
            "verified after a change of byte {at} of the data"
        );
    }
    let mut forged = signature.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(!verifies(dir, &forged, &data, cert), "a changed signature verified");
    signature
}

/// The structure `openssl cms -cmsout -print` shows: what the kernel's
/// PKCS#7 parser and bpftool's signatures have.
fn assert_kernel_form(dir: &Dir, signature: &[u8], signature_algorithm: &str, by_keyid: bool) {
    let sig = dir.0.join("printed.der");
    fs::write(&sig, signature).unwrap();
    let printed = openssl_ok(&[
        "cms",
        "-cmsout",
        "-print",
        "-noout",
        "-inform",
        "DER",
        "-in",
        path(&sig),
    ]);
    let squeezed: String = printed.split_whitespace().collect::<Vec<_>>().join(" ");
    for fact in [
        // SignedData, detached: no content inside.
        "contentType: pkcs7-signedData (1.2.840.113549.1.7.2)",
        "eContentType: pkcs7-data (1.2.840.113549.1.7.1) eContent: <ABSENT>",
        // No certificates, no CRLs.
        "certificates: <ABSENT>",
        "crls: <ABSENT>",
        // SHA-256, and no signed attributes.
        "digestAlgorithms: algorithm: sha256 (2.16.840.1.101.3.4.2.1) parameter: <ABSENT> encapContentInfo:",
        "signedAttrs: <ABSENT>",
        "unsignedAttrs: <ABSENT>",
    ] {
        assert!(squeezed.contains(fact), "no '{fact}' in:\n{printed}");
    }
    // One signer, SHA-256.
    assert_eq!(squeezed.matches("digestAlgorithm:").count(), 1, "{printed}");
    assert!(
        squeezed.contains("digestAlgorithm: algorithm: sha256 (2.16.840.1.101.3.4.2.1)"),
        "{printed}"
    );
    assert!(
        squeezed.contains(&format!("signatureAlgorithm: algorithm: {signature_algorithm} (")),
        "not signed with {signature_algorithm}:\n{printed}"
    );
    // The signer: by key identifier (version 3) as bpftool does, or by
    // issuer and serial number (version 1) for a certificate without one.
    let signer = if by_keyid {
        "signerInfos: version: 3 d.subjectKeyIdentifier:"
    } else {
        "signerInfos: version: 1 d.issuerAndSerialNumber:"
    };
    assert!(squeezed.contains(signer), "no '{signer}' in:\n{printed}");
}

#[test]
fn rsa_signatures_verify_have_the_kernel_form_and_repeat() {
    let Some(dir) = dir("rsa") else { return };
    let (key, cert) = pair(&dir, "rsa", RSA, true);
    let signature = signs_and_verifies(&dir, &key, &cert);
    assert_kernel_form(&dir, &signature, "rsaEncryption", true);
    let signer = SigningKey::from_files(&key, &cert).unwrap();
    assert_eq!(signer.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
    // PKCS#1 v1.5 and no signing time: the same bytes each time.
    assert_eq!(signer.sign(&insns()).unwrap(), signature);
    // And the same bytes as OpenSSL's own command makes with bpftool's
    // flags (CMS_NOCERTS, CMS_NOATTR, CMS_NOSMIMECAP, CMS_USE_KEYID,
    // CMS_BINARY; detached, the command's default; SHA-256).
    let content = dir.0.join("insns.bin");
    let by_command = dir.0.join("by-command.der");
    fs::write(&content, insns()).unwrap();
    #[rustfmt::skip]
    openssl_ok(&[
        "cms", "-sign", "-binary", "-nocerts", "-noattr", "-nosmimecap", "-keyid", "-md", "sha256",
        "-in", path(&content), "-signer", path(&cert), "-inkey", path(&key), "-outform", "DER",
        "-out", path(&by_command),
    ]);
    assert_eq!(fs::read(&by_command).unwrap(), signature);
}

#[test]
fn ecdsa_signatures_verify_and_have_the_kernel_form() {
    let Some(dir) = dir("ecdsa") else { return };
    for (name, newkey, curve) in [("p256", P256, Curve::P256), ("p384", P384, Curve::P384)] {
        let (key, cert) = pair(&dir, name, newkey, true);
        let signature = signs_and_verifies(&dir, &key, &cert);
        assert_kernel_form(&dir, &signature, "ecdsa-with-SHA256", true);
        assert_eq!(
            SigningKey::from_files(&key, &cert).unwrap().algorithm(),
            KeyAlgorithm::Ecdsa(curve)
        );
    }
}

#[test]
fn certificates_without_key_identifier_name_issuer_and_serial() {
    let Some(dir) = dir("noskid") else { return };
    let (key, cert) = pair(&dir, "noskid", P256, false);
    let signature = signs_and_verifies(&dir, &key, &cert);
    assert_kernel_form(&dir, &signature, "ecdsa-with-SHA256", false);
}

#[test]
fn der_files_and_one_pem_file_with_both_are_read() {
    let Some(dir) = dir("der") else { return };
    let (key, cert) = pair(&dir, "pem", RSA, true);
    let key_der = dir.0.join("key.der");
    let cert_der = dir.0.join("cert.der");
    openssl_ok(&["pkey", "-in", path(&key), "-outform", "DER", "-out", path(&key_der)]);
    fs::set_permissions(&key_der, fs::Permissions::from_mode(0o600)).unwrap();
    openssl_ok(&["x509", "-in", path(&cert), "-outform", "DER", "-out", path(&cert_der)]);
    let from_pem = SigningKey::from_files(&key, &cert).unwrap().sign(&insns()).unwrap();
    let from_der = SigningKey::from_files(&key_der, &cert_der)
        .unwrap()
        .sign(&insns())
        .unwrap();
    assert_eq!(from_der, from_pem);
    // As the kernel's certs/signing_key.pem: certificate and key in one.
    let both = dir.0.join("both.pem");
    let mut text = fs::read(&cert).unwrap();
    text.extend(fs::read(&key).unwrap());
    fs::write(&both, text).unwrap();
    fs::set_permissions(&both, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        SigningKey::from_files(&both, &both).unwrap().sign(&insns()).unwrap(),
        from_pem
    );
}

fn signing_error(result: Result<SigningKey, Error>) -> (&'static str, Option<PathBuf>, String, String) {
    match result {
        Err(e @ Error::Signing { .. }) => {
            let message = e.to_string();
            let Error::Signing { what, path, reason } = e else {
                unreachable!()
            };
            (what, path, reason, message)
        }
        Err(e) => panic!("not a signing error: {e}"),
        Ok(k) => panic!("accepted: {k:?}"),
    }
}

#[test]
fn a_key_others_can_read_is_refused_with_its_path_mode_and_fix() {
    let Some(dir) = dir("mode") else { return };
    let (key, cert) = pair(&dir, "mode", P256, true);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (what, at, _, message) = signing_error(SigningKey::from_files(&key, &cert));
    assert_eq!((what, at.as_deref()), ("signing key", Some(key.as_path())));
    let expected = format!(
        "signing key {0}: mode 0644 lets group or others at it: allow only its owner (`chmod 600 {0}`)",
        key.display()
    );
    assert_eq!(message, expected);
    assert_eq!(
        Error::Signing {
            what,
            path: at,
            reason: String::new()
        }
        .reason(),
        ksymrelo_std::Reason::Usage
    );
}

#[test]
fn a_symlinked_key_is_refused() {
    let Some(dir) = dir("symlink") else { return };
    let (key, cert) = pair(&dir, "symlink", P256, true);
    let link = dir.0.join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let (_, at, reason, _) = signing_error(SigningKey::from_files(&link, &cert));
    assert_eq!(at.as_deref(), Some(link.as_path()));
    assert!(reason.starts_with("is a symbolic link"), "{reason}");
}

#[test]
fn a_key_not_of_the_certificate_is_refused() {
    let Some(dir) = dir("mismatch") else { return };
    let (rsa_key, _) = pair(&dir, "rsa", RSA, true);
    let (ec_key, ec_cert) = pair(&dir, "ec", P256, true);
    let (other_ec_key, _) = pair(&dir, "ec2", P256, true);
    for key in [&rsa_key, &other_ec_key] {
        let (what, at, reason, _) = signing_error(SigningKey::from_files(key, &ec_cert));
        assert_eq!((what, at.as_deref()), ("signing key", Some(key.as_path())));
        assert_eq!(
            reason,
            format!("is not the key of the certificate {}", ec_cert.display())
        );
    }
    assert!(SigningKey::from_files(&ec_key, &ec_cert).is_ok());
}

#[test]
fn keys_the_kernel_does_not_verify_are_refused() {
    let Some(dir) = dir("kinds") else { return };
    let (key, cert) = pair(&dir, "ed25519", &["ed25519"], true);
    let (_, _, reason, _) = signing_error(SigningKey::from_files(&key, &cert));
    assert_eq!(
        reason,
        "is a ED25519 key: the kernel verifies PKCS#7 signatures of RSA keys and of ECDSA keys on \
         P-256, P-384 or P-521"
    );
    let (key, cert) = pair(&dir, "k256", &["ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"], true);
    let (_, _, reason, _) = signing_error(SigningKey::from_files(&key, &cert));
    assert!(reason.starts_with("is an EC key on curve secp256k1: "), "{reason}");
}

#[test]
fn unreadable_encrypted_or_garbage_files_are_named() {
    let Some(dir) = dir("files") else { return };
    let (key, cert) = pair(&dir, "files", P256, true);
    let missing = dir.0.join("missing.pem");
    let (what, at, reason, _) = signing_error(SigningKey::from_files(&key, &missing));
    assert_eq!((what, at.as_deref()), ("certificate", Some(missing.as_path())));
    assert!(reason.starts_with("cannot be opened: No such file"), "{reason}");
    let (what, _, reason, _) = signing_error(SigningKey::from_files(&missing, &cert));
    assert_eq!(what, "signing key");
    assert!(reason.starts_with("cannot be opened: No such file"), "{reason}");

    let (_, _, reason, _) = signing_error(SigningKey::from_files(&key, &key));
    assert!(
        reason.starts_with("is not an X.509 certificate in PEM or DER"),
        "{reason}"
    );
    let (_, _, reason, _) = signing_error(SigningKey::from_files(&cert, &cert));
    assert!(reason.starts_with("mode 0644"), "{reason}");

    let encrypted = dir.0.join("encrypted.key");
    #[rustfmt::skip]
    openssl_ok(&["pkey", "-in", path(&key), "-aes256", "-passout", "pass:secret", "-out", path(&encrypted)]);
    fs::set_permissions(&encrypted, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, _, reason, _) = signing_error(SigningKey::from_files(&encrypted, &cert));
    assert!(
        reason.starts_with("is encrypted, and ksymrelo asks for no passphrase"),
        "{reason}"
    );
}

/// `ksymrelo gen --sign KEY --cert CERT -o FILE`: the file's loader is
/// sealed and signed; the signature verifies over its instructions with
/// `openssl cms -verify` and fails after a one-byte change of them;
/// `ksymrelo run FILE` loads it with the signature, and a kernel that
/// cannot check signatures is told as such (exit 4). A key others may read
/// is refused (exit 2); `--sign` wants `--cert`.
#[test]
fn gen_signs_loaders_the_kernel_checks() {
    use ksymrelo_std::loader_file::LoaderFile;
    let Some(dir) = dir("gen") else {
        return;
    };
    let (key, cert) = pair(&dir, "gen", RSA, true);
    let object = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mixed.bpf.o");
    let file = dir.0.join("mixed.ksl");
    let ksymrelo = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ksymrelo"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = ksymrelo(&[
        "gen",
        path(&object),
        "--sign",
        path(&key),
        "--cert",
        path(&cert),
        "-o",
        path(&file),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = LoaderFile::from_bytes(&fs::read(&file).unwrap()).unwrap();
    let seal = loaded.seal.as_ref().expect("a signed loader is sealed");
    let signature = seal.signature.as_deref().expect("and signed");
    let insns = ksymrelo_core::insn::as_bytes(&loaded.loader);
    assert!(verifies(&dir, signature, insns, &cert), "the loader's signature");
    for at in [0, insns.len() / 2, insns.len() - 1] {
        let mut changed = insns.to_vec();
        changed[at] ^= 1;
        assert!(!verifies(&dir, signature, &changed, &cert), "loader byte {at} changed");
    }

    if ksymrelo_std::load::bpf_available().is_ok() {
        let out = ksymrelo(&["run", path(&file), "--keyring-id", "-4"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a self-signed key in no keyring: {stderr}");
        assert!(
            stderr.contains("CONFIG_SYSTEM_DATA_VERIFICATION")
                || stderr.contains("no exclusive maps")
                || stderr.contains("signed loader:"),
            "{stderr}"
        );
    }

    let loose = dir.0.join("loose.key");
    fs::copy(&key, &loose).unwrap();
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
    let out = ksymrelo(&[
        "gen",
        path(&object),
        "--sign",
        path(&loose),
        "--cert",
        path(&cert),
        "-o",
        "/dev/null",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    let out = ksymrelo(&["gen", path(&object), "--sign", path(&key), "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert"));
}
