//! A tiny BPF assembler over a caller's instruction buffer: named
//! registers, opcodes by name, and forward jumps to labels that are
//! resolved once at the end, so no jump distance is counted by hand.

use crate::bpf::{op, pseudo};
use crate::error::{Error, Result};
use crate::insn::Insn;

/// A BPF register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

/// A jump target, bound to an instruction index with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(u16);

/// Most labels and pending jumps of one program.
const MAX_LABELS: usize = 32;
const MAX_FIXUPS: usize = 64;

/// What a pending reference to a label fills in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixup {
    /// A jump's `off`.
    JumpOff,
    /// The `imm` of an `ld_imm64` of a BPF function.
    FuncImm,
}

/// Writes instructions into a buffer (or only counts them, with `None`).
pub struct Asm<'b> {
    buf: Option<&'b mut [Insn]>,
    len: usize,
    labels: heapless::Vec<Option<u32>, MAX_LABELS>,
    /// (instruction index, label, what to fill in)
    fixups: heapless::Vec<(u32, Label, Fixup), MAX_FIXUPS>,
}

impl<'b> Asm<'b> {
    /// An assembler writing into `buf`; `None` only counts.
    pub fn new(buf: Option<&'b mut [Insn]>) -> Self {
        Asm {
            buf,
            len: 0,
            labels: heapless::Vec::new(),
            fixups: heapless::Vec::new(),
        }
    }

    /// Instructions written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one instruction.
    pub fn put(&mut self, insn: Insn) -> Result<()> {
        if let Some(buf) = self.buf.as_deref_mut() {
            let capacity = buf.len();
            *buf.get_mut(self.len).ok_or(Error::CapacityExceeded {
                what: "loader instructions",
                capacity,
            })? = insn;
        }
        self.len += 1;
        Ok(())
    }

    /// Appends `code dst, src, off, imm`.
    pub fn op(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Result<()> {
        self.put(Insn::new(code, dst as u8, src as u8, off, imm))
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> Result<()> {
        self.op(op::MOV64_IMM, dst, Reg::R0, 0, imm)
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) -> Result<()> {
        self.op(op::MOV64_REG, dst, src, 0, 0)
    }

    /// `dst = *(size *)(src + off)` with `code` one of the `LDX_*`.
    pub fn load(&mut self, code: u8, dst: Reg, src: Reg, off: i16) -> Result<()> {
        self.op(code, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src` with `code` one of the `STX_*`.
    pub fn store(&mut self, code: u8, dst: Reg, off: i16, src: Reg) -> Result<()> {
        self.op(code, dst, src, off, 0)
    }

    /// `call helper`.
    pub fn call_helper(&mut self, helper: i32) -> Result<()> {
        self.put(Insn::new(op::CALL, 0, 0, 0, helper))
    }

    /// `exit`.
    pub fn exit(&mut self) -> Result<()> {
        self.put(Insn::new(op::EXIT, 0, 0, 0, 0))
    }

    /// A two-slot `ld_imm64 dst` with this `src_reg` and immediates.
    pub fn ld_imm64(&mut self, dst: Reg, src_reg: u8, imm: i32, next_imm: i32) -> Result<()> {
        self.put(Insn::new(op::LD_IMM64, dst as u8, src_reg, 0, imm))?;
        self.put(Insn::new(0, 0, 0, 0, next_imm))
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Result<Label> {
        let id = self.labels.len() as u16;
        self.labels.push(None).map_err(|_| Error::CapacityExceeded {
            what: "assembler labels",
            capacity: MAX_LABELS,
        })?;
        Ok(Label(id))
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) -> Result<()> {
        let slot = self.labels.get_mut(usize::from(label.0)).ok_or(Error::Mismatch {
            what: "label of another assembler",
        })?;
        *slot = Some(self.len as u32);
        Ok(())
    }

    /// The instruction index `label` is bound to, if bound.
    pub fn position(&self, label: Label) -> Option<u32> {
        self.labels.get(usize::from(label.0)).copied().flatten()
    }

    /// A conditional jump (`code` one of the `J*_IMM`, or `JA`) to `label`;
    /// the distance is filled in by [`Asm::finish`].
    pub fn jump(&mut self, code: u8, dst: Reg, imm: i32, label: Label) -> Result<()> {
        self.refer(label, Fixup::JumpOff)?;
        self.op(code, dst, Reg::R0, 0, imm)
    }

    /// `dst = &function at label` (`ld_imm64 src_reg=BPF_PSEUDO_FUNC`), for
    /// helpers that take a callback.
    pub fn ld_func(&mut self, dst: Reg, label: Label) -> Result<()> {
        self.refer(label, Fixup::FuncImm)?;
        self.ld_imm64(dst, pseudo::FUNC, 0, 0)
    }

    fn refer(&mut self, label: Label, fixup: Fixup) -> Result<()> {
        self.fixups
            .push((self.len as u32, label, fixup))
            .map_err(|_| Error::CapacityExceeded {
                what: "assembler jumps",
                capacity: MAX_FIXUPS,
            })
    }

    /// `goto label`.
    pub fn goto(&mut self, label: Label) -> Result<()> {
        self.jump(op::JA, Reg::R0, 0, label)
    }

    /// Resolves every jump and returns the instruction count.
    pub fn finish(mut self) -> Result<usize> {
        for &(at, label, fixup) in &self.fixups {
            let target = self
                .labels
                .get(usize::from(label.0))
                .copied()
                .flatten()
                .ok_or(Error::Mismatch {
                    what: "jump to an unbound label",
                })?;
            // Both count from the instruction after the referring one.
            let distance = i64::from(target) - i64::from(at) - 1;
            let Some(insn) = self.buf.as_deref_mut().and_then(|b| b.get_mut(at as usize)) else {
                continue;
            };
            match fixup {
                Fixup::JumpOff => {
                    insn.set_off(i16::try_from(distance).map_err(|_| Error::Overflow { what: "jump distance" })?)
                }
                Fixup::FuncImm => insn.set_imm(distance as i32),
            }
        }
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_on_their_labels() {
        let mut buf = [Insn::default(); 8];
        let mut a = Asm::new(Some(&mut buf));
        let out = a.label().unwrap();
        a.jump(op::JEQ_IMM, Reg::R1, 0, out).unwrap();
        a.mov_imm(Reg::R0, 1).unwrap();
        a.mov_imm(Reg::R0, 2).unwrap();
        a.bind(out).unwrap();
        a.exit().unwrap();
        assert_eq!(a.finish().unwrap(), 4);
        assert_eq!(buf[0].off(), 2);
    }

    #[test]
    fn unbound_labels_and_full_buffers_are_errors() {
        let mut a = Asm::new(None);
        let l = a.label().unwrap();
        a.goto(l).unwrap();
        assert!(matches!(a.finish(), Err(Error::Mismatch { .. })));
        let mut buf = [Insn::default(); 1];
        let mut a = Asm::new(Some(&mut buf));
        a.exit().unwrap();
        assert!(matches!(a.exit(), Err(Error::CapacityExceeded { .. })));
    }
}
