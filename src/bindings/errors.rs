//! Core errors as Python exceptions: the package's hierarchy, each with
//! `object`, `section`, `offset` and `reason`; I/O failures as `OSError`.

use crate::error::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

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
pub(super) fn decode_err(py: Python<'_>, e: crate::explain::DecodeError) -> PyErr {
    let err = LoaderDecodeError::new_err(e.to_string());
    let value = err.value(py);
    let _ = value.setattr("object", "loader");
    let _ = value.setattr("section", None::<&str>);
    let _ = value.setattr("offset", e.insn);
    let _ = value.setattr("reason", e.reason);
    err
}

pub(super) fn bad_document(py: Python<'_>, reason: String) -> PyErr {
    decode_err(py, crate::explain::DecodeError { reason, insn: None })
}

pub(super) fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
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
pub(super) fn os_error(path: &std::path::Path, errno: Option<i32>, message: &str) -> PyErr {
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

pub(super) fn io_error(path: &std::path::Path, e: &std::io::Error) -> PyErr {
    os_error(path, e.raw_os_error(), &e.to_string())
}
