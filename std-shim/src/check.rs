//! Checking one object against many kernels' saved facts (`ksymrelo check
//! OBJECT --kernels DIR`): for each kernel, the outcome of every ksym
//! extern, not only the first that fails.
//!
//! Layout of a kernels directory: one subdirectory per kernel (its name is
//! the kernel's name in reports; hidden ones and plain files are ignored),
//! holding either
//! - `btf/`: a directory laid out like `/sys/kernel/btf` (`btf/vmlinux`,
//!   plus one split BTF file per module, named after the module), or
//! - `vmlinux`: the vmlinux BTF file, with module BTF files beside it (every
//!   other file of the subdirectory except `kallsyms`);
//!
//! and optionally `kallsyms`, a saved `/proc/kallsyms` (saved as root, so
//! that its addresses are real). When `btf/` exists it is used.
//!
//! Each kernel is a [`Kernel`] of its own, resolved in [`Mode::User`]
//! (libbpf's own way from files); kernels are checked in parallel.

use std::path::{Path, PathBuf};

use ksymrelo_core::object::ExternKind;
use ksymrelo_core::resolve::{Outcome as Resolved, Unresolved};
#[cfg(feature = "json")]
use serde_json::{json, Map, Value};

use crate::error::{Error, Reason, Result};
use crate::kernel::Kernel;
use crate::modes::Mode;
use crate::relocate::resolve_each;

/// One kernel's saved facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDir {
    /// Its name in reports (the subdirectory's name).
    pub name: String,
    /// vmlinux BTF: a `/sys/kernel/btf`-like directory (`vmlinux` and
    /// module files), or a lone vmlinux BTF file.
    pub btf: PathBuf,
    /// A saved `/proc/kallsyms`, if any.
    pub kallsyms: Option<PathBuf>,
}

impl KernelDir {
    /// The kernel saved in directory `path` (see the module documentation
    /// for the layout), named after the directory.
    pub fn open(path: &Path) -> Result<KernelDir> {
        let name = path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let btf = if path.join("btf").is_dir() {
            path.join("btf")
        } else if path.join("vmlinux").is_file() {
            path.to_path_buf()
        } else {
            return Err(Error::io(
                format!("kernel {name}: {} has neither btf/ nor vmlinux", path.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        let kallsyms = Some(path.join("kallsyms")).filter(|p| p.is_file());
        Ok(KernelDir { name, btf, kallsyms })
    }

    /// The kernel directories in `dir`, sorted by name: every subdirectory
    /// (symbolic links followed) whose name does not start with `.`.
    pub fn list(dir: &Path) -> Result<Vec<KernelDir>> {
        let listing = |e| Error::io(format!("listing {}", dir.display()), e);
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let path = entry.path();
            if !entry.file_name().to_string_lossy().starts_with('.') && path.is_dir() {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(|p| KernelDir::open(p)).collect()
    }

    fn kernel(&self) -> Kernel {
        Kernel::from_files(Some(&self.btf), self.kallsyms.as_deref())
    }
}

/// What became of one extern on one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Resolved.
    Ok,
    /// A strong extern the kernel lacks.
    Missing,
    /// The kernel's type differs from the object's (a strong kfunc's
    /// prototype, or a typed variable's type, weak or not, as libbpf).
    Incompatible,
    /// kallsyms lists the name at two addresses (libbpf refuses it).
    Ambiguous,
    /// A `__weak` extern the kernel lacks: left 0 (`bpf_ksym_exists()` is
    /// false), calls to a weak kfunc poisoned. Does not stop loading.
    WeakMissing,
    /// A `__weak` kfunc whose prototype differs: treated as missing, as
    /// libbpf does. Does not stop loading.
    WeakIncompatible,
    /// A typeless ksym, but the kernel directory has no usable `kallsyms`
    /// (none, or one that lists only zero addresses): not checked, so the
    /// kernel does not count as one the object loads on (weak or not).
    NoKallsyms,
}

impl Outcome {
    /// The cell of `ksymrelo check`'s table and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Missing => "missing",
            Outcome::Incompatible => "incompatible",
            Outcome::Ambiguous => "ambiguous",
            Outcome::WeakMissing => "weak-missing",
            Outcome::WeakIncompatible => "weak-incompatible",
            Outcome::NoKallsyms => "no kallsyms",
        }
    }
}

/// One extern on one kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternCheck {
    /// Full name.
    pub name: String,
    /// Kind.
    pub kind: ExternKind,
    /// `__weak`.
    pub weak: bool,
    /// What became of it.
    pub outcome: Outcome,
    /// BTF id of a resolved typed variable or kfunc.
    pub btf_id: Option<u32>,
    /// Address of a resolved typeless ksym.
    pub addr: Option<u64>,
    /// The module that provides it.
    pub module: Option<String>,
    /// The error libbpf would stop at, for a failed one.
    pub message: Option<String>,
}

impl ExternCheck {
    /// Whether this extern lets the object load: resolved, or weak and
    /// absent. Not an unchecked one ([`Outcome::NoKallsyms`]), weak or not.
    pub fn allows_loading(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Ok | Outcome::WeakMissing | Outcome::WeakIncompatible
        )
    }
}

/// One kernel's verdict.
#[derive(Debug)]
pub struct KernelCheck {
    /// The kernel's name (its subdirectory).
    pub kernel: String,
    /// Every ksym extern, in libbpf's extern order (empty on `error`).
    pub externs: Vec<ExternCheck>,
    /// The kernel's facts could not be read, or the object not relocated
    /// for a reason that names no extern.
    pub error: Option<Error>,
}

