//! bpfgen_fast: libbpf 1.5's loader-program generator (what `bpftool gen
//! skeleton -L` embeds in a light skeleton), re-implemented as a pure
//! function of (object bytes, name, host facts). No syscalls except reading
//! host facts in [`host::Host::detect`].
//!
//! Data flows one way: [`elf`] → [`object::open`] → [`generate::gen_loader`]
//! ([`link`] + [`loader`]).

pub mod batch;
pub mod btf;
pub mod cli;
pub mod disasm;
pub mod elf;
pub mod error;
pub mod explain;
pub mod externs;
pub mod files;
pub mod generate;
pub mod host;
pub mod insn;
pub mod inspect;
pub mod json;
pub mod link;
pub mod loader;
pub mod loader_abi;
pub mod map_btf;
pub mod object;
pub mod section_defs;
pub mod selfcheck;
pub mod skel;
pub mod struct_ops;

#[cfg(feature = "pyo3")]
mod bindings;

pub use error::{Error, ErrorKind, Result};
pub use generate::{GenOptions, LoaderBlobs, gen_loader, gen_loader_with};
pub use host::Host;
pub use object::{Object, open};
pub use skel::gen_skeleton;

/// The ABI facts the Python facade's runtime gets as `_core.<NAME>` module
/// constants, one table per owning module; the bindings register them all,
/// so a name must be unique across them. (Reading loaders back needs none:
/// the decoder is the core's.)
pub const EXPORTED_CONSTANTS: &[&[(&str, i64)]] = &[loader_abi::BPF_COMMANDS, section_defs::UAPI_NUMBERS];

/// bpftool's object name rule: basename, trailing `.o` dropped, every
/// character outside `[A-Za-z0-9_]` replaced by `_`, at most 63 characters.
pub fn default_object_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base: String = base.chars().take(63).collect();
    let base = base.strip_suffix(".o").unwrap_or(&base);
    base.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn object_names() {
        assert_eq!(super::default_object_name("dir/p.bpf.o"), "p_bpf");
        assert_eq!(super::default_object_name("x-y.o"), "x_y");
        assert_eq!(super::default_object_name("plain"), "plain");
    }

    #[test]
    fn exported_constant_names_are_unique() {
        let mut names: Vec<&str> = super::EXPORTED_CONSTANTS
            .iter()
            .flat_map(|t| t.iter().map(|(n, _)| *n))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }
}
