//! A human-readable disassembly of loader instructions, for golden tests
//! and for people reading what the emitter wrote.

use core::fmt;

use crate::bpf::{helper, op::*, pseudo};
use crate::insn::Insn;

/// A human-readable disassembly of loader instructions, one per line.
pub fn disasm(insns: &[Insn], out: &mut impl fmt::Write) -> fmt::Result {
    let mut i = 0;
    while i < insns.len() {
        let x = &insns[i];
        let (d, s, off, imm) = (x.dst_reg(), x.src_reg(), x.off(), x.imm());
        write!(out, "{i:4}: ")?;
        match x.code {
            LD_IMM64 if s == pseudo::MAP_IDX_VALUE => {
                let next = insns.get(i + 1).map_or(0, |n| n.imm());
                writeln!(out, "r{d} = map[{imm}][+{next}]")?;
                i += 1;
            }
            LD_IMM64 => {
                let next = insns.get(i + 1).map_or(0, |n| n.imm());
                writeln!(
                    out,
                    "r{d} = {:#x} ll",
                    (u64::from(next as u32) << 32) | u64::from(imm as u32)
                )?;
                i += 1;
            }
            MOV64_IMM => writeln!(out, "r{d} = {imm}")?,
            MOV64_REG => writeln!(out, "r{d} = r{s}")?,
            RSH64_IMM => writeln!(out, "r{d} >>= {imm}")?,
            AND64_IMM => writeln!(out, "r{d} &= {imm:#x}")?,
            JA => writeln!(out, "goto {off:+}")?,
            JEQ_IMM => writeln!(out, "if r{d} == {imm} goto {off:+}")?,
            JNE_IMM => writeln!(out, "if r{d} != {imm} goto {off:+}")?,
            JSGE_IMM => writeln!(out, "if r{d} s>= {imm} goto {off:+}")?,
            JSLT_IMM => writeln!(out, "if r{d} s< {imm} goto {off:+}")?,
            JSLE_IMM => writeln!(out, "if r{d} s<= {imm} goto {off:+}")?,
            ADD64_IMM => writeln!(out, "r{d} += {imm}")?,
            LDX_B | LDX_H | LDX_W | LDX_DW => writeln!(out, "r{d} = *({} *)(r{s} {off:+})", size_name(x.code))?,
            STX_B | STX_H | STX_W | STX_DW => writeln!(out, "*({} *)(r{d} {off:+}) = r{s}", size_name(x.code))?,
            ST_H | ST_W | ST_DW => writeln!(out, "*({} *)(r{d} {off:+}) = {imm}", size_name(x.code))?,
            CALL => match imm {
                helper::BTF_FIND_BY_NAME_KIND => writeln!(out, "call bpf_btf_find_by_name_kind#{imm}")?,
                helper::KALLSYMS_LOOKUP_NAME => writeln!(out, "call bpf_kallsyms_lookup_name#{imm}")?,
                helper::SYS_CLOSE => writeln!(out, "call bpf_sys_close#{imm}")?,
                helper::SYS_BPF => writeln!(out, "call bpf_sys_bpf#{imm}")?,
                _ => writeln!(out, "call #{imm}")?,
            },
            EXIT => writeln!(out, "exit")?,
            code => writeln!(out, "(code {code:#04x}) dst r{d} src r{s} off {off} imm {imm}")?,
        }
        i += 1;
    }
    Ok(())
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    }
}
