"""``bpfgen-fast``: the command line, spelled like bpftool where bpftool has
the command, so it drops into existing Makefiles.

    bpfgen-fast gen skeleton -L OBJ [name NAME] [-o FILE]
    bpfgen-fast gen skeleton -L -S -k KEY -i CERT OBJ [name NAME] [-o FILE]
    bpfgen-fast gen loader OBJ [name NAME] -o PREFIX
    bpfgen-fast inspect OBJ [--json]
    bpfgen-fast batch OBJ... [--from FILE] --out-dir DIR [-j N] [--format lskel|blobs]

Options may appear anywhere on the line, as with bpftool. Host facts that
end up in the output can be pinned with ``--page-size`` and ``--possible-cpus``.
Errors print one ``error: ...`` line and exit 1; usage errors exit 2;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bpfgen_fast import _core
from bpfgen_fast.errors import BpfgenError
from bpfgen_fast.object import COMPAT_CHOICES, BpfObject

USAGE = """\
usage: bpfgen-fast [--debug] COMMAND ...
  gen skeleton -L OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
  gen skeleton -L -S -k KEY.pem -i CERT OBJ [name NAME] [-o FILE] [HOST] [AUTOLOAD]
      (signed, as bpftool 7.8.0: RSA key, X.509 cert with Subject Key Identifier;
       -S implies -L and --compat bpftool-7.8)
  gen loader OBJ [name NAME] -o PREFIX [HOST] [AUTOLOAD]
  inspect OBJ [--json]
  explain OBJ|PREFIX [--json] [--disasm] [HOST] [AUTOLOAD]
  run OBJ [name NAME] [--log-level N] [--json] [AUTOLOAD]     (root)
  batch OBJ... [--from FILE] --out-dir DIR [-j N] [--format lskel|blobs] [HOST]
