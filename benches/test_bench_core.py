"""pytest-benchmark suites: open, gen_loader, gen_skeleton and a batch, on a
small, a medium and a large object (see conftest.py). With the project's
default ``--benchmark-disable`` each runs once, as a quick test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpfgen_fast
import pytest
from bpfgen_fast import BpfObject
from conftest import HOST

SIZES = ["small", "medium", "large"]


def load(objects: dict[str, Path], size: str) -> tuple[bytes, str]:
    if size not in objects:
        pytest.skip(f"no {size} object (no selftests corpus, no clang)")
    path = objects[size]
    return path.read_bytes(), bpfgen_fast._core.default_object_name(str(path))


@pytest.mark.parametrize("size", SIZES)
def test_open(benchmark: Any, objects: dict[str, Path], size: str) -> None:
    data, name = load(objects, size)
    obj = benchmark(BpfObject.open, data, name)
    assert obj.name == name


@pytest.mark.parametrize("size", SIZES)
def test_gen_loader(benchmark: Any, objects: dict[str, Path], size: str) -> None:
    data, name = load(objects, size)
    obj = BpfObject.open(data, name)
    loader = benchmark(lambda: obj.gen_loader(**HOST))
    assert loader.insns and len(loader.insns) % 8 == 0


@pytest.mark.parametrize("size", SIZES)
def test_open_and_gen_loader(benchmark: Any, objects: dict[str, Path], size: str) -> None:
    """What the comparison with libbpf times: open + gen_loader from bytes."""
    data, name = load(objects, size)
    loader = benchmark(lambda: BpfObject.open(data, name).gen_loader(**HOST))
    assert loader.data


@pytest.mark.parametrize("size", SIZES)
def test_gen_skeleton(benchmark: Any, objects: dict[str, Path], size: str) -> None:
    data, name = load(objects, size)
    obj = BpfObject.open(data, name)
    header = benchmark(lambda: obj.gen_skeleton(**HOST))
    assert header.startswith("/* SPDX-License-Identifier")


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_headers(benchmark: Any, objects: dict[str, Path], tmp_path: Path,
                       jobs: int) -> None:
    """Every size class's header written to a directory, ``jobs`` threads."""
    paths = list(objects.values()) * 4
    names = [f"o{i}" for i in range(len(paths))]
    res = benchmark(lambda: bpfgen_fast.gen_batch(paths, names=names, jobs=jobs,
                                                  out_dir=tmp_path, **HOST))
    assert all(r.ok for r in res)
