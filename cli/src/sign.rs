//! Signatures of loader programs, as the kernel checks them (Linux 6.18):
//! `BPF_PROG_LOAD` with `signature`, `signature_size` and `keyring_id`
//! verifies a PKCS#7 (CMS) signature over exactly the instruction bytes it
//! is given, with a key from that keyring.
//!
//! The signature is what `bpftool gen skeleton -S` and the kernel's
//! `scripts/sign-file` make: a DER `SignedData`, detached (the instructions
//! are not inside), binary (no MIME canonicalisation), SHA-256, without
//! certificates and without signed attributes, the signer named by the
//! certificate's subject key identifier when it has one (else by issuer
//! and serial number; the kernel finds the key either way). It is made by
//! the system's OpenSSL, the library both of those tools use.
//!
//! Keys are RSA (PKCS#1 v1.5 signatures) or ECDSA on P-256, P-384 or P-521:
//! the kernel's PKCS#7 parser takes `rsaEncryption` and `ecdsa-with-SHA*`
//! signatures, and its ECDSA only those NIST curves (P-192 too, refused
//! here as too weak). The key file must be private to its owner: the
//! checks are [`SigningKey::from_files`]'s. Nothing here writes a key
//! anywhere; the bytes read from the key file are zeroed once parsed.
//!
//! ```no_run
//! use std::path::Path;
//! let key = ksymrelo_cli::sign::SigningKey::from_files(Path::new("key.pem"), Path::new("cert.pem"))?;
//! let insns: &[u8] = &[0x95, 0, 0, 0, 0, 0, 0, 0]; // exit
//! let signature = key.sign(insns)?; // for BPF_PROG_LOAD's `signature`
//! # Ok::<(), ksymrelo_std::Error>(())
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

use ksymrelo_std::{Error, Result};

/// Larger key or certificate files are refused unread (a PEM RSA-16384
/// key is about 12 KiB).
const FILE_MAX: u64 = 1 << 20;

/// The DER of the SHA-256 OID (2.16.840.1.101.3.4.2.1), tag and length
/// included: the digest algorithm a signature must name.
const SHA256_OID: &[u8] = &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// A private key and its certificate, checked to belong together and to be
/// a kind the kernel verifies; makes the signatures `BPF_PROG_LOAD` takes.
pub struct SigningKey {
    key: PKey<Private>,
    cert: X509,
    algorithm: KeyAlgorithm,
}

/// The kind of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA, signing with PKCS#1 v1.5 padding.
    Rsa {
        /// The modulus size.
        bits: u32,
    },
    /// ECDSA on a NIST curve.
    Ecdsa(Curve),
}

/// The elliptic curves of the kernel's ECDSA that a key may be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (prime256v1, secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1); the kernel verifies it since Linux 6.10.
    P521,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyAlgorithm::Ecdsa(Curve::P256) => f.write_str("ECDSA P-256"),
            KeyAlgorithm::Ecdsa(Curve::P384) => f.write_str("ECDSA P-384"),
            KeyAlgorithm::Ecdsa(Curve::P521) => f.write_str("ECDSA P-521"),
        }
    }
}

impl fmt::Debug for SigningKey {
    /// The algorithm and the certificate's subject; never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("subject", &format!("{:?}", self.cert.subject_name()))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a private key (PEM or DER: PKCS#8, or the traditional RSA or
    /// EC form; not encrypted) and its X.509 certificate (PEM or DER). One
    /// PEM file may hold both, as the kernel's `certs/signing_key.pem`.
    ///
    /// The key file must be a regular file, not a symbolic link, with no
    /// permission for group or others (`chmod 600`), owned by the
    /// effective user, or by anyone when that user is root (root reads
    /// every file anyway, and `sudo` with one's own key is the common
    /// case). The certificate is public and not checked so.
    ///
    /// Fails with [`Error::Signing`] naming the file when either cannot be
    /// read or parsed, the key is of a kind the kernel does not verify, or
    /// the certificate's public key is not the key's.
    pub fn from_files(key: &Path, cert: &Path) -> Result<SigningKey> {
        let certificate = read_cert(cert)?;
        let private = read_key(key)?;
        let algorithm = key_algorithm(&private).map_err(|reason| signing_error(KEY, Some(key), reason))?;
        let public = certificate
            .public_key()
            .map_err(|e| signing_error(CERT, Some(cert), format!("its public key cannot be read: {e}")))?;
        if !public.public_eq(&private) {
            return Err(signing_error(
                KEY,
                Some(key),
                format!("is not the key of the certificate {}", cert.display()),
            ));
        }
        Ok(SigningKey {
            key: private,
            cert: certificate,
            algorithm,
        })
    }

