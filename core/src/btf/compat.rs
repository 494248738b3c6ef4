//! Type compatibility between an object's BTF and the kernel's, with the
//! rules of libbpf's `bpf_core_types_are_compat`.

use super::{Btf, Kind};
use crate::error::{Error, Result};

/// Steps one comparison may take along pointers, arrays and return types.
pub(super) const MAX_DEPTH: u32 = 32;

/// Most steps one whole comparison takes, nested ones included (beyond
/// libbpf): prototypes whose parameters are pointers to prototypes branch
/// at every level, so the depth bound alone still allows `params^32`
/// steps on hostile BTF. Real kfunc prototypes take a few dozen.
pub(super) const MAX_STEPS: u32 = 1 << 14;

pub(super) fn kinds_match(a: Kind, b: Kind) -> bool {
    let any_enum = |k| matches!(k, Kind::Enum | Kind::Enum64);
    a == b || (any_enum(a) && any_enum(b))
}

/// Whether local type `local_id` (in `local`) is compatible with target type
/// `targ_id` (in `targ`):
///
/// - modifiers and typedefs are skipped at every step;
/// - kinds must match (any two enums match);
/// - void, STRUCT, UNION, ENUM, ENUM64 and FWD are compatible by kind alone;
/// - INT is compatible unless either side has a non-zero bit offset;
/// - PTR and ARRAY recurse into the pointee/element;
/// - FUNC_PROTO needs the same parameter count, compatible parameters and a
///   compatible return type;
/// - any other kind is incompatible.
///
/// A chain deeper than 32 steps is an error, as in libbpf, and so is a
/// comparison of more than `MAX_STEPS` steps in all (beyond libbpf).
pub fn types_are_compat(local: &Btf<'_>, local_id: u32, targ: &Btf<'_>, targ_id: u32) -> Result<bool> {
    let mut steps = MAX_STEPS;
    compat(local, local_id, targ, targ_id, local_id, 0, &mut steps)
}

// `render::first_difference` takes the same steps in the same order to say
// where this returns false; a change here needs the same change there (its
// agreement tests compare the two over every pair of a sample and over
// vmlinux kfuncs).
fn compat(
    local: &Btf<'_>,
    mut local_id: u32,
    targ: &Btf<'_>,
    mut targ_id: u32,
    origin: u32,
    nesting: u32,
    steps: &mut u32,
) -> Result<bool> {
    // libbpf bounds only the steps of one comparison; parameters that are
    // themselves function pointers nest comparisons, and a cyclic BTF would
    // nest forever. Bound the nesting too.
    if nesting > MAX_DEPTH {
        return Err(Error::CompatDepth { local_id: origin });
    }
    let first_local = local.type_by_id(local_id)?;
    let first_targ = targ.type_by_id(targ_id)?;
    if !kinds_match(first_local.kind(), first_targ.kind()) {
        return Ok(false);
    }
    for _ in 0..MAX_DEPTH {
        *steps = steps.checked_sub(1).ok_or(Error::CompatDepth { local_id: origin })?;
        let l = local.skip_mods_and_typedefs(local_id)?;
        let t = targ.skip_mods_and_typedefs(targ_id)?;
        if !kinds_match(l.kind(), t.kind()) {
            return Ok(false);
        }
        match l.kind() {
            Kind::Unknown | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => return Ok(true),
            Kind::Int => return Ok(l.int_offset() == 0 && t.int_offset() == 0),
            Kind::Ptr => {
                local_id = l.type_id();
                targ_id = t.type_id();
            }
            Kind::Array => {
                let (Some(la), Some(ta)) = (l.array(), t.array()) else {
                    return Ok(false);
                };
                local_id = la.elem_type.get();
                targ_id = ta.elem_type.get();
            }
            Kind::FuncProto => {
                let (lp, tp) = (l.params(), t.params());
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    let a = local.skip_mods_and_typedefs(a.type_id.get())?;
                    let b = targ.skip_mods_and_typedefs(b.type_id.get())?;
                    if !compat(local, a.id(), targ, b.id(), origin, nesting + 1, steps)? {
                        return Ok(false);
                    }
                }
                local_id = l.type_id();
                targ_id = t.type_id();
            }
            _ => return Ok(false),
        }
    }
    Err(Error::CompatDepth { local_id: origin })
}
