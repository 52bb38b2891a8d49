"""``bpfgen_fast.explain``: decoding a loader back into its steps. No privileges
needed. Also home of the helpers test_run.py shares: compiling small BPF sources
with clang and getting a loader for objects our generator does not handle yet
(bpftool's, decoded from its light skeleton)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject, Explanation, Loader, LoaderDecodeError, explain
from bpfgen_fast.explain import (
    BtfLoad,
    Finish,
    MapCreate,
    MapFreeze,
    MapPopulate,
    MapUpdate,
    ProgLoad,
    decode,
    disasm,
    read_loader,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import GOLDEN_NAMES, OBJ_NAMES, golden_blobs, obj_path, run_cli

# --------------------------------------------------------------------------------------------
# shared helpers (imported by test_run.py)

CLANG = shutil.which("clang-19") or shutil.which("clang")
BPFTOOL = shutil.which("bpftool")
BPF_CFLAGS = ["-O2", "-g", "--target=bpf", "-mcpu=v3", "-I/usr/include/x86_64-linux-gnu"]
HEADER = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"

#: small sources for what the committed fixtures leave out: externs and BTF-attach programs
SOURCES = {
    "externs": HEADER + """
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern void bpf_no_such_kfunc_weak(void) __ksym __weak;
extern const int bpf_prog_active __ksym;
extern const void bpf_link_fops __ksym __weak;
__u64 out;
SEC("syscall")
int use_externs(void *ctx)
{
	int *p;
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	if (bpf_no_such_kfunc_weak)
		bpf_no_such_kfunc_weak();
	p = bpf_this_cpu_ptr(&bpf_prog_active);
	out = *p + (__u64)&bpf_link_fops;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
""",
    "kfuncs_ok": HEADER + """
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern void bpf_no_such_kfunc_weak(void) __ksym __weak;
int ran;
SEC("syscall")
int use_kfuncs(void *ctx)
{
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	if (bpf_no_such_kfunc_weak)
		bpf_no_such_kfunc_weak();
	ran = 1;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
""",
    "missing_kfunc": HEADER + """
extern void bpf_no_such_kfunc_xyz(void) __ksym;
SEC("syscall")
int call_missing(void *ctx)
{
	bpf_no_such_kfunc_xyz();
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
""",
    "attach": HEADER + """
__u64 hits[3]; /* iter, tp_btf, raw_tp */
SEC("iter/task")
int dump_task(void *ctx) { hits[0]++; return 0; }
SEC("tp_btf/sched_switch")
int on_switch(void *ctx) { hits[1]++; return 0; }
SEC("raw_tp/sys_enter")
int on_enter(void *ctx) { hits[2]++; return 0; }
char LICENSE[] SEC("license") = "GPL";
""",
    "fentry": HEADER + """
__u64 hits;
SEC("fentry/do_nanosleep")
int on_nanosleep(void *ctx) { hits++; return 0; }
SEC("lsm/file_open")
int on_open(void *ctx) { hits++; return 0; }
char LICENSE[] SEC("license") = "GPL";
""",
    "rejected": HEADER + """
SEC("tp/syscalls/sys_enter_getpid")
int bad_ctx(void *ctx)
{
	return ((int *)ctx)[10000];
}
char LICENSE[] SEC("license") = "GPL";
""",
}


def build_bpf(name: str, outdir: Path) -> Path:
    """Compile SOURCES[name] into OUTDIR/NAME.bpf.o (skips without clang)."""
    if CLANG is None:
        pytest.skip("clang not found: cannot compile test BPF sources")
    src = outdir / f"{name}.bpf.c"
    obj = outdir / f"{name}.bpf.o"
    if not obj.exists():
        src.write_text(SOURCES[name])
        p = subprocess.run([CLANG, *BPF_CFLAGS, "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            pytest.skip(f"cannot compile {name}.bpf.c: {p.stderr.strip()[-400:]}")
    return obj


def _decode_c_blob(header: str, var: str) -> bytes:
    m = re.search(r"static const char " + var + r"\[\] __attribute__\(\(__aligned__\(8\)\)\) = "
                  r"\"\\\n(.*?)\";", header, re.S)
    assert m, f"no {var}[] in the header"
    body = m.group(1).replace("\\\n", "")
    out = bytearray()
    for esc in re.findall(r"\\(0|x[0-9a-f]{2})", body):
        out.append(0 if esc == "0" else int(esc[1:], 16))
    return bytes(out)


def bpftool_loader(obj: Path) -> Loader:
    """bpftool's loader for OBJ, decoded from ``bpftool gen skeleton -L``; the names
    are the skeleton's member names (map idents, program names)."""
    if BPFTOOL is None:
        pytest.skip("bpftool not found")
    p = subprocess.run([BPFTOOL, "gen", "skeleton", "-L", str(obj)], capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        pytest.skip(f"bpftool rejects {obj.name}: {p.stderr.strip()[-300:]}")
    h = p.stdout
    return Loader(
        data=_decode_c_blob(h, "opts_data"),
        insns=_decode_c_blob(h, "opts_insn"),
        map_names=tuple(re.findall(r"^\t\tstruct bpf_map_desc (\w+);$", h, re.M)),
        prog_names=tuple(re.findall(r"^\t\tstruct bpf_prog_desc (\w+);$", h, re.M)),
    )


def loader_for(obj: Path) -> Loader | BpfObject:
    """Our generator's object when it handles OBJ, else bpftool's loader."""
    o = BpfObject.open(obj)
    try:
        o.gen_loader()
    except bpfgen_fast.UnsupportedError:
        return bpftool_loader(obj)
    return o


@pytest.fixture(scope="session")
def bpf_src_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bpfsrc")


# --------------------------------------------------------------------------------------------
# every fixture


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_lists_the_objects_maps_and_programs_in_order(name: str, host: dict[str, int]) -> None:
    obj = BpfObject.open(obj_path(name))
    e = explain(obj.gen_loader(**host))
    assert [m.name for m in e.maps] == list(obj.maps)
    assert [p.name for p in e.programs] == [p.name for p in obj.programs.values() if p.autoload]
    assert e.nr_maps == len(obj.maps)
    for m in e.maps:
        info = obj.maps[m.name]
        assert (m.type_name, m.key_size, m.value_size, m.flags) == (
            info.type, info.key_size, info.value_size, info.flags)
        assert m.kernel_name == m.name[:15]
        if info.type == "ringbuf":  # rounded up to a power-of-two number of pages
            assert m.max_entries >= info.max_entries
            assert m.max_entries % host["page_size"] == 0
        elif info.type == "perf_event_array" and info.max_entries == 0:
            assert m.max_entries == host["possible_cpus"]
        else:
            assert m.max_entries == info.max_entries
    for p in e.programs:
        info = obj.programs[p.name]
        assert p.type_name == info.type
        assert p.attach_type_name == (info.expected_attach_type or "cgroup_inet_ingress")
        assert p.license == obj.license
        assert p.insn_cnt >= info.insn_cnt
    # every internal map gets its image; .rodata* are frozen; steps come in libbpf's order
    ops = [(s.op, getattr(s, "map_index", getattr(s, "index", None))) for s in e.steps]
    for m in e.maps:
        if obj.maps[m.name].internal:
            at = ops.index(("MAP_CREATE", m.index))
            assert ops[at + 1] == ("MAP_UPDATE", m.index)
            frozen = ("MAP_FREEZE", m.index) in ops
            assert frozen == (obj.maps[m.name].section.startswith(".rodata")
                              or m.name.endswith(".kconfig"))
    kinds = [s.op for s in e.steps]
    assert kinds[-1] == "FINISH" and kinds.count("FINISH") == 1
    first_prog = kinds.index("PROG_LOAD") if "PROG_LOAD" in kinds else len(kinds) - 1
    assert all(k == "PROG_LOAD" for k in kinds[first_prog:-1])
    assert e.cleanup.map_fd_slots == len(obj.maps)
    assert e.cleanup.prog_fd_slots == len(obj.programs) + len(obj.subprograms)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_decodes_bpftools_loaders(name: str) -> None:
    """The decoder does not depend on our generator: bpftool's blobs decode to the
    object's maps and programs too (kernel names: the blobs come without names)."""
    data, insns = golden_blobs(name)
    e = decode(data, insns)
    obj = BpfObject.open(obj_path(name))
    assert [m.kernel_name for m in e.maps] == [n[:15] for n in obj.maps]
    assert [p.kernel_name for p in e.programs] == [
        p.name[:15] for p in obj.programs.values() if p.autoload]
    assert [p.ctx_slot for p in e.programs] == list(range(len(e.programs)))  # bpftool's slots


@pytest.mark.parametrize("name", OBJ_NAMES)
def test_json_round_trips(name: str) -> None:
    e = explain(BpfObject.open(obj_path(name)), disasm=name == "global_data.bpf")
    text = e.to_json()
    doc = json.loads(text)
    assert doc["format"] == "bpfgen-explain/1"
    assert [s["op"] for s in doc["steps"]] == [s.op for s in e.steps]
    back = Explanation.from_json(text)
    assert back == e
    assert back.to_json() == text
    assert Explanation.from_dict(json.loads(e.to_json(indent=None))) == e


def test_text_lists_every_step() -> None:
    obj = BpfObject.open(obj_path("global_data.bpf"))
    text = explain(obj).to_text()
    lines = text.splitlines()
    assert lines[0].startswith("loader: ")
    for m in obj.maps:
        assert any("MAP_CREATE" in line and f" {m} " in line for line in lines), m
    assert any("PROG_LOAD" in line and "use_globals" in line for line in lines)
    assert any("MAP_FREEZE" in line and "global_d.rodata" in line for line in lines)
    assert "BTF_LOAD" in text and "FINISH" in text and "CLEANUP" in text


def test_global_data_steps_in_order() -> None:
    e = explain(BpfObject.open(obj_path("global_data.bpf")))
    assert [s.op for s in e.steps] == [
        "BTF_LOAD",
        "MAP_CREATE", "MAP_UPDATE", "MAP_FREEZE",  # .rodata
        "MAP_CREATE", "MAP_UPDATE",  # .data
        "MAP_CREATE", "MAP_UPDATE",  # .bss
        "MAP_CREATE", "MAP_UPDATE", "MAP_FREEZE",  # .rodata.str1.1
        "PROG_LOAD", "FINISH",
    ]
    btf = e.steps[0]
    assert isinstance(btf, BtfLoad) and btf.size > 0
    upd = [s for s in e.steps if isinstance(s, MapUpdate)]
    assert [u.value_size for u in upd] == [m.value_size for m in e.maps]
    assert all(isinstance(s, MapCreate) and s.uses_btf_fd and s.max_entries_from_ctx
               for s in e.steps[1:3:2])
    # steps tile the program: prologue, cleanup, steps, in insn order without gaps
    spans = sorted([(e.cleanup.first_insn, e.cleanup.last_insn)]
                   + [(s.first_insn, s.last_insn) for s in e.steps])
    assert spans[0][0] == 7
    assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:]))
    assert spans[-1][1] == e.insn_cnt - 1


def test_map_in_map_inner_maps_and_slots() -> None:
    e = explain(BpfObject.open(obj_path("map_in_map.bpf")))
    inner = [s for s in e.steps if isinstance(s, MapCreate) and s.index < 0]
    assert [s.name for s in inner] == ["outer_arr.inner", "outer_hash.inne", "outer_empty.inn"]
    pop = [(s.map_name, s.slot, s.inner_name) for s in e.steps if isinstance(s, MapPopulate)]
    assert pop == [("outer_arr", 0, "inner_a"), ("outer_arr", 2, "inner_b"),
                   ("outer_hash", 1, "inner_h1")]
    outers = [m for m in e.maps if m.uses_inner_map_fd]
    assert [m.name for m in outers] == ["outer_arr", "outer_hash", "outer_empty"]


def test_autoload_question_slots_and_names() -> None:
    obj = BpfObject.open(obj_path("autoload_question.bpf"))
    e = explain(obj)
    loaded = [p for p in obj.programs.values() if p.autoload]
    assert [p.name for p in e.programs] == [p.name for p in loaded]
    # our loader hands each fd to the program's own skeleton slot
    assert [p.ctx_slot for p in e.programs] == [list(obj.programs).index(p.name) for p in loaded]


def test_explain_accepts_object_and_reads_prefix(tmp_path: Path) -> None:
    obj = BpfObject.open(obj_path("maps_array.bpf"))
    loader = obj.gen_loader()
    loader.write(tmp_path / "p")
    assert explain(read_loader(tmp_path / "p")) == explain(loader) == explain(obj)


def test_disasm() -> None:
    loader = BpfObject.open(obj_path("minimal.bpf")).gen_loader()
    lines = disasm(loader.insns)
    n_ld64 = sum(1 for line in lines if "(18)" in line)
    assert len(lines) + n_ld64 == len(loader.insns) // 8
    assert lines[0].endswith("r6 = r1")
    assert lines[-1].endswith("exit")
    assert any("call 166 (sys_bpf)" in line for line in lines)
    assert any("&blob[" in line for line in lines)
    e = explain(loader, disasm=True)
    assert e.disasm == tuple(lines)
    assert "disassembly:" in e.to_text()


# --------------------------------------------------------------------------------------------
# externs and BTF-attach targets (compiled here; bpftool's loader while our generator
# does not handle externs)


def test_ksym_and_kfunc_relocations(bpf_src_dir: Path) -> None:
    e = explain(loader_for(build_bpf("externs", bpf_src_dir)))
    (p,) = e.programs
    got = [(r.kind, r.name, r.btf_kind, r.strong, r.repeat_of, r.insn) for r in p.relocations]
    first_lock = got[0][5]
    first_unlock = got[1][5]
    assert [g[:5] for g in got] == [
        ("kfunc", "bpf_rcu_read_lock", 12, True, None),
        ("kfunc", "bpf_rcu_read_unlock", 12, True, None),
        ("kfunc", "bpf_rcu_read_lock", 12, None, first_lock),
        ("kfunc", "bpf_rcu_read_unlock", 12, None, first_unlock),
        ("ksym", "bpf_no_such_kfunc_weak", 12, False, None),  # bpf_ksym_exists-style ld_imm64
        ("kfunc", "bpf_no_such_kfunc_weak", 12, False, None),
        ("ksym", "bpf_prog_active", 14, True, None),
        ("typeless", "bpf_link_fops", 0, None, None),
    ]
    kfunc_slots = [r.fd_slot for r in p.relocations if r.kind == "kfunc"]
    assert kfunc_slots == [64, 65, 64, 65, 66]
    assert [r.insn for r in p.relocations] == sorted(r.insn for r in p.relocations)
    for r in p.relocations:
        assert r.patched_insn.startswith("call kfunc" if r.kind == "kfunc" else "r")
    assert Explanation.from_json(e.to_json()) == e
    text = e.to_text()
    assert "kfunc 'bpf_rcu_read_lock' (func, strong) patches insn" in text
    assert "typeless 'bpf_link_fops'" in text


def test_attach_target_lookups(bpf_src_dir: Path) -> None:
    e = explain(loader_for(build_bpf("attach", bpf_src_dir)))
    targets = {p.name: (p.attach_target.name, p.attach_target.kind_name)
               for p in e.programs if p.attach_target is not None}
    assert targets == {"dump_task": ("bpf_iter_task", "func"),
                       "on_switch": ("btf_trace_sched_switch", "typedef")}
    by_name = {p.name: p for p in e.programs}
    assert by_name["dump_task"].attach_type_name == "trace_iter"
    assert by_name["on_switch"].attach_type_name == "trace_raw_tp"
    assert by_name["on_enter"].attach_target is None
    assert by_name["dump_task"].attach_btf_id == 1  # placeholder patched at run time
    e2 = explain(loader_for(build_bpf("fentry", bpf_src_dir)))
    targets = {p.name: (p.attach_target.name if p.attach_target else None, p.attach_type_name)
               for p in e2.programs}
    assert targets == {"on_nanosleep": ("do_nanosleep", "trace_fentry"),
                       "on_open": ("bpf_lsm_file_open", "lsm_mac")}
    assert "attach target: find func 'do_nanosleep'" in e2.to_text()


# --------------------------------------------------------------------------------------------
# robustness: anything that is not gen_loader's shape is a package error


def _base_loader() -> Loader:
    return BpfObject.open(obj_path("global_data.bpf")).gen_loader(page_size=4096,
                                                                  possible_cpus=2)


BASE = _base_loader()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_insns_raise_package_errors(data: st.DataObject) -> None:
    insns = bytearray(BASE.insns)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(insns) - 1))
        insns[at] = data.draw(st.integers(0, 255))
    try:
        decode(BASE.data, bytes(insns), BASE.map_names, BASE.prog_names)
    except LoaderDecodeError as e:
        assert isinstance(e, bpfgen_fast.BpfgenError)
        assert str(e).startswith("loader: ")


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(BASE.insns) - 1), st.integers(0, len(BASE.data) - 1))
def test_truncated_blobs_raise_package_errors(n_insn: int, n_data: int) -> None:
    with pytest.raises(LoaderDecodeError):
        decode(BASE.data, BASE.insns[:n_insn], BASE.map_names, BASE.prog_names)
    with contextlib.suppress(LoaderDecodeError):  # may still decode: unused tail
        decode(BASE.data[:n_data], BASE.insns, BASE.map_names, BASE.prog_names)


