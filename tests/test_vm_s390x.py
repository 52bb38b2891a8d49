"""Big-endian loaders in a big-endian kernel: Debian sid's s390x kernel, booted once
under qemu-system-s390x from an initramfs (tests/vm.py), runs our loader and bpftool
7.8.0's for every bpfeb fixture (tests/fixtures/eb) through a static s390x lskel-run.

Debian builds that kernel for z10, which has no BPF JIT: every program, the loader
included, runs in the interpreter. So the loaders of programs that need the JIT fail
there, for bpftool's loader and ours alike, with the verifier's own reason; the
others load and create every map and program. The same boot runs the kconfig
fixture's program, attached and triggered by tests/tools/lskel-trigger.c, to show
what a big-endian kernel reads from the .kconfig values a loader wrote (README
divergence 13). Skipped, with the reason, when no kernel could be had (no archive,
no QEMU)."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import kcaps
import pytest
import vm
from bpfgen_fast import BpfObject
from test_beyond import make_golden
from test_bpfeb import EB, EB_NAMES
from test_compat78 import b78, b78_header  # noqa: F401  (session fixture)
from test_kernel import Run, parse_run

ALL_KERNELS, WHY = vm.kernels()
S390X = next((k for k in ALL_KERNELS if k.busybox is not None), None)

#: fixtures whose loader the interpreter refuses, and the verifier's reason: programs
#: with callbacks (bpf_loop) or kfunc calls can only be JITed
NEEDS_JIT = {
    "callbacks.bpf": "callbacks are not allowed in non-JITed programs",
    "ksym_kfunc.bpf": "JIT is required for calling kernel function",
    "mixed_everything.bpf": "callbacks are not allowed in non-JITed programs",
}

RESULT_RE = re.compile(r"^@@ BEGIN (\S+)\n(.*?)^@@ END \1 rc=(\d+)$", re.M | re.S)


#: the kconfig fixture's facts for the byte-order proof (divergence 13): what the
#: program reads back must be these numbers
KCONFIG_FACTS = {"compat": "bpftool-7.8", "kernel_version": "6.18.44",
                 "kconfig": {"CONFIG_HZ": 250, "CONFIG_NR_CPUS": 256}}
#: kconfig_config (program 1, raw_tp/sys_enter) copies its values into .bss (map 0),
#: ``__u64 out[16]``: CONFIG_HZ to out[7], CONFIG_NR_CPUS to out[8], the kernel
#: version's major to out[14]
KCONFIG_TRIGGER = ("1", "sys_enter", "0")


@dataclass
class S390xBoot:
    #: fixture -> (ours, bpftool 7.8.0's), as lskel-run reported them
    results: dict[str, tuple[Run, Run]]
    #: "ours" / "bpftool-order" -> what lskel-trigger printed for the kconfig fixture
    kconfig: dict[str, str]


@pytest.fixture(scope="module")
def s390x_boot(lskel_run_s390x: Path, lskel_trigger_s390x: Path,
               b78: str) -> S390xBoot:  # noqa: F811
    """One boot of the s390x kernel for every job here. Each blob's name carries its
    sha256, so a result is read back only for the bytes this run generated."""
    if WHY:
        pytest.skip(WHY)
    if S390X is None:
        pytest.skip("the s390x kernel was not fetched")
    files: dict[str, bytes] = {"lskel-run": lskel_run_s390x.read_bytes(),
                               "lskel-trigger": lskel_trigger_s390x.read_bytes()}
    job: list[str] = []
    kconfig_keys: dict[str, str] = {}
    obj = BpfObject.open(EB / "kconfig.bpf.o")
    for who, order in (("ours", False), ("bpftool-order", True)):
        loader = obj.gen_loader(_bpftool_kconfig_host_order=order, **KCONFIG_FACTS)
        key = f"kconfig-trigger.{who}.{hashlib.sha256(loader.data + loader.insns).hexdigest()[:16]}"
        files[f"{key}.data"], files[f"{key}.insns"] = loader.data, loader.insns
        job.append(f'echo "@@ BEGIN {key}"; /jobs/lskel-trigger /jobs/{key}.data '
                   f'/jobs/{key}.insns {len(loader.map_names)} {len(loader.prog_names)} '
                   f'{" ".join(KCONFIG_TRIGGER)} 2>&1; echo "@@ END {key} rc=$?"\n')
        kconfig_keys[who] = key
    keys: dict[str, tuple[str, str]] = {}
    for name in EB_NAMES:
        obj = EB / f"{name}.o"
        loader = BpfObject.open(obj).gen_loader(compat="bpftool-7.8")
        header = b78_header(b78, obj)
        blobs = {"ours": (loader.data, loader.insns),
                 "theirs": (make_golden.decode_c_blob(header, "opts_data"),
                            make_golden.decode_c_blob(header, "opts_insn"))}
        counts = f"{len(loader.map_names)} {len(loader.prog_names)}"
        names = []
        for who, (data, insns) in blobs.items():
            key = f"{name}.{who}.{hashlib.sha256(data + insns).hexdigest()[:16]}"
            files[f"{key}.data"], files[f"{key}.insns"] = data, insns
            job.append(f'echo "@@ BEGIN {key}"; /jobs/lskel-run /jobs/{key}.data '
                       f'/jobs/{key}.insns {counts} 2>&1; echo "@@ END {key} rc=$?"\n')
            names.append(key)
        keys[name] = (names[0], names[1])
    printed = vm.boot_initramfs(S390X, "".join(job), files)
    outputs = {m.group(1): (int(m.group(3)), m.group(2))
               for m in RESULT_RE.finditer(printed.replace("\r\n", "\n"))}
    found = {key: parse_run(rc, out) for key, (rc, out) in outputs.items()}
    kconfig = {}
    for who, key in kconfig_keys.items():
        assert key in outputs, f"kconfig {who}: no result:\n{printed[-3000:]}"
        rc, out = outputs[key]
        kconfig[who] = f"{out}rc={rc}"
    results: dict[str, tuple[Run, Run]] = {}
    for name, (ours, theirs) in keys.items():
        assert ours in found and theirs in found, f"{name}: no result:\n{printed[-3000:]}"
        results[name] = (found[ours], found[theirs])
    saved = os.environ.get("BPFGEN_CAPS_FILE")  # the test command's summary gains a line
    if saved:  # and its capability table a column: what the loaders that ran used
        kcaps.save(kcaps.observed((r.maps, r.progs) for pair in results.values()
                                  for r in pair if r.rc == 0),
                   Path(saved).with_name("capabilities-s390x.json"))
        loaded = [sum(r[i].rc == 0 for r in results.values()) for i in (0, 1)]
        Path(saved).with_name("vm-s390x.txt").write_text(
            f"s390x ({S390X.version}): bpfeb fixtures loaded: ours {loaded[0]} of "
            f"{len(results)}, bpftool 7.8's {loaded[1]} of {len(results)} (the rest need "
            f"the JIT this kernel lacks)\n")
    return S390xBoot(results, kconfig)


@pytest.fixture(scope="module")
def s390x_results(s390x_boot: S390xBoot) -> dict[str, tuple[Run, Run]]:
    return s390x_boot.results


def _reason(run: Run) -> str:
    return next((ln[len("reason: "):] for ln in run.out.splitlines()
                 if ln.startswith("reason: ")), "")


@pytest.mark.parametrize("name", EB_NAMES)
def test_bpfeb_loads_like_bpftool_78s_in_s390x(
        name: str, s390x_results: dict[str, tuple[Run, Run]]) -> None:
    """Ours loads wherever bpftool 7.8.0's loads, with the same maps and programs, and
    fails the same way where it fails."""
    ours, theirs = s390x_results[name]
    if theirs.rc == 0:
        assert ours.rc == 0, f"bpftool's loader loads, ours does not:\n{ours.out}"
        assert (ours.maps, ours.map_sizes, ours.progs) == (
            theirs.maps, theirs.map_sizes, theirs.progs)
    else:
        assert (ours.rc, _reason(ours)) == (theirs.rc, _reason(theirs)), (ours, theirs)


@pytest.mark.parametrize("name", EB_NAMES)
def test_the_interpreter_runs_bpfeb_loaders(
        name: str, s390x_results: dict[str, tuple[Run, Run]]) -> None:
    """The loader program runs in the s390x interpreter and creates every map and
    program of the object; where the kernel cannot (no JIT), its own error says why."""
    ours, _ = s390x_results[name]
    if name in NEEDS_JIT:
        assert ours.rc == 1 and _reason(ours) == NEEDS_JIT[name], ours.out
        return
    assert ours.rc == 0, ours.out
    assert ours.progs and all(p != [None, None] for p in ours.progs), ours.out
    assert all(m != [None, None] for m in ours.maps), ours.out


def _kconfig_out(printed: str) -> tuple[int, ...]:
    """The program's ``__u64 out[16]``, as the big-endian kernel holds it."""
    assert printed.endswith("rc=0") and printed.startswith("value "), printed
    return struct.unpack(">16Q", bytes.fromhex(printed.split()[1]))


def test_kconfig_values_read_right_in_a_big_endian_kernel(s390x_boot: S390xBoot) -> None:
    """Divergence 13, in the kernel: the kconfig fixture's program, attached to sys_enter
    and triggered in the s390x guest, reads CONFIG_HZ, CONFIG_NR_CPUS and the kernel
    version from the .kconfig values our loader wrote, and copies them out; with
    bpftool 7.8.0's bytes (host order: ``_bpftool_kconfig_host_order``, byte for byte
    its header's, tests/test_bpfeb.py) it reads them byte-swapped."""
    ours = _kconfig_out(s390x_boot.kconfig["ours"])
    assert (ours[7], ours[8], ours[14]) == (250, 256, 6), ours
    theirs = _kconfig_out(s390x_boot.kconfig["bpftool-order"])
    swapped_hz = int.from_bytes((250).to_bytes(4, "little"), "big", signed=True)
    assert theirs[7] == swapped_hz & (2**64 - 1), theirs  # int, sign-extended to u64
    assert theirs[8] == int.from_bytes((256).to_bytes(8, "little"), "big"), theirs
    assert theirs[14] == int.from_bytes((0x06122C).to_bytes(4, "little"), "big") >> 16
