//! BPF instruction encoding: one 8-byte little-endian `struct bpf_insn`, and
//! the handful of constructors the loader emitter needs.

pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `ld_imm64` of a map value's address (the kernel's, not emitted here;
/// `explain` names it).
pub const BPF_PSEUDO_MAP_VALUE: u8 = 2;
pub const BPF_PSEUDO_BTF_ID: u8 = 3;
pub const BPF_PSEUDO_MAP_IDX: u8 = 5;
pub const BPF_PSEUDO_MAP_IDX_VALUE: u8 = 6;
pub const BPF_PSEUDO_CALL: u8 = 1;
pub const BPF_PSEUDO_FUNC: u8 = 4;
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

// Opcode pieces (class | op | source) used below.
pub const BPF_LD_IMM64: u8 = 0x18;
pub const BPF_CALL: u8 = 0x85;
pub const BPF_EXIT: u8 = 0x95;
pub const BPF_JMP: u8 = 0x05;
/// The 32-bit jump class; with `BPF_JA` it is `gotol`, whose offset is `imm`.
pub const BPF_JMP32: u8 = 0x06;
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;
pub const BPF_ALU64: u8 = 0x07;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ST: u8 = 0x02;
pub const BPF_MEM: u8 = 0x60;

pub const BPF_ADD: u8 = 0x00;
pub const BPF_RSH: u8 = 0x70;
pub const BPF_AND: u8 = 0x50;
pub const BPF_MOV: u8 = 0xb0;
pub const BPF_JA: u8 = 0x00;
pub const BPF_JEQ: u8 = 0x10;
pub const BPF_JNE: u8 = 0x50;
pub const BPF_JSET: u8 = 0x40;
pub const BPF_JSGE: u8 = 0x70;
pub const BPF_JSLT: u8 = 0xc0;
pub const BPF_JSLE: u8 = 0xd0;
// The rest of the ALU and jump operations, the atomic mode and the masks of
// an opcode's fields: not emitted here, but `explain` disassembles any
// program's instructions by them.
pub const BPF_SUB: u8 = 0x10;
pub const BPF_MUL: u8 = 0x20;
pub const BPF_DIV: u8 = 0x30;
pub const BPF_OR: u8 = 0x40;
pub const BPF_LSH: u8 = 0x60;
pub const BPF_NEG: u8 = 0x80;
pub const BPF_MOD: u8 = 0x90;
pub const BPF_XOR: u8 = 0xa0;
pub const BPF_ARSH: u8 = 0xc0;
/// Byte swap; with `BPF_X` (`BPF_TO_BE`) to big-endian, else to little.
pub const BPF_END: u8 = 0xd0;
pub const BPF_JGT: u8 = 0x20;
pub const BPF_JGE: u8 = 0x30;
pub const BPF_JSGT: u8 = 0x60;
pub const BPF_JLT: u8 = 0xa0;
pub const BPF_JLE: u8 = 0xb0;
pub const BPF_ATOMIC: u8 = 0xc0;
pub const BPF_CLASS_MASK: u8 = 0x07;
pub const BPF_OP_MASK: u8 = 0xf0;
pub const BPF_SIZE_MASK: u8 = 0x18;
pub const BPF_MODE_MASK: u8 = 0xe0;
pub const BPF_SRC_MASK: u8 = 0x08;

/// `gotol` (cpu v4, Linux 6.6): an unconditional jump whose offset is the
/// 32-bit `imm`, for targets beyond the ±32,767 instructions of `off`.
pub const BPF_GOTOL: u8 = BPF_JMP32 | BPF_JA;

/// Whole opcodes of the instructions a loader is made of: the emitter
/// composes them from the pieces above, the decoder (`explain`) and the
/// self-check match them by these names.
pub mod loader_ops {
    use super::*;
    pub const MOV64_K: u8 = BPF_ALU64 | BPF_MOV | BPF_K;
    pub const MOV64_X: u8 = BPF_ALU64 | BPF_MOV | BPF_X;
    pub const ADD64_K: u8 = BPF_ALU64 | BPF_ADD | BPF_K;
    pub const RSH64_K: u8 = BPF_ALU64 | BPF_RSH | BPF_K;
    pub const AND32_K: u8 = BPF_ALU | BPF_AND | BPF_K;
    pub const JA: u8 = BPF_JMP | BPF_JA;
    pub const JEQ_K: u8 = BPF_JMP | BPF_JEQ | BPF_K;
    pub const JEQ_X: u8 = BPF_JMP | BPF_JEQ | BPF_X;
    pub const JNE_K: u8 = BPF_JMP | BPF_JNE | BPF_K;
    pub const JNE_X: u8 = BPF_JMP | BPF_JNE | BPF_X;
    pub const JSET_K: u8 = BPF_JMP | BPF_JSET | BPF_K;
    pub const JSGE_K: u8 = BPF_JMP | BPF_JSGE | BPF_K;
    pub const JSLT_K: u8 = BPF_JMP | BPF_JSLT | BPF_K;
    pub const JSLE_K: u8 = BPF_JMP | BPF_JSLE | BPF_K;
    /// Loads and stores, to be or'ed with an access [`Size`].
    pub const LDX_MEM: u8 = BPF_LDX | BPF_MEM;
    pub const ST_MEM: u8 = BPF_ST | BPF_MEM;
    pub const STX_MEM: u8 = BPF_STX | BPF_MEM;
}

