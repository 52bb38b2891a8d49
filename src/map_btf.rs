//! Which BTF type ids a map is created with.
//!
//! Two rules decide it. libbpf clears the ids of map types the kernel never
//! takes BTF for. Then the kernel's MAP_CREATE checks the ids it gets
//! (`map_check_btf` in kernel/bpf/syscall.c): the generic key and value
//! checks, the value's special fields against the map type, and the map
//! type's own check. When the kernel refuses, libbpf's normal loader retries
//! without BTF and the map is created; a loader program cannot retry, so we
//! predict the refusal here from the same rules and write ids 0 from the
//! start (README: divergence 6).
//!
//! The rules are those that Linux 6.12 and 7.2 share. A prediction is made
//! only where both kernels would refuse; where they differ (fields only 7.2
//! knows) or where the outcome depends on more than this object's BTF
//! (kptrs and graph roots, resolved against the kernel's BTF), the ids are
//! passed on as bpftool passes them.

use std::fmt;

use crate::btf::{Btf, TypeRef, kind};
use crate::object::MapDef;
use crate::section_defs::map_type;

/// The kernel's `MAX_RESOLVE_DEPTH`: deeper nesting makes its walk fail.
const MAX_RESOLVE_DEPTH: u32 = 32;
/// The kernel's `BTF_FIELDS_MAX`: more special fields make its walk fail.
const BTF_FIELDS_MAX: usize = 11;
/// `BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG`: maps with special fields refuse them.
const PROG_ACCESS_FLAGS: u32 = (1 << 7) | (1 << 8);
/// `sizeof(struct bpf_cgroup_storage_key)`: such a key is per attach type.
const CGROUP_STORAGE_KEY_SIZE: u32 = 16;

/// Map types whose ids libbpf clears before MAP_CREATE (the kernel answers
/// ENOTSUPP for BTF on most of them; queue, stack and arena have no key).
pub fn libbpf_clears_ids(t: u32) -> bool {
    matches!(
        t,
        map_type::PERF_EVENT_ARRAY
            | map_type::CGROUP_ARRAY
            | map_type::STACK_TRACE
            | map_type::ARRAY_OF_MAPS
            | map_type::HASH_OF_MAPS
            | map_type::DEVMAP
            | map_type::DEVMAP_HASH
            | map_type::CPUMAP
            | map_type::XSKMAP
            | map_type::SOCKMAP
            | map_type::SOCKHASH
            | map_type::QUEUE
            | map_type::STACK
            | map_type::ARENA
    )
}

/// The (key, value) type ids MAP_CREATE gets for a map of this definition.
/// `predict_refusal` off gives libbpf 1.5's gen mode, which passes refused
/// ids on.
pub fn create_ids(def: &MapDef, btf: Option<&Btf>, predict_refusal: bool) -> (u32, u32) {
    let Some(btf) = btf else { return (0, 0) };
    if libbpf_clears_ids(def.map_type) || predict_refusal && kernel_refusal(def, btf).is_some() {
        return (0, 0);
    }
    let value = if def.map_type == map_type::STRUCT_OPS {
        0
    } else {
        def.value_type_id
    };
    (def.key_type_id, value)
}

/// Why the kernel refuses a map's BTF ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A key type but no value type (`map_create`).
    KeyWithoutValue,
    /// No key type, on a map type that has no check of its own to allow it.
    NoKeyType,
    /// The key type has no size, or not the map's `key_size`.
    KeySize,
    /// The value type has no size, or not the map's `value_size`.
    ValueSize,
    /// The value holds a special field this map type cannot hold.
    FieldNotSupported(SpecialField),
    /// The value holds special fields, and the map is read- or write-only
    /// for programs (`BPF_F_RDONLY_PROG` / `BPF_F_WRONLY_PROG`).
    FieldsWithProgAccessFlags,
    /// The map type's own check refuses the key or value type.
    TypeCheck(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::KeyWithoutValue => f.write_str("a key type but no value type"),
            Refusal::NoKeyType => f.write_str("no key type, which this map type needs"),
            Refusal::KeySize => f.write_str("the key type's size is not key_size"),
            Refusal::ValueSize => f.write_str("the value type's size is not value_size"),
            Refusal::FieldNotSupported(field) => write!(f, "this map type cannot hold a {}", field.name()),
            Refusal::FieldsWithProgAccessFlags => {
                f.write_str("special fields in a map read- or write-only for programs")
            }
            Refusal::TypeCheck(why) => f.write_str(why),
        }
    }
}

