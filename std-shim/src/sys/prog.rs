//! Programs: loading one (`BPF_PROG_LOAD`, with the verifier log of a
//! refusal) and running it (`BPF_PROG_TEST_RUN`).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use ksymrelo_core::bpf::{op, pseudo, INSN_SIZE};
use ksymrelo_core::insn::Insn;

use super::btf::with_log;
use super::uapi::{
    BpfCommand, ProgLoadAttr, TestRunAttr, FUNC_INFO_SIZE, LOG_LEVEL_VERBOSE, LOG_SIZE_MAX, LOG_SIZE_MIN,
};
use super::{bpf, bpf_fd, len_u32, obj_name, ptr_of, ptr_of_mut, BpfError};

/// A program to load with [`prog_load`].
pub(crate) struct ProgLoad<'a> {
    /// `BPF_PROG_TYPE_*`.
    pub(crate) prog_type: u32,
    /// Instruction bytes, 8 per instruction, as [`Insn`] lays them out.
    pub(crate) insns: &'a [u8],
    /// License; GPL-only helpers and kfuncs need a GPL-compatible one.
    pub(crate) license: &'a CStr,
    /// Name; the kernel keeps 15 bytes of letters, digits, `_` and `.`.
    pub(crate) name: Option<&'a str>,
    /// `BPF_F_*` program flags.
    pub(crate) prog_flags: u32,
    /// `BPF_*` expected attach type (0 where the type has none).
    pub(crate) expected_attach_type: u32,
    /// Descriptors the instructions refer to by index: maps
    /// (`BPF_PSEUDO_MAP_IDX[_VALUE]`) and module BTFs of kfunc calls (the
    /// call's `off`). Every such index must be in range.
    pub(crate) fd_array: Option<&'a [RawFd]>,
    /// Buffer for the verifier log of a failed load (at least 128 bytes to
    /// be used); its text is attached to the error.
    pub(crate) log: Option<&'a mut [u8]>,
    /// The program's BTF and `bpf_func_info` records (needed by programs
    /// that pass callbacks to helpers).
    pub(crate) btf: Option<ProgBtf<'a>>,
    /// A PKCS#7 signature of the instructions and the keyring that
    /// verifies it (Linux 6.18).
    pub(crate) signature: Option<ProgSignature<'a>>,
}

/// A signed load's `signature` and `keyring_id`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgSignature<'a> {
    /// DER PKCS#7 (CMS) signature over the instruction bytes.
    pub(crate) der: &'a [u8],
    /// The keyring's serial (0: the kernel's built-in trusted keys).
    pub(crate) keyring_id: i32,
}

/// BTF of a program being loaded: the loaded BTF object and the
/// `struct bpf_func_info` records (`insn_off`, `type_id`, 8 bytes each).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgBtf<'a> {
    /// A BTF object from [`super::btf_load`].
    pub(crate) fd: BorrowedFd<'a>,
    /// The records, in host byte order.
    pub(crate) func_info: &'a [u8],
}

/// Loads a program (`BPF_PROG_LOAD`).
///
/// The first attempt runs without a log: the verifier is faster without
/// one, and since Linux 6.4 a log that overflows fails even a valid
/// program with `ENOSPC`. If it fails and `log` is given, the load is
/// repeated at log level 1 and the error carries the log's text (the
/// kernel keeps the log's tail, which names the failure; see
/// [`BpfError::verifier_log`]).
///
/// Errors: `EINVAL` for a length that is not a multiple of 8 or an
/// `fd_array` index out of range (checked here, so the kernel never reads
/// past the slice); otherwise the kernel's errno.
pub(crate) fn prog_load(p: &mut ProgLoad<'_>) -> Result<OwnedFd, BpfError> {
    let cmd = BpfCommand::ProgLoad;
    let insns = ksymrelo_core::insn::insns(p.insns).map_err(|_| {
        BpfError::invalid(
            cmd,
            format!(
                "program is {} bytes, not a whole number of {INSN_SIZE}-byte instructions",
                p.insns.len()
            ),
        )
    })?;
    check_fd_array_refs(insns, p.fd_array)?;
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt: len_u32(cmd, insns.len(), "program")?,
        insns: ptr_of(p.insns),
        license: p.license.as_ptr() as u64,
        prog_flags: p.prog_flags,
        prog_name: obj_name(p.name.unwrap_or("")),
        expected_attach_type: p.expected_attach_type,
        fd_array: p.fd_array.map_or(0, |f| f.as_ptr() as u64),
        ..Default::default()
    };
    if let Some(sig) = &p.signature {
        attr.signature = ptr_of(sig.der);
        attr.signature_size = len_u32(cmd, sig.der.len(), "signature")?;
        attr.keyring_id = sig.keyring_id;
    }
    if let Some(btf) = &p.btf {
        if btf.func_info.len() % FUNC_INFO_SIZE != 0 {
            return Err(BpfError::invalid(
                cmd,
                "func_info is not a whole number of 8-byte records".into(),
            ));
        }
        attr.prog_btf_fd = btf.fd.as_raw_fd() as u32;
        attr.func_info_rec_size = FUNC_INFO_SIZE as u32;
        attr.func_info = ptr_of(btf.func_info);
        attr.func_info_cnt = len_u32(cmd, btf.func_info.len() / FUNC_INFO_SIZE, "func_info")?;
    }
    let err = match prog_load_attr(&mut attr) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let Some(log) = p.log.as_deref_mut().filter(|l| l.len() >= LOG_SIZE_MIN) else {
        return Err(err);
    };
    let len = log.len().min(LOG_SIZE_MAX);
    log[0] = 0;
    attr.log_level = LOG_LEVEL_VERBOSE;
    attr.log_size = len as u32;
    attr.log_buf = ptr_of_mut(log);
    prog_load_attr(&mut attr).map_err(|e| with_log(e, &log[..len]).unwrap_or(err))
}

