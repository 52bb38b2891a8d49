"""Session fixtures: golden host facts, the lskel-run tool (compiled once into a cache
keyed by its source hash) and the kernel-capability gates of tests/kcaps.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kcaps
import pytest
import support
from bpfgen_fast import BpfObject, Loader
from support import CACHE, host_facts, require

# shared/ sits beside the repository (override with BPFGEN_SHARED)
REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BPFGEN_SHARED", REPO.parent / "shared"))
LSKEL_RUN_SRC = Path(os.environ.get("LSKEL_RUN_SRC", SHARED / "tools" / "lskel-run.c"))
#: our own runner: a loader, one program attached and triggered, one map read back
LSKEL_TRIGGER_SRC = REPO / "tests" / "tools" / "lskel-trigger.c"
TOOL_CACHE = Path(os.environ.get("BPFGEN_TOOL_CACHE", CACHE / "tools"))


@pytest.fixture(scope="session")
def host() -> dict[str, Any]:
    """page_size / possible_cpus the goldens were made with (golden/host.json)."""
    return host_facts()


def _build_lskel_run(cc: str, flags: list[str], stem: str, src: Path = LSKEL_RUN_SRC) -> Path:
    """A runner (lskel-run by default) compiled by ``cc`` with ``flags`` into
    TOOL_CACHE/STEM-HASH (the hash of the source, the compiler and the flags), once."""
    if not src.is_file():
        pytest.skip(f"{src.name} source not found at {src}")
    source = src.read_bytes()
    key = hashlib.sha256(source + "\0".join([cc, *flags]).encode()).hexdigest()[:16]
    exe = TOOL_CACHE / f"{stem}-{key}"
    if os.access(exe, os.X_OK):
        return exe
    TOOL_CACHE.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", dir=TOOL_CACHE)
    os.close(fd)
    try:
        p = subprocess.run([cc, *flags, "-o", tmp, str(src)],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            pytest.skip(f"cannot compile {stem} (missing libbpf headers?): "
                        f"{p.stderr.strip()[-500:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)  # atomic: concurrent sessions never run a half-written file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe


@pytest.fixture
def no_leaked_fds() -> Iterator[None]:
    """Fails a test that leaves file descriptors open (maps, programs, links)."""
    before = set(os.listdir("/proc/self/fd"))
    yield
    after = set(os.listdir("/proc/self/fd"))
    leaked = {fd for fd in after - before if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, f"fds leaked: {leaked}"


@pytest.fixture(scope="session")
def bpftool() -> str:
    """bpftool 7.5.0, the oracle (BPFTOOL overrides the one on PATH)."""
    path = shutil.which(os.environ.get("BPFTOOL", "bpftool"))
    if path is None:
        pytest.skip("bpftool not found: bpftool's side cannot be shown")
    return path


@pytest.fixture(scope="session")
def gcc() -> str:
    path = shutil.which("gcc")
    if path is None:
        pytest.skip("gcc not found: headers and lskel-run cannot be compiled")
    return path


@pytest.fixture(scope="session")
def lskel_run(gcc: str) -> Path:
    """Path of a compiled lskel-run, built with gcc into TOOL_CACHE/lskel-run-HASH."""
    return _build_lskel_run(gcc, ["-O2", "-Wall"], "lskel-run")


@pytest.fixture(scope="session")
def lskel_run_s390x() -> Path:
    """lskel-run for the s390x guest: static (its initramfs has no C library),
    against this host's libbpf skel_internal.h and the cross compiler's own kernel
    headers. scripts/kernels.sh installs the cross compiler with the s390x kernel, so
    a missing one is a failed set-up, not a reason to skip."""
    cc = shutil.which("s390x-linux-gnu-gcc")
    assert cc is not None, "s390x-linux-gnu-gcc missing: scripts/kernels.sh installs it"
    include = TOOL_CACHE / "s390x-include"  # only bpf/: the host's other headers are amd64's
    include.mkdir(parents=True, exist_ok=True)
    if not (include / "bpf").is_symlink():
        (include / "bpf").symlink_to("/usr/include/bpf")
    return _build_lskel_run(cc, ["-static", "-O2", "-Wall", "-I", str(include)],
                            "lskel-run-s390x")


@pytest.fixture(scope="session")
def lskel_trigger_s390x(lskel_run_s390x: Path) -> Path:
    """tests/tools/lskel-trigger.c for the s390x guest, built as lskel_run_s390x is."""
    cc = shutil.which("s390x-linux-gnu-gcc")
    assert cc is not None, "s390x-linux-gnu-gcc missing: scripts/kernels.sh installs it"
    include = TOOL_CACHE / "s390x-include"  # made by lskel_run_s390x
    return _build_lskel_run(cc, ["-static", "-O2", "-Wall", "-I", str(include)],
                            "lskel-trigger-s390x", LSKEL_TRIGGER_SRC)


@pytest.fixture(params=["python", "native"])
def cli_entry(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once through ``python -m bpfgen_fast`` and once through the native
    ``bpfgen-fast`` the set-up installs (which must be an ELF executable)."""
    if request.param == "native":
        with open(support.NATIVE_CLI, "rb") as f:
            assert f.read(4) == b"\x7fELF", f"{support.NATIVE_CLI} is not the native executable"
    support.CLI_ENTRY["current"] = request.param
    yield request.param
    support.CLI_ENTRY["current"] = "python"


