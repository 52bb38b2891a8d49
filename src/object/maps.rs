//! The maps an object defines: BTF-defined ones in `.maps`, one per global
//! data section, `.kconfig`, the arena, and libbpf's names for them.

use super::open::{Opener, SecKind};
use super::*;
use crate::btf::{Btf, kind, linkage};
use crate::elf;
use crate::error::{Error, Result};
use crate::externs::ExternKind;
use crate::section_defs::{BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, map_type};

fn internal_map_name(kern_obj_name: &str, real_name: &str) -> String {
    let sfx_len = real_name.len().clamp(7, BPF_OBJ_NAME_LEN - 1);
    let pfx_len = if real_name.len() > 1 && real_name[1..].contains('.') {
        0
    } else {
        (BPF_OBJ_NAME_LEN - sfx_len - 1).min(kern_obj_name.len())
    };
    // One pass, one allocation: the prefix's and suffix's characters, the
    // first BPF_OBJ_NAME_LEN - 1 of them, sanitized.
    let mut name = String::with_capacity(BPF_OBJ_NAME_LEN - 1);
    let chars = kern_obj_name
        .chars()
        .take(pfx_len)
        .chain(real_name.chars().take(sfx_len));
    for c in chars.take(BPF_OBJ_NAME_LEN - 1) {
        name.push(if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '_'
        });
    }
    name
}

impl Opener<'_, '_> {
    pub(super) fn init_user_maps(&mut self) -> Result<()> {
        let Some(shndx) = self.maps_shndx else {
            return Ok(());
        };
        let sec = &self.elf.sections[shndx];
        let btf = self.obj.btf.as_ref().expect("checked in collect_sections");
        let err = |msg: String| Error::btf(msg).in_section(MAPS_SEC);
        let sec_id = (1..btf.type_cnt())
            .find(|&id| {
                btf.kind_of(id) == kind::DATASEC
                    && btf
                        .type_by_id(id)
                        .is_ok_and(|t| btf.name_of(&t).is_ok_and(|n| n == MAPS_SEC))
            })
            .ok_or_else(|| err(format!("DATASEC '{MAPS_SEC}' not found.")))?;
        self.maps_sec_btf_id = sec_id;
        let datasec = btf.type_by_id(sec_id)?;
        for (var_idx, vsi) in btf.secinfo_iter(&datasec).enumerate() {
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

    pub(super) fn init_global_data_maps(&mut self) -> Result<()> {
        // Hostile-input bound: the first type of each name, indexed once,
        // rather than a scan of every type per data section
        // (`btf__find_by_name`; thousands of sections × millions of types).
        // Only names starting with '.' can match a data section's name, so
        // only those are indexed (performance: hashing every type name was a
        // visible share of opening an object). A sorted table, not a HashMap:
        // a handful of names, for which SipHash's setup and the table's
        // allocation were ~2% of opening a small object.
        let mut first_by_name: Vec<(&str, u32)> = Vec::new();
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
                    first_by_name.push((name, id));
                }
            }
        }
        // ids were pushed in increasing order and the sort is stable: each
        // name's first id stays first, and dedup keeps it
        first_by_name.sort_by(|a, b| a.0.cmp(b.0));
        first_by_name.dedup_by(|later, first| later.0 == first.0);
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
                && let Ok(at) = first_by_name.binary_search_by(|(n, _)| n.cmp(&sec.name))
            {
                let id = first_by_name[at].1;
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
    pub(super) fn init_kconfig_map(&mut self) {
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
    pub(super) fn init_arena(&mut self) -> Result<()> {
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
    pub(super) fn init_struct_ops_maps(&mut self) -> Result<()> {
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
}

fn datasec_has_exposed_var(btf: &Btf, id: u32) -> bool {
    let Ok(t) = btf.type_by_id(id) else { return false };
    if t.kind() != kind::DATASEC {
        return false;
    }
    btf.secinfo_iter(&t).any(|vsi| {
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
