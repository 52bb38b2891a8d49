//! Many objects at once: each object is read, opened and generated on a
//! worker of a thread pool built for the call, results come back in input
//! order, and one object's failure (error, I/O error, even a panic) is
//! recorded in its own result without stopping or touching the others.
//!
//! * Host facts are read once per batch: page size and CPU count by the
//!   caller's [`Host`], the kernel version and config once per process (see
//!   `host.rs`), and `/proc/kallsyms` at most once per batch, only if an
//!   object has typeless ksyms.
//! * With an output directory every file is written to a temporary name in
//!   that directory and renamed into place, and an object's files all or
//!   none (`files.rs`), so a reader (or an interrupted run) never leaves a
//!   partial output; results then carry paths and sizes, not the outputs, so
//!   memory stays bounded by what the workers hold.
//! * `jobs` scoped worker threads, started per call and joined before
//!   returning: no global pool, nothing that outlives the call, so the count
//!   is per call and a process that forks between calls (the child has only
//!   the forking thread) can call again safely. Workers take the largest
//!   objects first from one shared queue, so `-j N` does not end on one
//!   worker with a big object while the others idle.
//! * [`Control`] lets another thread watch progress and cancel: workers check
//!   it before starting each object; objects not started are `Skipped`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::Error;
use crate::externs::ExternKind;
use crate::files;
use crate::generate::{GenOptions, LoaderBlobs, gen_loader_with};
use crate::host::{Host, ResolveInputs};
use crate::object::{AttachTargetError, Object};

/// What to generate for each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The light-skeleton header (`NAME.lskel.h`).
    Lskel,
    /// The loader blobs (`NAME.data.bin`, `NAME.insns.bin`, `NAME.json`).
    Blobs,
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Worker threads; 0 means the CPUs this process may run on.
    pub jobs: usize,
    /// Write outputs here (created if missing) instead of returning them.
    pub out_dir: Option<PathBuf>,
    pub format: Format,
    /// false: after the first failure, objects not yet started are skipped.
    pub keep_going: bool,
    pub options: GenOptions,
    /// `--attach-target PROG=FUNC`: applied to every object that has PROG
    /// (which did: [`ItemResult::attach_applied`]). At most 64.
    pub attach_targets: Vec<(String, String)>,
}

/// One input: a path and, optionally, the object name (default: bpftool's
/// rule, [`crate::default_object_name`]).
#[derive(Debug, Clone)]
pub struct Job {
    pub path: PathBuf,
    pub name: Option<String>,
}

/// Progress and cancellation, shared between the caller and the workers.
#[derive(Debug, Default)]
pub struct Control {
    cancel: AtomicBool,
    done: AtomicUsize,
}

impl Control {
    /// Ask the workers to start no further object.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    /// Objects finished so far (generated, failed or skipped).
    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
}

/// What a successful object produced.
#[derive(Debug, Clone)]
pub enum Output {
    /// `Format::Lskel` without an output directory.
    Header(String),
    /// `Format::Blobs` without an output directory.
    Blobs(LoaderBlobs),
    /// Files written (final paths) and their sizes, in writing order.
    Written(Vec<(PathBuf, u64)>),
}

/// Why an object has no output.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Opening or generating failed (the kinds of [`crate::ErrorKind`]).
    Gen(Error),
    /// Reading the input or writing an output failed.
    Io {
        path: PathBuf,
        errno: Option<i32>,
        message: String,
    },
    /// Another object of the batch has the same name, so the same output files.
    DuplicateName(String),
    /// Not attempted: the batch was cancelled, or stopped after a failure
    /// (`keep_going: false`).
    Skipped,
    /// A bug: generation panicked. Reported, never propagated.
    Panic(String),
}

#[derive(Debug, Clone)]
pub struct ItemResult {
    pub path: PathBuf,
    pub name: String,
    pub outcome: Result<Output, Failure>,
    /// Bit i: `BatchOptions::attach_targets[i]` named a program of this object.
    pub attach_applied: u64,
}

impl ItemResult {
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

fn io_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::Io {
        path: path.to_path_buf(),
        errno: e.raw_os_error(),
        message: e.to_string(),
    }
}

/// The caller's host facts plus what a batch reads lazily, once.
struct SharedHost<'h> {
    base: &'h Host,
    kallsyms: OnceLock<Option<Arc<str>>>,
}

impl SharedHost<'_> {
    /// The host for one object: the base, with kallsyms read (once per batch)
    /// when the object has typeless ksyms and none was given. A failed read
    /// is left to the core, which then reports it for that object.
    fn for_object(&self, obj: &Object) -> Option<Host> {
        let typeless = obj
            .externs
            .iter()
            .any(|e| matches!(e.kind, ExternKind::Ksym { type_id: 0 }));
        if !typeless || self.base.kallsyms.is_some() {
            return None;
        }
        let text = self.kallsyms.get_or_init(|| self.base.kallsyms().ok()).clone()?;
        let mut host = self.base.clone();
        host.kallsyms = Some(text);
        Some(host)
    }
}

