"""The Python facade over the Rust core: open an object, look at it, adjust
what libbpf lets a user adjust before load (autoload), generate the loader."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from bpfgen_fast import _core

# typing and pathlib cost milliseconds at import: type checkers read this block,
# Python skips it (every annotation here is a string)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

    PathOrBytes = Union[str, os.PathLike[str], bytes, bytearray, memoryview]
    KconfigValue = Union[str, int, bool]

def _kconfig_lines(kconfig: Mapping[str, KconfigValue]) -> str:
    lines = []
    for name, value in kconfig.items():
        if not name.startswith("CONFIG_"):
            raise ValueError(f"kconfig keys must start with CONFIG_, got {name!r}")
        text = ("y" if value else "n") if isinstance(value, bool) else str(value)
        lines.append(f"{name}={text}")
    return "\n".join(lines) + "\n"


#: Header styles ``compat=`` accepts (bpftool versions whose text is reproduced).
COMPAT_CHOICES = ("bpftool-7.5", "bpftool-7.8")


def host_args(
    *,
    page_size: int | None = None,
    possible_cpus: int | None = None,
    kernel_version: int | str | None = None,
    kconfig: Mapping[str, KconfigValue] | None = None,
    kconfig_file: str | os.PathLike[str] | None = None,
    kallsyms_file: str | os.PathLike[str] | None = None,
    kernel_btf: str | os.PathLike[str] | None = None,
    compat: str = "bpftool-7.5",
    _bpftool_prog_slots: bool = False,
    _bpftool_ksym_names: bool = False,
    _bpftool_kconfig_host_order: bool = False,
    _bpftool_map_btf_ids: bool = False,
) -> dict[str, object]:
    """The host facts generation depends on. Anything left ``None`` is read
    from this machine the way libbpf reads it, and only when an object needs it:
    page size, possible CPUs, the running kernel's version, its config
    (``/boot/config-$(uname -r)`` or ``/proc/config.gz``) and ``/proc/kallsyms``.
    ``kconfig`` values win over the config file, like libbpf's ``kconfig`` option.
    ``kernel_btf`` is the kernel BTF that struct_ops value layouts come from
    (default ``/sys/kernel/btf/vmlinux``; read only for objects with struct_ops
    maps; kernel type ids are looked up by the loader at run time).
    ``compat`` picks the header text to reproduce: ``"bpftool-7.5"`` (default) or
    ``"bpftool-7.8"`` (C++-compatible casts); the loader blobs are the same."""
    if compat not in COMPAT_CHOICES:
        raise ValueError(f"compat must be one of {', '.join(COMPAT_CHOICES)}, got {compat!r}")
    kconfig_text = None if kconfig_file is None else _core.read_kconfig(kconfig_file)
    # an int is KERNEL_VERSION's code already; the core parses "a.b.c"
    version_code = (kernel_version if kernel_version is None or isinstance(kernel_version, int)
                    else _core.kernel_version_code(kernel_version))
    kallsyms_text = None
    if kallsyms_file is not None:
        with open(kallsyms_file, errors="replace") as f:
            kallsyms_text = f.read()
    return {
        "page_size": page_size,
        "possible_cpus": possible_cpus,
        "kernel_version": version_code,
        "kconfig": kconfig_text,
        "kconfig_extra": None if kconfig is None else _kconfig_lines(kconfig),
        "kallsyms": kallsyms_text,
        "kernel_btf": None if kernel_btf is None else os.fspath(kernel_btf),
        "compat": compat,
        # Test-only: reproduce bpftool 7.5.0's prog-fd slots (README: divergences).
        "bpftool_prog_slots": _bpftool_prog_slots,
        "bpftool_ksym_names": _bpftool_ksym_names,
        "bpftool_kconfig_host_order": _bpftool_kconfig_host_order,
        "bpftool_map_btf_ids": _bpftool_map_btf_ids,
    }


#: ``host_args()`` with every fact left to the machine, shared by the calls
#: that give none (read-only: nothing mutates these dicts).
_DEFAULT_HOST = host_args()
#: the same, converted by the core once: the per-object hot paths pass it
_DEFAULT_SPEC = _core.HostSpec(_DEFAULT_HOST)


class _Frozen:
    """Immutable value objects with a repr and equality over ``_FIELDS``, written out
    rather than made with ``dataclasses``, whose import (with ``inspect``) would double
    the package's import time."""

    __slots__ = ()
    _FIELDS: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"{type(self).__name__}({fields})"


class MapInfo(_Frozen):
    """Read-only facts about one map, as libbpf's open phase sees it. ``ident`` is its
    member name in the light skeleton (``skel->maps.<ident>``, and ``skel-><ident>`` for
    mmapped global data); None for an internal map the skeleton leaves out."""

    __slots__ = ("flags", "ident", "inner", "internal", "key_size", "max_entries", "name",
                 "section", "type", "value_size")
    _FIELDS = ("name", "section", "type", "key_size", "value_size", "max_entries", "flags",
               "internal", "inner", "ident")
    name: str
    section: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    internal: bool
    inner: str | None
    ident: str | None

    def __init__(self, name: str, section: str, type: str, key_size: int, value_size: int,
                 max_entries: int, flags: int, internal: bool, inner: str | None,
                 ident: str | None = None) -> None:
        for f, v in zip(self._FIELDS, (name, section, type, key_size, value_size, max_entries,
                                       flags, internal, inner, ident)):
            object.__setattr__(self, f, v)


