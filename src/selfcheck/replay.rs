//! The replay: the loader decoded into instructions and executed abstractly,
//! each register a known value (a constant, a pointer into the data blob, the
//! stack or the ctx, a value loaded from there, a call's result), iterated to a
//! fixpoint over the few backward edges; every access and call checked on the
//! way, every store and `bpf()` call recorded for the walk.

use std::collections::{BTreeMap, HashMap};

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) struct Ins {
    pub(super) code: u8,
    pub(super) dst: u8,
    pub(super) src: u8,
    pub(super) off: i16,
    pub(super) imm: i32,
}

impl Ins {
    pub(super) fn is_jump(&self) -> bool {
        matches!(self.code, JA | GOTOL | JNE_X | JEQ_X) || COND_JUMPS.contains(&self.code)
    }

    /// Where the jump at `pc` lands: `gotol` keeps its offset in `imm`,
    /// every other jump in `off`.
    pub(super) fn jump_target(&self, pc: usize) -> i64 {
        let off = if self.code == GOTOL {
            self.imm as i64
        } else {
            self.off as i64
        };
        pc as i64 + 1 + off
    }
}

pub(super) fn decode(b: &[u8]) -> Ins {
    Ins {
        code: b[0],
        dst: b[1] & 0xf,
        src: b[1] >> 4,
        off: i16::from_le_bytes([b[2], b[3]]),
        imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    }
}