HOST (default: this machine's, as libbpf reads them):
  --page-size N --possible-cpus N --kernel-version X.Y.Z
  --kconfig-file FILE --kallsyms-file FILE
  --kernel-btf FILE (struct_ops layouts; default /sys/kernel/btf/vmlinux)
  --compat bpftool-7.5|bpftool-7.8 (header text of that bpftool; default 7.5)
AUTOLOAD: --no-autoload PROG / --autoload PROG (repeatable)
"""


class UsageError(Exception):
    pass


@dataclass
class Args:
    words: list[str] = field(default_factory=list)
    output: str | None = None
    use_loader: bool = False
    debug: bool = False
    json: bool = False
    page_size: int | None = None
    possible_cpus: int | None = None
    kernel_version: str | None = None
    kconfig_file: str | None = None
    kallsyms_file: str | None = None
    kernel_btf: str | None = None
    compat: str | None = None
    autoload: list[tuple[str, bool]] = field(default_factory=list)
    log_level: str | None = None
    disasm: bool = False
    jobs: int | None = None
    from_file: str | None = None
    out_dir: str | None = None
    format: str | None = None
    sign: bool = False
    sign_key: str | None = None
    sign_cert: str | None = None

    def host(self) -> dict[str, Any]:
        """Host facts for generation; unset ones are read from this machine."""
        return {
            "page_size": self.page_size,
            "possible_cpus": self.possible_cpus,
            "kernel_version": self.kernel_version,
            "kconfig_file": self.kconfig_file,
            "kallsyms_file": self.kallsyms_file,
            "kernel_btf": self.kernel_btf,
            **({"compat": self.compat} if self.compat is not None else {}),
        }


_VALUE_OPTS = {"-o": "output", "--output": "output", "--page-size": "page_size",
               "--possible-cpus": "possible_cpus", "--kernel-version": "kernel_version",
               "--kconfig-file": "kconfig_file", "--kallsyms-file": "kallsyms_file",
               "--kernel-btf": "kernel_btf", "--compat": "compat",
               "--autoload": "autoload", "--no-autoload": "no_autoload",
               "--log-level": "log_level", "--jobs": "jobs", "--from": "from_file",
               "--out-dir": "out_dir", "--format": "format",
               "-k": "sign_key", "-i": "sign_cert"}
_NUMERIC_OPTS = {"page_size", "possible_cpus", "jobs"}
_FLAG_OPTS = {"-L": "use_loader", "--use-loader": "use_loader", "--debug": "debug",
              "-d": "debug", "--json": "json", "-j": "json", "--disasm": "disasm",
              "-S": "sign", "--sign": "sign"}


def parse(argv: Sequence[str]) -> Args:
    args = Args()
    it = iter(argv)
    for word in it:
        if word == "-j" and args.words[:1] == ["batch"]:
            word = "--jobs"  # batch -j N: jobs, as in make (elsewhere -j is --json)
        if word in _FLAG_OPTS:
            setattr(args, _FLAG_OPTS[word], True)
        elif word.split("=", 1)[0] in _VALUE_OPTS:
            key, _, inline = word.partition("=")
            value = inline if inline else next(it, None)
            if value is None:
                raise UsageError(f"option {key} needs a value")
            attr = _VALUE_OPTS[key]
            if attr in ("autoload", "no_autoload"):
                args.autoload.append((value, attr == "autoload"))
            elif attr == "compat" and value not in COMPAT_CHOICES:
                raise UsageError(f"option --compat takes one of {', '.join(COMPAT_CHOICES)},"
                                 f" got {value!r}")
            elif attr not in _NUMERIC_OPTS:
                setattr(args, attr, value)
            else:
                try:
                    number = int(value, 0)
                except ValueError:
                    raise UsageError(f"option {key} needs a number, got {value!r}") from None
                if number <= 0:
                    raise UsageError(f"option {key} must be positive")
                setattr(args, attr, number)
        elif word in ("-h", "--help"):
            raise UsageError("")
        elif word.startswith("-") and word != "-":
            raise UsageError(f"unknown option {word}")
        else:
            args.words.append(word)
    if args.sign:
        args.use_loader = True  # bpftool: -S implies -L
    _check_signing(args)
    return args


def _check_signing(args: Args) -> None:
    """bpftool 7.8.0's checks (main.c, for every command), with its messages."""
    if args.sign and (args.sign_key is None or args.sign_cert is None):
        raise UsageError(
            "-i <identity_x509_cert> and -k <private_key> must be supplied with -S for signing")
    if not args.sign and (args.sign_key is not None or args.sign_cert is not None):
        raise UsageError("--sign (or -S) must be explicitly passed with -i <identity_x509_cert>"
                         " and -k <private_key> to sign the programs")
    if args.sign and args.compat == "bpftool-7.5":
        raise UsageError("-S (signing) needs --compat bpftool-7.8: bpftool 7.5.0 has no -S")


def _object_and_name(words: list[str]) -> tuple[str, str | None]:
    """``OBJ [name NAME]``, as bpftool spells it."""
    if not words:
        raise UsageError("missing object file")
    obj, rest = words[0], words[1:]
    if not rest:
        return obj, None
    if len(rest) == 2 and rest[0] == "name":
        return obj, rest[1]
    raise UsageError(f"unexpected arguments: {' '.join(rest)}")


def _open(words: list[str], args: Args | None = None) -> BpfObject:
    path, name = _object_and_name(words)
    try:
        obj = BpfObject.open(path, name)
    except OSError as e:
        raise BpfgenError(f"{path}: {e.strerror or e}") from e
    for prog, autoload in args.autoload if args else []:
        if prog not in obj.programs:
            flag = "--autoload" if autoload else "--no-autoload"
            raise UsageError(f"{flag}: no program {prog!r} in {path}")
        obj.programs[prog].autoload = autoload
    return obj


def cmd_gen_loader(args: Args, words: list[str]) -> int:
    if args.output is None:
        raise UsageError("gen loader needs -o PREFIX")
    obj = _open(words, args)
    loader = obj.gen_loader(**args.host())
    loader.write(args.output)
    return 0


def cmd_gen_skeleton(args: Args, words: list[str]) -> int:
    if not args.use_loader:
        raise UsageError("only light skeletons (-L) are supported")
    obj = _open(words, args)
    if args.sign:
        text = obj.gen_skeleton(sign_key=args.sign_key, sign_cert=args.sign_cert, **args.host())
    else:
        text = obj.gen_skeleton(**args.host())
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from bpfgen_fast._io import atomic_write

        atomic_write(args.output, text.encode())
    return 0


_SHT = {0: "NULL", 1: "PROGBITS", 2: "SYMTAB", 3: "STRTAB", 4: "RELA", 8: "NOBITS", 9: "REL",
        0x6FFF4C03: "LLVM_ADDRSIG"}
_BIND = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK"}
_STT = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE"}


def inspect_dict(obj: BpfObject) -> dict[str, object]:
    """The documented JSON shape of ``inspect --json``."""
    core = obj._core
    return {
        "name": obj.name,
        "license": obj.license,
        "sections": [
            {"index": i, "name": n, "type": _SHT.get(t, hex(t)), "flags": f, "size": s}
            for i, n, t, f, s in core.sections()
        ],
        "symbols": [
            {"name": n, "value": v, "size": sz, "bind": _BIND.get(b, str(b)),
             "type": _STT.get(t, str(t)), "shndx": sh}
            for n, v, sz, b, t, sh in core.symbols()
        ],
        "maps": core.maps(),
        "programs": core.programs(),
        "subprograms": core.subprograms(),
    }


def cmd_inspect(args: Args, words: list[str]) -> int:
    obj = _open(words)
    info = inspect_dict(obj)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = [f"object {info['name']}  license {info['license']!r}", "sections:"]
    for s in info["sections"]:  # type: ignore[attr-defined]
        out.append(f"  [{s['index']:3}] {s['name']:<28} {s['type']:<12} size {s['size']}")
    out.append("maps:")
    for m in info["maps"]:  # type: ignore[attr-defined]
        out.append(
            f"  {m['name']:<16} {m['type']:<20} key {m['key_size']:<5} value {m['value_size']:<7}"
            f" max_entries {m['max_entries']:<8} flags {m['flags']:#x}"
        )
    out.append("programs:")
    for p in info["programs"]:  # type: ignore[attr-defined]
        load = "" if p["autoload"] else "  (not autoloaded)"
        out.append(
            f"  {p['name']:<24} {p['section']:<32} {p['type']:<16} {p['insn_cnt']} insns{load}"
        )
    if info["subprograms"]:
        out.append("subprograms: " + ", ".join(info["subprograms"]))  # type: ignore[arg-type]
    print("\n".join(out))
    return 0


def cmd_explain(args: Args, words: list[str]) -> int:
    """``explain OBJ|PREFIX``: decode the loader of an object, or of blobs written
    by ``gen loader -o PREFIX``, into the steps it will take."""
    import os

    from bpfgen_fast.explain import explain, read_loader

    if words and not os.path.isfile(words[0]) and os.path.isfile(words[0] + ".insns.bin"):
        if len(words) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(words[1:])}")
        try:
            loader = read_loader(words[0])
        except OSError as e:
            raise BpfgenError(f"{e.filename}: {e.strerror or e}") from e
    else:
        loader = _open(words, args).gen_loader(**args.host())
    expl = explain(loader, disasm=args.disasm)
    print(expl.to_json() if args.json else expl.to_text())
    return 0


