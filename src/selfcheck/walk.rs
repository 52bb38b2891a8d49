//! The walk: the recorded `bpf()` calls in order, each matched with the
//! decoder's step for it and checked against the object (names, attrs, order)
//! and against the replay's data flow (where each fd goes); then the fd
//! hand-over to the skeleton and the run-time patches of programs.

use std::collections::HashMap;

use super::replay::*;
use super::*;

/// Stores indexed by where they write, each list in instruction order (the
/// recording pass visits instructions in order), so lookups stay cheap on
/// hostile loaders with millions of stores.
pub(super) struct StoreIndex<'t> {
    pub(super) stores: &'t [Store],
    pub(super) by_loc: HashMap<(Region, i64), Vec<usize>>,
}

impl<'t> StoreIndex<'t> {
    pub(super) fn new(stores: &'t [Store]) -> Self {
        let mut by_loc: HashMap<(Region, i64), Vec<usize>> = HashMap::new();
        for (i, s) in stores.iter().enumerate() {
            by_loc.entry((s.region, s.off)).or_default().push(i);
        }
        StoreIndex { stores, by_loc }
    }

    /// Every store at (region, off).
    pub(super) fn at(&self, region: Region, off: i64) -> impl Iterator<Item = &'t Store> + '_ {
        let list = self.by_loc.get(&(region, off)).map(Vec::as_slice).unwrap_or(&[]);
        list.iter().map(|&i| &self.stores[i])
    }

    /// The last store at (region, off) made by an instruction before `before`.
    pub(super) fn last_before(&self, region: Region, off: i64, before: usize) -> Option<&'t Store> {
        let list = self.by_loc.get(&(region, off))?;
        let n = list.partition_point(|&i| self.stores[i].insn < before);
        n.checked_sub(1).map(|k| &self.stores[list[k]])
    }
}

/// The decoded step of each `bpf()` call the replay found, by its attr's
/// blob offset: both readings of the loader must find the same calls.
pub(super) struct StepsByAttr<'e> {
    pub(super) by_attr: HashMap<i64, &'e Step>,
}

impl<'e> StepsByAttr<'e> {
    pub(super) fn new(e: &'e Explanation, syscalls: &[Syscall]) -> CheckResult<Self> {
        let mut by_attr = HashMap::new();
        for step in &e.steps {
            let attr = match step {
                Step::BtfLoad(s) => s.attr,
                Step::MapCreate(s) => s.attr,
                Step::MapUpdate(s) => s.attr,
                Step::MapFreeze(s) => s.attr,
                Step::MapPopulate(s) => s.attr,
                Step::ProgArrayUpdate(s) => s.attr,
                Step::ProgLoad(s) => s.attr,
                Step::Finish(_) => continue,
            };
            by_attr.insert(attr as i64, step);
        }
        if by_attr.len() != syscalls.len() {
            return fail(
                None,
                format!("{} bpf() calls replayed, {} decoded", syscalls.len(), by_attr.len()),
            );
        }
        Ok(StepsByAttr { by_attr })
    }

    pub(super) fn at(&self, sc: &Syscall) -> CheckResult<&'e Step> {
        self.by_attr.get(&sc.attr).copied().ok_or_else(|| CheckError {
            insn: Some(sc.insn),
            reason: format!("the bpf() call with its attr at data+{:#x} does not decode", sc.attr),
        })
    }
}

