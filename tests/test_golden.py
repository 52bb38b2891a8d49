"""Our loader blobs against bpftool 7.5.0's (golden/), fixture by fixture."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject
from support import (
    DIVERGENT,
    GOLDEN,
    GOLDEN_NAMES,
    OBJ_NAMES,
    compat,
    first_diff,
    golden_blobs,
    golden_meta,
    map_ident,
    obj_path,
)

EXACT = [n for n in GOLDEN_NAMES if n not in DIVERGENT]


def test_every_fixture_object_has_goldens() -> None:
    assert GOLDEN_NAMES, "no goldens found"
    rejected = json.loads((GOLDEN / "failures.json").read_text())
    assert set(GOLDEN_NAMES) | set(rejected) == set(OBJ_NAMES)


@pytest.mark.parametrize("name", EXACT)
def test_blobs_are_byte_identical_to_bpftool(name: str, host: dict[str, Any]) -> None:
    loader = bpfgen_fast.gen_loader(obj_path(name), **host)
    data, insns = golden_blobs(name)
    assert len(loader.data) == len(data), f"data size {len(loader.data)} != {len(data)}"
    assert loader.data == data, f"data differs first at byte {first_diff(loader.data, data)}"
    assert len(loader.insns) == len(insns), (
        f"insn count {len(loader.insns) // 8} != {len(insns) // 8}")
    assert loader.insns == insns, (
        f"insns differ first at insn {first_diff(loader.insns, insns) // 8}")  # type: ignore[operator]


def _insn(blob: bytes, i: int) -> tuple[int, int, int, int]:
    code, regs, off, imm = struct.unpack_from("<BBhi", blob, 8 * i)
    return code, regs, off, imm


def test_autoload_question_diverges_only_in_prog_fd_slots(host: dict[str, Any]) -> None:
    """Documented divergence: bpftool stores each loaded prog fd at the loaded-program
    index, we store it in the program's own slot. Same data, same instruction count,
    and the instructions differ only in the ctx offsets of the prog_fd stores."""
    name = "autoload_question.bpf"
    obj = BpfObject.open(obj_path(name))
    loader = obj.gen_loader(**host)
    data, insns = golden_blobs(name)
    assert loader.data == data
    assert loader.insns != insns
    assert len(loader.insns) == len(insns)

    # bpf_prog_desc slots in the ctx: 24 + 16 * nr_maps + 4 * slot
    base = 24 + 16 * len(obj.maps)
    autoloaded = [i for i, p in enumerate(obj.programs.values()) if p.autoload]
    assert autoloaded == [0, 2]
    diffs = [i for i in range(len(insns) // 8) if _insn(loader.insns, i) != _insn(insns, i)]
    assert diffs, "expected differing instructions"
    ours_offs, theirs_offs = [], []
    for i in diffs:
        ours, theirs = _insn(loader.insns, i), _insn(insns, i)
        # same opcode and registers, different offset field: a store into another slot
        assert ours[:2] == theirs[:2] and ours[3] == theirs[3], (i, ours, theirs)
        ours_offs.append(ours[2])
        theirs_offs.append(theirs[2])
    # ours: slots 0 and 2 (own index); bpftool: slots 0 and 1 (loaded-program index)
    assert sorted(set(ours_offs)) == [base + 4 * 2]
    assert sorted(set(theirs_offs)) == [base + 4 * 1]


@pytest.mark.parametrize("name", sorted(DIVERGENT))
def test_divergent_fixtures_match_bpftool_with_its_behaviour(
        name: str, host: dict[str, Any]) -> None:
    """Each documented divergence is the only difference: with the test-only options
    that restore bpftool's behaviour the blobs are byte-identical, without them not."""
    obj = BpfObject.open(obj_path(name))
    compat_loader = obj.gen_loader(**host, **compat(name))
    assert (compat_loader.data, compat_loader.insns) == golden_blobs(name)
    default = obj.gen_loader(**host)
    assert (default.data, default.insns) != golden_blobs(name)


