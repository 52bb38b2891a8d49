//! PyO3 bindings: argument conversion, GIL release around the pure core, and
//! the one place where core errors become Python exceptions. No logic.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyInt, PyString, PyTuple};

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

create_exception!(
    _core,
    LoaderDecodeError,
    BpfgenError,
    "The loader does not have the shape gen_loader emits."
);

/// A decode failure as `LoaderDecodeError("loader: insn N: reason")`, with
/// the same attributes as every other error of the package.
fn decode_err(py: Python<'_>, e: crate::explain::DecodeError) -> PyErr {
    let err = LoaderDecodeError::new_err(e.to_string());
    let value = err.value(py);
    let _ = value.setattr("object", "loader");
    let _ = value.setattr("section", None::<&str>);
    let _ = value.setattr("offset", e.insn);
    let _ = value.setattr("reason", e.reason);
    err
}

fn bad_document(py: Python<'_>, reason: String) -> PyErr {
    decode_err(py, crate::explain::DecodeError { reason, insn: None })
}

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

/// An I/O failure on `path` as Python's `OSError(errno, strerror, filename)`
/// (so `FileNotFoundError` and friends), or `OSError("path: message")` when
/// there is no errno (e.g. a corrupt gzip stream).
fn os_error(path: &std::path::Path, errno: Option<i32>, message: &str) -> PyErr {
    let path = path.to_string_lossy().into_owned();
    match errno {
        Some(n) => {
            let text = std::io::Error::from_raw_os_error(n).to_string();
            let strerror = text
                .strip_suffix(&format!(" (os error {n})"))
                .unwrap_or(&text)
                .to_string();
            pyo3::exceptions::PyOSError::new_err((n, strerror, path))
        }
        None => pyo3::exceptions::PyOSError::new_err(format!("{path}: {message}")),
    }
}

fn io_error(path: &std::path::Path, e: &std::io::Error) -> PyErr {
    os_error(path, e.raw_os_error(), &e.to_string())
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
    /// Kernel BTF file for struct_ops layouts (None: /sys/kernel/btf/vmlinux).
    #[pyo3(item)]
    kernel_btf: Option<std::path::PathBuf>,
    /// Header style: "bpftool-7.5" (default) or "bpftool-7.8".
    #[pyo3(item)]
    compat: Option<String>,
    /// Test-only: bpftool 7.5.0's (wrong) prog-fd slots for `?` programs.
    #[pyo3(item)]
    bpftool_prog_slots: Option<bool>,
    /// Test-only: bpftool 7.5.0's (wrong) lookups of `name___flavour` ksyms.
    #[pyo3(item)]
    bpftool_ksym_names: Option<bool>,
    /// Test-only: libbpf 1.8's host-order `.kconfig` values for bpfeb objects.
    #[pyo3(item)]
    bpftool_kconfig_host_order: Option<bool>,
    /// Test-only: libbpf 1.5's map BTF ids where the kernel refuses them.
    #[pyo3(item)]
    bpftool_map_btf_ids: Option<bool>,
    /// libbpf 1.8's `gen_hash`: the loader of a signed light skeleton
    /// (implied by `signature`). Optional key.
    #[pyo3(item, default)]
    gen_hash: Option<bool>,
    /// The CMS signature over the `gen_hash` loader's instructions: makes
    /// `gen_skeleton` print a signed header (bpftool 7.8.0's `-S`). Optional key.
    #[pyo3(item, default)]
    signature: Option<Vec<u8>>,
}

impl HostArgs {
    /// The host facts plus the test-only bpftool-compatibility options.
    fn into_host_and_options(self) -> (Host, crate::generate::GenOptions) {
        let opts = self.options();
        (self.into_host(), opts)
    }

