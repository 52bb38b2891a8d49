#!/usr/bin/env python3
"""Build the kernel's BPF selftests corpus and the oracle's outputs for it.

What it does
------------
1. Extracts from ``/usr/src/linux-source-6.12.tar.xz`` (never modified) the parts of
   the tree it needs -- ``tools/include``, ``tools/lib/bpf``,
   ``tools/testing/selftests/bpf`` and ``scripts/bpf_doc.py`` -- into
   ``CACHE/src/linux-source-6.12/``.  Files already there are left untouched.
2. Prepares an include dir ``KEYDIR/include``: ``vmlinux.h`` dumped from the running
   kernel's BTF by bpftool, and libbpf 1.5's installed headers as ``bpf/*.h``
   (``SRC_HDRS`` of ``tools/lib/bpf/Makefile`` plus ``bpf_helper_defs.h`` generated
   by ``scripts/bpf_doc.py`` from ``tools/include/uapi/linux/bpf.h``, as libbpf does).
3. Compiles every ``progs/*.c`` like the selftests Makefile's test_progs flavour,
   from ``tools/testing/selftests/bpf``::

       clang-19 BPF_CFLAGS CLANG_SYS_INCLUDES -DENABLE_ATOMICS_TESTS PER_FILE_CFLAGS
                -O2 --target=bpf -c progs/NAME.c -mcpu=v3 -o KEYDIR/obj/NAME.bpf.o

   with the fallback chain ``ok`` (as above) -> ``ok_nowerror`` (``-Werror``
   dropped) -> ``ok_no_kfunc_protos`` (also ``-DBPF_NO_KFUNC_PROTOTYPES``) -> ``fail``.
   (``-I$(OUTPUT)/../usr/include`` is left out: it names the output of
   ``make headers_install``, which does not exist for this build.  The Makefile's
   ``-fno-inline`` for ``$(OUTPUT)/test_{l4lb,xdp}_noinline.o`` is not applied either:
   those targets are not the ``.bpf.o`` objects, so make never applies it to them.)
4. Runs ``bpftool gen skeleton -L NAME.bpf.o`` on every object and stores under
   ``KEYDIR/oracle/`` either ``NAME.bpf.lskel.h`` (stdout) with the decoded
   ``opts_data``/``opts_insn`` literals as ``NAME.bpf.data.bin`` /
   ``NAME.bpf.insns.bin``, or ``NAME.bpf.err``: a first line
   ``# bpftool gen skeleton -L NAME.bpf.o: exit status N`` (or ``...: crashed:
   SIGSEGV (exit 139)`` when killed by a signal) followed by bpftool's stderr verbatim.
5. Writes ``KEYDIR/host.json`` (page size, possible CPUs, bpftool version, ...) and
   ``KEYDIR/manifest.tsv`` (source, compiled, bpftool, detail), prints per-column
   counts against ``../shared/corpus/selftests-bpftool-7.5.tsv`` and the rows
   that disagree, and prints KEYDIR on its last line.

Exit status is 1 if fewer sources compile, or fewer objects are accepted by
bpftool, than the reference TSV says (restricted to ``--only`` when given).

Caching
-------
``KEYDIR = CACHE/selftests/<key>`` where ``<key>`` is a 12-hex-digit SHA-256 of the
inputs: tarball size and mtime, ``clang-19 --version``, the SHA-256 of
``/sys/kernel/btf/vmlinux``, ``bpftool version`` and ``SCRIPT_VERSION`` (bump it when
the build recipe changes).  Each source's result is committed atomically
(``log/NAME.json`` for the compile, ``oracle/NAME.bpf.*`` for bpftool), so a rerun,
even after an interruption, redoes only the missing work.

Standard library only.  Usage::

    python3 scripts/selftests/build_corpus.py [--jobs N] [--only NAME ...] [--cache DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

SCRIPT_VERSION = "2"

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
TREE_NAME = "linux-source-6.12"
TAR_MEMBERS = (
    "tools/include",
    "tools/lib/bpf",
    "tools/testing/selftests/bpf",
    "scripts/bpf_doc.py",
)
CLANG = os.environ.get("CLANG", "clang-19")
BPFTOOL = os.environ.get("BPFTOOL", "bpftool")
VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
# shared/ sits beside the repository (override with BPFGEN_SHARED)
SHARED = Path(os.environ.get("BPFGEN_SHARED",
                             Path(__file__).resolve().parent.parent.parent.parent / "shared"))
REFERENCE_TSV = SHARED / "corpus" / "selftests-bpftool-7.5.tsv"

SELFTESTS_REL = "tools/testing/selftests/bpf"
# The BPF_CFLAGS definition this script mirrors (checked against the Makefile).
BPF_CFLAGS_DEF = (
    "BPF_CFLAGS = -g -Wall -Werror -D__TARGET_ARCH_$(SRCARCH) $(MENDIAN)\t\\\n"
    "\t     -I$(INCLUDE_DIR) -I$(CURDIR) -I$(APIDIR)\t\t\t\\\n"
    "\t     -I$(abspath $(OUTPUT)/../usr/include)\t\t\t\\\n"
    "\t     -Wno-compare-distinct-pointer-types\n"
)

COMPILE_TIMEOUT = 900
BPFTOOL_TIMEOUT = 300

# Compile verdicts, in fallback order, and the flags each one changes.
VERDICT_OK = "ok"
VERDICT_NOWERROR = "ok_nowerror"
VERDICT_NO_KFUNC = "ok_no_kfunc_protos"
VERDICT_FAIL = "fail"
COMPILE_VERDICTS = (VERDICT_OK, VERDICT_NOWERROR, VERDICT_NO_KFUNC, VERDICT_FAIL)
BPFTOOL_VERDICTS = ("ok", "fail", "crash", "n/a")


# ---------------------------------------------------------------- small helpers

#: exit status when the corpus is smaller than the reference TSV says (a crash exits 1)
CORPUS_SHRANK = 3

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_text(cmd: Sequence[str], **kw: object) -> str:
    """Run a command that must succeed; return its stdout as text."""
    p = subprocess.run(list(cmd), capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                  p.stderr.decode(errors="replace")))
    return p.stdout.decode()


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file via a temporary sibling and rename, so readers never see a partial file."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def possible_cpus() -> int:
    """Number of CPUs in /sys/devices/system/cpu/possible (libbpf_num_possible_cpus)."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def exit_description(rc: int) -> tuple[str, str]:
    """(verdict, description) of a bpftool exit code; a signal is a crash."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "signal %d" % -rc
        return "crash", "crashed: %s (exit %d)" % (name, 128 - rc)
    return ("ok" if rc == 0 else "fail"), "exit status %d" % rc


# ---------------------------------------------------------------- blob decoding

def decode_c_blob(header: str, var: str) -> bytes:
    """Decode ``static const char VAR[] ... = "\\\\\\n...";`` as printed by bpftool.

    bpftool prints every byte as an escape -- ``\\0`` for zero, ``\\xNN`` otherwise --
    and breaks lines with a trailing backslash (line continuation).  Same decoder as
    tests/fixtures/make_golden.py.
    """
    m = re.search(r"static const char " + re.escape(var) +
                  r"\[\] __attribute__\(\(__aligned__\(8\)\)\) = \"\\\n(.*?)\";", header, re.S)
    if not m:
        raise ValueError(f"no {var}[] literal in header")
    body = m.group(1).replace("\\\n", "")
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] != "\\":
            raise ValueError("%s: unexpected char %r at %d" % (var, body[i], i))
        if body[i + 1] == "0":
            out.append(0)
            i += 2
        elif body[i + 1] == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("%s: unexpected escape %r at %d" % (var, body[i:i + 2], i))
    return bytes(out)


# ---------------------------------------------------------------- Makefile parsing

def make_logical_lines(text: str) -> list[str]:
    """Join backslash-continued Makefile lines."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def per_file_cflags(makefile: str) -> dict[str, list[str]]:
    """``progs/NAME.c-CFLAGS := ...`` of the clang flavour (not ``-bpf_gcc-CFLAGS``)."""
    flags: dict[str, list[str]] = {}
    for line in make_logical_lines(makefile):
        m = re.match(r"progs/([\w.-]+\.c)-CFLAGS\s*:?=\s*(.*)$", line)
        if m:
            flags[m.group(1)] = m.group(2).split()
    return flags


