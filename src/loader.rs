//! The loader emitter: builds the loader program (instruction blob) and its
//! data blob record by record, in the order libbpf's `bpf_gen__*` calls come
//! in gen mode. Every blob reference is an offset into the data blob, loaded
//! with `ld_imm64 src=BPF_PSEUDO_MAP_IDX_VALUE`; every failure branch jumps to
//! the shared cleanup block at instruction 7.

use crate::error::{Error, Result};
use crate::insn::*;
use crate::loader_abi::*;
use crate::section_defs::map_type;

const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R8: u8 = 8;
const R6: u8 = 6;
const R7: u8 = 7;
const R9: u8 = 9;
const R10: u8 = 10;

/// A MAP_CREATE request as the emitter receives it.
#[derive(Debug, Clone, Default)]
pub struct MapCreate<'a> {
    pub map_type: u32,
    pub name: &'a str,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub numa_node: u32,
    pub map_extra: u64,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    /// struct_ops maps: the kernel's value struct (`bpf_struct_ops_<type>`),
    /// whose vmlinux type id the loader looks up at run time.
    pub vmlinux_value_type: Option<&'a str>,
    /// An ARENA map holding `__arena` globals but no `map_extra`: its user
    /// address comes from the skeleton, which reserves one before running
    /// the loader and passes it in the map descriptor's `initial_value`
    /// (the programs' references to the globals need it at load time).
    pub map_extra_from_ctx: bool,
}

/// A PROG_LOAD request as the emitter receives it.
#[derive(Debug, Clone, Default)]
pub struct ProgLoad<'a> {
    pub prog_type: u32,
    pub name: &'a str,
    pub license: &'a str,
    pub insns: &'a [u8],
    pub insn_cnt: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
    pub func_info: &'a [u8],
    pub func_info_rec_size: u32,
    pub func_info_cnt: u32,
    pub line_info: &'a [u8],
    pub line_info_rec_size: u32,
    pub line_info_cnt: u32,
    /// (name with prefix, BTF kind) of a BTF attach target looked up at run time.
    pub attach_target: Option<(String, u32)>,
    /// The skeleton slot (`progs.<name>`) that receives this program's fd.
    pub skel_slot: usize,
    /// Extern references the loader resolves at run time, in instruction order.
    pub ksym_relocs: Vec<KsymReloc>,
    /// CO-RE records (16 bytes each) for the kernel to apply.
    pub core_relos: Vec<u8>,
}

/// One `__ksym` / kfunc reference (`struct ksym_relo_desc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsymReloc {
    pub name: String,
    pub is_weak: bool,
    pub is_typeless: bool,
    pub is_ld64: bool,
    /// BTF kind looked up: VAR (14) or FUNC (12).
    pub kind: u32,
    pub insn_idx: usize,
}

/// First use of a symbol within one program (`struct ksym_desc`).
struct KsymDesc {
    name: String,
    kind: u32,
    is_ld64: bool,
    typeless: bool,
    /// Blob offset of the first patched instruction.
    insn: i32,
    /// fd_array slot of a kfunc's module BTF fd.
    off: i32,
    refs: u32,
}

/// Loader under construction.
pub struct LoaderGen {
    data: Vec<u8>,
    /// The loader's instructions, already in their little-endian wire
    /// format: `finish` hands this buffer over as the blob, no copy.
    insns: Vec<u8>,
    cleanup_label: usize,
    nr_maps: usize,
    nr_maps_total: usize,
    /// Map slots at the start of the fd array (64 as in libbpf, or more).
    map_slots: usize,
    /// More than 32 programs: program fds live in the data blob at this
    /// offset instead of the loader's stack (beyond libbpf 1.5, whose stack
    /// slots run out and whose loader the verifier then rejects).
    prog_fd_blob: Option<i32>,
    /// Skeleton slot for each loaded program, in load order.
    prog_slots: Vec<usize>,
    /// kfunc BTF fd slots in use by the current program.
    nr_fd_array: usize,
    /// libbpf's `gen_loader_opts.gen_hash` (signed loaders, libbpf 1.8): the
    /// loader checks the data blob's SHA-256 before anything else, and takes
    /// no map sizes or initial values from the (unsigned) skeleton ctx.
    gen_hash: bool,
    /// Target byte order big-endian (a `bpfeb` object, libbpf 1.8's
    /// `swapped_endian`): records the kernel reads from the blob (attrs, BTF,
    /// program instructions, func/line info, CO-RE records, keys) and the
    /// loader's own instructions are written big-endian; everything is
    /// computed little-endian first, as libbpf computes natively and swaps.
    big_endian: bool,
    /// Instruction index of each `r3 = <sha256 dword i>` ld_imm64 that
    /// `finish` patches (libbpf's `hash_insn_offset`, in insns not bytes).
    hash_insns: [usize; SHA256_DWORDS],
    error: Option<Error>,
}

/// Blob offset of the attr field at `off` of the attr at blob offset `attr`.
fn field(attr: i32, off: usize) -> i32 {
    attr + off as i32
}

