"""Each place where bpfgen_fast deliberately goes beyond bpftool 7.5.0 / libbpf 1.5's
gen_loader (README: divergences), shown in the kernel: our output loads and behaves,
bpftool's output is refused (by bpftool, gcc, the verifier or MAP_CREATE), crashes or
behaves wrongly. Needs root and bpf() for the kernel parts, gcc for the headers,
clang-19 for the generated many-program / many-map objects (tests/fixtures/gen_many.py)
and bpftool for bpftool's side; each is skipped with its reason when missing."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import signal
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skel_c
from bpfgen_fast import BpfObject, Loader, LoadError, UnsupportedError, host_args, run
from bpfgen_fast.explain import Explanation, ProgLoad, disasm, explain
from support import BAD, BUILD, FIXDIR, HOST, fixture_script, obj_path, run_cli

EXPECTED_BAD = (BAD / "EXPECTED.txt").read_text()
#: compiled probe programs, cached by content hash (gitignored)
PROBES = BUILD / "probes"
#: host facts that change sizes: the goldens' (the rest, if needed, is read from this host)
SIZES = {"page_size": int(str(HOST["page_size"])), "possible_cpus": int(str(HOST["possible_cpus"]))}


gen_many = fixture_script("gen_many")
make_golden = fixture_script("make_golden")


# -- tools -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def clang() -> str:
    path = shutil.which(gen_many.CLANG)
    if path is None:
        pytest.skip(f"{gen_many.CLANG} not found: cannot build the generated objects")
    return path


def many(clang: str, progs: int, maps: int) -> Path:
    return Path(gen_many.build(progs, maps))


def bpftool_gen(tool: str, obj: Path) -> subprocess.CompletedProcess[str]:
    """``bpftool gen skeleton -L OBJ`` from OBJ's directory (object name from the file)."""
    return subprocess.run([tool, "gen", "skeleton", "-L", obj.name], cwd=obj.parent,
                          capture_output=True, text=True, timeout=300)


def blobs(header: str) -> tuple[bytes, bytes]:
    return make_golden.decode_c_blob(header, "opts_data"), make_golden.decode_c_blob(
        header, "opts_insn")


