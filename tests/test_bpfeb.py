"""Big-endian (``--target=bpfeb``) objects: bpftool 7.5.0 / libbpf 1.5 refuse them;
bpftool 7.8.0 (libbpf 1.8) generates cross-endian loaders, and so do we under
``compat="bpftool-7.8"``: the header, with its data and instruction blobs, is
byte-identical to bpftool 7.8.0's for every bpfeb fixture (tests/fixtures/eb, built by
tests/fixtures/build.sh), except the documented `.kconfig` byte-order divergence.
These loaders target big-endian kernels, so they are proven by bytes, not loaded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bpfgen_fast import BpfObject, ElfError
from support import FIXDIR, run_cli
from test_compat78 import b78, b78_header  # noqa: F401  (session fixture)

EB = FIXDIR / "eb"
EB_NAMES = sorted(p.name[: -len(".o")] for p in EB.glob("*.bpf.o"))
#: the test-only options that restore bpftool 7.8.0's bytes where we diverge on purpose
EB_COMPAT: dict[str, dict[str, bool]] = {
    "ksym_kfunc.bpf": {"_bpftool_ksym_names": True},  # ___flavour kfunc lookups
    "kconfig.bpf": {"_bpftool_kconfig_host_order": True},  # .kconfig values' byte order
}


def test_there_are_bpfeb_fixtures() -> None:
    assert len(EB_NAMES) >= 16
    for name in EB_NAMES:
        assert (EB / f"{name}.o").read_bytes()[5] == 2, f"{name} is not big-endian"


@pytest.mark.parametrize("name", EB_NAMES)
def test_bpfeb_header_matches_bpftool_78(name: str, b78: str) -> None:  # noqa: F811
    obj = EB / f"{name}.o"
    ours = BpfObject.open(obj).gen_skeleton(compat="bpftool-7.8", **EB_COMPAT.get(name, {}))
    assert ours == b78_header(b78, obj)


@pytest.mark.usefixtures("cli_entry")
def test_bpfeb_cli(b78: str) -> None:  # noqa: F811
    obj = EB / "global_data.bpf.o"
    r = run_cli("gen", "skeleton", "-L", "--compat", "bpftool-7.8", obj.name, cwd=obj.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b78_header(b78, obj)


@pytest.mark.usefixtures("cli_entry")
def test_bpfeb_refused_as_bpftool_75() -> None:
    obj = BpfObject.open(EB / "minimal.bpf.o")  # opening (inspect) works
    assert obj.programs
    with pytest.raises(ElfError) as e:
        obj.gen_loader()
    assert str(e.value) == (
        "minimal_bpf: ELF header+0x5: elf: endianness mismatch in minimal_bpf (a big-endian "
        "object: bpftool 7.5.0 refuses it; --compat bpftool-7.8 generates its loader)")
    r = run_cli("gen", "skeleton", "-L", str(EB / "minimal.bpf.o"))
    assert r.returncode == 1 and "endianness mismatch" in r.stderr


def test_bpfeb_blobs_are_the_little_endian_ones_swapped() -> None:
    """Independently of bpftool: the loader instructions of a bpfeb object are libbpf's
    little-endian ones with each instruction byte-swapped (regs nibbles exchanged, off and
    imm big-endian), for an object whose code is the same in both byte orders."""
    le = BpfObject.open(FIXDIR / "obj" / "minimal.bpf.o").gen_loader(compat="bpftool-7.8")
    be = BpfObject.open(EB / "minimal.bpf.o").gen_loader(compat="bpftool-7.8")
    assert len(le.insns) == len(be.insns) and len(le.data) == len(be.data)
    for i in range(0, len(le.insns), 8):
        a, b = le.insns[i:i + 8], be.insns[i:i + 8]
        assert b[0] == a[0] and b[1] == ((a[1] << 4) | (a[1] >> 4)) & 0xFF
        assert b[2:4] == a[2:4][::-1] and b[4:8] == a[4:8][::-1]


def test_bpfeb_kconfig_values_in_target_order() -> None:
    """Divergence: libbpf 1.8 writes computed .kconfig values in the build host's byte
    order; a big-endian kernel would read LINUX_KERNEL_VERSION 6.18.44 (0x06122c) as
    0x2c120600. Ours are big-endian; only those bytes differ."""
    obj = BpfObject.open(EB / "kconfig.bpf.o")
    host = {"compat": "bpftool-7.8", "kernel_version": "6.18.44",
            "kconfig": {"CONFIG_HZ": 250}}
    ours = obj.gen_loader(**host).data
    theirs = obj.gen_loader(_bpftool_kconfig_host_order=True, **host).data
    assert (0x06122C).to_bytes(4, "big") in ours and (0x06122C).to_bytes(4, "little") in theirs
    assert (250).to_bytes(4, "big") in ours
    assert len(ours) == len(theirs)
    differing = [i for i, (x, y) in enumerate(zip(ours, theirs)) if x != y]
    assert 0 < len(differing) <= 16, differing


#: objects clang compiles to different code for bpfeb: name -> {program: why}; their
#: instruction counts (and so the data blob's size) are not compared
EB_CODEGEN_DIFFERS: dict[str, dict[str, str]] = {
    # `struct { u32 a, b; } = {7, 0}` stored as one u64: `r1 = 7` little-endian,
    # `r1 = 7 << 32 ll` (an ld_imm64, one more insn) big-endian
    "callbacks.bpf": {"run_loop": "u64 constant 7 << 32 needs an ld_imm64 on bpfeb"},
}


def _explain_shape(e: Any, name: str) -> list[tuple[Any, ...]]:
    """What must agree between a bpfeb loader's explanation and the bpfel one's: the
    steps in order, the maps, the programs (instruction counts except where clang's
    code differs), attach targets and ksym relocations."""
    from bpfgen_fast.explain import MapCreate, MapPopulate, MapUpdate, ProgLoad

    differs = EB_CODEGEN_DIFFERS.get(name, {})
    out: list[tuple[Any, ...]] = []
    for s in e.steps:
        if isinstance(s, MapCreate):
            out.append((s.op, s.index, s.name, s.type_name, s.key_size, s.value_size,
                        s.max_entries, s.flags, s.map_extra, s.uses_btf_fd,
                        s.uses_inner_map_fd, s.vmlinux_value_type))
        elif isinstance(s, ProgLoad):
            t = s.attach_target
            out.append((
                s.op, s.index, s.ctx_slot, s.name, s.type_name, s.attach_type_name,
                s.prog_flags, s.license, None if s.name in differs else s.insn_cnt,
                s.func_info_cnt, s.line_info_cnt, s.core_relo_cnt,
                None if t is None else (t.name, t.kind_name),
                tuple((r.name, r.kind, r.btf_kind, r.insn, r.patched_insn, r.strong,
                       r.repeat_of, r.fd_slot) for r in s.relocations),
            ))
        elif isinstance(s, MapUpdate):
            out.append((s.op, s.map_name, s.value_size, s.key))
        elif isinstance(s, MapPopulate):
            out.append((s.op, s.map_name, s.slot, s.inner_name))
        else:
            out.append((s.op,) + ((s.map_name,) if hasattr(s, "map_name") else ()))
    cl = e.cleanup
    out.append((cl.op, cl.prog_fd_slots, cl.map_fd_slots, cl.prog_fd_blob))
    out.append(("maps", e.nr_maps, e.nr_prog_slots, e.ctx_size,
                tuple((m.index, m.name) for m in e.skipped_maps)))
    return out


@pytest.mark.parametrize("name", EB_NAMES)
def test_explain_decodes_big_endian_loaders(name: str) -> None:
    """explain() reads a bpfeb loader in its byte order (from its first insn): the same
    steps as the bpfel object's loader, built from the same source (core_field is not in
    the eb set: clang's bpfeb CO-RE code differs)."""
    from bpfgen_fast import Explanation, explain
    from bpfgen_fast.explain import decode, disasm

    be_loader = BpfObject.open(EB / f"{name}.o").gen_loader(compat="bpftool-7.8")
    le_loader = BpfObject.open(FIXDIR / "obj" / f"{name}.o").gen_loader(compat="bpftool-7.8")
    be, le = explain(be_loader, disasm=True), explain(le_loader)
    assert be.big_endian and not le.big_endian
    assert _explain_shape(be, name) == _explain_shape(le, name)
    assert be.insn_cnt == le.insn_cnt  # the loaders differ in their blobs' contents only
    if name not in EB_CODEGEN_DIFFERS:
        assert be.data_size == le.data_size
    differs = EB_CODEGEN_DIFFERS.get(name, {})
    for p, q in zip(be.programs, le.programs):  # the programs' code, decoded big-endian
        if p.name not in differs:
            code = be_loader.data[p.insns : p.insns + 8 * p.insn_cnt]
            le_code = le_loader.data[q.insns : q.insns + 8 * q.insn_cnt]
            assert disasm(code, blob=False, big_endian=True) == disasm(le_code, blob=False)
    assert be.disasm[0].endswith("r6 = r1") and be.disasm[-1].endswith("exit")
    assert be.to_text().splitlines()[0].endswith("big-endian (bpfeb) target")
    assert le.to_text().splitlines()[0].endswith("little-endian target")
    # raw blobs (as read back from files) carry their byte order in their first insn
    raw = decode(be_loader.data, be_loader.insns, be_loader.map_names, be_loader.prog_names,
                 ctx_size=be_loader.ctx_size, with_disasm=True)
    assert raw == be
    # JSON round trip keeps the byte order
    text = be.to_json()
    assert json.loads(text)["big_endian"] is True
    back = Explanation.from_json(text)
    assert back == be and back.to_json() == text


