//! What a loader must do, from the object (or from names only), and what the
//! check found it doing.

use super::*;

/// What the object says the loader must create, in ctx order.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Every map of the object (ctx map descriptors), in order.
    pub maps: Vec<ExpectMap>,
    /// Every entry program (ctx prog descriptors), in order.
    pub progs: Vec<ExpectProg>,
    /// The license string every PROG_LOAD must pass, when known.
    pub license: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ExpectMap {
    pub name: String,
    /// Attributes to compare; `None` checks the name only.
    pub attrs: Option<MapAttrs>,
    /// Attributes of the inner-map template of a map-in-map, if any.
    pub inner: Option<MapAttrs>,
    /// Declared but not created by the loader (`SEC("?.struct_ops")`).
    pub skipped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapAttrs {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ExpectProg {
    pub name: String,
    /// `None`: may or may not be loaded (names-only check).
    pub loaded: Option<bool>,
    /// (prog_type, expected_attach_type, prog_flags), when known.
    pub attrs: Option<(u32, u32, u32)>,
    /// Lower bound of the loaded instruction count (the program's own code).
    pub min_insn_cnt: u32,
}

/// One `BPF_MAP_CREATE` the loader issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapCreateRec {
    pub insn: usize,
    pub attr_off: u32,
    pub name: String,
    pub attrs: MapAttrs,
    /// The object map it creates; `None` for an inner-map template.
    pub map_idx: Option<usize>,
}

/// One `BPF_PROG_LOAD` the loader issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgLoadRec {
    pub insn: usize,
    pub attr_off: u32,
    pub name: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
    pub insn_cnt: u32,
    /// Data-blob offset of the program's instructions.
    pub insns_off: u32,
    pub license: String,
    /// The ctx program descriptor that receives its fd.
    pub prog_idx: usize,
}

/// What the loader does, as established by the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub insn_cnt: usize,
    pub data_len: usize,
    /// (data offset, size) of the BTF given to `BPF_BTF_LOAD`.
    pub btf: Option<(u32, u32)>,
    pub map_creates: Vec<MapCreateRec>,
    pub prog_loads: Vec<ProgLoadRec>,
    pub map_updates: usize,
    pub map_freezes: usize,
    /// Defects the kernel would reject but that libbpf 1.5 emits the same way.
    pub warnings: Vec<String>,
}

/// Names-only expectation, as the Python `Loader` carries it.
pub fn expect_names(map_names: &[String], prog_names: &[String]) -> Expect {
    Expect {
        maps: map_names
            .iter()
            .map(|n| ExpectMap {
                name: n.clone(),
                ..ExpectMap::default()
            })
            .collect(),
        progs: prog_names
            .iter()
            .map(|n| ExpectProg {
                name: n.clone(),
                ..ExpectProg::default()
            })
            .collect(),
        license: None,
    }
}

/// Full expectation from the opened object and the host the loader was made for.
pub fn expect_object(obj: &Object, host: &Host) -> Expect {
    // struct_ops maps take their value size from the kernel's struct, and
    // their programs' load decisions and member indices from the same plan.
    // Without a plan (generation would have failed) only names are compared.
    let st_plan = crate::generate::struct_ops_plan(obj, host).ok().flatten();
    let attrs = |def: &crate::object::MapDef| {
        let d = effective_def(def, host);
        MapAttrs {
            map_type: d.map_type,
            key_size: d.key_size,
            value_size: d.value_size,
            max_entries: d.max_entries,
            map_flags: d.map_flags,
        }
    };
    Expect {
        maps: obj
            .maps
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut map_attrs = Some(attrs(&m.def));
                if m.struct_ops.is_some() {
                    let kern = st_plan.as_ref().and_then(|p| p.maps.iter().find(|k| k.map_idx == i));
                    map_attrs = kern.and_then(|k| {
                        map_attrs.map(|a| MapAttrs {
                            value_size: k.value_size,
                            ..a
                        })
                    });
                }
                ExpectMap {
                    name: m.name.clone(),
                    attrs: map_attrs,
                    inner: m
                        .inner
                        .as_ref()
                        .filter(|_| is_map_in_map(m.def.map_type))
                        .map(|i| attrs(&i.def)),
                    skipped: !m.autocreate(),
                }
            })
            .collect(),
        progs: obj
            .programs
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_subprog)
            .map(|(i, p)| {
                let a = p.load_attrs();
                let mut loaded = p.autoload;
                let mut attach_type = a.expected_attach_type;
                if let Some(plan) = &st_plan {
                    loaded = plan.autoload[i];
                    if let Some((_, member)) = &plan.prog_attach[i] {
                        attach_type = *member;
                    }
                }
                ExpectProg {
                    name: p.name.clone(),
                    loaded: Some(loaded),
                    attrs: Some((a.prog_type, attach_type, a.prog_flags)),
                    min_insn_cnt: p.sec_insn_cnt as u32,
                }
            })
            .collect(),
        license: Some(obj.license.clone()),
    }
}
