"""The native ``bpfgen-fast`` (cli/, a wheel of its own): an ELF executable beside the
interpreter, which runs gen skeleton -L, gen loader, inspect, explain and batch without
any Python, and hands the commands that need Python libraries over to ``python3 -m
bpfgen_fast`` by exec. Outputs equal the Python facade's (the CLI tests run through
both entry points: conftest.py's cli_entry)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast.explain import explain
from support import NATIVE_CLI, OBJ_NAMES, obj_path

NO_PYTHON = {"PATH": "", "PYTHONHOME": "/nonexistent", "LC_ALL": "C"}


def native(*args: str | Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NATIVE_CLI), *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=cwd)


def test_installed_command_is_an_elf_executable() -> None:
    assert NATIVE_CLI.is_file() and os.access(NATIVE_CLI, os.X_OK)
    assert NATIVE_CLI.read_bytes()[:4] == b"\x7fELF"


def test_generation_commands_need_no_python(tmp_path: Path) -> None:
    """With no PATH and a PYTHONHOME that does not exist, a Python interpreter could not
    even start: every native command still works and writes the facade's bytes."""
    obj = obj_path("mixed_everything.bpf")
    host = ["--page-size", "4096", "--possible-cpus", "2"]
    p = native("gen", "skeleton", "-L", obj, *host, env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert p.stdout == bpfgen_fast.gen_skeleton(obj, page_size=4096, possible_cpus=2)

    p = native("gen", "loader", obj, "-o", tmp_path / "l", *host, env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    loader = bpfgen_fast.gen_loader(obj, page_size=4096, possible_cpus=2)
    written = loader.write(tmp_path / "py")
    for ext, theirs in zip((".data.bin", ".insns.bin", ".json"), written):
        assert (tmp_path / f"l{ext}").read_bytes() == theirs.read_bytes(), ext

    p = native("inspect", "--json", obj, env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert p.stdout == bpfgen_fast.BpfObject.open(obj)._core.inspect(json=True)

    p = native("batch", obj, obj_path("minimal.bpf"), "--out-dir", tmp_path / "b", *host,
               env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "b")) == ["minimal_bpf.lskel.h",
                                                  "mixed_everything_bpf.lskel.h"]

    p = native("explain", "--json", "--disasm", obj, *host, env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert p.stdout == explain(loader, disasm=True).to_json() + "\n"
    p = native("explain", tmp_path / "l", env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert p.stdout == explain(loader).to_text() + "\n"


@pytest.mark.parametrize("name", OBJ_NAMES)
@pytest.mark.parametrize("flags", [(), ("--json",), ("--disasm",)])
def test_explain_equals_the_facades(name: str, flags: tuple[str, ...]) -> None:
    """The native listing and document are the Python API's, byte for byte."""
    p = native("explain", obj_path(name), *flags, env=NO_PYTHON)
    e = explain(bpfgen_fast.BpfObject.open(obj_path(name)).gen_loader(),
                disasm="--disasm" in flags)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (e.to_json() if "--json" in flags else e.to_text()) + "\n"


def test_python_commands_are_handed_over_by_exec(tmp_path: Path) -> None:
    """run needs Python: the native command execs the python3 beside it, which parses
    the same line with the same grammar and reports (here) the missing object; without
    any python3 it says so."""
    p = native("run", tmp_path / "none.bpf.o")
    want = subprocess.run([sys.executable, "-m", "bpfgen_fast", "run",
                           str(tmp_path / "none.bpf.o")], capture_output=True, text=True)
    assert p.returncode == want.returncode == 1, p.stderr
    assert (p.stdout, p.stderr) == (want.stdout, want.stderr)


def test_handover_without_python_is_one_error_line(tmp_path: Path) -> None:
    """Copied where no python3 sits beside it and with PATH empty, run cannot
    continue: one error line, exit 1."""
    exe = tmp_path / "bpfgen-fast"
    exe.write_bytes(NATIVE_CLI.read_bytes())
    exe.chmod(0o755)
    p = subprocess.run([str(exe), "run", str(obj_path("minimal.bpf"))],
                       capture_output=True, text=True, env=NO_PYTHON, timeout=60)
    assert p.returncode == 1
    assert p.stderr == ("error: this command needs Python (bpfgen_fast's package): no python3 "
                        "beside bpfgen-fast or on PATH\n")


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_inspect_text_equals_the_facades(name: str) -> None:
    p = native("inspect", obj_path(name), env=NO_PYTHON)
    assert p.returncode == 0, p.stderr
    assert p.stdout == bpfgen_fast.BpfObject.open(obj_path(name))._core.inspect()
