//! The loader decoder's entry points: the explanation document, its
//! listing, a failed run's diagnosis, instruction listings.

use pyo3::prelude::*;

use super::*;

/// Decode a loader's blobs: the explanation document (`explain --json`).
#[pyfunction]
#[pyo3(signature = (data, insns, map_names, prog_names, ctx_size=None, with_disasm=false, big_endian=None))]
#[allow(clippy::too_many_arguments)]
pub(super) fn explain_loader(
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
pub(super) fn explanation_text(py: Python<'_>, document: &str) -> PyResult<String> {
    let e = crate::explain::Explanation::from_json(document).map_err(|r| bad_document(py, r))?;
    Ok(crate::explain::render(&e))
}

/// The step a failed run stopped at, from the loader map's value after it.
#[pyfunction]
pub(super) fn diagnose_run(py: Python<'_>, document: &str, blob: &[u8]) -> PyResult<(Option<usize>, Option<String>)> {
    let e = crate::explain::Explanation::from_json(document).map_err(|r| bad_document(py, r))?;
    Ok(crate::explain::diagnose(&e, blob))
}

/// One line per instruction (`blob`: a loader's own code).
#[pyfunction]
#[pyo3(signature = (insns, blob=true, big_endian=None))]
pub(super) fn disasm(py: Python<'_>, insns: &[u8], blob: bool, big_endian: Option<bool>) -> PyResult<Vec<String>> {
    let be = big_endian.unwrap_or_else(|| blob && crate::disasm::loader_is_big_endian(insns));
    crate::disasm::listing(insns, blob, be).map_err(|e| decode_err(py, e.into()))
}

#[pyfunction]
pub(super) fn uses_gotol(py: Python<'_>, insns: &[u8], big_endian: bool) -> PyResult<bool> {
    crate::disasm::uses_gotol(insns, big_endian).map_err(|e| decode_err(py, e.into()))
}

#[pyfunction]
pub(super) fn loader_is_big_endian(insns: &[u8]) -> bool {
    crate::disasm::loader_is_big_endian(insns)
}
