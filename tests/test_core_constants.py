"""The native module's constants and their stubs (``_core.pyi``) list the same names:
every ABI fact the facade reads from the core is typed, and no stub names a constant
the core does not export."""

from __future__ import annotations

import re
from pathlib import Path

from bpfgen_fast import _core

STUB = Path(__file__).resolve().parent.parent / "python" / "bpfgen_fast" / "_core.pyi"


def _stub_constants() -> dict[str, str]:
    text = STUB.read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*): (\S+)$", text, re.MULTILINE))


def test_stub_lists_every_constant_with_its_type() -> None:
    stub = _stub_constants()
    exported = {n for n in dir(_core) if re.fullmatch(r"[A-Z][A-Z0-9_]*", n)
                and not isinstance(getattr(_core, n), type)}
    assert sorted(exported - stub.keys()) == []
    assert sorted(stub.keys() - exported) == []
    kinds = {"int": int, "str": str, "frozenset[int]": frozenset}
    for name, ann in stub.items():
        assert isinstance(getattr(_core, name), kinds[ann]), name
