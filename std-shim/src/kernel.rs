//! Where kernel facts come from: the running kernel (`/sys/kernel/btf`,
//! `bpf(2)`, `/proc/kallsyms`) or files saved from another kernel. Each part
//! is read only when first needed, and at most once.

use std::cell::OnceCell;
use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ksymrelo_core::kallsyms::{Match, Matcher, Stats};

use crate::error::{Error, Result};
use crate::sys;

/// The live vmlinux BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The live kallsyms.
pub const PROC_KALLSYMS: &str = "/proc/kallsyms";

/// Bytes either mapped from a file or read into memory.
pub enum Bytes {
    /// A read-only mapping.
    Mapped(sys::Mmap),
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
    if let Ok(m) = sys::Mmap::map(&file) {
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
pub struct ModuleBtfData {
    /// Module name.
    pub name: String,
    /// Raw split BTF.
    pub data: Vec<u8>,
    /// The BTF object fd (live only); owned, closed on drop.
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

/// A kernel to resolve against, read lazily.
pub struct Kernel {
    btf: BtfSource,
    kallsyms: KallsymsSource,
    vmlinux: OnceCell<Bytes>,
    modules: OnceCell<Vec<ModuleBtfData>>,
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

    fn new(btf: BtfSource, kallsyms: KallsymsSource) -> Kernel {
        Kernel {
            btf,
            kallsyms,
            vmlinux: OnceCell::new(),
            modules: OnceCell::new(),
        }
    }

    /// Whether this is the running kernel's BTF (so module fds are real).
    pub fn is_live(&self) -> bool {
        matches!(self.btf, BtfSource::Live)
    }

    /// The vmlinux BTF bytes (mapped when possible).
    pub fn vmlinux_btf(&self) -> Result<&[u8]> {
        if let Some(b) = self.vmlinux.get() {
            return Ok(b);
        }
        // Only the live sysfs file is mapped: it cannot change under us. A
        // user's file could be truncated while mapped, which would crash the
        // process (SIGBUS), so it is read.
        let bytes = match &self.btf {
            BtfSource::Live => map_or_read(Path::new(VMLINUX_BTF))?,
            BtfSource::File(p) => read(p)?,
            BtfSource::Dir(d) => read(&d.join("vmlinux"))?,
        };
        Ok(self.vmlinux.get_or_init(|| bytes))
    }

    /// Module BTFs, in search order (BTF object id order live, file name
    /// order offline).
    pub fn module_btfs(&self) -> Result<&[ModuleBtfData]> {
        if let Some(m) = self.modules.get() {
            return Ok(m);
        }
        let modules = match &self.btf {
            BtfSource::Live => live_modules()?,
            BtfSource::File(_) => Vec::new(),
            BtfSource::Dir(d) => dir_modules(d)?,
        };
        Ok(self.modules.get_or_init(|| modules))
    }

    /// Streams kallsyms through a matcher for `names`, in large reads.
    pub fn scan_kallsyms(&self, names: &[&[u8]], results: &mut [Option<Match>]) -> Result<Stats> {
        let path = match &self.kallsyms {
            KallsymsSource::Live => PathBuf::from(PROC_KALLSYMS),
            KallsymsSource::File(p) => p.clone(),
            KallsymsSource::Absent => {
                return Err(Error::Usage(
                    "the object has typeless ksyms: with saved BTF, a saved kallsyms file is needed too \
                     (`--kallsyms` of the command, `kallsyms_path` in C)"
                        .into(),
                ))
            }
        };
        let mut file = File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
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

fn live_modules() -> Result<Vec<ModuleBtfData>> {
    let mut out = Vec::new();
    let mut id = 0;
    loop {
        id = match sys::btf_get_next_id(id) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            // Without the privilege to list BTF objects, libbpf searches no
            // module: neither do we (a symbol only a module has stays
            // unresolved, and names itself in the error).
            Err(e) if listing_refused(&e) => break,
            Err(e) => return Err(Error::io("listing kernel BTF objects (BPF_BTF_GET_NEXT_ID)", e)),
        };
        let fd = match sys::btf_get_fd_by_id(id) {
            Ok(fd) => fd,
            // The object went away between the two calls.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(Error::io(format!("opening BTF object {id}"), e)),
        };
        let info = sys::btf_info(fd.as_fd()).map_err(|e| Error::io(format!("reading info of BTF object {id}"), e))?;
        if !info.kernel_btf || info.name == "vmlinux" {
            continue;
        }
        let data =
            sys::btf_data(fd.as_fd()).map_err(|e| Error::io(format!("reading BTF of module {}", info.name), e))?;
        let fd_value = fd.as_raw_fd();
        out.push(ModuleBtfData {
            name: info.name,
            data,
            fd: Some(fd),
            fd_value,
        });
    }
    Ok(out)
}

/// Whether listing BTF objects failed for want of privilege (`EPERM`), as
/// opposed to a real error.
fn listing_refused(err: &std::io::Error) -> bool {
    sys::errno(err) == Some(libc::EPERM)
}

fn dir_modules(dir: &Path) -> Result<Vec<ModuleBtfData>> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "vmlinux" && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for (n, name) in names.into_iter().enumerate() {
        let path = dir.join(&name);
        let data = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        out.push(ModuleBtfData {
            name,
            data,
            fd: None,
            fd_value: -2 - n as i32,
        });
    }
    Ok(out)
}
