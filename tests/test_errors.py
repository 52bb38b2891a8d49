"""Error paths: bad input must raise the package's exceptions with
``OBJECT: SECTION+0xOFFSET: reason`` messages, never anything else."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast import (
    BpfgenError,
    BpfObject,
    BtfError,
    ElfError,
    RelocationError,
    UnsupportedError,
)
from support import BAD, OBJ_NAMES, host_facts, obj_path

EXPECTED = (BAD / "EXPECTED.txt").read_text()


def check_message_shape(e: BpfgenError, obj_name: str) -> None:
    msg = str(e)
    assert e.object == obj_name
    assert msg.startswith(f"{obj_name}: "), msg
    assert msg.endswith(f": {e.reason}"), msg
    where = msg[len(obj_name) + 2: len(msg) - len(e.reason) - 2]
    expected_where = (e.section or "") + ("" if e.offset is None else f"+{e.offset:#x}")
    assert where == expected_where, msg


def test_exception_hierarchy() -> None:
    for cls in (ElfError, BtfError, RelocationError, UnsupportedError):
        assert issubclass(cls, BpfgenError)
    assert issubclass(BpfgenError, Exception)


# -- not ELF at all ---------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty"),
    pytest.param(b"this is a text file, not an object\n" * 3, id="text"),
    pytest.param(random.Random(1234).randbytes(4096), id="random"),
    pytest.param(b"\x7fELF", id="bare-magic"),
])
def test_not_elf_file_raises_elf_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "junk.o"
    path.write_bytes(content)
    with pytest.raises(ElfError) as ei:
        BpfObject.open(path)
    assert str(ei.value) == "junk: ELF header+0x0: not an ELF file"
    check_message_shape(ei.value, "junk")


def test_not_elf_bytes_use_given_name() -> None:
    with pytest.raises(ElfError) as ei:
        BpfObject.open(b"hello", "myobj")
    assert str(ei.value) == "myobj: ELF header+0x0: not an ELF file"


def test_open_bytes_requires_name() -> None:
    with pytest.raises(TypeError):
        BpfObject.open(b"\x7fELF")


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BpfObject.open(tmp_path / "nope.o")


def test_x86_object_is_not_a_bpf_object() -> None:
    assert "libbpf: elf: x86 is not a valid eBPF object file" in EXPECTED
    with pytest.raises(ElfError) as ei:
        BpfObject.open(BAD / "x86.o")
    e = ei.value
    check_message_shape(e, "x86")
    assert e.reason.startswith("not a valid eBPF object file")
    assert str(e) == (
        "x86: ELF header+0x10: not a valid eBPF object file (e_type 1, e_machine 62)")


# -- objects libbpf rejects -------------------------------------------------------------

def test_legacy_maps_rejected_with_libbpf_reason() -> None:
    reason = "legacy map definitions in 'maps' section are not supported by libbpf v1.0+"
    assert f"libbpf: elf: {reason}" in EXPECTED
    with pytest.raises(UnsupportedError) as ei:
        BpfObject.open(BAD / "legacy_maps.bpf.o")
    check_message_shape(ei.value, "legacy_maps_bpf")
    assert ei.value.section == "maps"
    assert str(ei.value) == f"legacy_maps_bpf: maps: elf: {reason}"


def test_static_program_rejected_with_libbpf_reason() -> None:
    assert "libbpf: sec 'tp/x/y': program 'f' is static and not supported" in EXPECTED
    with pytest.raises(UnsupportedError) as ei:
        BpfObject.open(BAD / "static_prog.bpf.o")
    check_message_shape(ei.value, "static_prog_bpf")
    assert (ei.value.section, ei.value.offset) == ("tp/x/y", 0)
    assert ei.value.reason == "program 'f' is static and not supported"


def test_prog_array_init_is_generated_where_bpftool_fails() -> None:
    """bpftool opens the object and fails at load (gen_loader: -ENOTSUP); we fill
    the slots after loading the programs (README: divergences; kernel proof in
    test_beyond.py)."""
    assert "libbpf: failed to load object 'prog_array_init_bpf'" in EXPECTED
    obj = BpfObject.open(BAD / "prog_array_init.bpf.o")
    loader = obj.gen_loader(**host_facts())
    assert loader.map_names == ("jmp",)
    assert loader.prog_names == ("tail_prog", "entry_prog")


# -- truncated and corrupted fixtures ----------------------------------------------------

# Run in a child process: a crash (abort, segfault, Rust panic escaping as
# BaseException) then fails one test instead of taking the session down.
_TRUNCATE_WORKER = textwrap.dedent("""
    import json, sys
    import bpfgen_fast
    host, paths = json.loads(sys.argv[1]), sys.argv[2:]
    out = {}
    for path in paths:
        data = open(path, "rb").read()
        offsets = sorted(set(range(0, len(data), 64)) | set(range(min(128, len(data)))))
        results = out[path] = []
        for n in offsets:
            try:
                obj = bpfgen_fast.BpfObject.open(data[:n], "trunc")
                obj.gen_loader(**host)
                results.append([n, "ok", ""])
            except bpfgen_fast.BpfgenError as e:
                results.append([n, type(e).__name__, str(e)])
            except BaseException as e:
                results.append([n, "UNEXPECTED " + type(e).__module__ + "."
                                + type(e).__name__, str(e)])
    print(json.dumps(out))
