"""Big-endian (``--target=bpfeb``) objects: bpftool 7.5.0 / libbpf 1.5 refuse them;
bpftool 7.8.0 (libbpf 1.8) generates cross-endian loaders, and so do we under
``compat="bpftool-7.8"``: the header, with its data and instruction blobs, is
byte-identical to bpftool 7.8.0's for every bpfeb fixture (tests/fixtures/eb, built by
tests/fixtures/build.sh), except the documented `.kconfig` byte-order divergence.
These loaders target big-endian kernels, so they are proven by bytes, not loaded."""

from __future__ import annotations

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


def test_bpfeb_cli(b78: str) -> None:  # noqa: F811
    obj = EB / "global_data.bpf.o"
    r = run_cli("gen", "skeleton", "-L", "--compat", "bpftool-7.8", obj.name, cwd=obj.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b78_header(b78, obj)


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


def test_explain_refuses_big_endian_loaders() -> None:
    from bpfgen_fast import LoaderDecodeError, explain

    loader = BpfObject.open(EB / "minimal.bpf.o").gen_loader(compat="bpftool-7.8")
    with pytest.raises(LoaderDecodeError, match="big-endian"):
        explain(loader)


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
