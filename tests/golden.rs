//! Byte-for-byte comparison of our loader blobs with bpftool 7.5.0's, for
//! every committed fixture object (goldens made by tests/fixtures/make_golden.py
//! under the host facts recorded in golden/host.json).

mod common;

use std::fs;

use bpfgen_fast::{default_object_name, gen_loader, gen_loader_with, open};

/// First differing byte, for a readable failure.
fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[test]
fn fixtures_match_bpftool_blobs() {
    let root = common::fixtures();
    let golden = root.join("golden");
    let host = common::golden_host();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(root.join("obj"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".o")
            .to_string();
        let data_path = golden.join(format!("{stem}.data.bin"));
        if !data_path.exists() {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        let name = default_object_name(path.to_str().unwrap());
        // Divergent fixtures must match with bpftool's behaviour switched back on,
        // and must really differ by default (else the divergence list is stale).
        let divergent = common::BLOBS_DIVERGE.contains(&stem.as_str());
        let result = open(&bytes, &name).and_then(|o| {
            if divergent {
                let default = gen_loader(&o, &host)?;
                let compat = gen_loader_with(&o, &host, common::BPFTOOL_COMPAT)?;
                if (default.data == compat.data) && (default.insns == compat.insns) {
                    failures.push(format!("{stem}: listed as divergent but identical to bpftool"));
                }
                Ok(compat)
            } else {
                gen_loader(&o, &host)
            }
        });
        let blobs = match result {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{stem}: error: {e}"));
                continue;
            }
        };
        checked += 1;
        let want_data = fs::read(&data_path).unwrap();
        let want_insns = fs::read(golden.join(format!("{stem}.insns.bin"))).unwrap();
        if let Some(at) = first_diff(&blobs.data, &want_data) {
            failures.push(format!(
                "{stem}: data differs at {at} (ours {} bytes, bpftool {})",
                blobs.data.len(),
                want_data.len()
            ));
        }
        if let Some(at) = first_diff(&blobs.insns, &want_insns) {
            failures.push(format!(
                "{stem}: insns differ at insn {} (ours {} insns, bpftool {})",
                at / 8,
                blobs.insns.len() / 8,
                want_insns.len() / 8
            ));
        }
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
