//! Kept facts of one vmlinux BTF: what a validating walk over it learns and
//! a later process would otherwise walk it again (~1 ms, 5.5 MB) to learn.
//!
//! The facts are the walk's sparse type-offset table and type count (so
//! that [`Btf::reindexed`] gives a view without walking) and, for every
//! `FUNC` and `VAR`, its name and id sorted by `(name, kind, id)`, so that
//! the first id of a `(name, kind)` — what [`Btf::find_own_batch`] and
//! `btf__find_by_name_kind` answer — is a binary search away. Names are not
//! copied: an entry holds the name's offset in the BTF's string section.
//!
//! Layout (little endian): a [`HEADER_LEN`]-byte header, the type-offset
//! table (`u32` each), one 16-byte record per block of [`BLOCK`] entries
//! (the block's first entry and a hash of the block's bytes) — together the
//! *front*, read whole and checked by one hash in the header — then the
//! *body*: 8-byte entries (name offset, id with the kind in its top bits).
//! A lookup reads the front once and at most one block of the body.
//!
//! A facts image belongs to one BTF of one boot ([`Key`]): the boot id,
//! the BTF's length and a hash of its first and last pages. Anything that
//! does not check out (magic, sizes, hashes, a found id whose type has
//! another name or kind) is an error, so a caller can ignore the image and
//! walk the BTF instead.

use core::cmp::Ordering;
use core::ops::Range;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Btf, Kind};
use crate::error::{Error, Result};

/// The first bytes of a facts image; the last byte is the format version.
pub const MAGIC: &[u8; 8] = b"KSYMBTF\x01";
/// Length of the fixed header.
pub const HEADER_LEN: usize = 128;
/// Entries per block of the body (one block is 512 bytes).
pub const BLOCK: usize = 64;
/// Room for a boot id (`/proc/sys/kernel/random/boot_id` is 36 bytes).
pub const BOOT_ID_LEN: usize = 48;

const ENTRY: usize = 8;
const BLOCK_RECORD: usize = 16;
/// Ids are kept in the low 27 bits of an entry, the kind above them.
const ID_BITS: u32 = 27;
/// How much of each end of the BTF the key hashes.
const SAMPLE: usize = 4096;

/// Which BTF (and boot) an image describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The boot id, NUL-padded.
    pub boot_id: [u8; BOOT_ID_LEN],
    /// Length of the BTF blob.
    pub btf_len: u64,
    /// Hash of the blob's length, first and last 4 KiB.
    pub btf_sample: u64,
}

impl Key {
    /// The key of `btf` (the raw blob) in the boot `boot_id`; `None` for a
    /// boot id longer than [`BOOT_ID_LEN`].
    pub fn new(boot_id: &[u8], btf: &[u8]) -> Option<Key> {
        let mut id = [0u8; BOOT_ID_LEN];
        id.get_mut(..boot_id.len())?.copy_from_slice(boot_id);
        let head = &btf[..btf.len().min(SAMPLE)];
        let tail = &btf[btf.len().saturating_sub(SAMPLE)..];
        let h = hash(hash(hash(SEED, &(btf.len() as u64).to_le_bytes()), head), tail);
        Some(Key {
            boot_id: id,
            btf_len: btf.len() as u64,
            btf_sample: h,
        })
    }
}

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Entry {
    name_off: U32,
    id_kind: U32,
}

impl Entry {
    fn id(&self) -> u32 {
        self.id_kind.get() & ((1 << ID_BITS) - 1)
    }
    fn kind(&self) -> u32 {
        self.id_kind.get() >> ID_BITS
    }
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// A word-at-a-time hash (FNV-style multiply, folded): fast enough for a
/// few hundred KiB per process, and any changed byte changes it.
pub fn hash(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0100_0000_01b3);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

fn malformed(what: &'static str, offset: usize) -> Error {
    Error::Malformed { what, offset }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let raw = b.get(at..at + 4).ok_or(Error::Truncated {
        what: "BTF facts",
        offset: at,
    })?;
    Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    Ok(u64::from(u32_at(b, at)?) | (u64::from(u32_at(b, at + 4)?) << 32))
}

/// The counts in a header, checked against each other.
#[derive(Clone, Copy, Debug)]
struct Counts {
    type_count: u32,
    index_len: usize,
    entries: usize,
    blocks: usize,
}

impl Counts {
    fn read(header: &[u8]) -> Result<Counts> {
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(malformed("BTF facts magic", 0));
        }
        let c = Counts {
            type_count: u32_at(header, 72)?,
            index_len: u32_at(header, 76)? as usize,
            entries: u32_at(header, 80)? as usize,
            blocks: u32_at(header, 84)? as usize,
        };
        if c.blocks != c.entries.div_ceil(BLOCK) || c.entries > c.type_count as usize {
            return Err(malformed("BTF facts counts", 80));
        }
        if header.get(96..HEADER_LEN).is_none_or(|r| r.iter().any(|&b| b != 0)) {
            return Err(malformed("BTF facts header", 96));
        }
        Ok(c)
    }

