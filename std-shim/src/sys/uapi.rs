//! The parts of the kernel's UAPI (`linux/bpf.h`) that ksymrelo speaks:
//! command numbers, program and map types, flags, and the attribute and
//! info layouts each command reads, checked against the header's sizes and
//! offsets at compile time.
//!
//! Attribute structs are the prefixes of `union bpf_attr` that each command
//! reads; the kernel treats a shorter attribute as zero-extended. They have
//! no implicit padding (asserted below), so every byte handed to the kernel
//! is initialized (it refuses non-zero bytes in fields a command does not
//! use).

use std::fmt;
use std::mem::{offset_of, size_of};

/// A `bpf(2)` command (`enum bpf_cmd`), named as the kernel names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BpfCommand {
    /// `BPF_MAP_CREATE` (Linux 3.18).
    MapCreate = 0,
    /// `BPF_MAP_LOOKUP_ELEM` (Linux 3.18).
    MapLookupElem = 1,
    /// `BPF_MAP_UPDATE_ELEM` (Linux 3.18).
    MapUpdateElem = 2,
    /// `BPF_PROG_LOAD` (Linux 3.18).
    ProgLoad = 5,
    /// `BPF_PROG_TEST_RUN` (Linux 4.12; syscall programs since 5.14).
    ProgTestRun = 10,
    /// `BPF_OBJ_GET_INFO_BY_FD` (Linux 4.13; BTF objects since 4.18).
    ObjGetInfoByFd = 15,
    /// `BPF_BTF_LOAD` (Linux 4.18).
    BtfLoad = 18,
    /// `BPF_BTF_GET_FD_BY_ID` (Linux 4.18).
    BtfGetFdById = 19,
    /// `BPF_MAP_FREEZE` (Linux 5.2).
    MapFreeze = 22,
    /// `BPF_BTF_GET_NEXT_ID` (Linux 5.4).
    BtfGetNextId = 23,
}

impl BpfCommand {
    /// The kernel's name, e.g. `"BPF_PROG_LOAD"`.
    pub fn name(self) -> &'static str {
        match self {
            BpfCommand::MapCreate => "BPF_MAP_CREATE",
            BpfCommand::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            BpfCommand::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            BpfCommand::ProgLoad => "BPF_PROG_LOAD",
            BpfCommand::ProgTestRun => "BPF_PROG_TEST_RUN",
            BpfCommand::ObjGetInfoByFd => "BPF_OBJ_GET_INFO_BY_FD",
            BpfCommand::BtfLoad => "BPF_BTF_LOAD",
            BpfCommand::BtfGetFdById => "BPF_BTF_GET_FD_BY_ID",
            BpfCommand::MapFreeze => "BPF_MAP_FREEZE",
            BpfCommand::BtfGetNextId => "BPF_BTF_GET_NEXT_ID",
        }
    }
}

impl fmt::Display for BpfCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `BPF_PROG_TYPE_SYSCALL` (Linux 5.14): programs run only through
/// `BPF_PROG_TEST_RUN`, with a context the caller passes in and gets back.
pub const BPF_PROG_TYPE_SYSCALL: u32 = 31;
/// `BPF_F_SLEEPABLE` (program flag, Linux 5.10; `BPF_PROG_TYPE_SYSCALL`
/// programs need it to call sleepable helpers such as `bpf_sys_bpf`).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;

/// `BPF_MAP_TYPE_HASH`.
#[cfg(test)]
pub(crate) const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
pub(crate) const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub(crate) const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub(crate) const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
pub(crate) const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
/// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`.
pub(crate) const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: u32 = 21;
/// Per-CPU map types, whose lookups write one value per possible CPU.
pub(crate) const PERCPU_MAP_TYPES: [u32; 4] = [
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
];

/// `BPF_ANY`: create or replace a map element.
pub(crate) const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create a map element only if it does not exist.
#[cfg(test)]
pub(crate) const BPF_NOEXIST: u64 = 1;

