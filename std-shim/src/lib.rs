//! # ksymrelo-std
//!
//! Everything of ksymrelo that touches the operating system: the kernel's BTF
//! (vmlinux and modules) and kallsyms, live or from saved files, `bpf(2)`,
//! program loading — around the allocation-free core
//! ([`ksymrelo_core`]). All `unsafe` lives in one crate-private module,
//! `sys`.
//!
//! ```no_run
//! let obj = std::fs::read("prog.bpf.o")?;
//! let relocation = ksymrelo_std::relocate(&obj, &ksymrelo_std::Kernel::live())?;
//! print!("{}", ksymrelo_std::report::to_table(&relocation));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

pub mod btf_facts;
pub mod check;
pub mod error;
mod explain;
pub mod generate;
pub mod inkernel;
pub mod kallsyms_record;
pub mod kernel;
pub mod load;
pub mod loader_file;
pub mod loader_header;
pub mod modes;
pub mod relocate;
pub mod report;
pub mod run_dir;
pub mod skel;
// The one module with `unsafe`: every block there has a `// SAFETY:` line.
#[allow(unsafe_code)]
pub(crate) mod sys;

pub use error::{Error, Reason, Result};
pub use kernel::{Kernel, KernelStats};
pub use modes::Mode;
pub use relocate::{
    list_externs, relocate, relocate_in_place, relocate_in_place_if, relocate_in_place_with, relocate_insns,
    relocate_insns_if, relocate_insns_with, relocate_with, ExternReport, InsnRelocation, InsnSite, RelocatedSection,
    Relocation,
};
