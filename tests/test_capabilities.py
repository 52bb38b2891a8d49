"""Probes never hide real failures.

For every kernel capability this kernel has (tests/kcaps.py), a test that depends on it
is run in a pytest child on deliberately broken output: tests/conftest.py's
BPFGEN_TEST_BREAK changes one byte of a name in the loader's data blob, a flaw the kernel
accepts. The child must fail (not skip), on an assertion that shows the broken name, not
on a kernel errno. Where the capability is absent, its check skips, naming it.

The probes themselves are checked against the kernel's word too: a present capability's
probe must agree with a real load that needs it (the dependent test passing unbroken is
part of the ordinary suite)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import kcaps
import pytest
from bpfgen_fast import BpfObject
from support import GOLDEN_NAMES, KERNEL_REJECTS, obj_path, object_caps

TESTS = Path(__file__).resolve().parent


def _broken(text: str) -> str:
    return ("Q" if text[:1] != "Q" else "Z") + text[1:]


@functools.cache
def _dependents() -> dict[str, tuple[str, str, str]]:
    """capability -> (pytest node id, object name, name to break) of a test that needs
    it: the first fixture of test_kernel's load test whose load needs the capability,
    breaking the name of a map or program of that kind (any program, for BASE)."""
    out: dict[str, tuple[str, str, str]] = {}
    node = "tests/test_kernel.py::test_our_blobs_load_like_bpftools[{}]"
    for fixture in GOLDEN_NAMES:
        if fixture in KERNEL_REJECTS:
            continue
        obj = BpfObject.open(obj_path(fixture))
        progs = [p for p in obj.programs.values() if p.autoload]
        for cap in (*kcaps.BASE, *object_caps(obj)):
            if cap in out:
                continue
            if cap.startswith("map:"):
                names = [n for n, m in obj.maps.items()
                         if f"map:{m.type}" == cap and not m.internal]
            elif cap.startswith("prog:"):
                names = [p.name for p in progs
                         if cap in kcaps.object_caps([], [(p.type, p.expected_attach_type)])]
            else:
                names = [p.name for p in progs]
            if names:
                out[cap] = (node.format(fixture), obj.name, names[0][:15])
    out["map:arena"] = ("tests/test_arena_run.py::test_globals_are_copied_into_the_mapped_arena",
                        "arena_globals_bpf", "arena")
    out["struct_ops"] = ("tests/test_struct_ops_run.py::test_run_fixture_struct_ops",
                         "struct_ops_cc_bpf", "bpfgen_cc_link")
    # no fixture's loader is long enough for gotol: the generated 1,000-program object's is
    out["gotol"] = ("tests/test_beyond.py::test_long_loader_runs[1000]", "many_p1000_m1_k_bpf",
                    "p999")
    return out


@functools.cache
def _run_broken(node: str, target: str, text: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BPFGEN_TEST_BREAK=f"{target}:{text}")
    env.pop("BPFGEN_SKIP_LOG", None)  # the child's skips are not the suite's
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", "--tb=short", node], cwd=TESTS.parent, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("cap", list(kcaps.PROBES))
def test_probe_does_not_hide_broken_output(cap: str) -> None:
    gone = kcaps.missing([*kcaps.BASE, cap])
    if gone:
        pytest.skip(gone[0].reason)
    dependent = _dependents().get(cap)
    if dependent is None:
        pytest.skip(f"no pytest test depends on {cap} (the selftests differential's "
                    "corpus objects do)")
    node, target, text = dependent
    p = _run_broken(node, target, text)
    out = p.stdout + p.stderr
    assert p.returncode == 1 and "1 failed" in out, out[-3000:]
    assert f"BPFGEN_TEST_BREAK: {target} data[" in out, out[-3000:]
    assert _broken(text) in out, out[-3000:]  # the assertion shows the broken name
    assert "Errno" not in out and "LoadError" not in out, out[-3000:]


def test_every_capability_a_fixture_needs_has_a_probe() -> None:
    """object_caps() only names probed capabilities, and every fixture-used one has a
    dependent test above."""
    for fixture in GOLDEN_NAMES:
        for cap in object_caps(BpfObject.open(obj_path(fixture))):
            assert cap in kcaps.PROBES
            assert cap in _dependents(), (fixture, cap)


def test_deny_forces_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFGEN_TEST_DENY", "map:arena,prog:xdp")
    monkeypatch.setattr(kcaps, "_cache", None)
    try:
        gone = {c.name: c for c in kcaps.missing(["map:arena", "prog:xdp", "map:hash"])}
        assert gone["map:arena"].reason == "BPF_MAP_TYPE_ARENA: denied by BPFGEN_TEST_DENY"
        assert gone["prog:xdp"].reason == "BPF_PROG_TYPE_XDP: denied by BPFGEN_TEST_DENY"
        assert ("map:hash" in gone) == (not kcaps.probe_all()["map:hash"].present)
    finally:
        monkeypatch.setattr(kcaps, "_cache", None)
