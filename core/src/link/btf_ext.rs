//! `.BTF.ext`: func_info, line_info and CO-RE relocation records, read in
//! place with libbpf's checks (`btf_ext_parse_sec_info`), each block
//! mapped to its ELF section by name as libbpf maps it.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::elf::Elf;
use crate::error::{Error, Result};
use crate::index::SectionIndex;
use crate::read;

/// `.BTF.ext` magic.
pub const MAGIC: u16 = 0xeb9f;

/// `struct bpf_core_relo`, as `BPF_PROG_LOAD` takes it in `core_relos`
/// (`insn_off` in bytes of the loaded program).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CoreRelo {
    /// Byte offset of the instruction.
    pub insn_off: U32,
    /// Local BTF type id.
    pub type_id: U32,
    /// Offset of the access string in the object's BTF strings.
    pub access_str_off: U32,
    /// `enum bpf_core_relo_kind`.
    pub kind: U32,
}

/// Which records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    /// `bpf_func_info` records (at least 8 bytes each).
    Func,
    /// `bpf_line_info` records (at least 16 bytes each).
    Line,
    /// `bpf_core_relo` records (at least 16 bytes each).
    CoreRelo,
}

impl Info {
    fn min_rec_size(self) -> u32 {
        match self {
            Info::Func => 8,
            Info::Line | Info::CoreRelo => 16,
        }
    }
}

/// One kind of records: the record size and the blocks that follow it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InfoSec<'a> {
    pub rec_size: u32,
    blocks: &'a [u8],
}

/// One block: the records of one ELF section.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block<'a> {
    /// The ELF section its name names (`None`: no such section).
    pub section: Option<SectionIndex>,
    /// The records, `rec_size` bytes each.
    pub records: &'a [u8],
}

impl<'a> InfoSec<'a> {
    /// The blocks, with their sections found by name in `elf` through
    /// `name_of` (the object BTF's strings).
    pub fn blocks<'s>(
        &'s self,
        elf: &'s Elf<'a>,
        name_of: &'s dyn Fn(u32) -> Option<&'a [u8]>,
    ) -> impl Iterator<Item = Block<'a>> + 's {
        let rec = self.rec_size as usize;
        let mut rest = self.blocks;
        core::iter::from_fn(move || {
            // Checked by `parse`: every block header and its records fit.
            let hdr = rest.get(..8)?;
            let name_off = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let n = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
            let records = rest.get(8..8 + n * rec)?;
            rest = &rest[8 + n * rec..];
            let section = name_of(name_off)
                .filter(|n| !n.is_empty())
                .and_then(|n| elf.section_by_name(n).ok().flatten())
                .map(|s| s.index);
            Some(Block { section, records })
        })
    }
}

/// A parsed `.BTF.ext`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BtfExt<'a> {
    pub func_info: Option<InfoSec<'a>>,
    pub line_info: Option<InfoSec<'a>>,
    pub core_relo: Option<InfoSec<'a>>,
}

impl<'a> BtfExt<'a> {
    pub fn get(&self, info: Info) -> Option<&InfoSec<'a>> {
        match info {
            Info::Func => self.func_info.as_ref(),
            Info::Line => self.line_info.as_ref(),
            Info::CoreRelo => self.core_relo.as_ref(),
        }
    }
}

fn malformed(what: &'static str, offset: usize) -> Error {
    Error::Malformed { what, offset }
}

/// Parses `.BTF.ext` with libbpf's checks (`btf_ext_parse_hdr`,
/// `btf_ext_parse_sec_info`). libbpf ignores a malformed `.BTF.ext` (with
/// a warning) and loads without it; this is an error here.
pub(crate) fn parse(data: &[u8]) -> Result<BtfExt<'_>> {
    let word = |off: usize| -> Result<u32> {
        let b = read::bytes(data, off, 4, ".BTF.ext header")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let magic = read::bytes(data, 0, 2, ".BTF.ext header")?;
    if u16::from_le_bytes([magic[0], magic[1]]) != MAGIC {
        return Err(malformed(".BTF.ext magic", 0));
    }
    let hdr_len = word(4)? as usize;
    if data[2] != 1 || data[3] != 0 {
        return Err(malformed(".BTF.ext version/flags", 2));
    }
    if hdr_len < 24 || hdr_len >= data.len() {
        return Err(malformed(".BTF.ext header length", 4));
    }
    let sec = |off_at: usize, info: Info| -> Result<Option<InfoSec<'_>>> {
        let (off, len) = (word(off_at)? as usize, word(off_at + 4)? as usize);
        if len == 0 {
            return Ok(None);
        }
        if off % 4 != 0 {
            return Err(malformed(".BTF.ext info offset alignment", off_at));
        }
        let start = hdr_len.checked_add(off).ok_or(Error::Overflow { what: ".BTF.ext" })?;
        let bytes = read::bytes(data, start, len, ".BTF.ext info")?;
        let rec_size = match bytes.get(..4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => return Err(malformed(".BTF.ext record size", start)),
        };
        if rec_size < info.min_rec_size() || rec_size % 4 != 0 {
            return Err(malformed(".BTF.ext record size", start));
        }
        let blocks = &bytes[4..];
        if blocks.is_empty() {
            return Err(malformed(".BTF.ext info without records", start));
        }
        let mut rest = blocks;
        while !rest.is_empty() {
            let at = start + (bytes.len() - rest.len());
            if rest.len() < 8 {
                return Err(malformed(".BTF.ext block header", at));
            }
            let n = u64::from(u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]));
            let total = 8 + n * u64::from(rec_size);
            if n == 0 || (rest.len() as u64) < total {
                return Err(malformed(".BTF.ext block record count", at));
            }
            rest = &rest[total as usize..];
        }
        Ok(Some(InfoSec { rec_size, blocks }))
    };
    let func_info = sec(8, Info::Func)?;
    let line_info = sec(16, Info::Line)?;
    let core_relo = if hdr_len >= 32 { sec(24, Info::CoreRelo)? } else { None };
    Ok(BtfExt {
        func_info,
        line_info,
        core_relo,
    })
}

/// The first `u32` of a record: its instruction's byte offset.
pub(crate) fn insn_off(record: &[u8]) -> u32 {
    u32::from_le_bytes([record[0], record[1], record[2], record[3]])
}
