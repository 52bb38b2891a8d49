//! Instructions as text, one line per instruction, for `explain --disasm`
//! and for the decoder's error messages ("expected X, found `...`").
//!
//! The wire format is [`crate::insn`]'s; what is added here is the reading
//! side: an instruction stream split into slots (an `ld_imm64` takes two)
//! in the target's byte order, and the text of each.

use crate::insn::*;
use crate::loader_abi::{
    FN_BTF_FIND_BY_NAME_KIND, FN_COPY_FROM_USER, FN_KALLSYMS_LOOKUP_NAME, FN_PROBE_READ_KERNEL, FN_SYS_BPF,
    FN_SYS_CLOSE, FN_TRACE_PRINTK,
};

/// One instruction as read: its first slot's index, its fields with the
/// register nibbles already in order, and an `ld_imm64`'s second half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub idx: usize,
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
    /// The upper 32 bits of an `ld_imm64` (its second slot's `imm`).
    pub imm2: Option<i32>,
}

impl Slot {
    /// How many 8-byte slots the instruction takes.
    pub fn width(&self) -> usize {
        if self.imm2.is_some() { 2 } else { 1 }
    }
}

/// Why an instruction stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotError {
    pub reason: String,
    pub insn: Option<usize>,
}

fn read_one(raw: &[u8], big_endian: bool) -> Insn {
    if big_endian {
        Insn::from_bytes_be(raw)
    } else {
        Insn::from_bytes(raw)
    }
}

/// Split `raw` into instructions, an `ld_imm64` with its second half.
pub fn slots(raw: &[u8], big_endian: bool) -> Result<Vec<Slot>, SlotError> {
    if !raw.len().is_multiple_of(INSN_SIZE) {
        return Err(SlotError {
            reason: format!("instruction blob size {} is not a multiple of {INSN_SIZE}", raw.len()),
            insn: None,
        });
    }
    let n = raw.len() / INSN_SIZE;
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let ins = read_one(&raw[INSN_SIZE * i..INSN_SIZE * (i + 1)], big_endian);
        let mut slot = Slot {
            idx: i,
            code: ins.code,
            dst: ins.regs & 0xf,
            src: ins.regs >> 4,
            off: ins.off,
            imm: ins.imm,
            imm2: None,
        };
        if ins.code == BPF_LD_IMM64 {
            if i + 1 >= n {
                return Err(SlotError {
                    reason: "truncated ld_imm64".into(),
                    insn: Some(i),
                });
            }
            let hi = read_one(&raw[INSN_SIZE * (i + 1)..INSN_SIZE * (i + 2)], big_endian);
            if hi.code != 0 || hi.regs != 0 || hi.off != 0 {
                return Err(SlotError {
                    reason: "malformed second half of ld_imm64".into(),
                    insn: Some(i),
                });
            }
            slot.imm2 = Some(hi.imm);
            i += 2;
        } else {
            i += 1;
        }
        out.push(slot);
    }
    Ok(out)
}

/// A loader's byte order, from its first instruction `r6 = r1`, whose
/// register byte is 0x16 little-endian and 0x61 big-endian. Anything else is
/// taken as little-endian (and then fails to decode as a loader).
pub fn loader_is_big_endian(insns: &[u8]) -> bool {
    insns.len() >= 2 && insns[0] == BPF_ALU64 | BPF_MOV | BPF_X && insns[1] == 0x61
}

/// The name `explain` gives a helper the loader calls, "" for others.
pub fn helper_name(id: i32) -> &'static str {
    match id {
        FN_TRACE_PRINTK => "trace_printk",
        FN_PROBE_READ_KERNEL => "probe_read_kernel",
        FN_COPY_FROM_USER => "copy_from_user",
        FN_SYS_BPF => "sys_bpf",
        FN_BTF_FIND_BY_NAME_KIND => "btf_find_by_name_kind",
        FN_SYS_CLOSE => "sys_close",
        FN_KALLSYMS_LOOKUP_NAME => "kallsyms_lookup_name",
        _ => "",
    }
}

fn alu_op(op: u8) -> Option<&'static str> {
    Some(match op {
        BPF_ADD => "+=",
        BPF_SUB => "-=",
        BPF_MUL => "*=",
        BPF_DIV => "/=",
        BPF_OR => "|=",
        BPF_AND => "&=",
        BPF_LSH => "<<=",
        BPF_RSH => ">>=",
        BPF_MOD => "%=",
        BPF_XOR => "^=",
        BPF_MOV => "=",
        BPF_ARSH => "s>>=",
        _ => return None,
    })
}

fn jmp_op(op: u8) -> &'static str {
    match op {
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => "?",
    }
}

/// `+N` or `-N`, as offsets are written.
pub fn signed_offset(off: i64) -> String {
    if off >= 0 { format!("+{off}") } else { off.to_string() }
}

const CALL_OP: u8 = BPF_CALL & BPF_OP_MASK;
const EXIT_OP: u8 = BPF_EXIT & BPF_OP_MASK;

