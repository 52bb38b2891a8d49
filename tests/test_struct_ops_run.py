"""struct_ops maps through ``explain()``, the skeleton header and ``run()``: the decoded
loader (vmlinux value type lookup at MAP_CREATE, maps of ``SEC("?.struct_ops")`` not
created, no value written by the loader), the values written at attach time
(``struct_ops_values``, the header's ``__attach``), checked against the objects' own
``.struct_ops*`` sections and relocations read with pyelftools, and TCP congestion
controls registered by ``LoadedObject.attach()`` and unregistered by ``detach()`` /
``close()`` for real (root and bpf() needed; skipped otherwise, with the reason).

The objects: bpf_cubic / bpf_dctcp and the other struct_ops objects of the kernel
selftests corpus (``BPFGEN_SELFTESTS_OBJ`` or ``~/.cache/bpfgen/selftests/*/obj``,
built by scripts/selftests), and the fixture struct_ops_cc.bpf.o (a ``.struct_ops``
map, a ``.struct_ops.link`` map and a ``?.struct_ops`` map)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bpfgen_fast import BpfObject, LoadedObject, LoadError, _bpf, run
from bpfgen_fast.errors import BpfgenError
from bpfgen_fast.explain import (
    Explanation,
    MapCreate,
    MapFreeze,
    MapPopulate,
    MapUpdate,
    ProgArrayUpdate,
    SkippedMap,
    explain,
)
from bpfgen_fast.object import Loader
from bpfgen_fast.run import StructOpsValue, diagnose
from support import BAD, OBJDIR, require
from support import corpus_obj as _corpus_obj
from support import corpus_obj_dir as _corpus_dir

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")
CC_LIST = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
VALUE_TYPE = "bpf_struct_ops_tcp_congestion_ops"
ST_SECTIONS = (".struct_ops", ".struct_ops.link", "?.struct_ops", "?.struct_ops.link")
BPF_F_LINK = 1 << 13
# enum bpf_struct_ops_state, in the value's common header {refcnt, state}
STATE_INUSE, STATE_READY = 1, 3
BPF_LINK_TYPE_STRUCT_OPS = 9


def _need_kernel_btf() -> None:
    if not KERNEL_BTF.is_file():
        pytest.skip(f"struct_ops layouts need the kernel BTF: {KERNEL_BTF} not found")


def corpus_obj(name: str) -> Path:
    """A selftests object, for tests that also need the kernel BTF."""
    path = _corpus_obj(name)
    _need_kernel_btf()
    return path


def fixture_obj() -> Path:
    for d in (OBJDIR, BAD):
        path = d / "struct_ops_cc.bpf.o"
        if path.is_file():
            _need_kernel_btf()
            return path
    pytest.skip("fixture struct_ops_cc.bpf.o not found in tests/fixtures/obj")


# --------------------------------------------------------------------------------------------
# The object's own view, with pyelftools


@dataclass(frozen=True)
class ElfStructOps:
    """One struct_ops variable of the object: its section, the programs its function
    pointers hold (in relocation order) and its initial bytes."""

    section: str
    progs: tuple[str, ...]
    data: bytes

    @property
    def optional(self) -> bool:
        return self.section.startswith("?")

    @property
    def link(self) -> bool:
        return self.section.endswith(".link")

    @property
    def strings(self) -> list[bytes]:
        """NUL-terminated text in the initial bytes (e.g. a congestion control's name)."""
        return re.findall(rb"([ -~]{3,})\0", self.data)


def struct_ops_vars(path: Path) -> dict[str, ElfStructOps]:
    """struct_ops map (variable) name → what the object says about it, from the
    ``.struct_ops*`` sections, their symbols and ``.rel.struct_ops*`` relocations."""
    elftools = pytest.importorskip("elftools.elf.elffile", reason="pyelftools reads the ELF")
    out: dict[str, ElfStructOps] = {}
    with open(path, "rb") as f:
        elf = elftools.ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        assert symtab is not None
        for idx, sec in enumerate(elf.iter_sections()):
            if sec.name not in ST_SECTIONS:
                continue
            data = sec.data()
            variables = [
                (s.name, s["st_value"], s["st_size"]) for s in symtab.iter_symbols()
                if s["st_shndx"] == idx and s["st_info"]["type"] == "STT_OBJECT"
            ]
            progs: dict[str, list[str]] = {name: [] for name, _, _ in variables}
            rel = elf.get_section_by_name(".rel" + sec.name)
            for r in rel.iter_relocations() if rel is not None else ():
                sym = symtab.get_symbol(r["r_info_sym"])
                assert sym["st_info"]["type"] == "STT_FUNC", sym.name
                owner = [n for n, at, size in variables if at <= r["r_offset"] < at + size]
                assert len(owner) == 1, f"relocation at {r['r_offset']} in {sec.name}"
                progs[owner[0]].append(sym.name)
            for name, at, size in variables:
                out[name] = ElfStructOps(sec.name, tuple(progs[name]), data[at : at + size])
    return out


def cc_names(elf: dict[str, ElfStructOps]) -> dict[str, str]:
    """struct_ops map → the TCP congestion control name its value registers."""
    out = {}
    for name, var in elf.items():
        (text,) = var.strings
        out[name] = text.decode()
    return out


def values_of(obj: BpfObject) -> dict[str, StructOpsValue]:
    """What attaching each created struct_ops map writes, from the core (the loader's
    host facts), by map name."""
    loader = obj.gen_loader()
    assert loader._core is not None
    names = loader.map_names
    return {
        names[idx]: StructOpsValue(names[idx], link, bytes(value), tuple(funcs))
        for idx, link, value, funcs in loader._core.struct_ops_values(loader._host)
    }


def check_struct_ops(
    e: Explanation, elf: dict[str, ElfStructOps], values: dict[str, StructOpsValue]
) -> int:
    """Check every struct_ops map of ``e`` and its attach-time value against the object;
    returns how many were created."""
    creates = {s.name: s for s in e.maps}
    progs = {p.name: p for p in e.programs}
    skipped = {m.name for m in e.skipped_maps}
    # the loader writes no struct_ops value (nor anything else into those maps)
    st_index = {m.index for m in e.maps if m.type_name == "struct_ops"}
    for s in e.steps:
        if isinstance(s, (MapUpdate, MapFreeze, MapPopulate, ProgArrayUpdate)):
            assert s.map_index not in st_index, s
    # struct_ops programs are loaded when a created map uses them
    used = {p for var in elf.values() if not var.optional for p in var.progs}
    created = 0
    for name, var in elf.items():
        if var.optional:
            assert name in skipped and name not in creates and name not in values
            assert not {p for p in var.progs if p not in used} & set(progs)
            continue
        created += 1
        m = creates[name]
        assert isinstance(m, MapCreate)
        assert m.type_name == "struct_ops" and m.uses_btf_fd
        assert m.vmlinux_value_type is not None and m.vmlinux_value_type.startswith(
            "bpf_struct_ops_")
        assert bool(m.flags & BPF_F_LINK) == var.link
        v = values[name]
        assert v.map_name == name and v.link == var.link and len(v.value) == m.value_size
        assert sorted(p for _, p in v.funcs) == sorted(var.progs)
        offsets = [off for off, _ in v.funcs]
        assert len(set(offsets)) == len(offsets)
        assert all(o % 8 == 0 and o + 8 <= m.value_size for o in offsets)
        # the fds go in at attach time; the common header {refcnt, state} is the kernel's
        assert all(v.value[o : o + 8] == bytes(8) for o in offsets)
        assert v.value[:8] == bytes(8)
        for text in var.strings:  # the data members are copied (a congestion control name)
            assert text + b"\0" in v.value, text
        kern_type = m.vmlinux_value_type[len("bpf_struct_ops_"):]
        by_offset = sorted(v.funcs)
        for _, prog in by_offset:
            p = progs[prog]
            assert p.type_name == "struct_ops"
            # a struct_ops program attaches to one member of the kernel struct
            assert p.attach_target is not None
            assert (p.attach_target.name, p.attach_target.kind_name) == (kern_type, "struct")
            assert p.attach_type_name == f"member {p.expected_attach_type}"
        # members in the kernel struct's order: offsets grow with the member index
        members = [progs[prog].expected_attach_type for _, prog in by_offset]
        assert members == sorted(members) and len(set(members)) == len(members)
    assert set(values) == {n for n, var in elf.items() if not var.optional}
    return created


# --------------------------------------------------------------------------------------------
# explain and the attach-time values


@pytest.mark.parametrize("name, maps", [("bpf_cubic.bpf.o", ["cubic"]),
                                        ("bpf_dctcp.bpf.o", ["dctcp_nouse", "dctcp"])])
def test_explain_tcp_ca(name: str, maps: list[str]) -> None:
    path = corpus_obj(name)
    obj = BpfObject.open(path)
    e = explain(obj)
    elf = struct_ops_vars(path)
    assert sorted(elf) == sorted(maps)
    assert check_struct_ops(e, elf, values_of(obj)) == len(maps)
    st = [m for m in e.maps if m.type_name == "struct_ops"]
    assert [m.name for m in st] == maps
    assert all(m.vmlinux_value_type == VALUE_TYPE for m in st)
    assert e.skipped_maps == ()
    text = e.to_text()
    assert f"vmlinux value type {VALUE_TYPE}" in text
    assert "STRUCT_OPS" not in text  # no step registers anything


def test_explain_json_round_trip() -> None:
    e = explain(BpfObject.open(corpus_obj("bpf_cubic.bpf.o")), disasm=True)
    back = Explanation.from_json(e.to_json())
    assert back == e
    d = e.to_dict()
    (mc,) = (s for s in d["steps"] if s["op"] == "MAP_CREATE" and s["name"] == "cubic")
    assert mc["vmlinux_value_type"] == VALUE_TYPE
    assert d["skipped_maps"] == []
    # documents from before struct_ops support have neither field
    for s in d["steps"]:
        s.pop("vmlinux_value_type", None)
    del d["skipped_maps"]
    old = Explanation.from_dict(d)
    assert all(m.vmlinux_value_type is None for m in old.maps) and old.skipped_maps == ()


def test_explain_corpus_struct_ops() -> None:
    """Every struct_ops object of the corpus we generate a loader for decodes, and its
    struct_ops maps and their values match its sections and relocations."""
    corpus = _corpus_dir()
    if corpus is None:
        pytest.skip("no kernel selftests corpus cache (scripts/selftests)")
    _need_kernel_btf()
    checked = 0
    for path in sorted(corpus.glob("*.o")):
        elf = struct_ops_vars(path)
        if not elf:
            continue
        try:
            obj = BpfObject.open(path)
            values = values_of(obj)
        except BpfgenError:  # e.g. bpf_testmod's struct_ops: not in this kernel's BTF
            continue
        e = explain(obj)
        assert Explanation.from_json(e.to_json()) == e
        if check_struct_ops(e, elf, values):
            checked += 1
    assert checked >= 2


def test_diagnose_names_vmlinux_lookup() -> None:
    """A failed run's loader map tells when the struct_ops value type lookup failed."""
    obj = BpfObject.open(corpus_obj("bpf_cubic.bpf.o"))
    loader = obj.gen_loader()
    e = explain(loader)
    (mc,) = (m for m in e.maps if m.name == "cubic")
    blob = bytearray(loader.data)
    for m in e.maps:
        if m.index < mc.index:
            struct.pack_into("<I", blob, 4 * m.index, 10 + m.index)
        elif m.index == mc.index:
            struct.pack_into("<I", blob, mc.attr + 48, 3)  # BTF fd stored, lookup failed
    idx, what = diagnose(e, bytes(blob))
    assert idx == e.steps.index(mc)
    assert what == f"vmlinux BTF lookup struct '{VALUE_TYPE}' for map cubic"


def test_explain_fixture_skipped_map() -> None:
    path = fixture_obj()
    obj = BpfObject.open(path)
    e = explain(obj)
    elf = struct_ops_vars(path)
    assert {n: var.section for n, var in elf.items()} == {
        "bpfgen_cc": ".struct_ops", "bpfgen_cc_link": ".struct_ops.link",
        "bpfgen_cc_off": "?.struct_ops"}
    assert check_struct_ops(e, elf, values_of(obj)) == 2
    names = list(obj.maps)
    assert e.skipped_maps == (SkippedMap(names.index("bpfgen_cc_off"), "bpfgen_cc_off"),)
    assert e.nr_maps == len(names) and len(e.maps) == len(names) - 1
    assert [m.index for m in e.maps] == [k for k, n in enumerate(names) if n != "bpfgen_cc_off"]
    assert "cc_off_init" not in {p.name for p in e.programs}
    assert "NOT CREATED" in e.to_text() and "bpfgen_cc_off" in e.to_text()
    assert Explanation.from_json(e.to_json()) == e


_HEADER_BLOCK = re.compile(
    r"\tif \(ret >= 0 && skel->maps\.(\w+)\.map_fd > 0\) \{\n(.*?)\n\t\}\n", re.S)
_HEADER_IMAGE = re.compile(
    r'static const char image\[\] __attribute__\(\(__aligned__\(8\)\)\) = "\\\n(.*?)";', re.S)
_HEADER_FD = re.compile(
    r"\t\tprog_fd = skel->progs\.(\w+)\.prog_fd;\n"
    r"\t\tmemcpy\(value \+ (\d+), &prog_fd, sizeof\(prog_fd\)\);\n")


def header_struct_ops(header: str) -> dict[str, StructOpsValue]:
    """The struct_ops values the header's ``__attach`` writes, parsed from its text."""
    attach = header[header.index("__attach(struct"):header.index("__detach(struct")]
    detach = header[header.index("__detach(struct"):header.index("__destroy(struct")]
    out = {}
    for m in _HEADER_BLOCK.finditer(attach):
        name, block = m.group(1), m.group(2)
        (lit,) = _HEADER_IMAGE.findall(block)
        lit = lit.replace("\\\n", "")
        assert re.fullmatch(r"(?:\\0|\\x[0-9a-f]{2})*", lit), lit[:80]
        image = bytes(int(h, 16) if h else 0 for h in re.findall(r"\\(?:x([0-9a-f]{2})|0)", lit))
        funcs = tuple((int(off), prog) for prog, off in _HEADER_FD.findall(block))
        assert f"ret = skel_map_update_elem(skel->maps.{name}.map_fd, &zero, value, 0);" in block
        link = f"skel_link_create(skel->maps.{name}.map_fd, 0, BPF_STRUCT_OPS)" in block
        # __detach undoes it: the link closed, or the value deleted
        if link:
            assert f"skel_closenz(skel->links.{name}_fd);" in detach
        else:
            assert f"skel_map_delete_elem(skel->maps.{name}.map_fd, &zero);" in detach
        out[name] = StructOpsValue(name, link, image, funcs)
    return out


@pytest.mark.parametrize("which", ["fixture", "bpf_cubic.bpf.o", "bpf_dctcp.bpf.o"])
def test_header_writes_the_same_values(which: str) -> None:
    """``struct_ops_values`` (what run()'s attach writes) is exactly what the header's
    ``__attach`` writes: the same image bytes, the same programs' fds at the same
    offsets, a link for the same maps."""
    path = fixture_obj() if which == "fixture" else corpus_obj(which)
    obj = BpfObject.open(path)
    values = values_of(obj)
    assert header_struct_ops(obj.gen_skeleton()) == values
    elf = struct_ops_vars(path)
    assert set(values) == {n for n, var in elf.items() if not var.optional}
    assert all(values[n].link == elf[n].link for n in values)


# --------------------------------------------------------------------------------------------
# run


KEY0 = b"\0\0\0\0"


def registered_ccs() -> list[str]:
    return CC_LIST.read_text().split()


def _open_fds() -> dict[str, str]:
    out: dict[str, str] = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, gone by now
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return out


@pytest.fixture
def cc_list(bpf_permitted: None) -> Iterator[None]:
    """Skips without struct_ops registration or the congestion control list; checks no
    fd leaks."""
    require("struct_ops")
    if not CC_LIST.is_file():
        pytest.skip(f"{CC_LIST} not found: no TCP congestion control list to check")
    before = _open_fds()
    yield
    after = _open_fds()
    assert not {fd: t for fd, t in after.items() if fd not in before}, "fds leaked"


def _not_registered(*names: str) -> None:
    there = [n for n in names if n in registered_ccs()]
    if there:
        pytest.skip(f"congestion control {', '.join(there)} already registered (left over?)")


def check_kernel_value(loaded: LoadedObject, name: str, state: int) -> None:
    """The value the kernel holds for a registered map is the one attach wrote: the
    kernel reports the programs' ids where their fds were written, and its own
    {refcnt, state} header."""
    v = loaded.struct_ops_value(name)
    image = v.image(loaded.progs)
    want = bytearray(image)
    for off, prog in v.funcs:
        assert struct.unpack_from("<Q", image, off)[0] == loaded.progs[prog]
        struct.pack_into("<Q", want, off, loaded.prog_info(prog).id)
    got = loaded.lookup(name, KEY0)
    assert got is not None
    assert struct.unpack_from("<I", got, 4)[0] == state
    assert got[8:] == bytes(want[8:])


def test_run_bpf_cubic_registers_on_attach(cc_list: None) -> None:
    path = corpus_obj("bpf_cubic.bpf.o")
    cc = cc_names(struct_ops_vars(path))
    assert list(cc) == ["cubic"]
    obj = BpfObject.open(path)
    _not_registered(*cc.values())
    with run(obj) as loaded:
        # run() creates and loads, registers nothing
        assert loaded.struct_ops_maps == ("cubic",)
        assert loaded.struct_ops_registered == ()
        assert cc["cubic"] not in registered_ccs()
        assert loaded.lookup("cubic", KEY0) == bytes(loaded.map_info("cubic").value_size)
        assert loaded.map_info("cubic").type_name == "struct_ops"

        assert loaded.attach() == {}  # no link map; struct_ops programs do not attach
        assert loaded.links == {} and loaded.struct_ops_registered == ("cubic",)
        assert cc["cubic"] in registered_ccs()
        check_kernel_value(loaded, "cubic", STATE_INUSE)
        with pytest.raises(LoadError, match="already attached"):
            loaded.attach("cubic")
    assert loaded.closed
    assert cc["cubic"] not in registered_ccs()


def test_run_bpf_dctcp_refused_value_fails_attach_only(cc_list: None) -> None:
    """bpf_dctcp's ``dctcp_nouse`` sets only init and set_state: the kernel refuses to
    register such a congestion control (ssthresh, undo_cwnd and cong_avoid are
    mandatory). That no longer fails the load, only attaching that map, with EINVAL,
    as libbpf's ``bpf_map__attach_struct_ops`` would."""
    path = corpus_obj("bpf_dctcp.bpf.o")
    elf = struct_ops_vars(path)
    cc = cc_names(elf)
    obj = BpfObject.open(path)
    st_maps = tuple(n for n in obj.maps if n in elf)
    assert st_maps == ("dctcp_nouse", "dctcp")
    _not_registered(*cc.values())
    with run(obj) as loaded:
        assert set(loaded.progs) == {n for n, p in obj.programs.items() if p.autoload}
        assert loaded.struct_ops_maps == st_maps
        assert loaded.struct_ops_registered == ()
        assert not set(cc.values()) & set(registered_ccs())

        with pytest.raises(LoadError) as info:
            loaded.attach()
        err = info.value
        assert err.errno == errno.EINVAL
        assert err.step == "attach dctcp_nouse"
        assert str(err) == (f"{obj.name}: attach struct_ops map dctcp_nouse: value update: "
                            "Invalid argument (EINVAL)")
        assert loaded.struct_ops_registered == () and loaded.links == {}
        assert not set(cc.values()) & set(registered_ccs())

        assert loaded.attach("dctcp") == {}
        assert loaded.struct_ops_registered == ("dctcp",)
        assert cc["dctcp"] in registered_ccs() and cc["dctcp_nouse"] not in registered_ccs()
        check_kernel_value(loaded, "dctcp", STATE_INUSE)
        with pytest.raises(LoadError) as info:
            loaded.attach("dctcp_nouse")
        assert info.value.errno == errno.EINVAL
        assert loaded.struct_ops_registered == ("dctcp",)
    assert not set(cc.values()) & set(registered_ccs())


def test_run_fixture_struct_ops(cc_list: None) -> None:
    path = fixture_obj()
    elf = struct_ops_vars(path)
    cc = cc_names(elf)
    obj = BpfObject.open(path)
    created = tuple(n for n in obj.maps if n in elf and not elf[n].optional)
    assert created == ("bpfgen_cc", "bpfgen_cc_link")
    link_maps = {n for n in created if elf[n].link}
    assert link_maps == {"bpfgen_cc_link"}
    _not_registered(*cc.values())
    with run(obj) as loaded:
        # nothing registered by run(); ?.struct_ops: not created, its program not loaded
        assert not set(cc.values()) & set(registered_ccs())
        assert loaded.struct_ops_registered == () and loaded.links == {}
        assert loaded.struct_ops_maps == created
        assert loaded.skipped_maps == ("bpfgen_cc_off",)
        assert "bpfgen_cc_off" not in loaded.maps
        with pytest.raises(KeyError, match="not created"):
            loaded.map_fd("bpfgen_cc_off")
        assert "cc_off_init" not in loaded.progs
        for n in created:
            assert loaded.lookup(n, KEY0) == bytes(len(loaded.struct_ops_value(n).value))

        made = loaded.attach()
        assert set(made) == link_maps and loaded.links == made
        assert loaded.struct_ops_registered == created
        assert {cc[n] for n in created} <= set(registered_ccs())
        assert cc["bpfgen_cc_off"] not in registered_ccs()
        check_kernel_value(loaded, "bpfgen_cc", STATE_INUSE)
        check_kernel_value(loaded, "bpfgen_cc_link", STATE_READY)
        assert _bpf.link_info(made["bpfgen_cc_link"]).type == BPF_LINK_TYPE_STRUCT_OPS
        for n in created:
            with pytest.raises(LoadError, match="already attached"):
                loaded.attach(n)
        with pytest.raises(LoadError, match="not created"):
            loaded.attach("bpfgen_cc_off")

        loaded.detach()  # closes the link, deletes bpfgen_cc's value
        assert loaded.links == {} and loaded.struct_ops_registered == ()
        assert not set(cc.values()) & set(registered_ccs())

        # a link map attaches again (the kernel keeps its value: EBUSY is expected)
        made = loaded.attach("bpfgen_cc_link")
        assert set(made) == {"bpfgen_cc_link"}
        assert loaded.struct_ops_registered == ("bpfgen_cc_link",)
        assert cc["bpfgen_cc_link"] in registered_ccs() and cc["bpfgen_cc"] not in registered_ccs()
        # a map without BPF_F_LINK registers only once
        with pytest.raises(LoadError, match="registers only once") as info:
            loaded.attach("bpfgen_cc")
        assert info.value.errno == errno.EBUSY
        assert loaded.struct_ops_registered == ("bpfgen_cc_link",)
    assert not set(cc.values()) & set(registered_ccs())


def test_run_fixture_close_unregisters(cc_list: None) -> None:
    obj = BpfObject.open(fixture_obj())
    _not_registered("bpfgen_cc", "bpfgen_cc_link")
    loaded = run(obj)
    try:
        assert not {"bpfgen_cc", "bpfgen_cc_link"} & set(registered_ccs())
        loaded.attach()
        assert {"bpfgen_cc", "bpfgen_cc_link"} <= set(registered_ccs())
    finally:
        loaded.close()
    assert not {"bpfgen_cc", "bpfgen_cc_link"} & set(registered_ccs())
    loaded.close()  # idempotent


def test_run_bare_loader_cannot_attach_struct_ops(cc_list: None) -> None:
    """A Loader without its object (e.g. read from files) loads, but the struct_ops values
    come from the object: attaching says so, and registers nothing."""
    obj = BpfObject.open(fixture_obj())
    full = obj.gen_loader()
    bare = Loader(full.data, full.insns, full.map_names, full.prog_names)
    _not_registered("bpfgen_cc", "bpfgen_cc_link")
    with run(bare) as loaded:
        assert loaded.struct_ops_maps == ("bpfgen_cc", "bpfgen_cc_link")
        for name in (None, "bpfgen_cc", "bpfgen_cc_link"):
            with pytest.raises(LoadError, match=r"come from the object.*pass the BpfObject"):
                loaded.attach(name)
        assert loaded.struct_ops_registered == () and loaded.links == {}
        assert not {"bpfgen_cc", "bpfgen_cc_link"} & set(registered_ccs())
    with run(full) as loaded:  # a Loader from gen_loader() carries its object
        assert loaded.attach("bpfgen_cc") == {}
        assert loaded.struct_ops_registered == ("bpfgen_cc",)
        assert "bpfgen_cc" in registered_ccs()
    assert "bpfgen_cc" not in registered_ccs()
