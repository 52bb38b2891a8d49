//! struct_ops maps (`SEC(".struct_ops")`, `SEC(".struct_ops.link")`, and
//! their `?` forms): libbpf's open-phase collection of the maps and their
//! function-pointer relocations, and the load-phase translation of each
//! map's value into the kernel's `bpf_struct_ops_<type>` layout.
//!
//! libbpf 1.5's generator dereferences a NULL vmlinux BTF here and bpftool
//! crashes (README: divergences). We need the kernel's struct layout at
//! generation time (member offsets and indices, value size): it comes from an
//! explicit kernel BTF file. Kernel *type ids* are not taken from it: the
//! loader looks them up at run time, so the skeleton is not tied to the
//! generating kernel's BTF numbering.

use crate::btf::{Btf, essential_name, kind};
use crate::elf::{self, Elf, Section};
use crate::error::{Error, Result};
use crate::object::{Map, MapDef, MapOrigin, Object, Program, find_prog_by_sec_insn};
use crate::section_defs::{BPF_F_LINK, map_type, prog_type};

pub const VALUE_PREFIX: &str = "bpf_struct_ops_";

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
    for (var_idx, vsi) in btf.secinfos(&datasec).into_iter().enumerate() {
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

/// A struct_ops map translated to the kernel's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernStructOps {
    pub map_idx: usize,
    /// The kernel struct, e.g. `tcp_congestion_ops` (looked up at run time).
    pub kern_type_name: String,
    /// Size of `struct bpf_struct_ops_<type>`: the map's value size.
    pub value_size: u32,
    /// The value the loader writes: data members copied to the kernel's
    /// offsets, function-pointer slots zero until the loader stores fds.
    pub vdata: Vec<u8>,
    /// (offset in `vdata`, program index) for each function pointer set.
    pub func_slots: Vec<(u32, usize)>,
}

/// What struct_ops resolution decides for the object's programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructOpsPlan {
    pub maps: Vec<KernStructOps>,
    /// Per program: (kernel struct name, member index) for PROG_LOAD's
    /// attach target and expected_attach_type.
    pub prog_attach: Vec<Option<(String, u32)>>,
    /// Per program: the autoload value after struct_ops adjustment.
    pub autoload: Vec<bool>,
}

fn kern_err(map: &str, msg: String) -> Error {
    Error::unsupported(format!("struct_ops init_kern {map}: {msg}"))
}

