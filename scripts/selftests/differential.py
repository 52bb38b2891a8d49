#!/usr/bin/env python3
"""Differential test of bpfgen_fast against bpftool 7.5.0 over the kernel BPF selftests.

What it does
------------
1. Runs ``build_corpus.py`` (same directory) to get KEYDIR -- the compiled
   ``obj/NAME.bpf.o`` files and bpftool's outputs under ``oracle/`` -- unless
   ``--keydir`` names one already built.
2. For every compiled object (``manifest.tsv``), generates our loader with the host
   facts bpftool ran with (``host.json``: page size, possible CPUs) and gives it a verdict:

   ``identical``
       data blob, instruction blob and -- when ``BpfObject.gen_skeleton`` exists --
       the light-skeleton header text are byte-identical to bpftool's;
   ``divergence:?-slots``
       the accepted divergence: the object has a ``SEC("?...")`` (non-autoload) entry
       program before an autoloaded one, our default output differs from bpftool's in
       the instruction blob only (data identical; header identical but for its
       ``opts_insn`` literal), and with ``_bpftool_prog_slots=True`` blobs and header
       are byte-identical;
   ``divergence:no-progs-ctx-sz`` / ``divergence:arena-header`` (possibly joined by ``+``)
       the header divergences src/skel.rs documents (bpftool's ``skel->ctx.sz`` line
       for objects without programs; bpftool's ``skel->arena`` blocks), recognised
       only when blobs are identical and the header differs in exactly that text.
       They FAIL the run unless accepted with ``--accept TAG``;
   ``differs``
       anything else that does not match (detail: blob, first differing offset, sizes);
   ``ours-rejects``
       bpftool accepted the object, we raised;
   ``bpftool-fail`` / ``bpftool-crash``
       bpftool failed (detail: its first error line or the signal) -- our result is
       recorded side by side: ``ok`` or ``ExceptionClass: message``.
3. With ``--kernel``: every object whose ``kernel`` column in the reference TSV is
   ``OK`` (bpftool's loader loads in this kernel) has OUR default blobs run through
   ``lskel-run`` (built with gcc into ``~/.cache/bpfgen/tools/``), one at a time with a
   timeout each; verdict ``loads`` or ``fails`` (a regression).
4. Prints a Markdown summary (also to ``--markdown FILE``), writes every object's
   result to ``KEYDIR/differential.tsv`` (``differential-only.tsv`` with ``--only``)
   and our default blobs to ``KEYDIR/ours/``.

Exit status: 0 if clean; 1 if any object ``differs``, ``ours-rejects`` or has a divergence
not accepted, if an object
bpftool's loader loads does not load with ours, or if fewer sources compiled or were
accepted by bpftool than the reference TSV says; 2 on a usage or setup error.

Usage::

    python3 scripts/selftests/differential.py [--keydir DIR] [--jobs N] [--only NAME ...]
                                              [--kernel] [--markdown FILE] [--accept TAG]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import bpfgen_fast
import bpfgen_fast.object

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))
import kcaps  # noqa: E402  (tests/kcaps.py: the kernel-capability probes pytest uses)

BUILD_CORPUS = HERE / "build_corpus.py"
# shared/ sits beside the repository (override with BPFGEN_SHARED)
SHARED = Path(os.environ.get("BPFGEN_SHARED", HERE.parent.parent.parent / "shared"))
REFERENCE_TSV = Path(os.environ.get("BPFGEN_SELFTESTS_TSV",
                                    SHARED / "corpus" / "selftests-bpftool-7.5.tsv"))
LSKEL_RUN_SRC = Path(os.environ.get("LSKEL_RUN_SRC", SHARED / "tools" / "lskel-run.c"))
CACHE = Path(os.environ.get("BPFGEN_CACHE") or "~/.cache/bpfgen").expanduser()
TOOL_CACHE = Path(os.environ.get("BPFGEN_TOOL_CACHE") or CACHE / "tools").expanduser()
LSKEL_RUN_FLAGS = ("-O2", "-Wall")  # same key as tests/conftest.py: the binary is shared
KERNEL_TIMEOUT = 120.0

IDENTICAL = "identical"
QSLOTS = "divergence:?-slots"
DIFFERS = "differs"
OURS_REJECTS = "ours-rejects"
BPFTOOL_FAIL = "bpftool-fail"
BPFTOOL_CRASH = "bpftool-crash"
VERDICTS = (IDENTICAL, QSLOTS, DIFFERS, OURS_REJECTS, BPFTOOL_FAIL, BPFTOOL_CRASH)
# Divergences that pass (``--accept TAG`` adds more).  Other recognised divergences are
# classified (``divergence:TAG``) so they are easy to triage, but fail like ``differs``.
# The README's list of deliberate divergences, by the tag this script gives them.
ACCEPTED_TAGS = (
    "?-slots", "ksym-flavour", "over-32-progs", "no-progs-ctx-sz", "arena-header")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one_line(text: str, limit: int = 300) -> str:
    s = " ".join(text.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class Expected:
    """One reference-TSV row."""

    compiled: str  # ok | ok_nowerror | ok_no_kfunc_protos | fail
    bpftool: str  # ok | fail | crash | n/a
    kernel: str  # the kernel column verbatim (OK | FAIL: ... | n/a)

    @property
    def loads(self) -> bool:
        return self.kernel == "OK"


def load_reference(path: Path) -> dict[str, Expected]:
    rows: dict[str, Expected] = {}
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    for line in lines[1:]:
        source, compiled, bpftool, kernel = [*line.split("\t"), "", "", ""][:4]
        comp = "fail" if compiled.startswith("fail") else compiled
        if bpftool in ("ok", "n/a"):
            bt = bpftool
        elif bpftool.startswith("fail: bpftool crashed"):
            bt = "crash"
        else:
            bt = "fail"
        rows[source] = Expected(comp, bt, kernel)
    return rows


@dataclasses.dataclass(frozen=True)
class Built:
    """One manifest.tsv row (what build_corpus.py produced)."""

    source: str
    compiled: str
    bpftool: str  # ok | fail | crash | n/a
    detail: str


def load_manifest(keydir: Path) -> dict[str, Built]:
    rows: dict[str, Built] = {}
    lines = (keydir / "manifest.tsv").read_text().splitlines()
    for line in lines[1:]:
        if not line:
            continue
        source, compiled, bpftool, detail = [*line.split("\t"), "", "", ""][:4]
        rows[source] = Built(source, compiled, bpftool, detail)
    return rows


def normalize_name(name: str) -> str:
    base = os.path.basename(name)
    for suffix in (".bpf.o", ".c"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base + ".c"


def run_build_corpus(only: Sequence[str] | None, jobs: int) -> Path:
    """Run build_corpus.py; return KEYDIR (its last stdout line).  Its own exit status 3
    (corpus smaller than the TSV) is not fatal here: we check that ourselves."""
    cmd = [sys.executable, str(BUILD_CORPUS), "--jobs", str(max(1, jobs))]
    if only:
        cmd += ["--only", *only]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = p.stdout.strip().splitlines()
    if p.returncode not in (0, 3) or not lines or not Path(lines[-1]).is_dir():
        sys.stderr.write(p.stderr[-5000:])
        sys.stdout.write(p.stdout[-5000:])
        raise SystemExit(f"build_corpus.py failed (exit {p.returncode})")
    return Path(lines[-1])


# ---------------------------------------------------------------- generation


@dataclasses.dataclass
class Result:
    source: str
    compiled: str
    bpftool: str  # ok | fail | crash
    verdict: str
    ours: str = ""  # ok | ExceptionClass: message
    detail: str = ""
    header: str = "n/a"  # identical | differs | n/a
    caps: str = ""  # the kernel capabilities its load needs (tests/kcaps.py), comma-separated
    nr_maps: int = 0
    nr_progs: int = 0
    kernel_expected: str = ""
    # loads | fails | fails like bpftool's (here) | not run | skipped (a capability missing)
    kernel_ours: str = ""
    kernel_detail: str = ""
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Job:
    source: str
    compiled: str
    bpftool: str
    bpftool_detail: str
    keydir: str
    page_size: int
    possible_cpus: int


def first_difference(ours: bytes, theirs: bytes) -> int:
    """Offset of the first differing byte (the shorter length if one is a prefix)."""
    n = min(len(ours), len(theirs))
    if ours[:n] == theirs[:n]:
        return n
    lo, hi = 0, n  # invariant: ours[:lo] == theirs[:lo], ours[:hi] != theirs[:hi]
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if ours[:mid] == theirs[:mid]:
            lo = mid
        else:
            hi = mid
    while ours[lo] == theirs[lo]:
        lo += 1
    return lo


def describe_diff(what: str, ours: bytes, theirs: bytes) -> str:
    off = first_difference(ours, theirs)
    where = f"0x{off:x}" + (f" (insn {off // 8})" if what == "insns" else "")
    return f"{what}@{where} ours {len(ours)} bpftool {len(theirs)} bytes"


INSN_LITERAL = re.compile(
    r'(static const char opts_insn\[\] __attribute__\(\(__aligned__\(8\)\)\) = ")(.*?)(";)',
    re.S)


DATA_LITERAL = re.compile(
    r'(static const char opts_data\[\] __attribute__\(\(__aligned__\(8\)\)\) = ")(.*?)(";)',
    re.S)


def mask_blob_literals(header: str) -> str:
    """The header with both embedded blobs (opts_data[], opts_insn[]) removed."""
    return mask_insn_literal(DATA_LITERAL.sub(lambda m: m.group(1) + "..." + m.group(3), header,
                                              count=1))


def over_32_progs_rule(obj: bpfgen_fast.BpfObject) -> bool:
    """More than 32 programs, .text functions included: libbpf 1.5's loader keeps
    program fds in 32 stack slots and the verifier rejects it."""
    return len(obj.programs) + len(obj.subprograms) > 32


def mask_insn_literal(header: str) -> str:
    """The header with the body of its opts_insn[] literal (the instruction blob) removed."""
    return INSN_LITERAL.sub(lambda m: m.group(1) + "..." + m.group(3), header, count=1)


def describe_header_diff(ours: str, theirs: str) -> str:
    """``header@line N: ours 'LINE' bpftool 'LINE'`` for the first differing line."""
    a, b = ours.splitlines(), theirs.splitlines()
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    la = a[i] if i < len(a) else "<EOF>"
    lb = b[i] if i < len(b) else "<EOF>"
    return (f"header@line {i + 1}: ours {one_line(la, 80)!r} bpftool {one_line(lb, 80)!r}"
            f" ({len(a)} vs {len(b)} lines)")


# Header divergences documented in src/skel.rs ("deliberate exceptions ... where
# bpftool's header would not compile").  Each maps bpftool's header to the text we are
# expected to print instead; it must be the ONLY difference for its tag to apply.
BPFTOOL_CTX_SZ = "\tskel->ctx.sz = (void *)&skel->links - (void *)skel;\n"
BPFTOOL_ARENA_OPEN = (
    "\t{\n"
    '\t\tstatic const char data[] __attribute__((__aligned__(8))) = "\\\n'
    '";\n'
    "\n"
    "\t\tskel->arena = skel_prep_map_data((void *)data, 0,\n"
    "\t\t\t\t\t\tsizeof(data) - 1);\n"
    "\t\tif (!skel->arena)\n"
    "\t\t\tgoto cleanup;\n"
    "\t\tskel->maps.arena.initial_value = (__u64) (long) skel->arena;\n"
    "\t}\n")
BPFTOOL_ARENA_LOAD = (
    "\tskel->arena = skel_finalize_map_data(&skel->maps.arena.initial_value,\n"
    "\t\t\t\t\t0, PROT_READ | PROT_WRITE, skel->maps.arena.map_fd);\n"
    "\tif (!skel->arena)\n"
    "\t\treturn -ENOMEM;\n")


def expected_header(obj: bpfgen_fast.BpfObject, theirs: str) -> tuple[str, list[str]]:
    """bpftool's header with the documented header divergences applied, and their tags."""
    tags: list[str] = []
    if not obj.programs and theirs.count(BPFTOOL_CTX_SZ) == 1:
        # no `links` member without programs: bpftool's ctx.sz line does not compile
        ours = ("\tskel->ctx.sz = (void *)(&skel->maps + 1) - (void *)skel;\n" if obj.maps
                else "\tskel->ctx.sz = sizeof(skel->ctx);\n")
        theirs = theirs.replace(BPFTOOL_CTX_SZ, ours)
        tags.append("no-progs-ctx-sz")
    if (any(m.type == "arena" for m in obj.maps.values())
            and theirs.count(BPFTOOL_ARENA_OPEN) == 1 and theirs.count(BPFTOOL_ARENA_LOAD) == 1):
        # bpftool stages a 0-byte arena image into a `skel->arena` the struct lacks
        theirs = theirs.replace(BPFTOOL_ARENA_OPEN, "").replace(BPFTOOL_ARENA_LOAD, "")
        tags.append("arena-header")
    return theirs, tags


