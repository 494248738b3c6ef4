//! Resolution modes: in user space (libbpf's way), in the kernel (the
//! gen_loader way), or `auto`: per symbol kind, whichever is fastest.

use ksymrelo_core::insn::{Insn, CALL, POISON_CALL_KFUNC_BASE, PSEUDO_BTF_ID};
use ksymrelo_core::kallsyms::Match;
use ksymrelo_core::object::{ExternKind, Site, SiteKind};
use ksymrelo_core::resolve::{Outcome, Resolution, Unresolved};

use crate::error::Result;
use crate::inkernel::{resolve_in_kernel, InKernel};
use crate::kernel::Kernel;
use crate::relocate::{finish, parse, resolve_user, Parsed, RelocatedSection, Relocation};

/// How ksyms are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Everything in user space, exactly as libbpf: kernel BTF (mapped) and
    /// `/proc/kallsyms`, with type-compatibility checks.
    User,
    /// Everything in the kernel with the emitted loader program
    /// (`bpf_btf_find_by_name_kind`, `bpf_kallsyms_lookup_name`): no file is
    /// read. As libbpf's gen_loader, it checks no types and takes the
    /// kernel's first kallsyms match (ambiguity is not detected).
    Kernel,
    /// The fastest per kind: typeless ksyms through the kernel (so
    /// `/proc/kallsyms` is never read), BTF ksyms in user space (one batched
    /// scan of the mapped vmlinux BTF, with compatibility checks). Falls back
    /// to `User` when the kernel refuses the loader.
    #[default]
    Auto,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "user" => Ok(Mode::User),
            "kernel" => Ok(Mode::Kernel),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown mode '{other}' (user, kernel or auto)")),
        }
    }
}

/// [`crate::relocate`] in a chosen [`Mode`]. Every mode gives the same
/// instructions for the same object on the same kernel (poisoning of
/// unresolved weak kfunc calls is a user-space step in all of them).
pub fn relocate_with(object: &[u8], kernel: &Kernel, mode: Mode) -> Result<Relocation> {
    match mode {
        Mode::User => crate::relocate(object, kernel),
        Mode::Kernel => relocate_kernel(object),
        Mode::Auto => relocate_auto(object, kernel),
    }
}

/// All executable sections as one instruction array, and the sites shifted
/// into it, so that one loader resolves each symbol once for all sections.
struct Joined {
    insns: Vec<Insn>,
    sites: Vec<Site>,
    /// (section index, section name, start, len)
    sections: Vec<(u32, String, usize, usize)>,
}

fn join(parsed: &Parsed<'_>, keep: impl Fn(&Site) -> bool) -> Result<Joined> {
    let mut j = Joined {
        insns: Vec::new(),
        sites: Vec::new(),
        sections: Vec::new(),
    };
    for s in parsed.obj.exec_sections() {
        let s = s?;
        let start = j.insns.len();
        let insns = parsed.obj.insns(&s)?;
        j.insns.extend_from_slice(insns);
        for site in parsed.sites.iter().filter(|x| x.section == s.index && keep(x)) {
            j.sites.push(Site {
                insn_idx: site.insn_idx + start as u32,
                section: 0,
                ..*site
            });
        }
        j.sections.push((
            s.index,
            String::from_utf8_lossy(s.name).into_owned(),
            start,
            insns.len(),
        ));
    }
    Ok(j)
}

fn run_loader(parsed: &Parsed<'_>, keep: impl Fn(&Site) -> bool) -> Result<(Joined, Option<InKernel>)> {
    let joined = join(parsed, keep)?;
    if joined.sites.is_empty() {
        return Ok((joined, None));
    }
    let result = resolve_in_kernel(&parsed.externs, &joined.sites, &joined.insns)?;
    Ok((joined, Some(result)))
}

