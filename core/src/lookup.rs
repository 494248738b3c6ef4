//! The in-kernel resolver: a fixed program of 34 instructions that answers
//! a table of name lookups inside the kernel — addresses with
//! `bpf_kallsyms_lookup_name`, BTF ids (and module BTF fds) with
//! `bpf_btf_find_by_name_kind` — and writes the answers into result slots.
//!
//! Names go in, answers come out: the program patches nothing. Its body is
//! the callback of one `bpf_loop` over the table, so the verifier checks
//! it once whatever the number of names, and the work grows with the
//! number of distinct names only, never with the program being relocated.
//! (The light-skeleton emitter that patches a program inside the kernel is
//! [`crate::gen`].)
//!
//! The table is the value of the loader's map index 0 (`ld_imm64
//! src_reg=BPF_PSEUDO_MAP_IDX_VALUE`):
//!
//! | offset | what |
//! |---|---|
//! | `32 * i` | entry `i`: `u32` name offset, `u32` name size (with its NUL), `u32` query (0: address, else the BTF kind), `u32` 0, `i64` result, `u64` address |
//! | `names_off` | the names, NUL-terminated |
//! | to `value_size` | zeros, so that every name offset the program accepts has a full name size of room |
//!
//! The result of entry `i` is the helper's return value (`0` or `-errno`
//! for an address; `btf_obj_fd << 32 | btf_id` or `-errno` for BTF); it
//! holds [`NOT_RUN`] when the loop never reached the entry.

use crate::asm::{Asm, Reg};
use crate::bpf::{helper, op, pseudo, ENOENT};
use crate::btf::Kind;
use crate::error::{Error, Result};
use crate::index::BtfId;
use crate::insn::Insn;

/// Bytes per table entry.
pub const ENTRY_SIZE: u32 = 32;
/// Instructions of the program.
pub const PROGRAM_LEN: usize = 34;
/// The result slot's value before the program runs.
pub const NOT_RUN: i64 = i64::MIN;
/// Longest name the table takes (with its NUL): longer names are no kernel
/// symbol (`KSYM_NAME_LEN` is 512).
pub const MAX_NAME_SIZE: u32 = 1024;
/// Most entries in one table.
pub const MAX_ENTRIES: u32 = 1 << 16;

const RESULT_OFF: i16 = 16;
const ADDR_OFF: i16 = 24;

/// Index of the callback's first instruction.
pub const CALLBACK_START: u32 = 7;

/// Strings of [`PROGRAM_BTF`]: `""`, `"int"`, `"ksymrelo_lookup"`, `"lookup_one"`.
const BTF_STRINGS: &[u8; 32] = b"\0int\0ksymrelo_lookup\0lookup_one\0";
const BTF_TYPES_LEN: usize = 16 + 12 + 12 + 12;

/// The BTF the kernel needs to accept a program with a callback: `int`,
/// one `int (void)` prototype, and the two functions (both static).
pub const PROGRAM_BTF: [u8; 24 + BTF_TYPES_LEN + BTF_STRINGS.len()] = program_btf();

/// `struct bpf_func_info` records for [`PROGRAM_BTF`]: (`insn_off`,
/// `type_id`) of the main function and of the callback.
pub const FUNC_INFO: [u32; 4] = [0, 3, CALLBACK_START, 4];

