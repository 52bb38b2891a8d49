"""What a generated loader will do, step by step: typed results of the core's
decoder (``src/explain/``), which matches the loader's instructions against
the blocks libbpf's gen_loader builds them from, reads each step's attrs from
the data blob, and raises :class:`LoaderDecodeError` for anything else. It
reads loaders for big-endian (bpfeb) targets in their byte order
(:attr:`Explanation.big_endian`) and signed loaders' signature checks
(:attr:`Explanation.signature_check`); the native ``bpfgen-fast explain``
prints the same text and JSON without Python.

    >>> e = bpfgen_fast.explain(bpfgen_fast.gen_loader("prog.bpf.o"))
    >>> [m.name for m in e.maps], [p.name for p in e.programs]
    >>> print(e.to_text()); e.to_json()
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Union

from bpfgen_fast import _core
from bpfgen_fast._core import LoaderDecodeError
from bpfgen_fast.object import BpfObject, Loader

FORMAT: str = _core.EXPLAIN_FORMAT


def _bad(reason: str, insn: int | None = None) -> LoaderDecodeError:
    """An error found here (a document that is not an explanation), worded and
    attributed as the core words a loader it cannot decode."""
    where = "" if insn is None else f"insn {insn}: "
    e = LoaderDecodeError(f"loader: {where}{reason}")
    e.object, e.section, e.offset, e.reason = "loader", None, insn, reason
    return e


# --------------------------------------------------------------------------------------------
# Result types (the core's records, src/explain/model.rs, field for field)


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
    """Store the initial image (key 0) of an internal map; unless the loader is
    signed, the skeleton's ``initial_value`` replaces the blob's image when set."""

    op: ClassVar[str] = "MAP_UPDATE"
    first_insn: int
    last_insn: int
    attr: int
    map_index: int
    map_name: str
    value: int
    value_size: int
    key: int
    #: False in a signed loader, which keeps the signed image (no ctx override)
    value_from_ctx: bool = True


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


@dataclass(frozen=True)
class SignatureCheck:
    """A signed loader's first act (libbpf 1.8): fail with -EINVAL unless its map
    is exclusive to it and the kernel's SHA-256 of the data blob is ``sha256``."""

    op: ClassVar[str] = "SIGNATURE_CHECK"
    first_insn: int
    last_insn: int
    sha256: str


Step = Union[
    BtfLoad, MapCreate, MapUpdate, MapFreeze, MapPopulate, ProgLoad, ProgArrayUpdate, Finish
]
_STEP_TYPES: dict[str, type[Any]] = {
    t.op: t
    for t in (BtfLoad, MapCreate, MapUpdate, MapFreeze, MapPopulate, ProgLoad, ProgArrayUpdate,
              Finish)
}


def _signature_from(d: Any) -> SignatureCheck | None:
    if d is None:
        return None
    return SignatureCheck(**_kwargs(SignatureCheck, dict(d)))


def _step_dict(step: Step | Cleanup | SignatureCheck) -> dict[str, Any]:
    return {"op": step.op, **asdict(step)}


def _step_from(d: dict[str, Any]) -> Step:
    cls = _STEP_TYPES.get(str(d.get("op")))
    if cls is None:
        raise _bad(f"unknown step op {d.get('op')!r} in JSON")
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
        raise _bad(f"bad {cls.__name__} record in JSON: {e}") from None


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
    #: a signed loader's signature check, None for an unsigned loader
    signature_check: SignatureCheck | None = None

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
            "signature_check": (None if self.signature_check is None
                                else _step_dict(self.signature_check)),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        if d.get("format") != FORMAT:
            raise _bad(f"not a {FORMAT} document")
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
                signature_check=_signature_from(d.get("signature_check")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise _bad(f"bad explanation JSON: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        try:
            d = json.loads(text)
        except ValueError as e:
            raise _bad(f"bad explanation JSON: {e}") from None
        if not isinstance(d, dict):
            raise _bad("bad explanation JSON: not an object")
        return cls.from_dict(d)

    def to_text(self) -> str:
        return render_text(self)


# --------------------------------------------------------------------------------------------
# The core's decoder, listing and disassembler


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
    doc = _core.explain_loader(data, insns, list(map_names), list(prog_names), ctx_size,
                               with_disasm, big_endian)
    return Explanation.from_json(doc)


def explain(loader: Loader | BpfObject, *, disasm: bool = False) -> Explanation:
    """Decode ``loader`` (a :class:`Loader`, or a :class:`BpfObject` whose loader is
    generated with this host's facts) into an ordered listing of what it will do.
    Raises :class:`LoaderDecodeError` if the loader does not have gen_loader's shape."""
    if isinstance(loader, BpfObject):
        loader = loader.gen_loader()
    if loader._core is not None and bool(loader._core.big_endian) != loader_is_big_endian(
        loader.insns
    ):
        raise _bad("the loader's first instruction is not `r6 = r1` in the byte order it "
                   "was generated for", 0)
    return decode(
        loader.data, loader.insns, loader.map_names, loader.prog_names,
        ctx_size=loader.ctx_size, with_disasm=disasm,
    )


def read_loader(prefix: str | os.PathLike[str]) -> Loader:
    """Read ``PREFIX.data.bin``/``PREFIX.insns.bin`` (and ``PREFIX.json`` for the
    map and program names if present), as written by :meth:`Loader.write`."""
    data, insns, maps, progs = _core.read_loader(prefix)
    return Loader(data=data, insns=insns, map_names=tuple(maps), prog_names=tuple(progs))


def initial_images(e: Explanation, data: bytes) -> dict[int, bytes]:
    """map index → initial value image (the bytes its MAP_UPDATE stores)."""
    return {
        s.map_index: data[s.value : s.value + s.value_size]
        for s in e.steps
        if isinstance(s, MapUpdate)
    }


def render_text(e: Explanation) -> str:
    """The ``explain`` listing (the core's)."""
    return _core.explanation_text(e.to_json(indent=None))


def disasm(insns: bytes, *, blob: bool = True, big_endian: bool | None = None) -> list[str]:
    """Disassemble BPF instructions, one line per insn (``ld_imm64`` takes two
    slots). With ``blob`` (the loader's own code), ``src=6`` pairs print as blob
    addresses. ``big_endian``: the instructions' byte order; None (the default) reads
    it off a loader's first instruction with ``blob``, else takes little-endian."""
    return _core.disasm(insns, blob, big_endian)


def uses_gotol(insns: bytes, big_endian: bool = False) -> bool:
    """Whether a loader has jumps in the long form (``gotol``: cpu v4, Linux 6.6 or
    later), which only loaders too long for 16-bit jumps have."""
    return _core.uses_gotol(insns, big_endian)


def loader_is_big_endian(insns: bytes) -> bool:
    """The byte order of a generated loader, from its first instruction ``r6 = r1``."""
    return _core.loader_is_big_endian(insns)


__all__ = [
    "AttachTarget", "BtfLoad", "Cleanup", "Explanation", "Finish", "KsymRelo",
    "LoaderDecodeError", "MapCreate", "MapFreeze", "MapPopulate", "MapUpdate", "ProgArrayUpdate",
    "ProgLoad", "SignatureCheck", "SkippedMap", "Step", "decode", "disasm", "explain",
    "initial_images", "loader_is_big_endian", "read_loader", "render_text", "uses_gotol",
]
