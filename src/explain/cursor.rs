//! The cursor the decoder matches a loader with: the next instruction
//! against an opcode and the fields it must have, and the building blocks
//! every step is made of (a `&blob[...]` load, a copy from the ctx or the
//! stack into the blob, a `bpf()` call, an error check, a BTF lookup, an fd
//! close), each returning what the block carries.

use super::DecodeError;
use crate::disasm::{self, Slot};
use crate::insn::loader_ops::*;
use crate::insn::*;
use crate::loader_abi as abi;

pub(super) type Result<T> = std::result::Result<T, DecodeError>;

pub(super) fn fail<T>(reason: impl Into<String>, insn: Option<usize>) -> Result<T> {
    Err(DecodeError {
        reason: reason.into(),
        insn,
    })
}

pub(super) fn expect(ok: bool, reason: impl FnOnce() -> String, insn: Option<usize>) -> Result<()> {
    if ok { Ok(()) } else { fail(reason(), insn) }
}

/// The access-size bits of a load or store of `n` bytes.
pub(super) fn sz(n: u32) -> u8 {
    Size::from_bytes(n) as u8
}

fn size_of(code: u8) -> u32 {
    match code & BPF_SIZE_MASK {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
pub(super) const R4: u8 = 4;
pub(super) const R6: u8 = 6;
pub(super) const R7: u8 = 7;
pub(super) const R8: u8 = 8;
pub(super) const R9: u8 = 9;
pub(super) const R10: u8 = 10;

/// The fields an instruction must have besides its opcode (`None`: any).
#[derive(Clone, Copy, Default)]
pub(super) struct Want {
    dst: Option<u8>,
    src: Option<u8>,
    off: Option<i16>,
    imm: Option<i32>,
}

impl Want {
    pub(super) fn dst(mut self, r: u8) -> Self {
        self.dst = Some(r);
        self
    }
    pub(super) fn src(mut self, r: u8) -> Self {
        self.src = Some(r);
        self
    }
    pub(super) fn off(mut self, o: i16) -> Self {
        self.off = Some(o);
        self
    }
    pub(super) fn imm(mut self, i: i32) -> Self {
        self.imm = Some(i);
        self
    }
    pub(super) fn matches(&self, i: &Slot, code: u8) -> bool {
        i.code == code
            && self.dst.is_none_or(|d| d == i.dst)
            && self.src.is_none_or(|s| s == i.src)
            && self.off.is_none_or(|o| o == i.off)
            && self.imm.is_none_or(|m| m == i.imm)
    }
}

pub(super) fn w() -> Want {
    Want::default()
}

/// The instruction stream being matched, and the data blob its `&blob[...]`
/// addresses point into.
pub(super) struct Cursor<'a> {
    pub(super) insns: Vec<Slot>,
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) big_endian: bool,
}

impl<'a> Cursor<'a> {
    pub(super) fn peek(&self, k: usize) -> Option<&Slot> {
        self.insns.get(self.pos + k)
    }

    /// The slot index of the next instruction (the end when none is left).
    pub(super) fn here(&self) -> usize {
        match self.peek(0) {
            Some(i) => i.idx,
            None => self.insns.last().map_or(0, |l| l.idx + l.width()),
        }
    }

    /// The final slot of the last instruction taken.
    pub(super) fn last(&self) -> usize {
        let prev = &self.insns[self.pos - 1];
        prev.idx + prev.width() - 1
    }

    pub(super) fn take(&mut self, code: u8, what: impl FnOnce() -> String, want: Want) -> Result<Slot> {
        let Some(i) = self.peek(0).copied() else {
            return fail(
                format!("expected {}, found the end of the program", what()),
                Some(self.here()),
            );
        };
        if !want.matches(&i, code) {
            return fail(
                format!("expected {}, found `{}`", what(), disasm::text(&i, true)),
                Some(i.idx),
            );
        }
        self.pos += 1;
        Ok(i)
    }

    pub(super) fn is(&self, code: u8, k: usize, want: Want) -> bool {
        self.peek(k).is_some_and(|i| want.matches(i, code))
    }

