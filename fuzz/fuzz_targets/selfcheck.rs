//! The loader self-check and the loader decoder (`explain`) on corrupted
//! loaders: the input picks a fixture object's loader (generated once) and
//! XOR-patches its instruction and data blobs; or, with a leading 0xff,
//! supplies both blobs raw. Each may accept or reject, but must not panic or
//! hang. (The self-check decodes only loaders its replay accepts, so the
//! decoder is also run on its own.)
#![no_main]

use std::sync::OnceLock;

use bpfgen_fast::explain::{self, DecodeOptions};
use bpfgen_fast::selfcheck;
use libfuzzer_sys::fuzz_target;

struct Seed {
    data: Vec<u8>,
    insns: Vec<u8>,
    maps: Vec<String>,
    progs: Vec<String>,
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/obj");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        let host = bpfgen_fuzz::host();
        paths
            .iter()
            .filter_map(|p| {
                let obj = bpfgen_fast::open(&std::fs::read(p).ok()?, "seed").ok()?;
                let b = bpfgen_fast::gen_loader(&obj, &host).ok()?;
                Some(Seed {
                    data: b.data,
                    insns: b.insns,
                    maps: b.map_names,
                    progs: b.prog_names,
                })
            })
            .collect()
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    if sel == 0xff || seeds().is_empty() {
        let split = rest.len() / 2 / 8 * 8;
        let names = vec!["m".to_string(); rest.first().map_or(0, |&b| b as usize % 4)];
        let _ = selfcheck::check_names(&rest[split..], &rest[..split], &names, &names);
        let opts = DecodeOptions {
            map_names: &names,
            prog_names: &names,
            with_disasm: true,
            ..Default::default()
        };
        let _ = explain::decode(&rest[split..], &rest[..split], &opts);
        return;
    }
    let seed = &seeds()[sel as usize % seeds().len()];
    let (mut data, mut insns) = (seed.data.clone(), seed.insns.clone());
    for patch in rest.chunks_exact(5) {
        let off = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]) as usize;
        let blob = if off & 1 == 0 { &mut insns } else { &mut data };
        let len = blob.len();
        blob[(off >> 1) % len] ^= patch[4];
    }
    let _ = selfcheck::check_names(&data, &insns, &seed.maps, &seed.progs);
    let opts = DecodeOptions {
        map_names: &seed.maps,
        prog_names: &seed.progs,
        ..Default::default()
    };
    if let Ok(e) = explain::decode(&data, &insns, &opts) {
        let _ = (explain::render(&e), e.to_json(), explain::diagnose(&e, &data));
    }
});
