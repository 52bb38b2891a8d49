//! The loader self-check: from the two produced blobs alone, prove that the
//! loader program only does what the object asked for.
//!
//! The instruction stream is decoded and abstractly executed (a forward
//! dataflow over registers, iterated to a fixpoint over the few backward
//! edges, which all go to the cleanup block). Each register holds an
//! abstract value: a constant, a pointer into the data blob / the loader
//! stack / the skeleton ctx at a known offset, a value loaded from such a
//! place, or the result of the call at some instruction. From that:
//!
//! - every opcode is one the emitter uses; every `ld_imm64` is
//!   `src=BPF_PSEUDO_MAP_IDX_VALUE, imm=0` with a data-blob offset in bounds;
//!   every jump lands inside the program and never inside an `ld_imm64`; no
//!   path falls off the end; every error branch (`jslt r7, 0`) goes to the
//!   cleanup label; the prologue jump lands right after the cleanup block;
//!   a long loader's `gotol` (32-bit offset in `imm`) is the prologue's jump
//!   or goes to the cleanup label, and its reserved fields are zero, as the
//!   verifier wants (an error branch out of 16-bit reach is `jsge r7, 0, +1;
//!   gotol cleanup`);
//! - every load and store goes through a known pointer and stays inside the
//!   data blob, the ctx (`24 + 16 * maps + 4 * programs` bytes) or the stack;
//! - every helper call gets in-bounds arguments (`sys_bpf` attrs, names,
//!   copy sizes);
//! - every `BPF_MAP_CREATE` matches the object's maps in order (name, and with
//!   [`check_object`] type, sizes, entries, flags; inner-map templates right
//!   before their map-in-map), its fd lands in its own fd-array slot and from
//!   there in its own ctx descriptor;
//! - every `BPF_PROG_LOAD` names a program of the object, in order; its fd
//!   reaches that program's own ctx slot; every pointer its attr receives
//!   (instructions, license, func/line info, CO-RE records, fd array) stays in
//!   bounds for the counts the attr declares; run-time instruction patches
//!   (ksyms, kfuncs) only touch `ld_imm64` / call instructions of the program
//!   being loaded, before it is loaded;
//! - `BPF_BTF_LOAD`, `BPF_MAP_UPDATE_ELEM` and `BPF_MAP_FREEZE` reference
//!   in-bounds data and maps created before them.
//!
//! - a loader for a big-endian target (recognised by its first instruction)
//!   is read with its instructions and attrs in that byte order;
//! - a signed loader's signature check (libbpf 1.8, right after the cleanup
//!   block) only reads the loader's own map's hash and flag, and every one of
//!   its branches goes to the cleanup label; its raw 64-bit constants (the
//!   hash) are admitted there and nowhere else.
//!
//! Loader properties that libbpf 1.5 itself gets wrong on valid input (stack
//! slots beyond its 32-program frame) are reported as warnings, not errors.
//! The check is linear in the loader size apart from the fixpoint rounds
//! (two in practice).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::explain::{Explanation, Step};
use crate::generate::{LoaderBlobs, effective_def};
use crate::host::Host;
use crate::insn::{BPF_CALL, BPF_EXIT, BPF_GOTOL, BPF_LD_IMM64, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE};
use crate::object::Object;
use crate::section_defs::map_type::is_map_in_map;

// Opcodes the emitter produces: insn.rs's `loader_ops`.
use crate::insn::loader_ops::{
    ADD64_K, AND32_K, JA, JEQ_K, JEQ_X, JNE_K, JNE_X, JSET_K, JSGE_K, JSLE_K, JSLT_K, MOV64_K, MOV64_X, RSH64_K,
};
/// `gotol`: the long form of `ja`, and of an error branch out of 16-bit
/// reach (behind the negated condition).
const GOTOL: u8 = BPF_GOTOL;
/// Conditional jumps (immediate forms) the emitter uses.
const COND_JUMPS: [u8; 6] = [JEQ_K, JNE_K, JSET_K, JSGE_K, JSLT_K, JSLE_K];

