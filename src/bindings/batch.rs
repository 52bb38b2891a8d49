//! `gen_batch`: the core's batch, its progress callback and failures.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::*;

/// One batch result as returned to Python: (path, name, error, skipped,
/// [(output path, size)], header, (data, insns, map_names, prog_names)).
pub(super) type BatchTuple<'py> = (
    String,
    String,
    Option<Bound<'py, pyo3::PyAny>>,
    bool,
    Vec<(String, u64)>,
    Option<String>,
    Option<LoaderTuple<'py>>,
    Vec<String>,
);

pub(super) fn batch_failure<'py>(py: Python<'py>, f: crate::batch::Failure) -> Option<Bound<'py, pyo3::PyAny>> {
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
pub(super) fn gen_batch<'py>(
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
