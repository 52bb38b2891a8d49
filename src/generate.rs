//! Drives libbpf's load phase in gen mode over an opened object: links the
//! programs, applies the load-time BTF edit, and feeds maps and programs to
//! the loader emitter in libbpf's order.

use std::collections::{HashMap, VecDeque};

use crate::btf::{Btf, essential_name, kind, kind as btf_kind, linkage};
use crate::error::{Error, Result};
use crate::externs::{self, ExternKind};
use crate::host::Host;
use crate::link::link_programs;
use crate::loader::{KsymReloc, LoaderGen, MapCreate, ProgLoad};
use crate::map_btf;
use crate::object::{Map, MapDef, MapOrigin, Object};
use crate::object::{Reloc, RelocKind};
use crate::section_defs::{self, LoadAttrs, SEC_ATTACH_BTF, map_type, prog_type};
use crate::struct_ops::{self, StructOpsPlan};

/// The loader program and its data, plus the skeleton layout they expect.
#[derive(Debug, Clone)]
pub struct LoaderBlobs {
    pub data: Vec<u8>,
    pub insns: Vec<u8>,
    /// Map descriptors in ctx order (every map of the object).
    pub map_names: Vec<String>,
    /// Program descriptors in ctx order (every entry program, loaded or not).
    pub prog_names: Vec<String>,
    /// The `.kconfig` map's image with the values resolved on the host (what
    /// the loader writes, and what the skeleton header embeds); `None`
    /// without a `.kconfig` map.
    pub kconfig_image: Option<Vec<u8>>,
    /// The value each created struct_ops map gets when it is attached.
    pub struct_ops: Vec<StructOpsValue>,
}

/// A struct_ops map's value in the kernel's layout (`bpf_struct_ops_<type>`),
/// written by whoever attaches the map (the skeleton's `__attach`, `run()`):
/// `value` with the fd of program `funcs[i].1` stored as an `unsigned long`
/// at byte offset `funcs[i].0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOpsValue {
    pub map_idx: usize,
    /// BPF_F_LINK: attached through a struct_ops link after the update.
    pub link: bool,
    pub value: Vec<u8>,
    pub funcs: Vec<(u32, String)>,
}

/// `adjust_ringbuf_sz`: the smallest page_size * 2^k that is > size, unless
/// size already has that form.
fn ringbuf_size(size: u32, page: u32) -> u32 {
    if size == 0 || page == 0 {
        return size;
    }
    if size.is_multiple_of(page) && (size / page).is_power_of_two() {
        return size;
    }
    let mut mul: u64 = 1;
    while mul * page as u64 <= u32::MAX as u64 {
        if mul * page as u64 > size as u64 {
            return (mul * page as u64) as u32;
        }
        mul <<= 1;
    }
    size
}

/// The definition as libbpf submits it on this host.
pub fn effective_def(def: &MapDef, host: &Host) -> MapDef {
    let mut d = def.clone();
    if d.map_type == map_type::RINGBUF || d.map_type == map_type::USER_RINGBUF {
        d.max_entries = ringbuf_size(d.max_entries, host.page_size);
    }
    if d.map_type == map_type::PERF_EVENT_ARRAY && d.max_entries == 0 {
        d.max_entries = host.possible_cpus;
    }
    d
}

fn map_create<'a>(map: &'a Map, def: &MapDef, btf: Option<&Btf>, opts: GenOptions) -> MapCreate<'a> {
    let (btf_key_type_id, btf_value_type_id) = map_btf::create_ids(def, btf, !opts.bpftool_map_btf_ids);
    MapCreate {
        map_type: def.map_type,
        name: &map.name,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        map_flags: def.map_flags,
        numa_node: def.numa_node,
        map_extra: def.map_extra,
        btf_key_type_id,
        btf_value_type_id,
        vmlinux_value_type: None,
        map_extra_from_ctx: false,
    }
}

