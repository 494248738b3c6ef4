//! The libbpf oracles of the differential tests: tests/harness/libbpf_dump.c
//! linked against Debian's libbpf 1.1 (built here, at test time) or the
//! libbpf 1.7 that libbpf-sys vendors (built by tests/build.rs), run on an
//! object; what it prints is the instructions libbpf handed to
//! `BPF_PROG_LOAD` for each program, its fd_array and the object's maps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ksymrelo_core::insn::Insn;

use crate::{fixture, kernel_required, skip};

/// A libbpf to compare with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oracle {
    /// Debian's libbpf 1.1.
    V1_1,
    /// libbpf-sys's vendored libbpf 1.7.
    V1_7,
}

impl Oracle {
    /// Both, oldest first.
    pub const ALL: [Oracle; 2] = [Oracle::V1_1, Oracle::V1_7];

    /// What the harness prints for `--version`.
    pub fn version(self) -> &'static str {
        match self {
            Oracle::V1_1 => "v1.1",
            Oracle::V1_7 => "v1.7",
        }
    }

    /// The harness linked against this libbpf, built once per test process
    /// (tests run in parallel). `None` (after a [`skip`], in every test that
    /// asks) when it cannot be built, which fails under
    /// `KSYMRELO_REQUIRE_KERNEL=1`.
    pub fn harness(self) -> Option<PathBuf> {
        static V1_1: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        static V1_7: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let (cell, build): (_, fn() -> Result<PathBuf, String>) = match self {
            Oracle::V1_1 => (&V1_1, build_harness_1_1),
            Oracle::V1_7 => (&V1_7, harness_1_7),
        };
        let built = cell.get_or_init(|| {
            build().inspect(|path| {
                let out = Command::new(path).arg("--version").output().unwrap();
                let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                assert_eq!(
                    version,
                    self.version(),
                    "{} is linked against another libbpf",
                    path.display()
                );
            })
        });
        match built {
            Ok(path) => Some(path.clone()),
            Err(e) => {
                assert!(
                    !kernel_required(),
                    "cannot build the libbpf {} harness: {e}",
                    self.version()
                );
                skip(format_args!("cannot build the libbpf {} harness: {e}", self.version()));
                None
            }
        }
    }
}

/// Debian's libbpf 1.1 harness: named by `KSYMRELO_LIBBPF11_DUMP` inside the
/// VM suite (no compiler there: tests/vm/run.sh builds it static on the
/// host), else built by tests/harness/build.sh into a file of this process
/// and renamed into place (test binaries may run side by side).
fn build_harness_1_1() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("KSYMRELO_LIBBPF11_DUMP") {
        return Ok(PathBuf::from(path));
    }
    let dir = PathBuf::from(env!("OUT_DIR"));
    let out = dir.join("libbpf11_dump");
    let tmp = dir.join(format!("libbpf11_dump.{}", std::process::id()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/build.sh");
    match Command::new("bash").arg(&script).arg(&tmp).status() {
        Ok(s) if s.success() => {
            std::fs::rename(&tmp, &out).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
            Ok(out)
        }
        other => Err(format!("{other:?}: is libbpf-dev installed?")),
    }
}

/// Built by tests/build.rs against libbpf-sys's static libbpf.
fn harness_1_7() -> Result<PathBuf, String> {
    match env!("KSYMRELO_LIBBPF17_DUMP") {
        "" => Err(env!("KSYMRELO_LIBBPF17_ERROR").to_owned()),
        path => Ok(PathBuf::from(path)),
    }
}

/// One program as libbpf loaded it.
#[derive(Clone, Debug)]
pub struct Program {
    /// The program's (function's) name.
    pub name: String,
    /// Its ELF section.
    pub section: String,
    /// The instructions handed to `BPF_PROG_LOAD`.
    pub insns: Vec<Insn>,
    /// The fd_array handed with them (fds of the harness's process).
    pub fd_array: Vec<i32>,
    /// The object's maps then: (name, fd of the harness's process).
    pub maps: Vec<(String, i32)>,
}

impl Program {
    /// The name of the map whose fd (in the harness's process) is `fd`.
    pub fn map_named_by_fd(&self, fd: i32) -> Option<&str> {
        self.maps.iter().find(|(_, f)| *f == fd).map(|(n, _)| n.as_str())
    }
}

/// Runs `harness` on fixture `obj`: every program it dumped (the last dump
/// of each, a refused program being dumped twice), or libbpf's stderr when
/// the load failed. `fake_load`: programs the kernel refuses are dumped too.
pub fn programs(harness: &Path, obj: &str, fake_load: bool) -> Result<Vec<Program>, String> {
    let mut cmd = Command::new(harness);
    if fake_load {
        cmd.arg("--fake-load");
    }
    let out = cmd.arg(fixture(obj)).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut programs: Vec<Program> = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let insns = v["insns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let f: Vec<i64> = i.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
                Insn::new(f[0] as u8, f[1] as u8, f[2] as u8, f[3] as i16, f[4] as i32)
            })
            .collect();
        let fd_array = v["fd_array"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_i64().unwrap() as i32).collect())
            .unwrap_or_default();
        let maps = v["maps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_i64().unwrap() as i32))
                    .collect()
            })
            .unwrap_or_default();
        let p = Program {
            name: v["name"].as_str().unwrap().to_owned(),
            section: v["section"].as_str().unwrap().to_owned(),
            insns,
            fd_array,
            maps,
        };
        programs.retain(|q| q.name != p.name);
        programs.push(p);
    }
    Ok(programs)
}