def qslots_rule(obj: bpfgen_fast.BpfObject) -> bool:
    """A SEC("?...") (non-autoload) entry program before an autoloaded one."""
    seen_off = False
    for prog in obj.programs.values():
        if not prog.autoload:
            seen_off = True
        elif seen_off:
            return True
    return False


FLAVOUR = re.compile(r"[^_]___[^_]")


def ksym_flavour_rule(obj: bpfgen_fast.BpfObject) -> bool:
    """An undefined (extern) symbol named ``name___flavour``: a kfunc or ksym
    that libbpf 1.5's gen mode looks up with the suffix kept."""
    return any(shndx == 0 and bind in (1, 2) and typ == 0 and FLAVOUR.search(name)
               for name, _v, _s, bind, typ, shndx in obj._core.symbols())


# Blob-level divergences: rule, and the test-only option that restores bpftool's bytes.
BLOB_RULES: tuple[tuple[str, Callable[[bpfgen_fast.BpfObject], bool], str], ...] = (
    ("?-slots", qslots_rule, "_bpftool_prog_slots"),
    ("ksym-flavour", ksym_flavour_rule, "_bpftool_ksym_names"),
)


def classify_divergence(res: Result, obj_path: Path, host: dict[str, Any],
                        ours: tuple[bytes, bytes, str | None],
                        theirs: tuple[bytes, bytes, str | None]) -> None:
    """Mark ``res`` as a documented divergence if that is all the difference is:
    header tags must explain every header difference, and blob rules must make
    the output byte-identical once their bpftool-compatibility options are on."""
    data, insns, header = ours
    want_data, want_insns, want_header = theirs
    obj = bpfgen_fast.BpfObject.open(obj_path)
    expected = want_header
    tags: list[str] = []
    if header is not None and want_header is not None and header != want_header:
        expected, tags = expected_header(obj, want_header)
    if data == want_data and insns == want_insns:
        if tags and header == expected:
            res.verdict = "divergence:" + "+".join(tags)
        return
    if over_32_progs_rule(obj):
        # Our loader keeps program fds in the data blob instead: both blobs change,
        # nothing else may.
        if header is None or expected is None or mask_blob_literals(header) == mask_blob_literals(
                expected):
            res.verdict = "divergence:" + "+".join(["over-32-progs", *tags])
        return
    rules = [(tag, knob) for tag, rule, knob in BLOB_RULES if rule(obj)]
    if not rules:
        return
    knobs = {knob: True for _, knob in rules}
    alt_diffs: list[str] = []
    try:
        alt = bpfgen_fast.BpfObject.open(obj_path).gen_loader(**host, **knobs)
        alt_diffs += [describe_diff(w, o, t) for w, o, t in
                      (("data", alt.data, want_data), ("insns", alt.insns, want_insns)) if o != t]
        if header is not None and expected is not None:
            alt_header = bpfgen_fast.BpfObject.open(obj_path).gen_skeleton(**host, **knobs)
            if alt_header != expected:
                alt_diffs.append(describe_header_diff(alt_header, expected))
    except bpfgen_fast.BpfgenError as e:
        alt_diffs.append(f"raised {type(e).__name__}: {one_line(str(e))}")
    names = "+".join(tag for tag, _ in rules)
    if alt_diffs:
        res.detail = f"{names} object, but with {', '.join(knobs)}: " + "; ".join(alt_diffs)
    else:
        res.verdict = "divergence:" + "+".join([*(tag for tag, _ in rules), *tags])


