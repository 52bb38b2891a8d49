"""Loaders in real kernels: Debian's 6.12 LTS and sid's newest, booted once each under
QEMU (tests/vm.py, kernels from scripts/kernels.sh). For every fixture, our loader and
bpftool 7.5.0's run through lskel-run inside the guest; ours must load wherever
bpftool's loads, with the same maps and programs, and fail the same way where it fails.
These kernels load the fentry and LSM programs this host refuses, so the fixtures that
need them are proven here. The same boots run the selftests objects this host refuses,
the signed-skeleton cases and the tests this host skips (sid): every part's jobs for a
kernel go into that kernel's one boot (`guest_runs`).

Skipped, with the reason, when no kernel could be had (no archive, no QEMU). The
results of a run live in a directory made for it, named by the blobs' sha256, so a
stale result can never pass."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import skel_c
import test_attach_target
import test_map_btf
import vm
from bpfgen_fast import BpfgenError, BpfObject
from support import (
    BAD,
    BUILD,
    DIVERGENT,
    GOLDEN,
    GOLDEN_NAMES,
    compat,
    corpus_obj_dir,
    golden_meta,
    obj_path,
)
from test_kernel import Run, parse_run
from test_mldsa import HAVE_MLDSA, make_mldsa
from test_sign_pipeline import BPFTOOL_SHAPE, CURVES, ec_keys, openssl_sign  # noqa: F401
from test_signing import (  # noqa: F401  (fixtures)
    _b78_exe,
    _b78_signed,
    _flip_data_byte,
    _flip_insn_byte,
    _signed,
    build_variant,
    keys,
    signed_build,
)

ALL_KERNELS, WHY = vm.kernels()
#: the amd64 kernels, booted through virtme-ng (the s390x one: tests/test_vm_s390x.py)
KERNELS = [k for k in ALL_KERNELS if k.busybox is None]
KCAPS = Path(__file__).resolve().parent / "kcaps.py"
#: fixtures that need what this host's kernel refuses (fentry/fexit, LSM), and the
#: kernels they must load in. 6.12 refuses attach_tracing's sleepable fentry on
#: __x64_sys_getpgid ("is not sleepable": not on that kernel's list), for bpftool's
#: loader and ours alike (the test above holds it to that).
PROVEN_HERE = [("attach_tracing.bpf", "sid"), ("attach_lsm.bpf", "lts"),
               ("attach_lsm.bpf", "sid"), ("kfunc_module.bpf", "lts"),
               ("kfunc_module.bpf", "sid")]
#: maps whose BTF the kernel refuses (tests/test_map_btf.py), ours against bpftool's
MAP_BTF = sorted(test_map_btf.CASES)
#: bare SEC("fentry") / SEC("lsm") fixtures given their targets with --attach-target,
#: and the named twin whose bpftool loader they must load like (tests/test_attach_target.py)
TARGETED = {"attach_lsm_bare.bpf": "attach_lsm.bpf",
            "attach_tracing_bare.bpf": "attach_tracing.bpf"}
#: the fixture whose kfuncs a module defines (nf_conntrack, a module in Debian's
#: kernels): run once before the guest loads that module, and with the others after
MODULE_KFUNCS = ("kfunc_module.bpf", "nf_conntrack")


def _sid() -> vm.Kernel:
    """Debian sid's kernel, or skip the calling test saying why there is none."""
    if WHY:
        pytest.skip(WHY)
    sid = next((k for k in KERNELS if k.name == "sid"), None)
    if sid is None:
        pytest.skip("the sid kernel was not fetched")
    return sid


def _read_runs(paths: tuple[Path, Path], printed: str) -> tuple[Run, Run]:
    """(ours, bpftool's) from the two result files a job line wrote."""
    runs = []
    for p in paths:
        assert p.is_file(), f"no result for {p.name}:\n{printed[-2000:]}"
        body, _, rc = p.read_text().rstrip("\n").rpartition("rc=")
        runs.append(parse_run(int(rc), body))
    return runs[0], runs[1]


def _job_lines(tool: Path, name: str, data: Path, insns: Path, nr: tuple[int, int],
               out: Path) -> str:
    cmd = " ".join(shlex.quote(str(a)) for a in (tool, data, insns, *nr))
    return f"{cmd} > {shlex.quote(str(out))} 2>&1; echo \"rc=$?\" >> {shlex.quote(str(out))}\n"


#: A part of the guests' work: a generator that yields (kernel, shell job, time
#: limit in seconds) for each kernel it needs, receives what that boot printed,
#: and returns its results.
Part = Generator[tuple[vm.Kernel, str, float], str, Any]


