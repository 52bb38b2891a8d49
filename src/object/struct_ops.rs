//! struct_ops maps in the open phase (`SEC(".struct_ops")`,
//! `SEC(".struct_ops.link")`, and their `?` forms): one map per variable of
//! the section, each with the object's image of its value, and the
//! relocations that name the program stored in each function-pointer
//! member. Translating the value into the kernel's layout is the load
//! phase's (`crate::struct_ops`).

use super::{Map, MapDef, MapOrigin, Object, Program, find_prog_by_sec_insn};
use crate::btf::{Btf, kind};
use crate::elf::{self, Elf, Section};
use crate::error::{Error, Result};
use crate::section_defs::{BPF_F_LINK, map_type, prog_type};

/// Open-phase state of one struct_ops map (libbpf's `struct bpf_struct_ops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOps {
    /// The struct type in the object's BTF.
    pub type_id: u32,
    pub type_name: String,
    /// The variable's initial image, in the object's layout.
    pub data: Vec<u8>,
    /// Per member of the struct: the program its function pointer names.
    pub progs: Vec<Option<usize>>,
    /// False for `SEC("?.struct_ops…")`: not created unless asked for.
    pub autocreate: bool,
}

pub fn is_struct_ops_section(name: &str) -> bool {
    matches!(
        name,
        ".struct_ops" | ".struct_ops.link" | "?.struct_ops" | "?.struct_ops.link"
    )
}

fn init_error(msg: String, sec: &str) -> Error {
    Error::btf(format!("struct_ops init: {msg}")).in_section(sec)
}

/// `init_struct_ops_maps`: one map per variable of the section's DATASEC.
pub fn collect_maps(btf: &Btf, sec: &Section) -> Result<Vec<Map>> {
    let sec_name = sec.name;
    let datasec_id = btf
        .find_by_name_kind(sec_name, kind::DATASEC)
        .ok_or_else(|| init_error(format!("DATASEC {sec_name} not found"), sec_name))?;
    let datasec = btf.type_by_id(datasec_id)?;
    let (autocreate, plain_name) = match sec_name.strip_prefix('?') {
        Some(rest) => (false, rest),
        None => (true, sec_name),
    };
    let mut maps = Vec::new();
    for (var_idx, vsi) in btf.secinfo_iter(&datasec).enumerate() {
        let var = btf.type_by_id(vsi.type_id)?;
        let var_name = btf.name_of(&var)?.to_string();
        let (type_id, t) = btf.skip_mods_and_typedefs(var.size_or_type).map_err(|_| {
            init_error(
                format!("Cannot resolve var type_id {} in DATASEC {sec_name}", vsi.type_id),
                sec_name,
            )
        })?;
        let Some(t) = t else {
            return Err(init_error(
                format!("Cannot resolve var type_id {} in DATASEC {sec_name}", vsi.type_id),
                sec_name,
            ));
        };
        let type_name = btf.name_of(&t)?.to_string();
        if type_name.is_empty() {
            return Err(Error::unsupported("struct_ops init: anonymous type is not supported").in_section(sec_name));
        }
        if t.kind() != kind::STRUCT {
            return Err(init_error(format!("{type_name} is not a struct"), sec_name));
        }
        let size = t.size_or_type;
        let end = vsi.offset as u64 + size as u64;
        if end > sec.data.len() as u64 {
            return Err(init_error(
                format!("var {var_name} is beyond the end of DATASEC {sec_name}"),
                sec_name,
            )
            .at(vsi.offset as u64));
        }
        let data = sec.data[vsi.offset as usize..end as usize].to_vec();
        maps.push(Map {
            name: var_name.clone(),
            real_name: var_name,
            origin: MapOrigin::StructOps,
            sec_idx: sec.index,
            sec_offset: vsi.offset as u64,
            btf_var_idx: var_idx,
            def: MapDef {
                map_type: map_type::STRUCT_OPS,
                key_size: 4,
                value_size: size,
                max_entries: 1,
                map_flags: if plain_name == ".struct_ops.link" {
                    BPF_F_LINK
                } else {
                    0
                },
                value_type_id: type_id,
                ..MapDef::default()
            },
            inner: None,
            init_slots: Vec::new(),
            prog_slots: Vec::new(),
            initial_value: Vec::new(),
            struct_ops: Some(Box::new(StructOps {
                type_id,
                type_name,
                progs: vec![None; t.vlen() as usize],
                data,
                autocreate,
            })),
        });
    }
    Ok(maps)
}

