//! Linking programs as libbpf does before `BPF_PROG_LOAD` in gen_loader
//! mode (`obj->gen_loader`): which functions are programs and of what
//! type, each program's instructions with the subprograms it calls
//! appended in libbpf's order (`bpf_object__relocate`), its map references
//! in gen_loader form (`BPF_PSEUDO_MAP_IDX(_VALUE)` with libbpf's map
//! indexes), its ksym sites and `.BTF.ext` records in the linked program's
//! coordinates.
//!
//! The steps, each into caller-given storage:
//!
//! 1. [`function_count`] / [`functions`]: every function, libbpf's order.
//! 2. [`map_count`] / [`maps`]: every map, libbpf's indexes.
//! 3. [`Linker::new`]: checks every relocation as libbpf does on open.
//! 4. Per program ([`Linker::programs`]): [`Linker::load`] (program type,
//!    flags, attach target), [`Linker::plan`] (which functions, where),
//!    then [`Linker::write_insns`], [`Linker::sites`],
//!    [`Linker::ext_info`] and [`Linker::core_relos`].
//!
//! ```
//! use ksymrelo_core::link::{self, Linker, Segment};
//! use ksymrelo_core::object::Object;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/multi_section.bpf.o");
//! # // Miri's isolation refuses files: nothing to show there.
//! # let Ok(data) = std::fs::read(path) else { return };
//! let object = Object::parse(&data).unwrap();
//! let mut funcs = vec![Default::default(); link::function_count(&object).unwrap()];
//! let funcs = link::functions(&object, &mut funcs).unwrap();
//! let mut maps = vec![Default::default(); link::map_count(&object, false).unwrap()];
//! let maps = link::maps(&object, b"multi_section", false, &mut maps).unwrap();
//! let linker = Linker::new(&object, funcs, maps).unwrap();
//! for p in linker.programs() {
//!     let mut segs = vec![Segment::default(); linker.max_segments()];
//!     let linked = linker.plan(p, &mut segs).unwrap();
//!     let mut insns = vec![Default::default(); linked.insn_cnt()];
//!     linker.write_insns(&linked, &mut insns).unwrap();
//! }
//! ```

mod btf_ext;
mod btf_load;
mod functions;
mod map_def;
#[cfg(test)]
mod map_tests;
mod maps;
mod problem;
mod relo;
pub mod sec_def;
#[cfg(test)]
mod tests;

pub use btf_ext::{CoreRelo, Info};
pub use btf_load::{load_btf_size, write_load_btf};
pub use functions::Function;
pub use map_def::{adjust_ringbuf_sz, map_def, Host, InitialValue, MapAttrs, MapDef};
pub use maps::{internal_map_name, object_name, Map, MapKind, MapName, OBJ_NAME_LEN};
pub use problem::{LinkProblem, Message};

use crate::bpf::{pseudo, INSN_SIZE};
use crate::btf::Btf;
use crate::elf::{Elf, Section};
use crate::error::{Error, Result};
use crate::index::{InsnIdx, SectionIndex};
use crate::insn::{self, Insn};
use crate::object::{Object, Site};
use problem::err;
use relo::{Context, Relo};
use sec_def::{AttachProblem, AttachTarget, SecDef};

/// Counts the object's functions, to size [`functions`]'s table.
pub fn function_count(object: &Object<'_>) -> Result<usize> {
    functions::count(object.elf())
}

/// Fills `out` with the object's functions (programs and `.text`
/// subprograms) in libbpf's order and returns the filled part.
pub fn functions<'o, 'a>(object: &Object<'a>, out: &'o mut [Function<'a>]) -> Result<&'o mut [Function<'a>]> {
    functions::collect(object.elf(), out)
}

fn object_btf<'a>(object: &Object<'a>) -> Result<Option<Btf<'a>>> {
    object.btf_data().map(Btf::parse).transpose()
}

/// Counts the object's maps, to size [`maps`]'s table; `has_kconfig`:
/// whether the object has kconfig externs (they make a `.kconfig` map).
pub fn map_count(object: &Object<'_>, has_kconfig: bool) -> Result<usize> {
    maps::count(object.elf(), object_btf(object)?.as_ref(), has_kconfig)
}

