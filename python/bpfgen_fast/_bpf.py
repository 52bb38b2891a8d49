"""The raw ``bpf(2)`` system call over ctypes (no libbpf), with just the
commands a light skeleton needs: map create/update/lookup/delete, prog load,
test run, object info, raw tracepoint open and link create.

Every function raises :class:`OSError` (``errno`` set) when the kernel says no;
attributes are built in zeroed buffers of exactly the size skel_internal.h
passes, so the kernel never sees stray bytes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from collections.abc import Callable
from dataclasses import dataclass

from bpfgen_fast import _core

# bpf commands: the core's (src/loader_abi.rs); short names for the calls below
MAP_CREATE = _core.BPF_MAP_CREATE
MAP_LOOKUP_ELEM = _core.BPF_MAP_LOOKUP_ELEM
MAP_UPDATE_ELEM = _core.BPF_MAP_UPDATE_ELEM
MAP_DELETE_ELEM = _core.BPF_MAP_DELETE_ELEM
PROG_LOAD = _core.BPF_PROG_LOAD
PROG_TEST_RUN = _core.BPF_PROG_TEST_RUN
OBJ_GET_INFO_BY_FD = _core.BPF_OBJ_GET_INFO_BY_FD
RAW_TRACEPOINT_OPEN = _core.BPF_RAW_TRACEPOINT_OPEN
BTF_LOAD = _core.BPF_BTF_LOAD
MAP_FREEZE = _core.BPF_MAP_FREEZE
LINK_CREATE = _core.BPF_LINK_CREATE
ITER_CREATE = _core.BPF_ITER_CREATE

CMD_NAMES = {
    MAP_CREATE: "MAP_CREATE", MAP_LOOKUP_ELEM: "MAP_LOOKUP_ELEM",
    MAP_UPDATE_ELEM: "MAP_UPDATE_ELEM", MAP_DELETE_ELEM: "MAP_DELETE_ELEM",
    PROG_LOAD: "PROG_LOAD", PROG_TEST_RUN: "PROG_TEST_RUN",
    OBJ_GET_INFO_BY_FD: "OBJ_GET_INFO_BY_FD", RAW_TRACEPOINT_OPEN: "RAW_TRACEPOINT_OPEN",
    BTF_LOAD: "BTF_LOAD", MAP_FREEZE: "MAP_FREEZE", LINK_CREATE: "LINK_CREATE",
    ITER_CREATE: "ITER_CREATE",
}

# union bpf_attr sizes as skel_internal.h passes them (offsetofend of the last field used)
MAP_CREATE_ATTR_SZ = 72  # map_extra
ELEM_ATTR_SZ = 32  # flags
PROG_LOAD_ATTR_SZ = 128  # fd_array
TEST_RUN_ATTR_SZ = 80  # test (batch_size)
INFO_ATTR_SZ = 16  # info
RAW_TP_ATTR_SZ = 12  # raw_tracepoint.prog_fd
LINK_CREATE_ATTR_SZ = 28  # link_create.iter_info_len
ITER_CREATE_ATTR_SZ = 8  # iter_create.flags
# Fields of those attrs: where the core names them (a loader's MAP_CREATE and PROG_LOAD use
# the same ones), its offsets; BPF_PROG_TEST_RUN's, which no loader issues, here
_MAP_NAME, _PROG_FLAGS = _core.MAP_CREATE_MAP_NAME, _core.PROG_LOAD_PROG_FLAGS
_PROG_NAME, _FD_ARRAY = _core.PROG_LOAD_PROG_NAME, _core.PROG_LOAD_FD_ARRAY
_NAME_FMT = f"{_core.BPF_OBJ_NAME_LEN - 1}s"  # the name, NUL-terminated
TEST_RUN_RETVAL = 4  # test.retval
TEST_RUN_DATA_SIZE_OUT = 12  # test.data_size_out
TEST_RUN_DURATION = 36  # test.duration
TEST_RUN_CTX_SIZE_IN = 40  # test.ctx_size_in, then ctx_size_out, ctx_in, ctx_out
TEST_RUN_CTX_SIZE_OUT = 44  # test.ctx_size_out

# Type names are the core's (section_defs.rs, libbpf's tables); past a table's end a
# value is shown as unknown(N), as the kernel may know types the table does not.


def map_type_name(value: int) -> str:
    return _core.map_type_name(value) or f"unknown({value})"


def prog_type_name(value: int) -> str:
    return _core.prog_type_name(value) or f"unknown({value})"


def attach_type_name(value: int) -> str:
    return _core.attach_type_name(value) or f"unknown({value})"


# __NR_bpf per architecture (asm-generic tables use 280)
_SYS_BPF = {
    "x86_64": 321, "amd64": 321, "i386": 357, "i686": 357, "aarch64": 280, "arm64": 280,
    "riscv64": 280, "loongarch64": 280, "armv7l": 386, "armv8l": 386, "ppc64le": 361,
    "ppc64": 361, "s390x": 351,
}

_syscall_fn: Callable[[int, int, int, int], int] | None = None


def _syscall() -> Callable[[int, int, int, int], int]:
    global _syscall_fn
    if _syscall_fn is None:
        fn = ctypes.CDLL(None, use_errno=True).syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
        _syscall_fn = fn
    return _syscall_fn


def sys_bpf_nr() -> int:
    machine = platform.machine()
    try:
        return _SYS_BPF[machine]
    except KeyError:
        raise OSError(38, f"bpf(): unknown syscall number for architecture {machine!r}") from None


def sys_bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], size: int) -> int:
    """``bpf(cmd, attr, size)``; returns the result or raises OSError(errno)."""
    ret = int(_syscall()(sys_bpf_nr(), cmd, ctypes.addressof(attr), size))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({CMD_NAMES.get(cmd, str(cmd))}): {os.strerror(err)}")
    return ret


def attr_buf(size: int) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(size)


def addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return 0 if buf is None else ctypes.addressof(buf)


def map_create(
    map_type: int, name: str, key_size: int, value_size: int, max_entries: int, flags: int = 0
) -> int:
    a = attr_buf(MAP_CREATE_ATTR_SZ)
    struct.pack_into("<IIIII", a, 0, map_type, key_size, value_size, max_entries, flags)
    struct.pack_into(_NAME_FMT, a, _MAP_NAME, name.encode())
    return sys_bpf(MAP_CREATE, a, MAP_CREATE_ATTR_SZ)


def map_update_elem(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    a = attr_buf(ELEM_ATTR_SZ)
    struct.pack_into("<IxxxxQQQ", a, 0, fd, addr(k), addr(v), flags)
    sys_bpf(MAP_UPDATE_ELEM, a, ELEM_ATTR_SZ)


def map_delete_elem(fd: int, key: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    a = attr_buf(ELEM_ATTR_SZ)
    struct.pack_into("<IxxxxQ", a, 0, fd, addr(k))
    sys_bpf(MAP_DELETE_ELEM, a, ELEM_ATTR_SZ)


def map_lookup_elem(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value for ``key``, or None when the kernel says ENOENT."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(max(value_size, 1))
    a = attr_buf(ELEM_ATTR_SZ)
    struct.pack_into("<IxxxxQQQ", a, 0, fd, addr(k), addr(v), 0)
    try:
        sys_bpf(MAP_LOOKUP_ELEM, a, ELEM_ATTR_SZ)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return v.raw[:value_size]


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str,
    name: str,
    *,
    fd_array: int = 0,
    prog_flags: int = 0,
    log_level: int = 0,
    log_size: int = 0,
    log_buf: int = 0,
) -> int:
    """BPF_PROG_LOAD; ``fd_array`` and ``log_buf`` are addresses."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    a = attr_buf(PROG_LOAD_ATTR_SZ)
    struct.pack_into("<IIQQIIQI", a, 0, prog_type, len(insns) // _core.INSN_SIZE, addr(code),
                     addr(lic), log_level, log_size, log_buf, 0)
    struct.pack_into("<I", a, _PROG_FLAGS, prog_flags)
    struct.pack_into(_NAME_FMT, a, _PROG_NAME, name.encode())
    struct.pack_into("<Q", a, _FD_ARRAY, fd_array)
    return sys_bpf(PROG_LOAD, a, PROG_LOAD_ATTR_SZ)