def header_status() -> str | None:
    """None if we can generate headers, else why the header column is n/a."""
    if not hasattr(bpfgen_fast.BpfObject, "gen_skeleton"):
        return "BpfObject.gen_skeleton not available"
    core = getattr(bpfgen_fast.object, "_core", None)
    if core is not None and not hasattr(core.Object, "gen_skeleton"):
        # The Python facade has it but the installed native module predates it.
        return "native module lacks gen_skeleton (stale build: run maturin develop --release)"
    return None


def header_available() -> bool:
    return header_status() is None


def generate(job: Job) -> tuple[Result, bytes, bytes]:
    """Our result for one object, plus our default blobs (empty if we raised)."""
    t0 = time.monotonic()
    keydir = Path(job.keydir)
    obj_path = keydir / "obj" / (job.source[:-2] + ".bpf.o")
    stem = keydir / "oracle" / (job.source[:-2] + ".bpf")
    host = {"page_size": job.page_size, "possible_cpus": job.possible_cpus}
    res = Result(job.source, job.compiled, job.bpftool, "")
    data = insns = b""
    header: str | None = None
    step = "open"
    try:
        obj = bpfgen_fast.BpfObject.open(obj_path)
        res.caps = ",".join(kcaps.BASE + tuple(kcaps.object_caps(
            (m.type for m in obj.maps.values()),
            ((p.type, p.expected_attach_type) for p in obj.programs.values() if p.autoload))))
        loader = obj.gen_loader(**host)
        data, insns = loader.data, loader.insns
        res.nr_maps, res.nr_progs = len(loader.map_names), len(loader.prog_names)
        if header_available() and job.bpftool == "ok":
            step = "gen_skeleton"
            header = bpfgen_fast.BpfObject.open(obj_path).gen_skeleton(**host)
        res.ours = "ok"
    except bpfgen_fast.BpfgenError as e:
        res.ours = f"{type(e).__name__}: {one_line(str(e))}"
        if step != "open":
            res.ours += f" (in {step})"
        data = insns = b""
    if job.bpftool != "ok":
        res.verdict = BPFTOOL_CRASH if job.bpftool == "crash" else BPFTOOL_FAIL
        res.detail = one_line(job.bpftool_detail)
        res.seconds = time.monotonic() - t0
        return res, data, insns
    if res.ours != "ok":
        res.verdict = OURS_REJECTS
        res.detail = res.ours
        res.seconds = time.monotonic() - t0
        return res, data, insns

    want_data = Path(str(stem) + ".data.bin").read_bytes()
    want_insns = Path(str(stem) + ".insns.bin").read_bytes()
    want_header = Path(str(stem) + ".lskel.h").read_text() if header is not None else None
    diffs: list[str] = []
    if data != want_data:
        diffs.append(describe_diff("data", data, want_data))
    if insns != want_insns:
        diffs.append(describe_diff("insns", insns, want_insns))
    if header is not None and want_header is not None:
        res.header = "identical" if header == want_header else "differs"
        if header != want_header:
            diffs.append(describe_header_diff(header, want_header))
    res.verdict = IDENTICAL if not diffs else DIFFERS
    res.detail = "; ".join(diffs)
    if diffs:
        classify_divergence(res, obj_path, host, (data, insns, header),
                            (want_data, want_insns, want_header))
    res.seconds = time.monotonic() - t0
    return res, data, insns