/// `BPF_OBJ_NAME_LEN`, counting the terminating NUL.
pub(crate) const BPF_OBJ_NAME_LEN: usize = 16;
/// The verifier refuses log buffers outside this range.
pub(crate) const LOG_SIZE_MIN: usize = 128;
pub(crate) const LOG_SIZE_MAX: usize = (u32::MAX >> 2) as usize;
/// `log_level` 1: the verifier's (or BTF checker's) messages.
pub(crate) const LOG_LEVEL_VERBOSE: u32 = 1;
/// `sizeof(struct bpf_func_info)`.
pub(crate) const FUNC_INFO_SIZE: usize = 8;
/// Module names are shorter than `MODULE_NAME_LEN`.
pub(crate) const MODULE_NAME_LEN: usize = 64;

/// `start_id`/`btf_id` and `next_id` of the `*_GET_NEXT_ID` and
/// `*_GET_FD_BY_ID` commands.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GetIdAttr {
    pub(crate) start_id: u32,
    pub(crate) next_id: u32,
    pub(crate) open_flags: u32,
}

/// `info` of `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct InfoAttr {
    pub(crate) bpf_fd: u32,
    pub(crate) info_len: u32,
    pub(crate) info: u64,
}

/// A prefix of `struct bpf_btf_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BtfInfoRaw {
    pub(crate) btf: u64,
    pub(crate) btf_size: u32,
    pub(crate) id: u32,
    pub(crate) name: u64,
    pub(crate) name_len: u32,
    pub(crate) kernel_btf: u32,
}

/// A prefix of `struct bpf_map_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapInfoRaw {
    pub(crate) map_type: u32,
    pub(crate) id: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) name: [u8; BPF_OBJ_NAME_LEN],
}

/// `struct bpf_map_info` up to `hash_size` (Linux 6.18): asking for the
/// hash of a frozen map makes the kernel compute and keep it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapHashInfo {
    pub(crate) prefix: MapInfoRaw,
    pub(crate) ifindex: u32,
    pub(crate) btf_vmlinux_value_type_id: u32,
    pub(crate) netns_dev: u64,
    pub(crate) netns_ino: u64,
    pub(crate) btf_id: u32,
    pub(crate) btf_key_type_id: u32,
    pub(crate) btf_value_type_id: u32,
    pub(crate) btf_vmlinux_id: u32,
    pub(crate) map_extra: u64,
    pub(crate) hash: u64,
    pub(crate) hash_size: u32,
    pub(crate) _pad: u32,
}

/// A prefix of `struct bpf_prog_info`.
#[cfg(test)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProgInfoRaw {
    pub(crate) prog_type: u32,
    pub(crate) id: u32,
    pub(crate) tag: [u8; 8],
    pub(crate) jited_prog_len: u32,
    pub(crate) xlated_prog_len: u32,
}

/// The attribute of `BPF_BTF_LOAD`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BtfLoadAttr {
    pub(crate) btf: u64,
    pub(crate) btf_log_buf: u64,
    pub(crate) btf_size: u32,
    pub(crate) btf_log_size: u32,
    pub(crate) btf_log_level: u32,
    // Explicit so that it is zeroed (the kernel's `btf_log_true_size`,
    // an output).
    pub(crate) _pad: u32,
}

/// The attribute of `BPF_PROG_LOAD`, up to `keyring_id` (Linux 6.18; an
/// older kernel takes it while the fields it lacks are zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProgLoadAttr {
    pub(crate) prog_type: u32,
    pub(crate) insn_cnt: u32,
    pub(crate) insns: u64,
    pub(crate) license: u64,
    pub(crate) log_level: u32,
    pub(crate) log_size: u32,
    pub(crate) log_buf: u64,
    pub(crate) kern_version: u32,
    pub(crate) prog_flags: u32,
    pub(crate) prog_name: [u8; BPF_OBJ_NAME_LEN],
    pub(crate) prog_ifindex: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) prog_btf_fd: u32,
    pub(crate) func_info_rec_size: u32,
    pub(crate) func_info: u64,
    pub(crate) func_info_cnt: u32,
    pub(crate) line_info_rec_size: u32,
    pub(crate) line_info: u64,
    pub(crate) line_info_cnt: u32,
    pub(crate) attach_btf_id: u32,
    pub(crate) attach_prog_fd: u32,
    pub(crate) core_relo_cnt: u32,
    pub(crate) fd_array: u64,
    pub(crate) core_relos: u64,
    pub(crate) core_relo_rec_size: u32,
    pub(crate) log_true_size: u32,
    pub(crate) prog_token_fd: i32,
    pub(crate) fd_array_cnt: u32,
    pub(crate) signature: u64,
    pub(crate) signature_size: u32,
    pub(crate) keyring_id: i32,
}

