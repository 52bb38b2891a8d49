"""Synthetic BPF objects for scaling checks: N programs, N maps, N globals.

    python benches/synth.py [N ...]        # prints the paths (default 1 10 100 1000)

Two families, compiled with clang-19 into ``~/.cache/bpfgen/synth/`` (keyed by
the C source's hash, so a rerun compiles nothing):

* ``progs_N``: N tracepoint programs, N static sub-programs in ``.text`` (each
  program calls its own and the next one's), N ``.bss`` counters and N
  ``.rodata`` constants, 4 hash maps. Exercises relocation collection,
  sub-program linking, func/line info and the loader emitter.
* ``maps_N``: N hash maps and one program touching each of them (more than
  64 maps: generation is refused, as by bpftool; opening is still timed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("BPFGEN_SYNTH_CACHE")
             or Path(os.environ.get("BPFGEN_CACHE") or "~/.cache/bpfgen") / "synth").expanduser()
CLANG = os.environ.get("CLANG", "clang-19")
SIZES = (1, 10, 100, 1000)

_HEAD = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
"""

_MAP = """\
struct {{
\t__uint(type, BPF_MAP_TYPE_HASH);
\t__uint(max_entries, 16);
\t__type(key, __u32);
\t__type(value, __u64);
}} map_{i} SEC(".maps");
"""


def progs_source(n: int) -> str:
    out = [_HEAD]
    out += [_MAP.format(i=i) for i in range(4)]
    for i in range(n):
        out.append(f"__u64 counter_{i} = 0;\nconst volatile __u32 limit_{i} = {i + 1};\n")
    for i in range(n):
        out.append(
            f"static __attribute__((noinline)) int sub_{i}(int x)\n"
            f"{{\n\treturn x * {i + 3} + limit_{i};\n}}\n"
        )
    for i in range(n):
        out.append(
            f'SEC("tracepoint/syscalls/sys_enter_openat")\n'
            f"int prog_{i}(void *ctx)\n{{\n"
            f"\t__u32 key = {i};\n"
            f"\t__u64 *v = bpf_map_lookup_elem(&map_{i % 4}, &key);\n\n"
            f"\tif (v)\n\t\t__sync_fetch_and_add(v, 1);\n"
            f"\tcounter_{i} += sub_{i}({i}) + sub_{(i + 1) % n}(key);\n"
            f"\treturn 0;\n}}\n"
        )
    return "\n".join(out)


def maps_source(n: int) -> str:
    out = [_HEAD]
    out += [_MAP.format(i=i) for i in range(n)]
    body = "".join(
        f"\tv = bpf_map_lookup_elem(&map_{i}, &key);\n\tif (v)\n\t\tsum += *v;\n" for i in range(n)
    )
    out.append(
        'SEC("tracepoint/syscalls/sys_enter_openat")\n'
        "int prog(void *ctx)\n{\n\t__u32 key = 0;\n\t__u64 *v, sum = 0;\n\n"
        f"{body}\treturn sum & 1;\n}}\n"
    )
    return "\n".join(out)


def build(kind: str, n: int, cache: Path = CACHE) -> Path:
    """Compile ``kind`` (``progs`` or ``maps``) with ``n`` items; cached."""
    source = progs_source(n) if kind == "progs" else maps_source(n)
    flags = ["-O2", "-g", "--target=bpf", "-mcpu=v3", "-I/usr/include/x86_64-linux-gnu"]
    key = hashlib.sha256((source + "\0".join([CLANG, *flags])).encode()).hexdigest()[:12]
    out = cache / f"{kind}_{n}.{key}.bpf.o"
    if out.is_file():
        return out
    if shutil.which(CLANG) is None:
        raise RuntimeError(f"{CLANG} not found")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp) / f"{kind}_{n}.c"
        src.write_text(source)
        obj = Path(tmp) / "out.o"
        subprocess.run([CLANG, *flags, "-c", str(src), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        os.replace(obj, out)
    return out


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(SIZES)
    for kind in ("progs", "maps"):
        for n in sizes:
            print(build(kind, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