/// The replayed syscalls checked in order against the object: what each
/// `bpf()` command's attr holds, and where the fd it returns goes.
pub(super) struct SyscallWalk<'c, 'a> {
    pub(super) ck: &'c Checker<'a>,
    pub(super) expect: &'c Expect,
    pub(super) index: &'c StoreIndex<'c>,
    pub(super) steps: &'c StepsByAttr<'c>,
    /// Ctx offsets by the value stored there (fd hand-over to descriptors).
    pub(super) ctx_by_val: HashMap<Val, Vec<i64>>,
    /// Where the result of the call at an insn was stored (region, offset).
    pub(super) ret_dest: HashMap<usize, Vec<(Region, i64)>>,
    pub(super) nr_maps: i64,
    pub(super) map_slots: i64,
    pub(super) report: Report,
    pub(super) next_map: usize,
    pub(super) pending_inner: Option<MapCreateRec>,
    /// Attributes of each object map created so far, by map index.
    pub(super) created_attrs: Vec<MapAttrs>,
    /// (insns start, end, previous PROG_LOAD insn, this PROG_LOAD insn), in
    /// data-blob order (the emitter appends each program's data in turn).
    pub(super) prog_windows: Vec<(i64, i64, usize, usize)>,
    pub(super) loaded: Vec<bool>,
    pub(super) last_prog_load: usize,
    pub(super) last_prog_idx: Option<usize>,
}

impl<'c, 'a> SyscallWalk<'c, 'a> {
    pub(super) fn new(
        ck: &'c Checker<'a>,
        expect: &'c Expect,
        index: &'c StoreIndex<'c>,
        steps: &'c StepsByAttr<'c>,
        report: Report,
    ) -> Self {
        let stores = index.stores;
        let mut ctx_by_val: HashMap<Val, Vec<i64>> = HashMap::new();
        for s in stores.iter().filter(|s| s.region == Region::Ctx) {
            ctx_by_val.entry(s.val).or_default().push(s.off);
        }
        let mut ret_dest: HashMap<usize, Vec<(Region, i64)>> = HashMap::new();
        for s in stores {
            if let Val::Ret(at) = s.val {
                ret_dest.entry(at).or_default().push((s.region, s.off));
            }
        }
        let nr_maps = expect.maps.len() as i64;
        SyscallWalk {
            ck,
            expect,
            index,
            steps,
            ctx_by_val,
            ret_dest,
            nr_maps,
            map_slots: nr_maps.max(MIN_MAP_SLOTS),
            report,
            next_map: 0,
            pending_inner: None,
            created_attrs: Vec::new(),
            prog_windows: Vec::new(),
            loaded: vec![false; expect.progs.len()],
            last_prog_load: 0,
            last_prog_idx: None,
        }
    }

    /// After the last syscall: no template left over, every map created (or
    /// skipped) and every autoloaded program loaded.
    pub(super) fn finish(&mut self) -> CheckResult<()> {
        if let Some(inner) = &self.pending_inner {
            return fail(Some(inner.insn), "inner-map template without its map-in-map");
        }
        while self.expect.maps.get(self.next_map).is_some_and(|m| m.skipped) {
            self.next_map += 1;
        }
        if self.next_map != self.expect.maps.len() {
            return fail(
                None,
                format!(
                    "{} maps created, the object has {}",
                    self.next_map,
                    self.expect.maps.len()
                ),
            );
        }
        for (idx, p) in self.expect.progs.iter().enumerate() {
            if p.loaded == Some(true) && !self.loaded[idx] {
                return fail(None, format!("program '{}' is autoloaded but never loaded", p.name));
            }
        }
        Ok(())
    }

    /// A data-blob pointer stored into the blob at `off` before `before`.
    pub(super) fn blob_ptr(&self, off: i64, before: usize) -> Option<i64> {
        match self.index.last_before(Region::Blob, off, before)?.val {
            Val::Ptr(Region::Blob, p) => Some(p),
            _ => None,
        }
    }

    /// The fd-array map slot whose fd was copied into the attr at `off`.
    pub(super) fn fd_source(&self, off: i64, before: usize) -> Option<i64> {
        match self.index.last_before(Region::Blob, off, before)?.val {
            Val::Load(Region::Blob, src, 4) if src % 4 == 0 && src < 4 * self.map_slots => Some(src / 4),
            _ => None,
        }
    }

