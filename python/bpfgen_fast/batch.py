"""Many objects at once: :func:`gen_batch` generates light skeletons or loader
blobs for a list of objects on a pool of Rust threads, with the GIL released.

    >>> results = bpfgen_fast.gen_batch(paths, out_dir="build/skel", jobs=4)
    >>> [r.path for r in results if not r.ok]

Results come back in input order, one per path; one object's failure never
stops or changes the others (its :class:`BatchResult` carries the error).
With ``out_dir`` every file is written to a temporary name and renamed into
place, and results hold paths and sizes rather than the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bpfgen_fast import _core
from bpfgen_fast.object import Loader, host_args

Format = Literal["lskel", "blobs"]
Progress = Callable[[int, int], object]


@dataclass(frozen=True)
class BatchResult:
    """The outcome for one input of :func:`gen_batch`.

    ``error`` is the exception this object raised (a :class:`BpfgenError`
    subclass, ``OSError`` for reading or writing, ``ValueError`` for a name
    used twice with ``out_dir``), ``None`` if it succeeded or was skipped.
    ``skipped`` objects were never attempted (``keep_going=False`` after a
    failure). With ``out_dir``, ``outputs``/``sizes`` list the files written;
    without, ``header`` (``fmt="lskel"``) or ``loader`` (``fmt="blobs"``) hold
    the output.
    """

    path: str
    name: str
    error: BaseException | None = None
    skipped: bool = False
    outputs: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    header: str | None = None
    loader: Loader | None = None
    #: the programs of this object that an ``attach_targets`` entry named
    attach_targets: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped


def gen_batch(
    paths: Iterable[str | os.PathLike[str]],
    *,
    jobs: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    fmt: Format = "lskel",
    names: Sequence[str] | None = None,
    keep_going: bool = True,
    progress: Progress | None = None,
    attach_targets: Mapping[str, str] | None = None,
    **host: Any,
) -> list[BatchResult]:
    """Generate every object of ``paths`` in parallel.

    ``jobs``: worker threads (default: the CPUs this process may use). The
    pool is built for this call and gone when it returns, so the count is per
    call and calling again after ``os.fork()`` is safe. ``out_dir``: write
    ``NAME.lskel.h`` (``fmt="lskel"``) or ``NAME.data.bin``, ``NAME.insns.bin``
    and ``NAME.json`` (``fmt="blobs"``, as :meth:`Loader.write`) there,
    atomically; the directory is created if missing. ``names``: object names,
    one per path (default: bpftool's rule from the file name).
    ``keep_going=False``: after the first failure, objects not yet started are
    skipped. ``progress(done, total)`` is called from the calling thread while
    the batch runs. Host facts (``page_size=``, ``kallsyms_file=``, ...) are as
    for :meth:`BpfObject.gen_loader` and are read once for the whole batch.
    ``attach_targets`` (program name -> kernel function, as
    :attr:`ProgramInfo.attach_target`) applies to every object with that
    program; each result's ``attach_targets`` says which applied there.

    KeyboardInterrupt (or an exception raised by ``progress``) cancels the
    batch: objects not started are skipped, those running finish (no partial
    or temporary files are left), then the exception propagates. After a
    signal handler's exception, ``progress`` is called once more as soon as
    the cancellation is in force (nothing new starts from then on).
    """
    if fmt not in ("lskel", "blobs"):
        raise ValueError(f"fmt must be 'lskel' or 'blobs', got {fmt!r}")
    path_list = [os.fspath(p) for p in paths]
    if names is not None:
        names = list(names)
        if len(names) != len(path_list):
            raise ValueError(f"names has {len(names)} entries for {len(path_list)} paths")
    if jobs is None:
        jobs = len(os.sched_getaffinity(0))  # the CPUs this process may run on
    elif jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    args = host_args(**host)
    raw = _core.gen_batch(path_list, names, jobs,
                          None if out_dir is None else os.fspath(out_dir),
                          fmt, keep_going, args, progress,
                          list((attach_targets or {}).items()))
    results = []
    for path, name, error, skipped, written, header, blobs, targeted in raw:
        loader = None
        if blobs is not None:
            data, insns, maps, progs = blobs
            loader = Loader(data=data, insns=insns, map_names=tuple(maps),
                            prog_names=tuple(progs), _host=args)
        results.append(BatchResult(
            path=path, name=name, error=error, skipped=skipped,
            outputs=tuple(p for p, _ in written), sizes=tuple(n for _, n in written),
            header=header, loader=loader, attach_targets=tuple(targeted),
        ))
    return results


__all__ = ["BatchResult", "gen_batch"]
