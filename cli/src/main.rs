//! The `ksymrelo` command: shows how an object's ksyms resolve on a kernel
//! (the running one, or saved BTF and kallsyms), and the relocated
//! instructions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ksymrelo_std::{relocate_with, report, Kernel, Mode, Reason};

#[derive(Parser)]
#[command(
    name = "ksymrelo",
    version,
    about = "Resolve and patch the __ksym externs of eBPF objects, as libbpf does",
    after_help = "Exit status: 0 resolved; 1 the object does not resolve on this kernel (a strong extern \
                  missing, ambiguous or of another type); 2 usage; 3 bad input (the object is malformed, \
                  or unreadable); 4 kernel facts cannot be read (BTF, kallsyms hidden, bpf(2) refused)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve every ksym of OBJECT and patch its instructions.
    Resolve {
        /// A BPF ELF object (clang -target bpf).
        object: PathBuf,
        /// vmlinux BTF file, or a directory laid out like /sys/kernel/btf
        /// (vmlinux + module files). Default: the running kernel.
        #[arg(long)]
        btf: Option<PathBuf>,
        /// A saved /proc/kallsyms. Default: the running kernel's (with --btf:
        /// none, so typeless ksyms need it).
        #[arg(long)]
        kallsyms: Option<PathBuf>,
        /// Print one JSON document: externs, fd_array and every executable
        /// section's relocated instructions.
        #[arg(long)]
        json: bool,
        /// auto (default): libbpf's result, fast (BTF ksyms in user space,
        /// typeless ones from the per-boot kallsyms record); user: as libbpf,
        /// from kernel BTF and /proc/kallsyms read each time;
        /// kernel: everything looked up by the kernel, as libbpf's
        /// gen_loader (no file read, no type checks, no ambiguity check).
        /// With --btf/--kallsyms only user applies.
        #[arg(long)]
        mode: Option<Mode>,
        /// Where the per-boot kallsyms record is kept (libbpf's answer for
        /// every kallsyms name, ambiguous ones included), so that the
        /// default mode gives libbpf's result without reading /proc/kallsyms
        /// each run.
        #[arg(long, default_value = ksymrelo_std::kallsyms_record::DEFAULT_PATH)]
        kallsyms_record: PathBuf,
        /// Keep no kallsyms record file (build it in memory when needed).
        #[arg(long)]
        no_kallsyms_record: bool,
        /// Where the per-boot vmlinux BTF facts are kept (the type offsets
        /// and the first id of every FUNC and VAR name), so that a run
        /// answers its BTF lookups without walking vmlinux BTF.
        #[arg(long, default_value = ksymrelo_std::btf_facts::DEFAULT_PATH)]
        btf_facts: PathBuf,
        /// Read and keep no vmlinux BTF facts file (walk vmlinux BTF).
        #[arg(long)]
        no_btf_facts: bool,
    },
    /// Generate a light-skeleton loader for OBJECT: a BPF_PROG_TYPE_SYSCALL
    /// program that loads the object's BTF, creates its maps, resolves its
    /// ksyms and loads its programs inside the kernel (libbpf's gen_loader
    /// way).
    Gen(GenArgs),
    /// Run a loader `ksymrelo gen -o FILE` wrote: every map and program of
    /// its object created inside this kernel, extern types checked first.
    Run {
        /// A file `ksymrelo gen -o` wrote.
        file: PathBuf,
        /// Print one JSON document: maps, programs (with the instructions
        /// the kernel received) and externs.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keyring: KeyringArg,
    },
    /// Check on which of many saved kernels every ksym of OBJECT resolves.
    #[command(after_help = CHECK_HELP)]
    Check {
        /// A BPF ELF object (clang -target bpf).
        object: PathBuf,
        /// A directory with one subdirectory per kernel (layout below).
        #[arg(long, value_name = "DIR")]
        kernels: PathBuf,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
}