use crate::loader_abi::{
    self as abi, CLEANUP_LABEL, FN_BTF_FIND_BY_NAME_KIND, FN_COPY_FROM_USER, FN_KALLSYMS_LOOKUP_NAME,
    FN_PROBE_READ_KERNEL, FN_SYS_BPF, FN_SYS_CLOSE, btf_load, map_freeze, map_update, prog_load,
};

/// An attr field's offset (`loader_abi`) in the checker's i64 arithmetic.
const fn field(off: usize) -> i64 {
    off as i64
}
// One check reads the map fd of both commands' attrs.
const _: () = assert!(map_update::MAP_FD == map_freeze::MAP_FD);

// The loader ABI's commands, attr sizes and layout in the i64 arithmetic of
// the abstract values they are compared with.
const BPF_MAP_CREATE: i64 = abi::BPF_MAP_CREATE as i64;
const BPF_MAP_UPDATE_ELEM: i64 = abi::BPF_MAP_UPDATE_ELEM as i64;
const BPF_PROG_LOAD: i64 = abi::BPF_PROG_LOAD as i64;
const BPF_BTF_LOAD: i64 = abi::BPF_BTF_LOAD as i64;
const BPF_MAP_FREEZE: i64 = abi::BPF_MAP_FREEZE as i64;
const MAP_CREATE_SZ: i64 = abi::MAP_CREATE_ATTR_SIZE as i64;
const MAP_UPDATE_SZ: i64 = abi::MAP_UPDATE_ATTR_SIZE as i64;
const PROG_LOAD_SZ: i64 = abi::PROG_LOAD_ATTR_SIZE as i64;
const BTF_LOAD_SZ: i64 = abi::BTF_LOAD_ATTR_SIZE as i64;
const MAP_FREEZE_SZ: i64 = abi::MAP_FREEZE_ATTR_SIZE as i64;
const MIN_MAP_SLOTS: i64 = abi::MIN_MAP_SLOTS as i64;
const KFUNC_SLOTS: i64 = abi::KFUNC_SLOTS as i64;
const CTX_SIZE: i64 = abi::CTX_SIZE as i64;
const MAP_DESC_SIZE: i64 = abi::MAP_DESC_SIZE as i64;
const PROG_DESC_SIZE: i64 = abi::PROG_DESC_SIZE as i64;
const LOADER_STACK: i64 = abi::STACK_SIZE as i64;
const STACK_BTF_FD: i64 = abi::STACK_BTF_FD as i64;
const STACK_INNER_MAP_FD: i64 = abi::STACK_INNER_MAP_FD as i64;
const STACK_PROG_FD0: i64 = abi::stack_prog_fd(0) as i64;
const MAX_BPF_STACK: i64 = abi::MAX_BPF_STACK as i64;
const NREGS: usize = 11;

/// A self-check failure: what is wrong and, where it applies, at which
/// loader instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub insn: Option<usize>,
    pub reason: String,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.insn {
            Some(pc) => write!(f, "loader self-check: insn #{pc}: {}", self.reason),
            None => write!(f, "loader self-check: {}", self.reason),
        }
    }
}

impl std::error::Error for CheckError {}

type CheckResult<T> = std::result::Result<T, CheckError>;

fn fail<T>(insn: Option<usize>, reason: impl Into<String>) -> CheckResult<T> {
    Err(CheckError {
        insn,
        reason: reason.into(),
    })
}

