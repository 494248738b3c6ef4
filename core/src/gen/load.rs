//! What a whole load is made of — BTF, maps, programs — as the caller
//! describes it to [`super::plan_load`] and [`super::emit_load`]; the
//! context the loader runs over ([`ctx`]); and the step a failed run
//! stopped at ([`Step`], [`Failure`], read back with [`failure`]).

use super::attr::MapCreate;
use crate::btf::Kind;
use crate::insn::Insn;
use crate::object::{Extern, Site};

/// Most maps of one load (libbpf's gen_loader has the same bound).
pub const MAX_MAPS: usize = 64;
/// Most programs of one load (likewise).
pub const MAX_PROGS: usize = 32;

/// A whole load: everything the loader creates, in the order it does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load<'a> {
    /// The object's BTF, already sanitized for this kernel (`None`: no
    /// BTF; then no map may have type ids and no program BTF records).
    pub btf: Option<&'a [u8]>,
    /// Maps; a program's `BPF_PSEUDO_MAP_IDX[_VALUE]` reference `i` is
    /// `maps[i]`.
    pub maps: &'a [MapDef<'a>],
    /// Programs, loaded in this order after every map.
    pub progs: &'a [ProgDef<'a>],
}

/// One map.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapDef<'a> {
    /// The `BPF_MAP_CREATE` attribute.
    pub attr: MapCreate,
    /// Value of key 0 (`u32`) written after creation (`.data`, `.rodata`,
    /// `.bss` maps); its length must be the value size.
    pub initial_value: Option<&'a [u8]>,
    /// `BPF_MAP_FREEZE` after that (read-only maps).
    pub freeze: bool,
}

/// Records of `.BTF.ext` for one program (`bpf_func_info`,
/// `bpf_line_info` or `bpf_core_relo`), in host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Records<'a> {
    /// The records, back to back.
    pub bytes: &'a [u8],
    /// Size of one record; `bytes` holds a whole number of them.
    pub rec_size: u32,
}

/// The kernel function or type a tracing (`fentry`, `lsm`, `tp_btf`, ...)
/// program attaches to, looked up with `bpf_btf_find_by_name_kind`; the
/// result fills `attach_btf_id` and `attach_btf_obj_fd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachTarget<'a> {
    /// Name as the kernel's BTF spells it (prefix included, e.g.
    /// `bpf_lsm_file_open`, `btf_trace_sched_switch`).
    pub name: &'a str,
    /// Its BTF kind (`FUNC` or `TYPEDEF`).
    pub kind: Kind,
}

/// One program.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgDef<'a> {
    /// Name (the kernel keeps 15 bytes).
    pub name: &'a str,
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// `BPF_*` expected attach type.
    pub expected_attach_type: u32,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// License, without its NUL.
    pub license: &'a str,
    /// Instructions, linked (subprograms appended, map references by map
    /// index), ksym sites as the compiler left them.
    pub insns: &'a [Insn],
    /// `bpf_func_info` records.
    pub func_info: Option<Records<'a>>,
    /// `bpf_line_info` records.
    pub line_info: Option<Records<'a>>,
    /// `bpf_core_relo` records.
    pub core_relos: Option<Records<'a>>,
    /// Attach target to look up.
    pub attach: Option<AttachTarget<'a>>,
    /// The object's extern table (sites index into it).
    pub externs: &'a [Extern<'a>],
    /// ksym sites, instruction indices relative to `insns`.
    pub sites: &'a [Site],
}

impl ProgDef<'_> {
    /// Whether the program's load refers to the load's BTF.
    pub fn uses_btf(&self) -> bool {
        self.func_info.is_some() || self.line_info.is_some() || self.core_relos.is_some()
    }
}

/// The loader's context, `struct bpf_loader_ctx` of libbpf followed by
/// ksymrelo's status and the descriptors: byte offsets.
///
/// | offset | what |
/// |---|---|
/// | 0 | `u32` size of the context |
/// | 4 | `u32` flags ([`ctx::PROGRAM_LOG_ONLY`]) |
/// | 8 | `u32` verifier/BTF log level, given to every load |
/// | 12 | `u32` log size |
/// | 16 | `u64` log buffer (a user address) |
/// | 24 | `u32` [`Step`] kind of the failure (0: none) |
/// | 28 | `u32` its map or program index |
/// | 32 | `u32` its extern index + 1 (extern steps) |
/// | 36 | `i32` the kernel's error (`-errno`) |
/// | 40 | `i32` map fds, one per map |
/// | then | `i32` program fds, one per program |
///
/// The descriptors are written only when the whole load succeeded; they
/// are then the caller's.
pub mod ctx {
    /// `u32` size.
    pub const SZ: u32 = 0;
    /// `u32` flags.
    pub const FLAGS: u32 = 4;
    /// Flag: the log goes to the program loads only, not to the BTF load
    /// (whose log, at level 1, fills the buffer even when it succeeds).
    pub const PROGRAM_LOG_ONLY: u32 = 1;
    /// `u32` log level.
    pub const LOG_LEVEL: u32 = 8;
    /// `u32` log size.
    pub const LOG_SIZE: u32 = 12;
    /// `u64` log buffer.
    pub const LOG_BUF: u32 = 16;
    /// `u32` step kind.
    pub const STEP: u32 = 24;
    /// `u32` map or program index.
    pub const INDEX: u32 = 28;
    /// `u32` extern index + 1.
    pub const EXTERN: u32 = 32;
    /// `i32` error.
    pub const ERROR: u32 = 36;
    /// First map fd.
    pub const FDS: u32 = 40;
}

