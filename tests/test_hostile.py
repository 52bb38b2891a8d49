"""Hostile inputs through the public API, resource bounds, determinism, thread
safety and the loader self-check.

Every call on hostile bytes runs in a watchdog thread with a time limit: it must
end in output (which then passes the loader self-check) or in a
:class:`bpfgen_fast.BpfgenError` that names the object. A Rust panic
(``pyo3_runtime.PanicException``), any other exception or a hang fails the test.
Host facts are explicit (the committed golden inputs), so nothing is read from
this machine.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfgenError, _core
from hostile_elf import (
    BTF_ARRAY,
    BTF_CONST,
    BTF_DATASEC,
    BTF_INT,
    BTF_PTR,
    BTF_STRUCT,
    BTF_TYPEDEF,
    BTF_VAR,
    EXIT,
    MOV_R0_0,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_REL,
    STT_OBJECT,
    Elf,
    Sec,
    Sym,
    btf,
    btf_type,
    flip_bits,
    section_headers,
    set_section_offset,
    set_section_size,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import OBJ_NAMES, host_facts, obj_path
from support import corpus_obj_dir as _corpus_dir

NAME = "hostile_obj"
#: every call on hostile input must finish within this many seconds
CALL_TIMEOUT = 20.0
HOST: dict[str, Any] = host_facts()
REPO = Path(__file__).resolve().parent.parent
FIXTURE_BYTES = {n: obj_path(n).read_bytes() for n in OBJ_NAMES}
PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: malformed-input errors that have no section to name (something is absent)
WITHOUT_SECTION = {"couldn't find symbol table, stripped object file?"}
#: counts of hostile cases exercised per category, reported at the end of the session
CASES: dict[str, int] = {}


def bounded(fn: Callable[..., Any], *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
    """``fn(*args)`` in a daemon thread; a call still running after ``timeout`` fails."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # PanicException derives from BaseException
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"call did not finish within {timeout:.0f} s (hang)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def check_error(e: BaseException, name: str = NAME) -> BpfgenError:
    """Only package errors, naming the object, may come out."""
    if not isinstance(e, BpfgenError):
        raise AssertionError(f"non-package exception {type(e).__module__}.{type(e).__name__}: {e}")
    assert e.object == name, f"error does not name the object: {e}"
    assert str(e).startswith(f"{name}: "), str(e)
    assert e.reason, str(e)
    if e.section is not None:
        assert str(e).startswith(f"{name}: {e.section}"), str(e)
    elif not isinstance(e, bpfgen_fast.UnsupportedError):
        # malformed input is always located, except when something is missing
        assert e.reason in WITHOUT_SECTION, f"error without a section: {e}"
    return e


def pipeline(data: bytes, name: str = NAME) -> tuple[str, Any]:
    """open → gen_loader → self-check → gen_skeleton; ("ok", loader) or ("error", e)."""
    try:
        obj = bpfgen_fast.BpfObject.open(data, name)
        loader = obj.gen_loader(**HOST)
        _core.selfcheck(loader.data, loader.insns, list(loader.map_names),
                        list(loader.prog_names))
        obj._core.selfcheck(loader.data, loader.insns, bpfgen_fast.host_args(**HOST))
        loader.gen_skeleton()
        return "ok", loader
    except BaseException as e:
        return "error", check_error(e, name)


def hostile(data: bytes, category: str) -> tuple[str, Any]:
    CASES[category] = CASES.get(category, 0) + 1
    result: tuple[str, Any] = bounded(pipeline, data)
    return result


