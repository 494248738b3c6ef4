//! The per-boot kallsyms record: libbpf's answer for every name in
//! `/proc/kallsyms`, so that the default mode gives libbpf's result without
//! reading (and the kernel formatting) kallsyms on every run.
//!
//! It holds, for each name a kallsyms scan can match (the name, or a `d`
//! symbol's name before `.llvm.`, as the core matcher matches), the first
//! address and module the scan would meet, and for names listed at two
//! different addresses both addresses and the line where the second
//! appears (libbpf fails on the first such line it meets). A lookup is a
//! binary search in one flat byte image, read from a file or built once.
//! It also keeps the address runs of each module's symbols, so that an
//! address the kernel's own lookup gives (`--mode kernel`) is reported with
//! its `[module]` as a scan would report it.
//!
//! A record describes one boot and one set of loaded modules: it is keyed by
//! the boot id and a hash of `/proc/modules`, and rebuilt when either
//! changes. Kept in a file, it is trusted only when owned by root (or by
//! this process's user) and writable by nobody else, in a directory of the
//! same kind. Symbols that come and go without a module (those of BPF
//! programs, `[bpf]`) are as the record's first read saw them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use ksymrelo_core::kallsyms::Match;

/// Where the `ksymrelo` command keeps its record (root only can write).
/// The name carries the format's version, so that two ksymrelo versions on
/// one machine keep a record each instead of rebuilding the other's.
pub const DEFAULT_PATH: &str = "/run/ksymrelo/kallsyms-record.3";

const MAGIC: &[u8; 8] = b"KSYMREC\x03";
const HEADER: usize = 96;
// The header: magic, modules hash, boot id (48), then eight u32 counts.
const _: () = assert!(HEADER == 8 + 8 + 48 + 8 * 4);
const ENTRY: usize = 16;
const AMBIGUOUS: usize = 24;
const RANGE: usize = 24;
/// `name_len` bit of an entry whose name kallsyms lists at two addresses.
const AMBIGUOUS_BIT: u16 = 0x8000;

/// What libbpf's scan says of a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed<'r> {
    /// One address.
    Unique {
        /// The address.
        addr: u64,
        /// Its module, if not vmlinux.
        module: Option<&'r str>,
    },
    /// Two different addresses: the scan fails at `line`.
    Ambiguous {
        /// The first address.
        first: u64,
        /// The first different one.
        second: u64,
        /// 1-based line of `second` (the scan reports the earliest).
        line: u64,
    },
}

impl Listed<'_> {
    /// The match a scan would give (`None` for an ambiguous name).
    pub fn to_match(self) -> Option<Match> {
        match self {
            Listed::Unique { addr, module: Some(m) } => Some(Match::in_module(addr, m.as_bytes())),
            Listed::Unique { addr, module: None } => Some(Match::new(addr)),
            Listed::Ambiguous { .. } => None,
        }
    }
}

/// The record; see the module documentation. The file's front (header,
/// ambiguous names, module runs, a block index of every 64th name) is held
/// in memory; the sorted names themselves are read a block at a time, from
/// the file or from the image a build made.
#[derive(Debug)]
pub struct KallsymsRecord {
    head: Vec<u8>,
    body: Body,
    boot_id: String,
    modules: u64,
    count: usize,
    ambiguous: usize,
    ranges: usize,
    blocks: usize,
    names_len: usize,
    /// Offsets in `head`.
    ranges_off: usize,
    index_off: usize,
    index_names_off: usize,
    module_names: Vec<String>,
}

/// Where the sorted entries and names are.
#[derive(Debug)]
enum Body {
    /// In memory (a record this process built), from the file's body start.
    Memory(Vec<u8>),
    /// In the file, at `offset`: read with `pread`, so a lookup costs two
    /// small reads and loading the record only its front.
    File { file: File, offset: u64 },
}

impl PartialEq for KallsymsRecord {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.body_bytes() == other.body_bytes()
    }
}

/// Names per block of the index.
const BLOCK: usize = 64;

