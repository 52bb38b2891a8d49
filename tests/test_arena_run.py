"""``run()`` of objects with ``__arena`` globals (ELF section ``.addr_space.1``): the loader
cannot initialise them, so run() maps the ARENA map at its fixed user address
(``map_extra``) after the loader has run and copies the object's arena image to its start,
as the light skeleton's ``__load`` does. ``LoadedObject.arena`` is that mapping, unmapped
by ``close()``. Checked against the symbols' offsets in ``.addr_space.1`` (read with
pyelftools) and by running the programs: tests/fixtures/bad/arena_globals.bpf.o and the
selftests' arena_list / arena_atomics (``BPFGEN_SELFTESTS_OBJ`` or
``~/.cache/bpfgen/selftests/*/obj``, skipped when absent). Needs root and bpf() (skipped
otherwise, with the reason).

An arena without ``map_extra`` (the fixture built with -DNO_MAP_EXTRA by clang-19, and
the selftests' arena_htab): run() reserves a 4 GiB-aligned PROT_NONE range before the
loader runs, hands its start to the loader through the map descriptor's
``initial_value`` (``MapCreate.map_extra_from_ctx``) and maps the arena over it."""

from __future__ import annotations

import errno
import gc
import importlib
import json
import mmap
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfgen_fast import BpfObject, Explanation, LoadedObject, LoadError, explain, run
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from support import BAD, corpus_obj

ARENA_SEC = ".addr_space.1"
FIXTURE = BAD / "arena_globals.bpf.o"
ARENA_ADDR = 1 << 44  # the fixture's map_extra
ARENA_PAGES = 4  # the fixture's max_entries


