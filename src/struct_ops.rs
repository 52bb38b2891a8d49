//! struct_ops maps in the load phase: each created map's value translated
//! from the object's layout into the kernel's `bpf_struct_ops_<type>`, the
//! kernel struct member each struct_ops program attaches to, and which of
//! those programs load. The maps themselves and their function-pointer
//! relocations come from the open phase (`object::struct_ops`).
//!
//! libbpf 1.5's generator dereferences a NULL vmlinux BTF here and bpftool
//! crashes (README: divergences). We need the kernel's struct layout at
//! generation time (member offsets and indices, value size): it comes from an
//! explicit kernel BTF file. Kernel *type ids* are not taken from it: the
//! loader looks them up at run time, so the skeleton is not tied to the
//! generating kernel's BTF numbering.

use crate::btf::{Btf, essential_name, kind};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::section_defs::prog_type;

pub const VALUE_PREFIX: &str = "bpf_struct_ops_";

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
