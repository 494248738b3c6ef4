//! What the loader left in its blob, read back after it ran: the status
//! header, the patched instructions and the fd_array.

use super::layout::{status, Layout, FD_SIZE};
use crate::bpf::INSN_SIZE;
use crate::error::{Error, Result};
use crate::insn::Insn;

/// The status the loader left in `blob`: `Some((extern index, error))` when
/// a lookup failed.
pub fn status(blob: &[u8], layout: &Layout) -> Option<(u32, i32)> {
    let at = layout.status_off as usize;
    let word = |o: i16| {
        let o = at + o as usize;
        blob.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (word(status::EXTERN)?, word(status::ERROR)?) {
        (0, _) => None,
        (idx, err) => Some((idx - 1, err as i32)),
    }
}

/// The program's instructions inside the blob, as the loader left them.
pub fn patched_insns<'b>(blob: &'b [u8], layout: &Layout) -> Result<&'b [Insn]> {
    let start = layout.insns_off as usize;
    let bytes = blob
        .get(start..start + layout.insn_cnt as usize * INSN_SIZE)
        .ok_or(Error::Mismatch {
            what: "blob shorter than its layout",
        })?;
    crate::insn::insns(bytes)
}

/// The fd_array inside the blob (slot 0 unused; empty without kfunc calls).
pub fn fd_array<'b>(blob: &'b [u8], layout: &Layout) -> impl Iterator<Item = i32> + 'b {
    let start = layout.fd_array_off as usize;
    let n = layout.fd_array_len as usize;
    blob.get(start..start + n * FD_SIZE as usize)
        .unwrap_or(&[])
        .chunks_exact(FD_SIZE as usize)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}