/// What the object says the loader must create, in ctx order.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Every map of the object (ctx map descriptors), in order.
    pub maps: Vec<ExpectMap>,
    /// Every entry program (ctx prog descriptors), in order.
    pub progs: Vec<ExpectProg>,
    /// The license string every PROG_LOAD must pass, when known.
    pub license: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ExpectMap {
    pub name: String,
    /// Attributes to compare; `None` checks the name only.
    pub attrs: Option<MapAttrs>,
    /// Attributes of the inner-map template of a map-in-map, if any.
    pub inner: Option<MapAttrs>,
    /// Declared but not created by the loader (`SEC("?.struct_ops")`).
    pub skipped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapAttrs {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ExpectProg {
    pub name: String,
    /// `None`: may or may not be loaded (names-only check).
    pub loaded: Option<bool>,
    /// (prog_type, expected_attach_type, prog_flags), when known.
    pub attrs: Option<(u32, u32, u32)>,
    /// Lower bound of the loaded instruction count (the program's own code).
    pub min_insn_cnt: u32,
}

/// One `BPF_MAP_CREATE` the loader issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapCreateRec {
    pub insn: usize,
    pub attr_off: u32,
    pub name: String,
    pub attrs: MapAttrs,
    /// The object map it creates; `None` for an inner-map template.
    pub map_idx: Option<usize>,
}

/// One `BPF_PROG_LOAD` the loader issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgLoadRec {
    pub insn: usize,
    pub attr_off: u32,
    pub name: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
    pub insn_cnt: u32,
    /// Data-blob offset of the program's instructions.
    pub insns_off: u32,
    pub license: String,
    /// The ctx program descriptor that receives its fd.
    pub prog_idx: usize,
}

/// What the loader does, as established by the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub insn_cnt: usize,
    pub data_len: usize,
    /// (data offset, size) of the BTF given to `BPF_BTF_LOAD`.
    pub btf: Option<(u32, u32)>,
    pub map_creates: Vec<MapCreateRec>,
    pub prog_loads: Vec<ProgLoadRec>,
    pub map_updates: usize,
    pub map_freezes: usize,
    /// Defects the kernel would reject but that libbpf 1.5 emits the same way.
    pub warnings: Vec<String>,
}

/// Names-only expectation, as the Python `Loader` carries it.
pub fn expect_names(map_names: &[String], prog_names: &[String]) -> Expect {
    Expect {
        maps: map_names
            .iter()
            .map(|n| ExpectMap {
                name: n.clone(),
                ..ExpectMap::default()
            })
            .collect(),
        progs: prog_names
            .iter()
            .map(|n| ExpectProg {
                name: n.clone(),
                ..ExpectProg::default()
            })
            .collect(),
        license: None,
    }
}

/// Full expectation from the opened object and the host the loader was made for.
pub fn expect_object(obj: &Object, host: &Host) -> Expect {
    // struct_ops maps take their value size from the kernel's struct, and
    // their programs' load decisions and member indices from the same plan.
    // Without a plan (generation would have failed) only names are compared.
    let st_plan = crate::generate::struct_ops_plan(obj, host).ok().flatten();
    let attrs = |def: &crate::object::MapDef| {
        let d = effective_def(def, host);
        MapAttrs {
            map_type: d.map_type,
            key_size: d.key_size,
            value_size: d.value_size,
            max_entries: d.max_entries,
            map_flags: d.map_flags,
        }
    };
    Expect {
        maps: obj
            .maps
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut map_attrs = Some(attrs(&m.def));
                if m.struct_ops.is_some() {
                    let kern = st_plan.as_ref().and_then(|p| p.maps.iter().find(|k| k.map_idx == i));
                    map_attrs = kern.and_then(|k| {
                        map_attrs.map(|a| MapAttrs {
                            value_size: k.value_size,
                            ..a
                        })
                    });
                }
                ExpectMap {
                    name: m.name.clone(),
                    attrs: map_attrs,
                    inner: m
                        .inner
                        .as_ref()
                        .filter(|_| is_map_in_map(m.def.map_type))
                        .map(|i| attrs(&i.def)),
                    skipped: !m.autocreate(),
                }
            })
            .collect(),
        progs: obj
            .programs
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_subprog)
            .map(|(i, p)| {
                let a = p.load_attrs();
                let mut loaded = p.autoload;
                let mut attach_type = a.expected_attach_type;
                if let Some(plan) = &st_plan {
                    loaded = plan.autoload[i];
                    if let Some((_, member)) = &plan.prog_attach[i] {
                        attach_type = *member;
                    }
                }
                ExpectProg {
                    name: p.name.clone(),
                    loaded: Some(loaded),
                    attrs: Some((a.prog_type, attach_type, a.prog_flags)),
                    min_insn_cnt: p.sec_insn_cnt as u32,
                }
            })
            .collect(),
        license: Some(obj.license.clone()),
    }
}

