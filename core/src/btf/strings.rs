//! The BTF string section: names by offset, across split BTF.

use crate::error::{Error, Result};
use crate::read;

/// One BTF's string section and where its offsets start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strings<'a> {
    pub bytes: &'a [u8],
    /// Offsets below this belong to the base BTF.
    pub start: u32,
}

impl<'a> Strings<'a> {
    /// The string at `off` (which must be at or above `start`).
    pub fn get(&self, off: u32) -> Result<&'a [u8]> {
        let local = off.checked_sub(self.start).ok_or(Error::BtfString { offset: off })?;
        read::cstr(self.bytes, local as usize).ok_or(Error::BtfString { offset: off })
    }

    /// Total length, for the next split BTF's `start`.
    pub fn end(&self) -> Result<u32> {
        u32::try_from(self.bytes.len())
            .ok()
            .and_then(|len| self.start.checked_add(len))
            .ok_or(Error::Overflow {
                what: "BTF string offsets",
            })
    }
}
