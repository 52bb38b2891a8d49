"""Fixtures for the rest of libbpf 1.5's gen_loader feature matrix: CO-RE,
typed/typeless ksyms and kfuncs, kconfig externs, BTF attach targets, plus the
objects bpftool rejects or crashes on (tests/fixtures/README.md lists them).

* byte equality with bpftool's goldens; the host-dependent fixtures (kconfig,
  kallsyms) are generated hermetically from golden/host.json and
  golden/host-inputs/ so they reproduce the golden on any machine;
* a live comparison with a fresh `bpftool gen skeleton -L` run on this host,
  with every host fact read from the host;
* loading through lskel-run: ours must load exactly like bpftool's blobs (and be
  refused exactly like them where the test kernel refuses, e.g. fentry/LSM).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject, UnsupportedError
from support import (
    BAD,
    FIXDIR,
    GOLDEN,
    HOST,
    KERNEL,
    compat,
    first_diff,
    golden_blobs,
    golden_meta,
    host_facts,
    loadable,
    obj_path,
)

CORE = ["core_field.bpf", "core_type_enum.bpf", "core_subprog.bpf"]
EXTERNS = ["ksym_kfunc.bpf", "ksym_var.bpf", "ksym_typeless.bpf", "kconfig.bpf"]
ATTACH = ["attach_tracing.bpf", "attach_lsm.bpf", "attach_tp_btf.bpf", "attach_iter.bpf"]
NEW = CORE + EXTERNS + ATTACH

HOST_DEPENDENT: dict[str, list[str]] = HOST.get("host_dependent", {})  # type: ignore[assignment]
HOST_INPUTS = GOLDEN / "host-inputs"
EXPECTED_BAD = (BAD / "EXPECTED.txt").read_text()

#: what the 6.18 test kernel does with bpftool's blobs (golden/kernel.json)
REFUSED = {
    # no fentry/fexit/fmod_ret/LSM program loads on the test kernel
    "attach_tracing.bpf": "failed to execute loader prog: -1 (Operation not permitted)",
    "attach_lsm.bpf": "failed to execute loader prog: -1 (Operation not permitted)",
    # no CONFIG_KALLSYMS_ALL: the verifier cannot find bpf_prog_active's address
    "ksym_var.bpf": "failed to execute loader prog: -2 (No such file or directory)",
}


def _make_golden() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", FIXDIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_golden = _make_golden()


def hermetic_args(name: str) -> dict[str, Any]:
    """Every host fact the golden of NAME was made with (golden/host.json, host-inputs/)."""
    args: dict[str, Any] = dict(host_facts())
    needs = HOST_DEPENDENT.get(name, [])
    if "kernel_version" in needs:
        args["kernel_version"] = int(str(HOST["kernel_version"]))
    if "kconfig" in needs:
        args["kconfig_file"] = HOST_INPUTS / "kconfig"
    if "kallsyms" in needs:
        args["kallsyms_file"] = HOST_INPUTS / "kallsyms"
    return args


def assert_same_blobs(data: bytes, insns: bytes, name: str, what: str = "golden") -> None:
    gdata, ginsns = golden_blobs(name)
    assert len(data) == len(gdata), f"{name}: data size {len(data)} != {what} {len(gdata)}"
    assert data == gdata, (
        f"{name}: data differs from {what} first at byte {first_diff(data, gdata)}")
    assert len(insns) == len(ginsns), (
        f"{name}: insn count {len(insns) // 8} != {len(ginsns) // 8}")
    d = first_diff(insns, ginsns)
    assert d is None, f"{name}: insns differ from {what} first at insn {(d or 0) // 8}"


# -- the fixtures are what they claim to be ----------------------------------------------

def _btf_ext_core_relos(path: Path) -> dict[str, list[int]]:
    """{section name: [CO-RE relo kind, ...]} from the object's .BTF.ext (ELF64 LE)."""
    elf = path.read_bytes()
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    secs = []
    for i in range(shnum):
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", elf,
                                                                  shoff + i * shentsize)
        secs.append((name, off, size))
    strtab = secs[shstrndx][1]

    def sec(want: str) -> bytes:
        for name, off, size in secs:
            end = elf.index(b"\0", strtab + name)
            if elf[strtab + name:end].decode() == want:
                return elf[off:off + size]
        raise KeyError(want)

    btf, ext = sec(".BTF"), sec(".BTF.ext")
    btf_hdr_len, _, _, str_off, _ = struct.unpack_from("<IIIII", btf, 4)
    strs = btf[btf_hdr_len + str_off:]
    hdr_len, = struct.unpack_from("<I", ext, 4)
    core_off, core_len = struct.unpack_from("<II", ext, 24)
    core = ext[hdr_len + core_off:hdr_len + core_off + core_len]
    rec_size, = struct.unpack_from("<I", core, 0)
    out: dict[str, list[int]] = {}
    at = 4
    while at < len(core):
        name_off, n = struct.unpack_from("<II", core, at)
        at += 8
        name = strs[name_off:strs.index(b"\0", name_off)].decode()
        for _ in range(n):
            out.setdefault(name, []).append(struct.unpack_from("<IIII", core, at)[3])
            at += rec_size
    return out


