//! libbpf's load-phase instruction work in gen mode: each autoloaded entry
//! program gets its own copy of the code with the `.text` sub-programs it
//! reaches appended depth-first, calls and callback addresses re-targeted,
//! func/line info gathered per piece, and map / global-data references turned
//! into the loader's fd-array encodings.

use crate::btf::{kind, linkage};
use crate::error::{Error, Result};
use crate::externs::{ExternKind, Resolved};
use crate::insn::{
    BPF_PSEUDO_BTF_ID, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE, Insn,
};
use crate::object::{Object, Reloc, RelocKind, find_prog_by_sec_insn};
use std::borrow::Cow;

/// func_info or line_info records ready for PROG_LOAD.
#[derive(Debug, Clone, Default)]
pub struct ExtRecords {
    pub bytes: Vec<u8>,
    pub rec_size: u32,
    pub count: u32,
}

#[derive(Debug, Clone)]
pub struct LinkedProgram {
    /// Index into `Object::programs`.
    pub prog_idx: usize,
    pub insns: Vec<Insn>,
    pub func_info: Option<ExtRecords>,
    pub line_info: Option<ExtRecords>,
    /// All relocations of the linked code, in final instruction order.
    pub relocs: Vec<Reloc>,
}

/// CO-RE records become relocations of the (sub-)program that owns them
/// (`bpf_object__relocate_core` in gen mode: recorded, never applied). A
/// program without CO-RE records keeps its own relocations, borrowed (a copy
/// of each program's list per generation was an allocation per program).
fn relocs_with_core(obj: &Object) -> Result<Vec<Cow<'_, [Reloc]>>> {
    let mut relocs: Vec<Cow<'_, [Reloc]>> = obj.programs.iter().map(|p| Cow::Borrowed(&p.relocs[..])).collect();
    let (Some(ext), Some(btf)) = (&obj.btf_ext, &obj.btf) else {
        return Ok(relocs);
    };
    let info = &ext.core_relo;
    if info.is_empty() {
        return Ok(relocs);
    }
    for sec in &info.sections {
        let name = btf.str_at(sec.sec_name_off)?;
        if name.is_empty() {
            return Err(Error::btf("CO-RE relocation section has no name").in_section(".BTF.ext"));
        }
        let sec_idx = obj.section_names.iter().skip(1).position(|n| n == name).map(|i| i + 1);
        for i in 0..sec.count {
            let rec = ext.record(info, sec, i);
            let word = |o: usize| u32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
            let insn_off = word(0);
            if insn_off % 8 != 0 {
                return Err(
                    Error::btf(format!("CO-RE relocation #{i} of '{name}' is misaligned")).in_section(".BTF.ext")
                );
            }
            let sec_insn = (insn_off / 8) as usize;
            let Some(pi) = sec_idx.and_then(|si| find_prog_by_sec_insn(&obj.programs, si, sec_insn)) else {
                continue;
            };
            let p = &obj.programs[pi];
            if !p.autoload {
                continue;
            }
            relocs[pi].to_mut().push(Reloc {
                insn_idx: sec_insn - p.sec_insn_off,
                kind: RelocKind::Core {
                    type_id: word(4),
                    access_str_off: word(8),
                    kind: word(12),
                },
            });
        }
    }
    for r in relocs.iter_mut() {
        // a stable sort leaves sorted lists as they are: only unsorted ones are copied
        if !r.is_sorted_by_key(|r| (r.insn_idx, r.kind.order())) {
            r.to_mut().sort_by_key(|r| (r.insn_idx, r.kind.order()));
        }
    }
    Ok(relocs)
}

const EXCEPTION_CB_PREFIX: &str = "exception_callback:";

