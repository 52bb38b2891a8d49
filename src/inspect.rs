//! `inspect`: what the open phase found in an object (sections, symbols,
//! maps, programs), as the documented JSON shape or as text. One renderer
//! for the native command line and the Python facade.

use crate::json::{self, Value, py_repr};
use crate::object::{MapOrigin, Object};
use crate::section_defs;

fn section_type(t: u32) -> String {
    match t {
        0 => "NULL".into(),
        1 => "PROGBITS".into(),
        2 => "SYMTAB".into(),
        3 => "STRTAB".into(),
        4 => "RELA".into(),
        8 => "NOBITS".into(),
        9 => "REL".into(),
        0x6FFF_4C03 => "LLVM_ADDRSIG".into(),
        _ => format!("{t:#x}"),
    }
}

fn symbol_bind(b: u8) -> String {
    match b {
        0 => "LOCAL".into(),
        1 => "GLOBAL".into(),
        2 => "WEAK".into(),
        _ => b.to_string(),
    }
}

fn symbol_type(t: u8) -> String {
    match t {
        0 => "NOTYPE".into(),
        1 => "OBJECT".into(),
        2 => "FUNC".into(),
        3 => "SECTION".into(),
        4 => "FILE".into(),
        _ => t.to_string(),
    }
}

/// The section a map was defined in; the `.kconfig` map has no ELF section
/// of its own (libbpf files it under the symtab).
pub fn map_section(obj: &Object, map: &crate::object::Map) -> String {
    match map.origin {
        MapOrigin::Kconfig => ".kconfig".to_string(),
        _ => obj.section_names.get(map.sec_idx).unwrap_or_default().to_string(),
    }
}

/// The object as `inspect --json` prints it (README: "inspect --json").
pub fn to_value(obj: &Object) -> Value {
    let obj_of =
        |fields: Vec<(&str, Value)>| Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let sections = obj
        .elf_sections
        .iter()
        .map(|s| {
            obj_of(vec![
                ("index", s.index.into()),
                ("name", obj.section_names.get(s.index).unwrap_or_default().into()),
                ("type", section_type(s.sh_type).into()),
                ("flags", s.flags.into()),
                ("size", s.size.into()),
            ])
        })
        .collect();
    let symbols = obj
        .elf_symbols
        .iter()
        .zip(obj.symbol_names.iter())
        .map(|(s, name)| {
            obj_of(vec![
                ("name", name.into()),
                ("value", s.value.into()),
                ("size", s.size.into()),
                ("bind", symbol_bind(s.bind).into()),
                ("type", symbol_type(s.typ).into()),
                ("shndx", s.shndx.into()),
            ])
        })
        .collect();
    let maps = obj
        .maps
        .iter()
        .map(|m| {
            obj_of(vec![
                ("name", m.name.as_str().into()),
                ("section", map_section(obj, m).into()),
                (
                    "type",
                    section_defs::map_type_name(m.def.map_type).unwrap_or("unknown").into(),
                ),
                ("type_id", m.def.map_type.into()),
                ("key_size", m.def.key_size.into()),
                ("value_size", m.def.value_size.into()),
                ("max_entries", m.def.max_entries.into()),
                ("flags", m.def.map_flags.into()),
                ("internal", m.is_internal().into()),
                ("inner", m.inner.as_ref().map(|i| i.name.clone()).into()),
            ])
        })
        .collect();
    let programs = obj
        .programs
        .iter()
        .filter(|p| !p.is_subprog)
        .map(|p| {
            let a = p.load_attrs();
            obj_of(vec![
                ("name", p.name.as_str().into()),
                ("section", p.sec_name.as_str().into()),
                (
                    "type",
                    section_defs::prog_type_name(a.prog_type).unwrap_or("unspec").into(),
                ),
                ("type_id", a.prog_type.into()),
                (
                    "expected_attach_type",
                    section_defs::attach_type_name(a.expected_attach_type).into(),
                ),
                ("flags", a.prog_flags.into()),
                ("insn_cnt", p.sec_insn_cnt.into()),
                ("autoload", p.autoload.into()),
            ])
        })
        .collect();
    let subprograms = obj
        .programs
        .iter()
        .filter(|p| p.is_subprog)
        .map(|p| p.name.as_str().into())
        .collect();
    obj_of(vec![
        ("name", obj.name.as_str().into()),
        ("license", obj.license.as_str().into()),
        ("sections", Value::List(sections)),
        ("symbols", Value::List(symbols)),
        ("maps", Value::List(maps)),
        ("programs", Value::List(programs)),
        ("subprograms", Value::List(subprograms)),
    ])
}

/// `inspect --json`: the JSON text, newline-terminated.
pub fn to_json(obj: &Object) -> String {
    json::pretty(&to_value(obj)) + "\n"
}

/// `inspect`: the text summary, newline-terminated.
pub fn to_text(obj: &Object) -> String {
    let mut out = format!("object {}  license {}\nsections:\n", obj.name, py_repr(&obj.license));
    for s in &obj.elf_sections {
        let name = obj.section_names.get(s.index).unwrap_or_default();
        out.push_str(&format!(
            "  [{:>3}] {:<28} {:<12} size {}\n",
            s.index,
            name,
            section_type(s.sh_type),
            s.size
        ));
    }
    out.push_str("maps:\n");
    for m in &obj.maps {
        out.push_str(&format!(
            "  {:<16} {:<20} key {:<5} value {:<7} max_entries {:<8} flags {:#x}\n",
            m.name,
            section_defs::map_type_name(m.def.map_type).unwrap_or("unknown"),
            m.def.key_size,
            m.def.value_size,
            m.def.max_entries,
            m.def.map_flags
        ));
    }
    out.push_str("programs:\n");
    for p in obj.programs.iter().filter(|p| !p.is_subprog) {
        let a = p.load_attrs();
        out.push_str(&format!(
            "  {:<24} {:<32} {:<16} {} insns{}\n",
            p.name,
            p.sec_name,
            section_defs::prog_type_name(a.prog_type).unwrap_or("unspec"),
            p.sec_insn_cnt,
            if p.autoload { "" } else { "  (not autoloaded)" }
        ));
    }
    let subs: Vec<&str> = obj
        .programs
        .iter()
        .filter(|p| p.is_subprog)
        .map(|p| p.name.as_str())
        .collect();
    if !subs.is_empty() {
        out.push_str(&format!("subprograms: {}\n", subs.join(", ")));
    }
    out
}