/// Fills `out` with the object's maps in libbpf's order and returns the
/// filled part: a map's index there is what `BPF_PSEUDO_MAP_IDX(_VALUE)`
/// references carry. `obj_name` is libbpf's object name
/// ([`object_name`] of the file's path).
pub fn maps<'o, 'a>(
    object: &Object<'a>,
    obj_name: &[u8],
    has_kconfig: bool,
    out: &'o mut [Map<'a>],
) -> Result<&'o mut [Map<'a>]> {
    maps::collect(object.elf(), object_btf(object)?.as_ref(), obj_name, has_kconfig, out)
}

/// One function's place in a linked program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Index of the function in the function table.
    pub function: u32,
    /// Its first instruction in the linked program (libbpf's `sub_insn_off`).
    pub insn_off: u32,
    /// How far the call scan has gone (while planning).
    next: u32,
}

/// A planned program: its functions in the order libbpf appends them, the
/// program itself first.
#[derive(Clone, Copy, Debug)]
pub struct Linked<'s> {
    segments: &'s [Segment],
    insn_cnt: usize,
}

impl<'s> Linked<'s> {
    /// The functions, program first, each where it starts.
    pub fn segments(&self) -> &'s [Segment] {
        self.segments
    }

    /// Length of the linked program in instructions.
    pub fn insn_cnt(&self) -> usize {
        self.insn_cnt
    }
}

/// func_info or line_info records written by [`Linker::ext_info`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtInfo {
    /// Size of each record (`func_info_rec_size`, `line_info_rec_size`).
    pub rec_size: u32,
    /// Number of records (`func_info_cnt`, `line_info_cnt`).
    pub count: usize,
}

/// What `BPF_PROG_LOAD` needs of a program besides its instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load<'a> {
    /// The row of libbpf's table its section matched.
    pub sec_def: &'static SecDef,
    /// `prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// `prog_flags` (sleepable, XDP frags).
    pub prog_flags: u32,
    /// The BTF type the kernel must find for `attach_btf_id`, if any.
    pub attach: Option<AttachTarget<'a>>,
}

/// Links the programs of one object. Borrows the function and map tables.
#[derive(Clone, Copy, Debug)]
pub struct Linker<'a, 't> {
    elf: Elf<'a>,
    btf: Option<Btf<'a>>,
    functions: &'t [Function<'a>],
    maps: &'t [Map<'a>],
    text: Option<SectionIndex>,
    maps_section: Option<SectionIndex>,
    btf_ext: btf_ext::BtfExt<'a>,
}

impl<'a, 't> Linker<'a, 't> {
    /// Checks the object as libbpf does when it opens it: no legacy
    /// `maps` section, every relocation of every function valid (against
    /// these `functions` and `maps`, from [`functions`] and [`maps`]),
    /// `.BTF.ext` well formed.
    pub fn new(object: &Object<'a>, functions: &'t [Function<'a>], maps: &'t [Map<'a>]) -> Result<Self> {
        let elf = *object.elf();
        if elf.section_by_name(b"maps")?.is_some() {
            return Err(err(LinkProblem::LegacyMaps, b"", b"maps", 0));
        }
        let btf = object_btf(object)?;
        let btf_ext = match (elf.section_by_name(b".BTF.ext")?, &btf) {
            (Some(s), Some(_)) => btf_ext::parse(elf.data_of(&s)?)?,
            _ => btf_ext::BtfExt::default(),
        };
        let linker = Linker {
            elf,
            btf,
            functions,
            maps,
            text: functions::text_section(&elf)?,
            maps_section: maps::maps_section(&elf)?.map(|s| s.index),
            btf_ext,
        };
        relo::check_all(&linker.context(), functions)?;
        if let Some(core) = &linker.btf_ext.core_relo {
            let name_of = linker.name_of();
            for block in core.blocks(&linker.elf, &name_of) {
                for rec in block.records.chunks_exact(core.rec_size as usize) {
                    if btf_ext::insn_off(rec) % INSN_SIZE as u32 != 0 {
                        return Err(Error::Malformed {
                            what: ".BTF.ext CO-RE relocation offset (not a multiple of 8)",
                            offset: btf_ext::insn_off(rec) as usize,
                        });
                    }
                }
            }
        }
        Ok(linker)
    }

    fn context(&self) -> Context<'_, 'a> {
        Context {
            elf: &self.elf,
            text: self.text,
            maps_section: self.maps_section,
            maps: self.maps,
        }
    }

    fn name_of(&self) -> impl Fn(u32) -> Option<&'a [u8]> + '_ {
        move |off| self.btf.as_ref().and_then(|b| b.name_by_offset(off).ok())
    }

    /// The function table.
    pub fn functions(&self) -> &'t [Function<'a>] {
        self.functions
    }

    /// The map table.
    pub fn maps(&self) -> &'t [Map<'a>] {
        self.maps
    }

