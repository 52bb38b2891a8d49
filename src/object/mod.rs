//! libbpf's open phase: from ELF sections, symbols and BTF to the object's
//! programs, maps and relocation records, in libbpf's order. The result is a
//! plain value that the load phase (`link.rs`) and the emitter consume.
//! struct_ops maps are collected by the [`struct_ops`] submodule.

pub mod struct_ops;

use std::collections::HashMap;

use crate::btf::ext::BtfExt;
use crate::btf::{Btf, kind, linkage};
use crate::elf::{self, Elf, Section};
use crate::error::{Error, Result};
use crate::externs::{self, Extern, ExternKind};
use crate::insn::Insn;
use crate::section_defs::{self, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, LoadAttrs, SectionDef, map_type};

pub const BPF_OBJ_NAME_LEN: usize = 16;
const MAPS_SEC: &str = ".maps";
pub const ARENA_SEC: &str = ".addr_space.1";

/// How a relocation rewrites its instruction (libbpf's `reloc_type`, in
/// libbpf's enum order, which is also the tie-break order when sorting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RelocKind {
    /// Map reference: ld_imm64 of a `.maps` variable.
    Ld64 { map_idx: usize },
    /// bpf-to-bpf call into `.text`.
    Call { sym_off: u64 },
    /// Global data: ld_imm64 of an address inside an internal map.
    Data { map_idx: usize, sym_off: u64 },
    /// ld_imm64 of a `__ksym` or `__kconfig` extern.
    ExternLd64 { ext_idx: usize },
    /// Call of a kfunc.
    ExternCall { ext_idx: usize },
    /// Address of a `.text` function (callbacks).
    SubprogAddr { sym_off: u64 },
    /// A CO-RE relocation, recorded for the kernel to apply.
    Core {
        type_id: u32,
        access_str_off: u32,
        kind: u32,
    },
}

impl RelocKind {
    pub fn order(&self) -> u8 {
        match self {
            RelocKind::Ld64 { .. } => 0,
            RelocKind::Call { .. } => 1,
            RelocKind::Data { .. } => 2,
            RelocKind::ExternLd64 { .. } => 3,
            RelocKind::ExternCall { .. } => 4,
            RelocKind::SubprogAddr { .. } => 5,
            RelocKind::Core { .. } => 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    /// Instruction index in the owning program's own frame.
    pub insn_idx: usize,
    pub kind: RelocKind,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    /// Section name without the leading `?`.
    pub sec_name: String,
    pub sec_idx: usize,
    pub sec_insn_off: usize,
    pub sec_insn_cnt: usize,
    pub insns: Vec<Insn>,
    pub autoload: bool,
    pub is_subprog: bool,
    /// Global/weak symbol with hidden visibility: its BTF FUNC becomes static.
    pub mark_btf_static: bool,
    /// Global or weak symbol (an exception callback must be one).
    pub is_global: bool,
    pub sec_def: Option<&'static SectionDef>,
    pub relocs: Vec<Reloc>,
}

impl Program {
    pub fn load_attrs(&self) -> LoadAttrs {
        match self.sec_def {
            Some(def) => def.load_attrs(),
            None => LoadAttrs {
                prog_type: 0,
                expected_attach_type: 0,
                prog_flags: 0,
            },
        }
    }
}

/// Where a map comes from, which decides its naming, flags and population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOrigin {
    /// A variable of the BTF-defined `.maps` section.
    User,
    Data,
    Rodata,
    Bss,
    /// The `.kconfig` map backing `__kconfig` externs.
    Kconfig,
    /// A variable of a `.struct_ops` / `.struct_ops.link` section.
    StructOps,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapDef {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub numa_node: u32,
    pub map_extra: u64,
    pub key_type_id: u32,
    pub value_type_id: u32,
    pub pinning: u32,
    pub has_inner: bool,
}

#[derive(Debug, Clone)]
pub struct Map {
    /// The name given to the kernel (internal maps: libbpf's truncated form).
    pub name: String,
    /// The ELF section name for internal maps, else the map name.
    pub real_name: String,
    pub origin: MapOrigin,
    pub sec_idx: usize,
    pub sec_offset: u64,
    pub btf_var_idx: usize,
    pub def: MapDef,
    pub inner: Option<Box<Map>>,
    /// Static `.values` initialisers: slot → target map index.
    pub init_slots: Vec<Option<usize>>,
    /// Static `.values` of a PROG_ARRAY: slot → target program name.
    pub prog_slots: Vec<Option<String>>,
    /// Initial image of an internal map (`value_size` bytes).
    pub initial_value: Vec<u8>,
    /// The struct_ops state of a struct_ops map.
    pub struct_ops: Option<Box<struct_ops::StructOps>>,
}

impl Map {
    /// A global-data or `.kconfig` map (libbpf's `bpf_map__is_internal`).
    pub fn is_internal(&self) -> bool {
        matches!(
            self.origin,
            MapOrigin::Data | MapOrigin::Rodata | MapOrigin::Bss | MapOrigin::Kconfig
        )
    }
    /// Created by the loader: false only for `SEC("?.struct_ops…")` maps.
    pub fn autocreate(&self) -> bool {
        self.struct_ops.as_ref().is_none_or(|s| s.autocreate)
    }
    pub fn is_mmapable(&self) -> bool {
        self.is_internal() && self.def.map_flags & BPF_F_MMAPABLE != 0
    }
}

#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    /// libbpf's `obj->name`: the first 15 characters, used for map names.
    pub kern_name: String,
    pub license: String,
    pub btf: Option<Btf>,
    pub btf_ext: Option<BtfExt>,
    pub programs: Vec<Program>,
    pub maps: Vec<Map>,
    pub text_shndx: Option<usize>,
    /// `__ksym` / `__kconfig` externs in libbpf's sorted order.
    pub externs: Vec<Extern>,
    pub kconfig_map_idx: Option<usize>,
    /// A `bpfeb` object: BTF, BTF.ext and instructions were converted to
    /// little-endian on open; the loader converts them back.
    pub big_endian: bool,
    /// `__arena` globals and the ARENA map that holds them.
    pub arena: Option<ArenaData>,
    /// ELF section index → name, for error messages and BTF.ext mapping.
    pub section_names: Names,
    /// ELF symbol index → name, for `inspect`.
    pub symbol_names: Names,
    /// The ELF section table and symbol table, for `inspect`.
    pub elf_sections: Vec<SectionSummary>,
    pub elf_symbols: Vec<SymbolSummary>,
}

/// The `__arena` globals of an object: their initial image sits at the
/// start of the (single) ARENA map's memory, as in libbpf 1.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaData {
    pub map_idx: usize,
    pub sec_idx: usize,
    pub data: Vec<u8>,
}

