#!/usr/bin/env python3
"""One-run comparison on the kernel selftests corpus: libbpf 1.5 in-process
(``genref bench``), ``bpftool gen skeleton -L`` one process per object against
the native ``bpfgen-fast gen skeleton -L`` (alternated, per-object medians),
bpfgen_fast in-process (Python API) and the native ``bpfgen-fast batch`` with
1 and 2 jobs, with and without ``test_skeleton``. Prints ratios against the
targets, peak RSS and the machine, as a Markdown report (also ``--markdown
FILE``). Slow (minutes): never part of the test suite.

    python benches/compare.py [--keydir KEYDIR] [--repeats 5] [--rounds 3]

Objects: those bpftool accepted (``oracle/NAME.lskel.h`` of the corpus) and
bpfgen_fast accepts too. In-process times are per-object medians over
``--repeats`` runs after a warm-up, the minimum over ``--rounds`` rounds that
alternate libbpf and us (the machine may be shared: alternating and taking
the best round keeps a burst of someone else's load from favouring either).
Host facts are this machine's for every tool, read the way each reads them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BPFGEN_SHARED", ROOT.parent / "shared"))
CACHE = Path(os.environ.get("BPFGEN_CACHE") or "~/.cache/bpfgen").expanduser()
GENREF = Path(os.environ.get("GENREF") or CACHE / "genref" / "genref").expanduser()
LARGEST = "pyperf600.bpf.o"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def keydir_of(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    log("building / locating the selftests corpus ...")
    p = subprocess.run([sys.executable, str(ROOT / "scripts/selftests/build_corpus.py")],
                       capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    if not lines or not Path(lines[-1]).is_dir():
        sys.exit(f"build_corpus.py failed:\n{p.stderr[-2000:]}")
    return Path(lines[-1])


def genref_path() -> Path:
    if not os.access(GENREF, os.X_OK):
        log(f"building genref with {SHARED / 'bench/build.sh'} ...")
        subprocess.run(["sh", str(SHARED / "bench/build.sh")], check=True,
                       stdout=subprocess.DEVNULL)
    return GENREF


def run_genref(genref: Path, objs: list[Path], repeats: int) -> tuple[dict[str, float], int]:
    """Per-object median µs (open+gen+load+close) and peak RSS (KiB).

    The RSS comes from ``/usr/bin/time`` when installed: genref's own
    ``ru_maxrss`` also counts this (much larger) Python process's RSS, which a
    vfork'ed child inherits at exec."""
    argv = [str(genref), "bench", "-w", "1", str(repeats), *map(str, objs)]
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer:
        argv = [timer, "-f", "time_maxrss_kb=%M", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    med: dict[str, float] = {}
    rss = 0
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 15 and f[0] != "object":
            med[f[0]] = float(f[8])
        elif line.startswith("repeats=") and not timer:
            rss = int(line.rsplit("peak_rss_kb=", 1)[1])
    for line in p.stderr.splitlines():
        if line.startswith("time_maxrss_kb="):
            rss = int(line.split("=", 1)[1])
    return med, rss


def run_ours(objs: list[Path], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Per-object median µs of ``bpfgen_fast.gen_loader(bytes, name)`` (the
    Python API's one-shot open + generate) and of the same work timed inside
    Rust (the core)."""
    import bpfgen_fast
    from bpfgen_fast import _core

    host = bpfgen_fast.host_args()
    api: dict[str, float] = {}
    core: dict[str, float] = {}
    clock = time.perf_counter
    for path in objs:
        data = path.read_bytes()
        name = _core.default_object_name(str(path))
        bpfgen_fast.gen_loader(data, name)  # warm-up
        ts = []
        for _ in range(repeats):
            t = clock()
            bpfgen_fast.gen_loader(data, name)
            ts.append(clock() - t)
        api[path.name] = statistics.median(ts) * 1e6
        core[path.name] = statistics.median(_core._time_core(data, name, host, repeats)) * 1e6
    return api, core


def peak_rss(argv: list[str]) -> int | None:
    """Peak RSS (KiB) of ``argv`` as ``/usr/bin/time`` reports it; None without it. A
    child of this Python process would report the RSS it inherited from the fork
    before exec (see :func:`run_genref`)."""
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer is None:
        return None
    p = subprocess.run([timer, "-f", "time_maxrss_kb=%M", *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, check=True)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("time_maxrss_kb=")]
    return int(lines[-1].split("=", 1)[1]) if lines else None


def timed_child(argv: list[str], **kw: Any) -> tuple[float, int, int]:
    """(wall seconds, exit status, peak RSS KiB) of one child process. The RSS includes
    what the child inherited from this process before exec: use :func:`peak_rss`."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, **kw)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t, proc.returncode, ru.ru_maxrss


NATIVE = Path(sys.executable).parent / "bpfgen-fast"
SKELETON_GIANT = "test_skeleton.bpf.o"  # a 68 MB header: reported apart


def per_process(objs: list[Path], runs: int) -> dict[str, tuple[float, float]]:
    """Per-object median wall seconds of one ``gen skeleton -L OBJ`` process:
    (ours, native; bpftool 7.5.0), the two alternated run by run."""
    out: dict[str, tuple[float, float]] = {}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    for o in objs:
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed_child([str(NATIVE), "gen", "skeleton", "-L", str(o)], **quiet)[0])
            theirs.append(timed_child(["bpftool", "gen", "skeleton", "-L", str(o)], **quiet)[0])
        out[o.name] = (statistics.median(ours), statistics.median(theirs))
    return out


def run_bpftool(objs: list[Path]) -> float:
    """Total wall seconds of ``bpftool gen skeleton -L OBJ > DIR/NAME.lskel.h`` one
    process each, into a fresh directory on the file system the batch writes to, as
    a Makefile rule does: the batch's figures include writing its files, so the
    baseline's do too."""
    with tempfile.TemporaryDirectory(prefix="bpfgen-compare-") as out:
        t = time.perf_counter()
        for o in objs:
            with open(Path(out) / (o.name[: -len(".o")] + ".lskel.h"), "wb") as f:
                subprocess.run(["bpftool", "gen", "skeleton", "-L", str(o)], stdout=f,
                               stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - t


def run_batch(listing: Path, jobs: int) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB) of the native ``bpfgen-fast batch``."""
    with tempfile.TemporaryDirectory(prefix="bpfgen-compare-") as out:
        argv = [str(NATIVE), "batch", "--from", str(listing), "--out-dir", out, "-j", str(jobs)]
        wall, rc, _ = timed_child(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rc != 0:
            sys.exit(f"bpfgen-fast batch -j {jobs} failed (exit {rc})")
    with tempfile.TemporaryDirectory(prefix="bpfgen-compare-") as out:
        rss = peak_rss([str(NATIVE), "batch", "--from", str(listing), "--out-dir", out,
                        "-j", str(jobs)]) or 0
    return wall, rss


_RSS_CHILD = """
import sys
import bpfgen_fast
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
data = open(sys.argv[1], "rb").read()
before = hwm()
obj = bpfgen_fast.BpfObject.open(data, bpfgen_fast._core.default_object_name(sys.argv[1]))
loader = obj.gen_loader()
print(before, hwm())
"""


def rss_ours(path: Path) -> tuple[int, int]:
    """Peak RSS (KiB) of a Python process before and after open + gen_loader
    of ``path`` (the bytes already read)."""
    p = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path)], capture_output=True,
                       text=True, check=True)
    before, after = map(int, p.stdout.split())
    return before, after


def rss_core(path: Path) -> int | None:
    """Peak RSS (KiB, VmHWM) of the Rust-only timing loop (benches/gen.rs), a
    native process like genref, on one pass over ``path``; None without cargo."""
    if shutil.which("cargo") is None:
        return None
    build = subprocess.run(["cargo", "bench", "--bench", "gen", "--no-run",
                            "--message-format=json"], cwd=ROOT, capture_output=True, text=True)
    exe = None
    for line in build.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "gen":
            exe = msg.get("executable") or exe
    if exe is None:
        return None
    p = subprocess.run([exe, "--repeats", "0", str(path)], capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("peak_rss_kb="):
            return int(line.split("=", 1)[1])
    return None


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs, {mem:.0f} GiB, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keydir")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--markdown")
    ap.add_argument("--process-runs", type=int, default=5,
                    help="runs of each per-process command, per object")
    ap.add_argument("--in-process-only", action="store_true",
                    help="stop after the in-process comparison (a quick check of the core)")
    args = ap.parse_args()

    import bpfgen_fast

    keydir = keydir_of(args.keydir)
    accepted = sorted(keydir / "obj" / (h.name[: -len(".lskel.h")] + ".o")
                      for h in (keydir / "oracle").glob("*.lskel.h"))
    ours_ok = bpfgen_fast.gen_batch(accepted, fmt="blobs")
    objs = [Path(r.path) for r in ours_ok if r.ok]
    log(f"{len(objs)} objects accepted by bpftool and by bpfgen_fast "
        f"({len(accepted) - len(objs)} bpftool-only)")
    genref = genref_path()
    load_start = os.getloadavg()

    lib: dict[str, float] = {}
    api: dict[str, float] = {}
    core: dict[str, float] = {}
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}: libbpf in-process ...")
        g, _ = run_genref(genref, objs, args.repeats)
        log(f"round {r + 1}/{args.rounds}: bpfgen_fast in-process ...")
        a, c = run_ours(objs, args.repeats)
        for d, new in ((lib, g), (api, a), (core, c)):
            for k, v in new.items():
                d[k] = min(d.get(k, math.inf), v)
    names = [o.name for o in objs]
    ratio_api = geomean([lib[n] / api[n] for n in names])
    ratio_core = geomean([lib[n] / core[n] for n in names])
    by_api = sorted(names, key=lambda n: api[n])
    median_obj = by_api[len(by_api) // 2]
    overhead = (api[median_obj] - core[median_obj]) / api[median_obj]
    overhead_all = statistics.median((api[n] - core[n]) / api[n] for n in names)
    if args.in_process_only:
        us = {k: geomean(list(d.values())) for k, d in
              (("libbpf", lib), ("API", api), ("core", core))}
        print(f"in-process over {len(names)} objects, geomean of per-object ratios: libbpf/API "
              f"{ratio_api:.2f}x, libbpf/core {ratio_core:.2f}x; geomean us: "
              + ", ".join(f"{k} {v:.1f}" for k, v in us.items())
              + f"; Python-side overhead, median object {overhead:.1%}, median over objects "
              f"{overhead_all:.1%}")
        return 0

    log(f"one process per object, native bpfgen-fast vs bpftool, {args.process_runs} runs each,"
        " alternated ...")
    proc = per_process(objs, args.process_runs)
    proc_ratio = {n: theirs / ours for n, (ours, theirs) in proc.items()}
    proc_geo = geomean(list(proc_ratio.values()))
    slowest = max(proc, key=lambda n: proc[n][0])
    worst = min(proc_ratio, key=lambda n: proc_ratio[n])

    log("bpftool gen skeleton -L, one process per object ...")
    small = [o for o in objs if o.name != SKELETON_GIANT]
    giant = [o for o in objs if o.name == SKELETON_GIANT]
    bpftool_small = run_bpftool(small)
    bpftool_giant = run_bpftool(giant)
    batch: dict[str, tuple[float, float, int]] = {}
    for label, group in (("without", small), ("with", objs)):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("".join(f"{o}\n" for o in group))
            listing = Path(f.name)
        try:
            b1: list[float] = []
            b2: list[float] = []
            rss_b = 0
            for r in range(args.rounds):
                log(f"round {r + 1}/{args.rounds}: bpfgen-fast batch -j 1 / -j 2 "
                    f"({label} {SKELETON_GIANT}) ...")
                w1, m1 = run_batch(listing, 1)
                w2, m2 = run_batch(listing, 2)
                b1.append(w1)
                b2.append(w2)
                rss_b = max(rss_b, m1, m2)
        finally:
            listing.unlink()
        batch[label] = (min(b1), min(b2), rss_b)
    j1, j2, rss_b = batch["without"]
    j1_all, j2_all, _ = batch["with"]
    bpftool_s = bpftool_small

    log("peak RSS on the largest object ...")
    largest = keydir / "obj" / LARGEST
    _, rss_lib = run_genref(genref, [largest], 1)
    _, rss_lib_small = run_genref(genref, [keydir / "obj" / "test_ringbuf.bpf.o"], 1)
    # (genref bench -w 1 1: one warm-up and one timed pass, the same object)
    py_before, py_after = rss_ours(largest)
    rss_rust = rss_core(largest)
    rss_native = peak_rss([str(NATIVE), "gen", "skeleton", "-L", str(largest)])
    load_end = os.getloadavg()

    rows = [
        (f"one process per object: native `bpfgen-fast gen skeleton -L` vs bpftool (geomean "
         f"over {len(proc)} objects, per-object medians of {args.process_runs} alternated runs)",
         "≥ 3x", f"{proc_geo:.2f}x; lowest {worst} {proc_ratio[worst]:.2f}x; slowest object "
         f"{slowest} {proc[slowest][0] * 1e3:.1f} ms vs {proc[slowest][1] * 1e3:.1f} ms "
         f"({proc_ratio[slowest]:.2f}x)", proc_geo >= 3 and proc_ratio[slowest] >= 1),
        (f"native command's peak RSS on {LARGEST} vs genref", "≤ libbpf",
         f"{rss_native} KiB vs {rss_lib} KiB", rss_native is not None and rss_native <= rss_lib),
        ("in-process open + gen_loader vs libbpf 1.5 in-process (geomean over "
         f"{len(names)} objects)", "≥ 5x", f"{ratio_api:.2f}x (core alone {ratio_core:.2f}x)",
         ratio_api >= 5),
        (f"whole-corpus headers without {SKELETON_GIANT}: native `batch -j 2` ({j2:.2f} s) vs "
         f"bpftool per process ({bpftool_s:.2f} s)", "≥ 20x",
         f"{bpftool_s / j2:.1f}x (-j 1: {bpftool_s / j1:.1f}x)", bpftool_s / j2 >= 20),
        (f"the same with {SKELETON_GIANT} (bpftool {bpftool_s + bpftool_giant:.2f} s)", "",
         f"-j 2 {j2_all:.2f} s ({(bpftool_s + bpftool_giant) / j2_all:.1f}x), -j 1 "
         f"{j1_all:.2f} s", True),
        (f"`batch -j 2` vs `-j 1` ({j1:.2f} s)", "≥ 1.8x", f"{j1 / j2:.2f}x", j1 / j2 >= 1.8),
        (f"peak RSS on {LARGEST}: native process, ours (Rust loop) vs genref",
         "≤ libbpf", f"{rss_rust if rss_rust is not None else 'n/a'} KiB vs {rss_lib} KiB",
         rss_rust is not None and rss_rust <= rss_lib),
        (f"peak RSS growth for {LARGEST}: Python process vs genref (minus a small object's run)",
         "≤ libbpf", f"{py_after - py_before} KiB vs {rss_lib - rss_lib_small} KiB",
         py_after - py_before <= rss_lib - rss_lib_small),
        (f"Python-side overhead, median object ({median_obj}: API {api[median_obj]:.1f} µs, "
         f"core {core[median_obj]:.1f} µs)", "< 10%",
         f"{overhead * 100:.1f}% (median over objects {overhead_all * 100:.1f}%)", overhead < 0.10),
    ]
    out = [
        f"Machine: {machine()}; load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end.",
        "",
        f"In-process medians (µs, best of {args.rounds} rounds x {args.repeats} runs), geometric "
        f"means: libbpf {geomean([lib[n] for n in names]):.1f}, bpfgen_fast API "
        f"{geomean([api[n] for n in names]):.1f}, core {geomean([core[n] for n in names]):.1f}. "
        f"Batch peak RSS (-j 1/-j 2, whole process): {rss_b} KiB.",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {'yes' if d else '**no**'} |" for a, b, c, d in rows],
    ]
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text)
    details = {n: {"libbpf_us": lib[n], "api_us": api[n], "core_us": core[n]} for n in names}
    (Path(tempfile.gettempdir()) / "bpfgen-compare.json").write_text(json.dumps(details, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
