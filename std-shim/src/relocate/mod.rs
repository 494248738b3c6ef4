//! The relocation pipeline, one for every mode and every caller: parse the
//! object once; ask the sources of kernel facts about the externs each one
//! answers; one core step ([`resolve::finish`]) turns their answers into
//! the final resolutions (strong externs, fd_array slots); patch; report.
//!
//! The sources:
//! - kernel BTF in user space (vmlinux mapped, module BTFs through
//!   `bpf(2)`), with libbpf's compatibility checks — typed variables and
//!   kfuncs, in `user` and `auto` modes;
//! - kallsyms text (`/proc/kallsyms` or a saved file), libbpf's own scan —
//!   typeless variables in `user` mode, and wherever the kernel's lookups
//!   are refused;
//! - the in-kernel resolver ([`crate::inkernel::lookup`]), names in and
//!   answers out — everything in `kernel` mode;
//! - the per-boot kallsyms record ([`crate::kallsyms_record`]): libbpf's
//!   scan of kallsyms done once per boot and module set, kept — typeless
//!   variables in `auto` mode.
//!
//! A [`Mode`] is only the choice of which source answers which extern.

use std::sync::Arc;

use ksymrelo_core::btf::{Btf, Kind};
use ksymrelo_core::error::{Error as CoreError, Name};
use ksymrelo_core::index::SectionIndex;
use ksymrelo_core::insn::Insn;
use ksymrelo_core::kallsyms::Match;
use ksymrelo_core::object::{Extern, ExternKind, Object, Site, SiteKind};
use ksymrelo_core::patch;
use ksymrelo_core::resolve::{self, FdArray, KernelBtf, ModuleBtf, Outcome, Resolution};

use crate::error::Result;
use crate::kallsyms_record::Listed;
use crate::kernel::{Kernel, ModuleBtfData};
use crate::modes::Mode;

mod each;
mod insns;
mod through_kernel;

pub(crate) use each::resolve_each;
pub use insns::{relocate_insns, relocate_insns_if, relocate_insns_with, InsnRelocation, InsnSite};

/// One extern and what it resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternReport {
    /// Full name.
    pub name: String,
    /// Kind.
    pub kind: ExternKind,
    /// `__weak`.
    pub weak: bool,
    /// Resolution (kind, index, outcome).
    pub resolution: Resolution,
    /// Module that provides it (BTF module, or kallsyms `[module]`).
    pub module: Option<String>,
    /// Number of instructions that refer to it.
    pub sites: usize,
    /// An unresolved weak ksym (a kfunc, or a variable called as one)
    /// whose calls are poisoned (`call 2002000000
    /// + index`: refused by the verifier only if reachable).
    pub poisoned: bool,
}

/// One executable section after relocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelocatedSection {
    /// ELF section index.
    pub index: SectionIndex,
    /// ELF section name.
    pub name: String,
    /// All of its instructions, patched.
    pub insns: Vec<Insn>,
}

/// The result of relocating an object.
#[derive(Debug, Default)]
pub struct Relocation {
    /// Externs, in libbpf's extern order.
    pub externs: Vec<ExternReport>,
    /// fd_array to load with (empty unless a module kfunc is called).
    pub fd_array: Vec<i32>,
    /// Every executable section, in section order (empty after
    /// [`relocate_in_place`], whose instructions are in the object).
    pub sections: Vec<RelocatedSection>,
    /// Every site, in section and relocation order.
    pub sites: Vec<Site>,
    /// The module BTF objects the instructions and `fd_array` refer to:
    /// their fds stay open while this lives, even if the [`Kernel`] drops
    /// them (a module unloaded since).
    pub modules: Vec<Arc<ModuleBtfData>>,
}

impl Relocation {
    /// The section with this ELF name.
    pub fn section(&self, name: &str) -> Option<&RelocatedSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The extern with this name.
    pub fn extern_named(&self, name: &str) -> Option<&ExternReport> {
        self.externs.iter().find(|e| e.name == name)
    }
}

/// What the sources said of a set of externs, after the core's last step.
pub(crate) struct Resolved {
    /// `[i]` for `externs[i]`.
    pub resolutions: Vec<Resolution>,
    pub fd_array: Vec<i32>,
    /// The module table `Outcome::Btf::module` indexes.
    pub modules: Vec<Arc<ModuleBtfData>>,
    /// Per extern: its kallsyms `[module]` (typeless ones).
    pub kallsyms_modules: Vec<Option<String>>,
}

