"""Programs without an attach target: bare ``SEC("fentry")``, ``SEC("lsm")`` ... take
theirs from ``--attach-target PROG=FUNC`` / ``ProgramInfo.attach_target``, and then
their loader does what the loader of the same program written ``SEC("fentry/FUNC")``
does: the same steps, the same run-time target lookup, the same PROG_LOAD attributes.
The blobs differ only where the section name reaches them (the BTF string table, which
.BTF.ext names sections in, and so every data offset after it).

The bare fixtures (tests/fixtures/bad/*_bare.bpf.c) are the named ones line for line
with the section targets removed; bpftool refuses them (bad/EXPECTED.txt). Kernel
proof: tests/test_vm.py loads the bare LSM and tracing ones with their targets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bpfgen_fast import BpfObject, UnsupportedError, explain
from bpfgen_fast.batch import gen_batch
from support import BAD, obj_path, run_cli

#: bare fixture -> the named fixture it mirrors
BARE = {
    "attach_tracing_bare.bpf": "attach_tracing.bpf",  # fentry, fexit, fmod_ret, fentry.s
    "attach_lsm_bare.bpf": "attach_lsm.bpf",  # lsm, lsm.s, lsm_cgroup
    "attach_iter_bare.bpf": "attach_iter.bpf",  # iter
    "attach_tp_btf_bare.bpf": "attach_tp_btf.bpf",  # tp_btf (two programs in one section)
}
#: every BTF-attach section kind libbpf has except freplace (refused: see below)
KINDS = {"fentry", "fexit", "fmod_ret", "fentry.s", "lsm", "lsm.s", "lsm_cgroup", "iter",
         "tp_btf"}
#: explain fields that are positions in the data blob: they move with the BTF size
BLOB_OFFSETS = {"attr", "btf", "insns", "value", "key", "func_info", "line_info",
                "core_relos", "name_off", "data_off"}


def targets(bare: str) -> dict[str, str]:
    """program -> FUNC, from the named fixture's section names."""
    named = BpfObject.open(obj_path(BARE[bare]))
    return {p.name: p.section.split("/", 1)[1] for p in named.programs.values()}


def targeted(bare: str) -> BpfObject:
    obj = BpfObject.open(BAD / f"{bare}.o")
    for prog, func in targets(bare).items():
        obj.programs[prog].attach_target = func
    return obj


