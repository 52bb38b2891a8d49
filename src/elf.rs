//! The ELF layer: a plain, index-addressable view of an object's sections,
//! symbols and REL entries, read through the `object` crate. Nothing here
//! knows about BPF beyond the header checks libbpf makes at open time.

use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, SectionHeader};

use crate::error::{Error, Result};

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const SHT_LLVM_ADDRSIG: u32 = 0x6fff4c03;
pub const SHF_EXECINSTR: u64 = 0x4;

pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;
pub const STT_NOTYPE: u8 = 0;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;
pub const STV_INTERNAL: u8 = 1;
pub const STV_HIDDEN: u8 = 2;
pub const SHN_UNDEF: u16 = 0;
pub const SHN_LORESERVE: u16 = 0xff00;

const EM_BPF: u16 = 247;
const ET_REL: u16 = 1;

#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub index: usize,
    pub name: &'a str,
    pub sh_type: u32,
    pub flags: u64,
    /// `sh_size`; for NOBITS this is the size of the zero-filled region.
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub entsize: u64,
    /// File contents (empty for NOBITS).
    pub data: &'a [u8],
}

impl Section<'_> {
    pub fn is_exec(&self) -> bool {
        self.sh_type == SHT_PROGBITS && self.flags & SHF_EXECINSTR != 0
    }
}

#[derive(Debug, Clone)]
pub struct Symbol<'a> {
    pub index: usize,
    pub name: &'a str,
    pub name_off: u32,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub typ: u8,
    pub visibility: u8,
    pub shndx: u16,
}

impl Symbol<'_> {
    /// Undefined global/weak NOTYPE symbols are externs (`__ksym`, `__kconfig`).
    pub fn is_extern(&self) -> bool {
        self.shndx == SHN_UNDEF && (self.bind == STB_GLOBAL || self.bind == STB_WEAK) && self.typ == STT_NOTYPE
    }
    pub fn is_global_or_weak(&self) -> bool {
        self.bind == STB_GLOBAL || self.bind == STB_WEAK
    }
    pub fn is_hidden(&self) -> bool {
        self.visibility == STV_HIDDEN || self.visibility == STV_INTERNAL
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Rel {
    pub offset: u64,
    pub sym: u32,
}

pub struct Elf<'a> {
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    /// A `bpfeb` object (`EI_DATA` = ELFDATA2MSB).
    pub big_endian: bool,
}

