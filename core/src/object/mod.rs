//! A BPF object: its executable sections, its `.BTF`, the extern table and
//! the relocation sites that refer to externs — all borrowed from the ELF
//! bytes.

mod externs;
mod sites;

pub use externs::{describe, describe_all, essential_name, order, Extern, ExternKind};
pub use sites::{NotASite, Site, SiteKind};

use crate::btf::Btf;
use crate::elf::{Elf, Section};
use crate::error::{Error, Result};
use crate::insn::{self, Insn};

/// A parsed BPF object file.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    elf: Elf<'a>,
    btf_data: Option<&'a [u8]>,
}

impl<'a> Object<'a> {
    /// Parses the ELF structure and finds `.BTF`.
    pub fn parse(data: &'a [u8]) -> Result<Object<'a>> {
        let elf = Elf::parse(data)?;
        let btf_data = match elf.section_by_name(b".BTF")? {
            Some(s) => Some(elf.data_of(&s)?),
            None => None,
        };
        Ok(Object { elf, btf_data })
    }

    /// The ELF reader underneath.
    pub fn elf(&self) -> &Elf<'a> {
        &self.elf
    }

    /// The raw `.BTF` section, if any.
    pub fn btf_data(&self) -> Option<&'a [u8]> {
        self.btf_data
    }

    /// Parses `.BTF` (an error if there is none).
    pub fn btf(&self) -> Result<Btf<'a>> {
        Btf::parse(self.btf_data.ok_or(Error::NoObjectBtf)?)
    }

    /// The sections that hold instructions, in index order.
    pub fn exec_sections(&self) -> impl Iterator<Item = Result<Section<'a>>> + '_ {
        self.elf.sections().filter(|s| !matches!(s, Ok(s) if !s.is_exec()))
    }

    /// The instructions of an executable section.
    pub fn insns(&self, section: &Section<'a>) -> Result<&'a [Insn]> {
        insn::insns(self.elf.data_of(section)?)
    }

    /// Collects the extern table into `out`, in libbpf's extern order (so
    /// that `out[i].index == i`), and returns the filled part. `btf` is this
    /// object's [`Object::btf`].
    pub fn externs<'o>(&self, btf: &Btf<'a>, out: &'o mut [Extern<'a>]) -> Result<&'o mut [Extern<'a>]> {
        externs::collect(&self.elf, btf, out)
    }

    /// Collects every relocation site against an extern of `externs` (the
    /// table from [`Object::externs`]) into `out` and returns the filled part,
    /// in section and relocation order.
    pub fn sites<'o>(&self, externs: &[Extern<'a>], out: &'o mut [Site]) -> Result<&'o mut [Site]> {
        sites::collect(&self.elf, externs, out)
    }

    /// Counts the externs without storing them, to size storage.
    pub fn extern_count(&self) -> usize {
        externs::candidates(&self.elf).count()
    }

    /// Counts relocations in executable sections, an upper bound on sites.
    pub fn max_site_count(&self) -> Result<usize> {
        sites::max_count(&self.elf)
    }
}

#[cfg(test)]
mod tests;
