//! `_core.Object`, the opened object, and the calls that open and generate.

use crate::object::Object;
use crate::section_defs;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use super::*;

/// One map as `Object.maps` returns it: (name, section, type, key_size,
/// value_size, max_entries, flags, internal, inner, ident).
pub(super) type MapTuple = (
    String,
    String,
    &'static str,
    u32,
    u32,
    u32,
    u32,
    bool,
    Option<String>,
    Option<String>,
);

/// One entry program as `Object.programs` returns it.
pub(super) type ProgTuple = (
    String,
    String,
    &'static str,
    Option<&'static str>,
    u32,
    usize,
    bool,
    Option<String>,
);

/// (data, insns, map_names, prog_names) as `Object.gen_loader` returns them.
pub(super) type GenTuple<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyTuple>,
    Bound<'py, PyTuple>,
);

/// (data, insns, map_names, prog_names) as returned to Python.
pub(super) type LoaderTuple<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>, Vec<String>);

/// An opened BPF object (libbpf's open phase done).
///
/// Thread safety: generation works on a snapshot (`Arc` clone) taken under
/// the GIL, and releases its borrow of the Python object before releasing
/// the GIL. `set_autoload` from another thread meanwhile copies the object
/// on write instead of failing with PyO3's "Already borrowed".
#[pyclass(module = "bpfgen_fast._core", name = "Object")]
pub(super) struct PyObject_ {
    pub(super) inner: std::sync::Arc<Object>,
}

impl PyObject_ {
    /// The loader blobs for `host`, generated with the GIL released.
    pub(super) fn blobs(slf: &Bound<'_, Self>, host: HostIn<'_>) -> PyResult<crate::generate::LoaderBlobs> {
        let py = slf.py();
        let (host, opts) = host.into_host_and_options();
        let obj = &*std::sync::Arc::clone(&slf.borrow().inner);
        py.detach(|| crate::generate::gen_loader_with(obj, &host, opts))
            .map_err(|e| to_py_err(py, e))
    }
}

#[pymethods]
impl PyObject_ {
    #[getter]
    pub(super) fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    pub(super) fn license(&self) -> &str {
        &self.inner.license
    }

    /// A `bpfeb` object (its loaders are for a big-endian target).
    #[getter]
    pub(super) fn big_endian(&self) -> bool {
        self.inner.big_endian
    }