fn relocate_kernel(object: &[u8]) -> Result<Relocation> {
    let parsed = parse(object)?;
    let (joined, run) = run_loader(&parsed, |_| true)?;
    let mut resolutions: Vec<Resolution> = parsed
        .externs
        .iter()
        .map(|e| Resolution {
            kind: e.kind,
            weak: e.weak,
            index: e.index,
            outcome: Outcome::Unresolved(if e.kind == ExternKind::Kconfig {
                Unresolved::Kconfig
            } else {
                Unresolved::NotFound
            }),
        })
        .collect();
    let Some(run) = run else {
        return finish(&parsed, resolutions, Vec::new(), vec![None; parsed.externs.len()]);
    };
    let mut insns = run.insns;
    // What each extern resolved to, read off its first site.
    for site in &joined.sites {
        let r = &mut resolutions[site.extern_idx as usize];
        if r.is_resolved() {
            continue;
        }
        let (a, b) = (
            insns[site.insn_idx as usize],
            insns.get(site.insn_idx as usize + 1).copied(),
        );
        r.outcome = match (r.kind, site.kind) {
            (ExternKind::Typeless, _) => {
                let addr = u64::from(a.imm() as u32) | (u64::from(b.map_or(0, |b| b.imm()) as u32) << 32);
                if addr == 0 {
                    continue;
                }
                Outcome::Address { addr }
            }
            (_, SiteKind::Ld64) if a.src_reg() == PSEUDO_BTF_ID && a.imm() != 0 => Outcome::Btf {
                btf_id: a.imm() as u32,
                btf_obj_fd: b.map_or(0, |b| b.imm()),
                module: None,
                fd_array_slot: 0,
            },
            (_, SiteKind::Call) if a.imm() != 0 => Outcome::Btf {
                btf_id: a.imm() as u32,
                btf_obj_fd: run
                    .fd_array
                    .get(a.off() as usize)
                    .copied()
                    .filter(|_| a.off() != 0)
                    .unwrap_or(0),
                module: None,
                fd_array_slot: a.off() as u16,
            },
            _ => continue,
        };
    }
    for (e, r) in parsed.externs.iter().zip(&resolutions) {
        if !r.is_resolved() && !e.weak && e.kind.is_ksym() {
            return Err(ksymrelo_core::Error::StrongUnresolved {
                name: ksymrelo_core::error::Name::from(e.name),
            }
            .into());
        }
    }
    // Poisoning stays a user-space step.
    for site in &joined.sites {
        let r = &resolutions[site.extern_idx as usize];
        if site.kind == SiteKind::Call && !r.is_resolved() {
            insns[site.insn_idx as usize] =
                Insn::new(CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE.wrapping_add(r.index as i32));
        }
    }
    // The loader reserves a slot per kfunc; with no module fd in any of
    // them the program needs no fd_array, as user space reports it.
    let fd_array = if run.fd_array.iter().skip(1).all(|&fd| fd == 0) {
        Vec::new()
    } else {
        run.fd_array
    };
    let mut relocation = finish(&parsed, resolutions, fd_array, vec![None; parsed.externs.len()])?;
    relocation.sections = joined
        .sections
        .iter()
        .map(|(index, name, start, len)| RelocatedSection {
            index: *index,
            name: name.clone(),
            insns: insns[*start..start + len].to_vec(),
        })
        .collect();
    // Module fds must outlive the program load: keep them with the result.
    relocation.owned_fds = run.module_fds;
    Ok(relocation)
}

/// The loader's typeless addresses, in `kallsyms_names` order (the
/// typeless externs in table order); 0 (not found) is `None`.
fn typeless_matches(parsed: &Parsed<'_>, joined: &Joined, run: &InKernel) -> Vec<Option<Match>> {
    let mut by_extern: Vec<Option<Match>> = vec![None; parsed.externs.len()];
    for site in &joined.sites {
        let (a, b) = (run.insns[site.insn_idx as usize], run.insns[site.insn_idx as usize + 1]);
        let addr = u64::from(a.imm() as u32) | (u64::from(b.imm() as u32) << 32);
        by_extern[site.extern_idx as usize] = (addr != 0).then(|| Match::new(addr));
    }
    parsed
        .externs
        .iter()
        .zip(by_extern)
        .filter(|(e, _)| e.kind == ExternKind::Typeless)
        .map(|(_, m)| m)
        .collect()
}

fn relocate_auto(object: &[u8], kernel: &Kernel) -> Result<Relocation> {
    let parsed = parse(object)?;
    let Some(btf) = &parsed.btf else {
        return finish(&parsed, Vec::new(), Vec::new(), Vec::new());
    };
    let typeless = |s: &Site| parsed.externs[s.extern_idx as usize].kind == ExternKind::Typeless;
    let mut resolutions = vec![Resolution::default(); parsed.externs.len()];
    let mut fd_array = Vec::new();
    let mut modules = vec![None; parsed.externs.len()];
    std::thread::scope(|scope| {
        // The kernel's lookups run while this thread parses the BTF.
        let loader = scope.spawn(|| run_loader(&parsed, typeless));
        let given = || match loader.join() {
            Ok(Ok((joined, Some(run)))) => Some(typeless_matches(&parsed, &joined, &run)),
            // No typeless ksym; or the kernel refused (no CAP_BPF, helper
            // missing, kptr_restrict...): kallsyms in user space.
            Ok(Ok((_, None))) | Ok(Err(_)) => None,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        resolve_user(
            &parsed.externs,
            btf,
            kernel,
            given,
            &mut resolutions,
            &mut fd_array,
            &mut modules,
        )
    })?;
    finish(&parsed, resolutions, fd_array, modules)
}