/// Whether `/proc/kallsyms` shows this process real addresses (any of its
/// first lines non-zero; the very first may be a real zero). The kernel
/// formats only the lines asked for, so the first read asks for a few
/// lines (a non-zero address there settles it) and only an all-zero start
/// is read further, up to 16 KiB.
pub fn addresses_visible() -> bool {
    let Ok(mut file) = File::open("/proc/kallsyms") else {
        return false;
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    for want in [512, buf.len()] {
        while len < want {
            match file.read(&mut buf[len..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        if any_address(&buf[..len]) {
            return true;
        }
    }
    false
}

/// Whether a line of `text` starts with a non-zero address (a cut last
/// line counts: its address is there or absent, never wrong).
fn any_address(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b' ').next())
        .any(|addr| !addr.is_empty() && addr.iter().any(|&c| c != b'0'))
}

pub use crate::run_dir::boot_id;

/// A hash of the loaded modules (name and load address of each line of
/// `/proc/modules`; 0 without modules). It changes when a module is loaded,
/// unloaded or reloaded.
pub fn modules_signature() -> u64 {
    let text = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let mut h = Fnv::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        h.feed(f.next().unwrap_or("").as_bytes());
        h.feed(f.nth(4).unwrap_or("").as_bytes());
        h.feed(b"\n");
    }
    if text.is_empty() {
        0
    } else {
        h.0
    }
}

/// FNV-1a, 64-bit: stable across builds, unlike std's hasher.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Default)]
struct Seen {
    first: u64,
    module: Option<u32>,
    second: Option<(u64, u64)>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl KallsymsRecord {
    /// Builds the record from kallsyms `text`, read by the core matcher's own
    /// line parser ([`ksymrelo_core::kallsyms::parse_line`]). `None` when the text cannot stand for the scan:
    /// every address is zero (`kptr_restrict`), or a line is malformed (the
    /// scan itself reports those).
    pub fn build(text: &[u8], boot_id: String, modules: u64) -> Option<KallsymsRecord> {
        let mut seen: HashMap<&[u8], Seen> = HashMap::with_capacity(1 << 18);
        let mut module_names: Vec<&[u8]> = Vec::new();
        let mut owners: Vec<(u64, u32)> = Vec::new();
        let mut any_address = false;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = n as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let l = ksymrelo_core::kallsyms::parse_line(line)?;
            let (addr, name) = (l.addr, l.name);
            any_address |= addr != 0;
            let module = l.module.map(|m| match module_names.iter().position(|&x| x == m) {
                Some(i) => i as u32,
                None => {
                    module_names.push(m);
                    module_names.len() as u32 - 1
                }
            });
            owners.push((addr, module.map_or(0, |m| m + 1)));
            record(&mut seen, name, addr, module, line_no);
            if let Some(key) = l.llvm_key() {
                record(&mut seen, key, addr, module, line_no);
            }
        }
        if !any_address || module_names.len() >= usize::from(u16::MAX) {
            return None;
        }
        let mut keys: Vec<(&[u8], &Seen)> = seen.iter().map(|(k, v)| (*k, v)).collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // Runs of consecutive addresses (in address order) owned by one
        // module: every module symbol's address lies in one of its own.
        owners.sort_unstable();
        let mut ranges: Vec<(u64, u64, u32)> = Vec::new();
        for &(addr, owner) in &owners {
            match ranges.last_mut() {
                Some((_, last, o)) if *o == owner => *last = addr,
                _ => ranges.push((addr, addr, owner)),
            }
        }
        ranges.retain(|r| r.2 != 0);

        let boot = boot_id.as_bytes();
        if boot.len() > 48 {
            return None;
        }
        let names_len: usize = keys.iter().map(|(k, _)| k.len()).sum();
        let ambiguous: Vec<(usize, u64, u64)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| s.second.map(|(second, line)| (i, second, line)))
            .collect();
        let mut mods = Vec::new();
        for m in &module_names {
            mods.push(u8::try_from(m.len()).ok()?);
            mods.extend_from_slice(m);
        }
        let firsts: Vec<&[u8]> = keys.iter().step_by(BLOCK).map(|(k, _)| *k).collect();
        let index_names_len: usize = firsts.iter().map(|n| n.len()).sum();

        let mut image = Vec::with_capacity(HEADER + keys.len() * (ENTRY + 24) + mods.len());
        image.extend_from_slice(MAGIC);
        image.extend_from_slice(&modules.to_le_bytes());
        let mut boot_field = [0u8; 48];
        boot_field[..boot.len()].copy_from_slice(boot);
        image.extend_from_slice(&boot_field);
        for n in [
            keys.len(),
            ambiguous.len(),
            ranges.len(),
            module_names.len(),
            names_len,
            mods.len(),
            firsts.len(),
            index_names_len,
        ] {
            image.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
        }
        for (i, second, line) in &ambiguous {
            image.extend_from_slice(&(*i as u64).to_le_bytes());
            image.extend_from_slice(&second.to_le_bytes());
            image.extend_from_slice(&line.to_le_bytes());
        }
        for (lo, hi, owner) in &ranges {
            image.extend_from_slice(&lo.to_le_bytes());
            image.extend_from_slice(&hi.to_le_bytes());
            image.extend_from_slice(&(u64::from(*owner)).to_le_bytes());
        }
        image.extend_from_slice(&mods);
        let mut off = 0u32;
        for n in &firsts {
            image.extend_from_slice(&off.to_le_bytes());
            image.extend_from_slice(&u32::try_from(n.len()).ok()?.to_le_bytes());
            off += n.len() as u32;
        }
        for n in &firsts {
            image.extend_from_slice(n);
        }
        let mut name_off = 0u32;
        for (name, s) in &keys {
            let len = u16::try_from(name.len()).ok().filter(|&l| l < AMBIGUOUS_BIT)?;
            let flag = if s.second.is_some() { AMBIGUOUS_BIT } else { 0 };
            image.extend_from_slice(&name_off.to_le_bytes());
            image.extend_from_slice(&(len | flag).to_le_bytes());
            image.extend_from_slice(&(s.module.map_or(0, |m| m as u16 + 1)).to_le_bytes());
            image.extend_from_slice(&s.first.to_le_bytes());
            name_off += u32::from(len);
        }
        for (name, _) in &keys {
            image.extend_from_slice(name);
        }
        KallsymsRecord::from_image(image)
    }

    /// A record from its whole byte image (what [`KallsymsRecord::save`]
    /// writes); `None` for anything that is not one.
    pub fn from_image(mut image: Vec<u8>) -> Option<KallsymsRecord> {
        let head_len = Self::head_len(&image)?;
        if image.len() < head_len {
            return None;
        }
        let body = image.split_off(head_len);
        Self::from_parts(image, Body::Memory(body))
    }

    /// The length of the front part, from the header.
    fn head_len(header: &[u8]) -> Option<usize> {
        if header.get(..8)? != MAGIC {
            return None;
        }
        let field = |i: usize| u32_at(header, 64 + 4 * i).map(|v| v as usize);
        HEADER
            .checked_add(field(1)?.checked_mul(AMBIGUOUS)?)?
            .checked_add(field(2)?.checked_mul(RANGE)?)?
            .checked_add(field(5)?)?
            .checked_add(field(6)?.checked_mul(8)?)?
            .checked_add(field(7)?)
    }

    fn from_parts(head: Vec<u8>, body: Body) -> Option<KallsymsRecord> {
        let modules = u64_at(&head, 8)?;
        let boot = head.get(16..64)?;
        let boot_id = std::str::from_utf8(&boot[..boot.iter().position(|&b| b == 0).unwrap_or(48)])
            .ok()?
            .to_owned();
        let field = |i: usize| u32_at(&head, 64 + 4 * i).map(|v| v as usize);
        let (count, ambiguous, ranges, module_count, names_len, mods_len, blocks, index_names_len) = (
            field(0)?,
            field(1)?,
            field(2)?,
            field(3)?,
            field(4)?,
            field(5)?,
            field(6)?,
            field(7)?,
        );
        if blocks != count.div_ceil(BLOCK) {
            return None;
        }
        let ranges_off = HEADER + ambiguous * AMBIGUOUS;
        let mods_off = ranges_off + ranges * RANGE;
        let index_off = mods_off + mods_len;
        let index_names_off = index_off + blocks * 8;
        if index_names_off + index_names_len != head.len() {
            return None;
        }
        // Each module name takes a byte at least: a count past that is no
        // record (and no reason to reserve memory for it).
        if module_count > mods_len {
            return None;
        }
        let mut module_names = Vec::with_capacity(module_count);
        let mut at = mods_off;
        for _ in 0..module_count {
            let len = usize::from(*head.get(at)?);
            let name = head.get(at + 1..at + 1 + len)?;
            module_names.push(String::from_utf8_lossy(name).into_owned());
            at += 1 + len;
        }
        if at != index_off {
            return None;
        }
        let r = KallsymsRecord {
            head,
            body,
            boot_id,
            modules,
            count,
            ambiguous,
            ranges,
            blocks,
            names_len,
            ranges_off,
            index_off,
            index_names_off,
            module_names,
        };
        let body_len = count.checked_mul(ENTRY)?.checked_add(names_len)?;
        match &r.body {
            Body::Memory(b) if b.len() != body_len => None,
            Body::File { file, offset } if file.metadata().ok()?.len() != offset + body_len as u64 => None,
            _ => Some(r),
        }
    }

    /// `len` bytes of the body at `off` (entries first, then names).
    fn read(&self, off: usize, len: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
        match &self.body {
            Body::Memory(b) => b.get(off..off.checked_add(len)?).map(std::borrow::Cow::Borrowed),
            Body::File { file, offset } => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset + off as u64).ok()?;
                Some(std::borrow::Cow::Owned(buf))
            }
        }
    }

    fn body_bytes(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.read(0, self.count * ENTRY + self.names_len)
    }

    /// The whole byte image (what [`KallsymsRecord::save`] writes).
    pub fn image(&self) -> Vec<u8> {
        let mut image = self.head.clone();
        image.extend_from_slice(&self.body_bytes().unwrap_or_default());
        image
    }

    /// Whether the record describes this boot with these modules.
    pub fn is_current(&self, boot_id: &str, modules: u64) -> bool {
        self.boot_id == boot_id && self.modules == modules
    }

    /// Names the record holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no name.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn module_name(&self, owner: u16) -> Option<&str> {
        owner
            .checked_sub(1)
            .and_then(|m| self.module_names.get(usize::from(m)))
            .map(String::as_str)
    }

    /// The first name of block `b`, from the index.
    fn block_first(&self, b: usize) -> Option<&[u8]> {
        let at = self.index_off + b * 8;
        let off = self.index_names_off + u32_at(&self.head, at)? as usize;
        let len = u32_at(&self.head, at + 4)? as usize;
        self.head.get(off..off.checked_add(len)?)
    }

    /// What libbpf's scan says of `name`; `None` when kallsyms does not
    /// list it. Two small reads of the body: one block of entries, then its
    /// names.
    pub fn lookup(&self, name: &[u8]) -> Option<Listed<'_>> {
        // The last block whose first name is not after `name`.
        let (mut lo, mut hi) = (0usize, self.blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.block_first(mid)? <= name {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let block = lo.checked_sub(1)?;
        let first = block * BLOCK;
        let n = BLOCK.min(self.count - first);
        let entries = self.read(first * ENTRY, n * ENTRY)?;
        let entry = |i: usize| {
            let e = entries.get(i * ENTRY..(i + 1) * ENTRY)?;
            let len_flags = u16_at(e, 4)?;
            Some((
                u32_at(e, 0)? as usize,
                usize::from(len_flags & !AMBIGUOUS_BIT),
                len_flags & AMBIGUOUS_BIT != 0,
                u16_at(e, 6)?,
                u64_at(e, 8)?,
            ))
        };
        let (start, ..) = entry(0)?;
        let (last_off, last_len, ..) = entry(n - 1)?;
        let names = self.read(
            (self.count * ENTRY).checked_add(start)?,
            last_off.checked_add(last_len)?.checked_sub(start)?,
        )?;
        for i in 0..n {
            let (off, len, ambiguous, owner, addr) = entry(i)?;
            let at = off.checked_sub(start)?;
            if names.get(at..at.checked_add(len)?)? != name {
                continue;
            }
            if ambiguous {
                return self.ambiguity(first + i, addr);
            }
            return Some(Listed::Unique {
                addr,
                module: self.module_name(owner),
            });
        }
        None
    }

    fn ambiguity(&self, entry: usize, first: u64) -> Option<Listed<'_>> {
        let (mut lo, mut hi) = (0usize, self.ambiguous);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = HEADER + mid * AMBIGUOUS;
            match (u64_at(&self.head, at)? as usize).cmp(&entry) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Some(Listed::Ambiguous {
                        first,
                        second: u64_at(&self.head, at + 8)?,
                        line: u64_at(&self.head, at + 16)?,
                    })
                }
            }
        }
        None
    }

    /// The module whose symbols surround `addr`, if any.
    pub fn module_of(&self, addr: u64) -> Option<&str> {
        let range = |i: usize| {
            let at = self.ranges_off + i * RANGE;
            Some((
                u64_at(&self.head, at)?,
                u64_at(&self.head, at + 8)?,
                u64_at(&self.head, at + 16)?,
            ))
        };
        let (mut lo, mut hi) = (0usize, self.ranges);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if range(mid)?.0 <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (first, last, owner) = range(lo.checked_sub(1)?)?;
        if first <= addr && addr <= last {
            self.module_name(u16::try_from(owner).ok()?)
        } else {
            None
        }
    }

    /// Loads the record at `path` if it is trusted (see the module
    /// documentation) and current; `None` otherwise.
    pub fn load(path: &Path, boot_id: &str, modules: u64) -> Option<KallsymsRecord> {
        let file = crate::run_dir::open_trusted(path)?;
        use std::os::unix::fs::FileExt;
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, 0).ok()?;
        let head_len = Self::head_len(&header)?;
        if head_len as u64 > file.metadata().ok()?.len() {
            return None;
        }
        let mut head = vec![0u8; head_len];
        file.read_exact_at(&mut head, 0).ok()?;
        let r = Self::from_parts(
            head,
            Body::File {
                file,
                offset: head_len as u64,
            },
        )?;
        r.is_current(boot_id, modules).then_some(r)
    }

    /// Writes the record to `path` (a temporary file renamed over it, mode
    /// 0600: it holds every kernel address, which kallsyms shows only to
    /// the privileged), creating its directory (mode 0700) if needed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::run_dir::save(path, &self.image())
    }
}