/// `bpf_program_record_relos`: the ksym and kfunc references the loader
/// must resolve, in final instruction order.
fn ksym_relocs(obj: &Object, relocs: &[Reloc], opts: GenOptions) -> Vec<KsymReloc> {
    relocs
        .iter()
        .filter_map(|r| {
            let (ext_idx, is_ld64) = match r.kind {
                RelocKind::ExternLd64 { ext_idx } => (ext_idx, true),
                RelocKind::ExternCall { ext_idx } => (ext_idx, false),
                _ => return None,
            };
            let ext = &obj.externs[ext_idx];
            let ExternKind::Ksym { type_id } = ext.kind else {
                return None;
            };
            let is_typeless = is_ld64 && type_id == 0;
            // BTF lookups use the name without its `___flavour` suffix, as
            // libbpf's normal loader does; libbpf 1.5's gen mode keeps the
            // suffix, so such kfuncs are never found (README: divergences).
            let name = if opts.bpftool_ksym_names || is_typeless {
                ext.name.clone()
            } else {
                essential_name(&ext.name).to_string()
            };
            Some(KsymReloc {
                name,
                is_weak: ext.is_weak,
                is_typeless,
                is_ld64,
                kind: if ext.is_func || !is_ld64 {
                    btf_kind::FUNC
                } else {
                    btf_kind::VAR
                },
                insn_idx: r.insn_idx,
            })
        })
        .collect()
}

/// CO-RE records as `struct bpf_core_relo` with byte offsets into the final program.
fn core_records(relocs: &[Reloc]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in relocs {
        if let RelocKind::Core {
            type_id,
            access_str_off,
            kind,
        } = r.kind
        {
            out.extend_from_slice(&((r.insn_idx * 8) as u32).to_le_bytes());
            out.extend_from_slice(&type_id.to_le_bytes());
            out.extend_from_slice(&access_str_off.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
        }
    }
    out
}

/// Which bpftool's header text to reproduce. The loader blobs are the same
/// for both; bpftool 7.8.0's header adds casts that make it valid C++.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    #[default]
    Bpftool75,
    Bpftool78,
}

impl Compat {
    pub fn parse(s: &str) -> Option<Compat> {
        match s {
            "bpftool-7.5" => Some(Compat::Bpftool75),
            "bpftool-7.8" => Some(Compat::Bpftool78),
            _ => None,
        }
    }
}

/// Choices where bpfgen_fast deliberately differs from bpftool 7.5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenOptions {
    /// Header style (`--compat`).
    pub compat: Compat,
    /// Reproduce bpftool 7.5.0's prog-fd slots (the j-th *loaded* program's fd
    /// goes to skeleton slot j even when a `SEC("?...")` program precedes it).
    /// Off by default: each program's fd goes to its own slot. Only for tests
    /// that prove this is the sole difference.
    pub bpftool_prog_slots: bool,
    /// Reproduce bpftool 7.5.0's run-time lookups of `name___flavour` ksyms
    /// and kfuncs with the suffix kept (never found). Test-only, like above.
    pub bpftool_ksym_names: bool,
    /// Reproduce libbpf 1.8's `.kconfig` values in the build host's byte
    /// order for a big-endian object (wrong on the target). Test-only.
    pub bpftool_kconfig_host_order: bool,
    /// Pass every map's BTF ids on as libbpf 1.5's gen mode does, even
    /// where the kernel will refuse them (README: divergence 6). Test-only.
    pub bpftool_map_btf_ids: bool,
    /// libbpf 1.8's `gen_loader_opts.gen_hash` (what `bpftool gen skeleton
    /// -S` sets): the loader verifies the SHA-256 of its data blob first and
    /// ignores the skeleton's max_entries / initial_value overrides, so a
    /// signature over the instructions covers everything it loads.
    pub gen_hash: bool,
}