# ---------------------------------------------------------------- kernel


def build_lskel_run() -> Path:
    """lskel-run compiled into TOOL_CACHE/lskel-run-KEY (same key as tests/conftest.py)."""
    source = LSKEL_RUN_SRC.read_bytes()
    key = hashlib.sha256(source + "\0".join(LSKEL_RUN_FLAGS).encode()).hexdigest()[:16]
    exe = TOOL_CACHE / ("lskel-run-" + key)
    if os.access(exe, os.X_OK):
        return exe
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc not found: cannot build lskel-run")
    TOOL_CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lskel-run.", dir=TOOL_CACHE)
    os.close(fd)
    try:
        p = subprocess.run([gcc, *LSKEL_RUN_FLAGS, "-o", tmp, str(LSKEL_RUN_SRC)],
                           capture_output=True, text=True, timeout=120, check=False)
        if p.returncode != 0:
            raise SystemExit("cannot compile lskel-run: " + p.stderr.strip()[-1000:])
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe


LSKEL_LINE = re.compile(r"^(map|prog)\[(\d+)\] fd=\d+ type=(\d+) name=(\S*)")


def compare_with_run(stem: Path, res: Result, lskel_out: list[str]) -> str:
    """Load our blobs with bpfgen_fast.run() and compare (kind, slot, type, name) of
    every map and program with what lskel-run (skel_internal.h) reported; '' if equal."""
    want = sorted((m[1], int(m[2]), int(m[3]), m[4]) for ln in lskel_out
                  if (m := LSKEL_LINE.match(ln)))
    keydir = stem.parent.parent
    host = json.loads((keydir / "host.json").read_text())
    loader = bpfgen_fast.BpfObject.open(keydir / "obj" / (stem.name + ".o")).gen_loader(
        page_size=int(host["page_size"]), possible_cpus=int(host["possible_cpus"]))
    got: list[tuple[str, int, int, str]] = []
    try:
        with bpfgen_fast.run(loader) as loaded:
            for i, name in enumerate(loader.map_names):
                info = loaded.map_info(name)
                got.append(("map", i, info.type, info.name))
            for j, name in enumerate(loader.prog_names):
                if name in loaded.progs:
                    pinfo = loaded.prog_info(name)
                    got.append(("prog", j, pinfo.type, pinfo.name))
    except bpfgen_fast.BpfgenError as e:
        return f"{type(e).__name__}: {e}"
    got.sort()
    if got != want:
        diff = sorted(set(got) ^ set(want))[:3]
        return f"maps/progs differ from skel_internal.h's: {diff}"
    return ""


