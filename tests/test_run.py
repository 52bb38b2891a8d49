"""``bpfgen_fast.run``: loading through the generated loader over raw bpf(), as
skel_internal.h does. Needs root and a kernel that allows bpf() (skipped
otherwise, with the reason); the permission and CLI-usage checks run anywhere."""

from __future__ import annotations

import errno
import io
import mmap
import os
import re
import struct
import time
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path

import bpfgen_fast
import kcaps
import pytest
from bpfgen_fast import (
    BpfObject,
    BpfPermissionError,
    LoadedObject,
    Loader,
    LoadError,
    _bpf,
    _core,
    cli,
    run,
)
from support import (
    GOLDEN_NAMES,
    KERNEL,
    KERNEL_REJECTS,
    LOADABLE,
    golden_blobs,
    golden_meta,
    loadable,
    obj_path,
    run_cli,
)
from test_explain import bpf_src_dir, build_bpf, loader_for  # noqa: F401  (fixture)

_BPF_F_RDONLY, _BPF_F_WRONLY = 1 << 3, 1 << 4


def open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """Every fd opened during the test is closed by its end."""
    before = open_fds()
    yield
    leaked = open_fds() - before
    targets = {fd: _readlink(fd) for fd in leaked}
    assert not {fd: t for fd, t in targets.items() if t is not None}, "fds leaked"