impl KernelCheck {
    /// Whether the object is known to load here: every extern resolved or
    /// weak and absent, none unchecked.
    pub fn loads(&self) -> bool {
        self.error.is_none() && self.externs.iter().all(ExternCheck::allows_loading)
    }
}

/// Checks `object` against every kernel of `kernels`, in their order: each
/// kernel is read once (one [`Kernel`], vmlinux validated and walked once,
/// kallsyms scanned once unless an ambiguity is met), each extern's outcome
/// recorded. Kernels are checked on up to as many threads as there are
/// CPUs. Errors only if `object` is not a BPF object.
pub fn check_kernels(object: &[u8], kernels: &[KernelDir]) -> Result<Vec<KernelCheck>> {
    crate::relocate::list_externs(object)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(kernels.len());
    let mut out: Vec<Option<KernelCheck>> = (0..kernels.len()).map(|_| None).collect();
    if threads <= 1 {
        for (slot, k) in out.iter_mut().zip(kernels) {
            *slot = Some(check_kernel(object, k));
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(&mut out);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(k) = kernels.get(i) else { break };
                    let check = check_kernel(object, k);
                    done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(check);
                });
            }
        });
    }
    Ok(out.into_iter().map(|c| c.expect("every kernel checked")).collect())
}

/// One kernel: every extern's outcome.
pub fn check_kernel(object: &[u8], dir: &KernelDir) -> KernelCheck {
    let kernel = dir.kernel();
    let no_kallsyms = dir.kallsyms.is_none();
    let each = match resolve_each(object, &kernel, Mode::User, |e| {
        no_kallsyms && e.kind == ExternKind::Typeless
    }) {
        Ok(each) => each,
        Err(e) => {
            return KernelCheck {
                kernel: dir.name.clone(),
                externs: Vec::new(),
                error: Some(e),
            }
        }
    };
    let externs = each
        .into_iter()
        .filter(|e| e.report.kind.is_ksym())
        .map(|e| {
            let r = &e.report;
            let (outcome, btf_id, addr) = match (&e.error, r.resolution.outcome) {
                _ if e.left_out => (Outcome::NoKallsyms, None, None),
                (Some(err), _) => (
                    match err.reason() {
                        Reason::Ambiguous => Outcome::Ambiguous,
                        Reason::Incompatible => Outcome::Incompatible,
                        Reason::AddressesHidden => Outcome::NoKallsyms,
                        _ if r.weak => Outcome::WeakMissing,
                        _ => Outcome::Missing,
                    },
                    None,
                    None,
                ),
                (None, Resolved::Btf { btf_id, .. }) => (Outcome::Ok, Some(btf_id.0), None),
                (None, Resolved::Address { addr }) => (Outcome::Ok, None, Some(addr)),
                (None, Resolved::Unresolved(Unresolved::Incompatible)) => (Outcome::WeakIncompatible, None, None),
                (None, Resolved::Unresolved(_)) => (Outcome::WeakMissing, None, None),
            };
            let message = match (&e.error, e.left_out) {
                (Some(err), _) => Some(err.to_string()),
                (None, true) => Some(format!("no kallsyms file in the directory of kernel {}", dir.name)),
                (None, false) => None,
            };
            ExternCheck {
                name: r.name.clone(),
                kind: r.kind,
                weak: r.weak,
                outcome,
                btf_id,
                addr,
                module: if outcome == Outcome::Ok { r.module.clone() } else { None },
                message,
            }
        })
        .collect();
    KernelCheck {
        kernel: dir.name.clone(),
        externs,
        error: None,
    }
}

/// The JSON document of `ksymrelo check --json`: `{"externs": [names in
/// libbpf's order], "kernels": [{"kernel", "loads", "error", "externs":
/// {name: outcome}, "detail": {name: {"kind", "weak", "btf_id", "addr",
/// "module", "message"}}}]}`.
#[cfg(feature = "json")]
pub fn to_json(names: &[String], checks: &[KernelCheck]) -> Value {
    let kernels: Vec<Value> = checks
        .iter()
        .map(|k| {
            let mut outcomes = Map::new();
            let mut detail = Map::new();
            for e in &k.externs {
                outcomes.insert(e.name.clone(), json!(e.outcome.as_str()));
                detail.insert(
                    e.name.clone(),
                    json!({
                        "kind": e.kind.as_str(),
                        "weak": e.weak,
                        "btf_id": e.btf_id,
                        "addr": e.addr.map(|a| format!("{a:#x}")),
                        "module": e.module,
                        "message": e.message,
                    }),
                );
            }
            json!({
                "kernel": k.kernel,
                "loads": k.loads(),
                "error": k.error.as_ref().map(|e| e.to_string()),
                "externs": outcomes,
                "detail": detail,
            })
        })
        .collect();
    json!({"externs": names, "kernels": kernels})
}

/// The table of `ksymrelo check`: one row per kernel, one column per extern
/// (`names`, libbpf's order), then `LOADS HERE` (`yes`/`no`). A kernel that
/// could not be checked has `error` in every cell.
pub fn to_table(names: &[String], checks: &[KernelCheck]) -> String {
    let mut header: Vec<&str> = vec!["KERNEL"];
    header.extend(names.iter().map(String::as_str));
    header.push("LOADS HERE");
    let rows: Vec<Vec<&str>> = checks
        .iter()
        .map(|k| {
            let mut row = vec![k.kernel.as_str()];
            for name in names {
                row.push(match k.externs.iter().find(|e| &e.name == name) {
                    Some(e) => e.outcome.as_str(),
                    None => "error",
                });
            }
            row.push(if k.loads() { "yes" } else { "no" });
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
