//! Where kernel facts come from: the running kernel (`/sys/kernel/btf`,
//! `bpf(2)`, `/proc/kallsyms`) or files saved from another kernel. Each part
//! is read only when first needed, and kept for later relocations.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ksymrelo_core::btf::{Btf, Kind};
use ksymrelo_core::kallsyms::{Match, Matcher, Stats};

use crate::btf_facts::BtfFacts;
use crate::error::{Error, Result};
use crate::kallsyms_record::{self, KallsymsRecord};
use crate::sys;

mod modules;
use modules::{dir_modules, live_modules};

/// The live vmlinux BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The live kallsyms.
pub const PROC_KALLSYMS: &str = "/proc/kallsyms";

pub use crate::sys::Mmap;

/// Bytes either mapped from a file or read into memory.
pub enum Bytes {
    /// A read-only mapping.
    Mapped(Mmap),
    /// A copy.
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Maps a file, or reads it where mapping is refused.
pub fn map_or_read(path: &Path) -> Result<Bytes> {
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    if let Ok(m) = Mmap::map(&file) {
        return Ok(Bytes::Mapped(m));
    }
    let mut data = Vec::new();
    (&file)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(Bytes::Owned(data))
}

fn read(path: &Path) -> Result<Bytes> {
    std::fs::read(path)
        .map(Bytes::Owned)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// One kernel module's BTF.
#[derive(Debug)]
pub struct ModuleBtfData {
    /// Module name.
    pub name: String,
    /// The BTF object id (live), or the file's position (offline).
    pub id: u32,
    /// Raw split BTF.
    pub data: Vec<u8>,
    /// The BTF object fd (live only); owned, closed when the last holder
    /// (the [`Kernel`] or a [`crate::Relocation`] that uses it) drops.
    pub fd: Option<OwnedFd>,
    /// The number written into instructions and fd_array: the fd live, a
    /// placeholder `-2 - n` offline (no kernel object exists for a file).
    pub fd_value: i32,
}

#[derive(Debug, Clone)]
enum BtfSource {
    Live,
    File(PathBuf),
    Dir(PathBuf),
}

#[derive(Debug, Clone)]
enum KallsymsSource {
    Live,
    File(PathBuf),
    Absent,
}

/// vmlinux BTF, validated once (by this process, or by the one that kept
/// its facts this boot), with its sparse type-offset table.
struct Vmlinux {
    bytes: Bytes,
    index: Vec<u32>,
    count: u32,
    /// Its kept facts, which answer name lookups without a walk.
    facts: Option<BtfFacts>,
}

/// What a [`Kernel`] learned of kallsyms, valid while the loaded modules
/// stay the same.
#[derive(Default)]
pub(crate) struct KallsymsFacts {
    /// `/proc/modules` hash these facts belong to.
    signature: u64,
    /// libbpf's answer per name (`None`: not in kallsyms).
    pub answers: HashMap<Vec<u8>, Option<Match>>,
    /// The per-boot record, once loaded or built.
    pub record: Option<Arc<KallsymsRecord>>,
}

/// How often a [`Kernel`] went to the kernel (or its files) for facts:
/// what a warm handle saves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// vmlinux BTF read and validated (once per handle).
    pub vmlinux_parses: u64,
    /// Later walks over vmlinux BTF for names not asked before.
    pub vmlinux_walks: u64,
    /// Scans of the kallsyms text.
    pub kallsyms_scans: u64,
    /// Kallsyms records built from `/proc/kallsyms`.
    pub record_builds: u64,
    /// Kallsyms records loaded from the record file.
    pub record_loads: u64,
    /// vmlinux BTF facts loaded from their file (no walk of vmlinux).
    pub btf_facts_loads: u64,
    /// vmlinux BTF facts built after a walk (to be kept in their file).
    pub btf_facts_builds: u64,
    /// Runs of the in-kernel resolver.
    pub in_kernel_lookups: u64,
    /// Listings of the module BTFs.
    pub module_listings: u64,
}

#[derive(Default)]
struct Counters {
    vmlinux_parses: AtomicU64,
    vmlinux_walks: AtomicU64,
    kallsyms_scans: AtomicU64,
    record_builds: AtomicU64,
    record_loads: AtomicU64,
    btf_facts_loads: AtomicU64,
    btf_facts_builds: AtomicU64,
    in_kernel_lookups: AtomicU64,
    module_listings: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// vmlinux answers by `(name, kind)`.
type LookupCache = HashMap<(Vec<u8>, Kind), Option<u32>>;

/// Slots of the vmlinux type-offset table (see [`Btf::parse_indexed`]):
/// every 64th offset or so, ~32 KiB to fill instead of ~1 MiB of fresh
/// pages, for a short walk on each of the few lookups by id.
const VMLINUX_INDEX_SLOTS: usize = 8192;

/// A kernel to resolve against: the running one or saved files.
///
/// Everything is read lazily and kept: vmlinux BTF (mapped, validated
/// once), the answers of its name lookups, module BTFs and their fds,
/// kallsyms answers and the per-boot kallsyms record. Later relocations
/// reuse them, so a warm `Kernel` resolves an object without reading or
/// walking anything again. The running kernel is checked for change on
/// each relocation: a module loaded or unloaded drops what kallsyms said
/// and refreshes the module list.
///
/// `Kernel` is `Send + Sync`: one handle can serve many threads at once.
pub struct Kernel {
    btf: BtfSource,
    kallsyms: KallsymsSource,
    /// Where the kallsyms record is loaded from, and whether it is also
    /// written there.
    record_path: Option<PathBuf>,
    record_write: bool,
    /// Where the vmlinux BTF facts are loaded from, and whether they are
    /// also written there.
    facts_path: Option<PathBuf>,
    facts_write: bool,
    vmlinux: OnceLock<Vmlinux>,
    vmlinux_parse: Mutex<()>,
    vmlinux_lookups: Mutex<LookupCache>,
    modules: Mutex<Option<Vec<Arc<ModuleBtfData>>>>,
    /// The last module listing was refused (no `CAP_SYS_ADMIN`).
    modules_refused: AtomicBool,
    facts: Mutex<KallsymsFacts>,
    counters: Counters,
}

impl Kernel {
    /// The running kernel.
    pub fn live() -> Kernel {
        Kernel::new(BtfSource::Live, KallsymsSource::Live)
    }

