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

CLI_USAGE: str

# the skeleton ctx: struct bpf_loader_ctx (fields at these offsets), then one bpf_map_desc
# per map (fields at these offsets) and one bpf_prog_desc per program (src/loader_abi.rs)
LOADER_CTX_FLAGS: int
LOADER_CTX_LOG_LEVEL: int
LOADER_CTX_LOG_SIZE: int
LOADER_CTX_LOG_BUF: int
LOADER_CTX_SIZE: int
MAP_DESC_SIZE: int
MAP_DESC_MAX_ENTRIES: int
MAP_DESC_INITIAL_VALUE: int
PROG_DESC_SIZE: int

# union bpf_attr: attr sizes and field offsets of the commands a loader issues
# (src/loader_abi.rs); the names in MAP_CREATE and PROG_LOAD are BPF_OBJ_NAME_LEN bytes
BPF_OBJ_NAME_LEN: int
BTF_LOAD_ATTR_SIZE: int
BTF_LOAD_BTF: int
BTF_LOAD_BTF_LOG_BUF: int
BTF_LOAD_BTF_SIZE: int
BTF_LOAD_BTF_LOG_SIZE: int
BTF_LOAD_BTF_LOG_LEVEL: int
MAP_CREATE_ATTR_SIZE: int
MAP_CREATE_MAP_TYPE: int
MAP_CREATE_KEY_SIZE: int
MAP_CREATE_VALUE_SIZE: int
MAP_CREATE_MAX_ENTRIES: int
MAP_CREATE_MAP_FLAGS: int
MAP_CREATE_INNER_MAP_FD: int
MAP_CREATE_NUMA_NODE: int
MAP_CREATE_MAP_NAME: int
MAP_CREATE_MAP_IFINDEX: int
MAP_CREATE_BTF_FD: int
MAP_CREATE_BTF_KEY_TYPE_ID: int
MAP_CREATE_BTF_VALUE_TYPE_ID: int
MAP_CREATE_BTF_VMLINUX_VALUE_TYPE_ID: int
MAP_CREATE_MAP_EXTRA: int
MAP_UPDATE_ATTR_SIZE: int
MAP_UPDATE_MAP_FD: int
MAP_UPDATE_KEY: int
MAP_UPDATE_VALUE: int
MAP_UPDATE_FLAGS: int
MAP_FREEZE_ATTR_SIZE: int
MAP_FREEZE_MAP_FD: int
PROG_LOAD_ATTR_SIZE: int
PROG_LOAD_PROG_TYPE: int
PROG_LOAD_INSN_CNT: int
PROG_LOAD_INSNS: int
PROG_LOAD_LICENSE: int
PROG_LOAD_LOG_LEVEL: int
PROG_LOAD_LOG_SIZE: int
PROG_LOAD_LOG_BUF: int
PROG_LOAD_PROG_FLAGS: int
PROG_LOAD_PROG_NAME: int
PROG_LOAD_PROG_IFINDEX: int
PROG_LOAD_EXPECTED_ATTACH_TYPE: int
PROG_LOAD_PROG_BTF_FD: int
PROG_LOAD_FUNC_INFO_REC_SIZE: int
PROG_LOAD_FUNC_INFO: int
PROG_LOAD_FUNC_INFO_CNT: int
PROG_LOAD_LINE_INFO_REC_SIZE: int
PROG_LOAD_LINE_INFO: int
PROG_LOAD_LINE_INFO_CNT: int
PROG_LOAD_ATTACH_BTF_ID: int
PROG_LOAD_ATTACH_BTF_OBJ_FD: int
PROG_LOAD_CORE_RELO_CNT: int
PROG_LOAD_FD_ARRAY: int
PROG_LOAD_CORE_RELOS: int
PROG_LOAD_CORE_RELO_REC_SIZE: int

# the loader's helper ids, the bpf() commands (the loader's and run()'s), its stack slots,
# fd-array slots and cleanup label (src/loader_abi.rs)
FN_TRACE_PRINTK: int
FN_PROBE_READ_KERNEL: int
FN_COPY_FROM_USER: int
FN_SYS_BPF: int
FN_BTF_FIND_BY_NAME_KIND: int
FN_SYS_CLOSE: int
FN_KALLSYMS_LOOKUP_NAME: int
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
LOADER_STACK_SIZE: int
LOADER_STACK_BTF_FD: int
LOADER_STACK_INNER_MAP_FD: int
LOADER_STACK_PROG_FDS: int
LOADER_STACK_PROGS: int
LOADER_MIN_MAP_SLOTS: int
LOADER_KFUNC_SLOTS: int
LOADER_CLEANUP_LABEL: int

# struct bpf_insn: opcode pieces (class | op | source, access sizes), ld_imm64 / call src
# values, the instruction's size and imm's offset (src/insn.rs)
BPF_PSEUDO_MAP_FD: int
BPF_PSEUDO_MAP_VALUE: int
BPF_PSEUDO_BTF_ID: int
BPF_PSEUDO_MAP_IDX: int
BPF_PSEUDO_MAP_IDX_VALUE: int
BPF_PSEUDO_CALL: int
BPF_PSEUDO_FUNC: int
BPF_PSEUDO_KFUNC_CALL: int
BPF_LD_IMM64: int
BPF_CALL: int
BPF_EXIT: int
BPF_JMP: int
BPF_JMP32: int
BPF_K: int
BPF_X: int
BPF_ALU64: int
BPF_ALU: int
BPF_LDX: int
BPF_STX: int
BPF_ST: int
BPF_MEM: int
BPF_ADD: int
BPF_RSH: int
BPF_AND: int
BPF_MOV: int
BPF_JA: int
BPF_JEQ: int
BPF_JNE: int
BPF_JSET: int
BPF_JSGE: int
BPF_JSLT: int
BPF_JSLE: int
BPF_GOTOL: int
BPF_SUB: int
BPF_MUL: int
BPF_DIV: int
BPF_OR: int
BPF_LSH: int
BPF_NEG: int
BPF_MOD: int
BPF_XOR: int
BPF_ARSH: int
BPF_END: int
BPF_JGT: int
BPF_JGE: int
BPF_JSGT: int
BPF_JLT: int
BPF_JLE: int
BPF_ATOMIC: int
BPF_CLASS_MASK: int
BPF_OP_MASK: int
BPF_SIZE_MASK: int
BPF_MODE_MASK: int
BPF_SRC_MASK: int
BPF_W: int
BPF_H: int
BPF_B: int
BPF_DW: int
INSN_SIZE: int
INSN_REGS_OFFSET: int
INSN_OFF_OFFSET: int
INSN_IMM_OFFSET: int
LD_IMM64_IMM_HI_OFFSET: int

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

# BTF kinds explain names (src/btf/mod.rs)
BTF_KIND_STRUCT: int
BTF_KIND_TYPEDEF: int
BTF_KIND_FUNC: int
BTF_KIND_VAR: int
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