const CHECK_HELP: &str = "\
Layout of --kernels DIR: one subdirectory per kernel, named as the kernel is
to be shown (sorted by name; hidden ones and plain files are ignored), with
either
  btf/        laid out like /sys/kernel/btf: btf/vmlinux, plus one split BTF
              file per module (named after the module), or
  vmlinux     the vmlinux BTF file, module BTF files beside it (every other
              file but kallsyms);
and optionally
  kallsyms    a saved /proc/kallsyms (saved as root: real addresses).
btf/ wins when both exist. Each kernel is resolved as libbpf does from files
(--mode user), and every extern gets an outcome, not only the first failing:
  ok                 resolved
  missing            a strong extern the kernel lacks
  incompatible       the kernel's type or prototype differs
  ambiguous          kallsyms lists the name at two addresses
  weak-missing       a __weak extern the kernel lacks: left 0 (bpf_ksym_exists()
                     is false), calls to a weak kfunc poisoned; loads
  weak-incompatible  a __weak kfunc of another prototype: treated as missing
  no kallsyms        a typeless ksym, but no (usable) kallsyms file: unchecked
LOADS HERE is yes when every extern is ok, weak-missing or weak-incompatible:
a kernel with an unchecked extern does not count.

--json prints {\"externs\": [names], \"kernels\": [{\"kernel\", \"loads\", \"error\",
\"externs\": {name: outcome}, \"detail\": {name: {kind, weak, btf_id, addr,
module, message}}}]}.

Exit status: 0 the object loads on every kernel; 1 not on some; 2 usage (DIR
has no kernel); 3 bad input (the object, or a malformed BTF file); 4 a kernel's
facts cannot be read (DIR, a subdirectory without btf/ or vmlinux, a file).";

/// Writes to stdout; a reader that went away (`| head`) is no error.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// The exit status for a failure (see `--help`).
fn exit_code(reason: Reason) -> u8 {
    match reason {
        Reason::None => 0,
        Reason::NotFound | Reason::Ambiguous | Reason::Incompatible => 1,
        Reason::Usage => 2,
        Reason::BadObject | Reason::Capacity => 3,
        Reason::KernelFacts | Reason::AddressesHidden => 4,
    }
}

/// `ksymrelo check`.
fn check(object: &std::path::Path, kernels: &std::path::Path, json: bool) -> ExitCode {
    use ksymrelo_std::check;
    let data = match std::fs::read(object) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ksymrelo: reading {}: {e}", object.display());
            return ExitCode::from(3);
        }
    };
    let names: Vec<String> = match ksymrelo_std::list_externs(&data) {
        Ok(externs) => externs
            .into_iter()
            .filter(|e| e.kind.is_ksym())
            .map(|e| e.name)
            .collect(),
        Err(e) => {
            eprintln!("ksymrelo: {}: {e}", object.display());
            return ExitCode::from(exit_code(e.reason()));
        }
    };
    let dirs = match check::KernelDir::list(kernels) {
        Ok(d) if d.is_empty() => {
            eprintln!("ksymrelo: {}: no kernel subdirectory (see --help)", kernels.display());
            return ExitCode::from(2);
        }
        Ok(d) => d,
        Err(e) => {
            eprintln!("ksymrelo: {e}");
            return ExitCode::from(exit_code(e.reason()));
        }
    };
    let checks = match check::check_kernels(&data, &dirs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ksymrelo: {}: {e}", object.display());
            return ExitCode::from(exit_code(e.reason()));
        }
    };
    if json {
        emit(&format!("{}\n", check::to_json(&names, &checks)));
    } else {
        emit(&check::to_table(&names, &checks));
    }
    let mut status = 0;
    for k in &checks {
        let code = match &k.error {
            Some(e) => {
                eprintln!("ksymrelo: kernel {}: {e}", k.kernel);
                exit_code(e.reason())
            }
            None => u8::from(!k.loads()),
        };
        status = status.max(code);
    }
    ExitCode::from(status)
}