    /// Another kernel's saved files: `btf` is a vmlinux BTF file or a
    /// directory laid out like `/sys/kernel/btf` (`vmlinux` plus one split
    /// BTF file per module); `kallsyms` a saved `/proc/kallsyms`.
    pub fn from_files(btf: Option<&Path>, kallsyms: Option<&Path>) -> Kernel {
        let btf = match btf {
            None => BtfSource::Live,
            Some(p) if p.is_dir() => BtfSource::Dir(p.to_path_buf()),
            Some(p) => BtfSource::File(p.to_path_buf()),
        };
        let kallsyms = match kallsyms {
            Some(p) => KallsymsSource::File(p.to_path_buf()),
            None if matches!(btf, BtfSource::Live) => KallsymsSource::Live,
            None => KallsymsSource::Absent,
        };
        Kernel::new(btf, kallsyms)
    }

    /// Keeps the per-boot kallsyms record (see [`crate::kallsyms_record`])
    /// in the file `path`, so that other processes skip building it: loaded
    /// from there when it is trusted and current, written there after it is
    /// built. Without this, a live `Kernel` only *reads* the record at
    /// [`crate::kallsyms_record::DEFAULT_PATH`] (where the `ksymrelo`
    /// command keeps it); if there is none, it builds one in memory on first
    /// need (one read of `/proc/kallsyms`) and writes no file.
    pub fn with_kallsyms_record(mut self, path: impl Into<PathBuf>) -> Kernel {
        self.record_path = Some(path.into());
        self.record_write = true;
        self
    }

    /// Keeps the vmlinux BTF facts (see [`crate::btf_facts`]) in the file
    /// `path`: loaded from there when trusted and made for this boot's
    /// vmlinux BTF, written there after a walk of vmlinux BTF otherwise.
    /// Without this, a live `Kernel` only *reads* the facts at
    /// [`crate::btf_facts::DEFAULT_PATH`] (where the `ksymrelo` command
    /// keeps them) and walks vmlinux BTF where there are none.
    pub fn with_btf_facts(mut self, path: impl Into<PathBuf>) -> Kernel {
        if self.is_live() {
            self.facts_path = Some(path.into());
            self.facts_write = true;
        }
        self
    }