/// An attr field's offset as an instruction's memory offset (from the attr's
/// address in a register).
fn field_off(off: usize) -> i16 {
    off as i16
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_name(buf: &mut [u8], off: usize, name: &str) {
    // libbpf_strlcpy into a 16-byte field: at most 15 bytes, NUL-terminated.
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    buf[off..off + n].copy_from_slice(&bytes[..n]);
}

impl LoaderGen {
    /// `bpf_gen__init`: fd array, stack-zeroing prologue, cleanup block.
    ///
    /// `nr_progs` counts every program of the object, `.text` functions
    /// included, like libbpf's `obj->nr_programs`. Up to 32 programs and 64
    /// maps the output is libbpf's byte for byte.
    pub fn new(nr_progs: usize, nr_maps: usize) -> LoaderGen {
        LoaderGen::with_hash(nr_progs, nr_maps, false)
    }

    /// [`LoaderGen::new`] with libbpf 1.8's `gen_hash` option: a loader
    /// for a signed light skeleton (`bpftool gen skeleton -L -S`).
    pub fn with_hash(nr_progs: usize, nr_maps: usize, gen_hash: bool) -> LoaderGen {
        LoaderGen::with_capacity(nr_progs, nr_maps, gen_hash, (4096, 256))
    }

    /// [`LoaderGen::with_hash`] with its blobs allocated once, at `capacity`
    /// (data bytes, instructions): an estimate of the output made before
    /// anything is written, so that the buffers need not grow.
    pub fn with_capacity(nr_progs: usize, nr_maps: usize, gen_hash: bool, capacity: (usize, usize)) -> LoaderGen {
        let map_slots = nr_maps.max(MIN_MAP_SLOTS);
        let mut g = LoaderGen {
            data: Vec::with_capacity(capacity.0),
            insns: Vec::with_capacity(capacity.1.saturating_mul(8)),
            cleanup_label: 0,
            nr_maps: 0,
            nr_maps_total: nr_maps,
            map_slots,
            prog_fd_blob: None,
            prog_slots: Vec::new(),
            nr_fd_array: 0,
            gen_hash,
            big_endian: false,
            hash_insns: [0; SHA256_DWORDS],
            error: None,
        };
        // Before anything is built: the last map descriptor (its 8-byte
        // initial_value field, the furthest any map access reaches) must be
        // reachable in the ctx. Program descriptors are checked as each
        // program comes (a `.text` function counted here takes none).
        if nr_maps > 0 {
            g.ctx_off(CTX_SIZE + MAP_DESC_SIZE * (nr_maps - 1) + 8);
        }
        g.add_zeroes((map_slots + KFUNC_SLOTS) * 4);
        if nr_progs > STACK_PROGS {
            g.prog_fd_blob = Some(g.add_zeroes(4 * nr_progs));
        }
        g.emit(Insn::mov64_reg(R6, R1));
        g.emit(Insn::mov64_reg(R1, R10));
        g.emit(Insn::alu64_imm(BPF_ADD, R1, -STACK_SIZE));
        g.emit(Insn::mov64_imm(R2, STACK_SIZE));
        g.emit(Insn::mov64_imm(R3, 0));
        g.emit(Insn::call(FN_PROBE_READ_KERNEL));
        // Stack words closed on cleanup: btf_fd, inner_map_fd and (when they
        // live on the stack) one per program.
        let stack_words = if g.prog_fd_blob.is_some() { 2 } else { 2 + nr_progs };
        let blob_progs = if g.prog_fd_blob.is_some() { nr_progs } else { 0 };
        let skip = stack_words * 3 + 2 + (nr_maps + blob_progs) * 6;
        g.emit_goto_forward(skip);
        g.cleanup_label = g.insn_cnt();
        // (Unless the prologue's jump already failed: nothing is emitted then.)
        debug_assert!(
            g.error.is_some() || g.cleanup_label == CLEANUP_LABEL,
            "the self-check expects the cleanup block at {CLEANUP_LABEL}"
        );
        for w in 0..stack_words {
            g.emit(Insn::ldx_mem(Size::W, R1, R10, (-STACK_SIZE + 4 * w as i32) as i16));
            g.emit(Insn::jmp_imm(BPF_JSLE, R1, 0, 1));
            g.emit(Insn::call(FN_SYS_CLOSE));
        }
        if let Some(base) = g.prog_fd_blob {
            for j in 0..nr_progs {
                g.emit_sys_close_blob(base + 4 * j as i32);
            }
        }
        for i in 0..nr_maps {
            g.emit_sys_close_blob(fd_array_off(i));
        }
        g.emit(Insn::mov64_reg(R0, R7));
        g.emit(Insn::exit());
        if gen_hash {
            g.emit_signature_match();
        }
        g
    }

    /// libbpf 1.8's `emit_signature_match`: fail with -EINVAL unless the
    /// loader's own map (`__loader.map`, map index 0, holding the data blob)
    /// is exclusive to this program and its kernel-computed SHA-256 equals
    /// the one patched in by [`LoaderGen::finish`]. Every mismatch branch
    /// lands on the cleanup block.
    fn emit_signature_match(&mut self) {
        self.emit2(Insn::ld_imm64_raw(R1, BPF_PSEUDO_MAP_IDX, 0, 0));
        self.emit(Insn::ldx_mem(Size::W, R2, R1, SHA256_DIGEST_LENGTH));
        self.emit(Insn::mov64_imm(R7, -EINVAL));
        self.emit_branch(Cond::Ne, R2, Rhs::Imm(1), self.cleanup_label);
        for i in 0..SHA256_DWORDS {
            self.emit2(Insn::ld_imm64_raw(R1, BPF_PSEUDO_MAP_IDX, 0, 0));
            self.emit(Insn::ldx_mem(Size::DW, R2, R1, (i * 8) as i16));
            self.hash_insns[i] = self.insn_cnt();
            self.emit2(Insn::ld_imm64_raw(R3, 0, 0, 0));
            self.emit(Insn::mov64_imm(R7, -EINVAL));
            self.emit_branch(Cond::Ne, R2, Rhs::Reg(R3), self.cleanup_label);
        }
    }

    /// Emit for a big-endian target (see the `big_endian` field).
    pub fn set_big_endian(&mut self, big: bool) {
        self.big_endian = big;
    }

    /// An attr in the target's byte order: every 32-bit field swapped for a
    /// big-endian target except the name bytes at `name` and the 64-bit field
    /// at `u64_at` (swapped whole). Pointer fields are zero here (the loader
    /// fills them at run time).
    fn attr_to_target(&self, attr: &mut [u8], name: Option<std::ops::Range<usize>>, u64_at: Option<usize>) {
        if !self.big_endian {
            return;
        }
        for w in (0..attr.len() / 4).map(|i| 4 * i) {
            let in_name = name.as_ref().is_some_and(|r| r.contains(&w));
            let in_u64 = u64_at.is_some_and(|o| w == o || w == o + 4);
            if !in_name && !in_u64 {
                attr[w..w + 4].reverse();
            }
        }
        if let Some(o) = u64_at {
            attr[o..o + 8].reverse();
        }
    }

    /// A 32-bit value (a map key) in the target's byte order.
    fn u32_to_target(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Records made of 32-bit words (func/line info, CO-RE records, keys)
    /// in the target's byte order.
    fn words_to_target<'b>(&self, words: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        if !self.big_endian {
            return std::borrow::Cow::Borrowed(words);
        }
        let mut v = words.to_vec();
        for w in v.chunks_exact_mut(4) {
            w.reverse();
        }
        std::borrow::Cow::Owned(v)
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// `gotol`'s 32-bit offset. Nothing we emit comes near it (the data blob
    /// bound keeps loaders far smaller); checked so that no value is ever
    /// truncated into an instruction.
    fn long_off(&mut self, off: i64) -> i32 {
        match i32::try_from(off) {
            Ok(v) => v,
            Err(_) => {
                self.fail(Error::unsupported(format!(
                    "loader jump offset {off} does not fit in 32 bits (object too large for one loader)"
                )));
                0
            }
        }
    }

    /// Instructions a branch emitted at `at` to `target` takes: one when the
    /// offset fits the 16-bit `off` (libbpf's form, so its bytes), else two
    /// (see [`LoaderGen::emit_branch`]).
    fn branch_len(at: usize, target: usize) -> usize {
        let off = target as i64 - at as i64 - 1;
        if i16::try_from(off).is_ok() { 1 } else { 2 }
    }

    /// `if dst <cond> rhs goto target`. Error branches go back to the cleanup
    /// block at the start, so a long loader's later ones lie beyond the 16-bit
    /// reach libbpf is limited to (it refuses such objects with ERANGE). Then
    /// the branch becomes the opposite condition skipping one instruction, and
    /// that instruction a `gotol` to the target: `if dst <!cond> rhs goto +1;
    /// gotol target`. Every offset is known here, as the target is behind us
    /// (or, for the prologue, computed from counts), so no later fix-ups.
    fn emit_branch(&mut self, cond: Cond, dst: u8, rhs: Rhs, target: usize) {
        let branch = |cond: Cond, off: i16| match rhs {
            Rhs::Imm(imm) => Insn::jmp_imm(cond.op(), dst, imm, off),
            Rhs::Reg(src) => Insn::new(BPF_JMP | cond.op() | BPF_X, dst, src, off, 0),
        };
        let at = self.insn_cnt() as i64;
        match i16::try_from(target as i64 - at - 1) {
            Ok(off) => self.emit(branch(cond, off)),
            Err(_) => {
                self.emit(branch(cond.negated(), 1));
                let off = self.long_off(target as i64 - (at + 1) - 1);
                self.emit(Insn::gotol(off));
            }
        }
    }

    /// `goto +skip`, a forward jump over `skip` instructions: `ja` when it
    /// fits 16 bits, else `gotol` (the prologue's jump over a cleanup block
    /// of more than 32,767 instructions: about 5,460 maps and programs).
    fn emit_goto_forward(&mut self, skip: usize) {
        match i16::try_from(skip) {
            Ok(off) => self.emit(Insn::jmp_imm(BPF_JA, 0, 0, off)),
            Err(_) => {
                let off = self.long_off(skip as i64);
                self.emit(Insn::gotol(off));
            }
        }
    }

    // Once generation has failed the output is discarded: stop growing it,
    // so an object that fails early cannot make us build a huge loader first
    // (hostile-input bound). Past the kernel's program size nothing could
    // load it: that is a failure too, which bounds every loader at 8 MB.
    #[inline]
    fn emit(&mut self, insn: Insn) {
        if self.room_for(1) {
            self.insns.extend_from_slice(&insn.to_bytes());
        }
    }

    #[inline]
    fn emit2(&mut self, pair: [Insn; 2]) {
        if self.room_for(2) {
            let (a, b) = (pair[0].to_bytes(), pair[1].to_bytes());
            let mut both = [0u8; 16];
            both[..8].copy_from_slice(&a);
            both[8..].copy_from_slice(&b);
            self.insns.extend_from_slice(&both);
        }
    }

    /// Instructions emitted so far.
    fn insn_cnt(&self) -> usize {
        self.insns.len() / 8
    }

    #[inline]
    fn room_for(&mut self, n: usize) -> bool {
        if self.error.is_none() && self.insn_cnt() + n <= MAX_LOADER_INSNS {
            return true;
        }
        self.no_room();
        false
    }

    #[cold]
    #[inline(never)]
    fn no_room(&mut self) {
        if self.error.is_none() {
            self.fail(Error::unsupported(format!(
                "loader would exceed the kernel's limit of {MAX_LOADER_INSNS} instructions for one program \
                 (too many programs, maps or relocations for one loader)"
            )));
        }
    }

    /// `add_data`: append 8-byte aligned, return the offset before appending.
    fn add_data(&mut self, bytes: &[u8]) -> i32 {
        let off = self.data.len();
        if !self.data_fits(bytes.len()) {
            return 0;
        }
        let padded = bytes.len().div_ceil(8) * 8;
        self.data.extend_from_slice(bytes);
        self.data.resize(off + padded, 0);
        off as i32
    }

    /// `add_data` of `s` and its terminating NUL, without building them in a
    /// buffer first (the NUL is the first byte of the zero padding).
    fn add_cstr(&mut self, s: &str) -> i32 {
        let off = self.data.len();
        let n = s.len() + 1;
        if !self.data_fits(n) {
            return 0;
        }
        self.data.extend_from_slice(s.as_bytes());
        self.data.resize(off + n.div_ceil(8) * 8, 0);
        off as i32
    }

    fn add_zeroes(&mut self, n: usize) -> i32 {
        let off = self.data.len();
        if !self.data_fits(n) {
            return 0;
        }
        let padded = n.div_ceil(8) * 8;
        self.data.resize(off + padded, 0);
        off as i32
    }

    /// Hostile-input bound: the blob, and with it every data offset, stays
    /// under [`MAX_DATA_BLOB`] (so offsets never wrap an i32), checked before
    /// anything is allocated; past it the generation fails and nothing more
    /// is appended.
    fn data_fits(&mut self, n: usize) -> bool {
        let fits = self.error.is_none()
            && n.checked_next_multiple_of(8)
                .and_then(|p| p.checked_add(self.data.len()))
                .is_some_and(|end| end <= MAX_DATA_BLOB);
        if !fits && self.error.is_none() {
            self.fail(Error::unsupported(format!(
                "loader data blob would exceed {} MiB (the light skeleton embeds it as a C string of 2-4 times that size)",
                MAX_DATA_BLOB >> 20
            )));
        }
        fits
    }

    fn ld_blob(&mut self, reg: u8, off: i32) {
        self.emit2(Insn::ld_imm64_raw(reg, BPF_PSEUDO_MAP_IDX_VALUE, 0, off));
    }

    fn rel_store(&mut self, off: i32, data: i32) {
        self.ld_blob(R0, data);
        self.ld_blob(R1, off);
        self.emit(Insn::stx_mem(Size::DW, R1, R0, 0));
    }

    fn blob2blob(&mut self, off: i32, size: u32, src: i32) {
        self.ld_blob(R2, src);
        self.emit(Insn::ldx_mem(Size::from_bytes(size), R0, R2, 0));
        self.ld_blob(R1, off);
        self.emit(Insn::stx_mem(Size::from_bytes(size), R1, R0, 0));
    }

    fn blob2ctx(&mut self, ctx_off: i16, size: u32, src: i32) {
        self.ld_blob(R1, src);
        self.emit(Insn::ldx_mem(Size::from_bytes(size), R0, R1, 0));
        self.emit(Insn::stx_mem(Size::from_bytes(size), R6, R0, ctx_off));
    }

    fn ctx2blob(&mut self, off: i32, size: u32, ctx_off: i16, nonzero: bool) {
        self.emit(Insn::ldx_mem(Size::from_bytes(size), R0, R6, ctx_off));
        if nonzero {
            self.emit(Insn::jmp_imm(BPF_JEQ, R0, 0, 3));
        }
        self.ld_blob(R1, off);
        self.emit(Insn::stx_mem(Size::from_bytes(size), R1, R0, 0));
    }

    fn stack2blob(&mut self, off: i32, size: u32, stack_off: i16) {
        self.emit(Insn::ldx_mem(Size::from_bytes(size), R0, R10, stack_off));
        self.ld_blob(R1, off);
        self.emit(Insn::stx_mem(Size::from_bytes(size), R1, R0, 0));
    }

    fn stack2ctx(&mut self, ctx_off: i16, size: u32, stack_off: i16) {
        self.emit(Insn::ldx_mem(Size::from_bytes(size), R0, R10, stack_off));
        self.emit(Insn::stx_mem(Size::from_bytes(size), R6, R0, ctx_off));
    }

    fn sys_bpf(&mut self, cmd: i32, attr: i32, attr_size: usize) {
        self.emit(Insn::mov64_imm(R1, cmd));
        self.ld_blob(R2, attr);
        self.emit(Insn::mov64_imm(R3, attr_size as i32));
        self.emit(Insn::call(FN_SYS_BPF));
        self.emit(Insn::mov64_reg(R7, R0));
    }

    /// `if r7 s< 0 goto cleanup`: the last `bpf()` or lookup failed.
    fn check_err(&mut self) {
        self.emit_branch(Cond::Slt, R7, Rhs::Imm(0), self.cleanup_label);
    }

    /// Instructions [`LoaderGen::check_err`] takes when emitted at `at`, for
    /// the branches that skip it.
    fn check_err_len(&self, at: usize) -> usize {
        LoaderGen::branch_len(at, self.cleanup_label)
    }

    fn sys_close_tail(&mut self) {
        self.emit(Insn::jmp_imm(BPF_JSLE, R1, 0, 2));
        self.emit(Insn::mov64_reg(R9, R1));
        self.emit(Insn::call(FN_SYS_CLOSE));
    }

    fn emit_sys_close_stack(&mut self, stack_off: i16) {
        self.emit(Insn::ldx_mem(Size::W, R1, R10, stack_off));
        self.sys_close_tail();
    }

    fn emit_sys_close_blob(&mut self, blob_off: i32) {
        self.ld_blob(R0, blob_off);
        self.emit(Insn::ldx_mem(Size::W, R1, R0, 0));
        self.sys_close_tail();
    }

    /// `bpf_gen__load_btf`.
    pub fn load_btf(&mut self, raw: &[u8]) {
        let btf = if self.big_endian {
            match crate::btf::byteorder::swap_btf(raw, false) {
                Ok(be) => self.add_data(&be),
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        } else {
            self.add_data(raw)
        };
        let mut attr = [0u8; BTF_LOAD_ATTR_SIZE];
        put_u32(&mut attr, btf_load::BTF_SIZE, raw.len() as u32);
        self.attr_to_target(&mut attr, None, None);
        let a = self.add_data(&attr);
        self.ctx2blob(field(a, btf_load::BTF_LOG_LEVEL), 4, CTX_LOG_LEVEL, false);
        self.ctx2blob(field(a, btf_load::BTF_LOG_SIZE), 4, CTX_LOG_SIZE, false);
        self.ctx2blob(field(a, btf_load::BTF_LOG_BUF), 8, CTX_LOG_BUF, false);
        self.rel_store(field(a, btf_load::BTF), btf);
        self.sys_bpf(BPF_BTF_LOAD, a, BTF_LOAD_ATTR_SIZE);
        self.check_err();
        self.emit(Insn::stx_mem(Size::W, R10, R7, STACK_BTF_FD));
    }

    /// `bpf_gen__map_create`; `map_idx` None creates the inner map template.
    pub fn map_create(&mut self, m: &MapCreate, map_idx: Option<usize>) {
        use map_create as f;
        let mut attr = [0u8; MAP_CREATE_ATTR_SIZE];
        put_u32(&mut attr, f::MAP_TYPE, m.map_type);
        put_u32(&mut attr, f::KEY_SIZE, m.key_size);
        put_u32(&mut attr, f::VALUE_SIZE, m.value_size);
        put_u32(&mut attr, f::MAX_ENTRIES, m.max_entries);
        put_u32(&mut attr, f::MAP_FLAGS, m.map_flags);
        put_u32(&mut attr, f::NUMA_NODE, m.numa_node);
        put_name(&mut attr, f::MAP_NAME, m.name);
        put_u32(&mut attr, f::BTF_KEY_TYPE_ID, m.btf_key_type_id);
        put_u32(&mut attr, f::BTF_VALUE_TYPE_ID, m.btf_value_type_id);
        attr[f::MAP_EXTRA..f::MAP_EXTRA + 8].copy_from_slice(&m.map_extra.to_le_bytes());
        let name = f::MAP_NAME..f::MAP_NAME + BPF_OBJ_NAME_LEN;
        self.attr_to_target(&mut attr, Some(name), Some(f::MAP_EXTRA));
        let a = self.add_data(&attr);
        if m.btf_value_type_id != 0 {
            self.stack2blob(field(a, f::BTF_FD), 4, STACK_BTF_FD);
        }
        if let Some(vtype) = m.vmlinux_value_type {
            // The kernel resolves a struct_ops value type through the
            // object's BTF fd, so that fd is passed as well.
            self.stack2blob(field(a, f::BTF_FD), 4, STACK_BTF_FD);
            self.emit_btf_lookup(vtype, crate::btf::kind::STRUCT);
            self.check_err();
            self.ld_blob(R0, a);
            self.emit(Insn::stx_mem(Size::W, R0, R7, field_off(f::BTF_VMLINUX_VALUE_TYPE_ID)));
        }
        let is_mim = map_type::is_map_in_map(m.map_type);
        if is_mim {
            self.stack2blob(field(a, f::INNER_MAP_FD), 4, STACK_INNER_MAP_FD);
        }
        if let Some(idx) = map_idx.filter(|_| m.map_extra_from_ctx) {
            let addr = self.ctx_off(CTX_SIZE + MAP_DESC_SIZE * idx + MAP_DESC_INITIAL_VALUE);
            self.ctx2blob(field(a, f::MAP_EXTRA), 8, addr, true);
        }
        // A signed loader keeps the signed max_entries (libbpf 1.8).
        if let Some(idx) = map_idx.filter(|_| !self.gen_hash) {
            let max_entries = self.ctx_off(CTX_SIZE + MAP_DESC_SIZE * idx + MAP_DESC_MAX_ENTRIES);
            self.ctx2blob(field(a, f::MAX_ENTRIES), 4, max_entries, true);
        }
        self.sys_bpf(BPF_MAP_CREATE, a, MAP_CREATE_ATTR_SIZE);
        self.check_err();
        match map_idx {
            None => self.emit(Insn::stx_mem(Size::W, R10, R7, STACK_INNER_MAP_FD)),
            Some(idx) if idx != self.nr_maps => {
                self.fail(Error::unsupported(format!("map index {idx} created out of order")));
                return;
            }
            Some(_) => {
                let idx = self.nr_maps;
                self.nr_maps += 1;
                self.ld_blob(R1, fd_array_off(idx));
                self.emit(Insn::stx_mem(Size::W, R1, R7, 0));
            }
        }
        if is_mim {
            self.emit_sys_close_stack(STACK_INNER_MAP_FD);
        }
    }

    /// A map the object declares but the loader does not create
    /// (`SEC("?.struct_ops")`): its descriptor's fd stays 0.
    pub fn skip_map(&mut self, map_idx: usize) {
        if map_idx != self.nr_maps {
            self.fail(Error::unsupported(format!("map index {map_idx} created out of order")));
            return;
        }
        self.nr_maps += 1;
    }

    /// Copy the fd of the `load_idx`-th loaded program to blob offset `dst`.
    fn prog_fd_to_blob(&mut self, dst: i32, load_idx: usize) {
        match self.prog_fd_blob {
            Some(base) => self.blob2blob(dst, 4, base + 4 * load_idx as i32),
            None => self.stack2blob(dst, 4, stack_prog_fd(load_idx)),
        }
    }

    /// `bpf_gen__map_update_elem` with key 0: the initial image of a global-data map.
    pub fn map_update_elem(&mut self, map_idx: usize, value: &[u8]) {
        let v = self.add_data(value);
        let key = self.add_data(&0u32.to_le_bytes());
        // A signed loader keeps the signed image: no override from the
        // skeleton's initial_value (libbpf 1.8).
        if !self.gen_hash {
            let initial_value = self.ctx_off(CTX_SIZE + MAP_DESC_SIZE * map_idx + MAP_DESC_INITIAL_VALUE);
            self.emit(Insn::ldx_mem(Size::DW, R3, R6, initial_value));
            self.emit(Insn::jmp_imm(BPF_JEQ, R3, 0, 8));
            self.ld_blob(R1, v);
            self.emit(Insn::mov64_imm(R2, value.len() as i32));
            self.emit(Insn::ldx_mem(Size::W, R0, R6, CTX_FLAGS));
            self.emit(Insn::jmp_imm(BPF_JSET, R0, BPF_SKEL_KERNEL, 2));
            self.emit(Insn::call(FN_COPY_FROM_USER));
            self.emit(Insn::jmp_imm(BPF_JA, 0, 0, 1));
            self.emit(Insn::call(FN_PROBE_READ_KERNEL));
        }
        let a = self.add_zeroes(MAP_UPDATE_ATTR_SIZE);
        self.blob2blob(field(a, map_update::MAP_FD), 4, fd_array_off(map_idx));
        self.rel_store(field(a, map_update::KEY), key);
        self.rel_store(field(a, map_update::VALUE), v);
        self.sys_bpf(BPF_MAP_UPDATE_ELEM, a, MAP_UPDATE_ATTR_SIZE);
        self.check_err();
    }

    /// A ctx offset for a load or store. A real limit, not one of our
    /// encoding: the verifier lets a program touch its ctx only through the
    /// unmodified ctx pointer plus the instruction's signed 16-bit `off` (a
    /// moved ctx pointer is refused), so the loader reaches the skeleton's
    /// first 32 KiB only, and it must write every map and program fd there.
    fn ctx_off(&mut self, off: usize) -> i16 {
        match i16::try_from(off) {
            Ok(v) => v,
            Err(_) => {
                self.fail(Error::unsupported(format!(
                    "skeleton context offset {off} does not fit in 16 bits: a loader reaches the skeleton's \
                     map and program descriptors ({CTX_SIZE} + {MAP_DESC_SIZE} * maps + {PROG_DESC_SIZE} * \
                     programs bytes) only through 16-bit instruction offsets, up to 32767 \
                     (too many maps and programs for one light skeleton)"
                )));
                0
            }
        }
    }

    /// Store a loaded program's fd in a PROG_ARRAY slot (static `.values`
    /// of a prog-array; libbpf 1.5 refuses these in gen mode).
    pub fn populate_prog_array(&mut self, map_idx: usize, slot: u32, load_idx: usize) {
        let key = self.add_data(&self.u32_to_target(slot));
        let value = self.add_zeroes(4);
        let a = self.add_zeroes(MAP_UPDATE_ATTR_SIZE);
        self.prog_fd_to_blob(value, load_idx);
        self.blob2blob(field(a, map_update::MAP_FD), 4, fd_array_off(map_idx));
        self.rel_store(field(a, map_update::KEY), key);
        self.rel_store(field(a, map_update::VALUE), value);
        self.sys_bpf(BPF_MAP_UPDATE_ELEM, a, MAP_UPDATE_ATTR_SIZE);
        self.check_err();
    }

    /// `bpf_gen__populate_outer_map`: store an inner map's fd in an outer slot.
    pub fn populate_outer_map(&mut self, outer: usize, slot: u32, inner: usize) {
        let key = self.add_data(&self.u32_to_target(slot));
        let a = self.add_zeroes(MAP_UPDATE_ATTR_SIZE);
        self.blob2blob(field(a, map_update::MAP_FD), 4, fd_array_off(outer));
        self.rel_store(field(a, map_update::KEY), key);
        self.rel_store(field(a, map_update::VALUE), fd_array_off(inner));
        self.sys_bpf(BPF_MAP_UPDATE_ELEM, a, MAP_UPDATE_ATTR_SIZE);
        self.check_err();
    }

    /// `bpf_gen__map_freeze`.
    pub fn map_freeze(&mut self, map_idx: usize) {
        let a = self.add_zeroes(MAP_FREEZE_ATTR_SIZE);
        self.blob2blob(field(a, map_freeze::MAP_FD), 4, fd_array_off(map_idx));
        self.sys_bpf(BPF_MAP_FREEZE, a, MAP_FREEZE_ATTR_SIZE);
        self.check_err();
    }

    /// `bpf_gen__prog_load`.
    pub fn prog_load(&mut self, p: &ProgLoad) {
        // Its fd goes to its descriptor in the end: fail now if out of reach.
        self.ctx_off(CTX_SIZE + MAP_DESC_SIZE * self.nr_maps_total + PROG_DESC_SIZE * p.skel_slot);
        let license_off = self.add_cstr(p.license);
        let insns_off = if self.big_endian {
            let mut be = p.insns.to_vec();
            Insn::bswap_wire(&mut be);
            self.add_data(&be)
        } else {
            self.add_data(p.insns)
        };
        // Borrowed for a little-endian target: no copy.
        let func_info = self.words_to_target(p.func_info);
        let func_info = self.add_data(&func_info);
        let line_info = self.words_to_target(p.line_info);
        let line_info = self.add_data(&line_info);
        let core_relos = self.words_to_target(&p.core_relos);
        let core_relos = self.add_data(&core_relos);
        use prog_load as f;
        let mut attr = [0u8; PROG_LOAD_ATTR_SIZE];
        put_u32(&mut attr, f::PROG_TYPE, p.prog_type);
        put_u32(&mut attr, f::INSN_CNT, p.insn_cnt);
        put_u32(&mut attr, f::PROG_FLAGS, p.prog_flags);
        put_name(&mut attr, f::PROG_NAME, p.name);
        put_u32(&mut attr, f::EXPECTED_ATTACH_TYPE, p.expected_attach_type);
        put_u32(&mut attr, f::FUNC_INFO_REC_SIZE, p.func_info_rec_size);
        put_u32(&mut attr, f::FUNC_INFO_CNT, p.func_info_cnt);
        put_u32(&mut attr, f::LINE_INFO_REC_SIZE, p.line_info_rec_size);
        put_u32(&mut attr, f::LINE_INFO_CNT, p.line_info_cnt);
        if p.attach_target.is_some() {
            // a placeholder, replaced by the run-time lookup's result
            put_u32(&mut attr, f::ATTACH_BTF_ID, 1);
        }
        put_u32(&mut attr, f::CORE_RELO_CNT, (p.core_relos.len() / 16) as u32);
        put_u32(&mut attr, f::CORE_RELO_REC_SIZE, 16);
        self.attr_to_target(&mut attr, Some(f::PROG_NAME..f::PROG_NAME + BPF_OBJ_NAME_LEN), None);
        let a = self.add_data(&attr);
        self.rel_store(field(a, f::LICENSE), license_off);
        self.rel_store(field(a, f::INSNS), insns_off);
        self.rel_store(field(a, f::FUNC_INFO), func_info);
        self.rel_store(field(a, f::LINE_INFO), line_info);
        self.rel_store(field(a, f::CORE_RELOS), core_relos);
        self.rel_store(field(a, f::FD_ARRAY), 0);
        self.ctx2blob(field(a, f::LOG_LEVEL), 4, CTX_LOG_LEVEL, false);
        self.ctx2blob(field(a, f::LOG_SIZE), 4, CTX_LOG_SIZE, false);
        self.ctx2blob(field(a, f::LOG_BUF), 8, CTX_LOG_BUF, false);
        self.stack2blob(field(a, f::PROG_BTF_FD), 4, STACK_BTF_FD);
        if let Some((target, kind)) = &p.attach_target {
            self.emit_btf_lookup(target, *kind);
            self.check_err();
            self.ld_blob(R0, a);
            self.emit(Insn::stx_mem(Size::W, R0, R7, field_off(f::ATTACH_BTF_ID)));
            self.emit(Insn::alu64_imm(BPF_RSH, R7, 32));
            self.emit(Insn::stx_mem(Size::W, R0, R7, field_off(f::ATTACH_BTF_OBJ_FD)));
        }
        let mut ksyms: Vec<KsymDesc> = Vec::new();
        for r in &p.ksym_relocs {
            self.emit_relo(r, insns_off, &mut ksyms);
        }
        self.sys_bpf(BPF_PROG_LOAD, a, PROG_LOAD_ATTR_SIZE);
        self.cleanup_relos(&ksyms);
        if p.attach_target.is_some() {
            self.emit_sys_close_blob(field(a, prog_load::ATTACH_BTF_OBJ_FD));
        }
        self.check_err();
        let j = self.prog_slots.len();
        match self.prog_fd_blob {
            Some(base) => {
                self.ld_blob(R1, base + 4 * j as i32);
                self.emit(Insn::stx_mem(Size::W, R1, R7, 0));
            }
            None => self.emit(Insn::stx_mem(Size::W, R10, R7, stack_prog_fd(j))),
        }
        self.prog_slots.push(p.skel_slot);
    }

    /// `bpf_btf_find_by_name_kind(name, kind)` into r7: the type id in the
    /// low 32 bits, a module BTF fd (or 0 for vmlinux) in the high 32 bits.
    fn emit_btf_lookup(&mut self, name: &str, kind: u32) {
        let len = name.len() as i32 + 1;
        let name_off = self.add_cstr(name);
        self.ld_blob(R1, name_off);
        self.emit(Insn::mov64_imm(R2, len));
        self.emit(Insn::mov64_imm(R3, kind as i32));
        self.emit(Insn::mov64_imm(R4, 0));
        self.emit(Insn::call(FN_BTF_FIND_BY_NAME_KIND));
        self.emit(Insn::mov64_reg(R7, R0));
    }

    fn emit_find_by_name_kind(&mut self, r: &KsymReloc) {
        self.emit_btf_lookup(&r.name, r.kind);
    }

    /// One extern reference: r8 points at the instruction in the blob.
    fn emit_relo(&mut self, r: &KsymReloc, insns_off: i32, ksyms: &mut Vec<KsymDesc>) {
        let insn = insns_off + 8 * r.insn_idx as i32;
        self.ld_blob(R8, insn);
        let existing = ksyms
            .iter()
            .position(|d| d.kind == r.kind && d.is_ld64 == r.is_ld64 && d.name == r.name);
        let (desc, first) = match existing {
            Some(i) => {
                ksyms[i].refs += 1;
                (i, Some(ksyms[i].insn))
            }
            None => {
                ksyms.push(KsymDesc {
                    name: r.name.clone(),
                    kind: r.kind,
                    is_ld64: r.is_ld64,
                    typeless: false,
                    insn,
                    off: 0,
                    refs: 1,
                });
                (ksyms.len() - 1, None)
            }
        };
        if !r.is_ld64 {
            self.emit_relo_kfunc(r, insn, first, &mut ksyms[desc]);
        } else if r.is_typeless {
            if first.is_none() {
                ksyms[desc].typeless = true;
            }
            self.emit_relo_typeless(r, insn, first);
        } else {
            self.emit_relo_typed(r, insn, first);
        }
    }

    fn emit_relo_kfunc(&mut self, r: &KsymReloc, insn: i32, first: Option<i32>, desc: &mut KsymDesc) {
        if let Some(first) = first {
            self.blob2blob(insn + INSN_IMM_OFFSET as i32, 4, first + INSN_IMM_OFFSET as i32);
            self.blob2blob(insn + INSN_OFF_OFFSET as i32, 2, first + INSN_OFF_OFFSET as i32);
            return;
        }
        self.emit_find_by_name_kind(r);
        if !r.is_weak {
            self.check_err();
        }
        let slot = if self.nr_fd_array == KFUNC_SLOTS {
            // All fd_array slots taken: spill into a fresh blob word.
            (self.add_zeroes(4) - fd_array_off(0)) / 4
        } else {
            self.nr_fd_array += 1;
            (self.map_slots + self.nr_fd_array - 1) as i32
        };
        if slot > i16::MAX as i32 {
            self.fail(Error::unsupported(format!(
                "BTF fd off {slot} for kfunc {} exceeds INT16_MAX, cannot process relocation",
                r.name
            )));
            return;
        }
        desc.off = slot;
        self.emit(Insn::jmp_imm(BPF_JSGE, R7, 0, 3));
        self.emit(Insn::st_mem(Size::W, R8, INSN_IMM_OFFSET, 0));
        self.emit(Insn::st_mem(Size::H, R8, INSN_OFF_OFFSET, 0));
        self.emit(Insn::jmp_imm(BPF_JA, 0, 0, 10));
        self.emit(Insn::stx_mem(Size::W, R8, R7, INSN_IMM_OFFSET));
        self.emit(Insn::mov64_reg(R9, R7));
        self.emit(Insn::alu64_imm(BPF_RSH, R9, 32));
        self.ld_blob(R0, fd_array_off(slot as usize));
        self.emit(Insn::stx_mem(Size::W, R0, R9, 0));
        self.emit(Insn::jmp_imm(BPF_JNE, R9, 0, 2));
        self.emit(Insn::st_mem(Size::H, R8, INSN_OFF_OFFSET, 0));
        self.emit(Insn::jmp_imm(BPF_JA, 0, 0, 1));
        self.emit(Insn::st_mem(Size::H, R8, INSN_OFF_OFFSET, slot));
    }

    fn emit_relo_typeless(&mut self, r: &KsymReloc, insn: i32, first: Option<i32>) {
        if let Some(first) = first {
            self.blob2blob(insn + INSN_IMM_OFFSET as i32, 4, first + INSN_IMM_OFFSET as i32);
            self.blob2blob(
                insn + LD_IMM64_IMM_HI_OFFSET as i32,
                4,
                first + LD_IMM64_IMM_HI_OFFSET as i32,
            );
            return;
        }
        let len = r.name.len() as i32 + 1;
        let name_off = self.add_cstr(&r.name);
        let res_off = self.add_zeroes(8);
        self.ld_blob(R1, name_off);
        self.emit(Insn::mov64_imm(R2, len));
        self.emit(Insn::mov64_imm(R3, 0));
        self.ld_blob(R4, res_off);
        self.emit(Insn::mov64_reg(R7, R4));
        self.emit(Insn::call(FN_KALLSYMS_LOOKUP_NAME));
        self.emit(Insn::ldx_mem(Size::DW, R9, R7, 0));
        self.emit(Insn::mov64_reg(R7, R0));
        // A missing symbol (-ENOENT) is not an error here: skip the check,
        // one instruction or, in a long loader, two.
        let skip = self.check_err_len(self.insn_cnt() + 1) as i16;
        self.emit(Insn::jmp_imm(BPF_JEQ, R7, -ENOENT, skip));
        self.check_err();
        self.emit(Insn::stx_mem(Size::W, R8, R9, INSN_IMM_OFFSET));
        self.emit(Insn::alu64_imm(BPF_RSH, R9, 32));
        self.emit(Insn::stx_mem(Size::W, R8, R9, LD_IMM64_IMM_HI_OFFSET));
    }

    fn emit_relo_typed(&mut self, r: &KsymReloc, insn: i32, first: Option<i32>) {
        if let Some(first) = first {
            self.blob2blob(
                insn + LD_IMM64_IMM_HI_OFFSET as i32,
                4,
                first + LD_IMM64_IMM_HI_OFFSET as i32,
            );
            self.blob2blob(insn + INSN_IMM_OFFSET as i32, 4, first + INSN_IMM_OFFSET as i32);
            self.emit(Insn::jmp_imm(BPF_JNE, R0, 0, 3));
        } else {
            self.emit_find_by_name_kind(r);
            if !r.is_weak {
                self.check_err();
            }
            self.emit(Insn::jmp_imm(BPF_JSGE, R7, 0, 3));
            self.emit(Insn::st_mem(Size::W, R8, INSN_IMM_OFFSET, 0));
            self.emit(Insn::st_mem(Size::W, R8, LD_IMM64_IMM_HI_OFFSET, 0));
            self.emit(Insn::jmp_imm(BPF_JA, 0, 0, 4));
            self.emit(Insn::stx_mem(Size::W, R8, R7, INSN_IMM_OFFSET));
            self.emit(Insn::alu64_imm(BPF_RSH, R7, 32));
            self.emit(Insn::stx_mem(Size::W, R8, R7, LD_IMM64_IMM_HI_OFFSET));
            self.emit(Insn::jmp_imm(BPF_JA, 0, 0, 3));
        }
        // Unresolved weak ksym: clear src_reg so it loads as a plain 0.
        self.emit(Insn::ldx_mem(Size::B, R9, R8, INSN_REGS_OFFSET));
        // Keep dst_reg, clear src_reg: its nibble is the high one in a
        // little-endian instruction, the low one in a big-endian one.
        let keep_dst = if self.big_endian { 0xf0 } else { 0x0f };
        self.emit(Insn::alu32_imm(BPF_AND, R9, keep_dst));
        self.emit(Insn::stx_mem(Size::B, R8, R9, INSN_REGS_OFFSET));
    }

    /// Close the BTF fds the lookups returned (module BTFs) once PROG_LOAD ran.
    fn cleanup_relos(&mut self, ksyms: &[KsymDesc]) {
        for d in ksyms {
            if d.is_ld64 && !d.typeless {
                self.emit_sys_close_blob(d.insn + LD_IMM64_IMM_HI_OFFSET as i32);
            } else if !d.is_ld64 {
                self.emit_sys_close_blob(fd_array_off(d.off as usize));
                if (d.off as usize) < self.map_slots + KFUNC_SLOTS {
                    self.nr_fd_array -= 1;
                }
            }
        }
    }

    /// `bpf_gen__finish`: hand fds to the skeleton and return the two blobs.
    pub fn finish(mut self) -> Result<(Vec<u8>, Vec<u8>)> {
        if self.nr_maps != self.nr_maps_total {
            self.fail(Error::unsupported(format!(
                "nr_maps {}/{} mismatch",
                self.nr_maps_total, self.nr_maps
            )));
        }
        self.emit_sys_close_stack(STACK_BTF_FD);
        let maps_end = CTX_SIZE + MAP_DESC_SIZE * self.nr_maps;
        for (j, &slot) in self.prog_slots.clone().iter().enumerate() {
            let ctx_off = self.ctx_off(maps_end + PROG_DESC_SIZE * slot);
            match self.prog_fd_blob {
                Some(base) => self.blob2ctx(ctx_off, 4, base + 4 * j as i32),
                None => self.stack2ctx(ctx_off, 4, stack_prog_fd(j)),
            }
        }
        for i in 0..self.nr_maps {
            let ctx_off = self.ctx_off(CTX_SIZE + MAP_DESC_SIZE * i);
            self.blob2ctx(ctx_off, 4, fd_array_off(i));
        }
        self.emit(Insn::mov64_imm(R0, 0));
        self.emit(Insn::exit());
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.gen_hash {
            self.patch_data_hash();
        }
        // The instructions were written in their wire format: the buffer is
        // the blob (no copy).
        let mut insns = std::mem::take(&mut self.insns);
        if self.big_endian {
            Insn::bswap_wire(&mut insns);
        }
        Ok((self.data, insns))
    }
}

impl LoaderGen {
    /// libbpf 1.8's `compute_sha_update_offsets`: the SHA-256 of the final
    /// data blob into the signature-match ld_imm64s, digest dword i (read as
    /// a host u64, then `tgt_endian`) split over the pair's two imm fields.
    /// On little-endian the pair's imm bytes are digest bytes 8i..8i+7 in
    /// order; on big-endian (after the final instruction swap) the pair's
    /// 64-bit value read big-endian is those bytes read big-endian.
    fn patch_data_hash(&mut self) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&self.data);
        for (i, &at) in self.hash_insns.iter().enumerate() {
            let dw = u64::from_le_bytes(digest[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            let dw = if self.big_endian { dw.swap_bytes() } else { dw };
            // imm is bytes 4..8 of each instruction (little-endian here)
            self.insns[8 * at + 4..8 * at + 8].copy_from_slice(&(dw as u32).to_le_bytes());
            self.insns[8 * at + 12..8 * at + 16].copy_from_slice(&((dw >> 32) as u32).to_le_bytes());
        }
    }
}

/// The conditions the loader branches to its cleanup block on, each with
/// its negation (a long branch is the negated one skipping a `gotol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Eq,
    Ne,
    Slt,
    Sge,
}

impl Cond {
    fn op(self) -> u8 {
        match self {
            Cond::Eq => BPF_JEQ,
            Cond::Ne => BPF_JNE,
            Cond::Slt => BPF_JSLT,
            Cond::Sge => BPF_JSGE,
        }
    }

    fn negated(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Slt => Cond::Sge,
            Cond::Sge => Cond::Slt,
        }
    }
}

