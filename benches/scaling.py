#!/usr/bin/env python3
"""Scaling check: open and gen_loader time per item for synthetic objects of
1, 10, 100 and 1,000 programs and maps (``synth.py``). Linear code keeps the
µs per item roughly flat from 10 to 1,000; a quadratic step shows up as a
per-item time growing ~10x per row.

    python benches/scaling.py [--repeats 5] [N ...]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpfgen_fast
import synth
from bpfgen_fast import _core

HOST = bpfgen_fast.host_args(page_size=4096, possible_cpus=2)


def best_median(f: object, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()  # type: ignore[operator]
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("sizes", nargs="*", type=int, default=list(synth.SIZES))
    args = ap.parse_args()
    print("| object | items | open µs | open µs/item | gen_loader µs | gen µs/item | result |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for kind in ("progs", "maps"):
        for n in args.sizes:
            path = synth.build(kind, n)
            data = path.read_bytes()
            name = f"{kind}_{n}"
            t_open = best_median(lambda: _core.open(data, name), args.repeats)  # noqa: B023
            obj = _core.open(data, name)
            result = "ok"
            try:
                obj.gen_loader(HOST)
            except bpfgen_fast.BpfgenError as e:
                result = f"refused: {e.reason}"

            def gen() -> None:
                with contextlib.suppress(bpfgen_fast.BpfgenError):  # time to the refusal
                    obj.gen_loader(HOST)  # noqa: B023

            t_gen = best_median(gen, args.repeats)
            print(f"| {name} | {n} | {t_open * 1e6:.0f} | {t_open * 1e6 / n:.1f} | "
                  f"{t_gen * 1e6:.0f} | {t_gen * 1e6 / n:.1f} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