/// The exception callback a main program names through an
/// `exception_callback:<name>` decl tag (`bpf_prog_assign_exc_cb`).
/// `candidates`: from [`exception_callback_tags`]; no other type can name a
/// callback.
fn exception_callback(obj: &Object, main: usize, candidates: &[u32]) -> Result<Option<usize>> {
    let Some(btf) = &obj.btf else { return Ok(None) };
    let prog = &obj.programs[main];
    let err = |msg: String| Err(Error::btf(format!("prog '{}': {msg}", prog.name)).in_section(".BTF"));
    let mut found: Option<usize> = None;
    for &id in candidates {
        let t = btf.type_by_id(id)?;
        let Some(cb_name) = btf.name_of(&t)?.strip_prefix(EXCEPTION_CB_PREFIX) else {
            continue;
        };
        let target = btf.type_by_id(t.size_or_type)?;
        if target.kind() != kind::FUNC || target.vlen() != linkage::GLOBAL {
            return err("exception_callback:<value> decl tag not applied to the main program".into());
        }
        if btf.name_of(&target)? != prog.name {
            continue;
        }
        if found.is_some() {
            found = None;
            break;
        }
        if cb_name.is_empty() {
            return err("exception_callback:<value> decl tag contains empty value".into());
        }
        for (j, sub) in obj.programs.iter().enumerate() {
            if !sub.is_subprog || sub.name != cb_name {
                continue;
            }
            if !sub.is_global || sub.mark_btf_static {
                return err(format!(
                    "exception callback {} must be a global non-hidden function",
                    sub.name
                ));
            }
            if found.is_some() {
                return err(format!(
                    "multiple subprogs with same name as exception callback '{}'",
                    sub.name
                ));
            }
            found = Some(j);
            break;
        }
        if found.is_none() {
            return Err(Error::unsupported(format!(
                "prog '{}': cannot find exception callback '{cb_name}'",
                prog.name
            )));
        }
    }
    Ok(found)
}

/// The DECL_TAGs `exception_callback` does not skip, in id order: tags on a
/// whole function (component index -1) whose name starts with
/// `exception_callback:`, or cannot be read (so the error surfaces exactly
/// where the per-program scan would raise it). The filter has no side
/// effects and is the same for every program, so it runs once per object.
/// (Performance: scanning every BTF type per entry program was quadratic;
/// selftests carry hundreds of `comment:` tags.)
fn exception_callback_tags(obj: &Object) -> Vec<u32> {
    let Some(btf) = &obj.btf else { return Vec::new() };
    (1..btf.type_cnt())
        .filter(|&id| {
            btf.kind_of(id) == kind::DECL_TAG
                && btf.type_by_id(id).is_ok_and(|t| {
                    btf.tail_u32(&t) == u32::MAX && btf.name_of(&t).map_or(true, |n| n.starts_with(EXCEPTION_CB_PREFIX))
                })
        })
        .collect()
}

/// Where each `.BTF.ext` func_info / line_info section's records apply,
/// computed once per object (`append_ext_info` runs for every piece of every
/// program).
struct ExtIndex {
    func: Vec<ExtSecIndex>,
    line: Vec<ExtSecIndex>,
}

struct ExtSecIndex {
    /// ELF section index the records belong to; None when the name is
    /// unreadable, empty or names no section (libbpf skips those).
    sec_idx: Option<usize>,
    /// The records' instruction offsets are non-decreasing (as compilers
    /// emit them): ranges are then found by binary search; otherwise by
    /// libbpf's linear scan. Checked on first use.
    sorted: std::cell::OnceCell<bool>,
}