def test_specific_breakage_messages() -> None:
    with pytest.raises(LoaderDecodeError, match="multiple of 8"):
        decode(BASE.data, BASE.insns[:-3])
    with pytest.raises(LoaderDecodeError, match="empty"):
        decode(BASE.data, b"")
    # an error branch that misses the cleanup label
    e = explain(BASE)
    insns = bytearray(BASE.insns)
    step = next(s for s in e.steps if isinstance(s, MapFreeze))
    jslt = step.last_insn  # freeze ends with check_err
    assert insns[8 * jslt] == 0xC5
    struct.pack_into("<h", insns, 8 * jslt + 2, struct.unpack_from("<h", insns, 8 * jslt + 2)[0]
                     + 1)
    with pytest.raises(LoaderDecodeError, match="cleanup label"):
        decode(BASE.data, bytes(insns))
    # a PROG_LOAD attr pointer set-up that is not gen_loader's
    with pytest.raises(LoaderDecodeError):
        decode(BASE.data, BASE.insns + BASE.insns[-16:])
    for bad in ("{}", "[]", "not json", json.dumps({"format": "bpfgen-explain/1"})):
        with pytest.raises(LoaderDecodeError):
            Explanation.from_json(bad)
    doc = json.loads(e.to_json())
    doc["steps"][0]["op"] = "NOPE"
    with pytest.raises(LoaderDecodeError, match="unknown step"):
        Explanation.from_dict(doc)