/// About how many data-blob bytes and loader instructions the emitter will
/// produce: BTF, map values and program code dominate; the constants cover
/// the per-map and per-program records. Only a capacity hint, capped so a
/// hostile object cannot make us reserve much memory before the emitter's
/// own bounds apply.
fn blob_estimate(obj: &Object, linked: &[crate::link::LinkedProgram]) -> (usize, usize) {
    const CAP: usize = 64 << 20;
    let ext_len = |r: &Option<crate::link::ExtRecords>| r.as_ref().map_or(0, |r| r.bytes.len());
    // 2 KiB: the fd-array slots and the BTF load's attrs; every fixture's data
    // blob fits the estimate (tests/fixtures: 1.2x to 1.8x its final size,
    // instructions 1.1x to 3.6x).
    let mut data = 2048 + obj.btf.as_ref().map_or(0, |b| b.raw().len());
    for m in &obj.maps {
        data = data.saturating_add(m.initial_value.len().saturating_add(160));
    }
    for lp in linked {
        let code = lp.insns.len().saturating_mul(8);
        data = data.saturating_add(code + ext_len(&lp.func_info) + ext_len(&lp.line_info) + 16 * lp.relocs.len() + 512);
    }
    // Loader instructions: a few dozen per map and per program, more for
    // ksym / kfunc relocations (counted generously: a hint).
    let ksyms = |lp: &crate::link::LinkedProgram| {
        lp.relocs
            .iter()
            .filter(|r| matches!(r.kind, RelocKind::ExternLd64 { .. } | RelocKind::ExternCall { .. }))
            .count()
    };
    let insns = 64 + 48 * obj.maps.len() + linked.iter().map(|lp| 160 + 40 * ksyms(lp)).sum::<usize>();
    (data.min(CAP), insns.min(CAP / 8))
}

pub fn gen_loader(obj: &Object, host: &Host) -> Result<LoaderBlobs> {
    gen_loader_with(obj, host, GenOptions::default())
}

pub fn gen_loader_with(obj: &Object, host: &Host, opts: GenOptions) -> Result<LoaderBlobs> {
    let mut blobs = gen_loader_unnamed(obj, host, opts)?;
    blobs.map_names = map_names(obj).map(str::to_string).collect();
    blobs.prog_names = prog_names(obj).map(str::to_string).collect();
    Ok(blobs)
}

/// [`gen_loader_with`] with `map_names` and `prog_names` left empty, for a
/// caller that reads them from the object only when asked (the Python
/// `Loader`): [`map_names`] and [`prog_names`] give the same names.
pub fn gen_loader_unnamed(obj: &Object, host: &Host, opts: GenOptions) -> Result<LoaderBlobs> {
    gen_inner(obj, host, opts).map_err(|e| e.for_object(&obj.name))
}

/// The loader's map descriptors in ctx order: every map of the object.
pub fn map_names(obj: &Object) -> impl ExactSizeIterator<Item = &str> {
    obj.maps.iter().map(|m| m.name.as_str())
}

/// The loader's program descriptors in ctx order: every entry program,
/// loaded or not.
pub fn prog_names(obj: &Object) -> impl Iterator<Item = &str> {
    obj.programs.iter().filter(|p| !p.is_subprog).map(|p| p.name.as_str())
}

/// struct_ops translation against the kernel BTF, when the object creates
/// any struct_ops map (the kernel BTF is read only then).
/// The values the attacher writes, from a struct_ops plan.
fn attach_values(obj: &Object, plan: StructOpsPlan) -> Vec<StructOpsValue> {
    plan.maps
        .into_iter()
        .map(|kern| StructOpsValue {
            map_idx: kern.map_idx,
            link: obj.maps[kern.map_idx].def.map_flags & section_defs::BPF_F_LINK != 0,
            funcs: kern
                .func_slots
                .iter()
                .map(|&(off, prog_idx)| (off, obj.programs[prog_idx].name.clone()))
                .collect(),
            value: kern.vdata,
        })
        .collect()
}

/// The struct_ops values alone (what `LoaderBlobs::struct_ops` holds),
/// without generating the loader.
pub fn struct_ops_values(obj: &Object, host: &Host) -> Result<Vec<StructOpsValue>> {
    let plan = struct_ops_plan(obj, host).map_err(|e| e.for_object(&obj.name))?;
    Ok(plan.map(|p| attach_values(obj, p)).unwrap_or_default())
}

pub(crate) fn struct_ops_plan(obj: &Object, host: &Host) -> Result<Option<StructOpsPlan>> {
    if !obj
        .maps
        .iter()
        .any(|m| m.struct_ops.as_ref().is_some_and(|s| s.autocreate))
    {
        return Ok(None);
    }
    let path = host
        .kernel_btf
        .clone()
        .unwrap_or_else(|| crate::host::DEFAULT_KERNEL_BTF.into());
    let kern = struct_ops::load_kernel_btf(&path)?;
    struct_ops::plan(obj, &kern).map(Some)
}

