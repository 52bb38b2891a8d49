"""bpfgen_fast.gen_batch and ``bpfgen-fast batch``: input order, per-object
failures, atomic outputs, cancellation, progress, threads and fork."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import ElfError, UnsupportedError
from support import BAD, OBJ_NAMES, cli_argv, obj_path

GOOD = [obj_path(n) for n in OBJ_NAMES]
LEGACY = BAD / "legacy_maps.bpf.o"  # refused: legacy SEC("maps")


def default_name(path: Path) -> str:
    return bpfgen_fast._core.default_object_name(str(path))


def no_temporaries(d: Path) -> bool:
    return not [p for p in d.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


# --- the API ---------------------------------------------------------------


def test_results_in_input_order(host: dict[str, Any]) -> None:
    paths = list(reversed(GOOD)) + GOOD[:5]
    names = [f"o{i}" for i in range(len(paths))]
    res = bpfgen_fast.gen_batch(paths, jobs=2, names=names, **host)
    assert [r.path for r in res] == [str(p) for p in paths]
    assert [r.name for r in res] == names
    assert all(r.ok and r.header for r in res)
    # The same bytes as one object at a time, whatever the thread.
    for r, p in zip(res, paths):
        assert r.header == bpfgen_fast.gen_skeleton(p, r.name, **host)


def test_default_names_and_blobs_in_memory(host: dict[str, Any]) -> None:
    res = bpfgen_fast.gen_batch(GOOD, fmt="blobs", jobs=3, **host)
    for r, p in zip(res, GOOD):
        assert r.ok and r.name == default_name(p) and r.header is None
        want = bpfgen_fast.gen_loader(p, **host)
        assert r.loader is not None
        assert (r.loader.data, r.loader.insns) == (want.data, want.insns)
        assert (r.loader.map_names, r.loader.prog_names) == (want.map_names, want.prog_names)


def test_one_failure_never_stops_the_others(tmp_path: Path, host: dict[str, Any]) -> None:
    junk = tmp_path / "junk.bpf.o"
    junk.write_bytes(b"not an ELF file at all")
    missing = tmp_path / "missing.bpf.o"
    paths = [GOOD[0], junk, GOOD[1], missing, LEGACY, GOOD[2]]
    res = bpfgen_fast.gen_batch(paths, jobs=2, **host)
    assert [r.ok for r in res] == [True, False, True, False, False, True]
    assert isinstance(res[1].error, ElfError) and res[1].error.object == "junk_bpf"
    assert isinstance(res[3].error, FileNotFoundError) and res[3].error.filename == str(missing)
    assert isinstance(res[4].error, UnsupportedError) and "legacy" in str(res[4].error)
    for i in (0, 2, 5):
        assert res[i].header == bpfgen_fast.gen_skeleton(paths[i], **host)


def test_keep_going_false_skips_what_was_not_started(host: dict[str, Any]) -> None:
    paths = [GOOD[0], LEGACY, *GOOD[1:6]]
    res = bpfgen_fast.gen_batch(paths, jobs=1, keep_going=False, **host)
    assert res[0].ok
    assert isinstance(res[1].error, UnsupportedError)
    assert all(r.skipped and r.error is None and not r.ok for r in res[2:])


def test_out_dir_writes_atomically(tmp_path: Path, host: dict[str, Any]) -> None:
    out = tmp_path / "out" / "nested"  # created
    res = bpfgen_fast.gen_batch(GOOD, out_dir=out, jobs=2, **host)
    assert all(r.ok and r.header is None for r in res)
    for r, p in zip(res, GOOD):
        (f,) = r.outputs
        assert f == str(out / f"{r.name}.lskel.h")
        text = Path(f).read_text()
        assert text == bpfgen_fast.gen_skeleton(p, **host)
        assert r.sizes == (len(text.encode()),)
        assert oct(os.stat(f).st_mode & 0o777) == oct(0o644 & ~_umask())
    assert sorted(os.listdir(out)) == sorted(f"{default_name(p)}.lskel.h" for p in GOOD)
    # Rewriting replaces the files in place.
    bpfgen_fast.gen_batch(GOOD[:3], out_dir=out, **host)
    assert no_temporaries(out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_out_dir_blobs_match_loader_write(tmp_path: Path, host: dict[str, Any]) -> None:
    res = bpfgen_fast.gen_batch(GOOD, out_dir=tmp_path / "b", fmt="blobs", **host)
    for r, p in zip(res, GOOD):
        assert [Path(f).name for f in r.outputs] == [
            f"{r.name}.data.bin", f"{r.name}.insns.bin", f"{r.name}.json"]
        want = tmp_path / "want" / r.name
        want.parent.mkdir(exist_ok=True)
        bpfgen_fast.gen_loader(p, **host).write(want)
        for f in r.outputs:
            suffix = Path(f).name[len(r.name):]
            assert Path(f).read_bytes() == Path(str(want) + suffix).read_bytes(), f
        meta = json.loads(Path(r.outputs[2]).read_text())
        assert meta["data_size"] == r.sizes[0] and meta["insn_cnt"] * 8 == r.sizes[1]
    assert no_temporaries(tmp_path / "b")


def test_write_failure_is_per_object_and_leaves_nothing(tmp_path: Path,
                                                        host: dict[str, Any]) -> None:
    out = tmp_path / "o"
    blocked = default_name(GOOD[1])
    (out / f"{blocked}.lskel.h").mkdir(parents=True)  # rename onto a directory fails
    res = bpfgen_fast.gen_batch(GOOD[:3], out_dir=out, jobs=2, **host)
    assert res[0].ok and res[2].ok
    assert isinstance(res[1].error, OSError) and res[1].error.errno is not None
    assert no_temporaries(out)
    # blobs: all three files of an object or none of them
    (out / f"{blocked}.json").mkdir()
    res = bpfgen_fast.gen_batch(GOOD[:3], out_dir=out, fmt="blobs", **host)
    assert isinstance(res[1].error, OSError)
    assert not (out / f"{blocked}.data.bin").exists()
    assert not (out / f"{blocked}.insns.bin").exists()
    assert no_temporaries(out)


def test_duplicate_names_with_out_dir(tmp_path: Path, host: dict[str, Any]) -> None:
    res = bpfgen_fast.gen_batch([GOOD[0], GOOD[1], GOOD[0]], out_dir=tmp_path, **host)
    assert res[0].ok and res[1].ok
    assert isinstance(res[2].error, ValueError) and "duplicate" in str(res[2].error)
    # in memory, the same object twice is fine
    assert all(r.ok for r in bpfgen_fast.gen_batch([GOOD[0], GOOD[0]], **host))


def test_progress_reports_to_the_end(host: dict[str, Any]) -> None:
    seen: list[tuple[int, int]] = []
    bpfgen_fast.gen_batch(GOOD, jobs=2, progress=lambda d, t: seen.append((d, t)), **host)
    assert seen[-1] == (len(GOOD), len(GOOD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_exception_in_progress_cancels(tmp_path: Path, host: dict[str, Any]) -> None:
    def boom(done: int, total: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        bpfgen_fast.gen_batch(GOOD * 3, names=[f"n{i}" for i in range(3 * len(GOOD))],
                              out_dir=tmp_path, progress=boom, **host)
    assert no_temporaries(tmp_path)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="fmt"):
        bpfgen_fast.gen_batch(GOOD, fmt="header")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names"):
        bpfgen_fast.gen_batch(GOOD, names=["a"])
    with pytest.raises(ValueError, match="jobs"):
        bpfgen_fast.gen_batch(GOOD, jobs=0)
    assert bpfgen_fast.gen_batch([]) == []


def test_gil_is_released(tmp_path: Path) -> None:
    """Another Python thread runs while a batch works: the batch's only object is a
    FIFO that a Python thread of the same process writes, so with the GIL held the
    batch would wait forever (the child process is killed after 60 s, failing)."""
    fifo = tmp_path / "obj.bpf.o"
    os.mkfifo(fifo)
    script = f"""
