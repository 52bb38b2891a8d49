"""Real kernels under QEMU (virtme-ng, software emulation): the kernels
scripts/kernels.sh fetched (``$BPFGEN_CACHE/kernels/manifest.tsv``), booted once
each per test run with a whole list of jobs, results written to a shared
directory.

The guest sees the host's root file system read-only, so a job runs the host's
binaries (lskel-run) on blobs the host wrote into the shared directory. Output of
vng goes through a pipe (two writers share its stdout); a boot past its time
limit raises, it never skips.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support import CACHE

MANIFEST = CACHE / "kernels" / "manifest.tsv"
VNG = Path(sys.executable).parent / "vng"


@dataclass(frozen=True)
class Kernel:
    name: str  # lts | sid
    version: str
    vmlinuz: Path


def kernels() -> tuple[list[Kernel], str | None]:
    """The fetched kernels, or why there are none (the reason to skip with)."""
    if not MANIFEST.is_file():
        return [], f"no kernels fetched: {MANIFEST} missing (run scripts/kernels.sh)"
    found: list[Kernel] = []
    for line in MANIFEST.read_text().splitlines():
        fields = line.split("\t")
        if fields[0] == "unavailable":
            return [], "real kernels unavailable: " + fields[1]
        if len(fields) == 3:
            found.append(Kernel(fields[0], fields[1], Path(fields[2])))
    if not VNG.is_file():
        return [], f"virtme-ng not installed ({VNG} missing; scripts/kernels.sh installs it)"
    return found, None


def boot(kernel: Kernel, job: str, shared: Path, timeout: float = 1200) -> str:
    """Boots ``kernel`` once and runs the shell script ``job`` in it (as root, with
    ``shared`` writable at the same path); returns what the guest printed. A boot
    that fails or exceeds ``timeout`` raises."""
    script = shared / "job.sh"
    script.write_text(job)
    argv = [str(VNG), "--disable-kvm", "-m", "2G", "--rwdir", str(shared),
            "--run", str(kernel.vmlinuz), "--exec", f"sh {shlex.quote(str(script))}"]
    env = dict(os.environ, PATH=f"{VNG.parent}:{os.environ.get('PATH', '')}")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{kernel.name} {kernel.version}: vng exited {p.returncode}:\n"
                           f"{p.stdout[-3000:]}")
    return p.stdout
