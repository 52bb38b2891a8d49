"""bpfgen_fast: byte-exact libbpf 1.5 loader programs and light skeletons,
from a Rust core.

    >>> import bpfgen_fast
    >>> loader = bpfgen_fast.gen_loader("prog.bpf.o")
    >>> loader.data, loader.insns
"""

from bpfgen_fast.errors import (
    BpfgenError,
    BtfError,
    ElfError,
    RelocationError,
    UnsupportedError,
)
from bpfgen_fast.object import BpfObject, Loader, MapInfo, ProgramInfo, gen_loader

__all__ = [
    "BpfObject",
    "BpfgenError",
    "BtfError",
    "ElfError",
    "Loader",
    "MapInfo",
    "ProgramInfo",
    "RelocationError",
    "UnsupportedError",
    "gen_loader",
]
__version__ = "0.1.0"