import threading, bpfgen_fast
def feed():
    with open({str(fifo)!r}, "wb") as f:
        f.write(open({str(obj_path("minimal.bpf"))!r}, "rb").read())
t = threading.Thread(target=feed)
t.start()
(res,) = bpfgen_fast.gen_batch([{str(fifo)!r}], jobs=1)
t.join()
print("ok" if res.ok and res.header else res)
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.stdout.strip() == "ok", (p.stdout, p.stderr)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_batch_after_fork(host: dict[str, Any]) -> None:
    """Nothing (no pool, no thread) outlives a call: a forked child can batch."""
    assert all(r.ok for r in bpfgen_fast.gen_batch(GOOD, jobs=2, **host))
    pid = os.fork()
    if pid == 0:  # child: exit status says whether the batch worked
        try:
            res = bpfgen_fast.gen_batch(GOOD, jobs=2, **host)
            os._exit(0 if all(r.ok for r in res) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- the command line ------------------------------------------------------


def cli(*args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_argv(), *map(str, args)],
                          capture_output=True, text=True, timeout=120, **kw)


def host_opts(host: dict[str, Any]) -> list[str]:
    opts = ["--page-size", str(host["page_size"]), "--possible-cpus", str(host["possible_cpus"])]
    if "kernel_version" in host:
        v = int(host["kernel_version"])
        opts += ["--kernel-version", f"{v >> 16}.{(v >> 8) & 0xff}.{v & 0xff}"]
    for key, opt in (("kconfig_file", "--kconfig-file"), ("kallsyms_file", "--kallsyms-file")):
        if key in host:
            opts += [opt, str(host[key])]
    return opts


@pytest.mark.usefixtures("cli_entry")
def test_cli_batch(tmp_path: Path, host: dict[str, Any]) -> None:
    p = cli("batch", *GOOD, "--out-dir", tmp_path, "-j", "2", *host_opts(host))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"batch: {len(GOOD)} of {len(GOOD)} objects generated into ")
    assert "\r" not in p.stderr and "[#" not in p.stderr  # piped: no progress bar
    for g in GOOD:
        text = (tmp_path / f"{default_name(g)}.lskel.h").read_text()
        assert text == bpfgen_fast.gen_skeleton(g, **host)