@pytest.fixture(scope="module")
def guest_runs(request: pytest.FixtureRequest, lskel_run: Path, host: dict[str, Any],
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """part name -> its results (or the exception it raised, a skip included), from
    one boot per kernel: every part's jobs for a kernel run in that kernel's one boot,
    each in a subshell, their files under one shared directory (the run's temporary
    root). A part that needs another kernel's results first (the loop over kernels in
    each part) gets them before its next kernel boots, in manifest order."""
    if WHY:
        pytest.skip(WHY)
    parts: dict[str, Part] = {}
    outcomes: dict[str, Any] = {}
    parts["results"] = _results_part(lskel_run, host, tmp_path_factory)
    parts["compiled"] = _compiled_part(host, tmp_path_factory)
    parts["corpus"] = _corpus_part(lskel_run, tmp_path_factory)
    parts["pytest"] = _pytest_part(tmp_path_factory)
    try:  # signing needs bpftool 7.8's headers and openssl: may skip here
        parts["signed"] = _signed_part(request.getfixturevalue("signed_build"),
                                       request.getfixturevalue("keys"),
                                       request.getfixturevalue("ec_keys"), tmp_path_factory)
    except pytest.skip.Exception as e:
        outcomes["signed"] = e
    pending: dict[str, tuple[vm.Kernel, str, float]] = {}

    def advance(name: str, printed: str | None) -> None:
        try:
            pending[name] = parts[name].send(printed)  # type: ignore[arg-type]
        except StopIteration as done:
            outcomes[name] = done.value
        except (Exception, pytest.skip.Exception) as e:  # the part's own tests report it
            outcomes[name] = e

    for name in parts:
        advance(name, None)
    shared = tmp_path_factory.getbasetemp()
    boots = 0
    while pending:
        kernel = next(k for k in KERNELS if any(p[0] is k for p in pending.values()))
        batch = {n: p for n, p in pending.items() if p[0] is kernel}
        job = "".join(f"(\n{p[1]})\n" for p in batch.values())
        printed = vm.boot(kernel, job, shared, timeout=sum(p[2] for p in batch.values()))
        boots += 1
        for name in batch:
            del pending[name]
            advance(name, printed)
    assert boots <= len(KERNELS), f"{boots} boots for {len(KERNELS)} kernels"
    return outcomes


def _outcome(runs: dict[str, Any], part: str) -> Any:
    got = runs[part]
    if isinstance(got, pytest.skip.Exception):
        pytest.skip(str(got))
    if isinstance(got, BaseException):
        raise got
    return got


@pytest.fixture(scope="module")
def vm_results(guest_runs: dict[str, Any]) -> dict[str, dict[str, tuple[Run, Run]]]:
    return _outcome(guest_runs, "results")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vm_compiled(guest_runs: dict[str, Any]
                ) -> dict[str, dict[str, tuple[skel_c.Probe, skel_c.Probe]]]:
    return _outcome(guest_runs, "compiled")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vm_signed(guest_runs: dict[str, Any]) -> dict[str, dict[str, str]]:
    return _outcome(guest_runs, "signed")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vm_pytest(guest_runs: dict[str, Any]) -> tuple[str, str, str]:
    return _outcome(guest_runs, "pytest")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def vm_corpus(guest_runs: dict[str, Any]
              ) -> dict[str, tuple[dict[str, tuple[Run, Run]], dict[str, dict[str, Any]]]]:
    return _outcome(guest_runs, "corpus")  # type: ignore[no-any-return]


def _results_part(lskel_run: Path, host: dict[str, Any],
                  tmp_path_factory: pytest.TempPathFactory) -> Part:
    """kernel name -> fixture -> (ours, bpftool's) as lskel-run reported them."""
    results: dict[str, dict[str, tuple[Run, Run]]] = {}
    for kernel in KERNELS:
        shared = tmp_path_factory.mktemp(f"vm-{kernel.name}")
        caps = shared / "capabilities.json"
        job = ["set -u\n", f"{shlex.quote(sys.executable)} {shlex.quote(str(KCAPS))} --save "
               f"{shlex.quote(str(caps))} >/dev/null 2>&1\n"]
        outs: dict[str, tuple[Path, Path]] = {}
        name, module = MODULE_KFUNCS
        before = (shared / f"{name}.before-modprobe.ours.txt",
                  shared / f"{name}.before-modprobe.theirs.txt")
        loader = BpfObject.open(obj_path(name)).gen_loader(**host)
        data, insns, _ = loader.write(shared / f"{name}.before-modprobe")
        nr_before = (len(loader.map_names), len(loader.prog_names))
        job.append(_job_lines(lskel_run, name, data, insns, nr_before, before[0]))
        job.append(_job_lines(lskel_run, name, GOLDEN / f"{name}.data.bin",
                              GOLDEN / f"{name}.insns.bin", nr_before, before[1]))
        job.append(f"modprobe {module} || echo 'modprobe {module} failed'\n")
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
        for bare, named in TARGETED.items():  # next to bpftool's loader of the named twin
            loader = test_attach_target.targeted(bare).gen_loader(**host)
            sha = hashlib.sha256(loader.data + loader.insns).hexdigest()[:16]
            data, insns, _ = loader.write(shared / f"{bare}.{sha}")
            ours = shared / f"{bare}.{sha}.ours.txt"
            job.append(_job_lines(lskel_run, bare, data, insns, (len(loader.map_names),
                                                                 len(loader.prog_names)), ours))
            outs[bare] = (ours, outs[named][1])
        for name in MAP_BTF:  # ours, and bpftool's (the same with the refused ids kept)
            obj = BpfObject.open(BAD / f"{name}.bpf.o")
            pair = []
            for who, loader in (("ours", obj.gen_loader(**host)),
                                ("theirs", obj.gen_loader(_bpftool_map_btf_ids=True, **host))):
                sha = hashlib.sha256(loader.data + loader.insns).hexdigest()[:16]
                data, insns, _ = loader.write(shared / f"{name}.{sha}")
                pair.append(shared / f"{name}.{sha}.{who}.txt")
                job.append(_job_lines(lskel_run, name, data, insns, (
                    len(loader.map_names), len(loader.prog_names)), pair[-1]))
            outs[name] = (pair[0], pair[1])
        printed = yield kernel, "".join(job), 1200
        assert caps.is_file(), f"{kernel.name}: the capability probes did not run:\n{printed}"
        saved = os.environ.get("BPFGEN_CAPS_FILE")  # the test command's table gains a column
        if saved:
            shutil.copy(caps, Path(saved).with_name(f"capabilities-{kernel.name}.json"))
        per = {name: _read_runs(paths, printed) for name, paths in outs.items()}
        results[kernel.name] = per
        results[f"{kernel.name}:before-modprobe"] = {
            MODULE_KFUNCS[0]: _read_runs(before, printed)}
        if saved:
            fixtures = [runs for name, runs in per.items()
                        if name not in TARGETED and name not in MAP_BTF]
            loaded = [sum(r.rc == 0 for r in runs) for runs in zip(*fixtures)]
            bare = sum(per[b][0].rc == 0 for b in TARGETED)
            refused = [sum(per[n][i].rc == 0 for n in MAP_BTF) for i in (0, 1)]
            Path(saved).with_name(f"vm-{kernel.name}.txt").write_text(
                f"{kernel.name} ({kernel.version}): fixtures loaded: ours {loaded[0]} of "
                f"{len(fixtures)}, bpftool's {loaded[1]} of {len(fixtures)}; bare sections "
                f"with --attach-target: {bare} of {len(TARGETED)}; maps with refused BTF: "
                f"ours {refused[0]}, bpftool's {refused[1]} of {len(MAP_BTF)}\n")
    return results


#: fixtures whose bpftool header does not compile (README: divergence 7)
HEADER_DOES_NOT_COMPILE = {"no_progs.bpf"}


def _compile_probe(obj: Path, header: str) -> Path | str:
    """The object's header in a probe that attaches, triggers and counts runs, or
    gcc's complaint."""
    skel = skel_c.parse_header(header)
    autoload = {p for p, prog in BpfObject.open(obj).programs.items() if prog.autoload}
    src = skel_c.probe_source("skel.lskel.h", skel, count_runs=True, required_progs=autoload,
                              prelude=skel_c.type_prelude(obj, header))
    exe, err = skel_c.compile_c(src, header, BUILD / "probes-vm")
    return exe if exe is not None else f"the header does not compile:\n{err[-3000:]}"


def _compiled_headers(host: dict[str, Any]) -> dict[str, list[tuple[str, Path, str, str]]]:
    """set -> [(name, object, our header, bpftool 7.5.0's header)]: the fixtures (with
    the goldens' host facts), and the selftests objects this host refuses (with the
    corpus's, whose oracle headers bpftool made)."""
    sets = {"fixtures": [(name, obj_path(name), BpfObject.open(obj_path(name)).gen_skeleton(**host),
                          (GOLDEN / f"{name}.lskel.h").read_text()) for name in GOLDEN_NAMES]}
    corpus = corpus_obj_dir()
    if corpus is not None:
        facts = json.loads((corpus.parent / "host.json").read_text())
        sizes = {"page_size": int(facts["page_size"]), "possible_cpus": int(facts["possible_cpus"])}
        selftests = []
        for name in _refused_here():
            obj, oracle = corpus / f"{name}.bpf.o", corpus.parent / "oracle" / f"{name}.bpf.lskel.h"
            try:
                ours = BpfObject.open(obj).gen_skeleton(**sizes)
            except BpfgenError:
                continue  # the differential reports what we reject
            if oracle.is_file():
                selftests.append((name, obj, ours, oracle.read_text()))
        sets["selftests"] = selftests
    return sets


def _compiled_part(host: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Part:
    """kernel name -> object -> (ours, bpftool's) compiled light skeleton, as its probe
    reported: ``__open_and_load``, then each program's ``__attach`` with the kernel's run
    counts on, the fixtures' hooks triggered and each program's run count read back
    (skel_c.RUN_COUNT_FUNCS); the same for the selftests objects this host refuses under
    ``KERNEL:selftests``. The probes are built here, once, from our header and bpftool's
    (golden or oracle); a header that does not compile is reported as exit -1."""
    results: dict[str, dict[str, tuple[skel_c.Probe, skel_c.Probe]]] = {}
    sets = _compiled_headers(host)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {(kind, name): (pool.submit(_compile_probe, obj, ours),
                                  pool.submit(_compile_probe, obj, theirs))
                   for kind, entries in sets.items() for name, obj, ours, theirs in entries}
        probes = {key: (o.result(), t.result()) for key, (o, t) in futures.items()}
    for kernel in KERNELS:
        shared = tmp_path_factory.mktemp(f"vm-compiled-{kernel.name}")
        # kfunc_module's kfuncs are in nf_conntrack, loaded for it beforehand
        job = ["set -u\n", f"modprobe {MODULE_KFUNCS[1]} || echo 'modprobe failed'\n"]
        outs: dict[tuple[str, str], tuple[Path, Path]] = {}
        for (kind, name), (ours, theirs) in probes.items():
            outs[kind, name] = (shared / f"{kind}.{name}.ours.txt",
                                shared / f"{kind}.{name}.theirs.txt")
            for exe, out in zip((ours, theirs), outs[kind, name]):
                if isinstance(exe, str):
                    out.write_text(f"{exe}\nrc=-1")
                    continue
                o = shlex.quote(str(out))
                job.append(f"{shlex.quote(str(exe))} > {o} 2>&1; echo \"rc=$?\" >> {o}\n")
        printed = yield kernel, "".join(job), 2400
        for (kind, name), paths in outs.items():
            pair = []
            for p in paths:
                assert p.is_file(), f"no result for {p.name}:\n{printed[-2000:]}"
                body, _, rc = p.read_text().rstrip("\n").rpartition("rc=")
                pair.append(skel_c.parse_probe(int(rc), body))
            key = kernel.name if kind == "fixtures" else f"{kernel.name}:{kind}"
            results.setdefault(key, {})[name] = (pair[0], pair[1])
        saved = os.environ.get("BPFGEN_CAPS_FILE")
        if saved:
            lines = [f"{kernel.name} ({kernel.version}), compiled light skeletons of "
                     f"{_compiled_counts(results[kernel.name], 'fixtures')}"]
            if f"{kernel.name}:selftests" in results:
                lines.append(f"{kernel.name}: compiled light skeletons of " + _compiled_counts(
                    results[f"{kernel.name}:selftests"], "selftests objects this host refuses"))
            Path(saved).with_name(f"vm-{kernel.name}-compiled.txt").write_text(
                "\n".join(lines) + "\n")
    return results


def _compiled_counts(per: dict[str, tuple[skel_c.Probe, skel_c.Probe]], what: str) -> str:
    """'N WHAT: loaded ours a, bpftool's b; programs attached ...; of them seen running ...'"""
    counts = []
    uncompiled = sum(pair[0].rc == -1 and pair[1].rc == -1 for pair in per.values())
    for i in (0, 1):
        probes = [pair[i] for pair in per.values()]
        attached = [(pr, p) for pr in probes for p in _attached(pr)]
        counts.append((sum(pr.rc == 0 for pr in probes), len(attached),
                       sum(pr.ran.get(p, 0) > 0 for pr, p in attached)))
    return (f"{len(per)} {what}: loaded ours {counts[0][0]}, bpftool's {counts[1][0]}; "
            f"programs attached ours {counts[0][1]}, bpftool's {counts[1][1]}; of them seen "
            f"running ours {counts[0][2]}, bpftool's {counts[1][2]}"
            + (f" ({uncompiled} compile for neither)" if uncompiled else ""))


def _attached(probe: skel_c.Probe) -> set[str]:
    return {p for p, ret in probe.attach.items() if ret > 0}


def _attach_outcome(probe: skel_c.Probe) -> dict[str, int]:
    """Each program's ``__attach``: 1 attached (a link fd), else what it returned."""
    return {p: 1 if ret > 0 else ret for p, ret in probe.attach.items()}


def _prog_slots_diverge(name: str) -> bool:
    """Divergence 1 (README): a non-autoload program before an autoloaded one, so
    bpftool's header puts program fds in other programs' slots."""
    corpus = corpus_obj_dir()
    assert corpus is not None
    progs = list(BpfObject.open(corpus / f"{name}.bpf.o").programs.values())
    return any(not p.autoload and any(q.autoload for q in progs[i + 1:])
               for i, p in enumerate(progs))


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_compiled_skeletons_attach_and_run_in_real_kernels(
        kernel: str, name: str,
        vm_compiled: dict[str, dict[str, tuple[skel_c.Probe, skel_c.Probe]]]) -> None:
    """Each fixture's compiled light skeleton, ours and bpftool's: where bpftool's opens and
    loads, ours does, the same programs attach through the header (or fail alike), and
    every attached program runs when its hook is triggered, in both."""
    ours, theirs = vm_compiled[kernel][name]
    assert ours.rc != -1, f"{name}: {ours.out}"
    if theirs.rc == -1:
        assert name in HEADER_DOES_NOT_COMPILE, f"{name}: bpftool's {theirs.out}"
    if theirs.rc != 0:
        if ours.rc == 0 and (name in DIVERGENT or name in HEADER_DOES_NOT_COMPILE):
            theirs = ours  # a documented divergence: ours loads where bpftool's does not
        else:
            assert ours.rc == theirs.rc, (ours, theirs)
            return
    assert ours.rc == 0, f"{kernel}: bpftool's header loads, ours does not:\n{ours}"
    if "_bpftool_prog_slots" not in compat(name):  # bpftool's ?-programs get other fds
        assert _attach_outcome(ours) == _attach_outcome(theirs), (ours, theirs)
    for probe in (ours, theirs):
        idle = sorted(p for p in _attached(probe) if probe.ran.get(p, 0) == 0)
        assert not idle, f"{kernel}: attached but never ran: {idle}\n{probe}"


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
def test_compiled_selftests_headers_load_and_attach_like_bpftools(
        kernel: str,
        vm_compiled: dict[str, dict[str, tuple[skel_c.Probe, skel_c.Probe]]]) -> None:
    """The selftests objects this host refuses, as compiled light skeletons, ours and
    bpftool's: ours opens and loads wherever bpftool's does and attaches the same
    programs (or fails alike). Which attached programs then run depends on what else the
    kernel does (their hooks are the selftests' own), so run counts are reported in the
    summary, not compared. Some headers name types that skel_c's C prelude (from the
    object's BTF) cannot declare beside the system headers: those compile for neither."""
    per = vm_compiled.get(f"{kernel}:selftests")
    if per is None:
        pytest.skip("no selftests corpus")
    problems = []
    for name, (ours, theirs) in sorted(per.items()):
        if ours.rc == -1 and theirs.rc != -1:
            problems.append(f"{name}: our header does not compile: {ours.out[-300:]}")
        elif ours.rc == -1:
            continue  # neither compiles with the prelude skel_c derives from the BTF
        elif theirs.rc == 0 and ours.rc != 0:
            problems.append(f"{name}: bpftool's header loads, ours: {ours.out[-300:]}")
        elif (theirs.rc == 0 and _attach_outcome(ours) != _attach_outcome(theirs)
              and not _prog_slots_diverge(name)):
            problems.append(f"{name}: attach {_attach_outcome(ours)}, "
                            f"bpftool's {_attach_outcome(theirs)}")
        elif theirs.rc == 3 and ours.rc == 0 and _prog_slots_diverge(name):
            continue  # divergence 1: bpftool's header leaves a program's slot without its fd
        elif theirs.rc not in (0, -1) and ours.rc != theirs.rc:
            problems.append(f"{name}: bpftool's exits {theirs.rc}, ours {ours.rc}")
    assert not problems, "\n".join(problems)
    assert sum(t.rc == 0 for _, t in per.values()) > len(per) // 2


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


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
@pytest.mark.parametrize("name", MAP_BTF)
def test_maps_with_refused_btf_load_in_real_kernels(
        kernel: str, name: str, vm_results: dict[str, dict[str, tuple[Run, Run]]]) -> None:
    """Each map_btf fixture (tests/test_map_btf.py): the kernel refuses bpftool's loader at
    MAP_CREATE, with the errno this host gives, and ours, which creates those maps without
    BTF, loads every map and program."""
    ours, theirs = vm_results[kernel][name]
    assert ours.rc == 0, ours
    refused = f"failed to execute loader prog: -{test_map_btf.CASES[name].bpftool_errno} ("
    assert theirs.rc == 1 and refused in theirs.out, theirs


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
@pytest.mark.parametrize("bare", sorted(TARGETED))
def test_bare_sections_with_attach_targets_load_like_the_named_ones(
        kernel: str, bare: str, vm_results: dict[str, dict[str, tuple[Run, Run]]]) -> None:
    """A bare SEC("fentry") / SEC("lsm") program given its target with --attach-target
    loads wherever bpftool's loader of the same program written SEC("fentry/FUNC")
    loads, with the same programs (fentry and LSM: refused here, so proven there)."""
    ours, named_theirs = vm_results[kernel][bare]
    if named_theirs.rc != 0:
        assert ours.rc != 0, f"{kernel}: ours loads where the named one does not:\n{ours}"
        return
    assert ours.rc == 0, f"{kernel}: the named twin loads, ours does not:\n{ours}"
    assert [p[0] for p in ours.progs] == [p[0] for p in named_theirs.progs]
    assert all(p != [None, None] for p in ours.progs) and ours.progs


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
def test_module_kfuncs_resolve_in_the_modules_btf(
        kernel: str, vm_results: dict[str, dict[str, tuple[Run, Run]]]) -> None:
    """Before nf_conntrack is loaded, its kfuncs exist nowhere, and both loaders fail
    alike; after modprobe both load (test above), so the kfuncs were found in the
    module's BTF."""
    name = MODULE_KFUNCS[0]
    ours, theirs = vm_results[f"{kernel}:before-modprobe"][name]
    assert ours.rc != 0 and theirs.rc != 0, (ours, theirs)
    fail = [ln for ln in ours.out.splitlines() if ln.startswith("FAIL")]
    assert fail and fail == [ln for ln in theirs.out.splitlines() if ln.startswith("FAIL")]
    after = vm_results[kernel][name]
    assert after[0].rc == 0 and after[1].rc == 0, after


# -- signed light skeletons, verified by the sid kernel ----------------------------------

#: the RSA cases; each ECDSA curve has good_<curve>, flip_data_<curve>, flip_insn_<curve>,
#: detached_<curve> (openssl's randomised signature through gen signing-payload and
#: --signature) and, when the 7.8 oracle is built, bpftool_<curve> (bpftool's header)
SIGNED_CASES = ("good", "flip_data", "flip_insn", "other_key")
EC_CASES = tuple(f"{case}_{curve}" for curve in CURVES
                 for case in ("good", "flip_data", "flip_insn", "detached"))
#: ML-DSA parameter sets: mldsa<level> is the header signed with such a key, its
#: self-signed certificate added to the session keyring first (padd= records keyctl's
#: status); mldsa<level>_ca the same with the certificate issued by an RSA CA, which
#: the kernel can check without ML-DSA
MLDSA_LEVELS = ("44", "65", "87") if HAVE_MLDSA else ()
MLDSA_CASES = tuple(f"mldsa{lv}{ca}" for lv in MLDSA_LEVELS for ca in ("", "_ca"))


def _have_b78() -> bool:
    exe = _b78_exe()
    return exe is not None and os.access(exe, os.X_OK)


def _signed_part(signed_build: Path, keys: dict[str, Path],  # noqa: F811
                 ec_keys: dict[str, dict[str, Path]],  # noqa: F811
                 tmp_path_factory: pytest.TempPathFactory) -> Part:
    """case -> what KERNEL_MAIN printed (and rc) in the sid kernel: the signed
    progs_tracepoint header, one data byte flipped, one instruction byte flipped,
    signed by another key; the certificate in a fresh session keyring (-3), the
    system keyrings (0), and no certificate at all. The same good and flipped
    headers signed with ECDSA P-256 and P-384 keys, their certificates in the same
    session keyring; headers signed with ML-DSA-44/65/87 keys, their certificates
    (self-signed, and issued by an RSA CA) added to it first."""
    sid = _sid()
    other = tmp_path_factory.mktemp("other-key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "k.pem", "-out", "c.pem", "-days", "3650", "-subj", "/CN=another key",
                    "-addext", "subjectKeyIdentifier=hash"], cwd=other, check=True,
                   capture_output=True)
    good = (signed_build / "signed.lskel.h").read_text()
    headers = {"good": good, "flip_data": _flip_data_byte(good),
               "flip_insn": _flip_insn_byte(good),
               "other_key": _signed("progs_tracepoint.bpf",
                                    {"k.pem": other / "k.pem", "c.pem": other / "c.pem"})}
    ec_certs = []
    obj = BpfObject.open(obj_path("progs_tracepoint.bpf"))
    ec_cases = list(EC_CASES)
    for curve, k in ec_keys.items():
        h = _signed("progs_tracepoint.bpf", k)
        headers.update({f"good_{curve}": h, f"flip_data_{curve}": _flip_data_byte(h),
                        f"flip_insn_{curve}": _flip_insn_byte(h)})
        payload = k["c.pem"].with_suffix(".payload")
        payload.write_bytes(obj.signing_payload())
        sig = openssl_sign(payload, k["k.pem"], k["c.pem"], k["c.pem"].with_suffix(".sig"),
                           *BPFTOOL_SHAPE)
        headers[f"detached_{curve}"] = obj.gen_skeleton(signature=sig, sign_cert=k["c.pem"])
        if _have_b78():
            headers[f"bpftool_{curve}"] = _b78_signed("progs_tracepoint.bpf", k)
            ec_cases.append(f"bpftool_{curve}")
        der = k["c.pem"].with_suffix(".der")
        subprocess.run(["openssl", "x509", "-in", str(k["c.pem"]), "-outform", "DER",
                        "-out", str(der)], check=True, capture_output=True)
        ec_certs.append(der)
        # another key of the same curve, whose certificate is not in the keyring
        stranger = tmp_path_factory.mktemp(f"other-{curve}")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        f"ec_paramgen_curve:{CURVES[curve]}", "-nodes", "-keyout", "k.pem",
                        "-out", "c.pem", "-days", "3650", "-subj", f"/CN=another {curve} key",
                        "-addext", "subjectKeyIdentifier=hash"], cwd=stranger, check=True,
                       capture_output=True)
        headers[f"other_key_{curve}"] = _signed(
            "progs_tracepoint.bpf", {"k.pem": stranger / "k.pem", "c.pem": stranger / "c.pem"})
        ec_cases.append(f"other_key_{curve}")
    ml_dir = tmp_path_factory.mktemp("mldsa")
    ml_certs = {}
    if MLDSA_LEVELS:
        from cryptography.hazmat.primitives.asymmetric import rsa

        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for level in MLDSA_LEVELS:
        for case, issuer in ((f"mldsa{level}", None), (f"mldsa{level}_ca", ca_key)):
            k = make_mldsa(level, ml_dir, case, issuer)
            headers[case] = _signed("progs_tracepoint.bpf", k)
            ml_certs[case] = k["c.der"]
    exes = {case: build_variant(signed_build, f"vm_{case}", h) for case, h in headers.items()}
    shared = tmp_path_factory.mktemp("vm-signed")

    def run(case: str, exe: Path, keyring: int) -> str:
        out = shlex.quote(str(shared / f"{case}.txt"))
        return (f"BPFGEN_KEYRING_ID={keyring} {shlex.quote(str(exe))} > {out} 2>&1;"
                f" echo \"rc=$?\" >> {out}\n")

    def ml_run(case: str, cert: Path) -> str:
        """add the certificate (keyctl's status as padd=, its message in a file of
        its own), then run the loader, appending"""
        out = shlex.quote(str(shared / f"{case}.txt"))
        err = shlex.quote(str(shared / f"{case}.padd"))
        return (f"keyctl padd asymmetric bpfgen_{case} @s < {shlex.quote(str(cert))}"
                f" >/dev/null 2>{err}; echo \"padd=$?\" > {out}\n"
                + run(case, exes[case], -3).replace(" > ", " >> ", 1))

    with_cert = shared / "with_cert.sh"
    with_cert.write_text(
        f"keyctl padd asymmetric bpfgen_test @s < {shlex.quote(str(keys['c.der']))} >/dev/null\n"
        + "".join(f"keyctl padd asymmetric bpfgen_test_{i} @s < {shlex.quote(str(c))}"
                  " >/dev/null || echo \"keyctl padd {c.name} failed\"\n"
                  for i, c in enumerate(ec_certs))
        + "".join(run(c, exes[c], -3) for c in (*SIGNED_CASES, *ec_cases))
        + run("system_keyrings", exes["good"], 0)
        + "".join(ml_run(lv, c) for lv, c in ml_certs.items()))
    without = shared / "without_cert.sh"
    without.write_text(run("no_cert", exes["good"], -3)
                       + "".join(run(f"no_cert_{curve}", exes[f"good_{curve}"], -3)
                                 for curve in ec_keys))
    printed = yield sid, f"keyctl session - sh {with_cert}\nkeyctl session - sh {without}\n", 600
    results: dict[str, dict[str, str]] = {}
    no_cert = ["no_cert", *(f"no_cert_{curve}" for curve in ec_keys)]
    for case in (*SIGNED_CASES, *ec_cases, "system_keyrings", *no_cert, *MLDSA_CASES):
        path = shared / f"{case}.txt"
        assert path.is_file(), f"no result for {case}:\n{printed[-2000:]}"
        results[case] = dict(kv.split("=", 1) for kv in path.read_text().split() if "=" in kv)
        padd = path.with_suffix(".padd")
        if padd.is_file():
            results[case]["padd_message"] = padd.read_text().strip()
    return results