/// The special fields whose support per map type both kernels agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialField {
    SpinLock,
    Timer,
    Workqueue,
}

impl SpecialField {
    fn from_name(name: &str) -> Option<SpecialField> {
        match name {
            "bpf_spin_lock" => Some(SpecialField::SpinLock),
            "bpf_timer" => Some(SpecialField::Timer),
            "bpf_wq" => Some(SpecialField::Workqueue),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SpecialField::SpinLock => "bpf_spin_lock",
            SpecialField::Timer => "bpf_timer",
            SpecialField::Workqueue => "bpf_wq",
        }
    }

    /// (size, alignment) of the kernel's structure.
    fn layout(self) -> (u32, u32) {
        match self {
            SpecialField::SpinLock => (4, 4),
            SpecialField::Timer | SpecialField::Workqueue => (16, 8),
        }
    }

    fn allowed_in(self, t: u32) -> bool {
        use map_type::*;
        match self {
            SpecialField::SpinLock => matches!(
                t,
                HASH | ARRAY | CGROUP_STORAGE | SK_STORAGE | INODE_STORAGE | TASK_STORAGE | CGRP_STORAGE
            ),
            SpecialField::Timer | SpecialField::Workqueue => matches!(t, HASH | LRU_HASH | ARRAY),
        }
    }
}

/// Names of special fields whose outcome this module does not predict:
/// graph roots and refcounts (their own parse rules, which can fail), and
/// the fields Linux 7.2 knows and 6.12 does not.
const UNPREDICTED_FIELDS: &[&str] = &[
    "bpf_list_head",
    "bpf_rb_root",
    "bpf_refcount",
    "bpf_res_spin_lock",
    "bpf_task_work",
];

/// The reason the kernel would refuse this map's BTF ids, if it would.
/// None for map types whose ids libbpf clears: the kernel never sees them.
pub fn kernel_refusal(def: &MapDef, btf: &Btf) -> Option<Refusal> {
    if libbpf_clears_ids(def.map_type) {
        return None;
    }
    let (key_id, value_id) = (def.key_type_id, def.value_type_id);
    if key_id != 0 && value_id == 0 {
        return Some(Refusal::KeyWithoutValue);
    }
    if value_id == 0 || def.map_type == map_type::STRUCT_OPS {
        return None; // no BTF to check
    }
    if needs_btf(def.map_type) {
        return None; // refused without BTF too: nothing to gain, keep the ids
    }
    let key = if key_id == 0 {
        if !has_own_check(def.map_type) {
            return Some(Refusal::NoKeyType);
        }
        None
    } else {
        match sized_type(btf, key_id) {
            Some((t, size)) if size == def.key_size => Some(t),
            _ => return Some(Refusal::KeySize),
        }
    };
    let value = match sized_type(btf, value_id) {
        Some((t, size)) if size == def.value_size => t,
        _ => return Some(Refusal::ValueSize),
    };
    if let Some(fields) = special_fields(btf, &value)
        && !fields.is_empty()
    {
        if def.map_flags & PROG_ACCESS_FLAGS != 0 {
            return Some(Refusal::FieldsWithProgAccessFlags);
        }
        if let Some(&field) = fields.iter().find(|f| !f.allowed_in(def.map_type)) {
            return Some(Refusal::FieldNotSupported(field));
        }
    }
    own_check(def, btf, key.as_ref(), &value).map(Refusal::TypeCheck)
}

/// Local storages: the kernel creates them only with BTF ids
/// (`bpf_local_storage_map_alloc_check`), so libbpf's retry without BTF
/// fails as well and the object does not load either way.
fn needs_btf(t: u32) -> bool {
    use map_type::*;
    matches!(t, SK_STORAGE | INODE_STORAGE | TASK_STORAGE | CGRP_STORAGE)
}

