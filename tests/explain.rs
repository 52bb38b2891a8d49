//! The loader decoder (src/explain/) on every fixture's loader, from the
//! crate alone: the steps are the object's maps and programs in order, the
//! JSON document reads back to the same explanation, signed loaders report
//! the SHA-256 of their data blob, and bpftool's own golden loaders decode.

#[allow(dead_code)] // the golden tests use the rest of it
mod common;

use std::fs;

use bpfgen_fast::explain::{self, DecodeOptions, Explanation, Step};
use bpfgen_fast::generate::Compat;
use bpfgen_fast::{GenOptions, gen_loader_with};
use common::{fixtures, golden_host};

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixtures().join("obj"))
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bpf.o").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn decode(data: &[u8], insns: &[u8], maps: &[String], progs: &[String]) -> Explanation {
    let opts = DecodeOptions {
        map_names: maps,
        prog_names: progs,
        ..Default::default()
    };
    explain::decode(data, insns, &opts).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_fixture_loader_decodes_into_its_maps_and_programs() {
    let host = golden_host();
    for name in fixture_names() {
        let bytes = fs::read(fixtures().join("obj").join(format!("{name}.bpf.o"))).expect("fixture");
        let obj = bpfgen_fast::open(&bytes, &name).expect("opens");
        let Ok(blobs) = gen_loader_with(&obj, &host, GenOptions::default()) else {
            continue; // refused on purpose (tests/test_errors.py says why)
        };
        let e = decode(&blobs.data, &blobs.insns, &blobs.map_names, &blobs.prog_names);
        let created: Vec<&str> = e.maps().map(|m| m.name.as_str()).collect();
        let skipped: Vec<&str> = e.skipped_maps.iter().map(|m| m.name.as_str()).collect();
        let mut all: Vec<&str> = created.iter().chain(&skipped).copied().collect();
        all.sort_unstable();
        let mut want: Vec<&str> = blobs.map_names.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(all, want, "{name}: maps");
        for p in e.programs() {
            assert_eq!(blobs.prog_names[p.ctx_slot as usize], p.name, "{name}: program slot");
        }
        assert!(matches!(e.steps.last(), Some(Step::Finish(_))), "{name}");
        assert_eq!(
            Explanation::from_json(&e.to_json()),
            Ok(e.clone()),
            "{name}: JSON round trip"
        );
        let text = explain::render(&e);
        assert!(text.starts_with(&format!("loader: {} insns", e.insn_cnt)), "{name}");
    }
}

#[test]
fn signed_loaders_report_the_hash_of_their_data() {
    use sha2::Digest;
    let host = golden_host();
    for name in ["minimal", "global_data", "mixed_everything"] {
        let bytes = fs::read(fixtures().join("obj").join(format!("{name}.bpf.o"))).expect("fixture");
        let obj = bpfgen_fast::open(&bytes, name).expect("opens");
        let opts = GenOptions {
            compat: Compat::Bpftool78,
            gen_hash: true,
            ..GenOptions::default()
        };
        let blobs = gen_loader_with(&obj, &host, opts).expect("generates");
        let e = decode(&blobs.data, &blobs.insns, &blobs.map_names, &blobs.prog_names);
        let sig = e.signature_check.as_ref().expect("a signature check");
        let want: String = sha2::Sha256::digest(&blobs.data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig.sha256, want, "{name}");
        for s in &e.steps {
            if let Step::MapUpdate(u) = s {
                assert!(!u.value_from_ctx, "{name}: a signed image is not overridden");
            }
        }
    }
}

#[test]
fn bpftools_golden_loaders_decode() {
    let golden = fixtures().join("golden");
    let mut n = 0;
    for entry in fs::read_dir(&golden).expect("goldens") {
        let path = entry.expect("entry").path();
        let Some(base) = path.to_str().and_then(|p| p.strip_suffix(".insns.bin")) else {
            continue;
        };
        let insns = fs::read(&path).expect("insns");
        let data = fs::read(format!("{base}.data.bin")).expect("data");
        let e = decode(&data, &insns, &[], &[]);
        assert_eq!(e.insn_cnt, insns.len() / 8, "{base}");
        n += 1;
    }
    assert!(n > 30, "{n} golden loaders");
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    let opts = DecodeOptions::default();
    for insns in [
        vec![],
        vec![0u8; 7],
        vec![0x18; 8],
        (0..=255u8).cycle().take(4096).collect(),
    ] {
        let e = explain::decode(&[0; 64], &insns, &opts).expect_err("not a loader");
        assert!(e.to_string().starts_with("loader: "), "{e}");
    }
}
