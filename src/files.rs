//! Output files, for the batch, the native command line and the Python
//! facade alike, so that the three write the same bytes the same way.
//!
//! Every file is written to a temporary name in its own directory and then
//! renamed over its target: a reader (or an interrupted run) sees the old
//! file or the whole new one, never a part. Not fsync'd: atomic, not durable.
//! Files are created with mode 0644 less the umask, like any other output.
//! A loader's three files are read back here too ([`read_loader`]), by the
//! owner of their format.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A path and the error writing it failed with.
pub type WriteError = (PathBuf, std::io::Error);

/// Write `path` atomically: `DIR/.NAME.PID-SEQ.tmp` in full, then renamed to
/// `DIR/NAME`. The temporary is removed again if anything fails.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file_with(path, |f| f.write_all(bytes))
}

/// [`write_file`] with the contents written by `fill`, for text made as it is
/// written (`skel::Header::write_to`).
pub fn write_file_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}-{seq}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        fill(&mut f)?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write each file atomically, in order, all or nothing: if one fails, the
/// ones already written are removed again, and the failing path is returned
/// with its error. On success, each path with its size.
pub fn write_files(files: &[(PathBuf, &[u8])]) -> Result<Vec<(PathBuf, u64)>, WriteError> {
    let mut written: Vec<(PathBuf, u64)> = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        if let Err(e) = write_file(path, bytes) {
            for (p, _) in &written {
                let _ = fs::remove_file(p);
            }
            return Err((path.clone(), e));
        }
        written.push((path.clone(), bytes.len() as u64));
    }
    Ok(written)
}

/// `PATH` + `suffix`, without going through `str` (a path need not be UTF-8).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut p = prefix.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A loader's `PREFIX.json`: its map and program names (the skeleton ctx's
/// descriptor order), their counts, the ctx size and the blob sizes, as
/// Python's `json.dumps(meta, indent=2)` prints them, with a final newline.
pub fn loader_json(map_names: &[String], prog_names: &[String], data_len: usize, insns_len: usize) -> String {
    use crate::json::Value;
    let names = |v: &[String]| Value::List(v.iter().map(|s| s.as_str().into()).collect());
    let meta = Value::Object(vec![
        ("maps".into(), names(map_names)),
        ("programs".into(), names(prog_names)),
        ("nr_maps".into(), map_names.len().into()),
        ("nr_progs".into(), prog_names.len().into()),
        (
            "ctx_size".into(),
            crate::loader_abi::ctx_size(map_names.len(), prog_names.len()).into(),
        ),
        ("data_size".into(), data_len.into()),
        ("insn_cnt".into(), (insns_len / 8).into()),
    ]);
    crate::json::pretty(&meta) + "\n"
}

/// `gen loader -o PREFIX`'s files: `PREFIX.data.bin`, `PREFIX.insns.bin` and
/// `PREFIX.json` ([`loader_json`]), written by [`write_files`] (atomically,
/// all or nothing). On success, the three paths with their sizes.
pub fn write_loader(
    prefix: &Path,
    data: &[u8],
    insns: &[u8],
    map_names: &[String],
    prog_names: &[String],
) -> Result<Vec<(PathBuf, u64)>, WriteError> {
    let meta = loader_json(map_names, prog_names, data.len(), insns.len());
    write_files(&[
        (with_suffix(prefix, ".data.bin"), data),
        (with_suffix(prefix, ".insns.bin"), insns),
        (with_suffix(prefix, ".json"), meta.as_bytes()),
    ])
}

/// A loader read back from [`write_loader`]'s files: the blobs, and the
/// names from `PREFIX.json` (none when there is no such file).
pub struct LoaderFiles {
    pub data: Vec<u8>,
    pub insns: Vec<u8>,
    pub map_names: Vec<String>,
    pub prog_names: Vec<String>,
}

/// Why [`read_loader`] failed: a file it could not read, or a
/// `PREFIX.json` that is not the metadata.
pub enum ReadError {
    Io(PathBuf, std::io::Error),
    Meta(PathBuf, String),
}

/// Read `PREFIX.data.bin`, `PREFIX.insns.bin` and, when present, the names
/// in `PREFIX.json`.
pub fn read_loader(prefix: &Path) -> Result<LoaderFiles, ReadError> {
    let read = |suffix: &str| {
        let path = with_suffix(prefix, suffix);
        std::fs::read(&path).map_err(|e| ReadError::Io(path, e))
    };
    let (data, insns) = (read(".data.bin")?, read(".insns.bin")?);
    let meta_path = with_suffix(prefix, ".json");
    let (map_names, prog_names) = match std::fs::read(&meta_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
        Err(e) => return Err(ReadError::Io(meta_path, e)),
        Ok(raw) => {
            let names = |meta: &serde_json::Value, key: &str| -> Result<Vec<String>, String> {
                match meta.get(key) {
                    None => Ok(Vec::new()),
                    Some(serde_json::Value::Array(v)) => Ok(v
                        .iter()
                        .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
                        .collect()),
                    Some(_) => Err(format!("{key:?} is not a list")),
                }
            };
            let parsed = serde_json::from_slice::<serde_json::Value>(&raw)
                .map_err(|e| e.to_string())
                .and_then(|meta| Ok((names(&meta, "maps")?, names(&meta, "programs")?)));
            parsed.map_err(|why| ReadError::Meta(meta_path, why))?
        }
    };
    Ok(LoaderFiles {
        data,
        insns,
        map_names,
        prog_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_like_python() {
        let j = loader_json(&names(&["m", "x.bss"]), &[], 16, 24);
        assert_eq!(
            j,
            "{\n  \"maps\": [\n    \"m\",\n    \"x.bss\"\n  ],\n  \"programs\": [],\n  \"nr_maps\": 2,\n  \
             \"nr_progs\": 0,\n  \"ctx_size\": 56,\n  \"data_size\": 16,\n  \"insn_cnt\": 3\n}\n"
        );
        let mut s = String::new();
        crate::json::string(&mut s, "a\"\\\u{1}é😀");
        assert_eq!(s, "\"a\\\"\\\\\\u0001\\u00e9\\ud83d\\ude00\"");
    }

    #[test]
    fn loader_files_all_or_nothing() {
        let dir = std::env::temp_dir().join(format!("bpfgen-files-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("p");
        let written = write_loader(&prefix, b"data", &[0; 16], &names(&["m"]), &names(&["f"])).unwrap();
        let sizes: Vec<u64> = written.iter().map(|(_, n)| *n).collect();
        assert_eq!(written[0].0, dir.join("p.data.bin"));
        assert_eq!(&sizes[..2], &[4, 16]);
        assert_eq!(fs::read(dir.join("p.insns.bin")).unwrap(), vec![0; 16]);

        // The json cannot replace a directory: the two blobs written before it go again.
        fs::create_dir(dir.join("q.json")).unwrap();
        let (path, _) = write_loader(&dir.join("q"), b"d", b"", &[], &[]).unwrap_err();
        assert_eq!(path, dir.join("q.json"));
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["p.data.bin", "p.insns.bin", "p.json", "q.json"]);
        let _ = fs::remove_dir_all(dir);
    }
}
