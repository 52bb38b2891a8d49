//! Relocation collection: what each program instruction refers to (a map,
//! global data, an extern, a sub-program), in libbpf's `bpf_program__record_reloc` terms.

use super::open::{Opener, SecKind};
use super::*;
use crate::btf::Btf;
use crate::elf::{self, Section};
use crate::error::{Error, Result};
use crate::section_defs::map_type;

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

impl<'a> Opener<'a, '_> {
    pub(super) fn collect_relos(&mut self) -> Result<()> {
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
            // Borrowed from the ELF image: only error messages read it, and a
            // copy per relocation was one allocation each.
            let image = self.elf;
            let sym_name: &str = if sym.typ == elf::STT_SECTION && sym.name_off == 0 {
                image.sections.get(sym.shndx as usize).map_or("<?>", |s| s.name)
            } else {
                sym.name
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
                // The loader stores each slot as a 4-byte key and a 4-byte fd,
                // the only sizes the kernel's prog arrays take.
                if map.def.key_size != 4 || map.def.value_size != 4 {
                    return Err(err(format!(
                        "prog-array '{}' with static initialisers should have key and value size 4.",
                        map.name
                    )));
                }
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
