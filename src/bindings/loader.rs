//! `Loader`, built by the core per generation: the blobs, with the name
//! tuples and the `_core.Object` made from the opened object on first access.

use crate::object::Object;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::*;

/// A generated loader: the two blobs and the skeleton layout they expect.
/// Immutable; :meth:`replace` makes a changed copy.
#[pyclass(module = "bpfgen_fast.object", name = "Loader", frozen)]
pub(super) struct PyLoader {
    pub(super) data: Py<PyAny>,
    pub(super) insns: Py<PyAny>,
    /// The opened object it was generated from (a snapshot): its name tuples
    /// and its `_core` wrapper are made from it on first access (most callers
    /// never look, and the core makes no strings for them). None for a
    /// `Loader` built from its fields, whose cells are then all set.
    pub(super) source: Option<std::sync::Arc<Object>>,
    pub(super) map_names: PyOnceLock<Py<PyAny>>,
    pub(super) prog_names: PyOnceLock<Py<PyAny>>,
    pub(super) host: Py<PyAny>,
    pub(super) core: PyOnceLock<Py<PyAny>>,
}

/// A cell already holding `value`.
pub(super) fn cell_of(py: Python<'_>, value: Py<PyAny>) -> PyOnceLock<Py<PyAny>> {
    let cell = PyOnceLock::new();
    let _ = cell.set(py, value);
    cell
}

pub(super) fn no_source() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("internal error: a Loader without its names")
}

impl PyLoader {
    /// A loader generated from `source`: each blob copied once into its
    /// `bytes`; `core` is the `_core.Object` to report, if the caller has one.
    pub(super) fn generated(
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

    pub(super) fn cell(&self, maps: bool) -> &PyOnceLock<Py<PyAny>> {
        if maps { &self.map_names } else { &self.prog_names }
    }

    /// `map_names` or `prog_names`.
    pub(super) fn names<'py>(&self, py: Python<'py>, maps: bool) -> PyResult<Bound<'py, PyAny>> {
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

    pub(super) fn names_len(&self, py: Python<'_>, maps: bool) -> PyResult<usize> {
        match (self.cell(maps).get(py), self.source.as_deref()) {
            (Some(t), _) => t.bind(py).len(),
            (None, Some(obj)) if maps => Ok(crate::generate::map_names(obj).count()),
            (None, Some(obj)) => Ok(crate::generate::prog_names(obj).count()),
            (None, None) => Err(no_source()),
        }
    }

    /// The names as strings, for the files `write` makes.
    pub(super) fn names_strings(&self, py: Python<'_>, maps: bool) -> PyResult<Vec<String>> {
        match (self.cell(maps).get(py), self.source.as_deref()) {
            (None, Some(obj)) if maps => Ok(crate::generate::map_names(obj).map(str::to_string).collect()),
            (None, Some(obj)) => Ok(crate::generate::prog_names(obj).map(str::to_string).collect()),
            _ => self.names(py, maps)?.extract(),
        }
    }

    /// `_core`: the given object, or a `_core.Object` over the source made
    /// on first access (the same one every time), or None.
    pub(super) fn core_obj<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
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
    pub(super) fn values<'py>(&self, py: Python<'py>) -> PyResult<[Bound<'py, PyAny>; 4]> {
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
    pub(super) fn new(
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
    pub(super) fn data(&self, py: Python<'_>) -> Py<PyAny> {
        self.data.clone_ref(py)
    }

    #[getter]
    pub(super) fn insns(&self, py: Python<'_>) -> Py<PyAny> {
        self.insns.clone_ref(py)
    }

    #[getter]
    pub(super) fn map_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.names(py, true)
    }

    #[getter]
    pub(super) fn prog_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.names(py, false)
    }

    /// The host facts it was generated with (a `host_args()` dict).
    #[getter]
    pub(super) fn _host(&self, py: Python<'_>) -> Py<PyAny> {
        self.host.clone_ref(py)
    }

    /// The object it was generated from (`_core.Object`), or None.
    #[getter]
    pub(super) fn _core<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core_obj(py)
    }

    /// A copy with the given fields changed (``data=``, ``insns=``, ...).
    #[pyo3(signature = (**changes))]
    pub(super) fn replace(&self, py: Python<'_>, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
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
    pub(super) fn gen_skeleton<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
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
    pub(super) fn ctx_size(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(crate::loader_abi::ctx_size(
            self.names_len(py, true)?,
            self.names_len(py, false)?,
        ))
    }

    /// Write ``PREFIX.data.bin``, ``PREFIX.insns.bin`` and ``PREFIX.json`` (the
    /// names and sizes), each atomically and all or nothing, as ``gen loader -o
    /// PREFIX`` and ``gen_batch(fmt="blobs")`` do; returns their paths.
    pub(super) fn write(&self, py: Python<'_>, prefix: std::path::PathBuf) -> PyResult<Vec<std::path::PathBuf>> {
        let (data, insns) = (self.data.bind(py), self.insns.bind(py));
        let (data, insns): (&[u8], &[u8]) = (data.extract()?, insns.extract()?);
        let (maps, progs) = (self.names_strings(py, true)?, self.names_strings(py, false)?);
        py.detach(|| crate::files::write_loader(&prefix, data, insns, &maps, &progs))
            .map(|written| written.into_iter().map(|(path, _)| path).collect())
            .map_err(|(path, e)| io_error(&path, &e))
    }

    pub(super) fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
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

    pub(super) fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        PyTuple::new(py, self.values(py)?)?.hash()
    }

    pub(super) fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
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
    pub(super) fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, pyo3::types::PyType>, Bound<'py, PyTuple>)> {
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