/// Whether a member type is a pointer to a function prototype
/// (`resolve_func_ptr`).
fn is_func_ptr(btf: &Btf, type_id: u32) -> bool {
    let Ok((_, Some(t))) = btf.skip_mods_and_typedefs(type_id) else {
        return false;
    };
    if t.kind() != kind::PTR {
        return false;
    }
    matches!(btf.skip_mods_and_typedefs(t.size_or_type), Ok((_, Some(p))) if p.kind() == kind::FUNC_PROTO)
}

/// `bpf_object__collect_st_ops_relos`: each relocation of a struct_ops
/// section names the program stored in one function-pointer member.
pub fn collect_relos(obj: &mut Object, elf: &Elf, relsec: &Section, rels: &[elf::Rel]) -> Result<()> {
    let target = relsec.info as usize;
    let btf = obj.btf.as_ref().ok_or_else(|| Error::btf("struct_ops maps need BTF"))?;
    for (i, rel) in rels.iter().enumerate() {
        let at = (i * 16) as u64;
        let reloc_err = |msg: String| {
            Error::reloc(format!("struct_ops reloc{msg}"))
                .in_section(relsec.name)
                .at(at)
        };
        let sym = elf
            .symbols
            .get(rel.sym as usize)
            .ok_or_else(|| reloc_err(format!(": symbol {:x} not found", rel.sym)))?;
        let map_idx = obj
            .maps
            .iter()
            .position(|m| {
                m.struct_ops.is_some()
                    && m.sec_idx == target
                    && m.sec_offset <= rel.offset
                    && rel.offset - m.sec_offset < m.def.value_size as u64
            })
            .ok_or_else(|| reloc_err(format!(": cannot find map at rel->r_offset {}", rel.offset)))?;
        let map = &obj.maps[map_idx];
        let st = map.struct_ops.as_ref().expect("filtered on struct_ops");
        let moff = rel.offset - map.sec_offset;
        let map_err = |msg: String| reloc_err(format!(" {}: {msg}", map.name));
        if sym.shndx >= elf::SHN_LORESERVE {
            return Err(map_err(format!(
                "rel->r_offset {} shdr_idx {} unsupported non-static function",
                rel.offset, sym.shndx
            )));
        }
        if sym.value % 8 != 0 {
            return Err(map_err(format!("invalid target program offset {}", sym.value)));
        }
        let t = btf.type_by_id(st.type_id)?;
        let members = btf.members(&t);
        let member_idx = members
            .iter()
            .position(|m| Btf::member_bit_offset(&t, m) as u64 == moff * 8)
            .ok_or_else(|| map_err(format!("cannot find member at moff {moff}")))?;
        let member = members[member_idx];
        let member_name = btf.str_at(member.name_off)?;
        if !is_func_ptr(btf, member.type_id) {
            return Err(map_err(format!("cannot relocate non func ptr {member_name}")));
        }
        let prog_idx =
            find_prog_by_sec_insn(&obj.programs, sym.shndx as usize, (sym.value / 8) as usize).ok_or_else(|| {
                map_err(format!(
                    "cannot find prog at shdr_idx {} to relocate func ptr {member_name}",
                    sym.shndx
                ))
            })?;
        let prog: &Program = &obj.programs[prog_idx];
        if prog.load_attrs().prog_type != prog_type::STRUCT_OPS {
            return Err(map_err(format!("prog {} is not struct_ops BPF program", prog.name)));
        }
        obj.maps[map_idx]
            .struct_ops
            .as_mut()
            .expect("filtered on struct_ops")
            .progs[member_idx] = Some(prog_idx);
    }
    Ok(())
}