def test_signed_skeleton_loads_with_its_certificate(vm_signed: dict[str, dict[str, str]]) -> None:
    out = vm_signed["good"]
    assert out["load"] == "0" and out["attach"] == "1" and out["lookup"] == "0", out
    assert int(out["count"]) > 0  # raw_tp/sched_switch ran


@pytest.mark.parametrize(("case", "errno"), [
    ("flip_data", -22),  # the signature holds; the loader's SHA-256 check of the data fails
    ("flip_insn", -129),  # EKEYREJECTED: the signature no longer matches the instructions
    ("other_key", -126),  # ENOKEY: no certificate in the keyring for that key
    ("no_cert", -126),  # ENOKEY: an empty session keyring
    ("system_keyrings", -126),  # keyring_id 0: the built-in keyring, without our certificate
])
def test_signed_skeleton_rejections(case: str, errno: int,
                                    vm_signed: dict[str, dict[str, str]]) -> None:
    assert vm_signed[case].get("load") == str(errno), vm_signed[case]


@pytest.mark.parametrize("curve", list(CURVES))
def test_ecdsa_signed_skeleton_loads_with_its_certificate(
        curve: str, vm_signed: dict[str, dict[str, str]]) -> None:
    """Linux 7.2 verifies ECDSA (ecdsa-with-SHA256) PKCS#7 signatures of BPF programs:
    ours (RFC 6979) and openssl's randomised one embedded by the two-step flow."""
    for case in (f"good_{curve}", f"detached_{curve}"):
        out = vm_signed[case]
        assert out["load"] == "0" and out["attach"] == "1" and out["lookup"] == "0", (case, out)
        assert int(out["count"]) > 0


