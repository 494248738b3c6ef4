//! The C ABI from C: tests/c/*.c compiled against ffi/include/ksymrelo.h and
//! linked through pkg-config (a ksymrelo.pc generated for this build), run
//! directly and under valgrind (no leaks, no invalid accesses).

use std::path::{Path, PathBuf};
use std::process::Command;

use ksymrelo_tests::{fixture, kernel_required, synth_module_dir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds libksymrelo (debug) and writes a ksymrelo.pc pointing at it;
/// returns the directory holding the .pc.
fn build_library() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "ksymrelo-ffi"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(status.success(), "building libksymrelo failed");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let libdir = tmp.parent().unwrap().join("debug");
    assert!(
        libdir.join("libksymrelo.so").exists(),
        "no libksymrelo.so in {}",
        libdir.display()
    );
    // Programs record the SONAME (ffi/build.rs); cargo makes no such file.
    let soname = libdir.join("libksymrelo.so.0");
    if std::fs::symlink_metadata(&soname).is_err() {
        std::os::unix::fs::symlink("libksymrelo.so", &soname).unwrap();
    }
    let pc = std::fs::read_to_string(repo().join("ffi/ksymrelo.pc.in"))
        .unwrap()
        .replace("@PREFIX@", repo().to_str().unwrap())
        .replace("@LIBDIR@", libdir.to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    let pcdir = tmp.join("pkgconfig");
    std::fs::create_dir_all(&pcdir).unwrap();
    std::fs::write(pcdir.join("ksymrelo.pc"), pc).unwrap();
    pcdir
}

/// Compiles one C program with `pkg-config --cflags --libs ksymrelo`.
fn compile(pcdir: &Path, source: &str, extra: &[&str]) -> PathBuf {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "ksymrelo"])
        .env("PKG_CONFIG_PATH", pcdir)
        .output()
        .expect("pkg-config");
    assert!(
        flags.status.success(),
        "pkg-config: {}",
        String::from_utf8_lossy(&flags.stderr)
    );
    let flags = String::from_utf8(flags.stdout).unwrap();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(source.trim_end_matches(".c"));
    let status = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-g", "-o"])
        .arg(&out)
        .arg(repo().join("tests/c").join(source))
        .args(flags.split_whitespace())
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "compiling {source}");
    out
}

fn bpf_usable() -> bool {
    match ksymrelo_std::load::bpf_available() {
        Ok(()) => true,
        Err(e) => {
            assert!(
                !kernel_required(),
                "bpf(2) unusable ({e}) but KSYMRELO_REQUIRE_KERNEL=1"
            );
            ksymrelo_tests::skip(format_args!("(kernel part of the C tests) bpf(2) not permitted: {e}"));
            false
        }
    }
}

fn command(wrapper: &[&str], program: &Path, args: &[&Path], run_kernel: bool) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args);
    // cargo test points LD_LIBRARY_PATH at its own target directories, which
    // would win over the rpath: run against the library the program was
    // linked with, as a user's program would.
    cmd.env_remove("LD_LIBRARY_PATH");
    if !run_kernel {
        cmd.env("KSYMRELO_C_NO_KERNEL", "1");
    }
    cmd
}

#[test]
fn c_programs_relocate_load_and_run() {
    if std::fs::metadata("/sys/kernel/btf/vmlinux").is_err() {
        assert!(!kernel_required());
        ksymrelo_tests::skip("no /sys/kernel/btf/vmlinux");
        return;
    }
    let Some((modules, _)) = synth_module_dir("ffi") else {
        return;
    };
    let pcdir = build_library();
    let test = compile(&pcdir, "ffi_test.c", &["-lelf"]);
    let example = compile(&pcdir, "readme_example.c", &[]);
    let fixtures = fixture("");
    let run_kernel = bpf_usable();

    let out = command(&[], &test, &[&fixtures, &modules.0], run_kernel)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffi_test failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");

    let out = command(&[], &example, &[], true)
        .arg(fixture("mixed.bpf.o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "readme example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fd_array has 0 entries"));
    let out = command(&[], &example, &[], true)
        .arg(fixture("err_strong_missing.bpf.o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ksymrelo_strong_missing"));

    // The whole suite again under valgrind.
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(!kernel_required(), "valgrind missing but KSYMRELO_REQUIRE_KERNEL=1");
        ksymrelo_tests::skip("(the valgrind run) valgrind not installed");
        return;
    }
    let valgrind = [
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--show-leak-kinds=definite,indirect",
        "--quiet",
    ];
    let out = command(&valgrind, &test, &[&fixtures, &modules.0], run_kernel)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ffi_test under valgrind (exit {:?}):\n{text}",
        out.status.code()
    );
    assert!(text.contains("all checks passed"), "{text}");
}

