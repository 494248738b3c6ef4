//! Writes resolutions into instructions, bit-identically to libbpf
//! (`bpf_object__relocate_data` and `poison_kfunc_call`).
//!
//! | site | outcome | `insn[0]` | `insn[1]` |
//! |---|---|---|---|
//! | ld_imm64 | BTF object | `src_reg=BPF_PSEUDO_BTF_ID`, `imm=btf_id` | `imm=btf_obj_fd` |
//! | ld_imm64 | address | `imm=low32` | `imm=high32` |
//! | ld_imm64 | weak, unresolved | `imm=0` | `imm=0` |
//! | call | BTF object | `src_reg=BPF_PSEUDO_KFUNC_CALL`, `imm=btf_id`, `off=slot` | |
//! | call | weak, unresolved | poisoned: `call 2002000000 + extern index` | |
//!
//! Every function validates all of its sites before writing any of them:
//! on error nothing has been modified.

use crate::bpf::{op, pseudo, POISON_CALL_KFUNC_BASE};
use crate::elf::Elf;
use crate::error::{Error, Result};
use crate::index::SectionIndex;
use crate::insn::{self, Insn};
use crate::object::{Site, SiteKind};
use crate::resolve::{Outcome, Resolution};

fn check_site(insns: &[Insn], site: &Site, resolutions: &[Resolution]) -> Result<()> {
    let r = resolutions.get(site.extern_idx.get()).ok_or(Error::Mismatch {
        what: "site refers to an extern index past the resolutions",
    })?;
    if r.index != site.extern_idx {
        return Err(Error::Mismatch {
            what: "resolutions are not in extern-table order",
        });
    }
    if r.kind.is_ksym() && !r.weak && !r.is_resolved() {
        return Err(Error::Mismatch {
            what: "a strong extern is unresolved",
        });
    }
    site.check(insns)
}

fn apply_site(insns: &mut [Insn], site: &Site, r: &Resolution) {
    if !r.kind.is_ksym() {
        return;
    }
    let i = site.insn_idx.get();
    match (site.kind, r.outcome) {
        (SiteKind::Ld64, Outcome::Btf { btf_id, btf_obj_fd, .. }) => {
            insns[i].set_src_reg(pseudo::BTF_ID);
            insns[i].set_imm(btf_id.0 as i32);
            insns[i + 1].set_imm(btf_obj_fd);
        }
        (SiteKind::Ld64, Outcome::Address { addr }) => {
            insns[i].set_imm(addr as u32 as i32);
            insns[i + 1].set_imm((addr >> 32) as u32 as i32);
        }
        (SiteKind::Ld64, Outcome::Unresolved(_)) => {
            insns[i].set_imm(0);
            insns[i + 1].set_imm(0);
        }
        (
            SiteKind::Call,
            Outcome::Btf {
                btf_id, fd_array_slot, ..
            },
        ) => {
            insns[i].set_src_reg(pseudo::KFUNC_CALL);
            insns[i].set_imm(btf_id.0 as i32);
            insns[i].set_off(fd_array_slot as i16);
        }
        (SiteKind::Call, Outcome::Address { .. }) => {
            // A call through a typeless variable: libbpf marks it a kfunc
            // call with BTF id 0, which the verifier then refuses.
            insns[i].set_src_reg(pseudo::KFUNC_CALL);
            insns[i].set_imm(0);
            insns[i].set_off(0);
        }
        (SiteKind::Call, Outcome::Unresolved(_)) => {
            insns[i] = Insn::new(op::CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE.wrapping_add(r.index.0 as i32));
        }
    }
}

/// Patches the sites of one executable section.
///
/// `insns` are the section's instructions; only the sites whose
/// [`Site::section`] equals `section` are applied (others are ignored), so
/// the whole site table can be passed. `resolutions` are in extern-table
/// order, as [`crate::resolve::resolve`] writes them.
///
/// ```
/// use ksymrelo_core::{bpf::op, insn::Insn, object::{ExternKind, Site, SiteKind}};
/// use ksymrelo_core::index::{ExternIdx, InsnIdx, SectionIndex};
/// use ksymrelo_core::resolve::{Outcome, Resolution};
/// let mut insns = [Insn::new(op::LD_IMM64, 1, 0, 0, 0), Insn::default()];
/// let site = Site { section: SectionIndex(3), insn_idx: InsnIdx(0), extern_idx: ExternIdx(0), kind: SiteKind::Ld64 };
/// let res = Resolution { kind: ExternKind::Typeless, weak: false, index: ExternIdx(0),
///                        outcome: Outcome::Address { addr: 0xffff_ffff_8100_0000 } };
/// ksymrelo_core::patch::patch_section(&mut insns, SectionIndex(3), &[site], &[res]).unwrap();
/// assert_eq!(insns[0].imm(), 0x8100_0000u32 as i32);
/// assert_eq!(insns[1].imm(), -1);
/// ```
pub fn patch_section(
    insns: &mut [Insn],
    section: SectionIndex,
    sites: &[Site],
    resolutions: &[Resolution],
) -> Result<()> {
    let mine = || sites.iter().filter(move |s| s.section == section);
    for site in mine() {
        check_site(insns, site, resolutions)?;
    }
    for site in mine() {
        apply_site(insns, site, &resolutions[site.extern_idx.get()]);
    }
    Ok(())
}