def test_explain_big_endian_details() -> None:
    """The decoded values are the big-endian ones, not byte-swapped garbage; read_loader
    blobs decode too; JSON written before the byte order existed loads as little-endian."""
    from bpfgen_fast import Explanation, explain
    from bpfgen_fast.explain import decode, disasm

    loader = BpfObject.open(EB / "ksym_var.bpf.o").gen_loader(compat="bpftool-7.8")
    e = explain(loader)
    assert [(m.name, m.type_name, m.key_size, m.value_size, m.max_entries) for m in e.maps] \
        == [("ksym_var.bss", "array", 4, 32, 1)]
    relos = [(r.name, r.kind, r.strong, r.insn, r.patched_insn)
             for p in e.programs for r in p.relocations]
    assert ("bpf_prog_active", "ksym", True, 5, "r1 = 0x0 ll (btf id)") in relos
    # forcing the wrong byte order fails to decode instead of producing nonsense
    from bpfgen_fast import LoaderDecodeError

    with pytest.raises(LoaderDecodeError, match="insn 0: expected r6 = r1"):
        decode(loader.data, loader.insns, big_endian=False)
    assert disasm(loader.insns)[0] == "    0: (bf) r6 = r1"
    assert disasm(loader.insns, big_endian=False)[0] == "    0: (bf) r1 = r6"
    d = json.loads(e.to_json())
    del d["big_endian"]
    assert Explanation.from_dict(d).big_endian is False
    d["big_endian"] = "yes"
    with pytest.raises(LoaderDecodeError, match="bad explanation JSON"):
        Explanation.from_dict(d)


