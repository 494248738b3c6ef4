//! Runs a whole-load loader ([`ksymrelo_core::gen::emit_load`], libbpf's
//! light-skeleton way): the blob goes into a frozen one-entry array map,
//! the loader is loaded as a sleepable `BPF_PROG_TYPE_SYSCALL` program
//! that reaches the blob through its fd_array, and one
//! `BPF_PROG_TEST_RUN` over the context creates everything inside the
//! kernel. What comes back: the maps' and programs' descriptors, owned.
//!
//! ```no_run
//! use ksymrelo_core::gen::{Load, MapCreate, MapDef};
//! use ksymrelo_std::skel::{load, SkelOptions};
//!
//! let maps = [MapDef { attr: MapCreate::new(2, 4, 8, 1, "counts"), ..Default::default() }];
//! let loaded = load(&Load { btf: None, maps: &maps, progs: &[] }, &SkelOptions::default())?;
//! assert_eq!(loaded.maps.len(), 1);
//! # Ok::<(), ksymrelo_std::Error>(())
//! ```

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use ksymrelo_core::gen::{self, Failure, Load, Step};
use ksymrelo_core::insn::Insn;

use crate::error::{Error, ResolverFault, Result, SealProblem};
use crate::sys;

/// How to run a loader.
#[derive(Clone, Copy, Debug)]
pub struct SkelOptions {
    /// Size of the log buffer lent to a failed BTF or program load (which
    /// is then run again with the log on); 0: no log.
    pub log_size: usize,
    /// The keyring that verifies a signed loader's signature: a key serial
    /// (`keyctl show`), a special keyring id (negative), or 0 for the
    /// kernel's built-in trusted keys (1: and the secondary keyring, 2:
    /// the platform keyring).
    pub keyring_id: i32,
}

impl Default for SkelOptions {
    fn default() -> Self {
        SkelOptions {
            log_size: 1 << 20,
            keyring_id: 0,
        }
    }
}

/// What binds a sealed loader to its data (Linux 6.18): the data map is
/// created exclusive to the loader's instructions, frozen and hashed by
/// the kernel, and the loader checks that hash first
/// ([`ksymrelo_core::gen::emit_sealed_load`]); a signature lets the kernel
/// check the loader itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    /// SHA-256 of the loader's instructions as generated: the data map's
    /// `excl_prog_hash`.
    pub loader_sha256: [u8; 32],
    /// A detached PKCS#7 (DER) signature of the loader's instructions.
    pub signature: Option<Vec<u8>>,
}

