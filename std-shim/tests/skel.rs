//! The light-skeleton loader in the running kernel: a BTF, an array map
//! with an initial value, a frozen read-only map and a syscall program
//! that reads both through `BPF_PSEUDO_MAP_IDX_VALUE`, calls kfuncs, loads
//! a typeless ksym's address and guards a weak kfunc the kernel lacks —
//! all created by one loader run; then the failures, each naming its step
//! and leaving no descriptor behind.

use std::os::fd::AsFd;
use std::sync::Mutex;

use ksymrelo_core::bpf::{op, pseudo, POISON_CALL_KFUNC_BASE};
use ksymrelo_core::btf::Kind;
use ksymrelo_core::gen::{Load, MapCreate, MapDef, ProgDef, Records, Step};
use ksymrelo_core::index::{BtfId, ExternIdx, InsnIdx, SectionIndex};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::object::{essential_name, Extern, ExternKind, Site, SiteKind};
use ksymrelo_std::load::{bpf_available, prog_test_run, TestRun, BPF_F_SLEEPABLE, BPF_PROG_TYPE_SYSCALL};
use ksymrelo_std::skel::{self, SkelOptions};
use ksymrelo_std::Error;

/// The tests of this binary run one at a time, so that each one's
/// descriptor count is its own.
static SERIAL: Mutex<()> = Mutex::new(());

const BPF_MAP_TYPE_ARRAY: u32 = 2;
const EXIT: Insn = Insn::new(op::EXIT, 0, 0, 0, 0);

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn kernel(test: &str) -> bool {
    match bpf_available() {
        Ok(()) => true,
        Err(e) if ksymrelo_test_skip::kernel_required() => {
            panic!("{test}: bpf(2) not permitted ({e}) but KSYMRELO_REQUIRE_KERNEL=1")
        }
        Err(e) => {
            ksymrelo_test_skip::skip(format_args!("bpf(2) not permitted: {e}"));
            false
        }
    }
}

/// `[1] int`, `[2] int[4]`, `[3] int (void)`, `[4] int prog(void)`.
fn tiny_btf() -> Vec<u8> {
    let strings = b"\0int\0prog\0";
    let types: [u32; 15] = [
        1,
        (Kind::Int as u32) << 24,
        4,
        (1 << 24) | 32,
        0,
        (Kind::Array as u32) << 24,
        0,
        1,
        1,
        4,
        0,
        (Kind::FuncProto as u32) << 24,
        1,
        5,
        ((Kind::Func as u32) << 24) | 1,
    ];
    let types: Vec<u8> = types.iter().chain(&[3u32]).flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend(0xeb9fu16.to_le_bytes());
    out.extend([1u8, 0]);
    for w in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
        out.extend(w.to_le_bytes());
    }
    out.extend(types);
    out.extend(strings);
    out
}

fn ext(name: &'static str, kind: ExternKind, weak: bool, index: u32) -> Extern<'static> {
    Extern {
        name,
        essential_name: essential_name(name),
        kind,
        weak,
        sym_idx: index + 1,
        btf_id: BtfId(1),
        type_id: BtfId(1),
        index: ExternIdx(index),
    }
}

/// A function symbol of the running kernel whose name kallsyms lists once,
/// and its address.
fn typeless_symbol() -> (&'static str, u64) {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    for name in ["vfs_read", "bpf_prog_put", "schedule", "kfree"] {
        let hits: Vec<u64> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (addr, _, n) = (f.next()?, f.next()?, f.next()?);
                (n == name).then(|| u64::from_str_radix(addr, 16).unwrap())
            })
            .collect();
        if hits.len() == 1 && hits[0] != 0 {
            return (name, hits[0]);
        }
    }
    panic!("none of the candidate symbols is in kallsyms exactly once with an address");
}

fn ld_map_value(dst: u8, map: i32) -> [Insn; 2] {
    [
        Insn::new(op::LD_IMM64, dst, pseudo::MAP_IDX_VALUE, 0, map),
        Insn::default(),
    ]
}

fn ld64(dst: u8) -> [Insn; 2] {
    [Insn::new(op::LD_IMM64, dst, 0, 0, 0), Insn::default()]
}

