//! The open driver: sections classified as libbpf's `elf_collect` does, the
//! programs they hold, and the BTF fix-ups that precede map creation.

use super::*;
use crate::btf::ext::BtfExt;
use crate::btf::{Btf, kind, linkage};
use crate::elf::{self, Elf, Section};
use crate::error::{Error, Result};
use crate::externs::{self};
use crate::insn::Insn;
use crate::section_defs::{self};

fn is_dwarf(name: &str) -> bool {
    name.starts_with(".debug_")
}

/// Sections libbpf skips before classifying anything.
fn ignored(sec: &Section) -> bool {
    if sec.sh_type == elf::SHT_STRTAB || sec.sh_type == elf::SHT_LLVM_ADDRSIG {
        return true;
    }
    if sec.sh_type == elf::SHT_PROGBITS && sec.size == 0 && sec.name == ".text" {
        return true;
    }
    if is_dwarf(sec.name) {
        return true;
    }
    if let Some(rest) = sec.name.strip_prefix(".rel") {
        return is_dwarf(rest) || rest == ".BTF" || rest == ".BTF.ext";
    }
    false
}

/// The classification libbpf gives each section during `elf_collect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecKind {
    None,
    Data,
    Rodata,
    Bss,
    Relo,
    StructOps,
    /// `.addr_space.1`: `__arena` globals.
    Arena,
}

pub(super) struct Opener<'a, 'e> {
    pub(super) elf: &'e Elf<'a>,
    pub(super) sec_kinds: Vec<SecKind>,
    pub(super) obj: Object,
    pub(super) maps_shndx: Option<usize>,
    pub(super) maps_sec_btf_id: u32,
}

/// Open an object as libbpf's `bpf_object__open_mem` would.
pub fn open(data: &[u8], name: &str) -> Result<Object> {
    open_inner(data, name).map_err(|e| e.for_object(name))
}

fn open_inner(data: &[u8], name: &str) -> Result<Object> {
    let elf = Elf::parse(data)?;
    let kern_name: String = name.chars().take(BPF_OBJ_NAME_LEN - 1).collect();
    let mut op = Opener {
        elf: &elf,
        sec_kinds: vec![SecKind::None; elf.sections.len()],
        obj: Object {
            name: name.to_string(),
            kern_name,
            license: String::new(),
            btf: None,
            btf_ext: None,
            programs: Vec::new(),
            maps: Vec::new(),
            text_shndx: None,
            externs: Vec::new(),
            kconfig_map_idx: None,
            big_endian: elf.big_endian,
            arena: None,
            section_names: Names::collect(elf.sections.iter().map(|s| s.name)),
            symbol_names: Names::collect(elf.symbols.iter().map(|s| s.name)),
            elf_sections: elf
                .sections
                .iter()
                .map(|s| SectionSummary {
                    index: s.index,
                    sh_type: s.sh_type,
                    flags: s.flags,
                    size: s.size,
                })
                .collect(),
            elf_symbols: elf
                .symbols
                .iter()
                .map(|s| SymbolSummary {
                    value: s.value,
                    size: s.size,
                    bind: s.bind,
                    typ: s.typ,
                    shndx: s.shndx,
                })
                .collect(),
        },
        maps_shndx: None,
        maps_sec_btf_id: 0,
    };
    op.collect_sections()?;
    op.obj.externs = externs::collect(&elf, op.obj.btf.as_mut())?;
    op.fixup_btf()?;
    op.init_user_maps()?;
    op.init_arena()?;
    op.init_global_data_maps()?;
    op.init_kconfig_map();
    op.init_struct_ops_maps()?;
    op.init_progs();
    op.collect_relos()?;
    Ok(op.obj)
}