    /// BPF_BTF_LOAD: one, of real BTF, its fd kept in its stack slot.
    pub(super) fn btf_load(&mut self, sc: &Syscall) -> CheckResult<()> {
        let (pc, a) = (sc.insn, sc.attr);
        let Step::BtfLoad(step) = self.steps.at(sc)? else {
            return fail(Some(pc), "BPF_BTF_LOAD decodes as another command");
        };
        if self.report.btf.is_some() {
            return fail(Some(pc), "second BPF_BTF_LOAD");
        }
        let size = step.size as i64;
        let ptr = self.blob_ptr(a + field(btf_load::BTF), pc).ok_or_else(|| CheckError {
            insn: Some(pc),
            reason: "BPF_BTF_LOAD attr has no BTF pointer".into(),
        })?;
        if !self.ck.in_data(ptr, size) || size < 24 {
            return fail(Some(pc), format!("BTF at data+{ptr:#x} (+{size}) is out of bounds"));
        }
        let magic: [u8; 2] = if self.ck.big_endian { [0xeb, 0x9f] } else { [0x9f, 0xeb] };
        if self.ck.data[ptr as usize..ptr as usize + 2] != magic {
            return fail(Some(pc), "BTF given to BPF_BTF_LOAD has no BTF magic");
        }
        if self.ret_dest.get(&pc).map(Vec::as_slice) != Some(&[(Region::Stack, STACK_BTF_FD)]) {
            return fail(Some(pc), "BTF fd is not kept in its stack slot");
        }
        self.report.btf = Some((ptr as u32, size as u32));
        Ok(())
    }

    /// BPF_MAP_CREATE: the object's maps in order (skipped ones leave their slot empty), each with its inner-map template, fds into the fd array.
    pub(super) fn map_create(&mut self, sc: &Syscall) -> CheckResult<()> {
        let (pc, a) = (sc.insn, sc.attr);
        let Step::MapCreate(step) = self.steps.at(sc)? else {
            return fail(Some(pc), "BPF_MAP_CREATE decodes as another command");
        };
        let name = step.kernel_name.clone();
        let attrs = MapAttrs {
            map_type: step.map_type,
            key_size: step.key_size,
            value_size: step.value_size,
            max_entries: step.max_entries,
            map_flags: step.flags,
        };
        let dests = self.ret_dest.get(&pc).map(Vec::as_slice).unwrap_or(&[]);
        let rec_pc = pc;
        let mut rec = MapCreateRec {
            insn: rec_pc,
            attr_off: a as u32,
            name,
            attrs,
            map_idx: None,
        };
        // Maps the loader does not create keep an empty fd slot.
        if !matches!(dests, [(Region::Stack, STACK_INNER_MAP_FD)]) {
            while self.expect.maps.get(self.next_map).is_some_and(|m| m.skipped) {
                self.created_attrs.push(MapAttrs::default());
                self.next_map += 1;
            }
        }
        let next_map = self.next_map;
        match dests {
            [(Region::Stack, STACK_INNER_MAP_FD)] => {
                if self.pending_inner.is_some() {
                    return fail(Some(pc), "two inner-map templates in a row");
                }
                self.pending_inner = Some(rec);
                return Ok(());
            }
            [(Region::Blob, slot)] if *slot % 4 == 0 && *slot / 4 == self.next_map as i64 => {}
            _ => {
                return fail(
                    Some(pc),
                    format!(
                        "BPF_MAP_CREATE '{}' fd does not go to fd_array slot {next_map}",
                        rec.name
                    ),
                );
            }
        }
        let Some(want) = self.expect.maps.get(self.next_map) else {
            return fail(
                Some(pc),
                format!("BPF_MAP_CREATE '{}' beyond the object's maps", rec.name),
            );
        };
        if rec.name.as_bytes() != trunc_name(&want.name) {
            return fail(
                Some(pc),
                format!(
                    "map #{next_map} created as '{}', the object's is '{}'",
                    rec.name, want.name
                ),
            );
        }
        if let Some(w) = want.attrs
            && w != attrs
        {
            return fail(
                Some(pc),
                format!("map '{}' created with {attrs:?}, the object says {w:?}", want.name),
            );
        }
        let inner_name = format!("{}.inner", want.name);
        match (self.pending_inner.take(), is_map_in_map(attrs.map_type)) {
            (Some(inner), true) => {
                if inner.name.as_bytes() != trunc_name(&inner_name) {
                    return fail(
                        Some(inner.insn),
                        format!("inner map of '{}' named '{}'", want.name, inner.name),
                    );
                }
                if let (Some(_), Some(w)) = (want.attrs, want.inner)
                    && w != inner.attrs
                {
                    return fail(
                        Some(inner.insn),
                        format!(
                            "inner map of '{}' created with {:?}, the object says {w:?}",
                            want.name, inner.attrs
                        ),
                    );
                }
                self.report.map_creates.push(inner);
            }
            (None, true) if want.attrs.is_some() && want.inner.is_some() => {
                return fail(
                    Some(pc),
                    format!("map-in-map '{}' has no inner-map template", want.name),
                );
            }
            (Some(inner), false) => {
                return fail(
                    Some(inner.insn),
                    format!("inner-map template before non-map-in-map '{}'", want.name),
                );
            }
            _ => {}
        }
        rec.map_idx = Some(self.next_map);
        self.created_attrs.push(rec.attrs);
        self.report.map_creates.push(rec);
        self.next_map += 1;
        Ok(())
    }