@pytest.mark.parametrize("curve", list(CURVES))
def test_bpftool_ecdsa_signed_skeleton_loads(curve: str,
                                             vm_signed: dict[str, dict[str, str]]) -> None:
    """bpftool 7.8.0's ECDSA header (which verify accepts too) loads in the same kernel."""
    out = vm_signed.get(f"bpftool_{curve}")
    if out is None:
        pytest.skip("bpftool 7.8 oracle not built (scripts/oracle-bpftool-7.8.sh)")
    assert out["load"] == "0" and out["attach"] == "1", out


@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize(("case", "errno"), [
    ("flip_data", -22),  # the loader's SHA-256 check of the data fails
    ("flip_insn", -129),  # EKEYREJECTED
    ("other_key", -126),  # ENOKEY: another key of the curve, its certificate not added
    ("no_cert", -126),  # ENOKEY: an empty session keyring
])
def test_ecdsa_signed_skeleton_rejections(curve: str, case: str, errno: int,
                                          vm_signed: dict[str, dict[str, str]]) -> None:
    out = vm_signed[f"{case}_{curve}"]
    assert out.get("load") == str(errno), out


@pytest.mark.parametrize("level", ["44", "65", "87"])
def test_mldsa_signed_skeleton_in_a_kernel_without_mldsa(
        level: str, vm_signed: dict[str, dict[str, str]]) -> None:
    """Linux 7.2's PKCS#7 parser knows ML-DSA, but Debian sid's kernel is built
    without CONFIG_CRYPTO_MLDSA, and this is what it does with our ML-DSA headers
    (which verify offline):

    * a self-signed ML-DSA certificate is refused by add_key with ENOENT (the kernel
      has no ML-DSA algorithm to check the self-signature with, and only ENOPKG
      would let the certificate in unchecked), so the load finds no key: ENOKEY;
    * the same key in a certificate issued by an RSA CA is added, and the load
      fails with EKEYREJECTED, the errno of a signature that does not verify."""
    if not HAVE_MLDSA:
        pytest.skip("this cryptography has no ML-DSA")
    out = vm_signed[f"mldsa{level}"]
    assert out.get("padd") == "1", out
    assert out.get("padd_message") == "add_key: No such file or directory", out
    assert out.get("load") == "-126", out
    out = vm_signed[f"mldsa{level}_ca"]
    assert out.get("padd") == "0", out
    assert out.get("load") == "-129", out