/// The text of one instruction. `blob`: the loader's own code, whose
/// `src=6` ld_imm64s are addresses in its data blob.
pub fn text(i: &Slot, blob: bool) -> String {
    let class = i.code & BPF_CLASS_MASK;
    let op = i.code & BPF_OP_MASK;
    let by_reg = i.code & BPF_SRC_MASK != 0;
    if i.code == BPF_LD_IMM64 {
        let imm2 = i.imm2.unwrap_or(0);
        if i.src == BPF_PSEUDO_MAP_IDX_VALUE {
            return if blob {
                format!("r{} = &blob[{imm2}]", i.dst)
            } else {
                format!("r{} = map[idx:{}]+{imm2} ll", i.dst, i.imm)
            };
        }
        let value = (i.imm as u32 as u64) | ((imm2 as u32 as u64) << 32);
        let pseudo = match i.src {
            BPF_PSEUDO_MAP_FD => " (map fd)",
            BPF_PSEUDO_MAP_VALUE => " (map value)",
            BPF_PSEUDO_BTF_ID => " (btf id)",
            BPF_PSEUDO_FUNC => " (func)",
            BPF_PSEUDO_MAP_IDX => " (map idx)",
            _ => "",
        };
        return format!("r{} = {value:#x} ll{pseudo}", i.dst);
    }
    if class == BPF_ALU || class == BPF_ALU64 {
        let r = if class == BPF_ALU64 { "r" } else { "w" };
        let d = i.dst;
        if op == BPF_NEG {
            return format!("{r}{d} = -{r}{d}");
        }
        if op == BPF_END {
            let order = if by_reg { "be" } else { "le" };
            return format!("{r}{d} = {order}{} {r}{d}", i.imm);
        }
        let sym = alu_op(op).map_or_else(|| format!("alu{op:#x}"), str::to_string);
        let rhs = if by_reg {
            format!("{r}{}", i.src)
        } else {
            i.imm.to_string()
        };
        return format!("{r}{d} {sym} {rhs}");
    }
    if class == BPF_JMP || class == BPF_JMP32 {
        if op == CALL_OP {
            if i.src == BPF_PSEUDO_CALL {
                return format!("call pc{}", signed_offset(i.imm as i64));
            }
            if i.src == BPF_PSEUDO_KFUNC_CALL {
                return format!("call kfunc {}", i.imm);
            }
            let what = helper_name(i.imm);
            return if what.is_empty() {
                format!("call {}", i.imm)
            } else {
                format!("call {} ({what})", i.imm)
            };
        }
        if op == EXIT_OP {
            return "exit".into();
        }
        if i.code == BPF_GOTOL {
            return format!(
                "gotol pc{} -> {}",
                signed_offset(i.imm as i64),
                i.idx as i64 + 1 + i.imm as i64
            );
        }
        let target = i.idx as i64 + 1 + i.off as i64;
        if op == BPF_JA {
            return format!("goto pc{} -> {target}", signed_offset(i.off as i64));
        }
        let r = if class == BPF_JMP { "r" } else { "w" };
        let rhs = if by_reg {
            format!("{r}{}", i.src)
        } else {
            i.imm.to_string()
        };
        return format!(
            "if {r}{} {} {rhs} goto pc{} -> {target}",
            i.dst,
            jmp_op(op),
            signed_offset(i.off as i64)
        );
    }
    let size = match i.code & BPF_SIZE_MASK {
        0x00 => "u32",
        0x08 => "u16",
        0x10 => "u8",
        _ => "u64",
    };
    let mode = i.code & BPF_MODE_MASK;
    let at = |reg: u8| format!("({size} *)(r{reg} {})", signed_offset(i.off as i64));
    match (class, mode) {
        (BPF_LDX, BPF_MEM) => format!("r{} = *{}", i.dst, at(i.src)),
        (BPF_ST, BPF_MEM) => format!("*{} = {}", at(i.dst), i.imm),
        (BPF_STX, BPF_MEM) => format!("*{} = r{}", at(i.dst), i.src),
        (BPF_STX, BPF_ATOMIC) => {
            let imm = if i.imm < 0 {
                format!("-{:#x}", -(i.imm as i64))
            } else {
                format!("{:#x}", i.imm)
            };
            format!("atomic({imm}) *{}, r{}", at(i.dst), i.src)
        }
        _ => format!(
            "(code {:#04x} dst r{} src r{} off {} imm {})",
            i.code, i.dst, i.src, i.off, i.imm
        ),
    }
}

/// One line per instruction: `  idx: (code) text`.
pub fn listing(raw: &[u8], blob: bool, big_endian: bool) -> Result<Vec<String>, SlotError> {
    Ok(slots(raw, big_endian)?
        .iter()
        .map(|i| format!("{:5}: ({:02x}) {}", i.idx, i.code, text(i, blob)))
        .collect())
}

/// Whether a loader has jumps in the long form (`gotol`: cpu v4, Linux 6.6),
/// which only loaders too long for 16-bit jumps have.
pub fn uses_gotol(raw: &[u8], big_endian: bool) -> Result<bool, SlotError> {
    Ok(slots(raw, big_endian)?.iter().any(|i| i.code == BPF_GOTOL))
}