def cmd_run(args: Args, words: list[str]) -> int:
    """``run OBJ``: load through the generated loader, print what was created,
    close everything."""
    from bpfgen_fast.run import LoadError, run

    try:
        level = int(args.log_level or "0", 0)
    except ValueError:
        raise UsageError(f"option --log-level needs a number, got {args.log_level!r}") from None
    if level < 0:
        raise UsageError("option --log-level must not be negative")
    obj = _open(words, args)
    try:
        loaded = run(obj, level)
    except LoadError as e:
        if e.log:
            sys.stderr.write(e.log if e.log.endswith("\n") else e.log + "\n")
        raise
    with loaded:
        maps = []
        for name, fd in loaded.maps.items():
            mi = loaded.map_info(name)
            maps.append({"name": name, "fd": fd, "id": mi.id, "type": mi.type_name,
                         "key_size": mi.key_size, "value_size": mi.value_size,
                         "max_entries": mi.max_entries, "flags": mi.map_flags})
        progs = []
        for name, fd in loaded.progs.items():
            pi = loaded.prog_info(name)
            progs.append({"name": name, "fd": fd, "id": pi.id, "type": pi.type_name,
                          "xlated_len": pi.xlated_prog_len})
        if loaded.log:
            sys.stderr.write(loaded.log if loaded.log.endswith("\n") else loaded.log + "\n")
    if args.json:
        print(json.dumps({"object": obj.name, "maps": maps, "programs": progs}, indent=2))
        return 0
    out = [f"loaded {obj.name}: {len(maps)} maps, {len(progs)} programs (closed on exit)", "maps:"]
    for m in maps:
        out.append(f"  fd {m['fd']:<4} id {m['id']:<6} {m['name']:<24} {m['type']:<18} "
                   f"key {m['key_size']:<4} value {m['value_size']:<6} "
                   f"max_entries {m['max_entries']:<8} flags {m['flags']:#x}")
    out.append("programs:")
    for p in progs:
        out.append(f"  fd {p['fd']:<4} id {p['id']:<6} {p['name']:<24} {p['type']:<18} "
                   f"xlated {p['xlated_len']} bytes")
    print("\n".join(out))
    return 0