# -- the kernel tests this host skips, run inside sid's kernel -----------------------------

#: pytest node ids that need what this host refuses (arena maps, fentry, LSM) or that
#: register struct_ops: run as they are, inside the sid guest, through run() and
#: compiled headers
IN_GUEST = [
    "tests/test_arena_run.py",
    "tests/test_beyond.py::test_arena_globals_read_back",
    "tests/test_beyond.py::test_arena_globals_without_map_extra",
    "tests/test_struct_ops_run.py::test_run_fixture_struct_ops",
    "tests/test_struct_ops_run.py::test_run_fixture_close_unregisters",
    "tests/test_beyond.py::test_struct_ops_header_registers_and_unregisters",
    # fentry and LSM (EPERM here): loaded, attached and run, and the fixtures that
    # need them through run() and through the compiled light skeleton
    "tests/test_run.py::test_fentry_lsm_load_and_attach",
    "tests/test_run.py::test_fixture_loads_like_the_c_light_skeleton[attach_lsm.bpf]",
    "tests/test_run.py::test_fixture_loads_like_the_c_light_skeleton[attach_tracing.bpf]",
    "tests/test_kernel.py::test_our_blobs_load_like_bpftools[attach_lsm.bpf]",
    "tests/test_kernel.py::test_our_blobs_load_like_bpftools[attach_tracing.bpf]",
]


