"""Type stubs for the native module (Rust core via PyO3)."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

class BpfgenError(Exception):
    object: str
    section: str | None
    offset: int | None
    reason: str

class ElfError(BpfgenError): ...
class BtfError(BpfgenError): ...
class RelocationError(BpfgenError): ...
class UnsupportedError(BpfgenError): ...
class LoaderDecodeError(BpfgenError): ...

# Stub-only aliases (annotations only, absent at run time).
#: (name, section, type, key_size, value_size, max_entries, flags, internal, inner, ident):
#: MapInfo's fields, in its order
MapFacts = tuple[str, str, str, int, int, int, int, bool, str | None, str | None]
#: (name, section, type, expected_attach_type, flags, insn_cnt, autoload)
ProgramFacts = tuple[str, str, str, str | None, int, int, bool, str | None]

class Object:
    @property
    def name(self) -> str: ...
    @property
    def license(self) -> str: ...
    @property
    def big_endian(self) -> bool: ...
    def maps(self) -> list[MapFacts]: ...
    def programs(self) -> list[ProgramFacts]: ...
    def subprograms(self) -> list[str]: ...
    def inspect(self, json: bool = False) -> str: ...
    def sections(self) -> list[tuple[int, str, int, int, int]]: ...
    def symbols(self) -> list[tuple[str, int, int, int, int, int]]: ...
    def set_autoload(self, name: str, autoload: bool) -> None: ...
    def set_attach_target(self, name: str, func: str) -> None: ...
    def gen_loader(
        self, host: dict[str, object] | HostSpec
    ) -> tuple[bytes, bytes, tuple[str, ...], tuple[str, ...]]: ...
    # the same as a Loader, whose _host is the dict (a HostSpec's own dict)
    def loader(self, host: dict[str, object] | HostSpec) -> Loader: ...
    # host may also carry "gen_hash" (bool: libbpf 1.8's signed-loader mode) and
    # "signature" (bytes: CMS over the gen_hash loader's insns -> signed header,
    # compat "bpftool-7.8" only); both optional keys.
    def gen_skeleton(self, host: dict[str, object]) -> str: ...
    def arena_image(self) -> tuple[int, bytes] | None: ...
    def struct_ops_values(
        self, host: dict[str, object]
    ) -> list[tuple[int, bool, bytes, list[tuple[int, str]]]]: ...
    def selfcheck(
        self, data: bytes, insns: bytes, host: dict[str, object]
    ) -> dict[str, object]: ...

def open(data: bytes, name: str) -> Object: ...
class HostSpec:
    """Host facts (a ``host_args()`` dict) converted by the core once."""

    def __init__(self, host: dict[str, object]) -> None: ...

class Loader:
    """A generated loader: the two blobs and the skeleton layout they expect.
    Immutable; :meth:`replace` makes a changed copy."""

    def __init__(
        self,
        data: bytes,
        insns: bytes,
        map_names: tuple[str, ...],
        prog_names: tuple[str, ...],
        _host: dict[str, object] | None = None,
        _core: Object | None = None,
    ) -> None: ...
    @property
    def data(self) -> bytes: ...
    @property
    def insns(self) -> bytes: ...
    @property
    def map_names(self) -> tuple[str, ...]: ...
    @property
    def prog_names(self) -> tuple[str, ...]: ...
    @property
    def _host(self) -> dict[str, object]: ...
    @property
    def _core(self) -> Object | None: ...
    def replace(self, **changes: Any) -> Loader:
        """A copy with the given fields changed (``data=``, ``insns=``, ...)."""
    def gen_skeleton(self) -> str:
        """The light-skeleton header embedding these blobs (same host facts)."""
    @property
    def ctx_size(self) -> int:
        """Size of the loader ctx: bpf_loader_ctx + one map desc per map + one prog
        desc per program."""
    def write(self, prefix: str | os.PathLike[str]) -> list[Path]:
        """Write ``PREFIX.data.bin``, ``PREFIX.insns.bin`` and ``PREFIX.json`` (the
        names and sizes), each atomically and all or nothing; returns their paths."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def open_and_gen(
    data: bytes, name: str, host: dict[str, object] | HostSpec
) -> Loader: ...
def selfcheck(
    data: bytes, insns: bytes, map_names: list[str], prog_names: list[str]
) -> dict[str, object]: ...
def default_object_name(path: str) -> str: ...
def host_defaults() -> tuple[int, int]: ...
def read_kconfig(path: str | os.PathLike[str]) -> str: ...
def write_loader(
    prefix: str | os.PathLike[str],
    data: bytes,
    insns: bytes,
    map_names: list[str],
    prog_names: list[str],
) -> list[Path]: ...
def write_file(path: str | os.PathLike[str], data: bytes) -> None: ...
def loader_ctx_size(nr_maps: int, nr_progs: int) -> int: ...
def kernel_version_code(version: str) -> int: ...
def map_ident(name: str, internal: bool) -> str | None: ...
def map_type_name(value: int) -> str | None: ...
def prog_type_name(value: int) -> str | None: ...
def attach_type_name(value: int) -> str | None: ...
def parse_cli(argv: list[str]) -> dict[str, Any]: ...

