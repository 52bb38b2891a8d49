//! PyO3 bindings: argument conversion, GIL release around the pure core, and
//! the one place where core errors become Python exceptions. No logic.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::error::{Error, ErrorKind};
use crate::host::Host;
use crate::object::Object;
use crate::section_defs;

create_exception!(
    _core,
    BpfgenError,
    PyException,
    "Base class of every bpfgen_fast error."
);
create_exception!(
    _core,
    ElfError,
    BpfgenError,
    "Not ELF, not a BPF object, truncated or malformed ELF."
);
create_exception!(
    _core,
    BtfError,
    BpfgenError,
    "Malformed or inconsistent .BTF / .BTF.ext."
);
create_exception!(
    _core,
    RelocationError,
    BpfgenError,
    "A relocation that cannot be applied."
);
create_exception!(
    _core,
    UnsupportedError,
    BpfgenError,
    "Well-formed input that libbpf 1.5 refuses in gen mode."
);

fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.kind {
        ErrorKind::Elf => ElfError::new_err(msg),
        ErrorKind::Btf => BtfError::new_err(msg),
        ErrorKind::Relocation => RelocationError::new_err(msg),
        ErrorKind::Unsupported => UnsupportedError::new_err(msg),
    };
    let value = err.value(py);
    // Structured context for callers that want more than the message.
    let _ = value.setattr("object", e.object);
    let _ = value.setattr("section", e.section);
    let _ = value.setattr("offset", e.offset);
    let _ = value.setattr("reason", e.reason);
    err
}

/// Host facts: this machine's unless given explicitly (see `Host`).
#[derive(FromPyObject, Default)]
struct HostArgs {
    #[pyo3(item)]
    page_size: Option<u32>,
    #[pyo3(item)]
    possible_cpus: Option<u32>,
    #[pyo3(item)]
    kernel_version: Option<u32>,
    #[pyo3(item)]
    kconfig: Option<String>,
    #[pyo3(item)]
    kconfig_extra: Option<String>,
    #[pyo3(item)]
    kallsyms: Option<String>,
    /// Test-only: bpftool 7.5.0's (wrong) prog-fd slots for `?` programs.
    #[pyo3(item)]
    bpftool_prog_slots: Option<bool>,
    /// Test-only: bpftool 7.5.0's (wrong) lookups of `name___flavour` ksyms.
    #[pyo3(item)]
    bpftool_ksym_names: Option<bool>,
}

impl HostArgs {
    fn into_host(self) -> Host {
        let mut host = Host::detect();
        if let Some(p) = self.page_size {
            host.page_size = p;
        }
        if let Some(c) = self.possible_cpus {
            host.possible_cpus = c;
        }
        host.kernel_version = self.kernel_version;
        host.kconfig = self.kconfig.map(Into::into);
        host.kconfig_extra = self.kconfig_extra.map(Into::into);
        host.kallsyms = self.kallsyms.map(Into::into);
        host
    }
}

/// (data, insns, map_names, prog_names) as returned to Python.
type LoaderTuple<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>, Vec<String>);

/// An opened BPF object (libbpf's open phase done).
#[pyclass(module = "bpfgen_fast._core", name = "Object")]
struct PyObject_ {
    inner: Object,
}

#[pymethods]
impl PyObject_ {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    fn license(&self) -> &str {
        &self.inner.license
    }

