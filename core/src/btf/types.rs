//! BTF type records: kinds, the common 12-byte header and the trailing
//! records of each kind, viewed in place.

use zerocopy::little_endian::{I32, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, Result};
use crate::read;

/// A BTF type kind (`BTF_KIND_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Void (only ever type id 0).
    Unknown = 0,
    /// Integer.
    Int = 1,
    /// Pointer.
    Ptr = 2,
    /// Array.
    Array = 3,
    /// Struct.
    Struct = 4,
    /// Union.
    Union = 5,
    /// Enum with 32-bit values.
    Enum = 6,
    /// Forward declaration.
    Fwd = 7,
    /// Typedef.
    Typedef = 8,
    /// `volatile`.
    Volatile = 9,
    /// `const`.
    Const = 10,
    /// `restrict`.
    Restrict = 11,
    /// Function.
    Func = 12,
    /// Function prototype.
    FuncProto = 13,
    /// Variable.
    Var = 14,
    /// Data section.
    Datasec = 15,
    /// Floating point.
    Float = 16,
    /// Declaration tag.
    DeclTag = 17,
    /// Type tag.
    TypeTag = 18,
    /// Enum with 64-bit values.
    Enum64 = 19,
}

impl Kind {
    /// The kind for a kind number, if known.
    pub fn from_u8(kind: u8) -> Option<Kind> {
        Some(match kind {
            0 => Kind::Unknown,
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Modifiers that compatibility and `skip_mods_and_typedefs` look through.
    pub fn is_modifier(self) -> bool {
        matches!(self, Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag)
    }

    /// The kernel's upper-case name of the kind, as bpftool prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unknown => "UNKNOWN",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }
}

/// `struct btf_type`: the 12 bytes every type record starts with.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawType {
    /// Offset of the name in the string section.
    pub name_off: U32,
    /// vlen (bits 0-15), kind (bits 24-28), kind_flag (bit 31).
    pub info: U32,
    /// Size, or the id of the referenced type, depending on the kind.
    pub size_or_type: U32,
}

/// `struct btf_array`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Array {
    /// Element type id.
    pub elem_type: U32,
    /// Index type id.
    pub index_type: U32,
    /// Number of elements.
    pub nelems: U32,
}

/// `struct btf_member` (STRUCT, UNION).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Member {
    /// Member name offset.
    pub name_off: U32,
    /// Member type id.
    pub type_id: U32,
    /// Bit offset (and bitfield size when the kind flag is set).
    pub offset: U32,
}

/// `struct btf_param` (FUNC_PROTO).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Param {
    /// Parameter name offset.
    pub name_off: U32,
    /// Parameter type id (0 for a trailing `...`).
    pub type_id: U32,
}

/// `struct btf_enum`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EnumValue {
    /// Enumerator name offset.
    pub name_off: U32,
    /// Value.
    pub val: I32,
}

/// `struct btf_enum64`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Enum64Value {
    /// Enumerator name offset.
    pub name_off: U32,
    /// Low 32 bits of the value.
    pub val_lo32: U32,
    /// High 32 bits of the value.
    pub val_hi32: U32,
}

/// `struct btf_var_secinfo` (DATASEC).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VarSecinfo {
    /// The VAR (or FUNC) type id.
    pub type_id: U32,
    /// Offset within the section.
    pub offset: U32,
    /// Size.
    pub size: U32,
}

/// Linkage of a VAR (`BTF_VAR_*`) or FUNC (`BTF_FUNC_*`).
pub mod linkage {
    /// `static`.
    pub const STATIC: u32 = 0;
    /// Global, defined here.
    pub const GLOBAL: u32 = 1;
    /// Extern, defined elsewhere.
    pub const EXTERN: u32 = 2;
}

/// Size of the trailing records that follow the 12-byte header of a kind.
pub(crate) fn extra_len(kind: Kind, vlen: usize) -> Option<usize> {
    Some(match kind {
        Kind::Int | Kind::Var | Kind::DeclTag => 4,
        Kind::Array => 12,
        Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => vlen.checked_mul(12)?,
        Kind::Enum | Kind::FuncProto => vlen.checked_mul(8)?,
        Kind::Ptr
        | Kind::Fwd
        | Kind::Typedef
        | Kind::Volatile
        | Kind::Const
        | Kind::Restrict
        | Kind::Func
        | Kind::Float
        | Kind::TypeTag => 0,
        Kind::Unknown => return None,
    })
}

static VOID: RawType = RawType {
    name_off: U32::ZERO,
    info: U32::ZERO,
    size_or_type: U32::ZERO,
};

/// One BTF type, viewed in place.
#[derive(Clone, Copy, Debug)]
pub struct Type<'a> {
    id: u32,
    kind: Kind,
    raw: &'a RawType,
    extra: &'a [u8],
}