/// `bytes` as a `str` if they are UTF-8: `std::str::from_utf8`, with an inline
/// check first for the ASCII that ELF and BTF names almost always are (the
/// general validator, called once per name, was 4-6% of opening a small object).
#[inline]
pub fn utf8_name(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

fn format_err(reason: impl Into<String>) -> Error {
    Error::elf(reason)
}

/// Problems with one entry of the section header table are reported against
/// it, at the entry's offset in the table.
const SECTION_HEADERS: &str = "section headers";

/// Problems with the file header itself are reported against "ELF header".
fn header_err(reason: impl Into<String>, offset: u64) -> Error {
    Error::elf(reason).in_section("ELF header").at(offset)
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>> {
        if data.len() < 16 || &data[..4] != b"\x7fELF" {
            return Err(header_err("not an ELF file", 0));
        }
        if data[4] != 2 {
            return Err(header_err("not a valid eBPF object file (not ELF64)", 4));
        }
        // Both byte orders are read; whether a big-endian (bpfeb) object may be
        // generated for is the generator's decision (bpftool 7.5.0 refuses).
        let e = match data[5] {
            1 => Endianness::Little,
            2 => Endianness::Big,
            _ => return Err(header_err("elf: unknown byte order (EI_DATA)", 5)),
        };
        let hdr = elf::FileHeader64::<Endianness>::parse(data)
            .map_err(|err| header_err(format!("bad ELF header: {err}"), 0))?;
        let machine = hdr.e_machine.get(e).0;
        if hdr.e_type.get(e).0 != ET_REL || (machine != 0 && machine != EM_BPF) {
            return Err(header_err(
                format!(
                    "not a valid eBPF object file (e_type {}, e_machine {machine})",
                    hdr.e_type.get(e).0
                ),
                16,
            ));
        }
        let table = hdr
            .sections(e, data)
            .map_err(|err| header_err(format!("bad section table: {err}"), 0x28))?;
        let mut sections = Vec::with_capacity(table.len());
        for (idx, sh) in table.enumerate() {
            let name_bytes = table.section_name(e, sh).map_err(|err| {
                format_err(format!("section #{}: bad name: {err}", idx.0))
                    .in_section(SECTION_HEADERS)
                    .at(idx.0 as u64 * 64)
            })?;
            let name = utf8_name(name_bytes).ok_or_else(|| {
                format_err(format!("section #{}: name is not UTF-8", idx.0))
                    .in_section(SECTION_HEADERS)
                    .at(idx.0 as u64 * 64)
            })?;
            let sh_type = sh.sh_type.get(e).0;
            let data = if sh_type == SHT_NOBITS {
                &[][..]
            } else {
                sh.data(e, data).map_err(|_| {
                    format_err("section data is out of bounds")
                        .in_section(name)
                        .at(sh.sh_offset.get(e))
                })?
            };
            sections.push(Section {
                index: idx.0,
                name,
                sh_type,
                flags: sh.sh_flags.get(e).0,
                size: sh.sh_size.get(e),
                link: sh.sh_link.get(e),
                info: sh.sh_info.get(e),
                entsize: sh.sh_entsize.get(e),
                data,
            });
        }
        let symtabs: Vec<&Section> = sections.iter().filter(|s| s.sh_type == SHT_SYMTAB).collect();
        let symtab = match symtabs.as_slice() {
            [one] => (*one).clone(),
            [] => return Err(format_err("couldn't find symbol table, stripped object file?")),
            [_, second, ..] => return Err(format_err("multiple symbol tables").in_section(second.name)),
        };
        let strtab = sections
            .get(symtab.link as usize)
            .filter(|s| symtab.link != 0 && s.sh_type == SHT_STRTAB)
            .ok_or_else(|| format_err("symbol strings section missing or invalid").in_section(symtab.name))?
            .data;
        let raw_syms: &[elf::Sym64<Endianness>] = object::pod::slice_from_all_bytes(symtab.data)
            .or_else(|_| object::pod::slice_from_bytes(symtab.data, symtab.data.len() / 24).map(|(s, _)| s))
            .map_err(|_| format_err("symbol table is malformed").in_section(symtab.name))?;
        let mut symbols = Vec::with_capacity(raw_syms.len());
        for (i, s) in raw_syms.iter().enumerate() {
            let name_off = s.st_name.get(e);
            let name = if name_off == 0 {
                ""
            } else {
                let rest = strtab.get(name_off as usize..).ok_or_else(|| {
                    format_err(format!("symbol #{i}: name offset {name_off:#x} out of range"))
                        .in_section(symtab.name)
                        .at(i as u64 * 24)
                })?;
                let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                    format_err(format!("symbol #{i}: unterminated name"))
                        .in_section(symtab.name)
                        .at(i as u64 * 24)
                })?;
                utf8_name(&rest[..end]).ok_or_else(|| {
                    format_err(format!("symbol #{i}: name is not UTF-8"))
                        .in_section(symtab.name)
                        .at(i as u64 * 24)
                })?
            };
            let info = s.st_info.0;
            symbols.push(Symbol {
                index: i,
                name,
                name_off,
                value: s.st_value.get(e),
                size: s.st_size.get(e),
                bind: info >> 4,
                typ: info & 0xf,
                visibility: s.st_other.0 & 0x3,
                shndx: s.st_shndx.get(e).0,
            });
        }
        Ok(Elf {
            sections,
            symbols,
            big_endian: e == Endianness::Big,
        })
    }

    /// First section with this name, like libbpf's `elf_sec_by_name`.
    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().skip(1).find(|s| s.name == name)
    }

    /// REL entries of a relocation section.
    pub fn rels(&self, sec: &Section<'a>) -> Result<Vec<Rel>> {
        if sec.entsize != 16 {
            return Err(format_err(format!("bad REL entry size {}", sec.entsize)).in_section(sec.name));
        }
        let e = if self.big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        };
        let raw: &[elf::Rel64<Endianness>] = object::pod::slice_from_bytes(sec.data, sec.data.len() / 16)
            .map(|(s, _)| s)
            .map_err(|_| format_err("relocation table is malformed").in_section(sec.name))?;
        Ok(raw
            .iter()
            .map(|r| {
                let info = r.r_info.get(e);
                Rel {
                    offset: r.r_offset.get(e),
                    sym: (info >> 32) as u32,
                }
            })
            .collect())
    }
}