/// Prints a failure (as JSON too with `json`) and gives its exit status.
fn fail(what: &std::path::Path, e: &ksymrelo_std::Error, json: bool) -> ExitCode {
    if json {
        emit(&format!("{}\n", report::error_json(e, &[])));
    }
    eprintln!("ksymrelo: {}: {e}", what.display());
    ExitCode::from(exit_code(e.reason()))
}

/// The keyring a signed loader's signature is checked with.
#[derive(clap::Args, Clone, Copy, Debug)]
struct KeyringArg {
    /// Keyring that verifies a signed loader: a key serial (`keyctl
    /// show`), a special id such as -4 (the user keyring), or 0 for the
    /// kernel's built-in trusted keys.
    #[arg(
        long = "keyring-id",
        value_name = "ID",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keyring_id: i32,
}

impl KeyringArg {
    fn skel_options(self) -> ksymrelo_std::skel::SkelOptions {
        ksymrelo_std::skel::SkelOptions {
            keyring_id: self.keyring_id,
            ..Default::default()
        }
    }
}

/// What `ksymrelo gen` is asked.
#[derive(clap::Args, Debug)]
struct GenArgs {
    /// A BPF ELF object (clang -target bpf).
    object: PathBuf,
    /// Write the loader to FILE, to run later with `ksymrelo run FILE`;
    /// FILE ending in .h: a self-contained C header (NAME__load,
    /// NAME__close, NAME__failure; NAME from FILE's name).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run the loader now, on this kernel.
    #[arg(long)]
    run: bool,
    /// With --run: print one JSON document.
    #[arg(long)]
    json: bool,
    /// Seal the loader to its data (Linux 6.18): the data goes into a
    /// map exclusive to the loader, and the loader refuses data whose
    /// SHA-256 is not the one it was generated with.
    #[arg(long)]
    sealed: bool,
    /// Sign the loader (sealed, then): a detached PKCS#7 signature of its
    /// instructions with KEY (unencrypted RSA or ECDSA private key, PEM or
    /// DER, mode 600), which the kernel checks at load (Linux 6.18).
    #[arg(long, value_name = "KEY", requires = "cert")]
    sign: Option<PathBuf>,
    /// The X.509 certificate of --sign's key (PEM or DER).
    #[arg(long, value_name = "CERT", requires = "sign")]
    cert: Option<PathBuf>,
    #[command(flatten)]
    keyring: KeyringArg,
}

/// `ksymrelo gen`.
fn gen(args: &GenArgs) -> ExitCode {
    let (object, output, run, json) = (args.object.as_path(), args.output.as_deref(), args.run, args.json);
    use ksymrelo_std::generate;
    let data = match std::fs::read(object) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ksymrelo: reading {}: {e}", object.display());
            return ExitCode::from(3);
        }
    };
    let opts = generate::GenerateOptions {
        sealed: args.sealed || args.sign.is_some(),
    };
    let signed = |mut file| -> ksymrelo_std::Result<_> {
        if let (Some(key), Some(cert)) = (&args.sign, &args.cert) {
            let key = ksymrelo_cli::sign::SigningKey::from_files(key, cert)?;
            ksymrelo_cli::sign_loader(&mut file, &key)?;
        }
        Ok(file)
    };
    let file = match generate::generate(&data, &object.to_string_lossy(), &opts).and_then(signed) {
        Ok(f) => f,
        Err(e) => return fail(object, &e, json),
    };
    if let Some(output) = output {
        // NAME.h: a C header; anything else: a loader file for `ksymrelo run`.
        let bytes = if output.extension().is_some_and(|e| e == "h") {
            let stem = output.file_stem().unwrap_or_default().to_string_lossy();
            let name = ksymrelo_std::loader_header::c_identifier(&stem);
            generate::extern_names(&data).map(|externs| {
                ksymrelo_std::loader_header::header(&file, &name, &object.to_string_lossy(), &externs).into_bytes()
            })
        } else {
            file.to_bytes()
        };
        let written = bytes.and_then(|bytes| {
            std::fs::write(output, bytes)
                .map_err(|e| ksymrelo_std::Error::io(format!("writing {}", output.display()), e))
        });
        if let Err(e) = written {
            return fail(object, &e, json);
        }
    } else if !run {
        eprintln!("ksymrelo: gen: say where the loader goes (-o FILE), or --run it");
        return ExitCode::from(2);
    }
    if run {
        return run_file(object, &file, json, args.keyring);
    }
    ExitCode::SUCCESS
}

