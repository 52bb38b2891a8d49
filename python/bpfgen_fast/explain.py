"""Decode a generated loader back into what it will do.

libbpf's gen_loader builds the loader program from a small, fixed set of
instruction building blocks (reference §3.4/§3.5): the prologue, the cleanup
path every error branch jumps to, then one block per BTF_LOAD, MAP_CREATE,
map update/freeze/populate and PROG_LOAD (with its attach-target lookup and
ksym/kfunc relocations), then the epilogue that hands the fds to the skeleton.
Layouts beyond libbpf 1.5 decode too: prog fds kept in the data blob (more
than 32 programs), prog-array static slots filled after the loads, and struct_ops
maps (the vmlinux value type looked up at MAP_CREATE, maps of ``SEC("?.struct_ops")``
not created at all; the maps' values are written when they are attached, not by the
loader: see :meth:`bpfgen_fast.run.LoadedObject.attach`), and loaders too long for
16-bit jumps (their far branches to the cleanup code, and the prologue's jump over a
long one, are ``gotol``: :func:`uses_gotol`).
:func:`explain` pattern-matches the instruction stream against those blocks and
reads the attributes from the data blob at the offsets the ``ld_imm64 src=6``
pairs reference. Anything that does not fit raises :class:`LoaderDecodeError`,
so the decoder doubles as a structural self-check of a generated loader.
Loaders for big-endian (bpfeb) targets (libbpf 1.8's cross-endian generator,
``compat="bpftool-7.8"``) decode too: their byte order is read off the loader's first
instruction (``r6 = r1``), and the instructions and every record the kernel reads from
the data blob are decoded in it (:attr:`Explanation.big_endian`).

    >>> e = bpfgen_fast.explain(bpfgen_fast.gen_loader("prog.bpf.o"))
    >>> [m.name for m in e.maps], [p.name for p in e.programs]
    >>> print(e.to_text()); e.to_json()
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Union

from bpfgen_fast import _core
from bpfgen_fast._bpf import attach_type_name, map_type_name, prog_type_name
from bpfgen_fast.errors import BpfgenError
from bpfgen_fast.object import BpfObject, Loader

FORMAT = "bpfgen-explain/1"

# The loader's layout, helper ids, bpf() commands and instruction encoding are the core's
# (src/loader_abi.rs, src/insn.rs): short local names for the ones decoded with.
_STACK_SZ = _core.LOADER_STACK_SIZE
_BTF_FD = _core.LOADER_STACK_BTF_FD
_INNER_MAP_FD = _core.LOADER_STACK_INNER_MAP_FD
_PROG_FD0 = _core.LOADER_STACK_PROG_FDS
# the skeleton ctx (the core's layout): struct bpf_loader_ctx, then the map descriptors
# (fields: max_entries override, initial value), then the prog descriptors
_CTX_HDR, _MAP_DESC, _PROG_DESC = _core.LOADER_CTX_SIZE, _core.MAP_DESC_SIZE, _core.PROG_DESC_SIZE
_DESC_MAX_ENTRIES, _DESC_INITIAL_VALUE = _core.MAP_DESC_MAX_ENTRIES, _core.MAP_DESC_INITIAL_VALUE
_CTX_FLAGS = _core.LOADER_CTX_FLAGS
# (attr field, size, ctx field): the log options a loader copies into BTF_LOAD and PROG_LOAD
_BTF_LOG_MOVES = ((_core.BTF_LOAD_BTF_LOG_LEVEL, 4, _core.LOADER_CTX_LOG_LEVEL),
                  (_core.BTF_LOAD_BTF_LOG_SIZE, 4, _core.LOADER_CTX_LOG_SIZE),
                  (_core.BTF_LOAD_BTF_LOG_BUF, 8, _core.LOADER_CTX_LOG_BUF))
_PROG_LOG_MOVES = ((_core.PROG_LOAD_LOG_LEVEL, 4, _core.LOADER_CTX_LOG_LEVEL),
                   (_core.PROG_LOAD_LOG_SIZE, 4, _core.LOADER_CTX_LOG_SIZE),
                   (_core.PROG_LOAD_LOG_BUF, 8, _core.LOADER_CTX_LOG_BUF))
_CLEANUP_LABEL = _core.LOADER_CLEANUP_LABEL
# fd_array: map slots (one per map beyond the minimum), then the kfunc BTF fd slots; more
# programs than the stack has slots for keep their fds in the blob right after it
# (beyond libbpf 1.5)
_MAX_USED_MAPS = _core.LOADER_MIN_MAP_SLOTS
_MAX_KFUNC_DESCS = _core.LOADER_KFUNC_SLOTS
_MAX_STACK_PROGS = _core.LOADER_STACK_PROGS

# helpers
_H_PROBE_READ_KERNEL, _H_COPY_FROM_USER = _core.FN_PROBE_READ_KERNEL, _core.FN_COPY_FROM_USER
_H_SYS_BPF, _H_SYS_CLOSE = _core.FN_SYS_BPF, _core.FN_SYS_CLOSE
_H_FIND_BY_NAME_KIND, _H_KALLSYMS = _core.FN_BTF_FIND_BY_NAME_KIND, _core.FN_KALLSYMS_LOOKUP_NAME
_HELPERS = {
    _core.FN_TRACE_PRINTK: "trace_printk", _H_PROBE_READ_KERNEL: "probe_read_kernel",
    _H_COPY_FROM_USER: "copy_from_user", _H_SYS_BPF: "sys_bpf",
    _H_FIND_BY_NAME_KIND: "btf_find_by_name_kind", _H_SYS_CLOSE: "sys_close",
    _H_KALLSYMS: "kallsyms_lookup_name",
}
_BTF_KINDS = {_core.BTF_KIND_STRUCT: "struct", _core.BTF_KIND_TYPEDEF: "typedef",
              _core.BTF_KIND_FUNC: "func", _core.BTF_KIND_VAR: "var"}
#: what a ksym relocation looks up: a BTF func or var, or (0) a typeless kallsyms name
_KSYM_KINDS = {_core.BTF_KIND_FUNC: "func", _core.BTF_KIND_VAR: "var", 0: "kallsyms"}

# bpf commands used by the loader
_BTF_LOAD, _MAP_CREATE, _PROG_LOAD = _core.BPF_BTF_LOAD, _core.BPF_MAP_CREATE, _core.BPF_PROG_LOAD
_MAP_UPDATE, _MAP_FREEZE = _core.BPF_MAP_UPDATE_ELEM, _core.BPF_MAP_FREEZE

# opcodes: class | op | source
_MOV64_IMM = _core.BPF_ALU64 | _core.BPF_MOV | _core.BPF_K
_MOV64_REG = _core.BPF_ALU64 | _core.BPF_MOV | _core.BPF_X
_ADD64_IMM = _core.BPF_ALU64 | _core.BPF_ADD | _core.BPF_K
_RSH64_IMM = _core.BPF_ALU64 | _core.BPF_RSH | _core.BPF_K
_AND32_IMM = _core.BPF_ALU | _core.BPF_AND | _core.BPF_K
_JA, _JEQ, _JNE, _JSET, _JSGE, _JSLT, _JSLE = (
    _core.BPF_JMP | op | _core.BPF_K
    for op in (_core.BPF_JA, _core.BPF_JEQ, _core.BPF_JNE, _core.BPF_JSET, _core.BPF_JSGE,
               _core.BPF_JSLT, _core.BPF_JSLE))
#: ``gotol`` (BPF_JMP32 | BPF_JA, cpu v4): the offset is the 32-bit imm. A long loader's
#: prologue jump, and its error branches out of 16-bit reach of the cleanup label, which
#: read ``if r7 s>= 0 goto +1; gotol cleanup`` (beyond libbpf 1.5, which refuses them)
_GOTOL = _core.BPF_GOTOL
_CALL, _EXIT, _LD_IMM64 = _core.BPF_CALL, _core.BPF_EXIT, _core.BPF_LD_IMM64
_SZ = {4: _core.BPF_W, 2: _core.BPF_H, 1: _core.BPF_B, 8: _core.BPF_DW}
_SZ_OF = {v: k for k, v in _SZ.items()}
_LDX, _ST, _STX = (cls | _core.BPF_MEM for cls in (_core.BPF_LDX, _core.BPF_ST, _core.BPF_STX))
#: the longest kernel name of a map or program (the attrs' names are NUL-terminated)
_NAME_MAX = _core.BPF_OBJ_NAME_LEN - 1
#: ``struct bpf_insn``: its size, and where its fields sit in it (``ld_imm64``'s upper half:
#: the second instruction's imm), which ksym / kfunc relocations patch
_INSN_SZ, _IMM_OFF = _core.INSN_SIZE, _core.INSN_IMM_OFFSET
_REGS_OFF, _OFF_OFF, _IMM_HI_OFF = (_core.INSN_REGS_OFFSET, _core.INSN_OFF_OFFSET,
                                    _core.LD_IMM64_IMM_HI_OFFSET)
#: ld_imm64's src: the value at an offset into the map of index imm (the data blob's map)
_PSEUDO_MAP_IDX_VALUE = _core.BPF_PSEUDO_MAP_IDX_VALUE


class LoaderDecodeError(BpfgenError):
    """The loader does not have the shape libbpf 1.5's gen_loader emits."""

    def __init__(self, reason: str, insn: int | None = None) -> None:
        where = "" if insn is None else f"insn {insn}: "
        super().__init__(f"loader: {where}{reason}")
        self.object = "loader"
        self.section = None
        self.offset = insn
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class AttachTarget:
    """The run-time BTF lookup of a BTF-attach program's target."""

    first_insn: int
    name: str
    kind: int
    kind_name: str


@dataclass(frozen=True)
class KsymRelo:
    """One ksym/kfunc relocation: a run-time lookup patching one program insn.

    ``kind`` is ``kfunc`` (call), ``ksym`` (typed ld_imm64, VAR or FUNC) or
    ``typeless`` (kallsyms address). ``strong`` is None where the code does not
    tell (typeless lookups, repeated uses). ``repeat_of`` is the program insn of
    the first use the values are copied from; ``fd_slot`` the fd_array index a
    kfunc's module BTF fd goes to."""

    first_insn: int
    last_insn: int
    name: str
    kind: str
    btf_kind: int
    insn: int
    patched_insn: str
    strong: bool | None
    repeat_of: int | None
    fd_slot: int | None