def libbpf_src_headers(makefile: str) -> list[str]:
    for line in make_logical_lines(makefile):
        m = re.match(r"SRC_HDRS\s*:=\s*(.*)$", line)
        if m:
            return m.group(1).split()
    raise ValueError("SRC_HDRS not found in tools/lib/bpf/Makefile")


def clang_sys_includes() -> list[str]:
    """``get_sys_includes`` of the selftests Makefile: clang's host search list as -idirafter."""
    p = subprocess.run([CLANG, "-v", "-E", "-"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True)
    out: list[str] = []
    inside = False
    for line in p.stdout.decode().splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            inside = False
        elif inside and line.startswith(" /"):
            out += ["-idirafter", line.strip()]
    if not out:
        raise RuntimeError("could not read clang's include search list")
    return out


# ---------------------------------------------------------------- inputs

def extract_sources(cache: Path) -> Path:
    """Extract TAR_MEMBERS into CACHE/src/TREE_NAME; existing files are not touched."""
    tree = cache / "src" / TREE_NAME
    stamp = tree / ".bpfgen-extracted"
    want = "\n".join(TAR_MEMBERS) + "\n"
    if stamp.exists() and stamp.read_text() == want:
        return tree
    log("extracting {} from {} ...".format(", ".join(TAR_MEMBERS), TARBALL))
    tree.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "src", prefix=".extract-") as tmp:
        subprocess.run(["tar", "-xJf", str(TARBALL), "-C", tmp]
                       + [f"{TREE_NAME}/{m}" for m in TAR_MEMBERS], check=True)
        src_root = Path(tmp) / TREE_NAME
        for dirpath, _dirs, files in os.walk(src_root):
            rel = Path(dirpath).relative_to(src_root)
            (tree / rel).mkdir(parents=True, exist_ok=True)
            for name in files:
                dst = tree / rel / name
                if not dst.exists():
                    os.replace(Path(dirpath) / name, dst)
    write_atomic(stamp, want)
    return tree