/// The attribute of `BPF_PROG_TEST_RUN`, up to `batch_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TestRunAttr {
    pub(crate) prog_fd: u32,
    pub(crate) retval: u32,
    pub(crate) data_size_in: u32,
    pub(crate) data_size_out: u32,
    pub(crate) data_in: u64,
    pub(crate) data_out: u64,
    pub(crate) repeat: u32,
    pub(crate) duration: u32,
    pub(crate) ctx_size_in: u32,
    pub(crate) ctx_size_out: u32,
    pub(crate) ctx_in: u64,
    pub(crate) ctx_out: u64,
    pub(crate) flags: u32,
    pub(crate) cpu: u32,
    pub(crate) batch_size: u32,
    // Explicit so that it is zeroed (see the module docs).
    pub(crate) _pad: u32,
}

/// The attribute of `BPF_MAP_CREATE`, up to `map_name`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapCreateAttr {
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) inner_map_fd: u32,
    pub(crate) numa_node: u32,
    pub(crate) map_name: [u8; BPF_OBJ_NAME_LEN],
    pub(crate) map_ifindex: u32,
    pub(crate) btf_fd: u32,
    pub(crate) btf_key_type_id: u32,
    pub(crate) btf_value_type_id: u32,
    pub(crate) btf_vmlinux_value_type_id: u32,
    pub(crate) map_extra: u64,
    pub(crate) value_type_btf_obj_fd: i32,
    pub(crate) map_token_fd: i32,
    /// SHA-256 of the one program that may use the map (Linux 6.18).
    pub(crate) excl_prog_hash: u64,
    pub(crate) excl_prog_hash_size: u32,
    pub(crate) _pad: u32,
}

/// The attribute of `BPF_MAP_LOOKUP_ELEM` and `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapElemAttr {
    pub(crate) map_fd: u32,
    pub(crate) _pad: u32,
    pub(crate) key: u64,
    pub(crate) value: u64,
    pub(crate) flags: u64,
}

#[cfg(test)]
const _: () = assert!(size_of::<ProgInfoRaw>() == 24);

/// The attribute of `BPF_MAP_FREEZE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapFreezeAttr {
    pub(crate) map_fd: u32,
}

// No implicit padding (see the module docs), and the offsets of `linux/bpf.h`.
const _: () = {
    assert!(size_of::<GetIdAttr>() == 12);
    assert!(size_of::<InfoAttr>() == 16);
    assert!(size_of::<BtfInfoRaw>() == 32);
    assert!(size_of::<MapInfoRaw>() == 40);
    assert!(size_of::<BtfLoadAttr>() == 32);
    assert!(size_of::<ProgLoadAttr>() == 168);
    assert!(offset_of!(ProgLoadAttr, fd_array) == 120);
    assert!(offset_of!(ProgLoadAttr, fd_array_cnt) == 148);
    assert!(offset_of!(ProgLoadAttr, signature) == 152);
    assert!(offset_of!(ProgLoadAttr, keyring_id) == 164);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(offset_of!(TestRunAttr, batch_size) == 72);
    assert!(size_of::<MapCreateAttr>() == 96);
    assert!(offset_of!(MapCreateAttr, map_extra) == 64);
    assert!(offset_of!(MapCreateAttr, excl_prog_hash) == 80);
    assert!(offset_of!(MapCreateAttr, excl_prog_hash_size) == 88);
    assert!(size_of::<MapHashInfo>() == 104);
    assert!(offset_of!(MapHashInfo, hash) == 88);
    assert!(size_of::<MapElemAttr>() == 32);
};
