//! Sizes and alignments of types, as libbpf computes them
//! (`btf__resolve_size`, `btf__align_of`; pointers are 8 bytes, as libbpf
//! sets them for BPF objects).

use super::{Btf, Kind};
use crate::error::{Error, Result};

/// libbpf's `MAX_RESOLVE_DEPTH`.
const MAX_RESOLVE_DEPTH: usize = 32;
/// Pointer size of BPF-targeted BTF.
const PTR_SIZE: u32 = 8;

impl Btf<'_> {
    /// The size in bytes of type `id`, as `btf__resolve_size`: through
    /// modifiers, typedefs, VARs and DECL_TAGs, arrays multiplying. Void,
    /// functions, chains deeper than 32 and sizes past `u32` are errors.
    pub fn resolve_size(&self, id: u32) -> Result<u32> {
        let fail = Error::BtfSize { id };
        let mut nelems: u32 = 1;
        let mut next = id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(next)?;
            let size = match t.kind() {
                Kind::Unknown => return Err(fail),
                Kind::Int | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Datasec | Kind::Float => {
                    t.size()
                }
                Kind::Ptr => PTR_SIZE,
                Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag => {
                    next = t.type_id();
                    continue;
                }
                Kind::Array => {
                    let a = t.array().ok_or(fail)?;
                    nelems = nelems.checked_mul(a.nelems.get()).ok_or(fail)?;
                    next = a.elem_type.get();
                    continue;
                }
                Kind::Fwd | Kind::Func | Kind::FuncProto => return Err(fail),
            };
            return nelems.checked_mul(size).ok_or(fail);
        }
        Err(fail)
    }

    /// The alignment in bytes of type `id`, as `btf__align_of`: scalars
    /// their size up to 8, pointers 8, structs and unions their largest
    /// member's unless a member or the size shows them packed (then 1).
    pub fn align_of(&self, id: u32) -> Result<u32> {
        self.align_of_depth(id, 0)
    }

    fn align_of_depth(&self, id: u32, depth: usize) -> Result<u32> {
        // libbpf recurses without a bound; cyclic BTF must not here.
        if depth > MAX_RESOLVE_DEPTH {
            return Err(Error::BtfSize { id });
        }
        let t = self.type_by_id(id)?;
        match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float => Ok(t.size().min(PTR_SIZE)),
            Kind::Ptr => Ok(PTR_SIZE),
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.align_of_depth(t.type_id(), depth + 1)
            }
            Kind::Array => {
                let a = t.array().ok_or(Error::BtfSize { id })?;
                self.align_of_depth(a.elem_type.get(), depth + 1)
            }
            Kind::Struct | Kind::Union => {
                let mut max_align = 1;
                for m in t.members() {
                    let align = self.align_of_depth(m.type_id.get(), depth + 1)?;
                    if align == 0 {
                        return Err(Error::BtfSize { id });
                    }
                    max_align = max_align.max(align);
                    let bitfield_size = if t.kind_flag() { m.offset.get() >> 24 } else { 0 };
                    let bit_off = if t.kind_flag() {
                        m.offset.get() & 0xff_ffff
                    } else {
                        m.offset.get()
                    };
                    if bitfield_size == 0 && u64::from(bit_off) % (8 * u64::from(align)) != 0 {
                        return Ok(1);
                    }
                }
                if t.size() % max_align != 0 {
                    return Ok(1);
                }
                Ok(max_align)
            }
            _ => Err(Error::BtfSize { id }),
        }
    }
}