/// One `BPF_PROG_LOAD`, repeated (as libbpf does) while the verifier
/// reports `EAGAIN` (interrupted by a signal).
fn prog_load_attr(attr: &mut ProgLoadAttr) -> Result<OwnedFd, BpfError> {
    let mut tries = 0;
    loop {
        // SAFETY: `prog_load` filled `attr` from live borrows it holds
        // across this call: `insns` (`insn_cnt` * 8 bytes), the
        // NUL-terminated license, `fd_array` (every index the instructions
        // use was checked to be in range), the func_info records
        // (`func_info_cnt` whole records), the signature
        // (`signature_size` bytes) and, if set, the exclusively
        // borrowed log (`log_size` bytes, bounding the kernel's writes).
        // The command returns a new fd.
        match unsafe { bpf_fd(BpfCommand::ProgLoad, attr) } {
            Err(e) if e.errno() == libc::EAGAIN && tries < 5 => tries += 1,
            done => return done,
        }
    }
}

/// Checks that every `fd_array` index in `insns` is within `fd_array`.
/// (Without an `fd_array`, the kernel refuses such indices itself.)
fn check_fd_array_refs(insns: &[Insn], fd_array: Option<&[RawFd]>) -> Result<(), BpfError> {
    let Some(fd_array) = fd_array else {
        return Ok(());
    };
    let mut slots = insns.iter().enumerate();
    while let Some((at, insn)) = slots.next() {
        let idx = match (insn.code, insn.src_reg()) {
            (op::LD_IMM64, pseudo::MAP_IDX | pseudo::MAP_IDX_VALUE) => Some(i64::from(insn.imm())),
            (op::CALL, pseudo::KFUNC_CALL) if insn.off() != 0 => Some(i64::from(insn.off())),
            _ => None,
        };
        if let Some(idx) = idx {
            if idx < 0 || idx as u64 >= fd_array.len() as u64 {
                return Err(BpfError::invalid(
                    BpfCommand::ProgLoad,
                    format!(
                        "instruction {at} refers to fd_array[{idx}], but fd_array has {} entries",
                        fd_array.len()
                    ),
                ));
            }
        }
        // The second half of an ld_imm64 is not an instruction.
        if insn.is_ld_imm64() {
            slots.next();
        }
    }
    Ok(())
}

/// Buffers and options of one [`prog_test_run`].
///
/// What a program type accepts differs: `BPF_PROG_TYPE_SYSCALL` programs
/// take only `ctx_in`, which they may modify and which the kernel copies
/// back into the same buffer (hence `&mut`); they refuse `ctx_out`, data
/// and `repeat` with `EINVAL`. Packet programs (XDP, tc, …) take data in
/// and out, an optional context and `repeat`.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Context passed to the program (syscall programs: written back).
    pub ctx_in: Option<&'a mut [u8]>,
    /// Buffer for the context after the run (not for syscall programs).
    pub ctx_out: Option<&'a mut [u8]>,
    /// Packet data passed to the program.
    pub data_in: Option<&'a [u8]>,
    /// Buffer for the packet data after the run.
    pub data_out: Option<&'a mut [u8]>,
    /// Number of runs to average `duration` over (0 means 1).
    pub repeat: u32,
}

