"""The command line (`python -m bpfgen_fast`, spelled like bpftool)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject
from support import BAD, FIXDIR, GOLDEN, GOLDEN_NAMES, compat, obj_path, run_cli

pytestmark = pytest.mark.usefixtures("cli_entry")  # every test, through both entry points


def _make_golden() -> ModuleType | None:
    path = FIXDIR / "make_golden.py"
    spec = importlib.util.spec_from_file_location("make_golden", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:
        return None
    return module if hasattr(module, "decode_c_blob") else None


def _read_outputs(prefix: Path) -> tuple[bytes, bytes, dict[str, object]]:
    return (Path(f"{prefix}.data.bin").read_bytes(), Path(f"{prefix}.insns.bin").read_bytes(),
            json.loads(Path(f"{prefix}.json").read_text()))


@pytest.mark.parametrize("name", ["global_data.bpf", "maps_ringbuf_perf.bpf", "no_progs.bpf",
                                  "autoload_question.bpf"])
def test_gen_loader_writes_api_output(name: str, tmp_path: Path, host: dict[str, Any]) -> None:
    prefix = tmp_path / "out"
    p = run_cli("gen", "loader", obj_path(name), "-o", prefix,
                "--page-size", host["page_size"], "--possible-cpus", host["possible_cpus"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    data, insns, meta = _read_outputs(prefix)
    api = bpfgen_fast.gen_loader(obj_path(name), **host)
    assert (data, insns) == (api.data, api.insns)
    assert meta == {
        "maps": list(api.map_names), "programs": list(api.prog_names),
        "nr_maps": len(api.map_names), "nr_progs": len(api.prog_names),
        "ctx_size": api.ctx_size, "data_size": len(api.data), "insn_cnt": len(api.insns) // 8,
    }
    # no temporary files left behind by the atomic writes
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "out.data.bin", "out.insns.bin", "out.json"]


def test_gen_loader_defaults_to_this_hosts_facts(tmp_path: Path) -> None:
    p = run_cli("gen", "loader", obj_path("maps_ringbuf_perf.bpf"), "-o", tmp_path / "o")
    assert p.returncode == 0, p.stderr
    data, insns, _ = _read_outputs(tmp_path / "o")
    api = bpfgen_fast.gen_loader(obj_path("maps_ringbuf_perf.bpf"))
    assert (data, insns) == (api.data, api.insns)


@pytest.mark.parametrize(("page_size", "cpus"), [(65536, 2), (4096, 7), (16384, 64)])
def test_host_options_are_honoured(page_size: int, cpus: int, tmp_path: Path) -> None:
    obj = obj_path("maps_ringbuf_perf.bpf")
    p = run_cli("gen", "loader", obj, "--page-size", page_size,
                f"--possible-cpus={cpus}", "-o", tmp_path / "o")  # both option spellings
    assert p.returncode == 0, p.stderr
    data, insns, _ = _read_outputs(tmp_path / "o")
    api = bpfgen_fast.gen_loader(obj, page_size=page_size, possible_cpus=cpus)
    assert (data, insns) == (api.data, api.insns)
    assert data != bpfgen_fast.gen_loader(obj, page_size=4096, possible_cpus=2).data


@pytest.mark.parametrize("name", ["global_data.bpf", "minimal.bpf"])
def test_gen_loader_with_golden_host_equals_bpftool(name: str, tmp_path: Path,
                                                    host: dict[str, Any]) -> None:
    p = run_cli("--page-size", host["page_size"], "--possible-cpus", host["possible_cpus"],
                "gen", "loader", obj_path(name), "-o", tmp_path / "o")  # options first
    assert p.returncode == 0, p.stderr
    data, insns, _ = _read_outputs(tmp_path / "o")
    assert data == (GOLDEN / f"{name}.data.bin").read_bytes()
    assert insns == (GOLDEN / f"{name}.insns.bin").read_bytes()


def test_gen_skeleton_without_L_is_a_usage_error() -> None:
    p = run_cli("gen", "skeleton", obj_path("minimal.bpf"))
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == "error: only light skeletons (-L) are supported"
    assert p.stdout == ""


@pytest.mark.parametrize("argv", [
    pytest.param(["frobnicate"], id="unknown-command"),
    pytest.param(["gen", "frob", "x.o"], id="unknown-gen-subcommand"),
    pytest.param([], id="no-command"),
    pytest.param(["--bogus", "inspect", "x.o"], id="unknown-option"),
    pytest.param(["gen", "loader", str(obj_path("minimal.bpf"))], id="loader-without-o"),
    pytest.param(["gen", "loader", "x.o", "-o", "p", "--page-size", "zero"], id="bad-number"),
    pytest.param(["gen", "loader", "x.o", "-o", "p", "--page-size", "0"], id="non-positive"),
    pytest.param(["gen", "loader", "x.o", "extra", "-o", "p"], id="stray-argument"),
    pytest.param(["gen", "loader", "x.o", "-o"], id="option-without-value"),
])
def test_usage_errors_exit_2(argv: list[str], tmp_path: Path) -> None:
    p = run_cli(*argv, cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "usage: bpfgen-fast" in p.stderr or p.stderr.startswith("error: ")
    assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("obj", "message"), [
    (BAD / "x86.o", "error: x86: ELF header+0x10: not a valid eBPF object file "
                    "(e_type 1, e_machine 62)"),
    (BAD / "legacy_maps.bpf.o", "error: legacy_maps_bpf: maps: elf: legacy map definitions in "
                                "'maps' section are not supported by libbpf v1.0+"),
    (BAD / "static_prog.bpf.o", None),
])
def test_bad_object_exits_1_with_one_error_line(obj: Path, message: str | None,
                                                tmp_path: Path) -> None:
    p = run_cli("gen", "loader", obj, "-o", tmp_path / "o")
    assert p.returncode == 1
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ")
    if message is not None:
        assert lines[0] == message
    assert list(tmp_path.iterdir()) == [], "nothing may be written on failure"


def test_missing_object_exits_1(tmp_path: Path) -> None:
    p = run_cli("inspect", tmp_path / "absent.o")
    assert p.returncode == 1
    assert p.stderr == f"error: {tmp_path / 'absent.o'}: No such file or directory\n"


def test_unwritable_output_exits_1_with_one_error_line(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "p"
    p = run_cli("gen", "loader", obj_path("minimal.bpf"), "-o", target)
    assert p.returncode == 1
    assert p.stderr == f"error: {target}.data.bin: No such file or directory\n"


def test_debug_shows_traceback() -> None:
    p = run_cli("--debug", "inspect", BAD / "x86.o")
    assert p.returncode == 1
    assert "Traceback (most recent call last)" in p.stderr
    assert "ElfError" in p.stderr
    assert "not a valid eBPF object file" in p.stderr


def test_inspect_json_is_valid_json() -> None:
    p = run_cli("inspect", "--json", obj_path("mixed_everything.bpf"))
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["name"] == "mixed_everything_bpf"
    assert [m["name"] for m in info["maps"]] == list(
        BpfObject.open(obj_path("mixed_everything.bpf")).maps)


# -- name override ----------------------------------------------------------------------

@pytest.mark.parametrize("override", ["myskel", "a_much_longer_skeleton_name"])
def test_name_override_renames_internal_maps(override: str, tmp_path: Path,
                                             host: dict[str, Any]) -> None:
    obj = obj_path("global_data.bpf")
    p = run_cli("gen", "loader", obj, "name", override, "-o", tmp_path / "o",
                "--page-size", host["page_size"], "--possible-cpus", host["possible_cpus"])
    assert p.returncode == 0, p.stderr
    data, insns, meta = _read_outputs(tmp_path / "o")
    prefix = override[:8]  # libbpf: object-name prefix of at most 8 chars before ".rodata"
    assert meta["maps"] == [f"{prefix}.rodata", f"{prefix}.data", f"{prefix}.bss",
                            ".rodata.str1.1"]
    api = bpfgen_fast.gen_loader(obj, override, **host)
    assert (data, insns) == (api.data, api.insns)
    assert data != (GOLDEN / "global_data.bpf.data.bin").read_bytes()


@pytest.mark.parametrize("override", ["myskel", "a_much_longer_skeleton_name"])
def test_name_override_matches_bpftool(override: str, tmp_path: Path) -> None:
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        pytest.skip("bpftool not installed: no oracle for `name NAME`")
    mg = _make_golden()
    if mg is None:
        pytest.skip("tests/fixtures/make_golden.py decoder not importable")
    obj = obj_path("global_data.bpf")
    b = subprocess.run([bpftool, "gen", "skeleton", "-L", str(obj), "name", override],
                       capture_output=True, text=True, timeout=60)
    if b.returncode != 0:
        pytest.skip(f"bpftool failed here: {b.stderr.strip()[-300:]}")
    # bpftool uses this host's facts: so do we (no --page-size/--possible-cpus)
    p = run_cli("gen", "loader", obj, "name", override, "-o", tmp_path / "o")
    assert p.returncode == 0, p.stderr
    data, insns, meta = _read_outputs(tmp_path / "o")
    assert data == mg.decode_c_blob(b.stdout, "opts_data")
    assert insns == mg.decode_c_blob(b.stdout, "opts_insn")
    assert len(meta["maps"]) == len(mg.desc_fields(b.stdout, "bpf_map_desc"))  # type: ignore[arg-type]


# -- gen skeleton -L (header writer; skipped until the build has it) ---------------------

def _skeleton_available() -> bool:
    return hasattr(BpfObject, "gen_skeleton")


# README "Deliberate divergences" 2: without programs, ctx.sz ends at the maps struct
BPFTOOL_CTX_SZ = "\tskel->ctx.sz = (void *)&skel->links - (void *)skel;\n"
OUR_CTX_SZ = "\tskel->ctx.sz = (void *)(&skel->maps + 1) - (void *)skel;\n"


def _expected_header(name: str) -> str:
    header = (GOLDEN / f"{name}.lskel.h").read_text()
    if name == "no_progs.bpf":
        assert header.count(BPFTOOL_CTX_SZ) == 1
        header = header.replace(BPFTOOL_CTX_SZ, OUR_CTX_SZ)
    return header


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_skeleton_header_matches_bpftool(name: str, host: dict[str, Any]) -> None:
    """API level (fast); divergent fixtures with bpftool's behaviour switched back on."""
    if not _skeleton_available():
        pytest.skip("light skeleton header writer not in this build (BpfObject.gen_skeleton)")
    header = BpfObject.open(obj_path(name)).gen_skeleton(**host, **compat(name))
    expected = _expected_header(name)
    if header != expected:
        a, b = header.splitlines(), expected.splitlines()
        line = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"header differs from bpftool's at line {line + 1}:\n"
                    f"  ours:    {a[line] if line < len(a) else '<eof>'}\n"
                    f"  bpftool: {b[line] if line < len(b) else '<eof>'}")


