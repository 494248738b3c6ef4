//! The loader generator (light skeletons; libbpf's gen_loader way): emits
//! a `BPF_PROG_TYPE_SYSCALL` loader program that looks ksyms up with
//! `bpf_kallsyms_lookup_name` and `bpf_btf_find_by_name_kind` and patches
//! a copy of the program's instructions held in a data blob. (Kernel
//! mode's resolver, which only answers lookups, is [`crate::lookup`].)
//! This module is the public face: [`plan`], [`prepatch`], [`emit`], and
//! the read-back of what the loader left.
//!
//! The blob is the value of the loader's map index 0 (reached with
//! `ld_imm64 src_reg=BPF_PSEUDO_MAP_IDX_VALUE`). Its layout, from a base
//! offset the caller chooses (so a light-skeleton loader can embed it in a
//! bigger value):
//!
//! | offset | what |
//! |---|---|
//! | `status_off` | `u32` index + 1 of the extern whose lookup failed (0: none), `i32` its error |
//! | `names_off` | each looked-up name, NUL-terminated, 8-aligned |
//! | `slots_off` | one 8-byte `kallsyms_lookup_name` result per typeless lookup |
//! | `insns_off` | the program's instructions, patched in place by the loader |
//! | `fd_array_off` | `i32` fd_array; slot `n` holds the module BTF fd of the `n`-th kfunc called |
//!
//! One lookup is made per distinct (lookup name, BTF kind, `ld_imm64` or
//! `call`); later sites copy the first site's result. Per site, R8 points at
//! the instruction in the blob.
//!
//! Inside: `layout` (where each blob field is), `lookups` (which lookup a
//! site needs, and its first site), `emit` (the loader, written with
//! [`crate::asm`]), `readback` and `disasm`.
//!
//! A whole load (libbpf's gen_loader proper) is [`plan_load`] and
//! [`emit_load`] over a [`Load`]: one loader that loads the BTF, creates,
//! fills and freezes the maps, resolves each program's ksyms with the
//! same per-site code and loads the programs, all inside the kernel,
//! handing the descriptors back in its context ([`ctx`]) — or the
//! [`Step`] that failed, after closing everything it created. Inside:
//! `load` (the description, the context), `attr` (`bpf_attr` offsets),
//! `place` (where each piece is in the blob), `blob` and `loader`.

mod attr;
mod blob;
mod disasm;
mod emit;
mod layout;
mod load;
#[cfg(test)]
mod load_tests;
mod loader;
mod lookups;
mod place;
mod readback;
#[cfg(test)]
mod tests;

pub use attr::{MapCreate, OBJ_NAME_LEN};
pub use disasm::disasm;
pub use layout::Layout;
pub use load::{
    ctx, ctx_size, failure, fds, AttachTarget, Failure, Load, MapDef, ProgDef, Records, Step, MAX_MAPS, MAX_PROGS,
};
pub use loader::{emit_load, emit_sealed_load, plan_load, plan_sealed_load, program_insns};
pub use lookups::MAX_LOOKUPS;
pub use place::LoadLayout;
pub use readback::{fd_array, patched_insns, status};

use crate::asm::Asm;
use crate::bpf::pseudo;
use crate::error::{Error, Result};
use crate::insn::Insn;
use crate::object::{Extern, Site, SiteKind};
use lookups::{lookup_of, Lookup, Lookups};

/// Options of the emitter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenOptions {
    /// Offset of the blob region inside the map value.
    pub base: u32,
    /// Close the module BTF fds obtained before exiting (for loaders that
    /// load the program themselves; the ksymrelo runner takes them instead).
    pub cleanup: bool,
}