@dataclass(frozen=True)
class TestRun:
    retval: int
    duration: int
    data_out: bytes
    ctx_out: bytes


def prog_test_run(
    prog_fd: int,
    *,
    ctx: ctypes.Array[ctypes.c_char] | None = None,
    ctx_size: int | None = None,
    data: bytes | None = None,
    data_size_out: int = 0,
    ctx_size_out: int = 0,
    repeat: int = 0,
) -> TestRun:
    """BPF_PROG_TEST_RUN. ``ctx`` is passed by address (syscall programs write it
    back in place); ``retval`` is the program's return value as a signed int."""
    din = None if data is None else ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(data_size_out) if data_size_out else None
    cout = ctypes.create_string_buffer(ctx_size_out) if ctx_size_out else None
    a = attr_buf(TEST_RUN_ATTR_SZ)
    csize = 0 if ctx is None else (len(ctx) if ctx_size is None else ctx_size)
    struct.pack_into(
        "<IiIIQQII", a, 0, prog_fd, 0, 0 if data is None else len(data), data_size_out,
        addr(din), addr(dout), repeat, 0,
    )
    struct.pack_into("<IIQQ", a, TEST_RUN_CTX_SIZE_IN, csize, ctx_size_out, addr(ctx), addr(cout))
    sys_bpf(PROG_TEST_RUN, a, TEST_RUN_ATTR_SZ)
    retval, = struct.unpack_from("<i", a, TEST_RUN_RETVAL)
    out_sz, = struct.unpack_from("<I", a, TEST_RUN_DATA_SIZE_OUT)
    duration, = struct.unpack_from("<I", a, TEST_RUN_DURATION)
    cout_sz, = struct.unpack_from("<I", a, TEST_RUN_CTX_SIZE_OUT)
    return TestRun(
        retval=retval,
        duration=duration,
        data_out=b"" if dout is None else dout.raw[: min(out_sz, data_size_out)],
        ctx_out=b"" if cout is None else cout.raw[: min(cout_sz, ctx_size_out)],
    )