def bpftool_version() -> str:
    return "\n".join(run_text([BPFTOOL, "version"]).splitlines()[:2])


def cache_key() -> tuple[str, dict[str, object]]:
    st = TARBALL.stat()
    inputs: dict[str, object] = {
        "tarball": str(TARBALL),
        "tarball_size": st.st_size,
        "tarball_mtime": int(st.st_mtime),
        "clang": run_text([CLANG, "--version"]).splitlines()[0],
        "vmlinux_btf_sha256": sha256_file(VMLINUX_BTF),
        "bpftool": bpftool_version(),
        "script_version": SCRIPT_VERSION,
    }
    blob = json.dumps(inputs, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12], inputs


def prepare_includes(tree: Path, keydir: Path) -> Path:
    """KEYDIR/include with vmlinux.h and libbpf's headers under bpf/."""
    inc = keydir / "include"
    (inc / "bpf").mkdir(parents=True, exist_ok=True)
    vmlinux_h = inc / "vmlinux.h"
    if not vmlinux_h.exists():
        log(f"dumping vmlinux.h from {VMLINUX_BTF}")
        write_atomic(vmlinux_h, run_text([BPFTOOL, "btf", "dump", "file", str(VMLINUX_BTF), "format", "c"]))
    libbpf = tree / "tools/lib/bpf"
    for hdr in libbpf_src_headers((libbpf / "Makefile").read_text()):
        dst = inc / "bpf" / hdr
        if not dst.exists():
            write_atomic(dst, (libbpf / hdr).read_bytes())
    defs = inc / "bpf" / "bpf_helper_defs.h"
    if not defs.exists():
        write_atomic(defs, run_text([sys.executable, str(tree / "scripts/bpf_doc.py"), "--header",
                                     "--file", str(tree / "tools/include/uapi/linux/bpf.h")]))
    return inc