    /// The DER PKCS#7 signature of `data` (for a loader: its instructions,
    /// exactly as given to `BPF_PROG_LOAD`). RSA signatures are the same
    /// for the same data; ECDSA ones differ each time, all valid.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        // bpftool's flags (CMS_NOCERTS, CMS_BINARY, CMS_DETACHED,
        // CMS_NOSMIMECAP, CMS_USE_KEYID, CMS_NOATTR), given to CMS_sign,
        // which adds the signer and finishes in one step. CMS_USE_KEYID
        // needs a subject key identifier in the certificate.
        let mut flags = CMSOptions::CMS_NOCERTS
            | CMSOptions::BINARY
            | CMSOptions::DETACHED
            | CMSOptions::NOSMIMECAP
            | CMSOptions::NOATTR;
        if self.cert.subject_key_id().is_some() {
            flags |= CMSOptions::USE_KEYID;
        }
        let der = CmsContentInfo::sign(Some(&self.cert), Some(&self.key), None, Some(data), flags)
            .and_then(|cms| cms.to_der())
            .map_err(|e| signing_error(SIGNING, None, format!("OpenSSL failed: {}", openssl_message(&e))))?;
        // CMS_sign takes the key's default digest, SHA-256 for RSA and EC
        // keys since OpenSSL 1.1; a different one would be refused by the
        // kernel only at load time, so it is caught here. (The OID cannot
        // turn up by chance in the signature bytes: 2^-88.)
        if !der.windows(SHA256_OID.len()).any(|w| w == SHA256_OID) {
            return Err(signing_error(
                SIGNING,
                None,
                format!(
                    "OpenSSL ({}) chose a digest other than SHA-256 for a {} key",
                    openssl::version::version(),
                    self.algorithm
                ),
            ));
        }
        Ok(der)
    }

    /// The kind of the key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The certificate as DER: what `add_key("asymmetric", ...)` takes to
    /// put it in a keyring the kernel then verifies with.
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        self.cert
            .to_der()
            .map_err(|e| signing_error(CERT, None, format!("cannot be encoded: {e}")))
    }
}

const KEY: &str = "signing key";
const CERT: &str = "certificate";
const SIGNING: &str = "signing";

fn signing_error(what: &'static str, path: Option<&Path>, reason: impl Into<String>) -> Error {
    Error::Signing {
        what,
        path: path.map(Path::to_path_buf),
        reason: reason.into(),
    }
}

/// OpenSSL's errors on one line, or a word when it left none.
fn openssl_message(e: &ErrorStack) -> String {
    if e.errors().is_empty() {
        "no reason given".into()
    } else {
        e.to_string()
    }
}

/// Whether `bytes` look like PEM (else DER is tried).
fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

fn read_cert(path: &Path) -> Result<X509> {
    let fail = |reason: String| signing_error(CERT, Some(path), reason);
    let file = File::open(path).map_err(|e| fail(format!("cannot be opened: {e}")))?;
    let mut bytes = Vec::new();
    file.take(FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(fail(format!("is larger than {FILE_MAX} bytes: not a certificate")));
    }
    let parsed = if is_pem(&bytes) {
        X509::from_pem(&bytes)
    } else {
        X509::from_der(&bytes)
    };
    parsed.map_err(|e| {
        fail(format!(
            "is not an X.509 certificate in PEM or DER: {}",
            openssl_message(&e)
        ))
    })
}