/// Map types with a `map_check_btf` of their own, the only ones that may
/// go without a key type (and then decide themselves). In 7.2 the hash
/// maps have one too, but it refuses a missing key all the same.
fn has_own_check(t: u32) -> bool {
    use map_type::*;
    matches!(
        t,
        ARRAY
            | PERCPU_ARRAY
            | LPM_TRIE
            | BLOOM_FILTER
            | CGROUP_STORAGE
            | PERCPU_CGROUP_STORAGE
            | SK_STORAGE
            | INODE_STORAGE
            | TASK_STORAGE
            | CGRP_STORAGE
    )
}

/// The map type's own check; `key` is None for a missing key type (void).
fn own_check(def: &MapDef, btf: &Btf, key: Option<&TypeRef>, value: &TypeRef) -> Option<&'static str> {
    use map_type::*;
    match def.map_type {
        ARRAY | PERCPU_ARRAY => match key {
            // The one keyless array: a global data section.
            None if def.map_type == ARRAY && def.max_entries == 1 && value.kind() == kind::DATASEC => None,
            None => Some("an array without a key type must be a 1-entry ARRAY of a DATASEC"),
            Some(k) if is_plain_int(btf, k, 32) => None,
            Some(_) => Some("an array's key type must be a 32-bit integer"),
        },
        LPM_TRIE => match key {
            Some(k) if k.kind() == kind::STRUCT => None,
            _ => Some("an LPM trie's key type must be a struct"),
        },
        BLOOM_FILTER => key.map(|_| "a bloom filter has no key type"),
        CGROUP_STORAGE | PERCPU_CGROUP_STORAGE if def.key_size == CGROUP_STORAGE_KEY_SIZE => match key {
            Some(k) if is_cgroup_storage_key(btf, k) => None,
            _ => Some("a 16-byte cgroup storage key must be struct bpf_cgroup_storage_key"),
        },
        CGROUP_STORAGE | PERCPU_CGROUP_STORAGE => match key {
            Some(k) if is_plain_int(btf, k, 64) => None,
            _ => Some("a cgroup storage's key type must be a 64-bit integer"),
        },
        _ => None,
    }
}

/// An INT of `bits` bits at bit offset 0 (6.12's test; 7.2 also wants a
/// byte size of bits/8, which a type of the map's key size already has).
fn is_plain_int(btf: &Btf, t: &TypeRef, bits: u32) -> bool {
    t.kind() == kind::INT && t.size_or_type * 8 == bits && {
        let encoding = btf.tail_u32(t);
        encoding & 0xff == bits && (encoding >> 16) & 0xff == 0
    }
}

/// `{ __u64 cgroup_inode_id; __u32 attach_type; }`: two members, plain
/// integers of 8 bytes at 0 and 4 bytes at 8 (`btf_member_is_reg_int`).
fn is_cgroup_storage_key(btf: &Btf, t: &TypeRef) -> bool {
    if t.kind() != kind::STRUCT || t.vlen() != 2 {
        return false;
    }
    let members = btf.members(t);
    let reg_int = |i: usize, offset: u32, size: u32| {
        let m = &members[i];
        let Some((mt, _)) = sized_type(btf, m.type_id) else {
            return false;
        };
        if mt.kind() != kind::INT {
            return false;
        }
        let bits = btf.tail_u32(&mt) & 0xff;
        if t.kflag() {
            let (bitfield, bit_offset) = (m.offset >> 24, m.offset & 0xff_ffff);
            return bitfield == 0 && bit_offset.div_ceil(8) == offset && bits.div_ceil(8) == size;
        }
        (btf.tail_u32(&mt) >> 16) & 0xff == 0
            && m.offset.is_multiple_of(8)
            && m.offset / 8 == offset
            && bits.is_multiple_of(8)
            && bits / 8 == size
    };
    reg_int(0, 0, 8) && reg_int(1, 8, 4)
}

/// The kernel's `btf_type_id_size`: the type with its size, through
/// modifiers and VARs; None for void, forward declarations and functions.
fn sized_type(btf: &Btf, id: u32) -> Option<(TypeRef, u32)> {
    let t = btf.type_by_id(id).ok()?;
    let t = match t.kind() {
        kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG | kind::VAR => {
            let (_, resolved) = btf.skip_mods_and_typedefs(t.size_or_type).ok()?;
            resolved?
        }
        _ => t,
    };
    let size = match t.kind() {
        kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::DATASEC | kind::FLOAT | kind::ENUM64 => {
            t.size_or_type
        }
        kind::ARRAY => btf.resolve_size(t.id).ok()?,
        kind::PTR => 8,
        _ => return None,
    };
    Some((t, size))
}