    pub(super) fn is_ldb(&self, reg: u8, k: usize) -> bool {
        self.is(BPF_LD_IMM64, k, w().dst(reg).src(BPF_PSEUDO_MAP_IDX_VALUE).imm(0))
    }

    /// The blob offset the next `&blob[...]` load points at, when it is one.
    pub(super) fn ldb_at(&self, reg: u8) -> Option<usize> {
        if self.is_ldb(reg, 0) {
            self.peek(0).and_then(|i| i.imm2).map(|o| o as u32 as usize)
        } else {
            None
        }
    }

    // The building blocks.

    pub(super) fn ldb(&mut self, reg: u8) -> Result<usize> {
        let want = w().dst(reg).src(BPF_PSEUDO_MAP_IDX_VALUE).imm(0);
        let i = self.take(BPF_LD_IMM64, || format!("r{reg} = &blob[...]"), want)?;
        let off = i.imm2.unwrap_or(0);
        if off < 0 || off as usize > self.data.len() {
            return fail(format!("blob offset {off} outside the data blob"), Some(i.idx));
        }
        Ok(off as usize)
    }

    pub(super) fn mov_imm(&mut self, reg: u8, imm: Option<i32>) -> Result<i32> {
        let mut want = w().dst(reg).src(0);
        want.imm = imm;
        Ok(self.take(MOV64_K, || format!("r{reg} = imm"), want)?.imm)
    }

    pub(super) fn mov_reg(&mut self, dst: u8, src: u8) -> Result<()> {
        self.take(MOV64_X, || format!("r{dst} = r{src}"), w().dst(dst).src(src))
            .map(drop)
    }

    pub(super) fn call(&mut self, helper: i32) -> Result<()> {
        let what = || {
            let name = disasm::helper_name(helper);
            if name.is_empty() {
                format!("call {helper}")
            } else {
                format!("call {name}")
            }
        };
        self.take(BPF_CALL, what, w().src(0).imm(helper)).map(drop)
    }

    pub(super) fn ldx(&mut self, size: u32, dst: u8, src: u8, off: Option<i16>) -> Result<Slot> {
        let mut want = w().dst(dst).src(src);
        want.off = off;
        self.take(
            LDX_MEM | sz(size),
            || format!("r{dst} = *(u{} *)(r{src} ...)", 8 * size),
            want,
        )
    }

    /// A load of any size: (size, offset).
    pub(super) fn ldx_any(&mut self, dst: u8, src: u8, off: Option<i16>) -> Result<(u32, i16)> {
        match self.peek(0).copied() {
            Some(i)
                if i.code & !BPF_SIZE_MASK == LDX_MEM
                    && i.dst == dst
                    && i.src == src
                    && off.is_none_or(|o| o == i.off) =>
            {
                self.pos += 1;
                Ok((size_of(i.code), i.off))
            }
            other => fail(
                format!("expected r{dst} = *(r{src} ...)"),
                Some(other.map_or(self.here(), |i| i.idx)),
            ),
        }
    }

    pub(super) fn stx(&mut self, size: u32, dst: u8, src: u8, off: i16) -> Result<()> {
        let what = || {
            format!(
                "*(u{} *)(r{dst} {}) = r{src}",
                8 * size,
                disasm::signed_offset(off as i64)
            )
        };
        self.take(STX_MEM | sz(size), what, w().dst(dst).src(src).off(off))
            .map(drop)
    }

    pub(super) fn st(&mut self, size: u32, dst: u8, off: i16, imm: Option<i32>) -> Result<i32> {
        let what = || format!("*(u{} *)(r{dst} {}) = imm", 8 * size, disasm::signed_offset(off as i64));
        let mut want = w().dst(dst).src(0).off(off);
        want.imm = imm;
        Ok(self.take(ST_MEM | sz(size), what, want)?.imm)
    }

