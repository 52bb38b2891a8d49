"""Maps whose BTF the kernel refuses (README: divergence 6; src/map_btf.rs).

For each rule of the kernel's ``map_check_btf`` that src/map_btf.rs predicts there is a
fixture in tests/fixtures/bad/ (map_btf_*.bpf.c). Each is shown in this host's kernel:

- bpftool 7.5.0's loader fails at MAP_CREATE of the refused map, with the kernel's errno;
- with ``_bpftool_map_btf_ids=True`` our loader is bpftool's byte for byte, so creating
  those maps without BTF is the only difference;
- ours loads, through ``run()`` and through the compiled header: the refused maps exist
  without BTF ids, the other maps keep theirs, and the program runs and writes them.

Where the kernel takes the BTF (tests/fixtures/src/maps_btf_checked.bpf.c, one map per
rule) the loader stays bpftool's, like every fixture's (goldens). Where creating the map
without BTF cannot help (local storages need BTF) or libbpf refuses the object when it
opens it (sizes that contradict the BTF types), ours does what bpftool does."""

from __future__ import annotations

import errno
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import skel_c
from bpfgen_fast import BpfgenError, BpfObject, Loader, LoadError, run
from support import BAD, BUILD, FIXDIR, HOST, fixture_script, obj_path

make_golden = fixture_script("make_golden")

EXPECTED_BAD = (BAD / "EXPECTED.txt").read_text()
PROBES = BUILD / "probes"
SIZES = {"page_size": int(str(HOST["page_size"])), "possible_cpus": int(str(HOST["possible_cpus"]))}
XDP_DATA = 64  # bytes of packet data for an xdp or cgroup_skb test run
SYSCALL_CTX = 8


@dataclass(frozen=True)
class Case:
    refused: tuple[str, ...]  # maps the kernel takes only without BTF (in map order)
    bpftool_errno: int  # what MAP_CREATE of the first of them answers bpftool's loader
    prog: str
    retval: int
    data: int = 0  # test-run packet bytes (xdp, cgroup_skb) ...
    ctx: int = 0  # ... or context bytes (syscall)
    lookups: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    inner: bool = False  # the refused map is an inner-map template (no fd of its own)
    # maps without BTF ids in bpftool's loader too: maps-in-maps (libbpf clears their ids),
    # compiler constant sections such as .rodata.cst16 (no DATASEC)
    no_btf: tuple[str, ...] = ()


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


PREFIX_24 = bytes([24, 0, 0, 0, 10, 1, 2, 0])

CASES: dict[str, Case] = {
    # generic: the ids must come in pairs (map_create), a key is needed without own check
    "map_btf_key_only": Case(("key_typed",), errno.EINVAL, "use_key_typed", 0, ctx=SYSCALL_CTX,
                             lookups={"key_typed": (struct.pack("<II", 1, 2),
                                                    struct.pack("<QQQ", 3, 4, 5))}),
    "map_btf_value_only": Case(("value_typed",), errno.EINVAL, "use_value_typed", 0,
                               ctx=SYSCALL_CTX,
                               lookups={"value_typed": (_u32(9), struct.pack("<QQI4x", 1, 2, 3))}),
    # LPM trie: the key must be a struct (trie_check_btf), outer maps and inner templates
    "map_btf_lpm_array_key": Case(("prefixes",), errno.EINVAL, "add_prefix", 0, data=XDP_DATA,
                                  lookups={"prefixes": (PREFIX_24, _u32(7))}),
    "map_btf_lpm_typedef_key": Case(("prefixes",), errno.EINVAL, "add_prefix", 0, data=XDP_DATA,
                                    lookups={"prefixes": (PREFIX_24, _u32(7))}),
    "map_btf_lpm_inner_array": Case(("string_prefix_m",), errno.EINVAL, "find_prefix", 1,
                                    data=XDP_DATA, inner=True),
    "map_btf_lpm_inner_hash": Case(("first_trie",), errno.EINVAL, "add_name", 0, data=XDP_DATA,
                                   no_btf=("tries",),
                                   lookups={"first_trie": (bytes([64, 0, 0, 0]) + b"bpfgen\0\0",
                                                           _u32(5))}),
    # arrays: a 32-bit integer key, or no key only for a 1-entry ARRAY of a DATASEC
    "map_btf_array_enum_key": Case(("by_slot",), errno.EINVAL, "set_slot", 0, ctx=SYSCALL_CTX,
                                   lookups={"by_slot": (_u32(1), struct.pack("<Q", 42))}),
    "map_btf_array_keyless": Case(("settings",), errno.EINVAL, "set_config", 0, ctx=SYSCALL_CTX,
                                  no_btf=(".rodata.cst16",),
                                  lookups={"settings": (_u32(0), struct.pack("<QI4x", 3, 4))}),
    "map_btf_percpu_array_keyless": Case(("counters",), errno.EINVAL, "count", 0,
                                         ctx=SYSCALL_CTX),
    # bloom filter: no key type at all
    "map_btf_bloom_key": Case(("seen",), errno.EINVAL, "remember", 0, data=XDP_DATA),
    # cgroup storage: a u64 key, or struct bpf_cgroup_storage_key for 16-byte keys
    "map_btf_cgroup_storage_struct": Case(("shared_store",), errno.EINVAL, "count_egress", 1,
                                          data=XDP_DATA),
    "map_btf_cgroup_storage_key3": Case(("typed_store",), errno.EINVAL, "count_ingress", 1,
                                        data=XDP_DATA),
    # special fields: which map types hold them, and not with program access flags
    "map_btf_spin_lock_lru": Case(("lru_locked",), errno.EOPNOTSUPP, "touch", 0, ctx=SYSCALL_CTX,
                                  no_btf=(".rodata.cst16",),
                                  lookups={"lru_locked": (_u32(1), struct.pack("<I4xQ", 0, 9))}),
    "map_btf_timer_percpu": Case(("percpu_timed",), errno.EOPNOTSUPP, "touch", 0,
                                 ctx=SYSCALL_CTX),
    "map_btf_fields_rdonly": Case(("rdonly_locked",), errno.EACCES, "touch", 0, ctx=SYSCALL_CTX),
}


