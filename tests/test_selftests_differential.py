"""The kernel BPF selftests corpus, differentially: every object bpftool 7.5.0 turns
into a light skeleton must come out byte-identical from bpfgen_fast (or differ only by
the documented ?-slots divergence), and every object whose bpftool loader loads in this
kernel must load with ours (scripts/selftests/differential.py --kernel).

Slow on a cold cache (build_corpus.py compiles ~800 sources); deselect with
``-m "not corpus"``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "selftests" / "differential.py"
TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
SHARED = Path(os.environ.get("BPFGEN_SHARED", REPO.parent / "shared"))
REFERENCE_TSV = SHARED / "corpus" / "selftests-bpftool-7.5.tsv"


def _missing_prerequisites() -> list[str]:
    missing = []
    for tool in (os.environ.get("CLANG", "clang-19"), os.environ.get("BPFTOOL", "bpftool")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not on PATH")
    if not TARBALL.is_file():
        missing.append(f"{TARBALL} not found (apt-get install linux-source-6.12)")
    if not REFERENCE_TSV.is_file():
        missing.append(f"reference verdicts {REFERENCE_TSV} not found")
    return missing


@pytest.mark.corpus
def test_selftests_differential(tmp_path: Path) -> None:
    missing = _missing_prerequisites()
    if missing:
        pytest.skip("selftests corpus cannot be built: " + "; ".join(missing))
    table = tmp_path / "differential.md"
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--kernel", "--markdown", str(table)],
        capture_output=True, text=True, timeout=3 * 3600, cwd=REPO,
    )
    print(p.stdout)  # the Markdown summary (shown with -s, -rP or on failure)
    if p.returncode != 0:
        print(p.stderr[-5000:], file=sys.stderr)
    assert p.returncode == 0, (
        f"differential.py --kernel exited {p.returncode}"
        + (" (summary and problem list in the captured stdout)" if table.exists()
           else ": " + p.stderr[-2000:])
    )
