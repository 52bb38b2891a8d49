"""Loaders in real kernels: Debian's 6.12 LTS and sid's newest, booted once each under
QEMU (tests/vm.py, kernels from scripts/kernels.sh). For every fixture, our loader and
bpftool 7.5.0's run through lskel-run inside the guest; ours must load wherever
bpftool's loads, with the same maps and programs, and fail the same way where it fails.
These kernels load the fentry and LSM programs this host refuses, so the fixtures that
need them are proven here.

Skipped, with the reason, when no kernel could be had (no archive, no QEMU). The
results of a run live in a directory made for it, named by the blobs' sha256, so a
stale result can never pass."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import pytest
import vm
from bpfgen_fast import BpfObject
from support import DIVERGENT, GOLDEN, GOLDEN_NAMES, golden_meta, obj_path
from test_kernel import Run, parse_run

KERNELS, WHY = vm.kernels()
#: fixtures that need what this host's kernel refuses (fentry/fexit, LSM), and the
#: kernels they must load in. 6.12 refuses attach_tracing's sleepable fentry on
#: __x64_sys_getpgid ("is not sleepable": not on that kernel's list), for bpftool's
#: loader and ours alike (the test above holds it to that).
PROVEN_HERE = [("attach_tracing.bpf", "sid"), ("attach_lsm.bpf", "lts"),
               ("attach_lsm.bpf", "sid")]


def _job_lines(tool: Path, name: str, data: Path, insns: Path, nr: tuple[int, int],
               out: Path) -> str:
    cmd = " ".join(shlex.quote(str(a)) for a in (tool, data, insns, *nr))
    return f"{cmd} > {shlex.quote(str(out))} 2>&1; echo \"rc=$?\" >> {shlex.quote(str(out))}\n"


@pytest.fixture(scope="module")
def vm_results(lskel_run: Path, host: dict[str, Any],
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, tuple[Run, Run]]]:
    """kernel name -> fixture -> (ours, bpftool's) as lskel-run reported them."""
    if WHY:
        pytest.skip(WHY)
    results: dict[str, dict[str, tuple[Run, Run]]] = {}
    for kernel in KERNELS:
        shared = tmp_path_factory.mktemp(f"vm-{kernel.name}")
        job = ["set -u\n"]
        outs: dict[str, tuple[Path, Path]] = {}
        for name in GOLDEN_NAMES:
            meta = golden_meta(name)
            nr = (int(str(meta["maps"])), int(str(meta["progs"])))
            loader = BpfObject.open(obj_path(name)).gen_loader(**host)
            sha = hashlib.sha256(loader.data + loader.insns).hexdigest()[:16]
            data, insns, _ = loader.write(shared / f"{name}.{sha}")
            ours, theirs = shared / f"{name}.{sha}.ours.txt", shared / f"{name}.theirs.txt"
            job.append(_job_lines(lskel_run, name, data, insns, (len(loader.map_names),
                                                                  len(loader.prog_names)), ours))
            job.append(_job_lines(lskel_run, name, GOLDEN / f"{name}.data.bin",
                                  GOLDEN / f"{name}.insns.bin", nr, theirs))
            outs[name] = (ours, theirs)
        printed = vm.boot(kernel, "".join(job), shared)
        per: dict[str, tuple[Run, Run]] = {}
        for name, paths in outs.items():
            runs = []
            for p in paths:
                assert p.is_file(), f"{kernel.name}: no result for {p.name}:\n{printed[-2000:]}"
                text = p.read_text()
                body, _, rc = text.rstrip("\n").rpartition("rc=")
                runs.append(parse_run(int(rc), body))
            per[name] = (runs[0], runs[1])
        results[kernel.name] = per
    return results


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_ours_loads_like_bpftools_in_real_kernels(
        kernel: str, name: str, vm_results: dict[str, dict[str, tuple[Run, Run]]]) -> None:
    ours, theirs = vm_results[kernel][name]
    if theirs.rc == 0:
        assert ours.rc == 0, f"{kernel}: bpftool's loader loads, ours does not:\n{ours}"
        assert (ours.maps, ours.map_sizes) == (theirs.maps, theirs.map_sizes)
        if name not in DIVERGENT:  # the ?-slot divergence puts programs in other slots
            assert ours.progs == theirs.progs
        else:
            assert sorted(map(str, ours.progs)) == sorted(map(str, theirs.progs))
    elif name in DIVERGENT and ours.rc == 0:
        pass  # a documented divergence: ours loads where bpftool's does not
    else:
        fail = [ln for ln in ours.out.splitlines() if ln.startswith("FAIL")]
        assert ours.rc == theirs.rc and fail == [
            ln for ln in theirs.out.splitlines() if ln.startswith("FAIL")], (ours, theirs)


@pytest.mark.parametrize(("name", "kernel"), PROVEN_HERE)
def test_fentry_and_lsm_fixtures_load_in_real_kernels(
        kernel: str, name: str, vm_results: dict[str, dict[str, tuple[Run, Run]]]) -> None:
    """What this host refuses (EPERM) loads there, for ours and bpftool's, every program."""
    if kernel not in vm_results:
        pytest.skip(f"the {kernel} kernel was not fetched")
    ours, theirs = vm_results[kernel][name]
    assert ours.rc == 0 and theirs.rc == 0, (ours, theirs)
    assert all(p != [None, None] for p in ours.progs) and ours.progs, ours