def _pytest_part(tmp_path_factory: pytest.TempPathFactory) -> Part:
    """(pytest's output, its exit status, guest_probes.py's output) for IN_GUEST and
    the hand-attached probes, run in the sid guest."""
    sid = _sid()
    shared = tmp_path_factory.mktemp("vm-pytest")
    out = shlex.quote(str(shared / "pytest.txt"))
    repo = Path(__file__).resolve().parent.parent
    argv = " ".join(shlex.quote(a) for a in (
        sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *IN_GUEST))
    # the repository and the host's cache are read-only in the guest: no bytecode,
    # no pytest cache, tools (lskel-run) built into the shared directory
    probes = shlex.quote(str(shared / "probes.json"))
    probes_log = shlex.quote(str(shared / "probes.txt"))
    probe_argv = " ".join(shlex.quote(a) for a in (
        sys.executable, str(repo / "tests" / "guest_probes.py"),
        str(obj_path("progs_probes.bpf"))))
    job = (f"cd {shlex.quote(str(repo))}\nexport PYTHONDONTWRITEBYTECODE=1 "
           f"BPFGEN_BUILD_DIR={shlex.quote(str(shared / 'build'))} "
           f"BPFGEN_TOOL_CACHE={shlex.quote(str(shared / 'tools'))}\n"
           f"{argv} > {out} 2>&1\necho \"rc=$?\" >> {out}\n"
           f"{probe_argv} {probes} > {probes_log} 2>&1\n")
    printed = yield sid, job, 1200
    path = shared / "pytest.txt"
    assert path.is_file(), printed[-2000:]
    text, _, rc = path.read_text().rstrip("\n").rpartition("rc=")
    probe_out = (shared / "probes.json").read_text() if (shared / "probes.json").is_file() \
        else "error: " + (shared / "probes.txt").read_text()[-2000:]
    return text, rc, probe_out