    pub(super) fn jmp(&mut self, code: u8, dst: u8, imm: i32, off: i16) -> Result<()> {
        let what = || {
            format!(
                "conditional jump on r{dst} ({code:#x}, {imm}, {})",
                disasm::signed_offset(off as i64)
            )
        };
        self.take(code, what, w().dst(dst).src(0).imm(imm).off(off)).map(drop)
    }

    pub(super) fn ja(&mut self, off: i16) -> Result<()> {
        let what = || format!("goto {}", disasm::signed_offset(off as i64));
        self.take(JA, what, w().dst(0).src(0).off(off).imm(0)).map(drop)
    }

    /// An unconditional jump, `ja` or (beyond 16 bits) `gotol`: its target.
    pub(super) fn goto(&mut self, what: &str) -> Result<usize> {
        let (i, off) = if self.is(BPF_GOTOL, 0, w()) {
            let i = self.take(BPF_GOTOL, || what.into(), w().dst(0).src(0).off(0))?;
            (i, i.imm as i64)
        } else {
            let i = self.take(JA, || what.into(), w().dst(0).src(0).imm(0))?;
            (i, i.off as i64)
        };
        Ok((i.idx as i64 + 1 + off).max(0) as usize)
    }

    /// ctx to blob: (blob offset, size, ctx offset, whether a zero value is skipped).
    pub(super) fn ctx2blob(&mut self) -> Result<(usize, u32, i16, bool)> {
        let (size, ctx_off) = self.ldx_any(R0, R6, None)?;
        let nonzero = self.is(JEQ_K, 0, w().dst(R0).imm(0).off(3));
        if nonzero {
            self.pos += 1;
        }
        let off = self.ldb(R1)?;
        self.stx(size, R1, R0, 0)?;
        Ok((off, size, ctx_off, nonzero))
    }

    /// Stack to blob: (blob offset, size, stack offset).
    pub(super) fn stack2blob(&mut self) -> Result<(usize, u32, i16)> {
        let (size, soff) = self.ldx_any(R0, R10, None)?;
        let off = self.ldb(R1)?;
        self.stx(size, R1, R0, 0)?;
        Ok((off, size, soff))
    }

    /// Blob to blob: (destination, size, source).
    pub(super) fn blob2blob(&mut self) -> Result<(usize, u32, usize)> {
        let src = self.ldb(R2)?;
        let (size, _) = self.ldx_any(R0, R2, Some(0))?;
        let dst = self.ldb(R1)?;
        self.stx(size, R1, R0, 0)?;
        Ok((dst, size, src))
    }

    /// Blob to ctx: (ctx offset, size, blob offset).
    pub(super) fn blob2ctx(&mut self) -> Result<(i16, u32, usize)> {
        let src = self.ldb(R1)?;
        let (size, _) = self.ldx_any(R0, R1, Some(0))?;
        let off = self.peek(0).map_or(0, |i| i.off);
        self.stx(size, R6, R0, off)?;
        Ok((off, size, src))
    }

    /// Stack to ctx: (ctx offset, size, stack offset).
    pub(super) fn stack2ctx(&mut self) -> Result<(i16, u32, i16)> {
        let (size, soff) = self.ldx_any(R0, R10, None)?;
        let off = self.peek(0).map_or(0, |i| i.off);
        self.stx(size, R6, R0, off)?;
        Ok((off, size, soff))
    }

    /// `blob[dst] = &blob[data]`: (dst, data).
    pub(super) fn rel_store(&mut self) -> Result<(usize, usize)> {
        let data = self.ldb(R0)?;
        let dst = self.ldb(R1)?;
        self.stx(8, R1, R0, 0)?;
        Ok((dst, data))
    }

    /// A `bpf()` call: (command, attr, attr size).
    pub(super) fn sys_bpf(&mut self, cmd: Option<i32>) -> Result<(i32, usize, i32)> {
        let c = self.mov_imm(R1, cmd)?;
        let attr = self.ldb(R2)?;
        let size = self.mov_imm(R3, None)?;
        self.call(abi::FN_SYS_BPF)?;
        self.mov_reg(R7, R0)?;
        Ok((c, attr, size))
    }

