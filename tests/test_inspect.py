"""`bpfgen-fast inspect OBJ --json` against an independent reading with pyelftools."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import OBJ_NAMES, obj_path, run_cli

elftools = pytest.importorskip("elftools", reason="pyelftools is not installed")
from elftools.elf.constants import SH_FLAGS  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402
from elftools.elf.enums import ENUM_SH_TYPE_BASE, ENUM_ST_SHNDX  # noqa: E402

# our spelling of the section types that occur in BPF objects
OUR_SHT = {"NULL": 0, "PROGBITS": 1, "SYMTAB": 2, "STRTAB": 3, "RELA": 4, "NOBITS": 8,
           "REL": 9, "LLVM_ADDRSIG": 0x6FFF4C03}


def sh_type_number(v: str | int) -> int:
    return v if isinstance(v, int) else ENUM_SH_TYPE_BASE[v]


def our_sh_type_number(v: str) -> int:
    return int(v, 16) if v.startswith("0x") else OUR_SHT[v]


def shndx_number(v: str | int) -> int:
    return v if isinstance(v, int) else ENUM_ST_SHNDX[v]


class ElfFacts:
    """What a BPF loader should see in the object, read with pyelftools only."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            self.sections = [
                {"index": i, "name": s.name, "type": sh_type_number(s["sh_type"]),
                 "flags": s["sh_flags"], "size": s["sh_size"]}
                for i, s in enumerate(elf.iter_sections())
            ]
            symtab = elf.get_section_by_name(".symtab")
            self.symbols = [
                {"name": s.name, "value": s["st_value"], "size": s["st_size"],
                 "bind": s["st_info"]["bind"].removeprefix("STB_"),
                 "type": s["st_info"]["type"].removeprefix("STT_"),
                 "shndx": shndx_number(s["st_shndx"])}
                for s in symtab.iter_symbols()
            ]
            lic = elf.get_section_by_name("license")
            self.license = None if lic is None else lic.data().split(b"\0")[0].decode()

    def _sec(self, idx: int) -> dict[str, Any]:
        return self.sections[idx]

    def _funcs(self, in_text: bool) -> list[tuple[int, int, str]]:
        out = []
        for s in self.symbols:
            if s["type"] != "FUNC" or not 0 < s["shndx"] < len(self.sections):
                continue
            sec = self._sec(s["shndx"])
            if sec["flags"] & SH_FLAGS.SHF_EXECINSTR and (sec["name"] == ".text") == in_text:
                out.append((s["shndx"], s["value"], s["name"]))
        return sorted(out)

    @property
    def programs(self) -> list[str]:
        return [name for _, _, name in self._funcs(in_text=False)]

    @property
    def subprograms(self) -> list[str]:
        return [name for _, _, name in self._funcs(in_text=True)]

    @property
    def map_origins(self) -> list[str]:
        """User maps (variables in .maps, by offset), then one internal map per non-empty
        .data*/.rodata*/.bss* section (by section index), named by that section."""
        maps_idx = next((s["index"] for s in self.sections if s["name"] == ".maps"), None)
        user = sorted((s["value"], s["name"]) for s in self.symbols
                      if maps_idx is not None and s["shndx"] == maps_idx
                      and s["type"] == "OBJECT")
        internal = [s["name"] for s in self.sections
                    if s["name"].startswith((".data", ".rodata", ".bss")) and s["size"] > 0]
        # libbpf adds one .kconfig map, after the global data maps, for kconfig externs
        # (undefined CONFIG_* / LINUX_* symbols)
        kconfig = [".kconfig"] if any(
            s["shndx"] == 0 and s["name"].startswith(("CONFIG_", "LINUX_"))
            for s in self.symbols) else []
        return [n for _, n in user] + internal + kconfig


@pytest.fixture(scope="module", params=OBJ_NAMES)
def inspected(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], ElfFacts]:
    name = request.param
    p = run_cli("inspect", obj_path(name), "--json")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return name, json.loads(p.stdout), ElfFacts(str(obj_path(name)))


def test_object_name_and_license(inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    name, info, elf = inspected
    assert info["name"] == name.replace(".", "_")
    assert info["license"] == elf.license


def test_sections(inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    _, info, elf = inspected
    ours = [dict(s, type=our_sh_type_number(s["type"])) for s in info["sections"]]
    assert ours == elf.sections


def test_symbols(inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    _, info, elf = inspected
    assert info["symbols"] == elf.symbols


def test_programs_are_funcs_in_executable_non_text_sections(
        inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    _, info, elf = inspected
    assert [p["name"] for p in info["programs"]] == elf.programs
    by_name = {s["name"]: s for s in elf.symbols if s["type"] == "FUNC"}
    for p in info["programs"]:
        section = elf.sections[by_name[p["name"]]["shndx"]]["name"]
        # libbpf: SEC("?x") is SEC("x") with autoload off; the '?' is forgotten
        assert p["autoload"] is not section.startswith("?")
        assert p["section"] == section.removeprefix("?")
        assert p["insn_cnt"] == by_name[p["name"]]["size"] // 8


def test_subprograms_are_funcs_in_text(inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    _, info, elf = inspected
    assert sorted(info["subprograms"]) == sorted(elf.subprograms)


def test_maps_are_maps_section_vars_and_global_data_sections(
        inspected: tuple[str, dict[str, Any], ElfFacts]) -> None:
    _, info, elf = inspected
    def origin(m: dict[str, Any]) -> str:
        if not m["internal"]:
            return str(m["name"])
        if m["name"].endswith(".kconfig"):  # no ELF section of its own: named after it
            assert m["section"] == ".kconfig"
            return ".kconfig"
        return str(m["section"])

    assert [origin(m) for m in info["maps"]] == elf.map_origins
    for m in info["maps"]:
        if not m["internal"]:
            assert m["section"] == ".maps"
        elif origin(m) != ".kconfig":
            size = next(s["size"] for s in elf.sections if s["name"] == m["section"])
            assert (m["type"], m["key_size"], m["max_entries"], m["value_size"]) == (
                "array", 4, 1, size)


@pytest.mark.usefixtures("cli_entry")
def test_inspect_text_output_lists_programs_and_maps() -> None:
    p = run_cli("inspect", obj_path("autoload_question.bpf"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("object autoload_question_bpf  license 'GPL'\n")
    lines = p.stdout.splitlines()
    assert any(line.split()[:1] == ["maybe_loaded_a"] and line.endswith("(not autoloaded)")
               for line in lines)
    assert any(line.split()[:1] == ["always_loaded"] and "not autoloaded" not in line
               for line in lines)
