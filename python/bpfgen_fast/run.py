"""Load an object through its generated loader, in Python: what skel_internal.h's
``bpf_load_and_run`` and the light skeleton's ``__open``/``__load`` do, over the
raw bpf() syscall (no libbpf).

    >>> with bpfgen_fast.run(bpfgen_fast.BpfObject.open("prog.bpf.o")) as obj:
    ...     obj.maps, obj.progs          # name -> fd
    ...     obj.bss[0:4] = b"\\1\\0\\0\\0"  # mmapped global data, like skel->bss
    ...     obj.attach()                 # raw_tp / fentry / fexit / lsm / iter links,
    ...                                  # and struct_ops maps (registered)

Steps: create the ``__loader.map`` ARRAY holding the data blob, load the
``__loader.prog`` BPF_PROG_TYPE_SYSCALL program with ``fd_array = &map_fd``, run
it with BPF_PROG_TEST_RUN with the skeleton ctx (``struct bpf_loader_ctx`` + map
and prog descriptors), read the fds back. Every fd is closed on failure; on
success the caller owns them through :class:`LoadedObject` (a context manager).

struct_ops maps: the loader creates them and loads their programs but registers
nothing; like libbpf, a map is registered when it is *attached*
(:meth:`LoadedObject.attach`): its value (the kernel-layout image with each
function pointer set to its program's fd) is written to key 0, which registers a map
of ``SEC(".struct_ops")`` (e.g. a TCP congestion control becomes available); a map of
``SEC(".struct_ops.link")`` (BPF_F_LINK) is then registered through a struct_ops link.
A value the kernel refuses fails attaching that map, not the load. Maps of
``SEC("?.struct_ops")`` are not created at all (``LoadedObject.skipped_maps``).

``__arena`` globals (ELF section ``.addr_space.1``): a loader cannot mmap, so it leaves
them uninitialised; like the light skeleton's ``__load``, :func:`run` then maps the ARENA
map at its fixed user address (its ``map_extra``), ``max_entries`` pages long, and copies
the object's arena image to the start of the mapping (faulting those pages in, which
allocates them). ``LoadedObject.arena`` is that mapping; :meth:`LoadedObject.close`
unmaps it. The image comes from the object: a :class:`Loader` without it (read from files)
leaves the arena unmapped and its globals uninitialised (zero, and BPF writes to pages
nobody faulted in are dropped). An arena without a ``map_extra`` of its own
(``MapCreate.map_extra_from_ctx``) gets its address as in the light skeleton: before the
loader runs, :func:`run` reserves a PROT_NONE range that does not cross a 4 GiB boundary
and passes its start in the map descriptor's ``initial_value``, which the loader uses as
``map_extra``; the arena is then mapped over the reservation (MAP_FIXED), which is
released on failure (and when the arena is not mapped: a Loader without its object).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import mmap
import os
import struct
import sys
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from bpfgen_fast import _bpf, _core
from bpfgen_fast.errors import BpfgenError
from bpfgen_fast.explain import (
    Explanation,
    MapCreate,
    ProgLoad,
    explain,
    initial_images,
    uses_gotol,
)
from bpfgen_fast.object import BpfObject, Loader

# the skeleton ctx as the core's loaders expect it: struct bpf_loader_ctx, then the map
# descriptors (fields: max_entries override, initial value), then the prog descriptors
_CTX_HDR, _MAP_DESC, _PROG_DESC = _core.LOADER_CTX_SIZE, _core.MAP_DESC_SIZE, _core.PROG_DESC_SIZE
_DESC_MAX_ENTRIES, _DESC_INITIAL_VALUE = _core.MAP_DESC_MAX_ENTRIES, _core.MAP_DESC_INITIAL_VALUE
_LOADER_LICENSE = "Dual BSD/GPL"
DEFAULT_LOG_SIZE = 16 << 20


class LoadError(BpfgenError):
    """Loading failed. ``errno`` is the kernel's error (positive), ``log`` the
    verifier/BTF log when ``log_level`` was set (else ""), ``step`` the failing
    step (``"PROG_LOAD handle_tp"``, ``"kfunc lookup 'bpf_foo' for prog"``, ...)
    when it can be told, ``step_index`` its index in ``explanation.steps``."""

    def __init__(
        self,
        message: str,
        *,
        errno: int | None = None,
        log: str = "",
        step: str | None = None,
        step_index: int | None = None,
        object_name: str = "loader",
    ) -> None:
        super().__init__(f"{object_name}: {message}")
        self.errno = errno
        self.log = log
        self.step = step
        self.step_index = step_index
        self.object = object_name
        self.section = None
        self.offset = None
        self.reason = message


class BpfPermissionError(LoadError):
    """bpf() is not permitted (or not available) for this process."""


def _strerror(err: int) -> str:
    name = _errno.errorcode.get(err, str(err))
    return f"{os.strerror(err)} ({name})"


#: bpftool's ``get_map_ident`` for a map known only by name (a Loader without its object)
map_ident = _core.map_ident


_KEY0 = b"\0\0\0\0"
_MAP_SHARED = 0x01
# MAP_FIXED without replacing what is mapped there (Linux >= 4.17; same value on every
# architecture): the arena's address may be in use, e.g. by the same object loaded
# twice in this process, and MAP_FIXED would silently unmap that
_MAP_FIXED_NOREPLACE = 0x100000
_MAP_FIXED = 0x10
_MAP_PRIVATE = 0x02
_MAP_ANONYMOUS = 0x20
_MAP_NORESERVE = 0x4000  # x86, arm, arm64, riscv... (the mmap module lacks it before 3.13)
_PROT_NONE = 0
_4G = 1 << 32


class _Libc:
    """libc's mmap/munmap (the mmap module cannot map at a fixed address), on a CDLL
    of our own so that setting argtypes affects no one else."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        self.munmap = libc.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


