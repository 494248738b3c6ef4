//! A tiny BPF assembler over a caller's instruction buffer: named
//! registers, opcodes by name, and forward jumps to labels, each resolved
//! once, when its label is bound, so no jump distance is counted by hand.
//!
//! A label may be bound again after its jumps are resolved (one binding per
//! relocation site, say): a jump always goes to the *next* binding of its
//! label, like `1f` in a GNU assembler. So the labels and pending jumps an
//! emitter needs stay bounded by what one stretch of code uses, not by the
//! length of the program.

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

/// A jump target, bound to an instruction index with [`Asm::bind`] (and
/// again, for later jumps, by binding it once more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(u16);

/// Most labels of one program.
const MAX_LABELS: usize = 32;
/// Most jumps waiting for their label's next binding at any one time.
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
    /// Each label's latest binding.
    labels: heapless::Vec<Option<u32>, MAX_LABELS>,
    /// Jumps waiting for their label's next binding: (instruction index,
    /// label, what to fill in).
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

    /// `dst op= imm` with `code` one of the `*64_IMM` ALU opcodes.
    pub fn alu_imm(&mut self, code: u8, dst: Reg, imm: i32) -> Result<()> {
        self.op(code, dst, Reg::R0, 0, imm)
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

    /// `*(size *)(dst + off) = imm` with `code` one of the `ST_*`.
    pub fn store_imm(&mut self, code: u8, dst: Reg, off: i16, imm: i32) -> Result<()> {
        self.op(code, dst, Reg::R0, off, imm)
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

    /// `dst = &map[map_idx].value[off]` (`ld_imm64
    /// src_reg=BPF_PSEUDO_MAP_IDX_VALUE`; the kernel reads the second
    /// immediate as the `u32` offset, so its bits are `off`'s).
    pub fn ld_map_value(&mut self, dst: Reg, map_idx: i32, off: u32) -> Result<()> {
        self.ld_imm64(dst, pseudo::MAP_IDX_VALUE, map_idx, off as i32)
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

    /// Binds `label` to the next instruction and resolves the jumps made to
    /// it since its previous binding (later jumps go to a later binding).
    pub fn bind(&mut self, label: Label) -> Result<()> {
        let at = self.len as u32;
        let slot = self.labels.get_mut(usize::from(label.0)).ok_or(Error::Mismatch {
            what: "label of another assembler",
        })?;
        *slot = Some(at);
        let (mut buf, mut failed) = (self.buf.as_deref_mut(), None);
        self.fixups.retain(|&(from, l, fixup)| {
            if l != label {
                return true;
            }
            // Counted from the instruction after the referring one; checked
            // when only counting too, so a count promises what a write does.
            let distance = i64::from(at) - i64::from(from) - 1;
            let insn = buf.as_deref_mut().and_then(|b| b.get_mut(from as usize));
            match (fixup, i16::try_from(distance), insn) {
                (Fixup::JumpOff, Err(_), _) => failed = Some(Error::Overflow { what: "jump distance" }),
                (Fixup::JumpOff, Ok(off), Some(insn)) => insn.set_off(off),
                (Fixup::FuncImm, _, Some(insn)) => insn.set_imm(distance as i32),
                (_, _, None) => {}
            }
            false
        });
        failed.map_or(Ok(()), Err)
    }

    /// The instruction index `label` was last bound to, if bound.
    pub fn position(&self, label: Label) -> Option<u32> {
        self.labels.get(usize::from(label.0)).copied().flatten()
    }

    /// A conditional jump (`code` one of the `J*_IMM`, or `JA`) forward to
    /// the next binding of `label`, which fills in the distance.
    pub fn jump(&mut self, code: u8, dst: Reg, imm: i32, label: Label) -> Result<()> {
        self.refer(label, Fixup::JumpOff)?;
        self.op(code, dst, Reg::R0, 0, imm)
    }

    /// A conditional jump (`code` one of the `J*_IMM`, or `JA`) back to
    /// where `label` is bound now (an error if it is not bound yet): the
    /// one way to reach a shared stretch of code (a loader's cleanup) from
    /// any number of places without holding a pending jump for each.
    pub fn jump_back(&mut self, code: u8, dst: Reg, imm: i32, label: Label) -> Result<()> {
        let at = self.position(label).ok_or(Error::Mismatch {
            what: "backward jump to an unbound label",
        })?;
        let distance = i64::from(at) - self.len as i64 - 1;
        let off = i16::try_from(distance).map_err(|_| Error::Overflow { what: "jump distance" })?;
        self.op(code, dst, Reg::R0, off, imm)
    }

    /// Keeps `label`, bound behind, within `reach` instructions of what
    /// comes next: if it is farther, emits `goto +1` and a relay — a
    /// `goto` to the label's binding, which becomes its new binding — so
    /// that every later [`Asm::jump_back`] to it reaches (each hop is at
    /// most `reach` plus what was emitted since the last call).
    pub fn keep_in_reach(&mut self, label: Label, reach: u32) -> Result<()> {
        let at = self.position(label).ok_or(Error::Mismatch {
            what: "relay to an unbound label",
        })?;
        if (self.len as u64).saturating_sub(u64::from(at)) <= u64::from(reach) {
            return Ok(());
        }
        self.put(Insn::new(op::JA, 0, 0, 1, 0))?;
        let distance = i64::from(at) - self.len as i64 - 1;
        let off = i16::try_from(distance).map_err(|_| Error::Overflow { what: "jump distance" })?;
        self.bind(label)?;
        self.put(Insn::new(op::JA, 0, 0, off, 0))
    }

    /// `dst = &function at label` (`ld_imm64 src_reg=BPF_PSEUDO_FUNC`), for
    /// helpers that take a callback; the function follows, at the label's
    /// next binding.
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

    /// Checks every jump found its label and returns the instruction count.
    pub fn finish(self) -> Result<usize> {
        if self.fixups.is_empty() {
            Ok(self.len)
        } else {
            Err(Error::Mismatch {
                what: "jump to an unbound label",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
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

    #[test]
    fn a_label_bound_again_serves_the_jumps_made_since() {
        // Far more sites than labels or pending jumps the assembler holds.
        const SITES: usize = 3 * MAX_FIXUPS;
        let mut buf = [Insn::default(); 3 * SITES + 1];
        let mut a = Asm::new(Some(&mut buf));
        let next = a.label().unwrap();
        for _ in 0..SITES {
            a.jump(op::JEQ_IMM, Reg::R1, 0, next).unwrap();
            a.jump(op::JNE_IMM, Reg::R1, 1, next).unwrap();
            a.mov_imm(Reg::R0, 1).unwrap();
            a.bind(next).unwrap();
        }
        assert_eq!(a.position(next), Some(3 * SITES as u32));
        a.exit().unwrap();
        assert_eq!(a.finish().unwrap(), 3 * SITES + 1);
        for site in buf[..3 * SITES].chunks_exact(3) {
            assert_eq!((site[0].off(), site[1].off(), site[2].off()), (2, 1, 0));
        }
    }

    #[test]
    fn backward_jumps_reach_the_current_binding() {
        let mut buf = [Insn::default(); 4];
        let mut a = Asm::new(Some(&mut buf));
        let l = a.label().unwrap();
        assert!(matches!(
            a.jump_back(op::JA, Reg::R0, 0, l),
            Err(Error::Mismatch { .. })
        ));
        a.mov_imm(Reg::R0, 0).unwrap();
        a.bind(l).unwrap();
        a.exit().unwrap();
        a.jump_back(op::JSLT_IMM, Reg::R7, 0, l).unwrap();
        a.jump_back(op::JA, Reg::R0, 0, l).unwrap();
        assert_eq!(a.finish().unwrap(), 4);
        assert_eq!((buf[2].off(), buf[3].off()), (-2, -3));
    }

    #[test]
    fn relays_keep_a_label_behind_in_reach() {
        let mut buf = std::vec![Insn::default(); 100];
        let mut a = Asm::new(Some(&mut buf));
        let l = a.label().unwrap();
        a.bind(l).unwrap();
        a.exit().unwrap();
        for _ in 0..10 {
            a.mov_imm(Reg::R0, 0).unwrap();
        }
        a.keep_in_reach(l, 20).unwrap();
        assert_eq!(a.len(), 11, "near enough: nothing emitted");
        a.keep_in_reach(l, 5).unwrap();
        assert_eq!(a.position(l), Some(12));
        a.jump_back(op::JA, Reg::R0, 0, l).unwrap();
        assert_eq!(a.finish().unwrap(), 14);
        // goto +1 over the relay, the relay back to 0, the jump to the relay.
        assert_eq!((buf[11].off(), buf[12].off(), buf[13].off()), (1, -13, -2));
    }

    #[test]
    fn a_jump_goes_to_the_next_binding_never_back() {
        let mut a = Asm::new(None);
        let l = a.label().unwrap();
        a.bind(l).unwrap();
        a.goto(l).unwrap();
        assert!(matches!(a.finish(), Err(Error::Mismatch { .. })));
    }

    #[test]
    #[cfg_attr(miri, ignore = "32k instructions: too slow under miri; runs natively")]
    fn too_far_a_jump_is_an_error_when_counting_too() {
        for write in [false, true] {
            let mut buf = std::vec![Insn::default(); 40_000];
            let mut a = Asm::new(write.then_some(&mut buf[..]));
            let l = a.label().unwrap();
            a.goto(l).unwrap();
            for _ in 0..i16::MAX as usize + 1 {
                a.exit().unwrap();
            }
            assert!(matches!(a.bind(l), Err(Error::Overflow { .. })), "write {write}");
        }
    }

    #[test]
    fn immediates_and_map_values_encode_as_the_kernel_reads_them() {
        let mut buf = [Insn::default(); 4];
        let mut a = Asm::new(Some(&mut buf));
        a.store_imm(op::ST_W, Reg::R8, 4, -7).unwrap();
        a.alu_imm(op::RSH64_IMM, Reg::R9, 32).unwrap();
        a.ld_map_value(Reg::R2, 0, u32::MAX).unwrap();
        assert_eq!(a.finish().unwrap(), 4);
        assert_eq!(buf[0], Insn::new(op::ST_W, 8, 0, 4, -7));
        assert_eq!(buf[1], Insn::new(op::RSH64_IMM, 9, 0, 0, 32));
        assert_eq!(buf[2], Insn::new(op::LD_IMM64, 2, pseudo::MAP_IDX_VALUE, 0, 0));
        assert_eq!(buf[3].imm() as u32, u32::MAX);
    }
}
