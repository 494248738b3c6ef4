//! Resolution of ksym externs against the kernel: typed variables and kfuncs
//! through vmlinux and module BTF, typeless variables through kallsyms
//! results — with libbpf's weak rules, compatibility checks and fd_array
//! slot assignment.
//!
//! Resolution writes only into caller-provided slices. The outcome of each
//! extern is a [`Resolution`], which owns no borrowed data, so it can outlive
//! the object view and be handed to [`crate::patch`].

use crate::btf::{types_are_compat, Btf, Kind};
use crate::error::{Error, LookupKind, Name, Result};
use crate::index::{BtfId, ExternIdx};
use crate::kallsyms::Match;
use crate::object::{Extern, ExternKind};

/// A kernel module's BTF (split over vmlinux) and the fd that names it to
/// the kernel.
#[derive(Clone, Copy, Debug)]
pub struct ModuleBtf<'k> {
    /// The module's BTF, parsed over the vmlinux BTF.
    pub btf: Btf<'k>,
    /// The BTF object fd (what goes into `insn[1].imm` and the fd_array).
    pub fd: i32,
    /// Module name (for reports).
    pub name: &'k str,
}

/// The kernel's BTF: vmlinux and, optionally, modules in the order they are
/// searched.
#[derive(Clone, Copy, Debug)]
pub struct KernelBtf<'k> {
    /// vmlinux BTF.
    pub vmlinux: &'k Btf<'k>,
    /// Module BTFs.
    pub modules: &'k [ModuleBtf<'k>],
    /// Optional: vmlinux lookups already made for these externs (see
    /// [`btf_lookups`] and [`Btf::parse_indexed_batch`]), `[i]` for
    /// `externs[i]`; saves the resolver its own pass over vmlinux.
    pub vmlinux_found: Option<&'k [Option<u32>]>,
}

/// The `(name, kind)` each extern is looked up by in kernel BTF (`None` for
/// typeless and kconfig externs), `out[i]` for `externs[i]`. Feed the
/// `Some`s to [`Btf::parse_indexed_batch`] to fill
/// [`KernelBtf::vmlinux_found`].
pub fn btf_lookups<'a>(externs: &[Extern<'a>], out: &mut [Option<(&'a [u8], Kind)>]) -> Result<()> {
    if out.len() < externs.len() {
        return Err(Error::CapacityExceeded {
            what: "BTF lookups",
            capacity: out.len(),
        });
    }
    for (o, e) in out.iter_mut().zip(externs) {
        *o = lookup_kind(e).map(|k| (e.lookup_name().as_bytes(), k));
    }
    Ok(())
}

/// What a set of externs needs from the kernel, so that only that is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// A typeless ksym exists: kallsyms must be scanned.
    pub kallsyms: bool,
    /// A typed ksym or kfunc exists: kernel BTF must be read.
    pub btf: bool,
}

/// What the externs need.
pub fn needs(externs: &[Extern<'_>]) -> Needs {
    let mut n = Needs::default();
    for e in externs {
        match e.kind {
            ExternKind::Typeless => n.kallsyms = true,
            ExternKind::Typed | ExternKind::Kfunc => n.btf = true,
            ExternKind::Kconfig => {}
        }
    }
    n
}

/// Why an extern was left unresolved (only weak ones, and kconfig, are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unresolved {
    /// Absent from the kernel.
    #[default]
    NotFound,
    /// A weak kfunc whose prototype does not match the kernel's.
    Incompatible,
    /// A kconfig extern: not ksymrelo's to resolve.
    Kconfig,
}

/// What an extern resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not resolved (weak or kconfig); its sites get zeros or poison.
    Unresolved(Unresolved),
    /// A kernel BTF object: typed variable or kfunc.
    Btf {
        /// Kernel BTF type id of the VAR or FUNC.
        btf_id: BtfId,
        /// BTF object fd: 0 for vmlinux, the module BTF's fd otherwise.
        btf_obj_fd: i32,
        /// Index into [`KernelBtf::modules`], `None` for vmlinux.
        module: Option<u16>,
        /// fd_array slot of the module (kfuncs), 0 for vmlinux.
        fd_array_slot: u16,
    },
    /// A kernel address from kallsyms: typeless variable.
    Address {
        /// The address.
        addr: u64,
    },
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome::Unresolved(Unresolved::NotFound)
    }
}

