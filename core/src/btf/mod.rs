//! The BTF reader: vmlinux BTF, module (split) BTF over a base, and the
//! `.BTF` section of BPF objects — parsed in place, never copied.
//!
//! Type ids and string offsets of a split BTF continue after its base's, as
//! in the kernel. Types are found by id through a caller-provided offset
//! table ([`Btf::parse_indexed`]): O(1) when it has a slot per type, a short
//! walk from the nearest kept offset when it is smaller; by a linear walk
//! without one.
//!
//! [`write_c_type`] and [`write_c_decl`] spell types as C, and
//! [`first_difference`] says where [`types_are_compat`] found two types to
//! differ, for error messages.

mod compat;
pub mod facts;
mod header;
pub mod near;
mod render;
mod size;
mod strings;
mod types;

pub use compat::types_are_compat;
pub use header::{Header, MAGIC};
pub use render::{
    first_difference, write_c_decl, write_c_type, write_difference, Difference, FixedText, Place, Why, MAX_RENDER_DEPTH,
};
pub use types::{linkage, Array, Enum64Value, EnumValue, Kind, Member, Param, RawType, Type, VarSecinfo};

use crate::error::{Error, Result};
use strings::Strings;

/// Longest modifier/typedef chain followed before calling it a loop.
const MAX_CHAIN: usize = 256;

/// A parsed, validated BTF blob, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Btf<'a> {
    types: &'a [u8],
    strings: Strings<'a>,
    base: Option<&'a Btf<'a>>,
    /// Id of the first type of this blob (1 for a base BTF).
    start_id: u32,
    /// Number of types in this blob (not counting the base).
    count: u32,
    /// Byte offset in `types` of every `1 << index_shift`-th own type, when
    /// the caller gave a table.
    index: Option<&'a [u32]>,
    index_shift: u32,
}

impl<'a> Btf<'a> {
    /// Parses and validates a base BTF (vmlinux, or an object's `.BTF`).
    ///
    /// ```no_run
    /// let data = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    /// let btf = ksymrelo_core::btf::Btf::parse(&data).unwrap();
    /// let id = btf.find_by_name_kind(b"bpf_iter_num_new", ksymrelo_core::btf::Kind::Func).unwrap();
    /// assert!(id.is_some());
    /// ```
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>> {
        Self::parse_inner(data, None, None)
    }

    /// Parses a split BTF (a kernel module's) over `base`.
    pub fn parse_split(data: &'a [u8], base: &'a Btf<'a>) -> Result<Btf<'a>> {
        Self::parse_inner(data, Some(base), None)
    }

    /// Parses (optionally over `base`) and fills `index` with type offsets so
    /// that [`Btf::type_by_id`] need not walk from the first type.
    ///
    /// With [`Btf::max_type_count`] entries, `index` keeps the offset of
    /// every type and lookups by id are O(1). A smaller table keeps every
    /// 2^k-th offset (the smallest k that fits), and a lookup walks at most
    /// 2^k - 1 records from there: a few thousand entries are enough for
    /// vmlinux and cost no page faults to fill. An empty table is a
    /// `CapacityExceeded` error.
    pub fn parse_indexed(data: &'a [u8], base: Option<&'a Btf<'a>>, index: &'a mut [u32]) -> Result<Btf<'a>> {
        Self::parse_inner(data, base, Some(index))
    }