/// Check blobs generated (with default options) for `obj` on `host`.
pub fn check_object(obj: &Object, blobs: &LoaderBlobs, host: &Host) -> CheckResult<Report> {
    check(&blobs.data, &blobs.insns, &expect_object(obj, host))
}

/// Check a loader against names only (what a `Loader` carries).
pub fn check_names(data: &[u8], insns: &[u8], map_names: &[String], prog_names: &[String]) -> CheckResult<Report> {
    check(data, insns, &expect_names(map_names, prog_names))
}

// ---------------------------------------------------------------------------
// Decoding and abstract execution.

#[derive(Debug, Clone, Copy)]
struct Ins {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Ins {
    fn is_jump(&self) -> bool {
        matches!(self.code, JA | GOTOL | JNE_X | JEQ_X) || COND_JUMPS.contains(&self.code)
    }

    /// Where the jump at `pc` lands: `gotol` keeps its offset in `imm`,
    /// every other jump in `off`.
    fn jump_target(&self, pc: usize) -> i64 {
        let off = if self.code == GOTOL {
            self.imm as i64
        } else {
            self.off as i64
        };
        pc as i64 + 1 + off
    }
}

fn decode(b: &[u8]) -> Ins {
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
fn is_big_endian_loader(insns: &[u8]) -> bool {
    insns.len() >= 8 && insns[0] == MOV64_X && insns[1] == 0x61
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Region {
    Blob,
    Stack,
    Ctx,
    /// The loader's own map (`ld_imm64 src=BPF_PSEUDO_MAP_IDX, imm=0`), read
    /// by a signed loader's signature check: its exclusivity flag and the
    /// SHA-256 the kernel computed of the data blob.
    LoaderMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Val {
    Unknown,
    Const(i64),
    Ptr(Region, i64),
    /// Loaded from (region, offset, size).
    Load(Region, i64, u8),
    /// Returned by the call at this instruction.
    Ret(usize),
}

type State = [Val; NREGS];

fn join(a: &State, b: &State) -> State {
    let mut out = *a;
    for (o, v) in out.iter_mut().zip(b) {
        if *o != *v {
            *o = Val::Unknown;
        }
    }
    out
}

fn join_into(map: &mut HashMap<usize, State>, at: usize, st: &State) {
    map.entry(at).and_modify(|s| *s = join(s, st)).or_insert(*st);
}

fn mem_size(code: u8) -> i64 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

#[derive(Debug, Clone, Copy)]
struct Store {
    insn: usize,
    region: Region,
    off: i64,
    size: i64,
    val: Val,
}

#[derive(Debug, Clone, Copy)]
struct Syscall {
    insn: usize,
    cmd: i64,
    attr: i64,
}

/// Everything the recording pass learns.
#[derive(Default)]
struct Trace {
    stores: Vec<Store>,
    syscalls: Vec<Syscall>,
    warnings: Vec<String>,
}

struct Checker<'a> {
    data: &'a [u8],
    insns: Vec<Ins>,
    /// True at the second slot of an `ld_imm64`.
    second_half: Vec<bool>,
    ctx_size: i64,
    /// A loader for a big-endian target: instructions and the attrs it
    /// passes to the kernel are big-endian.
    big_endian: bool,
    /// Instructions of a signed loader's signature check (libbpf 1.8's
    /// `emit_signature_match`, right after the cleanup block), if any.
    signature: std::ops::Range<usize>,
}

/// The signature check: a 5-instruction exclusivity test, then one
/// 7-instruction comparison per SHA-256 dword; each of its 5 branches one
/// `gotol` longer where the cleanup label is out of 16-bit reach.
const SIGNATURE_INSNS: usize = 5 + abi::SHA256_DWORDS * 7;
/// The negated `JNE_X` of a signature comparison in long form.
/// Bytes of the loader map a signature check may read: the SHA-256, then
/// the 4-byte exclusivity flag.
const LOADER_MAP_READABLE: i64 = abi::SHA256_DIGEST_LENGTH as i64 + 4;

impl Checker<'_> {
    fn data_len(&self) -> i64 {
        self.data.len() as i64
    }

    fn in_data(&self, off: i64, size: i64) -> bool {
        off >= 0 && size >= 0 && off.checked_add(size).is_some_and(|e| e <= self.data_len())
    }

    fn u32_at(&self, off: i64) -> u32 {
        let o = off as usize;
        let b = [self.data[o], self.data[o + 1], self.data[o + 2], self.data[o + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Static shape checks that need no dataflow.
    fn decode_all(&mut self, raw: &[u8]) -> CheckResult<()> {
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
    fn check_prologue(&self) -> CheckResult<()> {
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
    fn access(
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
    fn call(&self, pc: usize, st: &State, trace: &mut Trace) -> CheckResult<()> {
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
    fn trace(&self) -> CheckResult<Trace> {
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
    fn pass(
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

/// Stores indexed by where they write, each list in instruction order (the
/// recording pass visits instructions in order), so lookups stay cheap on
/// hostile loaders with millions of stores.
struct StoreIndex<'t> {
    stores: &'t [Store],
    by_loc: HashMap<(Region, i64), Vec<usize>>,
}

impl<'t> StoreIndex<'t> {
    fn new(stores: &'t [Store]) -> Self {
        let mut by_loc: HashMap<(Region, i64), Vec<usize>> = HashMap::new();
        for (i, s) in stores.iter().enumerate() {
            by_loc.entry((s.region, s.off)).or_default().push(i);
        }
        StoreIndex { stores, by_loc }
    }

    /// Every store at (region, off).
    fn at(&self, region: Region, off: i64) -> impl Iterator<Item = &'t Store> + '_ {
        let list = self.by_loc.get(&(region, off)).map(Vec::as_slice).unwrap_or(&[]);
        list.iter().map(|&i| &self.stores[i])
    }

    /// The last store at (region, off) made by an instruction before `before`.
    fn last_before(&self, region: Region, off: i64, before: usize) -> Option<&'t Store> {
        let list = self.by_loc.get(&(region, off))?;
        let n = list.partition_point(|&i| self.stores[i].insn < before);
        n.checked_sub(1).map(|k| &self.stores[list[k]])
    }
}

fn trunc_name(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(15)]
}

/// Run the self-check on a loader's blobs.
pub fn check(data: &[u8], insns: &[u8], expect: &Expect) -> CheckResult<Report> {
    if insns.is_empty() || !insns.len().is_multiple_of(8) {
        return fail(None, format!("instruction blob of {} bytes", insns.len()));
    }
    let nr_maps = expect.maps.len() as i64;
    let map_slots = nr_maps.max(MIN_MAP_SLOTS);
    if !data.len().is_multiple_of(8) || (data.len() as i64) < 4 * (map_slots + KFUNC_SLOTS) {
        return fail(None, format!("data blob of {} bytes", data.len()));
    }
    if data.len() > i32::MAX as usize {
        return fail(None, "data blob exceeds 2 GiB");
    }
    let mut ck = Checker {
        data,
        insns: Vec::new(),
        second_half: Vec::new(),
        signature: 0..0,
        big_endian: is_big_endian_loader(insns),
        ctx_size: CTX_SIZE + MAP_DESC_SIZE * nr_maps + PROG_DESC_SIZE * expect.progs.len() as i64,
    };
    ck.decode_all(insns)?;
    ck.check_prologue()?;

    let mut trace = ck.trace()?;
    // What each call asks for (names, types, sizes, counts) is read by the one
    // decoder of the format; the replay above proves where values flow.
    let names = |v: &[String]| v.to_vec();
    let map_names = names(&expect.maps.iter().map(|m| m.name.clone()).collect::<Vec<_>>());
    let prog_names = names(&expect.progs.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
    let opts = crate::explain::DecodeOptions {
        map_names: &map_names,
        prog_names: &prog_names,
        ..Default::default()
    };
    let explained = crate::explain::decode(data, insns, &opts).map_err(|e| CheckError {
        insn: e.insn,
        reason: format!("not gen_loader's shape: {}", e.reason),
    })?;
    let steps = StepsByAttr::new(&explained, &trace.syscalls)?;

    let report = Report {
        insn_cnt: ck.insns.len(),
        data_len: data.len(),
        warnings: std::mem::take(&mut trace.warnings),
        ..Report::default()
    };
    let stores = &trace.stores;
    let index = StoreIndex::new(stores);
    let mut walk = SyscallWalk::new(&ck, expect, &index, &steps, report);
    for sc in &trace.syscalls {
        match sc.cmd {
            BPF_BTF_LOAD => walk.btf_load(sc)?,
            BPF_MAP_CREATE => walk.map_create(sc)?,
            BPF_MAP_UPDATE_ELEM | BPF_MAP_FREEZE => walk.map_update(sc)?,
            BPF_PROG_LOAD => walk.prog_load(sc)?,
            _ => unreachable!("commands filtered in call()"),
        }
    }
    walk.finish()?;
    check_fd_handover_and_patches(&ck, stores, &index, nr_maps, map_slots, &walk.prog_windows)?;
    Ok(walk.report)
}

/// The decoded step of each `bpf()` call the replay found, by its attr's
/// blob offset: both readings of the loader must find the same calls.
struct StepsByAttr<'e> {
    by_attr: HashMap<i64, &'e Step>,
}

impl<'e> StepsByAttr<'e> {
    fn new(e: &'e Explanation, syscalls: &[Syscall]) -> CheckResult<Self> {
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

    fn at(&self, sc: &Syscall) -> CheckResult<&'e Step> {
        self.by_attr.get(&sc.attr).copied().ok_or_else(|| CheckError {
            insn: Some(sc.insn),
            reason: format!("the bpf() call with its attr at data+{:#x} does not decode", sc.attr),
        })
    }
}

/// The replayed syscalls checked in order against the object: what each
/// `bpf()` command's attr holds, and where the fd it returns goes.
struct SyscallWalk<'c, 'a> {
    ck: &'c Checker<'a>,
    expect: &'c Expect,
    index: &'c StoreIndex<'c>,
    steps: &'c StepsByAttr<'c>,
    /// Ctx offsets by the value stored there (fd hand-over to descriptors).
    ctx_by_val: HashMap<Val, Vec<i64>>,
    /// Where the result of the call at an insn was stored (region, offset).
    ret_dest: HashMap<usize, Vec<(Region, i64)>>,
    nr_maps: i64,
    map_slots: i64,
    report: Report,
    next_map: usize,
    pending_inner: Option<MapCreateRec>,
    /// Attributes of each object map created so far, by map index.
    created_attrs: Vec<MapAttrs>,
    /// (insns start, end, previous PROG_LOAD insn, this PROG_LOAD insn), in
    /// data-blob order (the emitter appends each program's data in turn).
    prog_windows: Vec<(i64, i64, usize, usize)>,
    loaded: Vec<bool>,
    last_prog_load: usize,
    last_prog_idx: Option<usize>,
}

impl<'c, 'a> SyscallWalk<'c, 'a> {
    fn new(
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
    fn finish(&mut self) -> CheckResult<()> {
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
    fn blob_ptr(&self, off: i64, before: usize) -> Option<i64> {
        match self.index.last_before(Region::Blob, off, before)?.val {
            Val::Ptr(Region::Blob, p) => Some(p),
            _ => None,
        }
    }

    /// The fd-array map slot whose fd was copied into the attr at `off`.
    fn fd_source(&self, off: i64, before: usize) -> Option<i64> {
        match self.index.last_before(Region::Blob, off, before)?.val {
            Val::Load(Region::Blob, src, 4) if src % 4 == 0 && src < 4 * self.map_slots => Some(src / 4),
            _ => None,
        }
    }

    /// BPF_BTF_LOAD: one, of real BTF, its fd kept in its stack slot.
    fn btf_load(&mut self, sc: &Syscall) -> CheckResult<()> {
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
    fn map_create(&mut self, sc: &Syscall) -> CheckResult<()> {
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
    fn map_update(&mut self, sc: &Syscall) -> CheckResult<()> {
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
    fn prog_load(&mut self, sc: &Syscall) -> CheckResult<()> {
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
fn check_fd_handover_and_patches(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
        let mut b = [code, dst | (src << 4), 0, 0, 0, 0, 0, 0];
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        b
    }

    /// Prologue, an empty cleanup block, then `body`.
    fn loader(body: &[[u8; 8]]) -> Vec<u8> {
        let mut v = vec![
            insn(MOV64_X, 6, 1, 0, 0),
            insn(MOV64_X, 1, 10, 0, 0),
            insn(ADD64_K, 1, 0, 0, -136),
            insn(MOV64_K, 2, 0, 0, 136),
            insn(MOV64_K, 3, 0, 0, 0),
            insn(BPF_CALL, 0, 0, 0, FN_PROBE_READ_KERNEL),
            insn(JA, 0, 0, 2, 0),
            insn(MOV64_X, 0, 7, 0, 0),
            insn(BPF_EXIT, 0, 0, 0, 0),
        ];
        v.extend_from_slice(body);
        v.concat()
    }

    #[test]
    fn safe_loader_of_another_shape_is_refused() {
        // Memory-safe, and the replay finds nothing wrong, but it is not a
        // loader gen_loader makes (no BTF / inner-map fd closes in its
        // cleanup block, no epilogue): the decoder refuses it.
        let data = vec![0; 1280];
        let r = check(
            &data,
            &loader(&[insn(MOV64_K, 0, 0, 0, 0), insn(BPF_EXIT, 0, 0, 0, 0)]),
            &Expect::default(),
        );
        let e = r.expect_err("not gen_loader's shape");
        assert!(e.reason.starts_with("not gen_loader's shape: "), "{e}");
    }

    #[test]
    fn emitted_loaders_pass() {
        for progs in [0, 1, 3] {
            for signed in [false, true] {
                let (data, insns, expect) = emitted(progs, signed);
                let r = check(&data, &insns, &expect).expect("the emitter's loader passes");
                assert_eq!(r.prog_loads.len(), progs);
            }
        }
    }

    /// Found by the `selfcheck` fuzz target: an ld_imm64 naming register 11
    /// indexed past the register file.
    #[test]
    fn ld_imm64_with_bad_register_is_rejected() {
        let data = vec![0; 1280];
        let body = [
            insn(BPF_LD_IMM64, 11, 6, 0, 0),
            insn(0, 0, 0, 0, 0),
            insn(BPF_EXIT, 0, 0, 0, 0),
        ];
        let e = check(&data, &loader(&body), &Expect::default()).unwrap_err();
        assert_eq!(e.insn, Some(9), "{e}");
    }

    /// A loader from the emitter for `progs` one-instruction-pair socket
    /// programs and one map, signed or not, with the names it expects.
    fn emitted(progs: usize, signed: bool) -> (Vec<u8>, Vec<u8>, Expect) {
        use crate::loader::{LoaderGen, MapCreate, ProgLoad};
        let names: Vec<String> = (0..progs).map(|i| format!("p{i}")).collect();
        let code: Vec<u8> = [insn(MOV64_K, 0, 0, 0, 0), insn(BPF_EXIT, 0, 0, 0, 0)].concat();
        let mut g = LoaderGen::with_hash(progs, 1, signed);
        let map = MapCreate {
            map_type: 2,
            name: "m",
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            ..MapCreate::default()
        };
        g.map_create(&map, Some(0));
        for (slot, name) in names.iter().enumerate() {
            g.prog_load(&ProgLoad {
                prog_type: 1,
                name,
                license: "GPL",
                insns: &code,
                insn_cnt: 2,
                skel_slot: slot,
                ..ProgLoad::default()
            });
        }
        let (data, insns) = g.finish().expect("loader");
        (data, insns, expect_names(&["m".to_string()], &names))
    }

    fn code_at(insns: &[u8], pc: usize) -> u8 {
        insns[8 * pc]
    }

    /// Long loaders: a `gotol` over the cleanup block of 5,500 programs,
    /// and every error branch beyond 16 bits `jsge r7, 0, +1; gotol 7`.
    #[test]
    fn long_loader_passes_and_its_gotols_are_checked() {
        let (data, insns, expect) = emitted(5500, false);
        assert_eq!(code_at(&insns, 6), GOTOL);
        let gotols: Vec<usize> = (7..insns.len() / 8)
            .filter(|&pc| code_at(&insns, pc) == GOTOL)
            .collect();
        assert!(gotols.len() > 1000, "{}", gotols.len());
        let r = check(&data, &insns, &expect).expect("long loader");
        assert_eq!(r.prog_loads.len(), 5500);

        // A long error branch that lands anywhere but the cleanup label.
        let mut bad = insns.clone();
        let pc = gotols[gotols.len() / 2];
        let imm = i32::from_le_bytes(bad[8 * pc + 4..8 * pc + 8].try_into().unwrap());
        bad[8 * pc + 4..8 * pc + 8].copy_from_slice(&(imm + 1).to_le_bytes());
        let e = check(&data, &bad, &expect).unwrap_err();
        assert_eq!(e.insn, Some(pc), "{e}");
        assert!(e.reason.starts_with("gotol to 8:"), "{e}");

        // gotol with its reserved `off` set: the verifier refuses it.
        let mut bad = insns.clone();
        bad[8 * pc + 2] = 1;
        let e = check(&data, &bad, &expect).unwrap_err();
        assert_eq!(
            (e.insn, e.reason.as_str()),
            (Some(pc), "goto with non-zero reserved fields")
        );

        // The prologue's gotol must land right after the cleanup block.
        let mut bad = insns;
        bad[8 * 6 + 4] ^= 2;
        assert!(check(&data, &bad, &expect).is_err());
    }

    /// A signed loader after a long cleanup block: the signature check's
    /// five branches are long too, and still found and checked.
    #[test]
    fn long_signed_loader_passes() {
        let (data, insns, expect) = emitted(5500, true);
        let r = check(&data, &insns, &expect).expect("long signed loader");
        assert_eq!(r.prog_loads.len(), 5500);
        let start = (7 + i32::from_le_bytes(insns[52..56].try_into().unwrap())) as usize;
        let sig: Vec<u8> = (start..start + SIGNATURE_INSNS + 5)
            .map(|pc| code_at(&insns, pc))
            .collect();
        assert_eq!(sig.iter().filter(|&&c| c == GOTOL).count(), 5);
        assert_eq!(sig.iter().filter(|&&c| c == JEQ_X).count(), 4);
        // A signature comparison that skips its gotol to land elsewhere.
        let jeq = start + sig.iter().position(|&c| c == JEQ_X).unwrap();
        let mut bad = insns;
        bad[8 * jeq + 2] = 2;
        let e = check(&data, &bad, &expect).unwrap_err();
        assert_eq!(e.insn, Some(jeq), "{e}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(check(&[0; 1280], &[0; 8], &Expect::default()).is_err());
        assert!(check(&[0; 1280], &[], &Expect::default()).is_err());
        assert!(check(&[0; 12], &[0; 64], &Expect::default()).is_err());
    }
}