const fn program_btf() -> [u8; 24 + BTF_TYPES_LEN + BTF_STRINGS.len()] {
    const KIND_INT: u32 = Kind::Int as u32;
    const KIND_FUNC_PROTO: u32 = Kind::FuncProto as u32;
    const KIND_FUNC: u32 = Kind::Func as u32;
    let words: [u32; 6 + BTF_TYPES_LEN / 4] = [
        // magic 0xeb9f, version 1, flags 0; header length 24
        0x0001_eb9f,
        24,
        0,
        BTF_TYPES_LEN as u32,
        BTF_TYPES_LEN as u32,
        BTF_STRINGS.len() as u32,
        // [1] int: signed, 32 bits
        1,
        KIND_INT << 24,
        4,
        (1 << 24) | 32,
        // [2] int (void)
        0,
        KIND_FUNC_PROTO << 24,
        1,
        // [3] ksymrelo_lookup
        5,
        KIND_FUNC << 24,
        2,
        // [4] lookup_one
        21,
        KIND_FUNC << 24,
        2,
    ];
    let mut out = [0u8; 24 + BTF_TYPES_LEN + BTF_STRINGS.len()];
    let mut i = 0;
    while i < words.len() {
        let b = words[i].to_le_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    let mut j = 0;
    while j < BTF_STRINGS.len() {
        out[words.len() * 4 + j] = BTF_STRINGS[j];
        j += 1;
    }
    out
}

/// One lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Query<'n> {
    /// The address of a kallsyms name.
    Address(&'n [u8]),
    /// The BTF id of a `(name, kind)` in vmlinux or a module.
    Btf(&'n [u8], Kind),
}

impl<'n> Query<'n> {
    fn name(&self) -> &'n [u8] {
        match *self {
            Query::Address(n) | Query::Btf(n, _) => n,
        }
    }

    fn code(&self) -> u32 {
        match self {
            Query::Address(_) => 0,
            Query::Btf(_, kind) => *kind as u32,
        }
    }
}

/// What the kernel answered to one [`Query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `kallsyms_lookup_name` found it.
    Address(u64),
    /// BTF found it: `fd` is 0 for vmlinux, else a new module BTF fd the
    /// kernel installed in the calling process (the caller owns it).
    Btf {
        /// Type id.
        btf_id: BtfId,
        /// BTF object fd.
        fd: i32,
    },
    /// `-ENOENT`: the kernel has no such symbol.
    NotFound,
    /// Another error (negative errno), or [`NOT_RUN`] as `i64::MIN`.
    Failed(i64),
}

/// Sizes of one lookup table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// Entries.
    pub count: u32,
    /// Where the names start.
    pub names_off: u32,
    /// Size the map value must have.
    pub value_size: u32,
    /// Longest name size (with NUL) in the table.
    pub max_name_size: u32,
}

