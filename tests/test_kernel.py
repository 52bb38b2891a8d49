"""Run our loader blobs in the kernel through lskel-run (needs root and bpf()).

The oracle is bpftool's loader run in the same kernel (and golden/kernel.json, what the
same tool reported for it where it was made), cross-checked against the object facts
(BpfObject.maps / .programs). A fixture whose capabilities this kernel lacks
(tests/kcaps.py) is skipped with the capability's name."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpfgen_fast
import kcaps
import pytest
from bpfgen_fast import BpfObject, Loader
from support import GOLDEN, GOLDEN_NAMES, KERNEL, KERNEL_REJECTS, golden_meta, loadable, obj_path

pytestmark = pytest.mark.usefixtures("bpf_permitted")

# enum bpf_map_type / enum bpf_prog_type (uapi/linux/bpf.h), keyed by libbpf's spelling
MAP_TYPES = {name: value for value, name in enumerate(kcaps.MAP_TYPES)}
PROG_TYPES = {name: value for value, name in enumerate(kcaps.PROG_TYPES)}
BPF_F_RDONLY, BPF_F_WRONLY, BPF_F_RDONLY_PROG = 0x8, 0x10, 0x80

MAP_RE = re.compile(r"^map\[(\d+)\] fd=(-?\d+)(?: type=(\d+) name=(\S*) key=(\d+) value=(\d+) "
                    r"max_entries=(\d+) flags=0x([0-9a-f]+))?")
PROG_RE = re.compile(r"^prog\[(\d+)\] fd=(-?\d+)(?: type=(\d+) name=(\S*))?")



@dataclass
class Run:
    rc: int
    out: str
    maps: list[list[object]]  # [type, name] or [None, None] per slot
    map_sizes: list[list[int] | None]
    progs: list[list[object]]

    def __str__(self) -> str:
        return f"exit {self.rc}\n{self.out}"


def run_blobs(tool: Path, data: Path, insns: Path, nr_maps: int, nr_progs: int) -> Run:
    p = subprocess.run([str(tool), str(data), str(insns), str(nr_maps), str(nr_progs)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return parse_run(p.returncode, p.stdout)


def parse_run(rc: int, out: str) -> Run:
    """lskel-run's exit status and output as a Run."""
    run = Run(rc, out, [], [], [])
    if rc != 0:
        return run
    for line in out.splitlines():
        if m := MAP_RE.match(line):
            assert int(m.group(1)) == len(run.maps), line
            if m.group(3) is None:
                run.maps.append([None, None])
                run.map_sizes.append(None)
            else:
                run.maps.append([int(m.group(3)), m.group(4)])
                run.map_sizes.append([int(m.group(i)) for i in (5, 6, 7)] + [int(m.group(8), 16)])
        elif m := PROG_RE.match(line):
            assert int(m.group(1)) == len(run.progs), line
            run.progs.append([None, None] if m.group(3) is None
                             else [int(m.group(3)), m.group(4)])
    return run


def run_loader(tool: Path, loader: Loader, tmp_path: Path) -> Run:
    data, insns, _ = loader.write(tmp_path / "ours")
    return run_blobs(tool, data, insns, len(loader.map_names), len(loader.prog_names))


def run_golden(tool: Path, name: str) -> Run:
    meta = golden_meta(name)
    return run_blobs(tool, GOLDEN / f"{name}.data.bin", GOLDEN / f"{name}.insns.bin",
                     int(str(meta["maps"])), int(str(meta["progs"])))


def expected_kernel_map(m: bpfgen_fast.MapInfo, host: dict[str, Any]) -> list[int]:
    """[key_size, value_size, max_entries, flags] as the kernel reports the created map."""
    max_entries = m.max_entries
    if m.type in ("ringbuf", "user_ringbuf"):  # libbpf: power-of-2 multiple of page size
        size = host["page_size"]
        while size < max_entries:
            size *= 2
        max_entries = size
    elif m.type == "perf_event_array" and max_entries == 0:  # libbpf: possible CPUs
        max_entries = host["possible_cpus"]
    flags = m.flags & ~(BPF_F_RDONLY | BPF_F_WRONLY)  # file-mode flags are not kept
    if m.type in ("devmap", "devmap_hash"):
        flags |= BPF_F_RDONLY_PROG  # the kernel forces it for devmaps
    return [m.key_size, m.value_size, max_entries, flags]


def check_against_object(run: Run, obj: BpfObject, loader: Loader,
                         host: dict[str, Any]) -> None:
    assert len(run.maps) == len(obj.maps), run
    for (ktype, kname), sizes, (name, m) in zip(run.maps, run.map_sizes, obj.maps.items()):
        assert ktype == MAP_TYPES[m.type], (name, run)
        assert kname == name[:15]
        assert sizes == expected_kernel_map(m, host), name
    assert loader.map_names == tuple(obj.maps)
    assert len(run.progs) == len(obj.programs), run
    for slot, ((ktype, kname), (name, p)) in enumerate(zip(run.progs, obj.programs.items())):
        if p.autoload:
            assert [ktype, kname] == [PROG_TYPES[p.type], name[:15]], (slot, run)
        else:
            assert [ktype, kname] == [None, None], (f"slot {slot} ({name}) should be empty", run)


