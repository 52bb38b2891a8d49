#!/usr/bin/env python3
"""The kernel selftests corpus against the second oracle, bpftool 7.8.0 (libbpf 1.8):
``--compat bpftool-7.8`` headers, unsigned and signed, for every object bpftool 7.5.0
accepts (the corpus of differential.py; run that first: its verdicts say which objects
carry a documented divergence).

Per object:

``identical``
    our 7.8-style header (with the blob divergences' test-only options where the 7.5
    differential needed them) equals bpftool 7.8.0's, unsigned and signed;
``divergence:TAG``
    the 7.5 differential found header divergence TAG (objects without programs, arena
    maps, more than 32 programs); then bpftool 7.8.0's header must be exactly
    bpftool 7.5.0's with the 7.5 -> 7.8 spelling changes applied, and ours exactly our
    7.5 header with the same changes: the divergence is the same one, nothing else;
``differs``
    anything else (fails the run).

bpftool 7.8.0's outputs are cached in KEYDIR/oracle78/, keyed by the binary and the
signing key; the RSA key and certificate (made once with openssl) in KEYDIR/oracle78/.

Usage::

    python3 scripts/selftests/compat78.py --bpftool78 PATH [--keydir DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bpfgen_fast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import differential  # noqa: E402  (same directory)

HEADER_TAGS = ("no-progs-ctx-sz", "arena-header", "over-32-progs")
KNOBS = {"?-slots": "_bpftool_prog_slots", "ksym-flavour": "_bpftool_ksym_names"}


def to78(header: str) -> str:
    """bpftool 7.5.0's header text in bpftool 7.8.0's spelling (the changes between the
    two for objects both accept; see README: --compat)."""
    m = re.search(r"^struct (\w+) \{\n\tstruct bpf_loader_ctx ctx;", header, re.M)
    name = m.group(1) if m else ""
    header = header.replace("\tskel = skel_alloc(sizeof(*skel));",
                            f"\tskel = (struct {name} *)skel_alloc(sizeof(*skel));")
    header = re.sub(r"\(void \*\)(&skel->links|\(&skel->maps \+ 1\)) - \(void \*\)skel",
                    r"(char *)\1 - (char *)skel", header)
    header = re.sub(r"(\tskel->(\w+) = )(skel_prep_map_data|skel_finalize_map_data)\(",
                    r"\1(__typeof__(skel->\2))\3(", header)
    return header.replace('";\n\n\topts.ctx = ', '";\n\topts.ctx = ')


def signer(cache: Path) -> tuple[Path, Path]:
    key, cert = cache / "sign.key.pem", cache / "sign.cert.pem"
    if not (key.exists() and cert.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=bpfgen-corpus",
                        "-days", "36500"], check=True, capture_output=True)
    return key, cert


def oracle(tool: str, obj: Path, cache: Path, sign: tuple[Path, Path] | None) -> str | None:
    """bpftool 7.8.0's header for ``obj`` (signed with ``sign``), cached; None if it fails."""
    h = hashlib.sha256(Path(tool).read_bytes() + obj.read_bytes())
    cmd = [tool, "gen", "skeleton", "-L"]
    if sign is not None:
        h.update(sign[0].read_bytes())
        cmd += ["-S", "-k", str(sign[0]), "-i", str(sign[1])]
    out = cache / f"{obj.name}.{h.hexdigest()[:20]}{'.signed' if sign else ''}.h"
    if out.exists():
        text = out.read_text()
        return None if text.startswith("FAILED") else text
    p = subprocess.run([*cmd, obj.name], cwd=obj.parent, capture_output=True, text=True,
                       timeout=300)
    text = p.stdout if p.returncode == 0 else f"FAILED {p.returncode}: {p.stderr}"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    return None if p.returncode else text


def check(args: tuple[str, str, str, str, str, str, str, str]) -> tuple[str, str, str]:
    source, verdict75, tool, keydir, cache, key, cert, page = args
    obj = Path(keydir) / "obj" / (source[:-2] + ".bpf.o")
    host = {"page_size": int(page.split(":")[0]), "possible_cpus": int(page.split(":")[1])}
    tags = verdict75.removeprefix("divergence:").split("+") if verdict75 != "identical" else []
    knobs = {KNOBS[t]: True for t in tags if t in KNOBS}
    try:
        theirs = oracle(tool, obj, Path(cache), None)
        theirs_signed = oracle(tool, obj, Path(cache), (Path(key), Path(cert)))
        if theirs is None or theirs_signed is None:
            return source, "differs", "bpftool 7.8.0 fails where 7.5.0 did not"
        o = bpfgen_fast.BpfObject.open(obj)
        ours = o.gen_skeleton(compat="bpftool-7.8", **host, **knobs)
        ours_signed = o.gen_skeleton(compat="bpftool-7.8", sign_key=key, sign_cert=cert,
                                     **host, **knobs)
    except bpfgen_fast.BpfgenError as e:
        return source, "differs", f"we raise {type(e).__name__}: {e}"
    if ours == theirs and ours_signed == theirs_signed:
        return source, "identical", ""
    header_tags = [t for t in tags if t in HEADER_TAGS]
    if header_tags:
        stem = Path(keydir) / "oracle" / (source[:-2] + ".bpf")
        theirs75 = Path(str(stem) + ".lskel.h").read_text()
        ours75 = o.gen_skeleton(**host, **knobs)
        if to78(theirs75) == theirs and to78(ours75) == ours:
            return source, "divergence:" + "+".join(header_tags), "signed not compared"
    what = "unsigned" if ours != theirs else "signed"
    a, b = (ours, theirs) if ours != theirs else (ours_signed, theirs_signed)
    line = next((i for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines())) if x != y),
                None)
    return source, "differs", f"{what} header differs at line {line}"


def main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--bpftool78", required=True, help="bpftool 7.8 binary")
    ap.add_argument("--keydir", type=Path, help="build_corpus.py KEYDIR (default: build/find)")
    ap.add_argument("--jobs", "-j", type=int, default=min(8, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    keydir = (args.keydir or differential.run_build_corpus(None, args.jobs)).resolve()
    tsv = keydir / "differential.tsv"
    if not tsv.is_file():
        print(f"{tsv} missing: run differential.py first", file=sys.stderr)
        return 2
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines()]
    head, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(head)}
    accepted = [r for r in rows if r[col["bpftool"]] == "ok"]
    cache = keydir / "oracle78"
    cache.mkdir(exist_ok=True)
    key, cert = signer(cache)
    import json

    host = json.loads((keydir / "host.json").read_text())
    page = f"{host['page_size']}:{host['possible_cpus']}"
    version = subprocess.run([args.bpftool78, "version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    jobs = [(r[col["source"]], r[col["verdict"]], args.bpftool78, str(keydir), str(cache),
             str(key), str(cert), page) for r in accepted]
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(check, jobs, chunksize=8))
    counts = Counter(v for _, v, _ in results)
    print(f"## bpfgen_fast --compat bpftool-7.8 vs {version}: kernel selftests\n")
    print("| verdict (header, unsigned and signed) | objects |\n|---|---:|")
    for v, n in sorted(counts.items(), key=lambda kv: (kv[0] != "identical", kv[0])):
        print(f"| {v} | {n} |")
    print(f"| **total (bpftool 7.5.0 accepts)** | {len(results)} |")
    bad = [(s, d) for s, v, d in results if v == "differs"]
    for s, d in bad:
        print(f"- {s}: {d}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
