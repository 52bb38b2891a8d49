//! Blobs to steps: the loader's instruction blocks matched one by one (the
//! emitter, `loader.rs`, writes the same blocks by the same
//! [`crate::loader_abi`] facts), the attrs read from the data blob in the
//! target's byte order.

use std::collections::HashMap;

use super::DecodeOptions;
use super::cursor::*;
use super::model::*;
use crate::btf::kind as btf_kind;
use crate::disasm;
use crate::insn::loader_ops::*;
use crate::insn::*;
use crate::loader_abi::{self as abi, btf_load, map_create, map_freeze, map_update, prog_load};
use crate::section_defs::{attach_type_name, map_type, map_type_name, prog_type, prog_type_name};

const NAME_MAX: usize = abi::BPF_OBJ_NAME_LEN - 1;
// Where a relocation patches a program's instruction.
const IMM_OFF: usize = INSN_IMM_OFFSET as usize;
const IMM_HI_OFF: usize = LD_IMM64_IMM_HI_OFFSET as usize;
const OFF_OFF: usize = INSN_OFF_OFFSET as usize;
// The errors a loader's checks return or let pass.
const EINVAL: i32 = 22;
const ENOENT: i32 = 2;

/// A program's instruction patched by a relocation, as text; "?" when it
/// is not there.
fn patched(data: &[u8], insn_addr: usize, big_endian: bool) -> String {
    let Some(first) = data.get(insn_addr..insn_addr + INSN_SIZE) else {
        return "?".into();
    };
    let raw = if first[0] == BPF_LD_IMM64 {
        data.get(insn_addr..insn_addr + 2 * INSN_SIZE).unwrap_or(first)
    } else {
        first
    };
    match disasm::slots(raw, big_endian) {
        Ok(s) if !s.is_empty() => disasm::text(&s[0], false),
        _ => "?".into(),
    }
}

fn kind_name(kind: u32) -> String {
    match kind {
        btf_kind::STRUCT => "struct".into(),
        btf_kind::TYPEDEF => "typedef".into(),
        btf_kind::FUNC => "func".into(),
        btf_kind::VAR => "var".into(),
        k => k.to_string(),
    }
}

fn type_name(name: Option<&'static str>, value: u32) -> String {
    name.map_or_else(|| format!("unknown({value})"), str::to_string)
}

/// Decode a loader's two blobs. `opts` gives the skeleton's names (the attrs
/// hold 15 characters) and what else to add.
pub fn decode(data: &[u8], insns: &[u8], opts: &DecodeOptions<'_>) -> Result<Explanation> {
    let big_endian = opts.big_endian.unwrap_or_else(|| disasm::loader_is_big_endian(insns));
    let mut d = Decoder {
        c: Cursor {
            insns: disasm::slots(insns, big_endian)?,
            data,
            pos: 0,
            big_endian,
        },
        map_names: opts.map_names,
        prog_names: opts.prog_names,
        maps: HashMap::new(),
        map_types: HashMap::new(),
        value_sizes: HashMap::new(),
        nr_maps: 0,
        map_fd_slots: 0,
        nr_progs: 0,
        prog_slots: Vec::new(),
        prog_kernel_names: Vec::new(),
        prog_fd_blob: None,
        nr_prog_fd_slots: 0,
        signed: false,
    };
    let (steps, cleanup, signature_check) = d.run()?;
    let slots = steps.iter().filter_map(|s| match s {
        Step::ProgLoad(p) => Some(p.ctx_slot.max(0) as usize + 1),
        _ => None,
    });
    let need = abi::ctx_size(cleanup.map_fd_slots, slots.max().unwrap_or(0));
    Ok(Explanation {
        format: FORMAT.into(),
        insn_cnt: insns.len() / INSN_SIZE,
        data_size: data.len(),
        nr_maps: cleanup.map_fd_slots,
        nr_prog_slots: cleanup.prog_fd_slots,
        ctx_size: need.max(opts.ctx_size.unwrap_or(0)),
        big_endian,
        skipped_maps: d.skipped_maps(),
        steps,
        cleanup,
        disasm: if opts.with_disasm {
            disasm::listing(insns, true, big_endian)?
        } else {
            Vec::new()
        },
        signature_check,
    })
}

struct Decoder<'a, 'n> {
    c: Cursor<'a>,
    map_names: &'n [String],
    prog_names: &'n [String],
    /// Created maps by slot: name and type.
    maps: HashMap<usize, String>,
    map_types: HashMap<usize, u32>,
    value_sizes: HashMap<usize, u32>,
    /// One past the highest map slot created so far (slots of maps not
    /// created stay 0).
    nr_maps: usize,
    /// Map fd slots the cleanup closes (every map of the object).
    map_fd_slots: usize,
    nr_progs: usize,
    prog_slots: Vec<usize>,
    prog_kernel_names: Vec<String>,
    /// Blob offset of the prog fd slots (more than 32 programs); `None`: on the stack.
    prog_fd_blob: Option<usize>,
    nr_prog_fd_slots: usize,
    /// A signature check follows the cleanup block (libbpf 1.8's signed loaders).
    signed: bool,
}

impl Decoder<'_, '_> {
    fn run(&mut self) -> Result<(Vec<Step>, Cleanup, Option<SignatureCheck>)> {
        if self.c.insns.is_empty() {
            return fail("empty instruction blob", None);
        }
        let c = &mut self.c;
        c.mov_reg(R6, R1)?;
        c.mov_reg(R1, R10)?;
        c.take(
            ADD64_K,
            || format!("r1 += {}", -abi::STACK_SIZE),
            w().dst(R1).imm(-abi::STACK_SIZE),
        )?;
        c.mov_imm(R2, Some(abi::STACK_SIZE))?;
        c.mov_imm(R3, Some(0))?;
        c.call(abi::FN_PROBE_READ_KERNEL)?;
        let at = c.here();
        let target = c.goto("goto over the cleanup code")?;
        let cleanup = self.parse_cleanup()?;
        let here = self.c.here();
        expect(
            target == here,
            || format!("prologue jumps to {target}, cleanup ends at {here}"),
            Some(at),
        )?;
        let signature_check = if self.c.is(BPF_LD_IMM64, 0, w().dst(R1).src(BPF_PSEUDO_MAP_IDX).imm(0)) {
            self.signed = true;
            Some(self.parse_signature_check()?)
        } else {
            None
        };
        let mut steps = Vec::new();
        loop {
            let step = self.parse_step()?;
            let done = matches!(step, Step::Finish(_));
            steps.push(step);
            if done {
                break;
            }
        }
        if self.c.peek(0).is_some() {
            return fail("instructions after the final exit", Some(self.c.here()));
        }
        let steps = self.assign_prog_slots(steps);
        let (loaded, slots) = (self.nr_progs, cleanup.prog_fd_slots);
        expect(
            loaded <= slots,
            || format!("{loaded} programs loaded, only {slots} fd slots"),
            None,
        )?;
        Ok((steps, cleanup, signature_check))
    }

