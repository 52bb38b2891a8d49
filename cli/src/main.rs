//! `bpfgen-fast`: the native command line. The grammar is the core's
//! (`bpfgen_fast::cli::parse`); `gen skeleton -L`, `gen loader`, `inspect` and
//! `batch` run here without a Python interpreter, the commands that need
//! Python libraries (`-S` signing, `run`, `explain`) are handed over to
//! `python3 -m bpfgen_fast` by exec (see [`handover`]).
//!
//! Exit codes: 0 success, 1 an object or file failed (one `error:` line),
//! 2 a usage error, 130 an interrupted batch.

mod batch;
mod handover;
mod output;

use std::process::ExitCode;

use bpfgen_fast::cli::{self, Command, Request, UsageError};
use bpfgen_fast::object::AttachTargetError;
use bpfgen_fast::{GenOptions, Host, Object};

/// Why a command stopped: a usage error (exit 2) or one `error:` line (exit 1).
pub enum Failure {
    Usage(UsageError),
    Error(String),
}

impl From<bpfgen_fast::Error> for Failure {
    fn from(e: bpfgen_fast::Error) -> Failure {
        Failure::Error(e.to_string())
    }
}

pub type Outcome = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let outcome = match cli::parse(&argv) {
        Ok(req) if needs_python(&req) => handover::exec_python(&argv),
        Ok(req) => dispatch(&req),
        Err(e) => Err(Failure::Usage(e)),
    };
    match outcome {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            if !e.message.is_empty() {
                eprintln!("error: {}", e.message);
            }
            if e.show_usage {
                eprint!("{}", cli::USAGE);
            }
            ExitCode::from(2)
        }
        Err(Failure::Error(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Signing and verifying (the `cryptography` package) and `run` live in Python,
/// and so does `--debug`'s traceback.
fn needs_python(req: &Request) -> bool {
    req.sign || req.debug || matches!(req.command, Command::Run | Command::Verify)
}

fn dispatch(req: &Request) -> Outcome {
    match req.command {
        Command::GenSkeleton => gen_skeleton(req),
        Command::GenLoader => gen_loader(req),
        Command::GenSigningPayload => gen_signing_payload(req),
        Command::Inspect => inspect(req),
        Command::Explain => explain(req),
        Command::Batch => batch::run(req),
        Command::Run | Command::Verify => unreachable!("handed over to Python"),
    }
}

/// The host facts: this machine's, except what the command line pins.
pub fn host(req: &Request) -> Result<Host, Failure> {
    let mut host = Host::detect_pinned(req.page_size, req.possible_cpus);
    host.kernel_version = req.kernel_version;
    if let Some(path) = &req.kconfig_file {
        let text = bpfgen_fast::host::read_maybe_gz(path).map_err(|e| output::io_failure(path, &e))?;
        host.kconfig = Some(text.into());
    }
    if let Some(path) = &req.kallsyms_file {
        let raw = std::fs::read(path).map_err(|e| output::io_failure(path, &e))?;
        host.kallsyms = Some(String::from_utf8_lossy(&raw).into());
    }
    host.kernel_btf = req.kernel_btf.as_ref().map(Into::into);
    Ok(host)
}

/// The object named on the command line, with `--autoload`/`--no-autoload` applied.
fn open(req: &Request, apply_autoload: bool) -> Result<Object, Failure> {
    let path = req.object.as_deref().expect("the grammar gives this command an object");
    let data = std::fs::read(path).map_err(|e| output::io_failure(path, &e))?;
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| bpfgen_fast::default_object_name(path));
    let mut obj = bpfgen_fast::open(&data, &name)?;
    if apply_autoload {
        for (prog, autoload) in &req.autoload {
            let found = obj.programs.iter_mut().find(|p| !p.is_subprog && &p.name == prog);
            match found {
                Some(p) => p.autoload = *autoload,
                None => {
                    let flag = if *autoload { "--autoload" } else { "--no-autoload" };
                    let message = format!("{flag}: no program {} in {path}", bpfgen_fast::json::py_repr(prog));
                    return Err(Failure::Usage(UsageError {
                        message,
                        show_usage: false,
                    }));
                }
            }
        }
        for (prog, func) in &req.attach_targets {
            if let Err(e) = obj.set_attach_target(prog, func) {
                let message = match e {
                    AttachTargetError::NoProgram => format!("--attach-target: {} in {path}", e.describe(prog, func)),
                    _ => format!("--attach-target {}", e.describe(prog, func)),
                };
                return Err(Failure::Usage(UsageError {
                    message,
                    show_usage: false,
                }));
            }
        }
    }
    Ok(obj)
}

fn options(req: &Request) -> GenOptions {
    GenOptions {
        compat: req.compat(),
        ..GenOptions::default()
    }
}

fn gen_skeleton(req: &Request) -> Outcome {
    let obj = open(req, true)?;
    let host = host(req)?;
    let blobs = bpfgen_fast::gen_loader_with(&obj, &host, options(req))?;
    // streamed, not held: the header is the largest thing the command makes
    let header = bpfgen_fast::skel::prepare_skeleton(&obj, &blobs, &host, options(req))?;
    match &req.output {
        None => output::stdout_with(|out| header.write_to(out).map(drop)),
        Some(path) => output::write_file_with(path, |f| header.write_to(f).map(drop)).map(|()| ExitCode::SUCCESS),
    }
}

fn gen_loader(req: &Request) -> Outcome {
    let obj = open(req, true)?;
    let host = host(req)?;
    let blobs = bpfgen_fast::gen_loader_with(&obj, &host, options(req))?;
    let prefix = req.output.as_deref().expect("the grammar requires -o PREFIX");
    let b = &blobs;
    bpfgen_fast::files::write_loader(prefix.as_ref(), &b.data, &b.insns, &b.map_names, &b.prog_names)
        .map_err(|(path, e)| output::io_failure(&path.to_string_lossy(), &e))?;
    Ok(ExitCode::SUCCESS)
}

/// The bytes a detached signer signs and the kernel verifies: the instructions
/// of the loader a signed skeleton carries (libbpf 1.8's `gen_hash`, with the
/// data hash patched in), for this object and these host facts.
fn gen_signing_payload(req: &Request) -> Outcome {
    let obj = open(req, true)?;
    let host = host(req)?;
    let opts = GenOptions {
        compat: bpfgen_fast::generate::Compat::Bpftool78,
        gen_hash: true,
        ..GenOptions::default()
    };
    let blobs = bpfgen_fast::gen_loader_with(&obj, &host, opts)?;
    match &req.output {
        None => output::stdout(&blobs.insns),
        Some(path) => output::write_file(path, &blobs.insns).map(|()| ExitCode::SUCCESS),
    }
}

fn inspect(req: &Request) -> Outcome {
    let obj = open(req, false)?; // inspect shows the object as opened
    let text = if req.json {
        bpfgen_fast::inspect::to_json(&obj)
    } else {
        bpfgen_fast::inspect::to_text(&obj)
    };
    output::stdout(text.as_bytes())
}

/// `explain OBJ|PREFIX`: the loader of an object (generated with these host
/// facts), or one `gen loader -o PREFIX` wrote, decoded into its steps.
fn explain(req: &Request) -> Outcome {
    let path = req.object.as_deref().expect("the grammar gives explain an object");
    let prefix = std::path::Path::new(path);
    let is_prefix = !prefix.is_file() && std::path::Path::new(&format!("{path}.insns.bin")).is_file();
    let (data, insns, map_names, prog_names) = if is_prefix {
        if let Some(name) = &req.name {
            return Err(Failure::Usage(UsageError {
                message: format!("unexpected arguments: name {name}"),
                show_usage: false,
            }));
        }
        match bpfgen_fast::files::read_loader(prefix) {
            Ok(f) => (f.data, f.insns, f.map_names, f.prog_names),
            Err(bpfgen_fast::files::ReadError::Io(p, e)) => {
                return Err(output::io_failure(&p.to_string_lossy(), &e));
            }
            Err(bpfgen_fast::files::ReadError::Meta(p, why)) => {
                return Err(Failure::Error(format!("loader: {}: {why}", p.display())));
            }
        }
    } else {
        let obj = open(req, true)?;
        let host = host(req)?;
        let b = bpfgen_fast::gen_loader_with(&obj, &host, options(req))?;
        (b.data, b.insns, b.map_names, b.prog_names)
    };
    let opts = bpfgen_fast::explain::DecodeOptions {
        map_names: &map_names,
        prog_names: &prog_names,
        ctx_size: Some(bpfgen_fast::loader_abi::ctx_size(map_names.len(), prog_names.len())),
        with_disasm: req.disasm,
        big_endian: None,
    };
    let e = bpfgen_fast::explain::decode(&data, &insns, &opts).map_err(|e| Failure::Error(e.to_string()))?;
    let mut text = if req.json {
        e.to_json()
    } else {
        bpfgen_fast::explain::render(&e)
    };
    text.push('\n');
    output::stdout(text.as_bytes())
}