/// Size of the ARENA map's user mapping (`bpf_map_mmap_sz`).
pub fn arena_mmap_size(def: &MapDef, host: &Host) -> u64 {
    def.max_entries as u64 * host.page_size as u64
}

/// `__arena` globals: libbpf 1.5 places their image at the start of the
/// arena and copies it in from user space right after creating the map,
/// before any program loads (bpftool crashes there: README, divergences).
/// A loader cannot map memory, so the light skeleton copies the image after
/// the loader has run. The programs' references to the globals are resolved
/// against the arena's user address when they load, so that address must be
/// known before: the map's `map_extra`, or else an address the skeleton
/// reserves and hands to the loader ([`MapCreate::map_extra_from_ctx`]).
fn check_arena(obj: &Object, host: &Host) -> Result<()> {
    let Some(arena) = &obj.arena else { return Ok(()) };
    let map = &obj.maps[arena.map_idx];
    let mmap_sz = arena_mmap_size(&map.def, host);
    let page = host.page_size.max(1) as u64;
    let need = (arena.data.len() as u64).div_ceil(page) * page;
    if need > mmap_sz {
        return Err(Error::unsupported(format!(
            "elf: sec '{}': declared ARENA map size ({mmap_sz}) is too small to hold global __arena variables of size {}",
            crate::object::ARENA_SEC,
            arena.data.len()
        ))
        .in_section(crate::object::ARENA_SEC));
    }
    Ok(())
}

fn gen_inner(obj: &Object, host: &Host, opts: GenOptions) -> Result<LoaderBlobs> {
    if obj.big_endian && opts.compat == Compat::Bpftool75 {
        // libbpf 1.5 refuses a foreign byte order at open; 1.8 generates
        // loaders for it (cross-endian light skeletons).
        return Err(Error::elf(format!(
            "elf: endianness mismatch in {} (a big-endian object: bpftool 7.5.0 refuses it; \
             --compat bpftool-7.8 generates its loader)",
            obj.name
        ))
        .in_section("ELF header")
        .at(5));
    }
    check_arena(obj, host)?;
    let st_plan = struct_ops_plan(obj, host)?;
    // struct_ops programs load iff a created map uses them: the rest of the
    // load phase works on the object with that autoload applied.
    let adjusted;
    let obj = match &st_plan {
        Some(plan) if obj.programs.iter().zip(&plan.autoload).any(|(p, &a)| p.autoload != a) => {
            let mut o = obj.clone();
            for (p, &a) in o.programs.iter_mut().zip(&plan.autoload) {
                p.autoload = a;
            }
            adjusted = o;
            &adjusted
        }
        _ => obj,
    };
    check_programs(obj, st_plan.as_ref())?;
    let (kcfg_image, resolved) = resolve_externs(obj, host, opts)?;
    let mut linked = link_programs(obj, &resolved)?;

    // Performance: the blobs sized up front (a hint, capped; see `blob_estimate`).
    let capacity = blob_estimate(obj, &linked);
    let mut emitter = LoaderGen::with_capacity(obj.programs.len(), obj.maps.len(), opts.gen_hash, capacity);
    emitter.set_big_endian(obj.big_endian);
    emit_btf(&mut emitter, obj)?;
    emit_maps(&mut emitter, obj, host, st_plan.as_ref(), &kcfg_image, opts);
    emit_programs(&mut emitter, obj, &mut linked, st_plan.as_ref(), opts)?;
    emit_prog_array_values(&mut emitter, obj, &linked)?;
    // struct_ops values are written at attach time (registration), not by
    // the loader: libbpf registers a map only when it is attached, and a
    // map the kernel refuses must not fail the whole load.
    let struct_ops = st_plan.map(|p| attach_values(obj, p)).unwrap_or_default();
    let (data, insns) = emitter.finish()?;
    Ok(LoaderBlobs {
        data,
        insns,
        // filled by gen_loader_with, from the object (see `gen_loader_unnamed`)
        map_names: Vec::new(),
        prog_names: Vec::new(),
        kconfig_image: obj.kconfig_map_idx.map(|_| kcfg_image),
        struct_ops,
    })
}

