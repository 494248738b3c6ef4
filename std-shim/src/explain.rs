//! Why a strong extern was not found, and what is near: the hints of a
//! "not found" error. Runs only on that error path, so it may read what the
//! hot path avoids (one more pass over the BTF names, one kallsyms scan).

use std::fmt::Write as _;

use ksymrelo_core::btf::near::{self, Near};
use ksymrelo_core::btf::{first_difference, write_c_decl, write_c_type, write_difference, Btf, Kind};
use ksymrelo_core::object::{Extern, ExternKind};
use ksymrelo_core::resolve::ModuleBtf;

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

/// A type mismatch told as libbpf tells it, with both types as C, where
/// they first differ, and where the kernel type lives (vmlinux or the
/// module's name); any other error unchanged.
pub(crate) fn incompatible(
    err: ksymrelo_core::Error,
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    vmlinux: &Btf<'_>,
    modules: &[ModuleBtf<'_>],
) -> Error {
    use ksymrelo_core::Error as C;
    let (name, local_id, kernel_id, func) = match &err {
        C::IncompatibleVar {
            name,
            local_id,
            kernel_id,
        } => (name.to_string(), *local_id, *kernel_id, false),
        C::IncompatibleFunc {
            name,
            local_id,
            kernel_id,
        } => (name.to_string(), *local_id, *kernel_id, true),
        _ => return err.into(),
    };
    // The BTF that holds the kernel type: vmlinux, or the module whose ids
    // contain it.
    let in_vmlinux = vmlinux.end_id().is_ok_and(|end| kernel_id < end);
    let (kbtf, place) = match modules
        .iter()
        .find(|m| !in_vmlinux && m.btf.start_id() <= kernel_id && m.btf.end_id().is_ok_and(|e| kernel_id < e))
    {
        Some(m) => (&m.btf, m.name),
        None => (vmlinux, "vmlinux"),
    };
    let ext = externs.iter().find(|e| e.name == name);
    let c_type = |btf: &Btf<'_>, id: u32| {
        let mut s = String::new();
        let _ = write_c_type(btf, id, &mut s);
        s
    };
    let mut text = String::new();
    if func {
        let decl = |btf: &Btf<'_>, id: u32| {
            let mut s = String::new();
            let _ = write_c_decl(btf, id, ext.map_or(&name, |e| e.lookup_name()), &mut s);
            s
        };
        let _ = write!(
            text,
            "extern (func ksym) '{name}': func_proto [{local_id}] incompatible with {place} [{kernel_id}]: \
             local '{}' vs kernel '{}'",
            decl(local, local_id),
            decl(kbtf, kernel_id)
        );
    } else {
        let _ = write!(
            text,
            "extern (var ksym) '{name}': incompatible types, expected [{local_id}] {}, but kernel has [{kernel_id}] {} (in {place})",
            c_type(local, local_id),
            c_type(kbtf, kernel_id)
        );
    }
    if let Ok(Some(d)) = first_difference(local, local_id, kbtf, kernel_id) {
        let mut diff = String::new();
        let _ = write_difference(local, kbtf, &d, &mut diff);
        let top = d.at == ksymrelo_core::btf::Place::Top && (d.local_inner, d.kernel_inner) == (d.local, d.kernel);
        match diff.rfind("' (") {
            // Both types are in the message already: only the rule.
            Some(at) if top => {
                text.push(' ');
                text.push_str(&diff[at + 2..]);
            }
            _ => {
                text.push_str("; ");
                text.push_str(&diff);
            }
        }
    }
    Error::Incompatible {
        source: Box::new(err),
        message: text,
    }
}
