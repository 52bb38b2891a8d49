"""Run inside a VM guest (tests/test_vm.py): loads each object through
bpfgen_fast.run(), with the loader generated in the guest from the guest kernel's
own facts (kallsyms, kconfig, possible CPUs), and writes one JSON object: object
name -> {"ok": bool, "maps": n, "progs": n} or {"ok": false, "error": "..."}.

    python tests/guest_run_corpus.py KCONFIG OUT.json OBJECT...

KCONFIG is the guest kernel's build configuration: the guest sees the host's /boot,
where the guest kernel's is not, and it has no /proc/config.gz.

The result file is written after every object, so a guest that dies mid-way still
leaves the verdicts it reached.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import bpfgen_fast


def main(kconfig: str, out: Path, objects: list[str]) -> int:
    results: dict[str, dict[str, object]] = {}
    for path in objects:
        name = Path(path).name
        try:
            obj = bpfgen_fast.BpfObject.open(path)
            with bpfgen_fast.run(obj.gen_loader(kconfig_file=kconfig)) as loaded:
                results[name] = {"ok": True, "maps": len(loaded.maps),
                                 "progs": len(loaded.progs)}
        except bpfgen_fast.BpfgenError as e:
            results[name] = {"ok": False, "error": str(e)[:500]}
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:]))