impl Seal {
    /// The seal of `loader` as generated, unsigned.
    pub fn of(loader: &[Insn]) -> Seal {
        Seal {
            loader_sha256: sha256(ksymrelo_core::insn::as_bytes(loader)),
            signature: None,
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// What a successful load created.
#[derive(Debug)]
pub struct Loaded {
    /// One per map of the load, in its order.
    pub maps: Vec<OwnedFd>,
    /// One per program of the load, in its order.
    pub progs: Vec<OwnedFd>,
    /// The blob as the loader left it (programs' instructions as loaded).
    pub blob: Vec<u8>,
}

impl Loaded {
    /// Program `prog`'s instructions as the loader patched and loaded them
    /// (module BTF fds in them are closed numbers).
    pub fn program_insns(&self, load: &Load<'_>, prog: usize) -> Result<Vec<Insn>> {
        Ok(gen::program_insns(load, &self.blob, prog)?.to_vec())
    }
}

/// What one run of a loader left.
#[derive(Debug)]
pub struct Run {
    /// The loader's return value (0, or the failed step's `-errno`).
    pub retval: i32,
    /// The context after the run.
    pub ctx: Vec<u8>,
    /// The blob after the run.
    pub blob: Vec<u8>,
}

/// The names a loader's steps refer to, for its errors: whoever runs a
/// loader (from a [`Load`], or from a file) says what its indexes are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepNames {
    /// Map names, by map index.
    pub maps: Vec<String>,
    /// Program names, by program index.
    pub progs: Vec<String>,
    /// The object's extern names, by extern index.
    pub externs: Vec<String>,
    /// Each program's attach target, if it has one.
    pub attach: Vec<Option<String>>,
}

impl StepNames {
    /// The names of `load`'s maps, programs, externs and attach targets.
    pub fn of(load: &Load<'_>) -> Self {
        StepNames {
            maps: load.maps.iter().map(|m| sys::c_string(&m.attr.name)).collect(),
            progs: load.progs.iter().map(|p| p.name.to_owned()).collect(),
            externs: load
                .progs
                .first()
                .map(|p| p.externs.iter().map(|e| e.name.to_owned()).collect())
                .unwrap_or_default(),
            attach: load.progs.iter().map(|p| p.attach.map(|t| t.name.to_owned())).collect(),
        }
    }
}

/// Emits the loader for `load`, runs it, and returns the descriptors.
///
/// Errors: the loader refused ([`Error::Bpf`], with the verifier log), or
/// a step failing inside the kernel ([`Error::Loader`]: which step, named,
/// the kernel's errno, and for a BTF or program load the log). On failure
/// the loader has closed whatever it created.
pub fn load(load: &Load<'_>, opts: &SkelOptions) -> Result<Loaded> {
    let planned = gen::plan_load(load)?;
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0u8; planned.end as usize];
    let layout = gen::emit_load(load, &mut loader, &mut blob)?;
    run(&loader, &blob, layout.ctx_size, None, &StepNames::of(load), opts)
}

/// Runs an emitted loader (`loader`, `blob`, the context size of its
/// layout; `seal` if it was emitted sealed) and returns the descriptors it
/// created, one per name in `names.maps` and `names.progs`; errors as
/// [`load`]'s, and for a sealed loader [`Error::Seal`].
pub fn run(
    loader: &[Insn],
    blob: &[u8],
    ctx_size: u32,
    seal: Option<&Seal>,
    names: &StepNames,
    opts: &SkelOptions,
) -> Result<Loaded> {
    let (map_cnt, prog_cnt) = (names.maps.len(), names.progs.len());
    if seal.is_some_and(|s| Seal::of(loader).loader_sha256 != s.loader_sha256) {
        // The kernel would refuse it (EACCES) or, if the change made it
        // invalid, refuse it for that: say what it is.
        return Err(Error::Seal(SealProblem::LoaderAltered));
    }
    let sealed = seal.map(|seal| Sealed {
        seal,
        keyring_id: opts.keyring_id,
    });
    let sealed = sealed.as_ref();
    let run = run_loader(loader, blob, ctx_size, sealed, None, 0)?;
    // Take every descriptor first, so each is closed on every path below.
    let mut fds = gen::fds(&run.ctx, map_cnt, prog_cnt).map(|fd| {
        if run.retval == 0 {
            sys::adopt_kernel_fd(fd)
        } else {
            None
        }
    });
    let maps: Vec<Option<OwnedFd>> = fds.by_ref().take(map_cnt).collect();
    let progs: Vec<Option<OwnedFd>> = fds.collect();
    if let Some(failure) = gen::failure(&run.ctx) {
        let mut log = None;
        if matches!(failure.step, Step::Btf | Step::Program(_)) && opts.log_size > 0 {
            let mut buf = vec![0u8; opts.log_size];
            let flags = match failure.step {
                Step::Btf => 0,
                _ => gen::ctx::PROGRAM_LOG_ONLY,
            };
            let again = run_loader(loader, blob, ctx_size, sealed, Some(&mut buf), flags)?;
            if gen::failure(&again.ctx).is_some() {
                log = Some(sys::c_string(&buf)).filter(|l| !l.is_empty());
            } else if again.retval == 0 {
                // It loaded this time: what it created is not wanted.
                for fd in gen::fds(&again.ctx, map_cnt, prog_cnt) {
                    drop(sys::adopt_kernel_fd(fd));
                }
            }
        }
        return Err(loader_error(names, failure, log));
    }
    if run.retval != 0 {
        return Err(Error::ResolverFault(ResolverFault::Returned(run.retval)));
    }
    let owned = |v: Vec<Option<OwnedFd>>| -> Result<Vec<OwnedFd>> {
        v.into_iter()
            .map(|fd| fd.ok_or(Error::ResolverFault(ResolverFault::NotBpfFd(-1))))
            .collect()
    };
    Ok(Loaded {
        maps: owned(maps)?,
        progs: owned(progs)?,
        blob: run.blob,
    })
}

/// A sealed loader's seal and the keyring its signature is checked with.
#[derive(Clone, Copy, Debug)]
pub struct Sealed<'a> {
    /// From the generator.
    pub seal: &'a Seal,
    /// From whoever runs it ([`SkelOptions::keyring_id`]).
    pub keyring_id: i32,
}