/// Names packed into one buffer: one allocation for all of an object's
/// section (or symbol) names instead of one per name (performance: those
/// allocations were a large share of opening a small object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    buf: String,
    ends: Vec<u32>,
}

impl Names {
    fn collect<'s>(names: impl ExactSizeIterator<Item = &'s str>) -> Names {
        let mut out = Names {
            buf: String::new(),
            ends: Vec::with_capacity(names.len()),
        };
        for n in names {
            out.buf.push_str(n);
            out.ends.push(out.buf.len() as u32);
        }
        out
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.buf[start..end])
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i).unwrap_or(""))
    }
}

/// One ELF section for `inspect` (its name is `Object::section_names[index]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSummary {
    pub index: usize,
    pub sh_type: u32,
    pub flags: u64,
    pub size: u64,
}

/// One ELF symbol for `inspect` (its name is `Object::symbol_names[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolSummary {
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub typ: u8,
    pub shndx: u16,
}

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
enum SecKind {
    None,
    Data,
    Rodata,
    Bss,
    Relo,
    StructOps,
    /// `.addr_space.1`: `__arena` globals.
    Arena,
}

fn internal_map_name(kern_obj_name: &str, real_name: &str) -> String {
    let sfx_len = real_name.len().clamp(7, BPF_OBJ_NAME_LEN - 1);
    let pfx_len = if real_name.len() > 1 && real_name[1..].contains('.') {
        0
    } else {
        (BPF_OBJ_NAME_LEN - sfx_len - 1).min(kern_obj_name.len())
    };
    let suffix: String = real_name.chars().take(sfx_len).collect();
    let mut name: String = kern_obj_name.chars().take(pfx_len).collect();
    name.push_str(&suffix);
    name.chars()
        .take(BPF_OBJ_NAME_LEN - 1)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// libbpf's `find_prog_by_sec_insn`: the program of section `sec_idx` that
/// contains instruction `insn_idx`, by binary search over `programs`, which
/// are sorted by (section index, offset) once sections are collected.
/// (Performance: replaces linear `position()` scans that made relocation
/// collection and linking quadratic in the number of programs.)
pub fn find_prog_by_sec_insn(programs: &[Program], sec_idx: usize, insn_idx: usize) -> Option<usize> {
    // Index of the last program at or before (sec_idx, insn_idx).
    let after = programs.partition_point(|p| (p.sec_idx, p.sec_insn_off) <= (sec_idx, insn_idx));
    let i = after.checked_sub(1)?;
    let p = &programs[i];
    (p.sec_idx == sec_idx && insn_idx >= p.sec_insn_off && insn_idx < p.sec_insn_off + p.sec_insn_cnt).then_some(i)
}

/// The map and extern searches of relocation collection as sorted
/// (key, index) tables, built once per object; `first` returns the lowest
/// index with the key, which is what the linear search libbpf does finds.
/// (Performance: a linear search per relocation was quadratic for objects
/// with many maps or externs.)
struct RelocLookup {
    /// `.maps` offset → user map defined there.
    user_map_at: Vec<(u64, usize)>,
    /// ELF section index → internal (global data) map of that section.
    data_map_of: Vec<(u64, usize)>,
    /// Symbol index → extern.
    extern_of_sym: Vec<(u64, usize)>,
}

impl RelocLookup {
    fn new(obj: &Object, maps_shndx: Option<usize>) -> RelocLookup {
        let table = |it: &mut dyn Iterator<Item = (u64, usize)>| {
            let mut v: Vec<(u64, usize)> = it.collect();
            v.sort_unstable();
            v
        };
        let maps = obj.maps.iter().enumerate();
        RelocLookup {
            user_map_at: table(
                &mut maps
                    .clone()
                    .filter(|(_, m)| m.origin == MapOrigin::User && Some(m.sec_idx) == maps_shndx)
                    .map(|(i, m)| (m.sec_offset, i)),
            ),
            data_map_of: table(
                &mut maps
                    .filter(|(_, m)| m.is_internal())
                    .map(|(i, m)| (m.sec_idx as u64, i)),
            ),
            extern_of_sym: table(&mut obj.externs.iter().enumerate().map(|(i, e)| (e.sym_idx as u64, i))),
        }
    }

    fn first(table: &[(u64, usize)], key: u64) -> Option<usize> {
        let i = table.partition_point(|&(k, _)| k < key);
        table.get(i).filter(|&&(k, _)| k == key).map(|&(_, idx)| idx)
    }
}

struct Opener<'a, 'e> {
    elf: &'e Elf<'a>,
    sec_kinds: Vec<SecKind>,
    obj: Object,
    maps_shndx: Option<usize>,
    maps_sec_btf_id: u32,
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
            let t = btf.type_by_id(id)?;
            if t.kind() != kind::DATASEC {
                continue;
            }
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

    fn init_user_maps(&mut self) -> Result<()> {
        let Some(shndx) = self.maps_shndx else {
            return Ok(());
        };
        let sec = &self.elf.sections[shndx];
        let btf = self.obj.btf.as_ref().expect("checked in collect_sections");
        let err = |msg: String| Error::btf(msg).in_section(MAPS_SEC);
        let sec_id = (1..btf.type_cnt())
            .find(|&id| {
                btf.type_by_id(id)
                    .is_ok_and(|t| t.kind() == kind::DATASEC && btf.name_of(&t).is_ok_and(|n| n == MAPS_SEC))
            })
            .ok_or_else(|| err(format!("DATASEC '{MAPS_SEC}' not found.")))?;
        self.maps_sec_btf_id = sec_id;
        let datasec = btf.type_by_id(sec_id)?;
        for (var_idx, vsi) in btf.secinfos(&datasec).iter().enumerate() {
            let var = btf.type_by_id(vsi.type_id)?;
            let map_name = btf.name_of(&var)?.to_string();
            if map_name.is_empty() {
                return Err(err(format!("map #{var_idx}: empty name.")));
            }
            if vsi.offset as u64 + vsi.size as u64 > sec.size {
                return Err(err(format!("map '{map_name}' BTF data is corrupted.")).at(vsi.offset as u64));
            }
            if var.kind() != kind::VAR {
                return Err(err(format!("map '{map_name}': unexpected var kind.")));
            }
            if btf.tail_u32(&var) != linkage::GLOBAL {
                return Err(
                    Error::unsupported(format!("map '{map_name}': unsupported map linkage.")).in_section(MAPS_SEC),
                );
            }
            let (_, def_t) = btf.skip_mods_and_typedefs(var.size_or_type)?;
            let def_t = match def_t {
                Some(t) if t.kind() == kind::STRUCT => t,
                _ => return Err(err(format!("map '{map_name}': unexpected def kind."))),
            };
            if def_t.size_or_type > vsi.size {
                return Err(err(format!("map '{map_name}': invalid def size.")));
            }
            let mut inner_def = MapDef::default();
            let def = parse_btf_map_def(btf, &map_name, def_t.id, Some(&mut inner_def))?;
            if def.pinning != 0 {
                return Err(Error::unsupported(format!(
                    "map '{map_name}': pinning is not supported in gen mode (libbpf would pin on the build host)"
                ))
                .in_section(MAPS_SEC)
                .at(vsi.offset as u64));
            }
            let inner = def.has_inner.then(|| {
                Box::new(Map {
                    name: format!("{map_name}.inner"),
                    real_name: format!("{map_name}.inner"),
                    origin: MapOrigin::User,
                    sec_idx: shndx,
                    sec_offset: 0,
                    btf_var_idx: 0,
                    def: inner_def.clone(),
                    inner: None,
                    init_slots: Vec::new(),
                    prog_slots: Vec::new(),
                    initial_value: Vec::new(),
                    struct_ops: None,
                })
            });
            self.obj.maps.push(Map {
                name: map_name.clone(),
                real_name: map_name,
                origin: MapOrigin::User,
                sec_idx: shndx,
                sec_offset: vsi.offset as u64,
                btf_var_idx: var_idx,
                def,
                inner,
                init_slots: Vec::new(),
                prog_slots: Vec::new(),
                initial_value: Vec::new(),
                struct_ops: None,
            });
        }
        Ok(())
    }

    fn init_global_data_maps(&mut self) -> Result<()> {
        // Hostile-input bound: the first type of each name, indexed once,
        // rather than a scan of every type per data section
        // (`btf__find_by_name`; thousands of sections × millions of types).
        // Only names starting with '.' can match a data section's name, so
        // only those are indexed (performance: hashing every type name was a
        // visible share of opening an object).
        let mut first_by_name: HashMap<&str, u32> = HashMap::new();
        if let Some(btf) = &self.obj.btf
            && self
                .sec_kinds
                .iter()
                .any(|k| matches!(k, SecKind::Data | SecKind::Rodata | SecKind::Bss))
        {
            for id in 1..btf.type_cnt() {
                let Ok(t) = btf.type_by_id(id) else { continue };
                if btf.name_first_byte(&t) == Some(b'.')
                    && let Ok(name) = btf.name_of(&t)
                {
                    first_by_name.entry(name).or_insert(id);
                }
            }
        }
        let mut total: u64 = 0;
        for sec in self.elf.sections.iter().skip(1) {
            let origin = match self.sec_kinds[sec.index] {
                SecKind::Data => MapOrigin::Data,
                SecKind::Rodata => MapOrigin::Rodata,
                SecKind::Bss => MapOrigin::Bss,
                _ => continue,
            };
            if sec.size == 0 {
                continue;
            }
            // Hostile-input bound, checked before the image is allocated
            // (a NOBITS `.bss` claims any size without file bytes): the
            // images, together, must fit the loader's data blob.
            total = total.saturating_add(sec.size);
            if total > crate::loader_abi::MAX_DATA_BLOB as u64 {
                return Err(Error::unsupported(format!(
                    "global data section of {} bytes exceeds the loader's {} MiB data limit",
                    sec.size,
                    crate::loader_abi::MAX_DATA_BLOB >> 20
                ))
                .in_section(sec.name));
            }
            let mut def = MapDef {
                map_type: map_type::ARRAY,
                key_size: 4,
                value_size: sec.size as u32,
                max_entries: 1,
                map_flags: if origin == MapOrigin::Rodata {
                    BPF_F_RDONLY_PROG
                } else {
                    0
                },
                ..MapDef::default()
            };
            if let Some(btf) = &self.obj.btf
                && let Some(&id) = first_by_name.get(sec.name)
            {
                def.value_type_id = id;
                if datasec_has_exposed_var(btf, id) {
                    def.map_flags |= BPF_F_MMAPABLE;
                }
            }
            let initial_value = if origin == MapOrigin::Bss {
                vec![0; sec.size as usize]
            } else {
                sec.data.to_vec()
            };
            self.obj.maps.push(Map {
                name: internal_map_name(&self.obj.kern_name, sec.name),
                real_name: sec.name.to_string(),
                origin,
                sec_idx: sec.index,
                sec_offset: 0,
                btf_var_idx: 0,
                def,
                inner: None,
                init_slots: Vec::new(),
                prog_slots: Vec::new(),
                initial_value,
                struct_ops: None,
            });
        }
        Ok(())
    }

    /// The `.kconfig` map, sized to the last kconfig extern.
    fn init_kconfig_map(&mut self) {
        let Some(size) = self.obj.externs.iter().rev().find_map(|e| match e.kind {
            ExternKind::Kcfg { data_off, size, .. } => Some(data_off + size),
            ExternKind::Ksym { .. } => None,
        }) else {
            return;
        };
        let mut def = MapDef {
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            map_flags: BPF_F_RDONLY_PROG,
            ..MapDef::default()
        };
        if let Some(btf) = &self.obj.btf
            && let Some(id) = btf.find_by_name(".kconfig").filter(|&id| id != 0)
        {
            def.value_type_id = id;
            if datasec_has_exposed_var(btf, id) {
                def.map_flags |= BPF_F_MMAPABLE;
            }
        }
        let symtab = self
            .elf
            .sections
            .iter()
            .position(|s| s.sh_type == elf::SHT_SYMTAB)
            .unwrap_or(0);
        self.obj.kconfig_map_idx = Some(self.obj.maps.len());
        self.obj.maps.push(Map {
            name: internal_map_name(&self.obj.kern_name, ".kconfig"),
            real_name: ".kconfig".to_string(),
            origin: MapOrigin::Kconfig,
            sec_idx: symtab,
            sec_offset: 0,
            btf_var_idx: 0,
            def,
            inner: None,
            init_slots: Vec::new(),
            prog_slots: Vec::new(),
            initial_value: vec![0; size as usize],
            struct_ops: None,
        });
    }

    /// The end of `bpf_object__init_user_btf_maps`: one ARENA map at most,
    /// and `__arena` globals only with one.
    fn init_arena(&mut self) -> Result<()> {
        let mut arena_idx = None;
        for (i, m) in self.obj.maps.iter().enumerate() {
            if m.def.map_type != map_type::ARENA {
                continue;
            }
            if let Some(first) = arena_idx {
                let first: &Map = &self.obj.maps[first];
                return Err(Error::unsupported(format!(
                    "map '{}': only single ARENA map is supported (map '{}' is also ARENA)",
                    m.name, first.name
                ))
                .in_section(MAPS_SEC));
            }
            arena_idx = Some(i);
        }
        let Some(sec) = self
            .elf
            .sections
            .iter()
            .find(|s| self.sec_kinds[s.index] == SecKind::Arena)
        else {
            return Ok(());
        };
        let Some(map_idx) = arena_idx else {
            return Err(Error::unsupported(format!(
                "elf: sec '{ARENA_SEC}': to use global __arena variables the ARENA map should be explicitly declared in SEC(\".maps\")"
            ))
            .in_section(ARENA_SEC));
        };
        self.obj.arena = Some(ArenaData {
            map_idx,
            sec_idx: sec.index,
            data: sec.data.to_vec(),
        });
        Ok(())
    }

    /// `bpf_object_init_struct_ops`: struct_ops maps come last, by section.
    fn init_struct_ops_maps(&mut self) -> Result<()> {
        for sec in &self.elf.sections {
            if self.sec_kinds[sec.index] != SecKind::StructOps {
                continue;
            }
            let btf = self.obj.btf.as_ref().expect("checked in collect_sections");
            let maps = struct_ops::collect_maps(btf, sec)?;
            self.obj.maps.extend(maps);
        }
        Ok(())
    }

    fn init_progs(&mut self) {
        for prog in &mut self.obj.programs {
            prog.sec_def = section_defs::find_section_def(&prog.sec_name);
        }
    }

    fn section_name(&self, idx: usize) -> &str {
        self.elf.sections.get(idx).map(|s| s.name).unwrap_or("<?>")
    }

    fn collect_relos(&mut self) -> Result<()> {
        let lookup = RelocLookup::new(&self.obj, self.maps_shndx);
        for sec in self.elf.sections.iter().skip(1) {
            if self.sec_kinds[sec.index] != SecKind::Relo {
                continue;
            }
            let rels = self.elf.rels(sec)?;
            let target = sec.info as usize;
            if Some(target) == self.maps_shndx {
                self.collect_map_relos(sec, &rels)?;
            } else if self.sec_kinds.get(target) == Some(&SecKind::StructOps) {
                struct_ops::collect_relos(&mut self.obj, self.elf, sec, &rels)?;
            } else {
                self.collect_prog_relos(sec, target, &rels, &lookup)?;
            }
        }
        for prog in &mut self.obj.programs {
            prog.relocs.sort_by_key(|r| (r.insn_idx, r.kind.order()));
        }
        Ok(())
    }

    fn collect_prog_relos(
        &mut self,
        relsec: &Section<'a>,
        target: usize,
        rels: &[elf::Rel],
        lookup: &RelocLookup,
    ) -> Result<()> {
        let target_sec = &self.elf.sections[target];
        for (i, rel) in rels.iter().enumerate() {
            let at = (i * 16) as u64;
            let sym = self.elf.symbols.get(rel.sym as usize).ok_or_else(|| {
                Error::elf(format!("symbol #{} not found for relo #{i}", rel.sym))
                    .in_section(relsec.name)
                    .at(at)
            })?;
            if sym.shndx as usize >= self.elf.sections.len() && sym.shndx < elf::SHN_LORESERVE {
                return Err(
                    Error::elf(format!("corrupted symbol #{} pointing to invalid section", rel.sym))
                        .in_section(relsec.name)
                        .at(at),
                );
            }
            if rel.offset % 8 != 0 || rel.offset >= target_sec.data.len() as u64 {
                return Err(Error::elf(format!("invalid offset {:#x} for relo #{i}", rel.offset))
                    .in_section(relsec.name)
                    .at(at));
            }
            let sec_insn = (rel.offset / 8) as usize;
            let Some(prog_idx) = find_prog_by_sec_insn(&self.obj.programs, target, sec_insn) else {
                continue;
            };
            let sym_name = if sym.typ == elf::STT_SECTION && sym.name_off == 0 {
                self.section_name(sym.shndx as usize).to_string()
            } else {
                sym.name.to_string()
            };
            let prog = &self.obj.programs[prog_idx];
            let insn_idx = sec_insn - prog.sec_insn_off;
            let insn = prog.insns[insn_idx];
            let fail = |msg: String| {
                Err(Error::reloc(format!("prog '{}': {msg}", prog.name))
                    .in_section(target_sec.name)
                    .at(rel.offset))
            };
            if !insn.is_call() && !insn.is_ldimm64() {
                return fail(format!(
                    "invalid relo against '{sym_name}' for insns[{insn_idx}].code {:#x}",
                    insn.code
                ));
            }
            let kind = if sym.is_extern() {
                let ext_idx = RelocLookup::first(&lookup.extern_of_sym, rel.sym as u64).ok_or_else(|| {
                    Error::reloc(format!(
                        "prog '{}': extern relo failed to find extern for '{sym_name}' ({})",
                        prog.name, rel.sym
                    ))
                    .in_section(target_sec.name)
                    .at(rel.offset)
                })?;
                if insn.is_call() {
                    RelocKind::ExternCall { ext_idx }
                } else {
                    RelocKind::ExternLd64 { ext_idx }
                }
            } else if insn.is_call() {
                if insn.src_reg() != crate::insn::BPF_PSEUDO_CALL {
                    return fail("incorrect bpf_call opcode".into());
                }
                if sym.shndx == 0 || Some(sym.shndx as usize) != self.obj.text_shndx {
                    return fail(format!(
                        "bad call relo against '{sym_name}' in section '{}'",
                        self.section_name(sym.shndx as usize)
                    ));
                }
                if sym.value % 8 != 0 {
                    return fail(format!("bad call relo against '{sym_name}' at offset {}", sym.value));
                }
                RelocKind::Call { sym_off: sym.value }
            } else {
                let shndx = sym.shndx;
                if shndx == 0 || shndx >= elf::SHN_LORESERVE {
                    return fail(format!(
                        "invalid relo against '{sym_name}' in special section {shndx:#x}; forgot to initialize global var?.."
                    ));
                }
                let is_subprog_sym = Some(shndx as usize) == self.obj.text_shndx
                    && ((sym.bind == elf::STB_LOCAL && sym.typ == elf::STT_SECTION)
                        || (sym.is_global_or_weak() && sym.typ == elf::STT_FUNC));
                if is_subprog_sym {
                    if sym.value % 8 != 0 || insn.imm % 8 != 0 {
                        return fail(format!(
                            "bad subprog addr relo against '{sym_name}' at offset {}+{}",
                            sym.value, insn.imm
                        ));
                    }
                    RelocKind::SubprogAddr { sym_off: sym.value }
                } else if Some(shndx as usize) == self.maps_shndx {
                    let map_idx = RelocLookup::first(&lookup.user_map_at, sym.value).ok_or_else(|| {
                        Error::reloc(format!(
                            "prog '{}': map relo failed to find map for section '{}', off {}",
                            prog.name, MAPS_SEC, sym.value
                        ))
                        .in_section(target_sec.name)
                        .at(rel.offset)
                    })?;
                    RelocKind::Ld64 { map_idx }
                } else if let Some(arena) = self.obj.arena.as_ref().filter(|a| a.sec_idx == shndx as usize) {
                    RelocKind::Data {
                        map_idx: arena.map_idx,
                        sym_off: sym.value,
                    }
                } else {
                    let sec_kind = self.sec_kinds.get(shndx as usize).copied().unwrap_or(SecKind::None);
                    if !matches!(sec_kind, SecKind::Data | SecKind::Rodata | SecKind::Bss) {
                        return fail(format!(
                            "bad data relo against section '{}'",
                            self.section_name(shndx as usize)
                        ));
                    }
                    let map_idx = RelocLookup::first(&lookup.data_map_of, shndx as u64).ok_or_else(|| {
                        Error::reloc(format!(
                            "prog '{}': data relo failed to find map for section '{}'",
                            prog.name,
                            self.section_name(shndx as usize)
                        ))
                        .in_section(target_sec.name)
                        .at(rel.offset)
                    })?;
                    RelocKind::Data {
                        map_idx,
                        sym_off: sym.value,
                    }
                }
            };
            self.obj.programs[prog_idx].relocs.push(Reloc { insn_idx, kind });
        }
        Ok(())
    }

    fn collect_map_relos(&mut self, relsec: &Section<'a>, rels: &[elf::Rel]) -> Result<()> {
        let btf = self.obj.btf.as_ref().expect(".maps implies BTF");
        let datasec = btf.type_by_id(self.maps_sec_btf_id)?;
        let infos = btf.secinfos(&datasec);
        for (i, rel) in rels.iter().enumerate() {
            let at = (i * 16) as u64;
            let err = |msg: String| {
                Error::reloc(format!(".maps relo #{i}: {msg}"))
                    .in_section(relsec.name)
                    .at(at)
            };
            let sym = self
                .elf
                .symbols
                .get(rel.sym as usize)
                .ok_or_else(|| err(format!("symbol {:#x} not found", rel.sym)))?;
            let owner = self.obj.maps.iter().position(|m| {
                m.origin == MapOrigin::User && {
                    let vi = infos[m.btf_var_idx];
                    // r_offset is the object's: checked, it may be near u64::MAX.
                    vi.offset as u64 <= rel.offset
                        && rel
                            .offset
                            .checked_add(8)
                            .is_some_and(|end| end <= vi.offset as u64 + vi.size as u64)
                }
            });
            let owner = owner.ok_or_else(|| {
                err(format!(
                    "cannot find map '{}' at rel->r_offset {}",
                    sym.name, rel.offset
                ))
            })?;
            let map = &self.obj.maps[owner];
            let is_mim = map_type::is_map_in_map(map.def.map_type);
            let is_prog_array = map.def.map_type == map_type::PROG_ARRAY;
            enum Target {
                Map(usize),
                Prog(String),
            }
            let target = if is_mim {
                if Some(sym.shndx as usize) != self.maps_shndx {
                    return Err(err(format!("'{}' isn't a BTF-defined map", sym.name)));
                }
                if map.def.map_type == map_type::HASH_OF_MAPS && map.def.key_size != 4 {
                    return Err(err(format!("hash-of-maps '{}' should have key size 4.", map.name)));
                }
                let idx = self
                    .obj
                    .maps
                    .iter()
                    .position(|m| m.name == sym.name)
                    .ok_or_else(|| err(format!("'{}' isn't a valid map reference", sym.name)))?;
                Target::Map(idx)
            } else if is_prog_array {
                let prog = self
                    .obj
                    .programs
                    .iter()
                    .find(|p| p.name == sym.name)
                    .ok_or_else(|| err(format!("'{}' isn't a valid program reference", sym.name)))?;
                if prog.sec_idx != sym.shndx as usize || (prog.sec_insn_off * 8) as u64 != sym.value || prog.is_subprog
                {
                    return Err(err(format!("'{}' isn't an entry-point program", sym.name)));
                }
                Target::Prog(prog.name.clone())
            } else {
                return Err(err(format!("map '{}' cannot have static initialisers", map.name)));
            };
            let vi = infos[map.btf_var_idx];
            let var = btf.type_by_id(vi.type_id)?;
            let (_, def_t) = btf.skip_mods_and_typedefs(var.size_or_type)?;
            let def_t = def_t.ok_or_else(|| err("map definition is void".into()))?;
            let members = btf.members(&def_t);
            let last = members
                .last()
                .ok_or_else(|| err("map definition has no members".into()))?;
            if btf.str_at(last.name_off)? != "values" {
                return Err(err("static initialiser outside 'values'".into()));
            }
            let moff = (Btf::member_bit_offset(&def_t, last) / 8) as u64;
            let rel_in_var = rel.offset - vi.offset as u64;
            if rel_in_var < moff || !(rel_in_var - moff).is_multiple_of(8) {
                return Err(err("misaligned static initialiser".into()));
            }
            let slot = ((rel_in_var - moff) / 8) as usize;
            if slot > 1 << 20 {
                return Err(err(format!("slot {slot} is out of range")));
            }
            let map = &mut self.obj.maps[owner];
            match target {
                Target::Map(idx) => {
                    if map.init_slots.len() <= slot {
                        map.init_slots.resize(slot + 1, None);
                    }
                    map.init_slots[slot] = Some(idx);
                }
                Target::Prog(name) => {
                    if map.prog_slots.len() <= slot {
                        map.prog_slots.resize(slot + 1, None);
                    }
                    map.prog_slots[slot] = Some(name);
                }
            }
        }
        Ok(())
    }
}

/// True if a DATASEC has a non-static VAR (libbpf's `map_is_mmapable`).
fn datasec_has_exposed_var(btf: &Btf, id: u32) -> bool {
    let Ok(t) = btf.type_by_id(id) else { return false };
    if t.kind() != kind::DATASEC {
        return false;
    }
    btf.secinfos(&t).iter().any(|vsi| {
        btf.type_by_id(vsi.type_id)
            .is_ok_and(|v| v.kind() == kind::VAR && btf.tail_u32(&v) != linkage::STATIC)
    })
}

/// The integer encoded by a `__uint(name, val)` field: pointer to an array of `val` elements.
fn map_field_int(btf: &Btf, map_name: &str, field: &str, type_id: u32) -> Result<u32> {
    let err = |msg: &str| Error::btf(format!("map '{map_name}': attr '{field}': {msg}")).in_section(MAPS_SEC);
    let (_, t) = btf.skip_mods_and_typedefs(type_id)?;
    let t = t.filter(|t| t.kind() == kind::PTR).ok_or_else(|| err("expected PTR"))?;
    let arr = btf.type_by_id(t.size_or_type)?;
    if arr.kind() != kind::ARRAY {
        return Err(err("expected ARRAY"));
    }
    Ok(btf.array(&arr).2)
}

fn map_field_long(btf: &Btf, map_name: &str, field: &str, type_id: u32) -> Result<u64> {
    let (_, t) = btf.skip_mods_and_typedefs(type_id)?;
    match t {
        Some(t) if t.kind() == kind::PTR => Ok(map_field_int(btf, map_name, field, type_id)? as u64),
        Some(t) if (t.kind() == kind::ENUM || t.kind() == kind::ENUM64) && t.vlen() == 1 => {
            Ok(btf.enum_values(&t)[0].1)
        }
        _ => Err(Error::btf(format!("map '{map_name}': attr '{field}': expected ENUM or ENUM64")).in_section(MAPS_SEC)),
    }
}

fn pointee_size(btf: &Btf, map_name: &str, field: &str, type_id: u32) -> Result<(u32, u32)> {
    let t = btf.type_by_id(type_id)?;
    if t.kind() != kind::PTR {
        return Err(Error::btf(format!("map '{map_name}': {field} spec is not PTR")).in_section(MAPS_SEC));
    }
    Ok((btf.resolve_size(t.size_or_type)?, t.size_or_type))
}

/// Read a BTF-defined map definition (`parse_btf_map_def`).
fn parse_btf_map_def(btf: &Btf, map_name: &str, def_id: u32, mut inner: Option<&mut MapDef>) -> Result<MapDef> {
    let def_t = btf.type_by_id(def_id)?;
    let members = btf.members(&def_t);
    let mut def = MapDef::default();
    let err = |msg: String| Error::btf(format!("map '{map_name}': {msg}")).in_section(MAPS_SEC);
    let vlen = members.len();
    for (i, m) in members.iter().enumerate() {
        let name = btf.str_at(m.name_off)?;
        let set_size = |cur: &mut u32, sz: u32, what: &str| -> Result<()> {
            if *cur != 0 && *cur != sz {
                return Err(err(format!("conflicting {what} size {} != {sz}.", *cur)));
            }
            *cur = sz;
            Ok(())
        };
        match name {
            "type" => def.map_type = map_field_int(btf, map_name, name, m.type_id)?,
            "max_entries" => def.max_entries = map_field_int(btf, map_name, name, m.type_id)?,
            "map_flags" => def.map_flags = map_field_int(btf, map_name, name, m.type_id)?,
            "numa_node" => def.numa_node = map_field_int(btf, map_name, name, m.type_id)?,
            "key_size" => {
                let sz = map_field_int(btf, map_name, name, m.type_id)?;
                set_size(&mut def.key_size, sz, "key")?;
            }
            "value_size" => {
                let sz = map_field_int(btf, map_name, name, m.type_id)?;
                set_size(&mut def.value_size, sz, "value")?;
            }
            "key" => {
                let (sz, id) = pointee_size(btf, map_name, "key", m.type_id)?;
                set_size(&mut def.key_size, sz, "key")?;
                def.key_type_id = id;
            }
            "value" => {
                let (sz, id) = pointee_size(btf, map_name, "value", m.type_id)?;
                set_size(&mut def.value_size, sz, "value")?;
                def.value_type_id = id;
            }
            "values" => {
                let Some(inner_def) = inner.as_deref_mut() else {
                    return Err(
                        Error::unsupported(format!("map '{map_name}': multi-level inner maps not supported."))
                            .in_section(MAPS_SEC),
                    );
                };
                if i != vlen - 1 {
                    return Err(err(format!("'{name}' member should be last.")));
                }
                let mim = map_type::is_map_in_map(def.map_type);
                let prog_array = def.map_type == map_type::PROG_ARRAY;
                if !mim && !prog_array {
                    return Err(
                        Error::unsupported(format!("map '{map_name}': should be map-in-map or prog-array."))
                            .in_section(MAPS_SEC),
                    );
                }
                if def.value_size != 0 && def.value_size != 4 {
                    return Err(err(format!("conflicting value size {} != 4.", def.value_size)));
                }
                def.value_size = 4;
                let arr = btf.type_by_id(m.type_id)?;
                if arr.kind() != kind::ARRAY || btf.array(&arr).2 != 0 {
                    return Err(err("value type should be a zero-sized array.".into()));
                }
                let (_, ptr) = btf.skip_mods_and_typedefs(btf.array(&arr).0)?;
                let ptr = ptr
                    .filter(|t| t.kind() == kind::PTR)
                    .ok_or_else(|| err("value type should be an array of pointers".into()))?;
                let (_, target) = btf.skip_mods_and_typedefs(ptr.size_or_type)?;
                if prog_array {
                    if target.is_none_or(|t| t.kind() != kind::FUNC_PROTO) {
                        return Err(err("prog-array value def is not a function prototype".into()));
                    }
                    continue;
                }
                let target = target
                    .filter(|t| t.kind() == kind::STRUCT)
                    .ok_or_else(|| err("map-in-map inner def is not a struct".into()))?;
                *inner_def = parse_btf_map_def(btf, &format!("{map_name}.inner"), target.id, None)?;
                def.has_inner = true;
            }
            "pinning" => {
                if inner.is_none() {
                    return Err(err("inner def can't be pinned.".into()));
                }
                let v = map_field_int(btf, map_name, name, m.type_id)?;
                if v > 1 {
                    return Err(err(format!("invalid pinning value {v}.")));
                }
                def.pinning = v;
            }
            "map_extra" => def.map_extra = map_field_long(btf, map_name, name, m.type_id)?,
            _ => {
                // bpf_object__open runs with strict map definitions.
                return Err(
                    Error::unsupported(format!("map '{map_name}': unknown field '{name}'.")).in_section(MAPS_SEC)
                );
            }
        }
    }
    if def.map_type == 0 {
        return Err(err("map type isn't specified.".into()));
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::internal_map_name;

    #[test]
    fn internal_names_follow_libbpf() {
        assert_eq!(internal_map_name("p_bpf", ".bss"), "p_bpf.bss");
        assert_eq!(internal_map_name("my_object_name", ".rodata"), "my_objec.rodata");
        assert_eq!(internal_map_name("my_object_name", ".bss"), "my_objec.bss");
        assert_eq!(internal_map_name("my_object_name", ".kconfig"), "my_obje.kconfig");
        assert_eq!(internal_map_name("x", ".rodata.str_custom"), ".rodata.str_cus");
        assert_eq!(internal_map_name("x", ".rodata.str1.1"), ".rodata.str1.1");
    }
}