/// The struct_ops attachment of program `prog_idx`: (kernel struct, member index).
fn st_attach(plan: Option<&StructOpsPlan>, prog_idx: usize) -> Option<&(String, u32)> {
    plan.and_then(|p| p.prog_attach[prog_idx].as_ref())
}

/// Every program that will load, checked before linking, in libbpf's terms.
fn check_programs(obj: &Object, st_plan: Option<&StructOpsPlan>) -> Result<()> {
    for (prog_idx, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_subprog && p.autoload)
    {
        let attrs = p.load_attrs();
        let fail =
            |msg: String| Err(Error::unsupported(format!("prog '{}': {msg}", p.name)).in_section(p.sec_name.clone()));
        if p.sec_def.is_none() || attrs.prog_type == prog_type::UNSPEC {
            return fail(format!(
                "missing BPF prog type, check ELF section name '{}'",
                p.sec_name
            ));
        }
        if attrs.prog_type == prog_type::STRUCT_OPS && st_attach(st_plan, prog_idx).is_none() {
            return fail("SEC(\"struct_ops\") program isn't referenced anywhere, did you forget to use it?".into());
        }
    }
    Ok(())
}

/// Kconfig values and typeless ksym addresses from the build host (or the
/// explicit inputs in `host`), as in libbpf's load phase: the `.kconfig`
/// map's image, and the resolved externs for linking.
fn resolve_externs(obj: &Object, host: &Host, opts: GenOptions) -> Result<(Vec<u8>, externs::Resolved)> {
    let mut kcfg_image = obj
        .kconfig_map_idx
        .map(|i| obj.maps[i].initial_value.clone())
        .unwrap_or_default();
    let resolved = externs::resolve(&obj.externs, &mut kcfg_image, host)?;
    if obj.big_endian && !opts.bpftool_kconfig_host_order {
        // Divergence: libbpf 1.8 writes these values in the build host's
        // byte order, which a big-endian target misreads; we write the
        // target's (README: divergences).
        for e in &obj.externs {
            if let ExternKind::Kcfg {
                ty: externs::KcfgType::Int | externs::KcfgType::Tristate,
                size,
                data_off,
                ..
            } = e.kind
                && let Some(v) = kcfg_image.get_mut(data_off as usize..(data_off + size) as usize)
            {
                v.reverse();
            }
        }
    }
    Ok((kcfg_image, resolved))
}

/// BTF_LOAD of the object's BTF, with hidden global sub-programs made static.
fn emit_btf(emitter: &mut LoaderGen, obj: &Object) -> Result<()> {
    let Some(btf) = &obj.btf else { return Ok(()) };
    // Hidden global sub-programs: their BTF FUNC becomes static. The BTF
    // is copied only when there is such an edit to make.
    let hidden: Vec<&str> = obj
        .programs
        .iter()
        .filter(|p| p.mark_btf_static && p.is_subprog)
        .map(|p| p.name.as_str())
        .collect();
    if hidden.is_empty() {
        emitter.load_btf(btf.raw());
    } else {
        // Hostile-input bound: GLOBAL FUNCs indexed by name in one pass
        // rather than a scan of every type per hidden sub-program. Each
        // name takes the first still-global FUNC, and a corrupt name
        // before it fails as the scan did.
        let mut global_funcs: HashMap<&str, VecDeque<u32>> = HashMap::new();
        let mut first_bad: Option<(u32, Error)> = None;
        for id in 1..btf.type_cnt() {
            let t = btf.type_by_id(id)?;
            if t.kind() == kind::FUNC && t.vlen() == linkage::GLOBAL {
                match btf.name_of(&t) {
                    Ok(n) => global_funcs.entry(n).or_default().push_back(id),
                    Err(e) => {
                        first_bad.get_or_insert((id, e));
                    }
                }
            }
        }
        let mut edited = btf.clone();
        for name in hidden {
            let hit = global_funcs.get(name).and_then(|q| q.front().copied());
            if let Some((bad, e)) = &first_bad
                && hit.is_none_or(|id| id > *bad)
            {
                return Err(e.clone());
            }
            if let Some(id) = hit {
                global_funcs.get_mut(name).map(VecDeque::pop_front);
                let t = edited.type_by_id(id)?;
                edited.set_info(&t, kind::FUNC << 24 | linkage::STATIC);
            }
        }
        emitter.load_btf(edited.raw());
    }
    Ok(())
}