    /// Indexes (in the function table) of the programs, in libbpf's order.
    pub fn programs(&self) -> impl Iterator<Item = usize> + 't {
        let functions = self.functions;
        (0..functions.len()).filter(move |&i| !functions[i].subprog)
    }

    /// Enough segments for any program: one per subprogram, plus one.
    pub fn max_segments(&self) -> usize {
        self.functions.iter().filter(|f| f.subprog).count() + 1
    }

    /// What `BPF_PROG_LOAD` needs of program `program` besides its
    /// instructions: an error for a section name libbpf does not know, and
    /// for what a generated loader cannot load (see [`LinkProblem`]).
    pub fn load(&self, program: usize) -> Result<Load<'a>> {
        let f = self.function(program)?;
        let name = f.sec_name();
        let sec_def = sec_def::find(name).ok_or_else(|| err(LinkProblem::UnknownSection, f.name, name, 0))?;
        let attach = sec_def.attach_target(name).map_err(|p| {
            let problem = match p {
                AttachProblem::NoTarget => LinkProblem::NoAttachTarget,
                AttachProblem::NeedsProgram => LinkProblem::NeedsTargetProgram,
                AttachProblem::StructOps => LinkProblem::StructOps,
                AttachProblem::TracingMulti => LinkProblem::TracingMulti,
            };
            err(problem, f.name, name, 0)
        })?;
        Ok(Load {
            sec_def,
            prog_type: sec_def.prog_type,
            expected_attach_type: sec_def.load_attach_type(),
            prog_flags: sec_def.prog_flags(),
            attach,
        })
    }

    fn function(&self, index: usize) -> Result<&'t Function<'a>> {
        self.functions.get(index).ok_or(Error::Mismatch {
            what: "function index out of range",
        })
    }

    fn section_insns(&self, f: &Function<'a>) -> Result<(Section<'a>, &'a [Insn])> {
        let s = self.elf.section(f.section)?;
        Ok((s, insn::insns(self.elf.data_of(&s)?)?))
    }

    /// libbpf's `bpf_object__reloc_code` for instruction `i` of function
    /// `fi`: the subprogram it calls or takes the address of, if any.
    fn call_target(&self, fi: usize, i: u32) -> Result<Option<usize>> {
        let f = self.function(fi)?;
        let (section, insns) = self.section_insns(f)?;
        let sidx = u64::from(f.insn_off) + u64::from(i);
        // Inside the section: `functions::collect` checked each function.
        let insn = &insns[sidx as usize];
        let call = relo::is_subprog_call(insn);
        if !call && !insn.is_ld_imm64() {
            return Ok(None);
        }
        let relo = match relo::find_at(&self.elf, &section, sidx)? {
            Some(sym) if functions::find(self.functions, f.section, sidx) == Some(fi) => {
                Some(self.context().classify(f, i, insn, sym)?)
            }
            _ => None,
        };
        let pfunc =
            insn.is_ld_imm64() && (insn.src_reg() == pseudo::FUNC || matches!(relo, Some(Relo::SubprogAddr { .. })));
        if !call && !pfunc {
            return Ok(None);
        }
        let problem = |p| err(p, f.name, b"", u64::from(i));
        // libbpf's own arithmetic, wrapping included (u32 for a symbol's
        // offset, size_t otherwise): a wrapped index finds no function.
        let imm = insn.imm();
        let sub = match relo {
            Some(Relo::ExternCall) => return Ok(None),
            Some(Relo::Call { sym_off }) => u64::from((sym_off / 8).wrapping_add(imm as u32).wrapping_add(1)),
            Some(Relo::SubprogAddr { sym_off }) => u64::from(sym_off.wrapping_add(imm as u32) / 8),
            Some(_) => return Err(problem(LinkProblem::UnexpectedRelo)),
            None if pfunc => return Err(problem(LinkProblem::MissingSubprogAddrRelo)),
            None => sidx.wrapping_add(imm as i64 as u64).wrapping_add(1),
        };
        let text = self.text.unwrap_or(SectionIndex::UNDEF);
        functions::find(self.functions, text, sub)
            .map(Some)
            .ok_or_else(|| problem(LinkProblem::NoSubprog))
    }

    /// Plans program `program` (an index from [`Linker::programs`]): the
    /// subprograms it needs, appended depth first in the order their
    /// first call or address appears, as libbpf's `bpf_object__reloc_code`
    /// appends them. `segments` needs at most [`Linker::max_segments`].
    pub fn plan<'s>(&self, program: usize, segments: &'s mut [Segment]) -> Result<Linked<'s>> {
        let f = self.function(program)?;
        if f.subprog {
            return Err(Error::Mismatch {
                what: "a .text function is no program",
            });
        }
        let capacity = segments.len();
        let full = || Error::CapacityExceeded {
            what: "linked program segments",
            capacity,
        };
        *segments.first_mut().ok_or_else(full)? = Segment {
            function: program as u32,
            insn_off: 0,
            next: 0,
        };
        let (mut n, mut cur, mut total) = (1usize, 0usize, u64::from(f.insn_cnt));
        loop {
            let seg = segments[cur];
            let fi = seg.function as usize;
            if seg.next >= self.functions[fi].insn_cnt {
                // Done: resume the caller, the last unfinished segment.
                let unfinished = |s: &Segment| s.next < self.functions[s.function as usize].insn_cnt;
                match segments[..cur].iter().rposition(unfinished) {
                    Some(j) => cur = j,
                    None => break,
                }
                continue;
            }
            segments[cur].next += 1;
            let Some(t) = self.call_target(fi, seg.next)? else {
                continue;
            };
            if segments[..n].iter().any(|s| s.function as usize == t) {
                continue;
            }
            *segments.get_mut(n).ok_or_else(full)? = Segment {
                function: t as u32,
                insn_off: total as u32,
                next: 0,
            };
            total += u64::from(self.functions[t].insn_cnt);
            if total > i32::MAX as u64 {
                return Err(err(LinkProblem::TooLarge, f.name, b"", total));
            }
            n += 1;
            cur = n - 1;
        }
        Ok(Linked {
            segments: &segments[..n],
            insn_cnt: total as usize,
        })
    }

    /// Writes the linked program into `out` (at least
    /// [`Linked::insn_cnt`] long) and returns the written part: each
    /// function's instructions, calls and function addresses pointing at
    /// the appended copies, map references as gen_loader writes them. Ksym
    /// sites are left as the compiler wrote them. On error, `out` is left
    /// partly written.
    pub fn write_insns<'o>(&self, linked: &Linked<'_>, out: &'o mut [Insn]) -> Result<&'o mut [Insn]> {
        let capacity = out.len();
        let out = out.get_mut(..linked.insn_cnt).ok_or(Error::CapacityExceeded {
            what: "linked program instructions",
            capacity,
        })?;
        for seg in linked.segments {
            let f = self.function(seg.function as usize)?;
            let (_, insns) = self.section_insns(f)?;
            let (from, to) = (f.insn_off as usize, seg.insn_off as usize);
            let n = f.insn_cnt as usize;
            out[to..to + n].copy_from_slice(&insns[from..from + n]);
        }
        let cx = self.context();
        for seg in linked.segments {
            let fi = seg.function as usize;
            let f = self.function(fi)?;
            let (section, insns) = self.section_insns(f)?;
            relo::each(&self.elf, &section, |sidx, sym| {
                if functions::find(self.functions, f.section, sidx) != Some(fi) {
                    return Ok(());
                }
                let local = (sidx - u64::from(f.insn_off)) as u32;
                let at = (seg.insn_off + local) as usize;
                match cx.classify(f, local, &insns[sidx as usize], sym)? {
                    Relo::SubprogAddr { .. } => out[at].set_src_reg(pseudo::FUNC),
                    Relo::Map { map } => {
                        out[at].set_src_reg(pseudo::MAP_IDX);
                        out[at].set_imm(map as i32);
                    }
                    Relo::Data { map, sym_off } => {
                        if local + 1 >= f.insn_cnt {
                            return Err(err(LinkProblem::ReloOffset, f.name, section.name, sidx * 8));
                        }
                        let off = (out[at].imm() as u32).wrapping_add(sym_off);
                        out[at + 1].set_imm(off as i32);
                        out[at].set_src_reg(pseudo::MAP_IDX_VALUE);
                        out[at].set_imm(map as i32);
                    }
                    Relo::ExternCall | Relo::ExternLd64 | Relo::Call { .. } => {}
                }
                Ok(())
            })?;
            for i in 0..f.insn_cnt {
                let Some(t) = self.call_target(fi, i)? else { continue };
                let target = linked.segments.iter().find(|s| s.function as usize == t);
                let Some(target) = target else {
                    return Err(Error::Mismatch {
                        what: "linked program was planned by another linker",
                    });
                };
                let at = i64::from(seg.insn_off) + i64::from(i);
                out[at as usize].set_imm((i64::from(target.insn_off) - at - 1) as i32);
            }
        }
        Ok(out)
    }

    /// The ksym sites of the object (`sites`, from
    /// [`Object::sites`](crate::object::Object::sites)) that fall in the
    /// linked program's functions, re-based to its instructions
    /// (`section` [`SectionIndex::UNDEF`]), in libbpf's order: function by
    /// function, by instruction within each. `None`: only counts.
    pub fn sites_into(&self, linked: &Linked<'_>, sites: &[Site], mut out: Option<&mut [Site]>) -> Result<usize> {
        let capacity = out.as_ref().map_or(0, |o| o.len());
        let mut n = 0usize;
        for seg in linked.segments {
            let fi = seg.function as usize;
            let f = self.function(fi)?;
            let start = n;
            for s in sites {
                let idx = u64::from(s.insn_idx.0);
                if s.section != f.section || functions::find(self.functions, f.section, idx) != Some(fi) {
                    continue;
                }
                if let Some(out) = out.as_deref_mut() {
                    *out.get_mut(n).ok_or(Error::CapacityExceeded {
                        what: "linked site table",
                        capacity,
                    })? = Site {
                        section: SectionIndex::UNDEF,
                        insn_idx: InsnIdx(seg.insn_off + (s.insn_idx.0 - f.insn_off)),
                        ..*s
                    };
                }
                n += 1;
            }
            if let Some(out) = out.as_deref_mut() {
                out[start..n].sort_unstable_by_key(|s| s.insn_idx);
            }
        }
        Ok(n)
    }

    /// [`Linker::sites_into`] into `out`, returning the filled part.
    pub fn sites<'o>(&self, linked: &Linked<'_>, sites: &[Site], out: &'o mut [Site]) -> Result<&'o mut [Site]> {
        let n = self.sites_into(linked, sites, Some(&mut *out))?;
        Ok(&mut out[..n])
    }

    /// func_info or line_info records of the linked program as
    /// `BPF_PROG_LOAD` takes them (libbpf's `reloc_prog_func_and_line_info`):
    /// each function's records in turn, `insn_off` in instructions of the
    /// linked program, `rec_size` bytes each (as in the object). None at
    /// all when the program itself has none; an error when it has some
    /// and one of its subprograms has none. `out: None` only counts.
    pub fn ext_info(&self, linked: &Linked<'_>, info: Info, mut out: Option<&mut [u8]>) -> Result<ExtInfo> {
        let sec = match info {
            Info::Func | Info::Line => self.btf_ext.get(info),
            Info::CoreRelo => {
                return Err(Error::Mismatch {
                    what: "CO-RE relocations are written by core_relos",
                })
            }
        };
        let Some(sec) = sec else { return Ok(ExtInfo::default()) };
        let rec_size = sec.rec_size as usize;
        let capacity = out.as_ref().map_or(0, |o| o.len());
        let name_of = self.name_of();
        // An appended function without records of the kind its program has.
        let missing = if info == Info::Func {
            LinkProblem::MissingFuncInfo
        } else {
            LinkProblem::MissingLineInfo
        };
        let mut count = 0usize;
        for (k, seg) in linked.segments.iter().enumerate() {
            let f = self.function(seg.function as usize)?;
            let Some(block) = sec.blocks(&self.elf, &name_of).find(|b| b.section == Some(f.section)) else {
                if k == 0 {
                    break;
                }
                return Err(err(missing, f.name, b"", 0));
            };
            let (lo, hi) = (f.insn_off, u64::from(f.insn_off) + u64::from(f.insn_cnt));
            let (mut first, mut last) = (None, 0usize);
            for (r, rec) in block.records.chunks_exact(rec_size).enumerate() {
                let idx = btf_ext::insn_off(rec) / INSN_SIZE as u32;
                if idx < lo {
                    continue;
                }
                if u64::from(idx) >= hi {
                    break;
                }
                first.get_or_insert(r);
                last = r;
            }
            let Some(first) = first else {
                if k == 0 {
                    break;
                }
                return Err(err(missing, f.name, b"", 0));
            };
            let adj = seg.insn_off.wrapping_sub(f.insn_off);
            for rec in block.records.chunks_exact(rec_size).skip(first).take(last + 1 - first) {
                if let Some(out) = out.as_deref_mut() {
                    let dst = out
                        .get_mut(count * rec_size..(count + 1) * rec_size)
                        .ok_or(Error::CapacityExceeded {
                            what: "linked .BTF.ext records",
                            capacity,
                        })?;
                    dst.copy_from_slice(rec);
                    let off = (btf_ext::insn_off(rec) / INSN_SIZE as u32).wrapping_add(adj);
                    dst[..4].copy_from_slice(&off.to_le_bytes());
                }
                count += 1;
            }
        }
        Ok(ExtInfo {
            rec_size: if count == 0 { 0 } else { sec.rec_size },
            count,
        })
    }

    /// The CO-RE relocations of the linked program as gen_loader passes
    /// them in `core_relos` of `BPF_PROG_LOAD` (so that the kernel applies
    /// them): function by function, by instruction within each, `insn_off`
    /// in bytes of the linked program. `out: None` only counts.
    pub fn core_relos(&self, linked: &Linked<'_>, mut out: Option<&mut [CoreRelo]>) -> Result<usize> {
        let Some(sec) = &self.btf_ext.core_relo else {
            return Ok(0);
        };
        let capacity = out.as_ref().map_or(0, |o| o.len());
        let name_of = self.name_of();
        let mut n = 0usize;
        for seg in linked.segments {
            let fi = seg.function as usize;
            let f = self.function(fi)?;
            let start = n;
            for block in sec.blocks(&self.elf, &name_of).filter(|b| b.section == Some(f.section)) {
                for rec in block.records.chunks_exact(sec.rec_size as usize) {
                    let idx = btf_ext::insn_off(rec) / INSN_SIZE as u32;
                    if functions::find(self.functions, f.section, u64::from(idx)) != Some(fi) {
                        continue;
                    }
                    if let Some(out) = out.as_deref_mut() {
                        let word = |i: usize| btf_ext::insn_off(&rec[i..]);
                        *out.get_mut(n).ok_or(Error::CapacityExceeded {
                            what: "linked CO-RE relocations",
                            capacity,
                        })? = CoreRelo {
                            insn_off: ((seg.insn_off + (idx - f.insn_off)) * INSN_SIZE as u32).into(),
                            type_id: word(4).into(),
                            access_str_off: word(8).into(),
                            kind: word(12).into(),
                        };
                    }
                    n += 1;
                }
            }
            if let Some(out) = out.as_deref_mut() {
                out[start..n].sort_unstable_by_key(|r| {
                    (r.insn_off.get(), r.type_id.get(), r.access_str_off.get(), r.kind.get())
                });
            }
        }
        Ok(n)
    }
}
