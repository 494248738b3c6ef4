//! The vmlinux BTF facts file: what a walk over `/sys/kernel/btf/vmlinux`
//! learns (the type-offset table, the first id of every `FUNC` and `VAR`
//! name), kept for the boot so that a process answers its lookups with a
//! few small reads instead of walking 5.5 MB again. The format is core's
//! [`ksymrelo_core::btf::facts`]; this module reads and writes the file.
//!
//! vmlinux BTF cannot change within a boot: the file is keyed by the boot
//! id and the BTF's length and a hash of its ends ([`Key`]), and used for
//! nothing else. It lives beside the kallsyms record, under the same rules
//! of ownership and permissions ([`crate::run_dir`]); a file that is not
//! trusted, not current or not well formed is ignored (and, where this
//! process may write, replaced). Module BTFs are not kept: they are small,
//! and come and go.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ksymrelo_core::btf::facts::{self, Facts, Key, Probe};
use ksymrelo_core::btf::{Btf, Kind};

/// Where the `ksymrelo` command keeps the facts (the name carries the
/// format's version, as the kallsyms record's does).
pub const DEFAULT_PATH: &str = "/run/ksymrelo/vmlinux-btf-facts.1";

/// The facts of one vmlinux BTF: the checked front in memory, the sorted
/// entries in the file (read a block at a time) or in memory.
#[derive(Debug)]
pub struct BtfFacts {
    front: Vec<u8>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Memory(Vec<u8>),
    File { file: File, offset: u64 },
}

impl BtfFacts {
    /// The key of the BTF `btf` in this boot (`None` without a boot id).
    pub fn key(btf: &[u8]) -> Option<Key> {
        let boot = crate::run_dir::boot_id();
        if boot.is_empty() {
            return None;
        }
        Key::new(boot.as_bytes(), btf)
    }

    /// Loads the facts at `path` if the file is trusted, well formed and
    /// made for `key`: two reads (the header, then the front).
    pub fn load(path: &Path, key: &Key) -> Option<BtfFacts> {
        let file = crate::run_dir::open_trusted(path)?;
        let mut header = [0u8; facts::HEADER_LEN];
        file.read_exact_at(&mut header, 0).ok()?;
        let front_len = facts::front_len(&header).ok()?;
        let size = file.metadata().ok()?.len();
        if front_len as u64 > size {
            return None;
        }
        let mut front = vec![0u8; front_len];
        file.read_exact_at(&mut front, 0).ok()?;
        let parsed = Facts::parse(&front).ok()?;
        if parsed.key() != key || size != (front_len + parsed.body_len()) as u64 {
            return None;
        }
        Some(BtfFacts {
            front,
            body: Body::File {
                file,
                offset: front_len as u64,
            },
        })
    }

    /// The facts of `btf` (vmlinux, seen through [`Btf::reindexed`] over
    /// `index`, the table its validating parse filled) under `key`.
    pub fn build(btf: &Btf<'_>, index: &[u32], key: &Key) -> Option<BtfFacts> {
        let mut image = vec![0u8; facts::image_len(btf, index.len()).ok()?];
        facts::write(btf, index, key, &mut image).ok()?;
        Self::from_image(image)
    }

    /// Facts from a whole image (what [`BtfFacts::save`] writes); `None`
    /// for anything that is not one.
    pub fn from_image(mut image: Vec<u8>) -> Option<BtfFacts> {
        let front_len = facts::front_len(&image).ok()?;
        if front_len > image.len() {
            return None;
        }
        let body = image.split_off(front_len);
        if Facts::parse(&image).ok()?.body_len() != body.len() {
            return None;
        }
        Some(BtfFacts {
            front: image,
            body: Body::Memory(body),
        })
    }

    /// Writes the whole image to `path` ([`crate::run_dir`]'s way).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut image = self.front.clone();
        match &self.body {
            Body::Memory(b) => image.extend_from_slice(b),
            Body::File { file, offset } => {
                let mut body = vec![0u8; self.facts().body_len()];
                file.read_exact_at(&mut body, *offset)?;
                image.extend_from_slice(&body);
            }
        }
        crate::run_dir::save(path, &image)
    }

    fn facts(&self) -> Facts<'_> {
        Facts::parse_known(&self.front).expect("checked when loaded or built")
    }

    /// Which BTF and boot these facts describe.
    pub fn key_of(&self) -> Key {
        *self.facts().key()
    }

    /// The type-offset table, for [`Btf::reindexed`].
    pub fn index(&self) -> Vec<u32> {
        let f = self.facts();
        let mut index = vec![0u32; f.index_len()];
        f.index_into(&mut index).expect("sized from the facts");
        index
    }

    /// The BTF's own type count, for [`Btf::reindexed`].
    pub fn type_count(&self) -> u32 {
        self.facts().type_count()
    }

    /// Answers `wanted` (`FUNC`s and `VAR`s only) as
    /// [`Btf::find_own_batch`] would over `btf`, the BTF these facts
    /// describe; `true` when every name is answered. `false` (another kind
    /// asked, a block that does not check out, a read that fails) means:
    /// walk the BTF instead.
    pub fn lookup(&self, btf: &Btf<'_>, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> bool {
        self.try_lookup(btf, wanted, found).is_some()
    }

    fn try_lookup(&self, btf: &Btf<'_>, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> Option<()> {
        let f = self.facts();
        // Related names (bpf_iter_num_*) often share a block: read it once.
        let mut last: Option<(usize, Vec<u8>)> = None;
        for ((name, kind), slot) in wanted.iter().zip(found.iter_mut()) {
            if !matches!(kind, Kind::Func | Kind::Var) {
                return None;
            }
            *slot = match f.probe(btf, name, *kind).ok()? {
                Probe::Answer(a) => a,
                Probe::Read { block, range } => {
                    if last.as_ref().is_none_or(|(b, _)| *b != block) {
                        last = Some((block, self.read_body(range)?));
                    }
                    let bytes = last.as_ref().map_or(&[][..], |(_, b)| b);
                    f.find_in_block(btf, block, bytes, name, *kind).ok()?
                }
            };
        }
        Some(())
    }

    fn read_body(&self, range: std::ops::Range<usize>) -> Option<Vec<u8>> {
        match &self.body {
            Body::Memory(b) => b.get(range).map(<[u8]>::to_vec),
            Body::File { file, offset } => {
                let mut bytes = vec![0u8; range.len()];
                file.read_exact_at(&mut bytes, offset + range.start as u64).ok()?;
                Some(bytes)
            }
        }
    }
}