/// The first `i` in `0..n` for which `pred(i)` is false (`pred` must be
/// true on a prefix), like `slice::partition_point` over record indices.
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl ExtIndex {
    fn new(obj: &Object) -> ExtIndex {
        let (Some(ext), Some(btf)) = (&obj.btf_ext, &obj.btf) else {
            return ExtIndex {
                func: Vec::new(),
                line: Vec::new(),
            };
        };
        // First ELF section (after the null one) with a name: a linear search
        // for the usual handful of sections, binary search over a sorted
        // (name, index) table when both counts are large.
        let n_ext = ext.func_info.sections.len() + ext.line_info.sections.len();
        let mut by_name: Vec<(&str, usize)> = Vec::new();
        if n_ext.saturating_mul(obj.section_names.len()) > 4096 {
            by_name = obj
                .section_names
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, n)| (n, i))
                .collect();
            by_name.sort_unstable();
        }
        let first_named = |name: &str| {
            if by_name.is_empty() {
                return obj.section_names.iter().skip(1).position(|n| n == name).map(|i| i + 1);
            }
            let i = by_name.partition_point(|&(n, _)| n < name);
            by_name.get(i).filter(|&&(n, _)| n == name).map(|&(_, idx)| idx)
        };
        let index = |info: &crate::btf::ext::ExtInfo| -> Vec<ExtSecIndex> {
            info.sections
                .iter()
                .map(|sec| {
                    let sec_idx = btf
                        .str_at(sec.sec_name_off)
                        .ok()
                        .filter(|n| !n.is_empty())
                        .and_then(first_named);
                    ExtSecIndex {
                        sec_idx,
                        sorted: std::cell::OnceCell::new(),
                    }
                })
                .collect()
        };
        ExtIndex {
            func: index(&ext.func_info),
            line: index(&ext.line_info),
        }
    }
}

/// Link every autoloaded entry program, in object order.
pub fn link_programs(obj: &Object, resolved: &Resolved) -> Result<Vec<LinkedProgram>> {
    let own_relocs = relocs_with_core(obj).map_err(|e| e.for_object(&obj.name))?;
    let exc_tags = exception_callback_tags(obj);
    let ext_index = ExtIndex::new(obj);
    let mut out = Vec::with_capacity(obj.programs.iter().filter(|p| !p.is_subprog && p.autoload).count());
    let mut linked_bytes = 0usize;
    // One offset table for all main programs, reset after each through the
    // list of sub-programs it appended: a fresh table per main program made
    // linking quadratic in the number of programs (hostile-input bound).
    let mut sub_insn_off = vec![0; obj.programs.len()];
    for (idx, prog) in obj.programs.iter().enumerate() {
        if prog.is_subprog || !prog.autoload {
            continue;
        }
        let mut insns = Vec::new();
        append_pristine(&mut insns, prog);
        let mut linker = Linker {
            obj,
            own_relocs: &own_relocs,
            resolved,
            exc_tags: &exc_tags,
            ext_index: &ext_index,
            sub_insn_off: std::mem::take(&mut sub_insn_off),
            appended: Vec::new(),
            insns,
            relocs: own_relocs[idx].to_vec(),
            func_info: None,
            line_info: None,
        };
        linker
            .reloc_code(idx, idx)
            .and_then(|()| linker.append_exception_callback(idx))
            .and_then(|()| linker.relocate_data(idx))
            .map_err(|e| e.for_object(&obj.name))?;
        for &sub in &linker.appended {
            linker.sub_insn_off[sub] = 0;
        }
        sub_insn_off = std::mem::take(&mut linker.sub_insn_off);
        // Hostile-input bound: linked code and func/line info all go into
        // the loader's data blob, and sub-programs are copied into every
        // caller (quadratic in the object size), so stop as soon as they
        // could not fit rather than after allocating them all.
        let ext_bytes = |r: &Option<ExtRecords>| r.as_ref().map_or(0, |r| r.bytes.len());
        linked_bytes += 8 * linker.insns.len() + ext_bytes(&linker.func_info) + ext_bytes(&linker.line_info);
        if linked_bytes > crate::loader_abi::MAX_DATA_BLOB {
            return Err(Error::unsupported(format!(
                "linked programs exceed the loader's {} MiB data limit (at program '{}')",
                crate::loader_abi::MAX_DATA_BLOB >> 20,
                prog.name
            ))
            .in_section(prog.sec_name.clone())
            .for_object(&obj.name));
        }
        out.push(LinkedProgram {
            prog_idx: idx,
            insns: linker.insns,
            func_info: linker.func_info,
            line_info: linker.line_info,
            relocs: linker.relocs,
        });
    }
    Ok(out)
}

