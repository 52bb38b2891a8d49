"""Every fixture the test kernel loads (golden/kernel.json "ok"): our light-skeleton
header, compiled with gcc against libbpf's skel_internal.h into a small program that
runs ``NAME__open_and_load()`` as root and prints every ``skel->maps.X.map_fd`` and
``skel->progs.Y.prog_fd`` with what the kernel reports for the fd. The program exits
nonzero when a map or an autoloaded program has no fd; the test then checks each map
against kernel.json (type, name, sizes, flags, slot by slot) and each program's fd
against its own program (kernel name, type), non-autoloaded programs having none.

Headers whose data-section structs name user types (struct / union / enum / typedef
from the object's BTF) get those definitions first, from bpftool's C dump of the
object's BTF (skel_c.type_prelude). Headers are compiled and run in parallel."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import skel_c
from bpfgen_fast import BpfObject
from support import BUILD, GOLDEN_NAMES, KERNEL, loadable, obj_path
from test_fixtures_ext import hermetic_args

LOADABLE = [n for n in GOLDEN_NAMES if KERNEL.get(n, {}).get("ok")]
PROBES = BUILD / "probes"


def _build_and_run(name: str) -> tuple[skel_c.Probe | None, str, str]:
    """(probe result or None, gcc stderr, header) for fixture ``name``."""
    obj = BpfObject.open(obj_path(name))
    header = obj.gen_skeleton(**hermetic_args(name))
    skel = skel_c.parse_header(header)
    required = {p for p in skel.progs if obj.programs[p].autoload}
    src = skel_c.probe_source("skel.lskel.h", skel, required_progs=required,
                              prelude=skel_c.type_prelude(obj_path(name), header))
    exe, err = skel_c.compile_c(src, header, PROBES)
    if exe is None:
        return None, err, header
    return skel_c.run_probe(exe), err, header


@pytest.fixture(scope="module")
def probes(bpf_permitted: None) -> dict[str, tuple[skel_c.Probe | None, str, str]]:
    for tool in ("gcc", "bpftool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: cannot compile the headers")
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 4)) as pool:
        return dict(zip(LOADABLE, pool.map(_build_and_run, LOADABLE)))


def test_every_loadable_fixture_is_covered() -> None:
    assert len(LOADABLE) >= 30, LOADABLE
    assert "skel_types.bpf" in LOADABLE and "kconfig.bpf" in LOADABLE


@pytest.mark.parametrize("name", LOADABLE)
def test_header_compiles_loads_and_fills_every_fd(
        name: str, probes: dict[str, tuple[skel_c.Probe | None, str, str]]) -> None:
    loadable(obj_path(name))
    probe, err, header = probes[name]
    assert probe is not None, f"{name}: header does not compile:\n{err[-3000:]}"
    assert probe.rc == 0, f"{name}: {probe}"
    skel = skel_c.parse_header(header)
    kernel: dict[str, Any] = KERNEL[name]

    assert list(probe.maps) == skel.maps
    assert len(skel.maps) == len(kernel["maps"])
    for ident, (ktype, kname), sizes in zip(skel.maps, kernel["maps"], kernel["map_sizes"]):
        got = probe.maps[ident]
        assert int(got["fd"]) > 0, (ident, got)
        assert (int(got["type"]), got["name"]) == (ktype, kname), (ident, got)
        assert [int(got["key"]), int(got["value"]), int(got["max_entries"]),
                int(got["flags"], 16)] == sizes, (ident, got)

    obj = BpfObject.open(obj_path(name))
    ktypes = {kname: ktype for ktype, kname in kernel["progs"] if kname is not None}
    assert list(probe.progs) == skel.progs == list(obj.programs)
    for ident, got in probe.progs.items():
        if obj.programs[ident].autoload:
            assert int(got["fd"]) > 0, (ident, got)
            assert got["name"] == ident[:15], (ident, got)  # its own program, not another's
            assert int(got["type"]) == ktypes[ident[:15]], (ident, got)
        else:
            assert got == {"fd": "0"}, (ident, got)