impl<'a> Type<'a> {
    /// The void type, id 0.
    pub fn void() -> Type<'static> {
        Type {
            id: 0,
            kind: Kind::Unknown,
            raw: &VOID,
            extra: &[],
        }
    }

    /// Parses the record at the start of `bytes`; returns it and its length.
    /// `pos` is the byte offset of `bytes` within its type section.
    pub(crate) fn parse(bytes: &'a [u8], id: u32, pos: usize) -> Result<(Type<'a>, usize)> {
        let raw: &RawType = read::pod(bytes, 0, "BTF type").map_err(|_| Error::Truncated {
            what: "BTF type",
            offset: pos,
        })?;
        let info = raw.info.get();
        let kind_no = ((info >> 24) & 0x1f) as u8;
        let kind = match Kind::from_u8(kind_no) {
            Some(Kind::Unknown) | None => return Err(Error::BtfKind { id, kind: kind_no }),
            Some(kind) => kind,
        };
        let vlen = (info & 0xffff) as usize;
        let extra_len = extra_len(kind, vlen).ok_or(Error::BtfKind { id, kind: kind_no })?;
        let extra = read::bytes(bytes, 12, extra_len, "BTF type records").map_err(|_| Error::Truncated {
            what: "BTF type records (vlen past the end)",
            offset: pos,
        })?;
        Ok((Type { id, kind, raw, extra }, 12 + extra_len))
    }

    /// The raw 12-byte header.
    pub fn raw(&self) -> &'a RawType {
        self.raw
    }

    /// Type id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Name offset in the string section (0 for anonymous types).
    pub fn name_off(&self) -> u32 {
        self.raw.name_off.get()
    }

    /// Number of trailing records (members, params, enumerators, vars).
    pub fn vlen(&self) -> u16 {
        (self.raw.info.get() & 0xffff) as u16
    }

    /// The kind flag (bit 31 of info).
    pub fn kind_flag(&self) -> bool {
        self.raw.info.get() >> 31 != 0
    }

    /// Size in bytes (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT).
    pub fn size(&self) -> u32 {
        self.raw.size_or_type.get()
    }

    /// Referenced type id (PTR, TYPEDEF, modifiers, FUNC, FUNC_PROTO return,
    /// VAR, DECL_TAG, TYPE_TAG).
    pub fn type_id(&self) -> u32 {
        self.raw.size_or_type.get()
    }

    /// The raw 32-bit word after an INT, VAR or DECL_TAG header.
    fn extra_u32(&self) -> u32 {
        self.extra
            .get(..4)
            .and_then(|b| U32::read_from_bytes(b).ok())
            .map_or(0, |v| v.get())
    }

    /// INT encoding bits (`BTF_INT_ENCODING`).
    pub fn int_encoding(&self) -> u8 {
        ((self.extra_u32() >> 24) & 0x0f) as u8
    }

    /// INT bit offset (`BTF_INT_OFFSET`).
    pub fn int_offset(&self) -> u8 {
        ((self.extra_u32() >> 16) & 0xff) as u8
    }

    /// INT bit size (`BTF_INT_BITS`).
    pub fn int_bits(&self) -> u8 {
        (self.extra_u32() & 0xff) as u8
    }

    /// VAR linkage (see [`linkage`]); FUNC linkage lives in vlen.
    pub fn linkage(&self) -> u32 {
        match self.kind {
            Kind::Var => self.extra_u32(),
            Kind::Func => u32::from(self.vlen()),
            _ => 0,
        }
    }

    /// DECL_TAG component index (-1 for the whole declaration).
    pub fn decl_tag_component(&self) -> i32 {
        self.extra_u32() as i32
    }

    /// ARRAY record.
    pub fn array(&self) -> Option<&'a Array> {
        if self.kind != Kind::Array {
            return None;
        }
        read::pod(self.extra, 0, "BTF array").ok()
    }

    fn records<T: FromBytes + Immutable + Unaligned>(&self, kinds: &[Kind]) -> &'a [T] {
        if !kinds.contains(&self.kind) {
            return &[];
        }
        <[T]>::ref_from_bytes(self.extra).unwrap_or(&[])
    }

    /// STRUCT/UNION members.
    pub fn members(&self) -> &'a [Member] {
        self.records(&[Kind::Struct, Kind::Union])
    }

    /// FUNC_PROTO parameters.
    pub fn params(&self) -> &'a [Param] {
        self.records(&[Kind::FuncProto])
    }

    /// ENUM enumerators.
    pub fn enum_values(&self) -> &'a [EnumValue] {
        self.records(&[Kind::Enum])
    }

    /// ENUM64 enumerators.
    pub fn enum64_values(&self) -> &'a [Enum64Value] {
        self.records(&[Kind::Enum64])
    }

    /// DATASEC variables.
    pub fn datasec_vars(&self) -> &'a [VarSecinfo] {
        self.records(&[Kind::Datasec])
    }
}
