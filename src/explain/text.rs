//! The `explain` listing: one line per step (more for a program's attach
//! target and relocations), the error path last, then the disassembly when
//! asked for.

use super::model::*;
use crate::btf::kind as btf_kind;
use crate::json::py_repr;
use crate::section_defs::prog_type;

fn span(first: usize, last: usize) -> String {
    format!("[{first:5}-{last:5}]")
}

/// What a relocation looks up, by its BTF kind (0: a typeless kallsyms name).
fn lookup_kind(kind: u32) -> String {
    match kind {
        btf_kind::FUNC => "func".into(),
        btf_kind::VAR => "var".into(),
        0 => "kallsyms".into(),
        k => k.to_string(),
    }
}

/// The listing of `e`.
pub fn render(e: &Explanation) -> String {
    let mut out: Vec<String> = Vec::new();
    let loaded = e.programs().count();
    let order = if e.big_endian {
        "big-endian (bpfeb) target"
    } else {
        "little-endian target"
    };
    out.push(format!(
        "loader: {} insns, data {} bytes, {} maps, {loaded} programs loaded ({} prog fd slots), ctx {} bytes, {order}",
        e.insn_cnt, e.data_size, e.nr_maps, e.nr_prog_slots, e.ctx_size
    ));
    if let Some(sig) = &e.signature_check {
        out.push(format!(
            "{} {:<17} loader map exclusive, its SHA-256 {}, else -EINVAL",
            span(sig.first_insn, sig.last_insn),
            "SIGNATURE_CHECK",
            sig.sha256
        ));
    }
    // Maps not created are listed in map order among the MAP_CREATEs.
    let mut skipped = e.skipped_maps.iter().peekable();
    let mut not_created = |out: &mut Vec<String>, before: usize| {
        while let Some(m) = skipped.next_if(|m| m.index < before) {
            let name = if m.name.is_empty() { "?" } else { &m.name };
            out.push(format!(
                "{:13} {:<17} #{} {name}  (no MAP_CREATE; its fd stays 0)",
                "", "NOT CREATED", m.index
            ));
        }
    };
    let last_create = e
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::MapCreate(m) if m.index >= 0));
    if last_create.is_none() {
        not_created(&mut out, e.nr_maps);
    }
    for (k, s) in e.steps.iter().enumerate() {
        let (first, last) = s.span();
        let head = format!("{} {:<17}", span(first, last), s.op());
        if let Step::MapCreate(m) = s
            && m.index >= 0
        {
            not_created(&mut out, m.index as usize);
        }
        if last_create.is_some_and(|l| k == l + 1) {
            not_created(&mut out, e.nr_maps);
        }
        match s {
            Step::BtfLoad(b) => out.push(format!("{head} size {}", b.size)),
            Step::MapCreate(m) => out.push(map_create_line(&head, m)),
            Step::MapUpdate(u) => {
                let signed = if u.value_from_ctx {
                    ""
                } else {
                    " (signed: no override from the ctx)"
                };
                out.push(format!(
                    "{head} #{} {}  initial value, {} bytes{signed}",
                    u.map_index, u.map_name, u.value_size
                ))
            }
            Step::MapFreeze(f) => out.push(format!("{head} #{} {}", f.map_index, f.map_name)),
            Step::MapPopulate(p) => out.push(format!(
                "{head} #{} {}[{}] = #{} {}",
                p.map_index, p.map_name, p.slot, p.inner_index, p.inner_name
            )),
            Step::ProgArrayUpdate(p) => out.push(format!(
                "{head} #{} {}[{}] = prog #{} {}",
                p.map_index, p.map_name, p.slot, p.prog_index, p.prog_name
            )),
            Step::ProgLoad(p) => prog_load_lines(&mut out, &head, p),
            Step::Finish(f) => out.push(format!(
                "{head} {} prog fds and {} map fds to the ctx; close BTF fd; return 0",
                f.prog_fds, f.map_fds
            )),
        }
    }
    let cl = &e.cleanup;
    let place = cl
        .prog_fd_blob
        .map_or(String::new(), |b| format!(" (in the blob at {b})"));
    out.push(format!(
        "{} {:<17} on error: close BTF fd, inner map fd, {} prog fd slots{place}, {} map fds; return the error",
        span(cl.first_insn, cl.last_insn),
        "CLEANUP",
        cl.prog_fd_slots,
        cl.map_fd_slots
    ));
    if !e.disasm.is_empty() {
        out.push("disassembly:".into());
        out.extend(e.disasm.iter().cloned());
    }
    out.join("\n")
}