    /// Maps in libbpf's order, each as `MapInfo`'s fields in its order.
    pub(super) fn maps(&self) -> Vec<MapTuple> {
        self.inner
            .maps
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    crate::inspect::map_section(&self.inner, m),
                    section_defs::map_type_name(m.def.map_type).unwrap_or("unknown"),
                    m.def.key_size,
                    m.def.value_size,
                    m.def.max_entries,
                    m.def.map_flags,
                    m.is_internal(),
                    m.inner.as_ref().map(|i| i.name.clone()),
                    crate::skel::map_ident(m),
                )
            })
            .collect()
    }

    /// Entry programs in libbpf's order (sub-programs are not listed): (name,
    /// section, type, expected attach type, flags, insn count, autoload,
    /// attach target given by the user).
    pub(super) fn programs(&self) -> Vec<ProgTuple> {
        self.inner
            .programs
            .iter()
            .filter(|p| !p.is_subprog)
            .map(|p| {
                let a = p.load_attrs();
                (
                    p.name.clone(),
                    p.sec_name.clone(),
                    section_defs::prog_type_name(a.prog_type).unwrap_or("unspec"),
                    section_defs::attach_type_name(a.expected_attach_type),
                    a.prog_flags,
                    p.sec_insn_cnt,
                    p.autoload,
                    p.attach_target.clone(),
                )
            })
            .collect()
    }

    /// `inspect`'s output: the JSON document (`json=True`) or the text summary.
    #[pyo3(signature = (json = false))]
    pub(super) fn inspect(&self, json: bool) -> String {
        if json {
            crate::inspect::to_json(&self.inner)
        } else {
            crate::inspect::to_text(&self.inner)
        }
    }

    /// Names of `.text` sub-programs.
    pub(super) fn subprograms(&self) -> Vec<String> {
        self.inner
            .programs
            .iter()
            .filter(|p| p.is_subprog)
            .map(|p| p.name.clone())
            .collect()
    }

    /// ELF sections as (index, name, type, flags, size).
    pub(super) fn sections(&self) -> Vec<(usize, String, u32, u64, u64)> {
        self.inner
            .elf_sections
            .iter()
            .map(|s| {
                let name = self.inner.section_names.get(s.index).unwrap_or_default();
                (s.index, name.to_string(), s.sh_type, s.flags, s.size)
            })
            .collect()
    }

    /// ELF symbols as (name, value, size, bind, type, shndx).
    pub(super) fn symbols(&self) -> Vec<(String, u64, u64, u8, u8, u16)> {
        self.inner
            .elf_symbols
            .iter()
            .zip(self.inner.symbol_names.iter())
            .map(|(s, name)| (name.to_string(), s.value, s.size, s.bind, s.typ, s.shndx))
            .collect()
    }

    /// `bpf_program__set_attach_target(prog, 0, func)` for a vmlinux target
    /// (see `Object::set_attach_target`): KeyError for an unknown program,
    /// UnsupportedError for one that does not attach through kernel BTF.
    pub(super) fn set_attach_target(&mut self, py: Python<'_>, name: &str, func: &str) -> PyResult<()> {
        let inner = std::sync::Arc::make_mut(&mut self.inner);
        let object = inner.name.clone();
        match inner.set_attach_target(name, func) {
            Ok(()) => Ok(()),
            Err(crate::object::AttachTargetError::NoProgram) => {
                Err(pyo3::exceptions::PyKeyError::new_err(name.to_string()))
            }
            Err(e) => Err(to_py_err(
                py,
                crate::Error::unsupported(format!("attach target {}", e.describe(name, func))).for_object(&object),
            )),
        }
    }

    pub(super) fn set_autoload(&mut self, name: &str, autoload: bool) -> PyResult<()> {
        let inner = std::sync::Arc::make_mut(&mut self.inner);
        match inner.programs.iter_mut().find(|p| !p.is_subprog && p.name == name) {
            Some(p) => {
                p.autoload = autoload;
                Ok(())
            }
            None => Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        }
    }

    /// Generate the light-skeleton header (`bpftool gen skeleton -L`).
    pub(super) fn gen_skeleton(slf: &Bound<'_, Self>, host: HostArgs) -> PyResult<String> {
        let py = slf.py();
        let signature = host.signature.clone();
        let (host, opts) = host.into_host_and_options();
        let obj = &*std::sync::Arc::clone(&slf.borrow().inner);
        py.detach(|| {
            let blobs = crate::generate::gen_loader_with(obj, &host, opts)?;
            match &signature {
                Some(sig) => crate::skel::gen_signed_skeleton(obj, &blobs, &host, opts, sig),
                None => crate::skel::gen_skeleton_with(obj, &blobs, &host, opts),
            }
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// Generate the loader: (data, insns, map_names, prog_names).
    /// `host` is a dict with the optional keys of `HostArgs`.
    pub(super) fn gen_loader<'py>(slf: &Bound<'py, Self>, host: HostIn<'py>) -> PyResult<GenTuple<'py>> {
        let py = slf.py();
        let blobs = Self::blobs(slf, host)?;
        Ok((
            PyBytes::new(py, &blobs.data),
            PyBytes::new(py, &blobs.insns),
            PyTuple::new(py, &blobs.map_names)?,
            PyTuple::new(py, &blobs.prog_names)?,
        ))
    }

    /// Generate the loader as a `Loader` (`BpfObject.gen_loader`): `host` is a
    /// `HostSpec` or a dict of `HostArgs`' keys, kept as the `Loader`'s `_host`.
    pub(super) fn loader(slf: &Bound<'_, Self>, host: &Bound<'_, PyAny>) -> PyResult<PyLoader> {
        let py = slf.py();
        let host = HostFor::extract(host)?;
        let (h, opts) = host.host();
        let source = std::sync::Arc::clone(&slf.borrow().inner);
        let blobs = py
            .detach(|| crate::generate::gen_loader_unnamed(&source, h, opts))
            .map_err(|e| to_py_err(py, e))?;
        let core = Some(slf.clone().into_any().unbind());
        Ok(PyLoader::generated(py, &blobs, source, host.args(py), core))
    }

    /// `__arena` globals: (arena map index, initial image) or None. The
    /// image belongs at the start of the arena's user mapping (at the map's
    /// `map_extra` address), copied in after the loader has run.
    pub(super) fn arena_image<'py>(slf: &Bound<'py, Self>) -> Option<(usize, Bound<'py, PyBytes>)> {
        let py = slf.py();
        let obj = &slf.borrow().inner;
        obj.arena.as_ref().map(|a| (a.map_idx, PyBytes::new(py, &a.data)))
    }

    /// The values struct_ops maps get when attached, for the object on
    /// `host` (the struct_ops plan only; no loader is generated): [(map index, BPF_F_LINK, kernel-layout value,
    /// [(byte offset, program name)])] (see `generate::StructOpsValue`).
    #[allow(clippy::type_complexity)]
    pub(super) fn struct_ops_values<'py>(
        slf: &Bound<'py, Self>,
        host: HostArgs,
    ) -> PyResult<Vec<(usize, bool, Bound<'py, PyBytes>, Vec<(u32, String)>)>> {
        let py = slf.py();
        let host = host.into_host();
        let obj = &*std::sync::Arc::clone(&slf.borrow().inner);
        let values = py
            .detach(|| crate::generate::struct_ops_values(obj, &host))
            .map_err(|e| to_py_err(py, e))?;
        Ok(values
            .into_iter()
            .map(|v| (v.map_idx, v.link, PyBytes::new(py, &v.value), v.funcs))
            .collect())
    }

    /// Loader self-check against this object (maps with their types and
    /// sizes, programs with their types, autoload and license) for blobs
    /// generated on `host`; raises `BpfgenError` on failure.
    pub(super) fn selfcheck<'py>(
        slf: &Bound<'py, Self>,
        data: &[u8],
        insns: &[u8],
        host: HostArgs,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let host = host.into_host();
        let expect = crate::selfcheck::expect_object(&slf.borrow().inner, &host);
        let report = py.detach(|| crate::selfcheck::check(data, insns, &expect));
        selfcheck_result(py, report)
    }
}

