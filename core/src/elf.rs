//! A bounds-checked reader for 64-bit little-endian relocatable ELF files, as
//! clang emits for `-target bpf`. Only what ksym relocation needs: section
//! headers and names, the symbol table, and `SHT_REL` sections.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, Result};
use crate::index::SectionIndex;
use crate::read;

/// `EM_BPF`.
pub const EM_BPF: u16 = 247;
/// `ET_REL`.
pub const ET_REL: u16 = 1;
/// `SHT_PROGBITS`.
pub const SHT_PROGBITS: u32 = 1;
/// `SHT_SYMTAB`.
pub const SHT_SYMTAB: u32 = 2;
/// `SHT_STRTAB`.
pub const SHT_STRTAB: u32 = 3;
/// `SHT_NOBITS`.
pub const SHT_NOBITS: u32 = 8;
/// `SHT_REL`.
pub const SHT_REL: u32 = 9;
/// `SHF_EXECINSTR`.
pub const SHF_EXECINSTR: u64 = 4;
/// `SHN_UNDEF`.
pub const SHN_UNDEF: u16 = 0;
/// `STB_GLOBAL`.
pub const STB_GLOBAL: u8 = 1;
/// `STB_WEAK`.
pub const STB_WEAK: u8 = 2;
/// `STT_NOTYPE`.
pub const STT_NOTYPE: u8 = 0;

/// `Elf64_Ehdr`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileHeader {
    /// Magic, class, data encoding, version, ABI.
    pub e_ident: [u8; 16],
    /// Object file type.
    pub e_type: U16,
    /// Machine.
    pub e_machine: U16,
    /// Version.
    pub e_version: U32,
    /// Entry point.
    pub e_entry: U64,
    /// Program header offset.
    pub e_phoff: U64,
    /// Section header offset.
    pub e_shoff: U64,
    /// Flags.
    pub e_flags: U32,
    /// This header's size.
    pub e_ehsize: U16,
    /// Program header entry size.
    pub e_phentsize: U16,
    /// Program header count.
    pub e_phnum: U16,
    /// Section header entry size.
    pub e_shentsize: U16,
    /// Section header count.
    pub e_shnum: U16,
    /// Index of the section-name string table.
    pub e_shstrndx: U16,
}

/// `Elf64_Shdr`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SectionHeader {
    /// Name offset in the section-name string table.
    pub sh_name: U32,
    /// Type.
    pub sh_type: U32,
    /// Flags.
    pub sh_flags: U64,
    /// Address.
    pub sh_addr: U64,
    /// File offset of the contents.
    pub sh_offset: U64,
    /// Size of the contents.
    pub sh_size: U64,
    /// Linked section.
    pub sh_link: U32,
    /// Extra info (for `SHT_REL`: the section relocated).
    pub sh_info: U32,
    /// Alignment.
    pub sh_addralign: U64,
    /// Entry size for tables.
    pub sh_entsize: U64,
}

/// `Elf64_Sym`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Symbol {
    /// Name offset in the string table.
    pub st_name: U32,
    /// Binding (high nibble) and type (low nibble).
    pub st_info: u8,
    /// Visibility.
    pub st_other: u8,
    /// Section index.
    pub st_shndx: U16,
    /// Value.
    pub st_value: U64,
    /// Size.
    pub st_size: U64,
}

impl Symbol {
    /// `ELF64_ST_BIND`.
    pub fn binding(&self) -> u8 {
        self.st_info >> 4
    }

    /// `ELF64_ST_TYPE`.
    pub fn kind(&self) -> u8 {
        self.st_info & 0xf
    }
}

/// `Elf64_Rel`.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Rel {
    /// Byte offset of the relocated place in the target section.
    pub r_offset: U64,
    /// Symbol index (high 32 bits) and type (low 32 bits).
    pub r_info: U64,
}

impl Rel {
    /// `ELF64_R_SYM`.
    pub fn symbol(&self) -> u32 {
        (self.r_info.get() >> 32) as u32
    }
}