/// Generate for every job, `opts.jobs` at a time; results in input order.
/// Errors of the batch as a whole (the output directory cannot be created,
/// the pool cannot be built) are the only `Err`.
pub fn gen_batch(jobs: &[Job], opts: &BatchOptions, host: &Host, ctl: &Control) -> std::io::Result<Vec<ItemResult>> {
    if let Some(dir) = &opts.out_dir {
        fs::create_dir_all(dir)?;
    }
    let threads = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    };
    let names: Vec<String> = jobs
        .iter()
        .map(|j| {
            j.name
                .clone()
                .unwrap_or_else(|| crate::default_object_name(&j.path.to_string_lossy()))
        })
        .collect();
    // With an output directory, a name seen earlier in the batch would
    // overwrite that object's files: the later ones fail instead.
    let mut duplicate = vec![false; jobs.len()];
    if opts.out_dir.is_some() {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]).then(a.cmp(&b)));
        for w in order.windows(2) {
            if names[w[0]] == names[w[1]] {
                duplicate[w[1]] = true;
            }
        }
    }
    let shared = SharedHost {
        base: host,
        kallsyms: OnceLock::new(),
    };
    let stop = AtomicBool::new(false);
    let run_one = |i: usize| -> ItemResult {
        let job = &jobs[i];
        let mut applied = 0u64;
        let outcome = if ctl.is_cancelled() || stop.load(Ordering::SeqCst) {
            Err(Failure::Skipped)
        } else if duplicate[i] {
            Err(Failure::DuplicateName(names[i].clone()))
        } else {
            catch_unwind(AssertUnwindSafe(|| one(job, &names[i], opts, &shared, &mut applied))).unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string());
                Err(Failure::Panic(msg))
            })
        };
        if outcome.is_err() && !opts.keep_going {
            stop.store(true, Ordering::SeqCst);
        }
        ctl.done.fetch_add(1, Ordering::SeqCst);
        ItemResult {
            path: job.path.clone(),
            name: names[i].clone(),
            outcome,
            attach_applied: applied,
        }
    };
    // Largest objects first: a big object started last would leave one worker
    // busy while the others idle. keep_going: false keeps input order, so "the
    // objects after the first failure" means what the caller listed.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    if opts.keep_going {
        let sizes: Vec<u64> = jobs
            .iter()
            .map(|j| fs::metadata(&j.path).map_or(0, |m| m.len()))
            .collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<OnceLock<ItemResult>> = (0..jobs.len()).map(|_| OnceLock::new()).collect();
    std::thread::scope(|s| -> std::io::Result<()> {
        for t in 0..threads.clamp(1, jobs.len().max(1)) {
            std::thread::Builder::new()
                .name(format!("bpfgen-batch-{t}"))
                .spawn_scoped(s, || {
                    loop {
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&i) = order.get(k) else { break };
                        let _ = slots[i].set(run_one(i));
                    }
                })?;
        }
        Ok(())
    })?;
    let results = slots
        .into_iter()
        .map(|slot| slot.into_inner().expect("every job is taken by one worker"))
        .collect();
    Ok(results)
}

fn one(job: &Job, name: &str, opts: &BatchOptions, shared: &SharedHost, applied: &mut u64) -> Result<Output, Failure> {
    let mut obj = {
        let data = fs::read(&job.path).map_err(|e| io_failure(&job.path, &e))?;
        crate::object::open(&data, name).map_err(Failure::Gen)?
    };
    for (i, (prog, func)) in opts.attach_targets.iter().enumerate() {
        match obj.set_attach_target(prog, func) {
            Ok(()) => *applied |= 1u64.checked_shl(i as u32).unwrap_or(0),
            Err(AttachTargetError::NoProgram) => {}
            Err(e) => {
                let reason = format!("--attach-target {}", e.describe(prog, func));
                return Err(Failure::Gen(Error::unsupported(reason).for_object(name)));
            }
        }
    }
    let own_host = shared.for_object(&obj);
    let host = own_host.as_ref().unwrap_or(shared.base);
    let blobs = gen_loader_with(&obj, host, opts.options).map_err(Failure::Gen)?;
    match (opts.format, &opts.out_dir) {
        (Format::Lskel, None) => crate::skel::gen_skeleton_with(&obj, &blobs, host, opts.options)
            .map(Output::Header)
            .map_err(Failure::Gen),
        (Format::Blobs, None) => Ok(Output::Blobs(blobs)),
        (Format::Lskel, Some(dir)) => {
            // streamed into the file: a worker never holds a whole header
            // (test_skeleton's is 68 MB)
            let header = crate::skel::prepare_skeleton(&obj, &blobs, host, opts.options).map_err(Failure::Gen)?;
            let path = dir.join(format!("{name}.lskel.h"));
            let mut size = 0;
            files::write_file_with(&path, |f| header.write_to(f).map(|n| size = n))
                .map(|()| Output::Written(vec![(path.clone(), size)]))
                .map_err(|e| io_failure(&path, &e))
        }
        (Format::Blobs, Some(dir)) => {
            let b = &blobs;
            files::write_loader(&dir.join(name), &b.data, &b.insns, &b.map_names, &b.prog_names)
                .map(Output::Written)
                .map_err(|(path, e)| io_failure(&path, &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inputs_fail_alone() {
        let dir = std::env::temp_dir().join(format!("bpfgen-batch-test-{}", std::process::id()));
        let jobs = vec![
            Job {
                path: "/nonexistent/a.bpf.o".into(),
                name: None,
            },
            Job {
                path: "/nonexistent/b.bpf.o".into(),
                name: Some("a_bpf".into()),
            },
        ];
        let opts = BatchOptions {
            jobs: 2,
            out_dir: Some(dir.clone()),
            format: Format::Lskel,
            keep_going: true,
            options: GenOptions::default(),
            attach_targets: Vec::new(),
        };
        let ctl = Control::default();
        let res = gen_batch(&jobs, &opts, &Host::detect(), &ctl).unwrap();
        assert!(matches!(res[0].outcome, Err(Failure::Io { errno: Some(2), .. })));
        assert!(matches!(res[1].outcome, Err(Failure::DuplicateName(_))));
        assert_eq!(ctl.done(), 2);
        let _ = fs::remove_dir_all(dir);
    }
}