/// Runs a generated loader (`ksymrelo run`, `ksymrelo gen --run`).
fn run_file(
    what: &std::path::Path,
    file: &ksymrelo_std::loader_file::LoaderFile,
    json: bool,
    keyring: KeyringArg,
) -> ExitCode {
    use ksymrelo_std::generate;
    let kernel = Kernel::live();
    let preflight = match generate::preflight(&file.object, &kernel) {
        Ok(p) => p,
        Err(e) => return fail(what, &e, json),
    };
    if let Some(note) = &preflight.note {
        eprintln!("ksymrelo: {}: {note}", what.display());
    }
    match generate::run(file, &keyring.skel_options()) {
        Ok(ran) => {
            if json {
                emit(&format!(
                    "{}\n",
                    report::ran_json(&ran, file, preflight.relocation.as_ref())
                ));
            } else {
                emit(&report::ran_table(&ran, file));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(what, &e, json),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gen(args) => gen(&args),
        Command::Run { file, json, keyring } => {
            let loaded = std::fs::read(&file)
                .map_err(|e| ksymrelo_std::Error::io(format!("reading {}", file.display()), e))
                .and_then(|bytes| ksymrelo_std::loader_file::LoaderFile::from_bytes(&bytes));
            match loaded {
                Ok(f) => run_file(&file, &f, json, keyring),
                Err(e) => fail(&file, &e, json),
            }
        }
        Command::Check { object, kernels, json } => check(&object, &kernels, json),
        Command::Resolve {
            object,
            btf,
            kallsyms,
            json,
            mode,
            kallsyms_record,
            no_kallsyms_record,
            btf_facts,
            no_btf_facts,
        } => {
            let data = match std::fs::read(&object) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("ksymrelo: reading {}: {e}", object.display());
                    return ExitCode::from(3);
                }
            };
            let offline = btf.is_some() || kallsyms.is_some();
            // Saved files describe another kernel: the running one's lookups
            // would answer for the wrong kernel.
            let mode = match (mode, offline) {
                (Some(Mode::Kernel), true) => {
                    eprintln!(
                        "ksymrelo: --mode kernel asks the running kernel; with --btf/--kallsyms only --mode user applies"
                    );
                    return ExitCode::from(2);
                }
                (_, true) => Mode::User,
                (mode, false) => mode.unwrap_or_default(),
            };
            let mut kernel = Kernel::from_files(btf.as_deref(), kallsyms.as_deref());
            if !offline && !no_kallsyms_record {
                kernel = kernel.with_kallsyms_record(kallsyms_record);
            }
            kernel = match (offline, no_btf_facts) {
                (false, false) => kernel.with_btf_facts(btf_facts),
                _ => kernel.without_btf_facts(),
            };
            match relocate_with(&data, &kernel, mode) {
                Ok(r) => {
                    if json {
                        {
                            let mut text = String::with_capacity(64 * 1024);
                            report::write_json(&r, &mut text);
                            text.push('\n');
                            emit(&text);
                        }
                    } else {
                        emit(&report::to_table(&r));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    if json {
                        let externs = ksymrelo_std::list_externs(&data).unwrap_or_default();
                        emit(&format!("{}\n", report::error_json(&e, &externs)));
                    }
                    eprintln!("ksymrelo: {}: {e}", object.display());
                    ExitCode::from(exit_code(e.reason()))
                }
            }
        }
    }
}
