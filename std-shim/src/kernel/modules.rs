//! Module BTFs: listed from the running kernel with `bpf(2)`, or read
//! from a directory laid out like `/sys/kernel/btf`.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::ModuleBtfData;
use crate::error::{Error, Result};
use crate::sys;

/// The running kernel's module BTFs, reusing those of `known` that are
/// still loaded (same BTF object id).
pub(super) fn live_modules(known: Vec<Arc<ModuleBtfData>>, refused: &AtomicBool) -> Result<Vec<Arc<ModuleBtfData>>> {
    refused.store(false, Ordering::Relaxed);
    let mut out = Vec::new();
    let mut id = 0;
    loop {
        id = match sys::btf_get_next_id(id) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            // Without the privilege to list BTF objects, libbpf searches no
            // module: neither do we (a symbol only a module has stays
            // unresolved, and names itself in the error).
            Err(e) if listing_refused(&e) => {
                refused.store(true, Ordering::Relaxed);
                break;
            }
            Err(e) => return Err(Error::bpf("listing kernel BTF objects (BPF_BTF_GET_NEXT_ID)", e)),
        };
        if let Some(m) = known.iter().find(|m| m.id == id) {
            out.push(m.clone());
            continue;
        }
        let fd = match sys::btf_get_fd_by_id(id) {
            Ok(fd) => fd,
            // The object went away between the two calls.
            Err(e) if e.errno() == libc::ENOENT => continue,
            Err(e) => return Err(Error::bpf(format!("opening BTF object {id}"), e)),
        };
        let info = sys::btf_info(fd.as_fd()).map_err(|e| Error::bpf(format!("reading info of BTF object {id}"), e))?;
        if !info.kernel_btf || info.name == "vmlinux" {
            continue;
        }
        let data =
            sys::btf_data(fd.as_fd()).map_err(|e| Error::bpf(format!("reading BTF of module {}", info.name), e))?;
        let fd_value = fd.as_raw_fd();
        out.push(Arc::new(ModuleBtfData {
            name: info.name,
            id,
            data,
            fd: Some(fd),
            fd_value,
        }));
    }
    Ok(out)
}

/// Whether listing BTF objects failed for want of privilege (`EPERM`), as
/// opposed to a real error.
fn listing_refused(err: &sys::BpfError) -> bool {
    err.errno() == libc::EPERM
}

pub(super) fn dir_modules(dir: &Path) -> Result<Vec<Arc<ModuleBtfData>>> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A saved kallsyms may lie beside the BTF files (`ksymrelo check`'s
        // kernel directories): it is no module.
        if name != "vmlinux" && name != "kallsyms" && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for (n, name) in names.into_iter().enumerate() {
        let path = dir.join(&name);
        let data = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        out.push(Arc::new(ModuleBtfData {
            name,
            id: n as u32,
            data,
            fd: None,
            fd_value: -2 - n as i32,
        }));
    }
    Ok(out)
}