def base_cflags(tree: Path, inc: Path) -> list[str]:
    """TRUNNER_BPF_CFLAGS of test_progs: BPF_CFLAGS, CLANG_SYS_INCLUDES, -DENABLE_ATOMICS_TESTS."""
    makefile = (tree / SELFTESTS_REL / "Makefile").read_text()
    if BPF_CFLAGS_DEF not in makefile:
        raise RuntimeError("selftests Makefile's BPF_CFLAGS differ from what this script mirrors")
    return (["-g", "-Wall", "-Werror", "-D__TARGET_ARCH_x86", "-mlittle-endian", f"-I{inc}", "-I%s" % (tree / SELFTESTS_REL), "-I%s" % (tree / "tools/include/uapi"), "-Wno-compare-distinct-pointer-types", *clang_sys_includes(), "-DENABLE_ATOMICS_TESTS"])


# ---------------------------------------------------------------- compile

@dataclasses.dataclass
class CompileResult:
    source: str
    verdict: str
    detail: str  # first error line on failure, else ""
    cmd: list[str]
    stderr: str


def first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "error:" in line:
            return line.strip()
    return (stderr.strip().splitlines() or ["(no output)"])[-1]


def compile_one(source: str, selftests: Path, objdir: Path, logdir: Path,
                base: list[str], extra: list[str]) -> CompileResult:
    """Compile progs/SOURCE with the fallback chain; cached through logdir/NAME.json."""
    name = source[:-2]
    record = logdir / (name + ".json")
    if record.exists():
        return CompileResult(**json.loads(record.read_text()))
    # The object is committed by the record written last: an object without a record
    # (an interrupted run) is rebuilt.
    obj = objdir / (name + ".bpf.o")
    nowerror = [f for f in base if f != "-Werror"]
    attempts = (
        (VERDICT_OK, base),
        (VERDICT_NOWERROR, nowerror),
        (VERDICT_NO_KFUNC, [*nowerror, "-DBPF_NO_KFUNC_PROTOTYPES"]),
    )
    failed: list[CompileResult] = []
    result: CompileResult | None = None
    for verdict, flags in attempts:
        cmd = [CLANG, *flags, *extra, "-O2", "--target=bpf", "-c", "progs/" + source, "-mcpu=v3", "-o", str(obj)]
        p = subprocess.run(cmd, cwd=selftests, capture_output=True, timeout=COMPILE_TIMEOUT, check=False)
        stderr = p.stderr.decode(errors="replace")
        if p.returncode == 0:
            result = CompileResult(source, verdict, "", cmd, stderr)
            break
        failed.append(CompileResult(source, VERDICT_FAIL, first_error(stderr), cmd, stderr))
        obj.unlink(missing_ok=True)
    if result is None:
        # Report the last attempt's error, as the reference TSV does: with the kfunc
        # prototypes gone, what remains is what really blocks the build.
        result = failed[-1]
    write_atomic(record, json.dumps(dataclasses.asdict(result), indent=1) + "\n")
    return result


# ---------------------------------------------------------------- oracle

@dataclasses.dataclass
class OracleResult:
    verdict: str  # ok | fail | crash
    detail: str


def read_oracle(oracle: Path, stem: str) -> OracleResult | None:
    """The cached result for NAME.bpf, if complete."""
    err = oracle / (stem + ".err")
    if err.exists():
        first, _, stderr = err.read_text().partition("\n")
        status = first.split(": ", 1)[1] if ": " in first else first
        verdict = "crash" if status.startswith("crashed") else "fail"
        first_line = (stderr.strip().splitlines() or [status])[0]
        return OracleResult(verdict, status if verdict == "crash" else first_line)
    if all((oracle / (stem + ext)).exists() for ext in (".lskel.h", ".data.bin", ".insns.bin")):
        return OracleResult("ok", "")
    return None