class ProgramInfo:
    """One entry program. ``autoload`` may be changed before generation."""

    __slots__ = ("_attach_target", "_autoload", "_facts", "_obj")

    def __init__(self, obj: _core.Object, facts: _core.ProgramFacts) -> None:
        self._obj = obj
        self._facts = facts
        self._autoload = facts[6]
        self._attach_target = facts[7]

    @property
    def name(self) -> str:
        return self._facts[0]

    @property
    def section(self) -> str:
        return self._facts[1]

    @property
    def type(self) -> str:
        """Program type as libbpf spells it (``tracepoint``, ``xdp``, ...)."""
        return self._facts[2]

    @property
    def expected_attach_type(self) -> str | None:
        return self._facts[3]

    @property
    def flags(self) -> int:
        return self._facts[4]

    @property
    def insn_cnt(self) -> int:
        return self._facts[5]

    @property
    def autoload(self) -> bool:
        return self._autoload

    @autoload.setter
    def autoload(self, value: bool) -> None:
        self._obj.set_autoload(self.name, bool(value))
        self._autoload = bool(value)

    @property
    def attach_target(self) -> str | None:
        """The kernel function a BTF-attach program (``fentry``, ``fexit``,
        ``fmod_ret``, ``lsm``, ``lsm_cgroup``, ``tp_btf``, ``iter``) attaches to,
        when given here; ``None``: the one its section names. Setting it is
        ``bpf_program__set_attach_target(prog, 0, func)`` for a vmlinux target,
        spelt as in a section name (``file_open`` for an LSM hook): the loader
        looks it up at run time, as for ``SEC("lsm/file_open")``. Raises
        :class:`UnsupportedError` for a program that does not attach by BTF."""
        return self._attach_target

    @attach_target.setter
    def attach_target(self, func: str) -> None:
        if not func:
            raise ValueError("attach_target must be a function name")
        self._obj.set_attach_target(self.name, func)
        self._attach_target = func

    def __repr__(self) -> str:
        return f"ProgramInfo(name={self.name!r}, section={self.section!r}, type={self.type!r})"