    /// BPF_MAP_UPDATE_ELEM / BPF_MAP_FREEZE of a map already created, key and value in bounds.
    pub(super) fn map_update(&mut self, sc: &Syscall) -> CheckResult<()> {
        let (pc, a) = (sc.insn, sc.attr);
        let m = self
            .fd_source(a + field(map_update::MAP_FD), pc)
            .ok_or_else(|| CheckError {
                insn: Some(pc),
                reason: "map fd of the attr does not come from an fd_array map slot".into(),
            })? as usize;
        if m >= self.next_map {
            return fail(Some(pc), format!("map #{m} used before it is created"));
        }
        if sc.cmd == BPF_MAP_FREEZE {
            self.report.map_freezes += 1;
            return Ok(());
        }
        let map = self.created_attrs[m];
        let key = self.blob_ptr(a + field(map_update::KEY), pc);
        let value = self.blob_ptr(a + field(map_update::VALUE), pc);
        let (Some(key), Some(value)) = (key, value) else {
            return fail(Some(pc), "BPF_MAP_UPDATE_ELEM without key and value pointers");
        };
        // The value of a map-in-map slot is an fd (4 bytes).
        let vsize = if is_map_in_map(map.map_type) {
            4
        } else {
            map.value_size as i64
        };
        if !self.ck.in_data(key, map.key_size as i64) || !self.ck.in_data(value, vsize) {
            return fail(Some(pc), format!("update of map #{m}: key or value out of bounds"));
        }
        self.report.map_updates += 1;
        Ok(())
    }