    /// `r7 = btf_find_by_name_kind(&blob[name], len, kind, 0)`: (name, kind, first insn).
    pub(super) fn btf_lookup(&mut self) -> Result<(String, u32, usize)> {
        let at = self.here();
        let name_off = self.ldb(R1)?;
        let len = self.mov_imm(R2, None)?;
        let kind = self.mov_imm(R3, None)?;
        self.mov_imm(R4, Some(0))?;
        self.call(abi::FN_BTF_FIND_BY_NAME_KIND)?;
        self.mov_reg(R7, R0)?;
        Ok((self.cstr(name_off, Some(len as i64), Some(at))?, kind as u32, at))
    }

    /// `if r7 s< 0 goto cleanup`, or out of 16-bit reach
    /// `if r7 s>= 0 goto +1; gotol cleanup`.
    pub(super) fn check_err(&mut self) -> Result<()> {
        let (at, target) = if self.at_long_check_err() {
            self.pos += 1;
            let at = self.here();
            (at, self.goto("gotol cleanup")?)
        } else {
            let i = self.take(JSLT_K, || "if r7 s< 0 goto cleanup".into(), w().dst(R7).src(0).imm(0))?;
            (i.idx, (i.idx as i64 + 1 + i.off as i64).max(0) as usize)
        };
        expect(
            target == abi::CLEANUP_LABEL,
            || format!("error branch goes to insn {target}, not the cleanup label"),
            Some(at),
        )
    }

    pub(super) fn at_long_check_err(&self) -> bool {
        self.is(JSGE_K, 0, w().dst(R7).src(0).imm(0).off(1)) && self.is(BPF_GOTOL, 1, w())
    }

    pub(super) fn maybe_check_err(&mut self) -> Result<bool> {
        if self.is(JSLT_K, 0, w().dst(R7).src(0).imm(0)) || self.at_long_check_err() {
            self.check_err()?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(super) fn close_tail(&mut self) -> Result<()> {
        self.jmp(JSLE_K, R1, 0, 2)?;
        self.mov_reg(R9, R1)?;
        self.call(abi::FN_SYS_CLOSE)
    }

    pub(super) fn close_stack(&mut self, soff: i16) -> Result<()> {
        self.ldx(4, R1, R10, Some(soff))?;
        self.close_tail()
    }

    pub(super) fn close_blob(&mut self) -> Result<usize> {
        let off = self.ldb(R0)?;
        self.ldx(4, R1, R0, Some(0))?;
        self.close_tail()?;
        Ok(off)
    }

    /// The NUL-terminated string at `off`, `size` bytes with its NUL when given.
    pub(super) fn cstr(&self, off: usize, size: Option<i64>, at: Option<usize>) -> Result<String> {
        let end = self
            .data
            .get(off..)
            .and_then(|rest| rest.iter().position(|&b| b == 0))
            .map(|n| off + n);
        match end {
            Some(end) if size.is_none_or(|s| end as i64 == off as i64 + s - 1) => {
                Ok(String::from_utf8_lossy(&self.data[off..end]).into_owned())
            }
            _ => fail(format!("no NUL-terminated string at blob offset {off}"), at),
        }
    }

    pub(super) fn bytes<const N: usize>(&self, off: usize, at: Option<usize>) -> Result<[u8; N]> {
        match self.data.get(off..off.saturating_add(N)) {
            Some(b) => Ok(b.try_into().expect("N bytes")),
            None => fail(format!("blob read at {off} out of range"), at),
        }
    }

    pub(super) fn u32(&self, off: usize, at: Option<usize>) -> Result<u32> {
        let b = self.bytes::<4>(off, at)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub(super) fn u64(&self, off: usize, at: Option<usize>) -> Result<u64> {
        let b = self.bytes::<8>(off, at)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// An attr's name field (NUL-padded, at most 15 characters).
    pub(super) fn name_field(&self, off: usize, at: Option<usize>) -> Result<String> {
        let raw = self.bytes::<{ abi::BPF_OBJ_NAME_LEN }>(off, at)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }
}
