"""Kernel capabilities the test suite relies on, each probed once per run of the test
command with the cheapest real ``bpf(2)`` call that shows it.

Machines of one kind differ in what their kernel permits (one refuses arena maps with
EPERM, another allows them), so no kernel test may assume a capability because it worked
on one machine. Every probe here is a hand-built system call over ctypes, never
bpfgen_fast's output, so a bug in our loaders can never make a capability look absent.

One module for pytest (tests/conftest.py), the selftests differential and the VM runner:

* :func:`capabilities` probes every capability (or reads the results the test command
  saved in ``BPFGEN_CAPS_FILE``, so a run probes once), applying ``BPFGEN_TEST_DENY``.
* :func:`missing` says which of some capabilities are absent, with the reason to skip
  with, e.g. ``kernel refuses BPF_MAP_TYPE_ARENA (EPERM)``.
* :func:`record_skip` appends a skip to ``BPFGEN_SKIP_LOG``; ``--summary`` counts them.
* :func:`object_caps` names the capabilities a BPF object's load needs, from its map and
  program types.

``BPFGEN_TEST_DENY=all`` (or a comma-separated list of capability names) forces probes to
"missing", to show that the suite passes on a machine whose kernel has none of them.

Command line: ``python tests/kcaps.py [--save FILE] [--table] [--summary SKIPLOG]
[--columns NAME=FILE...]``.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import mmap
import os
import platform
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}

# bpf commands
_MAP_CREATE, _MAP_UPDATE_ELEM, _MAP_DELETE_ELEM, _PROG_LOAD = 0, 2, 3, 5
_PROG_TEST_RUN, _BTF_LOAD = 10, 18

# map flags, program flags
_F_NO_PREALLOC, _F_MMAPABLE, _F_SLEEPABLE = 1 << 0, 1 << 10, 1 << 4

# attach types
_TRACE_RAW_TP, _TRACE_FENTRY, _TRACE_FEXIT, _LSM_MAC, _TRACE_ITER = 23, 24, 25, 27, 28
_CGROUP_INET_SOCK_CREATE, _CGROUP_INET4_BIND, _CGROUP_GETSOCKOPT = 2, 8, 21
_SK_LOOKUP, _NETFILTER = 36, 45

# enum bpf_map_type / enum bpf_prog_type in libbpf's spelling. Written out here rather
# than taken from bpfgen_fast._bpf on purpose: a probe must not share a bug with the
# code it judges.
MAP_TYPES = (
    "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array",
    "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps",
    "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap", "sockhash", "cgroup_storage",
    "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack", "sk_storage",
    "devmap_hash", "struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter",
    "user_ringbuf", "cgrp_storage", "arena",
)
PROG_TYPES = (
    "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp",
    "perf_event", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops",
    "sk_skb", "cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local",
    "lirc_mode2", "sk_reuseport", "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable",
    "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm", "sk_lookup", "syscall", "netfilter",
)
_STORAGE_MAPS = ("sk_storage", "inode_storage", "task_storage", "cgrp_storage")


@dataclass(frozen=True)
class Capability:
    """One probed kernel capability. ``errno`` is 0 when present."""

    name: str
    what: str  # what the kernel is asked, e.g. BPF_MAP_TYPE_ARENA
    present: bool
    errno: int = 0
    detail: str = ""  # why, when absent and not a plain errno (e.g. denied)

    @property
    def reason(self) -> str:
        """The skip reason for a test that needs this capability."""
        if self.present:
            return ""
        if self.detail:
            return f"{self.what}: {self.detail}"
        return f"kernel refuses {self.what} ({errno.errorcode.get(self.errno, self.errno)})"


class _Refused(Exception):
    def __init__(self, err: int, detail: str = "") -> None:
        super().__init__(err, detail)
        self.err = err
        self.detail = detail


# ---------------------------------------------------------------------------------- syscall


class _Bpf:
    def __init__(self) -> None:
        nr = _SYS_BPF.get(platform.machine())
        if nr is None:
            raise _Refused(errno.ENOSYS, f"no bpf() syscall number known for "
                                         f"{platform.machine()}")
        self.nr = nr
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.keep: list[Any] = []  # buffers whose addresses sit in an attr

    def ptr(self, data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        self.keep.append(buf)
        return ctypes.addressof(buf)

    def call(self, cmd: int, attr: bytearray) -> int:
        buf = ctypes.create_string_buffer(bytes(attr), len(attr))
        ret = self.libc.syscall(ctypes.c_long(self.nr), ctypes.c_long(cmd), buf,
                                ctypes.c_long(len(attr)))
        if ret < 0:
            raise _Refused(ctypes.get_errno())
        attr[:] = buf.raw
        return int(ret)

    def map_create(self, map_type: int, key: int, value: int, max_entries: int,
                   flags: int = 0, inner_fd: int = 0, btf_fd: int = 0, btf_key: int = 0,
                   btf_value: int = 0, vmlinux_value: int = 0) -> int:
        a = bytearray(72)
        struct.pack_into("<IIIIII", a, 0, map_type, key, value, max_entries, flags, inner_fd)
        struct.pack_into("<IIII", a, 48, btf_fd, btf_key, btf_value, vmlinux_value)
        return self.call(_MAP_CREATE, a)

    def prog_load(self, prog_type: int, insns: bytes, attach_type: int = 0,
                  attach_btf_id: int = 0, flags: int = 0, license: bytes = b"GPL") -> int:
        a = bytearray(128)
        struct.pack_into("<IIQQ", a, 0, prog_type, len(insns) // 8, self.ptr(insns),
                         self.ptr(license + b"\0"))
        struct.pack_into("<I", a, 44, flags)
        struct.pack_into("<I", a, 68, attach_type)
        struct.pack_into("<I", a, 108, attach_btf_id)
        return self.call(_PROG_LOAD, a)

    def test_run(self, prog_fd: int) -> int:
        a = bytearray(80)
        struct.pack_into("<I", a, 0, prog_fd)
        self.call(_PROG_TEST_RUN, a)
        retval: int = struct.unpack_from("<I", a, 4)[0]
        return retval

    def btf_load(self, blob: bytes) -> int:
        a = bytearray(32)
        struct.pack_into("<QQI", a, 0, self.ptr(blob), 0, len(blob))
        return self.call(_BTF_LOAD, a)

    def update(self, map_fd: int, key: bytes, value: bytes) -> None:
        a = bytearray(32)
        struct.pack_into("<IIQQQ", a, 0, map_fd, 0, self.ptr(key), self.ptr(value), 0)
        self.call(_MAP_UPDATE_ELEM, a)

    def delete(self, map_fd: int, key: bytes) -> None:
        a = bytearray(32)
        struct.pack_into("<IIQ", a, 0, map_fd, 0, self.ptr(key))
        self.call(_MAP_DELETE_ELEM, a)


RETURN_0 = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)

# .BTF with one type: [1] INT 'int' size=4 bits=32
_MINI_BTF = (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 16, 16, 5)
             + struct.pack("<IIII", 1, 1 << 24, 4, 32) + b"\0int\0")


class _Fds:
    """Closes every fd it was given, whatever happens."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def __call__(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def __enter__(self) -> _Fds:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in reversed(self.fds):
            os.close(fd)