/// Gate of the C tests that relocate against the running kernel.
fn live(test: &str) -> bool {
    ksymrelo_tests::kernel_usable(test) && ksymrelo_tests::live_kernel_files(test)
}

/// Runs a compiled C program; panics with its output unless it succeeds.
fn run_ok(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} (exit {:?}):\n{text}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn c_loader_relocates_loads_and_runs_a_program() {
    if !live("c_loader_relocates_loads_and_runs_a_program") {
        return;
    }
    let pcdir = build_library();
    let program = compile(&pcdir, "load_and_run.c", &["-lelf"]);
    let pid = std::process::id().to_string();
    let text = run_ok(
        command(&[], &program, &[&fixture("mixed.bpf.o")], true)
            .args(["syscall", "9", &pid])
            .to_owned_cmd(),
        "load_and_run",
    );
    let word = |i: usize| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("ctx[{i}] = ")))
            .unwrap_or_else(|| panic!("no ctx[{i}] in {text}"));
        u64::from_str_radix(line.rsplit("0x").next().unwrap(), 16).unwrap_or(0)
    };
    assert!(text.contains("retval 0"), "{text}");
    assert_eq!(word(0), ksymrelo_tests::kallsyms_addr("vfs_read"), "{text}");
    assert_eq!(word(5), ksymrelo_tests::kallsyms_addr("bpf_prog_put"), "{text}");
    assert_eq!(word(6), 190, "the bpf_iter_num sum, {text}");
    assert_eq!(word(7), 1, "bpf_task_from_pid found this process, {text}");
}

#[test]
fn c_loader_prints_what_the_command_prints() {
    if !live("c_loader_prints_what_the_command_prints") {
        return;
    }
    let pcdir = build_library();
    let program = compile(&pcdir, "print_externs.c", &[]);
    let kernel = ksymrelo_std::Kernel::live();
    for fixture_name in ["mixed.bpf.o", "kfuncs.bpf.o", "weak_kfuncs.bpf.o", "typed.bpf.o"] {
        for (mode_name, mode) in [
            ("auto", ksymrelo_std::Mode::Auto),
            ("user", ksymrelo_std::Mode::User),
            ("kernel", ksymrelo_std::Mode::Kernel),
        ] {
            let obj = std::fs::read(fixture(fixture_name)).unwrap();
            let expected = ksymrelo_std::report::to_table(&ksymrelo_std::relocate_with(&obj, &kernel, mode).unwrap());
            let got = run_ok(
                command(&[], &program, &[&fixture(fixture_name)], true)
                    .arg(mode_name)
                    .to_owned_cmd(),
                "print_externs",
            );
            assert_eq!(got, expected, "{fixture_name} in {mode_name} mode");
        }
    }
    // A failure still names the extern and its reason (KSYMRELO_REASON_AMBIGUOUS).
    let out = command(&[], &program, &[&fixture("err_ambiguous.bpf.o")], true)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("resolution is ambiguous") && err.contains("(extern init_once, reason 2)"),
        "{err}"
    );
}

#[test]
fn one_handle_serves_many_c_threads() {
    if !live("one_handle_serves_many_c_threads") {
        return;
    }
    let pcdir = build_library();
    let program = compile(&pcdir, "threads_test.c", &["-pthread"]);
    let objects: Vec<PathBuf> = [
        "mixed.bpf.o",
        "kfuncs.bpf.o",
        "typeless.bpf.o",
        "typed.bpf.o",
        "many_100.bpf.o",
    ]
    .iter()
    .map(|f| fixture(f))
    .collect();
    let objects: Vec<&Path> = objects.iter().map(PathBuf::as_path).collect();
    let text = run_ok(
        command(&[], &program, &[], true)
            .args(["8", "100"])
            .args(&objects)
            .to_owned_cmd(),
        "threads_test",
    );
    assert!(text.contains("threads ok: 8 threads x 100 relocations"), "{text}");
}