/// One section: its index, header and name.
#[derive(Clone, Copy, Debug)]
pub struct Section<'a> {
    /// Section index.
    pub index: SectionIndex,
    /// Header.
    pub header: &'a SectionHeader,
    /// Name (bytes, no NUL).
    pub name: &'a [u8],
}

impl Section<'_> {
    /// Whether the section holds instructions.
    pub fn is_exec(&self) -> bool {
        self.header.sh_flags.get() & SHF_EXECINSTR != 0
    }

    /// The byte range of the contents in the file; `None` for
    /// `SHT_NOBITS`, which has none.
    pub fn file_range(&self) -> Option<core::ops::Range<usize>> {
        if self.header.sh_type.get() == SHT_NOBITS {
            return None;
        }
        // Checked to lie inside the file when the ELF was parsed.
        let start = self.header.sh_offset.get() as usize;
        Some(start..start + self.header.sh_size.get() as usize)
    }
}

/// A parsed ELF file.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    data: &'a [u8],
    headers: &'a [SectionHeader],
    shstrtab: &'a [u8],
    symtab: Option<SectionIndex>,
    symbols: &'a [Symbol],
    strtab: &'a [u8],
}

impl<'a> Elf<'a> {
    /// Parses the file header and section table, and checks that every
    /// section's contents lie inside the file.
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>> {
        let hdr: &FileHeader = read::pod(data, 0, "ELF header")?;
        if &hdr.e_ident[..4] != b"\x7fELF" {
            return Err(Error::UnsupportedElf {
                what: "not an ELF file",
            });
        }
        if hdr.e_ident[4] != 2 {
            return Err(Error::UnsupportedElf { what: "not 64-bit" });
        }
        if hdr.e_ident[5] != 1 {
            return Err(Error::UnsupportedElf {
                what: "not little-endian",
            });
        }
        if hdr.e_type.get() != ET_REL {
            return Err(Error::UnsupportedElf {
                what: "not a relocatable object",
            });
        }
        if hdr.e_machine.get() != EM_BPF {
            return Err(Error::UnsupportedElf { what: "not BPF" });
        }
        let shnum = usize::from(hdr.e_shnum.get());
        if shnum == 0 {
            return Err(Error::UnsupportedElf {
                what: "no section headers (or extended numbering)",
            });
        }
        if usize::from(hdr.e_shentsize.get()) != core::mem::size_of::<SectionHeader>() {
            return Err(Error::Malformed {
                what: "ELF section header size",
                offset: 58,
            });
        }
        let shoff = usize::try_from(hdr.e_shoff.get()).map_err(|_| Error::Malformed {
            what: "ELF section header offset",
            offset: 40,
        })?;
        let headers: &[SectionHeader] = read::pod_slice(data, shoff, shnum, "ELF section headers")?;
        for (i, sh) in headers.iter().enumerate() {
            if sh.sh_type.get() != SHT_NOBITS {
                read::bytes64(data, sh.sh_offset.get(), sh.sh_size.get(), "ELF section contents").map_err(|_| {
                    Error::Malformed {
                        what: "ELF section offset/size",
                        offset: shoff + i * core::mem::size_of::<SectionHeader>(),
                    }
                })?;
            }
        }
        let mut elf = Elf {
            data,
            headers,
            shstrtab: &[],
            symtab: None,
            symbols: &[],
            strtab: &[],
        };
        let shstrndx = u32::from(hdr.e_shstrndx.get());
        elf.shstrtab = elf.section_data(elf.header(shstrndx)?)?;
        for (i, sh) in headers.iter().enumerate() {
            if sh.sh_type.get() == SHT_SYMTAB {
                if elf.symtab.is_some() {
                    return Err(Error::UnsupportedElf {
                        what: "more than one symbol table",
                    });
                }
                if sh.sh_entsize.get() != core::mem::size_of::<Symbol>() as u64 {
                    return Err(Error::Malformed {
                        what: "ELF symbol table entry size",
                        offset: sh.sh_offset.get() as usize,
                    });
                }
                let raw = elf.section_data(sh)?;
                elf.symbols = <[Symbol]>::ref_from_bytes(raw).map_err(|_| Error::Malformed {
                    what: "ELF symbol table size",
                    offset: sh.sh_offset.get() as usize,
                })?;
                elf.strtab = elf.section_data(elf.header(sh.sh_link.get())?)?;
                elf.symtab = Some(SectionIndex(i as u32));
            }
        }
        Ok(elf)
    }

