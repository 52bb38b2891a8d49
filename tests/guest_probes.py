"""Run inside a VM guest (tests/test_vm.py): loads progs_probes.bpf.o through
bpfgen_fast.run(), attaches its kprobe, kretprobe and uprobe programs by hand through
perf_event_open (light skeletons do not auto-attach them), triggers each, and prints
the ``hits`` counters the programs bumped as JSON.

    python tests/guest_probes.py OBJECT OUT.json
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import sys
from pathlib import Path

import bpfgen_fast
from elftools.elf.elffile import ELFFile

PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
PERF_FLAG_FD_CLOEXEC = 1 << 3
NR_PERF_EVENT_OPEN = 298  # x86-64
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

libc = ctypes.CDLL(None, use_errno=True)
keep: list[object] = []


def pmu(name: str) -> tuple[int, int]:
    """(PMU type, the retprobe bit) of the kprobe or uprobe PMU."""
    base = Path("/sys/bus/event_source/devices") / name
    bit = int((base / "format" / "retprobe").read_text().strip().split(":")[1])
    return int((base / "type").read_text()), 1 << bit


def perf_probe(kind: str, target: str, offset: int, ret: bool, prog_fd: int) -> int:
    ptype, retbit = pmu(kind)
    name = ctypes.create_string_buffer(target.encode())
    keep.append(name)
    attr = bytearray(128)
    # type, size, config; sample_period..; config1 (name) at 56, config2 (offset) at 64
    struct.pack_into("<IIQ", attr, 0, ptype, len(attr), retbit if ret else 0)
    struct.pack_into("<QQ", attr, 56, ctypes.addressof(name), offset)
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = libc.syscall(NR_PERF_EVENT_OPEN, buf, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"perf_event_open {kind} {target}")
    for req, arg in ((PERF_EVENT_IOC_SET_BPF, prog_fd), (PERF_EVENT_IOC_ENABLE, 0)):
        if libc.ioctl(fd, req, arg) != 0:
            raise OSError(ctypes.get_errno(), f"ioctl {req:#x} {kind} {target}")
    return int(fd)


def file_offset(path: str, symbol: str) -> int:
    """File offset of ``symbol`` in the shared object at ``path`` (what uprobes take)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sec in ("dynsym", ".symtab"):
            table = elf.get_section_by_name("." + sec.lstrip("."))
            if table is None:
                continue
            for sym in table.iter_symbols():  # type: ignore[attr-defined]
                if sym.name == symbol and sym["st_value"]:
                    vaddr = sym["st_value"]
                    for seg in elf.iter_segments():
                        if seg["p_type"] == "PT_LOAD" and (
                                seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_memsz"]):
                            return int(vaddr - seg["p_vaddr"] + seg["p_offset"])
    raise LookupError(f"{symbol} not in {path}")


def main() -> int:
    obj, out = sys.argv[1], Path(sys.argv[2])
    with bpfgen_fast.run(bpfgen_fast.BpfObject.open(obj)) as loaded:
        fds = [
            perf_probe("kprobe", "do_sys_openat2", 0, False, loaded.progs["kp_open"]),
            perf_probe("kprobe", "do_sys_openat2", 0, True, loaded.progs["kretp_open"]),
            perf_probe("uprobe", LIBC, file_offset(LIBC, "getpid"), False,
                       loaded.progs["up_readline"]),
        ]
        for _ in range(3):
            with open("/proc/self/stat"):
                pass
            libc.getpid()
        hits = list(struct.unpack_from("<8Q", loaded.bss, 0))
        for fd in fds:
            os.close(fd)
    out.write_text(json.dumps({"kprobe": hits[0], "kretprobe": hits[1], "uprobe": hits[2]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
