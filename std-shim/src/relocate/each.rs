//! Every extern of an object resolved on its own, not stopping at the first
//! failure: what `ksymrelo check` and the per-extern reports show.

use ksymrelo_core::error::{Error as CoreError, LookupKind, Name};
use ksymrelo_core::object::{Extern, ExternKind};
use ksymrelo_core::resolve::{self, Outcome, Resolution, Unresolved};

use super::{parse, resolve_externs, ExternReport, Resolved};
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::modes::Mode;

/// One extern as [`resolve_each`] found it.
pub(crate) struct EachExtern {
    /// Its report; the outcome is unresolved when `error` is set or it was
    /// left out.
    pub report: ExternReport,
    /// The error that named it, had the object been relocated with it.
    pub error: Option<Error>,
    /// Left out by the caller's choice (not looked up).
    pub left_out: bool,
}

/// Every extern of `object` against `kernel` in `mode`, not stopping at the
/// first failure. All externs are resolved at once *as if weak*, so that
/// absent ones (and strong kfuncs of another prototype) are left unresolved
/// instead of stopping the walk; each strong one left so gets the error
/// libbpf gives it. What fails even when weak (an ambiguous kallsyms name,
/// a typed variable of another type, hidden addresses) ends a pass: that
/// extern gets the error and the others are resolved again without it. A
/// retry reads nothing again that the kernel keeps (vmlinux BTF and its
/// lookups, module BTF files, kallsyms answers). Externs for which
/// `leave_out` says yes are not looked up at all. Any other error (the
/// object malformed, kernel facts unreadable) ends it.
pub(crate) fn resolve_each(
    object: &[u8],
    kernel: &Kernel,
    mode: Mode,
    leave_out: impl Fn(&Extern<'_>) -> bool,
) -> Result<Vec<EachExtern>> {
    use crate::error::Reason;
    let mut index = Vec::new();
    let parsed = parse(object, &mut index)?;
    let n = parsed.externs.len();
    let left_out: Vec<bool> = parsed.externs.iter().map(&leave_out).collect();
    let mut errors: Vec<Option<Error>> = (0..n).map(|_| None).collect();
    let mut resolutions = vec![Resolution::default(); n];
    resolve::start(&parsed.externs, &mut resolutions)?;
    let mut kallsyms_modules = vec![None; n];
    let mut modules = Vec::new();
    if let Some(btf) = &parsed.btf {
        loop {
            let keep: Vec<usize> = (0..n).filter(|&i| !left_out[i] && errors[i].is_none()).collect();
            let subset: Vec<Extern<'_>> = keep
                .iter()
                .map(|&i| Extern {
                    weak: true,
                    ..parsed.externs[i]
                })
                .collect();
            if subset.is_empty() {
                break;
            }
            match resolve_externs(&subset, btf, kernel, mode) {
                Ok(r) => {
                    for (k, &i) in keep.iter().enumerate() {
                        resolutions[i] = r.resolutions[k];
                        kallsyms_modules[i] = r.kallsyms_modules[k].clone();
                    }
                    modules = r.modules;
                    break;
                }
                Err(e) => {
                    let per_extern = matches!(
                        e.reason(),
                        Reason::NotFound | Reason::Ambiguous | Reason::Incompatible | Reason::AddressesHidden
                    );
                    let named = e
                        .extern_name()
                        .and_then(|name| keep.iter().copied().find(|&i| parsed.externs[i].name == name));
                    match (named, e) {
                        // Hidden addresses hide every name: each typeless
                        // extern gets the error without a scan of its own.
                        (Some(_), Error::AddressesHidden { cause, .. }) => {
                            for &i in &keep {
                                if parsed.externs[i].kind == ExternKind::Typeless {
                                    errors[i] = Some(Error::AddressesHidden {
                                        name: parsed.externs[i].name.to_owned(),
                                        cause: cause.clone(),
                                    });
                                }
                            }
                        }
                        (Some(i), e) if per_extern => errors[i] = Some(e),
                        (_, e) => return Err(e),
                    }
                }
            }
        }
    }
    // The strong externs the weak pass left unresolved: libbpf's error.
    for (i, e) in parsed.externs.iter().enumerate() {
        if e.weak || left_out[i] || errors[i].is_some() || !e.kind.is_ksym() {
            continue;
        }
        let name = Name::from(e.name);
        errors[i] = match (resolutions[i].outcome, e.kind) {
            (Outcome::Unresolved(Unresolved::NotFound), ExternKind::Typed | ExternKind::Kfunc) => {
                Some(Error::Core(CoreError::NotInKernelBtf {
                    name,
                    kind: if e.kind == ExternKind::Typed {
                        LookupKind::Var
                    } else {
                        LookupKind::Func
                    },
                }))
            }
            (Outcome::Unresolved(Unresolved::NotFound), _) => Some(Error::Core(CoreError::StrongUnresolved { name })),
            // The prototype check's own words (ids included): this extern
            // alone, strong, from the lookups kept.
            (Outcome::Unresolved(Unresolved::Incompatible), _) => match &parsed.btf {
                Some(btf) => resolve_externs(std::slice::from_ref(e), btf, kernel, mode).err(),
                None => None,
            },
            _ => None,
        };
    }
    let resolved = Resolved {
        resolutions,
        fd_array: Vec::new(),
        modules,
        kallsyms_modules,
    };
    Ok(resolved
        .reports(&parsed.externs, &parsed.sites)
        .into_iter()
        .zip(errors)
        .zip(left_out)
        .map(|((report, error), left_out)| EachExtern {
            report,
            error,
            left_out,
        })
        .collect())
}
