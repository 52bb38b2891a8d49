"""Objects for the benchmark suites: small / medium / large, from the kernel
selftests corpus when it is built (``scripts/selftests/build_corpus.py``),
else from the committed fixtures and synthetic objects (``synth.py``).

    pytest benches/                       # each benchmark once, as a test (fast)
    pytest benches/ --benchmark-enable    # real timings (pytest-benchmark)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
sys.path.insert(0, str(BENCHES))

#: corpus objects per size class (what genref's README reports on)
CORPUS = {"small": "test_ringbuf", "medium": "test_sk_lookup", "large": "pyperf600"}
#: host facts fixed, so timings never include reading the machine's
HOST = {"page_size": 4096, "possible_cpus": 2}


def corpus_dir() -> Path | None:
    """``KEYDIR/obj`` of the selftests corpus: $BPFGEN_SELFTESTS_KEYDIR, else
    the newest ``~/.cache/bpfgen/selftests/*/obj`` that has every object."""
    env = os.environ.get("BPFGEN_SELFTESTS_KEYDIR")
    cands = [Path(env)] if env else sorted(
        (Path(os.environ.get("BPFGEN_CACHE") or "~/.cache/bpfgen").expanduser()
         / "selftests").glob("*/"),
        key=lambda p: p.stat().st_mtime, reverse=True)
    for keydir in cands:
        obj = keydir / "obj"
        if all((obj / f"{n}.bpf.o").is_file() for n in CORPUS.values()):
            return obj
    return None


def bench_objects() -> dict[str, Path]:
    obj = corpus_dir()
    if obj is not None:
        return {size: obj / f"{n}.bpf.o" for size, n in CORPUS.items()}
    fixtures = ROOT / "tests" / "fixtures" / "obj"
    objects = {"small": fixtures / "minimal.bpf.o", "medium": fixtures / "mixed_everything.bpf.o"}
    try:
        import synth

        objects["large"] = synth.build("progs", 100)
    except Exception:  # no clang: two sizes only
        pass
    return objects


@pytest.fixture(scope="session")
def objects() -> dict[str, Path]:
    return bench_objects()