def run_oracle(name: str, objdir: Path, oracle: Path) -> OracleResult:
    """``bpftool gen skeleton -L NAME.bpf.o``; stores header + blobs, or NAME.bpf.err."""
    stem = name + ".bpf"
    cached = read_oracle(oracle, stem)
    if cached is not None:
        return cached
    obj = stem + ".o"
    try:
        p = subprocess.run([BPFTOOL, "gen", "skeleton", "-L", obj], cwd=objdir,
                           capture_output=True, timeout=BPFTOOL_TIMEOUT, check=False)
        rc, out, err = p.returncode, p.stdout, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out, err = -signal.SIGKILL, b"", (e.stderr or b"").decode(errors="replace") + "(timeout)\n"
    verdict, status = exit_description(rc)
    if verdict == "ok":
        header = out.decode()
        data = decode_c_blob(header, "opts_data")
        insns = decode_c_blob(header, "opts_insn")
        if len(insns) % 8:
            raise ValueError("%s: opts_insn size %d is not a multiple of 8" % (obj, len(insns)))
        write_atomic(oracle / (stem + ".data.bin"), data)
        write_atomic(oracle / (stem + ".insns.bin"), insns)
        write_atomic(oracle / (stem + ".lskel.h"), header)
    else:
        write_atomic(oracle / (stem + ".err"),
                     f"# bpftool gen skeleton -L {obj}: {status}\n{err}")
    result = read_oracle(oracle, stem)
    assert result is not None
    return result


# ---------------------------------------------------------------- reference + report

@dataclasses.dataclass
class Row:
    compiled: str
    bpftool: str
    detail: str = ""


def load_reference(path: Path) -> dict[str, Row]:
    """Reference TSV rows, with verdicts reduced to the manifest's categories."""
    rows: dict[str, Row] = {}
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    for line in lines[1:]:
        source, compiled, bpftool = line.split("\t")[:3]
        comp = VERDICT_FAIL if compiled.startswith("fail") else compiled
        if bpftool == "ok" or bpftool == "n/a":
            bt = bpftool
        elif bpftool.startswith("fail: bpftool crashed"):
            bt = "crash"
        else:
            bt = "fail"
        rows[source] = Row(comp, bt)
    return rows


def print_counts(title: str, keys: Iterable[str], ours: Counter[str], ref: Counter[str]) -> None:
    print("%-22s %6s %6s" % (title, "ours", "tsv"))
    for k in keys:
        mark = "" if ours[k] == ref[k] else "  <-"
        print("  %-20s %6d %6d%s" % (k, ours[k], ref[k], mark))


def report(results: dict[str, Row], reference: dict[str, Row]) -> bool:
    """Print the comparison; return True if the corpus is not smaller than the reference."""
    ref = {s: r for s, r in reference.items() if s in results}
    print_counts("compiled", COMPILE_VERDICTS, Counter(r.compiled for r in results.values()),
                 Counter(r.compiled for r in ref.values()))
    print_counts("bpftool", BPFTOOL_VERDICTS, Counter(r.bpftool for r in results.values()),
                 Counter(r.bpftool for r in ref.values()))
    missing = sorted(set(results) - set(reference))
    if missing:
        print("not in the TSV: {}".format(" ".join(missing)))
    disagree = [s for s in sorted(ref) if (results[s].compiled, results[s].bpftool)
                != (ref[s].compiled, ref[s].bpftool)]
    print("disagreements with the TSV: %d" % len(disagree))
    for s in disagree:
        r = results[s]
        print("  %-40s ours %s/%s, tsv %s/%s%s" % (s, r.compiled, r.bpftool, ref[s].compiled,
                                                  ref[s].bpftool, f"  ({r.detail})" if r.detail else ""))
    n_comp = sum(r.compiled != VERDICT_FAIL for r in results.values())
    n_ref_comp = sum(r.compiled != VERDICT_FAIL for r in ref.values())
    n_ok = sum(r.bpftool == "ok" for r in results.values())
    n_ref_ok = sum(r.bpftool == "ok" for r in ref.values())
    good = n_comp >= n_ref_comp and n_ok >= n_ref_ok
    print("compiled %d (tsv %d), bpftool ok %d (tsv %d): %s" % (
        n_comp, n_ref_comp, n_ok, n_ref_ok, "OK" if good else "FEWER THAN THE TSV"))
    return good