@pytest.mark.parametrize("name", [n for n in GOLDEN_NAMES if n not in KERNEL_REJECTS])
def test_our_blobs_load_like_bpftools(name: str, lskel_run: Path, tmp_path: Path,
                                      host: dict[str, Any]) -> None:
    """Where the kernel has every capability the object uses, bpftool's loader and ours
    both load it, with the same maps and programs (and as kernel.json recorded)."""
    obj = loadable(obj_path(name))
    theirs = run_golden(lskel_run, name)
    assert theirs.rc == 0, f"bpftool's loader fails here though every capability is " \
                           f"present: a probe is missing from tests/kcaps.py\n{theirs}"
    loader = obj.gen_loader(**host)
    run = run_loader(lskel_run, loader, tmp_path)
    assert run.rc == 0, run
    check_against_object(run, obj, loader, host)
    assert run.maps == theirs.maps
    assert run.map_sizes == theirs.map_sizes
    if name != "autoload_question.bpf":  # documented divergence, see below
        assert run.progs == theirs.progs
    golden = KERNEL[name]
    if golden["ok"]:
        assert (run.maps, run.map_sizes) == (golden["maps"], golden["map_sizes"])


@pytest.mark.parametrize("name", KERNEL_REJECTS)
def test_our_blobs_fail_where_bpftools_fail(name: str, lskel_run: Path, tmp_path: Path,
                                            host: dict[str, Any]) -> None:
    loadable(obj_path(name))
    loader = bpfgen_fast.gen_loader(obj_path(name), **host)
    run = run_loader(lskel_run, loader, tmp_path)
    assert run.rc == 1, run
    fail = [line[5:] for line in run.out.splitlines() if line.startswith("FAIL ")]
    theirs = run_golden(lskel_run, name)
    assert theirs.rc == 1, theirs
    assert fail == [line[5:] for line in theirs.out.splitlines() if line.startswith("FAIL ")]
    assert fail == [KERNEL[name]["error"]]


def test_autoload_question_progs_land_in_their_own_slots(lskel_run: Path, tmp_path: Path,
                                                         host: dict[str, Any]) -> None:
    obj = BpfObject.open(obj_path("autoload_question.bpf"))
    assert [p.autoload for p in obj.programs.values()] == [True, False, True, False]
    run = run_loader(lskel_run, obj.gen_loader(**host), tmp_path)
    assert run.rc == 0, run
    assert run.progs == [[5, "always_loaded"], [None, None], [17, "always_loaded_t"],
                         [None, None]]


def test_bpftool_misplaces_autoload_question_progs(lskel_run: Path) -> None:
    """The divergence we document: bpftool's blobs fill prog slots by loaded-program
    index, so `always_loaded_too` (slot 2) lands in `maybe_loaded_a`'s slot 1."""
    expected = [[5, "always_loaded"], [17, "always_loaded_t"], [None, None], [None, None]]
    assert KERNEL["autoload_question.bpf"]["progs"] == expected
    run = run_golden(lskel_run, "autoload_question.bpf")
    assert run.rc == 0, run
    assert run.progs == expected


def test_question_program_loads_when_autoload_enabled(lskel_run: Path, tmp_path: Path,
                                                      host: dict[str, Any]) -> None:
    obj = BpfObject.open(obj_path("autoload_question.bpf"))
    obj.programs["maybe_loaded_b"].autoload = True
    run = run_loader(lskel_run, obj.gen_loader(**host), tmp_path)
    assert run.rc == 0, run
    assert run.progs == [[5, "always_loaded"], [None, None], [17, "always_loaded_t"],
                         [17, "maybe_loaded_b"]]


@pytest.mark.parametrize(("name", "disabled"), [
    ("maps_devmap.bpf", "xdp_redirect_cpu"),
    ("progs_tracepoint.bpf", "tp_sys_enter"),
    ("progs_tracepoint.bpf", "raw_tp_writable"),
    ("subprogs.bpf", "prog_shared"),
])
def test_autoload_false_from_python_skips_only_that_program(
        name: str, disabled: str, lskel_run: Path, tmp_path: Path,
        host: dict[str, Any]) -> None:
    obj = loadable(obj_path(name))
    obj.programs[disabled].autoload = False
    assert obj.programs[disabled].autoload is False
    loader = obj.gen_loader(**host)
    assert disabled in loader.prog_names  # the slot stays in the skeleton
    run = run_loader(lskel_run, loader, tmp_path)
    assert run.rc == 0, run
    check_against_object(run, obj, loader, host)
    slot = loader.prog_names.index(disabled)
    golden = KERNEL[name]["progs"]
    assert run.progs == [[None, None] if i == slot else g for i, g in enumerate(golden)]