/// Bytes per instruction, and where its fields sit in them: the loader
/// patches programs' instructions in place by these (ksym and kfunc
/// relocations), and `explain` reads those patches back.
pub const INSN_SIZE: usize = 8;
pub const INSN_REGS_OFFSET: i16 = 1;
pub const INSN_OFF_OFFSET: i16 = 2;
pub const INSN_IMM_OFFSET: i16 = 4;
/// The upper 32 bits of an `ld_imm64`'s value: the second half's `imm`.
pub const LD_IMM64_IMM_HI_OFFSET: i16 = INSN_SIZE as i16 + INSN_IMM_OFFSET;

/// Access sizes for loads and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    W = 0x00,
    H = 0x08,
    B = 0x10,
    DW = 0x18,
}

impl Size {
    pub fn from_bytes(n: u32) -> Size {
        match n {
            8 => Size::DW,
            4 => Size::W,
            2 => Size::H,
            _ => Size::B,
        }
    }
}

/// `repr(C)`: the fields in `struct bpf_insn`'s order, 8 bytes without
/// padding, so on little-endian hosts a `[Insn]` in memory is already the
/// wire format ([`wire_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high nibble (little-endian layout).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == INSN_SIZE);

/// The little-endian wire bytes of `insns` (what `to_bytes` gives for each),
/// without a copy on little-endian hosts (performance: large programs were
/// copied once more only to be appended to the loader blob).
pub fn wire_bytes(insns: &[Insn]) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: `Insn` is `repr(C)` with fields u8, u8, i16, i32: size 8,
        // no padding, every byte initialised; on a little-endian host its
        // memory is exactly `to_bytes()`. The slice borrows `insns`.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(insns.as_ptr().cast::<u8>(), insns.len() * 8) })
    }
    #[cfg(not(target_endian = "little"))]
    {
        std::borrow::Cow::Owned(insns.iter().flat_map(|i| i.to_bytes()).collect())
    }
}

impl Insn {
    pub fn from_bytes(b: &[u8]) -> Insn {
        Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// A big-endian (`bpfeb`) instruction: register nibbles in the other
    /// order, `off` and `imm` big-endian.
    pub fn from_bytes_be(b: &[u8]) -> Insn {
        Insn {
            code: b[0],
            regs: b[1].rotate_left(4),
            off: i16::from_be_bytes([b[2], b[3]]),
            imm: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Little-endian wire bytes to big-endian ones and back (libbpf's
    /// `bpf_insn_bswap`), in place, for every instruction of `bytes`.
    pub fn bswap_wire(bytes: &mut [u8]) {
        for b in bytes.chunks_exact_mut(8) {
            b[1] = b[1].rotate_left(4);
            b[2..4].reverse();
            b[4..8].reverse();
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [self.code, self.regs, o[0], o[1], i[0], i[1], i[2], i[3]]
    }

    pub fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }

    pub fn src_reg(&self) -> u8 {
        self.regs >> 4
    }

    pub fn set_src_reg(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | (src << 4);
    }

    pub fn is_call(&self) -> bool {
        self.code == BPF_CALL
    }

    pub fn is_ldimm64(&self) -> bool {
        self.code == BPF_LD_IMM64
    }

    pub fn is_subprog_call(&self) -> bool {
        self.is_call() && self.src_reg() == BPF_PSEUDO_CALL && self.regs & 0xf == 0 && self.off == 0
    }

    pub fn is_pseudo_func(&self) -> bool {
        self.is_ldimm64() && self.src_reg() == BPF_PSEUDO_FUNC
    }

    // ---- constructors, named after the kernel's BPF_* macros ----

    pub fn mov64_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
    }
    pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }
    pub fn ldx_mem(size: Size, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | size as u8 | BPF_MEM, dst, src, off, 0)
    }
    pub fn stx_mem(size: Size, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_STX | size as u8 | BPF_MEM, dst, src, off, 0)
    }
    pub fn st_mem(size: Size, dst: u8, off: i16, imm: i32) -> Insn {
        Insn::new(BPF_ST | size as u8 | BPF_MEM, dst, 0, off, imm)
    }
    pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
    }
    /// `gotol +off`: the jump lands on `pc + 1 + off`.
    pub fn gotol(off: i32) -> Insn {
        Insn::new(BPF_GOTOL, 0, 0, 0, off)
    }
    pub fn call(helper: i32) -> Insn {
        Insn::new(BPF_CALL, 0, 0, 0, helper)
    }
    pub fn exit() -> Insn {
        Insn::new(BPF_EXIT, 0, 0, 0, 0)
    }
    /// Both halves of `ld_imm64 dst, src=pseudo, imm=imm1 | imm2<<32`.
    pub fn ld_imm64_raw(dst: u8, src: u8, imm1: i32, imm2: i32) -> [Insn; 2] {
        [Insn::new(BPF_LD_IMM64, dst, src, 0, imm1), Insn::new(0, 0, 0, 0, imm2)]
    }
}

#[cfg(test)]
mod wire_tests {
    use super::{Insn, wire_bytes};

    #[test]
    fn wire_bytes_are_to_bytes() {
        let insns = [Insn::new(0x18, 1, 2, -3, 0x1234_5678), Insn::new(0x95, 0, 0, 0x7ff, -1)];
        let want: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        assert_eq!(&*wire_bytes(&insns), &want[..]);
    }
}
