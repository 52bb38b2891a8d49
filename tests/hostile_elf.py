"""Tiny ELF64 (little-endian, EM_BPF, ET_REL) writer and editors for hostile-input
tests: build objects from sections and symbols, and edit existing ones (truncate,
flip bits, lie about section sizes). Plain Python, no dependencies."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STB_LOCAL, STB_GLOBAL = 0, 1
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3

# BTF kinds
BTF_INT, BTF_PTR, BTF_ARRAY, BTF_STRUCT, BTF_TYPEDEF, BTF_CONST = 1, 2, 3, 4, 8, 10
BTF_FUNC, BTF_FUNC_PROTO, BTF_VAR, BTF_DATASEC = 12, 13, 14, 15

EXIT = bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
MOV_R0_0 = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0])


@dataclass
class Sec:
    name: str
    type: int
    data: bytes = b""
    flags: int = 0
    link: int = 0
    info: int = 0
    entsize: int = 0
    align: int = 8
    size: int | None = None  # NOBITS size, or a lie


@dataclass
class Sym:
    name: str
    shndx: int
    value: int = 0
    size: int = 0
    bind: int = STB_GLOBAL
    type: int = STT_FUNC
    other: int = 0  # visibility: 2 = hidden


@dataclass
class Elf:
    """Sections (index 0 is implicit) and symbols (index 0 is implicit)."""

    sections: list[Sec] = field(default_factory=list)
    symbols: list[Sym] = field(default_factory=list)

    def add(self, sec: Sec) -> int:
        self.sections.append(sec)
        return len(self.sections)  # its section index

    def build(self) -> bytes:
        strtab = bytearray(b"\0")

        def string(s: str) -> int:
            if not s:
                return 0
            off = len(strtab)
            strtab.extend(s.encode() + b"\0")
            return off

        syms = bytearray(24)
        # locals first, as ELF requires (sh_info = first global)
        ordered = sorted(self.symbols, key=lambda s: s.bind != STB_LOCAL)
        for s in ordered:
            syms += struct.pack("<IBBHQQ", string(s.name), (s.bind << 4) | s.type, s.other,
                                s.shndx, s.value, s.size)
        first_global = 1 + sum(1 for s in ordered if s.bind == STB_LOCAL)
        secs = list(self.sections)
        symtab_idx = len(secs) + 1
        strtab_idx = len(secs) + 2
        secs.append(Sec(".symtab", SHT_SYMTAB, bytes(syms), link=strtab_idx, info=first_global,
                        entsize=24))
        names = [string(s.name) for s in secs]
        names.append(string(".strtab"))
        secs.append(Sec(".strtab", SHT_STRTAB, bytes(strtab), align=1))
        assert len(secs) == strtab_idx
        out = bytearray(64)
        offsets = []
        for s in secs:
            if s.type != SHT_NOBITS:
                out += b"\0" * (-len(out) % max(s.align, 1))
            offsets.append(len(out))
            if s.type != SHT_NOBITS:
                out += s.data
        out += b"\0" * (-len(out) % 8)
        shoff = len(out)
        out += b"\0" * 64
        for s, name, off in zip(secs, names, offsets):
            size = s.size if s.size is not None else len(s.data)
            out += struct.pack("<IIQQQQIIQQ", name, s.type, s.flags, 0, off, size, s.link,
                               s.info, s.align, s.entsize)
        hdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 1, 247, 1,
                          0, 0, shoff, 0, 64, 0, 0, 64, len(secs) + 1, strtab_idx)
        out[:64] = hdr
        assert symtab_idx == strtab_idx - 1
        return bytes(out)


def btf(types: Sequence[bytes], strings: bytes) -> bytes:
    """A .BTF section from encoded type records and a string table."""
    body = b"".join(types)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strings))
    return hdr + body + strings


def btf_type(name_off: int, kind: int, vlen: int, size_or_type: int, tail: bytes = b"",
             kflag: int = 0) -> bytes:
    return struct.pack("<III", name_off, (kflag << 31) | (kind << 24) | vlen, size_or_type) + tail


# ---------------------------------------------------------------------------
# Editing existing objects


@dataclass
class Shdr:
    index: int
    at: int  # file offset of the header
    name: str
    type: int
    offset: int
    size: int


def section_headers(data: bytes) -> list[Shdr]:
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    str_off, str_size = raw[shstrndx][4], raw[shstrndx][5]
    strs = data[str_off:str_off + str_size]
    out = []
    for i, h in enumerate(raw):
        end = strs.find(b"\0", h[0])
        out.append(Shdr(i, shoff + 64 * i, strs[h[0]:end].decode(errors="replace"), h[1], h[4],
                        h[5]))
    return out


def set_section_size(data: bytes, index: int, size: int) -> bytes:
    h = section_headers(data)[index]
    out = bytearray(data)
    struct.pack_into("<Q", out, h.at + 32, size % (1 << 64))
    return bytes(out)


def set_section_offset(data: bytes, index: int, offset: int) -> bytes:
    h = section_headers(data)[index]
    out = bytearray(data)
    struct.pack_into("<Q", out, h.at + 24, offset % (1 << 64))
    return bytes(out)


def flip_bits(data: bytes, positions: Sequence[int]) -> bytes:
    out = bytearray(data)
    for p in positions:
        out[(p // 8) % len(out)] ^= 1 << (p % 8)
    return bytes(out)
