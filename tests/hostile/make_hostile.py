"""Regenerate the hand-made hostile objects of this directory (see README.md).

    python tests/hostile/make_hostile.py

Each object isolates one resource-bound or integer-safety case; EXPECTED.txt says
how the core must answer, and tests/hostile.rs checks it.
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hostile_elf import (  # noqa: E402
    BTF_ARRAY,
    BTF_DATASEC,
    BTF_INT,
    BTF_STRUCT,
    BTF_VAR,
    EXIT,
    MOV_R0_0,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_REL,
    STT_NOTYPE,
    STT_OBJECT,
    Elf,
    Sec,
    Sym,
    btf,
    btf_type,
)

BTF_ENUM64 = 19
LINKAGE_EXTERN = 2


def prog_object(btf_data: bytes | None = None) -> Elf:
    e = Elf()
    idx = e.add(Sec("tracepoint/sched/sched_switch", SHT_PROGBITS, MOV_R0_0 + EXIT,
                    flags=SHF_ALLOC | SHF_EXECINSTR))
    e.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
    e.symbols.append(Sym("prog", idx, value=0, size=16))
    if btf_data is not None:
        e.add(Sec(".BTF", SHT_PROGBITS, btf_data, align=4))
    return e


def bss(size: int) -> bytes:
    e = prog_object()
    e.add(Sec(".bss", SHT_NOBITS, flags=SHF_ALLOC | 1, size=size))
    return e.build()


def kconfig_externs(types: list[bytes], strings: bytes, externs: list[tuple[str, int]]) -> bytes:
    """`__kconfig` externs (name, BTF type) in a `.kconfig` DATASEC."""
    types = list(types)
    secinfo = b""
    for name, type_id in externs:
        off = len(strings)
        strings += name.encode() + b"\0"
        types.append(btf_type(off, BTF_VAR, 0, type_id, struct.pack("<I", LINKAGE_EXTERN)))
        secinfo += struct.pack("<III", len(types), 0, 0)
    sec_off = len(strings)
    strings += b".kconfig\0"
    types.append(btf_type(sec_off, BTF_DATASEC, len(externs), 0, secinfo))
    e = prog_object(btf(types, strings))
    e.symbols.extend(Sym(name, 0, bind=1, type=STT_NOTYPE) for name, _ in externs)
    return e.build()


def kcfg_offset_overflow() -> bytes:
    """Two 3 GiB char arrays: the second's .kconfig offset wraps a u32."""
    types = [btf_type(1, BTF_INT, 0, 1, struct.pack("<I", 1 << 24 | 8)),  # [1] char
             btf_type(0, BTF_ARRAY, 0, 0, struct.pack("<III", 1, 1, 0xC000_0000))]  # [2]
    return kconfig_externs(types, b"\0char\0", [("CONFIG_A", 2), ("CONFIG_B", 2)])


def kcfg_tristate_size(size: int) -> bytes:
    """An ENUM64 libbpf_tristate of `size` bytes: alignment 0 (division by zero)
    for size 0, a 4-byte value write past a 1-byte image for size 1."""
    types = [btf_type(1, BTF_ENUM64, 0, size)]
    return kconfig_externs(types, b"\0libbpf_tristate\0", [("CONFIG_BPF_JIT", 1)])


def struct_dag(levels: int) -> tuple[list[bytes], bytes]:
    """struct L0 { L1 a; L1 b; } ...: 2^levels paths through `levels` types."""
    strings = b"\0a\0b\0int\0"
    types = [btf_type(5, BTF_INT, 0, 4, struct.pack("<I", 32))]
    for lvl in range(levels):
        child = 1 if lvl == 0 else lvl + 1
        types.append(btf_type(0, BTF_STRUCT, 2, 4,
                              struct.pack("<III", 1, child, 0) + struct.pack("<III", 3, child, 0)))
    return types, strings


def kcfg_struct_dag() -> bytes:
    """A `__kconfig` extern whose type is a 31-level struct DAG: its alignment
    must not take 2^31 steps (libbpf's depth limit is 32)."""
    types, strings = struct_dag(31)
    return kconfig_externs(types, strings, [("CONFIG_HZ", len(types))])


def data_struct_dag() -> bytes:
    """A `.data` variable whose type is a 40-level struct DAG: the skeleton's
    alignment and declaration must stay bounded."""
    types, strings = struct_dag(40)
    top = len(types)
    v_off = len(strings)
    strings += b"v\0.data\0"
    types += [btf_type(v_off, BTF_VAR, 0, top, struct.pack("<I", 1)),
              btf_type(v_off + 2, BTF_DATASEC, 1, 0, struct.pack("<III", top + 1, 0, 8))]
    e = prog_object(btf(types, strings))
    idx = e.add(Sec(".data", SHT_PROGBITS, b"\0" * 8, flags=SHF_ALLOC | 1))
    e.symbols.append(Sym("v", idx, value=0, size=8, type=STT_OBJECT))
    return e.build()