    /// [`Btf::parse_indexed`] and [`Btf::find_own_batch`] in one walk: the
    /// lookups of a resolver that needs the index anyway cost no second pass.
    pub fn parse_indexed_batch(
        data: &'a [u8],
        base: Option<&'a Btf<'a>>,
        index: &'a mut [u32],
        wanted: &[(&[u8], Kind)],
        found: &mut [Option<u32>],
    ) -> Result<Btf<'a>> {
        if found.len() < wanted.len() {
            return Err(Error::CapacityExceeded {
                what: "BTF lookup results",
                capacity: found.len(),
            });
        }
        let mut filter = Filter::new(wanted, found);
        Self::parse_walk(data, base, Some(index), |btf_strings: &Strings<'a>, ty: &Type<'a>| {
            filter.offer(btf_strings, base, ty, wanted, found)
        })
    }

    /// A view of BTF that [`Btf::parse_indexed`] (or
    /// [`Btf::parse_indexed_batch`]) already validated, without walking it
    /// again: `index` is the whole table that parse filled and `count` its
    /// [`Btf::own_type_count`]. Only the header is checked. For a caller
    /// that keeps the bytes and the table (a long-lived kernel handle); with
    /// other bytes or another table, lookups give wrong answers or errors,
    /// never a panic.
    pub fn reindexed(data: &'a [u8], base: Option<&'a Btf<'a>>, index: &'a [u32], count: u32) -> Result<Btf<'a>> {
        let sections = header::sections(data, base.is_some())?;
        let (start_id, start_str) = match base {
            None => (1, 0),
            Some(b) => (b.end_id()?, b.strings.end()?),
        };
        let index_shift = index_shift(sections.types.len() / 12, index.len())?;
        let kept = (count.div_ceil(1 << index_shift) as usize).min(index.len());
        Ok(Btf {
            types: sections.types,
            strings: Strings {
                bytes: sections.strings,
                start: start_str,
            },
            base,
            start_id,
            count,
            index: Some(&index[..kept]),
            index_shift,
        })
    }

    /// An upper bound on the number of types in `data` (the smallest type
    /// record is 12 bytes), to size an index table for [`Btf::parse_indexed`].
    pub fn max_type_count(data: &[u8]) -> usize {
        crate::read::pod::<Header>(data, 0, "BTF header").map_or(0, |h| h.type_len.get() as usize / 12)
    }

    fn parse_inner(data: &'a [u8], base: Option<&'a Btf<'a>>, index: Option<&'a mut [u32]>) -> Result<Btf<'a>> {
        Self::parse_walk(data, base, index, |_, _| Ok(()))
    }

    /// Validates every type (filling `index` if given) and shows each to
    /// `visit` with this blob's string section. Generic over `visit` so that
    /// the per-type check is inlined into the walk: vmlinux has ~130k types.
    fn parse_walk<F>(
        data: &'a [u8],
        base: Option<&'a Btf<'a>>,
        index: Option<&'a mut [u32]>,
        mut visit: F,
    ) -> Result<Btf<'a>>
    where
        F: FnMut(&Strings<'a>, &Type<'a>) -> Result<()>,
    {
        let sections = header::sections(data, base.is_some())?;
        let (start_id, start_str) = match base {
            None => (1, 0),
            Some(b) => (b.end_id()?, b.strings.end()?),
        };
        let strings = Strings {
            bytes: sections.strings,
            start: start_str,
        };
        let index_shift = match &index {
            Some(index) => index_shift(sections.types.len() / 12, index.len())?,
            None => 0,
        };
        // An empty table stands for "no table" in the walk below.
        let (table, has_index) = match index {
            Some(index) => (index, true),
            None => (&mut [][..], false),
        };
        let mask = (1u32 << index_shift) - 1;
        let mut count: u32 = 0;
        let mut pos = 0usize;
        while pos < sections.types.len() {
            let id = start_id
                .checked_add(count)
                .ok_or(Error::Overflow { what: "BTF type ids" })?;
            let (ty, len) = Type::parse(&sections.types[pos..], id, pos)?;
            visit(&strings, &ty)?;
            if has_index && count & mask == 0 {
                // The shift was chosen so that every kept offset has a slot;
                // `pos` fits in a u32 as the type section length does.
                if let Some(slot) = table.get_mut((count >> index_shift) as usize) {
                    *slot = pos as u32;
                }
            }
            pos += len;
            count += 1;
        }
        let index = if has_index {
            let kept = (count.div_ceil(1 << index_shift) as usize).min(table.len());
            let table: &'a [u32] = table;
            Some(&table[..kept])
        } else {
            None
        };
        Ok(Btf {
            types: sections.types,
            strings,
            base,
            start_id,
            count,
            index,
            index_shift,
        })
    }

    /// Byte offset of `ty` (a type of this blob, not of its base) within
    /// the type section, for writers that patch a copy of it.
    pub(crate) fn type_offset(&self, ty: &Type<'_>) -> Option<usize> {
        let at = core::ptr::from_ref(ty.raw()).addr();
        let start = self.types.as_ptr().addr();
        at.checked_sub(start).filter(|&o| o < self.types.len())
    }

    /// The type section's bytes.
    pub(crate) fn type_bytes(&self) -> &'a [u8] {
        self.types
    }

    /// The base this split BTF continues, if any.
    pub fn base(&self) -> Option<&'a Btf<'a>> {
        self.base
    }

    /// Id of the first type that belongs to this blob (1 without a base).
    pub fn start_id(&self) -> u32 {
        self.start_id
    }

    /// Number of types in this blob, not counting the base.
    pub fn own_type_count(&self) -> u32 {
        self.count
    }

    /// One past the last valid type id.
    pub fn end_id(&self) -> Result<u32> {
        self.start_id
            .checked_add(self.count)
            .ok_or(Error::Overflow { what: "BTF type ids" })
    }

    /// The type with this id (0 is void), looking into the base if needed.
    pub fn type_by_id(&self, id: u32) -> Result<Type<'a>> {
        if id == 0 {
            return Ok(Type::void());
        }
        if id < self.start_id {
            return match self.base {
                Some(base) => base.type_by_id(id),
                None => Err(Error::BtfTypeId { id }),
            };
        }
        let local = id - self.start_id;
        if local >= self.count {
            return Err(Error::BtfTypeId { id });
        }
        // Start from the nearest kept offset at or before the type, and
        // walk the records in between.
        let (mut pos, skip) = match self.index {
            Some(index) => {
                let kept = (local >> self.index_shift) as usize;
                let pos = *index.get(kept).ok_or(Error::BtfTypeId { id })?;
                (pos as usize, local & ((1 << self.index_shift) - 1))
            }
            None => (0, local),
        };
        for _ in 0..skip {
            let bytes = self.types.get(pos..).ok_or(Error::BtfTypeId { id })?;
            let (_, len) = Type::parse(bytes, 0, pos)?;
            pos += len;
        }
        let bytes = self.types.get(pos..).ok_or(Error::BtfTypeId { id })?;
        Type::parse(bytes, id, pos).map(|(t, _)| t)
    }

    /// The string at `off`, looking into the base if needed. No allocation,
    /// no lossy conversion: kernel names are bytes.
    pub fn name_by_offset(&self, off: u32) -> Result<&'a [u8]> {
        if off < self.strings.start {
            return match self.base {
                Some(base) => base.name_by_offset(off),
                None => Err(Error::BtfString { offset: off }),
            };
        }
        self.strings.get(off)
    }

    /// The name of a type (empty for anonymous ones).
    pub fn name(&self, ty: &Type<'_>) -> Result<&'a [u8]> {
        self.name_by_offset(ty.name_off())
    }

    /// Every type of this blob (not the base), in id order.
    pub fn own_types(&self) -> Types<'a> {
        Types {
            bytes: self.types,
            pos: 0,
            next_id: self.start_id,
        }
    }

    /// Follows `const/volatile/restrict/type_tag` modifiers and typedefs from
    /// `id`; returns the first other type (void included).
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<Type<'a>> {
        let mut ty = self.type_by_id(id)?;
        for _ in 0..MAX_CHAIN {
            if !(ty.kind().is_modifier() || ty.kind() == Kind::Typedef) {
                return Ok(ty);
            }
            ty = self.type_by_id(ty.type_id())?;
        }
        Err(Error::BtfTypeLoop { id })
    }

    /// The first type of this blob and its base with this name and kind, in
    /// id order (as `btf__find_by_name_kind`).
    pub fn find_by_name_kind(&self, name: &[u8], kind: Kind) -> Result<Option<u32>> {
        if let Some(base) = self.base {
            if let Some(id) = base.find_by_name_kind(name, kind)? {
                return Ok(Some(id));
            }
        }
        self.find_own_by_name_kind(name, kind)
    }

    /// The first type of this blob only (not the base) with this name and
    /// kind (as `btf__find_by_name_kind_own`).
    pub fn find_own_by_name_kind(&self, name: &[u8], kind: Kind) -> Result<Option<u32>> {
        let mut found = [None];
        self.find_own_batch(&[(name, kind)], &mut found)?;
        Ok(found[0])
    }

    /// Looks up a batch of `(name, kind)` pairs among this blob's own types in
    /// one pass; `found[i]` receives the first matching id for `wanted[i]`
    /// (entries already `Some` are kept). Returns how many are now found.
    pub fn find_own_batch(&self, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) -> Result<usize> {
        if found.len() < wanted.len() {
            return Err(Error::CapacityExceeded {
                what: "BTF lookup results",
                capacity: found.len(),
            });
        }
        let mut filter = Filter::new(wanted, found);
        for ty in self.own_types() {
            filter.offer(&self.strings, self.base, &ty?, wanted, found)?;
            if filter.missing == 0 {
                break;
            }
        }
        Ok(wanted.len() - filter.missing)
    }
}