/// What a [`prog_test_run`] reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (of the last run).
    pub retval: u32,
    /// Average run time in ns (0 for syscall programs, which the kernel
    /// does not time).
    pub duration: u32,
    /// Size of the data the program produced (may exceed `data_out`, in
    /// which case the kernel failed the run with `ENOSPC`).
    pub data_size_out: u32,
    /// Size of the context the program produced, likewise.
    pub ctx_size_out: u32,
}

/// Runs the program `prog` with `BPF_PROG_TEST_RUN` (Linux 4.12; syscall
/// programs since 5.14) over the buffers in `run` (see [`TestRun`] for
/// what each program type accepts).
pub fn prog_test_run(prog: BorrowedFd<'_>, run: &mut TestRun<'_>) -> Result<TestRunResult, BpfError> {
    let cmd = BpfCommand::ProgTestRun;
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        repeat: run.repeat,
        ..Default::default()
    };
    if let Some(ctx) = run.ctx_in.as_deref_mut() {
        attr.ctx_size_in = len_u32(cmd, ctx.len(), "ctx_in")?;
        attr.ctx_in = ptr_of_mut(ctx);
    }
    if let Some(ctx) = run.ctx_out.as_deref_mut() {
        attr.ctx_size_out = len_u32(cmd, ctx.len(), "ctx_out")?;
        attr.ctx_out = ptr_of_mut(ctx);
    }
    if let Some(data) = run.data_in {
        attr.data_size_in = len_u32(cmd, data.len(), "data_in")?;
        attr.data_in = ptr_of(data);
    }
    if let Some(data) = run.data_out.as_deref_mut() {
        attr.data_size_out = len_u32(cmd, data.len(), "data_out")?;
        attr.data_out = ptr_of_mut(data);
    }
    // SAFETY: every pointer comes from a borrow in `run`, live across the
    // call, with its length beside it; the kernel reads at most those
    // lengths and writes at most `ctx_size_in` bytes to `ctx_in` (syscall
    // programs; the borrow is exclusive), `ctx_size_out` to `ctx_out` and
    // `data_size_out` to `data_out`, all exclusively borrowed.
    unsafe { bpf(cmd, &mut attr)? };
    Ok(TestRunResult {
        retval: attr.retval,
        duration: attr.duration,
        data_size_out: attr.data_size_out,
        ctx_size_out: attr.ctx_size_out,
    })
}

/// Runs a loader emitted by [`ksymrelo_core::gen::emit_load`] once over
/// `ctx` (its context, [`ksymrelo_core::gen::ctx`]), lending it `log` for
/// the BTF and verifier logs of what it loads: the log's address and size
/// are written into `ctx` here, so that the buffer stays borrowed for the
/// whole run (`log_level` is 1 with a log, 0 without). `flags` go into
/// the context's flags ([`ksymrelo_core::gen::ctx::PROGRAM_LOG_ONLY`]).
///
/// Errors: `EINVAL` for a context too short to hold the log fields or a
/// log longer than the kernel takes; otherwise the kernel's errno.
pub(crate) fn loader_test_run(
    prog: BorrowedFd<'_>,
    ctx: &mut [u8],
    log: Option<&mut [u8]>,
    flags: u32,
) -> Result<TestRunResult, BpfError> {
    use ksymrelo_core::gen::ctx as c;
    let cmd = BpfCommand::ProgTestRun;
    if ctx.len() < c::FDS as usize {
        return Err(BpfError::invalid(cmd, format!("loader context of {} bytes", ctx.len())));
    }
    let (level, size, buf) = match log {
        Some(log) if log.len() >= LOG_SIZE_MIN => {
            let len = log.len().min(LOG_SIZE_MAX);
            log[0] = 0;
            (LOG_LEVEL_VERBOSE, len as u32, ptr_of_mut(log))
        }
        _ => (0, 0, 0),
    };
    let put =
        |ctx: &mut [u8], at: u32, bytes: &[u8]| ctx[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    put(ctx, c::FLAGS, &flags.to_ne_bytes());
    put(ctx, c::LOG_LEVEL, &level.to_ne_bytes());
    put(ctx, c::LOG_SIZE, &size.to_ne_bytes());
    put(ctx, c::LOG_BUF, &buf.to_ne_bytes());
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        ctx_size_in: len_u32(cmd, ctx.len(), "ctx_in")?,
        ctx_in: ptr_of_mut(ctx),
        ..Default::default()
    };
    // SAFETY: `ctx` is exclusively borrowed for `ctx_size_in` bytes, which
    // bound what the kernel reads and writes back there. The loader passes
    // the log address and size it finds in `ctx` to the BTF and program
    // loads it runs, which write at most `log_size` bytes there during this
    // call: that is `log`, exclusively borrowed until this function returns
    // (or no log at all: address and size 0).
    unsafe { bpf(cmd, &mut attr)? };
    Ok(TestRunResult {
        retval: attr.retval,
        duration: attr.duration,
        data_size_out: attr.data_size_out,
        ctx_size_out: attr.ctx_size_out,
    })
}