class _ProgressBar:
    """``[#####.....] 123/790`` redrawn in place on a terminal."""

    def __init__(self, stream: Any, width: int = 40) -> None:
        self.stream = stream
        self.width = width
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _batch_paths(words: list[str], from_file: str | None) -> list[str]:
    """OBJ... then the paths of ``--from FILE`` (one per line, ``-`` for stdin;
    blank lines and ``#`` comments skipped)."""
    paths = list(words)
    if from_file is not None:
        try:
            if from_file == "-":
                text = sys.stdin.read()
            else:
                with open(from_file) as f:
                    text = f.read()
        except OSError as e:
            raise BpfgenError(f"{from_file}: {e.strerror or e}") from e
        lines = (ln.strip() for ln in text.splitlines())
        paths += [ln for ln in lines if ln and not ln.startswith("#")]
    return paths


def cmd_batch(args: Args, words: list[str]) -> int:
    """``batch OBJ... --out-dir DIR``: every object's light skeleton (or, with
    ``--format blobs``, its loader blobs) written atomically into DIR, ``-j N``
    at a time. A progress bar on a terminal, one ``error:`` line per failed
    object, a summary line; exit 1 if any object failed, 130 on Ctrl-C (objects
    running then finish, the rest are not started; no partial files)."""
    import time

    from bpfgen_fast.batch import Format, gen_batch

    if args.out_dir is None:
        raise UsageError("batch needs --out-dir DIR")
    if args.format not in (None, "lskel", "blobs"):
        raise UsageError(f"--format must be lskel or blobs, got {args.format!r}")
    fmt: Format = "blobs" if args.format == "blobs" else "lskel"
    paths = _batch_paths(words, args.from_file)
    if not paths:
        raise UsageError("batch needs objects: OBJ... or --from FILE")
    bar = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    interrupted = announced = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    def progress(done: int, total: int) -> None:
        # the first call after SIGINT comes once the batch is cancelled: say so at once
        nonlocal announced
        if interrupted and not announced:
            announced = True
            if bar:
                bar.close()
            print("batch: interrupted; the running objects finish, the rest are skipped",
                  file=sys.stderr, flush=True)
        elif bar and not interrupted:
            bar(done, total)

    start = time.monotonic()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        results = gen_batch(paths, jobs=args.jobs, out_dir=args.out_dir, fmt=fmt,
                            progress=progress, **args.host())
    except KeyboardInterrupt:
        if bar and not announced:
            bar.close()
        print("batch: interrupted; objects not started were skipped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if bar:
        bar.close()
    for r in results:
        if r.error is None:
            continue
        if isinstance(r.error, BpfgenError):
            print(f"error: {r.error}", file=sys.stderr)
        elif isinstance(r.error, OSError):
            where = r.error.filename or r.path
            print(f"error: {where}: {r.error.strerror or r.error}", file=sys.stderr)
        else:
            print(f"error: {r.path}: {r.error}", file=sys.stderr)
    ok = sum(r.ok for r in results)
    failed = sum(r.error is not None for r in results)
    print(f"batch: {ok} of {len(results)} objects generated into {args.out_dir}, {failed} failed "
          f"({time.monotonic() - start:.2f}s)")
    return 1 if failed else 0


def dispatch(args: Args) -> int:
    w = args.words
    if args.sign and w[:2] != ["gen", "skeleton"]:
        raise UsageError("-S (signing) applies to gen skeleton only")
    if w[:2] == ["gen", "loader"]:
        return cmd_gen_loader(args, w[2:])
    if w[:2] == ["gen", "skeleton"]:
        return cmd_gen_skeleton(args, w[2:])
    if w[:1] == ["inspect"]:
        return cmd_inspect(args, w[1:])
    if w[:1] == ["explain"]:
        return cmd_explain(args, w[1:])
    if w[:1] == ["run"]:
        return cmd_run(args, w[1:])
    if w[:1] == ["batch"]:
        return cmd_batch(args, w[1:])
    raise UsageError("unknown command" if w else "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(argv)
    except UsageError as e:
        if str(e):
            print(f"error: {e}", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 2
    try:
        return dispatch(args)
    except UsageError as e:
        if str(e):
            print(f"error: {e}", file=sys.stderr)
        else:
            print(USAGE, end="", file=sys.stderr)
        return 2
    except BpfgenError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except OSError as e:  # writing the outputs (-o) failed: still one error line
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 1


__all__ = ["_core", "inspect_dict", "main"]