    /// BPF_PROG_LOAD: the object's programs in order, attrs in bounds, each fd handed to its own descriptor.
    pub(super) fn prog_load(&mut self, sc: &Syscall) -> CheckResult<()> {
        let (pc, a) = (sc.insn, sc.attr);
        let u = |o: i64| self.ck.u32_at(a + o);
        use prog_load as f;
        let Step::ProgLoad(step) = self.steps.at(sc)? else {
            return fail(Some(pc), "BPF_PROG_LOAD decodes as another command");
        };
        let name = step.kernel_name.clone();
        let insn_cnt = step.insn_cnt;
        let ptr = |o: usize, what: &str| {
            self.blob_ptr(a + field(o), pc).ok_or_else(|| CheckError {
                insn: Some(pc),
                reason: format!("PROG_LOAD '{name}': no {what} pointer"),
            })
        };
        let insns_off = ptr(f::INSNS, "instructions")?;
        if insn_cnt == 0 || !self.ck.in_data(insns_off, 8 * insn_cnt as i64) {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': {insn_cnt} instructions out of bounds"),
            );
        }
        ptr(f::LICENSE, "license")?;
        let license = step.license.clone();
        for (what, p, rec, cnt) in [
            ("func_info", f::FUNC_INFO, step.func_info_rec_size, step.func_info_cnt),
            ("line_info", f::LINE_INFO, step.line_info_rec_size, step.line_info_cnt),
        ] {
            let bytes = rec as i64 * cnt as i64;
            let p = ptr(p, what)?;
            if !self.ck.in_data(p, bytes) {
                return fail(Some(pc), format!("PROG_LOAD '{name}': {what} out of bounds"));
            }
        }
        let core_bytes = 16 * step.core_relo_cnt as i64;
        if u(field(f::CORE_RELO_REC_SIZE)) != 16 || !self.ck.in_data(ptr(f::CORE_RELOS, "CO-RE")?, core_bytes) {
            return fail(Some(pc), format!("PROG_LOAD '{name}': CO-RE records out of bounds"));
        }
        if ptr(f::FD_ARRAY, "fd_array")? != 0 {
            return fail(Some(pc), format!("PROG_LOAD '{name}': fd_array is not the loader's"));
        }
        // The fd: a stack slot (or, beyond 32 programs, a data-blob
        // word past the fd array), then its ctx program descriptor.
        let dests = self.ret_dest.get(&pc).map(Vec::as_slice).unwrap_or(&[]);
        let &[(region, slot)] = dests else {
            return fail(Some(pc), format!("PROG_LOAD '{name}': fd is not kept in one place"));
        };
        let kept_ok = match region {
            Region::Stack => slot >= STACK_PROG_FD0 && (slot - STACK_PROG_FD0) % 4 == 0,
            Region::Blob => slot >= 4 * (self.map_slots + KFUNC_SLOTS) && slot % 4 == 0,
            Region::Ctx | Region::LoaderMap => false,
        };
        if !kept_ok {
            return fail(Some(pc), format!("PROG_LOAD '{name}': fd kept at {region:?}{slot:+}"));
        }
        let progs_at = CTX_SIZE + MAP_DESC_SIZE * self.nr_maps;
        let handed = self
            .ctx_by_val
            .get(&Val::Load(region, slot, 4))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let &[ctx_off] = handed else {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': fd handed to {} ctx slots", handed.len()),
            );
        };
        if ctx_off < progs_at || (ctx_off - progs_at) % PROG_DESC_SIZE != 0 {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': fd goes to ctx+{ctx_off}, not a program slot"),
            );
        }
        let prog_idx = ((ctx_off - progs_at) / PROG_DESC_SIZE) as usize;
        let Some(want) = self.expect.progs.get(prog_idx) else {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': fd goes to program slot {prog_idx}, beyond the object's"),
            );
        };
        if name.as_bytes() != trunc_name(&want.name) {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}' hands its fd to program #{prog_idx} '{}'", want.name),
            );
        }
        if self.last_prog_idx.is_some_and(|l| l >= prog_idx) {
            return fail(Some(pc), format!("PROG_LOAD '{name}' out of program order"));
        }
        self.last_prog_idx = Some(prog_idx);
        self.loaded[prog_idx] = true;
        if want.loaded == Some(false) {
            return fail(
                Some(pc),
                format!("program '{}' is loaded but not autoloaded", want.name),
            );
        }
        let (prog_type, eat, flags) = (step.prog_type, step.expected_attach_type, step.prog_flags);
        if insns_off != step.insns as i64 {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': instructions pointer differs from the decoded one"),
            );
        }
        if let Some(w) = want.attrs
            && w != (prog_type, eat, flags)
        {
            return fail(
                Some(pc),
                format!(
                    "PROG_LOAD '{name}': type/attach/flags {:?}, the object says {w:?}",
                    (prog_type, eat, flags)
                ),
            );
        }
        if insn_cnt < want.min_insn_cnt {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': {insn_cnt} instructions, fewer than its code"),
            );
        }
        if let Some(l) = &self.expect.license
            && *l != license
        {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': license '{license}', object's is '{l}'"),
            );
        }
        if self.prog_windows.last().is_some_and(|w| w.1 > insns_off) {
            return fail(
                Some(pc),
                format!("PROG_LOAD '{name}': instructions overlap the previous program's"),
            );
        }
        self.prog_windows
            .push((insns_off, insns_off + 8 * insn_cnt as i64, self.last_prog_load, pc));
        self.last_prog_load = pc;
        self.report.prog_loads.push(ProgLoadRec {
            insn: pc,
            attr_off: a as u32,
            name,
            prog_type,
            expected_attach_type: eat,
            prog_flags: flags,
            insn_cnt,
            insns_off: insns_off as u32,
            license,
            prog_idx,
        });
        Ok(())
    }
}

