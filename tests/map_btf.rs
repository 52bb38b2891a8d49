//! Which rule of src/map_btf.rs each map of the map_btf fixtures meets
//! (tests/fixtures/bad/map_btf_*.bpf.c; the kernel's side is in
//! tests/test_map_btf.py), and that the maps the kernel takes meet none
//! (tests/fixtures/src/maps_btf_checked.bpf.c).

use std::fs;
use std::path::Path;

use bpfgen_fast::map_btf::{Refusal, SpecialField, create_ids, kernel_refusal};
use bpfgen_fast::object::{Map, Object};

fn open(dir: &str, name: &str) -> Object {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
        .join(format!("{name}.bpf.o"));
    bpfgen_fast::open(&fs::read(&path).expect("fixture"), name).expect("opens")
}

/// Every map with its inner template, by name (a template as "outer.inner").
fn maps(obj: &Object) -> Vec<(String, &Map)> {
    let mut out = Vec::new();
    for m in &obj.maps {
        out.push((m.name.clone(), m));
        if let Some(inner) = &m.inner {
            out.push((format!("{}.inner", m.name), inner.as_ref()));
        }
    }
    out
}

fn refusal(obj: &Object, map: &str) -> Option<Refusal> {
    let (_, m) = maps(obj).into_iter().find(|(n, _)| n == map).expect(map);
    kernel_refusal(&m.def, obj.btf.as_ref().expect("BTF"))
}

const LPM_KEY: Refusal = Refusal::TypeCheck("an LPM trie's key type must be a struct");

#[test]
fn each_fixture_meets_its_rule() {
    let cases: &[(&str, &str, Refusal)] = &[
        ("map_btf_key_only", "key_typed", Refusal::KeyWithoutValue),
        ("map_btf_value_only", "value_typed", Refusal::NoKeyType),
        ("map_btf_lpm_array_key", "prefixes", LPM_KEY),
        ("map_btf_lpm_typedef_key", "prefixes", LPM_KEY),
        ("map_btf_lpm_inner_array", "string_prefix_m.inner", LPM_KEY),
        ("map_btf_lpm_inner_hash", "first_trie", LPM_KEY),
        ("map_btf_lpm_inner_hash", "tries.inner", LPM_KEY),
        (
            "map_btf_array_enum_key",
            "by_slot",
            Refusal::TypeCheck("an array's key type must be a 32-bit integer"),
        ),
        (
            "map_btf_array_keyless",
            "settings",
            Refusal::TypeCheck("an array without a key type must be a 1-entry ARRAY of a DATASEC"),
        ),
        (
            "map_btf_percpu_array_keyless",
            "counters",
            Refusal::TypeCheck("an array without a key type must be a 1-entry ARRAY of a DATASEC"),
        ),
        (
            "map_btf_bloom_key",
            "seen",
            Refusal::TypeCheck("a bloom filter has no key type"),
        ),
        (
            "map_btf_cgroup_storage_struct",
            "shared_store",
            Refusal::TypeCheck("a cgroup storage's key type must be a 64-bit integer"),
        ),
        (
            "map_btf_cgroup_storage_key3",
            "typed_store",
            Refusal::TypeCheck("a 16-byte cgroup storage key must be struct bpf_cgroup_storage_key"),
        ),
        (
            "map_btf_spin_lock_lru",
            "lru_locked",
            Refusal::FieldNotSupported(SpecialField::SpinLock),
        ),
        (
            "map_btf_timer_percpu",
            "percpu_timed",
            Refusal::FieldNotSupported(SpecialField::Timer),
        ),
        (
            "map_btf_fields_rdonly",
            "rdonly_locked",
            Refusal::FieldsWithProgAccessFlags,
        ),
    ];
    for (fixture, map, want) in cases {
        let obj = open("bad", fixture);
        assert_eq!(refusal(&obj, map), Some(*want), "{fixture}: {map}");
        let def = &maps(&obj).into_iter().find(|(n, _)| n == map).unwrap().1.def;
        assert_eq!(create_ids(def, obj.btf.as_ref(), true), (0, 0), "{fixture}: {map}");
        assert_ne!(create_ids(def, obj.btf.as_ref(), false), (0, 0), "{fixture}: {map}");
    }
}

#[test]
fn local_storages_keep_their_ids_since_they_need_btf() {
    let obj = open("bad", "map_btf_local_storage_keys");
    for map in ["sk_marks", "task_marks", "cgrp_marks"] {
        assert_eq!(refusal(&obj, map), None, "{map}");
    }
}

#[test]
fn maps_the_kernel_takes_meet_no_rule() {
    let obj = open("obj", "maps_btf_checked");
    let all = maps(&obj);
    assert_eq!(all.len(), 10); // nine maps and the inner trie template
    for (name, m) in all {
        assert_eq!(kernel_refusal(&m.def, obj.btf.as_ref().unwrap()), None, "{name}");
    }
}