def test_core_fixtures_cover_every_relocation_kind() -> None:
    field = _btf_ext_core_relos(obj_path("core_field.bpf"))
    types = _btf_ext_core_relos(obj_path("core_type_enum.bpf"))
    sub = _btf_ext_core_relos(obj_path("core_subprog.bpf"))

    def kinds(relos: dict[str, list[int]]) -> set[int]:
        return {k for ks in relos.values() for k in ks}

    # FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED, FIELD_LSHIFT_U64,
    # FIELD_RSHIFT_U64
    assert kinds(field) == {0, 1, 2, 3, 4, 5}
    # TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, ENUMVAL_EXISTS, ENUMVAL_VALUE,
    # TYPE_MATCHES
    assert kinds(types) == {6, 7, 8, 9, 10, 11, 12}
    # relocations inside .text sub-programs, appended to both programs
    assert set(sub) == {".text", "raw_tp/sys_enter", "tp/syscalls/sys_enter_getpid"}
    assert set(sub[".text"]) == {0, 2, 9, 11}
    obj = BpfObject.open(obj_path("core_subprog.bpf"))
    assert set(obj.subprograms) >= {"parent_tgid", "core_consts"}


def test_host_dependence_is_recorded() -> None:
    assert HOST_DEPENDENT == {"kconfig.bpf": ["kconfig", "kernel_version"],
                              "ksym_typeless.bpf": ["kallsyms"]}
    assert int(str(HOST["kernel_version"])) > 0
    assert HOST["host_inputs"] == {"kconfig": "host-inputs/kconfig",
                                   "kallsyms": "host-inputs/kallsyms"}
    kconfig = (HOST_INPUTS / "kconfig").read_text().splitlines()
    names = {re.match(r"^(?:# )?(CONFIG_\w+)", line).group(1) for line in kconfig}  # type: ignore[union-attr]
    # every strong CONFIG_ extern of kconfig.bpf, and the weak "is not set" one
    assert names == {"CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_BPF_LSM", "CONFIG_HZ",
                     "CONFIG_NR_CPUS", "CONFIG_DEFAULT_HOSTNAME", "CONFIG_LOCALVERSION",
                     "CONFIG_LOCALVERSION_AUTO"}
    assert "# CONFIG_LOCALVERSION_AUTO is not set" in kconfig
    kallsyms = [line.split() for line in (HOST_INPUTS / "kallsyms").read_text().splitlines()]
    assert sorted(parts[2] for parts in kallsyms) == ["schedule", "vfs_read"]


@pytest.mark.skipif(shutil.which(make_golden.BPFTOOL) is None, reason="bpftool not found")
def test_host_dependence_matches_the_objects() -> None:
    """host.json's host_dependent is what make_golden derives from the objects' BTF."""
    found = {}
    for path in sorted((FIXDIR / "obj").glob("*.o")):
        kconfig, typeless = make_golden.extern_names(str(path))
        if any(n.startswith("CONFIG_") for n in kconfig) or typeless or \
                "LINUX_KERNEL_VERSION" in kconfig:
            found[path.name[:-2]] = (sorted(kconfig), sorted(typeless))
    assert set(found) == set(HOST_DEPENDENT)
    assert found["ksym_typeless.bpf"] == ([], ["bpfgen_no_such_sym", "schedule", "vfs_read"])


# -- byte equality with the goldens --------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_blobs_equal_bpftool_golden(name: str) -> None:
    loader = bpfgen_fast.gen_loader(obj_path(name), **hermetic_args(name), **compat(name))
    assert_same_blobs(loader.data, loader.insns, name)
    meta = golden_meta(name)
    assert list(loader.prog_names) == meta["prog_fields"]
    assert len(loader.map_names) == meta["maps"]


@pytest.mark.parametrize("name", sorted(HOST_DEPENDENT))
def test_hermetic_inputs_accept_version_string(name: str) -> None:
    args = hermetic_args(name)
    code = int(str(HOST["kernel_version"]))
    args["kernel_version"] = f"{code >> 16}.{(code >> 8) & 0xff}.{code & 0xff}"
    loader = bpfgen_fast.gen_loader(obj_path(name), **args)
    assert_same_blobs(loader.data, loader.insns, name)


