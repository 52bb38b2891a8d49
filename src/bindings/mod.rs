//! PyO3 bindings: argument conversion, GIL release around the pure core, and
//! the one place where core errors become Python exceptions. No logic.
//!
//! One file per Python-facing concept: `errors.rs`, `host.rs`, `object.rs`,
//! `loader.rs`, `batch.rs`, `explain.rs`, `files.rs`; the module itself
//! (`_core`) and its small functions here.

mod batch;
mod errors;
mod explain;
mod files;
mod host;
mod loader;
mod object;

use crate::host::Host;
use crate::section_defs;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyInt};

use batch::*;
use errors::*;
use explain::*;
use files::*;
use host::*;
use loader::*;
use object::*;

/// bpftool's default object name for a path.
#[pyfunction]
fn default_object_name(path: &str) -> String {
    crate::default_object_name(path)
}

/// The skeleton ctx size a loader with these counts expects (`loader_abi::ctx_size`).
#[pyfunction]
fn loader_ctx_size(nr_maps: usize, nr_progs: usize) -> usize {
    crate::loader_abi::ctx_size(nr_maps, nr_progs)
}

#[pyfunction]
fn map_type_name(value: &Bound<'_, PyInt>) -> Option<&'static str> {
    value.extract::<u32>().ok().and_then(section_defs::map_type_name)
}

#[pyfunction]
fn prog_type_name(value: &Bound<'_, PyInt>) -> Option<&'static str> {
    value.extract::<u32>().ok().and_then(section_defs::prog_type_name)
}

#[pyfunction]
fn attach_type_name(value: &Bound<'_, PyInt>) -> Option<&'static str> {
    value.extract::<u32>().ok().and_then(section_defs::attach_type_name)
}

/// The skeleton member name of a map known only by `name` (see
/// `skel::map_ident_of`); None for an internal map the skeleton leaves out.
#[pyfunction]
fn map_ident(name: &str, internal: bool) -> Option<String> {
    crate::skel::map_ident_of(name, internal)
}

/// `KERNEL_VERSION(a, b, c)` of `"a.b.c"` (the patch level capped at 255).
#[pyfunction]
fn kernel_version_code(version: &str) -> PyResult<u32> {
    crate::host::parse_kernel_version(version).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "kernel version must look like 6.12.3, got {}",
            crate::json::py_repr(version)
        ))
    })
}

/// (page_size, possible_cpus) of this host, as libbpf reads them.
#[pyfunction]
fn host_defaults() -> (u32, u32) {
    let h = Host::detect();
    (h.page_size, h.possible_cpus)
}

/// Benchmark helper (benches/compare.py): `repeats` timings in seconds of
/// `open` + `gen_loader` on `data`, measured inside Rust with the GIL
/// released, to tell the core's time from the Python layer's.
#[pyfunction]
fn _time_core(py: Python<'_>, data: &[u8], name: &str, host: HostArgs, repeats: usize) -> PyResult<Vec<f64>> {
    let opts = host.options();
    let host = host.into_host();
    py.detach(|| {
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = std::time::Instant::now();
            let obj = crate::object::open(data, name)?;
            // the API's work: the Loader takes its names from the object
            std::hint::black_box(crate::generate::gen_loader_unnamed(&obj, &host, opts)?);
            drop(obj);
            times.push(t.elapsed().as_secs_f64());
        }
        Ok(times)
    })
    .map_err(|e| to_py_err(py, e))
}

