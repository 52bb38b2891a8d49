"""Session fixtures: golden host facts, the lskel-run tool (compiled once into a cache
keyed by its source hash) and a bpf() availability probe."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from support import host_facts

# shared/ sits beside the repository (override with BPFGEN_SHARED)
REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BPFGEN_SHARED", REPO.parent / "shared"))
LSKEL_RUN_SRC = Path(os.environ.get("LSKEL_RUN_SRC", SHARED / "tools" / "lskel-run.c"))
TOOL_CACHE = Path(os.environ.get("BPFGEN_TOOL_CACHE", "~/.cache/bpfgen/tools")).expanduser()
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}


@pytest.fixture(scope="session")
def host() -> dict[str, Any]:
    """page_size / possible_cpus the goldens were made with (golden/host.json)."""
    return host_facts()


@pytest.fixture(scope="session")
def lskel_run() -> Path:
    """Path of a compiled lskel-run, built with gcc into TOOL_CACHE/lskel-run-HASH."""
    if not LSKEL_RUN_SRC.is_file():
        pytest.skip(f"lskel-run source not found at {LSKEL_RUN_SRC}")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot build lskel-run")
    source = LSKEL_RUN_SRC.read_bytes()
    flags = ["-O2", "-Wall"]
    key = hashlib.sha256(source + "\0".join(flags).encode()).hexdigest()[:16]
    exe = TOOL_CACHE / f"lskel-run-{key}"
    if os.access(exe, os.X_OK):
        return exe
    TOOL_CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lskel-run.", dir=TOOL_CACHE)
    os.close(fd)
    try:
        p = subprocess.run([gcc, *flags, "-o", tmp, str(LSKEL_RUN_SRC)],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            pytest.skip(f"cannot compile lskel-run (missing libbpf headers?): "
                        f"{p.stderr.strip()[-500:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)  # atomic: concurrent sessions never run a half-written file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe


def _probe_bpf() -> str | None:
    """None if bpf(BPF_MAP_CREATE) works here, else why not."""
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        return f"no bpf() syscall number known for {platform.machine()}"
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("<IIII", 2, 4, 4, 1), 128)  # ARRAY 4/4/1
    fd = libc.syscall(nr, 0, attr, len(attr))  # BPF_MAP_CREATE
    if fd < 0:
        err = ctypes.get_errno()
        return f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"
    os.close(fd)
    return None


@pytest.fixture(scope="session")
def bpf_permitted() -> None:
    """Skips unless we are root and bpf() accepts a map creation."""
    if os.geteuid() != 0:
        pytest.skip("bpf() not permitted: not running as root")
    why = _probe_bpf()
    if why is not None:
        pytest.skip(f"bpf() not permitted: BPF_MAP_CREATE failed with {why}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "corpus: whole-corpus runs (kernel selftests); deselect with -m 'not corpus'"
    )
