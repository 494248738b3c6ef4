//! Shared helpers of ksymrelo's integration tests: fixture paths, the
//! kernel-availability gate, and naive reference parsers to check against.

use std::collections::HashMap;
use std::path::PathBuf;

use ksymrelo_core::btf::Kind;

pub use ksymrelo_test_skip::{kernel_required, skip};

pub mod fds;
pub mod generated;
pub mod libbpf;

/// Path of a fixture: a file under `tests/fixtures/`, or, for the fixtures
/// made from the running kernel's kallsyms (`many_N.bpf.{c,o}`, see
/// [`generated`]), the file generated for this kernel.
pub fn fixture(name: &str) -> PathBuf {
    if name.starts_with("many_") {
        return generated::path(name);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Bytes of a built fixture object.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Gate for tests that need `bpf(2)`: `true` when usable. Otherwise
/// [`skip`]s and returns `false` — or panics under
/// `KSYMRELO_REQUIRE_KERNEL=1`.
pub fn kernel_usable(test: &str) -> bool {
    match ksymrelo_std::load::bpf_available() {
        Ok(()) => true,
        Err(e) if kernel_required() => {
            panic!("{test}: bpf(2) is not usable ({e}) but KSYMRELO_REQUIRE_KERNEL=1")
        }
        Err(e) => {
            skip(format_args!("bpf(2) not permitted here: {e}"));
            false
        }
    }
}

/// Gate for tests that read the running kernel's BTF and kallsyms: both
/// readable, and the kernel build has the typeless ksyms the hand-written
/// fixtures name ([`ksymrelo_test_skip::fixtures_fit_or_skip`]).
pub fn live_kernel_files(test: &str) -> bool {
    let ok = std::fs::metadata("/sys/kernel/btf/vmlinux").is_ok() && kallsyms_addresses_visible(&kallsyms_text());
    if !ok {
        if kernel_required() {
            panic!(
                "{test}: /sys/kernel/btf/vmlinux or /proc/kallsyms addresses unavailable but KSYMRELO_REQUIRE_KERNEL=1"
            );
        }
        skip("no /sys/kernel/btf/vmlinux or readable /proc/kallsyms addresses");
        return false;
    }
    ksymrelo_test_skip::fixtures_fit_or_skip(&fixture(""))
}

/// Whether kallsyms shows addresses (not all zero, as under
/// `kptr_restrict`). Not judged by the first line alone: older x86
/// kernels (Debian's 6.1 and 6.12) list the per-CPU symbol
/// `fixed_percpu_data` first, at a true address of 0.
pub fn kallsyms_addresses_visible(text: &str) -> bool {
    text.lines().take(1000).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|a| a.bytes().any(|b| b != b'0'))
    })
}

/// The running kernel's kallsyms text.
pub fn kallsyms_text() -> String {
    std::fs::read_to_string("/proc/kallsyms").unwrap_or_default()
}

/// Every address per name in kallsyms — the naive reference.
pub fn kallsyms_map() -> HashMap<String, Vec<u64>> {
    let mut map: HashMap<String, Vec<u64>> = HashMap::new();
    for line in kallsyms_text().lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_ty), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(addr) = u64::from_str_radix(addr, 16) {
            map.entry(name.to_owned()).or_default().push(addr);
        }
    }
    map
}

/// The single address of `name` in kallsyms (panics if absent or ambiguous).
pub fn kallsyms_addr(name: &str) -> u64 {
    let map = kallsyms_map();
    let addrs = map.get(name).unwrap_or_else(|| panic!("{name} not in kallsyms"));
    assert!(addrs.iter().all(|a| *a == addrs[0]), "{name} is ambiguous in kallsyms");
    addrs[0]
}

/// Writes BTF blobs for tests: in particular a module's split BTF over the
/// real vmlinux BTF (ids and string offsets continuing after the base's).
pub struct BtfWriter {
    words: Vec<u32>,
    strings: Vec<u8>,
    str_start: u32,
    next_id: u32,
}

impl BtfWriter {
    /// A base BTF (ids from 1, strings from 0).
    pub fn base() -> Self {
        BtfWriter {
            words: Vec::new(),
            strings: vec![0],
            str_start: 0,
            next_id: 1,
        }
    }

    /// A split BTF over a base with `base_types` types (ids continue at
    /// `base_types + 1`) and a string section of `base_str_len` bytes.
    pub fn split(base_types: u32, base_str_len: u32) -> Self {
        BtfWriter {
            words: Vec::new(),
            strings: Vec::new(),
            str_start: base_str_len,
            next_id: base_types + 1,
        }
    }

