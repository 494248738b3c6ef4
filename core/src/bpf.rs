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
    /// `dst ^= src`.
    pub const XOR64_REG: u8 = 0xaf;
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

/// `EPERM`: a sealed loader's status when its blob map is not exclusive
/// to it.
pub const EPERM: i32 = 1;

/// `EBADMSG`: a sealed loader's status when its blob's SHA-256 is not the
/// one it was generated for (the data was altered).
pub const EBADMSG: i32 = 74;

/// Where the kernel keeps a map's SHA-256 (`struct bpf_map`'s `sha`, 32
/// bytes; filled by `BPF_OBJ_GET_INFO_BY_FD` for a frozen map), as a
/// loader reads it through the map's pointer (Linux 6.18).
pub const MAP_SHA_OFF: i16 = 0;

/// `struct bpf_map`'s `u32 excl`: 1 when the map was created exclusive
/// to one program (`excl_prog_hash`), right after `sha` (Linux 6.18).
pub const MAP_EXCL_OFF: i16 = 32;

/// Base of the `imm` of a poisoned (unresolved weak) kfunc call; libbpf adds
/// the extern's index.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

/// Program types (`enum bpf_prog_type`), as `BPF_PROG_LOAD` takes them.
pub mod prog_type {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`.
    pub const SOCKET_FILTER: u32 = 1;
    /// `BPF_PROG_TYPE_KPROBE`.
    pub const KPROBE: u32 = 2;
    /// `BPF_PROG_TYPE_SCHED_CLS`.
    pub const SCHED_CLS: u32 = 3;
    /// `BPF_PROG_TYPE_SCHED_ACT`.
    pub const SCHED_ACT: u32 = 4;
    /// `BPF_PROG_TYPE_TRACEPOINT`.
    pub const TRACEPOINT: u32 = 5;
    /// `BPF_PROG_TYPE_XDP`.
    pub const XDP: u32 = 6;
    /// `BPF_PROG_TYPE_PERF_EVENT`.
    pub const PERF_EVENT: u32 = 7;
    /// `BPF_PROG_TYPE_CGROUP_SKB`.
    pub const CGROUP_SKB: u32 = 8;
    /// `BPF_PROG_TYPE_CGROUP_SOCK`.
    pub const CGROUP_SOCK: u32 = 9;
    /// `BPF_PROG_TYPE_LWT_IN`.
    pub const LWT_IN: u32 = 10;
    /// `BPF_PROG_TYPE_LWT_OUT`.
    pub const LWT_OUT: u32 = 11;
    /// `BPF_PROG_TYPE_LWT_XMIT`.
    pub const LWT_XMIT: u32 = 12;
    /// `BPF_PROG_TYPE_SOCK_OPS`.
    pub const SOCK_OPS: u32 = 13;
    /// `BPF_PROG_TYPE_SK_SKB`.
    pub const SK_SKB: u32 = 14;
    /// `BPF_PROG_TYPE_CGROUP_DEVICE`.
    pub const CGROUP_DEVICE: u32 = 15;
    /// `BPF_PROG_TYPE_SK_MSG`.
    pub const SK_MSG: u32 = 16;
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`.
    pub const RAW_TRACEPOINT: u32 = 17;
    /// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`.
    pub const CGROUP_SOCK_ADDR: u32 = 18;
    /// `BPF_PROG_TYPE_LWT_SEG6LOCAL`.
    pub const LWT_SEG6LOCAL: u32 = 19;
    /// `BPF_PROG_TYPE_LIRC_MODE2`.
    pub const LIRC_MODE2: u32 = 20;
    /// `BPF_PROG_TYPE_SK_REUSEPORT`.
    pub const SK_REUSEPORT: u32 = 21;
    /// `BPF_PROG_TYPE_FLOW_DISSECTOR`.
    pub const FLOW_DISSECTOR: u32 = 22;
    /// `BPF_PROG_TYPE_CGROUP_SYSCTL`.
    pub const CGROUP_SYSCTL: u32 = 23;
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE`.
    pub const RAW_TRACEPOINT_WRITABLE: u32 = 24;
    /// `BPF_PROG_TYPE_CGROUP_SOCKOPT`.
    pub const CGROUP_SOCKOPT: u32 = 25;
    /// `BPF_PROG_TYPE_TRACING`.
    pub const TRACING: u32 = 26;
    /// `BPF_PROG_TYPE_STRUCT_OPS`.
    pub const STRUCT_OPS: u32 = 27;
    /// `BPF_PROG_TYPE_EXT`.
    pub const EXT: u32 = 28;
    /// `BPF_PROG_TYPE_LSM`.
    pub const LSM: u32 = 29;
    /// `BPF_PROG_TYPE_SK_LOOKUP`.
    pub const SK_LOOKUP: u32 = 30;
    /// `BPF_PROG_TYPE_SYSCALL`.
    pub const SYSCALL: u32 = 31;
    /// `BPF_PROG_TYPE_NETFILTER`.
    pub const NETFILTER: u32 = 32;
}

/// Attach types (`enum bpf_attach_type`): a program's `expected_attach_type`.
pub mod attach_type {
    /// `BPF_CGROUP_INET_INGRESS`.
    pub const CGROUP_INET_INGRESS: u32 = 0;
    /// `BPF_CGROUP_INET_EGRESS`.
    pub const CGROUP_INET_EGRESS: u32 = 1;
    /// `BPF_CGROUP_INET_SOCK_CREATE`.
    pub const CGROUP_INET_SOCK_CREATE: u32 = 2;
    /// `BPF_CGROUP_SOCK_OPS`.
    pub const CGROUP_SOCK_OPS: u32 = 3;
    /// `BPF_SK_SKB_STREAM_PARSER`.
    pub const SK_SKB_STREAM_PARSER: u32 = 4;
    /// `BPF_SK_SKB_STREAM_VERDICT`.
    pub const SK_SKB_STREAM_VERDICT: u32 = 5;
    /// `BPF_CGROUP_DEVICE`.
    pub const CGROUP_DEVICE: u32 = 6;
    /// `BPF_SK_MSG_VERDICT`.
    pub const SK_MSG_VERDICT: u32 = 7;
    /// `BPF_CGROUP_INET4_BIND`.
    pub const CGROUP_INET4_BIND: u32 = 8;
    /// `BPF_CGROUP_INET6_BIND`.
    pub const CGROUP_INET6_BIND: u32 = 9;
    /// `BPF_CGROUP_INET4_CONNECT`.
    pub const CGROUP_INET4_CONNECT: u32 = 10;
    /// `BPF_CGROUP_INET6_CONNECT`.
    pub const CGROUP_INET6_CONNECT: u32 = 11;
    /// `BPF_CGROUP_INET4_POST_BIND`.
    pub const CGROUP_INET4_POST_BIND: u32 = 12;
    /// `BPF_CGROUP_INET6_POST_BIND`.
    pub const CGROUP_INET6_POST_BIND: u32 = 13;
    /// `BPF_CGROUP_UDP4_SENDMSG`.
    pub const CGROUP_UDP4_SENDMSG: u32 = 14;
    /// `BPF_CGROUP_UDP6_SENDMSG`.
    pub const CGROUP_UDP6_SENDMSG: u32 = 15;
    /// `BPF_LIRC_MODE2`.
    pub const LIRC_MODE2: u32 = 16;
    /// `BPF_FLOW_DISSECTOR`.
    pub const FLOW_DISSECTOR: u32 = 17;
    /// `BPF_CGROUP_SYSCTL`.
    pub const CGROUP_SYSCTL: u32 = 18;
    /// `BPF_CGROUP_UDP4_RECVMSG`.
    pub const CGROUP_UDP4_RECVMSG: u32 = 19;
    /// `BPF_CGROUP_UDP6_RECVMSG`.
    pub const CGROUP_UDP6_RECVMSG: u32 = 20;
    /// `BPF_CGROUP_GETSOCKOPT`.
    pub const CGROUP_GETSOCKOPT: u32 = 21;
    /// `BPF_CGROUP_SETSOCKOPT`.
    pub const CGROUP_SETSOCKOPT: u32 = 22;
    /// `BPF_TRACE_RAW_TP`.
    pub const TRACE_RAW_TP: u32 = 23;
    /// `BPF_TRACE_FENTRY`.
    pub const TRACE_FENTRY: u32 = 24;
    /// `BPF_TRACE_FEXIT`.
    pub const TRACE_FEXIT: u32 = 25;
    /// `BPF_MODIFY_RETURN`.
    pub const MODIFY_RETURN: u32 = 26;
    /// `BPF_LSM_MAC`.
    pub const LSM_MAC: u32 = 27;
    /// `BPF_TRACE_ITER`.
    pub const TRACE_ITER: u32 = 28;
    /// `BPF_CGROUP_INET4_GETPEERNAME`.
    pub const CGROUP_INET4_GETPEERNAME: u32 = 29;
    /// `BPF_CGROUP_INET6_GETPEERNAME`.
    pub const CGROUP_INET6_GETPEERNAME: u32 = 30;
    /// `BPF_CGROUP_INET4_GETSOCKNAME`.
    pub const CGROUP_INET4_GETSOCKNAME: u32 = 31;
    /// `BPF_CGROUP_INET6_GETSOCKNAME`.
    pub const CGROUP_INET6_GETSOCKNAME: u32 = 32;
    /// `BPF_XDP_DEVMAP`.
    pub const XDP_DEVMAP: u32 = 33;
    /// `BPF_CGROUP_INET_SOCK_RELEASE`.
    pub const CGROUP_INET_SOCK_RELEASE: u32 = 34;
    /// `BPF_XDP_CPUMAP`.
    pub const XDP_CPUMAP: u32 = 35;
    /// `BPF_SK_LOOKUP`.
    pub const SK_LOOKUP: u32 = 36;
    /// `BPF_XDP`.
    pub const XDP: u32 = 37;
    /// `BPF_SK_SKB_VERDICT`.
    pub const SK_SKB_VERDICT: u32 = 38;
    /// `BPF_SK_REUSEPORT_SELECT`.
    pub const SK_REUSEPORT_SELECT: u32 = 39;
    /// `BPF_SK_REUSEPORT_SELECT_OR_MIGRATE`.
    pub const SK_REUSEPORT_SELECT_OR_MIGRATE: u32 = 40;
    /// `BPF_PERF_EVENT`.
    pub const PERF_EVENT: u32 = 41;
    /// `BPF_TRACE_KPROBE_MULTI`.
    pub const TRACE_KPROBE_MULTI: u32 = 42;
    /// `BPF_LSM_CGROUP`.
    pub const LSM_CGROUP: u32 = 43;
    /// `BPF_STRUCT_OPS`.
    pub const STRUCT_OPS: u32 = 44;
    /// `BPF_NETFILTER`.
    pub const NETFILTER: u32 = 45;
    /// `BPF_TCX_INGRESS`.
    pub const TCX_INGRESS: u32 = 46;
    /// `BPF_TCX_EGRESS`.
    pub const TCX_EGRESS: u32 = 47;
    /// `BPF_TRACE_UPROBE_MULTI`.
    pub const TRACE_UPROBE_MULTI: u32 = 48;
    /// `BPF_CGROUP_UNIX_CONNECT`.
    pub const CGROUP_UNIX_CONNECT: u32 = 49;
    /// `BPF_CGROUP_UNIX_SENDMSG`.
    pub const CGROUP_UNIX_SENDMSG: u32 = 50;
    /// `BPF_CGROUP_UNIX_RECVMSG`.
    pub const CGROUP_UNIX_RECVMSG: u32 = 51;
    /// `BPF_CGROUP_UNIX_GETPEERNAME`.
    pub const CGROUP_UNIX_GETPEERNAME: u32 = 52;
    /// `BPF_CGROUP_UNIX_GETSOCKNAME`.
    pub const CGROUP_UNIX_GETSOCKNAME: u32 = 53;
    /// `BPF_NETKIT_PRIMARY`.
    pub const NETKIT_PRIMARY: u32 = 54;
    /// `BPF_NETKIT_PEER`.
    pub const NETKIT_PEER: u32 = 55;
    /// `BPF_TRACE_KPROBE_SESSION`.
    pub const TRACE_KPROBE_SESSION: u32 = 56;
    /// `BPF_TRACE_UPROBE_SESSION`.
    pub const TRACE_UPROBE_SESSION: u32 = 57;
    /// `BPF_TRACE_FSESSION`.
    pub const TRACE_FSESSION: u32 = 58;
    /// `BPF_TRACE_FENTRY_MULTI`.
    pub const TRACE_FENTRY_MULTI: u32 = 59;
    /// `BPF_TRACE_FEXIT_MULTI`.
    pub const TRACE_FEXIT_MULTI: u32 = 60;
    /// `BPF_TRACE_FSESSION_MULTI`.
    pub const TRACE_FSESSION_MULTI: u32 = 61;
}

/// Flags of `BPF_PROG_LOAD` (`prog_flags`) and `BPF_MAP_CREATE` (`map_flags`).
pub mod flags {
    /// `BPF_F_SLEEPABLE`.
    pub const SLEEPABLE: u32 = 16;
    /// `BPF_F_XDP_HAS_FRAGS`.
    pub const XDP_HAS_FRAGS: u32 = 32;
    /// `BPF_F_RDONLY_PROG`.
    pub const RDONLY_PROG: u32 = 128;
    /// `BPF_F_MMAPABLE`.
    pub const MMAPABLE: u32 = 1024;
}

/// Map types (`enum bpf_map_type`).
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PROG_ARRAY`.
    pub const PROG_ARRAY: u32 = 3;
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    pub const PERF_EVENT_ARRAY: u32 = 4;
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_STACK_TRACE`.
    pub const STACK_TRACE: u32 = 7;
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`.
    pub const CGROUP_ARRAY: u32 = 8;
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    pub const LPM_TRIE: u32 = 11;
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
    pub const ARRAY_OF_MAPS: u32 = 12;
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`.
    pub const HASH_OF_MAPS: u32 = 13;
    /// `BPF_MAP_TYPE_DEVMAP`.
    pub const DEVMAP: u32 = 14;
    /// `BPF_MAP_TYPE_SOCKMAP`.
    pub const SOCKMAP: u32 = 15;
    /// `BPF_MAP_TYPE_CPUMAP`.
    pub const CPUMAP: u32 = 16;
    /// `BPF_MAP_TYPE_XSKMAP`.
    pub const XSKMAP: u32 = 17;
    /// `BPF_MAP_TYPE_SOCKHASH`.
    pub const SOCKHASH: u32 = 18;
    /// `BPF_MAP_TYPE_QUEUE`.
    pub const QUEUE: u32 = 22;
    /// `BPF_MAP_TYPE_STACK`.
    pub const STACK: u32 = 23;
    /// `BPF_MAP_TYPE_DEVMAP_HASH`.
    pub const DEVMAP_HASH: u32 = 25;
    /// `BPF_MAP_TYPE_STRUCT_OPS`.
    pub const STRUCT_OPS: u32 = 26;
    /// `BPF_MAP_TYPE_RINGBUF`.
    pub const RINGBUF: u32 = 27;
    /// `BPF_MAP_TYPE_USER_RINGBUF`.
    pub const USER_RINGBUF: u32 = 31;
    /// `BPF_MAP_TYPE_ARENA`.
    pub const ARENA: u32 = 33;
}
