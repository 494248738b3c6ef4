//! The per-boot kallsyms record: what the default mode needs from
//! `/proc/kallsyms` to give libbpf's answer without reading it again.
//!
//! The kernel's own lookup (`bpf_kallsyms_lookup_name`) answers a name with
//! one address. libbpf's scan of `/proc/kallsyms` gives the same address
//! for every name but two kinds, which the record lists:
//! - names with two or more different addresses, which libbpf refuses as
//!   ambiguous (the record keeps the first two addresses and the line
//!   where the second appears, as the scan would meet them);
//! - names that only match through a `d` symbol's `.llvm.` suffix, which
//!   the kernel's lookup does not see (the record keeps libbpf's answer).
//!
//! It also keeps the address runs of each module's symbols, so that an
//! address from the kernel's lookup is reported with its `[module]` as a
//! scan would report it.
//!
//! A record describes one boot and one set of loaded modules: it is keyed by
//! the boot id and a hash of `/proc/modules`, and rebuilt when either
//! changes. Kept in a file, it is trusted only when owned by root (or by
//! this process's user) and writable by nobody else, in a directory of the
//! same kind.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ksymrelo_core::kallsyms::Match;

/// Where the `ksymrelo` command keeps its record (root only can write).
pub const DEFAULT_PATH: &str = "/run/ksymrelo/kallsyms-record";

const MAGIC: &str = "ksymrelo kallsyms record 1";

/// What libbpf's scan says of a listed name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A single address (met through a `d` symbol's `.llvm.` suffix).
    Unique {
        /// The address.
        addr: u64,
        /// Its module, if not vmlinux.
        module: Option<String>,
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

/// The record; see the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KallsymsRecord {
    boot_id: String,
    modules: u64,
    listed: HashMap<Vec<u8>, Listed>,
    /// `(first address, last address, module)` runs, sorted.
    ranges: Vec<(u64, u64, String)>,
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

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
    via_llvm: bool,
}

