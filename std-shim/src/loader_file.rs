//! The file `ksymrelo gen OBJECT -o FILE` writes and `ksymrelo run FILE`
//! reads: a generated loader with everything its runner needs — the
//! loader, its blob, the names of what it creates, and the object itself,
//! which the loader never reads but the runner checks the extern types of
//! against the kernel's BTF before running it (the loader cannot compare
//! types). Written once on a build machine, run later on a target.
//!
//! All numbers little endian. A header of [`HEADER_SIZE`] bytes, then the
//! parts back to back, each 8-aligned:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `KSYMRELO` |
//! | 8 | 4 | format version ([`VERSION`]) |
//! | 12 | 4 | header size (64) |
//! | 16 | 8 | FNV-1a 64 of every other byte of the file (this field left out) |
//! | 24 | 4 | loader instructions (count) |
//! | 28 | 4 | blob bytes |
//! | 32 | 4 | loader context bytes |
//! | 36 | 4 | maps |
//! | 40 | 4 | programs |
//! | 44 | 4 | flags: 1 sealed, 2 signed (signed implies sealed) |
//! | 48 | 4 | string table bytes |
//! | 52 | 4 | object bytes |
//! | 56 | 4 | signature bytes (0 unless signed) |
//! | 60 | 4 | zero |
//!
//! Parts: the loader (`struct bpf_insn`s); the blob (the value of the
//! loader's map 0); maps (`u32` name, `u32` map type); programs (`u32`
//! name, `u32` section name, `u32` program type, `u32` blob offset of its
//! instructions, `u32` instruction count); the string table (names are
//! offsets into it, NUL-terminated); the BPF object the loader was
//! generated from; if sealed, the SHA-256 of the loader as generated (32
//! bytes, the blob map's `excl_prog_hash`); if signed, the DER PKCS#7
//! signature of the loader's instructions.
//!
//! Any flipped byte fails the checksum; any inconsistent length or offset
//! is an error naming it. Nothing in a file is trusted before both checks.
//! The checksum finds accidents, not intent: what binds a sealed loader
//! to its data (and, signed, to its signer) is checked by the kernel and
//! by the loader itself when it runs ([`crate::skel::Seal`]).

use crate::error::{Error, Result};
use crate::skel::Seal;
use ksymrelo_core::insn::Insn;

/// The first 8 bytes.
pub const MAGIC: &[u8; 8] = b"KSYMRELO";
/// The format this module writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the first part.
pub const HEADER_SIZE: usize = 64;
/// Flag: the loader is sealed to its blob.
const SEALED: u32 = 1;
/// Flag: and signed.
const SIGNED: u32 = 2;

/// A map the loader creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Its name as created (libbpf's name).
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
}

/// A program the loader loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgEntry {
    /// The program's (function's) name.
    pub name: String,
    /// Its ELF section.
    pub section: String,
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Where its instructions are in the blob (read back after a run).
    pub blob_insns_off: u32,
    /// How many.
    pub insn_cnt: u32,
}

/// A generated loader and what its runner needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoaderFile {
    /// The loader program (`BPF_PROG_TYPE_SYSCALL`).
    pub loader: Vec<Insn>,
    /// The data blob: the value of the loader's map 0.
    pub blob: Vec<u8>,
    /// Size of the context the loader runs over.
    pub ctx_size: u32,
    /// Maps, in load order (map index order).
    pub maps: Vec<MapEntry>,
    /// Programs, in load order.
    pub progs: Vec<ProgEntry>,
    /// The BPF object the loader was generated from.
    pub object: Vec<u8>,
    /// A sealed loader's seal (and signature).
    pub seal: Option<Seal>,
}