def test_flavoured_kfunc_is_looked_up_without_its_suffix(host: dict[str, Any]) -> None:
    """libbpf 1.5's gen mode searches kernel BTF for `bpf_task_acquire___flav` (never
    found); we search `bpf_task_acquire`, as libbpf's normal loader does."""
    obj = BpfObject.open(obj_path("ksym_kfunc.bpf"))
    ours = obj.gen_loader(**host).data
    theirs = golden_blobs("ksym_kfunc.bpf")[0]
    # Both blobs hold the BTF, whose string table names both once; every other
    # occurrence is a run-time lookup string.
    flav, plain = b"bpf_task_acquire___flav\0", b"bpf_task_acquire\0"
    assert theirs.count(flav) >= 2
    assert ours.count(flav) == 1
    assert ours.count(plain) > theirs.count(plain)


def test_autoload_question_with_bpftool_slots_is_byte_identical(host: dict[str, Any]) -> None:
    """The test-only option reproduces bpftool's slot numbering exactly."""
    obj = BpfObject.open(obj_path("autoload_question.bpf"))
    try:
        loader = obj.gen_loader(**host, _bpftool_prog_slots=True)
    except TypeError as e:
        pytest.skip(f"test-only option _bpftool_prog_slots not in this build: {e}")
    assert (loader.data, loader.insns) == golden_blobs("autoload_question.bpf")


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_generation_is_deterministic(name: str, host: dict[str, Any]) -> None:
    obj = BpfObject.open(obj_path(name))
    first = obj.gen_loader(**host)
    second = obj.gen_loader(**host)
    third = BpfObject.open(obj_path(name).read_bytes(), obj.name).gen_loader(**host)
    assert (first.data, first.insns) == (second.data, second.insns)
    assert (first.data, first.insns) == (third.data, third.insns)
    assert first.map_names == third.map_names and first.prog_names == third.prog_names


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_ctx_size_matches_header_layout(name: str, host: dict[str, Any]) -> None:
    meta = golden_meta(name)
    loader = bpfgen_fast.gen_loader(obj_path(name), **host)
    assert loader.ctx_size == 24 + 16 * int(str(meta["maps"])) + 4 * int(str(meta["progs"]))
    assert len(loader.map_names) == meta["maps"]
    assert len(loader.prog_names) == meta["progs"]


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_map_and_prog_order_matches_header_descriptors(name: str, host: dict[str, Any]) -> None:
    meta = golden_meta(name)
    obj = BpfObject.open(obj_path(name))
    loader = obj.gen_loader(**host)
    assert loader.prog_names == tuple(meta["prog_fields"])  # type: ignore[arg-type]
    assert loader.prog_names == tuple(obj.programs)
    assert loader.map_names == tuple(obj.maps)
    idents = [map_ident(m.name, m.section, m.internal) for m in obj.maps.values()]
    assert idents == meta["map_fields"]
    assert [m.ident for m in obj.maps.values()] == meta["map_fields"]  # the core's, exposed


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_header_descriptor_fields_agree_with_json(name: str) -> None:
    """Guards the golden metadata itself: NAME.json was counted from NAME.lskel.h."""
    header = (GOLDEN / f"{name}.lskel.h").read_text()
    meta = golden_meta(name)
    assert re.findall(r"^\t\tstruct bpf_map_desc (\w+);$", header, re.M) == meta["map_fields"]
    assert re.findall(r"^\t\tstruct bpf_prog_desc (\w+);$", header, re.M) == meta["prog_fields"]


def test_host_facts_change_the_output() -> None:
    """ringbuf rounding and PERF_EVENT_ARRAY sizing depend on page size / CPU count."""
    path = obj_path("maps_ringbuf_perf.bpf")
    base = bpfgen_fast.gen_loader(path, page_size=4096, possible_cpus=2)
    assert bpfgen_fast.gen_loader(path, page_size=65536, possible_cpus=2).data != base.data
    assert bpfgen_fast.gen_loader(path, page_size=4096, possible_cpus=8).data != base.data
    # an object with neither a ringbuf nor a perf array does not care
    minimal = obj_path("minimal.bpf")
    a = bpfgen_fast.gen_loader(minimal, page_size=4096, possible_cpus=2)
    b = bpfgen_fast.gen_loader(minimal, page_size=65536, possible_cpus=64)
    assert (a.data, a.insns) == (b.data, b.insns)