/// Reads `rodata` (map 1) and `data` (map 0), writes their sum and a
/// typeless ksym's address into `data`, calls two kfuncs, and calls a weak
/// kfunc the kernel lacks only if it exists.
fn program() -> Vec<Insn> {
    let call = Insn::new(op::CALL, 0, 0, 0, 0);
    let mut p = Vec::new();
    p.extend(ld_map_value(1, 1)); // 0
    p.push(Insn::new(op::LDX_DW, 2, 1, 0, 0)); // 2
    p.extend(ld_map_value(1, 0)); // 3
    p.push(Insn::new(op::LDX_DW, 3, 1, 0, 0)); // 5
    p.push(Insn::new(op::ADD64_REG, 3, 2, 0, 0)); // 6
    p.push(Insn::new(op::STX_DW, 1, 3, 0, 0)); // 7
    p.push(Insn::new(op::MOV64_REG, 6, 1, 0, 0)); // 8
    p.push(call); // 9: bpf_rcu_read_lock
    p.push(call); // 10: bpf_rcu_read_unlock
    p.extend(ld64(2)); // 11: typeless
    p.push(Insn::new(op::STX_DW, 6, 2, 8, 0)); // 13
    p.extend(ld64(1)); // 14: weak kfunc's address
    p.push(Insn::new(op::JEQ_IMM, 1, 0, 1, 0)); // 16
    p.push(call); // 17: the weak kfunc
    p.push(Insn::new(op::MOV64_IMM, 0, 0, 0, 0)); // 18
    p.push(EXIT); // 19
    p
}

const WEAK_KFUNC: &str = "ksymrelo_no_such_kfunc";

fn externs(typeless: &'static str) -> [Extern<'static>; 4] {
    [
        ext("bpf_rcu_read_lock", ExternKind::Kfunc, false, 0),
        ext("bpf_rcu_read_unlock", ExternKind::Kfunc, false, 1),
        ext(WEAK_KFUNC, ExternKind::Kfunc, true, 2),
        ext(typeless, ExternKind::Typeless, false, 3),
    ]
}

const SITES: [Site; 5] = [
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(9),
        extern_idx: ExternIdx(0),
        kind: SiteKind::Call,
    },
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(10),
        extern_idx: ExternIdx(1),
        kind: SiteKind::Call,
    },
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(11),
        extern_idx: ExternIdx(3),
        kind: SiteKind::Ld64,
    },
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(14),
        extern_idx: ExternIdx(2),
        kind: SiteKind::Ld64,
    },
    Site {
        section: SectionIndex(1),
        insn_idx: InsnIdx(17),
        extern_idx: ExternIdx(2),
        kind: SiteKind::Call,
    },
];

const FUNC_INFO: [u8; 8] = [0, 0, 0, 0, 4, 0, 0, 0];

fn maps(data: &[u8; 16], rodata: &[u8; 8]) -> [MapDef<'static>; 2] {
    let data: &'static [u8] = Box::leak(Box::new(*data));
    let rodata: &'static [u8] = Box::leak(Box::new(*rodata));
    let mut data_map = MapCreate::new(BPF_MAP_TYPE_ARRAY, 4, 16, 1, "data");
    data_map.btf_key_type_id = 1;
    data_map.btf_value_type_id = 2;
    [
        MapDef {
            attr: data_map,
            initial_value: Some(data),
            freeze: false,
        },
        MapDef {
            attr: MapCreate::new(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "rodata"),
            initial_value: Some(rodata),
            freeze: true,
        },
    ]
}

fn prog<'a>(insns: &'a [Insn], externs: &'a [Extern<'a>], sites: &'a [Site]) -> ProgDef<'a> {
    ProgDef {
        name: "ksymrelo_skel_t",
        prog_type: BPF_PROG_TYPE_SYSCALL,
        prog_flags: BPF_F_SLEEPABLE,
        license: "GPL",
        insns,
        func_info: Some(Records {
            bytes: &FUNC_INFO,
            rec_size: 8,
        }),
        externs,
        sites,
        ..Default::default()
    }
}