/// The prefilters of a batch lookup, and the in-place name comparison.
struct Filter {
    kinds: u32,
    prefixes: [u64; 16],
    missing: usize,
    /// `wanted` is sorted by name: a candidate is found by binary search,
    /// not compared with every name (O(log n) per type, not O(n)).
    sorted: bool,
}

impl Filter {
    fn new(wanted: &[(&[u8], Kind)], found: &[Option<u32>]) -> Filter {
        let mut f = Filter {
            kinds: 0,
            prefixes: [0; 16],
            missing: 0,
            sorted: wanted.is_sorted_by(|a, b| a.0 <= b.0),
        };
        for (i, (name, kind)) in wanted.iter().enumerate() {
            if found[i].is_none() {
                f.missing += 1;
                f.kinds |= 1 << (*kind as u8);
                let key = prefix_key(name.first().copied(), name.get(1).copied());
                f.prefixes[key / 64] |= 1 << (key % 64);
            }
        }
        f
    }

    /// Shows one type to the lookups. Inlined into the walk: most types are
    /// turned away by kind or by the first two bytes of their name, and
    /// only the rest pay for a call.
    #[inline(always)]
    fn offer(
        &mut self,
        strings: &Strings<'_>,
        base: Option<&Btf<'_>>,
        ty: &Type<'_>,
        wanted: &[(&[u8], Kind)],
        found: &mut [Option<u32>],
    ) -> Result<()> {
        if self.missing == 0 || self.kinds & (1 << (ty.kind() as u8)) == 0 {
            return Ok(());
        }
        let Some(local) = ty.name_off().checked_sub(strings.start).map(|l| l as usize) else {
            return self.offer_base_named(base, ty, wanted, found);
        };
        let own = strings.bytes;
        let key = prefix_key(own.get(local).copied(), own.get(local + 1).copied());
        if self.prefixes[key / 64] & (1 << (key % 64)) == 0 {
            return Ok(());
        }
        self.offer_candidate(own, local, ty, wanted, found);
        Ok(())
    }