# ------------------------------------------------------------------------- vmlinux BTF


class _KernelBtf:
    """Just enough of /sys/kernel/btf/vmlinux: type ids by kind and name, struct sizes
    and members. Names are matched as string offsets, so only wanted names are decoded."""

    _EXTRA: ClassVar[dict[int, int]] = {1: 4, 3: 12, 14: 4, 17: 4}  # trailing bytes per kind
    _PER_VLEN: ClassVar[dict[int, int]] = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}

    def __init__(self, path: Path = Path("/sys/kernel/btf/vmlinux")) -> None:
        try:
            self.raw = path.read_bytes()
        except OSError as e:
            raise _Refused(e.errno or errno.ENOENT, f"no kernel BTF: {path}: "
                                                   f"{e.strerror}") from None
        _, _, _, hdr, toff, tlen, soff, slen = struct.unpack_from("<HBBIIIII", self.raw, 0)
        self.types = (hdr + toff, hdr + toff + tlen)
        self.strs = self.raw[hdr + soff : hdr + soff + slen]

    def name_off(self, name: str) -> int | None:
        at = self.strs.find(b"\0" + name.encode() + b"\0")
        return None if at < 0 else at + 1

    def find(self, kind: int, name: str) -> tuple[int, int, int]:
        """(type id, size field, offset of the trailing data) of NAME of KIND."""
        want = self.name_off(name)
        if want is not None:
            raw, off, end, tid = self.raw, self.types[0], self.types[1], 1
            unpack = struct.Struct("<III").unpack_from
            while off < end:
                name_off, info, size = unpack(raw, off)
                k = (info >> 24) & 0x1F
                if name_off == want and k == kind:
                    return tid, size, off + 12
                off += 12 + self._EXTRA.get(k, 0) + self._PER_VLEN.get(k, 0) * (info & 0xFFFF)
                tid += 1
        raise _Refused(errno.ENOENT, f"{name} not in the kernel BTF")

    def members(self, name: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """(type id, size, {member: (index, byte offset)}) of struct NAME."""
        tid, size, at = self.find(4, name)
        vlen = struct.unpack_from("<I", self.raw, at - 8)[0] & 0xFFFF
        out: dict[str, tuple[int, int]] = {}
        for i in range(vlen):
            name_off, _, bits = struct.unpack_from("<III", self.raw, at + 12 * i)
            end = self.strs.index(b"\0", name_off)
            out[self.strs[name_off:end].decode()] = (i, (bits & 0xFFFFFF) // 8)
        return tid, size, out


_kernel_btf: _KernelBtf | None = None


def _kbtf() -> _KernelBtf:
    global _kernel_btf
    if _kernel_btf is None:
        _kernel_btf = _KernelBtf()
    return _kernel_btf


# ------------------------------------------------------------------------------ probes


def _probe_map(bpf: _Bpf, name: str) -> None:
    t = MAP_TYPES.index(name)
    with _Fds() as fds:
        if name in ("array_of_maps", "hash_of_maps"):
            inner = fds(bpf.map_create(2, 4, 4, 1))
            fds(bpf.map_create(t, 4, 4, 1, inner_fd=inner))
        elif name in _STORAGE_MAPS:
            btf = fds(bpf.btf_load(_MINI_BTF))
            fds(bpf.map_create(t, 4, 4, 0, _F_NO_PREALLOC, btf_fd=btf, btf_key=1, btf_value=1))
        elif name in ("ringbuf", "user_ringbuf"):
            fds(bpf.map_create(t, 0, 0, mmap.PAGESIZE))
        elif name in ("queue", "stack", "bloom_filter"):
            fds(bpf.map_create(t, 0, 4, 1))
        elif name in ("cgroup_storage", "percpu_cgroup_storage"):
            fds(bpf.map_create(t, 8, 4, 0))
        elif name == "lpm_trie":
            fds(bpf.map_create(t, 8, 4, 1, _F_NO_PREALLOC))
        elif name == "stack_trace":
            fds(bpf.map_create(t, 4, 8, 1))
        elif name == "arena":
            fds(bpf.map_create(t, 0, 0, 10, _F_MMAPABLE))
        else:
            fds(bpf.map_create(t, 4, 4, 1))


# program probes: name -> (prog type, expected attach type, BTF target (kind, name) or None)
_PROGS: dict[str, tuple[str, int, tuple[int, str] | None]] = {
    "socket_filter": ("socket_filter", 0, None),
    "kprobe": ("kprobe", 0, None),
    "sched_cls": ("sched_cls", 0, None),
    "sched_act": ("sched_act", 0, None),
    "tracepoint": ("tracepoint", 0, None),
    "xdp": ("xdp", 0, None),
    "perf_event": ("perf_event", 0, None),
    "cgroup_skb": ("cgroup_skb", 0, None),
    "cgroup_sock": ("cgroup_sock", _CGROUP_INET_SOCK_CREATE, None),
    "lwt_in": ("lwt_in", 0, None),
    "lwt_out": ("lwt_out", 0, None),
    "lwt_xmit": ("lwt_xmit", 0, None),
    "sock_ops": ("sock_ops", 0, None),
    "sk_skb": ("sk_skb", 0, None),
    "cgroup_device": ("cgroup_device", 0, None),
    "sk_msg": ("sk_msg", 0, None),
    "raw_tracepoint": ("raw_tracepoint", 0, None),
    "cgroup_sock_addr": ("cgroup_sock_addr", _CGROUP_INET4_BIND, None),
    "sk_reuseport": ("sk_reuseport", 0, None),
    "flow_dissector": ("flow_dissector", 0, None),
    "cgroup_sysctl": ("cgroup_sysctl", 0, None),
    "raw_tracepoint_writable": ("raw_tracepoint_writable", 0, None),
    "cgroup_sockopt": ("cgroup_sockopt", _CGROUP_GETSOCKOPT, None),
    "tracing/fentry": ("tracing", _TRACE_FENTRY, (12, "bpf_fentry_test1")),
    "tracing/fexit": ("tracing", _TRACE_FEXIT, (12, "bpf_fentry_test1")),
    "tracing/tp_btf": ("tracing", _TRACE_RAW_TP, (8, "btf_trace_sched_switch")),
    "tracing/iter": ("tracing", _TRACE_ITER, (12, "bpf_iter_task")),
    "lsm": ("lsm", _LSM_MAC, (12, "bpf_lsm_file_open")),
    "sk_lookup": ("sk_lookup", _SK_LOOKUP, None),
    "netfilter": ("netfilter", _NETFILTER, None),
}
_ATTACH_TO_PROBE = {  # tracing attach types -> the program probe that stands for them
    "trace_fentry": "tracing/fentry", "trace_fexit": "tracing/fexit",
    "modify_return": "tracing/fentry", "trace_raw_tp": "tracing/tp_btf",
    "trace_iter": "tracing/iter",
}


def _probe_prog(bpf: _Bpf, name: str) -> None:
    ptype, attach, target = _PROGS[name]
    btf_id = 0 if target is None else _kbtf().find(*target)[0]
    os.close(bpf.prog_load(PROG_TYPES.index(ptype), RETURN_0, attach, btf_id))


def _probe_btf_load(bpf: _Bpf) -> None:
    os.close(bpf.btf_load(_MINI_BTF))


def _probe_mmapable_array(bpf: _Bpf) -> None:
    with _Fds() as fds:
        fd = fds(bpf.map_create(2, 4, 8, 1, _F_MMAPABLE))
        mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ).close()


def _probe_syscall_loader(bpf: _Bpf) -> None:
    """A sleepable BPF_PROG_TYPE_SYSCALL program run once through BPF_PROG_TEST_RUN:
    the way every loader program runs."""
    insns = struct.pack("<BBhi", 0xB7, 0, 0, 7) + RETURN_0[8:]  # r0 = 7; exit
    with _Fds() as fds:
        fd = fds(bpf.prog_load(PROG_TYPES.index("syscall"), insns, flags=_F_SLEEPABLE))
        got = bpf.test_run(fd)
        if got != 7:
            raise _Refused(errno.EPROTO, f"test run returned {got}, not 7")


def _probe_gotol(bpf: _Bpf) -> None:
    """``gotol`` (BPF_JMP32 | BPF_JA, offset in imm: cpu v4, Linux 6.6) in a sleepable
    syscall program, run: the long form of a loader's jumps beyond 16 bits."""
    insns = b"".join(struct.pack("<BBhi", *i) for i in (
        (0xB7, 0, 0, 7),  # r0 = 7
        (0x55, 0, 1, 7),  # if r0 != 7 goto +1 (never: only so that the next insn is reachable)
        (0x06, 0, 0, 1),  # gotol +1
        (0xB7, 0, 0, 0),  # r0 = 0 (what a misread gotol would run)
        (0x95, 0, 0, 0),  # exit
    ))
    with _Fds() as fds:
        fd = fds(bpf.prog_load(PROG_TYPES.index("syscall"), insns, flags=_F_SLEEPABLE))
        got = bpf.test_run(fd)
        if got != 7:
            raise _Refused(errno.EPROTO, f"test run returned {got}, not 7")


def _probe_struct_ops(bpf: _Bpf) -> None:
    """Registers a TCP congestion control made of three return-0 struct_ops programs by
    writing the bpf_struct_ops_tcp_congestion_ops value, then unregisters it."""
    kbtf = _kbtf()
    ops_id, _, members = kbtf.members("tcp_congestion_ops")
    value_id, value_size, value_members = kbtf.members("bpf_struct_ops_tcp_congestion_ops")
    data = value_members["data"][1]
    value = bytearray(value_size)
    name = f"kcap{os.getpid()}".encode()[:15]
    value[data + members["name"][1] : data + members["name"][1] + len(name)] = name
    with _Fds() as fds:
        for op in ("ssthresh", "undo_cwnd", "cong_avoid"):
            index, offset = members[op]
            fd = fds(bpf.prog_load(PROG_TYPES.index("struct_ops"), RETURN_0, index, ops_id))
            struct.pack_into("<Q", value, data + offset, fd)
        btf = fds(bpf.btf_load(_MINI_BTF))  # map_create wants some BTF fd beside the id
        map_fd = fds(bpf.map_create(MAP_TYPES.index("struct_ops"), 4, value_size, 1,
                                    btf_fd=btf, vmlinux_value=value_id))
        key = bytes(4)
        bpf.update(map_fd, key, bytes(value))
        bpf.delete(map_fd, key)


# name -> (what the kernel is asked, probe)
def _all_probes() -> dict[str, tuple[str, Callable[[_Bpf], None]]]:
    probes: dict[str, tuple[str, Callable[[_Bpf], None]]] = {
        "bpf": ("BPF_MAP_CREATE of an ARRAY map",
                lambda b: os.close(b.map_create(2, 4, 4, 1))),
        "btf_load": ("BPF_BTF_LOAD", _probe_btf_load),
        "syscall_loader": ("BPF_PROG_TEST_RUN of a sleepable BPF_PROG_TYPE_SYSCALL program",
                           _probe_syscall_loader),
        "mmapable_array": ("mmap of a BPF_F_MMAPABLE ARRAY map", _probe_mmapable_array),
        "gotol": ("gotol (BPF_JMP32 | BPF_JA) in a syscall program", _probe_gotol),
        "struct_ops": ("struct_ops registration (tcp_congestion_ops)", _probe_struct_ops),
    }
    for m in MAP_TYPES[1:]:
        if m != "struct_ops":
            probes[f"map:{m}"] = (f"BPF_MAP_TYPE_{m.upper()}",
                                  lambda b, m=m: _probe_map(b, m))  # type: ignore[misc]
    for p, (ptype, _, _) in _PROGS.items():
        what = f"BPF_PROG_TYPE_{ptype.upper()}"
        if "/" in p:
            what += f" ({p.split('/')[1]})"
        probes[f"prog:{p}"] = (what, lambda b, p=p: _probe_prog(b, p))  # type: ignore[misc]
    return probes


PROBES = _all_probes()
BASE = ("bpf", "btf_load", "syscall_loader", "mmapable_array")  # every loader run needs these


def _denied() -> set[str]:
    spec = os.environ.get("BPFGEN_TEST_DENY", "").strip()
    if spec == "all":
        return set(PROBES)
    return {s.strip() for s in spec.split(",") if s.strip()}


def probe_all() -> dict[str, Capability]:
    """Runs every probe now (as root; without root every capability is absent)."""
    out: dict[str, Capability] = {}
    try:
        bpf: _Bpf | None = _Bpf()
        not_root = os.geteuid() != 0
    except _Refused as e:
        bpf, not_root = None, False
        setup = e
    for name, (what, probe) in PROBES.items():
        if not_root:
            out[name] = Capability(name, what, False, errno.EPERM, "not running as root")
            continue
        if bpf is None:
            out[name] = Capability(name, what, False, setup.err, setup.detail)
            continue
        try:
            probe(bpf)
            out[name] = Capability(name, what, True)
        except _Refused as e:
            out[name] = Capability(name, what, False, e.err, e.detail)
        except OSError as e:  # mmap and the like
            out[name] = Capability(name, what, False, e.errno or errno.EIO, "")
        finally:
            bpf.keep.clear()
    return out


_cache: dict[str, Capability] | None = None


def capabilities() -> dict[str, Capability]:
    """Every capability, probed once per process, or read from ``BPFGEN_CAPS_FILE`` when
    the test command saved them there; ``BPFGEN_TEST_DENY`` applied."""
    global _cache
    if _cache is None:
        saved = os.environ.get("BPFGEN_CAPS_FILE")
        caps: dict[str, Capability] | None = None
        if saved and Path(saved).is_file():
            rows = json.loads(Path(saved).read_text())
            caps = {r["name"]: Capability(**r) for r in rows}
            if set(caps) != set(PROBES):  # saved by another version of this module
                caps = None
        if caps is None:
            caps = probe_all()
        _cache = _apply_deny(caps)
    return _cache


def _apply_deny(caps: dict[str, Capability]) -> dict[str, Capability]:
    deny = _denied()
    return {n: Capability(n, c.what, False, 0, "denied by BPFGEN_TEST_DENY")
            if n in deny else c for n, c in caps.items()}


def missing(names: Iterable[str]) -> list[Capability]:
    """The capabilities among ``names`` this kernel lacks (unknown names are an error)."""
    caps = capabilities()
    out = []
    for n in names:
        if n not in caps:
            raise KeyError(f"unknown kernel capability {n!r}")
        if not caps[n].present:
            out.append(caps[n])
    return out


def record_skip(cap: Capability, what: str) -> None:
    """Appends one skip (capability, test or object) to ``BPFGEN_SKIP_LOG``, if set."""
    log = os.environ.get("BPFGEN_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{cap.name}\t{what}\n")


def object_caps(maps: Iterable[str], programs: Iterable[tuple[str, str | None]]) -> list[str]:
    """The capabilities a load needs, beyond :data:`BASE`, from the object's map types
    and (program type, expected attach type) pairs, in libbpf's spelling."""
    need: dict[str, None] = {}
    for m in maps:
        need["struct_ops" if m == "struct_ops" else f"map:{m}"] = None
    for ptype, attach in programs:
        if ptype in ("tracing", "ext"):
            probe = _ATTACH_TO_PROBE.get(attach or "")
            if probe is not None:
                need[f"prog:{probe}"] = None
        elif ptype == "struct_ops":
            need["struct_ops"] = None
        elif ptype == "syscall":
            continue  # the loader probe covers it
        elif f"prog:{ptype}" in PROBES:
            need[f"prog:{ptype}"] = None
    return list(need)


# ---------------------------------------------------------------------------- reports


def table(caps: dict[str, Capability]) -> str:
    width = max(len(n) for n in caps)
    lines = [f"{'capability':<{width}}  here  errno", f"{'-' * width}  ----  -----"]
    for c in caps.values():
        err = "" if c.present else errno.errorcode.get(c.errno, str(c.errno))
        note = f"  ({c.detail})" if c.detail and not c.present else ""
        lines.append(f"{c.name:<{width}}  {'yes' if c.present else 'no':<4}  {err}{note}")
    return "\n".join(lines)


def load(path: Path) -> dict[str, Capability]:
    """Probe results saved with ``--save`` (raw: BPFGEN_TEST_DENY not applied)."""
    return {r["name"]: Capability(**r) for r in json.loads(path.read_text())}


def observed(runs: Iterable[tuple[list[list[Any]], list[list[Any]]]]) -> dict[str, Capability]:
    """Capabilities shown by loaders that ran, where the probes cannot run (the s390x
    guest has no Python): from each run's (maps, programs) as lskel-run reported them,
    ``[type, name]`` per created fd, the map and program types the kernel created, and
    the base a loader needs. What no loader used stays unknown, not refused."""
    caps: dict[str, Capability] = {}

    def seen(name: str) -> None:
        if name in PROBES:
            caps[name] = Capability(name, PROBES[name][0], True, 0, "used by a loader that ran")

    for maps, progs in runs:
        for base in ("bpf", "btf_load", "syscall_loader"):
            seen(base)
        for mtype, _ in (m for m in maps if m[0] is not None):
            if 0 < mtype < len(MAP_TYPES):
                seen(f"map:{MAP_TYPES[mtype]}")
        for ptype, _ in (p for p in progs if p[0] is not None):
            if 0 < ptype < len(PROG_TYPES):
                seen(f"prog:{PROG_TYPES[ptype]}")
    return caps


def save(caps: dict[str, Capability], path: Path) -> None:
    """Write capabilities as ``--save`` does, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps([asdict(c) for c in caps.values()], indent=1))
    os.replace(tmp, path)


def columns(named: list[tuple[str, dict[str, Capability]]]) -> str:
    """One row per capability, one column per kernel: yes, or the errno it refused with."""
    names = list(PROBES)
    width = max(len(n) for n in names)
    heads = [h for h, _ in named]
    cell = max(8, *(len(h) for h in heads))

    def show(c: Capability | None) -> str:
        if c is None:
            return "-"  # not known in that kernel (not probed there, or not used)
        return "yes" if c.present else errno.errorcode.get(c.errno, str(c.errno))

    lines = [f"{'capability':<{width}}" + "".join(f"  {h:<{cell}}" for h in heads)]
    lines.append("-" * width + "".join("  " + "-" * cell for _ in heads))
    for n in names:
        lines.append(f"{n:<{width}}" + "".join(f"  {show(caps.get(n)):<{cell}}"
                                               for _, caps in named))
    return "\n".join(lines)


def summary(log: Path) -> str:
    lines = log.read_text().splitlines() if log.is_file() else []
    counts = Counter(line.split("\t", 1)[0] for line in lines if line)
    if not counts:
        return "skipped for a missing kernel capability: none"
    out = [f"skipped for a missing kernel capability: {sum(counts.values())}"]
    out += [f"  {n:>5}  {cap}" for cap, n in counts.most_common()]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--save", type=Path, help="write the probe results here (JSON)")
    ap.add_argument("--table", action="store_true", help="print the capability table")
    ap.add_argument("--columns", nargs="+", metavar="NAME=FILE",
                    help="print saved probe results side by side, one column per kernel")
    ap.add_argument("--summary", type=Path, metavar="SKIPLOG",
                    help="count the skips recorded in SKIPLOG per capability")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.summary))
        return 0
    if args.columns:
        named = [(spec.split("=", 1)[0], load(Path(spec.split("=", 1)[1])))
                 for spec in args.columns if Path(spec.split("=", 1)[1]).is_file()]
        if named:
            print(columns(named))
        return 0
    if args.save:  # the raw results: BPFGEN_TEST_DENY applies when they are read
        raw = probe_all()
        save(raw, args.save)
        caps = _apply_deny(raw)
    else:
        caps = capabilities()
    if args.table:
        print(table(caps))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