#[test]
fn c_options_and_results_behave_as_the_header_says() {
    if !live("c_options_and_results_behave_as_the_header_says") {
        return;
    }
    let pcdir = build_library();
    let program = compile(&pcdir, "opts_test.c", &[]);
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("opts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let text = run_ok(
        command(&[], &program, &[&fixture(""), &tmp], true).to_owned_cmd(),
        "opts_test",
    );
    assert!(text.contains("all checks passed"), "{text}");
    // And under valgrind: no leak, no invalid access.
    if Command::new("valgrind").arg("--version").output().is_ok() {
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let valgrind = [
            "valgrind",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--quiet",
        ];
        let text = run_ok(
            command(&valgrind, &program, &[&fixture(""), &tmp], true).to_owned_cmd(),
            "opts_test under valgrind",
        );
        assert!(text.contains("all checks passed"), "{text}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn c_generates_and_runs_light_skeleton_loaders() {
    if !live("c_generates_and_runs_light_skeleton_loaders") {
        return;
    }
    let pcdir = build_library();
    let program = compile(&pcdir, "gen_test.c", &[]);
    let text = run_ok(command(&[], &program, &[&fixture("")], true).to_owned_cmd(), "gen_test");
    assert!(text.contains("gen: all checks passed"), "{text}");
}

/// `Command` builders hand out `&mut Command`; the runner takes it whole.
trait ToOwnedCmd {
    fn to_owned_cmd(&mut self) -> Command;
}

impl ToOwnedCmd for Command {
    fn to_owned_cmd(&mut self) -> Command {
        std::mem::replace(self, Command::new("true"))
    }
}

/// Writes the BTF files of `many_sites.c` into `dir`: the object's (`n`
/// `int lin_NNNNNN` in `.ksyms`, and `lin_strong_missing`) and a vmlinux
/// with every seventh of them.
fn many_sites_btf(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    use ksymrelo_core::btf::Kind;
    use ksymrelo_tests::BtfWriter;
    const EXTERN: u32 = 2;
    const GLOBAL: u32 = 1;
    let int_encoding = [(1 << 24) | 32]; // signed, 32 bits
    let mut obj = BtfWriter::base();
    let int = obj.add("int", Kind::Int, 0, 4, &int_encoding);
    let names = (0..n)
        .map(|i| format!("lin_{i:06}"))
        .chain(["lin_strong_missing".to_owned()]);
    let vars: Vec<u32> = names.map(|name| obj.add(&name, Kind::Var, 0, int, &[EXTERN])).collect();
    // A DATASEC's vlen is 16 bits: as many `.ksyms` as it takes.
    for chunk in vars.chunks(0xffff) {
        let members: Vec<u32> = chunk.iter().flat_map(|&v| [v, 0, 4]).collect();
        obj.add(".ksyms", Kind::Datasec, chunk.len() as u32, 0, &members);
    }
    let mut vmlinux = BtfWriter::base();
    let int = vmlinux.add("int", Kind::Int, 0, 4, &int_encoding);
    for i in (0..n).step_by(7) {
        vmlinux.add(&format!("lin_{i:06}"), Kind::Var, 0, int, &[GLOBAL]);
    }
    let (obj_path, vmlinux_path) = (dir.join("obj.btf"), dir.join("vmlinux"));
    std::fs::write(&obj_path, obj.finish()).unwrap();
    std::fs::write(&vmlinux_path, vmlinux.finish()).unwrap();
    (obj_path, vmlinux_path)
}

/// 10^5 distinct externs through `ksymrelo_relocate_insns` from C: each
/// site's extern is found by hash, so the call takes well under a second
/// (printed, not asserted: the machine is shared). A failing call leaves
/// the instructions byte-identical. `KSYMRELO_MANY_SITES=4000,16000`
/// measures other counts.
#[test]
fn c_relocates_a_hundred_thousand_distinct_sites() {
    let pcdir = build_library();
    let program = compile(&pcdir, "many_sites.c", &[]);
    let counts = std::env::var("KSYMRELO_MANY_SITES").unwrap_or_else(|_| "100000".into());
    for n in counts
        .split(',')
        .map(|n| n.trim().parse::<usize>().expect("KSYMRELO_MANY_SITES"))
    {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("many-sites-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (obj, vmlinux) = many_sites_btf(&dir, n);
        let text = run_ok(
            command(&[], &program, &[&obj, &vmlinux, Path::new(&n.to_string())], false).to_owned_cmd(),
            "many_sites",
        );
        eprint!("{text}");
        assert!(text.contains("many sites: all checks passed"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
