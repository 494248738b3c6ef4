//! The `union bpf_attr` prefixes the whole-load loader hands to
//! `bpf_sys_bpf`, as byte offsets (`linux/bpf.h`): each command's attribute
//! is written into the blob by the emitter, with what only the kernel
//! knows (blob addresses, descriptors) filled in by the loader at run time.
//! Also [`MapCreate`], the map definition a caller gives.

/// `enum bpf_cmd` values the loader runs.
pub(super) mod cmd {
    /// `BPF_MAP_CREATE`.
    pub const MAP_CREATE: i32 = 0;
    /// `BPF_MAP_UPDATE_ELEM`.
    pub const MAP_UPDATE_ELEM: i32 = 2;
    /// `BPF_PROG_LOAD`.
    pub const PROG_LOAD: i32 = 5;
    /// `BPF_BTF_LOAD`.
    pub const BTF_LOAD: i32 = 18;
    /// `BPF_MAP_FREEZE`.
    pub const MAP_FREEZE: i32 = 22;
}

/// `BPF_BTF_LOAD`, up to `btf_log_level`.
pub(super) mod btf_load {
    pub const BTF: u32 = 0;
    pub const LOG_BUF: u32 = 8;
    pub const SIZE_FIELD: u32 = 16;
    pub const LOG_SIZE: u32 = 20;
    pub const LOG_LEVEL: u32 = 24;
    /// Bytes passed to the kernel.
    pub const SIZE: u32 = 28;
}

/// `BPF_MAP_CREATE`, up to `map_extra`.
pub(super) mod map_create {
    pub const MAP_TYPE: u32 = 0;
    pub const KEY_SIZE: u32 = 4;
    pub const VALUE_SIZE: u32 = 8;
    pub const MAX_ENTRIES: u32 = 12;
    pub const MAP_FLAGS: u32 = 16;
    pub const NAME: u32 = 28;
    pub const BTF_FD: u32 = 48;
    pub const BTF_KEY_TYPE_ID: u32 = 52;
    pub const BTF_VALUE_TYPE_ID: u32 = 56;
    pub const MAP_EXTRA: u32 = 64;
    pub const SIZE: u32 = 72;
}

/// `BPF_MAP_UPDATE_ELEM`, up to `flags`.
pub(super) mod map_elem {
    pub const MAP_FD: u32 = 0;
    pub const KEY: u32 = 8;
    pub const VALUE: u32 = 16;
    pub const SIZE: u32 = 32;
}

/// `BPF_MAP_FREEZE`: `map_fd` alone.
pub(super) mod map_freeze {
    pub const MAP_FD: u32 = 0;
    pub const SIZE: u32 = 4;
}

/// `BPF_PROG_LOAD`, up to `core_relo_rec_size`.
pub(super) mod prog_load {
    pub const PROG_TYPE: u32 = 0;
    pub const INSN_CNT: u32 = 4;
    pub const INSNS: u32 = 8;
    pub const LICENSE: u32 = 16;
    pub const LOG_LEVEL: u32 = 24;
    pub const LOG_SIZE: u32 = 28;
    pub const LOG_BUF: u32 = 32;
    pub const PROG_FLAGS: u32 = 44;
    pub const NAME: u32 = 48;
    pub const EXPECTED_ATTACH_TYPE: u32 = 68;
    pub const PROG_BTF_FD: u32 = 72;
    pub const FUNC_INFO_REC_SIZE: u32 = 76;
    pub const FUNC_INFO: u32 = 80;
    pub const FUNC_INFO_CNT: u32 = 88;
    pub const LINE_INFO_REC_SIZE: u32 = 92;
    pub const LINE_INFO: u32 = 96;
    pub const LINE_INFO_CNT: u32 = 104;
    pub const ATTACH_BTF_ID: u32 = 108;
    pub const ATTACH_BTF_OBJ_FD: u32 = 112;
    pub const CORE_RELO_CNT: u32 = 116;
    pub const FD_ARRAY: u32 = 120;
    pub const CORE_RELOS: u32 = 128;
    pub const CORE_RELO_REC_SIZE: u32 = 136;
    pub const SIZE: u32 = 140;
}

/// `BPF_OBJ_NAME_LEN`, with the NUL.
pub const OBJ_NAME_LEN: usize = 16;

/// A map to create (the fields of `BPF_MAP_CREATE` a caller chooses; the
/// BTF fd is the load's, filled in by the loader when a type id is set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapCreate {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Most entries.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub map_flags: u32,
    /// Name, NUL-padded (the kernel keeps 15 bytes of letters, digits, `_`
    /// and `.`).
    pub name: [u8; OBJ_NAME_LEN],
    /// BTF type id of the key in the load's BTF (0: none).
    pub btf_key_type_id: u32,
    /// BTF type id of the value in the load's BTF (0: none).
    pub btf_value_type_id: u32,
    /// `map_extra` (bloom filter hashes, arena address, ...).
    pub map_extra: u64,
}

impl MapCreate {
    /// A map without BTF or flags, named `name` (cut to 15 bytes).
    pub fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, name: &str) -> Self {
        let mut out = [0u8; OBJ_NAME_LEN];
        let n = name.len().min(OBJ_NAME_LEN - 1);
        out[..n].copy_from_slice(&name.as_bytes()[..n]);
        MapCreate {
            map_type,
            key_size,
            value_size,
            max_entries,
            name: out,
            ..Default::default()
        }
    }

    /// Whether the attribute refers to the load's BTF.
    pub fn uses_btf(&self) -> bool {
        self.btf_key_type_id != 0 || self.btf_value_type_id != 0
    }

    /// The attribute's bytes (`map_create::SIZE` of them) into `out`.
    pub(super) fn write(&self, out: &mut [u8]) {
        use map_create::*;
        put32(out, MAP_TYPE, self.map_type);
        put32(out, KEY_SIZE, self.key_size);
        put32(out, VALUE_SIZE, self.value_size);
        put32(out, MAX_ENTRIES, self.max_entries);
        put32(out, MAP_FLAGS, self.map_flags);
        put(out, NAME, &self.name);
        put32(out, BTF_KEY_TYPE_ID, self.btf_key_type_id);
        put32(out, BTF_VALUE_TYPE_ID, self.btf_value_type_id);
        put(out, MAP_EXTRA, &self.map_extra.to_le_bytes());
    }
}

/// `bytes` at `at` in `out`; the caller sized `out` for the attribute, so
/// a field past its end is a bug in this module's offsets, caught by tests.
pub(super) fn put(out: &mut [u8], at: u32, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at as usize..at as usize + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// A little-endian `u32` at `at`.
pub(super) fn put32(out: &mut [u8], at: u32, v: u32) {
    put(out, at, &v.to_le_bytes());
}

// Every field inside its attribute, as `linux/bpf.h` lays them out.
const _: () = {
    assert!(btf_load::LOG_LEVEL + 4 == btf_load::SIZE);
    assert!(map_create::MAP_EXTRA + 8 == map_create::SIZE);
    assert!(map_create::NAME + OBJ_NAME_LEN as u32 + 4 == map_create::BTF_FD);
    assert!(map_elem::VALUE + 8 + 8 == map_elem::SIZE);
    assert!(prog_load::NAME + OBJ_NAME_LEN as u32 + 4 == prog_load::EXPECTED_ATTACH_TYPE);
    assert!(prog_load::CORE_RELO_REC_SIZE + 4 == prog_load::SIZE);
    assert!(prog_load::FD_ARRAY + 8 == prog_load::CORE_RELOS);
};