    /// Maps in libbpf's order, as dicts of read-only facts.
    fn maps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for m in &self.inner.maps {
            let d = PyDict::new(py);
            d.set_item("name", &m.name)?;
            // The .kconfig map has no ELF section of its own (libbpf files it under the symtab).
            let section = match m.origin {
                crate::object::MapOrigin::Kconfig => ".kconfig".to_string(),
                _ => self.inner.section_names.get(m.sec_idx).cloned().unwrap_or_default(),
            };
            d.set_item("section", section)?;
            d.set_item("type", section_defs::map_type_name(m.def.map_type).unwrap_or("unknown"))?;
            d.set_item("type_id", m.def.map_type)?;
            d.set_item("key_size", m.def.key_size)?;
            d.set_item("value_size", m.def.value_size)?;
            d.set_item("max_entries", m.def.max_entries)?;
            d.set_item("flags", m.def.map_flags)?;
            d.set_item("internal", m.is_internal())?;
            d.set_item("inner", m.inner.as_ref().map(|i| i.name.clone()))?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Entry programs in libbpf's order (sub-programs are not listed).
    fn programs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for p in self.inner.programs.iter().filter(|p| !p.is_subprog) {
            let a = p.load_attrs();
            let d = PyDict::new(py);
            d.set_item("name", &p.name)?;
            d.set_item("section", &p.sec_name)?;
            d.set_item("type", section_defs::prog_type_name(a.prog_type).unwrap_or("unspec"))?;
            d.set_item("type_id", a.prog_type)?;
            d.set_item(
                "expected_attach_type",
                section_defs::attach_type_name(a.expected_attach_type),
            )?;
            d.set_item("flags", a.prog_flags)?;
            d.set_item("insn_cnt", p.sec_insn_cnt)?;
            d.set_item("autoload", p.autoload)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Names of `.text` sub-programs.
    fn subprograms(&self) -> Vec<String> {
        self.inner
            .programs
            .iter()
            .filter(|p| p.is_subprog)
            .map(|p| p.name.clone())
            .collect()
    }

    /// ELF sections as (index, name, type, flags, size).
    fn sections(&self) -> Vec<(usize, String, u32, u64, u64)> {
        self.inner
            .elf_sections
            .iter()
            .map(|s| (s.index, s.name.clone(), s.sh_type, s.flags, s.size))
            .collect()
    }

    /// ELF symbols as (name, value, size, bind, type, shndx).
    fn symbols(&self) -> Vec<(String, u64, u64, u8, u8, u16)> {
        self.inner
            .elf_symbols
            .iter()
            .map(|s| (s.name.clone(), s.value, s.size, s.bind, s.typ, s.shndx))
            .collect()
    }

    fn set_autoload(&mut self, name: &str, autoload: bool) -> PyResult<()> {
        match self.inner.programs.iter_mut().find(|p| !p.is_subprog && p.name == name) {
            Some(p) => {
                p.autoload = autoload;
                Ok(())
            }
            None => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }

    /// Generate the light-skeleton header (`bpftool gen skeleton -L`).
    fn gen_skeleton(&self, py: Python<'_>, host: HostArgs) -> PyResult<String> {
        let opts = crate::generate::GenOptions {
            bpftool_prog_slots: host.bpftool_prog_slots.unwrap_or(false),
            bpftool_ksym_names: host.bpftool_ksym_names.unwrap_or(false),
        };
        let host = host.into_host();
        let obj = &self.inner;
        py.detach(|| {
            let blobs = crate::generate::gen_loader_with(obj, &host, opts)?;
            crate::skel::gen_skeleton(obj, &blobs, &host)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// Generate the loader: (data, insns, map_names, prog_names).
    /// `host` is a dict with the optional keys of `HostArgs`.
    fn gen_loader<'py>(&self, py: Python<'py>, host: HostArgs) -> PyResult<LoaderTuple<'py>> {
        let opts = crate::generate::GenOptions {
            bpftool_prog_slots: host.bpftool_prog_slots.unwrap_or(false),
            bpftool_ksym_names: host.bpftool_ksym_names.unwrap_or(false),
        };
        let host = host.into_host();
        let obj = &self.inner;
        let blobs = py
            .detach(|| crate::generate::gen_loader_with(obj, &host, opts))
            .map_err(|e| to_py_err(py, e))?;
        Ok((
            PyBytes::new(py, &blobs.data),
            PyBytes::new(py, &blobs.insns),
            blobs.map_names,
            blobs.prog_names,
        ))
    }
}

/// Open a BPF object from its bytes (libbpf's open phase).
#[pyfunction]
fn open(py: Python<'_>, data: &[u8], name: &str) -> PyResult<PyObject_> {
    py.detach(|| crate::object::open(data, name))
        .map(|inner| PyObject_ { inner })
        .map_err(|e| to_py_err(py, e))
}

/// bpftool's default object name for a path.
#[pyfunction]
fn default_object_name(path: &str) -> String {
    crate::default_object_name(path)
}

/// (page_size, possible_cpus) of this host, as libbpf reads them.
#[pyfunction]
fn host_defaults() -> (u32, u32) {
    let h = Host::detect();
    (h.page_size, h.possible_cpus)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BpfgenError", py.get_type::<BpfgenError>())?;
    m.add("ElfError", py.get_type::<ElfError>())?;
    m.add("BtfError", py.get_type::<BtfError>())?;
    m.add("RelocationError", py.get_type::<RelocationError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add_class::<PyObject_>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(default_object_name, m)?)?;
    m.add_function(wrap_pyfunction!(host_defaults, m)?)?;
    Ok(())
}
