//! Where output goes: stdout (a closed pipe is exit 1, quietly, as in the
//! Python facade) or files written atomically beside their target.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::{Failure, Outcome};

/// The C library's text for an errno, as Python's `OSError.strerror` has it.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let text = std::io::Error::from_raw_os_error(n).to_string();
            text.strip_suffix(&format!(" (os error {n})"))
                .unwrap_or(&text)
                .to_string()
        }
        None => e.to_string(),
    }
}

/// `PATH: strerror`, the facade's message for a file it could not read or write.
pub fn io_failure(path: &str, e: &std::io::Error) -> Failure {
    Failure::Error(format!("{path}: {}", strerror(e)))
}

pub fn stdout(bytes: &[u8]) -> Outcome {
    stdout_with(|out| out.write_all(bytes))
}

/// [`stdout`] with the text written by `fill`.
pub fn stdout_with(fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Outcome {
    let mut out = std::io::stdout().lock();
    match fill(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::from(1)),
        Err(e) => Err(io_failure("<stdout>", &e)),
    }
}

/// Writes `path` atomically (`bpfgen_fast::files::write_file`).
pub fn write_file(path: &str, bytes: &[u8]) -> Result<(), Failure> {
    bpfgen_fast::files::write_file(Path::new(path), bytes).map_err(|e| io_failure(path, &e))
}

/// [`write_file`] with the contents written by `fill`.
pub fn write_file_with(path: &str, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Failure> {
    bpfgen_fast::files::write_file_with(Path::new(path), fill).map_err(|e| io_failure(path, &e))
}