_libc: _Libc | None = None


def _get_libc() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def _munmap(address: int, size: int) -> None:
    _get_libc().munmap(address, size)  # errors ignored: nothing could be done about them


def _mmap_failed(got: int | None) -> bool:
    return got is None or got == ctypes.c_void_p(-1).value  # MAP_FAILED


def _mmap_fixed(fd: int, address: int, size: int, replace: bool = False) -> None:
    """Map ``size`` bytes of ``fd`` read-write, shared, at exactly ``address``; OSError
    (EEXIST when something is mapped in that range already). ``replace``: MAP_FIXED,
    replacing what is mapped there (our own reservation, see :class:`_Reservation`)."""
    libc = _get_libc()
    ctypes.set_errno(0)
    got = libc.mmap(address, size, mmap.PROT_READ | mmap.PROT_WRITE,
                    _MAP_SHARED | (_MAP_FIXED if replace else _MAP_FIXED_NOREPLACE), fd, 0)
    if _mmap_failed(got):
        err = ctypes.get_errno() or _errno.EINVAL
        raise OSError(err, os.strerror(err))
    if got != address:  # a kernel without MAP_FIXED_NOREPLACE took the address as a hint
        _munmap(got, size)
        raise OSError(_errno.EEXIST, os.strerror(_errno.EEXIST))


class _Reservation:
    """An address range for an arena without ``map_extra``, reserved like the light
    skeleton does before running its loader: an inaccessible (PROT_NONE, MAP_NORESERVE)
    anonymous mapping of ``size`` bytes starting on a 4 GiB boundary, so that the arena's
    user range does not cross one (the kernel refuses such a ``map_extra``). Ours until
    :meth:`release` (unmaps it) or :meth:`handed_over` (the arena was mapped over its first
    bytes with MAP_FIXED; the rest is unmapped)."""

    def __init__(self, size: int) -> None:
        libc = _get_libc()
        span = size + _4G
        ctypes.set_errno(0)
        got = libc.mmap(None, span, _PROT_NONE, _MAP_PRIVATE | _MAP_ANONYMOUS | _MAP_NORESERVE,
                        -1, 0)
        if _mmap_failed(got):
            err = ctypes.get_errno() or _errno.ENOMEM
            raise OSError(err, os.strerror(err))
        assert got is not None
        start = (got + _4G - 1) & ~(_4G - 1)
        if start > got:
            _munmap(got, start - got)
        if got + span > start + size:
            _munmap(start + size, got + span - start - size)
        self.address = start
        self.size = size

    def handed_over(self, mapped: int) -> None:
        """The first ``mapped`` bytes now hold the arena (no longer ours)."""
        if self.size > mapped:
            _munmap(self.address + mapped, self.size - mapped)
        self.size = 0

    def release(self) -> None:
        if self.size:
            _munmap(self.address, self.size)
            self.size = 0


class _ArenaMapping:
    """An ARENA map mapped at its fixed user address, seen through :attr:`view`, a
    writable byte memoryview of the whole arena. :meth:`close` releases the view; the
    pages are unmapped once nothing refers to them any more: at once, unless the caller
    still holds a view derived from it (a slice, a numpy array...), which keeps them
    mapped as a memoryview keeps an ``mmap.mmap`` alive (no dangling pointers)."""

    def __init__(
        self, map_name: str, fd: int, address: int, size: int, image: bytes,
        reservation: _Reservation | None = None,
    ) -> None:
        _mmap_fixed(fd, address, size, replace=reservation is not None)
        if reservation is not None:  # replaced by the arena: unmapping it is ours now
            reservation.handed_over(size)
        # a Python subclass of the ctypes array supports weakrefs: the finalizer unmaps
        # when the last buffer over the pages is gone
        try:
            pages_t: type[ctypes.Array[ctypes.c_ubyte]] = type("_ArenaPages",
                                                               (ctypes.c_ubyte * size,), {})
            pages = pages_t.from_address(address)
            self._unmap = weakref.finalize(pages, _munmap, address, size)
        except BaseException:
            _munmap(address, size)
            raise
        base = memoryview(pages)
        self.view = base.cast("B")
        base.release()
        del pages
        self.map_name = map_name
        self.address = address
        self.size = size
        # like the skeleton's memcpy(skel->arena, staged, ...): touching the pages
        # allocates them
        ctypes.memmove(address, image, len(image))

    def close(self) -> None:
        # BufferError: the view itself is exported (e.g. to numpy); the pages stay
        # mapped until that export is gone
        with contextlib.suppress(BufferError):
            self.view.release()


@dataclass(frozen=True)
class StructOpsValue:
    """What attaching a struct_ops map writes to its key 0: ``value`` (the kernel-layout
    ``bpf_struct_ops_<type>`` image) with the fd of program ``funcs[i][1]`` stored as an
    8-byte unsigned long at byte offset ``funcs[i][0]``. ``link``: BPF_F_LINK, the map is
    then registered through a struct_ops link."""

    map_name: str
    link: bool
    value: bytes
    funcs: tuple[tuple[int, str], ...]

    def image(self, prog_fds: Mapping[str, int]) -> bytes:
        """The value with the programs' fds filled in."""
        out = bytearray(self.value)
        for off, prog in self.funcs:
            struct.pack_into("<Q", out, off, prog_fds[prog])
        return bytes(out)


