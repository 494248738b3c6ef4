//! Fixtures made from the kernel the tests run on: `many_100.bpf.o` and
//! `many_1000.bpf.o`, N typeless ksyms (functions of this kernel) and 5
//! kfunc calls each, for the tests and the benches. A list of names taken
//! from one machine's kallsyms fails on another build of the same kernel
//! (it inlines or renames some functions), so the names are chosen by a
//! rule from the kallsyms of the kernel at hand:
//!
//! - functions (type `T` or `t`) of vmlinux (no `[module]`) whose name is a
//!   C identifier, does not start with `__pfx_`, and is listed exactly once
//!   in the whole text (counting `NAME.llvm.*` as `NAME`, every type and
//!   every module);
//! - not a C keyword, nor an identifier the fixture's headers declare (they
//!   are preprocessed to find them), nor a name clang refuses to redeclare
//!   (its builtins: found by compiling, then left out);
//! - of those, in byte order, every k-th (k = count / N, from the first).
//!
//! The sources and objects are written to a directory named after a hash
//! of the sources ([`dir`]), so one kernel's objects are built once and
//! another kernel's never reused. In the VM guests, which have no clang,
//! `KSYMRELO_GENERATED_DIR` names a directory the host filled for the
//! guest's kernel (`gen_fixtures`, from the kallsyms `tests/kernels/fetch.sh`
//! saved), and nothing is compiled.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The sizes generated.
pub const SIZES: [usize; 2] = [100, 1000];
/// Addresses each object stores one by one (the rest only in a xor).
pub const PICKED: usize = 8;

const CLANG: &str = "clang-19";
const KFUNCS: &str = "extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
";
const C_KEYWORDS: &str = "auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while _Alignas _Alignof _Atomic _Bool
_Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local asm typeof";
/// Identifiers of the generated program itself.
const OWN_NAMES: [&str; 9] = ["many", "many_ctx", "c", "it", "t", "v", "sum", "x", "LICENSE"];

/// What the rule needs of a kallsyms text.
pub struct Candidates {
    /// Functions of vmlinux listed once, as C identifiers, sorted.
    names: Vec<String>,
}

impl Candidates {
    /// Reads kallsyms `text` (addresses must be visible: the rule needs no
    /// address, but a text with hidden addresses is the wrong input).
    pub fn from_kallsyms(text: &str) -> Result<Self, String> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut functions = Vec::new();
        let mut visible = false;
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let base = name.split(".llvm.").next().unwrap_or(name);
            *counts.entry(base).or_default() += 1;
            visible |= addr.bytes().any(|b| b != b'0');
            if matches!(kind, "T" | "t") && f.next().is_none() {
                functions.push(name);
            }
        }
        if !visible {
            return Err("kallsyms shows only zero addresses (kptr_restrict): read it as root".into());
        }
        let keywords: HashSet<&str> = C_KEYWORDS.split_whitespace().collect();
        let mut names: Vec<String> = functions
            .into_iter()
            .filter(|n| {
                counts.get(n) == Some(&1) && is_identifier(n) && !n.starts_with("__pfx_") && !keywords.contains(n)
            })
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        Ok(Candidates { names })
    }
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// The directory of `tests/fixtures` (headers the sources include).
fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn clang_flags() -> Vec<String> {
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let include = fixtures_dir().join("include");
    ["-g", "-O2", "-target", "bpf", "-mcpu=v3"]
        .into_iter()
        .map(str::to_owned)
        .chain([
            "-I".into(),
            include.display().to_string(),
            "-I".into(),
            format!("/usr/include/{multiarch}"),
        ])
        .collect()
}

/// Every identifier the fixture's headers bring in, and the program's own.
fn taken_identifiers() -> Result<HashSet<String>, String> {
    let header = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"ksym_types.h\"\n";
    let out = run_clang(&["-E"], &["-x", "c", "-"], Some(header))?;
    let mut taken: HashSet<String> = HashSet::new();
    for text in [out.as_str(), KFUNCS] {
        let mut word = String::new();
        for ch in text.chars().chain([' ']) {
            if ch == '_' || ch.is_ascii_alphanumeric() {
                word.push(ch);
            } else if !word.is_empty() {
                if !word.as_bytes()[0].is_ascii_digit() {
                    taken.insert(std::mem::take(&mut word));
                }
                word.clear();
            }
        }
    }
    taken.extend(OWN_NAMES.iter().map(|s| (*s).to_owned()));
    Ok(taken)
}

