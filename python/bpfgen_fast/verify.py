"""Offline verification of a signed light skeleton, whoever printed it (bpftool
7.8.0 or bpfgen_fast): the three things the kernel and the loader will check,
checked here first, so a pipeline can refuse a bad header before it ships.

1. ``opts_sig``, a detached CMS signature, verifies with the certificate over
   exactly the bytes Linux 7.2 verifies: the loader's instructions
   (``opts_insn``, as ``bpf_prog_verify_signature`` hands them to PKCS#7).
2. ``opts_excl_hash`` is the SHA-256 of those instructions (the kernel binds the
   loader's data map to the program with that hash).
3. The SHA-256 the loader's instructions carry (four 64-bit immediates its
   signature check compares with the data map's kernel-computed hash) is the
   SHA-256 of ``opts_data``: otherwise the loader fails with -EINVAL.

They are checked in the kernel's order, so the first mismatch reported is the
one a load would hit first.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Literal

from bpfgen_fast.errors import SigningError

#: ``static const char NAME[] __attribute__((__aligned__(8))) = "\<newline>...";``
_BLOB = re.compile(r'static const char (opts_\w+)\[\] __attribute__\(\(__aligned__\(8\)\)\) = "\\\n'
                   r'(.*?)";', re.S)
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\0|\\\n")

#: what hands the blobs to ``bpf_load_and_run``: a header whose blobs verify but
#: that does not pass them (say ``opts.signature = NULL``) would load unsigned
_HAND_OVER = (
    "\topts.signature = (void *)opts_sig;\n",
    "\topts.signature_sz = sizeof(opts_sig) - 1;\n",
    "\topts.excl_prog_hash = (void *)opts_excl_hash;\n",
    "\topts.excl_prog_hash_sz = sizeof(opts_excl_hash) - 1;\n",
    "\topts.data_sz = sizeof(opts_data) - 1;\n",
    "\topts.data = (void *)opts_data;\n",
    "\topts.insns_sz = sizeof(opts_insn) - 1;\n",
    "\topts.insns = (void *)opts_insn;\n",
)

#: the signature check, after the cleanup block's exit, loads ``r3 = <64-bit digest
#: word>`` four times; a loader has no other raw 64-bit constant (the self-check
#: holds it to that), so the scan need not know the check's length, which a
#: long loader's wider branches change
_DIGEST_WORDS = 4


@dataclass(frozen=True)
class SignedSkeleton:
    """What a signed header carries, decoded: the loader's data and
    instructions, the CMS signature (DER) and the exclusive-program hash."""

    data: bytes
    insns: bytes
    signature: bytes
    excl_hash: bytes


def _c_string(body: str) -> bytes:
    """The bytes of a C string literal body as bpftool prints blobs: every byte
    ``\\xNN`` except NUL as ``\\0``, lines continued with a backslash."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        if m.start() != pos:
            raise ValueError(body[pos:m.start()][:20])
        if m.group(1) is not None:
            out.append(int(m.group(1), 16))
        elif m.group(0) == "\\0":
            out.append(0)
        pos = m.end()
    if pos != len(body):
        raise ValueError(body[pos:][:20])
    return bytes(out)


def decode_header(text: str) -> SignedSkeleton:
    """The blobs of a signed light-skeleton header; :class:`SigningError` when
    one is missing or not in bpftool's spelling, or when the header does not
    hand them (the signature above all) to ``bpf_load_and_run``."""
    blobs: dict[str, bytes] = {}
    for m in _BLOB.finditer(text):
        name = m.group(1)
        if name in blobs:
            raise SigningError(f"{name} appears twice: not one light skeleton")
        try:
            blobs[name] = _c_string(m.group(2))
        except ValueError as e:
            raise SigningError(f"{name}: not a blob literal as bpftool prints it "
                               f"(near {str(e)!r})") from None
    missing = [n for n in ("opts_data", "opts_insn") if n not in blobs]
    if missing:
        raise SigningError(f"no {missing[0]}: not a light skeleton header")
    if "opts_sig" not in blobs or "opts_excl_hash" not in blobs:
        raise SigningError("no opts_sig / opts_excl_hash: not a signed light skeleton")
    for line in _HAND_OVER:
        if text.count(line) != 1:
            raise SigningError(f"the header does not pass its blobs to the loader as signed "
                               f"headers do: `{line.strip()}` is not there once")
    return SignedSkeleton(blobs["opts_data"], blobs["opts_insn"], blobs["opts_sig"],
                          blobs["opts_excl_hash"])


def embedded_data_hash(insns: bytes) -> bytes:
    """The SHA-256 the loader's signature check compares the data map's hash with,
    read from its four ``r3 = imm64`` loads (either byte order)."""
    if len(insns) % 8:
        raise SigningError(f"opts_insn is {len(insns)} bytes, not whole instructions")
    codes = insns[::8]
    try:
        start = codes.index(0x95) + 1  # the cleanup block's exit; the check follows
    except ValueError:
        raise SigningError("opts_insn has no exit: not a loader program") from None
    words: list[bytes] = []
    i = start
    end = len(codes) - 1  # an ld_imm64 takes two slots
    while i < end and len(words) < _DIGEST_WORDS:
        regs = insns[8 * i + 1]
        if codes[i] == 0x18 and regs in (0x03, 0x30):
            # little-endian: src/dst nibbles 0/3, immediates LE; big-endian swapped
            order: Literal["little", "big"] = "little" if regs == 0x03 else "big"
            lo = int.from_bytes(insns[8 * i + 4:8 * i + 8], order)
            hi = int.from_bytes(insns[8 * i + 12:8 * i + 16], order)
            words.append((lo | hi << 32).to_bytes(8, order))
            i += 2
        else:
            i += 1
    if len(words) != _DIGEST_WORDS:
        raise SigningError("opts_insn has no data-hash check: not a signed (gen_hash) loader")
    return b"".join(words)


def _read_header(header: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, name for messages): a ``str`` with a newline is the header itself,
    anything else a path."""
    if isinstance(header, str) and "\n" in header:
        return header, ""
    path = os.fspath(header)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read(), path
    except OSError as e:
        raise SigningError(f"{e.strerror or e}", path) from e


def verify_skeleton(header: str | os.PathLike[str], cert: str | os.PathLike[str]) -> SignedSkeleton:
    """Check a signed light skeleton against the certificate ``cert`` (PEM or
    DER): the signature over the loader instructions, the exclusive-program hash
    and the loader's SHA-256 of its data, in that order (the kernel's). Returns
    the decoded blobs; raises :class:`SigningError` naming the first mismatch.
    ``header`` is the header text (a ``str`` with a newline) or its path."""
    from bpfgen_fast.sign import load_certificate, verify_cms

    text, name = _read_header(header)
    try:
        skel = decode_header(text)
        verify_cms(skel.signature, skel.insns, load_certificate(cert), os.fspath(cert))
        if hashlib.sha256(skel.insns).digest() != skel.excl_hash:
            raise SigningError("opts_excl_hash is not the SHA-256 of opts_insn "
                               "(the kernel would not bind the data map to the loader)")
        if embedded_data_hash(skel.insns) != hashlib.sha256(skel.data).digest():
            raise SigningError("the SHA-256 of opts_data is not the one the loader checks "
                               "(the loader would fail with -EINVAL)")
    except SigningError as e:
        if not name:
            raise
        raise SigningError(e.reason, name) from e.__cause__
    return skel


__all__ = ["SignedSkeleton", "decode_header", "embedded_data_hash", "verify_skeleton"]