/// The spin locks, timers and workqueues the kernel finds in a value, as
/// `btf_parse_fields` finds them; None where its outcome is not predicted
/// (a walk that fails, fields outside [`SpecialField`], kptr candidates).
fn special_fields(btf: &Btf, value: &TypeRef) -> Option<Vec<SpecialField>> {
    let mut found = Vec::new();
    match value.kind() {
        kind::STRUCT | kind::UNION => walk_struct(btf, value, 0, 0, &mut found)?,
        kind::DATASEC => {
            for vsi in btf.secinfo_iter(value) {
                let var = btf.type_by_id(vsi.type_id).ok()?;
                let var_type = btf.type_by_id(var.size_or_type).ok()?;
                walk_field(btf, var_type, vsi.offset, vsi.size, 0, &mut found)?;
            }
        }
        // The kernel's walk fails (-EINVAL): a map without special fields.
        _ => return Some(Vec::new()),
    }
    // Found twice, too many, or overlapping: the kernel's parse fails.
    let mut next_off = 0;
    for (i, (field, off)) in found.iter().enumerate() {
        if found[..i].iter().any(|(f, _)| f == field) || *off < next_off {
            return None;
        }
        next_off = off + field.layout().0;
    }
    if found.len() > BTF_FIELDS_MAX {
        return None;
    }
    Some(found.into_iter().map(|(f, _)| f).collect())
}

fn walk_struct(btf: &Btf, t: &TypeRef, base: u32, level: u32, found: &mut Vec<(SpecialField, u32)>) -> Option<()> {
    for m in btf.members(t) {
        let bit_offset = Btf::member_bit_offset(t, &m);
        if !bit_offset.is_multiple_of(8) {
            return None;
        }
        let member_type = btf.type_by_id(m.type_id).ok()?;
        walk_field(btf, member_type, base + bit_offset / 8, 0, level, found)?;
    }
    Some(())
}

/// One member or global variable (`btf_find_field_one`). The type is taken
/// as written: the kernel looks through arrays, not through typedefs.
fn walk_field(
    btf: &Btf,
    mut t: TypeRef,
    off: u32,
    expected_size: u32,
    level: u32,
    found: &mut Vec<(SpecialField, u32)>,
) -> Option<()> {
    let mut nelems: u64 = 1;
    let mut depth = 0;
    while t.kind() == kind::ARRAY {
        if depth == MAX_RESOLVE_DEPTH {
            return None;
        }
        let (elem, _, n) = btf.array(&t);
        nelems *= n as u64;
        t = btf.type_by_id(elem).ok()?;
        depth += 1;
    }
    if nelems == 0 {
        return Some(());
    }
    let name = btf.name_of(&t).ok()?;
    let is_struct = matches!(t.kind(), kind::STRUCT | kind::UNION);
    if UNPREDICTED_FIELDS.contains(&name) {
        return None;
    }
    if let Some(field) = SpecialField::from_name(name) {
        let (size, align) = field.layout();
        if expected_size != 0 && expected_size as u64 != size as u64 * nelems || !off.is_multiple_of(align) {
            return Some(());
        }
        if !is_struct || t.size_or_type != size {
            return Some(());
        }
        if nelems > 1 {
            return None; // the kernel refuses to repeat these fields: parse fails
        }
        found.push((field, off));
        return Some(());
    }
    if is_struct {
        if expected_size != 0 && expected_size as u64 != t.size_or_type as u64 * nelems {
            return Some(());
        }
        if level + 1 >= MAX_RESOLVE_DEPTH {
            return None;
        }
        let before = found.len();
        walk_struct(btf, &t, off, level + 1, found)?;
        if nelems > 1 && found.len() > before {
            return None; // repeated spin locks, timers or workqueues: parse fails
        }
        return Some(());
    }
    // Any other member is a kptr candidate: a pointer to a type tag.
    let mut p = t;
    if p.kind() == kind::VOLATILE {
        p = btf.type_by_id(p.size_or_type).ok()?;
    }
    if p.kind() == kind::PTR && btf.kind_of(p.size_or_type) == kind::TYPE_TAG {
        return None;
    }
    Some(())
}