/// Type, id and sizes of the program `fd`.
#[cfg(test)]
fn prog_info(fd: BorrowedFd<'_>) -> Result<super::uapi::ProgInfoRaw, BpfError> {
    let mut info = super::uapi::ProgInfoRaw::default();
    // SAFETY: an all-zero prefix (of `struct bpf_prog_info`): no pointers
    // and zero lengths whatever kind of object `fd` is.
    unsafe { super::fd::obj_get_info(fd, &mut info)? };
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::testing::{kernel, read_attr, user_bytes, with_fake, write_attr};
    use crate::sys::uapi::{BPF_F_SLEEPABLE, BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SYSCALL};
    use crate::sys::{map_create, map_update_elem};
    use ksymrelo_core::insn::as_bytes;
    use std::os::fd::{AsFd, IntoRawFd};

    const EXIT: Insn = Insn::new(op::EXIT, 0, 0, 0, 0);
    /// r0 = 42; exit
    const RET42: [Insn; 2] = [Insn::new(op::MOV64_IMM, 0, 0, 0, 42), EXIT];
    /// r2 = 7; *(u64 *)(r1 + 0) = r2; r0 = 0; exit
    const WRITES_CTX: [Insn; 4] = [
        Insn::new(op::MOV64_IMM, 2, 0, 0, 7),
        Insn::new(op::STX_DW, 1, 2, 0, 0),
        Insn::new(op::MOV64_IMM, 0, 0, 0, 0),
        EXIT,
    ];

    fn syscall_prog<'a>(insns: &'a [u8], fd_array: Option<&'a [RawFd]>, log: Option<&'a mut [u8]>) -> ProgLoad<'a> {
        ProgLoad {
            prog_type: BPF_PROG_TYPE_SYSCALL,
            insns,
            license: c"GPL",
            name: Some("ksymrelo_test"),
            // The verifier refuses syscall programs that are not sleepable.
            prog_flags: BPF_F_SLEEPABLE,
            expected_attach_type: 0,
            fd_array,
            log,
            btf: None,
            signature: None,
        }
    }

    fn load_syscall(insns: &[u8], fd_array: Option<&[RawFd]>, log: Option<&mut [u8]>) -> Result<OwnedFd, BpfError> {
        prog_load(&mut syscall_prog(insns, fd_array, log))
    }

    /// A syscall program's run with `ctx` as its context.
    fn run_ctx(fd: BorrowedFd<'_>, ctx: Option<&mut [u8]>) -> Result<TestRunResult, BpfError> {
        prog_test_run(
            fd,
            &mut TestRun {
                ctx_in: ctx,
                ..Default::default()
            },
        )
    }

    #[test]
    pub(crate) fn syscall_programs_run() {
        if !kernel("syscall_programs_run") {
            return;
        }
        let fd = load_syscall(as_bytes(&RET42), None, None).unwrap();
        let info = prog_info(fd.as_fd()).unwrap();
        assert_eq!(info.prog_type, BPF_PROG_TYPE_SYSCALL);
        assert!(info.id > 0 && info.xlated_prog_len > 0);
        let r = run_ctx(fd.as_fd(), None).unwrap();
        assert_eq!(r.retval, 42);
        // The kernel does not time syscall programs.
        assert_eq!(r.duration, 0);

        let fd = load_syscall(as_bytes(&WRITES_CTX), None, None).unwrap();
        let mut ctx = [0xffu8; 12];
        let r = run_ctx(fd.as_fd(), Some(&mut ctx)).unwrap();
        assert_eq!(r.retval, 0);
        // Written back in place; bytes the program left alone are kept.
        assert_eq!(ctx, [7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);

        // The context must cover every offset the program touches...
        let mut short = [0u8; 4];
        let err = run_ctx(fd.as_fd(), Some(&mut short)).unwrap_err();
        assert_eq!((err.command(), err.errno()), (BpfCommand::ProgTestRun, libc::EINVAL));
        assert_eq!(run_ctx(fd.as_fd(), None).unwrap_err().errno(), libc::EINVAL);
        // ...and syscall programs take neither ctx_out nor data nor repeat.
        let mut ctx = [0u8; 8];
        let mut out = [0u8; 8];
        let refused = [
            TestRun {
                ctx_in: Some(&mut ctx),
                ctx_out: Some(&mut out),
                ..Default::default()
            },
            TestRun {
                data_in: Some(&[0u8; 8]),
                ..Default::default()
            },
            TestRun {
                repeat: 2,
                ..Default::default()
            },
        ];
        for mut run in refused {
            assert_eq!(prog_test_run(fd.as_fd(), &mut run).unwrap_err().errno(), libc::EINVAL);
        }
    }

    #[test]
    pub(crate) fn refused_programs_carry_the_verifier_log() {
        if !kernel("refused_programs_carry_the_verifier_log") {
            return;
        }
        // exit without setting r0
        let bad = as_bytes(std::slice::from_ref(&EXIT));
        let mut log = vec![0u8; 1 << 16];
        let err = load_syscall(bad, None, Some(&mut log)).unwrap_err();
        assert_eq!((err.command(), err.errno()), (BpfCommand::ProgLoad, libc::EACCES));
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(
            err.verifier_log().is_some_and(|log| log.contains("R0 !read_ok")),
            "{err}"
        );
        assert!(err.to_string().contains("verifier log:\n"), "{err}");

        // Without a log (or with one too small for the kernel): the bare errno.
        let bare = BpfError::from_errno(BpfCommand::ProgLoad, libc::EACCES);
        assert_eq!(load_syscall(bad, None, None).unwrap_err(), bare);
        assert_eq!(load_syscall(bad, None, Some(&mut [0u8; 64])).unwrap_err(), bare);

        // A small log does not fail a valid program (the kernel would, with
        // ENOSPC, had the log been used).
        load_syscall(as_bytes(&RET42), None, Some(&mut [0u8; 128])).unwrap();

        let err = load_syscall(&bad[..7], None, None).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
    }

    #[test]
    pub(crate) fn programs_reach_maps_through_fd_array() {
        if !kernel("programs_reach_maps_through_fd_array") {
            return;
        }
        let map = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, "ksymrelo_fda").unwrap();
        map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), &0x1234_5678u64.to_ne_bytes()).unwrap();
        // r1 = &map_value(fd_array[idx]); r0 = *(u64 *)(r1 + 0); exit
        let prog = |idx: i32| {
            [
                Insn::new(op::LD_IMM64, 1, pseudo::MAP_IDX_VALUE, 0, idx),
                Insn::default(),
                Insn::new(op::LDX_DW, 0, 1, 0, 0),
                EXIT,
            ]
        };
        let fd_array = [map.as_fd().as_raw_fd()];
        let fd = load_syscall(as_bytes(&prog(0)), Some(&fd_array), None).unwrap();
        assert_eq!(run_ctx(fd.as_fd(), None).unwrap().retval, 0x1234_5678);

        let err = load_syscall(as_bytes(&prog(1)), Some(&fd_array), None).unwrap_err();
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(err.to_string().contains("fd_array[1]"), "{err}");
        // A kfunc call's module slot is checked too.
        let call = [Insn::new(op::CALL, 0, pseudo::KFUNC_CALL, 3, 1)];
        let err = load_syscall(as_bytes(&call), Some(&fd_array), None).unwrap_err();
        assert!(err.to_string().contains("fd_array[3]"), "{err}");
    }

    #[test]
    fn fd_array_indices_are_checked_before_the_kernel_sees_them() {
        let fd_array = [-1, -1];
        let check = |insns: &[Insn]| {
            with_fake(
                |cmd, _| panic!("{cmd} reached the kernel"),
                || load_syscall(as_bytes(insns), Some(&fd_array), None),
            )
            .unwrap_err()
        };
        let map_value = |idx| [Insn::new(op::LD_IMM64, 1, pseudo::MAP_IDX, 0, idx), Insn::default()];
        // The second slot of an ld_imm64 is no instruction of its own: its
        // bytes are never read as a kfunc call.
        let mut insns = map_value(1).to_vec();
        insns[1] = Insn::new(op::CALL, 0, pseudo::KFUNC_CALL, 9, 0);
        insns.extend(map_value(2));
        let err = check(&insns);
        assert_eq!(
            err,
            BpfError::invalid(
                BpfCommand::ProgLoad,
                "instruction 2 refers to fd_array[2], but fd_array has 2 entries".into()
            )
        );
        assert!(check(&map_value(-1)).to_string().contains("fd_array[-1]"));
        let err = with_fake(|cmd, _| panic!("{cmd}"), || load_syscall(&[0u8; 12], None, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "program is 12 bytes, not a whole number of 8-byte instructions"
        );
    }

    #[test]
    fn loads_fill_the_attribute_and_retry_with_a_log() {
        let insns = as_bytes(&RET42);
        let fd_array = [5, 6];
        let (insns_at, fd_array_at) = (insns.as_ptr() as u64, fd_array.as_ptr() as u64);
        let mut calls = 0;
        let mut log = vec![0u8; 256];
        let log_at = log.as_ptr() as u64;
        let err = with_fake(
            move |cmd, attr| {
                assert_eq!(cmd, BpfCommand::ProgLoad);
                let a: ProgLoadAttr = read_attr(attr);
                assert_eq!((a.prog_type, a.prog_flags), (BPF_PROG_TYPE_SYSCALL, BPF_F_SLEEPABLE));
                assert_eq!((a.insns, a.insn_cnt, a.fd_array), (insns_at, 2, fd_array_at));
                assert_eq!(&a.prog_name, b"ksymrelo_test\0\0\0");
                calls += 1;
                match calls {
                    // Interrupted: tried again, still without a log.
                    1 => Err(libc::EAGAIN),
                    2 => {
                        assert_eq!((a.log_buf, a.log_level), (0, 0));
                        Err(libc::EACCES)
                    }
                    _ => {
                        assert_eq!((a.log_buf, a.log_size, a.log_level), (log_at, 256, LOG_LEVEL_VERBOSE));
                        // SAFETY: `prog_load` lends the kernel `log_size` bytes there.
                        let log = unsafe { user_bytes(a.log_buf, a.log_size) };
                        log.fill(b'x');
                        log[255] = 0;
                        Err(libc::EACCES)
                    }
                }
            },
            || load_syscall(insns, Some(&fd_array), Some(&mut log)),
        )
        .unwrap_err();
        assert_eq!(err.errno(), libc::EACCES);
        // A full buffer: the kernel kept only the log's tail.
        let text = err.verifier_log().unwrap();
        assert_eq!(text, format!("(truncated)\n{}", "x".repeat(255)));

        // A name is cut to what the kernel keeps; the fd returned is owned.
        let dev_null = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
        let fd = with_fake(
            move |_, attr| {
                let a: ProgLoadAttr = read_attr(attr);
                assert_eq!(&a.prog_name, b"a_name_of_many_\0");
                Ok(dev_null.into())
            },
            || {
                let mut p = syscall_prog(insns, None, None);
                p.name = Some("a_name_of_many_letters");
                prog_load(&mut p)
            },
        )
        .unwrap();
        assert_eq!(fd.as_raw_fd(), dev_null);
    }

    #[test]
    fn test_runs_pass_buffers_and_read_the_results_back() {
        // SAFETY: an fd number only lent to the fake, never used as a file.
        let prog = unsafe { BorrowedFd::borrow_raw(77) };
        let mut ctx = [1u8; 16];
        let ctx_at = ctx.as_ptr() as u64;
        let result = with_fake(
            move |cmd, attr| {
                assert_eq!(cmd, BpfCommand::ProgTestRun);
                let mut a: TestRunAttr = read_attr(attr);
                assert_eq!((a.prog_fd, a.ctx_in, a.ctx_size_in, a.repeat), (77, ctx_at, 16, 3));
                assert_eq!((a.ctx_out, a.data_in, a.data_out), (0, 0, 0));
                a.retval = 9;
                a.duration = 100;
                write_attr(attr, a);
                Ok(0)
            },
            || {
                prog_test_run(
                    prog,
                    &mut TestRun {
                        ctx_in: Some(&mut ctx),
                        repeat: 3,
                        ..Default::default()
                    },
                )
            },
        );
        assert_eq!(
            result,
            Ok(TestRunResult {
                retval: 9,
                duration: 100,
                data_size_out: 0,
                ctx_size_out: 0
            })
        );
        let err = with_fake(|_, _| Err(libc::EOPNOTSUPP), || run_ctx(prog, None)).unwrap_err();
        assert_eq!(err, BpfError::from_errno(BpfCommand::ProgTestRun, libc::EOPNOTSUPP));
    }
}