#[test]
fn a_whole_load_runs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("a_whole_load_runs") {
        return;
    }
    let (name, addr) = typeless_symbol();
    let externs = externs(name);
    let insns = program();
    let btf = tiny_btf();
    let maps = maps(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &35u64.to_le_bytes());
    let progs = [prog(&insns, &externs, &SITES)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    // Warm up once (lazily opened process-wide things are not leaks).
    drop(skel::load(&load, &SkelOptions::default()).unwrap());
    let before = fd_count();
    let loaded = skel::load(&load, &SkelOptions::default()).unwrap();
    assert_eq!((loaded.maps.len(), loaded.progs.len()), (2, 1));

    // The loaded program as the loader patched it.
    let patched = loaded.program_insns(&load, 0).unwrap();
    assert_eq!(patched[9].src_reg(), pseudo::KFUNC_CALL);
    assert!(patched[9].imm() > 0 && patched[9].off() == 0, "{:?}", patched[9]);
    assert_eq!(
        (patched[11].imm() as u32, patched[12].imm() as u32),
        (addr as u32, (addr >> 32) as u32)
    );
    assert_eq!((patched[14].src_reg(), patched[14].imm(), patched[15].imm()), (0, 0, 0));
    assert_eq!(
        patched[17],
        Insn::new(op::CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + 2),
        "the weak kfunc's call is poisoned"
    );

    let run = prog_test_run(loaded.progs[0].as_fd(), &mut TestRun::default()).unwrap();
    assert_eq!(run.retval, 0);
    let mut data = [0u8; 16];
    skel::map_lookup(loaded.maps[0].as_fd(), 0, &mut data).unwrap();
    assert_eq!(u64::from_le_bytes(data[..8].try_into().unwrap()), 42);
    assert_eq!(u64::from_le_bytes(data[8..].try_into().unwrap()), addr);
    let mut rodata = [0u8; 8];
    skel::map_lookup(loaded.maps[1].as_fd(), 0, &mut rodata).unwrap();
    assert_eq!(u64::from_le_bytes(rodata), 35);
    drop(loaded);
    assert_eq!(fd_count(), before, "descriptors left behind");
}

/// Loads `load`, expects it to fail at `step` with `errno`, and checks
/// that it left no descriptor.
fn fails(load: &Load<'_>, step: Step, errno: i32) -> Error {
    drop(skel::load(load, &SkelOptions::default()));
    let before = fd_count();
    let err = skel::load(load, &SkelOptions::default()).unwrap_err();
    assert_eq!(fd_count(), before, "descriptors left behind by {err}");
    match &err {
        Error::Loader { at, errno: e, .. } => assert_eq!((*at, *e), (step, errno), "{err}"),
        other => panic!("{other}"),
    }
    err
}

#[test]
fn a_strong_typeless_ksym_the_kernel_lacks_names_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("a_strong_typeless_ksym_the_kernel_lacks_names_it") {
        return;
    }
    let externs = externs("ksymrelo_no_such_symbol");
    let insns = program();
    let btf = tiny_btf();
    let maps = maps(&[0; 16], &[0; 8]);
    let progs = [prog(&insns, &externs, &SITES)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    let step = Step::Extern { prog: 0, extern_idx: 3 };
    let err = fails(&load, step, libc::ENOENT);
    let text = err.to_string();
    assert!(text.contains("'ksymrelo_no_such_symbol'"), "{text}");
}

#[test]
fn a_program_the_verifier_refuses_comes_with_its_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("a_program_the_verifier_refuses_comes_with_its_log") {
        return;
    }
    let (name, _) = typeless_symbol();
    let externs = externs(name);
    let mut insns = program();
    // `exit` without setting r0.
    insns[18] = Insn::new(op::MOV64_IMM, 1, 0, 0, 0);
    let btf = tiny_btf();
    let maps = maps(&[0; 16], &[0; 8]);
    let progs = [prog(&insns, &externs, &SITES)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    let err = fails(&load, Step::Program(0), libc::EACCES);
    let Error::Loader { log, .. } = &err else {
        unreachable!()
    };
    assert!(log.as_deref().is_some_and(|l| l.contains("R0 !read_ok")), "{err}");
    assert!(err.to_string().contains("program 0 'ksymrelo_skel_t'"), "{err}");
}

#[test]
fn a_bad_map_is_named() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("a_bad_map_is_named") {
        return;
    }
    let (name, _) = typeless_symbol();
    let externs = externs(name);
    let insns = program();
    let btf = tiny_btf();
    let mut maps = maps(&[0; 16], &[0; 8]);
    maps[1].attr.map_type = 9999;
    let progs = [prog(&insns, &externs, &SITES)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    let err = fails(&load, Step::MapCreate(1), libc::EINVAL);
    assert!(err.to_string().contains("map 1 'rodata'"), "{err}");
}

const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;