class _OrderedView(Mapping[str, "object"]):
    """An ordered, read-only name → item mapping."""

    def __init__(self, items: dict[str, object]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> object:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


#: A generated loader (``data``, ``insns``, ``map_names``, ``prog_names``,
#: ``ctx_size``, ``replace()``, ``gen_skeleton()``, ``write()``): built by the
#: core, so a generation makes no Python-level object; its name tuples are made
#: on first access.
Loader = _core.Loader


class BpfObject:
    """A BPF ELF object after libbpf's open phase."""

    def __init__(self, core: _core.Object) -> None:
        self._core = core

    @classmethod
    def open(cls, source: PathOrBytes, name: str | None = None) -> BpfObject:
        """Open from a path (``name`` defaults to bpftool's rule) or from bytes
        (``name`` required)."""
        if type(source) is bytes and name is not None:  # the common case, without _read
            return cls(_core.open(source, name))
        return cls(_core.open(*_read(source, name)))

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def license(self) -> str:
        return self._core.license

    @property
    def maps(self) -> Mapping[str, MapInfo]:
        # the core gives each map's facts in MapInfo's field order
        items: dict[str, object] = {m[0]: MapInfo(*m) for m in self._core.maps()}
        return _OrderedView(items)  # type: ignore[return-value]

    @property
    def programs(self) -> Mapping[str, ProgramInfo]:
        items: dict[str, object] = {p[0]: ProgramInfo(self._core, p) for p in self._core.programs()}
        return _OrderedView(items)  # type: ignore[return-value]

    @property
    def subprograms(self) -> list[str]:
        return self._core.subprograms()

    def gen_loader(self, **host: Any) -> Loader:
        """Generate the loader blobs. Host facts (see :func:`host_args`) default
        to this machine's, like libbpf."""
        # the core builds the Loader, its _host the dict (HostSpec keeps its own)
        return self._core.loader(host_args(**host) if host else _DEFAULT_SPEC)

    def gen_skeleton(
        self,
        *,
        sign_key: str | os.PathLike[str] | None = None,
        sign_cert: str | os.PathLike[str] | None = None,
        signature: bytes | str | os.PathLike[str] | None = None,
        **host: Any,
    ) -> str:
        """The light-skeleton header, as ``bpftool gen skeleton -L`` prints it.

        With ``sign_key`` (an RSA, ECDSA P-256 / P-384 or ML-DSA-44/65/87
        private key, PEM, ECDSA signed deterministically; or a ``pkcs11:`` URI
        naming a key in a token) and ``sign_cert`` (its X.509
        certificate, PEM or DER, with a Subject Key Identifier) the header is
        the signed one of ``bpftool gen skeleton -L -S -k KEY -i CERT`` (bpftool
        7.8.0): its loader checks the SHA-256 of its data and the instructions
        carry a CMS signature for the kernel to verify (needs libbpf >= 1.7's
        ``skel_internal.h``). Signing implies ``compat="bpftool-7.8"``.

        With ``signature`` (a detached CMS signature, DER, as bytes or a file,
        made elsewhere over :meth:`signing_payload`) and ``sign_cert`` instead
        of ``sign_key``, that signature is checked against the certificate and
        the instructions and embedded as given: the two-step flow of a signer
        that holds the key elsewhere."""
        if sign_key is None and sign_cert is None and signature is None:
            return self._core.gen_skeleton(host_args(**host) if host else _DEFAULT_HOST)
        from bpfgen_fast.errors import SigningError
        from bpfgen_fast.sign import cms_sign, load_signer, release

        if signature is not None:
            if sign_key is not None:
                raise SigningError("sign_key and signature exclude each other: sign here, "
                                   "or embed a signature made elsewhere", self.name)
            if sign_cert is None:
                raise SigningError("a signature needs sign_cert to check it against",
                                   self.name)
        elif sign_key is None or sign_cert is None:
            raise SigningError("signing needs both sign_key and sign_cert", self.name)
        compat = host.setdefault("compat", "bpftool-7.8")
        if compat != "bpftool-7.8":
            raise SigningError(
                f"signed light skeletons need compat='bpftool-7.8', got {compat!r}"
                " (bpftool 7.5.0 cannot sign)",
                self.name,
            )
        args = dict(host_args(**host), gen_hash=True)
        try:
            if signature is not None:
                sig = _detached_signature(signature, sign_cert, self._core.gen_loader(args)[1])
            else:
                assert sign_key is not None
                key, ski = load_signer(sign_key, sign_cert)
                try:
                    sig = cms_sign(self._core.gen_loader(args)[1], key, ski)
                finally:
                    release(key)
        except SigningError as e:
            raise SigningError(e.reason, self.name) from e.__cause__
        return self._core.gen_skeleton(dict(args, signature=sig))

    def signing_payload(self, **host: Any) -> bytes:
        """The bytes the kernel verifies the signature of a signed light skeleton
        over: the instructions of its loader (libbpf 1.8's ``gen_hash`` loader,
        which embeds the SHA-256 of its data), for these host facts. Sign them
        elsewhere (``openssl cms -sign -binary -noattr -nocerts -keyid -md sha256
        -outform DER``) and pass the result as ``gen_skeleton(signature=...)``
        with the same host facts."""
        host.setdefault("compat", "bpftool-7.8")
        if host["compat"] != "bpftool-7.8":
            from bpfgen_fast.errors import SigningError

            raise SigningError(f"the signing payload is bpftool 7.8.0's signed loader, not "
                               f"compat={host['compat']!r}", self.name)
        insns: bytes = self._core.gen_loader(dict(host_args(**host), gen_hash=True))[1]
        return insns


def _detached_signature(signature: bytes | str | os.PathLike[str],
                        cert_path: str | os.PathLike[str], insns: bytes) -> bytes:
    """A detached signature made elsewhere, read if it is a path, checked against
    the certificate over ``insns`` before it is embedded as given."""
    from bpfgen_fast.errors import SigningError
    from bpfgen_fast.sign import MAX_SIG_SIZE, load_certificate, verify_cms

    if isinstance(signature, (bytes, bytearray, memoryview)):
        sig, what = bytes(signature), "signature"
    else:
        what = f"signature {os.fspath(signature)}"
        try:
            with open(signature, "rb") as f:
                sig = f.read()
        except OSError as e:
            raise SigningError(f"{what}: {e.strerror or e}") from e
    if len(sig) > MAX_SIG_SIZE:
        raise SigningError(f"{what} of {len(sig)} bytes exceeds {MAX_SIG_SIZE} bytes")
    verify_cms(sig, insns, load_certificate(cert_path), os.fspath(cert_path), what)
    return sig


def _read(source: PathOrBytes, name: str | None) -> tuple[bytes, str]:
    """An object's bytes and name: from bytes (``name`` required) or a path
    (``name`` defaults to bpftool's rule)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if name is None:
            raise TypeError("name is required when opening an object from bytes")
        return bytes(source), name
    path = os.fspath(source)
    with open(path, "rb") as f:
        data = f.read()
    return data, _core.default_object_name(path) if name is None else name


def gen_loader(path: PathOrBytes, name: str | None = None, **host: Any) -> Loader:
    """Open ``path`` and generate its loader in one call (one call into the
    core: the fastest way to generate many loaders)."""
    if type(path) is bytes and name is not None and not host:  # the hot path, in one call
        return _core.open_and_gen(path, name, _DEFAULT_SPEC)
    data, name = _read(path, name)
    return _core.open_and_gen(data, name, host_args(**host) if host else _DEFAULT_SPEC)


def gen_skeleton(path: PathOrBytes, name: str | None = None, **host: Any) -> str:
    """Open ``path`` and generate its light-skeleton header in one call."""
    return BpfObject.open(path, name).gen_skeleton(**host)
