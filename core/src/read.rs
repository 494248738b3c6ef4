//! Bounds-checked reads over input bytes. Every input-derived offset goes
//! through these helpers; nothing indexes raw input directly.

use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::error::{Error, Result};

/// `data[offset..offset + len]`, or a `Truncated` error naming `what`.
pub(crate) fn bytes<'a>(data: &'a [u8], offset: usize, len: usize, what: &'static str) -> Result<&'a [u8]> {
    let end = offset.checked_add(len).ok_or(Error::Overflow { what })?;
    data.get(offset..end).ok_or(Error::Truncated { what, offset })
}

/// Same as [`bytes`] for 64-bit (file) offsets and lengths.
pub(crate) fn bytes64<'a>(data: &'a [u8], offset: u64, len: u64, what: &'static str) -> Result<&'a [u8]> {
    let offset = usize::try_from(offset).map_err(|_| Error::Overflow { what })?;
    let len = usize::try_from(len).map_err(|_| Error::Overflow { what })?;
    bytes(data, offset, len, what)
}

/// A plain-data struct at `offset` (any alignment), by reference.
pub(crate) fn pod<'a, T: FromBytes + KnownLayout + Immutable + zerocopy::Unaligned>(
    data: &'a [u8],
    offset: usize,
    what: &'static str,
) -> Result<&'a T> {
    let raw = bytes(data, offset, core::mem::size_of::<T>(), what)?;
    T::ref_from_bytes(raw).map_err(|_| Error::Truncated { what, offset })
}

/// A slice of `count` plain-data structs at `offset`.
pub(crate) fn pod_slice<'a, T: FromBytes + Immutable + zerocopy::Unaligned>(
    data: &'a [u8],
    offset: usize,
    count: usize,
    what: &'static str,
) -> Result<&'a [T]> {
    let len = count
        .checked_mul(core::mem::size_of::<T>())
        .ok_or(Error::Overflow { what })?;
    let raw = bytes(data, offset, len, what)?;
    <[T]>::ref_from_bytes(raw).map_err(|_| Error::Truncated { what, offset })
}

/// The NUL-terminated string starting at `offset` (without the NUL).
pub(crate) fn cstr(data: &[u8], offset: usize) -> Option<&[u8]> {
    let tail = data.get(offset..)?;
    let end = memchr::memchr(0, tail)?;
    Some(&tail[..end])
}
