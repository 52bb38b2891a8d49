//! Byte-for-byte comparison of our light-skeleton headers with bpftool
//! 7.5.0's (golden/NAME.lskel.h), for every committed fixture object.

mod common;

use std::fs;
use std::path::Path;

use bpfgen_fast::{default_object_name, gen_loader, gen_loader_with, gen_skeleton, open};

/// Line number (1-based) and both lines at the first difference.
fn first_line_diff(ours: &str, want: &str) -> Option<(usize, String, String)> {
    let (mut a, mut b) = (ours.split_inclusive('\n'), want.split_inclusive('\n'));
    let mut n = 0;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => {
                let show = |l: Option<&str>| l.map_or("<end of file>".to_string(), |l| format!("{l:?}"));
                return Some((n, show(x), show(y)));
            }
        }
    }
}

/// Our only intended header divergence: without programs there is no
/// `links` member, so `ctx.sz` is measured up to the end of `maps`.
const NO_PROGS: &str = "no_progs.bpf";
const BPFTOOL_CTX_SZ: &str = "\tskel->ctx.sz = (void *)&skel->links - (void *)skel;\n";
const OUR_CTX_SZ: &str = "\tskel->ctx.sz = (void *)(&skel->maps + 1) - (void *)skel;\n";

/// Replace the embedded loader blobs by a placeholder.
fn without_blobs(header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in header.split_inclusive('\n') {
        if skipping {
            if line.ends_with("\";\n") {
                skipping = false;
                out.push_str("<blob>\";\n");
            }
            continue;
        }
        out.push_str(line);
        if line.contains("opts_data[]") || line.contains("opts_insn[]") {
            skipping = true;
        }
    }
    out
}

#[test]
fn fixtures_match_bpftool_headers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let golden = root.join("golden");
    let host = common::golden_host();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(root.join("obj"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".o")
            .to_string();
        let header_path = golden.join(format!("{stem}.lskel.h"));
        if !header_path.exists() {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        let name = default_object_name(path.to_str().unwrap());
        let result = open(&bytes, &name).and_then(|o| {
            let blobs = gen_loader(&o, &host)?;
            gen_skeleton(&o, &blobs, &host)
        });
        let ours = match result {
            Ok(h) => h,
            Err(e) => {
                failures.push(format!("{stem}: error: {e}"));
                continue;
            }
        };
        checked += 1;
        let mut want = fs::read_to_string(&header_path).unwrap();
        let mut ours_cmp = ours;
        if stem == NO_PROGS {
            assert_eq!(ours_cmp.matches(OUR_CTX_SZ).count(), 1, "{stem}: our ctx.sz line");
            assert_eq!(want.matches(BPFTOOL_CTX_SZ).count(), 1, "{stem}: bpftool's ctx.sz line");
            want = want.replace(BPFTOOL_CTX_SZ, OUR_CTX_SZ);
        }
        if common::BLOBS_DIVERGE.contains(&stem.as_str()) {
            // With bpftool's prog-fd slots the whole header must match too.
            let obj = open(&bytes, &name).unwrap();
            let blobs = gen_loader_with(&obj, &host, common::BPFTOOL_COMPAT).unwrap();
            let full = gen_skeleton(&obj, &blobs, &host).unwrap();
            if let Some((line, a, b)) = first_line_diff(&full, &want) {
                failures.push(format!(
                    "{stem} (bpftool prog slots): line {line} differs\n    ours:    {a}\n    bpftool: {b}"
                ));
            }
            want = without_blobs(&want);
            ours_cmp = without_blobs(&ours_cmp);
        }
        if let Some((line, a, b)) = first_line_diff(&ours_cmp, &want) {
            failures.push(format!(
                "{stem}: line {line} differs\n    ours:    {a}\n    bpftool: {b}"
            ));
        }
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Divergence: bpftool crashes on `SEC("raw_tp")` without a tracepoint name;
/// we emit the auto-attach-not-supported form. The object is skel_types with
/// its section renamed from `raw_tp/sys_enter` to `raw_tp` (the string is
/// cut in place in `.strtab` and in the BTF strings, keeping every offset).
#[test]
fn bare_raw_tp_is_not_auto_attached() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let host = common::golden_host();
    let mut bytes = fs::read(root.join("obj/skel_types.bpf.o")).unwrap();
    let (from, to) = (b"raw_tp/sys_enter\0", b"raw_tp\0sys_enter\0");
    let mut patched = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            patched += 1;
        }
        i += 1;
    }
    assert_eq!(patched, 2, "section name in .strtab and .BTF");
    let obj = open(&bytes, "skel_types_bpf").unwrap();
    assert_eq!(obj.programs[0].sec_name, "raw_tp");
    let blobs = gen_loader(&obj, &host).unwrap();
    let ours = gen_skeleton(&obj, &blobs, &host).unwrap();
    let want = fs::read_to_string(root.join("golden/skel_types.bpf.lskel.h")).unwrap();
    let tp_attach = "\tint fd = skel_raw_tracepoint_open(\"sys_enter\", prog_fd);\n";
    let no_attach = "\tint fd = ((void)prog_fd, 0); /* auto-attach not supported */\n";
    assert_eq!(want.matches(tp_attach).count(), 1);
    let want = without_blobs(&want.replace(tp_attach, no_attach));
    if let Some((line, a, b)) = first_line_diff(&without_blobs(&ours), &want) {
        panic!("line {line} differs\n    ours:     {a}\n    expected: {b}");
    }
}
