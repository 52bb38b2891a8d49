"""``bpfgen-fast``: the command line, spelled like bpftool where bpftool has
the command, so it drops into existing Makefiles.

    bpfgen-fast gen skeleton -L OBJ [name NAME] [-o FILE]
    bpfgen-fast gen loader OBJ [name NAME] -o PREFIX
    bpfgen-fast inspect OBJ [--json]

Options may appear anywhere on the line, as with bpftool. Host facts that
end up in the output can be pinned with ``--page-size`` and ``--possible-cpus``.
Errors print one ``error: ...`` line and exit 1; usage errors exit 2;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from bpfgen_fast import _core
from bpfgen_fast.errors import BpfgenError
from bpfgen_fast.object import BpfObject

USAGE = """\
usage: bpfgen-fast [--debug] COMMAND ...
  gen skeleton -L OBJ [name NAME] [-o FILE] [--page-size N] [--possible-cpus N]
  gen loader OBJ [name NAME] -o PREFIX [--page-size N] [--possible-cpus N]
  inspect OBJ [--json]
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


_VALUE_OPTS = {"-o": "output", "--output": "output", "--page-size": "page_size",
               "--possible-cpus": "possible_cpus"}
_FLAG_OPTS = {"-L": "use_loader", "--use-loader": "use_loader", "--debug": "debug",
              "-d": "debug", "--json": "json", "-j": "json"}


def parse(argv: Sequence[str]) -> Args:
    args = Args()
    it = iter(argv)
    for word in it:
        if word in _FLAG_OPTS:
            setattr(args, _FLAG_OPTS[word], True)
        elif word.split("=", 1)[0] in _VALUE_OPTS:
            key, _, inline = word.partition("=")
            value = inline if inline else next(it, None)
            if value is None:
                raise UsageError(f"option {key} needs a value")
            attr = _VALUE_OPTS[key]
            if attr == "output":
                args.output = value
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
    return args


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


def _open(words: list[str]) -> BpfObject:
    path, name = _object_and_name(words)
    try:
        return BpfObject.open(path, name)
    except OSError as e:
        raise BpfgenError(f"{path}: {e.strerror or e}") from e


def cmd_gen_loader(args: Args, words: list[str]) -> int:
    if args.output is None:
        raise UsageError("gen loader needs -o PREFIX")
    obj = _open(words)
    loader = obj.gen_loader(page_size=args.page_size, possible_cpus=args.possible_cpus)
    loader.write(args.output)
    return 0


def cmd_gen_skeleton(args: Args, words: list[str]) -> int:
    if not args.use_loader:
        raise UsageError("only light skeletons (-L) are supported")
    obj = _open(words)
    gen_skeleton = getattr(obj, "gen_skeleton", None)
    if gen_skeleton is None:
        raise BpfgenError("light skeleton headers are not available in this build")
    text: str = gen_skeleton(page_size=args.page_size, possible_cpus=args.possible_cpus)
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
        out.append(f"  {p['name']:<24} {p['section']:<32} {p['type']:<16} {p['insn_cnt']} insns{load}")
    if info["subprograms"]:
        out.append("subprograms: " + ", ".join(info["subprograms"]))  # type: ignore[arg-type]
    print("\n".join(out))
    return 0


def dispatch(args: Args) -> int:
    w = args.words
    if w[:2] == ["gen", "loader"]:
        return cmd_gen_loader(args, w[2:])
    if w[:2] == ["gen", "skeleton"]:
        return cmd_gen_skeleton(args, w[2:])
    if w[:1] == ["inspect"]:
        return cmd_inspect(args, w[1:])
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


__all__ = ["main", "inspect_dict", "_core"]