def run_kernel(exe: Path, ours_dir: Path, res: Result, timeout: float) -> None:
    stem = ours_dir / (res.source[:-2] + ".bpf")
    cmd = [str(exe), str(stem) + ".data.bin", str(stem) + ".insns.bin",
           str(res.nr_maps), str(res.nr_progs)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        res.kernel_ours, res.kernel_detail = "fails", f"timeout after {timeout:.0f}s"
        return
    out = p.stdout.splitlines()
    if p.returncode == 0 and out and out[0].startswith("OK"):
        # The same loader through bpfgen_fast.run() (Python over raw bpf(), no
        # libbpf) must create the same maps and programs as skel_internal.h did.
        mismatch = compare_with_run(stem, res, out)
        if mismatch:
            res.kernel_ours, res.kernel_detail = "fails", "run(): " + one_line(mismatch)
        else:
            res.kernel_ours = "loads"
        return
    res.kernel_ours = "fails"
    fail = next((ln for ln in out if ln.startswith("FAIL")), f"exit {p.returncode}")
    reason = next((ln[len("reason: "):] for ln in out if ln.startswith("reason: ")), "")
    res.kernel_detail = one_line(fail + (" | " + reason if reason else "") +
                                 (" | " + p.stderr if p.stderr.strip() else ""))
    # The TSV's verdict comes from another machine's kernel. If bpftool's own loader
    # fails here in the same way, this kernel refuses the object (a helper or kfunc it
    # lacks, a stricter verifier): not a regression of ours.
    theirs = ours_dir.parent / "oracle" / (res.source[:-2] + ".bpf")
    try:
        q = subprocess.run([str(exe), str(theirs) + ".data.bin", str(theirs) + ".insns.bin",
                            str(res.nr_maps), str(res.nr_progs)],
                           capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return
    their_fail = next((ln for ln in q.stdout.splitlines() if ln.startswith("FAIL")), None)
    if q.returncode != 0 and their_fail == fail:
        res.kernel_ours = "fails like bpftool's"


def run_beyond(keydir: Path, res: Result) -> None:
    """An object bpftool crashes on (struct_ops maps, arena globals): our loader through
    bpfgen_fast.run(), which also unregisters struct_ops maps on close (lskel-run would
    leave a registered struct_ops map behind on this host)."""
    host = json.loads((keydir / "host.json").read_text())
    try:
        loader = bpfgen_fast.BpfObject.open(keydir / "obj" / (res.source[:-2] + ".bpf.o")
                                            ).gen_loader(page_size=int(host["page_size"]),
                                                         possible_cpus=int(host["possible_cpus"]))
        with bpfgen_fast.run(loader) as loaded:
            created = sum(1 for fd in loaded.maps.values() if fd > 0)
            res.kernel_ours = "loads"
            res.kernel_detail = f"{created} maps, {len(loaded.progs)} programs"
    except bpfgen_fast.BpfgenError as e:
        res.kernel_ours, res.kernel_detail = "fails", one_line(f"{type(e).__name__}: {e}")


def lacks_capability(res: Result) -> bool:
    """Marks RES skipped, counted in BPFGEN_SKIP_LOG, when the kernel lacks a capability
    its load needs (its bpftool verdict in the TSV came from a kernel that had it)."""
    gone = kcaps.missing(res.caps.split(",") if res.caps else kcaps.BASE)
    if not gone:
        return False
    res.kernel_ours, res.kernel_detail = "skipped", gone[0].reason
    kcaps.record_skip(gone[0], "differential:" + res.source)
    return True


# ---------------------------------------------------------------- report


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def failing(verdict: str, accepted: Sequence[str]) -> bool:
    """Does this verdict fail the run?"""
    if verdict.startswith("divergence:"):
        return not all(t in accepted for t in verdict[len("divergence:"):].split("+"))
    return verdict in (DIFFERS, OURS_REJECTS)


def summarize(results: list[Result], kernel: bool, header_on: bool, accepted: Sequence[str],
              size_rows: list[tuple[str, int, int]], problems: list[str],
              elapsed: tuple[float, float]) -> str:
    counts = Counter(r.verdict for r in results)
    others = sorted(v for v in counts if v not in VERDICTS)
    order = [IDENTICAL, QSLOTS, *others, *VERDICTS[2:]]
    lines = ["## bpfgen_fast vs bpftool 7.5.0: kernel selftests", ""]
    lines += md_table(["verdict", "objects", "fails the run"],
                      [(v, counts[v], "**yes**" if failing(v, accepted) else "no")
                       for v in order] + [("**total compiled**", len(results), "")])
    compared = "yes" if header_on else f"n/a ({header_status()})"
    lines += ["", f"header text compared: {compared}", ""]
    rej = Counter((r.verdict, r.ours.split(":", 1)[0]) for r in results
                  if r.verdict in (BPFTOOL_FAIL, BPFTOOL_CRASH))
    lines += md_table(["bpftool rejects", "ours", "objects"],
                      [(v.removeprefix("bpftool-"), o, n) for (v, o), n in sorted(rej.items())])
    lines.append("")
    if kernel:
        kc = Counter(r.kernel_ours for r in results if r.kernel_expected == "OK")
        lines += md_table(["kernel: bpftool's loader loads", "ours (skel_internal.h and run())"],
                          [("loads", kc["loads"]), ("fails", kc["fails"]),
                           ("fails here, exactly as bpftool's loader does here",
                            kc["fails like bpftool's"]),
                           ("not run (we reject)", kc["not run"]),
                           ("skipped (this kernel lacks a capability)", kc["skipped"])])
        lines.append("")
        beyond = [r for r in results if r.verdict == BPFTOOL_CRASH]
        bc = Counter("we reject" if r.ours != "ok" else r.kernel_ours for r in beyond)
        lines += md_table(["bpftool crashes", "loads with ours (run())"],
                          [("loads", bc["loads"]), ("fails in this kernel", bc["fails"]),
                           ("we reject (as libbpf's normal loader would)", bc["we reject"]),
                           ("skipped (this kernel lacks a capability)", bc["skipped"])])
        lines.append("")
        refused = [(r.source, r.kernel_detail[:160].replace("|", "/")) for r in results
                   if r.kernel_ours == "fails like bpftool's"]
        if refused:
            lines += md_table(["this kernel refuses bpftool's loader too", "how"], refused)
            lines.append("")
        lacking = Counter(r.kernel_detail for r in results if r.kernel_ours == "skipped")
        if lacking:
            lines += md_table(["skipped: kernel capability missing", "objects"],
                              sorted(lacking.items()))
            lines.append("")
        lines.append("")
    lines += md_table(["corpus", "now", "tsv"], size_rows)
    lines += ["", f"generation {elapsed[0]:.1f}s, kernel runs {elapsed[1]:.1f}s"]
    if problems:
        lines += ["", "### problems", ""] + ["- " + p for p in problems]
    return "\n".join(lines) + "\n"


TSV_FIELDS = [f.name for f in dataclasses.fields(Result)]


def write_tsv(path: Path, results: list[Result]) -> None:
    def cell(v: object) -> str:
        text = f"{v:.4f}" if isinstance(v, float) else str(v)
        return text.replace("\t", " ").replace("\n", " ")
    body = "\t".join(TSV_FIELDS) + "\n" + "".join(
        "\t".join(cell(getattr(r, f)) for f in TSV_FIELDS) + "\n" for r in results)
    write_atomic(path, body.encode())


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keydir", type=Path, help="use this build_corpus.py KEYDIR (no rebuild)")
    ap.add_argument("--jobs", "-j", type=int, default=min(8, os.cpu_count() or 1),
                    help="parallel generation processes (default: CPUs, at most 8);"
                         " kernel runs stay serial")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only these sources (NAME, NAME.c or NAME.bpf.o)")
    ap.add_argument("--kernel", action="store_true",
                    help="also run our blobs for every object whose bpftool loader loads")
    ap.add_argument("--kernel-timeout", type=float, default=KERNEL_TIMEOUT,
                    help="seconds per lskel-run (default %(default)s)")
    ap.add_argument("--accept", action="append", metavar="TAG",
                    help="also accept divergence TAG (e.g. no-progs-ctx-sz, arena-header);"
                         " ?-slots is always accepted")
    ap.add_argument("--markdown", type=Path, metavar="FILE", help="also write the summary here")
    return ap.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    keydir: Path = (args.keydir or run_build_corpus(args.only, args.jobs)).resolve()
    if not (keydir / "manifest.tsv").is_file():
        log(f"{keydir}: no manifest.tsv (not a build_corpus.py KEYDIR?)")
        return 2
    host = json.loads((keydir / "host.json").read_text())
    reference = load_reference(REFERENCE_TSV)
    manifest = load_manifest(keydir)
    if args.only:
        wanted = {normalize_name(n) for n in args.only}
        unknown = sorted(wanted - set(manifest))
        if unknown:
            log(f"not in {keydir}/manifest.tsv: {' '.join(unknown)}")
            return 2
        manifest = {s: b for s, b in manifest.items() if s in wanted}
        reference = {s: e for s, e in reference.items() if s in wanted}
    t_build = time.monotonic() - t0

    problems: list[str] = []
    accepted = [*ACCEPTED_TAGS, *(args.accept or [])]
    # The corpus must not shrink quietly.
    n_comp = sum(b.compiled != "fail" for b in manifest.values())
    n_ok = sum(b.bpftool == "ok" for b in manifest.values())
    n_ref_comp = sum(e.compiled != "fail" for e in reference.values())
    n_ref_ok = sum(e.bpftool == "ok" for e in reference.values())
    size_rows = [("compiled", n_comp, n_ref_comp), ("bpftool ok", n_ok, n_ref_ok)]
    if n_comp < n_ref_comp or n_ok < n_ref_ok:
        problems.append(f"corpus shrank: compiled {n_comp} (tsv {n_ref_comp}),"
                        f" bpftool ok {n_ok} (tsv {n_ref_ok})")
    missing = sorted(s for s, e in reference.items() if e.compiled != "fail"
                     and (s not in manifest or manifest[s].compiled == "fail"))
    if missing:
        problems.append("in the TSV as compiled but not built: " + " ".join(missing))

    jobs = [Job(b.source, b.compiled, b.bpftool, b.detail, str(keydir),
                int(host["page_size"]), int(host["possible_cpus"]))
            for b in sorted(manifest.values(), key=lambda b: b.source) if b.compiled != "fail"]
    ours_dir = keydir / "ours"
    ours_dir.mkdir(exist_ok=True)
    results: list[Result] = []

    def collect(item: tuple[Result, bytes, bytes]) -> None:
        res, data, insns = item
        exp = reference.get(res.source)
        res.kernel_expected = "" if exp is None else ("OK" if exp.loads else
                                                      exp.kernel.split(":", 1)[0])
        stem = ours_dir / (res.source[:-2] + ".bpf")
        if res.ours == "ok":
            write_atomic(Path(str(stem) + ".data.bin"), data)
            write_atomic(Path(str(stem) + ".insns.bin"), insns)
        results.append(res)

    t1 = time.monotonic()
    if args.jobs <= 1:
        for job in jobs:
            collect(generate(job))
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for item in pool.map(generate, jobs, chunksize=16):
                collect(item)
    t_gen = time.monotonic() - t1
    results.sort(key=lambda r: r.source)

    t2 = time.monotonic()
    if args.kernel:
        exe = build_lskel_run()
        todo = [r for r in results if r.kernel_expected == "OK"]
        log(f"kernel: running our loader for {len(todo)} objects ({exe})")
        for i, res in enumerate(todo, 1):
            if res.ours != "ok":
                res.kernel_ours = "not run"
                res.kernel_detail = "we reject: " + res.ours
            elif lacks_capability(res):
                pass
            else:
                run_kernel(exe, ours_dir, res, args.kernel_timeout)
            if i % 100 == 0:
                log(f"  {i}/{len(todo)} ({time.monotonic() - t2:.0f}s)")
        beyond = [r for r in results if r.verdict == BPFTOOL_CRASH and r.ours == "ok"]
        log(f"kernel: loading {len(beyond)} objects bpftool crashes on, with ours")
        for res in beyond:
            if not lacks_capability(res):
                run_beyond(keydir, res)
    t_kernel = time.monotonic() - t2

    grouped: dict[str, list[str]] = {}
    for r in results:
        if not failing(r.verdict, accepted):
            continue
        if r.verdict.startswith("divergence:"):  # recognised: one line per kind
            grouped.setdefault(r.verdict, []).append(r.source[:-2])
        else:
            problems.append(f"{r.source}: {r.verdict}: {r.detail}")
    for verdict, names in sorted(grouped.items()):
        problems.append(f"{verdict} (not accepted; --accept to pass) x{len(names)}: "
                        + " ".join(names))
    for r in results:
        if r.kernel_expected == "OK" and args.kernel and r.kernel_ours not in (
                "loads", "skipped", "fails like bpftool's"):
            problems.append(f"{r.source}: kernel regression: bpftool's loader loads,"
                            f" ours {r.kernel_ours}: {r.kernel_detail}")

    # A partial (--only) run leaves the full run's table alone.
    tsv = keydir / ("differential-only.tsv" if args.only else "differential.tsv")
    write_tsv(tsv, results)
    text = summarize(results, args.kernel, header_available(), accepted, size_rows, problems,
                     (t_gen, t_kernel))
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text)
    print(f"full results: {tsv}"
          f" (corpus build {t_build:.1f}s, total {time.monotonic() - t0:.1f}s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