/// Append a program's code with its callback address loads marked
/// (`BPF_PSEUDO_FUNC`), so that every appended copy carries the mark.
/// (Performance: done per appended piece rather than by first cloning every
/// program's code, which doubled the copying for large objects.)
fn append_pristine(out: &mut Vec<Insn>, p: &crate::object::Program) {
    let base = out.len();
    out.extend_from_slice(&p.insns);
    for r in &p.relocs {
        if let RelocKind::SubprogAddr { .. } = r.kind {
            out[base + r.insn_idx].set_src_reg(BPF_PSEUDO_FUNC);
        }
    }
}

struct Linker<'o> {
    obj: &'o Object,
    /// Each program's own relocations (ELF ones plus recorded CO-RE).
    own_relocs: &'o [Cow<'o, [Reloc]>],
    resolved: &'o Resolved,
    exc_tags: &'o [u32],
    ext_index: &'o ExtIndex,
    /// Where each sub-program landed in the current main program (0: not yet).
    sub_insn_off: Vec<usize>,
    /// Sub-programs appended to the current main program.
    appended: Vec<usize>,
    insns: Vec<Insn>,
    relocs: Vec<Reloc>,
    func_info: Option<ExtRecords>,
    line_info: Option<ExtRecords>,
}

enum ExtKind {
    Func,
    Line,
}