    /// Adds a string, returns its offset.
    pub fn string(&mut self, s: &str) -> u32 {
        let off = self.str_start + self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Adds a type: header words then trailing words; returns its id.
    pub fn add(&mut self, name: &str, kind: Kind, vlen: u32, size_or_type: u32, extra: &[u32]) -> u32 {
        let name_off = if name.is_empty() { 0 } else { self.string(name) };
        self.words
            .extend_from_slice(&[name_off, ((kind as u32) << 24) | vlen, size_or_type]);
        self.words.extend_from_slice(extra);
        self.next_id += 1;
        self.next_id - 1
    }

    /// Adds a FUNC_PROTO with the given parameter types and return type.
    pub fn func_proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let extra: Vec<u32> = params.iter().flat_map(|&t| [0, t]).collect();
        self.add("", Kind::FuncProto, params.len() as u32, ret, &extra)
    }

    /// The blob: header, types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let type_len = (self.words.len() * 4) as u32;
        let mut out = Vec::new();
        for w in [0x0001_eb9fu32, 24, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.strings);
        out
    }
}

/// (type count, string section length) of a base BTF blob: where a split
/// BTF over it starts its ids and string offsets.
pub fn btf_counts(data: &[u8]) -> (u32, u32) {
    let btf = ksymrelo_core::btf::Btf::parse(data).unwrap();
    let str_len = u32::from_le_bytes(data[20..24].try_into().unwrap());
    (btf.own_type_count(), str_len)
}

/// A directory removed on drop.
pub struct Dir(pub std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A /sys/kernel/btf-like directory: the real vmlinux BTF plus two
/// synthesized modules, `ksymrelo_mod` (kfuncs `ksymrelo_mod_kfunc`,
/// `ksymrelo_mod_kfunc2`, VAR `ksymrelo_mod_var`) and `ksymrelo_other`
/// (kfunc `ksymrelo_other_kfunc`), for `modules.bpf.o`. Returns it and the
/// ids of those four types. `None` (after a [`skip`]) without vmlinux BTF.
pub fn synth_module_dir(test: &str) -> Option<(Dir, [u32; 4])> {
    let vmlinux = match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(v) => v,
        Err(e) => {
            assert!(!kernel_required(), "no vmlinux BTF: {e}");
            skip(format_args!("/sys/kernel/btf/vmlinux unreadable: {e}"));
            return None;
        }
    };
    let base = ksymrelo_core::btf::Btf::parse(&vmlinux).unwrap();
    // modules.bpf.o also calls bpf_task_release (Linux 6.2 and later).
    if base
        .find_by_name_kind(b"bpf_task_release", ksymrelo_core::btf::Kind::Func)
        .unwrap()
        .is_none()
    {
        skip("this kernel's vmlinux BTF has no bpf_task_release, which modules.bpf.o calls");
        return None;
    }
    let int = base
        .find_by_name_kind(b"int", ksymrelo_core::btf::Kind::Int)
        .unwrap()
        .expect("vmlinux has int");
    let (types, str_len) = btf_counts(&vmlinux);

    // ksymrelo_mod: int ksymrelo_mod_kfunc(int), int ksymrelo_mod_kfunc2(int),
    // int ksymrelo_mod_var.
    let mut m = BtfWriter::split(types, str_len);
    let proto = m.func_proto(int, &[int]);
    let f1 = m.add("ksymrelo_mod_kfunc", Kind::Func, 1, proto, &[]);
    let f2 = m.add("ksymrelo_mod_kfunc2", Kind::Func, 1, proto, &[]);
    let v = m.add("ksymrelo_mod_var", Kind::Var, 0, int, &[1]);
    // ksymrelo_other: int ksymrelo_other_kfunc(void).
    let mut o = BtfWriter::split(types, str_len);
    let proto = o.func_proto(int, &[]);
    let f3 = o.add("ksymrelo_other_kfunc", Kind::Func, 1, proto, &[]);

    let dir = std::env::temp_dir().join(format!("ksymrelo-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vmlinux"), &vmlinux).unwrap();
    std::fs::write(dir.join("ksymrelo_mod"), m.finish()).unwrap();
    std::fs::write(dir.join("ksymrelo_other"), o.finish()).unwrap();
    Some((Dir(dir), [f1, f2, v, f3]))
}

/// An object's extern table and sites, as the core reads them.
pub fn externs_and_sites<'a>(
    obj: &ksymrelo_core::object::Object<'a>,
) -> (Vec<ksymrelo_core::object::Extern<'a>>, Vec<ksymrelo_core::object::Site>) {
    use ksymrelo_core::object::{Extern, Site};
    let btf = obj.btf().unwrap();
    let mut externs = vec![Extern::default(); obj.extern_count()];
    let n = obj.externs(&btf, &mut externs).unwrap().len();
    externs.truncate(n);
    let mut sites = vec![Site::default(); obj.max_site_count().unwrap()];
    let n = obj.sites(&externs, &mut sites).unwrap().len();
    sites.truncate(n);
    (externs, sites)
}

/// Whether `KSYMRELO_VM=1` (set by tests/vm/init): the kernel has the
/// netfilter modules and data symbols in kallsyms, so the tests that need
/// them must run, not skip.
pub fn in_vm() -> bool {
    std::env::var("KSYMRELO_VM").is_ok_and(|v| v == "1")
}