@pytest.fixture(scope="session")
def bpf_permitted() -> None:
    """Skips unless the kernel has what every loader run needs (tests/kcaps.py BASE):
    root, bpf(), BTF load, a sleepable syscall program's test run, mmapable arrays."""
    require()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.kernel("map:arena", ...)``: skip unless the kernel has those
    capabilities (and the BASE ones), naming the first one missing."""
    for mark in item.iter_markers("kernel"):
        require(*mark.args)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Counts each test skipped for a missing capability in BPFGEN_SKIP_LOG, from its
    report: a session fixture's skip is raised once but reported for every test."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    for cap in kcaps.capabilities().values():
        if not cap.present and reason.startswith(cap.reason):
            kcaps.record_skip(cap, report.nodeid)
            return


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "corpus: whole-corpus runs (kernel selftests); deselect with -m 'not corpus'"
    )
    config.addinivalue_line(
        "markers", "kernel(*caps): needs these kernel capabilities (tests/kcaps.py names)"
    )


def _break_output(spec: str) -> None:
    """BPFGEN_TEST_BREAK=OBJECT:TEXT (tests/test_capabilities.py): every loader generated
    for the object named OBJECT gets the last NUL-delimited TEXT in its data blob (a map
    or program name in its create or load attributes, which follow the BTF strings)
    changed in its first byte, a flaw the kernel still accepts, so a test that depends
    on a capability can be seen to fail on broken output rather than skip."""
    target, _, text = spec.partition(":")
    old = text.encode() + b"\0"
    new = (b"Q" if old[:1] != b"Q" else b"Z") + old[1:]
    real = BpfObject.gen_loader

    def gen_loader(self: BpfObject, **host: Any) -> Loader:
        loader = real(self, **host)
        if self.name != target:
            return loader
        # the whole string, not a suffix of a longer one (a kfunc named
        # bpf_xdp_ct_lookup ends like a program named ct_lookup): in the attrs,
        # the byte before a name is the high byte of the field before it, 0
        at = loader.data.rfind(b"\0" + old) + 1
        assert at > 0, f"BPFGEN_TEST_BREAK: {text!r} not in {target}'s data blob"
        data = loader.data[:at] + new + loader.data[at + len(old):]
        print(f"BPFGEN_TEST_BREAK: {target} data[{at:#x}] {old[:1]!r} -> {new[:1]!r}")
        return loader.replace(data=data)

    BpfObject.gen_loader = gen_loader  # type: ignore[method-assign]


if os.environ.get("BPFGEN_TEST_BREAK"):
    _break_output(os.environ["BPFGEN_TEST_BREAK"])
