"""Shared constants and plain helpers for the Python test-suite (fixtures live in
conftest.py). Importable from the tests because pytest puts tests/ on sys.path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FIXDIR = TESTS / "fixtures"
OBJDIR = FIXDIR / "obj"
GOLDEN = FIXDIR / "golden"
BAD = FIXDIR / "bad"

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
    base = Path.home() / ".cache" / "bpfgen" / "selftests"
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


def run_cli(*args: str, cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m bpfgen_fast ARGS`` with this interpreter."""
    return subprocess.run([sys.executable, "-m", "bpfgen_fast", *map(str, args)],
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