@pytest.fixture(scope="session", autouse=True)
def _report_cases() -> Any:
    yield
    if CASES:
        total = sum(CASES.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
        sys.stderr.write(f"\nhostile cases: {total} ({detail})\n")


# ---------------------------------------------------------------------------
# Property tests: truncations, bit flips, section-size and offset lies


@PROPERTY
@given(st.sampled_from(OBJ_NAMES), st.floats(0, 1))
def test_truncation(name: str, frac: float) -> None:
    data = FIXTURE_BYTES[name]
    kind, _ = hostile(data[: int(len(data) * frac)], "truncation")
    assert kind == "error" or frac == 1.0


@PROPERTY
@given(st.sampled_from(OBJ_NAMES), st.lists(st.integers(0, 1 << 30), min_size=1, max_size=16))
def test_bit_flips(name: str, bits: list[int]) -> None:
    hostile(flip_bits(FIXTURE_BYTES[name], bits), "bit flips")


INTERESTING = [0, 1, 7, 8, 24, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40,
               (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 8]


@PROPERTY
@given(st.sampled_from(OBJ_NAMES), st.integers(0, 63), st.one_of(
    st.sampled_from(INTERESTING), st.integers(0, 1 << 20), st.integers(-64, 64)))
def test_section_size_lies(name: str, sec: int, size: int) -> None:
    data = FIXTURE_BYTES[name]
    h = section_headers(data)
    idx = sec % len(h)
    if -64 <= size <= 64:  # a small lie relative to the truth, or to the file end
        size = (h[idx].size if sec % 2 else len(data) - h[idx].offset) + size
    hostile(set_section_size(data, idx, size), "section size lies")


@PROPERTY
@given(st.sampled_from(OBJ_NAMES), st.integers(0, 63), st.one_of(
    st.sampled_from(INTERESTING), st.integers(0, 1 << 16)))
def test_section_offset_lies(name: str, sec: int, offset: int) -> None:
    data = FIXTURE_BYTES[name]
    idx = sec % len(section_headers(data))
    hostile(set_section_offset(data, idx, offset), "section offset lies")


@PROPERTY
@given(st.sampled_from(OBJ_NAMES), st.sampled_from([".BTF", ".BTF.ext", ".symtab", ".maps"]),
       st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(INTERESTING)),
                min_size=1, max_size=6))
