"""``import bpfgen_fast`` loads only what generation needs: batch, explain, run and the
slow standard modules (typing, dataclasses, inspect, pathlib) load on first use. Checked
by what a fresh interpreter has imported, not by timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpfgen_fast
import pytest
from support import obj_path

LAZY = ["bpfgen_fast.batch", "bpfgen_fast.explain", "bpfgen_fast.run", "bpfgen_fast.sign",
        "bpfgen_fast.verify",
        "bpfgen_fast.cli", "typing", "dataclasses", "inspect", "pathlib"]


def imported_after(code: str) -> set[str]:
    p = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(*sys.modules)"],
                       capture_output=True, text=True, check=True)
    return set(p.stdout.split())


def test_import_loads_only_generation() -> None:
    mods = imported_after("import bpfgen_fast")
    assert "bpfgen_fast._core" in mods and "bpfgen_fast.object" in mods
    assert not set(LAZY) & mods


def test_generation_stays_lazy() -> None:
    obj = str(obj_path("minimal.bpf"))
    mods = imported_after(f"import bpfgen_fast; bpfgen_fast.gen_skeleton({obj!r})")
    assert not {"bpfgen_fast.explain", "bpfgen_fast.run", "bpfgen_fast.batch"} & mods


def test_lazy_names_resolve_and_keep_the_functions() -> None:
    """run and explain are both submodules and the functions they export: importing the
    submodule does not replace the package's function."""
    import bpfgen_fast.explain as _  # noqa: F401
    import bpfgen_fast.run as _r  # noqa: F401

    assert callable(bpfgen_fast.run) and bpfgen_fast.run.__name__ == "run"
    assert callable(bpfgen_fast.explain) and bpfgen_fast.explain.__name__ == "explain"
    assert bpfgen_fast.LoadError.__module__ == "bpfgen_fast.run"
    assert bpfgen_fast.gen_batch.__module__ == "bpfgen_fast.batch"
    assert set(bpfgen_fast.__all__) <= set(dir(bpfgen_fast))


def test_loader_is_a_frozen_value() -> None:
    loader = bpfgen_fast.gen_loader(obj_path("minimal.bpf"))
    try:
        loader.data = b""  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("Loader accepted an assignment")
    copy = loader.replace(data=loader.data)
    assert copy == loader and copy is not loader and hash(copy) == hash(loader)
    assert loader.replace(data=b"x") != loader
    assert repr(loader).startswith("Loader(data=b")


def test_loader_built_by_the_core_behaves_like_a_bare_one(tmp_path: Path) -> None:
    """The core builds a generation's Loader (names made on first access); one
    constructed in Python is the same value: equal, same hash, ctx size and files."""
    import copy
    import pickle

    loader = bpfgen_fast.BpfObject.open(obj_path("minimal.bpf")).gen_loader()
    assert type(loader) is bpfgen_fast.Loader and loader.__module__ == "bpfgen_fast.object"
    assert loader._core is not None and loader._host["compat"] == "bpftool-7.5"
    maps, progs = loader.map_names, loader.prog_names
    assert isinstance(maps, tuple) and loader.map_names is maps  # made once
    bare = bpfgen_fast.Loader(loader.data, loader.insns, maps, progs)
    assert bare._core is None and bare._host == {}
    assert bare == loader and hash(bare) == hash(loader) and repr(bare) == repr(loader)
    assert bare.ctx_size == loader.ctx_size == bpfgen_fast._core.loader_ctx_size(
        len(maps), len(progs))
    assert loader.replace(_core=None)._core is None
    with pytest.raises(TypeError, match="unexpected keyword argument 'date'"):
        loader.replace(date=b"")
    with pytest.raises(ValueError, match="not generated from a BpfObject"):
        bare.gen_skeleton()
    assert loader.gen_skeleton() == bpfgen_fast.gen_skeleton(obj_path("minimal.bpf"))
    assert pickle.loads(pickle.dumps(bare)) == bare
    assert copy.copy(loader) == loader and copy.copy(loader)._core is loader._core
    fresh = bpfgen_fast.gen_loader(obj_path("minimal.bpf"))  # names never looked at
    written = [p.read_bytes() for p in fresh.write(tmp_path / "a")]
    assert written == [p.read_bytes() for p in bare.write(tmp_path / "b")]
    assert written[:2] == [loader.data, loader.insns]
    assert fresh.ctx_size == loader.ctx_size
    # its _core.Object is made on first access, then the same one
    assert fresh._core is fresh._core and fresh._core.name == loader._core.name
    assert fresh == loader and fresh.replace()._core is fresh._core