/// A `tp_btf` program (`fentry` needs trampolines, which this kernel
/// refuses): `r0 = 0; exit`, attached to the tracepoint type `target`.
fn tp_btf(target: &'static str) -> ProgDef<'static> {
    const RET0: [Insn; 2] = [Insn::new(op::MOV64_IMM, 0, 0, 0, 0), EXIT];
    ProgDef {
        name: "ksymrelo_tp_btf",
        prog_type: BPF_PROG_TYPE_TRACING,
        expected_attach_type: BPF_TRACE_RAW_TP,
        license: "GPL",
        insns: &RET0,
        attach: Some(ksymrelo_core::gen::AttachTarget {
            name: target,
            kind: Kind::Typedef,
        }),
        ..Default::default()
    }
}

#[test]
fn two_programs_one_with_an_attach_target_and_a_poisoned_copy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("two_programs_one_with_an_attach_target_and_a_poisoned_copy") {
        return;
    }
    let (name, _) = typeless_symbol();
    let externs = externs(name);
    // The weak kfunc called twice: the second site copies the first's
    // (poisoned) result, with its own extern index.
    let mut insns = program();
    insns.splice(
        18..18,
        [Insn::new(op::JEQ_IMM, 1, 0, 1, 0), Insn::new(op::CALL, 0, 0, 0, 0)],
    );
    let mut sites = SITES.to_vec();
    sites.push(Site {
        insn_idx: InsnIdx(19),
        ..SITES[4]
    });
    let btf = tiny_btf();
    let maps = maps(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &2u64.to_le_bytes());
    let progs = [tp_btf("btf_trace_sched_switch"), prog(&insns, &externs, &sites)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    drop(skel::load(&load, &SkelOptions::default()).unwrap());
    let before = fd_count();
    let loaded = skel::load(&load, &SkelOptions::default()).unwrap();
    assert_eq!((loaded.maps.len(), loaded.progs.len()), (2, 2));
    let patched = loaded.program_insns(&load, 1).unwrap();
    for at in [17, 19] {
        assert_eq!(
            patched[at],
            Insn::new(op::CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + 2),
            "{at}"
        );
    }
    prog_test_run(loaded.progs[1].as_fd(), &mut TestRun::default()).unwrap();
    let mut data = [0u8; 16];
    skel::map_lookup(loaded.maps[0].as_fd(), 0, &mut data).unwrap();
    assert_eq!(u64::from_le_bytes(data[..8].try_into().unwrap()), 3);
    drop(loaded);
    assert_eq!(fd_count(), before, "descriptors left behind");

    // An attach target the kernel lacks: named, and the first program's
    // failure leaves the maps closed too.
    let progs = [tp_btf("btf_trace_ksymrelo_no_such"), prog(&insns, &externs, &sites)];
    let load = Load {
        btf: Some(&btf),
        maps: &maps,
        progs: &progs,
    };
    let err = fails(&load, Step::AttachTarget(0), libc::ENOENT);
    assert!(err.to_string().contains("'btf_trace_ksymrelo_no_such'"), "{err}");
}

#[test]
fn a_long_loader_fails_through_its_relays() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel("a_long_loader_fails_through_its_relays") {
        return;
    }
    // 900 weak typeless ksyms the kernel lacks (address 0), then a strong
    // one: the loader is far longer than one jump reaches.
    const N: usize = 900;
    let names: Vec<&'static str> = (0..=N)
        .map(|i| &*Box::leak(format!("ksymrelo_missing_{i:04}").into_boxed_str()))
        .collect();
    let externs: Vec<Extern<'static>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ext(n, ExternKind::Typeless, i < N, i as u32))
        .collect();
    let mut insns = Vec::new();
    let mut sites = Vec::new();
    for i in 0..=N {
        sites.push(Site {
            section: SectionIndex(1),
            insn_idx: InsnIdx(insns.len() as u32),
            extern_idx: ExternIdx(i as u32),
            kind: SiteKind::Ld64,
        });
        insns.extend(ld64(1));
    }
    insns.extend([Insn::new(op::MOV64_IMM, 0, 0, 0, 0), EXIT]);
    let weak_only = [ProgDef {
        name: "ksymrelo_long",
        prog_type: BPF_PROG_TYPE_SYSCALL,
        prog_flags: BPF_F_SLEEPABLE,
        license: "GPL",
        insns: &insns,
        externs: &externs,
        sites: &sites[..N],
        ..Default::default()
    }];
    let maps = maps(&[0; 16], &[0; 8]);
    let maps = &maps[1..];
    let load = Load {
        btf: None,
        maps,
        progs: &weak_only,
    };
    let layout = ksymrelo_core::gen::plan_load(&load).unwrap();
    assert!(layout.loader_len > 2 * 8192, "{}", layout.loader_len);
    let loaded = skel::load(&load, &SkelOptions::default()).unwrap();
    let patched = loaded.program_insns(&load, 0).unwrap();
    assert!(patched[..2 * N].iter().all(|x| x.imm() == 0));
    drop(loaded);

    let mut strong = weak_only;
    strong[0].sites = &sites;
    let load = Load {
        btf: None,
        maps,
        progs: &strong,
    };
    let step = Step::Extern {
        prog: 0,
        extern_idx: N as u32,
    };
    let err = fails(&load, step, libc::ENOENT);
    assert!(err.to_string().contains("ksymrelo_missing_0900"), "{err}");
}