/// A self-check report as a dict, or the failure as `BpfgenError`.
pub(super) fn selfcheck_result<'py>(
    py: Python<'py>,
    report: std::result::Result<crate::selfcheck::Report, crate::selfcheck::CheckError>,
) -> PyResult<Bound<'py, PyDict>> {
    let r = report.map_err(|e| BpfgenError::new_err(e.to_string()))?;
    let d = PyDict::new(py);
    d.set_item("insn_cnt", r.insn_cnt)?;
    d.set_item("data_len", r.data_len)?;
    d.set_item("btf", r.btf)?;
    let maps: Vec<(String, Option<usize>, u32)> = r
        .map_creates
        .iter()
        .map(|m| (m.name.clone(), m.map_idx, m.attrs.map_type))
        .collect();
    d.set_item("map_creates", maps)?;
    let progs: Vec<(String, usize, u32, u32)> = r
        .prog_loads
        .iter()
        .map(|p| (p.name.clone(), p.prog_idx, p.prog_type, p.insn_cnt))
        .collect();
    d.set_item("prog_loads", progs)?;
    d.set_item("map_updates", r.map_updates)?;
    d.set_item("map_freezes", r.map_freezes)?;
    d.set_item("warnings", r.warnings)?;
    Ok(d)
}

/// Loader self-check from the blobs and the ctx layout alone (every map's
/// and entry program's name, in order); raises `BpfgenError` on failure.
/// Returns a report: `map_creates` as (name, map index or None for an inner
/// template, type), `prog_loads` as (name, program index, type, insn count).
#[pyfunction]
pub(super) fn selfcheck<'py>(
    py: Python<'py>,
    data: &[u8],
    insns: &[u8],
    map_names: Vec<String>,
    prog_names: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let report = py.detach(|| crate::selfcheck::check_names(data, insns, &map_names, &prog_names));
    selfcheck_result(py, report)
}

/// An object name's UTF-8, borrowed from the `bytes` Python encodes it to:
/// under the limited API of Python 3.9 PyO3's `&str` argument copies it once
/// more into a `String` (an allocation per call on the hot paths).
pub(super) struct Utf8Name<'py>(Bound<'py, PyBytes>);

impl<'py> Utf8Name<'py> {
    pub(super) fn of(name: &Bound<'py, PyString>) -> PyResult<Self> {
        // a name that cannot be encoded (lone surrogates) fails as PyO3's
        // `&str` argument did: TypeError "argument 'name': ..."
        name.encode_utf8().map(Utf8Name).map_err(|e| {
            let py = name.py();
            let err = pyo3::exceptions::PyTypeError::new_err(format!("argument 'name': {e}"));
            err.set_cause(py, Some(e));
            err
        })
    }

    pub(super) fn as_str(&self) -> &str {
        // Python's UTF-8 encoder produced these bytes: valid UTF-8
        crate::elf::utf8_name(self.0.as_bytes()).unwrap_or_default()
    }
}

/// Open a BPF object from its bytes (libbpf's open phase).
#[pyfunction]
pub(super) fn open(py: Python<'_>, data: &[u8], name: &Bound<'_, PyString>) -> PyResult<PyObject_> {
    let name = Utf8Name::of(name)?;
    let name = name.as_str();
    py.detach(|| crate::object::open(data, name))
        .map(|inner| PyObject_ {
            inner: std::sync::Arc::new(inner),
        })
        .map_err(|e| to_py_err(py, e))
}

/// Open and generate in one call (one GIL release): the loader, holding the
/// opened object (its `_core.Object` made only if asked for), for the
/// module-level `gen_loader`, the path of users who generate many loaders.
#[pyfunction]
pub(super) fn open_and_gen(
    py: Python<'_>,
    data: &[u8],
    name: &Bound<'_, PyString>,
    host: &Bound<'_, PyAny>,
) -> PyResult<PyLoader> {
    let name = Utf8Name::of(name)?;
    let name = name.as_str();
    let host = HostFor::extract(host)?;
    let (h, opts) = host.host();
    let (obj, blobs) = py
        .detach(|| {
            let obj = crate::object::open(data, name)?;
            let blobs = crate::generate::gen_loader_unnamed(&obj, h, opts)?;
            Ok::<_, crate::Error>((obj, blobs))
        })
        .map_err(|e| to_py_err(py, e))?;
    Ok(PyLoader::generated(
        py,
        &blobs,
        std::sync::Arc::new(obj),
        host.args(py),
        None,
    ))
}
