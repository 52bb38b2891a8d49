"""bpfgen_fast: byte-exact libbpf 1.5 loader programs and light skeletons,
from a Rust core.

    >>> import bpfgen_fast
    >>> loader = bpfgen_fast.gen_loader("prog.bpf.o")
    >>> loader.data, loader.insns
"""

from bpfgen_fast.batch import BatchResult, gen_batch
from bpfgen_fast.errors import (
    BpfgenError,
    BtfError,
    ElfError,
    RelocationError,
    SigningError,
    UnsupportedError,
)
from bpfgen_fast.explain import Explanation, LoaderDecodeError, explain
from bpfgen_fast.object import (
    BpfObject,
    Loader,
    MapInfo,
    ProgramInfo,
    gen_loader,
    gen_skeleton,
    host_args,
)
from bpfgen_fast.run import BpfPermissionError, LoadedObject, LoadError, run

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
    "SigningError",
    "UnsupportedError",
    "explain",
    "gen_batch",
    "gen_loader",
    "gen_skeleton",
    "host_args",
    "run",
]
__version__ = "0.1.0"