/// MAP_CREATE of every map libbpf creates, in its order, with inner map
/// templates, initial images (frozen where read-only) and `.values` slots.
fn emit_maps(
    emitter: &mut LoaderGen,
    obj: &Object,
    host: &Host,
    st_plan: Option<&StructOpsPlan>,
    kcfg_image: &[u8],
    opts: GenOptions,
) {
    let btf = obj.btf.as_ref();
    for (i, map) in obj.maps.iter().enumerate() {
        if !map.autocreate() {
            emitter.skip_map(i);
            continue;
        }
        if map.struct_ops.is_some() {
            let kern = st_plan
                .and_then(|p| p.maps.iter().find(|k| k.map_idx == i))
                .expect("planned: every created struct_ops map");
            let vtype = format!("{}{}", struct_ops::VALUE_PREFIX, kern.kern_type_name);
            let mut create = map_create(map, &map.def, btf, opts);
            create.value_size = kern.value_size;
            create.vmlinux_value_type = Some(&vtype);
            emitter.map_create(&create, Some(i));
            continue;
        }
        let def = effective_def(&map.def, host);
        if map_type::is_map_in_map(def.map_type)
            && let Some(inner) = &map.inner
        {
            let inner_def = effective_def(&inner.def, host);
            emitter.map_create(&map_create(inner, &inner_def, btf, opts), None);
        }
        let mut create = map_create(map, &def, btf, opts);
        create.map_extra_from_ctx = def.map_extra == 0 && obj.arena.as_ref().is_some_and(|a| a.map_idx == i);
        emitter.map_create(&create, Some(i));
        if map.is_internal() {
            let image = if Some(i) == obj.kconfig_map_idx {
                kcfg_image
            } else {
                &map.initial_value
            };
            emitter.map_update_elem(i, image);
            if matches!(map.origin, MapOrigin::Rodata | MapOrigin::Kconfig) {
                emitter.map_freeze(i);
            }
        }
        for (slot, target) in map.init_slots.iter().enumerate() {
            if let Some(t) = target {
                emitter.populate_outer_map(i, slot as u32, *t);
            }
        }
    }
}

/// The run-time attach target lookup of a program that needs one: a
/// BTF-attach program's function (the user's, else its section's, with the
/// kind's prefix), or a struct_ops program's kernel struct. A struct_ops
/// program's member index becomes its expected attach type.
fn attach_target(
    obj: &Object,
    prog_idx: usize,
    attrs: &mut LoadAttrs,
    st_plan: Option<&StructOpsPlan>,
) -> Result<Option<(String, u32)>> {
    let p = &obj.programs[prog_idx];
    let needs_target = p.sec_def.is_some_and(|d| d.flags & SEC_ATTACH_BTF != 0);
    Ok(if needs_target {
        if attrs.prog_type == prog_type::EXT {
            return Err(
                Error::unsupported(format!("prog '{}': attach program FD is not set", p.name))
                    .in_section(p.sec_name.clone()),
            );
        }
        let given = p.attach_target.as_deref();
        let Some(name) = given.or_else(|| section_defs::section_target(&p.sec_name)) else {
            return Err(Error::unsupported(format!(
                "prog '{0}': no BTF-based attach target is specified, use bpf_program__set_attach_target() \
                 (here: --attach-target {0}=FUNC, or programs[{1}].attach_target)",
                p.name,
                crate::json::py_repr(&p.name)
            ))
            .in_section(p.sec_name.clone()));
        };
        let (prefix, kind) = section_defs::btf_attach_lookup(attrs.prog_type, attrs.expected_attach_type);
        let full = format!("{prefix}{name}");
        if full.len() >= 128 {
            return Err(Error::unsupported(format!(
                "prog '{}': attach target name is too long",
                p.name
            )));
        }
        Some((full, kind))
    } else if let Some((kern_type, member_idx)) = st_attach(st_plan, prog_idx) {
        // A struct_ops program attaches to one member of the kernel struct.
        attrs.expected_attach_type = *member_idx;
        Some((kern_type.clone(), btf_kind::STRUCT))
    } else {
        None
    })
}

