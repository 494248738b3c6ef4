//! The whole user-space job: an object's bytes and a [`Kernel`] in, every
//! executable section relocated out — what libbpf does to ksyms when it
//! loads an object, bit for bit.

use ksymrelo_core::btf::{Btf, Kind};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::kallsyms::Match;
use ksymrelo_core::object::{Extern, ExternKind, Object, Site};
use ksymrelo_core::patch;
use ksymrelo_core::resolve::{self, FdArray, KernelBtf, ModuleBtf, Outcome, Resolution};

use crate::error::Result;
use crate::kernel::Kernel;

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
}

/// One executable section after relocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelocatedSection {
    /// ELF section index.
    pub index: u32,
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
    /// Every executable section, in section order.
    pub sections: Vec<RelocatedSection>,
    /// Every site, in section and relocation order.
    pub sites: Vec<Site>,
    /// Module BTF fds obtained by the in-kernel resolver (kernel mode): they
    /// back `fd_array` and the instructions, and close when this drops.
    pub owned_fds: Vec<std::os::fd::OwnedFd>,
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

/// The parsed parts of an object that every mode needs.
pub(crate) struct Parsed<'a> {
    pub obj: Object<'a>,
    pub btf: Option<Btf<'a>>,
    pub externs: Vec<Extern<'a>>,
    pub sites: Vec<Site>,
}

pub(crate) fn parse(object: &[u8]) -> Result<Parsed<'_>> {
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
    let btf = obj.btf()?;
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

/// Resolves every ksym of `object` against `kernel` in user space and
/// returns every executable section patched.
///
/// Reads only what the externs need: kallsyms only for typeless ksyms,
/// kernel BTF only for typed ksyms and kfuncs.
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
    let parsed = parse(object)?;
    let mut resolutions = vec![Resolution::default(); parsed.externs.len()];
    let mut fd_array = Vec::new();
    let mut modules = vec![None; parsed.externs.len()];
    if let Some(btf) = &parsed.btf {
        resolve_user(
            &parsed.externs,
            btf,
            kernel,
            || None,
            &mut resolutions,
            &mut fd_array,
            &mut modules,
        )?;
    }
    finish(&parsed, resolutions, fd_array, modules)
}

/// Patches every executable section and builds the report.
pub(crate) fn finish(
    parsed: &Parsed<'_>,
    resolutions: Vec<Resolution>,
    fd_array: Vec<i32>,
    modules: Vec<Option<String>>,
) -> Result<Relocation> {
    let mut sections = Vec::new();
    for s in parsed.obj.exec_sections() {
        let s = s?;
        let mut insns = parsed.obj.insns(&s)?.to_vec();
        patch::patch_section(&mut insns, s.index, &parsed.sites, &resolutions)?;
        sections.push(RelocatedSection {
            index: s.index,
            name: String::from_utf8_lossy(s.name).into_owned(),
            insns,
        });
    }
    Ok(Relocation {
        externs: reports(&parsed.externs, resolutions, modules, &parsed.sites),
        fd_array,
        sections,
        sites: parsed.sites.clone(),
        owned_fds: Vec::new(),
    })
}