/// A loader for a big-endian target (`bpfeb`): its first instruction,
/// `r6 = r1`, has the register nibbles the other way round.
pub(super) fn is_big_endian_loader(insns: &[u8]) -> bool {
    insns.len() >= 8 && insns[0] == MOV64_X && insns[1] == 0x61
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Region {
    Blob,
    Stack,
    Ctx,
    /// The loader's own map (`ld_imm64 src=BPF_PSEUDO_MAP_IDX, imm=0`), read
    /// by a signed loader's signature check: its exclusivity flag and the
    /// SHA-256 the kernel computed of the data blob.
    LoaderMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Val {
    Unknown,
    Const(i64),
    Ptr(Region, i64),
    /// Loaded from (region, offset, size).
    Load(Region, i64, u8),
    /// Returned by the call at this instruction.
    Ret(usize),
}

pub(super) type State = [Val; NREGS];

pub(super) fn join(a: &State, b: &State) -> State {
    let mut out = *a;
    for (o, v) in out.iter_mut().zip(b) {
        if *o != *v {
            *o = Val::Unknown;
        }
    }
    out
}

pub(super) fn join_into(map: &mut HashMap<usize, State>, at: usize, st: &State) {
    map.entry(at).and_modify(|s| *s = join(s, st)).or_insert(*st);
}

pub(super) fn mem_size(code: u8) -> i64 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Store {
    pub(super) insn: usize,
    pub(super) region: Region,
    pub(super) off: i64,
    pub(super) size: i64,
    pub(super) val: Val,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Syscall {
    pub(super) insn: usize,
    pub(super) cmd: i64,
    pub(super) attr: i64,
}

/// Everything the recording pass learns.
#[derive(Default)]
pub(super) struct Trace {
    pub(super) stores: Vec<Store>,
    pub(super) syscalls: Vec<Syscall>,
    pub(super) warnings: Vec<String>,
}

pub(super) struct Checker<'a> {
    pub(super) data: &'a [u8],
    pub(super) insns: Vec<Ins>,
    /// True at the second slot of an `ld_imm64`.
    pub(super) second_half: Vec<bool>,
    pub(super) ctx_size: i64,
    /// A loader for a big-endian target: instructions and the attrs it
    /// passes to the kernel are big-endian.
    pub(super) big_endian: bool,
    /// Instructions of a signed loader's signature check (libbpf 1.8's
    /// `emit_signature_match`, right after the cleanup block), if any.
    pub(super) signature: std::ops::Range<usize>,
}

/// The signature check: a 5-instruction exclusivity test, then one
/// 7-instruction comparison per SHA-256 dword; each of its 5 branches one
/// `gotol` longer where the cleanup label is out of 16-bit reach.
pub(super) const SIGNATURE_INSNS: usize = 5 + abi::SHA256_DWORDS * 7;
/// The negated `JNE_X` of a signature comparison in long form.
/// Bytes of the loader map a signature check may read: the SHA-256, then
/// the 4-byte exclusivity flag.
pub(super) const LOADER_MAP_READABLE: i64 = abi::SHA256_DIGEST_LENGTH as i64 + 4;

impl Checker<'_> {
    pub(super) fn data_len(&self) -> i64 {
        self.data.len() as i64
    }

    pub(super) fn in_data(&self, off: i64, size: i64) -> bool {
        off >= 0 && size >= 0 && off.checked_add(size).is_some_and(|e| e <= self.data_len())
    }

    pub(super) fn u32_at(&self, off: i64) -> u32 {
        let o = off as usize;
        let b = [self.data[o], self.data[o + 1], self.data[o + 2], self.data[o + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Static shape checks that need no dataflow.
    pub(super) fn decode_all(&mut self, raw: &[u8]) -> CheckResult<()> {
        let n = raw.len() / 8;
        self.insns = if self.big_endian {
            let mut le = raw.to_vec();
            crate::insn::Insn::bswap_wire(&mut le);
            le.chunks_exact(8).map(decode).collect()
        } else {
            raw.chunks_exact(8).map(decode).collect()
        };
        self.second_half = vec![false; n];
        // A signed loader: the prologue jumps over the cleanup block to a
        // load of the loader's own map (the signature check).
        if let Some(ja) = self.insns.get(6).filter(|i| i.code == JA || i.code == GOTOL) {
            let start = ja.jump_target(6).clamp(0, n as i64) as usize;
            if self
                .insns
                .get(start)
                .is_some_and(|i| i.code == BPF_LD_IMM64 && i.src == BPF_PSEUDO_MAP_IDX)
            {
                // SIGNATURE_INSNS instructions besides the gotols.
                let mut end = start;
                let mut plain = 0;
                while plain < SIGNATURE_INSNS && end < n {
                    plain += usize::from(self.insns[end].code != GOTOL);
                    end += 1;
                }
                if plain == SIGNATURE_INSNS {
                    self.signature = start..end;
                }
            }
        }
        let mut pc = 0;
        while pc < n {
            let i = self.insns[pc];
            if i.code == BPF_LD_IMM64 {
                let Some(hi) = self.insns.get(pc + 1) else {
                    return fail(Some(pc), "ld_imm64 without its second slot");
                };
                if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
                    return fail(Some(pc + 1), "malformed second slot of ld_imm64");
                }
                let in_signature = self.signature.contains(&pc);
                // The loader map (index 0), or a 64-bit hash dword.
                let signature_form = in_signature
                    && ((i.src == BPF_PSEUDO_MAP_IDX && i.imm == 0 && hi.imm == 0) || i.src == 0)
                    && i.off == 0
                    && (i.dst as usize) < NREGS;
                if signature_form {
                    self.second_half[pc + 1] = true;
                    pc += 2;
                    continue;
                }
                if i.src != BPF_PSEUDO_MAP_IDX_VALUE || i.imm != 0 || i.off != 0 || i.dst as usize >= NREGS {
                    return fail(
                        Some(pc),
                        format!("ld_imm64 is not a data-blob address (src {}, imm {})", i.src, i.imm),
                    );
                }
                if !self.in_data(hi.imm as i64, 0) {
                    return fail(
                        Some(pc),
                        format!(
                            "data-blob offset {} outside the {}-byte data blob",
                            hi.imm,
                            self.data.len()
                        ),
                    );
                }
                self.second_half[pc + 1] = true;
                pc += 2;
                continue;
            }
            let known = matches!(
                i.code,
                MOV64_X | MOV64_K | ADD64_K | RSH64_K | AND32_K | BPF_CALL | BPF_EXIT | JA | GOTOL
            ) || COND_JUMPS.contains(&i.code)
                || ((i.code == JNE_X || i.code == JEQ_X) && self.signature.contains(&pc))
                || matches!(
                    i.code,
                    0x61 | 0x69 | 0x71 | 0x79 | 0x63 | 0x6b | 0x73 | 0x7b | 0x62 | 0x6a | 0x72 | 0x7a
                );
            if !known {
                return fail(Some(pc), format!("opcode {:#04x} is not one the loader emits", i.code));
            }
            if i.dst as usize >= NREGS || i.src as usize >= NREGS {
                return fail(Some(pc), "register number out of range");
            }
            // The verifier's rule for both forms of `ja`: the field that is
            // not the offset, and the registers, are zero.
            let reserved_set = match i.code {
                JA => i.imm != 0 || (i.dst, i.src) != (0, 0),
                GOTOL => i.off != 0 || (i.dst, i.src) != (0, 0),
                _ => false,
            };
            if reserved_set {
                return fail(Some(pc), "goto with non-zero reserved fields");
            }
            pc += 1;
        }
        for (pc, i) in self.insns.iter().enumerate() {
            if self.second_half[pc] || !i.is_jump() {
                continue;
            }
            let target = i.jump_target(pc);
            if target < 0 || target >= n as i64 {
                return fail(Some(pc), format!("jump target {target} is outside the program"));
            }
            if self.second_half[target as usize] {
                return fail(Some(pc), format!("jump into the middle of ld_imm64 at {target}"));
            }
            // A conditional branch to the cleanup label in long form: the
            // negated condition skips the `gotol` that follows it.
            let over_gotol = i.code != JA
                && i.code != GOTOL
                && target == pc as i64 + 2
                && self.insns.get(pc + 1).is_some_and(|g| g.code == GOTOL);
            if i.code == GOTOL && pc != 6 && target as usize != CLEANUP_LABEL {
                return fail(
                    Some(pc),
                    format!("gotol to {target}: only the prologue's and branches to the cleanup label are long"),
                );
            }
            if self.signature.contains(&pc) && i.code != GOTOL {
                if target as usize != CLEANUP_LABEL && !over_gotol {
                    return fail(
                        Some(pc),
                        format!("signature check branches to {target}, not to the cleanup label"),
                    );
                }
                continue;
            }
            if i.code == JSLT_K && i.dst == 7 && i.imm == 0 && target as usize != CLEANUP_LABEL {
                return fail(
                    Some(pc),
                    format!("error branch goes to {target}, not to the cleanup label"),
                );
            }
        }
        Ok(())
    }

    /// The fixed prologue: ctx into r6, stack zeroing, jump over cleanup.
    pub(super) fn check_prologue(&self) -> CheckResult<()> {
        let want: [(u8, u8, u8, i32); 6] = [
            (MOV64_X, 6, 1, 0),
            (MOV64_X, 1, 10, 0),
            (ADD64_K, 1, 0, -(LOADER_STACK as i32)),
            (MOV64_K, 2, 0, LOADER_STACK as i32),
            (MOV64_K, 3, 0, 0),
            (BPF_CALL, 0, 0, FN_PROBE_READ_KERNEL),
        ];
        if self.insns.len() < CLEANUP_LABEL + 2 {
            return fail(
                None,
                format!("{} instructions is too short for a loader", self.insns.len()),
            );
        }
        for (pc, &(code, dst, src, imm)) in want.iter().enumerate() {
            let i = self.insns[pc];
            if (i.code, i.dst, i.src, i.imm) != (code, dst, src, imm) || i.off != 0 {
                return fail(Some(pc), "prologue differs from bpf_gen__init's");
            }
        }
        let ja = self.insns[6];
        if ja.code != JA && ja.code != GOTOL {
            return fail(Some(6), "prologue does not jump over the cleanup block");
        }
        let end = (CLEANUP_LABEL..self.insns.len())
            .find(|&pc| self.insns[pc].code == BPF_EXIT && !self.second_half[pc])
            .ok_or_else(|| CheckError {
                insn: Some(CLEANUP_LABEL),
                reason: "cleanup block has no exit".into(),
            })?;
        if ja.jump_target(6) != end as i64 + 1 {
            return fail(
                Some(6),
                format!(
                    "prologue jumps to {}, the cleanup block ends at {end}",
                    ja.jump_target(6)
                ),
            );
        }
        Ok(())
    }

    /// Check one memory access and return its (region, offset).
    pub(super) fn access(
        &self,
        pc: usize,
        ptr: Val,
        reg: u8,
        off: i16,
        size: i64,
        trace: &mut Trace,
    ) -> CheckResult<(Region, i64)> {
        let Val::Ptr(region, base) = ptr else {
            return fail(
                Some(pc),
                format!("memory access through r{reg}, which holds no known pointer"),
            );
        };
        let at = base + off as i64;
        match region {
            Region::Blob => {
                if !self.in_data(at, size) {
                    return fail(
                        Some(pc),
                        format!(
                            "{size}-byte access at data+{at:#x} outside the {}-byte data blob",
                            self.data.len()
                        ),
                    );
                }
            }
            Region::LoaderMap => {
                if at < 0 || at + size > LOADER_MAP_READABLE {
                    return fail(
                        Some(pc),
                        format!("{size}-byte access at loader map+{at} outside its hash and flag"),
                    );
                }
            }
            Region::Ctx => {
                if at < 0 || at + size > self.ctx_size {
                    return fail(
                        Some(pc),
                        format!("{size}-byte access at ctx+{at} outside the {}-byte ctx", self.ctx_size),
                    );
                }
            }
            Region::Stack => {
                if at < -MAX_BPF_STACK || at + size > 0 {
                    // libbpf 1.5 sizes its cleanup loop and fd slots by the
                    // program count but its frame holds 32 programs: same bytes
                    // as bpftool, rejected by the verifier.
                    if trace.warnings.len() < 8 {
                        trace
                            .warnings
                            .push(format!("insn #{pc}: stack access at r10{at:+} outside the BPF frame"));
                    }
                    if i16::try_from(at).is_err() {
                        return fail(Some(pc), format!("stack offset {at} wrapped"));
                    }
                }
            }
        }
        Ok((region, at))
    }

    /// Arguments of a helper call, checked; returns the sys_bpf record.
    pub(super) fn call(&self, pc: usize, st: &State, trace: &mut Trace) -> CheckResult<()> {
        let id = self.insns[pc].imm;
        let konst = |r: usize| match st[r] {
            Val::Const(c) => Some(c),
            _ => None,
        };
        let blob = |r: usize| match st[r] {
            Val::Ptr(Region::Blob, o) => Some(o),
            _ => None,
        };
        match id {
            FN_PROBE_READ_KERNEL | FN_COPY_FROM_USER => {
                let size = konst(2).ok_or_else(|| CheckError {
                    insn: Some(pc),
                    reason: "copy size is not a constant".into(),
                })?;
                match st[1] {
                    Val::Ptr(Region::Blob, o) if self.in_data(o, size) => {}
                    Val::Ptr(Region::Stack, o) if o >= -MAX_BPF_STACK && o + size <= 0 && size >= 0 => {}
                    _ => {
                        return fail(
                            Some(pc),
                            format!("copy of {size} bytes to an out-of-bounds destination"),
                        );
                    }
                }
            }
            FN_SYS_CLOSE => {}
            FN_BTF_FIND_BY_NAME_KIND | FN_KALLSYMS_LOOKUP_NAME => {
                let (Some(name), Some(len)) = (blob(1), konst(2)) else {
                    return fail(Some(pc), "symbol lookup without a data-blob name and constant length");
                };
                if len < 1 || !self.in_data(name, len) || self.data[(name + len - 1) as usize] != 0 {
                    return fail(
                        Some(pc),
                        format!("lookup name at data+{name:#x} (length {len}) is malformed"),
                    );
                }
                if id == FN_KALLSYMS_LOOKUP_NAME && !blob(4).is_some_and(|r| self.in_data(r, 8)) {
                    return fail(Some(pc), "kallsyms lookup result slot is out of bounds");
                }
            }
            FN_SYS_BPF => {
                let (Some(cmd), Some(attr), Some(size)) = (konst(1), blob(2), konst(3)) else {
                    return fail(
                        Some(pc),
                        "sys_bpf without constant command, data-blob attr and constant size",
                    );
                };
                let want = match cmd {
                    BPF_MAP_CREATE => MAP_CREATE_SZ,
                    BPF_MAP_UPDATE_ELEM => MAP_UPDATE_SZ,
                    BPF_PROG_LOAD => PROG_LOAD_SZ,
                    BPF_BTF_LOAD => BTF_LOAD_SZ,
                    BPF_MAP_FREEZE => MAP_FREEZE_SZ,
                    _ => return fail(Some(pc), format!("sys_bpf command {cmd} is not one the loader issues")),
                };
                if size != want {
                    return fail(
                        Some(pc),
                        format!("sys_bpf command {cmd} with attr size {size}, expected {want}"),
                    );
                }
                if !self.in_data(attr, size) {
                    return fail(
                        Some(pc),
                        format!("sys_bpf attr at data+{attr:#x} (+{size}) is out of bounds"),
                    );
                }
                trace.syscalls.push(Syscall { insn: pc, cmd, attr });
            }
            _ => return fail(Some(pc), format!("call of helper {id}, which the loader never uses")),
        }
        Ok(())
    }

    /// The recording pass, after a fixpoint over the backward edges: the
    /// abstract state at each jump target joins every way into it.
    pub(super) fn trace(&self) -> CheckResult<Trace> {
        let mut back: HashMap<usize, State> = HashMap::new();
        for _ in 0..=16 {
            let mut trace = Trace::default();
            let mut new_back = HashMap::new();
            self.pass(&back, &mut new_back, &mut trace)?;
            if new_back == back {
                return Ok(trace);
            }
            back = new_back;
        }
        fail(None, "dataflow did not converge")
    }

    /// One pass over the program. Backward-edge states come in through
    /// `back`; those this pass produces go to `new_back`.
    pub(super) fn pass(
        &self,
        back: &HashMap<usize, State>,
        new_back: &mut HashMap<usize, State>,
        trace: &mut Trace,
    ) -> CheckResult<()> {
        let n = self.insns.len();
        let mut pending: BTreeMap<usize, State> = BTreeMap::new();
        let mut entry = [Val::Unknown; NREGS];
        entry[1] = Val::Ptr(Region::Ctx, 0);
        entry[10] = Val::Ptr(Region::Stack, 0);
        let mut cur: Option<State> = Some(entry);
        let mut pc = 0;
        while pc < n {
            let mut st = cur.take();
            for incoming in [pending.remove(&pc), back.get(&pc).copied()].into_iter().flatten() {
                st = Some(match st {
                    Some(s) => join(&s, &incoming),
                    None => incoming,
                });
            }
            let Some(mut st) = st else {
                // Unreachable: skip (an ld_imm64 pair as a whole).
                pc += if self.insns[pc].code == BPF_LD_IMM64 { 2 } else { 1 };
                continue;
            };
            let i = self.insns[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            let mut next = pc + 1;
            let mut falls_through = true;
            match i.code {
                BPF_LD_IMM64 => {
                    st[d] = match i.src {
                        BPF_PSEUDO_MAP_IDX_VALUE => Val::Ptr(Region::Blob, self.insns[pc + 1].imm as i64),
                        BPF_PSEUDO_MAP_IDX => Val::Ptr(Region::LoaderMap, 0),
                        // A hash dword of the signature check (decode_all
                        // admits these only there).
                        _ => Val::Unknown,
                    };
                    next = pc + 2;
                }
                MOV64_X => st[d] = st[s],
                MOV64_K => st[d] = Val::Const(i.imm as i64),
                ADD64_K => {
                    st[d] = match st[d] {
                        Val::Const(c) => Val::Const(c.wrapping_add(i.imm as i64)),
                        Val::Ptr(r, o) => Val::Ptr(r, o + i.imm as i64),
                        _ => Val::Unknown,
                    }
                }
                RSH64_K | AND32_K => st[d] = Val::Unknown,
                0x61 | 0x69 | 0x71 | 0x79 => {
                    let size = mem_size(i.code);
                    let (r, at) = self.access(pc, st[s], i.src, i.off, size, trace)?;
                    st[d] = Val::Load(r, at, size as u8);
                }
                0x63 | 0x6b | 0x73 | 0x7b | 0x62 | 0x6a | 0x72 | 0x7a => {
                    let size = mem_size(i.code);
                    let (region, off) = self.access(pc, st[d], i.dst, i.off, size, trace)?;
                    if region == Region::LoaderMap {
                        return fail(Some(pc), "store into the loader's own map");
                    }
                    let val = if i.code & 0x07 == 0x03 {
                        st[s]
                    } else {
                        Val::Const(i.imm as i64)
                    };
                    trace.stores.push(Store {
                        insn: pc,
                        region,
                        off,
                        size,
                        val,
                    });
                }
                BPF_CALL => {
                    self.call(pc, &st, trace)?;
                    st[0] = Val::Ret(pc);
                    for r in st.iter_mut().take(6).skip(1) {
                        *r = Val::Unknown;
                    }
                }
                BPF_EXIT => falls_through = false,
                _ => {
                    // A jump (validated in decode_all).
                    let target = i.jump_target(pc) as usize;
                    if target > pc {
                        pending.entry(target).and_modify(|x| *x = join(x, &st)).or_insert(st);
                    } else {
                        join_into(new_back, target, &st);
                    }
                    falls_through = i.code != JA && i.code != GOTOL;
                }
            }
            if falls_through {
                if next >= n {
                    return fail(Some(pc), "execution falls off the end of the loader");
                }
                cur = Some(st);
            }
            pc = next;
        }
        Ok(())
    }
}
