//! Shared by the cargo golden tests: the host facts the committed goldens
//! were made under (tests/fixtures/golden/host.json and host-inputs/), and
//! the fixtures whose blobs differ from bpftool's on purpose.

use std::fs;
use std::path::{Path, PathBuf};

use bpfgen_fast::{GenOptions, Host};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn json_u32(text: &str, key: &str) -> u32 {
    let at = text.find(&format!("\"{key}\"")).expect(key);
    let rest = &text[at + key.len() + 3..];
    let digits: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().expect("number")
}

/// Hermetic: nothing is read from the machine running the tests.
pub fn golden_host() -> Host {
    let golden = fixtures().join("golden");
    let text = fs::read_to_string(golden.join("host.json")).expect("host.json");
    let input = |name: &str| {
        fs::read_to_string(golden.join("host-inputs").join(name))
            .ok()
            .map(Into::into)
    };
    Host {
        page_size: json_u32(&text, "page_size"),
        possible_cpus: json_u32(&text, "possible_cpus"),
        kernel_version: Some(json_u32(&text, "kernel_version")),
        kconfig: input("kconfig"),
        kconfig_extra: None,
        kallsyms: input("kallsyms"),
        kernel_btf: None,
    }
}

/// Fixtures whose blobs differ from bpftool's by a README divergence:
/// `?`-program slots, and `___flavour` kfunc lookups.
pub const BLOBS_DIVERGE: &[&str] = &["autoload_question.bpf", "ksym_kfunc.bpf"];

/// The options that restore bpftool 7.5.0's bytes for those divergences.
pub const BPFTOOL_COMPAT: GenOptions = GenOptions {
    compat: bpfgen_fast::generate::Compat::Bpftool75,
    bpftool_prog_slots: true,
    bpftool_ksym_names: true,
    bpftool_kconfig_host_order: false,
    bpftool_map_btf_ids: true,
    gen_hash: false,
};