/// Runs clang with the fixtures' flags; stdout on success, stderr as the error.
fn run_clang(pre: &[&str], post: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut cmd = Command::new(CLANG);
    cmd.args(pre).args(clang_flags()).args(post);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{CLANG}: {e} (bash .ci/setup installs it)"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .map_err(|e| e.to_string())?;
    drop(input);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The names of `many_N`: every k-th usable candidate.
fn choose(pool: &[&str], n: usize) -> Result<Vec<String>, String> {
    if pool.len() < n {
        return Err(format!("only {} usable function names in kallsyms for {n}", pool.len()));
    }
    let step = pool.len() / n;
    Ok(pool.iter().step_by(step).take(n).map(|s| (*s).to_owned()).collect())
}

/// The names whose addresses the program stores one by one.
pub fn picked(names: &[String]) -> Vec<&str> {
    let k = names.len();
    (0..PICKED)
        .map(|i| names[i * (k - 1) / (PICKED - 1)].as_str())
        .collect()
}

/// The C source of `many_N` over `names`.
fn source(names: &[String]) -> String {
    let n = names.len();
    let picked = picked(names);
    let mut out = format!(
        "// many_{n}.bpf.c — GENERATED by ksymrelo-tests (tests/src/generated.rs) from the
// kallsyms of the kernel the tests run on; the rule that chose the names is
// written there. Do not edit.
//
// {n} typeless ksyms (kernel functions) and 5 kfunc calls, as mixed.bpf.c.
// A test run (BPF_PROG_TEST_RUN over struct many_ctx) writes:
//   xor_all    = the xor of all {n} addresses
//   addr[0..{PICKED}] = the addresses of {}, ... (see below)
//   sum        = 0 + 1 + ... + 19 = 190 (bpf_iter_num_*)
//   task_found = 1 (bpf_task_from_pid of the pid given in the context)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include \"ksym_types.h\"

",
        picked[..3].join(", ")
    );
    for name in names {
        out += &format!("extern const void {name} __ksym;\n");
    }
    out += "\n";
    out += KFUNCS;
    out += &format!(
        "
struct many_ctx {{
\t__u64 xor_all;
\t__u64 addr[{PICKED}];
\t__s64 sum;
\t__u64 task_found;
\t__u64 pid; /* in: a pid to look up (the test's own) */
}};

SEC(\"syscall\")
int many(struct many_ctx *c)
{{
\tstruct bpf_iter_num it;
\tstruct task_struct *t;
\t__u64 x = 0;
\t__s64 sum = 0;
\tint *v;

"
    );
    for name in names {
        out += &format!("\tx ^= (__u64)&{name};\n");
    }
    out += "\tc->xor_all = x;\n";
    for (i, name) in picked.iter().enumerate() {
        out += &format!("\tc->addr[{i}] = (__u64)&{name};\n");
    }
    out += "
\tbpf_iter_num_new(&it, 0, 20);
\twhile ((v = bpf_iter_num_next(&it)))
\t\tsum += *v;
\tbpf_iter_num_destroy(&it);
\tc->sum = sum;

\tt = bpf_task_from_pid((__s32)c->pid);
\tif (t) {
\t\tc->task_found = 1;
\t\tbpf_task_release(t);
\t}
\treturn 0;
}

char LICENSE[] SEC(\"license\") = \"GPL\";
";
    out
}

/// The extern names clang's errors point at in `text` (redeclared builtins).
fn refused_by_clang(text: &str, stderr: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = BTreeSet::new();
    for line in stderr.lines() {
        let Some(rest) = line.split("many.bpf.c:").nth(1) else {
            continue;
        };
        if !rest.contains(": error:") {
            continue;
        }
        let Some(no) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let Some(decl) = lines.get(no.wrapping_sub(1)) else {
            continue;
        };
        if let Some(name) = decl
            .strip_prefix("extern const void ")
            .and_then(|d| d.strip_suffix(" __ksym;"))
        {
            bad.insert(name.to_owned());
        }
    }
    bad
}

/// Writes `many_N.bpf.c` and `many_N.bpf.o` for every N of [`SIZES`] into
/// `out`, from kallsyms `text`. Returns the names of each, in order.
pub fn generate(text: &str, out: &Path) -> Result<Vec<Vec<String>>, String> {
    let candidates = Candidates::from_kallsyms(text)?;
    let taken = taken_identifiers()?;
    let mut refused: BTreeSet<String> = BTreeSet::new();
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut all = Vec::new();
    for n in SIZES {
        loop {
            let pool: Vec<&str> = candidates
                .names
                .iter()
                .map(String::as_str)
                .filter(|n| !taken.contains(*n) && !refused.contains(*n))
                .collect();
            let names = choose(&pool, n)?;
            let text = source(&names);
            let src = out.join(format!("many_{n}.bpf.c"));
            let obj = out.join(format!("many_{n}.bpf.o"));
            // clang names the file in its errors: compile it as many.bpf.c.
            let probe = out.join("many.bpf.c");
            std::fs::write(&probe, &text).map_err(|e| e.to_string())?;
            let compiled = run_clang(
                &[],
                &["-c", &probe.display().to_string(), "-o", &obj.display().to_string()],
                None,
            );
            let _ = std::fs::remove_file(&probe);
            match compiled {
                Ok(_) => {
                    std::fs::write(&src, &text).map_err(|e| e.to_string())?;
                    all.push(names);
                    break;
                }
                Err(stderr) => {
                    let bad = refused_by_clang(&text, &stderr);
                    if bad.is_empty() {
                        return Err(format!("{CLANG} refused many_{n}.bpf.c:\n{stderr}"));
                    }
                    refused.extend(bad);
                }
            }
        }
    }
    Ok(all)
}

/// The directory holding this kernel's generated fixtures, made on first
/// use: `KSYMRELO_GENERATED_DIR` when set (made by the host for a VM
/// guest), else `target/kernel-fixtures/<hash of the kallsyms rule's
/// input>`. `None` when this kernel's kallsyms cannot be read with
/// addresses (the caller skips).
pub fn dir() -> Result<PathBuf, String> {
    static DIR: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut cached = DIR.lock().unwrap_or_else(|e| e.into_inner());
    cached.get_or_insert_with(make_dir).clone()
}

fn make_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KSYMRELO_GENERATED_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let text = std::fs::read_to_string("/proc/kallsyms").map_err(|e| format!("/proc/kallsyms: {e}"))?;
    let candidates = Candidates::from_kallsyms(&text)?;
    // The rule's whole input: the candidates (and the headers, which are
    // part of the repository, so of the build).
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    candidates.names.hash(&mut hasher);
    std::fs::read(fixtures_dir().join("include/ksym_types.h"))
        .unwrap_or_default()
        .hash(&mut hasher);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("kernel-fixtures").join(format!("{:016x}", hasher.finish()));
    if SIZES.iter().all(|n| dir.join(format!("many_{n}.bpf.o")).exists()) {
        return Ok(dir);
    }
    // Built beside, then renamed into place: another test process may be
    // doing the same.
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    generate(&text, &tmp)?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.join("many_1000.bpf.o").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(format!("{} -> {}: {e}", tmp.display(), dir.display())),
    }
}

/// Path of generated fixture `name` (e.g. `many_100.bpf.o`), building the
/// set for this kernel first if needed; panics with the reason when it
/// cannot be made (callers gate on [`crate::live_kernel_files`] first).
pub fn path(name: &str) -> PathBuf {
    match dir() {
        Ok(dir) => dir.join(name),
        Err(e) => panic!("cannot generate {name} for this kernel: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ffffffff81000000 T _stext
ffffffff81000010 t alpha
ffffffff81000020 T beta
ffffffff81000030 t beta
ffffffff81000040 t gamma.llvm.123
ffffffff81000050 t gamma
ffffffff81000060 T __pfx_delta
ffffffff81000070 T delta
ffffffff81000080 d epsilon
ffffffff81000090 t zeta\t[mod]
ffffffff810000a0 t eta
ffffffff810000b0 t eta\t[mod]
ffffffff810000c0 t 9bad
ffffffff810000d0 t int
";

    #[test]
    fn the_rule_keeps_unique_vmlinux_functions_only() {
        let c = Candidates::from_kallsyms(TEXT).unwrap();
        // beta twice, gamma with its .llvm. twin, eta in a module too,
        // epsilon data, zeta a module's, 9bad no identifier, int a keyword,
        // __pfx_ a prefix symbol.
        assert_eq!(c.names, ["_stext", "alpha", "delta"]);
    }

    #[test]
    fn hidden_addresses_are_refused() {
        let err = Candidates::from_kallsyms("0000000000000000 T a\n0000000000000000 t b\n")
            .err()
            .unwrap();
        assert!(err.contains("zero addresses"), "{err}");
    }

    #[test]
    fn every_kth_from_the_first() {
        let pool: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let pool: Vec<&str> = pool.iter().map(String::as_str).collect();
        assert_eq!(choose(&pool, 3).unwrap(), ["f0", "f3", "f6"]);
        assert!(choose(&pool, 11).unwrap_err().contains("only 10"));
        let names: Vec<String> = (0..100).map(|i| format!("n{i:03}")).collect();
        let p = picked(&names);
        assert_eq!(p.len(), PICKED);
        assert_eq!((p[0], p[PICKED - 1]), ("n000", "n099"));
    }

    #[test]
    fn clang_errors_name_the_refused_externs() {
        let text = "a\nextern const void memcpy __ksym;\nextern const void ok __ksym;\n";
        let stderr = "/x/many.bpf.c:2:19: error: redefinition of 'memcpy'\n/x/many.bpf.c:3:1: warning: w\n";
        assert_eq!(refused_by_clang(text, stderr), BTreeSet::from(["memcpy".to_owned()]));
    }
}
