"""``run()`` of objects with ``__arena`` globals (ELF section ``.addr_space.1``): the loader
cannot initialise them, so run() maps the ARENA map at its fixed user address
(``map_extra``) after the loader has run and copies the object's arena image to its start,
as the light skeleton's ``__load`` does. ``LoadedObject.arena`` is that mapping, unmapped
by ``close()``. Checked against the symbols' offsets in ``.addr_space.1`` (read with
pyelftools) and by running the programs: tests/fixtures/bad/arena_globals.bpf.o and the
selftests' arena_list / arena_atomics (``BPFGEN_SELFTESTS_OBJ`` or
``~/.cache/bpfgen/selftests/*/obj``, skipped when absent). Needs root and bpf() (skipped
otherwise, with the reason)."""

from __future__ import annotations

import dataclasses
import errno
import gc
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpfgen_fast import BpfObject, LoadedObject, LoadError, run
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from support import BAD
from support import corpus_obj_dir as _corpus_dir

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


def corpus_obj(name: str) -> Path:
    corpus = _corpus_dir()
    if corpus is None:
        pytest.skip("no kernel selftests corpus cache (scripts/selftests)")
    path = corpus / name
    if not path.is_file():
        pytest.skip(f"{name} not in the selftests corpus at {corpus}")
    return path


# --------------------------------------------------------------------------------------------
# the fixture: bump() does counter += start_value; seen = counter + greeting[0]


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


@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_max_entries_override_sizes_the_mapping() -> None:
    with run(BpfObject.open(FIXTURE), max_entries={"arena": 2}) as loaded:
        assert loaded.map_info("arena").max_entries == 2
        assert len(arena(loaded)) == 2 * mmap.PAGESIZE
        assert u64(arena(loaded), 0) == 42


@pytest.mark.usefixtures("bpf_permitted", "no_leak")
def test_a_loader_without_its_object_leaves_the_arena_unmapped() -> None:
    """Blobs alone (e.g. read from files) carry no arena image: nothing is mapped and the
    globals stay uninitialised; BPF reads 0 and its writes to pages never faulted in are
    dropped."""
    loader = dataclasses.replace(BpfObject.open(FIXTURE).gen_loader(), _core=None)
    with run(loader) as loaded:
        assert loaded.arena is None and loaded.arena_address is None
        assert not mapped_at(ARENA_ADDR)
        assert loaded.test_run("bump").retval == 0
        assert u64(loaded.bss, 0) == 0


# --------------------------------------------------------------------------------------------
# kernel selftests objects


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