    /// Reads no vmlinux BTF facts file: every process walks vmlinux BTF.
    pub fn without_btf_facts(mut self) -> Kernel {
        self.facts_path = None;
        self.facts_write = false;
        self
    }

    fn new(btf: BtfSource, kallsyms: KallsymsSource) -> Kernel {
        let live = matches!(kallsyms, KallsymsSource::Live);
        let facts_path = matches!(btf, BtfSource::Live).then(|| PathBuf::from(crate::btf_facts::DEFAULT_PATH));
        Kernel {
            btf,
            kallsyms,
            // Read (never written) by default: a record the command or
            // another opted-in caller left this boot saves the first read of
            // /proc/kallsyms.
            record_path: live.then(|| PathBuf::from(kallsyms_record::DEFAULT_PATH)),
            record_write: false,
            facts_path,
            facts_write: false,
            vmlinux: OnceLock::new(),
            vmlinux_parse: Mutex::new(()),
            vmlinux_lookups: Mutex::new(HashMap::new()),
            modules: Mutex::new(None),
            modules_refused: AtomicBool::new(false),
            facts: Mutex::new(KallsymsFacts::default()),
            counters: Counters::default(),
        }
    }

    /// What this handle has read or asked so far.
    pub fn stats(&self) -> KernelStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KernelStats {
            vmlinux_parses: get(&c.vmlinux_parses),
            vmlinux_walks: get(&c.vmlinux_walks),
            kallsyms_scans: get(&c.kallsyms_scans),
            record_builds: get(&c.record_builds),
            record_loads: get(&c.record_loads),
            btf_facts_loads: get(&c.btf_facts_loads),
            btf_facts_builds: get(&c.btf_facts_builds),
            in_kernel_lookups: get(&c.in_kernel_lookups),
            module_listings: get(&c.module_listings),
        }
    }

    /// Whether the last listing of module BTFs was refused for want of
    /// `CAP_SYS_ADMIN` (so no module was searched).
    pub fn module_listing_refused(&self) -> bool {
        self.modules_refused.load(Ordering::Relaxed)
    }

    /// Counts one run of the in-kernel resolver on this kernel's behalf.
    pub(crate) fn note_in_kernel_lookup(&self) {
        bump(&self.counters.in_kernel_lookups);
    }

    /// Whether this is the running kernel's BTF (so module fds are real).
    pub fn is_live(&self) -> bool {
        matches!(self.btf, BtfSource::Live)
    }

    /// Whether kallsyms is the running kernel's (so the kernel's own lookups
    /// answer for it).
    pub(crate) fn kallsyms_is_live(&self) -> bool {
        matches!(self.kallsyms, KallsymsSource::Live)
    }

    fn read_vmlinux(&self) -> Result<Bytes> {
        // Only the live sysfs file is mapped: it cannot change under us. A
        // user's file could be truncated while mapped, which would crash the
        // process (SIGBUS), so it is read.
        match &self.btf {
            BtfSource::Live => map_or_read(Path::new(VMLINUX_BTF)),
            BtfSource::File(p) => read(p),
            BtfSource::Dir(d) => read(&d.join("vmlinux")),
        }
    }

    /// The vmlinux BTF bytes (mapped when possible).
    pub fn vmlinux_btf(&self) -> Result<&[u8]> {
        Ok(&self.vmlinux_view(&[], &mut [])?.0.bytes)
    }

    /// Looks `wanted` up in vmlinux (`found[i]` for `wanted[i]`) and returns
    /// the validated vmlinux BTF. The first call reads the file and, in one
    /// walk, validates every type, fills the type-offset table and answers
    /// the lookups; later calls answer from what earlier ones looked up and
    /// walk (without validating again) only for names never asked before.
    pub(crate) fn vmlinux_lookup(&self, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> Result<Btf<'_>> {
        let (vm, fresh) = self.vmlinux_view(wanted, found)?;
        let btf = Btf::reindexed(&vm.bytes, None, &vm.index, vm.count)?;
        if fresh {
            return Ok(btf);
        }
        let mut cache = lock(&self.vmlinux_lookups);
        let mut missing = Vec::new();
        for (i, (name, kind)) in wanted.iter().enumerate() {
            match cache.get(&(name.to_vec(), *kind)) {
                Some(&answer) => found[i] = answer,
                None => missing.push(i),
            }
        }
        if !missing.is_empty() {
            let ask: Vec<(&[u8], Kind)> = missing.iter().map(|&i| wanted[i]).collect();
            let mut answers = vec![None; ask.len()];
            let kept = vm.facts.as_ref().is_some_and(|f| f.lookup(&btf, &ask, &mut answers));
            if !kept {
                answers.fill(None);
                bump(&self.counters.vmlinux_walks);
                btf.find_own_batch(&ask, &mut answers)?;
            }
            for (&i, answer) in missing.iter().zip(answers) {
                found[i] = answer;
                cache.insert((wanted[i].0.to_vec(), wanted[i].1), answer);
            }
        }
        Ok(btf)
    }