    /// The whole file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    fn header(&self, index: u32) -> Result<&'a SectionHeader> {
        self.headers.get(index as usize).ok_or(Error::SectionIndex { index })
    }

    fn section_data(&self, sh: &SectionHeader) -> Result<&'a [u8]> {
        if sh.sh_type.get() == SHT_NOBITS {
            return Ok(&[]);
        }
        read::bytes64(self.data, sh.sh_offset.get(), sh.sh_size.get(), "ELF section contents")
    }

    /// The file range of section `index`, read from its header alone in
    /// O(1): for a caller that checked `data` with [`Elf::parse`] and now
    /// writes into it, so cannot hold the parsed view. `None` for
    /// `SHT_NOBITS`.
    pub fn section_file_range(data: &[u8], index: SectionIndex) -> Result<Option<core::ops::Range<usize>>> {
        let hdr: &FileHeader = read::pod(data, 0, "ELF header")?;
        if index.0 >= u32::from(hdr.e_shnum.get()) {
            return Err(Error::SectionIndex { index: index.0 });
        }
        let what = "ELF section headers";
        let at = usize::try_from(hdr.e_shoff.get())
            .ok()
            .and_then(|shoff| shoff.checked_add(index.get().checked_mul(core::mem::size_of::<SectionHeader>())?))
            .ok_or(Error::Overflow { what })?;
        let sh: &SectionHeader = read::pod(data, at, what)?;
        if sh.sh_type.get() == SHT_NOBITS {
            return Ok(None);
        }
        let contents = read::bytes64(data, sh.sh_offset.get(), sh.sh_size.get(), "ELF section contents")?;
        let start = sh.sh_offset.get() as usize;
        Ok(Some(start..start + contents.len()))
    }

    /// Number of sections (including the null section 0).
    pub fn section_count(&self) -> u32 {
        self.headers.len() as u32
    }

    /// The section at `index`.
    pub fn section(&self, index: SectionIndex) -> Result<Section<'a>> {
        let header = self.header(index.0)?;
        let name = read::cstr(self.shstrtab, header.sh_name.get() as usize).ok_or(Error::Malformed {
            what: "ELF section name offset",
            offset: header.sh_name.get() as usize,
        })?;
        Ok(Section { index, header, name })
    }

    /// All sections, in index order.
    pub fn sections(&self) -> impl Iterator<Item = Result<Section<'a>>> + '_ {
        (0..self.section_count()).map(move |i| self.section(SectionIndex(i)))
    }

    /// The first section with this name.
    pub fn section_by_name(&self, name: &[u8]) -> Result<Option<Section<'a>>> {
        for s in self.sections() {
            let s = s?;
            if s.name == name {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Contents of a section.
    pub fn data_of(&self, section: &Section<'a>) -> Result<&'a [u8]> {
        self.section_data(section.header)
    }

    /// Index of the symbol table section, if any.
    pub fn symtab_index(&self) -> Option<SectionIndex> {
        self.symtab
    }

    /// The symbol table (entry 0 is the null symbol).
    pub fn symbols(&self) -> &'a [Symbol] {
        self.symbols
    }

    /// A symbol's name.
    pub fn symbol_name(&self, sym: &Symbol) -> Result<&'a [u8]> {
        read::cstr(self.strtab, sym.st_name.get() as usize).ok_or(Error::Malformed {
            what: "ELF symbol name offset",
            offset: sym.st_name.get() as usize,
        })
    }

    /// The relocations of an `SHT_REL` section.
    pub fn rels(&self, section: &Section<'a>) -> Result<&'a [Rel]> {
        let raw = self.section_data(section.header)?;
        <[Rel]>::ref_from_bytes(raw).map_err(|_| Error::Malformed {
            what: "ELF relocation section size",
            offset: section.header.sh_offset.get() as usize,
        })
    }
}