def lskel(tool: Path, data: bytes, insns: bytes, nr_maps: int, nr_progs: int,
          tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "l.data").write_bytes(data)
    (tmp_path / "l.insns").write_bytes(insns)
    return subprocess.run([str(tool), str(tmp_path / "l.data"), str(tmp_path / "l.insns"),
                           str(nr_maps), str(nr_progs)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def reason(out: str) -> str:
    return next((line[8:] for line in out.splitlines() if line.startswith("reason: ")), "")


def probe(header: str, obj: Path | None = None, **kw: Any) -> skel_c.Probe:
    """Compile a probe main around ``header`` (types from ``obj``'s BTF) and run it."""
    skel = skel_c.parse_header(header)
    prelude = skel_c.type_prelude(obj, header) if obj is not None else ""
    src = skel_c.probe_source("skel.lskel.h", skel, prelude=prelude, **kw)
    exe, err = skel_c.compile_c(src, header, PROBES)
    assert exe is not None, f"the header does not compile:\n{err[-3000:]}"
    return skel_c.run_probe(exe)


def compiles(header: str) -> tuple[bool, str]:
    skel = skel_c.parse_header(header)
    exe, err = skel_c.compile_c(skel_c.probe_source("skel.lskel.h", skel), header, PROBES)
    return exe is not None, err


# -- 1. more than 32 programs ----------------------------------------------------------------

@pytest.mark.usefixtures("bpf_permitted", "gcc")
@pytest.mark.parametrize("n", [40, 100, 300])
def test_more_than_32_programs_load(n: int, clang: str, lskel_run: Path, tmp_path: Path) -> None:
    """n socket programs + 3 static .text sub-programs sharing one map: every program fd
    is valid, named after its own program, and runs its own code (p_i returns 1000 + i)."""
    path = many(clang, n, 1)
    obj = BpfObject.open(path)
    assert len(obj.programs) == n and obj.subprograms == ["sub0", "sub1", "sub2"]
    loader = obj.gen_loader(**SIZES)
    assert loader.prog_names == tuple(f"p{i:03d}" for i in range(n))
    out = lskel(lskel_run, loader.data, loader.insns, len(loader.map_names), n, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    for i in range(n):
        assert f"prog[{i}] fd=" in out.stdout and f" type=1 name=p{i:03d} " in out.stdout

    sample = sorted({0, 1, n // 2, n - 1})
    p = probe(obj.gen_skeleton(**SIZES), path,
              runs=[skel_c.TestRun(f"p{i:03d}", data=64) for i in sample])
    assert p.rc == 0, p
    assert list(p.progs) == [f"p{i:03d}" for i in range(n)]
    for ident, info in p.progs.items():
        assert int(info["fd"]) > 0 and info["name"] == ident and info["type"] == "1", (ident, info)
    assert len({info["fd"] for info in p.progs.values()}) == n
    assert p.maps["m000"]["name"] == "m000"
    for i in sample:
        ident = f"p{i:03d}"
        assert p.runs[ident]["err"] == "0", p.runs[ident]
        assert int(p.runs[ident]["retval"]) == gen_many.retval(i, 1)


@pytest.mark.usefixtures("bpf_permitted")
def test_bpftools_loader_for_40_programs_is_rejected(clang: str, bpftool: str, gcc: str,
                                                    lskel_run: Path, tmp_path: Path) -> None:
    """libbpf 1.5 keeps program fds in 32 stack slots: bpftool writes the skeleton, but
    the verifier refuses its loader (the 33rd fd store is beyond the frame)."""
    path = many(clang, 40, 1)
    gen = bpftool_gen(bpftool, path)
    assert gen.returncode == 0, gen.stderr
    data, insns = blobs(gen.stdout)
    out = lskel(lskel_run, data, insns, 2, 40, tmp_path)
    assert out.returncode == 1, out.stdout[-2000:]
    assert "FAIL failed to load loader prog" in out.stdout
    assert reason(out.stdout).startswith("invalid write to stack R10"), reason(out.stdout)
    p = probe(gen.stdout, path)  # the header itself: __open_and_load fails
    assert p.rc == 2 and "open_and_load failed errno=13" in p.out, p


# -- 2. more than 64 maps --------------------------------------------------------------------

MANY_MAPS = {65: 2, 200: 4}  # maps -> programs (the kernel allows a program 64 maps)


@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
@pytest.mark.parametrize("m", sorted(MANY_MAPS))
def test_more_than_64_maps_load(m: int, clang: str) -> None:
    """Every map exists with its own name; with value j written into map m_j, each
    program's return value (1000 + i + sum of value(m_j) * (j + 1) over the maps it reads,
    up to m199) proves every fd array slot, beyond 64 too, holds its own map; p000 bumps
    ``hits`` in .bss, an internal map after all of them."""
    n = MANY_MAPS[m]
    path = many(clang, n, m)
    obj = BpfObject.open(path)
    assert list(obj.maps) == [f"m{i:03d}" for i in range(m)] + [f"{obj.name[:8]}.bss"]
    with run(obj.gen_loader(**SIZES)) as loaded:
        assert list(loaded.maps) == list(obj.maps)
        for name in obj.maps:
            info = loaded.map_info(name)
            assert info.name == name[:15]
            assert (info.type, info.key_size, info.max_entries) == (2, 4, 1)
        values = {j: j for j in range(1, m)}
        for j, v in values.items():
            loaded.update(f"m{j:03d}", b"\0" * 4, struct.pack("<Q", v))
        for i in range(n):
            res = loaded.test_run(f"p{i:03d}", data=b"\0" * 64)
            assert res.retval == gen_many.retval(i, m, values), f"p{i:03d}"
        assert struct.unpack_from("<Q", loaded.bss, 0)[0] == 1
        assert loaded.lookup("m000", b"\0" * 4) == struct.pack("<Q", n)


@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_more_than_64_maps_header(clang: str) -> None:
    path = many(clang, 4, 200)
    p = probe(BpfObject.open(path).gen_skeleton(**SIZES), path,
              runs=[skel_c.TestRun(f"p{i:03d}", data=64) for i in range(4)])
    assert p.rc == 0, p
    assert len(p.maps) == 201 and all(int(i["fd"]) > 0 for i in p.maps.values())
    assert all(p.maps[f"m{j:03d}"]["name"] == f"m{j:03d}" for j in range(200))
    assert p.maps["bss"]["name"] == "many_p4_.bss"
    assert [int(p.runs[f"p{i:03d}"]["retval"]) for i in range(4)] == [
        gen_many.retval(i, 200) for i in range(4)]


@pytest.mark.parametrize("m", sorted(MANY_MAPS))
def test_bpftool_refuses_more_than_64_maps(m: int, clang: str, bpftool: str) -> None:
    gen = bpftool_gen(bpftool, many(clang, MANY_MAPS[m], m))
    assert gen.returncode != 0
    assert "libbpf: Total maps exceeds 64" in gen.stderr


# -- 3. prog-array static .values ------------------------------------------------------------

def test_bpftool_refuses_prog_array_values(bpftool: str) -> None:
    gen = bpftool_gen(bpftool, BAD / "prog_array_static.bpf.o")
    assert gen.returncode != 0
    assert "failed to load object 'prog_array_static_bpf'" in gen.stderr
    assert "== bad/prog_array_static.bpf.o (exit status 161)" in EXPECTED_BAD


@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_prog_array_static_slot_is_filled() -> None:
    """enter_slot1 returns 42 only through the tail call into slot 1 (7 otherwise);
    enter_slot0 finds slot 0 empty."""
    path = BAD / "prog_array_static.bpf.o"
    obj = BpfObject.open(path)
    runs = [skel_c.TestRun(p, data=64) for p in ("enter_slot1", "enter_slot0", "tail_target")]
    p = probe(obj.gen_skeleton(**SIZES), path, runs=runs)
    assert p.rc == 0, p
    assert {k: v["retval"] for k, v in p.runs.items()} == {
        "enter_slot1": "42", "enter_slot0": "7", "tail_target": "42"}, p
    assert p.maps["jmp_table"]["type"] == "3"


# -- 4. kfunc ___flavour ---------------------------------------------------------------------

def _flavour_values(loader: Loader | BpfObject) -> tuple[int, int]:
    with run(loader) as loaded:
        res = loaded.test_run("probe_ksyms", ctx=b"\0" * 8)
        assert res.retval == 0
        return struct.unpack_from("<ii", loaded.data, 0)  # type: ignore[return-value]


@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
def test_flavoured_kfunc_exists(bpftool: str) -> None:
    """bpf_ksym_exists(bpf_task_acquire___x) in a syscall program: 1 with our loader
    (bpf_task_acquire is found), 0 with bpftool's (it looks the suffixed name up); the
    control, a kfunc no kernel has, is 0 for both."""
    path = BAD / "ksym_flavour.bpf.o"
    obj = BpfObject.open(path)
    assert _flavour_values(obj) == (1, 0)
    compat = obj.gen_loader(_bpftool_ksym_names=True)
    assert _flavour_values(compat) == (0, 0)
    gen = bpftool_gen(bpftool, path)
    assert gen.returncode == 0, gen.stderr
    theirs = blobs(gen.stdout)
    assert theirs == (compat.data, compat.insns)  # the option is exactly bpftool's loader
    bare = Loader(data=theirs[0], insns=theirs[1], map_names=compat.map_names,
                  prog_names=compat.prog_names)
    assert _flavour_values(bare) == (0, 0)


# -- 5. maps with incomplete BTF -------------------------------------------------------------

INCOMPLETE = {  # fixture -> (map, program, key, value, key_size, value_size)
    "map_btf_key_only": ("key_typed", "use_key_typed", struct.pack("<II", 1, 2),
                         struct.pack("<QQQ", 3, 4, 5), 8, 24),
    "map_btf_value_only": ("value_typed", "use_value_typed", struct.pack("<I", 9),
                           struct.pack("<QQI4x", 1, 2, 3), 4, 24),
}


@pytest.mark.usefixtures("bpf_permitted")
@pytest.mark.parametrize("name", sorted(INCOMPLETE))
def test_incomplete_map_btf_bpftool_fails(name: str, bpftool: str, lskel_run: Path,
                                          tmp_path: Path) -> None:
    mapname = INCOMPLETE[name][0]
    gen = bpftool_gen(bpftool, BAD / f"{name}.bpf.o")
    assert gen.returncode == 0, gen.stderr
    assert f"== bad/{name}.bpf.o (exit status 0)" in EXPECTED_BAD
    data, insns = blobs(gen.stdout)
    out = lskel(lskel_run, data, insns, 2, 1, tmp_path)
    assert out.returncode == 1
    assert "FAIL failed to execute loader prog: -22 (Invalid argument)" in out.stdout
    ours = BpfObject.open(BAD / f"{name}.bpf.o").gen_loader(**SIZES)
    with pytest.raises(LoadError) as ei:
        run(Loader(data=data, insns=insns, map_names=ours.map_names, prog_names=ours.prog_names))
    assert ei.value.errno == errno.EINVAL
    assert (ei.value.step or "").endswith(f"MAP_CREATE {mapname}"), ei.value.step


@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
@pytest.mark.parametrize("name", sorted(INCOMPLETE))
def test_incomplete_map_btf_ours_loads(name: str) -> None:
    mapname, prog, key, value, key_size, value_size = INCOMPLETE[name]
    with run(BpfObject.open(BAD / f"{name}.bpf.o").gen_loader(**SIZES)) as loaded:
        info = loaded.map_info(mapname)
        assert (info.type, info.key_size, info.value_size, info.max_entries) == (
            1, key_size, value_size, 16)
        assert (info.btf_key_type_id, info.btf_value_type_id) == (0, 0)  # created without BTF
        assert loaded.test_run(prog, ctx=b"\0" * 8).retval == 0
        assert loaded.lookup(mapname, key) == value


# -- 6. non-autoload programs: fds in their own slots ----------------------------------------

AUTOLOAD = "autoload_question.bpf"
AUTOLOAD_PROGS = ["always_loaded", "maybe_loaded_a", "always_loaded_too", "maybe_loaded_b"]
AUTOLOAD_CASES = {  # CLI options -> the programs that load
    (): {"always_loaded", "always_loaded_too"},
    ("--no-autoload", "always_loaded", "--autoload", "maybe_loaded_b"):
        {"always_loaded_too", "maybe_loaded_b"},
    ("--autoload", "maybe_loaded_a"): {"always_loaded", "maybe_loaded_a", "always_loaded_too"},
    ("--no-autoload", "always_loaded"): {"always_loaded_too"},
}


@pytest.mark.usefixtures("cli_entry")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
@pytest.mark.parametrize("opts", list(AUTOLOAD_CASES), ids=lambda o: " ".join(o) or "default")
def test_autoload_header_fds_in_own_slots(opts: tuple[str, ...], tmp_path: Path) -> None:
    out = tmp_path / "a.lskel.h"
    cli = run_cli("gen", "skeleton", "-L", obj_path(AUTOLOAD), "--page-size",
                  str(SIZES["page_size"]), *opts, "-o", out)
    assert cli.returncode == 0, cli.stderr
    loaded = AUTOLOAD_CASES[opts]
    p = probe(out.read_text(), obj_path(AUTOLOAD), required_progs=loaded)
    assert p.rc == 0, p
    assert list(p.progs) == AUTOLOAD_PROGS
    for ident, info in p.progs.items():
        if ident in loaded:
            assert int(info["fd"]) > 0 and info["name"] == ident[:15], (ident, p)
        else:
            assert info == {"fd": "0"}, (ident, p)


@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_autoload_bpftool_header_misplaces_fds(bpftool: str) -> None:
    """bpftool's header: always_loaded_too's fd lands in maybe_loaded_a's slot."""
    gen = bpftool_gen(bpftool, obj_path(AUTOLOAD))
    assert gen.returncode == 0, gen.stderr
    p = probe(gen.stdout, obj_path(AUTOLOAD), required_progs=set())
    assert p.rc == 0, p
    assert p.progs["always_loaded"]["name"] == "always_loaded"
    assert p.progs["maybe_loaded_a"]["name"] == "always_loaded_t"  # someone else's program
    assert p.progs["always_loaded_too"] == {"fd": "0"}  # its own program lost
    assert p.progs["maybe_loaded_b"] == {"fd": "0"}


# -- 7. SEC("raw_tp") without a name ---------------------------------------------------------

def test_raw_tp_noname_bpftool_crashes(bpftool: str) -> None:
    gen = bpftool_gen(bpftool, BAD / "raw_tp_noname.bpf.o")
    assert gen.returncode == -signal.SIGSEGV, (gen.returncode, gen.stderr)


@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_raw_tp_noname_header_loads_and_attach_is_unsupported() -> None:
    path = BAD / "raw_tp_noname.bpf.o"
    header = BpfObject.open(path).gen_skeleton(**SIZES)
    p = probe(header, path, attach=["raw_noname"], attach_all=True)
    assert p.rc == 0, p
    assert p.progs["raw_noname"]["name"] == "raw_noname" and p.progs["raw_noname"]["type"] == "17"
    assert p.attach == {"raw_noname": 0}  # "auto-attach not supported": 0, no link
    assert "attach_all ret=0" in p.out


# -- 8. objects without programs -------------------------------------------------------------

@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_no_progs_header_compiles_and_loads() -> None:
    path = obj_path("no_progs.bpf")
    header = BpfObject.open(path).gen_skeleton(**SIZES)
    p = probe(header, path, extra='\tprintf("lonely_data=%u\\n", skel->data->lonely_data);')
    assert p.rc == 0, p
    assert p.maps["lonely_map"]["name"] == "lonely_map" and p.maps["lonely_map"]["type"] == "1"
    assert p.maps["data"]["name"] == "no_progs.data" and p.progs == {}
    assert "lonely_data=17" in p.out


@pytest.mark.usefixtures("gcc")
def test_no_progs_bpftool_header_does_not_compile(bpftool: str) -> None:
    gen = bpftool_gen(bpftool, obj_path("no_progs.bpf"))
    assert gen.returncode == 0, gen.stderr
    ok, err = compiles(gen.stdout)
    assert not ok
    assert "has no member named 'links'" in err.replace("\u2018", "'").replace("\u2019", "'")


# -- 14. loaders beyond 16-bit jumps ---------------------------------------------------------

#: program counts whose loaders are too long for 16-bit jumps: about 66,700 loader
#: instructions for 1,000 programs, 200,900 for 3,000 (libbpf 1.5 refuses both: ERANGE)
LONG = [1000, 3000]
#: the first instruction whose branch back to the cleanup label (insn 7) needs more than a
#: 16-bit offset (-32,768 reaches back from insn 32,774 only)
LONG_FROM = 32775
_JEQ_R7, _JSLT_R7, _JSGE_R7, _GOTOL, _CALL = 0x15, 0xC5, 0x75, 0x06, 0x85


def long_obj(clang: str, n: int) -> Path:
    """gen_many's n programs, the last one with two typeless ksyms (resolved by the
    loader after every program's load: far beyond the 16-bit reach)."""
    return Path(gen_many.build(n, 1, ksyms=True))


def _insn(insns: bytes, pc: int) -> tuple[int, int, int, int]:
    code, regs, off, imm = struct.unpack_from("<BBhi", insns, 8 * pc)
    return code, regs, off, imm


@contextlib.contextmanager
def open_files(n: int) -> Iterator[None]:
    """RLIMIT_NOFILE set to the fds open now plus ``n``, restored after: a loaded object
    holds one fd per program and map (1,024 is a common default limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = len(os.listdir("/proc/self/fd")) + n
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
    except (ValueError, OSError) as e:
        pytest.skip(f"cannot set RLIMIT_NOFILE to {want}: {e}")
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("n", LONG)
def test_long_loader_shape(n: int, clang: str) -> None:
    """Every error branch is libbpf's ``if r7 s< 0 goto 7`` up to insn 32,774 and
    ``if r7 s>= 0 goto +1; gotol 7`` after it: one after each bpf() call and each ksym
    lookup. A missing typeless ksym (-ENOENT) skips its check, in the long form two
    insns. Nothing else is long (the prologue's jump over a cleanup block of 6,026 /
    18,026 insns fits). The self-check passes with the object's full expectations."""
    obj = BpfObject.open(long_obj(clang, n))
    loader = obj.gen_loader(**SIZES)
    insns = loader.insns
    count = len(insns) // 8
    assert count > LONG_FROM
    short, long, skips, sys_bpf = [], [], [], 0
    for pc in range(count):
        code, regs, off, imm = _insn(insns, pc)
        if code == _JSLT_R7 and regs == 7 and imm == 0:
            assert pc + 1 + off == 7, pc
            short.append(pc)
        elif code == _GOTOL:
            assert pc + 1 + imm == 7 and (regs, off) == (0, 0), pc
            assert _insn(insns, pc - 1) == (_JSGE_R7, 7, 1, 0), pc
            long.append(pc)
        elif code == _JEQ_R7 and regs == 7 and imm == -errno.ENOENT:
            skips.append((pc, off))
        elif code == _CALL and imm == 166:
            sys_bpf += 1
    assert short and max(short) < LONG_FROM <= min(long) - 1
    # BTF, 2 maps, the .bss image, n programs; 2 ksym lookups
    assert sys_bpf == n + 4 and len(short) + len(long) == sys_bpf + 2
    assert len(skips) == 2 and all(off == 2 and pc + 2 in long for pc, off in skips), skips
    assert _insn(insns, 6)[0] == 0x05  # ja
    report = obj._core.selfcheck(loader.data, insns, host_args(**SIZES))
    assert report["insn_cnt"] == count and len(report["prog_loads"]) == n


def test_bpftool_refuses_long_loaders(bpftool: str, clang: str) -> None:
    """libbpf 1.5 emits 16-bit error branches only: its gen_loader fails with ERANGE."""
    path = long_obj(clang, 1000)
    gen = subprocess.run([bpftool, "-d", "gen", "skeleton", "-L", path.name], cwd=path.parent,
                         capture_output=True, text=True, timeout=300)
    assert gen.returncode != 0
    assert f"gen: finish -{errno.ERANGE}" in gen.stderr, gen.stderr[-2000:]


def test_explain_long_loader(clang: str) -> None:
    """explain() decodes both branch forms: the steps cover the loader without a gap,
    every program is found in order with the last one's ksyms, and the disassembly
    spells the gotols."""
    n = 1000
    loader = BpfObject.open(long_obj(clang, n)).gen_loader(**SIZES)
    e = explain(loader)
    assert [p.name for p in e.programs] == [f"p{i:03d}" for i in range(n)]
    assert [p.ctx_slot for p in e.programs] == list(range(n))
    ends = [e.cleanup.last_insn, *(s.last_insn for s in e.steps)]
    starts = [s.first_insn for s in e.steps]
    assert [a + 1 for a in ends[:-1]] == starts and ends[-1] == len(loader.insns) // 8 - 1
    last = e.programs[-1]
    assert last.first_insn > LONG_FROM
    assert sorted((r.kind, r.name) for r in last.relocations) == [
        ("typeless", "bpfgen_no_such_sym"), ("typeless", "vfs_read")]
    assert Explanation.from_json(e.to_json()) == e
    assert f"{n} programs loaded" in e.to_text()
    lines = disasm(loader.insns)
    gotos = [line for line in lines if ") gotol pc-" in line]
    assert gotos and all(line.endswith(" -> 7") for line in gotos)
    k = next(i for i, line in enumerate(lines) if ") gotol pc-" in line)
    assert lines[k - 1].endswith("if r7 s>= 0 goto pc+1 -> " + lines[k + 1].split(":")[0].strip())


def _kallsyms(name: str) -> int | None:
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _, sym = line.split()[:3]
            if sym == name:
                return int(addr, 16) or None  # 0: addresses hidden (kptr_restrict)
    return None


@pytest.mark.kernel("gotol")
@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
@pytest.mark.parametrize("n", LONG)
def test_long_loader_runs(n: int, clang: str) -> None:
    """run(): the loader loads every program (its own fd, its own name), each sampled
    program returns 1000 + i, each run bumps the shared map, and the last program got
    its ksyms: vfs_read's address, and 0 for the missing weak one, whose -ENOENT branch
    skipped the long error check."""
    loader = BpfObject.open(long_obj(clang, n)).gen_loader(**SIZES)
    names = [f"p{i:03d}" for i in range(n)]
    with open_files(n + 16), run(loader) as loaded:
        assert list(loaded.progs) == names
        assert all(fd > 0 for fd in loaded.progs.values())
        assert len(set(loaded.progs.values())) == n
        sample = sorted({0, 1, 500, n // 2, n - 1})
        for i in sample:
            assert loaded.prog_info(names[i]).name == names[i]
            assert loaded.test_run(names[i], data=b"\0" * 64).retval == gen_many.retval(i, 1)
        assert loaded.lookup("m000", b"\0" * 4) == struct.pack("<Q", len(sample))
        hits, vfs_read, missing = struct.unpack_from("<QQQ", loaded.bss, 0)
        assert hits == 1 and missing == 0 and vfs_read != 0
        assert vfs_read == (_kallsyms("vfs_read") or vfs_read)


@pytest.mark.kernel("gotol")
@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
def test_long_loader_error_branch_reaches_cleanup(clang: str) -> None:
    """With room for only 700 more fds, a program past the 16-bit reach fails to load
    (EMFILE): its long error branch lands on the cleanup block, which closes every fd the
    loader made (no_leaked_fds), and run() names the failing step."""
    loader = BpfObject.open(long_obj(clang, 1000)).gen_loader(**SIZES)
    e = explain(loader)
    with open_files(700), pytest.raises(LoadError) as info:
        run(loader).close()
    assert info.value.errno == errno.EMFILE, info.value
    step = e.steps[info.value.step_index or 0]
    assert isinstance(step, ProgLoad) and step.first_insn > LONG_FROM, step
    assert f": PROG_LOAD {step.name}: Too many open files" in str(info.value), info.value


@pytest.mark.kernel("gotol")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
@pytest.mark.parametrize("n", LONG)
def test_long_loader_header(n: int, clang: str) -> None:
    """The light skeleton (skel_internal.h's loader run): every program fd is valid and
    named after its program, and sampled programs return 1000 + i."""
    path = long_obj(clang, n)
    sample = sorted({0, 500, n - 1})
    with open_files(n + 16):
        p = probe(BpfObject.open(path).gen_skeleton(**SIZES), path,
                  runs=[skel_c.TestRun(f"p{i:03d}", data=64) for i in sample])
    assert p.rc == 0, str(p)[-3000:]
    assert list(p.progs) == [f"p{i:03d}" for i in range(n)]
    for ident, info in p.progs.items():
        assert int(info["fd"]) > 0 and info["name"] == ident and info["type"] == "1", (ident, info)
    assert len({info["fd"] for info in p.progs.values()}) == n
    for i in sample:
        run_ = p.runs[f"p{i:03d}"]
        assert run_["err"] == "0" and int(run_["retval"]) == gen_many.retval(i, 1), run_


# -- run() (explain()'s decoder) with these loader layouts ------------------------------------

@pytest.mark.usefixtures("bpf_permitted", "no_leaked_fds")
@pytest.mark.parametrize("which", ["40 programs", "prog_array_static"])
def test_run_loads_beyond_loaders(which: str, clang: str) -> None:
    path = many(clang, 40, 1) if which == "40 programs" else BAD / "prog_array_static.bpf.o"
    with run(BpfObject.open(path).gen_loader(**SIZES)) as loaded:
        assert all(fd > 0 for fd in loaded.progs.values())


# -- 9. struct_ops maps ----------------------------------------------------------------------

STRUCT_OPS = BAD / "struct_ops_cc.bpf.o"
AVAILABLE_CC = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")

#: A C main around the struct_ops fixture's header: registration at each step, and the
#: congestion control used by a loopback TCP connection (its init program counts).
STRUCT_OPS_MAIN = r"""
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "skel.lskel.h"

static int registered(const char *name)
{
    char buf[4096] = {0}, *tok, *save;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");

    if (!f || !fread(buf, 1, sizeof(buf) - 1, f))
        return -1;
    fclose(f);
    for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        if (!strcmp(tok, name))
            return 1;
    return 0;
}

static int connect_with(const char *cc)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t n = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), s, err = 0;

    if (bind(l, (void *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (void *)&a, &n))
        return -errno;
    if (setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc)) ||
        connect(c, (void *)&a, sizeof(a)))
        err = -errno;
    if (!err && (s = accept(l, NULL, NULL)) >= 0)
        close(s);
    close(c);
    close(l);
    return err;
}

#define STATE(when) printf(when " cc=%d link=%d off=%d\n", registered("bpfgen_cc"), \
               registered("bpfgen_cc_link"), registered("bpfgen_cc_off"))

int main(void)
{
    struct struct_ops_cc_bpf *skel = struct_ops_cc_bpf__open_and_load();
    int err;

    if (!skel) {
        printf("open_and_load failed: %d\n", -errno);
        return 1;
    }
    STATE("loaded");
    printf("off map_fd=%d off prog_fd=%d\n", skel->maps.bpfgen_cc_off.map_fd,
           skel->progs.cc_off_init.prog_fd);
    printf("attach=%d\n", struct_ops_cc_bpf__attach(skel));
    STATE("attached");
    err = connect_with("bpfgen_cc");
    printf("connect=%d inits=%llu\n", err, (unsigned long long)skel->bss->inits);
    printf("link_fd>0=%d\n", skel->links.bpfgen_cc_link_fd > 0);
    struct_ops_cc_bpf__detach(skel);
    STATE("detached");
    /* A link map attaches again (its value is kept: EBUSY is accepted). The
     * plain map registers only once (the kernel's rule), so leave it out. */
    skel->links.bpfgen_cc_link_fd = 0;
    close(skel->maps.bpfgen_cc.map_fd);
    skel->maps.bpfgen_cc.map_fd = 0;
    printf("reattach=%d\n", struct_ops_cc_bpf__attach(skel));
    STATE("reattached");
    struct_ops_cc_bpf__detach(skel);
    struct_ops_cc_bpf__destroy(skel);
    return 0;
}
"""


def run_main(source: str, header: str) -> str:
    exe, err = skel_c.compile_c(source, header, PROBES)
    assert exe is not None, f"does not compile:\n{err[-3000:]}"
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_struct_ops_bpftool_crashes(bpftool: str) -> None:
    assert "== bad/struct_ops_cc.bpf.o (killed by signal 11, SIGSEGV)\n" in EXPECTED_BAD
    gen = bpftool_gen(bpftool, STRUCT_OPS)
    assert gen.returncode == -signal.SIGSEGV, (gen.returncode, gen.stderr)


@pytest.mark.kernel("struct_ops")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_struct_ops_header_registers_and_unregisters() -> None:
    if not AVAILABLE_CC.exists():
        pytest.skip(f"{AVAILABLE_CC} missing: no TCP congestion control here")
    out = run_main(STRUCT_OPS_MAIN, BpfObject.open(STRUCT_OPS).gen_skeleton(**SIZES))
    # Both maps register at __attach (a value write; plus a link for the .link
    # map), as with libbpf; the ?-map never (not created, its program not loaded).
    assert "loaded cc=0 link=0 off=0\n" in out, out
    assert "off map_fd=0 off prog_fd=0\n" in out, out
    assert "attach=0\nattached cc=1 link=1 off=0\n" in out, out
    # A TCP connection using bpfgen_cc runs its init program.
    assert "connect=0 inits=" in out and "connect=0 inits=0\n" not in out, out
    assert "link_fd>0=1\n" in out, out
    assert "detached cc=0 link=0 off=0\n" in out, out
    # The link map links again after a detach, as with libbpf.
    assert "reattach=0\nreattached cc=0 link=1 off=0\n" in out, out


@pytest.mark.usefixtures("cli_entry")
def test_struct_ops_kernel_btf_is_an_explicit_input(tmp_path: Path) -> None:
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux to copy")
    copy = tmp_path / "vmlinux.btf"
    copy.write_bytes(vmlinux.read_bytes())
    obj = BpfObject.open(STRUCT_OPS)
    assert obj.gen_loader(kernel_btf=copy, **SIZES) == obj.gen_loader(**SIZES)
    # Only the layouts come from it: the loader looks the type ids up at run time.
    assert b"bpf_struct_ops_tcp_congestion_ops\0" in obj.gen_loader(**SIZES).data
    with pytest.raises(UnsupportedError) as e:
        obj.gen_loader(kernel_btf=tmp_path / "missing", **SIZES)
    assert str(e.value).startswith(
        "struct_ops_cc_bpf: struct_ops maps need the kernel's BTF: cannot read "
        f"{tmp_path / 'missing'}: No such file or directory"), str(e.value)
    # The CLI spelling.
    r = run_cli("gen", "skeleton", "-L", str(STRUCT_OPS), "--kernel-btf", str(copy))
    assert r.returncode == 0 and "bpfgen_cc_link_fd;" in r.stdout, r.stderr


def test_struct_ops_kernel_struct_must_exist(tmp_path: Path) -> None:
    # A kernel BTF without tcp_congestion_ops: the object's own BTF (no bpf_struct_ops_*).
    btf = tmp_path / "own.btf"
    from elftools.elf.elffile import ELFFile

    with STRUCT_OPS.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        assert sec is not None
        btf.write_bytes(sec.data())
    with pytest.raises(UnsupportedError) as e:
        BpfObject.open(STRUCT_OPS).gen_loader(kernel_btf=btf, **SIZES)
    assert str(e.value) == ("struct_ops_cc_bpf: struct_ops init_kern: struct "
                            "bpf_struct_ops_tcp_congestion_ops is not found in kernel BTF")


# -- 10. __arena globals ---------------------------------------------------------------------

ARENA = BAD / "arena_globals.bpf.o"

ARENA_MAIN = r"""
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include "skel.lskel.h"

int main(void)
{
    struct arena_globals_bpf *skel = arena_globals_bpf__open();
    union bpf_attr attr;
    int i, err;

    if (!skel)
        return 1;
    skel->arena->start_value = 40; /* edited between open and load, like .data */
    err = arena_globals_bpf__load(skel);
    if (err) {
        printf("load failed: %d\n", err);
        return 1;
    }
    printf("arena=%p start=%llu counter=%llu greeting=%s\n", (void *)skel->arena,
           skel->arena->start_value, skel->arena->counter, skel->arena->greeting);
    for (i = 0; i < 2; i++) {
        memset(&attr, 0, sizeof(attr));
        attr.test.prog_fd = skel->progs.bump.prog_fd;
        err = skel_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr));
        printf("run=%d retval=%u\n", err, attr.test.retval);
    }
    skel->arena->start_value = 1; /* user writes reach the program */
    memset(&attr, 0, sizeof(attr));
    attr.test.prog_fd = skel->progs.bump.prog_fd;
    skel_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr));
    printf("counter=%llu seen=%llu\n", skel->arena->counter, skel->bss->seen);
    arena_globals_bpf__destroy(skel);
    return 0;
}
"""


def test_arena_bpftool_crashes(bpftool: str) -> None:
    assert "== bad/arena_globals.bpf.o (killed by signal 7, SIGBUS)\n" in EXPECTED_BAD
    gen = bpftool_gen(bpftool, ARENA)
    assert gen.returncode == -signal.SIGBUS, (gen.returncode, gen.stderr)


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_arena_globals_read_back() -> None:
    out = run_main(ARENA_MAIN, BpfObject.open(ARENA).gen_skeleton(**SIZES))
    assert "arena=0x100000000000 start=40 counter=0 greeting=hello, arena\n" in out, out
    assert out.count("run=0 retval=0\n") == 2, out
    # 40 + 40 + 1 in the arena; .bss saw the arena value plus 'h'.
    assert f"counter=81 seen={81 + ord('h')}\n" in out, out


@pytest.mark.kernel("map:arena")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_arena_globals_without_map_extra(clang: str, tmp_path: Path) -> None:
    """No fixed address in the object: the header reserves a 4 GiB-aligned range before
    the loader runs, the loader creates the arena there, __load maps it."""
    obj = tmp_path / "arena_globals.bpf.o"
    subprocess.run([clang, "-O2", "-g", "--target=bpf", "-mcpu=v3", "-DNO_MAP_EXTRA",
                    "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(BAD / "arena_globals.bpf.c"), "-o", str(obj)], check=True)
    header = BpfObject.open(obj).gen_skeleton(**SIZES)
    assert "MAP_NORESERVE" in header
    out = run_main(ARENA_MAIN, header)
    addr = int(out.split("arena=")[1].split()[0], 16)
    assert addr % (1 << 32) == 0, out
    assert "start=40 counter=0 greeting=hello, arena\n" in out, out
    assert f"counter=81 seen={81 + ord('h')}\n" in out, out


CC_CHECK = r"""
	{
		char buf[4096] = {0};
		FILE *f;

		printf("attach=%d\n", NAME__attach(skel));
		f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
		if (f && fread(buf, 1, sizeof(buf) - 1, f))
			printf("available after attach: %s", buf);
		if (f)
			fclose(f);
		NAME__detach(skel);
		memset(buf, 0, sizeof(buf));
		f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
		if (f && fread(buf, 1, sizeof(buf) - 1, f))
			printf("available after detach: %s", buf);
		if (f)
			fclose(f);
	}
"""


@pytest.mark.kernel("struct_ops")
@pytest.mark.usefixtures("bpf_permitted", "gcc")
def test_selftests_bpf_cubic_header_registers() -> None:
    """The selftests' bpf_cubic (a TCP congestion control in BPF), through our compiled
    header: __attach registers "bpf_cubic", __detach unregisters it."""
    from support import corpus_obj_dir

    corpus = corpus_obj_dir()
    if corpus is None or not (corpus / "bpf_cubic.bpf.o").exists():
        pytest.skip("no kernel selftests corpus cache (scripts/selftests/build_corpus.py)")
    if not AVAILABLE_CC.exists():
        pytest.skip(f"{AVAILABLE_CC} missing: no TCP congestion control here")
    if " bpf_cubic" in " " + AVAILABLE_CC.read_text():
        pytest.skip("a congestion control named bpf_cubic is already registered")
    path = corpus / "bpf_cubic.bpf.o"
    header = BpfObject.open(path).gen_skeleton(**SIZES)
    p = probe(header, path, extra=CC_CHECK.replace("NAME", "bpf_cubic_bpf"))
    assert p.rc == 0, p
    after_attach = next(ln for ln in p.out.splitlines() if ln.startswith("available after attach"))
    after_detach = next(ln for ln in p.out.splitlines() if ln.startswith("available after detach"))
    assert "attach=0" in p.out, p.out
    assert "bpf_cubic" in after_attach.split() and "bpf_cubic" not in after_detach.split()


KERNEL_BTF_STANDIN = FIXDIR / "kernel-btf" / "struct_ops_kernel.btf"


def test_struct_ops_hermetic_with_a_standin_kernel_btf() -> None:
    """The committed stand-in kernel BTF (tests/fixtures/kernel-btf) declares
    tcp_congestion_ops as the kernel does, with type ids nothing like vmlinux's: the
    loader and header are the same as with this kernel's BTF, because only layouts come
    from it (the loader looks the type ids up at run time)."""
    obj = BpfObject.open(STRUCT_OPS)
    standin = obj.gen_skeleton(kernel_btf=KERNEL_BTF_STANDIN, **SIZES)
    assert "skel_link_create(skel->maps.bpfgen_cc_link.map_fd, 0, BPF_STRUCT_OPS)" in standin
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("no /sys/kernel/btf/vmlinux to compare with")
    assert standin == obj.gen_skeleton(**SIZES)


def test_struct_ops_member_missing_from_kernel(clang: str, tmp_path: Path) -> None:
    """libbpf's rule: a member the object sets but the kernel lacks is an error."""
    o = tmp_path / "k.o"
    subprocess.run([clang, "-O2", "-g", "--target=bpf", "-DNO_INIT", "-c",
                    str(KERNEL_BTF_STANDIN.with_suffix(".c")), "-o", str(o)], check=True)
    btf = tmp_path / "k.btf"
    subprocess.run([shutil.which("llvm-objcopy-19") or "llvm-objcopy", "--dump-section",
                    f".BTF={btf}", str(o)], check=True)
    with pytest.raises(UnsupportedError) as e:
        BpfObject.open(STRUCT_OPS).gen_loader(kernel_btf=btf, **SIZES)
    assert str(e.value) == ("struct_ops_cc_bpf: struct_ops init_kern bpfgen_cc: "
                            "Cannot find member init in kernel BTF")