impl Resolved {
    fn reports(&self, externs: &[Extern<'_>], sites: &[Site]) -> Vec<ExternReport> {
        let mut counts = vec![0usize; externs.len()];
        let mut called = vec![false; externs.len()];
        for s in sites {
            if let Some(c) = counts.get_mut(s.extern_idx.get()) {
                *c += 1;
                called[s.extern_idx.get()] |= s.kind == SiteKind::Call;
            }
        }
        externs
            .iter()
            .zip(&self.resolutions)
            .zip(&self.kallsyms_modules)
            .zip(counts)
            .zip(called)
            .map(|((((e, r), kallsyms_module), sites), called)| ExternReport {
                name: e.name.to_owned(),
                kind: e.kind,
                weak: e.weak,
                resolution: *r,
                module: match r.outcome {
                    Outcome::Btf { module: Some(m), .. } => self.modules.get(usize::from(m)).map(|m| m.name.clone()),
                    _ => kallsyms_module.clone(),
                },
                sites,
                // The patcher poisons every unresolved call site of a ksym,
                // as libbpf (a call through a weak variable too).
                poisoned: called && e.kind.is_ksym() && !r.is_resolved() && !self.resolutions.is_empty(),
            })
            .collect()
    }

    /// Only the modules some outcome names, for the relocation to hold.
    fn held_modules(&self) -> Vec<Arc<ModuleBtfData>> {
        let mut used = vec![false; self.modules.len()];
        for r in &self.resolutions {
            if let Outcome::Btf { module: Some(m), .. } = r.outcome {
                if let Some(u) = used.get_mut(usize::from(m)) {
                    *u = true;
                }
            }
        }
        self.modules
            .iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Resolves `externs` (the object's BTF is `local`) against `kernel` in
/// `mode`: the one pipeline behind every entry point. A strong extern not
/// found comes with hints (see [`crate::explain`]).
pub(crate) fn resolve_externs(
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    kernel: &Kernel,
    mode: Mode,
) -> Result<Resolved> {
    resolve_with_sources(externs, local, kernel, mode).map_err(|e| crate::explain::not_found(e, externs, kernel))
}

fn resolve_with_sources(externs: &[Extern<'_>], local: &Btf<'_>, kernel: &Kernel, mode: Mode) -> Result<Resolved> {
    let mut out = vec![Resolution::default(); externs.len()];
    resolve::start(externs, &mut out)?;
    let mut resolved = Resolved {
        resolutions: Vec::new(),
        fd_array: Vec::new(),
        modules: Vec::new(),
        kallsyms_modules: vec![None; externs.len()],
    };
    let needs = resolve::needs(externs);
    // The kernel's own lookups answer only for the running kernel.
    let mode = if kernel.is_live() && kernel.kallsyms_is_live() {
        mode
    } else {
        Mode::User
    };
    match mode {
        Mode::User => {
            if needs.kallsyms {
                let matches = kallsyms_scanned(externs, kernel)?;
                apply_typeless(externs, &matches, &mut out, &mut resolved)?;
            }
            if needs.btf {
                resolved.modules = btf_in_user_space(externs, local, kernel, &mut out)?;
            }
        }
        Mode::Auto => {
            // libbpf reads kallsyms before BTF: its errors come first.
            if needs.kallsyms {
                let matches = kallsyms_from_record(externs, kernel)?;
                apply_typeless(externs, &matches, &mut out, &mut resolved)?;
            }
            if needs.btf {
                resolved.modules = btf_in_user_space(externs, local, kernel, &mut out)?;
            }
        }
        Mode::Kernel => {
            resolved.modules = through_kernel::all_through_kernel(externs, kernel, &mut out, &mut resolved)?
        }
    }
    let fds: Vec<i32> = resolved.modules.iter().map(|m| m.fd_value).collect();
    let mut slots = vec![0i32; resolved.modules.len() + 1];
    let mut fd_array = FdArray::new(&mut slots);
    resolve::finish(externs, &mut out, &fds, &mut fd_array)?;
    resolved.fd_array = fd_array.as_slice().to_vec();
    resolved.resolutions = out;
    Ok(resolved)
}

/// The names kallsyms is scanned for, as libbpf: every typeless extern,
/// then every typed variable (checked for ambiguity only, SPEC §7.5).
/// Returns them and how many are typeless.
fn kallsyms_wanted<'a>(externs: &[Extern<'a>]) -> (Vec<&'a [u8]>, usize) {
    let mut names: Vec<&[u8]> = externs
        .iter()
        .filter(|e| e.kind == ExternKind::Typeless)
        .map(|e| e.name.as_bytes())
        .collect();
    let typeless = names.len();
    names.extend(
        externs
            .iter()
            .filter(|e| e.kind == ExternKind::Typed)
            .map(|e| e.name.as_bytes()),
    );
    (names, typeless)
}

/// Typeless answers in the order of [`resolve::kallsyms_names`].
fn apply_typeless(
    externs: &[Extern<'_>],
    matches: &[Option<Match>],
    out: &mut [Resolution],
    resolved: &mut Resolved,
) -> Result<()> {
    resolve::apply_kallsyms(externs, matches, out)?;
    let typeless = externs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == ExternKind::Typeless);
    for ((i, _), m) in typeless.zip(matches) {
        resolved.kallsyms_modules[i] = m
            .as_ref()
            .and_then(|m| m.module())
            .map(|b| String::from_utf8_lossy(b).into_owned());
    }
    Ok(())
}

/// Source: libbpf's scan of the kallsyms text, for the names this kernel
/// has not answered before.
fn kallsyms_scanned(externs: &[Extern<'_>], kernel: &Kernel) -> Result<Vec<Option<Match>>> {
    let (names, typeless) = kallsyms_wanted(externs);
    let mut facts = kernel.kallsyms_facts();
    let unknown: Vec<&[u8]> = names
        .iter()
        .copied()
        .filter(|n| !facts.answers.contains_key(*n))
        .collect();
    if !unknown.is_empty() {
        let mut found = vec![None; unknown.len()];
        kernel
            .scan_kallsyms(&unknown, &mut found)
            .map_err(|e| e.with_hidden_cause(kernel.kallsyms_is_live()))?;
        for (name, m) in unknown.iter().zip(found) {
            facts.answers.insert(name.to_vec(), m);
        }
    }
    Ok(names[..typeless].iter().map(|n| facts.answers[*n]).collect())
}

/// Source for the default mode: libbpf's answer without reading kallsyms
/// again — from the per-boot kallsyms record (an ambiguous name fails as
/// libbpf fails). Falls back to the scan where no record can be had
/// (addresses hidden, saved files).
fn kallsyms_from_record(externs: &[Extern<'_>], kernel: &Kernel) -> Result<Vec<Option<Match>>> {
    let (names, typeless) = kallsyms_wanted(externs);
    let mut facts = kernel.kallsyms_facts();
    let unknown: Vec<usize> = (0..names.len())
        .filter(|&i| !facts.answers.contains_key(names[i]))
        .collect();
    if !unknown.is_empty() {
        let Some(record) = kernel.kallsyms_record(&mut facts, true)? else {
            drop(facts);
            return kallsyms_scanned(externs, kernel);
        };
        let listed: Vec<(usize, Option<Listed<'_>>)> = unknown.iter().map(|&i| (i, record.lookup(names[i]))).collect();
        // The scan stops at the first ambiguity it meets, in file order.
        let ambiguous = listed
            .iter()
            .filter_map(|&(i, l)| match l {
                Some(Listed::Ambiguous { first, second, line }) => Some((line, i, first, second)),
                _ => None,
            })
            .min();
        if let Some((_, i, first, second)) = ambiguous {
            return Err(CoreError::KallsymsAmbiguous {
                name: Name::new(names[i]),
                first,
                second,
            }
            .into());
        }
        for (i, l) in listed {
            facts.answers.insert(names[i].to_vec(), l.and_then(Listed::to_match));
        }
    }
    Ok(names[..typeless].iter().map(|n| facts.answers[*n]).collect())
}

/// Source: typed variables and kfuncs in kernel BTF, in user space (vmlinux
/// first; module BTFs only when vmlinux lacks something, as libbpf).
/// Returns the module table the outcomes index.
fn btf_in_user_space(
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    kernel: &Kernel,
    out: &mut [Resolution],
) -> Result<Vec<Arc<ModuleBtfData>>> {
    let mut lookups = vec![None; externs.len()];
    resolve::btf_lookups(externs, &mut lookups)?;
    // Sorted by name, so that the walk finds each type's name by binary
    // search (the names are the caller's, any number of them).
    let mut wanted: Vec<(usize, (&[u8], Kind))> = lookups.iter().flatten().copied().enumerate().collect();
    wanted.sort_unstable_by(|a, b| a.1 .0.cmp(b.1 .0));
    let sorted: Vec<(&[u8], Kind)> = wanted.iter().map(|w| w.1).collect();
    let mut sorted_found = vec![None; sorted.len()];
    let vmlinux = kernel.vmlinux_lookup(&sorted, &mut sorted_found)?;
    let mut found = vec![None; sorted.len()];
    for ((i, _), f) in wanted.iter().zip(sorted_found) {
        found[*i] = f;
    }
    let mut vm_found: Vec<Option<u32>> = vec![None; externs.len()];
    let mut results = found.into_iter();
    for (slot, lookup) in vm_found.iter_mut().zip(&lookups) {
        if lookup.is_some() {
            *slot = results.next().flatten();
        }
    }
    let all_in_vmlinux = lookups.iter().zip(&vm_found).all(|(l, f)| l.is_none() || f.is_some());
    let modules = if all_in_vmlinux {
        Vec::new()
    } else {
        kernel.module_btfs()?
    };
    let mut indexes: Vec<Vec<u32>> = modules
        .iter()
        .map(|m| vec![0u32; Btf::max_type_count(&m.data)])
        .collect();
    let mut module_btfs: Vec<ModuleBtf<'_>> = Vec::with_capacity(modules.len());
    for (m, index) in modules.iter().zip(indexes.iter_mut()) {
        module_btfs.push(ModuleBtf {
            btf: Btf::parse_indexed(&m.data, Some(&vmlinux), index)?,
            fd: m.fd_value,
            name: &m.name,
        });
    }
    let kernel_btf = KernelBtf {
        vmlinux: &vmlinux,
        modules: &module_btfs,
        vmlinux_found: Some(&vm_found),
    };
    resolve::resolve_btf(externs, local, &kernel_btf, out)
        .map_err(|e| crate::explain::incompatible(e, externs, local, &vmlinux, &module_btfs))?;
    Ok(modules)
}

/// The parsed parts of an object that every entry point needs.
struct Parsed<'a> {
    obj: Object<'a>,
    btf: Option<Btf<'a>>,
    externs: Vec<Extern<'a>>,
    sites: Vec<Site>,
}

/// Parses `object`; its BTF gets a full type index in `index` (the extern
/// table resolves each extern's type through modifiers and typedefs: by id,
/// O(1) with the index, a walk from the first type without).
fn parse<'a>(object: &'a [u8], index: &'a mut Vec<u32>) -> Result<Parsed<'a>> {
    let obj = Object::parse(object)?;
    let count = obj.extern_count();
    if count == 0 {
        return Ok(Parsed {
            obj,
            btf: None,
            externs: Vec::new(),
            sites: Vec::new(),
        });
    }
    let data = obj.btf_data().ok_or(ksymrelo_core::Error::NoObjectBtf)?;
    index.resize(Btf::max_type_count(data).max(1), 0);
    let btf = Btf::parse_indexed(data, None, index)?;
    let mut externs = vec![Extern::default(); count];
    let n = obj.externs(&btf, &mut externs)?.len();
    externs.truncate(n);
    let mut sites = vec![Site::default(); obj.max_site_count()?];
    let n = obj.sites(&externs, &mut sites)?.len();
    sites.truncate(n);
    Ok(Parsed {
        obj,
        btf: Some(btf),
        externs,
        sites,
    })
}

impl Parsed<'_> {
    fn resolve(&self, kernel: &Kernel, mode: Mode) -> Result<Resolved> {
        match &self.btf {
            Some(btf) => resolve_externs(&self.externs, btf, kernel, mode),
            None => Ok(Resolved {
                resolutions: Vec::new(),
                fd_array: Vec::new(),
                modules: Vec::new(),
                kallsyms_modules: Vec::new(),
            }),
        }
    }
}

/// Resolves every ksym of `object` against `kernel` in the default mode
/// ([`Mode::Auto`]: libbpf's result, fast) and returns every executable
/// section patched.
///
/// ```no_run
/// let obj = std::fs::read("prog.bpf.o").unwrap();
/// let kernel = ksymrelo_std::Kernel::live();
/// let r = ksymrelo_std::relocate(&obj, &kernel).unwrap();
/// for e in &r.externs {
///     println!("{} {:?}", e.name, e.resolution.outcome);
/// }
/// ```
pub fn relocate(object: &[u8], kernel: &Kernel) -> Result<Relocation> {
    relocate_with(object, kernel, Mode::default())
}

/// [`relocate`] in a chosen [`Mode`].
pub fn relocate_with(object: &[u8], kernel: &Kernel, mode: Mode) -> Result<Relocation> {
    let mut index = Vec::new();
    let parsed = parse(object, &mut index)?;
    let resolved = parsed.resolve(kernel, mode)?;
    // Each section is given only its own sites (a stable sort keeps their
    // order): O(sites) in all, however many sections.
    let mut by_section = parsed.sites.clone();
    by_section.sort_by_key(|s| s.section);
    let mut sections = Vec::new();
    for s in parsed.obj.exec_sections() {
        let s = s?;
        let mut insns = parsed.obj.insns(&s)?.to_vec();
        let mine = &by_section[by_section.partition_point(|x| x.section < s.index)..];
        let mine = &mine[..mine.partition_point(|x| x.section == s.index)];
        patch::patch_section(&mut insns, s.index, mine, &resolved.resolutions)?;
        sections.push(RelocatedSection {
            index: s.index,
            name: String::from_utf8_lossy(s.name).into_owned(),
            insns,
        });
    }
    Ok(Relocation {
        externs: resolved.reports(&parsed.externs, &parsed.sites),
        fd_array: resolved.fd_array.clone(),
        modules: resolved.held_modules(),
        sections,
        sites: parsed.sites,
    })
}

/// Relocates a whole ELF object held in memory in the default mode,
/// patching its executable sections in place: the object is parsed once
/// and written only once everything has resolved, so on error `object` is
/// unchanged. The result's `sections` is empty (the instructions are in
/// `object`).
pub fn relocate_in_place(object: &mut [u8], kernel: &Kernel) -> Result<Relocation> {
    relocate_in_place_with(object, kernel, Mode::default())
}

/// [`relocate_in_place`] in a chosen [`Mode`].
pub fn relocate_in_place_with(object: &mut [u8], kernel: &Kernel, mode: Mode) -> Result<Relocation> {
    relocate_in_place_if(object, kernel, mode, |_| Ok(()))
}

/// [`relocate_in_place_with`], writing only if `accept` agrees with the
/// result (a C caller's fd_array must have room, say): on any error,
/// `accept`'s included, `object` is unchanged.
pub fn relocate_in_place_if(
    object: &mut [u8],
    kernel: &Kernel,
    mode: Mode,
    accept: impl FnOnce(&Relocation) -> Result<()>,
) -> Result<Relocation> {
    let (resolutions, relocation) = {
        let mut index = Vec::new();
        let parsed = parse(object, &mut index)?;
        let resolved = parsed.resolve(kernel, mode)?;
        let relocation = Relocation {
            externs: resolved.reports(&parsed.externs, &parsed.sites),
            fd_array: resolved.fd_array.clone(),
            modules: resolved.held_modules(),
            sections: Vec::new(),
            sites: parsed.sites,
        };
        (resolved.resolutions, relocation)
    };
    write_if_accepted(relocation, accept, |r| {
        patch::patch_object(object, &r.sites, &resolutions)
    })
}

/// The one all-or-nothing rule of every entry point that patches its
/// caller's bytes ([`relocate_in_place_if`], [`relocate_insns_if`]):
/// everything is resolved first; then `accept` sees the result; only then
/// does `write` run, and it validates every site before it writes any. So
/// on any error nothing has been written.
fn write_if_accepted<R>(
    result: R,
    accept: impl FnOnce(&R) -> Result<()>,
    write: impl FnOnce(&R) -> std::result::Result<(), CoreError>,
) -> Result<R> {
    accept(&result)?;
    write(&result)?;
    Ok(result)
}

/// The externs of `object` as the pipeline sees them (libbpf's order, kind,
/// binding, number of sites), all unresolved: what a caller can still show
/// when a relocation failed.
pub fn list_externs(object: &[u8]) -> Result<Vec<ExternReport>> {
    let mut index = Vec::new();
    let parsed = parse(object, &mut index)?;
    let mut out = vec![Resolution::default(); parsed.externs.len()];
    resolve::start(&parsed.externs, &mut out)?;
    let none = Resolved {
        resolutions: out,
        fd_array: Vec::new(),
        modules: Vec::new(),
        kallsyms_modules: vec![None; parsed.externs.len()],
    };
    Ok(none.reports(&parsed.externs, &parsed.sites))
}
