"""Real kernels under QEMU (software emulation): the kernels scripts/kernels.sh
fetched (``$BPFGEN_CACHE/kernels/manifest.tsv``), booted once each per test run
with a whole list of jobs.

The amd64 kernels boot through virtme-ng: the guest sees the host's root file
system read-only, so a job runs the host's binaries (lskel-run) on blobs the
host wrote into a shared directory, where the results come back. The s390x
kernel cannot run this host's binaries, so it boots from an initramfs built here
(sid's static s390x busybox, the static runners, the blobs) and its jobs print
their results on the console between markers. Output of QEMU goes through a pipe
(two writers share vng's stdout); a boot past its time limit raises, it never
skips.
"""

from __future__ import annotations

import gzip
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
    name: str  # lts | sid | s390x
    version: str
    vmlinuz: Path
    busybox: Path | None = None  # s390x: the guest's only userland

    @property
    def config(self) -> Path:
        """The kernel's build configuration, as its package installs it. The guest
        sees the host's /boot, where it is not, so a job that generates loaders in
        the guest passes this file (libbpf would find none either)."""
        for path in (self.vmlinuz.parent / "config",
                     self.vmlinuz.parent / f"config-{self.version}"):
            if path.is_file():
                return path
        raise FileNotFoundError(f"no config beside {self.vmlinuz}")


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
        elif len(fields) == 4:
            found.append(Kernel(fields[0], fields[1], Path(fields[2]), Path(fields[3])))
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


def newc_archive(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A cpio archive in the kernel's initramfs ("newc") format of ``files``: path ->
    (mode, contents); a symbolic link's contents are its target. Written here so
    that the test command needs no cpio package."""
    out = bytearray()

    def entry(ino: int, name: str, mode: int, data: bytes) -> None:
        path = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(path), 0)
        out.extend(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + path)
        out.extend(bytes(-len(out) % 4))
        out.extend(data)
        out.extend(bytes(-len(out) % 4))

    for ino, (name, (mode, data)) in enumerate(sorted(files.items()), start=1):
        entry(ino, name, mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return bytes(out)


S_DIR, S_FILE, S_EXEC = 0o040755, 0o100644, 0o100755

#: the guest's /init: busybox's applets, /proc and /sys, the jobs, then power off
#: (the kernel reboots on a panic and QEMU is told not to, so a crash ends the run)
S390X_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "@@ kernel $(uname -r)"
sh /jobs/run.sh
echo "@@ jobs done"
poweroff -f
"""


def boot_initramfs(kernel: Kernel, job: str, files: dict[str, bytes],
                   timeout: float = 900) -> str:
    """Boots the s390x ``kernel`` from an initramfs holding its busybox, ``files``
    (name -> contents, executable, under /jobs) and the shell script ``job``
    (/jobs/run.sh); returns what the console printed. A boot that fails, exceeds
    ``timeout``, or never reaches the end of the jobs raises."""
    assert kernel.busybox is not None, kernel
    tree: dict[str, tuple[int, bytes]] = {
        d: (S_DIR, b"") for d in ("bin", "dev", "proc", "sys", "jobs")}
    tree["bin/busybox"] = (S_EXEC, kernel.busybox.read_bytes())
    tree["init"] = (S_EXEC, S390X_INIT.encode())
    tree["jobs/run.sh"] = (S_FILE, job.encode())
    for name, data in files.items():
        tree[f"jobs/{name}"] = (S_EXEC, data)
    initrd = Path(os.environ.get("TMPDIR", "/tmp")) / f"bpfgen-initrd-{os.getpid()}.gz"
    initrd.write_bytes(gzip.compress(newc_archive(tree), 1))
    argv = ["qemu-system-s390x", "-M", "s390-ccw-virtio", "-cpu", "max", "-m", "1G",
            "-nographic", "-no-reboot", "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
            "-append", "console=ttysclp0 quiet panic=-1"]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace",
                           timeout=timeout)
    finally:
        initrd.unlink()
    if p.returncode != 0 or "@@ jobs done" not in p.stdout:
        raise RuntimeError(f"{kernel.name} {kernel.version}: qemu exited {p.returncode} "
                           f"before the jobs ended:\n{p.stdout[-3000:]}")
    return p.stdout