    /// Generation choices; `compat` was validated by the Python facade
    /// (`host_args`), anything else falls back to bpftool 7.5.0's style.
    fn options(&self) -> crate::generate::GenOptions {
        crate::generate::GenOptions {
            compat: self
                .compat
                .as_deref()
                .and_then(crate::generate::Compat::parse)
                .unwrap_or_default(),
            bpftool_prog_slots: self.bpftool_prog_slots.unwrap_or(false),
            bpftool_ksym_names: self.bpftool_ksym_names.unwrap_or(false),
            bpftool_kconfig_host_order: self.bpftool_kconfig_host_order.unwrap_or(false),
            bpftool_map_btf_ids: self.bpftool_map_btf_ids.unwrap_or(false),
            gen_hash: self.gen_hash.unwrap_or(false) || self.signature.is_some(),
        }
    }

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
        host.kernel_btf = self.kernel_btf;
        host
    }
}

/// Host facts converted once (`_core.HostSpec(dict)`): the hot paths take one
/// instead of the dict, so the dict's keys are not looked up per object. It
/// keeps the dict too, for the `Loader`s made with it (`Loader._host`).
#[pyclass(module = "bpfgen_fast._core", name = "HostSpec", frozen)]
struct PyHostSpec {
    host: Host,
    opts: crate::generate::GenOptions,
    args: Py<PyAny>,
}

#[pymethods]
impl PyHostSpec {
    #[new]
    fn new(args: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (host, opts) = args.extract::<HostArgs>()?.into_host_and_options();
        Ok(PyHostSpec {
            host,
            opts,
            args: args.clone().unbind(),
        })
    }
}

/// Host facts as either form: parsed once, or a dict of `HostArgs`' keys.
#[derive(FromPyObject)]
enum HostIn<'py> {
    Spec(Bound<'py, PyHostSpec>),
    Args(HostArgs),
}

impl HostIn<'_> {
    fn into_host_and_options(self) -> (Host, crate::generate::GenOptions) {
        match self {
            HostIn::Spec(spec) => {
                let spec = spec.get();
                (spec.host.clone(), spec.opts)
            }
            HostIn::Args(args) => args.into_host_and_options(),
        }
    }
}

/// Host facts for a call that makes a `Loader`: a `HostSpec` is used in
/// place (nothing converted or copied), a dict is converted; either way the
/// dict is kept for the `Loader`'s `_host`.
enum HostFor<'a> {
    Spec(&'a PyHostSpec),
    Owned(Host, crate::generate::GenOptions, Py<PyAny>),
}

impl<'a> HostFor<'a> {
    fn extract(host: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(spec) = host.cast::<PyHostSpec>() {
            return Ok(HostFor::Spec(spec.get()));
        }
        let (h, opts) = host.extract::<HostArgs>()?.into_host_and_options();
        Ok(HostFor::Owned(h, opts, host.clone().unbind()))
    }

    fn host(&self) -> (&Host, crate::generate::GenOptions) {
        match self {
            HostFor::Spec(s) => (&s.host, s.opts),
            HostFor::Owned(h, opts, _) => (h, *opts),
        }
    }

    fn args(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            HostFor::Spec(s) => s.args.clone_ref(py),
            HostFor::Owned(_, _, args) => args.clone_ref(py),
        }
    }
}

/// One map as `Object.maps` returns it: (name, section, type, key_size,
/// value_size, max_entries, flags, internal, inner, ident).
type MapTuple = (
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
type ProgTuple = (
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
type GenTuple<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyTuple>,
    Bound<'py, PyTuple>,
);

/// (data, insns, map_names, prog_names) as returned to Python.
type LoaderTuple<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>, Vec<String>);

/// An opened BPF object (libbpf's open phase done).
///
/// Thread safety: generation works on a snapshot (`Arc` clone) taken under
/// the GIL, and releases its borrow of the Python object before releasing
/// the GIL. `set_autoload` from another thread meanwhile copies the object
/// on write instead of failing with PyO3's "Already borrowed".
#[pyclass(module = "bpfgen_fast._core", name = "Object")]
struct PyObject_ {
    inner: std::sync::Arc<Object>,
}