    /// Compares a type whose name passed the prefilter with every name still
    /// wanted; `own[local..]` is its name in this blob's strings.
    #[inline(never)]
    fn offer_candidate(
        &mut self,
        own: &[u8],
        local: usize,
        ty: &Type<'_>,
        wanted: &[(&[u8], Kind)],
        found: &mut [Option<u32>],
    ) {
        if self.sorted {
            let tail = own.get(local..).unwrap_or_default();
            if let Some(end) = memchr::memchr(0, tail) {
                self.found_named(&tail[..end], ty, wanted, found);
            }
            return;
        }
        for (i, (want, kind)) in wanted.iter().enumerate() {
            if found[i].is_none()
                && *kind == ty.kind()
                && own.get(local..local + want.len()) == Some(want)
                && own.get(local + want.len()) == Some(&0)
            {
                found[i] = Some(ty.id());
                self.missing -= 1;
            }
        }
    }

    /// Marks every still-missing lookup of `name` and `ty`'s kind found;
    /// `wanted` is sorted by name.
    fn found_named(&mut self, name: &[u8], ty: &Type<'_>, wanted: &[(&[u8], Kind)], found: &mut [Option<u32>]) {
        let start = wanted.partition_point(|(w, _)| *w < name);
        for (i, (want, kind)) in wanted.iter().enumerate().skip(start) {
            if *want != name {
                break;
            }
            if found[i].is_none() && *kind == ty.kind() {
                found[i] = Some(ty.id());
                self.missing -= 1;
            }
        }
    }

    /// A split type named by a string of its base.
    #[inline(never)]
    fn offer_base_named(
        &mut self,
        base: Option<&Btf<'_>>,
        ty: &Type<'_>,
        wanted: &[(&[u8], Kind)],
        found: &mut [Option<u32>],
    ) -> Result<()> {
        let name = base
            .ok_or(Error::BtfString { offset: ty.name_off() })?
            .name_by_offset(ty.name_off())?;
        if self.sorted {
            self.found_named(name, ty, wanted, found);
            return Ok(());
        }
        for (i, (want, kind)) in wanted.iter().enumerate() {
            if found[i].is_none() && *kind == ty.kind() && *want == name {
                found[i] = Some(ty.id());
                self.missing -= 1;
            }
        }
        Ok(())
    }
}

/// The smallest shift k such that keeping every 2^k-th of `max_types` type
/// offsets fits in `capacity` slots.
fn index_shift(max_types: usize, capacity: usize) -> Result<u32> {
    if capacity == 0 {
        return Err(Error::CapacityExceeded {
            what: "BTF type index",
            capacity,
        });
    }
    let mut shift = 0u32;
    while max_types.div_ceil(1 << shift) > capacity {
        shift += 1;
    }
    Ok(shift)
}

/// Hash of a name's first two bytes into 0..1024 (a missing byte counts as 0,
/// which is also what the NUL terminator reads as).
fn prefix_key(b0: Option<u8>, b1: Option<u8>) -> usize {
    let b0 = usize::from(b0.unwrap_or(0));
    // A one-byte name is followed by its NUL.
    let b1 = if b0 == 0 { 0 } else { usize::from(b1.unwrap_or(0)) };
    (b0 * 31 + b1) & 1023
}

/// Iterator over the types of one BTF blob, see [`Btf::own_types`].
#[derive(Clone, Debug)]
pub struct Types<'a> {
    bytes: &'a [u8],
    pos: usize,
    next_id: u32,
}

impl<'a> Iterator for Types<'a> {
    type Item = Result<Type<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        match Type::parse(rest, self.next_id, self.pos) {
            Ok((ty, len)) => {
                self.pos += len;
                self.next_id = self.next_id.wrapping_add(1);
                Some(Ok(ty))
            }
            Err(e) => {
                self.pos = self.bytes.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