def steps(loader_json: str) -> list[dict[str, Any]]:
    """explain's steps without data-blob positions (and the BTF's size)."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in BLOB_OFFSETS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    out = []
    for step in json.loads(loader_json)["steps"]:
        if step["op"] == "BTF_LOAD":
            step = {k: step[k] for k in ("op", "first_insn", "last_insn")}
        out.append(strip(step))
    return out


def header_shape(header: str) -> str:
    """A header with its two blob literals and their sizes blanked out."""
    literal = (r'(static const char opts_(?:data|insn)\[\] '
               r'__attribute__\(\(__aligned__\(8\)\)\) = "\\\n)(?:\\\\x[0-9a-f]{2}|\\\\0|[^"])*"')
    header = re.sub(literal, r'\1BLOB"', header)
    return re.sub(r"(opts\.(?:data|insns)_sz = )\d+", r"\1N", header)


def test_the_bare_fixtures_cover_every_btf_attach_kind() -> None:
    kinds = {p.section for bare in BARE
             for p in BpfObject.open(BAD / f"{bare}.o").programs.values()}
    assert kinds == KINDS


@pytest.mark.parametrize("bare", sorted(BARE))
def test_without_a_target_the_error_is_libbpfs_and_names_the_option(bare: str) -> None:
    obj = BpfObject.open(BAD / f"{bare}.o")
    first = next(iter(obj.programs.values()))
    with pytest.raises(UnsupportedError) as e:
        obj.gen_loader()
    assert e.value.reason == (
        f"prog '{first.name}': no BTF-based attach target is specified, use "
        f"bpf_program__set_attach_target() (here: --attach-target {first.name}=FUNC, or "
        f"programs['{first.name}'].attach_target)")
    assert e.value.section == first.section


@pytest.mark.parametrize("bare", sorted(BARE))
def test_with_targets_the_loader_does_what_the_named_ones_does(bare: str) -> None:
    ours = targeted(bare).gen_loader()
    named = BpfObject.open(obj_path(BARE[bare])).gen_loader()
    assert len(ours.insns) == len(named.insns)
    got, want = steps(explain(ours).to_json()), steps(explain(named).to_json())
    assert got == want
    loads = [s for s in got if s["op"] == "PROG_LOAD"]
    assert loads and all(s["attach_target"]["name"] for s in loads)


@pytest.mark.parametrize("bare", sorted(BARE))
def test_with_targets_the_header_is_the_named_ones_but_for_the_blobs(bare: str) -> None:
    ours = targeted(bare).gen_skeleton()
    named = BpfObject.open(obj_path(BARE[bare])).gen_skeleton()
    name = bare.replace(".", "_")
    assert header_shape(ours) == header_shape(named).replace(
        BARE[bare].replace(".", "_"), name).replace(
        BARE[bare].replace(".", "_").upper(), name.upper())


def test_the_named_section_target_is_overridden() -> None:
    """As bpf_program__set_attach_target does: the given target wins over the section's."""
    obj = BpfObject.open(obj_path("attach_lsm.bpf"))
    obj.programs["check_file_open"].attach_target = "file_permission"
    lookup = [s["attach_target"]["name"] for s in json.loads(explain(obj.gen_loader()).to_json())[
        "steps"] if s["op"] == "PROG_LOAD"]
    assert lookup == ["bpf_lsm_file_permission", "bpf_lsm_bpf", "bpf_lsm_socket_bind"]


def test_programs_that_do_not_attach_by_btf_refuse_a_target() -> None:
    obj = BpfObject.open(obj_path("minimal.bpf"))
    with pytest.raises(UnsupportedError) as e:
        obj.programs["handle_getpid"].attach_target = "x"
    assert str(e.value) == (
        "minimal_bpf: attach target handle_getpid=x: program 'handle_getpid' (section "
        "'tp/syscalls/sys_enter_getpid') does not attach through kernel BTF (fentry, fexit, "
        "fmod_ret, lsm, lsm_cgroup, tp_btf, iter)")
    assert obj.programs["handle_getpid"].attach_target is None


def test_freplace_refuses_a_kernel_function() -> None:
    obj = BpfObject.open(BAD / "freplace.bpf.o")
    with pytest.raises(UnsupportedError) as e:
        obj.programs["replace_x"].attach_target = "x"
    assert e.value.reason == (
        "attach target replace_x=x: program 'replace_x' is freplace: it attaches to another "
        "BPF program, which a loader program cannot be given")


# -- the command line, both entry points ---------------------------------------------------

def _target_args(bare: str) -> list[str]:
    return [a for prog, func in targets(bare).items()
            for a in ("--attach-target", f"{prog}={func}")]


@pytest.mark.usefixtures("cli_entry")
@pytest.mark.parametrize("bare", ["attach_lsm_bare.bpf", "attach_tracing_bare.bpf"])
def test_cli_gen_skeleton_with_targets(bare: str) -> None:
    r = run_cli("gen", "skeleton", "-L", f"{bare}.o", *_target_args(bare), cwd=BAD)
    assert r.returncode == 0, r.stderr
    assert r.stdout == targeted(bare).gen_skeleton()