def test_kconfig_golden_depends_on_the_hermetic_inputs(tmp_path: Path) -> None:
    """The golden is not reproduced by accident: each recorded input matters."""
    name = "kconfig.bpf"
    gdata, _ = golden_blobs(name)
    other_version = dict(hermetic_args(name), kernel_version="5.10.1")
    assert bpfgen_fast.gen_loader(obj_path(name), **other_version).data != gdata
    config = (HOST_INPUTS / "kconfig").read_text()
    changed = tmp_path / "kconfig"
    changed.write_text(re.sub(r"(?m)^CONFIG_HZ=\d+$", "CONFIG_HZ=1000", config))
    assert changed.read_text() != config
    other_config = dict(hermetic_args(name), kconfig_file=changed)
    assert bpfgen_fast.gen_loader(obj_path(name), **other_config).data != gdata


def test_typeless_golden_depends_on_kallsyms(tmp_path: Path) -> None:
    name = "ksym_typeless.bpf"
    gdata, ginsns = golden_blobs(name)
    lines = (HOST_INPUTS / "kallsyms").read_text().splitlines()
    moved = tmp_path / "kallsyms"
    moved.write_text("".join(
        f"{int(line.split()[0], 16) + 0x1000:016x} {' '.join(line.split()[1:])}\n"
        for line in lines))
    args = dict(hermetic_args(name), kallsyms_file=moved)
    loader = bpfgen_fast.gen_loader(obj_path(name), **args)
    assert (loader.data, loader.insns) != (gdata, ginsns)
    assert len(loader.data) == len(gdata) and loader.insns == ginsns  # only baked addresses


