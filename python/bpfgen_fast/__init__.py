"""bpfgen_fast: byte-exact libbpf 1.5 loader programs and light skeletons,
from a Rust core.

    >>> import bpfgen_fast
    >>> loader = bpfgen_fast.gen_loader("prog.bpf.o")
    >>> loader.data, loader.insns

Only what generation needs is imported up front; batch, explain, run and verify
(with their larger modules) are imported on first use.
"""

from __future__ import annotations

import importlib
import sys
import types

from bpfgen_fast.errors import (
    BpfgenError,
    BtfError,
    ElfError,
    RelocationError,
    SigningError,
    UnsupportedError,
)
from bpfgen_fast.object import (
    BpfObject,
    Loader,
    MapInfo,
    ProgramInfo,
    gen_loader,
    gen_skeleton,
    host_args,
)

# typing and the lazy modules cost milliseconds at import: type checkers read this
# block, Python skips it
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from bpfgen_fast.batch import BatchResult, gen_batch
    from bpfgen_fast.explain import Explanation, LoaderDecodeError, explain
    from bpfgen_fast.run import BpfPermissionError, LoadedObject, LoadError, run
    from bpfgen_fast.verify import SignedSkeleton, verify_skeleton

#: public name -> the submodule that defines it, imported on first use
_LAZY = {
    "BatchResult": "batch", "gen_batch": "batch",
    "Explanation": "explain", "LoaderDecodeError": "explain", "explain": "explain",
    "BpfPermissionError": "run", "LoadedObject": "run", "LoadError": "run", "run": "run",
    "SignedSkeleton": "verify", "verify_skeleton": "verify",
}
#: names that are both a submodule and the function it exports: the package keeps
#: the function when the import system binds the submodule to its parent
_SHADOWED = frozenset({"explain", "run"})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bpfgen_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bpfgen_fast.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


sys.modules[__name__].__class__ = _Package

__all__ = [
    "BatchResult",
    "BpfObject",
    "BpfPermissionError",
    "BpfgenError",
    "BtfError",
    "ElfError",
    "Explanation",
    "LoadError",
    "LoadedObject",
    "Loader",
    "LoaderDecodeError",
    "MapInfo",
    "ProgramInfo",
    "RelocationError",
    "SignedSkeleton",
    "SigningError",
    "UnsupportedError",
    "explain",
    "gen_batch",
    "gen_loader",
    "gen_skeleton",
    "host_args",
    "run",
    "verify_skeleton",
]
__version__ = "0.1.0"