@pytest.mark.parametrize("name", ["global_data.bpf", "no_progs.bpf"])
def test_gen_skeleton_L_cli_writes_the_header(name: str, tmp_path: Path,
                                              host: dict[str, Any]) -> None:
    if not _skeleton_available():
        pytest.skip("light skeleton header writer not in this build (BpfObject.gen_skeleton)")
    host_opts = ["--page-size", host["page_size"], "--possible-cpus", host["possible_cpus"]]
    p = run_cli("gen", "skeleton", "-L", obj_path(name), *host_opts)
    assert p.returncode == 0, p.stderr
    assert p.stdout == _expected_header(name)
    out = tmp_path / "x.lskel.h"
    p = run_cli("gen", "skeleton", obj_path(name), "-L", "-o", out, *host_opts)
    assert p.returncode == 0, p.stderr
    assert (p.stdout, out.read_text()) == ("", _expected_header(name))


def test_autoload_question_header_equals_bpftool_with_bpftool_slots(
        host: dict[str, Any]) -> None:
    if not _skeleton_available():
        pytest.skip("light skeleton header writer not in this build (BpfObject.gen_skeleton)")
    obj = BpfObject.open(obj_path("autoload_question.bpf"))
    try:
        header = obj.gen_skeleton(**host, _bpftool_prog_slots=True)
    except TypeError as e:
        pytest.skip(f"test-only option _bpftool_prog_slots not in this build: {e}")
    golden = (GOLDEN / "autoload_question.bpf.lskel.h").read_text()
    assert header == golden
    ours = obj.gen_skeleton(**host)
    assert ours != golden  # the embedded opts_insn differs (divergence 1) ...
    mg = _make_golden()
    if mg is not None:  # ... and only it
        assert mg.decode_c_blob(ours, "opts_data") == mg.decode_c_blob(golden, "opts_data")
        assert mg.decode_c_blob(ours, "opts_insn") == obj.gen_loader(**host).insns
