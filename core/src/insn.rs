//! The BPF instruction (`struct bpf_insn`) and views of byte buffers as
//! instruction slices.

use zerocopy::little_endian::{I16, I32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::bpf::op;
use crate::error::{Error, Result};

/// One BPF instruction, laid out exactly as `struct bpf_insn` on a
/// little-endian machine.
///
/// The struct has alignment 1, so any byte buffer can be viewed as
/// instructions without copying; C callers' `struct bpf_insn *` (alignment 4)
/// are checked for alignment at the FFI boundary.
#[derive(Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high nibble.
    pub regs: u8,
    /// Signed offset.
    pub off: I16,
    /// Signed immediate.
    pub imm: I32,
}

impl Insn {
    /// Builds an instruction from its fields.
    pub const fn new(code: u8, dst_reg: u8, src_reg: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: (dst_reg & 0x0f) | (src_reg << 4),
            off: I16::new(off),
            imm: I32::new(imm),
        }
    }

    /// Destination register.
    pub fn dst_reg(&self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register (or pseudo-source marker).
    pub fn src_reg(&self) -> u8 {
        self.regs >> 4
    }

    /// Sets the destination register.
    pub fn set_dst_reg(&mut self, reg: u8) {
        self.regs = (self.regs & 0xf0) | (reg & 0x0f);
    }

    /// Sets the source register.
    pub fn set_src_reg(&mut self, reg: u8) {
        self.regs = (self.regs & 0x0f) | (reg << 4);
    }

    /// The offset field.
    pub fn off(&self) -> i16 {
        self.off.get()
    }

    /// The immediate field.
    pub fn imm(&self) -> i32 {
        self.imm.get()
    }

    /// Sets the offset field.
    pub fn set_off(&mut self, off: i16) {
        self.off.set(off);
    }

    /// Sets the immediate field.
    pub fn set_imm(&mut self, imm: i32) {
        self.imm.set(imm);
    }

    /// Whether this is the first slot of an `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == op::LD_IMM64
    }

    /// Whether this is a `call` (helper, BPF-to-BPF or kfunc).
    pub fn is_call(&self) -> bool {
        self.code == op::CALL
    }
}

impl core::fmt::Debug for Insn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code,
            self.dst_reg(),
            self.src_reg(),
            self.off(),
            self.imm()
        )
    }
}

/// Views a byte buffer as instructions, without copying.
///
/// ```
/// let bytes = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
/// let insns = ksymrelo_core::insn::insns(&bytes).unwrap();
/// assert_eq!(insns[0].code, ksymrelo_core::bpf::op::EXIT);
/// ```
pub fn insns(bytes: &[u8]) -> Result<&[Insn]> {
    <[Insn]>::ref_from_bytes(bytes).map_err(|_| Error::InsnBufferLength { len: bytes.len() })
}

/// Views a mutable byte buffer as instructions, without copying.
pub fn insns_mut(bytes: &mut [u8]) -> Result<&mut [Insn]> {
    let len = bytes.len();
    <[Insn]>::mut_from_bytes(bytes).map_err(|_| Error::InsnBufferLength { len })
}

/// The bytes of an instruction slice, without copying.
pub fn as_bytes(insns: &[Insn]) -> &[u8] {
    IntoBytes::as_bytes(insns)
}

/// Views a byte buffer as instructions and additionally requires the
/// alignment of C's `struct bpf_insn` (4), as a C caller's buffer must have.
pub fn insns_aligned(bytes: &[u8]) -> Result<&[Insn]> {
    if bytes.as_ptr().align_offset(4) != 0 {
        return Err(Error::InsnBufferMisaligned);
    }
    insns(bytes)
}

/// Mutable counterpart of [`insns_aligned`].
pub fn insns_aligned_mut(bytes: &mut [u8]) -> Result<&mut [Insn]> {
    if bytes.as_ptr().align_offset(4) != 0 {
        return Err(Error::InsnBufferMisaligned);
    }
    insns_mut(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::pseudo;

    #[test]
    fn layout_matches_struct_bpf_insn() {
        assert_eq!(core::mem::size_of::<Insn>(), 8);
        let insn = Insn::new(op::CALL, 1, pseudo::KFUNC_CALL, -2, 0x1234_5678);
        assert_eq!(insn.as_bytes(), &[0x85, 0x21, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(insn.dst_reg(), 1);
        assert_eq!(insn.src_reg(), 2);
        assert!(insn.is_call());
    }

    #[test]
    fn odd_length_is_an_error() {
        assert_eq!(insns(&[0u8; 12]).unwrap_err(), Error::InsnBufferLength { len: 12 });
        assert_eq!(insns(&[0u8; 16]).unwrap().len(), 2);
    }

    #[test]
    fn misalignment_is_an_error_when_c_alignment_is_required() {
        let buf = [0u32; 5];
        let bytes = buf.as_bytes();
        assert!(insns_aligned(&bytes[..16]).is_ok());
        assert_eq!(insns_aligned(&bytes[1..17]).unwrap_err(), Error::InsnBufferMisaligned);
        // Our own view accepts any alignment.
        assert_eq!(insns(&bytes[1..17]).unwrap().len(), 2);
    }

    #[test]
    fn register_setters_keep_the_other_nibble() {
        let mut insn = Insn::new(op::LD_IMM64, 1, 0, 0, 0);
        insn.set_src_reg(pseudo::BTF_ID);
        assert_eq!((insn.dst_reg(), insn.src_reg()), (1, 3));
        insn.set_dst_reg(7);
        assert_eq!((insn.dst_reg(), insn.src_reg()), (7, 3));
    }
}