@pytest.mark.usefixtures("cli_entry")
def test_cli_batch_failure_and_from_file(tmp_path: Path, host: dict[str, Any]) -> None:
    listing = tmp_path / "objs.txt"
    listing.write_text(f"# objects\n{GOOD[0]}\n\n{LEGACY}\n")
    p = cli("batch", GOOD[1], "--from", listing, "--out-dir", tmp_path / "o",
            "--format", "blobs", *host_opts(host))
    assert p.returncode == 1
    assert p.stderr.startswith("error: legacy_maps_bpf: ") and p.stderr.count("\n") == 1
    assert "2 of 3 objects generated" in p.stdout and "1 failed" in p.stdout
    assert (tmp_path / "o" / f"{default_name(GOOD[0])}.json").is_file()
    assert not list((tmp_path / "o").glob("legacy*"))


@pytest.mark.parametrize("args, message", [
    (["batch", "x.o"], "--out-dir"),
    (["batch", "--out-dir", "d"], "needs objects"),
    (["batch", "x.o", "--out-dir", "d", "--format", "c"], "--format"),
    (["batch", "x.o", "--out-dir", "d", "-j", "zero"], "number"),
])
@pytest.mark.usefixtures("cli_entry")
def test_cli_batch_usage(tmp_path: Path, args: list[str], message: str) -> None:
    p = cli(*args, cwd=tmp_path)
    assert p.returncode == 2 and message in p.stderr


@pytest.mark.usefixtures("cli_entry")
def test_cli_progress_on_a_terminal(tmp_path: Path, host: dict[str, Any]) -> None:
    """stderr a pseudo-terminal: the progress bar is drawn (and cleared)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*cli_argv(), "batch", *map(str, GOOD),
             "--out-dir", str(tmp_path), *host_opts(host)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0
    total = len(GOOD)
    assert f"] {total}/{total}".encode() in seen and b"\r[" in seen
    assert out.decode().startswith("batch: ")


def _fifo_writers(fifos: list[Path], payload: bytes) -> tuple[
        queue.Queue[int], list[threading.Event], list[threading.Thread]]:
    """One thread per FIFO: it opens the FIFO for writing, which returns only once a
    reader (a batch worker) has opened it, reports the FIFO's index, waits to be
    released, then writes ``payload`` and closes. A FIFO nobody reads is released
    by opening it for reading here (see _drain)."""
    opened: queue.Queue[int] = queue.Queue()
    release = [threading.Event() for _ in fifos]

    def write(i: int) -> None:
        with open(fifos[i], "wb") as f:
            opened.put(i)
            release[i].wait()
            with contextlib.suppress(BrokenPipeError):
                f.write(payload)

    threads = [threading.Thread(target=write, args=(i,), daemon=True)
               for i in range(len(fifos))]
    for t in threads:
        t.start()
    return opened, release, threads


def _drain(fifos: list[Path], release: list[threading.Event],
           threads: list[threading.Thread]) -> None:
    for i, t in enumerate(threads):
        release[i].set()
        if t.is_alive():  # still blocked in open(): give it a reader that leaves at once
            fd = os.open(fifos[i], os.O_RDONLY | os.O_NONBLOCK)
            t.join(timeout=30)
            os.close(fd)
        t.join(timeout=30)
        assert not t.is_alive()


@pytest.mark.usefixtures("cli_entry")
def test_cli_interrupt_leaves_no_partial_files(tmp_path: Path, host: dict[str, Any]) -> None:
    """SIGINT while both workers are inside an object: exit 130, the two running objects
    finish (complete files), nothing else starts, no temporary files. Deterministic:
    every object is a FIFO, so a worker blocks in it until this test writes the object;
    SIGINT goes out once both workers are blocked, and they are released only after the
    batch has announced that the cancellation is in force."""
    src = tmp_path / "src"
    src.mkdir()
    n = 8
    fifos = [src / f"m{i}.bpf.o" for i in range(n)]
    for f in fifos:
        os.mkfifo(f)
    target = obj_path("mixed_everything.bpf")
    opened, release, threads = _fifo_writers(fifos, target.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*cli_argv(), "batch", *map(str, fifos),
         "--out-dir", str(out), "-j", "2", *host_opts(host)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = {opened.get(timeout=60), opened.get(timeout=60)}  # both workers inside
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # until the batch says nothing new will start
            lines.append(line)
            if "interrupted" in line:
                break
        assert lines and "the rest are skipped" in lines[-1], lines
        for i in running:
            release[i].set()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _drain(fifos, release, threads)
    assert proc.returncode == 130, err
    assert "objects not started were skipped" in err
    names = sorted(os.listdir(out))
    assert names == sorted(f"m{i}_bpf.lskel.h" for i in running)  # no temporary files either
    for name in names:
        obj = name[: -len(".lskel.h")]
        assert (out / name).read_text() == bpfgen_fast.gen_skeleton(target, obj, **host)