# The loader decoder (src/explain/): the explanation document as JSON, its listing, the
# step a failed run stopped at, and instruction listings.
EXPLAIN_FORMAT: str
def explain_loader(
    data: bytes, insns: bytes, map_names: list[str], prog_names: list[str],
    ctx_size: int | None = None, with_disasm: bool = False, big_endian: bool | None = None,
) -> str: ...
def explanation_text(document: str) -> str: ...
def diagnose_run(document: str, blob: bytes) -> tuple[int | None, str | None]: ...
def read_loader(prefix: str | os.PathLike[str]) -> tuple[bytes, bytes, list[str], list[str]]: ...
def disasm(insns: bytes, blob: bool = True, big_endian: bool | None = None) -> list[str]: ...
def uses_gotol(insns: bytes, big_endian: bool) -> bool: ...
def loader_is_big_endian(insns: bytes) -> bool: ...

CLI_USAGE: str

# What run() needs to run a loader (reading one back needs nothing here: the decoder is
# the core's). The skeleton ctx: struct bpf_loader_ctx, then one bpf_map_desc per map
# (fields at these offsets) and one bpf_prog_desc per program (src/loader_abi.rs)
LOADER_CTX_SIZE: int
MAP_DESC_SIZE: int
MAP_DESC_MAX_ENTRIES: int
MAP_DESC_INITIAL_VALUE: int
PROG_DESC_SIZE: int

# the names in MAP_CREATE and PROG_LOAD are BPF_OBJ_NAME_LEN bytes (src/loader_abi.rs)
BPF_OBJ_NAME_LEN: int
# the attr fields run()'s own MAP_CREATE and PROG_LOAD fill (src/loader_abi.rs)
MAP_CREATE_MAP_NAME: int
PROG_LOAD_PROG_FLAGS: int
PROG_LOAD_PROG_NAME: int
PROG_LOAD_FD_ARRAY: int

# the bpf() commands run() issues (src/loader_abi.rs)
BPF_MAP_CREATE: int
BPF_MAP_LOOKUP_ELEM: int
BPF_MAP_UPDATE_ELEM: int
BPF_MAP_DELETE_ELEM: int
BPF_PROG_LOAD: int
BPF_PROG_TEST_RUN: int
BPF_OBJ_GET_INFO_BY_FD: int
BPF_RAW_TRACEPOINT_OPEN: int
BPF_BTF_LOAD: int
BPF_MAP_FREEZE: int
BPF_LINK_CREATE: int
BPF_ITER_CREATE: int

# the size of struct bpf_insn (src/insn.rs)
INSN_SIZE: int

# map, program and attach type numbers and BPF_F_* flags the facade uses (src/section_defs.rs)
BPF_MAP_TYPE_ARRAY: int
BPF_MAP_TYPE_PROG_ARRAY: int
BPF_MAP_TYPE_STRUCT_OPS: int
BPF_MAP_TYPE_ARENA: int
BPF_PROG_TYPE_RAW_TRACEPOINT: int
BPF_PROG_TYPE_TRACING: int
BPF_PROG_TYPE_STRUCT_OPS: int
BPF_PROG_TYPE_LSM: int
BPF_PROG_TYPE_SYSCALL: int
BPF_TRACE_ITER: int
BPF_STRUCT_OPS: int
BPF_F_SLEEPABLE: int
BPF_F_RDONLY_PROG: int
BPF_F_MMAPABLE: int
BPF_F_LINK: int
BPF_F_SEGV_ON_FAULT: int

# map types with one value per possible CPU (src/section_defs.rs)
PERCPU_MAP_TYPES: frozenset[int]

def gen_batch(
    paths: list[str],
    names: list[str] | None,
    jobs: int,
    out_dir: str | None,
    fmt: str,
    keep_going: bool,
    host: dict[str, object],
    progress: Callable[[int, int], object] | None = None,
    attach_targets: list[tuple[str, str]] = ...,
) -> list[
    tuple[
        str,
        str,
        BaseException | None,
        bool,
        list[tuple[str, int]],
        str | None,
        tuple[bytes, bytes, list[str], list[str]] | None,
        list[str],
    ]
]: ...
def _time_core(data: bytes, name: str, host: dict[str, object], repeats: int) -> list[float]: ...