@dataclass(frozen=True)
class BtfLoad:
    op: ClassVar[str] = "BTF_LOAD"
    first_insn: int
    last_insn: int
    attr: int
    btf: int
    size: int


@dataclass(frozen=True)
class MapCreate:
    """``index`` is the map's ctx/fd_array slot, -1 for a map-in-map inner map
    (created, used as template, closed). ``vmlinux_value_type`` is, for a struct_ops
    map, the kernel value struct (``bpf_struct_ops_<type>``) whose vmlinux BTF id the
    loader looks up and stores as ``btf_vmlinux_value_type_id``, else None.
    ``map_extra_from_ctx``: an ARENA map holding ``__arena`` globals without a
    ``map_extra`` of its own; the loader takes its user address (``map_extra``) from the
    map descriptor's ``initial_value`` when nonzero, where the skeleton stores an address
    range it reserved (``map_extra`` is then 0 in the blob)."""

    op: ClassVar[str] = "MAP_CREATE"
    first_insn: int
    last_insn: int
    attr: int
    index: int
    name: str
    kernel_name: str
    type: int
    type_name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    numa_node: int
    ifindex: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int
    uses_btf_fd: bool
    uses_inner_map_fd: bool
    max_entries_from_ctx: bool
    vmlinux_value_type: str | None = None
    map_extra_from_ctx: bool = False


@dataclass(frozen=True)
class MapUpdate:
    """Store the initial image (key 0) of an internal map; the skeleton's
    ``initial_value`` replaces the blob's image when set."""

    op: ClassVar[str] = "MAP_UPDATE"
    first_insn: int
    last_insn: int
    attr: int
    map_index: int
    map_name: str
    value: int
    value_size: int
    key: int


@dataclass(frozen=True)
class MapFreeze:
    op: ClassVar[str] = "MAP_FREEZE"
    first_insn: int
    last_insn: int
    attr: int
    map_index: int
    map_name: str


@dataclass(frozen=True)
class MapPopulate:
    """Map-in-map static slot: outer[slot] = fd of map ``inner_index``."""

    op: ClassVar[str] = "MAP_POPULATE"
    first_insn: int
    last_insn: int
    attr: int
    map_index: int
    map_name: str
    slot: int
    inner_index: int
    inner_name: str


@dataclass(frozen=True)
class ProgArrayUpdate:
    """Prog-array static slot (``.values``; beyond libbpf 1.5): map[slot] = fd of the
    program loaded ``prog_index``-th, copied into the 4-byte ``value`` first."""

    op: ClassVar[str] = "PROG_ARRAY_UPDATE"
    first_insn: int
    last_insn: int
    attr: int
    map_index: int
    map_name: str
    slot: int
    prog_index: int
    prog_name: str
    value: int


@dataclass(frozen=True)
class SkippedMap:
    """A map of the object the loader does not create (``SEC("?.struct_ops")``): its
    fd_array slot and skeleton fd stay 0. ``name`` is the skeleton's, "" if unknown."""

    index: int
    name: str


@dataclass(frozen=True)
class ProgLoad:
    """``index`` is the load order (the loader's prog fd slot), ``ctx_slot`` the
    skeleton prog desc the epilogue hands the fd to (bpftool: the same; bpfgen_fast:
    the program's own slot when a ``SEC("?...")`` program is not loaded)."""

    op: ClassVar[str] = "PROG_LOAD"
    first_insn: int
    last_insn: int
    attr: int
    index: int
    ctx_slot: int
    name: str
    kernel_name: str
    type: int
    type_name: str
    expected_attach_type: int
    attach_type_name: str
    prog_flags: int
    ifindex: int
    license: str
    insns: int
    insn_cnt: int
    func_info_cnt: int
    func_info_rec_size: int
    line_info_cnt: int
    line_info_rec_size: int
    core_relo_cnt: int
    attach_btf_id: int
    attach_target: AttachTarget | None
    relocations: tuple[KsymRelo, ...]


@dataclass(frozen=True)
class Finish:
    op: ClassVar[str] = "FINISH"
    first_insn: int
    last_insn: int
    prog_fds: int
    map_fds: int


@dataclass(frozen=True)
class Cleanup:
    """The error path (insn 7): close the BTF fd, the inner-map fd, every prog
    fd slot and every map fd slot, return the error. ``prog_fd_blob`` is the data
    blob offset of the prog fd slots when they are not on the loader's stack (more
    than 32 programs; beyond libbpf 1.5), else None."""

    op: ClassVar[str] = "CLEANUP"
    first_insn: int
    last_insn: int
    prog_fd_slots: int
    map_fd_slots: int
    prog_fd_blob: int | None = None


Step = Union[
    BtfLoad, MapCreate, MapUpdate, MapFreeze, MapPopulate, ProgLoad, ProgArrayUpdate, Finish
]
_STEP_TYPES: dict[str, type[Any]] = {
    t.op: t
    for t in (BtfLoad, MapCreate, MapUpdate, MapFreeze, MapPopulate, ProgLoad, ProgArrayUpdate,
              Finish)
}


def _step_dict(step: Step | Cleanup) -> dict[str, Any]:
    return {"op": step.op, **asdict(step)}


def _step_from(d: dict[str, Any]) -> Step:
    cls = _STEP_TYPES.get(str(d.get("op")))
    if cls is None:
        raise LoaderDecodeError(f"unknown step op {d.get('op')!r} in JSON")
    kw = _kwargs(cls, d)
    if cls is ProgLoad:
        t = kw["attach_target"]
        kw["attach_target"] = None if t is None else AttachTarget(**_kwargs(AttachTarget, t))
        kw["relocations"] = tuple(KsymRelo(**_kwargs(KsymRelo, r)) for r in kw["relocations"])
    step: Step = cls(**kw)
    return step