    fn skipped_maps(&self) -> Vec<SkippedMap> {
        (0..self.map_fd_slots)
            .filter(|k| !self.maps.contains_key(k))
            .map(|k| SkippedMap {
                index: k,
                name: self.map_names.get(k).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Give each PROG_LOAD its ctx slot (from the epilogue) and its full
    /// name: the skeleton's name for that slot if its first 15 characters
    /// are the kernel name, else the next skeleton name in order that
    /// matches, else the kernel name.
    fn assign_prog_slots(&self, mut steps: Vec<Step>) -> Vec<Step> {
        let mut next_name = 0;
        let mut names_by_index: HashMap<usize, String> = HashMap::new();
        let fits = |name: &str, kname: &str| truncated(name) == kname;
        for s in &mut steps {
            match s {
                Step::ProgLoad(p) => {
                    let slot = self.prog_slots[p.index];
                    let names = self.prog_names;
                    let mut name = p.kernel_name.clone();
                    if slot < names.len() && fits(&names[slot], &p.kernel_name) {
                        name = names[slot].clone();
                        next_name = slot + 1;
                    } else if let Some(k) = (next_name..names.len()).find(|&k| fits(&names[k], &p.kernel_name)) {
                        name = names[k].clone();
                        next_name = k + 1;
                    }
                    p.ctx_slot = slot as i64;
                    p.name = name.clone();
                    names_by_index.insert(p.index, name);
                }
                Step::ProgArrayUpdate(u) => {
                    u.prog_name = names_by_index.get(&u.prog_index).cloned().unwrap_or_default();
                }
                _ => {}
            }
        }
        steps
    }

    fn parse_cleanup(&mut self) -> Result<Cleanup> {
        let first = self.c.here();
        expect(
            first == abi::CLEANUP_LABEL,
            || "cleanup code does not start at insn 7".into(),
            Some(first),
        )?;
        let c = &mut self.c;
        let mut k: i16 = 0;
        while c.is(LDX_MEM, 0, w().dst(R1).src(R10).off(-(abi::STACK_SIZE as i16) + 4 * k)) {
            c.pos += 1;
            c.jmp(JSLE_K, R1, 0, 1)?;
            c.call(abi::FN_SYS_CLOSE)?;
            k += 1;
        }
        expect(
            k >= 2,
            || "cleanup does not close the btf and inner map fds".into(),
            Some(c.here()),
        )?;
        let mut nprogs = k as usize - 2;
        let blob_at = c.here();
        if k == 2 && c.ldb_at(R0).is_some_and(|o| o != 0) {
            // More than 32 programs: their fd slots follow the fd array in the blob.
            let base = c.close_blob()?;
            self.prog_fd_blob = Some(base);
            nprogs = 1;
            while self.c.ldb_at(R0) == Some(base + 4 * nprogs) {
                self.c.close_blob()?;
                nprogs += 1;
            }
            expect(
                nprogs > abi::STACK_PROGS,
                || {
                    format!(
                        "{nprogs} prog fd slots in the blob, the stack holds up to {}",
                        abi::STACK_PROGS
                    )
                },
                Some(blob_at),
            )?;
        }
        let c = &mut self.c;
        let mut m = 0;
        while c.is_ldb(R0, 0) {
            let at = c.here();
            let off = c.close_blob()?;
            expect(
                off == 4 * m,
                || format!("cleanup closes fd_array slot at {off}, expected {}", 4 * m),
                Some(at),
            )?;
            m += 1;
        }
        if let Some(base) = self.prog_fd_blob {
            let want = ((m.max(abi::MIN_MAP_SLOTS) + abi::KFUNC_SLOTS) * 4).div_ceil(8) * 8;
            expect(
                base == want,
                || format!("prog fd slots at blob offset {base}, the fd_array ends at {want}"),
                Some(blob_at),
            )?;
            expect(
                base + 4 * nprogs <= c.data.len(),
                || "prog fd slots outside the data blob".into(),
                Some(blob_at),
            )?;
        }
        c.mov_reg(R0, R7)?;
        c.take(BPF_EXIT, || "exit".into(), w())?;
        self.nr_prog_fd_slots = nprogs;
        self.map_fd_slots = m;
        Ok(Cleanup {
            first_insn: first,
            last_insn: self.c.last(),
            prog_fd_slots: nprogs,
            map_fd_slots: m,
            prog_fd_blob: self.prog_fd_blob,
        })
    }

    /// `if dst <op> rhs goto cleanup`, or its long form (the negated branch
    /// over a `gotol`), as a signature check's mismatch branches read.
    fn mismatch_branch(&mut self, by_reg: Option<u8>, imm: i32) -> Result<()> {
        let (short, negated) = if by_reg.is_some() {
            (JNE_X, JEQ_X)
        } else {
            (JNE_K, JEQ_K)
        };
        let mut want = w().dst(R2);
        match by_reg {
            Some(r) => want = want.src(r).imm(0),
            None => want = want.src(0).imm(imm),
        }
        let c = &mut self.c;
        let (at, target) = if c.is(negated, 0, want.off(1)) && c.is(BPF_GOTOL, 1, w()) {
            c.pos += 1;
            let at = c.here();
            (at, c.goto("gotol cleanup")?)
        } else {
            let i = c.take(short, || "if r2 != expected goto cleanup".into(), want)?;
            (i.idx, (i.idx as i64 + 1 + i.off as i64).max(0) as usize)
        };
        expect(
            target == abi::CLEANUP_LABEL,
            || format!("signature check branches to insn {target}, not the cleanup label"),
            Some(at),
        )
    }

    /// libbpf 1.8's signature match: the loader map must be exclusive to
    /// the loader, and its SHA-256, dword by dword, what signing patched in.
    fn parse_signature_check(&mut self) -> Result<SignatureCheck> {
        let first = self.c.here();
        let map = w().dst(R1).src(BPF_PSEUDO_MAP_IDX).imm(0);
        let map_what = || "r1 = the loader's map".to_string();
        let c = &mut self.c;
        c.take(BPF_LD_IMM64, map_what, map)?;
        c.ldx(4, R2, R1, Some(abi::SHA256_DIGEST_LENGTH))?;
        c.mov_imm(R7, Some(-EINVAL))?;
        self.mismatch_branch(None, 1)?;
        let mut sha256 = String::with_capacity(64);
        for i in 0..abi::SHA256_DWORDS {
            let c = &mut self.c;
            c.take(BPF_LD_IMM64, map_what, map)?;
            c.ldx(8, R2, R1, Some(8 * i as i16))?;
            let h = c.take(
                BPF_LD_IMM64,
                || "r3 = the digest's next 8 bytes".into(),
                w().dst(R3).src(0),
            )?;
            let value = (h.imm as u32 as u64) | ((h.imm2.unwrap_or(0) as u32 as u64) << 32);
            let bytes = if c.big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            for b in bytes {
                sha256.push_str(&format!("{b:02x}"));
            }
            c.mov_imm(R7, Some(-EINVAL))?;
            self.mismatch_branch(Some(R3), 0)?;
        }
        Ok(SignatureCheck {
            first_insn: first,
            last_insn: self.c.last(),
            sha256,
        })
    }

    fn parse_step(&mut self) -> Result<Step> {
        let c = &self.c;
        let ldx = |size: u32, dst: u8, src: u8| c.is(LDX_MEM | sz(size), 0, w().dst(dst).src(src));
        if c.is(LDX_MEM, 0, w().dst(R0).src(R6).off(8)) {
            return self.parse_btf().map(Step::BtfLoad);
        }
        if c.is(LDX_MEM, 0, w().dst(R1).src(R10).off(abi::STACK_BTF_FD)) {
            return self.parse_finish().map(Step::Finish);
        }
        if self.at_prog_fd_copy() {
            return self.parse_prog_array_update().map(Step::ProgArrayUpdate);
        }
        if ldx(4, R0, R10) || ldx(4, R0, R6) || ldx(8, R0, R6) || c.is(MOV64_K, 0, w().dst(R1).imm(abi::BPF_MAP_CREATE))
        {
            return self.parse_map_create().map(Step::MapCreate);
        }
        if ldx(8, R3, R6) {
            return self.parse_map_update().map(Step::MapUpdate);
        }
        if c.is_ldb(R2, 0) {
            return self.parse_map_fd_step();
        }
        if c.is_ldb(R0, 0) {
            return self.parse_prog_load().map(Step::ProgLoad);
        }
        match c.peek(0) {
            None => fail("program ends without the final exit", Some(c.here())),
            Some(i) => fail(
                format!("unexpected `{}` at the start of a step", disasm::text(i, true)),
                Some(i.idx),
            ),
        }
    }

    /// Whether the next instructions copy a prog fd (from its stack or blob slot) into the blob.
    fn at_prog_fd_copy(&self) -> bool {
        let c = &self.c;
        let Some(i) = c.peek(0) else { return false };
        match self.prog_fd_blob {
            None => c.is(LDX_MEM, 0, w().dst(R0).src(R10)) && self.prog_fd_stack_slot(i.off).is_some(),
            Some(_) => c.is_ldb(R2, 0) && self.prog_fd_blob_slot(c.ldb_at(R2)).is_some(),
        }
    }

    /// The load index whose fd sits at stack offset `soff`.
    fn prog_fd_stack_slot(&self, soff: i16) -> Option<usize> {
        let rel = soff as i64 - abi::stack_prog_fd(0) as i64;
        let ok =
            self.prog_fd_blob.is_none() && rel >= 0 && rel % 4 == 0 && ((rel / 4) as usize) < self.nr_prog_fd_slots;
        ok.then_some((rel / 4) as usize)
    }

    /// The load index whose fd sits at blob offset `off`.
    fn prog_fd_blob_slot(&self, off: Option<usize>) -> Option<usize> {
        let (base, off) = (self.prog_fd_blob?, off?);
        let ok = off >= base && (off - base) % 4 == 0 && (off - base) / 4 < self.nr_prog_fd_slots;
        ok.then(|| (off - base) / 4)
    }

    /// The end of a PROG_LOAD: keep the new fd in prog fd slot `j`.
    fn store_prog_fd(&mut self, j: usize) -> Result<()> {
        let at = self.c.here();
        let slots = self.nr_prog_fd_slots;
        expect(
            j < slots,
            || format!("program {j} loaded, only {slots} prog fd slots"),
            Some(at),
        )?;
        let Some(base) = self.prog_fd_blob else {
            return self.c.stx(4, R10, R7, abi::stack_prog_fd(j));
        };
        let off = self.c.ldb(R1)?;
        self.c.stx(4, R1, R7, 0)?;
        let want = base + 4 * j;
        expect(
            off == want,
            || format!("prog fd {j} stored at blob offset {off}, expected {want}"),
            Some(at),
        )
    }

    fn map_name(&self, idx: usize, at: usize) -> Result<String> {
        match self.maps.get(&idx) {
            Some(n) => Ok(n.clone()),
            None => fail(format!("reference to map #{idx} before it is created"), Some(at)),
        }
    }

    fn parse_btf(&mut self) -> Result<BtfLoad> {
        let c = &mut self.c;
        let first = c.here();
        let moves = [c.ctx2blob()?, c.ctx2blob()?, c.ctx2blob()?];
        let (dst, btf) = c.rel_store()?;
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_BTF_LOAD))?;
        expect(
            size as usize == abi::BTF_LOAD_ATTR_SIZE,
            || format!("BTF_LOAD attr size {size}"),
            Some(first),
        )?;
        let want = [
            (attr + btf_load::BTF_LOG_LEVEL, 4, abi::CTX_LOG_LEVEL, false),
            (attr + btf_load::BTF_LOG_SIZE, 4, abi::CTX_LOG_SIZE, false),
            (attr + btf_load::BTF_LOG_BUF, 8, abi::CTX_LOG_BUF, false),
        ];
        expect(
            moves == want && dst == attr + btf_load::BTF,
            || "BTF_LOAD attr set-up does not match".into(),
            Some(first),
        )?;
        c.check_err()?;
        c.stx(4, R10, R7, abi::STACK_BTF_FD)?;
        let btf_size = c.u32(attr + btf_load::BTF_SIZE, Some(first))?;
        expect(
            btf + btf_size as usize <= c.data.len(),
            || "BTF data outside the blob".into(),
            Some(first),
        )?;
        Ok(BtfLoad {
            first_insn: first,
            last_insn: c.last(),
            attr,
            btf,
            size: btf_size,
        })
    }

    fn parse_map_create(&mut self) -> Result<MapCreate> {
        let first = self.c.here();
        let (mut uses_btf, mut uses_inner, mut from_ctx, mut extra_from_ctx) = (false, false, false, false);
        let (mut ctx_idx, mut extra_idx): (Option<usize>, Option<usize>) = (None, None);
        // (which attr field, the blob offset it was stored at)
        let mut pre: Vec<(&str, usize)> = Vec::new();
        let c = &mut self.c;
        if c.is(LDX_MEM, 0, w().dst(R0).src(R10).off(abi::STACK_BTF_FD)) {
            pre.push(("btf_fd", c.stack2blob()?.0));
            uses_btf = true;
        }
        let mut vtype = None;
        if uses_btf && c.is_ldb(R1, 0) {
            // struct_ops: look the vmlinux value type up
            let (name, kind, at) = c.btf_lookup()?;
            expect(
                kind == btf_kind::STRUCT,
                || format!("struct_ops value type {name:?} looked up as BTF kind {kind}"),
                Some(at),
            )?;
            c.check_err()?;
            let off = c.ldb(R0)?;
            c.stx(4, R0, R7, map_create::BTF_VMLINUX_VALUE_TYPE_ID as i16)?;
            pre.push(("btf_vmlinux_value_type_id", off));
            vtype = Some(name);
        }
        if c.is(LDX_MEM, 0, w().dst(R0).src(R10).off(abi::STACK_INNER_MAP_FD)) {
            pre.push(("inner_map_fd", c.stack2blob()?.0));
            uses_inner = true;
        }
        let desc = |ctx_off: i16, field: usize| {
            let rel = ctx_off as i64 - (abi::CTX_SIZE + field) as i64;
            (rel >= 0 && rel % abi::MAP_DESC_SIZE as i64 == 0).then_some(rel as usize / abi::MAP_DESC_SIZE)
        };
        if c.is(LDX_MEM | sz(8), 0, w().dst(R0).src(R6)) {
            // map_extra = the descriptor's initial_value, when set
            let (off, size, ctx_off, nonzero) = c.ctx2blob()?;
            let idx = desc(ctx_off, abi::MAP_DESC_INITIAL_VALUE);
            expect(
                nonzero && size == 8 && idx.is_some(),
                || "bad map_extra override".into(),
                Some(first),
            )?;
            extra_idx = idx;
            pre.push(("map_extra", off));
            extra_from_ctx = true;
        }
        if c.is(LDX_MEM, 0, w().dst(R0).src(R6)) {
            let (off, size, ctx_off, nonzero) = c.ctx2blob()?;
            let idx = desc(ctx_off, abi::MAP_DESC_MAX_ENTRIES);
            expect(
                nonzero && size == 4 && idx.is_some(),
                || "bad max_entries override".into(),
                Some(first),
            )?;
            ctx_idx = idx;
            pre.push(("max_entries", off));
            from_ctx = true;
        }
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_MAP_CREATE))?;
        expect(
            size as usize == abi::MAP_CREATE_ATTR_SIZE,
            || format!("MAP_CREATE attr size {size}"),
            Some(first),
        )?;
        for (what, off) in &pre {
            // the vmlinux type id goes through the attr's address in r7
            let want = attr
                + match *what {
                    "btf_fd" => map_create::BTF_FD,
                    "inner_map_fd" => map_create::INNER_MAP_FD,
                    "max_entries" => map_create::MAX_ENTRIES,
                    "map_extra" => map_create::MAP_EXTRA,
                    _ => 0,
                };
            expect(
                *off == want,
                || format!("MAP_CREATE {what} stored at the wrong offset"),
                Some(first),
            )?;
        }
        c.check_err()?;
        let index: i64 = if c.is(STX_MEM, 0, w().dst(R10).src(R7).off(abi::STACK_INNER_MAP_FD)) {
            c.pos += 1;
            expect(
                ctx_idx.is_none(),
                || "inner map with a ctx max_entries override".into(),
                Some(first),
            )?;
            expect(
                extra_idx.is_none(),
                || "inner map with a ctx map_extra override".into(),
                Some(first),
            )?;
            -1
        } else {
            let at = c.here();
            let off = c.ldb(R1)?;
            c.stx(4, R1, R7, 0)?;
            // slots of maps the loader does not create are skipped (and stay 0)
            let (lo, hi) = (self.nr_maps, self.map_fd_slots);
            expect(
                off % 4 == 0 && lo <= off / 4 && off / 4 < hi,
                || {
                    format!(
                        "map fd stored in slot {}, expected one of {lo}..{}",
                        slot_text(off),
                        hi as i64 - 1
                    )
                },
                Some(at),
            )?;
            let index = off / 4;
            expect(
                ctx_idx.is_none_or(|i| i == index),
                || {
                    format!(
                        "max_entries override reads map desc {} for map {index}",
                        ctx_idx.unwrap_or(0)
                    )
                },
                Some(first),
            )?;
            expect(
                extra_idx.is_none_or(|i| i == index),
                || {
                    format!(
                        "map_extra override reads map desc {} for map {index}",
                        extra_idx.unwrap_or(0)
                    )
                },
                Some(first),
            )?;
            self.nr_maps = index + 1;
            index as i64
        };
        let c = &mut self.c;
        if uses_inner {
            c.close_stack(abi::STACK_INNER_MAP_FD)?;
        }
        let at = Some(first);
        let u = |f: usize| c.u32(attr + f, at);
        let map_type = u(map_create::MAP_TYPE)?;
        let key_size = u(map_create::KEY_SIZE)?;
        let value_size = u(map_create::VALUE_SIZE)?;
        let max_entries = u(map_create::MAX_ENTRIES)?;
        let flags = u(map_create::MAP_FLAGS)?;
        let numa_node = u(map_create::NUMA_NODE)?;
        let kernel_name = c.name_field(attr + map_create::MAP_NAME, at)?;
        let ifindex = u(map_create::MAP_IFINDEX)?;
        let btf_key_type_id = u(map_create::BTF_KEY_TYPE_ID)?;
        let btf_value_type_id = u(map_create::BTF_VALUE_TYPE_ID)?;
        let map_extra = c.u64(attr + map_create::MAP_EXTRA, at)?;
        let type_name = type_name(map_type_name(map_type), map_type);
        let struct_ops = map_type == map_type::STRUCT_OPS;
        expect(
            struct_ops == vtype.is_some(),
            || {
                if vtype.is_none() {
                    "struct_ops map without its vmlinux value type lookup".into()
                } else {
                    format!("vmlinux value type lookup for a {type_name} map")
                }
            },
            at,
        )?;
        expect(
            !extra_from_ctx || (map_type == map_type::ARENA && map_extra == 0),
            || format!("map_extra override for a {type_name} map with map_extra {map_extra:#x}"),
            at,
        )?;
        let mut name = kernel_name.clone();
        if index >= 0 {
            let i = index as usize;
            if let Some(full) = self.map_names.get(i).filter(|n| truncated(n) == kernel_name) {
                name = full.clone();
            }
            self.maps.insert(i, name.clone());
            self.map_types.insert(i, map_type);
            self.value_sizes.insert(i, value_size);
        }
        Ok(MapCreate {
            first_insn: first,
            last_insn: self.c.last(),
            attr,
            index,
            name,
            kernel_name,
            map_type,
            type_name,
            key_size,
            value_size,
            max_entries,
            flags,
            numa_node,
            ifindex,
            btf_key_type_id,
            btf_value_type_id,
            map_extra,
            uses_btf_fd: uses_btf,
            uses_inner_map_fd: uses_inner,
            max_entries_from_ctx: from_ctx,
            vmlinux_value_type: vtype,
            map_extra_from_ctx: extra_from_ctx,
        })
    }

    fn parse_map_update(&mut self) -> Result<MapUpdate> {
        let c = &mut self.c;
        let first = c.here();
        let ctx_off = c.ldx(8, R3, R6, None)?.off;
        let rel = ctx_off as i64 - (abi::CTX_SIZE + abi::MAP_DESC_INITIAL_VALUE) as i64;
        expect(
            rel >= 0 && rel % abi::MAP_DESC_SIZE as i64 == 0,
            || "bad initial_value ctx offset".into(),
            Some(first),
        )?;
        let idx = rel as usize / abi::MAP_DESC_SIZE;
        c.jmp(JEQ_K, R3, 0, 8)?;
        let value = c.ldb(R1)?;
        let value_size = c.mov_imm(R2, None)?;
        c.ldx(4, R0, R6, Some(abi::CTX_FLAGS))?;
        c.jmp(JSET_K, R0, abi::BPF_SKEL_KERNEL, 2)?;
        c.call(abi::FN_COPY_FROM_USER)?;
        c.ja(1)?;
        c.call(abi::FN_PROBE_READ_KERNEL)?;
        self.map_update_tail(first, Some((idx, value, value_size)))
    }

    /// MAP_UPDATE_ELEM of a map's image, from the map fd copy on: after the
    /// ctx override above (`from_ctx`: its map, image and size), or alone
    /// (a signed loader's, read from the attr).
    fn map_update_tail(&mut self, first: usize, from_ctx: Option<(usize, usize, i32)>) -> Result<MapUpdate> {
        let c = &mut self.c;
        let (fd_dst, sz4, fd_src) = c.blob2blob()?;
        let (key_dst, key) = c.rel_store()?;
        let (val_dst, value) = c.rel_store()?;
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_MAP_UPDATE_ELEM))?;
        c.check_err()?;
        let idx = fd_src / 4;
        let (ctx_ok, value_size) = match from_ctx {
            Some((i, v, n)) => (fd_src == 4 * i && v == value, n as u32),
            None => (fd_src % 4 == 0, self.map_value_size(idx)),
        };
        let c = &self.c;
        expect(
            size as usize == abi::MAP_UPDATE_ATTR_SIZE
                && fd_dst == attr + map_update::MAP_FD
                && sz4 == 4
                && ctx_ok
                && key_dst == attr + map_update::KEY
                && val_dst == attr + map_update::VALUE,
            || "MAP_UPDATE_ELEM attr set-up does not match".into(),
            Some(first),
        )?;
        expect(
            value + value_size as usize <= c.data.len(),
            || "map image outside the blob".into(),
            Some(first),
        )?;
        Ok(MapUpdate {
            first_insn: first,
            last_insn: self.c.last(),
            attr,
            map_index: idx,
            map_name: self.map_name(idx, first)?,
            value,
            value_size,
            key,
            value_from_ctx: from_ctx.is_some(),
        })
    }

    /// The value size of a created map, as its MAP_CREATE attr says (a
    /// signed loader's image update does not repeat it).
    fn map_value_size(&self, idx: usize) -> u32 {
        self.value_sizes.get(&idx).copied().unwrap_or(0)
    }

    /// A step that starts by copying a map's fd within the blob: a freeze,
    /// a map-in-map slot, or (signed loaders) a map's initial image.
    fn parse_map_fd_step(&mut self) -> Result<Step> {
        let first = self.c.here();
        // Look ahead without consuming: the fd copy, then what follows it.
        let save = self.c.pos;
        let (fd_dst, sz4, fd_src) = self.c.blob2blob()?;
        expect(sz4 == 4 && fd_src % 4 == 0, || "bad map fd copy".into(), Some(first))?;
        let idx = fd_src / 4;
        if self.c.is(MOV64_K, 0, w().dst(R1).imm(abi::BPF_MAP_FREEZE)) {
            let c = &mut self.c;
            let (_, attr, size) = c.sys_bpf(Some(abi::BPF_MAP_FREEZE))?;
            c.check_err()?;
            expect(
                size as usize == abi::MAP_FREEZE_ATTR_SIZE && fd_dst == attr + map_freeze::MAP_FD,
                || "MAP_FREEZE attr set-up does not match".into(),
                Some(first),
            )?;
            return Ok(Step::MapFreeze(MapFreeze {
                first_insn: first,
                last_insn: c.last(),
                attr,
                map_index: idx,
                map_name: self.map_name(idx, first)?,
            }));
        }
        let c = &mut self.c;
        let (key_dst, key) = c.rel_store()?;
        let (val_dst, value) = c.rel_store()?;
        // A map-in-map slot's value is an fd in the fd array; an image lies beyond it.
        if self.signed && value >= self.fd_array_end() {
            self.c.pos = save;
            return self.map_update_tail(first, None).map(Step::MapUpdate);
        }
        let c = &mut self.c;
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_MAP_UPDATE_ELEM))?;
        c.check_err()?;
        expect(
            size as usize == abi::MAP_UPDATE_ATTR_SIZE
                && fd_dst == attr + map_update::MAP_FD
                && key_dst == attr + map_update::KEY
                && val_dst == attr + map_update::VALUE
                && value % 4 == 0,
            || "map-in-map MAP_UPDATE_ELEM attr set-up does not match".into(),
            Some(first),
        )?;
        let slot = c.u32(key, None).map_or(-1, |v| v as i32);
        let last_insn = c.last();
        Ok(Step::MapPopulate(MapPopulate {
            first_insn: first,
            last_insn,
            attr,
            map_index: idx,
            map_name: self.map_name(idx, first)?,
            slot,
            inner_index: value / 4,
            inner_name: self.map_name(value / 4, first)?,
        }))
    }

    /// Where the fd array ends in the blob: map slots, then kfunc BTF fd slots.
    fn fd_array_end(&self) -> usize {
        (self.map_fd_slots.max(abi::MIN_MAP_SLOTS) + abi::KFUNC_SLOTS) * 4
    }

    /// A prog array's static slot: value = prog fd, then
    /// MAP_UPDATE_ELEM(map, &slot, &value).
    fn parse_prog_array_update(&mut self) -> Result<ProgArrayUpdate> {
        let first = self.c.here();
        let (value, sz4, j) = match self.prog_fd_blob {
            None => {
                let (value, sz4, soff) = self.c.stack2blob()?;
                let j = self.prog_fd_stack_slot(soff);
                (value, sz4, j.ok_or(("stack", soff as i64)))
            }
            Some(_) => {
                let (value, sz4, src) = self.c.blob2blob()?;
                let j = self.prog_fd_blob_slot(Some(src));
                (value, sz4, j.ok_or(("blob", src as i64)))
            }
        };
        let j = match j {
            Ok(j) => j,
            Err((where_, off)) => return fail(format!("{where_} offset {off} is not a prog fd slot"), Some(first)),
        };
        expect(sz4 == 4, || "prog fd copied with the wrong size".into(), Some(first))?;
        expect(
            j < self.nr_progs,
            || format!("prog fd {j} used before program {j} is loaded"),
            Some(first),
        )?;
        let c = &mut self.c;
        let (fd_dst, fsz, fd_src) = c.blob2blob()?;
        let (key_dst, key) = c.rel_store()?;
        let (val_dst, val2) = c.rel_store()?;
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_MAP_UPDATE_ELEM))?;
        c.check_err()?;
        expect(
            size as usize == abi::MAP_UPDATE_ATTR_SIZE
                && fd_dst == attr + map_update::MAP_FD
                && fsz == 4
                && fd_src % 4 == 0
                && key_dst == attr + map_update::KEY
                && val_dst == attr + map_update::VALUE
                && val2 == value,
            || "prog-array MAP_UPDATE_ELEM attr set-up does not match".into(),
            Some(first),
        )?;
        let idx = fd_src / 4;
        let name = self.map_name(idx, first)?;
        expect(
            self.map_types.get(&idx) == Some(&map_type::PROG_ARRAY),
            || format!("prog fd stored into map #{idx} {name}, not a prog array"),
            Some(first),
        )?;
        expect(
            self.c.u32(value, Some(first))? == 0,
            || "prog-array value slot is not zeroed".into(),
            Some(first),
        )?;
        let slot = self.c.u32(key, Some(first))?;
        Ok(ProgArrayUpdate {
            first_insn: first,
            last_insn: self.c.last(),
            attr,
            map_index: idx,
            map_name: name,
            slot,
            prog_index: j,
            prog_name: self.prog_kernel_names[j].clone(),
            value,
        })
    }

    fn parse_prog_load(&mut self) -> Result<ProgLoad> {
        let c = &mut self.c;
        let first = c.here();
        let mut stores = [(0, 0); 6];
        for s in &mut stores {
            *s = c.rel_store()?;
        }
        let moves = [c.ctx2blob()?, c.ctx2blob()?, c.ctx2blob()?];
        let (btf_dst, _, btf_soff) = c.stack2blob()?;
        expect(
            btf_soff == abi::STACK_BTF_FD,
            || "PROG_LOAD does not take the BTF fd".into(),
            Some(first),
        )?;
        let mut attach = None;
        let mut attach_attr = None;
        if c.is_ldb(R1, 0) {
            let (target, kind, at) = c.btf_lookup()?;
            c.check_err()?;
            attach_attr = Some(c.ldb(R0)?);
            c.stx(4, R0, R7, prog_load::ATTACH_BTF_ID as i16)?;
            c.take(RSH64_K, || "r7 >>= 32".into(), w().dst(R7).imm(32))?;
            c.stx(4, R0, R7, prog_load::ATTACH_BTF_OBJ_FD as i16)?;
            attach = Some(AttachTarget {
                first_insn: at,
                name: target,
                kind,
                kind_name: kind_name(kind),
            });
        }
        // relocations need the instructions' offset, known from the stores above
        let insns_off = stores[1].1;
        let mut relos: Vec<KsymRelo> = Vec::new();
        let mut firsts: HashMap<usize, usize> = HashMap::new();
        while self.c.is_ldb(R8, 0) {
            let r = self.parse_relo(insns_off, &relos, &firsts)?;
            if r.repeat_of.is_none() {
                firsts.insert(insns_off + INSN_SIZE * r.insn, relos.len());
            }
            relos.push(r);
        }
        let c = &mut self.c;
        let (_, attr, size) = c.sys_bpf(Some(abi::BPF_PROG_LOAD))?;
        expect(
            size as usize == abi::PROG_LOAD_ATTR_SIZE,
            || format!("PROG_LOAD attr size {size}"),
            Some(first),
        )?;
        let want_stores = [
            prog_load::LICENSE,
            prog_load::INSNS,
            prog_load::FUNC_INFO,
            prog_load::LINE_INFO,
            prog_load::CORE_RELOS,
            prog_load::FD_ARRAY,
        ];
        expect(
            stores.iter().zip(want_stores).all(|(s, f)| s.0 == attr + f) && stores[5].1 == 0,
            || "PROG_LOAD pointer set-up does not match".into(),
            Some(first),
        )?;
        let want_moves = [
            (attr + prog_load::LOG_LEVEL, 4, abi::CTX_LOG_LEVEL, false),
            (attr + prog_load::LOG_SIZE, 4, abi::CTX_LOG_SIZE, false),
            (attr + prog_load::LOG_BUF, 8, abi::CTX_LOG_BUF, false),
        ];
        expect(
            moves == want_moves && btf_dst == attr + prog_load::PROG_BTF_FD,
            || "PROG_LOAD log/btf set-up does not match".into(),
            Some(first),
        )?;
        expect(
            attach_attr.is_none_or(|a| a == attr),
            || "attach target stored elsewhere".into(),
            Some(first),
        )?;
        // fds closed after the load: typed ksyms' BTF object fds, kfunc BTF fds, the attach target's
        let mut want_closes: Vec<usize> = Vec::new();
        for r in relos.iter().filter(|r| r.repeat_of.is_none()) {
            match r.kind {
                RelocKind::Ksym => want_closes.push(insns_off + INSN_SIZE * r.insn + IMM_HI_OFF),
                RelocKind::Kfunc => want_closes.push(4 * r.fd_slot.unwrap_or(0) as usize),
                RelocKind::Typeless => {}
            }
        }
        if attach.is_some() {
            want_closes.push(attr + prog_load::ATTACH_BTF_OBJ_FD);
        }
        let mut closes = Vec::new();
        while closes.len() < want_closes.len() && c.is_ldb(R0, 0) {
            closes.push(c.close_blob()?);
        }
        expect(
            closes == want_closes,
            || "fds closed after PROG_LOAD do not match the lookups".into(),
            Some(first),
        )?;
        c.check_err()?;
        let j = self.nr_progs;
        self.store_prog_fd(j)?;
        self.nr_progs += 1;

        let c = &self.c;
        let at = Some(first);
        let u = |f: usize| c.u32(attr + f, at);
        let prog_type = u(prog_load::PROG_TYPE)?;
        let insn_cnt = u(prog_load::INSN_CNT)?;
        let prog_flags = u(prog_load::PROG_FLAGS)?;
        let kernel_name = c.name_field(attr + prog_load::PROG_NAME, at)?;
        let ifindex = u(prog_load::PROG_IFINDEX)?;
        let eat = u(prog_load::EXPECTED_ATTACH_TYPE)?;
        let func_info_rec_size = u(prog_load::FUNC_INFO_REC_SIZE)?;
        let func_info_cnt = u(prog_load::FUNC_INFO_CNT)?;
        let line_info_rec_size = u(prog_load::LINE_INFO_REC_SIZE)?;
        let line_info_cnt = u(prog_load::LINE_INFO_CNT)?;
        let attach_btf_id = u(prog_load::ATTACH_BTF_ID)?;
        let core_relo_cnt = u(prog_load::CORE_RELO_CNT)?;
        let (license_off, insns_at) = (stores[0].1, stores[1].1);
        expect(
            insns_at + INSN_SIZE * insn_cnt as usize <= c.data.len(),
            || "program instructions outside the blob".into(),
            at,
        )?;
        if let Some(r) = relos.iter().find(|r| r.insn >= insn_cnt as usize) {
            return fail(format!("relocation of insn {} beyond the program", r.insn), at);
        }
        // a struct_ops program's expected_attach_type is the index of its member
        let attach_type_name = if prog_type == prog_type::STRUCT_OPS {
            format!("member {eat}")
        } else {
            type_name(attach_type_name(eat), eat)
        };
        let license = c.cstr(license_off, None, at)?;
        self.prog_kernel_names.push(kernel_name.clone());
        Ok(ProgLoad {
            first_insn: first,
            last_insn: self.c.last(),
            attr,
            index: j,
            ctx_slot: -1,
            name: kernel_name.clone(),
            kernel_name,
            prog_type,
            type_name: type_name(prog_type_name(prog_type), prog_type),
            expected_attach_type: eat,
            attach_type_name,
            prog_flags,
            ifindex,
            license,
            insns: insns_at,
            insn_cnt,
            func_info_cnt,
            func_info_rec_size,
            line_info_cnt,
            line_info_rec_size,
            core_relo_cnt,
            attach_btf_id,
            attach_target: attach,
            relocations: relos,
        })
    }

    /// One relocation: `relos` and `firsts` (first uses by instruction
    /// address) are this program's so far, for repeated uses.
    fn parse_relo(&mut self, insns_off: usize, relos: &[KsymRelo], firsts: &HashMap<usize, usize>) -> Result<KsymRelo> {
        let c = &mut self.c;
        let first = c.here();
        let insn_addr = c.ldb(R8)?;
        expect(
            insn_addr >= insns_off && (insn_addr - insns_off).is_multiple_of(INSN_SIZE),
            || "relocation does not point at a program instruction".into(),
            Some(first),
        )?;
        let insn = (insn_addr - insns_off) / INSN_SIZE;
        let patched_insn = patched(c.data, insn_addr, c.big_endian);
        if c.is_ldb(R2, 0) {
            // a repeated use: copy the values from the first use
            let (d1, s1, src1) = c.blob2blob()?;
            let (d2, s2, src2) = c.blob2blob()?;
            let rel = (d1 as i64 - insn_addr as i64, s1, d2 as i64 - insn_addr as i64, s2);
            let (imm, imm_hi, off) = (IMM_OFF as i64, IMM_HI_OFF as i64, OFF_OFF as i64);
            let (kind, base, ok) = if rel == (imm, 4, off, 2) {
                let base = src1.wrapping_sub(IMM_OFF);
                (RelocKind::Kfunc, base, src2 == base.wrapping_add(OFF_OFF))
            } else if rel == (imm_hi, 4, imm, 4) {
                let base = src1.wrapping_sub(IMM_HI_OFF);
                let ok = src2 == base.wrapping_add(IMM_OFF);
                c.jmp(JNE_K, R0, 0, 3)?;
                self.clear_src_reg()?;
                (RelocKind::Ksym, base, ok)
            } else if rel == (imm, 4, imm_hi, 4) {
                let base = src1.wrapping_sub(IMM_OFF);
                (RelocKind::Typeless, base, src2 == base.wrapping_add(IMM_HI_OFF))
            } else {
                return fail("unrecognised repeated ksym relocation", Some(first));
            };
            let orig = firsts.get(&base).map(|&k| &relos[k]);
            let Some(orig) = orig.filter(|o| ok && o.kind == kind) else {
                return fail("repeated ksym relocation does not copy from a first use", Some(first));
            };
            return Ok(KsymRelo {
                first_insn: first,
                last_insn: self.c.last(),
                name: orig.name.clone(),
                kind,
                btf_kind: orig.btf_kind,
                insn,
                patched_insn,
                strong: None,
                repeat_of: Some(orig.insn),
                fd_slot: orig.fd_slot,
            });
        }
        let at = c.here();
        let name_off = c.ldb(R1)?;
        let len = c.mov_imm(R2, None)?;
        let name = c.cstr(name_off, Some(len as i64), Some(at))?;
        if c.is(MOV64_K, 0, w().dst(R3).imm(0)) && c.is_ldb(R4, 1) {
            // typeless: the kallsyms address
            c.pos += 1;
            c.ldb(R4)?;
            c.mov_reg(R7, R4)?;
            c.call(abi::FN_KALLSYMS_LOOKUP_NAME)?;
            c.ldx(8, R9, R7, Some(0))?;
            c.mov_reg(R7, R0)?;
            // -ENOENT skips the error check (two instructions in its long form)
            let what = || "if r7 == -ENOENT goto over the error check".to_string();
            let skip = c.take(JEQ_K, what, w().dst(R7).src(0).imm(-ENOENT))?;
            c.check_err()?;
            expect(
                skip.idx as i64 + 1 + skip.off as i64 == c.here() as i64,
                || "the -ENOENT branch does not skip exactly the error check".into(),
                Some(skip.idx),
            )?;
            c.stx(4, R8, R9, IMM_OFF as i16)?;
            c.take(RSH64_K, || "r9 >>= 32".into(), w().dst(R9).imm(32))?;
            c.stx(4, R8, R9, IMM_HI_OFF as i16)?;
            return Ok(KsymRelo {
                first_insn: first,
                last_insn: c.last(),
                name,
                kind: RelocKind::Typeless,
                btf_kind: 0,
                insn,
                patched_insn,
                strong: None,
                repeat_of: None,
                fd_slot: None,
            });
        }
        let btf_kind = c.mov_imm(R3, None)? as u32;
        c.mov_imm(R4, Some(0))?;
        c.call(abi::FN_BTF_FIND_BY_NAME_KIND)?;
        c.mov_reg(R7, R0)?;
        let strong = c.maybe_check_err()?;
        c.jmp(JSGE_K, R7, 0, 3)?;
        c.st(4, R8, IMM_OFF as i16, Some(0))?;
        let (kind, fd_slot) = if c.is(ST_MEM | sz(2), 0, w().dst(R8).off(OFF_OFF as i16)) {
            // a kfunc
            c.st(2, R8, OFF_OFF as i16, Some(0))?;
            c.ja(10)?;
            c.stx(4, R8, R7, IMM_OFF as i16)?;
            c.mov_reg(R9, R7)?;
            c.take(RSH64_K, || "r9 >>= 32".into(), w().dst(R9).imm(32))?;
            let slot_off = c.ldb(R0)?;
            c.stx(4, R0, R9, 0)?;
            c.jmp(JNE_K, R9, 0, 2)?;
            c.st(2, R8, OFF_OFF as i16, Some(0))?;
            c.ja(1)?;
            let slot = c.st(2, R8, OFF_OFF as i16, None)?;
            expect(
                slot_off as i64 == 4 * slot as i64,
                || "kfunc BTF fd slot and insn.off disagree".into(),
                Some(first),
            )?;
            (RelocKind::Kfunc, Some(slot as u32))
        } else {
            // a typed ld_imm64
            c.st(4, R8, IMM_HI_OFF as i16, Some(0))?;
            c.ja(4)?;
            c.stx(4, R8, R7, IMM_OFF as i16)?;
            c.take(RSH64_K, || "r7 >>= 32".into(), w().dst(R7).imm(32))?;
            c.stx(4, R8, R7, IMM_HI_OFF as i16)?;
            c.ja(3)?;
            self.clear_src_reg()?;
            (RelocKind::Ksym, None)
        };
        Ok(KsymRelo {
            first_insn: first,
            last_insn: self.c.last(),
            name,
            kind,
            btf_kind,
            insn,
            patched_insn,
            strong: Some(strong),
            repeat_of: None,
            fd_slot,
        })
    }

    /// Clear the patched instruction's src register, keeping dst: the low
    /// nibble of the register byte little-endian, the high one big-endian.
    fn clear_src_reg(&mut self) -> Result<()> {
        let c = &mut self.c;
        let keep: i32 = if c.big_endian { 0xf0 } else { 0x0f };
        let regs = INSN_REGS_OFFSET;
        c.ldx(1, R9, R8, Some(regs))?;
        c.take(AND32_K, || format!("w9 &= {keep:#x}"), w().dst(R9).imm(keep))?;
        c.stx(1, R8, R9, regs)
    }

    fn parse_finish(&mut self) -> Result<Finish> {
        let first = self.c.here();
        self.c.close_stack(abi::STACK_BTF_FD)?;
        let base = (abi::CTX_SIZE + abi::MAP_DESC_SIZE * self.map_fd_slots) as i64;
        let blob = self.prog_fd_blob;
        let mut j = 0;
        loop {
            let c = &mut self.c;
            let more = match blob {
                None => c.is(LDX_MEM, 0, w().dst(R0).src(R10)),
                Some(b) => c.ldb_at(R1) == Some(b + 4 * j),
            };
            if !more {
                break;
            }
            let at = c.here();
            let (ctx_off, size, ok) = match blob {
                None => {
                    let (ctx_off, size, soff) = c.stack2ctx()?;
                    (
                        ctx_off,
                        size,
                        soff as i64 == abi::stack_prog_fd(0) as i64 + 4 * j as i64,
                    )
                }
                Some(_) => {
                    let (ctx_off, size, _) = c.blob2ctx()?;
                    (ctx_off, size, true)
                }
            };
            let rel = ctx_off as i64 - base;
            let slot = rel.div_euclid(abi::PROG_DESC_SIZE as i64);
            expect(
                ok && size == 4
                    && rel >= 0
                    && rel % abi::PROG_DESC_SIZE as i64 == 0
                    && !self.prog_slots.contains(&(slot as usize)),
                || format!("prog fd {j} handed to a bad ctx slot"),
                Some(at),
            )?;
            self.prog_slots.push(slot as usize);
            j += 1;
        }
        let mut i = 0;
        while self.c.is_ldb(R1, 0) {
            let at = self.c.here();
            let (ctx_off, size, src) = self.c.blob2ctx()?;
            expect(
                src == 4 * i && size == 4 && ctx_off as i64 == (abi::CTX_SIZE + abi::MAP_DESC_SIZE * i) as i64,
                || format!("map fd {i} handed to the wrong ctx slot"),
                Some(at),
            )?;
            i += 1;
        }
        let c = &mut self.c;
        c.mov_imm(R0, Some(0))?;
        c.take(BPF_EXIT, || "exit".into(), w())?;
        let loaded = self.nr_progs;
        expect(
            j == loaded,
            || format!("epilogue hands {j} prog fds, {loaded} loaded"),
            Some(first),
        )?;
        let maps = self.map_fd_slots;
        expect(
            i == maps,
            || format!("epilogue hands {i} map fds, the object has {maps} maps"),
            Some(first),
        )?;
        Ok(Finish {
            first_insn: first,
            last_insn: self.c.last(),
            prog_fds: j,
            map_fds: i,
        })
    }
}

/// The first 15 characters of a name, as its attr holds it.
fn truncated(name: &str) -> &str {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A slot number as Python printed `off / 4`.
fn slot_text(off: usize) -> String {
    if off.is_multiple_of(4) {
        format!("{}.0", off / 4)
    } else {
        format!("{}", off as f64 / 4.0)
    }
}
