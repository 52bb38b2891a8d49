"""The exception hierarchy. Every error the package raises derives from
:class:`BpfgenError`; its message reads ``OBJECT: SECTION+0xOFFSET: reason``
and the parts are also available as ``object``, ``section``, ``offset`` and
``reason`` attributes (``None`` where unknown)."""

from bpfgen_fast._core import (
    BpfgenError,
    BtfError,
    ElfError,
    RelocationError,
    UnsupportedError,
)

__all__ = ["BpfgenError", "BtfError", "ElfError", "RelocationError", "UnsupportedError"]