impl KallsymsRecord {
    /// Builds the record from kallsyms `text`, read the same way as the core
    /// matcher reads it. `None` when the text cannot stand for the scan:
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
            let (addr, ty, name, module) = parse_line(line)?;
            any_address |= addr != 0;
            let module = module.map(|m| match module_names.iter().position(|&x| x == m) {
                Some(i) => i as u32,
                None => {
                    module_names.push(m);
                    module_names.len() as u32 - 1
                }
            });
            owners.push((addr, module.map_or(0, |m| m + 1)));
            record(&mut seen, name, addr, module, line_no, false);
            if ty == b'd' {
                if let Some(pos) = memchr::memmem::find(name, b".llvm.") {
                    record(&mut seen, &name[..pos], addr, module, line_no, true);
                }
            }
        }
        if !any_address {
            return None;
        }
        let name_of = |m: Option<u32>| m.map(|m| String::from_utf8_lossy(module_names[m as usize]).into_owned());
        let mut listed = HashMap::new();
        for (key, s) in seen {
            let entry = match s.second {
                Some((second, line)) => Listed::Ambiguous {
                    first: s.first,
                    second,
                    line,
                },
                None if s.via_llvm => Listed::Unique {
                    addr: s.first,
                    module: name_of(s.module),
                },
                None => continue,
            };
            listed.insert(key.to_vec(), entry);
        }
        // Runs of consecutive addresses (in address order) owned by one
        // module: every module symbol's address lies in one of its own.
        owners.sort_unstable();
        let mut ranges: Vec<(u64, u64, String)> = Vec::new();
        let mut run: Option<(u64, u64, u32)> = None;
        for &(addr, owner) in &owners {
            match &mut run {
                Some((_, last, o)) if *o == owner => *last = addr,
                _ => {
                    if let Some((lo, hi, o)) = run.take() {
                        if o != 0 {
                            ranges.push((lo, hi, name_of(Some(o - 1)).unwrap_or_default()));
                        }
                    }
                    run = Some((addr, addr, owner));
                }
            }
        }
        if let Some((lo, hi, o)) = run {
            if o != 0 {
                ranges.push((lo, hi, name_of(Some(o - 1)).unwrap_or_default()));
            }
        }
        Some(KallsymsRecord {
            boot_id,
            modules,
            listed,
            ranges,
        })
    }

    /// Whether the record describes this boot with these modules.
    pub fn is_current(&self, boot_id: &str, modules: u64) -> bool {
        self.boot_id == boot_id && self.modules == modules
    }

    /// What libbpf's scan says of `name`, if it differs from (or cannot be
    /// told by) the kernel's own lookup.
    pub fn listed(&self, name: &[u8]) -> Option<&Listed> {
        self.listed.get(name)
    }

    /// Names the record lists.
    pub fn listed_count(&self) -> usize {
        self.listed.len()
    }

    /// The module whose symbols surround `addr`, if any.
    pub fn module_of(&self, addr: u64) -> Option<&str> {
        let i = self.ranges.partition_point(|(lo, _, _)| *lo <= addr);
        let (lo, hi, m) = self.ranges.get(i.checked_sub(1)?)?;
        (*lo <= addr && addr <= *hi).then_some(m.as_str())
    }

    /// A kernel lookup's address as a scan would report it.
    pub fn answer(&self, addr: u64) -> Match {
        match self.module_of(addr) {
            Some(m) => Match::in_module(addr, m.as_bytes()),
            None => Match::new(addr),
        }
    }

    /// The record as text (one line per fact).
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{MAGIC}\nboot {}\nmodules {:x}\n", self.boot_id, self.modules);
        let mut names: Vec<_> = self.listed.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, l) in names {
            let name = String::from_utf8_lossy(name);
            let _ = match l {
                Listed::Unique { addr, module } => {
                    writeln!(out, "unique {name} {addr:x} {}", module.as_deref().unwrap_or("-"))
                }
                Listed::Ambiguous { first, second, line } => {
                    writeln!(out, "ambiguous {name} {first:x} {second:x} {line}")
                }
            };
        }
        for (lo, hi, m) in &self.ranges {
            let _ = writeln!(out, "range {lo:x} {hi:x} {m}");
        }
        out
    }

    /// Parses [`KallsymsRecord::to_text`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<KallsymsRecord> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let boot_id = lines.next()?.strip_prefix("boot ")?.to_owned();
        let modules = u64::from_str_radix(lines.next()?.strip_prefix("modules ")?, 16).ok()?;
        let mut r = KallsymsRecord {
            boot_id,
            modules,
            ..Default::default()
        };
        let hex = |s: Option<&str>| s.and_then(|s| u64::from_str_radix(s, 16).ok());
        for line in lines {
            let mut f = line.split(' ');
            match f.next()? {
                "unique" => {
                    let name = f.next()?.as_bytes().to_vec();
                    let addr = hex(f.next())?;
                    let module = f.next().filter(|m| *m != "-").map(str::to_owned);
                    r.listed.insert(name, Listed::Unique { addr, module });
                }
                "ambiguous" => {
                    let name = f.next()?.as_bytes().to_vec();
                    let (first, second) = (hex(f.next())?, hex(f.next())?);
                    let line = f.next()?.parse().ok()?;
                    r.listed.insert(name, Listed::Ambiguous { first, second, line });
                }
                "range" => {
                    let (lo, hi) = (hex(f.next())?, hex(f.next())?);
                    r.ranges.push((lo, hi, f.next()?.to_owned()));
                }
                _ => return None,
            }
        }
        r.ranges.sort();
        Some(r)
    }

    /// Loads the record at `path` if it is trusted (see the module
    /// documentation) and current; `None` otherwise.
    pub fn load(path: &Path, boot_id: &str, modules: u64) -> Option<KallsymsRecord> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let dir = path.parent().and_then(|d| std::fs::metadata(d).ok())?;
        if !trusted(&file.metadata().ok()?) || !trusted(&dir) {
            return None;
        }
        let mut text = String::new();
        (&file).read_to_string(&mut text).ok()?;
        KallsymsRecord::parse(&text).filter(|r| r.is_current(boot_id, modules))
    }

    /// Writes the record to `path` (a temporary file renamed over it, mode
    /// 0644), creating its directory (mode 0755) if needed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
        let tmp: PathBuf = dir.join(format!(".kallsyms-record.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let written = file
            .write_all(self.to_text().as_bytes())
            .and_then(|()| file.sync_data());
        drop(file);
        match written.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// Owned by root or by us, and writable by no one else.
fn trusted(meta: &std::fs::Metadata) -> bool {
    let uid = meta.uid();
    (uid == 0 || Some(uid) == own_uid()) && meta.permissions().mode() & 0o022 == 0
}

/// This process's effective uid: `/proc/self` belongs to it.
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn record<'t>(
    seen: &mut HashMap<&'t [u8], Seen>,
    key: &'t [u8],
    addr: u64,
    module: Option<u32>,
    line: u64,
    via_llvm: bool,
) {
    let s = seen.entry(key).or_insert_with(|| Seen {
        first: addr,
        module,
        ..Default::default()
    });
    s.via_llvm |= via_llvm;
    if s.first != addr && s.second.is_none() {
        s.second = Some((addr, line));
    }
}

/// One kallsyms line: address, type, name, module.
type Line<'t> = (u64, u8, &'t [u8], Option<&'t [u8]>);

/// `ADDR TYPE NAME[\t[MODULE]]`, as the core matcher reads it.
fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    let sp = memchr::memchr(b' ', line)?;
    let digits = &line[..sp];
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let addr = u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    let rest = &line[sp + 1..];
    let (&ty, rest) = rest.split_first()?;
    if ty.is_ascii_whitespace() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let end = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
    let name = &rest[..end];
    if name.is_empty() || line.len() > 1024 {
        return None;
    }
    let tail = &rest[end..];
    let t = &tail[tail.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(tail.len())..];
    let module = match (t.first(), memchr::memchr(b']', t)) {
        (Some(b'['), Some(close)) => Some(&t[1..close]),
        _ => None,
    };
    Some((addr, ty, name, module))
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
    fn lists_ambiguous_and_llvm_names_and_module_runs() {
        let r = KallsymsRecord::build(TEXT, "boot".into(), 7).unwrap();
        assert_eq!(
            r.listed(b"init_once"),
            Some(&Listed::Ambiguous {
                first: 0xffffffff81000010,
                second: 0xffffffff81000030,
                line: 4
            })
        );
        assert_eq!(
            r.listed(b"foo"),
            Some(&Listed::Unique {
                addr: 0xffffffff81000040,
                module: None
            })
        );
        assert_eq!(r.listed(b"vfs_read"), None);
        assert_eq!(r.listed(b"same"), None);
        assert_eq!(r.listed_count(), 2);
        assert_eq!(r.module_of(0xffffffff81000020), None);
        assert_eq!(r.module_of(0xffffffffa0000100), Some("nf_nat"));
        assert_eq!(r.module_of(0xffffffffa0001000), Some("x_tables"));
        assert_eq!(r.module_of(0xffffffffa0000800), None);
        assert_eq!(r.answer(0xffffffffa0000000).module(), Some(&b"nf_nat"[..]));
    }

    #[test]
    fn text_round_trips_and_keys_are_checked() {
        let r = KallsymsRecord::build(TEXT, "boot-1".into(), 0xabc).unwrap();
        let back = KallsymsRecord::parse(&r.to_text()).unwrap();
        assert_eq!(back, r);
        assert!(back.is_current("boot-1", 0xabc));
        assert!(!back.is_current("boot-2", 0xabc));
        assert!(!back.is_current("boot-1", 0xabd));
        assert!(KallsymsRecord::parse("something else\n").is_none());
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
        assert_eq!(KallsymsRecord::load(&path, "boot-1", 5), Some(r.clone()));
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
}