def many_programs(n: int) -> bytes:
    """`n` programs: unnamed function symbols all over the same two instructions,
    so the file compresses to almost nothing. Linking used to be quadratic in
    the number of programs (a fresh offset table per program)."""
    e = Elf()
    idx = e.add(Sec("tracepoint/x", SHT_PROGBITS, MOV_R0_0 + EXIT,
                    flags=SHF_ALLOC | SHF_EXECINSTR))
    e.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
    e.symbols.extend(Sym("", idx, value=0, size=16) for _ in range(n))
    return e.build()


def data_reloc_offset_wrap() -> bytes:
    """`ld_imm64` of a `.data` symbol whose value does not fit an i32: the
    instruction's offset would wrap (libbpf truncates it)."""
    e = Elf()
    ld = bytes([0x18, 0x01, 0, 0, 0, 0, 0, 0]) + bytes(8)
    idx = e.add(Sec("tracepoint/x", SHT_PROGBITS, ld + EXIT, flags=SHF_ALLOC | SHF_EXECINSTR))
    e.add(Sec("license", SHT_PROGBITS, b"GPL\0", flags=SHF_ALLOC, align=1))
    data = e.add(Sec(".data", SHT_PROGBITS, b"\0" * 8, flags=SHF_ALLOC | 1))
    e.symbols.append(Sym("prog", idx, value=0, size=24))
    e.symbols.append(Sym("v", data, value=0xFFFF_FFF8, size=8, type=STT_OBJECT))
    rel = struct.pack("<QQ", 0, (2 << 32) | 1)  # r_offset 0, symbol #2 (v), R_BPF_64_64
    e.add(Sec(".reltracepoint/x", SHT_REL, rel, info=idx, link=len(e.sections) + 2, entsize=16))
    return e.build()


def many_data_sections(n: int, types: int) -> bytes:
    """`n` global data sections and `types` BTF types: each section's BTF
    lookup used to scan every type (4000 x 400k: 40 s)."""
    e = prog_object()
    for i in range(n):
        e.add(Sec(f".data.{i}", SHT_PROGBITS, b"\1" * 8, flags=SHF_ALLOC | 1))
    t = btf_type(1, BTF_INT, 0, 4, struct.pack("<I", 32))
    e.add(Sec(".BTF", SHT_PROGBITS, btf([t] * types, b"\0i\0"), align=4))
    return e.build()


def many_externs(n: int, filler: int) -> bytes:
    """`n` weak `__ksym` externs behind `filler` types: each extern's BTF
    lookup used to scan every type (15k externs x 135k types: about a minute)."""
    strings = bytearray(b"\0i\0")
    types = [btf_type(1, BTF_INT, 0, 4, struct.pack("<I", 32))] * filler
    secinfo = b""
    names = []
    for i in range(n):
        off = len(strings)
        strings += f"k{i}\0".encode()
        types.append(btf_type(off, BTF_VAR, 0, 1, struct.pack("<I", LINKAGE_EXTERN)))
        secinfo += struct.pack("<III", len(types), 0, 4)
        names.append(f"k{i}")
    off = len(strings)
    strings += b".ksyms\0"
    types.append(btf_type(off, BTF_DATASEC, n, 0, secinfo))
    e = prog_object(btf(types, bytes(strings)))
    e.symbols.extend(Sym(name, 0, bind=2, type=STT_NOTYPE) for name in names)
    return e.build()


def many_hidden_subprograms(n: int, types: int) -> bytes:
    """`n` hidden global `.text` functions and `types` BTF types: making each
    one's BTF FUNC static used to scan every type (40k x 200k: about 30 s)."""
    e = prog_object()
    text = e.add(Sec(".text", SHT_PROGBITS, MOV_R0_0 + EXIT, flags=SHF_ALLOC | SHF_EXECINSTR))
    e.symbols.extend(Sym("", text, value=0, size=16, other=2) for _ in range(n))
    t = btf_type(1, BTF_INT, 0, 4, struct.pack("<I", 32))
    e.add(Sec(".BTF", SHT_PROGBITS, btf([t] * types, b"\0i\0"), align=4))
    return e.build()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, 9, mtime=0)


FILES = {
    "bss_4gib.o": lambda: bss(0xFFFF_FFFF),
    "bss_300mib.o": lambda: bss(300 << 20),
    "kcfg_offset_overflow.o": kcfg_offset_overflow,
    "kcfg_tristate_size0.o": lambda: kcfg_tristate_size(0),
    "kcfg_tristate_size1.o": lambda: kcfg_tristate_size(1),
    "kcfg_struct_dag.o": kcfg_struct_dag,
    "data_struct_dag.o": data_struct_dag,
    "data_reloc_offset_wrap.o": data_reloc_offset_wrap,
    "many_data_sections.o.gz": lambda: gz(many_data_sections(4000, 400_000)),
    "many_externs.o.gz": lambda: gz(many_externs(15_000, 120_000)),
    "many_hidden_subprograms.o.gz": lambda: gz(many_hidden_subprograms(40_000, 200_000)),
    "many_programs_1m.o.gz": lambda: gz(many_programs(1_000_000)),
}

if __name__ == "__main__":
    for name, make in FILES.items():
        (HERE / name).write_bytes(make())
        print(name, (HERE / name).stat().st_size)