@pytest.mark.parametrize("name", [n for n in NEW if n not in HOST_DEPENDENT])
def test_host_independent_fixtures_ignore_host_inputs(name: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    args: dict[str, Any] = {**host_facts(), "kernel_version": "1.2.3", "kconfig_file": empty,
                            "kallsyms_file": empty}
    loader = bpfgen_fast.gen_loader(obj_path(name), **args, **compat(name))
    assert_same_blobs(loader.data, loader.insns, name)


# -- live comparison with bpftool on this host -----------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_live_host_output_equals_fresh_bpftool(name: str, bpftool: str) -> None:
    p = subprocess.run([bpftool, "gen", "skeleton", "-L", f"obj/{name}.o"], cwd=FIXDIR,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    data = make_golden.decode_c_blob(p.stdout, "opts_data")
    insns = make_golden.decode_c_blob(p.stdout, "opts_insn")
    # every host fact read from this host
    loader = bpfgen_fast.gen_loader(obj_path(name), **compat(name))
    assert len(loader.data) == len(data)
    assert loader.data == data, f"data differs first at byte {first_diff(loader.data, data)}"
    d = first_diff(loader.insns, insns)
    assert d is None, f"insns differ first at insn {(d or 0) // 8}"


# -- loading ------------------------------------------------------------------------------------

MAP_RE = re.compile(r"^map\[(\d+)\] fd=(-?\d+)(?: type=(\d+) name=(\S*) key=(\d+) value=(\d+) "
                    r"max_entries=(\d+) flags=0x([0-9a-f]+))?")
PROG_RE = re.compile(r"^prog\[(\d+)\] fd=(-?\d+)(?: type=(\d+) name=(\S*))?")


@dataclass
class Run:
    rc: int
    out: str
    maps: list[object]
    progs: list[object]
    fail: list[str]

    def __str__(self) -> str:
        return f"exit {self.rc}\n{self.out}"


def lskel(tool: Path, data: Path, insns: Path, nr_maps: int, nr_progs: int) -> Run:
    p = subprocess.run([str(tool), str(data), str(insns), str(nr_maps), str(nr_progs)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    run = Run(p.returncode, p.stdout, [], [], [])
    for line in p.stdout.splitlines():
        if m := MAP_RE.match(line):
            run.maps.append(None if m.group(3) is None else
                            [int(m.group(3)), m.group(4)] + [int(m.group(i)) for i in (5, 6, 7)]
                            + [int(m.group(8), 16)])
        elif m := PROG_RE.match(line):
            run.progs.append(None if m.group(3) is None else [int(m.group(3)), m.group(4)])
        elif line.startswith("FAIL "):
            run.fail.append(line[5:])
    return run


def run_ours(tool: Path, loader: bpfgen_fast.Loader, tmp_path: Path) -> Run:
    data, insns, _ = loader.write(tmp_path / "ours")
    return lskel(tool, data, insns, len(loader.map_names), len(loader.prog_names))


def run_bpftools(tool: Path, name: str) -> Run:
    meta = golden_meta(name)
    return lskel(tool, GOLDEN / f"{name}.data.bin", GOLDEN / f"{name}.insns.bin",
                 int(str(meta["maps"])), int(str(meta["progs"])))


def recorded(name: str) -> tuple[list[object], list[object]]:
    k: dict[str, Any] = KERNEL[name]
    maps: list[object] = [None if t is None else [t, n, *s]
                          for (t, n), s in zip(k["maps"], k["map_sizes"])]
    progs: list[object] = [None if t is None else [t, n] for t, n in k["progs"]]
    return maps, progs


def test_every_new_fixture_was_kernel_checked() -> None:
    assert set(NEW) <= set(KERNEL)
    assert {n for n in NEW if not KERNEL[n]["ok"]} == set(REFUSED)
    for name, error in REFUSED.items():
        assert KERNEL[name]["error"] == error


@pytest.mark.usefixtures("bpf_permitted")
@pytest.mark.parametrize("name", [n for n in NEW if n not in REFUSED])
def test_ours_loads_like_bpftools(name: str, lskel_run: Path, tmp_path: Path) -> None:
    """For the kfunc / typeless-ksym / kconfig fixtures, loading proves the loader's
    run-time lookups (btf_find_by_name_kind, kallsyms_lookup_name) and values work."""
    loadable(obj_path(name))
    loader = bpfgen_fast.gen_loader(obj_path(name), **hermetic_args(name))
    ours = run_ours(lskel_run, loader, tmp_path)
    theirs = run_bpftools(lskel_run, name)
    assert theirs.rc == 0, theirs
    assert ours.rc == 0, ours
    assert (ours.maps, ours.progs) == (theirs.maps, theirs.progs)
    assert (ours.maps, ours.progs) == recorded(name)
    assert all(p is not None for p in ours.progs)


@pytest.mark.usefixtures("bpf_permitted")
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_ours_is_refused_like_bpftools(name: str, lskel_run: Path, tmp_path: Path) -> None:
    loader = bpfgen_fast.gen_loader(obj_path(name), **hermetic_args(name))
    ours = run_ours(lskel_run, loader, tmp_path)
    theirs = run_bpftools(lskel_run, name)
    assert theirs.rc == 1 and theirs.fail == [REFUSED[name]], theirs
    assert ours.rc == 1, ours
    assert ours.fail == theirs.fail
    reason = [line for line in ours.out.splitlines() if line.startswith("reason: ")]
    assert reason == [f"reason: {KERNEL[name]['reason']}"]


@pytest.mark.usefixtures("bpf_permitted")
@pytest.mark.parametrize("name", sorted(HOST_DEPENDENT))
def test_host_read_output_loads(name: str, lskel_run: Path, tmp_path: Path) -> None:
    loadable(obj_path(name))
    ours = run_ours(lskel_run, bpfgen_fast.gen_loader(obj_path(name)), tmp_path)
    assert ours.rc == 0, ours
    assert (ours.maps, ours.progs) == recorded(name)


# -- objects bpftool rejects or crashes on ---------------------------------------------------

@pytest.mark.parametrize(("obj", "prog", "section", "reason", "ours_adds"), [
    ("fentry_notarget.bpf.o", "no_target", "fentry",
     "no BTF-based attach target is specified, use bpf_program__set_attach_target()",
     " (here: --attach-target no_target=FUNC, or programs['no_target'].attach_target)"),
    ("freplace.bpf.o", "replace_x", "freplace/x", "attach program FD is not set", ""),
])
def test_attach_target_errors_name_the_program(obj: str, prog: str, section: str,
                                               reason: str, ours_adds: str) -> None:
    """libbpf's reason, plus (where we have one) how to give the target."""
    line = f"libbpf: prog '{prog}': {reason}\n"
    assert f"== bad/{obj} (exit status 234)\n{line}" in EXPECTED_BAD
    opened = BpfObject.open(BAD / obj)  # libbpf opens it too; it fails at load
    assert list(opened.programs) == [prog]
    with pytest.raises(UnsupportedError) as ei:
        opened.gen_loader(**hermetic_args(obj[:-2]))
    e = ei.value
    assert e.reason == f"prog '{prog}': {reason}{ours_adds}"
    assert e.section == section
    assert str(e) == f"{obj[:-2].replace('.', '_')}: {section}: {e.reason}"
    with pytest.raises(UnsupportedError):
        bpfgen_fast.gen_loader(BAD / obj)


def test_bpftool_crashes_on_raw_tp_without_name() -> None:
    assert "== bad/raw_tp_noname.bpf.o (killed by signal 11, SIGSEGV)\n" in EXPECTED_BAD


@pytest.mark.usefixtures("bpf_permitted")
def test_raw_tp_without_name_loads(lskel_run: Path, tmp_path: Path) -> None:
    obj = BpfObject.open(BAD / "raw_tp_noname.bpf.o")
    assert obj.programs["raw_noname"].type == "raw_tracepoint"
    ours = run_ours(lskel_run, obj.gen_loader(**hermetic_args("raw_tp_noname.bpf")), tmp_path)
    assert ours.rc == 0, ours
    assert ours.progs == [[17, "raw_noname"]]