fn map_create_line(head: &str, m: &MapCreate) -> String {
    let who = if m.index >= 0 {
        format!("#{} {}", m.index, m.name)
    } else {
        format!("(inner) {}", m.name)
    };
    let mut extra = Vec::new();
    if let Some(v) = &m.vmlinux_value_type {
        extra.push(format!("vmlinux value type {v}"));
    }
    if m.numa_node != 0 {
        extra.push(format!("numa_node {}", m.numa_node));
    }
    if m.map_extra != 0 {
        extra.push(format!("map_extra {:#x}", m.map_extra));
    }
    if m.map_extra_from_ctx {
        extra.push("map_extra from ctx (address the skeleton reserves)".into());
    }
    if m.btf_value_type_id != 0 || m.btf_key_type_id != 0 {
        extra.push(format!("btf key/value {}/{}", m.btf_key_type_id, m.btf_value_type_id));
    }
    let tail = if extra.is_empty() {
        String::new()
    } else {
        format!("  {}", extra.join(", "))
    };
    format!(
        "{head} {who}  {}  key {} value {} max_entries {} flags {:#x}{tail}",
        m.type_name, m.key_size, m.value_size, m.max_entries, m.flags
    )
}

/// The cgroup_skb program type: its expected_attach_type 0 (ingress) is
/// worth showing, where 0 means "none" for other types.
const CGROUP_SKB: u32 = 8;

fn prog_load_lines(out: &mut Vec<String>, head: &str, p: &ProgLoad) {
    let flags = if p.prog_flags != 0 {
        format!(" flags {:#x}", p.prog_flags)
    } else {
        String::new()
    };
    let attach = if p.prog_type == prog_type::STRUCT_OPS {
        format!("  {}", p.attach_type_name)
    } else if p.expected_attach_type != 0 || p.prog_type == CGROUP_SKB {
        format!("  attach {}", p.attach_type_name)
    } else {
        String::new()
    };
    let slot = if p.ctx_slot != p.index as i64 {
        format!(" (slot {})", p.ctx_slot)
    } else {
        String::new()
    };
    out.push(format!(
        "{head} #{}{slot} {}  {}{attach}{flags}  {} insns, func_info {}, line_info {}, core_relos {}  license {}",
        p.index,
        p.name,
        p.type_name,
        p.insn_cnt,
        p.func_info_cnt,
        p.line_info_cnt,
        p.core_relo_cnt,
        py_repr(&p.license)
    ));
    if let Some(t) = &p.attach_target {
        out.push(format!(
            "{:14}attach target: find {} {}",
            "",
            t.kind_name,
            py_repr(&t.name)
        ));
    }
    for r in &p.relocations {
        let how = match r.strong {
            Some(true) => ", strong",
            Some(false) => ", weak",
            None => "",
        };
        let copy = r.repeat_of.map_or(String::new(), |i| format!(" (copy of insn {i})"));
        let slot = match (r.fd_slot, r.repeat_of) {
            (Some(s), None) => format!(" fd slot {s}"),
            _ => String::new(),
        };
        out.push(format!(
            "{:14}{} {} ({}{how}) patches insn {}: {}{copy}{slot}",
            "",
            r.kind.as_str(),
            py_repr(&r.name),
            lookup_kind(r.btf_kind),
            r.insn,
            r.patched_insn
        ));
    }
}