""")

PACKAGE_ERRORS = {"ElfError", "BtfError", "RelocationError", "UnsupportedError"}


@pytest.fixture(scope="module")
def truncation_results() -> dict[str, list[list[object]]]:
    """One child process for all fixtures: a crash (abort, segfault) fails these tests
    instead of taking the session down. Host facts are the goldens' (host.json)."""
    host = host_facts()
    p = subprocess.run([sys.executable, "-c", _TRUNCATE_WORKER, json.dumps(host, default=str),
                        *(str(obj_path(n)) for n in OBJ_NAMES)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"worker crashed (exit {p.returncode}):\n{p.stderr[-2000:]}"
    result: dict[str, list[list[object]]] = json.loads(p.stdout)
    return result


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_truncated_object_raises_package_error(
        name: str, truncation_results: dict[str, list[list[object]]]) -> None:
    results = truncation_results[str(obj_path(name))]
    size = obj_path(name).stat().st_size
    assert [r[0] for r in results] == sorted(set(range(0, size, 64)) | set(range(128)))
    bad = [r for r in results if r[1] != "ok" and r[1] not in PACKAGE_ERRORS]
    assert not bad, bad[:5]
    for n, kind, msg in results:
        if kind != "ok":
            assert str(msg).startswith("trunc: "), (n, msg)


def _btf_offset(data: bytes) -> int:
    from elftools.elf.elffile import ELFFile

    sec = ELFFile(io.BytesIO(data)).get_section_by_name(".BTF")
    assert sec is not None
    return int(sec["sh_offset"])


def _patched(name: str, at: int, value: bytes) -> bytes:
    data = bytearray(obj_path(name).read_bytes())
    off = _btf_offset(bytes(data))
    data[off + at: off + at + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize("name", ["global_data.bpf", "minimal.bpf", "map_in_map.bpf"])
def test_corrupt_btf_magic_raises_btf_error(name: str) -> None:
    pytest.importorskip("elftools", reason="pyelftools locates the .BTF section")
    data = _patched(name, 0, struct.pack("<H", 0xEB60))
    with pytest.raises(BtfError) as ei:
        BpfObject.open(data, "corrupt").gen_loader(**host_facts())
    check_message_shape(ei.value, "corrupt")
    assert ei.value.section == ".BTF"
    assert str(ei.value) == "corrupt: .BTF+0x0: bad BTF magic 0xeb60"


@pytest.mark.parametrize("hdr_len", [0xFFFF, 0xFFFFFFFF, 4])
def test_corrupt_btf_header_length_raises_btf_error(hdr_len: int) -> None:
    pytest.importorskip("elftools", reason="pyelftools locates the .BTF section")
    data = _patched("global_data.bpf", 4, struct.pack("<I", hdr_len))
    with pytest.raises(BtfError) as ei:
        BpfObject.open(data, "corrupt").gen_loader(**host_facts())
    check_message_shape(ei.value, "corrupt")
    assert str(ei.value) == f"corrupt: .BTF+0x4: bad BTF header length {hdr_len}"


@pytest.mark.parametrize(("field", "at"), [("type", 12), ("string", 20)])
def test_btf_sections_out_of_bounds_raise_btf_error(field: str, at: int) -> None:
    pytest.importorskip("elftools", reason="pyelftools locates the .BTF section")
    data = _patched("global_data.bpf", at, struct.pack("<I", 0xFFFFFFF0))
    with pytest.raises(BtfError) as ei:
        BpfObject.open(data, "corrupt").gen_loader(**host_facts())
    check_message_shape(ei.value, "corrupt")
    assert ei.value.section == ".BTF"
    assert ei.value.reason == f"BTF {field} section is out of bounds"


def test_random_byte_corruption_never_escapes_the_hierarchy() -> None:
    """Cheap fuzzing with a fixed seed: random byte overwrites in every fixture."""
    rng = random.Random(20250101)
    host = host_facts()
    seen: set[str] = set()
    for name in OBJ_NAMES:
        original = obj_path(name).read_bytes()
        for _ in range(40):
            data = bytearray(original)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                bpfgen_fast.BpfObject.open(bytes(data), "fuzz").gen_loader(**host)
                seen.add("ok")
            except BpfgenError as e:
                seen.add(type(e).__name__)
                check_message_shape(e, "fuzz")
    assert "ok" in seen and "ElfError" in seen


def test_error_from_device_file_is_catchable_as_base() -> None:
    """/dev/null reads as an empty file; the error is an ordinary exception."""
    try:
        BpfObject.open(os.devnull)
    except BpfgenError as e:
        assert isinstance(e, ElfError)
        assert str(e) in repr(e)
        assert e.object == "null"
    else:
        pytest.fail("opening /dev/null did not raise")