def symbols(path: Path, section: str) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of the object symbols defined in ``section``."""
    out: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        for sym in symtab.iter_symbols():
            shndx = sym["st_shndx"]
            if not isinstance(shndx, int) or sym["st_info"]["type"] != "STT_OBJECT":
                continue
            if elf.get_section(shndx).name == section:
                out[sym.name] = (sym["st_value"], sym["st_size"])
    return out


def u64(buf: memoryview | mmap.mmap, off: int) -> int:
    value: int = struct.unpack_from("<Q", buf, off)[0]
    return value


def mapped_at(address: int) -> list[str]:
    """/proc/self/maps lines of mappings starting at ``address``."""
    with open("/proc/self/maps") as f:
        return [line for line in f if int(line.split("-", 1)[0], 16) == address]


def arena(loaded: LoadedObject) -> memoryview:
    view = loaded.arena
    assert view is not None
    return view


def _readlink(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the listing's own fd, gone by now
        return None


@pytest.fixture
def no_leak() -> Iterator[None]:
    """Every fd opened during the test is closed by its end, and the fixture's arena
    address is unmapped before and after."""
    assert not mapped_at(ARENA_ADDR), "arena address mapped before the test"
    before = set(os.listdir("/proc/self/fd"))
    yield
    gc.collect()
    leaked = {int(x) for x in set(os.listdir("/proc/self/fd")) - before}
    assert not {fd: t for fd in leaked if (t := _readlink(fd)) is not None}, "fds leaked"
    assert not mapped_at(ARENA_ADDR), "arena left mapped"


# --------------------------------------------------------------------------------------------
# the fixture: bump() does counter += start_value; seen = counter + greeting[0]


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_globals_are_copied_into_the_mapped_arena() -> None:
    syms = symbols(FIXTURE, ARENA_SEC)
    assert set(syms) == {"start_value", "counter", "greeting"}
    obj = BpfObject.open(FIXTURE)
    got = obj._core.arena_image()
    assert got is not None
    image = got[1]
    with run(obj) as loaded:
        view = arena(loaded)
        info = loaded.map_info("arena")
        assert info.name == "arena"
        assert loaded.arena_address == ARENA_ADDR == info.map_extra
        assert len(view) == info.max_entries * mmap.PAGESIZE == ARENA_PAGES * mmap.PAGESIZE
        assert not view.readonly and view.format == "B"
        lines = mapped_at(ARENA_ADDR)
        assert len(lines) == 1 and lines[0].split()[1] == "rw-s"
        end = int(lines[0].split()[0].split("-")[1], 16)
        assert end - ARENA_ADDR == len(view)
        # the globals at their symbols' offsets, at the start of the arena
        off, _ = syms["start_value"]
        assert u64(view, off) == 42
        off, _ = syms["counter"]
        assert u64(view, off) == 0
        off, size = syms["greeting"]
        assert bytes(view[off : off + size]) == b"hello, arena".ljust(size, b"\0")
        assert bytes(view[: len(image)]) == image
        assert not any(view[len(image) : mmap.PAGESIZE])
        assert "arena" not in loaded.mmaps  # the global-data maps only


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_programs_and_python_share_the_arena() -> None:
    arena_syms, bss_syms = symbols(FIXTURE, ARENA_SEC), symbols(FIXTURE, ".bss")
    start, counter, seen = arena_syms["start_value"][0], arena_syms["counter"][0], \
        bss_syms["seen"][0]
    loaded = run(BpfObject.open(FIXTURE))
    try:
        view = arena(loaded)
        for _ in range(2):
            assert loaded.test_run("bump").retval == 0
        assert u64(view, counter) == 84
        assert u64(loaded.bss, seen) == 84 + ord("h")
        # a write through the mapping is what the next bump adds
        struct.pack_into("<Q", view, start, 1000)
        assert loaded.test_run("bump").retval == 0
        assert u64(view, counter) == 1084
        assert u64(loaded.bss, seen) == 1084 + ord("h")
        view[arena_syms["greeting"][0]] = ord("H")
        assert loaded.test_run("bump").retval == 0
        assert u64(loaded.bss, seen) == 2084 + ord("H")
    finally:
        loaded.close()
    assert not mapped_at(ARENA_ADDR)
    with pytest.raises(ValueError):
        u64(view, counter)  # released, not dangling
    loaded.close()  # idempotent


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_a_held_slice_keeps_the_arena_mapped_until_released() -> None:
    """close() never leaves a dangling buffer: a view derived from .arena keeps the
    pages mapped (as a memoryview keeps an mmap.mmap alive) until it is released."""
    with run(BpfObject.open(FIXTURE)) as loaded:
        head = arena(loaded)[0:8]
    assert mapped_at(ARENA_ADDR)
    assert struct.unpack("<Q", head)[0] == 42
    head.release()
    assert not mapped_at(ARENA_ADDR)


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_a_second_load_cannot_take_the_address() -> None:
    """MAP_FIXED would unmap the first object's arena; the second load fails instead,
    naming the step, with every fd closed and the first arena untouched."""
    with run(BpfObject.open(FIXTURE)) as first:
        with pytest.raises(LoadError) as exc:
            run(BpfObject.open(FIXTURE))
        assert exc.value.errno == errno.EEXIST
        assert exc.value.step == "mmap arena"
        assert f"{ARENA_ADDR:#x}" in str(exc.value)
        assert len(mapped_at(ARENA_ADDR)) == 1
        assert first.test_run("bump").retval == 0
        assert u64(arena(first), symbols(FIXTURE, ARENA_SEC)["counter"][0]) == 42


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_max_entries_override_sizes_the_mapping() -> None:
    with run(BpfObject.open(FIXTURE), max_entries={"arena": 2}) as loaded:
        assert loaded.map_info("arena").max_entries == 2
        assert len(arena(loaded)) == 2 * mmap.PAGESIZE
        assert u64(arena(loaded), 0) == 42


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_a_loader_without_its_object_leaves_the_arena_unmapped() -> None:
    """Blobs alone (e.g. read from files) carry no arena image: nothing is mapped and the
    globals stay uninitialised; BPF reads 0 and its writes to pages never faulted in are
    dropped."""
    loader = BpfObject.open(FIXTURE).gen_loader().replace(_core=None)
    with run(loader) as loaded:
        assert loaded.arena is None and loaded.arena_address is None
        assert not mapped_at(ARENA_ADDR)
        assert loaded.test_run("bump").retval == 0
        assert u64(loaded.bss, 0) == 0


# --------------------------------------------------------------------------------------------
# kernel selftests objects


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_selftests_arena_list() -> None:
    """prog_tests/arena_list.c in Python: arena_list_add builds a list in the arena from
    __arena global_head (test_val starts at the image's 1); Python walks it through the
    user pointers the programs stored; arena_list_del sums and frees it."""
    path = corpus_obj("arena_list.bpf.o")
    obj = BpfObject.open(path)
    got = obj._core.arena_image()
    assert got is not None
    a_syms, b_syms = symbols(path, ARENA_SEC), symbols(path, ".bss")
    cnt, expected = 10, 45
    with run(obj) as loaded:
        view, base = arena(loaded), loaded.arena_address
        assert base is not None
        info = loaded.map_info("arena")
        assert base == info.map_extra != 0
        assert len(view) == info.max_entries * mmap.PAGESIZE
        assert bytes(view[: len(got[1])]) == got[1]
        assert struct.unpack_from("<i", view, a_syms["test_val"][0])[0] == 1
        bss = loaded.bss
        struct.pack_into("<i", bss, b_syms["cnt"][0], cnt)
        assert loaded.test_run("arena_list_add").retval == 0
        if bss[b_syms["skip"][0]]:
            pytest.skip("arena_list built without __BPF_FEATURE_ADDR_SPACE_CAST")
        assert struct.unpack_from("<q", view, a_syms["arena_sum"][0])[0] == expected
        assert struct.unpack_from("<i", view, a_syms["test_val"][0])[0] == cnt + 1
        head = u64(bss, b_syms["list_head"][0])
        assert head == base + a_syms["global_head"][0]
        total, n, seen = 0, u64(view, head - base), 0
        while n:  # struct elem { struct arena_list_node { next, pprev } node; u64 value; }
            assert base <= n < base + len(view)
            total += u64(view, n - base + 16)
            n = u64(view, n - base)
            seen += 1
        assert (seen, total) == (cnt, expected)
        assert loaded.test_run("arena_list_del").retval == 0
        assert struct.unpack_from("<i", bss, b_syms["list_sum"][0])[0] == expected
        assert struct.unpack_from("<q", view, a_syms["arena_sum"][0])[0] == expected
    assert not mapped_at(base)


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_selftests_arena_atomics() -> None:
    """prog_tests/arena_atomics.c's add: add64_value starts at the image's 1."""
    path = corpus_obj("arena_atomics.bpf.o")
    obj = BpfObject.open(path)
    got = obj._core.arena_image()
    assert got is not None
    a_syms = symbols(path, ARENA_SEC)
    with run(obj) as loaded:
        view, base = arena(loaded), loaded.arena_address
        assert base is not None
        info = loaded.map_info("arena")
        assert base == info.map_extra != 0
        assert len(view) == info.max_entries * mmap.PAGESIZE
        assert bytes(view[: len(got[1])]) == got[1]
        assert u64(view, a_syms["add64_value"][0]) == 1
        if loaded.data[symbols(path, ".data")["skip_tests"][0]]:
            pytest.skip("arena_atomics built without arena atomics support (skip_tests)")
        struct.pack_into("<I", loaded.bss, symbols(path, ".bss")["pid"][0], os.getpid())
        assert loaded.test_run("add").retval == 0
        assert u64(view, a_syms["add64_value"][0]) == 3
        assert u64(view, a_syms["add64_result"][0]) == 1
    assert not mapped_at(base)



# --------------------------------------------------------------------------------------------
# arenas without map_extra: the address is reserved by run() and handed to the loader

CLANG = "clang-19"
_4G = 1 << 32
# the module (the package's ``run`` attribute is the function)
run_mod = importlib.import_module("bpfgen_fast.run")


@pytest.fixture(scope="module")
def no_extra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture built with -DNO_MAP_EXTRA (no fixed user address)."""
    clang = shutil.which(CLANG)
    if clang is None:
        pytest.skip(f"{CLANG} not found: cannot build arena_globals -DNO_MAP_EXTRA")
    out = tmp_path_factory.mktemp("arena") / "arena_noextra.bpf.o"
    inc = ["-I/usr/include/x86_64-linux-gnu"] if Path("/usr/include/x86_64-linux-gnu").is_dir() \
        else []
    subprocess.run([clang, "-O2", "-g", "--target=bpf", "-mcpu=v3", "-DNO_MAP_EXTRA", *inc,
                    "-c", str(BAD / "arena_globals.bpf.c"), "-o", str(out)],
                   check=True, capture_output=True, timeout=120)
    return out


def mappings_in(lo: int, hi: int) -> list[str]:
    """/proc/self/maps lines of mappings overlapping [lo, hi)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start < hi and lo < end:
                out.append(line)
    return out


def open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def leaked_fds(before: set[int]) -> dict[int, str]:
    gc.collect()
    return {fd: t for fd in open_fds() - before if (t := _readlink(fd)) is not None}


@pytest.fixture
def reservations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(address, size) of every arena range run() reserves during the test."""
    seen: list[tuple[int, int]] = []
    real = run_mod._Reservation

    class Recorded(real):  # type: ignore[misc,valid-type]
        def __init__(self, size: int) -> None:
            super().__init__(size)
            seen.append((self.address, self.size))

    monkeypatch.setattr(run_mod, "_Reservation", Recorded)
    return seen


def test_no_map_extra_explain(no_extra: Path) -> None:
    """The loader reads the arena's map_extra from its descriptor's initial_value: an
    8-byte ctx read (nonzero only) into attr+64, before the max_entries override."""
    e = explain(BpfObject.open(no_extra))
    (m,) = [m for m in e.maps if m.name == "arena"]
    assert m.map_extra_from_ctx and m.map_extra == 0 and m.max_entries_from_ctx
    assert m.type_name == "arena"
    assert not any(x.map_extra_from_ctx for x in e.maps if x.name != "arena")
    line = next(x for x in e.to_text().splitlines() if "MAP_CREATE" in x and " arena " in x)
    assert "map_extra from ctx" in line
    d = json.loads(e.to_json())
    (jm,) = [s for s in d["steps"] if s["op"] == "MAP_CREATE" and s["name"] == "arena"]
    assert jm["map_extra_from_ctx"] is True
    assert Explanation.from_json(e.to_json()) == e
    # documents written before the field existed still load (as False)
    for s in d["steps"]:
        s.pop("map_extra_from_ctx", None)
    old = Explanation.from_dict(d)
    assert not any(x.map_extra_from_ctx for x in old.maps)
    # the fixture with its own map_extra takes none from the ctx
    (fixed,) = [m for m in explain(BpfObject.open(FIXTURE)).maps if m.name == "arena"]
    assert not fixed.map_extra_from_ctx and fixed.map_extra == ARENA_ADDR


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_arena_is_mapped_at_a_reserved_address(
    no_extra: Path, reservations: list[tuple[int, int]]
) -> None:
    syms, bss = symbols(no_extra, ARENA_SEC), symbols(no_extra, ".bss")
    fds = open_fds()
    size = ARENA_PAGES * mmap.PAGESIZE
    with run(BpfObject.open(no_extra)) as loaded:
        base = loaded.arena_address
        assert base is not None and base % _4G == 0
        assert reservations == [(base, size)]
        info = loaded.map_info("arena")
        assert info.map_extra == base  # the loader passed our address as map_extra
        view = arena(loaded)
        assert len(view) == size
        # exactly the arena in the reserved range (the reservation replaced), and no
        # PROT_NONE left either side of it (the excess of the aligned reservation unmapped)
        lines = mappings_in(base, base + size)
        assert len(lines) == 1 and lines[0].split()[1] == "rw-s"
        assert lines[0].split()[0] == f"{base:x}-{base + size:x}"
        assert not [x for x in mappings_in(base - 1, base + size + 1)
                    if x.split()[1] == "---p"]
        assert u64(view, syms["start_value"][0]) == 42
        assert u64(view, syms["counter"][0]) == 0
        off, n = syms["greeting"]
        assert bytes(view[off : off + n]) == b"hello, arena".ljust(n, b"\0")
        for _ in range(2):
            assert loaded.test_run("bump").retval == 0
        assert u64(view, syms["counter"][0]) == 84
        assert u64(loaded.bss, bss["seen"][0]) == 84 + ord("h")
    assert not mapped_at(base)
    assert not mappings_in(base, base + size)
    assert not leaked_fds(fds), "fds leaked"


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_loads_twice_at_different_addresses(no_extra: Path) -> None:
    """Each load reserves its own range: no clash (unlike a fixed map_extra)."""
    with run(BpfObject.open(no_extra)) as a, run(BpfObject.open(no_extra)) as b:
        assert a.arena_address is not None and b.arena_address is not None
        assert a.arena_address != b.arena_address
        assert a.test_run("bump").retval == 0
        assert u64(arena(a), symbols(no_extra, ARENA_SEC)["counter"][0]) == 42
        assert u64(arena(b), symbols(no_extra, ARENA_SEC)["counter"][0]) == 0


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_reservation_released_when_the_loader_fails(
    no_extra: Path, reservations: list[tuple[int, int]]
) -> None:
    """An arena of more than 4 GiB: MAP_CREATE fails (E2BIG) after run() reserved it."""
    fds = open_fds()
    pages = _4G // mmap.PAGESIZE + 1
    with pytest.raises(LoadError) as exc:
        run(BpfObject.open(no_extra), max_entries={"arena": pages})
    assert exc.value.errno == errno.E2BIG
    assert exc.value.step is not None and "arena" in exc.value.step
    [(base, size)] = reservations
    assert size == pages * mmap.PAGESIZE and base % _4G == 0
    assert not mappings_in(base, base + size)
    assert not leaked_fds(fds), "fds leaked"


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_reservation_released_when_mapping_fails(
    no_extra: Path, reservations: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fds = open_fds()

    def refuse(fd: int, address: int, size: int, replace: bool = False) -> None:
        assert replace  # MAP_FIXED over our reservation, not MAP_FIXED_NOREPLACE
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    monkeypatch.setattr(run_mod, "_mmap_fixed", refuse)
    with pytest.raises(LoadError) as exc:
        run(BpfObject.open(no_extra))
    assert exc.value.errno == errno.ENOMEM and exc.value.step == "mmap arena"
    [(base, size)] = reservations
    assert not mappings_in(base, base + size)
    assert not leaked_fds(fds), "fds leaked"


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_max_entries_override_sizes_the_reservation(
    no_extra: Path, reservations: list[tuple[int, int]]
) -> None:
    with run(BpfObject.open(no_extra), max_entries={"arena": 2}) as loaded:
        base = loaded.arena_address
        assert base is not None
        assert reservations == [(base, 2 * mmap.PAGESIZE)]
        assert len(arena(loaded)) == 2 * mmap.PAGESIZE
        assert u64(arena(loaded), symbols(no_extra, ARENA_SEC)["start_value"][0]) == 42
    assert not mappings_in(base, base + 2 * mmap.PAGESIZE)


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_no_map_extra_loader_without_its_object(
    no_extra: Path, reservations: list[tuple[int, int]]
) -> None:
    """A bare Loader still gets an address for the programs (the kernel wants one before
    they load), but maps nothing: the reservation is released after the load."""
    fds = open_fds()
    loader = BpfObject.open(no_extra).gen_loader().replace(_core=None)
    with run(loader) as loaded:
        assert loaded.arena is None and loaded.arena_address is None
        [(base, size)] = reservations
        assert loaded.map_info("arena").map_extra == base
        assert not mappings_in(base, base + size)
        assert loaded.test_run("bump").retval == 0
    assert not leaked_fds(fds), "fds leaked"


def _htab_lookup(view: memoryview, base: int, htab: int, key: int) -> int:
    """bpf_arena_htab.h's htab_lookup_elem, over the user pointers the program stored:
    struct htab { buckets; int n_buckets; }, bucket = struct arena_list_head { first },
    struct hashtab_elem { int hash, key, value; struct arena_list_node hash_node; } (at 16),
    arena_list_node { next; pprev; }."""

    def at(ptr: int) -> int:
        assert base <= ptr < base + len(view), f"{ptr:#x} outside the arena at {base:#x}"
        return ptr - base

    buckets = u64(view, at(htab))
    n_buckets = struct.unpack_from("<i", view, at(htab) + 8)[0]
    assert buckets and n_buckets == 2 * mmap.PAGESIZE // 8
    node = u64(view, at(buckets + 8 * (key & (n_buckets - 1))))
    while node:
        elem = at(node - 16)
        hash_, k, value = struct.unpack_from("<iii", view, elem)
        if hash_ == key and k == key:
            return int(value)
        node = u64(view, elem + 16)
    return 0


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted")
def test_selftests_arena_htab() -> None:
    """prog_tests/arena_htab.c's arena_htab_llvm: the arena has no map_extra (run()
    reserves its address); arena_htab_llvm builds a hash table in it (keys 0..99999, key ==
    value) and fills __arena arr1[i] = i; Python walks the table through the user pointers
    the program stored (htab_for_user), as the selftest's test_arena_htab_common does."""
    path = corpus_obj("arena_htab.bpf.o")
    obj = BpfObject.open(path)
    got = obj._core.arena_image()
    assert got is not None
    (m,) = [m for m in explain(obj).maps if m.name == "arena"]
    assert m.map_extra_from_ctx and m.map_extra == 0
    a_syms, b_syms = symbols(path, ARENA_SEC), symbols(path, ".bss")
    fds = open_fds()
    with run(obj) as loaded:
        view, base = arena(loaded), loaded.arena_address
        assert base is not None and base % _4G == 0
        info = loaded.map_info("arena")
        assert info.map_extra == base
        assert len(view) == info.max_entries * mmap.PAGESIZE == 100 * mmap.PAGESIZE
        assert bytes(view[: len(got[1])]) == got[1]
        struct.pack_into("<i", view, 0, 0x55AA)  # the selftest's sanity write at pgoff 0
        assert loaded.test_run("arena_htab_llvm").retval == 0
        if loaded.bss[b_syms["skip"][0]]:
            pytest.skip("arena_htab built without __BPF_FEATURE_ADDR_SPACE_CAST")
        off, n = a_syms["arr1"]
        assert bytes(view[off : off + n]) == bytes(i & 0xFF for i in range(n))
        htab = u64(loaded.bss, b_syms["htab_for_user"][0])
        assert base <= htab < base + len(view)
        # the selftest's keys (the first inserted: 100 pages hold far fewer than the
        # 100000 elements, later insertions fail with ENOMEM)
        for key in range(0, 16, 4):
            assert _htab_lookup(view, base, htab, key) == key
    assert not mappings_in(base, base + len(got[1]))
    assert not leaked_fds(fds), "fds leaked"
