//! # ksymrelo-core
//!
//! Resolves the kernel-symbol externs (`extern ... __ksym`) of eBPF objects and
//! patches their instructions bit-identically to libbpf — without `std`,
//! without allocation and without `unsafe`. Everything works on borrowed
//! slices; every output goes into a buffer the caller provides.
//!
//! The pipeline, in the order data flows through it:
//!
//! 1. [`insn`] — `struct bpf_insn` and zero-copy views of instruction bytes.
//! 2. [`btf`] — the BTF reader (vmlinux, module split BTF, object `.BTF`),
//!    libbpf's type-compatibility rules, and types spelled as C for messages.
//! 3. [`elf`] — a bounds-checked ELF64 little-endian reader.
//! 4. [`object`] — an object view: the extern table and the relocation sites.
//! 5. [`kallsyms`] — a streaming, batched matcher over `/proc/kallsyms` text.
//! 6. [`resolve`] — externs against kernel BTF and kallsyms results.
//! 7. [`lookup`] — the in-kernel resolver: a tiny program that answers name
//!    lookups (`bpf_kallsyms_lookup_name`, `bpf_btf_find_by_name_kind`)
//!    inside the kernel, one more source of [`resolve::Resolution`]s.
//! 8. [`patch`] — writes the resolutions into the instructions, all or nothing.
//! 9. [`gen`] — emits a light-skeleton loader that patches a program inside
//!    the kernel instead (libbpf's gen_loader way).
//!
//! [`asm`] is the small assembler both emitters write with; [`bpf`] holds
//! the BPF numbers (opcodes, pseudo `src_reg`s, helper ids), declared once.
//!
//! [`error::Error`] is the one error type; [`index`] the typed indices
//! (section, instruction, extern, BTF id).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod asm;
pub mod bpf;
pub mod btf;
pub mod elf;
pub mod error;
pub mod gen;
pub mod index;
pub mod insn;
pub mod kallsyms;
pub mod link;
pub mod lookup;
pub mod object;
pub mod patch;
mod read;
pub mod resolve;

pub use error::{Error, Result};
pub use insn::Insn;