/// `bpf_object__init_kern_struct_ops_maps` followed by
/// `bpf_object_adjust_struct_ops_autoload`, against the kernel BTF `kern`.
pub fn plan(obj: &Object, kern: &Btf) -> Result<StructOpsPlan> {
    let btf = obj.btf.as_ref().ok_or_else(|| Error::btf("struct_ops maps need BTF"))?;
    let mut plan = StructOpsPlan {
        maps: Vec::new(),
        prog_attach: vec![None; obj.programs.len()],
        autoload: obj.programs.iter().map(|p| p.autoload).collect(),
    };
    for (map_idx, map) in obj.maps.iter().enumerate() {
        let Some(st) = &map.struct_ops else { continue };
        if !st.autocreate {
            continue;
        }
        let progs = &st.progs;
        let tname = essential_name(&st.type_name);
        let vname = format!("{VALUE_PREFIX}{tname}");
        let vtype_id = kern.find_by_name_kind(&vname, kind::STRUCT).ok_or_else(|| {
            Error::unsupported(format!(
                "struct_ops init_kern: struct {vname} is not found in kernel BTF"
            ))
        })?;
        let kern_type_id = kern.find_by_name_kind(tname, kind::STRUCT).ok_or_else(|| {
            Error::unsupported(format!(
                "struct_ops init_kern: struct {tname} is not found in kernel BTF"
            ))
        })?;
        let vtype = kern.type_by_id(vtype_id)?;
        let data_member = kern
            .members(&vtype)
            .into_iter()
            .find(|m| m.type_id == kern_type_id)
            .ok_or_else(|| {
                Error::unsupported(format!(
                    "struct_ops init_kern: struct {tname} data is not found in struct {vname}"
                ))
            })?;
        let kern_t = kern.type_by_id(kern_type_id)?;
        let kern_members = kern.members(&kern_t);
        let kern_data_off = Btf::member_bit_offset(&vtype, &data_member) / 8;
        let mut vdata = vec![0u8; vtype.size_or_type as usize];
        let mut func_slots = Vec::new();
        let t = btf.type_by_id(st.type_id)?;
        for (i, member) in btf.members(&t).into_iter().enumerate() {
            let mname = btf.str_at(member.name_off)?;
            let moff = (Btf::member_bit_offset(&t, &member) / 8) as usize;
            let msize = btf
                .resolve_size(member.type_id)
                .map_err(|_| kern_err(&map.name, format!("failed to resolve the size of member {mname}")))?
                as usize;
            let mdata = st.data.get(moff..moff + msize).unwrap_or(&[]);
            let kern_idx = kern_members
                .iter()
                .position(|km| kern.str_at(km.name_off).is_ok_and(|n| n == mname));
            let Some(kern_idx) = kern_idx else {
                if progs[i].is_some() || mdata.iter().any(|&b| b != 0) {
                    return Err(kern_err(&map.name, format!("Cannot find member {mname} in kernel BTF")));
                }
                continue;
            };
            let kern_member = kern_members[kern_idx];
            if Btf::member_bitfield_size(&t, &member) != 0 || Btf::member_bitfield_size(&kern_t, &kern_member) != 0 {
                return Err(kern_err(&map.name, format!("bitfield {mname} is not supported")));
            }
            let kern_moff = (Btf::member_bit_offset(&kern_t, &kern_member) / 8) as usize;
            let (_, mtype) = btf.skip_mods_and_typedefs(member.type_id)?;
            let (kern_mtype_id, kern_mtype) = kern.skip_mods_and_typedefs(kern_member.type_id)?;
            let mkind = mtype.map_or(0, |x| x.kind());
            let kkind = kern_mtype.map_or(0, |x| x.kind());
            if mkind != kkind {
                return Err(kern_err(
                    &map.name,
                    format!("Unmatched member type {mname} {mkind} != {kkind}(kernel)"),
                ));
            }
            if mkind == kind::PTR {
                let Some(prog_idx) = progs[i] else { continue };
                let pointee = kern_mtype.map_or(0, |x| x.size_or_type);
                let is_proto =
                    matches!(kern.skip_mods_and_typedefs(pointee), Ok((_, Some(p))) if p.kind() == kind::FUNC_PROTO);
                if !is_proto {
                    return Err(kern_err(&map.name, format!("kernel member {mname} is not a func ptr")));
                }
                let prog = &obj.programs[prog_idx];
                let want = (tname.to_string(), kern_idx as u32);
                match &plan.prog_attach[prog_idx] {
                    None => plan.prog_attach[prog_idx] = Some(want),
                    Some((t0, _)) if *t0 != want.0 => {
                        return Err(Error::unsupported(format!(
                            "struct_ops init_kern {} func ptr {mname}: invalid reuse of prog {} in sec {}: attach type struct {t0} != {}",
                            map.name, prog.name, prog.sec_name, want.0
                        )));
                    }
                    Some((_, idx0)) if *idx0 != want.1 => {
                        return Err(Error::unsupported(format!(
                            "struct_ops init_kern {} func ptr {mname}: invalid reuse of prog {} in sec {}: expected_attach_type {idx0} != kern_member_idx {}",
                            map.name, prog.name, prog.sec_name, want.1
                        )));
                    }
                    Some(_) => {}
                }
                func_slots.push(((kern_data_off as usize + kern_moff) as u32, prog_idx));
                continue;
            }
            let kern_msize = kern.resolve_size(kern_mtype_id).ok().map(|s| s as usize);
            if kern_msize != Some(msize) {
                return Err(kern_err(
                    &map.name,
                    format!(
                        "Error in size of member {mname}: {msize} != {}(kernel)",
                        kern_msize.map_or(-1, |s| s as i64)
                    ),
                ));
            }
            let dst = kern_data_off as usize + kern_moff;
            if let Some(out) = vdata.get_mut(dst..dst + msize)
                && mdata.len() == msize
            {
                out.copy_from_slice(mdata);
            }
        }
        plan.maps.push(KernStructOps {
            map_idx,
            kern_type_name: tname.to_string(),
            value_size: vtype.size_or_type,
            vdata,
            func_slots,
        });
    }
    // A struct_ops program referenced by some map loads iff one of those
    // maps is created. (libbpf also drops a program whose member the kernel
    // lacks, but such a member is never all-zero, so that is an error above.)
    for (prog_idx, p) in obj.programs.iter().enumerate() {
        if p.load_attrs().prog_type != prog_type::STRUCT_OPS {
            continue;
        }
        let mut uses = 0;
        let mut load = false;
        for m in &obj.maps {
            let Some(st) = &m.struct_ops else { continue };
            let n = st.progs.iter().filter(|&&x| x == Some(prog_idx)).count();
            uses += n;
            load |= n > 0 && st.autocreate;
        }
        if uses > 0 {
            plan.autoload[prog_idx] = load;
        }
    }
    Ok(plan)
}

/// Read and parse the kernel BTF that struct_ops layouts come from.
pub fn load_kernel_btf(path: &std::path::Path) -> Result<Btf> {
    let raw = std::fs::read(path).map_err(|e| {
        Error::unsupported(format!(
            "struct_ops maps need the kernel's BTF: cannot read {}: {e} (give one with --kernel-btf)",
            path.display()
        ))
    })?;
    Btf::parse(&raw).map_err(|e| e.in_section(path.display().to_string()))
}