    fn front_len(&self) -> Result<usize> {
        self.index_len
            .checked_mul(4)
            .and_then(|i| i.checked_add(HEADER_LEN))
            .and_then(|i| i.checked_add(self.blocks.checked_mul(BLOCK_RECORD)?))
            .ok_or(Error::Overflow {
                what: "BTF facts length",
            })
    }
}

/// The length of the front (header, offset table, block records) that a
/// header announces; read that much to [`Facts::parse`] it.
pub fn front_len(header: &[u8]) -> Result<usize> {
    Counts::read(header)?.front_len()
}

/// The front of a facts image, checked; see the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'f> {
    front: &'f [u8],
    counts: Counts,
    key: Key,
}

/// Where a lookup's answer is: known from the front, or in one block of
/// the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The answer, without reading the body.
    Answer(Option<u32>),
    /// Read these bytes of the body (block `block`) and call
    /// [`Facts::find_in_block`].
    Read {
        /// The block.
        block: usize,
        /// Its byte range in the body.
        range: Range<usize>,
    },
}

impl<'f> Facts<'f> {
    /// Checks a front: magic, counts, lengths and its hash.
    pub fn parse(front: &'f [u8]) -> Result<Facts<'f>> {
        let facts = Self::parse_known(front)?;
        if front_hash(front) != u64_at(front, 88)? {
            return Err(malformed("BTF facts front hash", 88));
        }
        Ok(facts)
    }

    /// [`Facts::parse`] of a front that one already checked, without
    /// hashing it again (for a caller that keeps the bytes).
    pub fn parse_known(front: &'f [u8]) -> Result<Facts<'f>> {
        let counts = Counts::read(front)?;
        if front.len() != counts.front_len()? {
            return Err(malformed("BTF facts front length", front.len()));
        }
        let mut boot_id = [0u8; BOOT_ID_LEN];
        boot_id.copy_from_slice(&front[8..8 + BOOT_ID_LEN]);
        let key = Key {
            boot_id,
            btf_len: u64_at(front, 56)?,
            btf_sample: u64_at(front, 64)?,
        };
        Ok(Facts { front, counts, key })
    }

    /// Which BTF and boot this image describes.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The BTF's own type count ([`Btf::own_type_count`]).
    pub fn type_count(&self) -> u32 {
        self.counts.type_count
    }

    /// Slots of the type-offset table.
    pub fn index_len(&self) -> usize {
        self.counts.index_len
    }

    /// Copies the type-offset table into `out` (of [`Facts::index_len`]
    /// slots), for [`Btf::reindexed`].
    pub fn index_into(&self, out: &mut [u32]) -> Result<()> {
        if out.len() != self.counts.index_len {
            return Err(Error::Mismatch {
                what: "BTF facts index table length",
            });
        }
        let table = &self.front[HEADER_LEN..HEADER_LEN + 4 * out.len()];
        for (slot, raw) in out.iter_mut().zip(table.chunks_exact(4)) {
            *slot = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        }
        Ok(())
    }

    /// Length of the body that follows the front.
    pub fn body_len(&self) -> usize {
        self.counts.entries * ENTRY
    }

    /// Block `b`'s record: its first entry and its hash.
    fn block(&self, b: usize) -> Result<(Entry, u64)> {
        let at = HEADER_LEN + 4 * self.counts.index_len + b * BLOCK_RECORD;
        let raw = self.front.get(at..at + BLOCK_RECORD).ok_or(Error::Truncated {
            what: "BTF facts block",
            offset: at,
        })?;
        let e = Entry::read_from_bytes(&raw[..ENTRY]).map_err(|_| malformed("BTF facts block", at))?;
        Ok((e, u64_at(raw, ENTRY)?))
    }

    /// Where the first `(name, kind)` of `btf` (the BTF these facts
    /// describe, seen through [`Btf::reindexed`]) is answered.
    pub fn probe(&self, btf: &Btf<'_>, name: &[u8], kind: Kind) -> Result<Probe> {
        // Blocks whose first entry sorts before the wanted key.
        let (mut lo, mut hi) = (0usize, self.counts.blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (first, _) = self.block(mid)?;
            if compare(btf, &first, name, kind)? == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return self.block_first_answer(btf, 0, name, kind);
        }
        let block = lo - 1;
        let start = block * BLOCK * ENTRY;
        let end = (start + BLOCK * ENTRY).min(self.body_len());
        Ok(Probe::Read {
            block,
            range: start..end,
        })
    }

    /// The answer if block `b` starts with `(name, kind)`.
    fn block_first_answer(&self, btf: &Btf<'_>, b: usize, name: &[u8], kind: Kind) -> Result<Probe> {
        if b >= self.counts.blocks {
            return Ok(Probe::Answer(None));
        }
        let (first, _) = self.block(b)?;
        if compare(btf, &first, name, kind)? == Ordering::Equal {
            return verified(btf, &first, name, kind).map(|id| Probe::Answer(Some(id)));
        }
        Ok(Probe::Answer(None))
    }

    /// The answer from `bytes`, the body range [`Facts::probe`] asked for.
    pub fn find_in_block(
        &self,
        btf: &Btf<'_>,
        block: usize,
        bytes: &[u8],
        name: &[u8],
        kind: Kind,
    ) -> Result<Option<u32>> {
        let (first, stored) = self.block(block)?;
        let expected = (self.body_len() - block * BLOCK * ENTRY).min(BLOCK * ENTRY);
        if bytes.len() != expected || hash(SEED, bytes) != stored {
            return Err(malformed("BTF facts block hash", block));
        }
        let entries = <[Entry]>::ref_from_bytes(bytes).map_err(|_| malformed("BTF facts block", block))?;
        if entries.first().map(|e| e.id_kind) != Some(first.id_kind) {
            return Err(malformed("BTF facts block", block));
        }
        for e in entries {
            match compare(btf, e, name, kind)? {
                Ordering::Less => continue,
                Ordering::Equal => return verified(btf, e, name, kind).map(Some),
                Ordering::Greater => return Ok(None),
            }
        }
        // Every entry of this block sorts first: the next block's first
        // entry is the only candidate left.
        match self.block_first_answer(btf, block + 1, name, kind)? {
            Probe::Answer(a) => Ok(a),
            Probe::Read { .. } => Err(malformed("BTF facts block", block)),
        }
    }

    /// The whole lookup over an image held in memory (`body` follows the
    /// front).
    pub fn lookup(&self, btf: &Btf<'_>, body: &[u8], name: &[u8], kind: Kind) -> Result<Option<u32>> {
        match self.probe(btf, name, kind)? {
            Probe::Answer(a) => Ok(a),
            Probe::Read { block, range } => {
                let bytes = body.get(range.clone()).ok_or(Error::Truncated {
                    what: "BTF facts body",
                    offset: range.start,
                })?;
                self.find_in_block(btf, block, bytes, name, kind)
            }
        }
    }
}

/// An entry's `(name, kind)` against the wanted one (ids break ties in the
/// sort only; the first of equal keys is the answer).
fn compare(btf: &Btf<'_>, e: &Entry, name: &[u8], kind: Kind) -> Result<Ordering> {
    let own = btf.name_by_offset(e.name_off.get())?;
    Ok(own.cmp(name).then(e.kind().cmp(&(kind as u32))))
}

/// The entry's id, once its type in `btf` is seen to have that name and
/// kind (a stale or forged image answers nothing).
fn verified(btf: &Btf<'_>, e: &Entry, name: &[u8], kind: Kind) -> Result<u32> {
    let ty = btf.type_by_id(e.id())?;
    if ty.kind() != kind || btf.name(&ty)? != name || ty.id() < btf.start_id() {
        return Err(malformed("BTF facts entry", e.id() as usize));
    }
    Ok(e.id())
}

fn front_hash(front: &[u8]) -> u64 {
    let h = hash(SEED, &front[..88]);
    hash(h, &front[96..])
}

fn kept(kind: Kind) -> bool {
    matches!(kind, Kind::Func | Kind::Var)
}

/// The counts of `btf`'s facts with an `index_len`-slot offset table.
fn counts_of(btf: &Btf<'_>, index_len: usize) -> Result<Counts> {
    let mut entries = 0usize;
    for ty in btf.own_types() {
        if kept(ty?.kind()) {
            entries += 1;
        }
    }
    Ok(Counts {
        type_count: btf.own_type_count(),
        index_len,
        entries,
        blocks: entries.div_ceil(BLOCK),
    })
}

/// Bytes [`write()`] needs for `btf` with an `index_len`-slot offset table.
/// Walks the types once.
pub fn image_len(btf: &Btf<'_>, index_len: usize) -> Result<usize> {
    let counts = counts_of(btf, index_len)?;
    counts
        .front_len()?
        .checked_add(counts.entries * ENTRY)
        .ok_or(Error::Overflow {
            what: "BTF facts length",
        })
}

/// Writes the facts of `btf` (a base BTF, validated by a parse that
/// filled the type-offset table `index`, and seen through
/// [`Btf::reindexed`] over that table) under `key` into `out`; returns the length written
/// ([`image_len`] bytes).
pub fn write(btf: &Btf<'_>, index: &[u32], key: &Key, out: &mut [u8]) -> Result<usize> {
    if btf.base().is_some() {
        return Err(Error::Mismatch {
            what: "BTF facts are kept for a base BTF only",
        });
    }
    let counts = counts_of(btf, index.len())?;
    let front_len = counts.front_len()?;
    let entries = counts.entries;
    let len = front_len + entries * ENTRY;
    let capacity = out.len();
    let out = out.get_mut(..len).ok_or(Error::CapacityExceeded {
        what: "BTF facts image",
        capacity,
    })?;
    out.fill(0);
    let (front, body) = out.split_at_mut(front_len);
    let table = <[Entry]>::mut_from_bytes(body).map_err(|_| malformed("BTF facts body", front_len))?;
    let mut n = 0;
    for ty in btf.own_types() {
        let ty = ty?;
        if !kept(ty.kind()) {
            continue;
        }
        if ty.id() >= 1 << ID_BITS {
            return Err(Error::Overflow { what: "BTF facts ids" });
        }
        let slot = table.get_mut(n).ok_or(Error::Mismatch {
            what: "BTF facts entries",
        })?;
        slot.name_off.set(ty.name_off());
        slot.id_kind.set(ty.id() | ((ty.kind() as u32) << ID_BITS));
        n += 1;
    }
    // Names were validated by the parse; one that is not reads as empty
    // and sorts first, where no lookup of a real name finds it.
    let name = |e: &Entry| btf.name_by_offset(e.name_off.get()).unwrap_or(&[]);
    table.sort_unstable_by(|a, b| {
        name(a)
            .cmp(name(b))
            .then(a.kind().cmp(&b.kind()))
            .then(a.id().cmp(&b.id()))
    });

    front[..8].copy_from_slice(MAGIC);
    front[8..8 + BOOT_ID_LEN].copy_from_slice(&key.boot_id);
    front[56..64].copy_from_slice(&key.btf_len.to_le_bytes());
    front[64..72].copy_from_slice(&key.btf_sample.to_le_bytes());
    front[72..76].copy_from_slice(&btf.own_type_count().to_le_bytes());
    let as_u32 = |v: usize| {
        u32::try_from(v).map_err(|_| Error::Overflow {
            what: "BTF facts counts",
        })
    };
    front[76..80].copy_from_slice(&as_u32(index.len())?.to_le_bytes());
    front[80..84].copy_from_slice(&as_u32(entries)?.to_le_bytes());
    front[84..88].copy_from_slice(&as_u32(entries.div_ceil(BLOCK))?.to_le_bytes());
    let mut at = HEADER_LEN;
    for slot in index {
        front[at..at + 4].copy_from_slice(&slot.to_le_bytes());
        at += 4;
    }
    for block in body.chunks(BLOCK * ENTRY) {
        front[at..at + ENTRY].copy_from_slice(&block[..ENTRY]);
        front[at + ENTRY..at + BLOCK_RECORD].copy_from_slice(&hash(SEED, block).to_le_bytes());
        at += BLOCK_RECORD;
    }
    let h = front_hash(front);
    front[88..96].copy_from_slice(&h.to_le_bytes());
    Ok(len)
}

#[cfg(test)]
mod tests;