def bpftool_blobs(bpftool: str, path: Path) -> tuple[bytes, bytes, str]:
    gen = subprocess.run([bpftool, "gen", "skeleton", "-L", path.name], cwd=path.parent,
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    return (make_golden.decode_c_blob(gen.stdout, "opts_data"),
            make_golden.decode_c_blob(gen.stdout, "opts_insn"), gen.stdout)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bpftool_generates_and_ours_differs_only_in_the_ids(name: str, bpftool: str) -> None:
    path = BAD / f"{name}.bpf.o"
    assert f"== bad/{name}.bpf.o (exit status 0)" in EXPECTED_BAD
    data, insns, header = bpftool_blobs(bpftool, path)
    obj = BpfObject.open(path)
    compat = obj.gen_loader(_bpftool_map_btf_ids=True, **SIZES)
    assert (compat.data, compat.insns) == (data, insns)
    assert obj.gen_skeleton(_bpftool_map_btf_ids=True, **SIZES) == header
    assert obj.gen_loader(**SIZES).data != data


@pytest.mark.usefixtures("bpf_permitted")
@pytest.mark.parametrize("name", sorted(CASES))
def test_bpftool_loader_fails_at_the_refused_map(name: str, bpftool: str) -> None:
    case = CASES[name]
    data, insns, _ = bpftool_blobs(bpftool, BAD / f"{name}.bpf.o")
    ours = BpfObject.open(BAD / f"{name}.bpf.o").gen_loader(**SIZES)
    with pytest.raises(LoadError) as ei:
        run(Loader(data=data, insns=insns, map_names=ours.map_names, prog_names=ours.prog_names))
    assert ei.value.errno == case.bpftool_errno, ei.value
    step = ("MAP_CREATE (inner) " if case.inner else "MAP_CREATE ") + case.refused[0]
    # the diagnosis may name two candidates ("MAP_CREATE a or MAP_CREATE b")
    assert step in (ei.value.step or "").split(" or "), ei.value.step


@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
@pytest.mark.parametrize("name", sorted(CASES))
def test_ours_loads_through_run(name: str) -> None:
    case = CASES[name]
    loader = BpfObject.open(BAD / f"{name}.bpf.o").gen_loader(**SIZES)
    with run(loader) as loaded:
        for map_name in loader.map_names:
            info = loaded.map_info(map_name)
            ids = (info.btf_key_type_id, info.btf_value_type_id)
            if map_name in case.refused + case.no_btf:
                assert ids == (0, 0), (map_name, ids)
            else:  # global data (a DATASEC value, no key type)
                assert info.btf_value_type_id != 0, (map_name, ids)
        ran = loaded.test_run(case.prog, data=b"\0" * case.data if case.data else None,
                              ctx=b"\0" * case.ctx if case.ctx else None)
        assert ran.retval == case.retval
        for map_name, (key, value) in case.lookups.items():
            assert loaded.lookup(map_name, key) == value


@pytest.mark.usefixtures("bpf_permitted", "gcc")
@pytest.mark.parametrize("name", sorted(CASES))
def test_ours_loads_through_the_header(name: str) -> None:
    case = CASES[name]
    path = BAD / f"{name}.bpf.o"
    header = BpfObject.open(path).gen_skeleton(**SIZES)
    skel = skel_c.parse_header(header)
    source = skel_c.probe_source("skel.lskel.h", skel, runs=[
        skel_c.TestRun(case.prog, data=case.data, ctx=case.ctx)])
    exe, err = skel_c.compile_c(source, header, PROBES)
    assert exe is not None, err[-3000:]
    probe = skel_c.run_probe(exe)
    assert probe.rc == 0, probe.out
    for map_name in case.refused:
        if not case.inner:
            fields = probe.maps[map_name]
            assert (fields["btf_key"], fields["btf_value"]) == ("0", "0"), probe.out
    assert probe.runs[case.prog]["retval"] == str(case.retval), probe.out


# -- where the rules leave bpftool's bytes -----------------------------------------------------

@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
def test_maps_the_kernel_takes_keep_their_btf() -> None:
    """One map per rule that passes: typedef'd struct keys of an LPM trie (outer and inner
    template), a typedef'd u32 array key with a timer, a spin lock in a hash, a timer in an
    LRU hash, a task storage, both cgroup storage keys, a keyless bloom filter."""
    path = obj_path("maps_btf_checked.bpf")
    loader = BpfObject.open(path).gen_loader(**SIZES)
    assert loader.data == (FIXDIR / "golden" / "maps_btf_checked.bpf.data.bin").read_bytes()
    cleared = {"tries"}  # ARRAY_OF_MAPS: libbpf clears its ids itself
    with run(loader) as loaded:
        for map_name in loader.map_names:
            info = loaded.map_info(map_name)
            if map_name in cleared:
                assert (info.btf_key_type_id, info.btf_value_type_id) == (0, 0)
            elif map_name == "seen":  # bloom filter: a value type and no key type
                assert (info.btf_key_type_id, info.btf_value_type_id != 0) == (0, True)
            else:
                assert info.btf_key_type_id and info.btf_value_type_id, map_name
        assert loaded.test_run("use_checked", data=b"\0" * XDP_DATA).retval == 0
        assert loaded.lookup("typedef_trie", bytes([16, 0, 0, 0, 10, 1, 0, 0])) == _u32(3)


@pytest.mark.usefixtures("bpf_permitted")
def test_local_storages_need_btf_so_both_loaders_fail_alike(bpftool: str) -> None:
    """Socket, task and cgroup storages with keys the kernel refuses: the kernel creates
    local storages only with BTF ids, so libbpf's retry fails too. Our loader is bpftool's,
    and both fail at the first such map."""
    path = BAD / "map_btf_local_storage_keys.bpf.o"
    data, insns, header = bpftool_blobs(bpftool, path)
    obj = BpfObject.open(path)
    ours = obj.gen_loader(**SIZES)
    assert (ours.data, ours.insns) == (data, insns)
    assert obj.gen_skeleton(**SIZES) == header
    with pytest.raises(LoadError) as ei:
        run(ours)
    assert ei.value.errno == errno.EINVAL
    assert (ei.value.step or "").endswith("MAP_CREATE sk_marks"), ei.value.step


@pytest.mark.parametrize(("name", "what"), [("map_btf_key_size_conflict", "key size 8 != 4"),
                                            ("map_btf_value_size_conflict",
                                             "value size 16 != 8")])
def test_sizes_contradicting_the_btf_are_refused_on_open(name: str, what: str) -> None:
    """The kernel's generic size checks never see such ids: libbpf refuses the object
    when it opens it, and so do we, with libbpf's words."""
    line = f"libbpf: map 'conflicted': conflicting {what}."
    assert f"== bad/{name}.bpf.o (exit status 234)\n{line}\n" in EXPECTED_BAD
    with pytest.raises(BpfgenError) as ei:
        BpfObject.open(BAD / f"{name}.bpf.o").gen_loader(**SIZES)
    assert str(ei.value).endswith(f".maps: map 'conflicted': conflicting {what}."), ei.value


def test_the_fixtures_are_built_from_their_sources() -> None:
    for name in [*CASES, "map_btf_local_storage_keys", "map_btf_key_size_conflict",
                 "map_btf_value_size_conflict"]:
        assert (BAD / f"{name}.bpf.c").is_file() and (BAD / f"{name}.bpf.o").is_file(), name
