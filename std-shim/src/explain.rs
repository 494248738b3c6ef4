//! Why a strong extern was not found, and what is near: the hints of a
//! "not found" error. Runs only on that error path, so it may read what the
//! hot path avoids (one more pass over the BTF names, one kallsyms scan).

use ksymrelo_core::btf::near::{self, Near};
use ksymrelo_core::btf::Kind;
use ksymrelo_core::object::{Extern, ExternKind};

use crate::error::{Error, Reason};
use crate::kernel::Kernel;

/// Most names suggested.
const SUGGESTIONS: usize = 3;

/// `err` with hints if it says a strong extern of `externs` was not found;
/// any other error unchanged.
pub(crate) fn not_found(err: Error, externs: &[Extern<'_>], kernel: &Kernel) -> Error {
    if err.reason() != Reason::NotFound {
        return err;
    }
    let Some(name) = err.extern_name() else { return err };
    let Some(ext) = externs.iter().find(|e| e.name == name) else {
        return err;
    };
    let (hints, candidates) = explain(ext, kernel);
    if hints.is_empty() && candidates.is_empty() {
        return err;
    }
    Error::NotFound {
        source: Box::new(err),
        hints,
        candidates,
    }
}

fn kind_word(kind: Kind) -> &'static str {
    if kind == Kind::Func {
        "a function (FUNC)"
    } else {
        "a variable (VAR)"
    }
}

fn explain(ext: &Extern<'_>, kernel: &Kernel) -> (Vec<String>, Vec<String>) {
    let mut hints = Vec::new();
    let mut candidates = Vec::new();
    let name = ext.lookup_name();
    let wanted = match ext.kind {
        ExternKind::Typed => Some(Kind::Var),
        ExternKind::Kfunc => Some(Kind::Func),
        _ => None,
    };
    // Kernel BTF: the name with another kind, and close names.
    if let Ok(vmlinux) = kernel.vmlinux_lookup(&[], &mut []) {
        for other in [Kind::Var, Kind::Func] {
            if Some(other) == wanted {
                continue;
            }
            if let Ok(Some(id)) = vmlinux.find_by_name_kind(name.as_bytes(), other) {
                hints.push(match ext.kind {
                    ExternKind::Typeless => format!(
                        "kallsyms does not list it, but kernel BTF has it as {} [{id}]",
                        kind_word(other)
                    ),
                    _ => format!(
                        "kernel BTF has '{name}' as {} [{id}], not as {}: declare it {}",
                        kind_word(other),
                        kind_word(wanted.unwrap_or(Kind::Var)),
                        if other == Kind::Func {
                            "as a kfunc (a function declaration)"
                        } else {
                            "as a variable"
                        }
                    ),
                });
            }
        }
        let one;
        let kinds: &[Kind] = match wanted {
            Some(k) => {
                one = [k];
                &one
            }
            None => &[Kind::Var, Kind::Func],
        };
        let mut near: [Option<Near<'_>>; SUGGESTIONS] = [None; SUGGESTIONS];
        if let Ok(n) = near::nearest(&vmlinux, name.as_bytes(), kinds, &mut near) {
            candidates.extend(
                near[..n]
                    .iter()
                    .flatten()
                    .map(|n| String::from_utf8_lossy(n.name).into_owned()),
            );
        }
    }
    // Modules the search could not see.
    if kernel.module_listing_refused() {
        hints.push(
            "module BTFs could not be listed (BPF_BTF_GET_NEXT_ID needs CAP_SYS_ADMIN), so no module was searched"
                .into(),
        );
    }
    // kallsyms against BTF, the other way round (unless BTF already said
    // what it is).
    if wanted.is_some() && hints.is_empty() && kernel.kallsyms_is_live() {
        let mut found = [None];
        if kernel.scan_kallsyms(&[name.as_bytes()], &mut found).is_ok() {
            if let Some(m) = found[0] {
                match m.module() {
                    Some(module) => {
                        let module = String::from_utf8_lossy(module);
                        let listed = kernel
                            .module_btfs()
                            .map(|ms| ms.iter().any(|m| m.name == module))
                            .unwrap_or(false);
                        hints.push(if listed {
                            format!(
                                "kallsyms lists it in module {module}, but that module's BTF has no {} of that name",
                                kind_word(wanted.unwrap_or(Kind::Var))
                            )
                        } else {
                            format!("kallsyms lists it in module {module}, but that module's BTF is not available here")
                        });
                    }
                    None => hints.push(format!(
                        "kallsyms lists it (at {:#x}), but kernel BTF has no {} of that name",
                        m.addr,
                        kind_word(wanted.unwrap_or(Kind::Var))
                    )),
                }
            }
        }
    }
    (hints, candidates)
}
