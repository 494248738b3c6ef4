//! `ffi/install.sh` as a packager runs it: a DESTDIR install of the release
//! library, checked file by file (SONAME, symlinks, no debug info, a .pc
//! without source-tree paths), then `tests/c/readme_example.c` compiled
//! through the installed ksymrelo.pc alone — dynamically and, with
//! `pkg-config --static`, against libksymrelo.a — and run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ksymrelo_tests::{fixture, kernel_usable, live_kernel_files};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A fresh, empty directory under the test's tmpdir.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs ffi/install.sh with `args` (and the environment in `env`).
fn install(args: &[&str], env: &[(&str, &Path)]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("ffi/install.sh"))
        .args(args)
        .env("CARGO", cargo)
        .env_remove("DESTDIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "install.sh {args:?} failed:\n{}", text(&out));
}

/// `readelf` with `args` on `file`.
fn readelf(args: &[&str], file: &Path) -> String {
    let out = Command::new("readelf").args(args).arg(file).output().expect("readelf");
    assert!(
        out.status.success(),
        "readelf {args:?} {}: {}",
        file.display(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_target(link: &Path) -> String {
    std::fs::read_link(link)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", link.display()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The installed pc's flags, as seen from outside the DESTDIR staging.
fn pkg_config(destdir: &Path, pcdir: &Path, args: &[&str]) -> String {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("ksymrelo")
        .env("PKG_CONFIG_PATH", pcdir)
        .env_remove("PKG_CONFIG_LIBDIR")
        .env("PKG_CONFIG_SYSROOT_DIR", destdir)
        .output()
        .expect("pkg-config");
    assert!(out.status.success(), "pkg-config {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn gcc(out: &Path, flags: &str) {
    let status = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-o"])
        .arg(out)
        .arg(repo().join("tests/c/readme_example.c"))
        .args(flags.split_whitespace())
        .status()
        .unwrap();
    assert!(status.success(), "gcc readme_example.c {flags}");
}

fn needed(binary: &Path) -> Vec<String> {
    readelf(&["-d"], binary)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// Runs the example on typeless.bpf.o; `libdir` is LD_LIBRARY_PATH or none.
fn run_example(binary: &Path, libdir: Option<&Path>) {
    let mut cmd = Command::new(binary);
    cmd.arg(fixture("typeless.bpf.o")).env_remove("LD_LIBRARY_PATH");
    if let Some(dir) = libdir {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}: {}", binary.display(), text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("relocated "),
        "{}",
        text(&out)
    );
}

#[test]
fn destdir_install_is_complete_stripped_and_links_through_pkg_config() {
    let version = env!("CARGO_PKG_VERSION");
    let destdir = fresh_dir("install-destdir");
    // Builds `cargo build --release -p ksymrelo-ffi` itself.
    install(&["--prefix", "/usr", "--destdir", destdir.to_str().unwrap()], &[]);

    let lib = destdir.join("usr/lib");
    let real = format!("libksymrelo.so.{version}");
    assert!(lib.join(&real).is_file(), "no {real}");
    assert_eq!(link_target(&lib.join("libksymrelo.so.0")), real);
    assert_eq!(link_target(&lib.join("libksymrelo.so")), "libksymrelo.so.0");
    assert!(lib.join("libksymrelo.a").is_file());
    let header = std::fs::read(destdir.join("usr/include/ksymrelo.h")).unwrap();
    assert_eq!(header, std::fs::read(repo().join("ffi/include/ksymrelo.h")).unwrap());

    let so = lib.join(&real);
    assert!(
        readelf(&["-d"], &so).contains("Library soname: [libksymrelo.so.0]"),
        "SONAME of {}",
        so.display()
    );
    for file in [&so, &lib.join("libksymrelo.a")] {
        let sections = readelf(&["-W", "-S"], file);
        assert!(!sections.contains(".debug_info"), "{} keeps debug info", file.display());
    }
    assert!(
        readelf(&["--dyn-syms", "-W"], &so).contains("ksymrelo_relocate_object"),
        "stripping lost the exported symbols"
    );
    for name in ["libksymrelo.so", "libksymrelo.a"] {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let built = target.parent().unwrap().join("release").join(name);
        let installed = if name.ends_with(".so") {
            so.clone()
        } else {
            lib.join(name)
        };
        eprintln!(
            "{name}: {} bytes built, {} installed",
            std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0),
            std::fs::metadata(&installed).unwrap().len()
        );
    }

    let pcdir = lib.join("pkgconfig");
    let pc = std::fs::read_to_string(pcdir.join("ksymrelo.pc")).unwrap();
    let repo_path = repo();
    let repo_path = repo_path.to_str().unwrap();
    assert!(!pc.contains(repo_path), "source tree path in the installed pc:\n{pc}");
    assert!(!pc.contains("rpath"), "rpath in the installed pc:\n{pc}");
    assert!(pc.contains("\nLibs: -L${libdir} -lksymrelo\n"), "{pc}");
    assert!(pc.contains("\nLibs.private: "), "{pc}");
    assert!(pc.contains("linux/bpf.h"), "{pc}");
    assert_eq!(pkg_config(&destdir, &pcdir, &["--modversion"]), version);

    let work = fresh_dir("install-programs");
    let run = live_kernel_files("install: run the example") && kernel_usable("install: run the example");

    // Dynamic: the flags of `pkg-config --cflags --libs ksymrelo` alone.
    let flags = pkg_config(&destdir, &pcdir, &["--cflags", "--libs"]);
    assert!(
        flags.contains(&format!("-I{}", destdir.join("usr/include").display())),
        "{flags}"
    );
    assert!(flags.contains(&format!("-L{}", lib.display())), "{flags}");
    let dynamic = work.join("readme_example_dynamic");
    gcc(&dynamic, &flags);
    let deps = needed(&dynamic);
    assert!(deps.iter().any(|d| d == "libksymrelo.so.0"), "NEEDED {deps:?}");
    assert!(!readelf(&["-d"], &dynamic).contains("RUNPATH"), "rpath in the program");

    // Static: `pkg-config --static` adds Libs.private; the archive is asked
    // for by name since the .so beside it would win for -lksymrelo.
    let flags = pkg_config(&destdir, &pcdir, &["--static", "--cflags", "--libs"]);
    assert!(flags.contains("-lgcc_s"), "{flags}");
    let flags = flags
        .split_whitespace()
        .map(|f| if f == "-lksymrelo" { "-l:libksymrelo.a" } else { f })
        .collect::<Vec<_>>()
        .join(" ");
    let static_ = work.join("readme_example_static");
    gcc(&static_, &flags);
    let deps = needed(&static_);
    assert!(!deps.iter().any(|d| d.starts_with("libksymrelo")), "NEEDED {deps:?}");

    if run {
        run_example(&dynamic, Some(&lib));
        run_example(&static_, None);
    } else {
        // Still check the dynamic program finds the library: it starts, and
        // fails only at the kernel.
        let out = Command::new("ldd")
            .arg(&dynamic)
            .env("LD_LIBRARY_PATH", &lib)
            .output()
            .unwrap();
        assert!(!text(&out).contains("not found"), "{}", text(&out));
    }
}

#[test]
fn destdir_from_environment_and_custom_libdir() {
    // Needs a release build; the other test (or a previous run) made it, but
    // tests run in parallel, so build here too (a no-op when fresh).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "--release", "-p", "ksymrelo-ffi"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(status.success());
    let destdir = fresh_dir("install-env-destdir");
    install(
        &[
            "--no-build",
            "--prefix",
            "/opt/ksymrelo",
            "--libdir",
            "/opt/ksymrelo/lib64",
        ],
        &[("DESTDIR", &destdir)],
    );
    let lib = destdir.join("opt/ksymrelo/lib64");
    assert!(lib.join("libksymrelo.a").is_file());
    assert_eq!(link_target(&lib.join("libksymrelo.so")), "libksymrelo.so.0");
    assert!(destdir.join("opt/ksymrelo/include/ksymrelo.h").is_file());
    let pcdir = lib.join("pkgconfig");
    let pc = std::fs::read_to_string(pcdir.join("ksymrelo.pc")).unwrap();
    assert!(pc.contains("\nprefix=/opt/ksymrelo\n"), "{pc}");
    assert!(pc.contains("\nlibdir=${exec_prefix}/lib64\n"), "{pc}");
    assert_eq!(
        pkg_config(&destdir, &pcdir, &["--variable=libdir"]),
        lib.to_str().unwrap()
    );
}
