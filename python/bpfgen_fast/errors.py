"""The exception hierarchy. Every error the package raises derives from
:class:`BpfgenError`; its message reads ``OBJECT: SECTION+0xOFFSET: reason``
and the parts are also available as ``object``, ``section``, ``offset`` and
``reason`` attributes (``None`` where unknown)."""

from __future__ import annotations

from bpfgen_fast._core import (
    BpfgenError,
    BtfError,
    ElfError,
    RelocationError,
    UnsupportedError,
)


class SigningError(BpfgenError):
    """Signing a light skeleton failed: a key or certificate file missing or
    unreadable, a key that does not match the certificate, a certificate
    without Subject Key Identifier, or a header style that cannot be signed."""

    def __init__(self, reason: str, object: str = "") -> None:
        super().__init__(f"{object}: {reason}" if object else reason)
        self.object = object
        self.section = None
        self.offset = None
        self.reason = reason


__all__ = [
    "BpfgenError",
    "BtfError",
    "ElfError",
    "RelocationError",
    "SigningError",
    "UnsupportedError",
]