/// Sizes the table for `queries` without writing anything.
pub fn plan(queries: &[Query<'_>]) -> Result<Table> {
    let count = u32::try_from(queries.len())
        .ok()
        .filter(|&n| n > 0 && n <= MAX_ENTRIES)
        .ok_or(Error::CapacityExceeded {
            what: "in-kernel lookups in one table",
            capacity: MAX_ENTRIES as usize,
        })?;
    let names_off = count * ENTRY_SIZE;
    let mut names_end = names_off;
    let mut max_name_size = 1;
    for q in queries {
        let name = q.name();
        let size = u32::try_from(name.len() + 1)
            .ok()
            .filter(|&s| s <= MAX_NAME_SIZE && !name.contains(&0) && s > 1)
            .ok_or(Error::Mismatch {
                what: "a lookup name is empty, holds a NUL or is longer than any kernel symbol",
            })?;
        max_name_size = max_name_size.max(size);
        names_end = names_end
            .checked_add(size)
            .ok_or(Error::Overflow { what: "lookup table" })?;
    }
    let value_size = names_end
        .checked_add(max_name_size + 7)
        .map(|n| n & !7)
        .ok_or(Error::Overflow { what: "lookup table" })?;
    // Offsets are compared as signed 32-bit immediates by the program.
    if value_size > i32::MAX as u32 {
        return Err(Error::Overflow { what: "lookup table" });
    }
    Ok(Table {
        count,
        names_off,
        value_size,
        max_name_size,
    })
}

/// Writes the program into `program` (at least [`PROGRAM_LEN`]) and the
/// table into `value` (at least [`Table::value_size`]) for `queries`.
/// Returns the table's sizes.
pub fn emit(queries: &[Query<'_>], program: &mut [Insn], value: &mut [u8]) -> Result<Table> {
    let table = plan(queries)?;
    let capacity = value.len();
    let value = value
        .get_mut(..table.value_size as usize)
        .ok_or(Error::CapacityExceeded {
            what: "lookup table",
            capacity,
        })?;
    if program.len() < PROGRAM_LEN {
        return Err(Error::CapacityExceeded {
            what: "loader instructions",
            capacity: program.len(),
        });
    }
    value.fill(0);
    let mut name_at = table.names_off as usize;
    for (i, q) in queries.iter().enumerate() {
        let name = q.name();
        let entry = &mut value[i * ENTRY_SIZE as usize..][..ENTRY_SIZE as usize];
        entry[0..4].copy_from_slice(&(name_at as u32).to_le_bytes());
        entry[4..8].copy_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        entry[8..12].copy_from_slice(&q.code().to_le_bytes());
        entry[16..24].copy_from_slice(&NOT_RUN.to_le_bytes());
        value[name_at..name_at + name.len()].copy_from_slice(name);
        name_at += name.len() + 1;
    }
    let len = write_program(&table, Some(program))?;
    debug_assert_eq!(len, PROGRAM_LEN);
    Ok(table)
}

/// The program: `bpf_loop(count, callback)`, returning the loop's result
/// (the number of entries visited), then the callback.
fn write_program(table: &Table, buf: Option<&mut [Insn]>) -> Result<usize> {
    use Reg::*;
    let mut a = Asm::new(buf);
    let callback = a.label()?;
    let out = a.label()?;
    let btf = a.label()?;
    let store = a.label()?;
    let name_room = table.value_size - table.max_name_size;

    a.mov_imm(R1, table.count as i32)?;
    a.ld_func(R2, callback)?;
    a.mov_imm(R3, 0)?;
    a.mov_imm(R4, 0)?;
    a.call_helper(helper::LOOP)?;
    a.exit()?;

    // callback(r1 = index, r2 = ctx)
    a.bind(callback)?;
    a.jump(op::JGE_IMM, R1, table.count as i32, out)?;
    a.mov(R6, R1)?;
    a.op(op::LSH64_IMM, R6, R0, 0, ENTRY_SIZE.trailing_zeros() as i32)?;
    a.ld_imm64(R7, pseudo::MAP_IDX_VALUE, 0, 0)?;
    a.op(op::ADD64_REG, R7, R6, 0, 0)?;
    // r2 = name size, proven within [1, max_name_size] for the helpers.
    a.load(op::LDX_W, R2, R7, 4)?;
    a.op(op::ADD64_IMM, R2, R0, 0, -1)?;
    a.jump(op::JGT_IMM, R2, table.max_name_size as i32 - 1, out)?;
    a.op(op::ADD64_IMM, R2, R0, 0, 1)?;
    // r1 = &value[name offset], the offset proven to leave room for r2.
    a.load(op::LDX_W, R1, R7, 0)?;
    a.jump(op::JGT_IMM, R1, name_room as i32, out)?;
    a.ld_imm64(R3, pseudo::MAP_IDX_VALUE, 0, 0)?;
    a.op(op::ADD64_REG, R3, R1, 0, 0)?;
    a.mov(R1, R3)?;
    a.load(op::LDX_W, R3, R7, 8)?;
    a.jump(op::JNE_IMM, R3, 0, btf)?;
    // kallsyms_lookup_name(name, size, 0, &entry.addr)
    a.mov(R4, R7)?;
    a.op(op::ADD64_IMM, R4, R0, 0, i32::from(ADDR_OFF))?;
    a.call_helper(helper::KALLSYMS_LOOKUP_NAME)?;
    a.goto(store)?;
    // btf_find_by_name_kind(name, size, kind, 0)
    a.bind(btf)?;
    a.mov_imm(R4, 0)?;
    a.call_helper(helper::BTF_FIND_BY_NAME_KIND)?;
    a.bind(store)?;
    a.store(op::STX_DW, R7, RESULT_OFF, R0)?;
    a.bind(out)?;
    a.mov_imm(R0, 0)?;
    a.exit()?;

    let at_callback = a.position(callback);
    let len = a.finish()?;
    if len != PROGRAM_LEN || at_callback != Some(CALLBACK_START) {
        return Err(Error::Mismatch {
            what: "in-kernel resolver length",
        });
    }
    Ok(len)
}

/// The answer to query `i` in a table the program has run over. `queries`
/// must be those the table was emitted for.
pub fn answer(queries: &[Query<'_>], value: &[u8], i: usize) -> Result<Answer> {
    let q = queries.get(i).ok_or(Error::Mismatch {
        what: "answer index past the queries",
    })?;
    let entry = value
        .get(i * ENTRY_SIZE as usize..(i + 1) * ENTRY_SIZE as usize)
        .ok_or(Error::Mismatch {
            what: "lookup table shorter than its queries",
        })?;
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&entry[at..at + 8]);
        i64::from_le_bytes(b)
    };
    let result = word(RESULT_OFF as usize);
    Ok(match (q, result) {
        (_, r) if r == -i64::from(ENOENT) => Answer::NotFound,
        (_, r) if r < 0 => Answer::Failed(r),
        (Query::Address(_), _) => Answer::Address(word(ADDR_OFF as usize) as u64),
        (Query::Btf(..), r) => Answer::Btf {
            btf_id: BtfId(r as u32),
            fd: (r >> 32) as i32,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_and_program_shape() {
        let queries = [Query::Address(b"vfs_read"), Query::Btf(b"bpf_iter_num_new", Kind::Func)];
        let mut prog = [Insn::default(); PROGRAM_LEN];
        let mut value = [0xaau8; 256];
        let t = emit(&queries, &mut prog, &mut value).unwrap();
        assert_eq!(t.count, 2);
        assert_eq!(t.names_off, 64);
        assert_eq!(t.max_name_size, 17);
        assert_eq!(t.value_size, (64 + 9 + 17 + 17 + 7) & !7);
        assert_eq!(&value[64..73], b"vfs_read\0");
        assert_eq!(u32::from_le_bytes(value[32..36].try_into().unwrap()), 73);
        assert_eq!(u32::from_le_bytes(value[40..44].try_into().unwrap()), Kind::Func as u32);
        // The callback is where the loop's function pointer says.
        assert_eq!(prog[1].src_reg(), pseudo::FUNC);
        assert_eq!(1 + prog[1].imm() + 1, CALLBACK_START as i32);
        // Every jump stays inside the callback.
        for (i, insn) in prog.iter().enumerate().skip(CALLBACK_START as usize) {
            if insn.code & 0x07 == 0x05 && insn.code != 0x85 && insn.code != 0x95 {
                let target = i as i32 + 1 + i32::from(insn.off());
                assert!(
                    (CALLBACK_START as i32..PROGRAM_LEN as i32).contains(&target),
                    "jump at {i}"
                );
            }
        }
        // Before a run, every answer says so.
        assert_eq!(answer(&queries, &value, 0).unwrap(), Answer::Failed(NOT_RUN));
    }

    #[test]
    fn program_btf_is_valid_and_names_both_functions() {
        let btf = crate::btf::Btf::parse(&PROGRAM_BTF).unwrap();
        assert_eq!(
            btf.find_by_name_kind(b"ksymrelo_lookup", Kind::Func).unwrap(),
            Some(FUNC_INFO[1])
        );
        assert_eq!(
            btf.find_by_name_kind(b"lookup_one", Kind::Func).unwrap(),
            Some(FUNC_INFO[3])
        );
    }

    #[test]
    fn answers_decode_helper_results() {
        let queries = [
            Query::Address(b"a"),
            Query::Btf(b"b", Kind::Var),
            Query::Btf(b"c", Kind::Func),
        ];
        let mut prog = [Insn::default(); PROGRAM_LEN];
        let mut value = [0u8; 256];
        emit(&queries, &mut prog, &mut value).unwrap();
        value[16..24].copy_from_slice(&0i64.to_le_bytes());
        value[24..32].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
        value[48..56].copy_from_slice(&((9i64 << 32) | 1234).to_le_bytes());
        value[80..88].copy_from_slice(&(-2i64).to_le_bytes());
        assert_eq!(
            answer(&queries, &value, 0).unwrap(),
            Answer::Address(0xffff_ffff_8100_0000)
        );
        assert_eq!(
            answer(&queries, &value, 1).unwrap(),
            Answer::Btf {
                btf_id: BtfId(1234),
                fd: 9
            }
        );
        assert_eq!(answer(&queries, &value, 2).unwrap(), Answer::NotFound);
        assert!(answer(&queries, &value, 3).is_err());
    }

    #[test]
    fn bad_tables_are_errors() {
        let mut prog = [Insn::default(); PROGRAM_LEN];
        let mut value = [0u8; 64];
        assert!(emit(&[], &mut prog, &mut value).is_err());
        assert!(emit(&[Query::Address(b"")], &mut prog, &mut value).is_err());
        assert!(emit(&[Query::Address(b"a\0b")], &mut prog, &mut value).is_err());
        assert!(matches!(
            emit(
                &[Query::Address(b"a_long_name_that_does_not_fit")],
                &mut prog,
                &mut value
            ),
            Err(Error::CapacityExceeded { .. })
        ));
        let mut short = [Insn::default(); 3];
        let mut value = [0u8; 256];
        assert!(emit(&[Query::Address(b"a")], &mut short, &mut value).is_err());
    }
}