impl Linker<'_> {
    fn err(&self, prog: usize, msg: String) -> Error {
        let p = &self.obj.programs[prog];
        Error::reloc(format!("prog '{}': {msg}", p.name)).in_section(p.sec_name.clone())
    }

    fn reloc_code(&mut self, main: usize, prog: usize) -> Result<()> {
        self.append_ext_info(main, prog, ExtKind::Func)?;
        self.append_ext_info(main, prog, ExtKind::Line)?;
        let p = &self.obj.programs[prog];
        let own = &self.own_relocs[prog];
        let base = self.sub_insn_off[prog];
        for insn_idx in 0..p.sec_insn_cnt {
            let insn = self.insns[base + insn_idx];
            if !insn.is_subprog_call() && !insn.is_pseudo_func() {
                continue;
            }
            let relo = own
                .binary_search_by_key(&insn_idx, |r| r.insn_idx)
                .ok()
                .map(|i| own[i].kind);
            if let Some(RelocKind::ExternCall { .. }) = relo {
                continue; // kfunc calls are patched with the data relocations
            }
            let imm = insn.imm as i64;
            let target = match relo {
                Some(RelocKind::Call { sym_off }) => sym_off as i64 / 8 + imm + 1,
                Some(RelocKind::SubprogAddr { sym_off }) => (sym_off as i64 + imm) / 8,
                Some(_) => return Err(self.err(prog, format!("unexpected relo for insn #{insn_idx}"))),
                None if insn.is_pseudo_func() => {
                    return Err(self.err(prog, format!("missing subprog addr relo for insn #{insn_idx}")));
                }
                None => (p.sec_insn_off + insn_idx) as i64 + imm + 1,
            };
            let sub = self
                .find_subprog(target)
                .ok_or_else(|| self.err(prog, "no .text section found yet sub-program call exists".to_string()))?;
            if self.sub_insn_off[sub] == 0 {
                self.append_subprog(sub);
                self.reloc_code(main, sub)?;
            }
            let rel = self.sub_insn_off[sub] as i64 - (base + insn_idx) as i64 - 1;
            self.insns[base + insn_idx].imm =
                i32::try_from(rel).map_err(|_| self.err(prog, format!("call offset {rel} out of range")))?;
        }
        Ok(())
    }

    fn find_subprog(&self, sec_insn: i64) -> Option<usize> {
        let text = self.obj.text_shndx?;
        let sec_insn = usize::try_from(sec_insn).ok()?;
        find_prog_by_sec_insn(&self.obj.programs, text, sec_insn)
    }

    fn append_subprog(&mut self, sub: usize) {
        let off = self.insns.len();
        self.sub_insn_off[sub] = off;
        self.appended.push(sub);
        append_pristine(&mut self.insns, &self.obj.programs[sub]);
        self.relocs.extend(self.own_relocs[sub].iter().map(|r| Reloc {
            insn_idx: r.insn_idx + off,
            kind: r.kind,
        }));
    }

    fn append_exception_callback(&mut self, main: usize) -> Result<()> {
        if let Some(cb) = exception_callback(self.obj, main, self.exc_tags)?
            && self.sub_insn_off[cb] == 0
        {
            self.append_subprog(cb);
            self.reloc_code(main, cb)?;
        }
        Ok(())
    }

    /// `reloc_prog_func_and_line_info`: copy the piece's records, converting
    /// byte offsets into instruction indices of the main program.
    fn append_ext_info(&mut self, main: usize, prog: usize, which: ExtKind) -> Result<()> {
        let Some(ext) = &self.obj.btf_ext else { return Ok(()) };
        let (info, index, slot, what) = match which {
            ExtKind::Func => (&ext.func_info, &self.ext_index.func, &mut self.func_info, "function"),
            ExtKind::Line => (&ext.line_info, &self.ext_index.line, &mut self.line_info, "line"),
        };
        if main != prog && slot.is_none() {
            return Ok(());
        }
        let p = &self.obj.programs[prog];
        let off_adj = self.sub_insn_off[prog] as i64 - p.sec_insn_off as i64;
        let mut found: Option<(usize, usize, usize)> = None; // (section, first, end)
        // The first ext section for the program's ELF section (libbpf stops there).
        if let Some(si) = index.iter().position(|x| x.sec_idx == Some(p.sec_idx)) {
            let sec = &info.sections[si];
            let (lo, hi) = (p.sec_insn_off, p.sec_insn_off + p.sec_insn_cnt);
            let insn_off = |i: usize| (ext.record_insn_off(info, sec, i) / 8) as usize;
            let sorted = *index[si].sorted.get_or_init(|| {
                // One pass over the records' leading offsets (clang emits them
                // in order; the check decides whether binary search is exact).
                let offs = ext.records(info, sec, 0, sec.count).chunks_exact(info.rec_size);
                let mut offs = offs.map(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]));
                let mut prev = 0u32;
                offs.all(|o| std::mem::replace(&mut prev, o) <= o)
            });
            found = match sorted {
                // Sorted records: the same range the scan below finds.
                true => {
                    let first = partition_point(sec.count, |i| insn_off(i) < lo);
                    let end = partition_point(sec.count, |i| insn_off(i) < hi);
                    (first < end).then_some((si, first, end))
                }
                false => {
                    let (mut first, mut end) = (None, 0);
                    for i in 0..sec.count {
                        if insn_off(i) < lo {
                            continue;
                        }
                        if insn_off(i) >= hi {
                            break;
                        }
                        first.get_or_insert(i);
                        end = i + 1;
                    }
                    first.map(|f| (si, f, end))
                }
            };
        }
        let Some((si, first, end)) = found else {
            if slot.is_some() {
                return Err(
                    Error::btf(format!("prog '{}': missing .BTF.ext {what} info.", p.name)).in_section(".BTF.ext")
                );
            }
            return Ok(()); // libbpf skips all of this kind for the program
        };
        let sec = &info.sections[si];
        let recs = slot.get_or_insert_with(|| ExtRecords {
            // Sized for the main program's records; sub-programs add theirs.
            bytes: Vec::with_capacity((end - first) * info.rec_size),
            rec_size: info.rec_size as u32,
            count: 0,
        });
        // The records are contiguous: copy them at once, then rewrite each
        // one's leading byte offset as an instruction index in the linked
        // program (per-record appends were most of this function's cost).
        let start = recs.bytes.len();
        recs.bytes.extend_from_slice(ext.records(info, sec, first, end));
        for rec in recs.bytes[start..].chunks_exact_mut(info.rec_size) {
            let raw_off = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
            let new_off = (raw_off / 8) as i64 + off_adj;
            rec[..4].copy_from_slice(&(new_off as u32).to_le_bytes());
        }
        recs.count += (end - first) as u32;
        recs.rec_size = info.rec_size as u32;
        Ok(())
    }

    fn relocate_data(&mut self, main: usize) -> Result<()> {
        for r in &self.relocs {
            let needs_pair = matches!(
                r.kind,
                RelocKind::Ld64 { .. } | RelocKind::Data { .. } | RelocKind::ExternLd64 { .. }
            );
            if r.insn_idx >= self.insns.len() || (needs_pair && r.insn_idx + 1 >= self.insns.len()) {
                return Err(self.err(main, format!("relocation at insn {} is out of range", r.insn_idx)));
            }
            match r.kind {
                RelocKind::Ld64 { map_idx } => {
                    let insn = &mut self.insns[r.insn_idx];
                    insn.set_src_reg(BPF_PSEUDO_MAP_IDX);
                    insn.imm = map_idx as i32;
                }
                RelocKind::Data { map_idx, sym_off } => {
                    let base = self.insns[r.insn_idx].imm;
                    // Integer safety: addend + symbol value must be an i32
                    // offset into the map value (libbpf wraps silently).
                    let off = i32::try_from(sym_off)
                        .ok()
                        .and_then(|s| base.checked_add(s))
                        .ok_or_else(|| {
                            self.err(
                                main,
                                format!("data relocation offset {base} + {sym_off} is out of range"),
                            )
                        })?;
                    self.insns[r.insn_idx + 1].imm = off;
                    let insn = &mut self.insns[r.insn_idx];
                    insn.set_src_reg(BPF_PSEUDO_MAP_IDX_VALUE);
                    insn.imm = map_idx as i32;
                }
                RelocKind::SubprogAddr { .. } => {
                    if self.insns[r.insn_idx].src_reg() != BPF_PSEUDO_FUNC {
                        return Err(self.err(main, "bad subprog address relocation".to_string()));
                    }
                }
                RelocKind::ExternLd64 { ext_idx } => {
                    let ext = &self.obj.externs[ext_idx];
                    let (lo, hi, src) = match ext.kind {
                        ExternKind::Kcfg { data_off, .. } => {
                            let map = self.obj.kconfig_map_idx.unwrap_or(0) as i32;
                            (map, data_off as i32, Some(BPF_PSEUDO_MAP_IDX_VALUE))
                        }
                        ExternKind::Ksym { type_id } if type_id != 0 && self.resolved.is_set[ext_idx] => {
                            // Typed ksym: the loader fills in the BTF id at run time.
                            (0, 0, Some(BPF_PSEUDO_BTF_ID))
                        }
                        ExternKind::Ksym { .. } => {
                            let addr = self.resolved.addr[ext_idx];
                            (addr as u32 as i32, (addr >> 32) as u32 as i32, None)
                        }
                    };
                    let insn = &mut self.insns[r.insn_idx];
                    if let Some(src) = src {
                        insn.set_src_reg(src);
                    }
                    insn.imm = lo;
                    self.insns[r.insn_idx + 1].imm = hi;
                }
                RelocKind::ExternCall { .. } => {
                    // Every kfunc is "resolved" in gen mode: id and BTF fd slot
                    // are filled in by the loader.
                    let insn = &mut self.insns[r.insn_idx];
                    insn.set_src_reg(BPF_PSEUDO_KFUNC_CALL);
                    insn.imm = 0;
                    insn.off = 0;
                }
                RelocKind::Call { .. } | RelocKind::Core { .. } => {}
            }
        }
        Ok(())
    }
}