/// PROG_LOAD of every linked program, in load order; each program's copy is
/// freed once it is in the blob.
fn emit_programs(
    emitter: &mut LoaderGen,
    obj: &Object,
    linked: &mut [crate::link::LinkedProgram],
    st_plan: Option<&StructOpsPlan>,
    opts: GenOptions,
) -> Result<()> {
    let skel_slots: Vec<usize> = {
        let mut next = 0;
        obj.programs
            .iter()
            .map(|p| {
                let s = next;
                if !p.is_subprog {
                    next += 1;
                }
                s
            })
            .collect()
    };
    for (load_idx, lp) in linked.iter_mut().enumerate() {
        let p = &obj.programs[lp.prog_idx];
        let mut attrs = p.load_attrs();
        let attach_target = attach_target(obj, lp.prog_idx, &mut attrs, st_plan)?;
        let insn_bytes = crate::insn::wire_bytes(&lp.insns);
        // libbpf passes func/line info only when the object has BTF.
        let (fi, li) = if obj.btf.is_some() {
            (lp.func_info.as_ref(), lp.line_info.as_ref())
        } else {
            (None, None)
        };
        emitter.prog_load(&ProgLoad {
            prog_type: attrs.prog_type,
            name: &p.name,
            license: &obj.license,
            insns: &insn_bytes,
            insn_cnt: lp.insns.len() as u32,
            expected_attach_type: attrs.expected_attach_type,
            prog_flags: attrs.prog_flags,
            func_info: fi.map(|r| r.bytes.as_slice()).unwrap_or(&[]),
            func_info_rec_size: fi.map(|r| r.rec_size).unwrap_or(0),
            func_info_cnt: fi.map(|r| r.count).unwrap_or(0),
            line_info: li.map(|r| r.bytes.as_slice()).unwrap_or(&[]),
            line_info_rec_size: li.map(|r| r.rec_size).unwrap_or(0),
            line_info_cnt: li.map(|r| r.count).unwrap_or(0),
            attach_target,
            skel_slot: if opts.bpftool_prog_slots {
                load_idx
            } else {
                skel_slots[lp.prog_idx]
            },
            ksym_relocs: ksym_relocs(obj, &lp.relocs, opts),
            core_relos: core_records(&lp.relocs),
        });
        // Now in the blob: free the program's copy (lowers peak memory for
        // large programs; only `prog_idx` is used below).
        drop(insn_bytes);
        lp.insns = Vec::new();
        lp.func_info = None;
        lp.line_info = None;
    }
    Ok(())
}

/// Static `.values` of prog-arrays, once their programs exist (libbpf 1.5
/// refuses these in gen mode; its normal loader fills them after loading).
fn emit_prog_array_values(emitter: &mut LoaderGen, obj: &Object, linked: &[crate::link::LinkedProgram]) -> Result<()> {
    for (map_idx, map) in obj.maps.iter().enumerate() {
        for (slot, target) in map.prog_slots.iter().enumerate() {
            let Some(target) = target else { continue };
            let load_idx = linked
                .iter()
                .position(|lp| obj.programs[lp.prog_idx].name == *target)
                .ok_or_else(|| {
                    Error::unsupported(format!(
                        "map '{}': slot [{slot}] refers to program '{target}', which is not loaded",
                        map.name
                    ))
                    .in_section(".maps")
                })?;
            emitter.populate_prog_array(map_idx, slot as u32, load_idx);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ringbuf_size;

    #[test]
    fn ringbuf_rounding() {
        assert_eq!(ringbuf_size(4096, 4096), 4096);
        assert_eq!(ringbuf_size(4096 * 3, 4096), 4096 * 4);
        assert_eq!(ringbuf_size(4096 * 3 + 1, 4096), 4096 * 4);
        assert_eq!(ringbuf_size(1, 4096), 4096);
        assert_eq!(ringbuf_size(0, 4096), 0);
    }
}
