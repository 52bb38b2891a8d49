//! Which step a failed loader run stopped at, read from the loader map's
//! value after the run: the loader's working memory, holding the attrs it
//! filled in and the fds it kept.

use super::model::*;
use crate::loader_abi::{btf_load, map_create, map_freeze, map_update, prog_load};

/// The step's name in an error message ("MAP_CREATE counts").
pub fn step_name(s: &Step) -> String {
    match s {
        Step::MapCreate(m) if m.index >= 0 => format!("MAP_CREATE {}", m.name),
        Step::MapCreate(m) => format!("MAP_CREATE (inner) {}", m.name),
        Step::MapUpdate(u) => format!("MAP_UPDATE {}", u.map_name),
        Step::MapFreeze(f) => format!("MAP_FREEZE {}", f.map_name),
        Step::MapPopulate(p) => format!("MAP_POPULATE {}", p.map_name),
        Step::ProgLoad(p) => format!("PROG_LOAD {}", p.name),
        Step::ProgArrayUpdate(p) => format!("PROG_ARRAY_UPDATE {}[{}] = {}", p.map_name, p.slot, p.prog_name),
        s => s.op().to_string(),
    }
}

struct After<'a> {
    blob: &'a [u8],
    big_endian: bool,
}

impl After<'_> {
    /// The `n`-byte word at `off` in the target's byte order; 0 past the end.
    fn word(&self, off: usize, n: usize) -> u64 {
        let Some(bytes) = self.blob.get(off..off + n) else {
            return 0;
        };
        let fold = |v: u64, b: &u8| v << 8 | *b as u64;
        if self.big_endian {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        }
    }

    fn u32(&self, off: usize) -> u32 {
        self.word(off, 4) as u32
    }

    fn u64(&self, off: usize) -> u64 {
        self.word(off, 8)
    }

    /// A map created and its fd kept in its fd-array slot.
    fn completed(&self, s: &Step) -> bool {
        matches!(s, Step::MapCreate(m) if m.index >= 0 && self.u32(4 * m.index as usize) != 0)
    }

    /// Whether the loader got to the step: it filled in a field of the
    /// step's attr that is set at run time (a pointer, an fd) before the call.
    fn reached(&self, s: &Step) -> bool {
        match s {
            Step::BtfLoad(b) => self.u64(b.attr + btf_load::BTF) != 0,
            Step::MapCreate(m) => {
                self.completed(s)
                    || (m.uses_btf_fd && self.u32(m.attr + map_create::BTF_FD) != 0)
                    || (m.uses_inner_map_fd && self.u32(m.attr + map_create::INNER_MAP_FD) != 0)
            }
            Step::MapUpdate(u) => self.u64(u.attr + map_update::KEY) != 0,
            Step::MapPopulate(p) => self.u64(p.attr + map_update::KEY) != 0,
            Step::ProgArrayUpdate(p) => self.u64(p.attr + map_update::KEY) != 0,
            Step::MapFreeze(f) => self.u32(f.attr + map_freeze::MAP_FD) != 0,
            Step::ProgLoad(p) => self.u64(p.attr + prog_load::LICENSE) != 0,
            Step::Finish(_) => false,
        }
    }
}

/// The step a failed run of the loader `e` stopped at, from the loader
/// map's value `blob` after the run: (index into `e.steps`, what failed),
/// or (None, a description) when two steps are equally likely, or (None,
/// None) when it cannot tell.
pub fn diagnose(e: &Explanation, blob: &[u8]) -> (Option<usize>, Option<String>) {
    let after = After {
        blob,
        big_endian: e.big_endian,
    };
    let steps = &e.steps;
    let idx = match steps.iter().rposition(|s| after.reached(s)) {
        None => 0,
        Some(last) if after.completed(&steps[last]) => last + 1,
        Some(last) => {
            // A MAP_CREATE without run-time fields shows no sign of having started.
            if let Some(Step::MapCreate(next)) = steps.get(last + 1)
                && !(next.uses_btf_fd || next.uses_inner_map_fd)
            {
                return (
                    None,
                    Some(format!(
                        "{} or {}",
                        step_name(&steps[last]),
                        step_name(&steps[last + 1])
                    )),
                );
            }
            last
        }
    };
    let Some(s) = steps.get(idx).filter(|s| !matches!(s, Step::Finish(_))) else {
        return (None, None);
    };
    if let Step::MapCreate(m) = s
        && let Some(vtype) = &m.vmlinux_value_type
        && after.u32(m.attr + map_create::BTF_VMLINUX_VALUE_TYPE_ID) == 0
    {
        // btf_vmlinux_value_type_id not filled in: the lookup failed
        return (
            Some(idx),
            Some(format!("vmlinux BTF lookup struct '{vtype}' for map {}", m.name)),
        );
    }
    if let Step::ProgLoad(p) = s {
        if let Some(t) = &p.attach_target
            && after.u32(p.attr + prog_load::ATTACH_BTF_ID) == 1
        {
            // the placeholder the lookup replaces is still there
            return (
                Some(idx),
                Some(format!(
                    "attach target lookup {} '{}' for {}",
                    t.kind_name, t.name, p.name
                )),
            );
        }
        for r in &p.relocations {
            let first_strong = r.repeat_of.is_none() && r.strong == Some(true) && r.kind != RelocKind::Typeless;
            // the patched instruction's imm: still 0 when the lookup failed
            let imm = p.insns + crate::insn::INSN_SIZE * r.insn + crate::insn::INSN_IMM_OFFSET as usize;
            if first_strong && after.u32(imm) == 0 {
                return (
                    Some(idx),
                    Some(format!("{} lookup '{}' for {}", r.kind.as_str(), r.name, p.name)),
                );
            }
        }
    }
    (Some(idx), Some(step_name(s)))
}
