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
//!
//! Its parts: `expect.rs` what the object asks for and the report,
//! `replay.rs` the abstract execution, `walk.rs` the recorded calls against
//! the decoded steps, the object and the data flow; [`check`] runs them.

mod expect;
mod replay;
mod walk;

use std::fmt;

pub use expect::*;
use replay::{Checker, is_big_endian_loader};
use walk::{StepsByAttr, StoreIndex, SyscallWalk, check_fd_handover_and_patches};

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

/// Check blobs generated (with default options) for `obj` on `host`.
pub fn check_object(obj: &Object, blobs: &LoaderBlobs, host: &Host) -> CheckResult<Report> {
    check(&blobs.data, &blobs.insns, &expect_object(obj, host))
}

/// Check a loader against names only (what a `Loader` carries).
pub fn check_names(data: &[u8], insns: &[u8], map_names: &[String], prog_names: &[String]) -> CheckResult<Report> {
    check(data, insns, &expect_names(map_names, prog_names))
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

#[cfg(test)]
mod tests {
    use super::replay::SIGNATURE_INSNS;
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