/// A branch's right-hand side: an immediate (`BPF_K`) or a register (`BPF_X`).
#[derive(Debug, Clone, Copy)]
enum Rhs {
    Imm(i32),
    Reg(u8),
}

fn fd_array_off(idx: usize) -> i32 {
    (idx * 4) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generator whose next instruction goes at `at` (filler stands for
    /// the records a large object would have emitted before).
    fn at(at: usize) -> LoaderGen {
        let mut g = LoaderGen::new(0, 0);
        assert_eq!(g.cleanup_label, CLEANUP_LABEL);
        let fill = Insn::mov64_imm(R0, 0).to_bytes();
        while g.insn_cnt() < at {
            g.insns.extend_from_slice(&fill);
        }
        g
    }

    /// The instructions, decoded from the wire bytes the generator keeps.
    fn ins(g: &LoaderGen) -> Vec<Insn> {
        g.insns.chunks_exact(8).map(Insn::from_bytes).collect()
    }

    fn tail(g: &LoaderGen, n: usize) -> Vec<Insn> {
        let all = ins(g);
        all[all.len() - n..].to_vec()
    }

    /// Where the jump at `pc` lands, for either form.
    fn target(g: &LoaderGen, pc: usize) -> i64 {
        let i = Insn::from_bytes(&g.insns[8 * pc..8 * pc + 8]);
        let off = if i.code == BPF_GOTOL {
            i.imm as i64
        } else {
            i.off as i64
        };
        pc as i64 + 1 + off
    }

    #[test]
    fn error_branch_within_16_bits_is_libbpfs() {
        // At 32774 the offset back to insn 7 is -32768, the last that fits.
        let mut g = at(32774);
        g.check_err();
        assert_eq!(tail(&g, 1), [Insn::jmp_imm(BPF_JSLT, R7, 0, -32768)]);
    }

    #[test]
    fn error_branch_beyond_16_bits_negates_over_gotol() {
        let mut g = at(32775);
        g.check_err();
        // if r7 s>= 0 goto +1; gotol 7
        assert_eq!(tail(&g, 2), [Insn::jmp_imm(BPF_JSGE, R7, 0, 1), Insn::gotol(-32770)]);
        assert_eq!(target(&g, 32776), CLEANUP_LABEL as i64);
        assert_eq!(g.insns[8 * 32776..8 * 32777], [0x06, 0, 0, 0, 0xfe, 0x7f, 0xff, 0xff]);
        assert!(g.error.is_none());
    }

    #[test]
    fn branch_over_the_error_check_skips_its_long_form() {
        let r = KsymReloc {
            name: "sym".into(),
            is_weak: false,
            is_typeless: true,
            is_ld64: true,
            kind: 0,
            insn_idx: 0,
        };
        for (start, len) in [(100usize, 1i16), (40_000, 2)] {
            let mut g = at(start);
            g.emit_relo_typeless(&r, 0, None);
            let insns = ins(&g);
            let jeq = (start..insns.len())
                .find(|&pc| insns[pc].code == BPF_JMP | BPF_JEQ | BPF_K && insns[pc].imm == -ENOENT)
                .expect("the -ENOENT branch");
            assert_eq!(insns[jeq].off, len);
            // It lands right after the error check, which goes to the cleanup label.
            let check = jeq + 1;
            assert_eq!(target(&g, jeq), (check + len as usize) as i64);
            let last = check + len as usize - 1;
            assert_eq!(target(&g, last), CLEANUP_LABEL as i64);
            assert_eq!(insns[jeq + 1 + len as usize], Insn::stx_mem(Size::W, R8, R9, 4));
        }
    }

    #[test]
    fn prologue_jumps_over_a_long_cleanup_block_with_gotol() {
        // 5,459 programs: a cleanup block of 32,762 insns, still `ja`.
        let g = LoaderGen::new(5459, 0);
        assert_eq!(ins(&g)[6], Insn::jmp_imm(BPF_JA, 0, 0, 32762));
        let g = LoaderGen::new(5500, 0);
        let skip = 2 * 3 + 2 + 5500 * 6;
        assert_eq!(ins(&g)[6], Insn::gotol(skip));
        assert_eq!(g.cleanup_label, CLEANUP_LABEL);
        assert_eq!(target(&g, 6), g.insn_cnt() as i64);
        assert_eq!(ins(&g).last(), Some(&Insn::exit()));
    }

    #[test]
    fn signature_branches_beyond_16_bits_are_long() {
        // A signed loader whose signature check follows a cleanup block of
        // more than 32,767 insns: each of its five branches to the cleanup
        // label is the negated comparison over a gotol.
        let g = LoaderGen::with_hash(6000, 0, true);
        let start = target(&g, 6) as usize;
        let sig = &ins(&g)[start..];
        let long: Vec<usize> = (0..sig.len()).filter(|&k| sig[k].code == BPF_GOTOL).collect();
        assert_eq!(long.len(), SHA256_DWORDS + 1);
        for &k in &long {
            assert_eq!(target(&g, start + k), CLEANUP_LABEL as i64);
            let cond = sig[k - 1];
            assert_eq!((cond.code & 0xf0, cond.off), (BPF_JEQ, 1), "negated JNE at {k}");
            assert_eq!(sig[k - 2], Insn::mov64_imm(R7, -EINVAL));
        }
        assert_eq!(sig[long[0] - 1], Insn::jmp_imm(BPF_JEQ, R2, 1, 1));
        assert_eq!(sig[long[1] - 1], Insn::new(BPF_JMP | BPF_JEQ | BPF_X, R2, R3, 1, 0));
        // The same check after a short cleanup block is libbpf 1.8's.
        let g = LoaderGen::with_hash(3, 0, true);
        assert!(ins(&g).iter().all(|i| i.code != BPF_GOTOL));
    }

    #[test]
    fn loaders_beyond_the_kernels_program_size_are_refused() {
        let mut g = at(MAX_LOADER_INSNS - 1);
        g.emit(Insn::exit());
        assert!(g.error.is_none());
        g.emit(Insn::exit());
        assert_eq!(g.insn_cnt(), MAX_LOADER_INSNS, "stops growing");
        let e = g.finish().unwrap_err();
        assert!(
            e.to_string()
                .contains("exceed the kernel's limit of 1000000 instructions"),
            "{e}"
        );
    }

    #[test]
    fn unreachable_descriptors_are_refused_before_anything_is_built() {
        // 2,047 maps: the last one's initial_value at ctx+32,768.
        let g = LoaderGen::new(0, 2047);
        let e = g.error.as_ref().expect("refused");
        assert!(e.to_string().contains("skeleton context offset 32768"), "{e}");
        assert!(g.insns.is_empty() && g.data.is_empty());
        assert!(LoaderGen::new(0, 2046).error.is_none());
        // A program whose descriptor is out of reach fails as it comes.
        let mut g = LoaderGen::new(8183, 0);
        g.prog_load(&ProgLoad {
            name: "p",
            license: "GPL",
            skel_slot: 8186,
            ..ProgLoad::default()
        });
        let e = g.error.as_ref().expect("refused");
        assert!(e.to_string().contains("skeleton context offset 32768"), "{e}");
    }

    #[test]
    fn ctx_beyond_16_bits_is_refused() {
        let mut g = LoaderGen::new(0, 1);
        g.map_create(
            &MapCreate {
                map_type: 2,
                name: "m",
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                ..MapCreate::default()
            },
            Some(0),
        );
        // Program slot 8,182 after one map: its descriptor at ctx+32,768.
        g.prog_slots = vec![8182];
        let e = g.finish().unwrap_err();
        assert!(
            e.to_string()
                .contains("skeleton context offset 32768 does not fit in 16 bits"),
            "{e}"
        );
    }
}