@pytest.mark.usefixtures("cli_entry")
def test_cli_gen_loader_and_explain_with_targets(tmp_path: Path) -> None:
    bare = "attach_lsm_bare.bpf"
    r = run_cli("gen", "loader", str(BAD / f"{bare}.o"), "-o", str(tmp_path / "x"),
                *_target_args(bare))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.data.bin").read_bytes() == targeted(bare).gen_loader().data
    r = run_cli("explain", str(BAD / f"{bare}.o"), "--json", *_target_args(bare))
    assert r.returncode == 0, r.stderr
    assert steps(r.stdout) == steps(explain(BpfObject.open(obj_path(BARE[bare])).gen_loader())
                                    .to_json())


@pytest.mark.usefixtures("cli_entry")
def test_cli_without_a_target_names_the_option() -> None:
    r = run_cli("gen", "skeleton", "-L", "attach_lsm_bare.bpf.o", cwd=BAD)
    assert r.returncode == 1
    assert r.stderr == (
        "error: attach_lsm_bare_bpf: lsm: prog 'check_file_open': no BTF-based attach target "
        "is specified, use bpf_program__set_attach_target() (here: --attach-target "
        "check_file_open=FUNC, or programs['check_file_open'].attach_target)\n")


@pytest.mark.usefixtures("cli_entry")
@pytest.mark.parametrize(("args", "message"), [
    (["--attach-target", "check_file_open"],
     "option --attach-target takes PROG=FUNC, got 'check_file_open'"),
    (["--attach-target", "=file_open"], "option --attach-target takes PROG=FUNC, got '=file_open'"),
    (["--attach-target", "nope=file_open"],
     "--attach-target: no program 'nope' in attach_lsm_bare.bpf.o"),
])
def test_cli_attach_target_mistakes(args: list[str], message: str) -> None:
    r = run_cli("gen", "skeleton", "-L", "attach_lsm_bare.bpf.o", *args, cwd=BAD)
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == f"error: {message}"


@pytest.mark.usefixtures("cli_entry")
def test_cli_target_on_a_program_that_does_not_attach_by_btf() -> None:
    r = run_cli("gen", "skeleton", "-L", str(obj_path("minimal.bpf")),
                "--attach-target", "handle_getpid=x")
    assert r.returncode == 2
    assert r.stderr == (
        "error: --attach-target handle_getpid=x: program 'handle_getpid' (section "
        "'tp/syscalls/sys_enter_getpid') does not attach through kernel BTF (fentry, fexit, "
        "fmod_ret, lsm, lsm_cgroup, tp_btf, iter)\n")


# -- batch: every object with PROG; an error if none has it --------------------------------

@pytest.mark.usefixtures("cli_entry")
def test_cli_batch_applies_targets_to_every_object_with_the_program(tmp_path: Path) -> None:
    objs = [str(BAD / "attach_lsm_bare.bpf.o"), str(obj_path("minimal.bpf"))]
    r = run_cli("batch", *objs, "--out-dir", str(tmp_path), *_target_args("attach_lsm_bare.bpf"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "attach_lsm_bare_bpf.lskel.h").read_text() == \
        targeted("attach_lsm_bare.bpf").gen_skeleton()
    r = run_cli("batch", *objs, "--out-dir", str(tmp_path / "2"),
                *_target_args("attach_lsm_bare.bpf"), "--attach-target", "absent=vfs_read")
    assert r.returncode == 1
    assert "error: --attach-target absent=vfs_read: no object of the batch has a program " \
           "'absent'\n" in r.stderr
    assert (tmp_path / "2" / "attach_lsm_bare_bpf.lskel.h").is_file()


def test_batch_api_reports_where_each_target_applied() -> None:
    results = gen_batch([BAD / "attach_lsm_bare.bpf.o", obj_path("minimal.bpf")],
                        attach_targets=targets("attach_lsm_bare.bpf"))
    assert [r.attach_targets for r in results] == [
        tuple(targets("attach_lsm_bare.bpf")), ()]
    assert results[0].header == targeted("attach_lsm_bare.bpf").gen_skeleton()
    assert results[1].header == BpfObject.open(obj_path("minimal.bpf")).gen_skeleton()
