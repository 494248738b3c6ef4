//! The `ksymrelo` command: shows how an object's ksyms resolve on a kernel
//! (the running one, or saved BTF and kallsyms), and the relocated
//! instructions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ksymrelo_std::{relocate_with, report, Kernel, Mode};

#[derive(Parser)]
#[command(
    name = "ksymrelo",
    version,
    about = "Resolve and patch the __ksym externs of eBPF objects, as libbpf does"
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
        /// user: as libbpf, from kernel BTF and /proc/kallsyms; kernel: with
        /// an in-kernel loader program (no file read, no type checks); auto:
        /// typeless ksyms in the kernel, BTF ones in user space.
        #[arg(long, default_value = "auto")]
        mode: Mode,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Resolve {
            object,
            btf,
            kallsyms,
            json,
            mode,
        } => {
            let data = match std::fs::read(&object) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("ksymrelo: reading {}: {e}", object.display());
                    return ExitCode::FAILURE;
                }
            };
            let offline = btf.is_some() || kallsyms.is_some();
            // Saved files describe another kernel: the running one's loader
            // would answer for the wrong kernel.
            let mode = if offline { Mode::User } else { mode };
            let kernel = Kernel::from_files(btf.as_deref(), kallsyms.as_deref());
            match relocate_with(&data, &kernel, mode) {
                Ok(r) => {
                    if json {
                        println!("{}", report::to_json(&r));
                    } else {
                        print!("{}", report::to_table(&r));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ksymrelo: {}: {e}", object.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
