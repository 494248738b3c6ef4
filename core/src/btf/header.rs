//! The BTF header and the validation of the sections it describes.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, Result};
use crate::read;

/// `BTF_MAGIC`, as stored by a little-endian kernel or compiler.
pub const MAGIC: u16 = 0xeb9f;

/// `struct btf_header`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: U16,
    /// Format version (1).
    pub version: u8,
    /// Flags (0).
    pub flags: u8,
    /// Length of this header, possibly longer than this struct.
    pub hdr_len: U32,
    /// Type section offset, from the end of the header.
    pub type_off: U32,
    /// Type section length.
    pub type_len: U32,
    /// String section offset, from the end of the header.
    pub str_off: U32,
    /// String section length.
    pub str_len: U32,
}

/// The two sections of a BTF blob, validated against its length.
pub(crate) struct Sections<'a> {
    pub types: &'a [u8],
    pub strings: &'a [u8],
}

pub(crate) fn sections(data: &[u8], is_split: bool) -> Result<Sections<'_>> {
    let hdr: &Header = read::pod(data, 0, "BTF header")?;
    if hdr.magic.get() != MAGIC {
        return Err(Error::BtfMagic { found: hdr.magic.get() });
    }
    if hdr.version != 1 {
        return Err(Error::Malformed {
            what: "BTF version",
            offset: 2,
        });
    }
    let hdr_len = hdr.hdr_len.get() as usize;
    if hdr_len < core::mem::size_of::<Header>() || hdr_len > data.len() {
        return Err(Error::Malformed {
            what: "BTF header length",
            offset: 4,
        });
    }
    // Fields past the ones we know must be zero, as the kernel requires.
    if read::bytes(
        data,
        core::mem::size_of::<Header>(),
        hdr_len - core::mem::size_of::<Header>(),
        "BTF header",
    )?
    .iter()
    .any(|&b| b != 0)
    {
        return Err(Error::Malformed {
            what: "BTF header (unknown non-zero fields)",
            offset: core::mem::size_of::<Header>(),
        });
    }
    let body = &data[hdr_len..];
    let type_off = hdr.type_off.get() as usize;
    let str_off = hdr.str_off.get() as usize;
    if type_off % 4 != 0 {
        return Err(Error::Malformed {
            what: "BTF type section alignment",
            offset: hdr_len + type_off,
        });
    }
    let types =
        read::bytes(body, type_off, hdr.type_len.get() as usize, "BTF type section").map_err(|_| Error::Malformed {
            what: "BTF type section offset/length",
            offset: hdr_len + type_off,
        })?;
    let strings =
        read::bytes(body, str_off, hdr.str_len.get() as usize, "BTF string section").map_err(|_| Error::Malformed {
            what: "BTF string section offset/length",
            offset: hdr_len + str_off,
        })?;
    // The sections must not overlap.
    let type_end = type_off + types.len();
    let str_end = str_off + strings.len();
    if type_off < str_end && str_off < type_end {
        return Err(Error::Malformed {
            what: "BTF sections overlap",
            offset: hdr_len + str_off,
        });
    }
    if strings.last().is_some_and(|&b| b != 0) {
        return Err(Error::Malformed {
            what: "BTF string section (no final NUL)",
            offset: hdr_len + str_end,
        });
    }
    if !is_split && strings.first() != Some(&0) {
        return Err(Error::Malformed {
            what: "BTF string section (must start with the empty string)",
            offset: hdr_len + str_off,
        });
    }
    Ok(Sections { types, strings })
}