def raw_tracepoint_open(name: str | None, prog_fd: int) -> int:
    tp = None if name is None else ctypes.create_string_buffer(name.encode())
    a = attr_buf(RAW_TP_ATTR_SZ)
    struct.pack_into("<QI", a, 0, addr(tp), prog_fd)
    return sys_bpf(RAW_TRACEPOINT_OPEN, a, RAW_TP_ATTR_SZ)


def link_create(prog_fd: int, target_fd: int, attach_type: int) -> int:
    """BPF_LINK_CREATE; for ``BPF_STRUCT_OPS`` ``prog_fd`` is the struct_ops map's fd."""
    a = attr_buf(LINK_CREATE_ATTR_SZ)
    struct.pack_into("<III", a, 0, prog_fd, target_fd, attach_type)
    return sys_bpf(LINK_CREATE, a, LINK_CREATE_ATTR_SZ)


def iter_create(link_fd: int) -> int:
    a = attr_buf(ITER_CREATE_ATTR_SZ)
    struct.pack_into("<I", a, 0, link_fd)
    return sys_bpf(ITER_CREATE, a, ITER_CREATE_ATTR_SZ)


def _obj_info(fd: int, size: int) -> ctypes.Array[ctypes.c_char]:
    info = ctypes.create_string_buffer(size)
    a = attr_buf(INFO_ATTR_SZ)
    struct.pack_into("<IIQ", a, 0, fd, size, addr(info))
    sys_bpf(OBJ_GET_INFO_BY_FD, a, INFO_ATTR_SZ)
    return info


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


@dataclass(frozen=True)
class MapKernelInfo:
    """``struct bpf_map_info`` as the kernel reports it."""

    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int

    @property
    def type_name(self) -> str:
        return map_type_name(self.type)