/// Patches every site of a whole ELF object held in `elf`, in place.
///
/// All sites of all sections are validated before any byte is written.
/// `sites` and `resolutions` come from the same bytes (via
/// [`crate::object::Object`] and [`crate::resolve::resolve`]). O(sites),
/// whatever the number of sections.
pub fn patch_object(elf: &mut [u8], sites: &[Site], resolutions: &[Resolution]) -> Result<()> {
    {
        let data: &[u8] = elf;
        let parsed = Elf::parse(data)?;
        for site in sites {
            let s = parsed.section(site.section)?;
            if !s.is_exec() {
                return Err(Error::Mismatch {
                    what: "site in a section that is not executable",
                });
            }
            let range = s.file_range().ok_or(Error::Mismatch {
                what: "site in a section without contents",
            })?;
            check_site(insn::insns(&data[range])?, site, resolutions)?;
        }
    }
    for site in sites {
        // Patching never touches section headers, so the ranges validated
        // above still hold.
        let Some(range) = Elf::section_file_range(elf, site.section)? else {
            continue; // checked above: no site is there
        };
        let insns = insn::insns_mut(&mut elf[range])?;
        apply_site(insns, site, &resolutions[site.extern_idx.get()]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{BtfId, ExternIdx, InsnIdx};
    use crate::object::ExternKind;
    use crate::resolve::Unresolved;

    fn res(kind: ExternKind, weak: bool, index: u32, outcome: Outcome) -> Resolution {
        Resolution {
            kind,
            weak,
            index: ExternIdx(index),
            outcome,
        }
    }

    fn site(insn_idx: u32, extern_idx: u32, kind: SiteKind) -> Site {
        Site {
            section: SectionIndex(1),
            insn_idx: InsnIdx(insn_idx),
            extern_idx: ExternIdx(extern_idx),
            kind,
        }
    }

    #[test]
    fn every_row_of_the_table() {
        let mut insns = [
            Insn::new(op::LD_IMM64, 1, 0, 0, 0),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(op::LD_IMM64, 2, 0, 0, 0),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(op::LD_IMM64, 3, 0, 0, 7),
            Insn::new(0, 0, 0, 0, 9),
            Insn::new(op::CALL, 0, 1, -1, -1),
            Insn::new(op::CALL, 0, 1, -1, -1),
        ];
        let btf = Outcome::Btf {
            btf_id: BtfId(77),
            btf_obj_fd: 5,
            module: Some(0),
            fd_array_slot: 2,
        };
        let rs = [
            res(ExternKind::Typed, false, 0, btf),
            res(ExternKind::Typeless, false, 1, Outcome::Address { addr: 0x1_2345_6789 }),
            res(ExternKind::Kfunc, true, 2, Outcome::Unresolved(Unresolved::NotFound)),
            res(ExternKind::Kfunc, false, 3, btf),
        ];
        let sites = [
            site(0, 0, SiteKind::Ld64),
            site(2, 1, SiteKind::Ld64),
            site(4, 2, SiteKind::Ld64),
            site(6, 3, SiteKind::Call),
            site(7, 2, SiteKind::Call),
        ];
        patch_section(&mut insns, SectionIndex(1), &sites, &rs).unwrap();
        assert_eq!(insns[0], Insn::new(op::LD_IMM64, 1, pseudo::BTF_ID, 0, 77));
        assert_eq!(insns[1].imm(), 5);
        assert_eq!(insns[2], Insn::new(op::LD_IMM64, 2, 0, 0, 0x2345_6789));
        assert_eq!(insns[3].imm(), 1);
        assert_eq!(insns[4], Insn::new(op::LD_IMM64, 3, 0, 0, 0));
        assert_eq!(insns[5].imm(), 0);
        assert_eq!(insns[6], Insn::new(op::CALL, 0, pseudo::KFUNC_CALL, 2, 77));
        assert_eq!(insns[7], Insn::new(op::CALL, 0, 0, 0, 2_002_000_002));
    }

    #[test]
    fn nothing_is_written_when_one_site_is_bad() {
        let mut insns = [
            Insn::new(op::LD_IMM64, 1, 0, 0, 0),
            Insn::default(),
            Insn::new(EXIT_CODE, 0, 0, 0, 0),
        ];
        let before = insns;
        let rs = [res(ExternKind::Typeless, false, 0, Outcome::Address { addr: 1 })];
        let sites = [site(0, 0, SiteKind::Ld64), site(2, 0, SiteKind::Ld64)];
        assert!(patch_section(&mut insns, SectionIndex(1), &sites, &rs).is_err());
        assert_eq!(insns, before);
        // An ld_imm64 in the last slot has no second half.
        let sites = [site(0, 0, SiteKind::Ld64), site(1, 0, SiteKind::Ld64)];
        assert!(patch_section(&mut insns[..2], SectionIndex(1), &sites, &rs).is_err());
        assert_eq!(insns, before);
    }

    #[test]
    fn strong_unresolved_is_refused() {
        let mut insns = [Insn::new(op::LD_IMM64, 1, 0, 0, 0), Insn::default()];
        let rs = [res(
            ExternKind::Typeless,
            false,
            0,
            Outcome::Unresolved(Unresolved::NotFound),
        )];
        assert!(patch_section(&mut insns, SectionIndex(1), &[site(0, 0, SiteKind::Ld64)], &rs).is_err());
    }

    const EXIT_CODE: u8 = crate::bpf::op::EXIT;
}