def _struct_ops_values(
    loader: Loader, expl: Explanation
) -> tuple[dict[str, StructOpsValue], str | None]:
    """The values of the created struct_ops maps (from the object the loader was
    generated from, with the same host facts), or ({}, why not) when they cannot be had
    or do not match the loader."""
    st_maps = [m for m in expl.maps if m.type == _core.BPF_MAP_TYPE_STRUCT_OPS]
    if not st_maps:
        return {}, None
    core = loader._core
    if core is None:
        return {}, ("the values of struct_ops maps come from the object: run() was given a "
                    "Loader without it (e.g. read from files); pass the BpfObject, or a "
                    "Loader from BpfObject.gen_loader()")
    by_index = {m.index: m for m in st_maps}
    progs = {p.name for p in expl.programs}
    try:
        values = core.struct_ops_values(loader._host)
    except BpfgenError as e:
        return {}, f"the struct_ops values could not be generated: {e}"
    out: dict[str, StructOpsValue] = {}
    for idx, link, value, funcs in values:
        m = by_index.get(idx)
        stale = (m is None or bool(m.flags & _core.BPF_F_LINK) != link
                 or len(value) != m.value_size or any(p not in progs for _, p in funcs))
        if stale or m is None:
            return {}, ("the object's struct_ops values do not match this loader (was the "
                        "object changed, e.g. autoload, after generating it?)")
        out[m.name] = StructOpsValue(m.name, link, bytes(value), tuple(funcs))
    missing = [m.name for m in st_maps if m.name not in out]
    if missing:
        return {}, f"no value for struct_ops map {', '.join(missing)} from the object"
    return out, None


