//! The BPF numbers ksymrelo needs, declared once: instruction opcodes,
//! pseudo `src_reg` values, helper ids and the errno the helpers return.
//! BTF kinds are [`crate::btf::Kind`]; every other module, in every crate,
//! takes its numbers from here.

/// Opcodes (class | op | source).
pub mod op {
    /// `BPF_LD | BPF_IMM | BPF_DW`: the two-slot 64-bit immediate load.
    pub const LD_IMM64: u8 = 0x18;
    /// `BPF_JMP | BPF_CALL`.
    pub const CALL: u8 = 0x85;
    /// `BPF_JMP | BPF_EXIT`.
    pub const EXIT: u8 = 0x95;
    /// `dst = imm` (64-bit).
    pub const MOV64_IMM: u8 = 0xb7;
    /// `dst = src` (64-bit).
    pub const MOV64_REG: u8 = 0xbf;
    /// `dst += imm`.
    pub const ADD64_IMM: u8 = 0x07;
    /// `dst += src`.
    pub const ADD64_REG: u8 = 0x0f;
    /// `dst <<= imm`.
    pub const LSH64_IMM: u8 = 0x67;
    /// `dst >>= imm` (logical).
    pub const RSH64_IMM: u8 = 0x77;
    /// `dst &= imm`.
    pub const AND64_IMM: u8 = 0x57;
    /// `goto +off`.
    pub const JA: u8 = 0x05;
    /// `if dst == imm goto +off`.
    pub const JEQ_IMM: u8 = 0x15;
    /// `if dst != imm goto +off`.
    pub const JNE_IMM: u8 = 0x55;
    /// `if dst > imm goto +off` (unsigned).
    pub const JGT_IMM: u8 = 0x25;
    /// `if dst >= imm goto +off` (unsigned).
    pub const JGE_IMM: u8 = 0x35;
    /// `if dst s>= imm goto +off`.
    pub const JSGE_IMM: u8 = 0x75;
    /// `if dst s< imm goto +off`.
    pub const JSLT_IMM: u8 = 0xc5;
    /// `if dst s<= imm goto +off`.
    pub const JSLE_IMM: u8 = 0xd5;
    /// `dst = *(u8 *)(src + off)`.
    pub const LDX_B: u8 = 0x71;
    /// `dst = *(u16 *)(src + off)`.
    pub const LDX_H: u8 = 0x69;
    /// `dst = *(u32 *)(src + off)`.
    pub const LDX_W: u8 = 0x61;
    /// `dst = *(u64 *)(src + off)`.
    pub const LDX_DW: u8 = 0x79;
    /// `*(u8 *)(dst + off) = src`.
    pub const STX_B: u8 = 0x73;
    /// `*(u16 *)(dst + off) = src`.
    pub const STX_H: u8 = 0x6b;
    /// `*(u32 *)(dst + off) = src`.
    pub const STX_W: u8 = 0x63;
    /// `*(u64 *)(dst + off) = src`.
    pub const STX_DW: u8 = 0x7b;
    /// `*(u16 *)(dst + off) = imm`.
    pub const ST_H: u8 = 0x6a;
    /// `*(u32 *)(dst + off) = imm`.
    pub const ST_W: u8 = 0x62;
    /// `*(u64 *)(dst + off) = imm` (sign-extended).
    pub const ST_DW: u8 = 0x7a;
}

/// `src_reg` values that give an instruction a meaning beyond its opcode.
pub mod pseudo {
    /// `call`: a BPF-to-BPF call (imm = relative instruction offset).
    pub const CALL: u8 = 1;
    /// `call`: a kfunc call (imm = BTF id, off = fd_array slot).
    pub const KFUNC_CALL: u8 = 2;
    /// `ld_imm64`: a map by fd.
    pub const MAP_FD: u8 = 1;
    /// `ld_imm64`: a map value by fd.
    pub const MAP_VALUE: u8 = 2;
    /// `ld_imm64`: a kernel BTF object (imm = BTF id, next imm = BTF fd).
    pub const BTF_ID: u8 = 3;
    /// `ld_imm64`: a BPF function (a callback; imm = relative offset).
    pub const FUNC: u8 = 4;
    /// `ld_imm64`: a map by fd_array index.
    pub const MAP_IDX: u8 = 5;
    /// `ld_imm64`: a map value by fd_array index.
    pub const MAP_IDX_VALUE: u8 = 6;
}

/// Helper function ids (`BPF_FUNC_*`).
pub mod helper {
    /// `bpf_sys_bpf(cmd, attr, attr_size)`: a `bpf(2)` command from a
    /// syscall program; pointers inside `attr` are kernel addresses (the
    /// loader's blob), except log buffers, which stay user addresses.
    pub const SYS_BPF: i32 = 166;
    /// `bpf_btf_find_by_name_kind(name, name_sz, kind, flags)`.
    pub const BTF_FIND_BY_NAME_KIND: i32 = 167;
    /// `bpf_sys_close(fd)`.
    pub const SYS_CLOSE: i32 = 168;
    /// `bpf_kallsyms_lookup_name(name, name_sz, flags, res)`.
    pub const KALLSYMS_LOOKUP_NAME: i32 = 179;
    /// `bpf_loop(nr_loops, callback, ctx, flags)`.
    pub const LOOP: i32 = 181;
}

/// `ENOENT`: what the lookup helpers return (negated) for a name the kernel
/// does not have.
pub const ENOENT: i32 = 2;

/// Base of the `imm` of a poisoned (unresolved weak) kfunc call; libbpf adds
/// the extern's index.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;