@dataclass(frozen=True)
class ProgKernelInfo:
    """The parts of ``struct bpf_prog_info`` that need no second call."""

    type: int
    id: int
    name: str
    xlated_prog_len: int
    nr_map_ids: int
    btf_id: int
    func_info_rec_size: int
    nr_func_info: int
    nr_line_info: int
    line_info_rec_size: int
    attach_btf_id: int

    @property
    def type_name(self) -> str:
        return prog_type_name(self.type)


@dataclass(frozen=True)
class LinkKernelInfo:
    type: int
    id: int
    prog_id: int


# struct bpf_{map,prog,link}_info as this module asks for them: the size it passes and
# where the fields it reads sit (like the attr sizes above, facts of these calls only)
MAP_INFO_SZ = 88  # map_extra
MAP_INFO_NAME = 24  # name, after type, id, key_size, value_size, max_entries, map_flags
MAP_INFO_BTF_ID = 64  # btf_id, then btf_key_type_id, btf_value_type_id
MAP_INFO_MAP_EXTRA = 80
PROG_INFO_SZ = 232  # attach_btf_id
PROG_INFO_XLATED_PROG_LEN = 20
PROG_INFO_NR_MAP_IDS = 52
PROG_INFO_NAME = 64
PROG_INFO_BTF_ID = 128  # btf_id, then func_info_rec_size
PROG_INFO_NR_FUNC_INFO = 144  # nr_func_info, then nr_line_info
PROG_INFO_LINE_INFO_REC_SIZE = 172
PROG_INFO_ATTACH_BTF_ID = 224
LINK_INFO_SZ = 64  # type, id, prog_id, then the type's own fields


def _name_at(raw: bytes, off: int) -> str:
    return _cstr(raw[off : off + _core.BPF_OBJ_NAME_LEN])


def map_info(fd: int) -> MapKernelInfo:
    b = _obj_info(fd, MAP_INFO_SZ).raw
    t, i, ks, vs, me, fl = struct.unpack_from("<6I", b, 0)
    btf_id, bk, bv = struct.unpack_from("<3I", b, MAP_INFO_BTF_ID)
    extra, = struct.unpack_from("<Q", b, MAP_INFO_MAP_EXTRA)
    return MapKernelInfo(t, i, ks, vs, me, fl, _name_at(b, MAP_INFO_NAME), btf_id, bk, bv, extra)


def prog_info(fd: int) -> ProgKernelInfo:
    b = _obj_info(fd, PROG_INFO_SZ).raw
    t, i = struct.unpack_from("<II", b, 0)
    xlated, = struct.unpack_from("<I", b, PROG_INFO_XLATED_PROG_LEN)
    nr_map_ids, = struct.unpack_from("<I", b, PROG_INFO_NR_MAP_IDS)
    btf_id, fi_rec = struct.unpack_from("<II", b, PROG_INFO_BTF_ID)
    nr_fi, nr_li = struct.unpack_from("<II", b, PROG_INFO_NR_FUNC_INFO)
    li_rec, = struct.unpack_from("<I", b, PROG_INFO_LINE_INFO_REC_SIZE)
    attach_btf_id, = struct.unpack_from("<I", b, PROG_INFO_ATTACH_BTF_ID)
    return ProgKernelInfo(t, i, _name_at(b, PROG_INFO_NAME), xlated, nr_map_ids, btf_id, fi_rec,
                          nr_fi, nr_li, li_rec, attach_btf_id)


def link_info(fd: int) -> LinkKernelInfo:
    b = _obj_info(fd, LINK_INFO_SZ).raw
    t, i, p = struct.unpack_from("<III", b, 0)
    return LinkKernelInfo(t, i, p)


__all__ = [
    "LinkKernelInfo",
    "MapKernelInfo",
    "ProgKernelInfo",
    "TestRun",
    "attach_type_name",
    "iter_create",
    "link_create",
    "link_info",
    "map_create",
    "map_delete_elem",
    "map_info",
    "map_lookup_elem",
    "map_type_name",
    "map_update_elem",
    "prog_info",
    "prog_load",
    "prog_test_run",
    "prog_type_name",
    "raw_tracepoint_open",
    "sys_bpf",
]