/// The resolution of one extern, self-contained (no borrowed data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The extern's kind.
    pub kind: ExternKind,
    /// The extern is `__weak`.
    pub weak: bool,
    /// libbpf's extern index (for poison values).
    pub index: ExternIdx,
    /// What it resolved to.
    pub outcome: Outcome,
}

impl Resolution {
    /// Whether the extern was resolved.
    pub fn is_resolved(&self) -> bool {
        !matches!(self.outcome, Outcome::Unresolved(_))
    }
}

/// The fd_array a program is loaded with: slot 0 unused, one slot per module
/// whose kfunc is called, from slot 1, in the caller's buffer.
#[derive(Debug)]
pub struct FdArray<'b> {
    slots: &'b mut [i32],
    len: usize,
}

/// Most slots an fd_array can have: `insn->off` is an s16 and libbpf stops
/// at `INT16_MAX` entries.
pub const FD_ARRAY_MAX: usize = i16::MAX as usize;

impl<'b> FdArray<'b> {
    /// An empty fd_array over `slots`.
    pub fn new(slots: &'b mut [i32]) -> Self {
        FdArray { slots, len: 0 }
    }

    /// The filled part (empty when no module kfunc is called; otherwise slot
    /// 0 is 0 and slots 1.. hold module BTF fds).
    pub fn as_slice(&self) -> &[i32] {
        &self.slots[..self.len]
    }

    /// Number of filled entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is used.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of the module BTF `fd`, added at the end if new.
    pub fn slot_for(&mut self, fd: i32, name: &str) -> Result<u16> {
        if let Some(i) = self.as_slice().iter().skip(1).position(|&s| s == fd) {
            return Ok(i as u16 + 1);
        }
        if self.len == FD_ARRAY_MAX {
            return Err(Error::FdArrayFull { name: Name::from(name) });
        }
        let needed = self.len.max(1) + 1;
        if needed > self.slots.len() {
            return Err(Error::CapacityExceeded {
                what: "fd_array",
                capacity: self.slots.len(),
            });
        }
        if self.len == 0 {
            self.slots[0] = 0;
            self.len = 1;
        }
        self.slots[self.len] = fd;
        self.len += 1;
        Ok((self.len - 1) as u16)
    }
}

/// The names to look up in kallsyms: the typeless externs', in table order.
/// Returns how many were written to `out`.
pub fn kallsyms_names<'a>(externs: &[Extern<'a>], out: &mut [&'a [u8]]) -> Result<usize> {
    let capacity = out.len();
    let mut n = 0;
    for e in externs.iter().filter(|e| e.kind == ExternKind::Typeless) {
        *out.get_mut(n).ok_or(Error::CapacityExceeded {
            what: "kallsyms names",
            capacity,
        })? = e.name.as_bytes();
        n += 1;
    }
    Ok(n)
}

/// Externs looked up in one BTF pass.
const BATCH: usize = 64;

/// Resolves every extern of `externs` into `out[i]` (for `externs[i]`), in
/// user space: [`start`], [`apply_kallsyms`], [`resolve_btf`], [`finish`].
///
/// - `local` is the object's BTF (for compatibility checks);
/// - `kernel` is required when [`needs`] says `btf`;
/// - `kallsyms` holds the matcher's results for [`kallsyms_names`], in the
///   same order, and is required when [`needs`] says `kallsyms`;
/// - module kfuncs get fd_array slots in `fd_array`.
///
/// Errors name the extern: strong ones not found, incompatible types, and
/// the first strong extern left unresolved. On error, `out` and `fd_array`
/// hold partial results and must not be used.
pub fn resolve(
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    kernel: Option<&KernelBtf<'_>>,
    kallsyms: Option<&[Option<Match>]>,
    fd_array: &mut FdArray<'_>,
    out: &mut [Resolution],
) -> Result<()> {
    let out = start(externs, out)?;
    if externs.iter().any(|e| e.kind == ExternKind::Typeless) {
        let results = kallsyms.ok_or(Error::Mismatch {
            what: "typeless externs need kallsyms results",
        })?;
        apply_kallsyms(externs, results, out)?;
    }
    match kernel {
        Some(kernel) => resolve_btf(externs, local, kernel, out)?,
        None if needs(externs).btf => {
            return Err(Error::Mismatch {
                what: "typed ksyms and kfuncs need kernel BTF",
            })
        }
        None => {}
    }
    let mut fds = [0i32; BATCH];
    let modules = kernel.map_or(&[][..], |k| k.modules);
    if modules.len() > fds.len() {
        return Err(Error::CapacityExceeded {
            what: "module BTFs",
            capacity: fds.len(),
        });
    }
    for (fd, m) in fds.iter_mut().zip(modules) {
        *fd = m.fd;
    }
    finish(externs, out, &fds[..modules.len()], fd_array)
}