def _readlink(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the listing's own fd, gone by now
        return None


def kernel_entry(loaded: LoadedObject) -> tuple[list[list[object]], list[list[object]]]:
    """(maps, map_sizes) as kernel_check.py records them: per map slot."""
    maps, sizes = [], []
    for name in loaded.maps:
        mi = loaded.map_info(name)
        maps.append([mi.type, mi.name])
        sizes.append([mi.key_size, mi.value_size, mi.max_entries, mi.map_flags])
    return maps, sizes


def prog_entries(loaded: LoadedObject) -> list[list[object]]:
    """[type, kernel name] of each loaded program, as kernel_check.py records them."""
    return [[loaded.prog_info(p).type, loaded.prog_info(p).name] for p in loaded.progs]


def bpftools_loader(name: str) -> Loader:
    """bpftool's blobs for fixture ``name`` as a bare Loader (skeleton member names)."""
    data, insns = golden_blobs(name)
    meta = golden_meta(name)
    return Loader(data=data, insns=insns, map_names=tuple(meta["map_fields"]),  # type: ignore
                  prog_names=tuple(meta["prog_fields"]))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# every fixture whose bpftool loader loads here


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
@pytest.mark.parametrize("name", LOADABLE)
def test_fixture_loads_like_the_c_light_skeleton(name: str) -> None:
    """Same maps (type, kernel name, sizes, flags) and programs as lskel-run reported
    for bpftool's loader (golden/kernel.json) or, where that kernel refused the fixture,
    as bpftool's own loader gives through run() in this one."""
    want = KERNEL[name]
    obj = loadable(obj_path(name))
    if want["ok"]:
        want_maps, want_sizes = want["maps"], want["map_sizes"]
        want_progs = [p for p in want["progs"] if p != [None, None]]  # type: ignore
    else:
        with run(bpftools_loader(name)) as theirs:
            want_maps, want_sizes = kernel_entry(theirs)
            want_progs = prog_entries(theirs)
    with run(obj) as loaded:
        maps, sizes = kernel_entry(loaded)
        progs = prog_entries(loaded)
        assert maps == want_maps
        assert sizes == want_sizes
        if name in ("autoload_question.bpf",):  # bpftool mis-slots; we load the same set
            assert sorted(map(str, progs)) == sorted(map(str, want_progs))
        else:
            assert progs == want_progs
        assert list(loaded.progs) == [p.name for p in obj.programs.values() if p.autoload]
        assert list(loaded.maps) == list(obj.maps)
        fds = [*loaded.maps.values(), *loaded.progs.values()]
        assert len(set(fds)) == len(fds)
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
@pytest.mark.parametrize("name", [n for n in GOLDEN_NAMES if KERNEL.get(n, {}).get("ok")])
def test_bpftools_own_loader_runs_through_run(name: str) -> None:
    """A bare Loader (bpftool's blobs, skeleton member names) loads the same way."""
    loadable(obj_path(name))
    with run(bpftools_loader(name)) as loaded:
        maps, sizes = kernel_entry(loaded)
        assert maps == KERNEL[name]["maps"]
        assert sizes == KERNEL[name]["map_sizes"]
        want_progs = [p for p in KERNEL[name]["progs"] if p != [None, None]]  # type: ignore
        assert prog_entries(loaded) == want_progs


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
@pytest.mark.parametrize("name", LOADABLE)
def test_explain_matches_what_the_kernel_reports(name: str) -> None:
    obj = loadable(obj_path(name))
    e = bpfgen_fast.explain(obj)
    with run(obj) as loaded:
        assert loaded.explanation == e
        for m in e.maps:
            mi = loaded.map_info(m.name)
            # the kernel keeps BPF_F_RDONLY/WRONLY on the fd only, and makes devmaps
            # read-only for programs
            flags = m.flags & ~(_BPF_F_RDONLY | _BPF_F_WRONLY)
            if m.type_name in ("devmap", "devmap_hash"):
                flags |= _core.BPF_F_RDONLY_PROG
            assert (mi.type, mi.name, mi.key_size, mi.value_size, mi.max_entries,
                    mi.map_flags, mi.map_extra) == (
                m.type, m.kernel_name, m.key_size, m.value_size, m.max_entries, flags,
                m.map_extra), m.name
            assert mi.btf_key_type_id == m.btf_key_type_id
            assert mi.btf_value_type_id == m.btf_value_type_id
            assert (mi.btf_id != 0) == m.uses_btf_fd
        for p in e.programs:
            pi = loaded.prog_info(p.name)
            assert (pi.type, pi.name) == (p.type, p.kernel_name), p.name
            # the verifier drops the func/line info of dead code it removes
            assert 0 < pi.nr_func_info <= p.func_info_cnt or pi.nr_func_info == p.func_info_cnt
            assert 0 < pi.nr_line_info <= p.line_info_cnt or pi.nr_line_info == p.line_info_cnt
            if p.func_info_cnt:
                assert pi.func_info_rec_size == p.func_info_rec_size
                assert pi.btf_id != 0
            if p.line_info_cnt:
                assert pi.line_info_rec_size == p.line_info_rec_size


# --------------------------------------------------------------------------------------------
# error paths: the exception carries errno, the failing step and (log_level) the log;
# no fd stays open


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
@pytest.mark.parametrize("name", KERNEL_REJECTS)
def test_fixture_the_kernel_rejects(name: str) -> None:
    """Fails as bpftool's loader failed (kernel.json), naming the failing step."""
    m = re.search(r": -(\d+) ", str(KERNEL[name].get("error", "")))
    assert m, KERNEL[name]
    obj = loadable(obj_path(name))
    with pytest.raises(LoadError) as ei:
        run(obj)
    assert ei.value.errno == int(m.group(1))
    assert ei.value.step is not None and ei.value.step_index is not None
    assert ei.value.log == ""
    assert "log_level=1" in str(ei.value)
    assert isinstance(ei.value, bpfgen_fast.BpfgenError)
    with pytest.raises(LoadError) as ei:
        run(obj, log_level=1)
    assert ei.value.log  # at least the BTF log
    reason = str(KERNEL[name].get("reason", ""))
    if not reason.startswith("("):  # lskel-run found the verifier's last word
        assert reason in ei.value.log
    if name == "global_data_zero_size.bpf":
        assert ei.value.step == "BTF_LOAD" and ei.value.errno == errno.EINVAL
        assert "Invalid offset" in ei.value.log


def _patched_minimal() -> BpfObject:
    """minimal.bpf.o with its `w0 = 0` replaced by `r0 = *(u64 *)(r5 + 0)`: r5 is
    not initialised, so the verifier rejects it."""
    raw = obj_path("minimal.bpf").read_bytes()
    ret0 = bytes([0xB4, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    assert raw.count(ret0) == 1
    bad = raw.replace(ret0, bytes([0x79, 0x50, 0, 0, 0, 0, 0, 0]) + ret0[8:])
    return BpfObject.open(bad, "minimal_bpf")


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_verifier_rejection_comes_back_with_the_log() -> None:
    obj = _patched_minimal()
    with pytest.raises(LoadError) as ei:
        run(obj)
    assert ei.value.step == "PROG_LOAD handle_getpid"
    assert ei.value.errno == errno.EACCES
    assert ei.value.log == ""
    with pytest.raises(LoadError) as ei:
        run(obj, log_level=1)
    e = ei.value
    assert e.step == "PROG_LOAD handle_getpid" and e.errno == errno.EACCES
    assert "R5 !read_ok" in e.log
    assert str(e).startswith("minimal_bpf: PROG_LOAD handle_getpid: Permission denied")


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_verifier_rejection_compiled(bpf_src_dir: Path) -> None:  # noqa: F811
    with pytest.raises(LoadError) as ei:
        run(BpfObject.open(build_bpf("rejected", bpf_src_dir)), log_level=1)
    assert ei.value.step == "PROG_LOAD bad_ctx"
    assert "off=40000 disallowed" in ei.value.log


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_missing_kfunc(bpf_src_dir: Path) -> None:  # noqa: F811
    src = loader_for(build_bpf("missing_kfunc", bpf_src_dir))
    for level in (0, 1):
        with pytest.raises(LoadError) as ei:
            run(src, level)
        assert ei.value.errno == errno.ENOENT
        assert ei.value.step == "kfunc lookup 'bpf_no_such_kfunc_xyz' for call_missing"
        if level:
            assert ei.value.log  # the BTF log: the lookup itself logs nothing


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_kfuncs_resolved_at_run_time(bpf_src_dir: Path) -> None:  # noqa: F811
    path = build_bpf("kfuncs_ok", bpf_src_dir)
    loadable(path)
    src = loader_for(path)
    with run(src) as loaded:
        (prog,) = loaded.progs
        res = loaded.test_run(prog, ctx=b"\0" * 8)
        assert res.retval == 0
        assert struct.unpack_from("<i", loaded.bss, 0)[0] == 1


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_fentry_lsm_load_and_attach(bpf_src_dir: Path) -> None:  # noqa: F811
    """Where the kernel loads fentry and LSM programs, they load, attach and run: a
    sleep goes through do_nanosleep (fentry), an open through the file_open hook
    (LSM), and each bumps the shared counter (tests/test_vm.py runs this in sid)."""
    obj = loadable(build_bpf("fentry", bpf_src_dir))
    with run(obj) as loaded:
        links = loaded.attach()
        assert set(links) == {"on_nanosleep", "on_open"}

        def hits() -> int:
            return int(struct.unpack_from("<Q", loaded.bss, 0)[0])

        before = hits()
        time.sleep(0.001)
        slept = hits()
        assert slept > before, "the fentry program on do_nanosleep did not run"
        with open(__file__, "rb"):
            pass
        assert hits() > slept, "the LSM program on file_open did not run"


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_fentry_refused_names_the_program(bpf_src_dir: Path) -> None:  # noqa: F811
    """Where the kernel refuses fentry loads, the error names the program, carries the
    probe's errno, and nothing leaks."""
    (cap,) = kcaps.missing(["prog:tracing/fentry"]) or [None]
    if cap is None or cap.detail:
        pytest.skip("the kernel loads fentry programs (or the probe was denied): "
                    "nothing refused to show")
    with pytest.raises(LoadError) as ei:
        run(BpfObject.open(build_bpf("fentry", bpf_src_dir)))
    assert ei.value.errno == cap.errno
    assert ei.value.step == "PROG_LOAD on_nanosleep"


@pytest.mark.usefixtures("no_fd_leak")
def test_not_permitted_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cmd: int, attr: object, size: int) -> int:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(_bpf, "sys_bpf", refuse)
    with pytest.raises(BpfPermissionError, match=r"bpf\(\) not permitted") as ei:
        run(BpfObject.open(obj_path("minimal.bpf")))
    assert ei.value.errno == errno.EPERM
    err = io.StringIO()
    with redirect_stderr(err):
        rc = cli.main(["run", str(obj_path("minimal.bpf"))])
    assert rc == 1
    assert err.getvalue().startswith("error: minimal_bpf: bpf() not permitted")
    assert err.getvalue().count("\n") == 1


def test_bad_arguments() -> None:
    obj = BpfObject.open(obj_path("global_data.bpf"))
    with pytest.raises(ValueError):
        run(obj, log_level=-1)
    with pytest.raises(KeyError):
        run(obj, initial_values={"nope": b""})
    with pytest.raises(ValueError, match="bytes"):
        run(obj, initial_values={"data": b"\0" * 4096})


# --------------------------------------------------------------------------------------------
# global data through mmap, programs run with BPF_PROG_TEST_RUN or attached


PACKET = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + b"\x45" + b"\0" * 49


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_python_writes_bss_program_sees_it() -> None:
    """mixed_everything: on_packet (xdp) calls emit(), which does `emitted++` in .bss.
    Python sets `emitted` through the mmap, the program increments what it sees."""
    with run(loadable(obj_path("mixed_everything.bpf"))) as loaded:
        bss = loaded.bss
        assert loaded.mmaps["bss"] is not None and len(bss) == mmap.PAGESIZE
        assert bytes(bss[:16]) == b"\0" * 16
        struct.pack_into("<I", bss, 0, 41)  # struct { __u32 emitted; ...; __u64 dropped; }
        res = loaded.test_run("on_packet", data=PACKET, data_size_out=len(PACKET))
        assert res.retval == 2  # XDP_PASS
        assert struct.unpack_from("<I", bss, 0)[0] == 42
        # the same through the map fd: mmap and map are one memory
        value = loaded.lookup("bss", b"\0\0\0\0")
        assert value is not None and struct.unpack_from("<I", value, 0)[0] == 42
        # .rodata is frozen and mapped read-only, as PROT_READ in the C skeleton
        with pytest.raises(TypeError):
            loaded.rodata[0] = 1
        assert "data" not in loaded.mmaps


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_initial_values_replace_rodata_before_load() -> None:
    """Like writing skel->rodata between open and load: filter_kind = 7 makes emit()
    drop kind 3 events, so `emitted` stays 0."""
    obj = loadable(obj_path("mixed_everything.bpf"))
    with run(obj, initial_values={"rodata": struct.pack("<I", 7)}) as loaded:
        assert struct.unpack_from("<I", loaded.rodata, 0)[0] == 7
        loaded.test_run("on_packet", data=PACKET, data_size_out=len(PACKET))
        assert struct.unpack_from("<I", loaded.bss, 0)[0] == 0


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_program_writes_data_python_reads_it() -> None:
    with run(loadable(obj_path("progs_misc.bpf"))) as loaded:
        data = loaded.mmaps["data"]
        assert struct.unpack_from("<i", data, 0)[0] == -1  # int syscall_ret = -1
        res = loaded.test_run("run_syscall", ctx=struct.pack("<ii", 2, 40))
        assert res.retval == 0
        assert struct.unpack_from("<i", data, 0)[0] == 42


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_global_data_maps_are_mapped_by_ident() -> None:
    obj = loadable(obj_path("global_data_custom.bpf"))
    with run(obj) as loaded:
        mmapable = {m.name for m in obj.maps.values() if m.internal and m.flags & 0x400}
        assert len(loaded.mmaps) == len(mmapable)
        for ident, mm in loaded.mmaps.items():
            assert loaded.map_fd(ident) == loaded.maps[loaded._map_name(ident)]
            value = loaded.lookup(ident, b"\0\0\0\0")
            assert value is not None and bytes(mm[: len(value)]) == value
    assert all(mm.closed for mm in loaded.mmaps.values())
    assert loaded.closed


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_mmaps_use_the_skeleton_idents() -> None:
    """A custom section longer than a kernel map name: the mmap is known by the skeleton's
    member name (from the full section name), not by one made from the cut kernel name;
    a Loader without its object has only the kernel name to go by."""
    obj = loadable(obj_path("global_data_long_object_name.bpf"))
    idents = {m.ident for m in obj.maps.values() if m.internal and m.flags & 0x400}
    assert "data_extra_long_section_name" in idents
    with run(obj) as loaded:
        assert set(loaded.mmaps) == idents
    bare = obj.gen_loader().replace(_core=None)
    with run(bare) as loaded:
        assert "data_extra_lon" in loaded.mmaps


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_max_entries_override() -> None:
    with run(loadable(obj_path("maps_hash.bpf")), max_entries={"flows": 77}) as loaded:
        assert loaded.map_info("flows").max_entries == 77


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_raw_tp_attach_and_trigger() -> None:
    with run(loadable(obj_path("progs_tracepoint.bpf"))) as loaded:
        links = loaded.attach()
        # raw_tp.w and tracepoints are not auto-attached by the light skeleton
        assert set(links) == {"raw_tracepoint_enter", "raw_tp_switch"}
        for prog, fd in links.items():
            assert _bpf.link_info(fd).prog_id == loaded.prog_info(prog).id
        with pytest.raises(LoadError, match="auto-attach not supported"):
            loaded.attach("tp_sys_enter")
        with pytest.raises(LoadError, match="already attached"):
            loaded.attach("raw_tp_switch")
        for _ in range(20):
            os.getppid()
            time.sleep(0.001)
        counts = [loaded.lookup("tp_counts", struct.pack("<I", i)) for i in (3, 4)]
        assert all(c is not None and struct.unpack("<Q", c)[0] > 0 for c in counts)
        loaded.detach()
        assert loaded.links == {}
        for fd in links.values():
            with pytest.raises(OSError):
                os.fstat(fd)


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_iter_and_tp_btf_attach(bpf_src_dir: Path) -> None:  # noqa: F811
    obj = loadable(build_bpf("attach", bpf_src_dir))
    with run(obj) as loaded:
        links = loaded.attach()
        assert set(links) == {"dump_task", "on_switch", "on_enter"}
        it = _bpf.iter_create(links["dump_task"])
        try:
            while os.read(it, 4096):
                pass
        finally:
            os.close(it)
        time.sleep(0.02)
        hits_iter, hits_tp_btf, hits_raw = struct.unpack_from("<3Q", loaded.bss)
        assert hits_iter > 0 and hits_tp_btf > 0 and hits_raw > 0


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_bare_loader_cannot_attach_raw_tp_without_sections() -> None:
    loader = loadable(obj_path("progs_tracepoint.bpf")).gen_loader()
    with run(loader) as loaded, pytest.raises(LoadError, match="section unknown"):
        loaded.attach("raw_tp_switch")


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_close_is_idempotent_and_guards_use() -> None:
    loaded = run(loadable(obj_path("minimal.bpf")))
    assert "1 progs" in repr(loaded)
    loaded.close()
    loaded.close()
    assert "closed" in repr(loaded)
    with pytest.raises(ValueError, match="closed"):
        loaded.prog_fd("handle_getpid")


@pytest.mark.usefixtures("bpf_permitted", "no_fd_leak")
def test_log_on_success() -> None:
    with run(loadable(obj_path("minimal.bpf")), log_level=1) as loaded:
        assert "processed" in loaded.log


# --------------------------------------------------------------------------------------------
# CLI


@pytest.mark.usefixtures("cli_entry")
@pytest.mark.usefixtures("bpf_permitted")
def test_cli_run() -> None:
    import json

    path = obj_path("mixed_everything.bpf")
    r = run_cli("run", path)
    assert r.returncode == 0, r.stderr
    obj = BpfObject.open(path)
    for name in [*obj.maps, *obj.programs]:
        assert name in r.stdout
    r = run_cli("run", path, "--json")
    doc = json.loads(r.stdout)
    assert [m["name"] for m in doc["maps"]] == list(obj.maps)
    assert [p["name"] for p in doc["programs"]] == list(obj.programs)
    assert doc["maps"][0]["type"] == "ringbuf" or doc["maps"][0]["type"] == "hash"


@pytest.mark.usefixtures("cli_entry")
@pytest.mark.usefixtures("bpf_permitted")
def test_cli_run_failure_prints_the_log() -> None:
    r = run_cli("run", obj_path("global_data_zero_size.bpf"), "--log-level", "1")
    assert r.returncode == 1
    assert "Invalid offset" in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith(
        "error: global_data_zero_size_bpf: BTF_LOAD: Invalid argument")
    r = run_cli("run", obj_path("global_data_zero_size.bpf"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1


@pytest.mark.usefixtures("cli_entry")
def test_cli_run_usage() -> None:
    r = run_cli("run", obj_path("minimal.bpf"), "--log-level", "x")
    assert r.returncode == 2 and "--log-level" in r.stderr
    r = run_cli("run")
    assert r.returncode == 2
