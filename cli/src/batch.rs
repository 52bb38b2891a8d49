//! `batch OBJ... [--from FILE] --out-dir DIR [-j N] [--format lskel|blobs]`:
//! the core's batch on its worker pool, with a progress bar on a terminal,
//! one `error:` line per failed object, a summary line, and Ctrl-C: the
//! running objects finish, no new one starts, no partial file is left,
//! exit 130.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use bpfgen_fast::batch::{self, BatchOptions, Control, Failure as ItemFailure, Format, Job};
use bpfgen_fast::cli::{Request, UsageError};

use crate::output::{io_failure, strerror};
use crate::{Failure, Outcome};

/// OBJ... then the paths of `--from FILE` (one per line, `-` for stdin; blank
/// lines and `#` comments skipped).
fn paths(req: &Request) -> Result<Vec<String>, Failure> {
    let mut paths = req.objects.clone();
    if let Some(list) = &req.from_file {
        let text = if list == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| io_failure(list, &e))?
        } else {
            std::fs::read_to_string(list).map_err(|e| io_failure(list, &e))?
        };
        paths.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if paths.is_empty() {
        return Err(Failure::Usage(UsageError {
            message: "batch needs objects: OBJ... or --from FILE".into(),
            show_usage: false,
        }));
    }
    Ok(paths)
}

/// `[#####.....] 123/790`, redrawn in place on a terminal.
struct ProgressBar {
    drawn: bool,
}

impl ProgressBar {
    const WIDTH: usize = 40;

    fn draw(&mut self, done: usize, total: usize) {
        let filled = (Self::WIDTH * done).checked_div(total).unwrap_or(Self::WIDTH);
        let bar = "#".repeat(filled) + &".".repeat(Self::WIDTH - filled);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r[{bar}] {done}/{total}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn close(&mut self) {
        if std::mem::take(&mut self.drawn) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// The `error:` line for one failed object, as the facade prints it.
fn error_line(path: &str, f: &ItemFailure) -> Option<String> {
    Some(match f {
        ItemFailure::Skipped => return None,
        ItemFailure::Gen(e) => e.to_string(),
        ItemFailure::Io {
            path: file,
            errno: Some(n),
            ..
        } => {
            format!(
                "{}: {}",
                file.display(),
                strerror(&std::io::Error::from_raw_os_error(*n))
            )
        }
        ItemFailure::Io {
            path: file,
            errno: None,
            message,
        } => format!("{path}: {}: {message}", file.display()),
        ItemFailure::DuplicateName(name) => format!(
            "{path}: duplicate object name '{name}' in the batch: its output files would overwrite another object's"
        ),
        ItemFailure::Panic(msg) => format!("{path}: internal error (panic): {msg}"),
    })
}

pub fn run(req: &Request) -> Outcome {
    let paths = paths(req)?;
    let host = crate::host(req)?; // read once for the whole batch
    let out_dir = req.out_dir.clone().expect("the grammar requires --out-dir");
    let opts = BatchOptions {
        jobs: req.jobs.unwrap_or(0) as usize,
        out_dir: Some(PathBuf::from(&out_dir)),
        format: if req.format.as_deref() == Some("blobs") {
            Format::Blobs
        } else {
            Format::Lskel
        },
        keep_going: true,
        options: crate::options(req),
        attach_targets: req.attach_targets.clone(),
    };
    let jobs: Vec<Job> = paths
        .iter()
        .map(|p| Job {
            path: p.into(),
            name: None,
        })
        .collect();
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted))
        .map_err(|e| Failure::Error(format!("cannot handle SIGINT: {}", strerror(&e))))?;
    let mut bar = std::io::stderr().is_terminal().then_some(ProgressBar { drawn: false });
    let total = jobs.len();
    let ctl = Control::default();
    let start = Instant::now();
    let (tx, rx) = channel();
    let mut announced = false;
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(batch::gen_batch(&jobs, &opts, &host, &ctl));
        });
        let mut reported = usize::MAX;
        loop {
            match rx.recv_timeout(Duration::from_millis(40)) {
                Ok(r) => break r,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("batch worker exited without a result"));
                }
            }
            if interrupted.load(Ordering::SeqCst) {
                if !announced {
                    ctl.cancel(); // in force before the announcement: nothing new starts
                    announced = true;
                    if let Some(b) = bar.as_mut() {
                        b.close();
                    }
                    eprintln!("batch: interrupted; the running objects finish, the rest are skipped");
                }
                continue;
            }
            if let Some(b) = bar.as_mut() {
                let done = ctl.done();
                if done != reported {
                    reported = done;
                    b.draw(done, total);
                }
            }
        }
    });
    if announced || interrupted.load(Ordering::SeqCst) {
        eprintln!("batch: interrupted; objects not started were skipped");
        return Ok(ExitCode::from(130));
    }
    let results = outcome.map_err(|e| io_failure(&out_dir, &e))?;
    if let Some(b) = bar.as_mut() {
        b.draw(total, total);
        b.close();
    }
    let mut failed = 0;
    for r in &results {
        if let Err(f) = &r.outcome
            && let Some(line) = error_line(&r.path.to_string_lossy(), f)
        {
            eprintln!("error: {line}");
            failed += 1;
        }
    }
    // A target no object could take is a mistake in the command, like an
    // --autoload of a program the object lacks.
    let applied = results.iter().fold(0u64, |m, r| m | r.attach_applied);
    let mut unused_targets = 0;
    for (i, (prog, func)) in req.attach_targets.iter().enumerate() {
        if applied & (1 << i) == 0 {
            eprintln!(
                "error: --attach-target {prog}={func}: no object of the batch has a program {}",
                bpfgen_fast::json::py_repr(prog)
            );
            unused_targets += 1;
        }
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let summary = format!(
        "batch: {ok} of {total} objects generated into {out_dir}, {failed} failed ({:.2}s)\n",
        start.elapsed().as_secs_f64()
    );
    crate::output::stdout(summary.as_bytes())?;
    Ok(ExitCode::from(u8::from(failed + unused_targets > 0)))
}