def test_records_are_typed() -> None:
    e = explain(BASE)
    assert isinstance(e.steps[-1], Finish)
    assert all(isinstance(p, ProgLoad) for p in e.programs)
    p = e.programs[0]
    assert replace(p, name="x") != p  # frozen dataclasses, value semantics


# --------------------------------------------------------------------------------------------
# CLI


@pytest.mark.usefixtures("cli_entry")
def test_cli_explain_text_json_disasm(tmp_path: Path) -> None:
    path = obj_path("mixed_everything.bpf")
    obj = BpfObject.open(path)
    r = run_cli("explain", path)
    assert r.returncode == 0, r.stderr
    for name in [*obj.maps, *obj.programs]:
        assert name in r.stdout
    r = run_cli("explain", path, "--json")
    assert r.returncode == 0, r.stderr
    e = Explanation.from_json(r.stdout)
    assert [m.name for m in e.maps] == list(obj.maps)
    assert e == explain(obj)
    r = run_cli("explain", path, "--disasm")
    assert r.returncode == 0
    assert "disassembly:" in r.stdout and "call 166 (sys_bpf)" in r.stdout
    # PREFIX written by gen loader
    r = run_cli("gen", "loader", path, "-o", tmp_path / "p")
    assert r.returncode == 0, r.stderr
    r = run_cli("explain", tmp_path / "p", "--json")
    assert r.returncode == 0, r.stderr
    assert Explanation.from_json(r.stdout) == e


@pytest.mark.usefixtures("cli_entry")
def test_cli_explain_errors(tmp_path: Path) -> None:
    r = run_cli("explain", tmp_path / "missing")
    assert r.returncode == 1 and r.stderr.startswith("error: ")
    (tmp_path / "junk.data.bin").write_bytes(b"\0" * 16)
    (tmp_path / "junk.insns.bin").write_bytes(b"\x95" + b"\0" * 7)
    r = run_cli("explain", tmp_path / "junk")
    assert r.returncode == 1
    assert r.stderr.startswith("error: loader: insn 0: expected")
    assert r.stderr.count("\n") == 1