impl PyObject_ {
    /// The loader blobs for `host`, generated with the GIL released.
    fn blobs(slf: &Bound<'_, Self>, host: HostIn<'_>) -> PyResult<crate::generate::LoaderBlobs> {
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
    fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    fn license(&self) -> &str {
        &self.inner.license
    }

    /// A `bpfeb` object (its loaders are for a big-endian target).
    #[getter]
    fn big_endian(&self) -> bool {
        self.inner.big_endian
    }

    /// Maps in libbpf's order, each as `MapInfo`'s fields in its order.
    fn maps(&self) -> Vec<MapTuple> {
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
    fn programs(&self) -> Vec<ProgTuple> {
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
    fn inspect(&self, json: bool) -> String {
        if json {
            crate::inspect::to_json(&self.inner)
        } else {
            crate::inspect::to_text(&self.inner)
        }
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
            .map(|s| {
                let name = self.inner.section_names.get(s.index).unwrap_or_default();
                (s.index, name.to_string(), s.sh_type, s.flags, s.size)
            })
            .collect()
    }

    /// ELF symbols as (name, value, size, bind, type, shndx).
    fn symbols(&self) -> Vec<(String, u64, u64, u8, u8, u16)> {
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
    fn set_attach_target(&mut self, py: Python<'_>, name: &str, func: &str) -> PyResult<()> {
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

    fn set_autoload(&mut self, name: &str, autoload: bool) -> PyResult<()> {
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
    fn gen_skeleton(slf: &Bound<'_, Self>, host: HostArgs) -> PyResult<String> {
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
    fn gen_loader<'py>(slf: &Bound<'py, Self>, host: HostIn<'py>) -> PyResult<GenTuple<'py>> {
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
    fn loader(slf: &Bound<'_, Self>, host: &Bound<'_, PyAny>) -> PyResult<PyLoader> {
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
    fn arena_image<'py>(slf: &Bound<'py, Self>) -> Option<(usize, Bound<'py, PyBytes>)> {
        let py = slf.py();
        let obj = &slf.borrow().inner;
        obj.arena.as_ref().map(|a| (a.map_idx, PyBytes::new(py, &a.data)))
    }

    /// The values struct_ops maps get when attached, for the object on
    /// `host` (the struct_ops plan only; no loader is generated): [(map index, BPF_F_LINK, kernel-layout value,
    /// [(byte offset, program name)])] (see `generate::StructOpsValue`).
    #[allow(clippy::type_complexity)]
    fn struct_ops_values<'py>(
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
    fn selfcheck<'py>(
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

/// A generated loader: the two blobs and the skeleton layout they expect.
/// Immutable; :meth:`replace` makes a changed copy.
#[pyclass(module = "bpfgen_fast.object", name = "Loader", frozen)]
struct PyLoader {
    data: Py<PyAny>,
    insns: Py<PyAny>,
    /// The opened object it was generated from (a snapshot): its name tuples
    /// and its `_core` wrapper are made from it on first access (most callers
    /// never look, and the core makes no strings for them). None for a
    /// `Loader` built from its fields, whose cells are then all set.
    source: Option<std::sync::Arc<Object>>,
    map_names: PyOnceLock<Py<PyAny>>,
    prog_names: PyOnceLock<Py<PyAny>>,
    host: Py<PyAny>,
    core: PyOnceLock<Py<PyAny>>,
}

/// A cell already holding `value`.
fn cell_of(py: Python<'_>, value: Py<PyAny>) -> PyOnceLock<Py<PyAny>> {
    let cell = PyOnceLock::new();
    let _ = cell.set(py, value);
    cell
}

fn no_source() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("internal error: a Loader without its names")
}

impl PyLoader {
    /// A loader generated from `source`: each blob copied once into its
    /// `bytes`; `core` is the `_core.Object` to report, if the caller has one.
    fn generated(
        py: Python<'_>,
        blobs: &crate::generate::LoaderBlobs,
        source: std::sync::Arc<Object>,
        host: Py<PyAny>,
        core: Option<Py<PyAny>>,
    ) -> Self {
        PyLoader {
            data: PyBytes::new(py, &blobs.data).into_any().unbind(),
            insns: PyBytes::new(py, &blobs.insns).into_any().unbind(),
            source: Some(source),
            map_names: PyOnceLock::new(),
            prog_names: PyOnceLock::new(),
            host,
            core: core.map_or_else(PyOnceLock::new, |c| cell_of(py, c)),
        }
    }

    fn cell(&self, maps: bool) -> &PyOnceLock<Py<PyAny>> {
        if maps { &self.map_names } else { &self.prog_names }
    }

    /// `map_names` or `prog_names`.
    fn names<'py>(&self, py: Python<'py>, maps: bool) -> PyResult<Bound<'py, PyAny>> {
        self.cell(maps)
            .get_or_try_init(py, || {
                let obj = self.source.as_deref().ok_or_else(no_source)?;
                let tuple = if maps {
                    PyTuple::new(py, crate::generate::map_names(obj))?
                } else {
                    PyTuple::new(py, crate::generate::prog_names(obj).collect::<Vec<_>>())?
                };
                Ok::<_, PyErr>(tuple.into_any().unbind())
            })
            .map(|t| t.bind(py).clone())
    }

    fn names_len(&self, py: Python<'_>, maps: bool) -> PyResult<usize> {
        match (self.cell(maps).get(py), self.source.as_deref()) {
            (Some(t), _) => t.bind(py).len(),
            (None, Some(obj)) if maps => Ok(crate::generate::map_names(obj).count()),
            (None, Some(obj)) => Ok(crate::generate::prog_names(obj).count()),
            (None, None) => Err(no_source()),
        }
    }

    /// The names as strings, for the files `write` makes.
    fn names_strings(&self, py: Python<'_>, maps: bool) -> PyResult<Vec<String>> {
        match (self.cell(maps).get(py), self.source.as_deref()) {
            (None, Some(obj)) if maps => Ok(crate::generate::map_names(obj).map(str::to_string).collect()),
            (None, Some(obj)) => Ok(crate::generate::prog_names(obj).map(str::to_string).collect()),
            _ => self.names(py, maps)?.extract(),
        }
    }

    /// `_core`: the given object, or a `_core.Object` over the source made
    /// on first access (the same one every time), or None.
    fn core_obj<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core
            .get_or_try_init(py, || match &self.source {
                Some(obj) => Bound::new(
                    py,
                    PyObject_ {
                        inner: std::sync::Arc::clone(obj),
                    },
                )
                .map(|o| o.into_any().unbind()),
                None => Ok(py.None()),
            })
            .map(|c| c.bind(py).clone())
    }

    /// (data, insns, map_names, prog_names): what equality, hashing and the
    /// repr look at.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<[Bound<'py, PyAny>; 4]> {
        Ok([
            self.data.bind(py).clone(),
            self.insns.bind(py).clone(),
            self.names(py, true)?,
            self.names(py, false)?,
        ])
    }
}

#[pymethods]
impl PyLoader {
    #[new]
    #[pyo3(signature = (data, insns, map_names, prog_names, _host = None, _core = None))]
    fn new(
        py: Python<'_>,
        data: Py<PyAny>,
        insns: Py<PyAny>,
        map_names: Py<PyAny>,
        prog_names: Py<PyAny>,
        _host: Option<Py<PyAny>>,
        _core: Option<Py<PyAny>>,
    ) -> Self {
        PyLoader {
            data,
            insns,
            source: None,
            map_names: cell_of(py, map_names),
            prog_names: cell_of(py, prog_names),
            host: _host.unwrap_or_else(|| PyDict::new(py).into_any().unbind()),
            core: cell_of(py, _core.unwrap_or_else(|| py.None())),
        }
    }

    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyAny> {
        self.data.clone_ref(py)
    }

    #[getter]
    fn insns(&self, py: Python<'_>) -> Py<PyAny> {
        self.insns.clone_ref(py)
    }

    #[getter]
    fn map_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.names(py, true)
    }

    #[getter]
    fn prog_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.names(py, false)
    }

    /// The host facts it was generated with (a `host_args()` dict).
    #[getter]
    fn _host(&self, py: Python<'_>) -> Py<PyAny> {
        self.host.clone_ref(py)
    }

    /// The object it was generated from (`_core.Object`), or None.
    #[getter]
    fn _core<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core_obj(py)
    }

    /// A copy with the given fields changed (``data=``, ``insns=``, ...).
    #[pyo3(signature = (**changes))]
    fn replace(&self, py: Python<'_>, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let [data, insns, map_names, prog_names] = self.values(py)?;
        let mut fields = [
            data.unbind(),
            insns.unbind(),
            map_names.unbind(),
            prog_names.unbind(),
            self.host.clone_ref(py),
            self.core_obj(py)?.unbind(),
        ];
        const NAMES: [&str; 6] = ["data", "insns", "map_names", "prog_names", "_host", "_core"];
        if let Some(changes) = changes {
            for (key, value) in changes.iter() {
                let key: std::borrow::Cow<'_, str> = key.extract()?;
                let Some(i) = NAMES.iter().position(|n| *n == key) else {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "replace() got an unexpected keyword argument '{key}'"
                    )));
                };
                fields[i] = value.unbind();
            }
        }
        let [data, insns, map_names, prog_names, host, core] = fields;
        Ok(PyLoader {
            data,
            insns,
            source: None,
            map_names: cell_of(py, map_names),
            prog_names: cell_of(py, prog_names),
            host: if host.is_none(py) {
                PyDict::new(py).into_any().unbind()
            } else {
                host
            },
            core: cell_of(py, core),
        })
    }

    /// The light-skeleton header embedding these blobs (same host facts).
    fn gen_skeleton<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core_obj(py)?;
        if core.is_none() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "this Loader was not generated from a BpfObject",
            ));
        }
        core.call_method1("gen_skeleton", (self.host.bind(py),))
    }

    /// Size of the loader ctx: bpf_loader_ctx + one map desc per map + one
    /// prog desc per program.
    #[getter]
    fn ctx_size(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(crate::loader_abi::ctx_size(
            self.names_len(py, true)?,
            self.names_len(py, false)?,
        ))
    }

    /// Write ``PREFIX.data.bin``, ``PREFIX.insns.bin`` and ``PREFIX.json`` (the
    /// names and sizes), each atomically and all or nothing, as ``gen loader -o
    /// PREFIX`` and ``gen_batch(fmt="blobs")`` do; returns their paths.
    fn write(&self, py: Python<'_>, prefix: std::path::PathBuf) -> PyResult<Vec<std::path::PathBuf>> {
        let (data, insns) = (self.data.bind(py), self.insns.bind(py));
        let (data, insns): (&[u8], &[u8]) = (data.extract()?, insns.extract()?);
        let (maps, progs) = (self.names_strings(py, true)?, self.names_strings(py, false)?);
        py.detach(|| crate::files::write_loader(&prefix, data, insns, &maps, &progs))
            .map(|written| written.into_iter().map(|(path, _)| path).collect())
            .map_err(|(path, e)| io_error(&path, &e))
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyLoader>() else {
            return Ok(py.NotImplemented());
        };
        let equal = || -> PyResult<bool> {
            let (a, b) = (self.values(py)?, other.get().values(py)?);
            for (x, y) in a.iter().zip(b.iter()) {
                if !x.eq(y)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        match op {
            CompareOp::Eq => Ok(pyo3::types::PyBool::new(py, equal()?).to_owned().into_any().unbind()),
            CompareOp::Ne => Ok(pyo3::types::PyBool::new(py, !equal()?).to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        PyTuple::new(py, self.values(py)?)?.hash()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let [data, insns, maps, progs] = self.values(py)?;
        Ok(format!(
            "Loader(data={}, insns={}, map_names={}, prog_names={})",
            data.repr()?,
            insns.repr()?,
            maps.repr()?,
            progs.repr()?
        ))
    }

    /// Pickles and copies as a call of the constructor with every field.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, pyo3::types::PyType>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let [data, insns, maps, progs] = this.values(py)?;
        let args = PyTuple::new(
            py,
            [data, insns, maps, progs, this.host.bind(py).clone(), this.core_obj(py)?],
        )?;
        Ok((slf.get_type(), args))
    }
}

/// A self-check report as a dict, or the failure as `BpfgenError`.
fn selfcheck_result<'py>(
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
fn selfcheck<'py>(
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
struct Utf8Name<'py>(Bound<'py, PyBytes>);

impl<'py> Utf8Name<'py> {
    fn of(name: &Bound<'py, PyString>) -> PyResult<Self> {
        // a name that cannot be encoded (lone surrogates) fails as PyO3's
        // `&str` argument did: TypeError "argument 'name': ..."
        name.encode_utf8().map(Utf8Name).map_err(|e| {
            let py = name.py();
            let err = pyo3::exceptions::PyTypeError::new_err(format!("argument 'name': {e}"));
            err.set_cause(py, Some(e));
            err
        })
    }

    fn as_str(&self) -> &str {
        // Python's UTF-8 encoder produced these bytes: valid UTF-8
        crate::elf::utf8_name(self.0.as_bytes()).unwrap_or_default()
    }
}

/// Open a BPF object from its bytes (libbpf's open phase).
#[pyfunction]
fn open(py: Python<'_>, data: &[u8], name: &Bound<'_, PyString>) -> PyResult<PyObject_> {
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
fn open_and_gen(
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

/// bpftool's default object name for a path.
#[pyfunction]
fn default_object_name(path: &str) -> String {
    crate::default_object_name(path)
}

/// Write a loader's files atomically, all or nothing (`files::write_loader`):
/// their paths, `PREFIX.data.bin`, `PREFIX.insns.bin`, `PREFIX.json`.
#[pyfunction]
fn write_loader(
    py: Python<'_>,
    prefix: std::path::PathBuf,
    data: &[u8],
    insns: &[u8],
    map_names: Vec<String>,
    prog_names: Vec<String>,
) -> PyResult<Vec<std::path::PathBuf>> {
    py.detach(|| crate::files::write_loader(&prefix, data, insns, &map_names, &prog_names))
        .map(|written| written.into_iter().map(|(path, _)| path).collect())
        .map_err(|(path, e)| io_error(&path, &e))
}

/// Write one file atomically (`files::write_file`).
#[pyfunction]
fn write_file(py: Python<'_>, path: std::path::PathBuf, data: &[u8]) -> PyResult<()> {
    py.detach(|| crate::files::write_file(&path, data))
        .map_err(|e| io_error(&path, &e))
}

/// The skeleton ctx size a loader with these counts expects (`loader_abi::ctx_size`).
#[pyfunction]
fn loader_ctx_size(nr_maps: usize, nr_progs: usize) -> usize {
    crate::loader_abi::ctx_size(nr_maps, nr_progs)
}

/// The text of a kernel config file (`--kconfig-file`), gunzipped if it is
/// compressed like `/proc/config.gz`.
#[pyfunction]
fn read_kconfig(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    py.detach(|| crate::host::read_maybe_gz(&path))
        .map_err(|e| io_error(&path, &e))
}

// libbpf's names for the UAPI enums (`libbpf_bpf_*_type_str`); None for a
// value past the table, and for any int that is not a u32 (not an error: the
// facade shows such a value as unknown(N)).

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

/// One batch result as returned to Python: (path, name, error, skipped,
/// [(output path, size)], header, (data, insns, map_names, prog_names)).
type BatchTuple<'py> = (
    String,
    String,
    Option<Bound<'py, pyo3::PyAny>>,
    bool,
    Vec<(String, u64)>,
    Option<String>,
    Option<LoaderTuple<'py>>,
    Vec<String>,
);

fn batch_failure<'py>(py: Python<'py>, f: crate::batch::Failure) -> Option<Bound<'py, pyo3::PyAny>> {
    use crate::batch::Failure;
    let err = match f {
        Failure::Skipped => return None,
        Failure::Gen(e) => to_py_err(py, e),
        Failure::Io { path, errno, message } => os_error(&path, errno, &message),
        Failure::DuplicateName(name) => pyo3::exceptions::PyValueError::new_err(format!(
            "duplicate object name '{name}' in the batch: its output files would overwrite another object's"
        )),
        Failure::Panic(msg) => pyo3::exceptions::PyRuntimeError::new_err(format!("internal error (panic): {msg}")),
    };
    Some(err.into_value(py).into_bound(py).into_any())
}