/// Whether the running kernel's vmlinux BTF has a FUNC `name` (a kfunc
/// this kernel may offer; Debian's BTF has no kfunc tags to tell more).
pub fn kernel_has_kfunc(name: &str) -> bool {
    let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return false;
    };
    let btf = ksymrelo_core::btf::Btf::parse(&data).expect("vmlinux BTF parses");
    btf.find_by_name_kind(name.as_bytes(), ksymrelo_core::btf::Kind::Func)
        .expect("vmlinux BTF lookup")
        .is_some()
}

/// Gate for tests whose fixture calls kfuncs strongly: `true` when every
/// strong kfunc extern of `fixture` (by its essential name) is a FUNC of
/// vmlinux BTF. Otherwise [`skip`]s naming the missing ones and
/// returns `false`: the test does not apply to this kernel (Linux 6.1 has
/// neither bpf_iter_num_* nor bpf_task_from_pid).
pub fn fixture_kfuncs_in_vmlinux(fixture: &str) -> bool {
    let missing = missing_vmlinux_kfuncs(fixture);
    if !missing.is_empty() {
        skip(format_args!(
            "{fixture} calls kfuncs this kernel's vmlinux BTF lacks: {}",
            missing.join(", ")
        ));
    }
    missing.is_empty()
}

/// The strong kfunc externs of `fixture` (essential names) that vmlinux
/// BTF lacks, in extern order.
pub fn missing_vmlinux_kfuncs(fixture: &str) -> Vec<String> {
    let data = fixture_bytes(fixture);
    let obj = ksymrelo_core::object::Object::parse(&data).unwrap();
    let (externs, _) = externs_and_sites(&obj);
    externs
        .iter()
        .filter(|e| e.kind == ksymrelo_core::object::ExternKind::Kfunc && !e.weak)
        .map(|e| e.lookup_name().to_owned())
        .filter(|n| !kernel_has_kfunc(n))
        .fold(Vec::new(), |mut names, n| {
            // Flavors share their essential name: list it once.
            if !names.contains(&n) {
                names.push(n);
            }
            names
        })
}

/// Gate for tests that need kernel modules' BTF (`/sys/kernel/btf/NAME`):
/// `true` when every one is there. Otherwise [`skip`]s — or
/// panics inside the VM suite ([`in_vm`]), which loads them.
pub fn modules_loaded(test: &str, modules: &[&str]) -> bool {
    let missing: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|m| std::fs::metadata(format!("/sys/kernel/btf/{m}")).is_err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_vm(),
        "{test}: module BTF of {missing:?} missing inside the VM suite"
    );
    skip(format_args!(
        "module(s) {} not loaded (no /sys/kernel/btf/{}); tests/vm/run.sh loads them",
        missing.join(", "),
        missing[0]
    ));
    false
}

/// Gate for tests that load typed ksym variables: the verifier finds their
/// addresses with a kallsyms lookup, so kallsyms must list data symbols
/// (`CONFIG_KALLSYMS_ALL`); `names` are checked. Otherwise a [`skip`], or
/// a panic inside the VM suite.
pub fn data_symbols_in_kallsyms(test: &str, names: &[&str]) -> bool {
    let map = kallsyms_map();
    let missing: Vec<&str> = names.iter().copied().filter(|n| !map.contains_key(*n)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(!in_vm(), "{test}: {missing:?} not in kallsyms inside the VM suite");
    skip(format_args!(
        "kallsyms lists no {} (no data symbols: the verifier would refuse typed ksyms)",
        missing.join(", ")
    ));
    false
}

pub use ksymrelo_test_skip::kernel_version;

/// The live BTF object of module `name` now: (id, an fd of it), by walking
/// the kernel's BTF ids. `None` when no loaded module has that name.
pub fn live_module_btf(name: &str) -> Option<(u32, std::os::fd::OwnedFd)> {
    ksymrelo_std::load::btf_objects()
        .map(Result::unwrap)
        .find(|o| o.info.kernel_btf && o.info.name == name)
        .map(|o| (o.info.id, o.fd))
}

/// Checks that `fd` (a number found in instructions or an fd_array) is an
/// open BTF object of module `module`, the one loaded now: its id is the
/// module's current BTF id. Returns that id.
pub fn assert_module_btf_fd(fd: i32, module: &str) -> u32 {
    use std::os::fd::BorrowedFd;
    assert!(fd > 0, "fd {fd} for {module}");
    // SAFETY: only inspected while the relocation that holds it lives;
    // btf_info refuses fds that are not BTF objects (closed ones fail).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let info = ksymrelo_std::load::btf_info(borrowed)
        .unwrap_or_else(|e| panic!("fd {fd} (for {module}) is not an open BTF object: {e}"));
    assert_eq!(info.name, module, "fd {fd} is the BTF of another object");
    assert!(info.kernel_btf, "fd {fd} is not kernel BTF");
    let (live_id, _) = live_module_btf(module).unwrap_or_else(|| panic!("{module} is not loaded"));
    assert_eq!(info.id, live_id, "fd {fd} is the BTF of an unloaded {module}");
    info.id
}