# ---------------------------------------------------------------- main

def normalize_name(name: str) -> str:
    base = os.path.basename(name)
    for suffix in (".bpf.o", ".c"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
    return base + ".c"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", "-j", type=int, default=2, help="parallel jobs (default 2)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only these sources (NAME, NAME.c or NAME.bpf.o)")
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("BPFGEN_CACHE") or "~/.cache/bpfgen"),
                    help="cache root (default $BPFGEN_CACHE, else ~/.cache/bpfgen)")
    return ap.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    cache: Path = args.cache.expanduser().resolve()
    (cache / "src").mkdir(parents=True, exist_ok=True)

    tree = extract_sources(cache)
    key, inputs = cache_key()
    keydir = cache / "selftests" / key
    objdir, oracle, logdir = keydir / "obj", keydir / "oracle", keydir / "log"
    for d in (objdir, oracle, logdir):
        d.mkdir(parents=True, exist_ok=True)
    write_atomic(keydir / "inputs.json", json.dumps(inputs, indent=2) + "\n")
    write_atomic(keydir / "host.json", json.dumps({
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "possible_cpus": possible_cpus(),
        "bpftool": inputs["bpftool"],
        "clang": inputs["clang"],
        "kernel": os.uname().release,
    }, indent=2) + "\n")

    inc = prepare_includes(tree, keydir)
    base = base_cflags(tree, inc)
    selftests = tree / SELFTESTS_REL
    extra_flags = per_file_cflags((selftests / "Makefile").read_text())
    sources = sorted(p.name for p in (selftests / "progs").glob("*.c"))
    if args.only:
        wanted = {normalize_name(n) for n in args.only}
        unknown = sorted(wanted - set(sources))
        if unknown:
            log("no such source: {}".format(" ".join(unknown)))
            return 2
        sources = [s for s in sources if s in wanted]
    log("%s: %d sources, %d jobs" % (keydir, len(sources), args.jobs))

    results: dict[str, Row] = {}

    def work(source: str) -> tuple[str, Row]:
        c = compile_one(source, selftests, objdir, logdir, base, extra_flags.get(source, []))
        if c.verdict == VERDICT_FAIL:
            return source, Row(c.verdict, "n/a", c.detail)
        o = run_oracle(source[:-2], objdir, oracle)
        return source, Row(c.verdict, o.verdict, o.detail)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for i, fut in enumerate(concurrent.futures.as_completed(
                [pool.submit(work, s) for s in sources]), 1):
            source, row = fut.result()
            results[source] = row
            if i % 50 == 0 or i == len(sources):
                log("  %d/%d done (%.0fs)" % (i, len(sources), time.monotonic() - t0))

    # The manifest covers every source with a cached result, not just this run's.
    manifest = dict(results)
    for record in sorted(logdir.glob("*.json")):
        source = record.stem + ".c"
        if source not in manifest:
            c = CompileResult(**json.loads(record.read_text()))
            o = read_oracle(oracle, record.stem + ".bpf") if c.verdict != VERDICT_FAIL else None
            manifest[source] = Row(c.verdict, o.verdict if o else "n/a",
                                   c.detail if c.verdict == VERDICT_FAIL else (o.detail if o else ""))
    write_atomic(keydir / "manifest.tsv", "source\tcompiled\tbpftool\tdetail\n" + "".join(
        "{}\t{}\t{}\t{}\n".format(s, r.compiled, r.bpftool, r.detail.replace("\t", " "))
        for s, r in sorted(manifest.items())))

    good = report(results, load_reference(REFERENCE_TSV))
    print("time: %.1fs" % (time.monotonic() - t0))
    print(keydir)
    return 0 if good else CORPUS_SHRANK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