def test_explain_reads_big_endian_blobs_from_files(tmp_path: Path) -> None:
    from bpfgen_fast import explain
    from bpfgen_fast.explain import read_loader

    loader = BpfObject.open(EB / "map_in_map.bpf.o").gen_loader(compat="bpftool-7.8")
    loader.write(tmp_path / "p")
    back = read_loader(tmp_path / "p")
    assert back._core is None
    e = explain(back)
    assert e.big_endian
    assert e == replace(explain(loader), ctx_size=e.ctx_size)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("name", EB_NAMES)
def test_selfcheck_reads_big_endian_loaders(name: str, signed: bool) -> None:
    """The loader self-check reads big-endian loaders (unsigned and signed): every
    MAP_CREATE / PROG_LOAD matches the object, every reference stays in bounds."""
    from bpfgen_fast import _core, host_args

    obj = BpfObject.open(EB / f"{name}.o")
    host = dict(host_args(compat="bpftool-7.8"), gen_hash=signed)
    data, insns, maps, progs = obj._core.gen_loader(host)
    assert insns[1] == 0x61  # r6 = r1, big-endian nibbles
    report = _core.selfcheck(data, insns, list(maps), list(progs))
    assert len(report["map_creates"]) >= 1 or not maps
    obj._core.selfcheck(data, insns, host)


def test_run_refuses_a_loader_for_the_other_byte_order() -> None:
    from bpfgen_fast import LoadError, run

    loader = BpfObject.open(EB / "minimal.bpf.o").gen_loader(compat="bpftool-7.8")
    with pytest.raises(LoadError) as e:
        run(loader)
    assert str(e.value) == ("loader: this loader is for a big-endian target, this machine "
                            "is little-endian")