class LoadedObject:
    """The maps, programs and links of a loaded object, by name; closes every fd on
    :meth:`close` / leaving the ``with`` block. Global-data maps that allow mmap
    are mapped like the C skeleton's ``skel->bss``: ``obj.mmaps["bss"]`` (or
    ``obj.bss``), writable unless the map is read-only for programs (.rodata). An ARENA
    map holding ``__arena`` globals is mapped at its fixed address: :attr:`arena`.

    struct_ops maps are created by the loader but registered only by :meth:`attach`
    (:attr:`struct_ops_registered`): it writes the map's value, which registers a map
    without BPF_F_LINK, and for a map with BPF_F_LINK creates a struct_ops link, kept in
    :attr:`links` under the map's name. :meth:`detach` / :meth:`close` undo that: they
    close the links and unregister the other maps (BPF_MAP_DELETE_ELEM of key 0, as
    libbpf's struct_ops link does on destroy; closing the fds would not). Maps the loader
    did not create (``SEC("?.struct_ops")``, fd 0 in the skeleton) are in
    :attr:`skipped_maps`, not in :attr:`maps`."""

    def __init__(
        self,
        *,
        name: str,
        explanation: Explanation,
        maps: dict[str, int],
        progs: dict[str, int],
        mmaps: dict[str, mmap.mmap],
        idents: dict[str, str],
        sections: dict[str, str],
        log: str,
        struct_ops: Mapping[str, StructOpsValue] | None = None,
        struct_ops_unavailable: str | None = None,
        arena: _ArenaMapping | None = None,
    ) -> None:
        self.name = name
        self._arena = arena
        self.explanation = explanation
        self._maps = maps
        self._progs = progs
        self._mmaps = mmaps
        self._idents = idents
        self._sections = sections
        self._links: dict[str, int] = {}
        self.log = log
        self._closed = False
        #: created struct_ops maps, in map order
        self._st_maps = [m.name for m in explanation.maps
                         if m.type == _core.BPF_MAP_TYPE_STRUCT_OPS and m.name in maps]
        self._st_values = dict(struct_ops or {})
        self._st_unavailable = struct_ops_unavailable
        #: struct_ops maps without BPF_F_LINK that attach() registered (by their value)
        self._st_registered: list[str] = []

    # --- lookup -------------------------------------------------------------------------------

    @property
    def maps(self) -> Mapping[str, int]:
        """Map name → fd, in the object's map order."""
        return dict(self._maps)

    @property
    def progs(self) -> Mapping[str, int]:
        """Program name → fd for every loaded program, in load order."""
        return dict(self._progs)

    @property
    def links(self) -> Mapping[str, int]:
        """Program name → link fd for attached programs; struct_ops map name → link fd
        for attached struct_ops maps of ``SEC(".struct_ops.link")`` (BPF_F_LINK). Maps
        without BPF_F_LINK have no link: see :attr:`struct_ops_registered`."""
        return dict(self._links)

    @property
    def struct_ops_maps(self) -> tuple[str, ...]:
        """The struct_ops maps the loader created (attached or not), in map order."""
        return tuple(self._st_maps)

    @property
    def skipped_maps(self) -> tuple[str, ...]:
        """Maps of the object the loader did not create (``SEC("?.struct_ops")``): no fd."""
        return tuple(m.name for m in self.explanation.skipped_maps)

    @property
    def struct_ops_registered(self) -> tuple[str, ...]:
        """struct_ops maps :meth:`attach` registered and :meth:`detach` has not
        unregistered yet, in map order: maps without BPF_F_LINK by their value, link maps
        by their open link."""
        return tuple(m for m in self._st_maps if m in self._st_registered or m in self._links)

    def struct_ops_value(self, name: str) -> StructOpsValue:
        """What attaching struct_ops map ``name`` writes (see :class:`StructOpsValue`);
        :meth:`StructOpsValue.image` with :attr:`progs` gives the bytes. Raises
        :class:`LoadError` when the values are unknown (run() of a Loader without its
        object)."""
        if name not in self._st_maps:
            if name in self.skipped_maps:
                raise KeyError(f"struct_ops map {name!r} was not created by the loader (fd 0)")
            raise KeyError(f"no struct_ops map {name!r} (struct_ops maps: "
                           f"{', '.join(self._st_maps) or 'none'})")
        v = self._st_values.get(name)
        if v is None:
            why = self._st_unavailable or f"no value known for struct_ops map {name}"
            raise LoadError(f"attach struct_ops map {name}: {why}", step=f"attach {name}",
                            object_name=self.name)
        return v

    @property
    def mmaps(self) -> Mapping[str, mmap.mmap]:
        """Map ident (``bss``, ``data``, ``rodata``, ``data_custom``...) → mmap of its value."""
        return dict(self._mmaps)

    @property
    def arena(self) -> memoryview | None:
        """The ARENA map holding the object's ``__arena`` globals, mapped at its fixed
        user address (:attr:`arena_address`: the map's ``map_extra``, or, for an arena
        without one, the 4 GiB-aligned address :func:`run` reserved for it) like the light
        skeleton's ``skel->arena``: a writable memoryview of bytes over the whole arena
        (``max_entries`` pages), the globals' image at its start, at their symbols'
        offsets in ``.addr_space.1``. Pointers BPF stores in the arena are user addresses
        in this mapping. Released by :meth:`close` (any use raises ValueError then).
        None when no arena was mapped: the object has no ``__arena`` globals, or
        :func:`run` was given a :class:`Loader` without its object (its ``_core``), in
        which case the globals stay uninitialised."""
        return self._arena.view if self._arena is not None else None

    @property
    def arena_address(self) -> int | None:
        """The user address :attr:`arena` is mapped at (None when not mapped)."""
        return self._arena.address if self._arena is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    def __getattr__(self, ident: str) -> mmap.mmap:
        mm = self.__dict__.get("_mmaps")
        if mm is not None and ident in mm:
            m: mmap.mmap = mm[ident]
            return m
        raise AttributeError(f"{type(self).__name__!s} has no attribute or mmapped map {ident!r}")

    def _map_name(self, name: str) -> str:
        if name in self._maps:
            return name
        if name in self._idents:
            return self._idents[name]
        if name in self.skipped_maps:
            raise KeyError(f"map {name!r} was not created by the loader (fd 0)")
        raise KeyError(f"no map {name!r} (maps: {', '.join(self._maps)})")

    def map_fd(self, name: str) -> int:
        """fd of a map, by name or skeleton ident."""
        self._check_open()
        return self._maps[self._map_name(name)]

    def prog_fd(self, name: str) -> int:
        self._check_open()
        if name not in self._progs:
            raise KeyError(f"no loaded program {name!r} (programs: {', '.join(self._progs)})")
        return self._progs[name]

    def _map_record(self, name: str) -> MapCreate:
        full = self._map_name(name)
        for m in self.explanation.maps:
            if m.name == full:
                return m
        raise KeyError(name)  # pragma: no cover - maps come from the explanation

    def _prog_record(self, name: str) -> ProgLoad:
        for p in self.explanation.programs:
            if p.name == name:
                return p
        raise KeyError(f"no loaded program {name!r}")

    def map_info(self, name: str) -> _bpf.MapKernelInfo:
        """What the kernel reports for a map (BPF_OBJ_GET_INFO_BY_FD)."""
        return _bpf.map_info(self.map_fd(name))

    def prog_info(self, name: str) -> _bpf.ProgKernelInfo:
        return _bpf.prog_info(self.prog_fd(name))

    def lookup(self, name: str, key: bytes) -> bytes | None:
        """Look an element up (per-CPU maps: all CPUs' values concatenated, 8-aligned)."""
        rec = self._map_record(name)
        size = rec.value_size
        if rec.type in _core.PERCPU_MAP_TYPES:
            # one value per possible CPU, counted as the core counts them for generation
            size = (size + 7) // 8 * 8 * _core.host_defaults()[1]
        return _bpf.map_lookup_elem(self.map_fd(name), key, size)

    def update(self, name: str, key: bytes, value: bytes, flags: int = 0) -> None:
        _bpf.map_update_elem(self.map_fd(name), key, value, flags)

    def test_run(
        self,
        prog: str,
        *,
        ctx: bytes | None = None,
        data: bytes | None = None,
        data_size_out: int = 0,
        repeat: int = 0,
    ) -> _bpf.TestRun:
        """Run a program with BPF_PROG_TEST_RUN (``ctx``: e.g. a syscall program's args)."""
        buf = None if ctx is None else ctypes.create_string_buffer(ctx, len(ctx))
        return _bpf.prog_test_run(self.prog_fd(prog), ctx=buf, data=data,
                                  data_size_out=data_size_out, repeat=repeat)

    # --- attach -------------------------------------------------------------------------------

    def attachable(self, prog: str) -> bool:
        """Whether the light skeleton attaches this program (raw_tp, fentry/fexit,
        fmod_ret, tp_btf, lsm, iter)."""
        t = self._prog_record(prog).type
        return t in (_core.BPF_PROG_TYPE_RAW_TRACEPOINT, _core.BPF_PROG_TYPE_TRACING,
                     _core.BPF_PROG_TYPE_LSM)

    def _attach_struct_ops(self, name: str) -> int | None:
        """Register a struct_ops map (``bpf_map__attach_struct_ops``): write its value
        (key 0), then, for a BPF_F_LINK map, BPF_LINK_CREATE with the map's fd in the
        prog_fd position and attach type BPF_STRUCT_OPS. Returns the link fd, None for a
        map registered by its value alone."""
        v = self.struct_ops_value(name)
        fd = self._maps[name]

        def fail(what: str, err: int, hint: str = "") -> LoadError:
            return LoadError(f"attach struct_ops map {name}: {what}: {_strerror(err)}{hint}",
                             errno=err, step=f"attach {name}", object_name=self.name)

        try:
            _bpf.map_update_elem(fd, _KEY0, v.image(self._progs))
        except OSError as e:
            err = e.errno or 0
            # EBUSY for a link map: its value was written before (by an earlier attach);
            # the kernel keeps it, and a new link uses it (libbpf tolerates this too)
            if not (v.link and err == _errno.EBUSY):
                hint = ("" if v.link or err != _errno.EBUSY else
                        " (a struct_ops map without BPF_F_LINK registers only once; "
                        "it was registered and unregistered before)")
                raise fail("value update", err, hint) from None
        if not v.link:
            return None
        try:
            return _bpf.link_create(fd, 0, _core.BPF_STRUCT_OPS)
        except OSError as e:
            raise fail("link create", e.errno or 0) from None

    def _attach_prog(self, prog: str) -> int:
        p = self._prog_record(prog)
        fd = self.prog_fd(prog)
        try:
            if p.type == _core.BPF_PROG_TYPE_RAW_TRACEPOINT:
                sec = self._sections.get(prog)
                if sec is None:
                    raise LoadError(f"attach {prog}: section unknown (run() was given a bare "
                                    "Loader; pass the BpfObject)", object_name=self.name)
                if "/" not in sec:
                    raise LoadError(f"attach {prog}: section {sec!r} names no tracepoint",
                                    object_name=self.name)
                return _bpf.raw_tracepoint_open(sec.split("/", 1)[1], fd)
            if p.type in (_core.BPF_PROG_TYPE_TRACING, _core.BPF_PROG_TYPE_LSM):
                if p.expected_attach_type == _core.BPF_TRACE_ITER:
                    return _bpf.link_create(fd, 0, _core.BPF_TRACE_ITER)
                return _bpf.raw_tracepoint_open(None, fd)
        except OSError as e:
            raise LoadError(f"attach {prog}: {_strerror(e.errno or 0)}", errno=e.errno,
                            step=f"attach {prog}", object_name=self.name) from None
        raise LoadError(f"attach {prog}: auto-attach not supported for {p.type_name} programs",
                        object_name=self.name)

    def attach(self, name: str | None = None) -> dict[str, int]:
        """Attach one program or struct_ops map, by name, or (``name=None``) what the
        light skeleton's ``__attach`` does: every program it attaches (raw_tp, fentry,
        fexit, fmod_ret, tp_btf, lsm, iter; the others are skipped), then every created
        struct_ops map in map order. Attaching a struct_ops map registers it (see
        :class:`LoadedObject`); a value the kernel refuses raises :class:`LoadError` with
        its errno. Returns name → link fd of the links this call created (struct_ops
        maps without BPF_F_LINK have none; :attr:`struct_ops_registered` lists them).
        On failure everything this call did is undone (links closed, maps unregistered)."""
        self._check_open()
        if name is not None:
            names = [name]
        else:
            names = [*(p for p in self._progs if self.attachable(p)), *self._st_maps]
        # everything that can be told without the kernel first: a failure then leaves
        # nothing to undo (a struct_ops map without BPF_F_LINK, once unregistered, cannot
        # be registered again)
        for n in names:
            if n in self._links or n in self._st_registered:
                raise LoadError(f"attach {n}: already attached", object_name=self.name)
            if n in self._progs:
                continue
            if n in self._st_maps:
                self.struct_ops_value(n)
            elif n in self.skipped_maps:
                raise LoadError(f"attach {n}: struct_ops map not created by the loader "
                                "(SEC(\"?.struct_ops\"))", object_name=self.name)
            else:
                raise KeyError(f"no loaded program or struct_ops map {n!r}")
        made: dict[str, int] = {}
        registered: list[str] = []
        try:
            for n in names:
                if n in self._progs:
                    made[n] = self._attach_prog(n)
                    continue
                link = self._attach_struct_ops(n)
                if link is None:
                    registered.append(n)
                else:
                    made[n] = link
        except BaseException:
            for fd in made.values():
                _close_quietly(fd)
            for n in registered:
                _unregister_struct_ops(self._maps[n])
            raise
        self._links.update(made)
        self._st_registered.extend(registered)
        return made

    def detach(self) -> None:
        """Undo :meth:`attach`: close every link (which unregisters struct_ops maps with
        BPF_F_LINK) and unregister the struct_ops maps without BPF_F_LINK that attach
        registered, by deleting their key 0. Those cannot be attached again: the kernel
        registers such a map only once (link maps can be attached again)."""
        links, self._links = self._links, {}
        for fd in links.values():
            _close_quietly(fd)
        registered, self._st_registered = self._st_registered, []
        for name in registered:
            _unregister_struct_ops(self._maps[name])

    # --- lifetime -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("LoadedObject is closed")

    def close(self) -> None:
        """Detach (closing links, unregistering the struct_ops maps attach registered),
        unmap, close program and map fds (as ``__destroy`` does). Idempotent. A mapping
        the caller still holds a buffer of (a memoryview of an mmap, a slice of
        :attr:`arena`) stays mapped until that buffer is released."""
        if self._closed:
            return
        self._closed = True
        self.detach()
        for m in self._mmaps.values():
            # BufferError: a caller still holds a memoryview; the mmap stays alive with it
            with contextlib.suppress(BufferError):
                m.close()
        if self._arena is not None:
            self._arena.close()
        for fd in self._progs.values():
            _close_quietly(fd)
        for fd in self._maps.values():
            _close_quietly(fd)

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not self.__dict__.get("_closed", True):
            warnings.warn(f"unclosed LoadedObject {self.name!r}", ResourceWarning, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._maps)} maps, {len(self._progs)} progs"
        return f"<LoadedObject {self.name!r}: {state}>"


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _unregister_struct_ops(map_fd: int) -> None:
    """Unregister a struct_ops map (without BPF_F_LINK) its value update registered:
    delete key 0, as libbpf's ``bpf_link__detach_struct_ops`` does for such a map.
    Errors are ignored (cleanup path)."""
    with contextlib.suppress(OSError):
        _bpf.map_delete_elem(map_fd, _KEY0)


