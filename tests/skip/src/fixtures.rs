//! Whether the running kernel has what the hand-written fixtures name.
//!
//! The fixtures in `tests/fixtures/*.bpf.c` name a few typeless ksyms by
//! hand (`vfs_read`, `kfree`, `init_once`, ...): long-standing kernel
//! functions, but still a property of a kernel build (one may inline or
//! rename a function, or list a static name once only). A test that
//! resolves them calls [`fixture_names_fit`] first and skips with its
//! reason when this kernel lacks what a fixture needs. (The fixtures whose
//! names must come from the kernel itself, `many_N`, are generated:
//! `tests/src/generated.rs`.)
//!
//! What each fixture needs of kallsyms, read from its source: a strong
//! typeless ksym (`extern const void NAME __ksym;`) at exactly one address;
//! in `err_ambiguous.bpf.c`, at two or more; in `err_strong_missing.bpf.c`,
//! not listed at all.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// Gate of the tests that resolve the hand-written fixtures against the
/// running kernel: `true` when it has what the fixtures in `dir` name;
/// otherwise skips (the calling test) naming what this kernel lacks — a
/// property of the build, not a failure — except in the VM suite
/// (`KSYMRELO_VM=1`), whose kernels we chose, where it panics.
pub fn fixtures_fit_or_skip(dir: &Path) -> bool {
    match fixture_names_fit(dir) {
        Ok(()) => true,
        Err(why) if std::env::var("KSYMRELO_VM").is_ok_and(|v| v == "1") => {
            panic!("the VM's kernel lacks what the fixtures need: {why}")
        }
        Err(why) => {
            crate::skip(format_args!("this kernel build lacks what the fixtures name: {why}"));
            false
        }
    }
}

/// `Ok` when this kernel's kallsyms gives every fixture in `dir` what it
/// needs; else what is missing, fixture by fixture. Read once per process.
pub fn fixture_names_fit(dir: &Path) -> Result<(), String> {
    static FIT: OnceLock<Result<(), String>> = OnceLock::new();
    FIT.get_or_init(|| {
        let kallsyms = std::fs::read_to_string("/proc/kallsyms").map_err(|e| format!("/proc/kallsyms: {e}"))?;
        fixture_names_fit_in(dir, &kallsyms)
    })
    .clone()
}

/// What [`fixture_names_fit`] checks, over any kernel's kallsyms text.
pub fn fixture_names_fit_in(dir: &Path, kallsyms: &str) -> Result<(), String> {
    let mut addrs: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in kallsyms.lines() {
        let mut f = line.split_whitespace();
        if let (Some(addr), Some(_), Some(name)) = (f.next(), f.next(), f.next()) {
            let seen = addrs.entry(name).or_default();
            if !seen.contains(&addr) {
                seen.push(addr);
            }
        }
    }
    let mut sources: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    let mut misfits = Vec::new();
    for path in sources {
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for name in strong_typeless(&text) {
            let n = addrs.get(name).map_or(0, Vec::len);
            let (fits, needs) = match file.as_str() {
                "err_ambiguous.bpf.c" => (n >= 2, "at two or more addresses"),
                "err_strong_missing.bpf.c" => (n == 0, "absent"),
                _ => (n == 1, "at one address"),
            };
            if !fits {
                misfits.push(format!("{file} needs {name} {needs}, this kernel lists it at {n}"));
            }
        }
    }
    if misfits.is_empty() {
        Ok(())
    } else {
        Err(misfits.join("; "))
    }
}

/// The names of the strong typeless ksyms a fixture source declares.
fn strong_typeless(source: &str) -> impl Iterator<Item = &str> {
    source.lines().filter_map(|line| {
        let rest = line.split("extern const void ").nth(1)?;
        let (name, tail) = rest.split_once(' ')?;
        (tail.starts_with("__ksym") && !tail.contains("__weak")).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fixture_gets_what_it_needs() {
        let dir = std::env::temp_dir().join(format!("ksymrelo-fit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.bpf.c"),
            "extern const void one __ksym;\nextern const void w __ksym __weak;\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("err_ambiguous.bpf.c"),
            "#define EXTERN_DECL extern const void two __ksym\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("err_strong_missing.bpf.c"),
            "#define EXTERN_DECL extern const void none __ksym\n",
        )
        .unwrap();
        let good = "1 t one\n2 t two\n3 t two\n";
        assert_eq!(fixture_names_fit_in(&dir, good), Ok(()));
        let bad = "1 t one\n4 t one\n2 t two\n2 t two\n5 T none\n";
        let err = fixture_names_fit_in(&dir, bad).unwrap_err();
        assert!(
            err.contains("a.bpf.c needs one at one address, this kernel lists it at 2"),
            "{err}"
        );
        assert!(
            err.contains("needs two at two or more addresses, this kernel lists it at 1"),
            "{err}"
        );
        assert!(err.contains("needs none absent"), "{err}");
        assert!(!err.contains(" w "), "weak ones need nothing: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
