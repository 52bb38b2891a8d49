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
    sign_key: str | os.PathLike[str] | None = None,
    sign_cert: str | os.PathLike[str] | None = None,
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

    ``sign_key`` and ``sign_cert``: signed light skeletons (as
    :meth:`BpfObject.gen_skeleton` with them), the key and certificate loaded
    and checked once for the whole batch (a bad key raises
    :class:`SigningError` before any object starts); ``fmt="lskel"`` only.
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
    if sign_key is not None or sign_cert is not None:
        return _gen_batch_signed(path_list, names, jobs, out_dir, fmt, keep_going, progress,
                                 sign_key, sign_cert, dict(attach_targets or {}), host)
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


def _gen_batch_signed(
    paths: list[str],
    names: list[str] | None,
    jobs: int,
    out_dir: str | os.PathLike[str] | None,
    fmt: Format,
    keep_going: bool,
    progress: Progress | None,
    sign_key: str | os.PathLike[str] | None,
    sign_cert: str | os.PathLike[str] | None,
    attach_targets: dict[str, str],
    host: dict[str, Any],
) -> list[BatchResult]:
    """gen_batch's signing path: the same contract, on Python threads (the core
    releases the GIL while it opens, generates and writes; signing is short),
    because each header's signature comes from ``cryptography`` between the
    loader and the header."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from bpfgen_fast.errors import BpfgenError, SigningError
    from bpfgen_fast.object import BpfObject
    from bpfgen_fast.sign import cms_sign, load_signer, release

    if sign_key is None or sign_cert is None:
        raise SigningError("signing needs both sign_key and sign_cert")
    if fmt != "lskel":
        raise SigningError(f"signing makes light skeletons: fmt='lskel', got {fmt!r}")
    compat = host.setdefault("compat", "bpftool-7.8")
    if compat != "bpftool-7.8":
        raise SigningError(f"signed light skeletons need compat='bpftool-7.8', got {compat!r}"
                           " (bpftool 7.5.0 cannot sign)")
    key, ski = load_signer(sign_key, sign_cert)  # once, before any object
    args = dict(host_args(**host), gen_hash=True)
    obj_names = names if names is not None else [_core.default_object_name(p) for p in paths]
    dir_path = None if out_dir is None else os.fspath(out_dir)
    if dir_path is not None:
        os.makedirs(dir_path, exist_ok=True)
    # as the core's batch: with an output directory a name met again would overwrite
    # the earlier object's header, so the later ones fail
    seen: set[str] = set()
    duplicate = []
    for n in obj_names:
        duplicate.append(dir_path is not None and n in seen)
        seen.add(n)
    stop = threading.Event()

    def one(i: int) -> BatchResult:
        path, name = paths[i], obj_names[i]
        if stop.is_set():
            return BatchResult(path=path, name=name, skipped=True)
        if duplicate[i]:
            return BatchResult(path=path, name=name, error=ValueError(
                f"duplicate object name '{name}' in the batch: its output files would "
                "overwrite another object's"))
        try:
            obj = BpfObject.open(path, name)
            applied = tuple(prog for prog in attach_targets if prog in obj.programs)
            for prog in applied:
                obj.programs[prog].attach_target = attach_targets[prog]
            try:
                sig = cms_sign(obj._core.gen_loader(args)[1], key, ski)
            except SigningError as e:
                raise SigningError(e.reason, obj.name) from e
            text = obj._core.gen_skeleton(dict(args, signature=sig))
            if dir_path is None:
                return BatchResult(path=path, name=name, header=text, attach_targets=applied)
            out = os.path.join(dir_path, f"{name}.lskel.h")
            data = text.encode()
            _core.write_file(out, data)  # atomic: a temporary file renamed into place
            return BatchResult(path=path, name=name, outputs=(out,), sizes=(len(data),),
                               attach_targets=applied)
        except (BpfgenError, OSError) as e:
            if not keep_going:
                stop.set()
            return BatchResult(path=path, name=name, error=e)

    results: list[BatchResult | None] = [None] * len(paths)
    with ThreadPoolExecutor(max_workers=min(jobs, max(len(paths), 1))) as pool:
        pending: dict[Future[BatchResult], int] = {}
        for i in range(len(paths)):  # submitted, so started, in input order
            pending[pool.submit(one, i)] = i
        done = 0
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for f in finished:
                    results[pending.pop(f)] = f.result()
                    done += 1
                if progress is not None:
                    progress(done, len(paths))
        except BaseException:
            stop.set()  # nothing new starts; the running ones finish
            if progress is not None:
                progress(done, len(paths))
            raise
        finally:
            release(key)
    return [r for r in results if r is not None]


__all__ = ["BatchResult", "gen_batch"]
