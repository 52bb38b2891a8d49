//! A loader's files written and read back, kconfig files read.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::*;

/// Write a loader's files atomically, all or nothing (`files::write_loader`):
/// their paths, `PREFIX.data.bin`, `PREFIX.insns.bin`, `PREFIX.json`.
#[pyfunction]
pub(super) fn write_loader(
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
pub(super) fn write_file(py: Python<'_>, path: std::path::PathBuf, data: &[u8]) -> PyResult<()> {
    py.detach(|| crate::files::write_file(&path, data))
        .map_err(|e| io_error(&path, &e))
}

/// The text of a kernel config file (`--kconfig-file`), gunzipped if it is
/// compressed like `/proc/config.gz`.
#[pyfunction]
pub(super) fn read_kconfig(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    py.detach(|| crate::host::read_maybe_gz(&path))
        .map_err(|e| io_error(&path, &e))
}

// libbpf's names for the UAPI enums (`libbpf_bpf_*_type_str`); None for a
// value past the table, and for any int that is not a u32 (not an error: the
// facade shows such a value as unknown(N)).

/// (data, insns, map names, program names): a loader read back.
pub(super) type LoaderParts<'py> = (Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>, Vec<String>);

/// A loader `gen loader -o PREFIX` wrote.
#[pyfunction]
pub(super) fn read_loader<'py>(py: Python<'py>, prefix: std::path::PathBuf) -> PyResult<LoaderParts<'py>> {
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