/// Generate many objects in parallel with the GIL released (see `batch.rs`).
/// `progress(done, total)` is called from this thread every few tens of
/// milliseconds while the workers run; Ctrl-C (or an exception from
/// `progress`) cancels: objects not started are skipped, the ones running
/// finish (their outputs complete, no temporary files left), then the
/// exception is raised.
#[pyfunction]
#[pyo3(signature = (paths, names, jobs, out_dir, fmt, keep_going, host, progress=None, attach_targets=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn gen_batch<'py>(
    py: Python<'py>,
    paths: Vec<std::path::PathBuf>,
    names: Option<Vec<String>>,
    jobs: usize,
    out_dir: Option<std::path::PathBuf>,
    fmt: &str,
    keep_going: bool,
    host: HostArgs,
    progress: Option<Bound<'py, pyo3::PyAny>>,
    attach_targets: Vec<(String, String)>,
) -> PyResult<Vec<BatchTuple<'py>>> {
    use crate::batch::{self, BatchOptions, Control, Format, Job, Output};
    use std::sync::mpsc::{RecvTimeoutError, channel};

    let format = match fmt {
        "lskel" => Format::Lskel,
        "blobs" => Format::Blobs,
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown format {fmt:?}"
            )));
        }
    };
    if let Some(n) = &names
        && n.len() != paths.len()
    {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "names must have one entry per path",
        ));
    }
    if attach_targets.len() > 64 {
        return Err(pyo3::exceptions::PyValueError::new_err("at most 64 attach targets"));
    }
    let opts = BatchOptions {
        jobs,
        out_dir,
        format,
        keep_going,
        options: host.options(),
        attach_targets,
    };
    let host = host.into_host();
    let mut names = names.map(|n| n.into_iter());
    let jobs: Vec<Job> = paths
        .into_iter()
        .map(|path| Job {
            path,
            name: names.as_mut().and_then(|n| n.next()),
        })
        .collect();
    let total = jobs.len();
    let ctl = Control::default();
    let (tx, rx) = channel();
    let rx = std::sync::Mutex::new(rx); // shared with the GIL-free waits below
    let (outcome, interrupted) = std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(batch::gen_batch(&jobs, &opts, &host, &ctl));
        });
        let mut interrupted: Option<PyErr> = None;
        let mut reported = usize::MAX;
        loop {
            match py.detach(|| {
                let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                rx.recv_timeout(std::time::Duration::from_millis(40))
            }) {
                Ok(r) => break (r, interrupted),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break (
                        Err(std::io::Error::other("batch worker exited without a result")),
                        interrupted,
                    );
                }
            }
            if interrupted.is_some() {
                continue; // draining: the running objects finish, nothing new starts
            }
            if let Err(e) = py.check_signals() {
                ctl.cancel();
                // One more progress call, now that nothing new can start: a caller
                // can announce the interruption knowing the cancellation is in force.
                if let Some(cb) = &progress {
                    let _ = cb.call1((ctl.done(), total));
                }
                interrupted = Some(e);
                continue;
            }
            if let Some(cb) = &progress {
                let done = ctl.done();
                if done != reported {
                    reported = done;
                    if let Err(e) = cb.call1((done, total)) {
                        ctl.cancel();
                        interrupted = Some(e);
                    }
                }
            }
        }
    });
    if let Some(e) = interrupted {
        return Err(e);
    }
    let results = outcome?;
    if let Some(cb) = &progress {
        cb.call1((total, total))?;
    }
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let path = r.path.to_string_lossy().into_owned();
        let (mut error, mut skipped, mut written, mut header, mut blobs) = (None, false, Vec::new(), None, None);
        match r.outcome {
            Ok(Output::Header(text)) => header = Some(text),
            Ok(Output::Blobs(b)) => {
                blobs = Some((
                    PyBytes::new(py, &b.data),
                    PyBytes::new(py, &b.insns),
                    b.map_names,
                    b.prog_names,
                ))
            }
            Ok(Output::Written(files)) => {
                written = files
                    .into_iter()
                    .map(|(p, n)| (p.to_string_lossy().into_owned(), n))
                    .collect()
            }
            Err(batch::Failure::Skipped) => skipped = true,
            Err(f) => error = batch_failure(py, f),
        }
        let applied = (opts.attach_targets.iter().enumerate())
            .filter(|(i, _)| r.attach_applied & (1 << i) != 0)
            .map(|(_, (prog, _))| prog.clone())
            .collect();
        out.push((path, r.name, error, skipped, written, header, blobs, applied));
    }
    Ok(out)
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
/// Decode a loader's blobs: the explanation document (`explain --json`).
#[pyfunction]
#[pyo3(signature = (data, insns, map_names, prog_names, ctx_size=None, with_disasm=false, big_endian=None))]
#[allow(clippy::too_many_arguments)]
fn explain_loader(
    py: Python<'_>,
    data: &[u8],
    insns: &[u8],
    map_names: Vec<String>,
    prog_names: Vec<String>,
    ctx_size: Option<usize>,
    with_disasm: bool,
    big_endian: Option<bool>,
) -> PyResult<String> {
    let opts = crate::explain::DecodeOptions {
        map_names: &map_names,
        prog_names: &prog_names,
        ctx_size,
        with_disasm,
        big_endian,
    };
    let e = py
        .detach(|| crate::explain::decode(data, insns, &opts))
        .map_err(|e| decode_err(py, e))?;
    Ok(e.to_json())
}

