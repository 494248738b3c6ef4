//! The source for `--mode kernel`: the in-kernel resolver
//! ([`crate::inkernel::lookup`]) answers every extern.

use std::collections::HashMap;
use std::sync::Arc;

use ksymrelo_core::btf::Kind;
use ksymrelo_core::lookup::{Answer, Query};
use ksymrelo_core::object::{Extern, ExternKind};
use ksymrelo_core::resolve::{Outcome, Resolution};

use super::Resolved;
use crate::error::{Error, ResolverFault, Result};
use crate::inkernel;
use crate::kallsyms_record::KallsymsRecord;
use crate::kernel::{Kernel, ModuleBtfData};

/// Source for `--mode kernel` (gen_loader semantics): every extern looked
/// up by the kernel — no type checks, the kernel's first kallsyms match.
/// Returns the module table (one entry per module BTF object).
pub(super) fn all_through_kernel(
    externs: &[Extern<'_>],
    kernel: &Kernel,
    out: &mut [Resolution],
    resolved: &mut Resolved,
) -> Result<Vec<Arc<ModuleBtfData>>> {
    fn query<'a>(e: &Extern<'a>) -> Option<Query<'a>> {
        match e.kind {
            ExternKind::Typeless => Some(Query::Address(e.name.as_bytes())),
            ExternKind::Typed => Some(Query::Btf(e.name.as_bytes(), Kind::Var)),
            ExternKind::Kfunc => Some(Query::Btf(e.lookup_name().as_bytes(), Kind::Func)),
            ExternKind::Kconfig => None,
        }
    }
    // Each distinct query once, found by hash (externs come from the caller).
    let mut queries: Vec<Query<'_>> = Vec::new();
    let mut seen: HashMap<Query<'_>, usize> = HashMap::with_capacity(externs.len());
    let mut which: Vec<Option<usize>> = Vec::with_capacity(externs.len());
    for e in externs {
        which.push(query(e).map(|q| {
            *seen.entry(q).or_insert_with(|| {
                queries.push(q);
                queries.len() - 1
            })
        }));
    }
    if !queries.is_empty() {
        kernel.note_in_kernel_lookup();
    }
    let (answers, found) = inkernel::lookup(&queries)?;
    // The lookup's fds, by the fd the answers carry, to the kept modules.
    let mut by_fd: HashMap<i32, usize> = HashMap::new();
    let mut modules: Vec<Arc<ModuleBtfData>> = Vec::new();
    for (id, name, fd) in found.modules {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        by_fd.insert(raw, modules.len());
        modules.push(kernel.adopt_module(id, name, fd)?);
    }
    let record: Option<Arc<KallsymsRecord>> = {
        let mut facts = kernel.kallsyms_facts();
        // Only for reporting modules: a record is read if there is one,
        // never built (kernel mode reads no file of its own).
        kernel.kallsyms_record(&mut facts, false).ok().flatten()
    };
    for (i, (r, q)) in out.iter_mut().zip(which).enumerate() {
        let Some(q) = q else { continue };
        match answers[q] {
            Answer::Address(addr) => {
                r.outcome = Outcome::Address { addr };
                resolved.kallsyms_modules[i] = record.as_ref().and_then(|r| r.module_of(addr)).map(str::to_owned);
            }
            Answer::Btf { btf_id, fd } => {
                let module = match fd {
                    0 => None,
                    fd => Some(
                        by_fd
                            .get(&fd)
                            .copied()
                            .ok_or(Error::ResolverFault(ResolverFault::UnknownBtfFd(fd)))?,
                    ),
                };
                r.outcome = Outcome::Btf {
                    btf_id,
                    btf_obj_fd: module.map_or(0, |m| modules[m].fd_value),
                    module: module.map(|m| m as u16),
                    fd_array_slot: 0,
                };
            }
            Answer::NotFound | Answer::Failed(_) => {}
        }
    }
    Ok(modules)
}