def test_arena_and_struct_ops_tests_pass_in_sid(vm_pytest: tuple[str, str, str]) -> None:
    """Arena maps, fentry and LSM programs (refused here) and struct_ops registration,
    through run() and the compiled light skeletons, the fentry and LSM programs also
    attached and seen running: every test passes there, none skips."""
    text, rc, _ = vm_pytest
    last = text.strip().splitlines()[-1]
    assert rc == "0" and " passed" in last, text[-4000:]
    assert "failed" not in last and "skipped" not in last and "error" not in last, text[-4000:]


# -- selftests objects this host cannot decide ---------------------------------------------

REFERENCE_TSV = Path(os.environ.get("BPFGEN_SELFTESTS_TSV") or (
    Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    / "selftests-bpftool-7.5.tsv"))


def _refused_here() -> list[str]:
    """Selftests sources whose bpftool loader this machine kind refuses with EPERM
    (fentry, fexit, LSM, ...): the reference TSV's kernel column."""
    if not REFERENCE_TSV.is_file():
        return []
    out = []
    for line in REFERENCE_TSV.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 4 and cols[2] == "ok" and "Operation not permitted" in cols[3]:
            out.append(cols[0][: -len(".c")])
    return out


def _corpus_part(lskel_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Part:
    """kernel -> (source -> (ours, bpftool's) through lskel-run, source -> our run()'s
    verdict) for the selftests objects this host refuses; run() only in sid, where the
    loaders are generated in the guest from its own kernel's facts."""
    corpus = corpus_obj_dir()
    names = _refused_here()
    if corpus is None or not names:
        pytest.skip("no selftests corpus or reference TSV")
    keydir = corpus.parent
    host = json.loads((keydir / "host.json").read_text())
    repo = Path(__file__).resolve().parent.parent
    results = {}
    for kernel in KERNELS:
        shared = tmp_path_factory.mktemp(f"vm-corpus-{kernel.name}")
        job = ["set -u\n"]
        outs: dict[str, tuple[Path, Path]] = {}
        for name in names:
            obj = corpus / f"{name}.bpf.o"
            try:
                loader = BpfObject.open(obj).gen_loader(
                    page_size=int(host["page_size"]), possible_cpus=int(host["possible_cpus"]))
            except BpfgenError:
                continue  # the differential reports what we reject
            sha = hashlib.sha256(loader.data + loader.insns).hexdigest()[:16]
            data, insns, _ = loader.write(shared / f"{name}.{sha}")
            nr = (len(loader.map_names), len(loader.prog_names))
            oracle = keydir / "oracle" / f"{name}.bpf"
            ours, theirs = shared / f"{name}.{sha}.ours.txt", shared / f"{name}.theirs.txt"
            job.append(_job_lines(lskel_run, name, data, insns, nr, ours))
            job.append(_job_lines(lskel_run, name, Path(f"{oracle}.data.bin"),
                                  Path(f"{oracle}.insns.bin"), nr, theirs))
            outs[name] = (ours, theirs)
        verdicts = shared / "run.json"
        if kernel.name == "sid":
            argv = [sys.executable, str(repo / "tests" / "guest_run_corpus.py"),
                    str(kernel.config), str(verdicts),
                    *(str(corpus / f"{name}.bpf.o") for name in outs)]
            job.append("export PYTHONDONTWRITEBYTECODE=1\n"
                       + " ".join(shlex.quote(a) for a in argv)
                       + f" > {shlex.quote(str(shared / 'run.txt'))} 2>&1\n")
        printed = yield kernel, "".join(job), 1800
        per = {name: _read_runs(paths, printed) for name, paths in outs.items()}
        runs: dict[str, dict[str, Any]] = {}
        if kernel.name == "sid":
            assert verdicts.is_file(), (shared / "run.txt").read_text()[-3000:]
            runs = json.loads(verdicts.read_text())
            assert len(runs) == len(outs), (shared / "run.txt").read_text()[-3000:]
        results[kernel.name] = (per, runs)
        saved = os.environ.get("BPFGEN_CAPS_FILE")
        if saved:
            both = sum(o.rc == 0 and t.rc == 0 for o, t in per.values())
            line = (f"{kernel.name}: selftests objects this host refuses (EPERM): {len(per)} "
                    f"run; bpftool's loader loads {sum(t.rc == 0 for _, t in per.values())}, "
                    f"ours {sum(o.rc == 0 for o, _ in per.values())}, both {both}")
            if runs:
                line += f"; through run(): {sum(bool(r['ok']) for r in runs.values())}"
            Path(saved).with_name(f"vm-{kernel.name}-selftests.txt").write_text(line + "\n")
    return results


@pytest.mark.parametrize("kernel", [k.name for k in KERNELS] or ["none"])
def test_selftests_this_host_refuses_load_like_bpftools(
        kernel: str,
        vm_corpus: dict[str, tuple[dict[str, tuple[Run, Run]], dict[str, dict[str, Any]]]]
) -> None:
    """Every object whose bpftool loader loads in the kernel loads with ours, with the
    same maps and programs; where bpftool's fails, ours fails the same way."""
    per, _ = vm_corpus[kernel]
    problems = []
    for name, (ours, theirs) in sorted(per.items()):
        if theirs.rc == 0:
            if ours.rc != 0 or (ours.maps, ours.map_sizes) != (theirs.maps, theirs.map_sizes):
                problems.append(f"{name}: bpftool's loads, ours: {ours.out[:300]}")
        else:
            fail = [ln for ln in ours.out.splitlines() if ln.startswith("FAIL")]
            want = [ln for ln in theirs.out.splitlines() if ln.startswith("FAIL")]
            if ours.rc == 0 or fail != want:
                problems.append(f"{name}: bpftool's fails ({want}), ours: {ours.out[:300]}")
    assert not problems, "\n".join(problems)
    assert sum(t.rc == 0 for _, t in per.values()) > len(per) // 2


def test_selftests_this_host_refuses_load_through_run_in_sid(
        vm_corpus: dict[str, tuple[dict[str, tuple[Run, Run]], dict[str, dict[str, Any]]]]
) -> None:
    """run() in the sid guest, generating from that kernel's own facts, loads every
    object whose bpftool loader loads there, with as many maps and programs as that
    loader created."""
    if "sid" not in vm_corpus:
        pytest.skip("the sid kernel was not fetched")
    per, runs = vm_corpus["sid"]
    problems = []
    for name, (_, theirs) in sorted(per.items()):
        verdict = runs[f"{name}.bpf.o"]
        if theirs.rc == 0 and not verdict["ok"]:
            problems.append(f"{name}: bpftool's loads, run(): {verdict['error']}")
        elif theirs.rc == 0:
            made = (sum(m != [None, None] for m in theirs.maps),
                    sum(p != [None, None] for p in theirs.progs))
            if (verdict["maps"], verdict["progs"]) != made:
                problems.append(f"{name}: run() made {verdict}, bpftool's loader {made}")
    assert not problems, "\n".join(problems)


def test_kprobe_kretprobe_uprobe_fire_in_sid(vm_pytest: tuple[str, str, str]) -> None:
    """progs_probes loaded through run(), its kprobe, kretprobe and uprobe programs
    attached by hand through perf_event_open (this host has kprobes compiled out): each
    ran, as its counter shows."""
    out = vm_pytest[2]
    assert not out.startswith("error"), out
    hits = json.loads(out)
    assert hits["kprobe"] > 0 and hits["kretprobe"] > 0 and hits["uprobe"] > 0, hits