fn record<'t>(seen: &mut HashMap<&'t [u8], Seen>, key: &'t [u8], addr: u64, module: Option<u32>, line: u64) {
    let s = seen.entry(key).or_insert_with(|| Seen {
        first: addr,
        module,
        ..Default::default()
    });
    if s.first != addr && s.second.is_none() {
        s.second = Some((addr, line));
    }
}

/// Reads a whole kallsyms file.
pub fn read_text(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(8 << 20);
    File::open(path)?.read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TEXT: &[u8] = b"\
ffffffff81000000 T _stext
ffffffff81000010 t init_once
ffffffff81000020 T vfs_read
ffffffff81000030 t init_once
ffffffff81000040 d foo.llvm.123
ffffffff81000050 T same
ffffffff81000050 T same
ffffffffa0000000 t mod_fn\t[nf_nat]
ffffffffa0000100 d mod_data\t[nf_nat]
ffffffffa0001000 t other_fn\t[x_tables]
";

    #[test]
    fn answers_as_the_scan_does() {
        let r = KallsymsRecord::build(TEXT, "boot".into(), 7).unwrap();
        assert_eq!(
            r.lookup(b"init_once"),
            Some(Listed::Ambiguous {
                first: 0xffffffff81000010,
                second: 0xffffffff81000030,
                line: 4
            })
        );
        assert_eq!(
            r.lookup(b"foo"),
            Some(Listed::Unique {
                addr: 0xffffffff81000040,
                module: None
            })
        );
        assert_eq!(
            r.lookup(b"vfs_read"),
            Some(Listed::Unique {
                addr: 0xffffffff81000020,
                module: None
            })
        );
        assert_eq!(
            r.lookup(b"same"),
            Some(Listed::Unique {
                addr: 0xffffffff81000050,
                module: None
            })
        );
        assert_eq!(
            r.lookup(b"mod_data"),
            Some(Listed::Unique {
                addr: 0xffffffffa0000100,
                module: Some("nf_nat")
            })
        );
        assert_eq!(r.lookup(b"nope"), None);
        assert_eq!(r.lookup(b""), None);
        assert_eq!(r.module_of(0xffffffff81000020), None);
        assert_eq!(r.module_of(0xffffffffa0000100), Some("nf_nat"));
        assert_eq!(r.module_of(0xffffffffa0001000), Some("x_tables"));
        assert_eq!(r.module_of(0xffffffffa0000800), None);
    }

    #[test]
    fn images_round_trip_and_keys_are_checked() {
        let r = KallsymsRecord::build(TEXT, "boot-1".into(), 0xabc).unwrap();
        let back = KallsymsRecord::from_image(r.image()).unwrap();
        assert_eq!(back, r);
        assert!(back.is_current("boot-1", 0xabc));
        assert!(!back.is_current("boot-2", 0xabc));
        assert!(!back.is_current("boot-1", 0xabd));
        assert!(KallsymsRecord::from_image(b"something else".to_vec()).is_none());
        let mut cut = r.image();
        cut.pop();
        assert!(KallsymsRecord::from_image(cut).is_none());
    }

    #[test]
    fn any_bytes_after_the_magic_are_refused_or_read_safely() {
        let r = KallsymsRecord::build(TEXT, "b".into(), 0).unwrap();
        let whole = r.image();
        for i in 8..whole.len() {
            for v in [0u8, 0xff, 0x80] {
                let mut image = whole.clone();
                image[i] = v;
                if let Some(bad) = KallsymsRecord::from_image(image) {
                    let _ = bad.lookup(b"init_once");
                    let _ = bad.lookup(b"zzz");
                    let _ = bad.module_of(0xffffffffa0000100);
                }
            }
        }
    }

    #[test]
    fn hidden_addresses_or_bad_lines_give_no_record() {
        assert!(KallsymsRecord::build(b"0000000000000000 T a\n0000000000000000 T b\n", "b".into(), 0).is_none());
        assert!(KallsymsRecord::build(b"zzzz T a\n", "b".into(), 0).is_none());
    }

    #[test]
    fn saved_records_load_only_when_trusted_and_current() {
        let dir = std::env::temp_dir().join(format!("ksymrelo-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("kallsyms-record");
        let r = KallsymsRecord::build(TEXT, "boot-1".into(), 5).unwrap();
        r.save(&path).unwrap();
        // Every kernel address is in it: readable by its owner only.
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(KallsymsRecord::load(&path, "boot-1", 5).as_ref(), Some(&r));
        let loaded = KallsymsRecord::load(&path, "boot-1", 5).unwrap();
        for name in [
            &b"init_once"[..],
            b"foo",
            b"vfs_read",
            b"mod_data",
            b"nope",
            b"_stext",
            b"zzz",
        ] {
            assert_eq!(loaded.lookup(name), r.lookup(name), "{}", String::from_utf8_lossy(name));
        }
        assert_eq!(KallsymsRecord::load(&path, "boot-2", 5), None);
        // Writable by others: not trusted.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(KallsymsRecord::load(&path, "boot-1", 5), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(KallsymsRecord::load(&path, "boot-1", 5), None);
        std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A symlink is not followed.
        let link = dir.join("sub").join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(KallsymsRecord::load(&link, "boot-1", 5), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_live_record_agrees_with_the_scan() {
        let Ok(text) = std::fs::read("/proc/kallsyms") else {
            ksymrelo_test_skip::skip("/proc/kallsyms unreadable");
            return;
        };
        let Some(r) = KallsymsRecord::build(&text, boot_id(), modules_signature()) else {
            ksymrelo_test_skip::skip("kallsyms addresses hidden");
            return;
        };
        let names: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter_map(|l| l.split(|&b| b == b' ').nth(2))
            .map(|n| n.split(|&b| b == b'\t').next().unwrap())
            .step_by(97)
            .take(1000)
            .collect();
        // One scan for the names the record calls unambiguous...
        let (ambiguous, plain): (Vec<&[u8]>, Vec<&[u8]>) = names
            .iter()
            .partition(|n| matches!(r.lookup(n), Some(Listed::Ambiguous { .. })));
        let mut results = vec![None; plain.len()];
        ksymrelo_core::kallsyms::match_all(&text, &plain, &mut results).unwrap();
        for (name, scanned) in plain.iter().zip(&results) {
            assert_eq!(
                r.lookup(name).and_then(Listed::to_match),
                *scanned,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        // ... and a few of the others alone, each failing as the record says.
        for name in ambiguous.iter().take(3) {
            let mut one = [None];
            let err = ksymrelo_core::kallsyms::match_all(&text, &[name], &mut one).unwrap_err();
            match (r.lookup(name), err) {
                (
                    Some(Listed::Ambiguous { first, second, .. }),
                    ksymrelo_core::Error::KallsymsAmbiguous {
                        first: f, second: s, ..
                    },
                ) => assert_eq!((first, second), (f, s)),
                (l, e) => panic!("{}: record {l:?}, scan {e:?}", String::from_utf8_lossy(name)),
            }
        }
    }
}
