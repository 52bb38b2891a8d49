//! Hostile inputs: every committed crash reproducer (`tests/hostile/`,
//! `fuzz/regressions/`) and every fixture object go through open → gen_loader
//! → self-check → gen_skeleton with explicit host facts. Each must end in a
//! clean error naming the object, or in output that passes the loader
//! self-check — never a panic, a hang or a runaway allocation.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bpfgen_fast::{ErrorKind, Host, gen_loader, gen_skeleton, open, selfcheck};

/// Fixed host facts: nothing is read from this machine. Kernel config and
/// kallsyms are the committed golden inputs (tests/fixtures/golden/host-inputs).
fn host() -> Host {
    let inputs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/host-inputs");
    let text = |f: &str, default: &str| -> Arc<str> {
        Arc::from(fs::read_to_string(inputs.join(f)).unwrap_or_else(|_| default.to_string()))
    };
    Host {
        page_size: 4096,
        possible_cpus: 4,
        kernel_version: Some(0x060c00),
        kconfig: Some(text("kconfig", "CONFIG_BPF=y\n")),
        kconfig_extra: Some(Arc::from("")),
        kallsyms: Some(text("kallsyms", "ffffffff81000000 T _stext\n")),
        kernel_btf: None,
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| p.extension().is_some_and(|e| e == "o" || e == "gz"));
    out.sort();
    out
}

/// The bytes of a reproducer (`.gz` ones are gunzipped).
fn load(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    }
}

/// `EXPECTED.txt`: file → (outcome, substring of the error message).
fn expectations(dir: &Path) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(dir.join("EXPECTED.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let file = parts.next().unwrap().to_string();
            let outcome = parts.next().unwrap_or("").to_string();
            let rest: Vec<&str> = parts.collect();
            (file, outcome, rest.join(" "))
        })
        .collect()
}

/// Outcome of one input: `Ok(loader insn count)` or `Err((kind, message))`;
/// panics (the test failure) on a broken invariant.
fn run(bytes: &[u8], label: &str) -> std::result::Result<usize, (ErrorKind, String)> {
    let name = "hostile_obj";
    let host = host();
    let start = Instant::now();
    let result = (|| {
        let obj = open(bytes, name)?;
        let blobs = gen_loader(&obj, &host)?;
        let report = selfcheck::check_object(&obj, &blobs, &host)
            .unwrap_or_else(|e| panic!("{label}: generated loader fails the self-check: {e}"));
        gen_skeleton(&obj, &blobs, &host)?;
        Ok::<usize, bpfgen_fast::Error>(report.insn_cnt)
    })();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{label}: took {:?}",
        start.elapsed()
    );
    result.map_err(|e| {
        assert_eq!(e.object, name, "{label}: error does not name the object: {e}");
        assert!(e.to_string().starts_with(name), "{label}: {e}");
        (e.kind, e.to_string())
    })
}

#[test]
fn fixtures_pass_the_self_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let objs = files(&root.join("tests/fixtures/obj"));
    assert!(objs.len() >= 20);
    for p in objs {
        let bytes = fs::read(&p).unwrap();
        let label = p.display().to_string();
        let obj = open(&bytes, "fixture").unwrap();
        let host = host();
        let blobs = gen_loader(&obj, &host).unwrap_or_else(|e| panic!("{label}: {e}"));
        let full = selfcheck::check_object(&obj, &blobs, &host).unwrap_or_else(|e| panic!("{label}: {e}"));
        let names = selfcheck::check_names(&blobs.data, &blobs.insns, &blobs.map_names, &blobs.prog_names)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(full, names, "{label}");
        assert_eq!(
            full.map_creates.iter().filter(|m| m.map_idx.is_some()).count(),
            obj.maps.len()
        );
    }
}

/// Every committed reproducer ends as `EXPECTED.txt` says, within the time
/// bound, without a panic (see tests/hostile/README.md and
/// fuzz/regressions/README.md for what each one broke).
#[test]
fn committed_hostile_inputs_fail_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["tests/hostile", "fuzz/regressions"] {
        let dir = root.join(dir);
        let expected = expectations(&dir);
        for p in files(&dir) {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let (_, outcome, text) = expected
                .iter()
                .find(|(f, _, _)| *f == file)
                .unwrap_or_else(|| panic!("{file}: not listed in EXPECTED.txt"));
            let got = run(&load(&p), &file);
            match (outcome.as_str(), &got) {
                ("ok", Ok(_)) => {}
                (kind, Err((k, msg))) if format!("{k:?}") == kind => {
                    assert!(msg.contains(text.as_str()), "{file}: {msg}")
                }
                _ => panic!("{file}: expected {outcome} {text}, got {got:?}"),
            }
            n += 1;
        }
        assert_eq!(
            files(&dir).len(),
            expected.len(),
            "{}: EXPECTED.txt lists other files",
            dir.display()
        );
    }
    assert!(n >= 10, "{n} reproducers");
}

/// The kernel selftests corpus, when the cache exists (scripts/selftests):
/// every object either fails cleanly or yields a loader that passes the
/// self-check.
#[test]
fn corpus_passes_the_self_check() {
    let dir = match std::env::var_os("BPFGEN_SELFTESTS_OBJ") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            let base = Path::new(&home).join(".cache/bpfgen/selftests");
            let Some(key) = files_and_dirs(&base).into_iter().find(|d| d.join("obj").is_dir()) else {
                eprintln!("no selftests corpus cache: skipped");
                return;
            };
            key.join("obj")
        }
    };
    let (mut ok, mut err, mut warn) = (0, 0, 0);
    for p in files(&dir) {
        let bytes = fs::read(&p).unwrap();
        let label = p.display().to_string();
        let host = host();
        let name = bpfgen_fast::default_object_name(&label);
        let Ok(obj) = open(&bytes, &name) else {
            err += 1;
            continue;
        };
        match gen_loader(&obj, &host) {
            Ok(blobs) => {
                let r = selfcheck::check_object(&obj, &blobs, &host).unwrap_or_else(|e| panic!("{label}: {e}"));
                if !r.warnings.is_empty() {
                    warn += 1;
                }
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.object, name, "{label}: {e}");
                err += 1;
            }
        }
    }
    eprintln!("corpus: {ok} loaders self-checked ({warn} with warnings), {err} clean errors");
}

fn files_and_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}