def diagnose(e: Explanation, blob: bytes) -> tuple[int | None, str | None]:
    """Which step of a failed loader run failed, from the loader map's value after
    the run (the loader's working memory: attrs it filled in, fds it stored).
    Returns (index into ``e.steps``, description), (None, None) when it cannot tell.
    The core reads it (src/explain/diagnose.rs)."""
    return _core.diagnose_run(e.to_json(indent=None), blob)


def _c_string(buf: ctypes.Array[ctypes.c_char]) -> str:
    return buf.value.decode(errors="replace")


def run(
    loader: Loader | BpfObject,
    log_level: int = 0,
    *,
    log_size: int = DEFAULT_LOG_SIZE,
    initial_values: Mapping[str, bytes] | None = None,
    max_entries: Mapping[str, int] | None = None,
) -> LoadedObject:
    """Load ``loader`` (a :class:`Loader`, or a :class:`BpfObject` whose loader is
    generated with this host's facts) into the kernel and return its maps and
    programs. ``log_level`` > 0 collects the BTF/verifier log (``LoadError.log``,
    ``LoadedObject.log``) in a ``log_size`` buffer. ``initial_values`` replaces
    (a prefix of) a global-data map's initial image before load, by ident or map
    name — like writing ``skel->rodata`` between open and load; ``max_entries``
    overrides a map's max_entries (the descriptor field the loader honours).
    struct_ops maps are created, not registered: :meth:`LoadedObject.attach` registers
    them (with the values from the object, so a :class:`Loader` needs its ``_core``, as
    :meth:`BpfObject.gen_loader` gives). ``__arena`` globals: the ARENA map is mapped at
    its fixed address (``map_extra``, or for an arena without one an address reserved
    before the loader runs and handed to it through the ctx, as the light skeleton does)
    and the object's arena image copied in, after the
    loader has run (:attr:`LoadedObject.arena`); that too needs the object, so with a
    :class:`Loader` without its ``_core`` the arena stays unmapped and its globals
    uninitialised. Raises :class:`LoadError` (fds all closed, nothing left mapped),
    :class:`BpfPermissionError` when bpf() is refused."""
    obj = loader if isinstance(loader, BpfObject) else None
    if obj is not None:
        name = obj.name
        loader = obj.gen_loader()
    else:
        assert isinstance(loader, Loader)
        name = "loader"
    if log_level < 0:
        raise ValueError("log_level must be >= 0")
    expl = explain(loader)
    if expl.big_endian != (sys.byteorder == "big"):
        raise LoadError(f"this loader is for a {'big' if expl.big_endian else 'little'}-endian "
                        f"target, this machine is {sys.byteorder}-endian", object_name=name)
    data, insns = loader.data, loader.insns
    maps = expl.maps
    progs = expl.programs
    images = initial_images(expl, data)
    info = obj.maps if obj is not None else {}
    sections = {p.name: p.section for p in obj.programs.values()} if obj is not None else {}
    st_values, st_unavailable = _struct_ops_values(loader, expl)
    arena_plan = _arena_image(loader, expl, name)

    idents: dict[str, str] = {}
    mmapable: dict[int, tuple[str, int, bool]] = {}  # map idx -> (ident, mmap size, rdonly)
    page = mmap.PAGESIZE
    for m in maps:
        if m.name in info:  # the skeleton's member name
            internal, ident = info[m.name].internal, info[m.name].ident
        else:  # a Loader without its object: the kernel's name is all there is
            internal = "." in m.name
            ident = map_ident(m.name, internal)
        if ident is not None:
            idents.setdefault(ident, m.name)
        if internal and ident and m.flags & _core.BPF_F_MMAPABLE and m.index in images:
            size = (m.value_size + 7) // 8 * 8 * m.max_entries
            size = max(page, (size + page - 1) // page * page)
            mmapable[m.index] = (ident, size, bool(m.flags & _core.BPF_F_RDONLY_PROG))

    def resolve(key: str) -> MapCreate:
        full = idents.get(key, key)
        for m in maps:
            if m.name == full:
                return m
        raise KeyError(f"no map {key!r}")

    ctx_size = max(loader.ctx_size, expl.ctx_size)
    ctx = ctypes.create_string_buffer(ctx_size)
    log_buf = ctypes.create_string_buffer(log_size) if log_level else None
    struct.pack_into("<IIIIQ", ctx, 0, ctx_size, 0, log_level, log_size if log_level else 0,
                     _bpf.addr(log_buf))
    for key, value in (max_entries or {}).items():
        struct.pack_into("<I", ctx, _CTX_HDR + _MAP_DESC * resolve(key).index + _DESC_MAX_ENTRIES,
                         value)

    overrides: dict[int, bytes] = {}
    for key, image in (initial_values or {}).items():
        m = resolve(key)
        if m.index not in images:
            raise ValueError(f"map {key!r} has no initial value to replace")
        if len(image) > m.value_size:
            raise ValueError(f"initial value for {key!r} is {len(image)} bytes, map value is "
                             f"{m.value_size}")
        overrides[m.index] = bytes(image) + images[m.index][len(image) :]

    owned: list[int] = []  # object fds: closed on any failure
    regions: list[mmap.mmap] = []  # anon initial-value regions (skel_prep_map_data)
    keep: list[ctypes.Array[ctypes.c_char]] = []
    mapped: dict[str, mmap.mmap] = {}
    arena: _ArenaMapping | None = None
    reserved: dict[int, _Reservation] = {}  # map idx -> address range for its map_extra
    try:
        for m in maps:
            if m.map_extra_from_ctx:
                reserved[m.index] = _reserve_arena(name, m, ctx)
        for idx, (_ident, size, _) in mmapable.items():
            region = mmap.mmap(-1, size, flags=mmap.MAP_SHARED,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE)
            regions.append(region)
            img = overrides.get(idx, images[idx])
            region[: len(img)] = img
            cref = ctypes.c_char.from_buffer(region)
            struct.pack_into("<Q", ctx, _CTX_HDR + _MAP_DESC * idx + _DESC_INITIAL_VALUE,
                             ctypes.addressof(cref))
            del cref
        for idx, img in overrides.items():
            if idx in mmapable:
                continue
            buf = ctypes.create_string_buffer(img, len(img))
            keep.append(buf)
            struct.pack_into("<Q", ctx, _CTX_HDR + _MAP_DESC * idx + _DESC_INITIAL_VALUE,
                             ctypes.addressof(buf))

        _load_and_run(name, expl, data, insns, ctx, ctx_size, log_level, log_buf)

        log = _c_string(log_buf) if log_buf is not None else ""
        map_fds: dict[str, int] = {}
        for m in maps:
            fd = struct.unpack_from("<i", ctx, _CTX_HDR + _MAP_DESC * m.index)[0]
            if fd > 0:
                owned.append(fd)
                map_fds[m.name] = fd
        prog_fds: dict[str, int] = {}
        for p in progs:
            off = _CTX_HDR + _MAP_DESC * expl.nr_maps + _PROG_DESC * p.ctx_slot
            fd = struct.unpack_from("<i", ctx, off)[0]
            if fd > 0:
                owned.append(fd)
                prog_fds[p.name] = fd
        missing = [m.name for m in maps if m.name not in map_fds] + [
            p.name for p in progs if p.name not in prog_fds
        ]
        if missing:
            raise LoadError(f"loader succeeded but left no fd for {', '.join(missing)}",
                            log=log, object_name=name)
        if arena_plan is not None:
            # the skeleton's __load, first: map the arena, copy the __arena globals in
            arena_map, arena_img = arena_plan
            arena = _map_arena(name, arena_map, map_fds[arena_map.name], arena_img, log,
                               reserved.get(arena_map.index))
        # skel_finalize_map_data: map the map's value where the initial image was
        by_index = {m.index: m for m in maps}
        for idx, (ident, size, rdonly) in mmapable.items():
            m = by_index[idx]
            prot = mmap.PROT_READ if rdonly else mmap.PROT_READ | mmap.PROT_WRITE
            try:
                mapped[ident] = mmap.mmap(map_fds[m.name], size, flags=mmap.MAP_SHARED, prot=prot)
            except OSError as e:
                raise LoadError(f"mmap of map {m.name}: {_strerror(e.errno or 0)}",
                                errno=e.errno, log=log, step=f"mmap {m.name}",
                                object_name=name) from None
        loaded = LoadedObject(
            name=name, explanation=expl, maps=map_fds, progs=prog_fds, mmaps=mapped,
            idents={k: v for k, v in idents.items() if k != v}, sections=sections, log=log,
            struct_ops=st_values, struct_ops_unavailable=st_unavailable, arena=arena,
        )
        owned = []
        mapped = {}
        arena = None
        return loaded
    finally:
        for mm in mapped.values():
            mm.close()
        if arena is not None:
            arena.close()
        for r in reserved.values():  # the ones no arena was mapped over
            r.release()
        for fd in owned:
            _close_quietly(fd)
        for region in regions:
            region.close()


def _arena_image(loader: Loader, expl: Explanation, name: str) -> tuple[MapCreate, bytes] | None:
    """The ARENA map of the loader and the ``__arena`` globals' image to copy into it,
    from the object the loader was generated from; None when there is none (or no
    object to ask: a bare Loader leaves the arena unmapped, see :func:`run`)."""
    core = loader._core
    if core is None:
        return None
    step = "arena image"
    try:
        got = core.arena_image()
    except BpfgenError as e:
        raise LoadError(f"{step}: {e}", step=step, object_name=name) from None
    if got is None:
        return None
    idx, image = got
    m = next((m for m in expl.maps if m.index == idx), None)
    if m is None or m.type != _core.BPF_MAP_TYPE_ARENA:
        raise LoadError(f"{step}: the object's arena (map #{idx}) is not an ARENA map of this "
                        "loader (was the object changed after generating it?)", step=step,
                        object_name=name)
    return m, bytes(image)


def _reserve_arena(name: str, m: MapCreate, ctx: ctypes.Array[ctypes.c_char]) -> _Reservation:
    """Reserve the user address range of arena ``m`` (a map the loader gives the
    ``map_extra`` in its descriptor's ``initial_value``) and store its start there, as the
    light skeleton does before ``bpf_load_and_run``. Its size is the arena's:
    ``max_entries`` pages, or the override already in the ctx when the loader honours it."""
    desc = _CTX_HDR + _MAP_DESC * m.index
    pages = m.max_entries
    if m.max_entries_from_ctx:
        pages = struct.unpack_from("<I", ctx, desc + _DESC_MAX_ENTRIES)[0] or pages
    size = max(1, pages) * mmap.PAGESIZE
    try:
        r = _Reservation(size)
    except OSError as e:
        step = f"reserve {m.name}"
        raise LoadError(f"{step}: reserving {size} bytes for the arena: "
                        f"{_strerror(e.errno or 0)}", errno=e.errno, step=step,
                        object_name=name) from None
    struct.pack_into("<Q", ctx, desc + _DESC_INITIAL_VALUE, r.address)
    return r


def _map_arena(
    name: str, m: MapCreate, fd: int, image: bytes, log: str,
    reservation: _Reservation | None = None,
) -> _ArenaMapping:
    """Map arena map ``m`` (fd ``fd``, created by the loader) at its fixed address and copy
    the ``__arena`` globals' image to its start. Its size and address are what the kernel
    says (``max_entries`` may have been overridden through the ctx). ``reservation``: the
    range reserved for an arena without ``map_extra``, which the mapping replaces."""
    step = f"mmap {m.name}"

    def fail(what: str, err: int | None = None) -> LoadError:
        return LoadError(f"{step}: {what}", errno=err, log=log, step=step, object_name=name)

    try:
        info = _bpf.map_info(fd)
    except OSError as e:
        raise fail(f"map info: {_strerror(e.errno or 0)}", e.errno) from None
    address, size = info.map_extra, info.max_entries * mmap.PAGESIZE
    if address == 0:
        raise fail("the arena has no fixed user address (map_extra 0): the __arena globals "
                   "cannot be placed where the programs expect them")
    if len(image) > size:
        raise fail(f"the arena ({size} bytes) is too small for its __arena globals "
                   f"({len(image)} bytes)")
    if info.map_flags & _core.BPF_F_SEGV_ON_FAULT:
        raise fail("the arena has BPF_F_SEGV_ON_FAULT: user space cannot fault its pages in "
                   "to copy the __arena globals")
    if reservation is not None and (address != reservation.address
                                    or size > reservation.size):
        # MAP_FIXED would replace whatever is there: only ever over our own reservation
        raise fail(f"the arena ({size} bytes at {address:#x}) is not in the range reserved "
                   f"for it ({reservation.size} bytes at {reservation.address:#x})")
    try:
        return _ArenaMapping(m.name, fd, address, size, image, reservation)
    except OSError as e:
        err = e.errno or 0
        hint = (" (the address range is in use: is an object with this arena loaded already "
                "in this process?)" if err == _errno.EEXIST else "")
        raise fail(f"mapping {size} bytes at {address:#x}: {_strerror(err)}{hint}",
                   err) from None


def _load_and_run(
    name: str,
    expl: Explanation,
    data: bytes,
    insns: bytes,
    ctx: ctypes.Array[ctypes.c_char],
    ctx_size: int,
    log_level: int,
    log_buf: ctypes.Array[ctypes.c_char] | None,
) -> None:
    """bpf_load_and_run(): loader map + loader prog + test run; both closed on return."""

    def log() -> str:
        return _c_string(log_buf) if log_buf is not None else ""

    hint = "" if log_level else " (log_level=1 shows the log)"
    try:
        map_fd = _bpf.map_create(_core.BPF_MAP_TYPE_ARRAY, "__loader.map", 4, len(data), 1)
    except OSError as e:
        err = e.errno or 0
        if err in (_errno.EPERM, _errno.EACCES, _errno.ENOSYS):
            raise BpfPermissionError(
                f"bpf() not permitted: creating the loader map failed with {_strerror(err)}; "
                "loading needs root (CAP_BPF and CAP_PERFMON or CAP_SYS_ADMIN)",
                errno=err, step="loader map", object_name=name,
            ) from None
        raise LoadError(f"failed to create loader map: {_strerror(err)}", errno=err,
                        step="loader map", object_name=name) from None
    prog_fd = -1
    try:
        try:
            _bpf.map_update_elem(map_fd, b"\0\0\0\0", data)
        except OSError as e:
            raise LoadError(f"failed to update loader map: {_strerror(e.errno or 0)}",
                            errno=e.errno, step="loader map", object_name=name) from None
        fd_array = ctypes.c_int(map_fd)
        try:
            prog_fd = _bpf.prog_load(
                _core.BPF_PROG_TYPE_SYSCALL, insns, _LOADER_LICENSE, "__loader.prog",
                fd_array=ctypes.addressof(fd_array), prog_flags=_core.BPF_F_SLEEPABLE,
                log_level=log_level, log_size=len(log_buf) if log_buf is not None else 0,
                log_buf=_bpf.addr(log_buf),
            )
        except OSError as e:
            why = ""
            if e.errno == _errno.EINVAL and uses_gotol(insns, expl.big_endian):
                why = ("; this loader's jumps beyond 16 bits are gotol (BPF_JMP32 | BPF_JA), "
                       "which needs Linux 6.6 or later")
            raise LoadError(f"failed to load loader prog: {_strerror(e.errno or 0)}{why}{hint}",
                            errno=e.errno, log=log(), step="loader prog",
                            object_name=name) from None
        try:
            res = _bpf.prog_test_run(prog_fd, ctx=ctx, ctx_size=ctx_size)
        except OSError as e:
            raise LoadError(f"failed to execute loader prog: {_strerror(e.errno or 0)}",
                            errno=e.errno, log=log(), step="loader run",
                            object_name=name) from None
        if res.retval < 0:
            err = -res.retval
            try:
                blob = _bpf.map_lookup_elem(map_fd, b"\0\0\0\0", len(data)) or b""
            except OSError:
                blob = b""
            idx, step = diagnose(expl, blob) if blob else (None, None)
            where = f"{step}: " if step else "loader prog: "
            raise LoadError(f"{where}{_strerror(err)}{hint if log_level == 0 else ''}",
                            errno=err, log=log(), step=step, step_index=idx, object_name=name)
    finally:
        _close_quietly(map_fd)
        if prog_fd >= 0:
            _close_quietly(prog_fd)


__all__ = [
    "BpfPermissionError", "LoadError", "LoadedObject", "StructOpsValue", "diagnose", "map_ident",
    "run",
]