    /// The kept vmlinux; `true` when this call parsed it (so `found` holds
    /// the answers to `wanted`).
    fn vmlinux_view(&self, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> Result<(&Vmlinux, bool)> {
        if let Some(vm) = self.vmlinux.get() {
            return Ok((vm, false));
        }
        // One thread parses; the others wait for its result.
        let _parsing = lock(&self.vmlinux_parse);
        if let Some(vm) = self.vmlinux.get() {
            return Ok((vm, false));
        }
        let bytes = self.read_vmlinux()?;
        let key = self.facts_path.as_ref().and_then(|_| BtfFacts::key(&bytes));
        let kept = self.facts_path.as_deref().zip(key.as_ref());
        let vm = match kept.and_then(|(path, key)| BtfFacts::load(path, key)) {
            Some(facts) if answer_from(&facts, &bytes, wanted, found) => {
                bump(&self.counters.btf_facts_loads);
                let (index, count) = (facts.index(), facts.type_count());
                Vmlinux {
                    bytes,
                    index,
                    count,
                    facts: Some(facts),
                }
            }
            _ => {
                found.iter_mut().for_each(|f| *f = None);
                bump(&self.counters.vmlinux_parses);
                let mut index = vec![0u32; Btf::max_type_count(&bytes).clamp(1, VMLINUX_INDEX_SLOTS)];
                let count = Btf::parse_indexed_batch(&bytes, None, &mut index, wanted, found)?.own_type_count();
                let facts = kept.filter(|_| self.facts_write).and_then(|(path, key)| {
                    bump(&self.counters.btf_facts_builds);
                    let btf = Btf::reindexed(&bytes, None, &index, count).ok()?;
                    let facts = BtfFacts::build(&btf, &index, key)?;
                    // Best effort: without the right to write there, the
                    // facts serve this process only.
                    let _ = facts.save(path);
                    Some(facts)
                });
                Vmlinux {
                    bytes,
                    index,
                    count,
                    facts,
                }
            }
        };
        {
            let mut cache = lock(&self.vmlinux_lookups);
            for ((name, kind), answer) in wanted.iter().zip(found.iter()) {
                cache.insert((name.to_vec(), *kind), *answer);
            }
        }
        let _ = self.vmlinux.set(vm);
        Ok((self.vmlinux.get().expect("set above"), true))
    }

    /// Module BTFs, in search order (BTF object id order live, file name
    /// order offline). Live, the list is checked against the kernel's on
    /// every call: modules unloaded since are dropped (their fds close once
    /// no relocation holds them), new ones are opened.
    pub fn module_btfs(&self) -> Result<Vec<Arc<ModuleBtfData>>> {
        let mut cached = lock(&self.modules);
        bump(&self.counters.module_listings);
        let fresh = match (&self.btf, cached.take()) {
            (BtfSource::Live, old) => live_modules(old.unwrap_or_default(), &self.modules_refused)?,
            (BtfSource::File(_), _) => Vec::new(),
            (BtfSource::Dir(_), Some(old)) => old,
            (BtfSource::Dir(d), None) => dir_modules(d)?,
        };
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// The kept module BTF for BTF object `id`, or `fd` (a module BTF fd the
    /// in-kernel resolver got) kept as a new one: so that every mode hands
    /// out the same fd for a module, and repeated relocations no new fds.
    pub(crate) fn adopt_module(&self, id: u32, name: String, fd: OwnedFd) -> Result<Arc<ModuleBtfData>> {
        let mut cached = lock(&self.modules);
        let list = cached.get_or_insert_with(Vec::new);
        if let Some(m) = list.iter().find(|m| m.id == id && m.fd.is_some()) {
            return Ok(m.clone());
        }
        let data = sys::btf_data(fd.as_fd()).map_err(|e| Error::bpf(format!("reading BTF of module {name}"), e))?;
        let m = Arc::new(ModuleBtfData {
            name,
            id,
            data,
            fd_value: fd.as_raw_fd(),
            fd: Some(fd),
        });
        // A module name is loaded once at a time: a kept BTF object of the
        // same name is of a module unloaded since. Let go of it (relocations
        // holding it keep it open), as a listing would have.
        list.retain(|x| x.name != m.name || x.fd.is_none());
        // Keep the list in BTF object id order, the search order.
        let at = list.partition_point(|x| x.id < id);
        list.insert(at, m.clone());
        Ok(m)
    }

    /// What this kernel's kallsyms said so far, emptied first if the loaded
    /// modules changed since.
    pub(crate) fn kallsyms_facts(&self) -> MutexGuard<'_, KallsymsFacts> {
        let signature = if self.kallsyms_is_live() {
            kallsyms_record::modules_signature()
        } else {
            0
        };
        let mut facts = lock(&self.facts);
        if facts.signature != signature {
            *facts = KallsymsFacts {
                signature,
                ..Default::default()
            };
        }
        facts
    }

    /// The per-boot kallsyms record of the running kernel: kept, loaded from
    /// the record file, or — with `build` — built from `/proc/kallsyms` (and
    /// saved to the record file, if one is set). `None` when kallsyms is not
    /// the running kernel's, when it hides its addresses from this process
    /// (checked with `build`, for a record that will answer addresses), or
    /// when there is none to load and `build` is false.
    pub(crate) fn kallsyms_record(
        &self,
        facts: &mut KallsymsFacts,
        build: bool,
    ) -> Result<Option<Arc<KallsymsRecord>>> {
        if !self.kallsyms_is_live() {
            return Ok(None);
        }
        if let Some(r) = &facts.record {
            return Ok(Some(r.clone()));
        }
        // The record answers only what this process could read itself:
        // where kallsyms hides addresses from it, libbpf fails, and so does
        // the scan this falls back to. (Without `build` only module names
        // of addresses the caller already has are asked of it.)
        if build && !kallsyms_record::addresses_visible() {
            return Ok(None);
        }
        let boot = kallsyms_record::boot_id();
        if let Some(path) = &self.record_path {
            if let Some(r) = KallsymsRecord::load(path, &boot, facts.signature) {
                bump(&self.counters.record_loads);
                let r = Arc::new(r);
                facts.record = Some(r.clone());
                return Ok(Some(r));
            }
        }
        if !build {
            return Ok(None);
        }
        let text = kallsyms_record::read_text(Path::new(PROC_KALLSYMS))
            .map_err(|e| Error::io(format!("reading {PROC_KALLSYMS}"), e))?;
        bump(&self.counters.record_builds);
        let Some(r) = KallsymsRecord::build(&text, boot, facts.signature) else {
            return Ok(None);
        };
        if let Some(path) = self.record_path.as_ref().filter(|_| self.record_write) {
            // Best effort: without the right to write there, the record
            // lives in this process only.
            let _ = r.save(path);
        }
        let r = Arc::new(r);
        facts.record = Some(r.clone());
        Ok(Some(r))
    }

    /// Streams kallsyms through matchers for `names`, in large reads.
    pub fn scan_kallsyms(&self, names: &[&[u8]], results: &mut [Option<Match>]) -> Result<Stats> {
        let path = match &self.kallsyms {
            KallsymsSource::Live => PathBuf::from(PROC_KALLSYMS),
            KallsymsSource::File(p) => p.clone(),
            KallsymsSource::Absent => return Err(Error::NoKallsyms),
        };
        let mut file = File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        bump(&self.counters.kallsyms_scans);
        let mut matcher = Matcher::new(names, results)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            };
            matcher.feed(&buf[..n])?;
        }
        Ok(matcher.finish()?)
    }
}

/// Answers `wanted` from kept facts over `bytes`; `false` (walk instead)
/// when they cannot.
fn answer_from(facts: &BtfFacts, bytes: &[u8], wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> bool {
    let index = facts.index();
    Btf::reindexed(bytes, None, &index, facts.type_count()).is_ok_and(|btf| facts.lookup(&btf, wanted, found))
}

/// A lock whose holder may have panicked: the data is caches, still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