fn reports(
    externs: &[Extern<'_>],
    resolutions: Vec<Resolution>,
    modules: Vec<Option<String>>,
    sites: &[Site],
) -> Vec<ExternReport> {
    externs
        .iter()
        .zip(resolutions)
        .zip(modules)
        .map(|((e, r), module)| ExternReport {
            name: e.name.to_owned(),
            kind: e.kind,
            weak: e.weak,
            resolution: r,
            module,
            sites: sites.iter().filter(|s| s.extern_idx == e.index).count(),
        })
        .collect()
}

/// Slots of the vmlinux type-offset table (see [`Btf::parse_indexed`]).
const VMLINUX_INDEX_SLOTS: usize = 8192;

/// User-space resolution of all externs (kallsyms + BTF).
pub(crate) fn resolve_user(
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    kernel: &Kernel,
    typeless: impl FnOnce() -> Option<Vec<Option<Match>>>,
    resolutions: &mut [Resolution],
    fd_array_out: &mut Vec<i32>,
    modules_out: &mut [Option<String>],
) -> Result<()> {
    let needs = resolve::needs(externs);

    let mut vm_index: Vec<u32>;
    let mut mod_indexes: Vec<Vec<u32>> = Vec::new();
    let vmlinux;
    let mut module_btfs: Vec<ModuleBtf<'_>> = Vec::new();
    let module_data;
    let mut vm_found: Vec<Option<u32>> = vec![None; externs.len()];
    let kernel_btf = if needs.btf {
        // One walk over vmlinux: validation, the id index, and the lookups.
        let mut lookups = vec![None; externs.len()];
        resolve::btf_lookups(externs, &mut lookups)?;
        let wanted: Vec<(&[u8], Kind)> = lookups.iter().flatten().copied().collect();
        let mut found = vec![None; wanted.len()];
        let data = kernel.vmlinux_btf()?;
        // Every 64th offset or so: ~32 KiB to fill instead of ~1 MiB of
        // fresh pages, for a short walk on each of the few lookups by id.
        vm_index = vec![0u32; Btf::max_type_count(data).clamp(1, VMLINUX_INDEX_SLOTS)];
        vmlinux = Btf::parse_indexed_batch(data, None, &mut vm_index, &wanted, &mut found)?;
        let mut results = found.into_iter();
        for (slot, lookup) in vm_found.iter_mut().zip(&lookups) {
            if lookup.is_some() {
                *slot = results.next().flatten();
            }
        }
        // Module BTFs only when vmlinux lacks something, as libbpf.
        let all_in_vmlinux = lookups.iter().zip(&vm_found).all(|(l, f)| l.is_none() || f.is_some());
        module_data = if all_in_vmlinux { &[][..] } else { kernel.module_btfs()? };
        mod_indexes.resize_with(module_data.len(), Vec::new);
        for (m, index) in module_data.iter().zip(mod_indexes.iter_mut()) {
            *index = vec![0u32; Btf::max_type_count(&m.data)];
            module_btfs.push(ModuleBtf {
                btf: Btf::parse_indexed(&m.data, Some(&vmlinux), index)?,
                fd: m.fd_value,
                name: &m.name,
            });
        }
        Some(KernelBtf {
            vmlinux: &vmlinux,
            modules: &module_btfs,
            vmlinux_found: Some(&vm_found),
        })
    } else {
        None
    };

    // Typeless addresses: given (e.g. by the in-kernel lookup, which may
    // still be running while the BTF above was parsed), or from kallsyms.
    let matches = match typeless() {
        Some(given) => given,
        None => {
            let mut names: Vec<&[u8]> = vec![&[]; externs.len()];
            let count = resolve::kallsyms_names(externs, &mut names)?;
            let mut matches: Vec<Option<Match>> = vec![None; count];
            if needs.kallsyms {
                kernel.scan_kallsyms(&names[..count], &mut matches)?;
            }
            matches
        }
    };

    let mut slots = vec![0i32; module_btfs.len() + 1];
    let mut fd_array = FdArray::new(&mut slots);
    resolve::resolve(
        externs,
        local,
        kernel_btf.as_ref(),
        Some(&matches),
        &mut fd_array,
        resolutions,
    )?;
    *fd_array_out = fd_array.as_slice().to_vec();

    let mut typeless = 0usize;
    for ((e, r), out) in externs.iter().zip(resolutions.iter()).zip(modules_out.iter_mut()) {
        if e.kind == ExternKind::Typeless {
            if let Some(Some(m)) = matches.get(typeless) {
                *out = m.module().map(|b| String::from_utf8_lossy(b).into_owned());
            }
            typeless += 1;
        } else if let Outcome::Btf { module: Some(m), .. } = r.outcome {
            *out = Some(module_btfs[usize::from(m)].name.to_owned());
        }
    }
    Ok(())
}

/// A site as a loader that holds instructions but no ELF knows it: the
/// instruction index and the extern's name and binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsnSite<'n> {
    /// Index of the `ld_imm64` or `call` instruction.
    pub insn_idx: u32,
    /// The extern is `__weak`.
    pub weak: bool,
    /// The extern's name (as in the object's BTF).
    pub name: &'n str,
}