/// Computes the blob layout and the loader length for a program of
/// `insn_cnt` instructions with these sites (insn indices relative to the
/// program), without writing anything: the emitter runs once, counting.
pub fn plan(externs: &[Extern<'_>], sites: &[Site], insn_cnt: usize, opts: &GenOptions) -> Result<Layout> {
    // Every offset below is derived from a site index; bounding the indices
    // by the (checked) program size keeps all that arithmetic in range.
    for site in sites {
        let last = u64::from(site.insn_idx.0) + u64::from(site.kind == SiteKind::Ld64);
        if last >= insn_cnt as u64 {
            return Err(Error::Mismatch {
                what: "site past the end of the program's instructions",
            });
        }
    }
    let lookups = Lookups::new(externs, sites)?;
    let layout = layout::compute(&lookups, insn_cnt, opts)?;
    assemble(&lookups, layout, opts, None)
}

/// Runs the emitter once into `loader` (`None`: only counts) and returns
/// the layout with its length.
fn assemble(
    lookups: &Lookups<'_, '_>,
    layout: Layout,
    opts: &GenOptions,
    loader: Option<&mut [Insn]>,
) -> Result<Layout> {
    let mut asm = Asm::new(loader);
    emit::emit_loader(lookups, &layout, opts, &mut asm)?;
    let loader_len = u32::try_from(asm.finish()?).map_err(|_| Error::Overflow {
        what: "loader instructions",
    })?;
    Ok(Layout { loader_len, ..layout })
}

/// Sets the `src_reg` markers libbpf's gen mode writes before the loader
/// runs: `BPF_PSEUDO_BTF_ID` on typed (and kfunc) `ld_imm64` sites,
/// `BPF_PSEUDO_KFUNC_CALL` on kfunc calls; typeless sites are untouched. The
/// loader clears the marker again where a weak lookup fails.
///
/// The immediates of BTF sites (id and BTF object fd of an `ld_imm64`, id
/// and slot of a call) are zeroed too. A loader that runs to the end
/// overwrites them all anyway; one that aborts on a strong failure leaves
/// later sites as they are, and a non-zero fd there must be one the loader
/// obtained, never a number the object happened to carry (its owner would
/// close a descriptor it does not own).
pub fn prepatch(insns: &mut [Insn], externs: &[Extern<'_>], sites: &[Site]) -> Result<()> {
    // Every site checked before any is touched: all or nothing.
    for site in sites {
        site.check(insns)?;
        lookup_of(externs, site)?;
    }
    for site in sites {
        let i = site.insn_idx.get();
        match lookup_of(externs, site)? {
            Some(Lookup::Btf { .. }) => {
                insns[i].set_src_reg(pseudo::BTF_ID);
                insns[i].set_imm(0);
                insns[i + 1].set_imm(0);
            }
            Some(Lookup::Kfunc) => {
                insns[i].set_src_reg(pseudo::KFUNC_CALL);
                insns[i].set_imm(0);
                insns[i].set_off(0);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Emits the loader into `loader` and the blob into `blob` (from
/// `opts.base`; bytes before it are left alone). `insns` are the program's
/// instructions, already [`prepatch`]ed. Returns the layout.
///
/// The emitter runs once, straight into `loader`: if that is too short
/// (shorter than [`plan`]'s `loader_len`), the error comes with `loader`
/// partly written and `blob` untouched.
pub fn emit(
    externs: &[Extern<'_>],
    sites: &[Site],
    insns: &[Insn],
    opts: &GenOptions,
    loader: &mut [Insn],
    blob: &mut [u8],
) -> Result<Layout> {
    // Matching sites lie inside `insns`, which bounds every offset (as in
    // `plan`).
    for site in sites {
        site.check(insns)?;
    }
    let lookups = Lookups::new(externs, sites)?;
    let layout = layout::compute(&lookups, insns.len(), opts)?;
    let layout = assemble(&lookups, layout, opts, Some(loader))?;
    if (blob.len() as u64) < u64::from(layout.end) {
        return Err(Error::CapacityExceeded {
            what: "loader blob",
            capacity: blob.len(),
        });
    }
    write_blob(&lookups, &layout, opts, insns, blob)?;
    Ok(layout)
}

/// The blob: the region zeroed, then the names and the instructions.
fn write_blob(
    lookups: &Lookups<'_, '_>,
    layout: &Layout,
    opts: &GenOptions,
    insns: &[Insn],
    blob: &mut [u8],
) -> Result<()> {
    let short = Error::Mismatch {
        what: "blob shorter than its layout",
    };
    blob.get_mut(opts.base as usize..layout.end as usize)
        .ok_or(short)?
        .fill(0);
    blob::write_names(lookups, layout.names_off, blob)?;
    let program = crate::insn::as_bytes(insns);
    let start = layout.insns_off as usize;
    blob.get_mut(start..start + program.len())
        .ok_or(short)?
        .copy_from_slice(program);
    Ok(())
}
