//! Commands that need Python libraries (`-S` signing and `verify` through `cryptography`,
//! `run`, `explain`) continue in `python3 -m bpfgen_fast`, which parses the
//! same command line with the same grammar (`_core.parse_cli`). The process
//! is replaced (exec), not spawned: signals, exit status and the terminal
//! stay the user's.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use crate::{Failure, Outcome};

/// The `python3` beside this executable (a venv's `bin/`), else the first on `PATH`.
fn python() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join("python3");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("python3"))
        .find(|p| p.is_file())
}

pub fn exec_python(argv: &[String]) -> Outcome {
    let Some(python) = python() else {
        return Err(Failure::Error(
            "this command needs Python (bpfgen_fast's package): no python3 beside bpfgen-fast or on PATH".into(),
        ));
    };
    let err = std::process::Command::new(&python)
        .args(["-m", "bpfgen_fast"])
        .args(argv)
        .exec();
    Err(Failure::Error(format!(
        "this command needs Python: cannot run {}: {}",
        python.display(),
        crate::output::strerror(&err)
    )))
}
