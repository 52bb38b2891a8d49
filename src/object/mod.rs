//! libbpf's open phase: from ELF sections, symbols and BTF to the object's
//! programs, maps and relocation records, in libbpf's order. The result is a
//! plain value that the load phase (`link.rs`) and the emitter consume.
//!
//! This file is the model (what an opened object is); each submodule answers
//! one question of the open phase:
//! - [`open`]: which sections hold what, the programs, BTF fix-ups (the driver);
//! - [`maps`]: which maps the object defines (BTF-defined, global data, kconfig, arena);
//! - [`relocs`]: what each program instruction refers to;
//! - [`struct_ops`]: struct_ops maps and their function-pointer relocations.

mod maps;
mod open;
mod relocs;
pub mod struct_ops;

pub use open::open;
pub use relocs::find_prog_by_sec_insn;

use crate::btf::Btf;
use crate::btf::ext::BtfExt;
use crate::externs::Extern;
use crate::insn::Insn;
use crate::section_defs::{BPF_F_MMAPABLE, LoadAttrs, SectionDef};

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
    /// The kernel function a BTF-attach program attaches to, given by the
    /// user ([`Object::set_attach_target`]); `None`: the section name's.
    pub attach_target: Option<String>,
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

/// Why [`Object::set_attach_target`] refused a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachTargetError {
    /// No entry program of that name.
    NoProgram,
    /// The program does not attach through kernel BTF (its section says how).
    NotBtfAttach { section: String },
    /// `freplace` programs attach to another BPF program, which a loader
    /// program cannot be given.
    Freplace,
}

impl AttachTargetError {
    /// The reason, as the CLI and the Python API both report it.
    pub fn describe(&self, prog: &str, func: &str) -> String {
        let prog_r = crate::json::py_repr(prog);
        match self {
            AttachTargetError::NoProgram => format!("no program {prog_r}"),
            AttachTargetError::NotBtfAttach { section } => format!(
                "{prog}={func}: program {prog_r} (section {}) does not attach through kernel BTF \
                 (fentry, fexit, fmod_ret, lsm, lsm_cgroup, tp_btf, iter)",
                crate::json::py_repr(section)
            ),
            AttachTargetError::Freplace => format!(
                "{prog}={func}: program {prog_r} is freplace: it attaches to another BPF program, \
                 which a loader program cannot be given"
            ),
        }
    }
}

impl Object {
    /// What `bpf_program__set_attach_target(prog, 0, func)` means for a
    /// vmlinux target, done the light skeleton's way: the loader looks `func`
    /// up in the kernel's BTF at run time, exactly as for a program in
    /// `SEC("fentry/func")` (with the section's prefix, e.g. `bpf_lsm_` for
    /// `lsm`). `func` is spelt as in a section name.
    pub fn set_attach_target(&mut self, prog: &str, func: &str) -> std::result::Result<(), AttachTargetError> {
        let p = self
            .programs
            .iter_mut()
            .find(|p| !p.is_subprog && p.name == prog)
            .ok_or(AttachTargetError::NoProgram)?;
        match p.sec_def {
            Some(d) if d.needs_btf_attach_target() && d.prog_type == crate::section_defs::prog_type::EXT => {
                Err(AttachTargetError::Freplace)
            }
            Some(d) if d.needs_btf_attach_target() => {
                p.attach_target = Some(func.to_string());
                Ok(())
            }
            _ => Err(AttachTargetError::NotBtfAttach {
                section: p.sec_name.clone(),
            }),
        }
    }
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
    fn collect<'s>(names: impl ExactSizeIterator<Item = &'s str> + Clone) -> Names {
        // sized up front: growing the buffer name by name cost several reallocations
        // per open
        let mut out = Names {
            buf: String::with_capacity(names.clone().map(str::len).sum()),
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