/// The command line as the core parses it (`crate::cli::parse`): a dict of the
/// request's fields. A usage error raises ValueError(message, show_usage).
#[pyfunction]
fn parse_cli<'py>(py: Python<'py>, argv: Vec<String>) -> PyResult<Bound<'py, PyDict>> {
    let r = crate::cli::parse(&argv).map_err(|e| pyo3::exceptions::PyValueError::new_err((e.message, e.show_usage)))?;
    let d = PyDict::new(py);
    d.set_item("command", r.command.name())?;
    d.set_item("object", &r.object)?;
    d.set_item("name", &r.name)?;
    d.set_item("objects", &r.objects)?;
    d.set_item("output", &r.output)?;
    d.set_item("use_loader", r.use_loader)?;
    d.set_item("debug", r.debug)?;
    d.set_item("json", r.json)?;
    d.set_item("page_size", r.page_size)?;
    d.set_item("possible_cpus", r.possible_cpus)?;
    d.set_item("kernel_version", r.kernel_version)?;
    d.set_item("kconfig_file", &r.kconfig_file)?;
    d.set_item("kallsyms_file", &r.kallsyms_file)?;
    d.set_item("kernel_btf", &r.kernel_btf)?;
    d.set_item("compat", &r.compat)?;
    d.set_item("autoload", &r.autoload)?;
    d.set_item("attach_targets", &r.attach_targets)?;
    d.set_item("log_level", r.log_level)?;
    d.set_item("disasm", r.disasm)?;
    d.set_item("jobs", r.jobs)?;
    d.set_item("from_file", &r.from_file)?;
    d.set_item("out_dir", &r.out_dir)?;
    d.set_item("format", &r.format)?;
    d.set_item("sign", r.sign)?;
    d.set_item("sign_key", &r.sign_key)?;
    d.set_item("sign_cert", &r.sign_cert)?;
    d.set_item("cert", &r.cert)?;
    d.set_item("signature", &r.signature)?;
    Ok(d)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BpfgenError", py.get_type::<BpfgenError>())?;
    m.add("ElfError", py.get_type::<ElfError>())?;
    m.add("BtfError", py.get_type::<BtfError>())?;
    m.add("RelocationError", py.get_type::<RelocationError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("LoaderDecodeError", py.get_type::<LoaderDecodeError>())?;
    m.add_class::<PyObject_>()?;
    m.add_class::<PyHostSpec>()?;
    m.add_class::<PyLoader>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(open_and_gen, m)?)?;
    m.add_function(wrap_pyfunction!(default_object_name, m)?)?;
    m.add_function(wrap_pyfunction!(host_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(read_kconfig, m)?)?;
    m.add_function(wrap_pyfunction!(write_loader, m)?)?;
    m.add_function(wrap_pyfunction!(write_file, m)?)?;
    m.add_function(wrap_pyfunction!(loader_ctx_size, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_version_code, m)?)?;
    m.add_function(wrap_pyfunction!(map_ident, m)?)?;
    m.add_function(wrap_pyfunction!(map_type_name, m)?)?;
    m.add_function(wrap_pyfunction!(prog_type_name, m)?)?;
    m.add_function(wrap_pyfunction!(attach_type_name, m)?)?;
    m.add_function(wrap_pyfunction!(selfcheck, m)?)?;
    m.add_function(wrap_pyfunction!(gen_batch, m)?)?;
    m.add_function(wrap_pyfunction!(_time_core, m)?)?;
    m.add_function(wrap_pyfunction!(parse_cli, m)?)?;
    m.add_function(wrap_pyfunction!(explain_loader, m)?)?;
    m.add_function(wrap_pyfunction!(explanation_text, m)?)?;
    m.add_function(wrap_pyfunction!(diagnose_run, m)?)?;
    m.add_function(wrap_pyfunction!(disasm, m)?)?;
    m.add_function(wrap_pyfunction!(read_loader, m)?)?;
    m.add_function(wrap_pyfunction!(uses_gotol, m)?)?;
    m.add_function(wrap_pyfunction!(loader_is_big_endian, m)?)?;
    m.add("EXPLAIN_FORMAT", crate::explain::FORMAT)?;
    m.add("CLI_USAGE", crate::cli::USAGE)?;
    // The skeleton ctx a loader reads and writes (`loader_abi.rs`), for the
    // facade that builds one to run a loader.
    m.add("LOADER_CTX_SIZE", crate::loader_abi::CTX_SIZE)?;
    m.add("MAP_DESC_SIZE", crate::loader_abi::MAP_DESC_SIZE)?;
    m.add("MAP_DESC_MAX_ENTRIES", crate::loader_abi::MAP_DESC_MAX_ENTRIES)?;
    m.add("MAP_DESC_INITIAL_VALUE", crate::loader_abi::MAP_DESC_INITIAL_VALUE)?;
    m.add("PROG_DESC_SIZE", crate::loader_abi::PROG_DESC_SIZE)?;
    m.add("BPF_OBJ_NAME_LEN", crate::loader_abi::BPF_OBJ_NAME_LEN)?;
    // the attr fields run()'s own MAP_CREATE and PROG_LOAD fill besides the
    // ones at the start of the attr
    use crate::loader_abi::{map_create, prog_load};
    m.add("MAP_CREATE_MAP_NAME", map_create::MAP_NAME)?;
    m.add("PROG_LOAD_PROG_FLAGS", prog_load::PROG_FLAGS)?;
    m.add("PROG_LOAD_PROG_NAME", prog_load::PROG_NAME)?;
    m.add("PROG_LOAD_FD_ARRAY", prog_load::FD_ARRAY)?;
    // the instruction size, for the raw programs run() loads
    m.add("INSN_SIZE", crate::insn::INSN_SIZE)?;
    // The commands and the kernel's type numbers and flags the runtime uses.
    for table in crate::EXPORTED_CONSTANTS {
        for (name, value) in *table {
            m.add(*name, *value)?;
        }
    }
    m.add(
        "PERCPU_MAP_TYPES",
        PyFrozenSet::new(py, section_defs::map_type::PERCPU)?,
    )?;
    Ok(())
}