/// FNV-1a, 64 bits, over a file's bytes but its checksum field: any one
/// changed byte changes it (each step is a bijection of the state for a
/// given input byte).
fn checksum(file: &[u8]) -> u64 {
    let covered = file[..16].iter().chain(&file[24..]);
    covered.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pad8(out: &mut Vec<u8>) {
    while out.len() % 8 != 0 {
        out.push(0);
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn count(what: &'static str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| bad(format!("too many {what} ({n})")))
}

fn bad(problem: String) -> Error {
    Error::LoaderFile { problem }
}

impl LoaderFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut strings = vec![0u8];
        let mut intern = |s: &str| -> Result<u32> {
            let off = count("string bytes", strings.len())?;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            Ok(off)
        };
        let mut maps = Vec::new();
        for m in &self.maps {
            put_u32(&mut maps, intern(&m.name)?);
            put_u32(&mut maps, m.map_type);
        }
        let mut progs = Vec::new();
        for p in &self.progs {
            put_u32(&mut progs, intern(&p.name)?);
            put_u32(&mut progs, intern(&p.section)?);
            put_u32(&mut progs, p.prog_type);
            put_u32(&mut progs, p.blob_insns_off);
            put_u32(&mut progs, p.insn_cnt);
        }
        let mut body = Vec::new();
        body.extend_from_slice(ksymrelo_core::insn::as_bytes(&self.loader));
        pad8(&mut body);
        body.extend_from_slice(&self.blob);
        pad8(&mut body);
        let (flags, loader_sha256, signature): (u32, &[u8], &[u8]) = match &self.seal {
            None => (0, &[], &[]),
            Some(Seal {
                loader_sha256,
                signature: None,
            }) => (SEALED, loader_sha256, &[]),
            Some(Seal {
                loader_sha256,
                signature: Some(sig),
            }) => (SEALED | SIGNED, loader_sha256, sig),
        };
        for part in [&maps[..], &progs, &strings, &self.object, loader_sha256, signature] {
            body.extend_from_slice(part);
            pad8(&mut body);
        }
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, HEADER_SIZE as u32);
        out.extend_from_slice(&[0; 8]);
        for n in [
            count("loader instructions", self.loader.len())?,
            count("blob bytes", self.blob.len())?,
            self.ctx_size,
            count("maps", self.maps.len())?,
            count("programs", self.progs.len())?,
            flags,
            count("string bytes", strings.len())?,
            count("object bytes", self.object.len())?,
            count("signature bytes", signature.len())?,
        ] {
            put_u32(&mut out, n);
        }
        out.resize(HEADER_SIZE, 0);
        out.extend_from_slice(&body);
        let sum = checksum(&out);
        out[16..24].copy_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// Reads a file's bytes: every length, offset and name checked, the
    /// checksum first.
    pub fn from_bytes(data: &[u8]) -> Result<LoaderFile> {
        let header = data.get(..HEADER_SIZE).ok_or_else(|| {
            bad(format!(
                "{} bytes: shorter than the {HEADER_SIZE}-byte header",
                data.len()
            ))
        })?;
        if &header[..8] != MAGIC {
            return Err(bad("not a ksymrelo loader file (no KSYMRELO magic)".into()));
        }
        let u32_at = |off: usize| u32::from_le_bytes(header[off..off + 4].try_into().expect("4 bytes"));
        if u32_at(8) != VERSION {
            return Err(bad(format!(
                "format version {} (this ksymrelo reads {VERSION})",
                u32_at(8)
            )));
        }
        if u32_at(12) as usize != HEADER_SIZE || header[60..].iter().any(|b| *b != 0) {
            return Err(bad("malformed header".into()));
        }
        let body = &data[HEADER_SIZE..];
        let sum = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        if checksum(data) != sum {
            return Err(bad("checksum mismatch: the file was altered or truncated".into()));
        }
        let [insn_cnt, blob_len, ctx_size, map_cnt, prog_cnt, flags, str_len, object_len, sig_len] =
            core::array::from_fn(|i| u32_at(24 + 4 * i) as usize);
        let flags = flags as u32;
        let sealed = flags & SEALED != 0;
        let signed = flags & SIGNED != 0;
        if flags & !(SEALED | SIGNED) != 0 || (signed && !sealed) || (sig_len != 0) != signed {
            return Err(bad(format!(
                "flags {flags:#x} with {sig_len} signature bytes: not a sealed, signed or plain loader"
            )));
        }
        let mut at = 0usize;
        let mut take = |what: &str, len: Option<usize>| -> Result<&[u8]> {
            let len = len.ok_or_else(|| bad(format!("{what}: size overflows")))?;
            let part = at.checked_add(len).and_then(|end| body.get(at..end)).ok_or_else(|| {
                bad(format!(
                    "{what}: {len} bytes at {} past the file's end",
                    HEADER_SIZE + at
                ))
            })?;
            at += len.next_multiple_of(8);
            Ok(part)
        };
        let loader_bytes = take("loader", insn_cnt.checked_mul(8))?;
        let blob = take("blob", Some(blob_len))?.to_vec();
        let maps = take("maps", map_cnt.checked_mul(8))?;
        let progs = take("programs", prog_cnt.checked_mul(20))?;
        let strings = take("strings", Some(str_len))?;
        let object = take("object", Some(object_len))?.to_vec();
        let loader_sha256 = take("seal", Some(if sealed { 32 } else { 0 }))?;
        let signature = take("signature", Some(sig_len))?;
        let seal = sealed.then(|| Seal {
            loader_sha256: loader_sha256.try_into().expect("32 bytes"),
            signature: signed.then(|| signature.to_vec()),
        });
        if at < body.len() {
            return Err(bad(format!("{} bytes after the last part", body.len() - at)));
        }
        let name = |off: &[u8]| -> Result<String> {
            let off = u32::from_le_bytes(off.try_into().expect("4 bytes")) as usize;
            let tail = strings
                .get(off..)
                .ok_or_else(|| bad(format!("name offset {off} past the string table")))?;
            let end = tail
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad(format!("name at {off} is not NUL-terminated")))?;
            String::from_utf8(tail[..end].to_vec()).map_err(|_| bad(format!("name at {off} is not UTF-8")))
        };
        let word = |rec: &[u8], i: usize| u32::from_le_bytes(rec[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        let loader = ksymrelo_core::insn::insns(loader_bytes)?.to_vec();
        let maps = maps
            .chunks_exact(8)
            .map(|r| {
                Ok(MapEntry {
                    name: name(&r[..4])?,
                    map_type: word(r, 1),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let progs = progs
            .chunks_exact(20)
            .map(|r| {
                let p = ProgEntry {
                    name: name(&r[..4])?,
                    section: name(&r[4..8])?,
                    prog_type: word(r, 2),
                    blob_insns_off: word(r, 3),
                    insn_cnt: word(r, 4),
                };
                let end = u64::from(p.blob_insns_off) + u64::from(p.insn_cnt) * 8;
                if end > blob.len() as u64 || p.blob_insns_off % 8 != 0 {
                    return Err(bad(format!("program '{}': instructions outside the blob", p.name)));
                }
                Ok(p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LoaderFile {
            loader,
            blob,
            ctx_size: ctx_size as u32,
            maps,
            progs,
            object,
            seal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoaderFile {
        LoaderFile {
            loader: vec![Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)],
            blob: (0..40u8).collect(),
            ctx_size: 48,
            maps: vec![MapEntry {
                name: "obj.bss".into(),
                map_type: 2,
            }],
            progs: vec![ProgEntry {
                name: "prog".into(),
                section: "syscall".into(),
                prog_type: 31,
                blob_insns_off: 16,
                insn_cnt: 3,
            }],
            object: b"\x7fELF".to_vec(),
            seal: None,
        }
    }

    fn sealed(signature: Option<Vec<u8>>) -> LoaderFile {
        LoaderFile {
            seal: Some(Seal {
                loader_sha256: core::array::from_fn(|i| i as u8 + 1),
                signature,
            }),
            ..sample()
        }
    }

    #[test]
    fn round_trip() {
        let f = sample();
        assert_eq!(LoaderFile::from_bytes(&f.to_bytes().unwrap()).unwrap(), f);
        let empty = LoaderFile::default();
        assert_eq!(LoaderFile::from_bytes(&empty.to_bytes().unwrap()).unwrap(), empty);
    }

    #[test]
    fn sealed_and_signed_round_trip() {
        for f in [sealed(None), sealed(Some(vec![0x30, 0x82, 1, 2, 3]))] {
            assert_eq!(LoaderFile::from_bytes(&f.to_bytes().unwrap()).unwrap(), f);
        }
    }

    #[test]
    fn flags_that_do_not_fit_are_refused() {
        // Signed but not sealed; an unknown flag; a signature length
        // without the signed flag: each with a valid checksum.
        for (flags, sig_len) in [(SIGNED, 5), (4, 0), (SEALED, 5), (SEALED | SIGNED, 0)] {
            let mut bytes = sealed(Some(vec![1, 2, 3, 4, 5])).to_bytes().unwrap();
            bytes[44..48].copy_from_slice(&flags.to_le_bytes());
            bytes[56..60].copy_from_slice(&(sig_len as u32).to_le_bytes());
            let sum = checksum(&bytes);
            bytes[16..24].copy_from_slice(&sum.to_le_bytes());
            let err = LoaderFile::from_bytes(&bytes).unwrap_err().to_string();
            assert!(
                err.contains("flags") || err.contains("past") || err.contains("after"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        for f in [sample(), sealed(Some(vec![9; 11]))] {
            every_flip_refused(&f);
        }
    }

    fn every_flip_refused(f: &LoaderFile) {
        let bytes = f.to_bytes().unwrap();
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                assert!(LoaderFile::from_bytes(&b).is_err(), "byte {i} ^ {bit:#x} accepted");
            }
        }
        for len in 0..bytes.len() {
            assert!(
                LoaderFile::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(LoaderFile::from_bytes(&longer).is_err());
    }

    #[test]
    fn consistent_lies_are_refused_too() {
        // A header that passes the checksum but whose counts point past the
        // end, or a program outside the blob.
        let mut f = sample();
        f.progs[0].blob_insns_off = 40;
        let err = LoaderFile::from_bytes(&f.to_bytes().unwrap()).unwrap_err().to_string();
        assert!(err.contains("program 'prog': instructions outside the blob"), "{err}");
        let mut bytes = sample().to_bytes().unwrap();
        bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        let sum = checksum(&bytes);
        bytes[16..24].copy_from_slice(&sum.to_le_bytes());
        let err = LoaderFile::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("blob") && err.contains("past the file's end"), "{err}");
    }
}
