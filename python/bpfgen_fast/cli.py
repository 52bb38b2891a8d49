"""``bpfgen-fast``: the command line, spelled like bpftool where bpftool has
the command, so it drops into existing Makefiles.

    bpfgen-fast gen skeleton -L OBJ [name NAME] [-o FILE]
    bpfgen-fast gen skeleton -L -S -k KEY -i CERT OBJ [name NAME] [-o FILE]
    bpfgen-fast gen skeleton -L -S --signature SIG.der -i CERT OBJ [name NAME] [-o FILE]
    bpfgen-fast gen signing-payload OBJ [name NAME] [-o FILE]
    bpfgen-fast gen loader OBJ [name NAME] -o PREFIX
    bpfgen-fast inspect OBJ [--json]
    bpfgen-fast batch OBJ... [--from FILE] --out-dir DIR [-j N] [--format lskel|blobs]
    bpfgen-fast batch -S -k KEY -i CERT OBJ... --out-dir DIR [-j N]
    bpfgen-fast verify HEADER --cert CERT

Options may appear anywhere on the line, as with bpftool. Host facts that
end up in the output can be pinned with ``--page-size`` and ``--possible-cpus``.
Errors print one ``error: ...`` line and exit 1; usage errors exit 2;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bpfgen_fast import _core
from bpfgen_fast.errors import BpfgenError, UnsupportedError
from bpfgen_fast.object import BpfObject

USAGE: str = _core.CLI_USAGE


class UsageError(Exception):
    """A command line the core's grammar refused, or a command's own check failed.
    ``show_usage``: print the usage text after the message."""

    def __init__(self, message: str, show_usage: bool = False) -> None:
        super().__init__(message)
        self.show_usage = show_usage or not message


@dataclass
class Args:
    """The request as ``_core.parse_cli`` (src/cli.rs) parsed it: the one grammar."""

    command: str
    object: str | None = None
    name: str | None = None
    objects: list[str] = field(default_factory=list)
    output: str | None = None
    use_loader: bool = False
    debug: bool = False
    json: bool = False
    page_size: int | None = None
    possible_cpus: int | None = None
    kernel_version: int | None = None
    kconfig_file: str | None = None
    kallsyms_file: str | None = None
    kernel_btf: str | None = None
    compat: str | None = None
    autoload: list[tuple[str, bool]] = field(default_factory=list)
    attach_targets: list[tuple[str, str]] = field(default_factory=list)
    log_level: int = 0
    disasm: bool = False
    jobs: int | None = None
    from_file: str | None = None
    out_dir: str | None = None
    format: str | None = None
    sign: bool = False
    sign_key: str | None = None
    sign_cert: str | None = None
    cert: str | None = None
    signature: str | None = None

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


def parse(argv: Sequence[str]) -> Args:
    try:
        fields = _core.parse_cli(list(argv))
    except ValueError as e:
        message, show_usage = e.args
        raise UsageError(message, show_usage) from None
    return Args(**fields)


def _open(args: Args) -> BpfObject:
    path = args.object
    assert path is not None  # the grammar gives every single-object command one
    try:
        obj = BpfObject.open(path, args.name)
    except OSError as e:
        raise BpfgenError(f"{path}: {e.strerror or e}") from e
    for prog, autoload in args.autoload:
        if prog not in obj.programs:
            flag = "--autoload" if autoload else "--no-autoload"
            raise UsageError(f"{flag}: no program {prog!r} in {path}")
        obj.programs[prog].autoload = autoload
    for prog, func in args.attach_targets:
        if prog not in obj.programs:
            raise UsageError(f"--attach-target: no program {prog!r} in {path}")
        try:
            obj.programs[prog].attach_target = func
        except UnsupportedError as e:
            # the core's reason, worded as the native command words it
            raise UsageError("--attach-target " + e.reason.removeprefix("attach target ")) from None
    return obj


def cmd_gen_loader(args: Args) -> int:
    assert args.output is not None  # the grammar requires -o PREFIX
    obj = _open(args)
    loader = obj.gen_loader(**args.host())
    loader.write(args.output)
    return 0


def cmd_gen_skeleton(args: Args) -> int:
    obj = _open(args)
    if args.sign:
        text = obj.gen_skeleton(sign_key=args.sign_key, sign_cert=args.sign_cert,
                                signature=args.signature, **args.host())
    else:
        text = obj.gen_skeleton(**args.host())
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _core.write_file(args.output, text.encode())
    return 0


def cmd_gen_signing_payload(args: Args) -> int:
    """``gen signing-payload OBJ``: the bytes a detached signer signs."""
    payload = _open(args).signing_payload(**args.host())
    if args.output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    else:
        _core.write_file(args.output, payload)
    return 0


def inspect_dict(obj: BpfObject) -> dict[str, object]:
    """The documented JSON shape of ``inspect --json`` (rendered by the core)."""
    info: dict[str, object] = json.loads(obj._core.inspect(json=True))
    return info


def cmd_inspect(args: Args) -> int:
    obj = _open(dataclasses.replace(args, autoload=[]))  # inspect shows the object as opened
    sys.stdout.write(obj._core.inspect(json=args.json))
    return 0


def cmd_explain(args: Args) -> int:
    """``explain OBJ|PREFIX``: decode the loader of an object, or of blobs written
    by ``gen loader -o PREFIX``, into the steps it will take."""
    import os

    from bpfgen_fast.explain import explain, read_loader

    prefix = args.object
    assert prefix is not None
    if not os.path.isfile(prefix) and os.path.isfile(prefix + ".insns.bin"):
        if args.name is not None:
            raise UsageError(f"unexpected arguments: name {args.name}")
        try:
            loader = read_loader(prefix)
        except OSError as e:
            raise BpfgenError(f"{e.filename}: {e.strerror or e}") from e
    else:
        loader = _open(args).gen_loader(**args.host())
    expl = explain(loader, disasm=args.disasm)
    print(expl.to_json() if args.json else expl.to_text())
    return 0


def cmd_run(args: Args) -> int:
    """``run OBJ``: load through the generated loader, print what was created,
    close everything."""
    from bpfgen_fast.run import LoadError, run

    obj = _open(args)
    try:
        loaded = run(obj, args.log_level)
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


def cmd_batch(args: Args) -> int:
    """``batch OBJ... --out-dir DIR``: every object's light skeleton (or, with
    ``--format blobs``, its loader blobs) written atomically into DIR, ``-j N``
    at a time. A progress bar on a terminal, one ``error:`` line per failed
    object, a summary line; exit 1 if any object failed, 130 on Ctrl-C (objects
    running then finish, the rest are not started; no partial files)."""
    import time

    from bpfgen_fast.batch import Format, gen_batch

    fmt: Format = "blobs" if args.format == "blobs" else "lskel"
    paths = _batch_paths(args.objects, args.from_file)
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
        signing: dict[str, Any] = (
            {"sign_key": args.sign_key, "sign_cert": args.sign_cert} if args.sign else {})
        results = gen_batch(paths, jobs=args.jobs, out_dir=args.out_dir, fmt=fmt,
                            progress=progress, attach_targets=dict(args.attach_targets),
                            **signing, **args.host())
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
    # a target no object could take is a mistake in the command, like an
    # --autoload of a program the object lacks
    applied = {prog for r in results for prog in r.attach_targets}
    unused = [(p, f) for p, f in args.attach_targets if p not in applied]
    for prog, func in unused:
        print(f"error: --attach-target {prog}={func}: no object of the batch has a program "
              f"{prog!r}", file=sys.stderr)
    ok = sum(r.ok for r in results)
    failed = sum(r.error is not None for r in results)
    print(f"batch: {ok} of {len(results)} objects generated into {args.out_dir}, {failed} failed "
          f"({time.monotonic() - start:.2f}s)")
    return 1 if failed or unused else 0


def cmd_verify(args: Args) -> int:
    """``verify HEADER --cert CERT``: a signed light skeleton checked offline
    (bpfgen_fast.verify); one line on success, an ``error:`` line otherwise."""
    from bpfgen_fast.verify import verify_skeleton

    assert args.object is not None and args.cert is not None  # the grammar's
    skel = verify_skeleton(args.object, args.cert)
    print(f"{args.object}: verified with {args.cert} ({len(skel.insns) // 8} loader "
          f"instructions, {len(skel.data)} data bytes)")
    return 0


_COMMANDS = {"gen loader": cmd_gen_loader, "gen skeleton": cmd_gen_skeleton,
             "gen signing-payload": cmd_gen_signing_payload,
             "inspect": cmd_inspect, "explain": cmd_explain, "run": cmd_run, "batch": cmd_batch,
             "verify": cmd_verify}


def dispatch(args: Args) -> int:
    return _COMMANDS[args.command](args)


def _usage(e: UsageError) -> int:
    if str(e):
        print(f"error: {e}", file=sys.stderr)
    if e.show_usage:
        print(USAGE, end="", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(argv)
    except UsageError as e:
        return _usage(e)
    try:
        return dispatch(args)
    except UsageError as e:
        return _usage(e)
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