/// The result of [`relocate_insns`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsnRelocation {
    /// Externs, in libbpf's extern order.
    pub externs: Vec<ExternReport>,
    /// fd_array to load with (empty unless a module kfunc is called).
    pub fd_array: Vec<i32>,
}

/// Resolves and patches one program held as instructions, given the
/// object's `.BTF` and its extern sites — the C loader's view, with no ELF.
/// `insns` are modified only on success.
pub fn relocate_insns(
    kernel: &Kernel,
    obj_btf: &[u8],
    insns: &mut [Insn],
    sites: &[InsnSite<'_>],
) -> Result<InsnRelocation> {
    use ksymrelo_core::error::{Error as CoreError, Name};
    use ksymrelo_core::object::{describe, order, SiteKind};

    let btf = Btf::parse(obj_btf)?;
    let mut externs: Vec<Extern<'_>> = Vec::new();
    for s in sites {
        match externs.iter().find(|e| e.name == s.name) {
            Some(e) if e.weak != s.weak => {
                return Err(crate::Error::Usage(format!(
                    "extern '{}': its sites disagree on whether it is weak",
                    s.name
                )))
            }
            Some(_) => {}
            None => {
                let sym_idx = externs.len() as u32;
                externs.push(describe(&btf, s.name, sym_idx, s.weak)?);
            }
        }
    }
    order(&mut externs);
    let mut core_sites = Vec::with_capacity(sites.len());
    for s in sites {
        let ext = externs
            .iter()
            .find(|e| e.name == s.name)
            .expect("every site's extern was described");
        let i = s.insn_idx as usize;
        let kind = match insns.get(i) {
            Some(insn) if insn.is_call() => SiteKind::Call,
            Some(insn) if insn.is_ld_imm64() && i + 1 < insns.len() => SiteKind::Ld64,
            Some(insn) if !insn.is_ld_imm64() => {
                return Err(CoreError::SiteOpcode {
                    name: Name::from(s.name),
                    section: Name::from("(insns)"),
                    insn_idx: s.insn_idx,
                    code: insn.code,
                }
                .into())
            }
            Some(_) => {
                return Err(crate::Error::Usage(format!(
                    "extern '{}': its ld_imm64 site at instruction {} is the last of {} (it takes two slots)",
                    s.name,
                    s.insn_idx,
                    insns.len()
                )))
            }
            None => {
                return Err(crate::Error::Usage(format!(
                    "extern '{}': site at instruction {} is past the end of the program ({} instructions)",
                    s.name,
                    s.insn_idx,
                    insns.len()
                )))
            }
        };
        core_sites.push(Site {
            section: 0,
            insn_idx: s.insn_idx,
            extern_idx: ext.index,
            kind,
        });
    }
    let mut resolutions = vec![Resolution::default(); externs.len()];
    let mut fd_array = Vec::new();
    let mut modules = vec![None; externs.len()];
    resolve_user(
        &externs,
        &btf,
        kernel,
        || None,
        &mut resolutions,
        &mut fd_array,
        &mut modules,
    )?;
    patch::patch_section(insns, 0, &core_sites, &resolutions)?;
    Ok(InsnRelocation {
        externs: reports(&externs, resolutions, modules, &core_sites),
        fd_array,
    })
}

/// Relocates a whole ELF object held in memory, writing the patched
/// instructions back into `object` — only once everything has resolved, so
/// on error `object` is unchanged.
pub fn relocate_in_place(object: &mut [u8], kernel: &Kernel) -> Result<Relocation> {
    let relocation = relocate(object, kernel)?;
    let ranges: Vec<std::ops::Range<usize>> = {
        let elf = ksymrelo_core::elf::Elf::parse(object)?;
        relocation
            .sections
            .iter()
            .map(|s| elf.section(s.index).map(|sec| sec.file_range()))
            .collect::<std::result::Result<_, _>>()?
    };
    for (section, range) in relocation.sections.iter().zip(ranges) {
        object[range].copy_from_slice(ksymrelo_core::insn::as_bytes(&section.insns));
    }
    Ok(relocation)
}
