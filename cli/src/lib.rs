//! The `ksymrelo` command's crate: the command itself (`src/main.rs`)
//! and what only it needs beyond `ksymrelo-std` — signing loaders with the
//! system's OpenSSL ([`sign`]). Kept out of `ksymrelo-std` so that no
//! build of the library, and so no `libksymrelo`, ever links OpenSSL
//! (cargo unifies a package's features across one build: a feature of
//! `ksymrelo-std` that the command turned on would reach the C library
//! built beside it).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod sign;

use ksymrelo_std::loader_file::LoaderFile;
use ksymrelo_std::{Error, Result};

/// Signs a sealed loader: a detached PKCS#7 signature of its instructions
/// with `key`, which the kernel checks at `BPF_PROG_LOAD` (Linux 6.18)
/// against the keyring the runner names. Only a sealed loader: signing
/// the instructions binds nothing of the data unless the data is sealed
/// to them.
pub fn sign_loader(file: &mut LoaderFile, key: &sign::SigningKey) -> Result<()> {
    let Some(seal) = file.seal.as_mut() else {
        return Err(Error::Usage(
            "only a sealed loader can be signed (the signature covers the loader, the seal binds its data)".into(),
        ));
    };
    seal.signature = Some(key.sign(ksymrelo_core::insn::as_bytes(&file.loader))?);
    Ok(())
}