/// The `explain` listing of an explanation document.
#[pyfunction]
fn explanation_text(py: Python<'_>, document: &str) -> PyResult<String> {
    let e = crate::explain::Explanation::from_json(document).map_err(|r| bad_document(py, r))?;
    Ok(crate::explain::render(&e))
}

/// The step a failed run stopped at, from the loader map's value after it.
#[pyfunction]
fn diagnose_run(py: Python<'_>, document: &str, blob: &[u8]) -> PyResult<(Option<usize>, Option<String>)> {
    let e = crate::explain::Explanation::from_json(document).map_err(|r| bad_document(py, r))?;
    Ok(crate::explain::diagnose(&e, blob))
}

/// (data, insns, map names, program names): a loader read back.
type LoaderParts<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>, Vec<String>);

/// A loader `gen loader -o PREFIX` wrote.
#[pyfunction]
fn read_loader<'py>(py: Python<'py>, prefix: std::path::PathBuf) -> PyResult<LoaderParts<'py>> {
    match py.detach(|| crate::files::read_loader(&prefix)) {
        Ok(f) => Ok((
            PyBytes::new(py, &f.data),
            PyBytes::new(py, &f.insns),
            f.map_names,
            f.prog_names,
        )),
        Err(crate::files::ReadError::Io(path, e)) => Err(io_error(&path, &e)),
        Err(crate::files::ReadError::Meta(path, why)) => Err(bad_document(py, format!("{}: {why}", path.display()))),
    }
}

/// One line per instruction (`blob`: a loader's own code).
#[pyfunction]
#[pyo3(signature = (insns, blob=true, big_endian=None))]
fn disasm(py: Python<'_>, insns: &[u8], blob: bool, big_endian: Option<bool>) -> PyResult<Vec<String>> {
    let be = big_endian.unwrap_or_else(|| blob && crate::disasm::loader_is_big_endian(insns));
    crate::disasm::listing(insns, blob, be).map_err(|e| decode_err(py, e.into()))
}

#[pyfunction]
fn uses_gotol(py: Python<'_>, insns: &[u8], big_endian: bool) -> PyResult<bool> {
    crate::disasm::uses_gotol(insns, big_endian).map_err(|e| decode_err(py, e.into()))
}

#[pyfunction]
fn loader_is_big_endian(insns: &[u8]) -> bool {
    crate::disasm::loader_is_big_endian(insns)
}

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