fn read_key(path: &Path) -> Result<PKey<Private>> {
    let fail = |reason: String| signing_error(KEY, Some(path), reason);
    // O_NOFOLLOW: a symbolic link is refused, not followed to wherever it
    // points now; O_NONBLOCK: a FIFO cannot hang the open (no effect on a
    // regular file). The checks are then on the opened file itself.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                fail("is a symbolic link: give the key file itself (a link can be pointed elsewhere)".into())
            }
            _ => fail(format!("cannot be opened: {e}")),
        })?;
    let meta = file.metadata().map_err(|e| fail(format!("cannot be examined: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(fail("is not a regular file".into()));
    }
    if meta.len() > FILE_MAX {
        return Err(fail(format!("is larger than {FILE_MAX} bytes: not a key")));
    }
    let euid = effective_uid().map_err(fail)?;
    if let Some(problem) = key_file_problem(path, meta.mode(), meta.uid(), euid) {
        return Err(fail(problem));
    }
    // Room for all of it and one byte more, so that reading does not grow
    // (and so copy) the buffer; zeroed when dropped, capacity included.
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    parse_key(&bytes).map_err(fail)
}

/// What makes a key file with this mode and owner unfit for `euid`, if
/// anything.
fn key_file_problem(path: &Path, mode: u32, owner: u32, euid: u32) -> Option<String> {
    if mode & 0o077 != 0 {
        return Some(format!(
            "mode {:04o} lets group or others at it: allow only its owner (`chmod 600 {}`)",
            mode & 0o7777,
            path.display()
        ));
    }
    if owner != euid && euid != 0 {
        return Some(format!(
            "is owned by uid {owner}, not by this user (uid {euid}): use a key file of your own"
        ));
    }
    None
}

/// The effective user id, from `/proc/self/status` (its `Uid:` line reads
/// real, effective, saved, filesystem).
fn effective_uid() -> std::result::Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("its owner cannot be checked: /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| "its owner cannot be checked: no effective uid in /proc/self/status".into())
}

fn parse_key(bytes: &[u8]) -> std::result::Result<PKey<Private>, String> {
    if !is_pem(bytes) {
        return PKey::private_key_from_der(bytes).map_err(|e| {
            format!(
                "is not a private key in PEM or DER (an encrypted DER key is not read: \
                 decrypt it with `openssl pkey`): {}",
                openssl_message(&e)
            )
        });
    }
    // OpenSSL asks for a passphrase only for an encrypted key; none is
    // given (no prompt from a build tool), and the question tells us why
    // it failed.
    let mut encrypted = false;
    let parsed = PKey::private_key_from_pem_callback(bytes, |_| {
        encrypted = true;
        Err(ErrorStack::get())
    });
    parsed.map_err(|e| {
        if encrypted {
            "is encrypted, and ksymrelo asks for no passphrase: give it decrypted \
             (`openssl pkey -in KEY -out PLAIN`, then `chmod 600 PLAIN`)"
                .into()
        } else {
            format!("is not a private key in PEM or DER: {}", openssl_message(&e))
        }
    })
}

/// The key's [`KeyAlgorithm`], or why the kernel would not verify it.
fn key_algorithm(key: &PKey<Private>) -> std::result::Result<KeyAlgorithm, String> {
    const KINDS: &str = "the kernel verifies PKCS#7 signatures of RSA keys and of ECDSA keys on P-256, P-384 or P-521";
    match key.id() {
        Id::RSA => Ok(KeyAlgorithm::Rsa { bits: key.bits() }),
        Id::EC => {
            let curve = key
                .ec_key()
                .map_err(|e| format!("is an EC key that cannot be read: {e}"))?
                .group()
                .curve_name();
            match curve {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyAlgorithm::Ecdsa(Curve::P256)),
                Some(Nid::SECP384R1) => Ok(KeyAlgorithm::Ecdsa(Curve::P384)),
                Some(Nid::SECP521R1) => Ok(KeyAlgorithm::Ecdsa(Curve::P521)),
                Some(nid) => Err(format!(
                    "is an EC key on curve {}: {KINDS}",
                    nid.short_name().unwrap_or("(unnamed)")
                )),
                None => Err(format!("is an EC key on explicit curve parameters: {KINDS}")),
            }
        }
        Id::RSA_PSS => Err(format!(
            "is an RSA-PSS key (its use restricted to PSS signatures): {KINDS}, \
             signed with PKCS#1 v1.5 padding (an `rsaEncryption` key)"
        )),
        other => Err(format!(
            "is a{} key: {KINDS}",
            Nid::from_raw(other.as_raw())
                .short_name()
                .map_or(" non-RSA, non-EC".to_owned(), |n| format!(" {n}"))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_open_to_others_are_refused_with_mode_and_fix() {
        let p = Path::new("/k/key.pem");
        let msg = key_file_problem(p, 0o100644, 1000, 1000).unwrap();
        assert!(
            msg.contains("mode 0644") && msg.contains("chmod 600 /k/key.pem"),
            "{msg}"
        );
        assert!(key_file_problem(p, 0o100600, 1000, 1000).is_none());
        assert!(key_file_problem(p, 0o100400, 1000, 1000).is_none());
        for mode in [0o100640, 0o100620, 0o100610, 0o100604, 0o100602, 0o100601] {
            assert!(key_file_problem(p, mode, 1000, 1000).is_some(), "{mode:o}");
        }
        // Even root takes no key others can read: it may be known already.
        assert!(key_file_problem(p, 0o100640, 1000, 0).is_some());
    }

    #[test]
    fn key_files_of_another_user_are_refused_except_to_root() {
        let p = Path::new("/k/key.pem");
        let msg = key_file_problem(p, 0o100600, 1001, 1000).unwrap();
        assert!(msg.contains("uid 1001") && msg.contains("uid 1000"), "{msg}");
        assert!(key_file_problem(p, 0o100600, 1001, 0).is_none());
    }

    #[test]
    fn pem_is_told_from_der() {
        assert!(is_pem(b"junk\n-----BEGIN PRIVATE KEY-----\n"));
        assert!(!is_pem(&[0x30, 0x82, 0x01, 0x00]));
    }

    #[test]
    fn garbage_keys_say_what_they_are_not() {
        let msg = parse_key(b"not a key").unwrap_err();
        assert!(msg.starts_with("is not a private key in PEM or DER"), "{msg}");
        let msg = parse_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(msg.starts_with("is not a private key in PEM or DER"), "{msg}");
    }
}