/// After the replay: each map's fd reaches its ctx descriptor exactly once and
/// nothing else is stored there or into the fd array, and run-time patches of
/// program instructions touch only the program about to be loaded, and only
/// ld_imm64 immediates / src_reg and call fields.
pub(super) fn check_fd_handover_and_patches(
    ck: &Checker<'_>,
    stores: &[Store],
    index: &StoreIndex<'_>,
    nr_maps: i64,
    map_slots: i64,
    prog_windows: &[(i64, i64, usize, usize)],
) -> CheckResult<()> {
    for i in 0..nr_maps {
        let n = index
            .at(Region::Ctx, CTX_SIZE + MAP_DESC_SIZE * i)
            .filter(|s| s.val == Val::Load(Region::Blob, 4 * i, 4))
            .count();
        if n != 1 {
            return fail(None, format!("fd of map #{i} handed to its ctx descriptor {n} times"));
        }
    }
    for s in stores {
        if s.region == Region::Ctx && s.off >= CTX_SIZE && s.off < CTX_SIZE + MAP_DESC_SIZE * nr_maps {
            let rel = s.off - CTX_SIZE;
            let i = rel / MAP_DESC_SIZE;
            if rel % MAP_DESC_SIZE != 0 || s.size != 4 || s.val != Val::Load(Region::Blob, 4 * i, 4) {
                return fail(Some(s.insn), format!("store into map descriptor at ctx+{}", s.off));
            }
        }
        if s.region == Region::Blob && s.off < 4 * map_slots && !matches!(s.val, Val::Ret(_)) {
            return fail(
                Some(s.insn),
                format!("store of a non-fd into fd_array slot {}", s.off / 4),
            );
        }
        // Instruction patches: only the program about to be loaded, only
        // ld_imm64 immediates / src_reg and call fields.
        if s.region == Region::Blob
            && let Some(&(start, _, prev, load)) = prog_windows
                .get(prog_windows.partition_point(|w| w.0 <= s.off).wrapping_sub(1))
                .filter(|w| s.off < w.1)
        {
            if !(s.insn > prev && s.insn < load) {
                return fail(
                    Some(s.insn),
                    format!("patch of data+{:#x} outside its program's load", s.off),
                );
            }
            let k = (s.off - start) / 8;
            let field = (s.off - start) % 8;
            let code = |k: i64| ck.data[(start + 8 * k) as usize];
            let ok = match (code(k), field) {
                (BPF_LD_IMM64, 1 | 4) | (BPF_CALL, 1 | 2 | 4) => true,
                // The second slot of an ld_imm64 (whatever a malformed
                // object put there: libbpf patches it all the same).
                (_, 4) => k > 0 && code(k - 1) == BPF_LD_IMM64,
                _ => false,
            };
            if !ok {
                return fail(
                    Some(s.insn),
                    format!(
                        "run-time patch of byte {field} of instruction {k} (code {:#04x})",
                        code(k)
                    ),
                );
            }
        }
    }
    Ok(())
}