impl<'a> Opener<'a, '_> {
    fn collect_sections(&mut self) -> Result<()> {
        let mut btf_data = None;
        let mut btf_ext_data = None;
        for sec in self.elf.sections.iter().skip(1) {
            if ignored(sec) {
                continue;
            }
            match sec.name {
                "license" => {
                    // libbpf copies into a 64-byte buffer: at most 63 characters,
                    // up to the first NUL.
                    let bytes = &sec.data[..sec.data.len().min(63)];
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    self.obj.license = String::from_utf8_lossy(&bytes[..end]).into_owned();
                }
                "version" if sec.data.len() != 4 => {
                    return Err(
                        Error::elf(format!("invalid kver section size {}", sec.data.len())).in_section("version")
                    );
                }
                "maps" => {
                    return Err(Error::unsupported(
                        "elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+",
                    )
                    .in_section("maps"));
                }
                MAPS_SEC => self.maps_shndx = Some(sec.index),
                ".BTF" | ".BTF.ext" => {
                    if sec.sh_type != elf::SHT_PROGBITS {
                        return Err(Error::elf("BTF section is not PROGBITS").in_section(sec.name));
                    }
                    if sec.name == ".BTF" {
                        btf_data = Some(sec.data);
                    } else {
                        btf_ext_data = Some(sec.data);
                    }
                }
                _ if sec.sh_type == elf::SHT_SYMTAB => {}
                _ if sec.sh_type == elf::SHT_PROGBITS && !sec.data.is_empty() => {
                    if sec.is_exec() {
                        if sec.name == ".text" {
                            self.obj.text_shndx = Some(sec.index);
                        }
                        self.add_programs(sec)?;
                    } else if sec.name == ".data" || sec.name.starts_with(".data.") {
                        self.sec_kinds[sec.index] = SecKind::Data;
                    } else if sec.name == ".rodata" || sec.name.starts_with(".rodata.") {
                        self.sec_kinds[sec.index] = SecKind::Rodata;
                    } else if struct_ops::is_struct_ops_section(sec.name) {
                        self.sec_kinds[sec.index] = SecKind::StructOps;
                    } else if sec.name == ARENA_SEC {
                        self.sec_kinds[sec.index] = SecKind::Arena;
                    }
                }
                _ if sec.sh_type == elf::SHT_REL => {
                    let target = sec.info as usize;
                    if sec.entsize != 16 || target >= self.elf.sections.len() {
                        return Err(Error::elf("malformed relocation section").in_section(sec.name));
                    }
                    let target_exec = self.elf.sections[target].is_exec();
                    let struct_ops_rel = sec
                        .name
                        .strip_prefix(".rel")
                        .is_some_and(struct_ops::is_struct_ops_section);
                    if target_exec || sec.name == ".rel.maps" || struct_ops_rel {
                        self.sec_kinds[sec.index] = SecKind::Relo;
                    }
                }
                _ if sec.sh_type == elf::SHT_NOBITS && (sec.name == ".bss" || sec.name.starts_with(".bss.")) => {
                    self.sec_kinds[sec.index] = SecKind::Bss;
                }
                _ => {}
            }
        }
        // Programs in (section, offset) order: that order is the skeleton's.
        self.obj.programs.sort_by_key(|p| (p.sec_idx, p.sec_insn_off));
        let big = self.elf.big_endian;
        if let Some(data) = btf_data {
            self.obj.btf = Some(if big {
                Btf::parse(&crate::btf::byteorder::swap_btf(data, true)?)?
            } else {
                Btf::parse(data)?
            });
        }
        if let Some(data) = btf_ext_data
            && self.obj.btf.is_some()
        {
            self.obj.btf_ext = Some(if big {
                BtfExt::parse(&crate::btf::byteorder::swap_btf_ext(data))?
            } else {
                BtfExt::parse(data)?
            });
        }
        if self.obj.btf.is_none() && self.maps_shndx.is_some() {
            return Err(Error::btf("BTF is required, but is missing or corrupted.").in_section(MAPS_SEC));
        }
        if self.obj.btf.is_none()
            && let Some(i) = self.sec_kinds.iter().position(|k| *k == SecKind::StructOps)
        {
            return Err(
                Error::btf("BTF is required, but is missing or corrupted.").in_section(self.elf.sections[i].name)
            );
        }
        Ok(())
    }

    fn add_programs(&mut self, sec: &Section<'a>) -> Result<()> {
        for sym in &self.elf.symbols {
            if sym.shndx as usize != sec.index || sym.typ != elf::STT_FUNC {
                continue;
            }
            let (off, size) = (sym.value, sym.size);
            if off.checked_add(size).is_none_or(|end| end > sec.data.len() as u64) {
                return Err(Error::elf(format!("program '{}' crosses section boundary", sym.name))
                    .in_section(sec.name)
                    .at(off));
            }
            if Some(sec.index) != self.obj.text_shndx && sym.bind == elf::STB_LOCAL {
                return Err(
                    Error::unsupported(format!("program '{}' is static and not supported", sym.name))
                        .in_section(sec.name)
                        .at(off),
                );
            }
            if size == 0 || size % 8 != 0 || off % 8 != 0 {
                return Err(
                    Error::elf(format!("corrupted program '{}', offset {off}, size {size}", sym.name))
                        .in_section(sec.name)
                        .at(off),
                );
            }
            let bytes = &sec.data[off as usize..(off + size) as usize];
            let (sec_name, autoload) = match sec.name.strip_prefix('?') {
                Some(rest) => (rest.to_string(), false),
                None => (sec.name.to_string(), true),
            };
            let global = sym.bind != elf::STB_LOCAL;
            self.obj.programs.push(Program {
                name: sym.name.to_string(),
                sec_name,
                sec_idx: sec.index,
                sec_insn_off: (off / 8) as usize,
                sec_insn_cnt: (size / 8) as usize,
                insns: if self.elf.big_endian {
                    bytes.chunks_exact(8).map(Insn::from_bytes_be).collect()
                } else {
                    bytes.chunks_exact(8).map(Insn::from_bytes).collect()
                },
                autoload,
                is_subprog: Some(sec.index) == self.obj.text_shndx,
                mark_btf_static: global && sym.is_hidden(),
                is_global: global,
                sec_def: None,
                relocs: Vec::new(),
                attach_target: None,
            });
        }
        Ok(())
    }

    /// DATASEC sizes and variable offsets from the ELF, hidden variables made
    /// static, secinfos sorted by offset (`bpf_object_fixup_btf`).
    fn fixup_btf(&mut self) -> Result<()> {
        let Some(btf) = self.obj.btf.as_mut() else {
            return Ok(());
        };
        // First global/weak OBJECT symbol of each name, built on first use.
        // (Performance: a linear symbol search per VAR, like libbpf's
        // `find_elf_var_sym`, is quadratic for objects with many globals.)
        let elf = self.elf;
        let mut var_syms: Option<Vec<(&str, usize)>> = None;
        let mut lookups = 0usize;
        for id in 1..btf.type_cnt() {
            if btf.kind_of(id) != kind::DATASEC {
                continue;
            }
            let t = btf.type_by_id(id)?;
            let sec_name = btf.name_of(&t)?.to_string();
            let mut infos = btf.secinfos(&t);
            if sec_name != ".kconfig" && sec_name != ".ksyms" {
                let mut fixup_offsets = false;
                if t.size_or_type == 0 {
                    let size = self.elf.section_by_name(&sec_name).map(|s| s.size).unwrap_or(0);
                    if size == 0 || size > u32::MAX as u64 {
                        return Err(
                            Error::btf(format!("sec '{sec_name}': failed to determine size from ELF"))
                                .in_section(".BTF"),
                        );
                    }
                    btf.set_size(&t, size as u32);
                    fixup_offsets = true;
                }
                for vsi in infos.iter_mut() {
                    let var = btf.type_by_id(vsi.type_id)?;
                    if var.kind() != kind::VAR {
                        return Err(
                            Error::btf(format!("sec '{sec_name}': unexpected non-VAR type found")).in_section(".BTF")
                        );
                    }
                    let link = btf.tail_u32(&var);
                    if link == linkage::STATIC || link == linkage::EXTERN {
                        continue;
                    }
                    let var_name = btf.name_of(&var)?;
                    // The first lookups search linearly (cheapest for small
                    // objects); after that, a sorted (name, symbol index)
                    // table gives the first symbol of a name by binary search.
                    lookups += 1;
                    let sym = if lookups <= 16 {
                        elf.symbols
                            .iter()
                            .find(|s| s.typ == elf::STT_OBJECT && s.is_global_or_weak() && s.name == var_name)
                    } else {
                        let by_name = var_syms.get_or_insert_with(|| {
                            let mut v: Vec<(&str, usize)> = elf
                                .symbols
                                .iter()
                                .enumerate()
                                .filter(|(_, s)| s.typ == elf::STT_OBJECT && s.is_global_or_weak())
                                .map(|(i, s)| (s.name, i))
                                .collect();
                            v.sort_unstable();
                            v
                        });
                        let at = by_name.partition_point(|&(n, _)| n < var_name);
                        by_name
                            .get(at)
                            .filter(|&&(n, _)| n == var_name)
                            .map(|&(_, i)| &elf.symbols[i])
                    };
                    let sym = sym.ok_or_else(|| {
                        Error::btf(format!(
                            "sec '{sec_name}': failed to find ELF symbol for VAR '{var_name}'"
                        ))
                        .in_section(".BTF")
                    })?;
                    if fixup_offsets {
                        vsi.offset = sym.value as u32;
                    }
                    if sym.is_hidden() {
                        btf.set_var_linkage(&var, linkage::STATIC);
                    }
                }
            }
            // Stable, like glibc's merge sort: ties keep their BTF order.
            infos.sort_by_key(|v| v.offset);
            btf.set_secinfos(&t, &infos);
        }
        Ok(())
    }

    fn init_progs(&mut self) {
        for prog in &mut self.obj.programs {
            prog.sec_def = section_defs::find_section_def(&prog.sec_name);
        }
    }

    pub(super) fn section_name(&self, idx: usize) -> &str {
        self.elf.sections.get(idx).map(|s| s.name).unwrap_or("<?>")
    }
}