/// Step 1 of every resolution: each extern unresolved (kconfig ones marked
/// as such). Returns the part of `out` that holds `externs`.
pub fn start<'o>(externs: &[Extern<'_>], out: &'o mut [Resolution]) -> Result<&'o mut [Resolution]> {
    if out.len() < externs.len() {
        return Err(Error::CapacityExceeded {
            what: "resolutions",
            capacity: out.len(),
        });
    }
    let out = &mut out[..externs.len()];
    for (r, e) in out.iter_mut().zip(externs) {
        *r = Resolution {
            kind: e.kind,
            weak: e.weak,
            index: e.index,
            outcome: match e.kind {
                ExternKind::Kconfig => Outcome::Unresolved(Unresolved::Kconfig),
                _ => Outcome::Unresolved(Unresolved::NotFound),
            },
        };
    }
    Ok(out)
}

/// A source of facts: typeless addresses from kallsyms results, in the
/// order of [`kallsyms_names`] (`None`: not in kallsyms).
pub fn apply_kallsyms(externs: &[Extern<'_>], results: &[Option<Match>], out: &mut [Resolution]) -> Result<()> {
    let mut typeless = 0usize;
    for (r, e) in out.iter_mut().zip(externs) {
        if e.kind != ExternKind::Typeless {
            continue;
        }
        let m = results.get(typeless).ok_or(Error::Mismatch {
            what: "fewer kallsyms results than typeless externs",
        })?;
        if let Some(m) = m {
            r.outcome = Outcome::Address { addr: m.addr };
        }
        typeless += 1;
    }
    Ok(())
}

/// A source of facts: typed variables and kfuncs looked up in kernel BTF
/// (vmlinux first, then each module), with libbpf's compatibility checks,
/// in extern order. A module symbol's outcome names the module by its index
/// in [`KernelBtf::modules`]; its fd_array slot is left to [`finish`].
///
/// Errors: a strong extern not found, a type mismatch (weak kfuncs with a
/// mismatched prototype are left unresolved instead), as libbpf.
pub fn resolve_btf(
    externs: &[Extern<'_>],
    local: &Btf<'_>,
    kernel: &KernelBtf<'_>,
    out: &mut [Resolution],
) -> Result<()> {
    if let Some(found) = kernel.vmlinux_found {
        if found.len() < externs.len() {
            return Err(Error::Mismatch {
                what: "fewer vmlinux lookups than externs",
            });
        }
    }
    let mut start = 0;
    while start < externs.len() {
        let end = (start + BATCH).min(externs.len());
        resolve_btf_batch(&externs[start..end], start, local, kernel, &mut out[start..end])?;
        start = end;
    }
    Ok(())
}

/// The last step of every resolution, whichever sources answered: gives
/// each module kfunc its module's fd_array slot (one per module, from 1, in
/// extern order, as libbpf), then fails on the first strong ksym left
/// unresolved in libbpf's extern order — a BTF one as "not found in kernel
/// BTF", any other as "not resolved", libbpf's words.
///
/// `module_fds[m]` is the fd of the module that outcomes name as `m`.
pub fn finish(
    externs: &[Extern<'_>],
    out: &mut [Resolution],
    module_fds: &[i32],
    fd_array: &mut FdArray<'_>,
) -> Result<()> {
    for (r, e) in out.iter_mut().zip(externs) {
        if let (
            ExternKind::Kfunc,
            Outcome::Btf {
                module: Some(m),
                fd_array_slot,
                ..
            },
        ) = (e.kind, &mut r.outcome)
        {
            let fd = *module_fds.get(usize::from(*m)).ok_or(Error::Mismatch {
                what: "an outcome names a module past the module table",
            })?;
            *fd_array_slot = fd_array.slot_for(fd, e.name)?;
        }
    }
    for (r, e) in out.iter().zip(externs) {
        if r.is_resolved() || e.weak {
            continue;
        }
        if let Some(kind) = lookup_kind(e) {
            return Err(Error::NotInKernelBtf {
                name: Name::from(e.name),
                kind: if kind == Kind::Var {
                    LookupKind::Var
                } else {
                    LookupKind::Func
                },
            });
        }
    }
    for (r, e) in out.iter().zip(externs) {
        if !r.is_resolved() && !e.weak && e.kind.is_ksym() {
            return Err(Error::StrongUnresolved {
                name: Name::from(e.name),
            });
        }
    }
    Ok(())
}

/// libbpf's verdict on a local type against the kernel's: a check nested
/// too deeply to decide counts as incompatible (so a weak kfunc is left
/// unresolved and a strong extern fails as incompatible, naming it), as
/// libbpf treats any non-positive answer of `bpf_core_types_are_compat`.
fn compatible(local: &Btf<'_>, local_id: u32, kernel: &Btf<'_>, kernel_id: u32) -> Result<bool> {
    match types_are_compat(local, local_id, kernel, kernel_id) {
        Err(Error::CompatDepth { .. }) => Ok(false),
        verdict => verdict,
    }
}

fn lookup_kind(e: &Extern<'_>) -> Option<Kind> {
    match e.kind {
        ExternKind::Typed => Some(Kind::Var),
        ExternKind::Kfunc => Some(Kind::Func),
        _ => None,
    }
}

fn resolve_btf_batch(
    externs: &[Extern<'_>],
    first: usize,
    local: &Btf<'_>,
    kernel: &KernelBtf<'_>,
    out: &mut [Resolution],
) -> Result<()> {
    let mut wanted: [(&[u8], Kind); BATCH] = [(&[], Kind::Var); BATCH];
    let mut any = false;
    for (w, e) in wanted.iter_mut().zip(externs) {
        if let Some(kind) = lookup_kind(e) {
            *w = (e.lookup_name().as_bytes(), kind);
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    let wanted = &wanted[..externs.len()];
    // Entries that are not looked up are pre-filled so no pass searches them.
    let mut vm_found: [Option<u32>; BATCH] = [None; BATCH];
    let mut mod_found: [Option<(u16, u32)>; BATCH] = [None; BATCH];
    let mut pending = 0usize;
    for (i, e) in externs.iter().enumerate() {
        if lookup_kind(e).is_none() {
            vm_found[i] = Some(0);
        }
    }
    match kernel.vmlinux_found {
        Some(given) => {
            for (i, e) in externs.iter().enumerate() {
                if lookup_kind(e).is_some() {
                    vm_found[i] = given[first + i];
                }
            }
        }
        None => {
            kernel.vmlinux.find_own_batch(wanted, &mut vm_found)?;
        }
    }
    for (i, e) in externs.iter().enumerate() {
        if lookup_kind(e).is_some() && vm_found[i].is_none() {
            pending += 1;
        }
    }
    for (m, module) in kernel.modules.iter().enumerate() {
        if pending == 0 {
            break;
        }
        let mut found: [Option<u32>; BATCH] = [None; BATCH];
        for i in 0..externs.len() {
            if vm_found[i].is_some() || mod_found[i].is_some() {
                found[i] = Some(0);
            }
        }
        module.btf.find_own_batch(wanted, &mut found)?;
        for i in 0..externs.len() {
            if vm_found[i].is_none() && mod_found[i].is_none() {
                if let Some(id) = found[i] {
                    mod_found[i] = Some((m as u16, id));
                    pending -= 1;
                }
            }
        }
    }

    for (i, (e, r)) in externs.iter().zip(out.iter_mut()).enumerate() {
        let Some(kind) = lookup_kind(e) else { continue };
        let (kbtf, module, id) = match (vm_found[i], mod_found[i]) {
            (Some(id), _) => (kernel.vmlinux, None, id),
            (None, Some((m, id))) => (&kernel.modules[m as usize].btf, Some(m), id),
            (None, None) => {
                if e.weak {
                    continue;
                }
                let kind = if kind == Kind::Var {
                    LookupKind::Var
                } else {
                    LookupKind::Func
                };
                return Err(Error::NotInKernelBtf {
                    name: Name::from(e.name),
                    kind,
                });
            }
        };
        let ktype = kbtf.type_by_id(id)?;
        let fd = module.map_or(0, |m| kernel.modules[usize::from(m)].fd);
        if kind == Kind::Var {
            let ktarget = kbtf.skip_mods_and_typedefs(ktype.type_id())?.id();
            if !compatible(local, e.type_id.0, kbtf, ktarget)? {
                return Err(Error::IncompatibleVar {
                    name: Name::from(e.name),
                    local_id: e.type_id.0,
                    kernel_id: ktarget,
                });
            }
            r.outcome = Outcome::Btf {
                btf_id: BtfId(id),
                btf_obj_fd: fd,
                module,
                fd_array_slot: 0,
            };
        } else {
            let kproto = ktype.type_id();
            if !compatible(local, e.type_id.0, kbtf, kproto)? {
                if e.weak {
                    r.outcome = Outcome::Unresolved(Unresolved::Incompatible);
                    continue;
                }
                return Err(Error::IncompatibleFunc {
                    name: Name::from(e.name),
                    local_id: e.type_id.0,
                    kernel_id: kproto,
                });
            }
            r.outcome = Outcome::Btf {
                btf_id: BtfId(id),
                btf_obj_fd: fd,
                module,
                fd_array_slot: 0,
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_array_slots_start_at_one_and_are_shared_per_module() {
        let mut buf = [-1i32; 4];
        let mut fa = FdArray::new(&mut buf);
        assert!(fa.is_empty());
        assert_eq!(fa.slot_for(10, "a").unwrap(), 1);
        assert_eq!(fa.slot_for(11, "b").unwrap(), 2);
        assert_eq!(fa.slot_for(10, "c").unwrap(), 1);
        assert_eq!(fa.as_slice(), &[0, 10, 11]);
        assert_eq!(fa.slot_for(12, "d").unwrap(), 3);
        assert!(matches!(fa.slot_for(13, "e"), Err(Error::CapacityExceeded { .. })));
    }

    /// A kfunc whose prototype nests function pointers past the depth
    /// bound: weak, it is left unresolved; strong, it fails as incompatible
    /// (libbpf's words, naming it) — not with a depth error naming none.
    #[test]
    fn a_prototype_nested_too_deeply_is_incompatible() {
        use crate::btf::tests::{blob, info};
        use crate::index::{BtfId, ExternIdx};
        use crate::object::ExternKind;
        // [1] FUNC_PROTO(param: [2]) -> void, [2] PTR -> [1]: a function
        // pointer that takes itself; [3] FUNC "f" -> [1].
        let types = [
            0,
            info(Kind::FuncProto, 1),
            0,
            0,
            2,
            0,
            info(Kind::Ptr, 0),
            1,
            1,
            info(Kind::Func, 0) | 2,
            1,
        ];
        let data = blob(&types, b"\0f\0");
        let btf = Btf::parse(&data).unwrap();
        let kernel = KernelBtf {
            vmlinux: &btf,
            modules: &[],
            vmlinux_found: None,
        };
        for weak in [true, false] {
            let externs = [Extern {
                name: "f",
                essential_name: "f",
                kind: ExternKind::Kfunc,
                weak,
                sym_idx: 1,
                btf_id: BtfId(3),
                type_id: BtfId(1),
                index: ExternIdx(0),
            }];
            let mut out = [Resolution::default()];
            start(&externs, &mut out).unwrap();
            let got = resolve_btf(&externs, &btf, &kernel, &mut out);
            if weak {
                got.unwrap();
                assert_eq!(out[0].outcome, Outcome::Unresolved(Unresolved::Incompatible));
            } else {
                assert!(matches!(
                    got,
                    Err(Error::IncompatibleFunc {
                        local_id: 1,
                        kernel_id: 1,
                        ..
                    })
                ));
            }
        }
    }
}