/// Runs `loader` once over `blob` with a zeroed context of `ctx_size`
/// bytes (and `log` lent to what it loads; `flags`: the context's), and
/// reads both back. A `sealed` loader's blob goes into a map exclusive to
/// it, frozen and hashed, and the loader is loaded with its signature.
///
/// Descriptors the loader leaves in the context become this process's:
/// the caller must take them ([`load`] does).
pub fn run_loader(
    loader: &[Insn],
    blob: &[u8],
    ctx_size: u32,
    sealed: Option<&Sealed<'_>>,
    log: Option<&mut [u8]>,
    flags: u32,
) -> Result<Run> {
    // The keyring first: a wrong id is said before anything is created.
    let signature = match sealed {
        Some(Sealed {
            seal: Seal {
                signature: Some(der), ..
            },
            keyring_id,
        }) => {
            sys::check_keyring(*keyring_id).map_err(|errno| {
                Error::Seal(SealProblem::NoSuchKeyring {
                    keyring_id: *keyring_id,
                    errno,
                })
            })?;
            Some(sys::ProgSignature {
                der,
                keyring_id: *keyring_id,
            })
        }
        _ => None,
    };
    let name = "ksymrelo_skel";
    let map = match sealed {
        None => sys::map_create(sys::BPF_MAP_TYPE_ARRAY, 4, blob.len() as u32, 1, name)
            .map_err(|e| Error::bpf("creating the loader's blob map", e))?,
        Some(s) => sys::exclusive_array_create(blob.len() as u32, name, &s.seal.loader_sha256)
            .map_err(|e| exclusive_refused(e, blob.len() as u32))?,
    };
    sys::map_update_elem(map.as_fd(), &0u32.to_ne_bytes(), blob)
        .map_err(|e| Error::bpf("writing the loader blob", e))?;
    sys::map_freeze(map.as_fd()).map_err(|e| Error::bpf("freezing the loader blob", e))?;
    if sealed.is_some() {
        // The kernel hashes the frozen value now and keeps the hash in the
        // map, where the loader reads it.
        sys::map_hash(map.as_fd()).map_err(|e| Error::Seal(SealProblem::NoMapHash { errno: e.errno() }))?;
    }
    let fd_array = [map.as_raw_fd()];
    let mut verifier_log = vec![0u8; 1 << 20];
    let prog = sys::prog_load(&mut sys::ProgLoad {
        prog_type: sys::BPF_PROG_TYPE_SYSCALL,
        insns: ksymrelo_core::insn::as_bytes(loader),
        license: c"Dual BSD/GPL",
        name: Some(name),
        prog_flags: sys::BPF_F_SLEEPABLE,
        expected_attach_type: 0,
        fd_array: Some(&fd_array),
        log: Some(&mut verifier_log),
        btf: None,
        signature,
    })
    .map_err(|e| refused(e, sealed))?;
    let mut ctx = vec![0u8; ctx_size as usize];
    if let Some(sz) = ctx.get_mut(..4) {
        sz.copy_from_slice(&ctx_size.to_ne_bytes());
    }
    let run = sys::loader_test_run(prog.as_fd(), &mut ctx, log, flags)
        .map_err(|e| Error::bpf("running the light-skeleton loader", e))?;
    let mut after = vec![0u8; blob.len()];
    sys::map_lookup_elem(map.as_fd(), &0u32.to_ne_bytes(), &mut after)
        .map_err(|e| Error::bpf("reading the loader blob back", e))?;
    Ok(Run {
        retval: run.retval as i32,
        ctx,
        blob: after,
    })
}

