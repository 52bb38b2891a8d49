"""Shared constants and plain helpers for the Python test-suite (fixtures live in
conftest.py). Importable from the tests because pytest puts tests/ on sys.path."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import kcaps
from bpfgen_fast import BpfObject

TESTS = Path(__file__).resolve().parent
FIXDIR = TESTS / "fixtures"
OBJDIR = FIXDIR / "obj"
GOLDEN = FIXDIR / "golden"
BAD = FIXDIR / "bad"

#: the cache root (BPFGEN_CACHE moves it, e.g. to an empty directory for a fresh-machine run)
CACHE = Path(os.environ.get("BPFGEN_CACHE") or Path.home() / ".cache" / "bpfgen").expanduser()

#: where compiled header probes go (BPFGEN_BUILD_DIR moves it out of a read-only checkout,
#: as in the VM guests)
BUILD = Path(os.environ.get("BPFGEN_BUILD_DIR") or FIXDIR / "build")

def fixture_script(name: str) -> ModuleType:
    """tests/fixtures/NAME.py (make_golden, gen_many: scripts, not a package), imported once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FIXDIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


HOST: dict[str, object] = json.loads((GOLDEN / "host.json").read_text())
KERNEL: dict[str, dict[str, object]] = json.loads((GOLDEN / "kernel.json").read_text())

#: fixtures (``NAME.bpf``) that have bpftool goldens
GOLDEN_NAMES: list[str] = sorted(
    p.name[: -len(".data.bin")] for p in GOLDEN.glob("*.data.bin")
)
#: every committed fixture object
OBJ_NAMES: list[str] = sorted(p.name[: -len(".o")] for p in OBJDIR.glob("*.o"))
#: fixtures whose blobs differ from bpftool's on purpose (README: divergences), and the
#: test-only options that restore bpftool 7.5.0's bytes for them
DIVERGENT: dict[str, dict[str, bool]] = {
    "autoload_question.bpf": {"_bpftool_prog_slots": True},  # ?-program fd slots
    "ksym_kfunc.bpf": {"_bpftool_ksym_names": True},  # ___flavour kfunc lookups
}


def compat(name: str) -> dict[str, bool]:
    """Options that make our output for fixture ``name`` bpftool's, byte for byte."""
    return DIVERGENT.get(name, {})


#: fixtures whose loaders fail in every kernel, for reasons of their own (golden/kernel.json
#: holds the failure): a zero-sized global section's BTF, a typed ksym this kernel lacks
KERNEL_REJECTS = ["global_data_zero_size.bpf", "ksym_var.bpf"]
#: fixtures meant to load wherever the kernel has the capabilities they use
LOADABLE = [n for n in OBJ_NAMES if n in KERNEL and n not in KERNEL_REJECTS]


def require(*caps: str) -> None:
    """Skips the calling test unless the kernel has ``caps`` and the capabilities every
    loader run needs (tests/kcaps.py), naming the first one missing (conftest.py counts
    the skip in BPFGEN_SKIP_LOG from the test's report)."""
    import pytest

    gone = kcaps.missing([*kcaps.BASE, *caps])
    if gone:
        more = f" (and {len(gone) - 1} more)" if len(gone) > 1 else ""
        pytest.skip(gone[0].reason + more)


def object_caps(obj: BpfObject) -> list[str]:
    """The capabilities loading ``obj`` needs beyond the BASE ones."""
    return kcaps.object_caps((m.type for m in obj.maps.values()),
                             ((p.type, p.expected_attach_type)
                              for p in obj.programs.values() if p.autoload))


def loadable(source: Path | bytes | BpfObject, name: str | None = None) -> BpfObject:
    """The object at ``source`` (opened), after skipping the calling test unless the
    kernel has every capability its load needs."""
    obj = source if isinstance(source, BpfObject) else BpfObject.open(source, name)
    require(*object_caps(obj))
    return obj


def host_facts() -> dict[str, object]:
    """Host facts the goldens were made with, as keyword arguments of gen_loader:
    page size, possible CPUs and, where host.json records them, the kernel version and
    the kconfig / kallsyms copies in golden/host-inputs/."""
    facts: dict[str, object] = {"page_size": int(str(HOST["page_size"])),
                                "possible_cpus": int(str(HOST["possible_cpus"]))}
    if "kernel_version" in HOST:
        facts["kernel_version"] = int(str(HOST["kernel_version"]))
    inputs = HOST.get("host_inputs") or {}
    assert isinstance(inputs, dict)
    if "kconfig" in inputs:
        facts["kconfig_file"] = GOLDEN / inputs["kconfig"]
    if "kallsyms" in inputs:
        facts["kallsyms_file"] = GOLDEN / inputs["kallsyms"]
    return facts


def corpus_obj_dir() -> Path | None:
    """The compiled kernel selftests (scripts/selftests/build_corpus.py's cache), or
    BPFGEN_SELFTESTS_OBJ; None when there is none."""
    env = os.environ.get("BPFGEN_SELFTESTS_OBJ")
    if env:
        return Path(env)
    base = CACHE / "selftests"
    found = sorted(d / "obj" for d in base.glob("*") if (d / "obj").is_dir())
    return found[0] if found else None


def corpus_obj(name: str) -> Path:
    """A compiled selftests object; skips the calling test when there is none."""
    import pytest

    corpus = corpus_obj_dir()
    if corpus is None:
        pytest.skip("no kernel selftests corpus cache (scripts/selftests)")
    path = corpus / name
    if not path.is_file():
        pytest.skip(f"{name} not in the selftests corpus at {corpus}")
    return path


def obj_path(name: str) -> Path:
    return OBJDIR / f"{name}.o"


def golden_meta(name: str) -> dict[str, object]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def golden_blobs(name: str) -> tuple[bytes, bytes]:
    return ((GOLDEN / f"{name}.data.bin").read_bytes(),
            (GOLDEN / f"{name}.insns.bin").read_bytes())


#: the native executable the set-up installs beside this interpreter (cli/, its own wheel)
NATIVE_CLI = Path(sys.executable).parent / "bpfgen-fast"
#: which entry point cli_argv() names: "python" (python -m bpfgen_fast) or "native";
#: conftest.py's cli_entry fixture runs a test with each
CLI_ENTRY = {"current": "python"}


def cli_argv() -> list[str]:
    """The command that starts the command line under test."""
    if CLI_ENTRY["current"] == "native":
        return [str(NATIVE_CLI)]
    return [sys.executable, "-m", "bpfgen_fast"]


def run_cli(*args: str, cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command line (cli_argv()) with ARGS."""
    return subprocess.run([*cli_argv(), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


def map_ident(name: str, section: str, internal: bool) -> str:
    """The member name bpftool gives a map in ``struct { struct bpf_map_desc ... } maps``
    (gen.c get_map_ident: internal maps lose the object prefix and are sanitized;
    libbpf 1.5 hands bpftool the full section name for custom sections; the
    ``.kconfig`` map has no section of its own, so fall back to the map name)."""
    if not internal:
        return name
    for where in (section, name):
        for sfx in (".data", ".rodata", ".bss", ".kconfig"):
            at = where.find(sfx)
            if at >= 0:
                return "".join(c if c.isalnum() or c == "_" else "_" for c in where[at + 1:])
    raise AssertionError(f"internal map {name!r} in unexpected section {section!r}")


def first_diff(a: bytes, b: bytes) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