def test_section_word_overwrites(name: str, section: str,
                                 writes: list[tuple[int, int]]) -> None:
    """u32 words of BTF, BTF.ext, symbols and map definitions set to boundary values."""
    data = bytearray(FIXTURE_BYTES[name])
    secs = [h for h in section_headers(bytes(data)) if h.name == section and h.size >= 4]
    if not secs:
        return
    h = secs[0]
    for at, value in writes:
        struct.pack_into("<I", data, h.offset + (at % (h.size // 4)) * 4, value & 0xFFFF_FFFF)
    hostile(bytes(data), "section word overwrites")


def test_random_garbage() -> None:
    rng = random.Random(1)
    for n in (0, 1, 4, 16, 63, 64, 65, 200, 4096):
        hostile(bytes(rng.getrandbits(8) for _ in range(n)), "garbage")
        hostile(b"\x7fELF\x02\x01\x01" + bytes(rng.getrandbits(8) for _ in range(n)), "garbage")


# ---------------------------------------------------------------------------
# Resource bounds: hand-made objects claiming huge counts and sizes


def prog_object(code: bytes = MOV_R0_0 + EXIT, extra: list[Sec] | None = None,
                syms: list[Sym] | None = None, btf_data: bytes | None = None) -> Elf:
    e = Elf()
    idx = e.add(Sec("tracepoint/sched/sched_switch", SHT_PROGBITS, code,
                    flags=SHF_ALLOC | SHF_EXECINSTR))
    e.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
    e.symbols.append(Sym("prog", idx, value=0, size=len(code)))
    for s in extra or []:
        e.add(s)
    e.symbols.extend(syms or [])
    if btf_data is not None:
        e.add(Sec(".BTF", SHT_PROGBITS, btf_data, align=4))
    return e


def expect_error(data: bytes, kind: type[BpfgenError], *, section: str | None = None,
                 contains: str = "") -> BpfgenError:
    outcome, e = hostile(data, "resource bounds")
    assert outcome == "error", "expected a clean error"
    assert isinstance(e, kind), f"{type(e).__name__}: {e}"
    if section is not None:
        assert e.section == section, str(e)
    assert contains in str(e), str(e)
    return e


def test_minimal_object_generates() -> None:
    outcome, _ = hostile(prog_object().build(), "resource bounds")
    assert outcome == "ok"


def test_btf_vlen_beyond_section() -> None:
    strings = b"\0s\0"
    types = [btf_type(1, BTF_STRUCT, 0xFFFF, 8)]  # 65535 members claimed, none present
    expect_error(prog_object(btf_data=btf(types, strings)).build(), bpfgen_fast.BtfError,
                 section=".BTF", contains="truncated")


def test_btf_header_counts_beyond_section() -> None:
    data = bytearray(btf([btf_type(0, BTF_INT, 0, 4, struct.pack("<I", 32))], b"\0"))
    struct.pack_into("<I", data, 12, 0xFFFF_FFF0)  # type_len
    expect_error(prog_object(btf_data=bytes(data)).build(), bpfgen_fast.BtfError,
                 section=".BTF", contains="out of bounds")


def test_relocation_count_beyond_file() -> None:
    e = prog_object()
    e.add(Sec(".reltracepoint/sched/sched_switch", SHT_REL, b"\0" * 16, info=1, link=0,
              entsize=16, size=1 << 40))
    expect_error(e.build(), bpfgen_fast.ElfError,
                 section=".reltracepoint/sched/sched_switch")


@pytest.mark.parametrize("size", [0xFFFF_FFFF, 1 << 40, 300 << 20])
def test_bss_claiming_huge_size(size: int) -> None:
    """NOBITS needs no file bytes: a tiny file may claim any .bss size."""
    e = prog_object(extra=[Sec(".bss", SHT_NOBITS, flags=SHF_ALLOC | 1, size=size)])
    expect_error(e.build(), bpfgen_fast.UnsupportedError, section=".bss",
                 contains="data limit")


def test_bss_of_64_mib_generates() -> None:
    e = prog_object(extra=[Sec(".bss", SHT_NOBITS, flags=SHF_ALLOC | 1, size=64 << 20)])
    outcome, loader = hostile(e.build(), "resource bounds")
    assert outcome == "ok" and len(loader.data) > 64 << 20


def _map_def_object(types: list[bytes], strings: bytes, def_type: int) -> bytes:
    """A `.maps` variable `m` whose definition is BTF type `def_type`."""
    n = len(types)
    var_id = n + 1
    strings += b"m\0.maps\0"
    m_off, maps_off = len(strings) - 8, len(strings) - 6
    types = [*types,
             btf_type(m_off, BTF_VAR, 0, def_type, struct.pack("<I", 1)),
             btf_type(maps_off, BTF_DATASEC, 1, 0, struct.pack("<III", var_id, 0, 32))]
    e = prog_object(btf_data=btf(types, strings))
    idx = e.add(Sec(".maps", SHT_PROGBITS, b"\0" * 32, flags=SHF_ALLOC | 1))
    e.symbols.append(Sym("m", idx, value=0, size=32, type=STT_OBJECT))
    return e.build()


def test_deep_btf_type_chain() -> None:
    """100k CONSTs in a row: type resolution gives up, as libbpf's does."""
    n = 100_000
    types = [btf_type(0, BTF_INT, 0, 4, struct.pack("<I", 32))]
    types += [btf_type(0, BTF_CONST, 0, i) for i in range(1, n)]
    expect_error(_map_def_object(types, b"\0", n), bpfgen_fast.BtfError, section=".BTF")


def test_cyclic_btf_type_chain() -> None:
    strings = b"\0a\0b\0"
    types = [btf_type(1, BTF_TYPEDEF, 0, 2), btf_type(3, BTF_TYPEDEF, 0, 1)]
    expect_error(_map_def_object(types, strings, 1), bpfgen_fast.BtfError, section=".BTF")


def test_cyclic_pointer_and_array_types() -> None:
    """A map key that points to an array of itself: sizing stops."""
    strings = b"\0s\0key\0"
    types = [
        btf_type(0, BTF_ARRAY, 0, 0, struct.pack("<III", 1, 1, 4)),  # [1] = [1][4]
        btf_type(1, BTF_STRUCT, 1, 8, struct.pack("<III", 3, 3, 0)),  # [2] s { [3] key; }
        btf_type(0, BTF_PTR, 0, 1),  # [3] *[1]
    ]
    expect_error(_map_def_object(types, strings, 2), bpfgen_fast.BtfError, section=".BTF")


def _dag_struct_types(levels: int) -> tuple[list[bytes], bytes]:
    """struct L0 { L1 a; L1 b; } ... : 2^levels paths through `levels` types."""
    strings = b"\0a\0b\0int\0"
    types = [btf_type(5, BTF_INT, 0, 4, struct.pack("<I", 32))]  # [1] int
    for lvl in range(levels):
        child = 1 if lvl == 0 else lvl + 1
        # both members at offset 0: sizes stay 4 bytes at every level
        types.append(btf_type(0, BTF_STRUCT, 2, 4,
                              struct.pack("<III", 1, child, 0) + struct.pack("<III", 3, child, 0)))
    return types, strings


def test_exponential_btf_struct_dag_in_global_data() -> None:
    """A 40-level binary DAG of anonymous structs as a `.data` variable: alignment,
    layout and the skeleton's C declaration must not walk 2^40 paths."""
    levels = 40
    types, strings = _dag_struct_types(levels)
    top = levels + 1
    strings += b"v\0.data\0"
    v_off, sec_off = len(strings) - 8, len(strings) - 6
    types += [btf_type(v_off, BTF_VAR, 0, top, struct.pack("<I", 1)),
              btf_type(sec_off, BTF_DATASEC, 1, 0, struct.pack("<III", top + 1, 0, 8))]
    e = prog_object(btf_data=btf(types, strings))
    idx = e.add(Sec(".data", SHT_PROGBITS, b"\0" * 8, flags=SHF_ALLOC | 1))
    e.symbols.append(Sym("v", idx, value=0, size=8, type=STT_OBJECT))
    hostile(e.build(), "resource bounds")


def test_many_programs() -> None:
    """200k one-instruction programs (9 MB): a clean error, quickly."""
    n = 200_000
    e = Elf()
    idx = e.add(Sec("tracepoint/x", SHT_PROGBITS, (MOV_R0_0 + EXIT) * n,
                    flags=SHF_ALLOC | SHF_EXECINSTR))
    e.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
    e.symbols.extend(Sym(f"p{i}", idx, value=16 * i, size=16) for i in range(n))
    expect_error(e.build(), bpfgen_fast.UnsupportedError)


_BIG_SCRIPT = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import bpfgen_fast
from hostile_elf import *
kind = sys.argv[2]
host = json.loads(sys.argv[3])
mb = 100 << 20
code = (MOV_R0_0 * (mb // 8 - 1)) + EXIT if kind == "code" else MOV_R0_0 + EXIT
data = Elf()
idx = data.add(Sec("tracepoint/x", SHT_PROGBITS, code, flags=SHF_ALLOC | SHF_EXECINSTR))
data.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
data.symbols.append(Sym("p", idx, value=0, size=len(code)))
if kind == "data":        # 100 MB of initialised global data
    data.add(Sec(".data", SHT_PROGBITS, bytes(range(256)) * (mb // 256), flags=SHF_ALLOC | 1))
elif kind == "symbols":   # 100 MB of symbol table (4.4M symbols)
    data.symbols.extend(Sym("", idx, value=0, size=0, bind=0, type=0) for _ in range(mb // 24))
elif kind == "btf":       # 100 MB of BTF (8.7M INT types)
    t = btf_type(1, BTF_INT, 0, 4, struct.pack("<I", 32))
    data.add(Sec(".BTF", SHT_PROGBITS, btf([t] * (mb // len(t)), b"\0i\0"), align=4))
raw = data.build()
del data
start = time.monotonic()
try:
    obj = bpfgen_fast.BpfObject.open(raw, "big")
    del raw
    loader = obj.gen_loader(**host)
    header = obj.gen_skeleton(**host)
    outcome = ["ok", len(loader.data), len(header)]
except bpfgen_fast.BpfgenError as e:
    outcome = ["error", str(e)]
took = time.monotonic() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"outcome": outcome, "seconds": took, "max_rss_mb": rss}))
"""


@pytest.mark.parametrize("kind", ["code", "data", "symbols", "btf"])
def test_100_mb_object(kind: str) -> None:
    """A 100 MB object, in a fresh process: bounded time and memory."""
    host = {k: (str(v) if isinstance(v, Path) else v) for k, v in HOST.items()}
    p = subprocess.run([sys.executable, "-c", _BIG_SCRIPT, str(Path(__file__).parent), kind,
                        json.dumps(host)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    CASES["100 MB objects"] = CASES.get("100 MB objects", 0) + 1
    sys.stderr.write(f"100 MB {kind}: {r}\n")
    assert r["seconds"] < 60, r
    assert r["max_rss_mb"] < 3000, r
    if r["outcome"][0] == "error":
        assert r["outcome"][1].startswith("big: "), r


# ---------------------------------------------------------------------------
# The committed crash reproducers


REPRODUCERS = sorted(
    p for d in (REPO / "fuzz" / "regressions", REPO / "tests" / "hostile") if d.is_dir()
    for p in d.iterdir() if p.name.endswith((".o", ".o.gz"))
)


@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.name for p in REPRODUCERS])
def test_committed_reproducers(path: Path) -> None:
    """Fuzz findings and hand-made hostile objects (EXPECTED.txt: tests/hostile.rs)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        data = gzip.decompress(data)
    hostile(data, "committed reproducers")


# ---------------------------------------------------------------------------
# Determinism


def _digest(data: bytes, name: str) -> str:
    obj = bpfgen_fast.BpfObject.open(data, name)
    loader = obj.gen_loader(**HOST)
    header = obj.gen_skeleton(**HOST)
    return hashlib.sha256(loader.data + b"|" + loader.insns + b"|" + header.encode()).hexdigest()


def _all_digests() -> dict[str, str]:
    out = {}
    for name, data in FIXTURE_BYTES.items():
        try:
            out[name] = _digest(data, name.replace(".", "_"))
        except BpfgenError as e:
            out[name] = f"error: {e}"
    return out


def test_identical_bytes_across_runs_threads_and_order() -> None:
    from concurrent.futures import ThreadPoolExecutor

    first = _all_digests()
    assert _all_digests() == first
    names = list(FIXTURE_BYTES)
    for threads in (1, 3, 8):
        order = names[:]
        random.Random(threads).shuffle(order)
        with ThreadPoolExecutor(threads) as pool:
            got = dict(zip(order, pool.map(
                lambda n: bounded(_digest, FIXTURE_BYTES[n], n.replace(".", "_"))
                if not first[n].startswith("error") else first[n], order)))
        assert got == first, f"{threads} threads"


def test_identical_bytes_across_processes() -> None:
    script = ("import json,sys; sys.path.insert(0, sys.argv[1]); import test_hostile as t; "
              "print(json.dumps(t._all_digests()))")
    p = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == _all_digests()


def test_batch_is_independent_of_jobs_and_order() -> None:
    gen_batch = getattr(bpfgen_fast, "gen_batch", None)
    if gen_batch is None:
        pytest.skip("no gen_batch in this build")
    paths = [obj_path(n) for n in OBJ_NAMES]

    def run(order: list[Path], jobs: int) -> dict[str, str]:
        results = bounded(lambda: gen_batch(order, jobs=jobs, **HOST), timeout=120)
        return {r.path: (r.header if r.ok else f"error: {r.error}") for r in results}

    base = run(paths, 1)
    rev = list(reversed(paths))
    assert run(rev, 4) == base
    shuffled = paths[:]
    random.Random(7).shuffle(shuffled)
    assert run(shuffled, 8) == base


# ---------------------------------------------------------------------------
# Thread safety of the Python objects


def test_one_object_generated_from_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    obj = bpfgen_fast.BpfObject.open(FIXTURE_BYTES["mixed_everything.bpf"], "mixed")
    want = obj.gen_skeleton(**HOST)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: obj.gen_skeleton(**HOST), range(64)))
    assert all(g == want for g in got)


def test_autoload_changes_while_generating() -> None:
    """Toggling autoload while other threads generate: every result is a loader or
    a package error, never a borrow error or a crash."""
    obj = bpfgen_fast.BpfObject.open(FIXTURE_BYTES["mixed_everything.bpf"], "mixed")
    progs = list(obj.programs.values())
    stop = threading.Event()
    errors: list[BaseException] = []

    def generate() -> None:
        while not stop.is_set():
            try:
                obj.gen_loader(**HOST)
            except BpfgenError:
                pass
            except BaseException as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=generate, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(400):
            p = progs[i % len(progs)]
            p.autoload = not p.autoload
    except BaseException as e:
        errors.append(e)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, repr(errors[0])


# ---------------------------------------------------------------------------
# The loader self-check


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_selfcheck_on_fixtures(name: str) -> None:
    obj = bpfgen_fast.BpfObject.open(FIXTURE_BYTES[name], name.replace(".", "_"))
    try:
        loader = obj.gen_loader(**HOST)
    except BpfgenError:
        pytest.skip("not generated on this host")
    report = _core.selfcheck(loader.data, loader.insns, list(loader.map_names),
                             list(loader.prog_names))
    full = obj._core.selfcheck(loader.data, loader.insns, bpfgen_fast.host_args(**HOST))
    assert report == full
    created = [m for m in report["map_creates"] if m[1] is not None]
    assert [m[0] for m in created] == [n[:15] for n in loader.map_names]
    loaded = [p[0] for p in report["prog_loads"]]
    assert loaded == [p.name[:15] for p in obj.programs.values() if p.autoload]


def test_selfcheck_on_corpus() -> None:
    corpus = _corpus_dir()
    if corpus is None:
        pytest.skip("no kernel selftests corpus cache (scripts/selftests)")
    checked = errors = 0
    for path in sorted(corpus.glob("*.o")):
        name = _core.default_object_name(str(path))
        try:
            obj = bpfgen_fast.BpfObject.open(path.read_bytes(), name)
            loader = obj.gen_loader(**HOST)
        except BpfgenError as e:
            check_error(e, name)
            errors += 1
            continue
        try:
            obj._core.selfcheck(loader.data, loader.insns, bpfgen_fast.host_args(**HOST))
        except BpfgenError as e:
            pytest.fail(f"{path.name}: {e}")
        checked += 1
    sys.stderr.write(f"\ncorpus self-check: {checked} loaders, {errors} clean errors\n")
    assert checked > 0


def _fixture_loader(name: str = "mixed_everything.bpf") -> Any:
    return bpfgen_fast.BpfObject.open(FIXTURE_BYTES[name], "mixed").gen_loader(**HOST)


def _insn(insns: bytes, pc: int) -> tuple[int, int, int, int]:
    code, regs, off, imm = struct.unpack_from("<BBhi", insns, 8 * pc)
    return code, regs, off, imm


def _set_insn(insns: bytes, pc: int, *, off: int | None = None, imm: int | None = None) -> bytes:
    code, regs, o, i = _insn(insns, pc)
    out = bytearray(insns)
    struct.pack_into("<BBhi", out, 8 * pc, code, regs, o if off is None else off,
                     i if imm is None else imm)
    return bytes(out)


def _corruptions(loader: Any) -> dict[str, tuple[bytes, bytes, list[str], list[str]]]:
    data, insns = loader.data, loader.insns
    maps, progs = list(loader.map_names), list(loader.prog_names)
    n = len(insns) // 8
    pcs = range(n)
    ld = next(pc for pc in pcs if _insn(insns, pc)[0] == 0x18)
    jslt = next(pc for pc in pcs if _insn(insns, pc)[0] == 0xC5)
    sys_bpf = [pc for pc in pcs if _insn(insns, pc)[0] == 0x85 and _insn(insns, pc)[3] == 166]
    out = {
        "blob offset past the data": (data, _set_insn(insns, ld + 1, imm=len(data) + 8), maps,
                                      progs),
        "error branch off the cleanup label": (data, _set_insn(insns, jslt, off=-1), maps, progs),
        "jump outside the program": (data, _set_insn(insns, jslt, off=0x7FFF), maps, progs),
        "map renamed": (data, insns, ["x" + m for m in maps], progs),
        "program renamed": (data, insns, maps, ["x" + p for p in progs]),
        "programs swapped": (data, insns, maps, progs[::-1]),
        "one map missing": (data, insns, maps[:-1], progs),
        "truncated data": (data[: len(data) // 2 // 8 * 8], insns, maps, progs),
        "truncated insns": (data, insns[: len(insns) - 8], maps, progs),
        "unknown helper": (data, _set_insn(insns, sys_bpf[0], imm=6), maps, progs),
    }
    # the first PROG_LOAD's attr: claim more instructions than the blob holds
    attr = bytearray(data)
    for pc in sys_bpf:
        # sys_bpf: mov r1, cmd; ld_imm64 r2, attr (two slots); mov r3, size; call
        cmd = _insn(insns, pc - 4)[3]
        if cmd == 5:
            attr_off = _insn(insns, pc - 2)[3]
            struct.pack_into("<I", attr, attr_off + 4, 1 << 28)
            break
    out["insn_cnt beyond the blob"] = (bytes(attr), insns, maps, progs)
    return out


@pytest.mark.parametrize("case", sorted(_corruptions(_fixture_loader())))
def test_selfcheck_rejects_corrupted_loaders(case: str) -> None:
    loader = _fixture_loader()
    assert progs_reversed_differs(loader)
    data, insns, maps, progs = _corruptions(loader)[case]
    with pytest.raises(BpfgenError, match="self-check"):
        bounded(_core.selfcheck, data, insns, maps, progs)


def progs_reversed_differs(loader: Any) -> bool:
    return list(loader.prog_names) != list(loader.prog_names)[::-1]