/// Size of the context for `maps` maps and `progs` programs.
pub fn ctx_size(maps: usize, progs: usize) -> u32 {
    // Both are bounded by MAX_MAPS and MAX_PROGS in every caller.
    ctx::FDS + 4 * (maps.min(MAX_MAPS) + progs.min(MAX_PROGS)) as u32
}

/// The step a loader run failed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `BPF_BTF_LOAD` of the object's BTF.
    Btf,
    /// `BPF_MAP_CREATE` of map N.
    MapCreate(u32),
    /// `BPF_MAP_UPDATE_ELEM` of map N's initial value.
    MapUpdate(u32),
    /// `BPF_MAP_FREEZE` of map N.
    MapFreeze(u32),
    /// The lookup of extern `extern_idx` (into the program's table) of
    /// program `prog`.
    Extern {
        /// Program index.
        prog: u32,
        /// Index into that program's extern table.
        extern_idx: u32,
    },
    /// The attach target lookup of program N.
    AttachTarget(u32),
    /// `BPF_PROG_LOAD` of program N.
    Program(u32),
    /// A sealed loader's check of its blob, before it uses a byte of it:
    /// `-EPERM` when the blob's map is not exclusive to the loader,
    /// `-EBADMSG` when the blob's SHA-256 is not the one the loader was
    /// generated for (the data was altered).
    Seal,
}

impl Step {
    /// (kind, index, extern + 1) as the context holds them.
    /// How the context records it: the step kind (1 BTF, 2 map create,
    /// 3 map update, 4 map freeze, 5 extern, 6 attach target, 7 program,
    /// 8 seal)
    /// and its map or program index.
    pub fn code(self) -> (u32, u32) {
        match self {
            Step::Btf => (1, 0),
            Step::MapCreate(i) => (2, i),
            Step::MapUpdate(i) => (3, i),
            Step::MapFreeze(i) => (4, i),
            Step::Extern { prog, .. } => (5, prog),
            Step::AttachTarget(i) => (6, i),
            Step::Program(i) => (7, i),
            Step::Seal => (8, 0),
        }
    }

    /// The step recorded as `kind`, `index` and extern index + 1 (`ext`),
    /// as [`Step::code`] writes them; `None` for none.
    pub fn from_code(kind: u32, index: u32, ext: u32) -> Option<Step> {
        Some(match kind {
            1 => Step::Btf,
            2 => Step::MapCreate(index),
            3 => Step::MapUpdate(index),
            4 => Step::MapFreeze(index),
            5 => Step::Extern {
                prog: index,
                extern_idx: ext.checked_sub(1)?,
            },
            6 => Step::AttachTarget(index),
            7 => Step::Program(index),
            8 => Step::Seal,
            _ => return None,
        })
    }
}

/// A failed loader run: where, and the kernel's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step.
    pub step: Step,
    /// The kernel's error, negative (`-errno`).
    pub error: i32,
}

fn word(ctx: &[u8], at: u32) -> Option<u32> {
    let b = ctx.get(at as usize..at as usize + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The failure the loader recorded in `ctx` after its run (`None`: it
/// recorded none, or `ctx` is too short to hold the status).
pub fn failure(ctx: &[u8]) -> Option<Failure> {
    let step = Step::from_code(word(ctx, ctx::STEP)?, word(ctx, ctx::INDEX)?, word(ctx, ctx::EXTERN)?)?;
    Some(Failure {
        step,
        error: word(ctx, ctx::ERROR)? as i32,
    })
}

/// The descriptors the loader left in `ctx` after a successful run: map
/// fds, then program fds.
pub fn fds(ctx: &[u8], maps: usize, progs: usize) -> impl Iterator<Item = i32> + '_ {
    (0..maps.saturating_add(progs)).map(move |i| {
        u32::try_from(i)
            .ok()
            .and_then(|i| i.checked_mul(4))
            .and_then(|o| word(ctx, ctx::FDS + o))
            .unwrap_or(0) as i32
    })
}