/// The error of a refused exclusive map: a kernel before 6.18 refuses the
/// `excl_prog_hash` field (`EINVAL`, or `E2BIG` past its `bpf_attr`) but
/// creates the same map without it.
fn exclusive_refused(e: sys::BpfError, value_size: u32) -> Error {
    let lacks_field = match e.errno() {
        libc::E2BIG => true,
        libc::EINVAL => sys::map_create(sys::BPF_MAP_TYPE_ARRAY, 4, value_size, 1, "ksymrelo_probe").is_ok(),
        _ => false,
    };
    if lacks_field {
        return Error::Seal(SealProblem::NoExclusiveMaps { errno: e.errno() });
    }
    Error::bpf("creating the loader's exclusive blob map", e)
}

/// The error of a refused loader load: what a sealed or signed loader's
/// refusal means, or the kernel's error with the verifier log.
fn refused(e: sys::BpfError, sealed: Option<&Sealed<'_>>) -> Error {
    if let Some(s) = sealed {
        let signed = s.seal.signature.is_some();
        let problem = match e.errno() {
            libc::EACCES if e.verifier_log().is_some_and(|l| l.contains("excl_prog_hash")) => {
                Some(SealProblem::LoaderAltered)
            }
            libc::EOPNOTSUPP if signed => Some(SealProblem::SignaturesUnsupported),
            libc::ENOKEY if signed => Some(SealProblem::KeyNotInKeyring {
                keyring_id: s.keyring_id,
            }),
            libc::EKEYREJECTED | libc::EBADMSG | libc::EKEYEXPIRED | libc::EKEYREVOKED if signed => {
                Some(SealProblem::SignatureRefused { errno: e.errno() })
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Error::Seal(problem);
        }
    }
    Error::bpf("loading the light-skeleton loader", e)
}

/// Copies the value of `key` of the array or hash map `fd` (one the
/// loader created, say) into `value`, which must be its value size.
pub fn map_lookup(fd: std::os::fd::BorrowedFd<'_>, key: u32, value: &mut [u8]) -> Result<()> {
    sys::map_lookup_elem(fd, &key.to_ne_bytes(), value).map_err(|e| Error::bpf("reading a map element", e))
}

/// The error of a failed step, its map, program or extern named. A
/// strong extern the kernel lacks is told in libbpf's words.
fn loader_error(names: &StepNames, failure: Failure, log: Option<String>) -> Error {
    let name = |list: &[String], i: u32| list.get(i as usize).map_or("?", String::as_str).to_owned();
    let map = |i: u32| format!("map {i} '{}'", name(&names.maps, i));
    let prog = |i: u32| format!("program {i} '{}'", name(&names.progs, i));
    let errno = failure.error.checked_neg().unwrap_or(libc::EIO);
    let step = match failure.step {
        Step::Btf => "light-skeleton loader: loading the BTF failed".to_owned(),
        Step::MapCreate(i) => format!("light-skeleton loader: creating {} failed", map(i)),
        Step::MapUpdate(i) => format!("light-skeleton loader: writing the initial value of {} failed", map(i)),
        Step::MapFreeze(i) => format!("light-skeleton loader: freezing {} failed", map(i)),
        Step::Extern { prog: p, extern_idx } => {
            let ext = name(&names.externs, extern_idx);
            if errno == libc::ENOENT {
                // libbpf's words for it.
                format!("extern '{ext}' (strong): not resolved (in {})", prog(p))
            } else {
                format!("light-skeleton loader: resolving extern '{ext}' of {} failed", prog(p))
            }
        }
        Step::AttachTarget(i) => {
            let target = names
                .attach
                .get(i as usize)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "?".into());
            format!(
                "light-skeleton loader: finding the attach target '{target}' of {} failed",
                prog(i)
            )
        }
        Step::Program(i) => format!("light-skeleton loader: loading {} failed", prog(i)),
        Step::Seal if errno == ksymrelo_core::bpf::EPERM => return Error::Seal(SealProblem::NotExclusive),
        Step::Seal => return Error::Seal(SealProblem::DataAltered),
    };
    Error::Loader {
        step,
        at: failure.step,
        errno,
        log,
    }
}