def _kwargs(cls: type[Any], d: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` from ``d``; a field with a default may be absent
    (documents written before it existed)."""
    try:
        return {
            f.name: d[f.name] for f in fields(cls) if f.name in d or f.default is MISSING
        }
    except (KeyError, TypeError) as e:
        raise LoaderDecodeError(f"bad {cls.__name__} record in JSON: {e}") from None


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected a boolean, got {v!r}")
    return v


@dataclass(frozen=True)
class Explanation:
    """What a loader will do, in execution order (``steps``), plus its error path.
    ``nr_maps`` counts every map slot, ``skipped_maps`` the maps among them the loader
    does not create."""

    insn_cnt: int
    data_size: int
    nr_maps: int
    nr_prog_slots: int
    ctx_size: int
    steps: tuple[Step, ...]
    cleanup: Cleanup
    disasm: tuple[str, ...] = field(default=())
    skipped_maps: tuple[SkippedMap, ...] = field(default=())
    #: the loader (its instructions and the records it hands the kernel) is for a
    #: big-endian target; documents written before this field existed load as False
    big_endian: bool = False

    @property
    def maps(self) -> tuple[MapCreate, ...]:
        """MAP_CREATE records of the object's maps (inner maps excluded), in ctx order;
        the maps the loader does not create are in ``skipped_maps``."""
        return tuple(s for s in self.steps if isinstance(s, MapCreate) and s.index >= 0)

    @property
    def programs(self) -> tuple[ProgLoad, ...]:
        """PROG_LOAD records in load order (= prog fd slot order)."""
        return tuple(s for s in self.steps if isinstance(s, ProgLoad))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "insn_cnt": self.insn_cnt,
            "data_size": self.data_size,
            "nr_maps": self.nr_maps,
            "nr_prog_slots": self.nr_prog_slots,
            "ctx_size": self.ctx_size,
            "big_endian": self.big_endian,
            "steps": [_step_dict(s) for s in self.steps],
            "cleanup": _step_dict(self.cleanup),
            "skipped_maps": [asdict(m) for m in self.skipped_maps],
            "disasm": list(self.disasm),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        if d.get("format") != FORMAT:
            raise LoaderDecodeError(f"not a {FORMAT} document")
        try:
            c = dict(d["cleanup"])
            c.pop("op", None)
            return cls(
                insn_cnt=int(d["insn_cnt"]),
                data_size=int(d["data_size"]),
                nr_maps=int(d["nr_maps"]),
                nr_prog_slots=int(d["nr_prog_slots"]),
                ctx_size=int(d["ctx_size"]),
                big_endian=_bool(d.get("big_endian", False)),
                steps=tuple(_step_from(s) for s in d["steps"]),
                cleanup=Cleanup(**_kwargs(Cleanup, c)),
                disasm=tuple(str(x) for x in d.get("disasm", ())),
                skipped_maps=tuple(
                    SkippedMap(**_kwargs(SkippedMap, m)) for m in d.get("skipped_maps", ())
                ),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise LoaderDecodeError(f"bad explanation JSON: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        try:
            d = json.loads(text)
        except ValueError as e:
            raise LoaderDecodeError(f"bad explanation JSON: {e}") from None
        if not isinstance(d, dict):
            raise LoaderDecodeError("bad explanation JSON: not an object")
        return cls.from_dict(d)

    def to_text(self) -> str:
        return render_text(self)


# --------------------------------------------------------------------------------------------
# Instruction decoding


@dataclass(frozen=True)
class _Insn:
    idx: int  # slot index
    code: int
    dst: int
    src: int
    off: int
    imm: int
    imm2: int | None  # second slot imm of ld_imm64

    @property
    def slots(self) -> int:
        return 2 if self.imm2 is not None else 1


def _order(big_endian: bool) -> str:
    """The :mod:`struct` byte-order prefix of a target."""
    return ">" if big_endian else "<"


def _unpack_insn(raw: bytes, at: int, big_endian: bool) -> tuple[int, int, int, int, int]:
    """-> (code, dst, src, off, imm) of the instruction at byte ``at``: the regs byte is
    ``src << 4 | dst`` little-endian, ``dst << 4 | src`` big-endian (libbpf's
    ``bpf_insn_bswap``); off and imm are in the target's byte order."""
    code, regs, off, imm = struct.unpack_from(_order(big_endian) + "BBhi", raw, at)
    if big_endian:
        return code, regs >> 4, regs & 0xF, off, imm
    return code, regs & 0xF, regs >> 4, off, imm


def loader_is_big_endian(insns: bytes) -> bool:
    """The byte order of a generated loader, from its first instruction ``r6 = r1``
    (code 0xbf; regs byte 0x16 little-endian, 0x61 big-endian). Anything else is
    taken as little-endian (and fails to decode as a loader)."""
    return len(insns) >= 2 and insns[0] == _MOV64_REG and insns[1] == 0x61


def _decode_insns(raw: bytes, big_endian: bool = False) -> list[_Insn]:
    if len(raw) % _INSN_SZ:
        raise LoaderDecodeError(f"instruction blob size {len(raw)} is not a multiple of {_INSN_SZ}")
    n = len(raw) // _INSN_SZ
    out: list[_Insn] = []
    i = 0
    while i < n:
        code, dst, src, off, imm = _unpack_insn(raw, _INSN_SZ * i, big_endian)
        if code == _LD_IMM64:
            if i + 1 >= n:
                raise LoaderDecodeError("truncated ld_imm64", i)
            c2, d2, s2, o2, imm2 = _unpack_insn(raw, _INSN_SZ * (i + 1), big_endian)
            if c2 or d2 or s2 or o2:
                raise LoaderDecodeError("malformed second half of ld_imm64", i)
            out.append(_Insn(i, code, dst, src, off, imm, imm2))
            i += 2
        else:
            out.append(_Insn(i, code, dst, src, off, imm, None))
            i += 1
    return out


_ALU_OPS = {_core.BPF_ADD: "+=", _core.BPF_SUB: "-=", _core.BPF_MUL: "*=", _core.BPF_DIV: "/=",
            _core.BPF_OR: "|=", _core.BPF_AND: "&=", _core.BPF_LSH: "<<=", _core.BPF_RSH: ">>=",
            _core.BPF_MOD: "%=", _core.BPF_XOR: "^=", _core.BPF_MOV: "=", _core.BPF_ARSH: "s>>="}
_JMP_OPS = {_core.BPF_JEQ: "==", _core.BPF_JGT: ">", _core.BPF_JGE: ">=", _core.BPF_JSET: "&",
            _core.BPF_JNE: "!=", _core.BPF_JSGT: "s>", _core.BPF_JSGE: "s>=", _core.BPF_JLT: "<",
            _core.BPF_JLE: "<=", _core.BPF_JSLT: "s<", _core.BPF_JSLE: "s<="}
_SIZE_NAMES = {_SZ[n]: f"u{8 * n}" for n in (4, 2, 1, 8)}
# an opcode's fields
_CLASS, _OP, _SIZE, _MODE, _SRC_X = (_core.BPF_CLASS_MASK, _core.BPF_OP_MASK, _core.BPF_SIZE_MASK,
                                     _core.BPF_MODE_MASK, _core.BPF_SRC_MASK)


def _fmt_off(off: int) -> str:
    return f"+{off}" if off >= 0 else str(off)


def _disasm_one(i: _Insn, blob: bool = True) -> str:
    cls = i.code & _CLASS
    if i.code == _LD_IMM64:
        assert i.imm2 is not None
        if i.src == _PSEUDO_MAP_IDX_VALUE and blob:
            return f"r{i.dst} = &blob[{i.imm2}]"
        if i.src == _PSEUDO_MAP_IDX_VALUE:
            return f"r{i.dst} = map[idx:{i.imm}]+{i.imm2} ll"
        value = (i.imm & 0xFFFFFFFF) | ((i.imm2 & 0xFFFFFFFF) << 32)
        pseudo = {_core.BPF_PSEUDO_MAP_FD: " (map fd)", _core.BPF_PSEUDO_MAP_VALUE: " (map value)",
                  _core.BPF_PSEUDO_BTF_ID: " (btf id)", _core.BPF_PSEUDO_FUNC: " (func)",
                  _core.BPF_PSEUDO_MAP_IDX: " (map idx)"}.get(i.src, "")
        return f"r{i.dst} = {value:#x} ll{pseudo}"
    if cls in (_core.BPF_ALU, _core.BPF_ALU64):
        op = i.code & _OP
        r = "r" if cls == _core.BPF_ALU64 else "w"
        if op == _core.BPF_NEG:
            return f"{r}{i.dst} = -{r}{i.dst}"
        if op == _core.BPF_END:
            return f"{r}{i.dst} = {'be' if i.code & _SRC_X else 'le'}{i.imm} {r}{i.dst}"
        sym = _ALU_OPS.get(op, f"alu{op:#x}")
        rhs = f"{r}{i.src}" if i.code & _SRC_X else str(i.imm)
        return f"{r}{i.dst} {sym} {rhs}"
    if cls in (_core.BPF_JMP, _core.BPF_JMP32):
        op = i.code & _OP
        if op == _CALL & _OP:
            what = _HELPERS.get(i.imm, "")
            if i.src == _core.BPF_PSEUDO_CALL:
                return f"call pc{_fmt_off(i.imm)}"
            if i.src == _core.BPF_PSEUDO_KFUNC_CALL:
                return f"call kfunc {i.imm}"
            return f"call {i.imm}" + (f" ({what})" if what else "")
        if op == _EXIT & _OP:
            return "exit"
        if i.code == _GOTOL:
            return f"gotol pc{_fmt_off(i.imm)} -> {i.idx + 1 + i.imm}"
        target = i.idx + 1 + i.off
        if op == _core.BPF_JA:
            return f"goto pc{_fmt_off(i.off)} -> {target}"
        r = "r" if cls == _core.BPF_JMP else "w"
        rhs = f"{r}{i.src}" if i.code & _SRC_X else str(i.imm)
        return f"if {r}{i.dst} {_JMP_OPS.get(op, '?')} {rhs} goto pc{_fmt_off(i.off)} -> {target}"
    size = _SIZE_NAMES[i.code & _SIZE]
    mode = i.code & _MODE
    if cls == _core.BPF_LDX and mode == _core.BPF_MEM:
        return f"r{i.dst} = *({size} *)(r{i.src} {_fmt_off(i.off)})"
    if cls == _core.BPF_ST and mode == _core.BPF_MEM:
        return f"*({size} *)(r{i.dst} {_fmt_off(i.off)}) = {i.imm}"
    if cls == _core.BPF_STX and mode == _core.BPF_MEM:
        return f"*({size} *)(r{i.dst} {_fmt_off(i.off)}) = r{i.src}"
    if cls == _core.BPF_STX and mode == _core.BPF_ATOMIC:
        return f"atomic({i.imm:#x}) *({size} *)(r{i.dst} {_fmt_off(i.off)}), r{i.src}"
    return f"(code {i.code:#04x} dst r{i.dst} src r{i.src} off {i.off} imm {i.imm})"


def uses_gotol(insns: bytes, big_endian: bool = False) -> bool:
    """Whether a loader has jumps in the long form (``gotol``: cpu v4, Linux 6.6 or
    later), which only loaders too long for libbpf 1.5's 16-bit jumps have."""
    return any(i.code == _GOTOL for i in _decode_insns(insns, big_endian))


def disasm(insns: bytes, *, blob: bool = True, big_endian: bool | None = None) -> list[str]:
    """Disassemble BPF instructions, one line per insn (``ld_imm64`` takes two
    slots). With ``blob`` (the loader's own code), ``src=6`` pairs print as blob
    addresses. ``big_endian``: the instructions' byte order; None (the default) reads
    it off a loader's first instruction (see :func:`loader_is_big_endian`) with
    ``blob``, else takes little-endian (a program's code does not tell)."""
    if big_endian is None:
        big_endian = blob and loader_is_big_endian(insns)
    be = big_endian
    return [f"{i.idx:5}: ({i.code:02x}) {_disasm_one(i, blob)}"
            for i in _decode_insns(insns, be)]


class _Cursor:
    def __init__(self, insns: list[_Insn], data: bytes, big_endian: bool = False) -> None:
        self.insns = insns
        self.data = data
        self.pos = 0
        self.big_endian = big_endian
        #: :mod:`struct` byte-order prefix of the data blob's kernel-read records
        self.order = _order(big_endian)

    def unpack(self, fmt: str, off: int) -> tuple[Any, ...]:
        """``struct.unpack_from`` of blob fields in the target's byte order."""
        return struct.unpack_from(self.order + fmt, self.data, off)

    def peek(self, k: int = 0) -> _Insn | None:
        p = self.pos + k
        return self.insns[p] if p < len(self.insns) else None

    @property
    def here(self) -> int:
        i = self.peek()
        return i.idx if i is not None else (self.insns[-1].idx + self.insns[-1].slots
                                            if self.insns else 0)

    @property
    def last(self) -> int:
        """Slot index of the last consumed instruction (its final slot)."""
        prev = self.insns[self.pos - 1]
        return prev.idx + prev.slots - 1

    def take(
        self,
        code: int,
        what: str,
        *,
        dst: int | None = None,
        src: int | None = None,
        off: int | None = None,
        imm: int | None = None,
    ) -> _Insn:
        i = self.peek()
        if i is None:
            raise LoaderDecodeError(f"expected {what}, found the end of the program", self.here)
        if (
            i.code != code
            or (dst is not None and i.dst != dst)
            or (src is not None and i.src != src)
            or (off is not None and i.off != off)
            or (imm is not None and i.imm != imm)
        ):
            raise LoaderDecodeError(f"expected {what}, found `{_disasm_one(i)}`", i.idx)
        self.pos += 1
        return i

    def is_(
        self,
        code: int,
        k: int = 0,
        *,
        dst: int | None = None,
        src: int | None = None,
        off: int | None = None,
        imm: int | None = None,
    ) -> bool:
        i = self.peek(k)
        return (
            i is not None
            and i.code == code
            and (dst is None or i.dst == dst)
            and (src is None or i.src == src)
            and (off is None or i.off == off)
            and (imm is None or i.imm == imm)
        )

    def is_ldb(self, reg: int, k: int = 0) -> bool:
        return self.is_(_LD_IMM64, k, dst=reg, src=_PSEUDO_MAP_IDX_VALUE, imm=0)

    # building blocks ------------------------------------------------------------------------

    def ldb(self, reg: int) -> int:
        i = self.take(_LD_IMM64, f"r{reg} = &blob[...]", dst=reg, src=_PSEUDO_MAP_IDX_VALUE, imm=0)
        assert i.imm2 is not None
        if not 0 <= i.imm2 <= len(self.data):
            raise LoaderDecodeError(f"blob offset {i.imm2} outside the data blob", i.idx)
        return i.imm2

    def mov_imm(self, reg: int, imm: int | None = None) -> int:
        return self.take(_MOV64_IMM, f"r{reg} = imm", dst=reg, src=0, imm=imm).imm

    def mov_reg(self, dst: int, src: int) -> None:
        self.take(_MOV64_REG, f"r{dst} = r{src}", dst=dst, src=src)

    def call(self, helper: int) -> None:
        self.take(_CALL, f"call {_HELPERS.get(helper, helper)}", src=0, imm=helper)

    def ldx(self, size: int, dst: int, src: int, off: int | None = None) -> _Insn:
        return self.take(_LDX | _SZ[size], f"r{dst} = *(u{8 * size} *)(r{src} ...)", dst=dst,
                         src=src, off=off)

    def ldx_any(self, dst: int, src: int, off: int | None = None) -> tuple[int, int]:
        """ldx of any size; returns (size, off)."""
        i = self.peek()
        if i is None or i.code & ~_SIZE != _LDX or i.dst != dst or i.src != src or (
            off is not None and i.off != off
        ):
            raise LoaderDecodeError(
                f"expected r{dst} = *(r{src} ...)",
                self.here if i is None else i.idx,
            )
        self.pos += 1
        return _SZ_OF[i.code & _SIZE], i.off

    def stx(self, size: int, dst: int, src: int, off: int) -> None:
        self.take(_STX | _SZ[size], f"*(u{8 * size} *)(r{dst} {_fmt_off(off)}) = r{src}",
                  dst=dst, src=src, off=off)

    def st(self, size: int, dst: int, off: int, imm: int | None = None) -> int:
        return self.take(_ST | _SZ[size], f"*(u{8 * size} *)(r{dst} {_fmt_off(off)}) = imm",
                         dst=dst, src=0, off=off, imm=imm).imm

    def jmp(self, code: int, dst: int, imm: int, off: int) -> None:
        self.take(code, f"conditional jump on r{dst} ({code:#x}, {imm}, {off:+})", dst=dst,
                  src=0, imm=imm, off=off)

    def ja(self, off: int) -> None:
        self.take(_JA, f"goto {off:+}", dst=0, src=0, off=off, imm=0)

    def goto(self, what: str) -> int:
        """An unconditional jump, ``ja`` or (beyond 16 bits) ``gotol``; -> its target."""
        if self.is_(_GOTOL):
            i = self.take(_GOTOL, what, dst=0, src=0, off=0)
            return i.idx + 1 + i.imm
        i = self.take(_JA, what, dst=0, src=0, imm=0)
        return i.idx + 1 + i.off

    def ctx2blob(self) -> tuple[int, int, int, bool]:
        """-> (blob_off, size, ctx_off, nonzero_check)"""
        size, ctx_off = self.ldx_any(0, 6)
        nz = self.is_(_JEQ, dst=0, imm=0, off=3)
        if nz:
            self.pos += 1
        off = self.ldb(1)
        self.stx(size, 1, 0, 0)
        return off, size, ctx_off, nz

    def stack2blob(self) -> tuple[int, int, int]:
        size, soff = self.ldx_any(0, 10)
        off = self.ldb(1)
        self.stx(size, 1, 0, 0)
        return off, size, soff

    def blob2blob(self) -> tuple[int, int, int]:
        """-> (dst_off, size, src_off)"""
        src = self.ldb(2)
        size, _ = self.ldx_any(0, 2, 0)
        dst = self.ldb(1)
        self.stx(size, 1, 0, 0)
        return dst, size, src

    def blob2ctx(self) -> tuple[int, int, int]:
        """-> (ctx_off, size, blob_off)"""
        src = self.ldb(1)
        size, _ = self.ldx_any(0, 1, 0)
        i = self.peek()
        self.stx(size, 6, 0, i.off if i is not None else 0)
        return self.insns[self.pos - 1].off, size, src

    def stack2ctx(self) -> tuple[int, int, int]:
        """-> (ctx_off, size, stack_off)"""
        size, soff = self.ldx_any(0, 10)
        i = self.peek()
        self.stx(size, 6, 0, i.off if i is not None else 0)
        return self.insns[self.pos - 1].off, size, soff

    def rel_store(self) -> tuple[int, int]:
        """-> (dst_off, data_off): blob[dst] = &blob[data]"""
        data = self.ldb(0)
        dst = self.ldb(1)
        self.stx(8, 1, 0, 0)
        return dst, data

    def sys_bpf(self, cmd: int | None = None) -> tuple[int, int, int]:
        """-> (cmd, attr, size)"""
        c = self.mov_imm(1, cmd)
        attr = self.ldb(2)
        size = self.mov_imm(3)
        self.call(_H_SYS_BPF)
        self.mov_reg(7, 0)
        return c, attr, size

    def btf_lookup(self) -> tuple[str, int, int]:
        """``r7 = btf_find_by_name_kind(&blob[name], len, kind, 0)`` -> (name, kind, insn)."""
        at = self.here
        name_off = self.ldb(1)
        length = self.mov_imm(2)
        kind = self.mov_imm(3)
        self.mov_imm(4, 0)
        self.call(_H_FIND_BY_NAME_KIND)
        self.mov_reg(7, 0)
        return self.cstr(name_off, length, at), kind, at

    def check_err(self) -> None:
        """``if r7 s< 0 goto cleanup``, or out of 16-bit reach of the cleanup label
        ``if r7 s>= 0 goto +1; gotol cleanup``."""
        if self.at_long_check_err():
            self.pos += 1
            at = self.here
            target = self.goto("gotol cleanup")
        else:
            i = self.take(_JSLT, "if r7 s< 0 goto cleanup", dst=7, src=0, imm=0)
            at, target = i.idx, i.idx + 1 + i.off
        if target != _CLEANUP_LABEL:
            raise LoaderDecodeError(f"error branch goes to insn {target}, not the cleanup label",
                                    at)

    def at_long_check_err(self) -> bool:
        return self.is_(_JSGE, dst=7, src=0, imm=0, off=1) and self.is_(_GOTOL, 1)

    def maybe_check_err(self) -> bool:
        if self.is_(_JSLT, dst=7, src=0, imm=0) or self.at_long_check_err():
            self.check_err()
            return True
        return False

    def close_tail(self) -> None:
        self.jmp(_JSLE, 1, 0, 2)
        self.mov_reg(9, 1)
        self.call(_H_SYS_CLOSE)

    def close_stack(self, soff: int) -> None:
        self.ldx(4, 1, 10, soff)
        self.close_tail()

    def close_blob(self) -> int:
        off = self.ldb(0)
        self.ldx(4, 1, 0, 0)
        self.close_tail()
        return off

    def cstr(self, off: int, size: int | None = None, at: int | None = None) -> str:
        data = self.data
        end = data.find(b"\0", off)
        if end < 0 or (size is not None and end != off + size - 1):
            raise LoaderDecodeError(f"no NUL-terminated string at blob offset {off}", at)
        return data[off:end].decode(errors="replace")

    def u32(self, off: int, at: int | None = None) -> int:
        if off < 0 or off + 4 > len(self.data):
            raise LoaderDecodeError(f"blob read at {off} out of range", at)
        v: int = self.unpack("I", off)[0]
        return v

    def u64(self, off: int, at: int | None = None) -> int:
        if off < 0 or off + 8 > len(self.data):
            raise LoaderDecodeError(f"blob read at {off} out of range", at)
        v: int = self.unpack("Q", off)[0]
        return v


def _expect(cond: bool, what: str, at: int | None) -> None:
    if not cond:
        raise LoaderDecodeError(what, at)


class _Decoder:
    def __init__(
        self,
        data: bytes,
        insns: bytes,
        map_names: Sequence[str],
        prog_names: Sequence[str],
        big_endian: bool = False,
    ) -> None:
        self.big_endian = big_endian
        self.c = _Cursor(_decode_insns(insns, big_endian), data, big_endian)
        self.data = data
        self.insn_cnt = len(insns) // _INSN_SZ
        self.map_names = list(map_names)
        self.prog_names = list(prog_names)
        self.maps: dict[int, str] = {}
        self.map_types: dict[int, int] = {}
        #: one past the highest map slot created so far (slots of maps not created stay 0)
        self.nr_maps = 0
        #: map fd slots the cleanup closes (every map of the object)
        self.map_fd_slots = 0
        self.nr_progs = 0
        self.btf_loaded = False
        self.prog_slots: list[int] = []
        self.prog_kernel_names: list[str] = []
        #: blob offset of the prog fd slots (more than 32 programs), None: on the stack
        self.prog_fd_blob: int | None = None
        self.nr_prog_fd_slots = 0

    # ----------------------------------------------------------------------------------------

    def run(self) -> tuple[list[Step], Cleanup, int, int]:
        c = self.c
        if not c.insns:
            raise LoaderDecodeError("empty instruction blob")
        # prologue
        c.mov_reg(6, 1)
        c.mov_reg(1, 10)
        c.take(_ADD64_IMM, f"r1 += {-_STACK_SZ}", dst=1, imm=-_STACK_SZ)
        c.mov_imm(2, _STACK_SZ)
        c.mov_imm(3, 0)
        c.call(_H_PROBE_READ_KERNEL)
        at = c.here
        target = c.goto("goto over the cleanup code")
        cleanup = self.parse_cleanup()
        _expect(target == c.here, f"prologue jumps to {target}, cleanup ends at {c.here}", at)
        steps: list[Step] = []
        while True:
            step = self.parse_step()
            steps.append(step)
            if isinstance(step, Finish):
                break
        if c.peek() is not None:
            raise LoaderDecodeError("instructions after the final exit", c.here)
        steps = self.assign_prog_slots(steps)
        _expect(self.nr_progs <= cleanup.prog_fd_slots,
                f"{self.nr_progs} programs loaded, only {cleanup.prog_fd_slots} fd slots", None)
        return steps, cleanup, cleanup.map_fd_slots, cleanup.prog_fd_slots

    def skipped_maps(self) -> tuple[SkippedMap, ...]:
        """The map slots no MAP_CREATE fills (maps the loader does not create)."""
        names = self.map_names
        return tuple(
            SkippedMap(k, names[k] if k < len(names) else "")
            for k in range(self.map_fd_slots)
            if k not in self.maps
        )

    def assign_prog_slots(self, steps: list[Step]) -> list[Step]:
        """Give each PROG_LOAD its ctx slot (from the epilogue) and its full name:
        the skeleton's name for that slot if it fits the 15-char kernel name, else
        the next skeleton name (in order) that does, else the kernel name."""
        out: list[Step] = []
        next_name = 0
        names_by_index: dict[int, str] = {}
        for s in steps:
            if isinstance(s, ProgLoad):
                slot = self.prog_slots[s.index]
                names = self.prog_names
                name = s.kernel_name
                if slot < len(names) and names[slot][:_NAME_MAX] == s.kernel_name:
                    name = names[slot]
                    next_name = slot + 1
                else:
                    for k in range(next_name, len(names)):
                        if names[k][:_NAME_MAX] == s.kernel_name:
                            name, next_name = names[k], k + 1
                            break
                s = replace(s, ctx_slot=slot, name=name)
                names_by_index[s.index] = name
            elif isinstance(s, ProgArrayUpdate):
                s = replace(s, prog_name=names_by_index[s.prog_index])
            out.append(s)
        return out

    def parse_cleanup(self) -> Cleanup:
        c = self.c
        first = c.here
        _expect(first == _CLEANUP_LABEL, "cleanup code does not start at insn 7", first)
        k = 0
        while c.is_(_LDX, dst=1, src=10, off=-_STACK_SZ + 4 * k):
            c.pos += 1
            c.jmp(_JSLE, 1, 0, 1)
            c.call(_H_SYS_CLOSE)
            k += 1
        _expect(k >= 2, "cleanup does not close the btf and inner map fds", c.here)
        nprogs = k - 2
        blob_at = c.here
        if k == 2 and c.is_ldb(0) and c.insns[c.pos].imm2 != 0:
            # more than 32 programs: their fd slots follow the fd_array in the blob
            base = c.close_blob()
            self.prog_fd_blob = base
            nprogs = 1
            while c.is_ldb(0) and c.insns[c.pos].imm2 == base + 4 * nprogs:
                c.close_blob()
                nprogs += 1
            _expect(nprogs > _MAX_STACK_PROGS,
                    f"{nprogs} prog fd slots in the blob, the stack holds up to "
                    f"{_MAX_STACK_PROGS}", blob_at)
        m = 0
        while c.is_ldb(0):
            at = c.here
            off = c.close_blob()
            _expect(off == 4 * m, f"cleanup closes fd_array slot at {off}, expected {4 * m}", at)
            m += 1
        if self.prog_fd_blob is not None:
            want = ((max(m, _MAX_USED_MAPS) + _MAX_KFUNC_DESCS) * 4 + 7) // 8 * 8
            _expect(self.prog_fd_blob == want,
                    f"prog fd slots at blob offset {self.prog_fd_blob}, the fd_array ends at "
                    f"{want}", blob_at)
            _expect(self.prog_fd_blob + 4 * nprogs <= len(self.data),
                    "prog fd slots outside the data blob", blob_at)
        c.mov_reg(0, 7)
        c.take(_EXIT, "exit")
        self.nr_prog_fd_slots = nprogs
        self.map_fd_slots = m
        return Cleanup(first, c.last, nprogs, m, self.prog_fd_blob)

    def parse_step(self) -> Step:
        c = self.c
        if c.is_(_LDX | _SZ[4], dst=0, src=6, off=8):
            return self.parse_btf()
        if c.is_(_LDX | _SZ[4], dst=1, src=10, off=_BTF_FD):
            return self.parse_finish()
        if self.at_prog_fd_copy():
            return self.parse_prog_array_update()
        if (
            c.is_(_LDX | _SZ[4], dst=0, src=10)
            or c.is_(_LDX | _SZ[4], dst=0, src=6)
            or c.is_(_LDX | _SZ[8], dst=0, src=6)  # map_extra from ctx
            or c.is_(_MOV64_IMM, dst=1, imm=_MAP_CREATE)
        ):
            return self.parse_map_create()
        if c.is_(_LDX | _SZ[8], dst=3, src=6):
            return self.parse_map_update()
        if c.is_ldb(2):
            return self.parse_freeze_or_populate()
        if c.is_ldb(0):
            return self.parse_prog_load()
        i = c.peek()
        if i is None:
            raise LoaderDecodeError("program ends without the final exit", c.here)
        raise LoaderDecodeError(f"unexpected `{_disasm_one(i)}` at the start of a step", i.idx)

    def at_prog_fd_copy(self) -> bool:
        """Whether the next insns copy a prog fd (from its stack or blob slot) to the blob."""
        c = self.c
        i = c.peek()
        if i is None:
            return False
        if self.prog_fd_blob is None:
            return c.is_(_LDX | _SZ[4], dst=0, src=10) and self.prog_fd_stack_slot(i.off)
        return c.is_ldb(2) and self.prog_fd_blob_slot(i.imm2)

    def prog_fd_stack_slot(self, soff: int) -> bool:
        """Whether ``r10 + soff`` is a prog fd slot on the stack."""
        return (self.prog_fd_blob is None and soff >= _PROG_FD0
                and (soff - _PROG_FD0) % 4 == 0
                and (soff - _PROG_FD0) // 4 < self.nr_prog_fd_slots)

    def prog_fd_blob_slot(self, off: int | None) -> bool:
        """Whether blob offset ``off`` is a prog fd slot in the blob."""
        base = self.prog_fd_blob
        return (base is not None and off is not None and off >= base
                and (off - base) % 4 == 0 and (off - base) // 4 < self.nr_prog_fd_slots)

    def prog_fd_index(self, where: str, off: int, at: int) -> int:
        """The load index whose fd slot is at stack offset / blob offset ``off``."""
        if where == "stack":
            ok, j = self.prog_fd_stack_slot(off), (off - _PROG_FD0) // 4
        else:
            base = self.prog_fd_blob
            ok, j = self.prog_fd_blob_slot(off), (off - (base or 0)) // 4
        _expect(ok, f"{where} offset {off} is not a prog fd slot", at)
        return j

    def store_prog_fd(self, j: int) -> None:
        """The end of a PROG_LOAD: keep the new fd in prog fd slot ``j``."""
        c = self.c
        at = c.here
        _expect(j < self.nr_prog_fd_slots,
                f"program {j} loaded, only {self.nr_prog_fd_slots} prog fd slots", at)
        if self.prog_fd_blob is None:
            c.stx(4, 10, 7, _PROG_FD0 + 4 * j)
            return
        off = c.ldb(1)
        c.stx(4, 1, 7, 0)
        _expect(off == self.prog_fd_blob + 4 * j,
                f"prog fd {j} stored at blob offset {off}, expected "
                f"{self.prog_fd_blob + 4 * j}", at)

    def map_name(self, idx: int, at: int) -> str:
        if idx not in self.maps:
            raise LoaderDecodeError(f"reference to map #{idx} before it is created", at)
        return self.maps[idx]

    def parse_btf(self) -> BtfLoad:
        c = self.c
        first = c.here
        moves = [c.ctx2blob() for _ in range(3)]
        dst, btf = c.rel_store()
        _, attr, size = c.sys_bpf(_BTF_LOAD)
        _expect(size == _core.BTF_LOAD_ATTR_SIZE, f"BTF_LOAD attr size {size}", first)
        _expect(
            moves == [(attr + f, n, ctx, False) for f, n, ctx in _BTF_LOG_MOVES]
            and dst == attr + _core.BTF_LOAD_BTF,
            "BTF_LOAD attr set-up does not match", first,
        )
        c.check_err()
        c.stx(4, 10, 7, _BTF_FD)
        btf_size = c.u32(attr + _core.BTF_LOAD_BTF_SIZE, first)
        _expect(btf + btf_size <= len(self.data), "BTF data outside the blob", first)
        self.btf_loaded = True
        return BtfLoad(first, c.last, attr, btf, btf_size)

    def parse_map_create(self) -> MapCreate:
        c = self.c
        first = c.here
        uses_btf = uses_inner = from_ctx = extra_from_ctx = False
        ctx_idx: int | None = None
        extra_idx: int | None = None
        pre: list[tuple[str, int]] = []
        if c.is_(_LDX | _SZ[4], dst=0, src=10, off=_BTF_FD):
            off, _, _ = c.stack2blob()
            pre.append(("btf_fd", off))
            uses_btf = True
        vtype: str | None = None
        if uses_btf and c.is_ldb(1):  # struct_ops: look the vmlinux value type up
            vtype, kind, at = c.btf_lookup()
            _expect(kind == _core.BTF_KIND_STRUCT,
                    f"struct_ops value type {vtype!r} looked up as BTF kind {kind}", at)
            c.check_err()
            off = c.ldb(0)
            c.stx(4, 0, 7, _core.MAP_CREATE_BTF_VMLINUX_VALUE_TYPE_ID)
            pre.append(("btf_vmlinux_value_type_id", off))
        if c.is_(_LDX | _SZ[4], dst=0, src=10, off=_INNER_MAP_FD):
            off, _, _ = c.stack2blob()
            pre.append(("inner_map_fd", off))
            uses_inner = True
        if c.is_(_LDX | _SZ[8], dst=0, src=6):  # map_extra = initial_value, when set
            off, size, ctx_off, nz = c.ctx2blob()
            rel = ctx_off - _CTX_HDR - _DESC_INITIAL_VALUE
            _expect(nz and size == 8 and rel >= 0 and rel % _MAP_DESC == 0,
                    "bad map_extra override", first)
            extra_idx = rel // _MAP_DESC
            pre.append(("map_extra", off))
            extra_from_ctx = True
        if c.is_(_LDX | _SZ[4], dst=0, src=6):
            off, size, ctx_off, nz = c.ctx2blob()
            rel = ctx_off - _CTX_HDR - _DESC_MAX_ENTRIES
            _expect(nz and size == 4 and rel >= 0 and rel % _MAP_DESC == 0,
                    "bad max_entries override", first)
            ctx_idx = rel // _MAP_DESC
            pre.append(("max_entries", off))
            from_ctx = True
        _, attr, size = c.sys_bpf(_MAP_CREATE)
        _expect(size == _core.MAP_CREATE_ATTR_SIZE, f"MAP_CREATE attr size {size}", first)
        # where each was stored; the vmlinux type id goes through the attr's address in r7
        want = {"btf_fd": attr + _core.MAP_CREATE_BTF_FD,
                "inner_map_fd": attr + _core.MAP_CREATE_INNER_MAP_FD,
                "max_entries": attr + _core.MAP_CREATE_MAX_ENTRIES,
                "btf_vmlinux_value_type_id": attr, "map_extra": attr + _core.MAP_CREATE_MAP_EXTRA}
        for what, off in pre:
            _expect(off == want[what], f"MAP_CREATE {what} stored at the wrong offset", first)
        c.check_err()
        if c.is_(_STX | _SZ[4], dst=10, src=7, off=_INNER_MAP_FD):
            c.pos += 1
            index = -1
            _expect(ctx_idx is None, "inner map with a ctx max_entries override", first)
            _expect(extra_idx is None, "inner map with a ctx map_extra override", first)
        else:
            at = c.here
            off = c.ldb(1)
            c.stx(4, 1, 7, 0)
            # slots of maps the loader does not create are skipped (and stay 0)
            _expect(off % 4 == 0 and self.nr_maps <= off // 4 < self.map_fd_slots,
                    f"map fd stored in slot {off / 4}, expected one of "
                    f"{self.nr_maps}..{self.map_fd_slots - 1}", at)
            index = off // 4
            _expect(ctx_idx is None or ctx_idx == index,
                    f"max_entries override reads map desc {ctx_idx} for map {index}", first)
            _expect(extra_idx is None or extra_idx == index,
                    f"map_extra override reads map desc {extra_idx} for map {index}", first)
            self.nr_maps = index + 1
        if uses_inner:
            c.close_stack(_INNER_MAP_FD)
        a = self.data
        # map_type, key_size, value_size, max_entries, map_flags
        mtype, key, value, max_entries, flags = c.unpack("5I", attr + _core.MAP_CREATE_MAP_TYPE)
        numa, = c.unpack("I", attr + _core.MAP_CREATE_NUMA_NODE)
        name_at = attr + _core.MAP_CREATE_MAP_NAME
        raw_name = a[name_at : name_at + _core.BPF_OBJ_NAME_LEN]
        kname = raw_name.split(b"\0", 1)[0].decode(errors="replace")
        # map_ifindex, btf_fd, btf_key_type_id, btf_value_type_id
        ifindex, _btf_fd, bkey, bvalue = c.unpack("4I", attr + _core.MAP_CREATE_MAP_IFINDEX)
        extra, = c.unpack("Q", attr + _core.MAP_CREATE_MAP_EXTRA)
        _expect((mtype == _core.BPF_MAP_TYPE_STRUCT_OPS) == (vtype is not None),
                "struct_ops map without its vmlinux value type lookup" if vtype is None
                else f"vmlinux value type lookup for a {map_type_name(mtype)} map", first)
        _expect(not extra_from_ctx or (mtype == _core.BPF_MAP_TYPE_ARENA and extra == 0),
                f"map_extra override for a {map_type_name(mtype)} map with map_extra "
                f"{extra:#x}", first)
        name = kname
        if index >= 0:
            if index < len(self.map_names) and self.map_names[index][:_NAME_MAX] == kname:
                name = self.map_names[index]
            self.maps[index] = name
            self.map_types[index] = mtype
        return MapCreate(
            first, c.last, attr, index, name, kname, mtype, map_type_name(mtype), key, value,
            max_entries, flags, numa, ifindex, bkey, bvalue, extra, uses_btf, uses_inner, from_ctx,
            vtype, map_extra_from_ctx=extra_from_ctx,
        )

    def parse_map_update(self) -> MapUpdate:
        c = self.c
        first = c.here
        ctx_off = c.ldx(8, 3, 6).off
        rel = ctx_off - _CTX_HDR - _DESC_INITIAL_VALUE
        _expect(rel % _MAP_DESC == 0, "bad initial_value ctx offset", first)
        idx = rel // _MAP_DESC
        c.jmp(_JEQ, 3, 0, 8)
        value = c.ldb(1)
        value_size = c.mov_imm(2)
        c.ldx(4, 0, 6, _CTX_FLAGS)
        c.jmp(_JSET, 0, 1, 2)
        c.call(_H_COPY_FROM_USER)
        c.ja(1)
        c.call(_H_PROBE_READ_KERNEL)
        fd_dst, sz, fd_src = c.blob2blob()
        key_dst, key = c.rel_store()
        val_dst, val2 = c.rel_store()
        _, attr, size = c.sys_bpf(_MAP_UPDATE)
        c.check_err()
        _expect(
            size == _core.MAP_UPDATE_ATTR_SIZE and fd_dst == attr + _core.MAP_UPDATE_MAP_FD
            and sz == 4 and fd_src == 4 * idx and key_dst == attr + _core.MAP_UPDATE_KEY
            and val_dst == attr + _core.MAP_UPDATE_VALUE and val2 == value,
            "MAP_UPDATE_ELEM attr set-up does not match", first,
        )
        _expect(value + value_size <= len(self.data), "map image outside the blob", first)
        return MapUpdate(first, c.last, attr, idx, self.map_name(idx, first), value, value_size,
                         key)

    def parse_freeze_or_populate(self) -> MapFreeze | MapPopulate:
        c = self.c
        first = c.here
        fd_dst, sz, fd_src = c.blob2blob()
        _expect(sz == 4 and fd_src % 4 == 0, "bad map fd copy", first)
        idx = fd_src // 4
        if c.is_(_MOV64_IMM, dst=1, imm=_MAP_FREEZE):
            _, attr, size = c.sys_bpf(_MAP_FREEZE)
            c.check_err()
            _expect(size == _core.MAP_FREEZE_ATTR_SIZE and fd_dst == attr + _core.MAP_FREEZE_MAP_FD,
                    "MAP_FREEZE attr set-up does not match", first)
            return MapFreeze(first, c.last, attr, idx, self.map_name(idx, first))
        key_dst, key = c.rel_store()
        val_dst, inner = c.rel_store()
        _, attr, size = c.sys_bpf(_MAP_UPDATE)
        c.check_err()
        _expect(
            size == _core.MAP_UPDATE_ATTR_SIZE and fd_dst == attr + _core.MAP_UPDATE_MAP_FD
            and key_dst == attr + _core.MAP_UPDATE_KEY and val_dst == attr + _core.MAP_UPDATE_VALUE
            and inner % 4 == 0,
            "map-in-map MAP_UPDATE_ELEM attr set-up does not match", first,
        )
        slot = c.unpack("i", key)[0] if key + 4 <= len(self.data) else -1
        return MapPopulate(first, c.last, attr, idx, self.map_name(idx, first), slot,
                           inner // 4, self.map_name(inner // 4, first))

    def parse_prog_array_update(self) -> ProgArrayUpdate:
        """``populate_prog_array``: value = prog fd, then MAP_UPDATE_ELEM(map, &slot, &value)."""
        c = self.c
        first = c.here
        if self.prog_fd_blob is None:
            value, sz, soff = c.stack2blob()
            j = self.prog_fd_index("stack", soff, first)
        else:
            value, sz, src = c.blob2blob()
            j = self.prog_fd_index("blob", src, first)
        _expect(sz == 4, "prog fd copied with the wrong size", first)
        _expect(j < self.nr_progs, f"prog fd {j} used before program {j} is loaded", first)
        fd_dst, fsz, fd_src = c.blob2blob()
        key_dst, key = c.rel_store()
        val_dst, val2 = c.rel_store()
        _, attr, size = c.sys_bpf(_MAP_UPDATE)
        c.check_err()
        _expect(
            size == _core.MAP_UPDATE_ATTR_SIZE and fd_dst == attr + _core.MAP_UPDATE_MAP_FD
            and fsz == 4 and fd_src % 4 == 0 and key_dst == attr + _core.MAP_UPDATE_KEY
            and val_dst == attr + _core.MAP_UPDATE_VALUE and val2 == value,
            "prog-array MAP_UPDATE_ELEM attr set-up does not match", first,
        )
        idx = fd_src // 4
        name = self.map_name(idx, first)
        _expect(self.map_types.get(idx) == _core.BPF_MAP_TYPE_PROG_ARRAY,
                f"prog fd stored into map #{idx} {name}, not a prog array", first)
        _expect(c.u32(value, first) == 0, "prog-array value slot is not zeroed", first)
        slot = c.u32(key, first)
        return ProgArrayUpdate(first, c.last, attr, idx, name, slot, j,
                               self.prog_kernel_names[j], value)

    def parse_prog_load(self) -> ProgLoad:
        c = self.c
        first = c.here
        stores = [c.rel_store() for _ in range(6)]
        moves = [c.ctx2blob() for _ in range(3)]
        btf_dst, _, btf_soff = c.stack2blob()
        _expect(btf_soff == _BTF_FD, "PROG_LOAD does not take the BTF fd", first)
        attach: AttachTarget | None = None
        attach_attr: int | None = None
        if c.is_ldb(1):
            target, kind, at = c.btf_lookup()
            c.check_err()
            attach_attr = c.ldb(0)
            c.stx(4, 0, 7, _core.PROG_LOAD_ATTACH_BTF_ID)
            c.take(_RSH64_IMM, "r7 >>= 32", dst=7, imm=32)
            c.stx(4, 0, 7, _core.PROG_LOAD_ATTACH_BTF_OBJ_FD)
            attach = AttachTarget(at, target, kind, _BTF_KINDS.get(kind, str(kind)))
        # relocations need the insns offset, known from the rel_stores above
        insns_off = stores[1][1]
        relos: list[KsymRelo] = []
        firsts: dict[int, KsymRelo] = {}
        while c.is_ldb(8):
            relos.append(self.parse_relo(insns_off, firsts))
        _, attr, size = c.sys_bpf(_PROG_LOAD)
        _expect(size == _core.PROG_LOAD_ATTR_SIZE, f"PROG_LOAD attr size {size}", first)
        want_stores = [attr + f for f in (_core.PROG_LOAD_LICENSE, _core.PROG_LOAD_INSNS,
                                          _core.PROG_LOAD_FUNC_INFO, _core.PROG_LOAD_LINE_INFO,
                                          _core.PROG_LOAD_CORE_RELOS, _core.PROG_LOAD_FD_ARRAY)]
        _expect([s[0] for s in stores] == want_stores and stores[5][1] == 0,
                "PROG_LOAD pointer set-up does not match", first)
        _expect(
            moves == [(attr + f, n, ctx, False) for f, n, ctx in _PROG_LOG_MOVES]
            and btf_dst == attr + _core.PROG_LOAD_PROG_BTF_FD,
            "PROG_LOAD log/btf set-up does not match", first,
        )
        _expect(attach_attr is None or attach_attr == attr, "attach target stored elsewhere",
                first)
        # fds closed after the load: typed ksyms' BTF obj fds, kfunc BTF fds, attach obj fd
        want_closes: list[int] = []
        for r in relos:
            if r.repeat_of is not None:
                continue
            if r.kind == "ksym":
                want_closes.append(insns_off + _INSN_SZ * r.insn + _IMM_HI_OFF)
            elif r.kind == "kfunc":
                assert r.fd_slot is not None
                want_closes.append(4 * r.fd_slot)
        if attach is not None:
            want_closes.append(attr + _core.PROG_LOAD_ATTACH_BTF_OBJ_FD)
        closes: list[int] = []
        while len(closes) < len(want_closes) and c.is_ldb(0):
            closes.append(c.close_blob())
        _expect(closes == want_closes, "fds closed after PROG_LOAD do not match the lookups",
                first)
        c.check_err()
        j = self.nr_progs
        self.store_prog_fd(j)
        self.nr_progs += 1

        a = self.data
        (ptype, insn_cnt) = c.unpack("II", attr + _core.PROG_LOAD_PROG_TYPE)
        prog_flags, = c.unpack("I", attr + _core.PROG_LOAD_PROG_FLAGS)
        name_at = attr + _core.PROG_LOAD_PROG_NAME
        raw_name = a[name_at : name_at + _core.BPF_OBJ_NAME_LEN]
        kname = raw_name.split(b"\0", 1)[0].decode(errors="replace")
        self.prog_kernel_names.append(kname)
        ifindex, = c.unpack("I", attr + _core.PROG_LOAD_PROG_IFINDEX)
        eat, = c.unpack("I", attr + _core.PROG_LOAD_EXPECTED_ATTACH_TYPE)
        fi_rec, = c.unpack("I", attr + _core.PROG_LOAD_FUNC_INFO_REC_SIZE)
        fi_cnt, = c.unpack("I", attr + _core.PROG_LOAD_FUNC_INFO_CNT)
        li_rec, = c.unpack("I", attr + _core.PROG_LOAD_LINE_INFO_REC_SIZE)
        li_cnt, = c.unpack("I", attr + _core.PROG_LOAD_LINE_INFO_CNT)
        attach_btf_id, = c.unpack("I", attr + _core.PROG_LOAD_ATTACH_BTF_ID)
        core_cnt, = c.unpack("I", attr + _core.PROG_LOAD_CORE_RELO_CNT)
        license_off, insns_at = stores[0][1], stores[1][1]
        _expect(insns_at + _INSN_SZ * insn_cnt <= len(a), "program instructions outside the blob",
                first)
        for r in relos:
            _expect(r.insn < insn_cnt, f"relocation of insn {r.insn} beyond the program", first)
        # a struct_ops program's expected_attach_type is the index of its member
        struct_ops = ptype == _core.BPF_PROG_TYPE_STRUCT_OPS
        att_name = f"member {eat}" if struct_ops else attach_type_name(eat)
        return ProgLoad(
            first, c.last, attr, j, -1, kname, kname, ptype, prog_type_name(ptype), eat,
            att_name, prog_flags, ifindex, c.cstr(license_off, None, first),
            insns_at, insn_cnt, fi_cnt, fi_rec, li_cnt, li_rec, core_cnt, attach_btf_id, attach,
            tuple(relos),
        )

    def patched(self, insn_addr: int) -> str:
        if insn_addr + _INSN_SZ > len(self.data):
            return "?"
        raw = self.data[insn_addr : insn_addr + 2 * _INSN_SZ]
        try:
            one = raw if raw[0] == _LD_IMM64 else raw[:_INSN_SZ]
            return _disasm_one(_decode_insns(one, self.big_endian)[0], False)
        except LoaderDecodeError:
            return "?"

    def parse_relo(self, insns_off: int, firsts: dict[int, KsymRelo]) -> KsymRelo:
        c = self.c
        first = c.here
        insn_addr = c.ldb(8)
        _expect(insn_addr >= insns_off and (insn_addr - insns_off) % _INSN_SZ == 0,
                "relocation does not point at a program instruction", first)
        insn = (insn_addr - insns_off) // _INSN_SZ
        patched = self.patched(insn_addr)
        if c.is_ldb(2):  # repeated use: copy from the first use
            d1, s1, src1 = c.blob2blob()
            d2, s2, src2 = c.blob2blob()
            rel = (d1 - insn_addr, s1, d2 - insn_addr, s2)
            if rel == (_IMM_OFF, 4, _OFF_OFF, 2):
                kind, base = "kfunc", src1 - _IMM_OFF
                ok = src2 == base + _OFF_OFF
            elif rel == (_IMM_HI_OFF, 4, _IMM_OFF, 4):
                kind, base = "ksym", src1 - _IMM_HI_OFF
                ok = src2 == base + _IMM_OFF
                c.jmp(_JNE, 0, 0, 3)
                self.clear_src_reg()
            elif rel == (_IMM_OFF, 4, _IMM_HI_OFF, 4):
                kind, base = "typeless", src1 - _IMM_OFF
                ok = src2 == base + _IMM_HI_OFF
            else:
                raise LoaderDecodeError("unrecognised repeated ksym relocation", first)
            orig = firsts.get(base)
            _expect(ok and orig is not None and orig.kind == kind,
                    "repeated ksym relocation does not copy from a first use", first)
            assert orig is not None
            return KsymRelo(first, c.last, orig.name, kind, orig.btf_kind, insn, patched, None,
                            orig.insn, orig.fd_slot)
        at = c.here
        name_off = c.ldb(1)
        length = c.mov_imm(2)
        name = c.cstr(name_off, length, at)
        if c.is_(_MOV64_IMM, dst=3, imm=0) and c.is_ldb(4, 1):  # typeless: kallsyms
            c.pos += 1
            c.ldb(4)
            c.mov_reg(7, 4)
            c.call(_H_KALLSYMS)
            c.ldx(8, 9, 7, 0)
            c.mov_reg(7, 0)
            # -ENOENT skips the error check (two insns in its long form)
            skip = c.take(_JEQ, "if r7 == -ENOENT goto over the error check", dst=7, src=0,
                          imm=-2)
            c.check_err()
            _expect(skip.idx + 1 + skip.off == c.here,
                    "the -ENOENT branch does not skip exactly the error check", skip.idx)
            c.stx(4, 8, 9, _IMM_OFF)
            c.take(_RSH64_IMM, "r9 >>= 32", dst=9, imm=32)
            c.stx(4, 8, 9, _IMM_HI_OFF)
            r = KsymRelo(first, c.last, name, "typeless", 0, insn, patched, None, None, None)
            firsts[insn_addr] = r
            return r
        btf_kind = c.mov_imm(3)
        c.mov_imm(4, 0)
        c.call(_H_FIND_BY_NAME_KIND)
        c.mov_reg(7, 0)
        strong = c.maybe_check_err()
        c.jmp(_JSGE, 7, 0, 3)
        c.st(4, 8, _IMM_OFF, 0)
        if c.is_(_ST | _SZ[2], dst=8, off=_OFF_OFF):  # kfunc
            c.st(2, 8, _OFF_OFF, 0)
            c.ja(10)
            c.stx(4, 8, 7, _IMM_OFF)
            c.mov_reg(9, 7)
            c.take(_RSH64_IMM, "r9 >>= 32", dst=9, imm=32)
            slot_off = c.ldb(0)
            c.stx(4, 0, 9, 0)
            c.jmp(_JNE, 9, 0, 2)
            c.st(2, 8, _OFF_OFF, 0)
            c.ja(1)
            slot = c.st(2, 8, _OFF_OFF)
            _expect(slot_off == 4 * slot, "kfunc BTF fd slot and insn.off disagree", first)
            r = KsymRelo(first, c.last, name, "kfunc", btf_kind, insn, patched, strong, None,
                         slot)
        else:  # typed ld_imm64
            c.st(4, 8, _IMM_HI_OFF, 0)
            c.ja(4)
            c.stx(4, 8, 7, _IMM_OFF)
            c.take(_RSH64_IMM, "r7 >>= 32", dst=7, imm=32)
            c.stx(4, 8, 7, _IMM_HI_OFF)
            c.ja(3)
            self.clear_src_reg()
            r = KsymRelo(first, c.last, name, "ksym", btf_kind, insn, patched, strong, None, None)
        firsts[insn_addr] = r
        return r

    def clear_src_reg(self) -> None:
        """Clear the patched insn's src_reg, keeping dst_reg: the low nibble of the regs
        byte little-endian, the high one big-endian."""
        c = self.c
        keep = 0xF0 if self.big_endian else 0x0F
        c.ldx(1, 9, 8, _REGS_OFF)
        c.take(_AND32_IMM, f"w9 &= {keep:#x}", dst=9, imm=keep)
        c.stx(1, 8, 9, _REGS_OFF)

    def parse_finish(self) -> Finish:
        c = self.c
        first = c.here
        c.close_stack(_BTF_FD)
        j = 0
        base = _CTX_HDR + _MAP_DESC * self.map_fd_slots
        blob = self.prog_fd_blob
        while (c.is_(_LDX | _SZ[4], dst=0, src=10) if blob is None
               else c.is_ldb(1) and c.insns[c.pos].imm2 == blob + 4 * j):
            at = c.here
            if blob is None:
                ctx_off, size, soff = c.stack2ctx()
                ok = soff == _PROG_FD0 + 4 * j
            else:
                ctx_off, size, _ = c.blob2ctx()
                ok = True
            slot = (ctx_off - base) // _PROG_DESC
            _expect(ok and size == 4 and ctx_off >= base
                    and (ctx_off - base) % _PROG_DESC == 0 and slot not in self.prog_slots,
                    f"prog fd {j} handed to a bad ctx slot", at)
            self.prog_slots.append(slot)
            j += 1
        i = 0
        while c.is_ldb(1):
            at = c.here
            ctx_off, size, src = c.blob2ctx()
            _expect(src == 4 * i and size == 4 and ctx_off == _CTX_HDR + _MAP_DESC * i,
                    f"map fd {i} handed to the wrong ctx slot", at)
            i += 1
        c.mov_imm(0, 0)
        c.take(_EXIT, "exit")
        _expect(j == self.nr_progs, f"epilogue hands {j} prog fds, {self.nr_progs} loaded", first)
        _expect(i == self.map_fd_slots,
                f"epilogue hands {i} map fds, the object has {self.map_fd_slots} maps", first)
        return Finish(first, c.last, j, i)


def decode(
    data: bytes,
    insns: bytes,
    map_names: Sequence[str] = (),
    prog_names: Sequence[str] = (),
    *,
    ctx_size: int | None = None,
    with_disasm: bool = False,
    big_endian: bool | None = None,
) -> Explanation:
    """Decode raw blobs. ``map_names``/``prog_names`` (the skeleton's) give full
    names where the attrs hold 15-char kernel names. ``big_endian``: the target's byte
    order; None (the default) reads it off the loader's first instruction."""
    be = loader_is_big_endian(insns) if big_endian is None else big_endian
    decoder = _Decoder(data, insns, map_names, prog_names, be)
    try:
        steps, cleanup, nr_maps, nr_slots = decoder.run()
    except (struct.error, IndexError) as e:  # a read past the blob the checks did not catch
        raise LoaderDecodeError(f"malformed loader: {e}") from None
    slots = [s.ctx_slot + 1 for s in steps if isinstance(s, ProgLoad)]
    need = _core.loader_ctx_size(nr_maps, max(slots, default=0))
    return Explanation(
        insn_cnt=len(insns) // _INSN_SZ,
        data_size=len(data),
        nr_maps=nr_maps,
        nr_prog_slots=nr_slots,
        ctx_size=max(need, ctx_size or 0),
        steps=tuple(steps),
        cleanup=cleanup,
        disasm=tuple(disasm(insns, big_endian=be)) if with_disasm else (),
        skipped_maps=decoder.skipped_maps(),
        big_endian=be,
    )


def explain(loader: Loader | BpfObject, *, disasm: bool = False) -> Explanation:
    """Decode ``loader`` (a :class:`Loader`, or a :class:`BpfObject` whose loader is
    generated with this host's facts) into an ordered listing of what it will do.
    Loaders for big-endian (bpfeb) targets decode in their byte order, read off the
    loader's first instruction (:attr:`Explanation.big_endian`).
    Raises :class:`LoaderDecodeError` if the loader does not have gen_loader's shape."""
    if isinstance(loader, BpfObject):
        loader = loader.gen_loader()
    if loader._core is not None and bool(loader._core.big_endian) != loader_is_big_endian(
        loader.insns
    ):
        raise LoaderDecodeError("the loader's first instruction is not `r6 = r1` in the "
                                "byte order it was generated for", 0)
    return decode(
        loader.data, loader.insns, loader.map_names, loader.prog_names,
        ctx_size=loader.ctx_size, with_disasm=disasm,
    )


def read_loader(prefix: str | os.PathLike[str]) -> Loader:
    """Read ``PREFIX.data.bin``/``PREFIX.insns.bin`` (and ``PREFIX.json`` for the
    map and program names if present), as written by :meth:`Loader.write`."""
    base = os.fspath(prefix)
    with open(base + ".data.bin", "rb") as f:
        data = f.read()
    with open(base + ".insns.bin", "rb") as f:
        insns = f.read()
    maps: tuple[str, ...] = ()
    progs: tuple[str, ...] = ()
    try:
        with open(base + ".json") as f:
            meta = json.load(f)
        maps = tuple(str(m) for m in meta.get("maps", ()))
        progs = tuple(str(p) for p in meta.get("programs", ()))
    except FileNotFoundError:
        pass
    except (ValueError, AttributeError, TypeError) as e:
        raise LoaderDecodeError(f"{base}.json: {e}") from None
    return Loader(data=data, insns=insns, map_names=maps, prog_names=progs)


def initial_images(e: Explanation, data: bytes) -> dict[int, bytes]:
    """map index → initial value image (the bytes its MAP_UPDATE stores)."""
    return {
        s.map_index: data[s.value : s.value + s.value_size]
        for s in e.steps
        if isinstance(s, MapUpdate)
    }


# --------------------------------------------------------------------------------------------
# Text


def _span(s: Step | Cleanup) -> str:
    return f"[{s.first_insn:5}-{s.last_insn:5}]"


def render_text(e: Explanation) -> str:
    n_loaded = len(e.programs)
    out = [
        f"loader: {e.insn_cnt} insns, data {e.data_size} bytes, {e.nr_maps} maps, "
        f"{n_loaded} programs loaded ({e.nr_prog_slots} prog fd slots), ctx {e.ctx_size} bytes, "
        + ("big-endian (bpfeb) target" if e.big_endian else "little-endian target")
    ]
    skipped = list(e.skipped_maps)

    def not_created(before: int) -> None:
        while skipped and skipped[0].index < before:
            m = skipped.pop(0)
            out.append(f"{'':13} {'NOT CREATED':<17} #{m.index} {m.name or '?'}  "
                       "(no MAP_CREATE; its fd stays 0)")

    # maps not created: in map order, among the MAP_CREATEs
    last_create = max(
        (k for k, s in enumerate(e.steps) if isinstance(s, MapCreate) and s.index >= 0),
        default=-1,
    )
    if last_create < 0:
        not_created(e.nr_maps)
    for k, s in enumerate(e.steps):
        head = f"{_span(s)} {s.op:<17}"
        if isinstance(s, MapCreate) and s.index >= 0:
            not_created(s.index)
        if k == last_create + 1:
            not_created(e.nr_maps)
        if isinstance(s, BtfLoad):
            out.append(f"{head} size {s.size}")
        elif isinstance(s, MapCreate):
            who = f"#{s.index} {s.name}" if s.index >= 0 else f"(inner) {s.name}"
            extra = []
            if s.vmlinux_value_type is not None:
                extra.append(f"vmlinux value type {s.vmlinux_value_type}")
            if s.numa_node:
                extra.append(f"numa_node {s.numa_node}")
            if s.map_extra:
                extra.append(f"map_extra {s.map_extra:#x}")
            if s.map_extra_from_ctx:
                extra.append("map_extra from ctx (address the skeleton reserves)")
            if s.btf_value_type_id or s.btf_key_type_id:
                extra.append(f"btf key/value {s.btf_key_type_id}/{s.btf_value_type_id}")
            out.append(
                f"{head} {who}  {s.type_name}  key {s.key_size} value {s.value_size} "
                f"max_entries {s.max_entries} flags {s.flags:#x}"
                + ("  " + ", ".join(extra) if extra else "")
            )
        elif isinstance(s, MapUpdate):
            out.append(f"{head} #{s.map_index} {s.map_name}  initial value, {s.value_size} bytes")
        elif isinstance(s, MapFreeze):
            out.append(f"{head} #{s.map_index} {s.map_name}")
        elif isinstance(s, MapPopulate):
            out.append(f"{head} #{s.map_index} {s.map_name}[{s.slot}] = #{s.inner_index} "
                       f"{s.inner_name}")
        elif isinstance(s, ProgArrayUpdate):
            out.append(f"{head} #{s.map_index} {s.map_name}[{s.slot}] = prog #{s.prog_index} "
                       f"{s.prog_name}")
        elif isinstance(s, ProgLoad):
            flags = f" flags {s.prog_flags:#x}" if s.prog_flags else ""
            # expected_attach_type 0 only means something for cgroup_skb (ingress)
            att = f"  attach {s.attach_type_name}" if s.expected_attach_type or s.type == 8 else ""
            if s.type == _core.BPF_PROG_TYPE_STRUCT_OPS:
                att = f"  {s.attach_type_name}"
            slot = f" (slot {s.ctx_slot})" if s.ctx_slot != s.index else ""
            out.append(
                f"{head} #{s.index}{slot} {s.name}  {s.type_name}{att}{flags}  "
                f"{s.insn_cnt} insns, func_info {s.func_info_cnt}, line_info {s.line_info_cnt}, "
                f"core_relos {s.core_relo_cnt}  license {s.license!r}"
            )
            if s.attach_target is not None:
                t = s.attach_target
                out.append(f"{'':14}attach target: find {t.kind_name} {t.name!r}")
            for r in s.relocations:
                how = {True: "strong", False: "weak", None: ""}[r.strong]
                src = f" (copy of insn {r.repeat_of})" if r.repeat_of is not None else ""
                slot = f" fd slot {r.fd_slot}" if r.fd_slot is not None and r.repeat_of is None \
                    else ""
                kind = _KSYM_KINDS.get(r.btf_kind, str(r.btf_kind))
                out.append(
                    f"{'':14}{r.kind} {r.name!r} ({kind}{', ' + how if how else ''}) patches "
                    f"insn {r.insn}: {r.patched_insn}{src}{slot}"
                )
        elif isinstance(s, Finish):
            out.append(f"{head} {s.prog_fds} prog fds and {s.map_fds} map fds to the ctx; "
                       "close BTF fd; return 0")
    cl = e.cleanup
    where = "" if cl.prog_fd_blob is None else f" (in the blob at {cl.prog_fd_blob})"
    out.append(
        f"{_span(cl)} {cl.op:<17} on error: close BTF fd, inner map fd, {cl.prog_fd_slots} "
        f"prog fd slots{where}, {cl.map_fd_slots} map fds; return the error"
    )
    if e.disasm:
        out.append("disassembly:")
        out.extend(e.disasm)
    return "\n".join(out)


__all__ = [
    "AttachTarget", "BtfLoad", "Cleanup", "Explanation", "Finish", "KsymRelo",
    "LoaderDecodeError", "MapCreate", "MapFreeze", "MapPopulate", "MapUpdate", "ProgArrayUpdate",
    "ProgLoad", "SkippedMap", "Step", "decode", "disasm", "explain", "initial_images",
    "loader_is_big_endian", "read_loader", "render_text", "uses_gotol",
]
