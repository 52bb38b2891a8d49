//! Shared pieces of the fuzz targets: the pipeline under test with fixed host
//! facts, and a structure-aware mutator for BPF ELF objects.
//!
//! The pipeline is the public API end to end: `open` → `gen_loader` → loader
//! self-check → `gen_skeleton`. An input may fail with an `Error`, which must
//! name the object; any panic, a self-check failure on generated output, a
//! timeout or an allocation over libFuzzer's limits is a finding.

use std::sync::Arc;

use bpfgen_fast::generate::{Compat, GenOptions};
use bpfgen_fast::skel::gen_skeleton_with;
use bpfgen_fast::{Host, Object, gen_loader_with, open, selfcheck};

pub const OBJECT_NAME: &str = "fuzz_obj";

/// Largest loader data blob whose skeleton the fuzz targets generate.
const SKELETON_MAX_BLOB: usize = 4 << 20;

/// Explicit host facts: generation never reads this machine's files.
pub fn host() -> Host {
    Host {
        page_size: 4096,
        possible_cpus: 4,
        kernel_version: Some(0x060c00),
        kconfig: Some(Arc::from(
            "CONFIG_BPF=y\nCONFIG_HZ=250\nCONFIG_NR_CPUS=64\nCONFIG_BPF_SYSCALL=y\nCONFIG_MODULES=m\nCONFIG_LOCALVERSION=\"x\"\n",
        )),
        kconfig_extra: Some(Arc::from("")),
        kallsyms: Some(Arc::from(
            "ffffffff81000000 T _stext\nffffffff82000000 D bpf_prog_active\nffffffff82000010 d bpf_link_fops\n",
        )),
        // A committed stand-in kernel BTF (tcp_congestion_ops), so struct_ops
        // objects are generated for without reading this machine's.
        kernel_btf: Some(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/fixtures/kernel-btf/struct_ops_kernel.btf"
            )
            .into(),
        ),
    }
}

fn check_error(e: &bpfgen_fast::Error, phase: &str) {
    assert_eq!(e.object, OBJECT_NAME, "{phase} error does not name the object: {e}");
    assert!(!e.reason.is_empty(), "{phase} error without a reason");
}

fn generate(obj: &Object, host: &Host) {
    // Big-endian objects are generated for as bpftool 7.8 does (the default,
    // bpftool 7.5's behaviour, refuses them).
    let opts = GenOptions {
        compat: if obj.big_endian {
            Compat::Bpftool78
        } else {
            Compat::Bpftool75
        },
        ..GenOptions::default()
    };
    match gen_loader_with(obj, host, opts) {
        Ok(blobs) => {
            if let Err(e) = selfcheck::check_object(obj, &blobs, host) {
                panic!("generated loader fails the self-check: {e}");
            }
            // A legal but huge data blob (say a 64 MiB `.bss`) makes a header
            // of 2-4 times its size: seconds under the sanitizer for nothing
            // new. Those sizes are covered by tests/test_hostile.py.
            if blobs.data.len() > SKELETON_MAX_BLOB {
                return;
            }
            if let Err(e) = gen_skeleton_with(obj, &blobs, host, opts) {
                check_error(&e, "gen_skeleton");
            }
        }
        Err(e) => check_error(&e, "gen_loader"),
    }
}

/// Run one input through the whole pipeline.
pub fn run(data: &[u8]) {
    let host = host();
    let mut obj = match open(data, OBJECT_NAME) {
        Ok(obj) => obj,
        Err(e) => {
            check_error(&e, "open");
            return;
        }
    };
    generate(&obj, &host);
    // Also with the first entry program's autoload turned off, as a user may.
    if let Some(p) = obj.programs.iter_mut().find(|p| !p.is_subprog && p.autoload) {
        p.autoload = false;
        generate(&obj, &host);
    }
}

// ---------------------------------------------------------------------------
// Structure-aware mutation of ELF objects.

/// A small deterministic PRNG (xorshift64*), seeded by libFuzzer.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn rd(data: &[u8], off: usize, n: usize) -> Option<u64> {
    let b = data.get(off..off.checked_add(n)?)?;
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as u64) << (8 * i);
    }
    Some(v)
}

fn wr(data: &mut [u8], off: usize, n: usize, v: u64) {
    if let Some(b) = off.checked_add(n).and_then(|end| data.get_mut(off..end)) {
        for (i, x) in b.iter_mut().enumerate() {
            *x = (v >> (8 * i)) as u8;
        }
    }
}

/// A value likely to hit a boundary, given the field's old value.
fn interesting(rng: &mut Rng, old: u64, file_len: u64) -> u64 {
    const FIXED: [u64; 30] = [
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        12,
        15,
        16,
        24,
        31,
        32,
        64,
        128,
        255,
        256,
        0x7fff,
        0x8000,
        0xffff,
        0x10000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fff8,
        0xffff_ffff,
        0x1_0000_0000,
        i64::MAX as u64,
        u64::MAX,
        u64::MAX - 7,
        0x4000_0000,
    ];
    match rng.below(10) {
        0..=3 => FIXED[rng.below(FIXED.len())],
        4 => file_len.wrapping_add(rng.below(17) as u64).wrapping_sub(8),
        5 => old.wrapping_add(rng.below(33) as u64).wrapping_sub(16),
        6 => old.wrapping_add(8 * (rng.below(9) as u64)).wrapping_sub(32),
        7 => old.wrapping_mul(2 + rng.below(3) as u64),
        8 => old / (2 + rng.below(3) as u64),
        _ => rng.next_u64() >> (rng.below(64)),
    }
}

/// One section header, as located in the file.
#[derive(Clone, Copy, Debug)]
struct Shdr {
    /// File offset of the header itself.
    at: usize,
    name: u32,
    typ: u32,
    flags: u64,
    offset: u64,
    size: u64,
}

struct Layout {
    shdrs: Vec<Shdr>,
    shstrndx: usize,
}

fn layout(data: &[u8]) -> Option<Layout> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None;
    }
    let shoff = rd(data, 0x28, 8)? as usize;
    let shnum = rd(data, 0x3c, 2)? as usize;
    let shstrndx = rd(data, 0x3e, 2)? as usize;
    let mut shdrs = Vec::new();
    for i in 0..shnum.min(4096) {
        let at = shoff.checked_add(i * 64)?;
        if at.checked_add(64).is_none_or(|end| end > data.len()) {
            break;
        }
        shdrs.push(Shdr {
            at,
            name: rd(data, at, 4)? as u32,
            typ: rd(data, at + 4, 4)? as u32,
            flags: rd(data, at + 8, 8)?,
            offset: rd(data, at + 24, 8)?,
            size: rd(data, at + 32, 8)?,
        });
    }
    Some(Layout { shdrs, shstrndx })
}

impl Layout {
    fn name<'d>(&self, data: &'d [u8], s: &Shdr) -> &'d [u8] {
        let Some(strtab) = self.shdrs.get(self.shstrndx) else {
            return b"";
        };
        let start = strtab.offset.saturating_add(s.name as u64) as usize;
        let Some(rest) = data.get(start..) else { return b"" };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(0);
        &rest[..end]
    }

    /// In-file byte range of a section's contents, clipped to the file.
    fn range(&self, data: &[u8], s: &Shdr) -> Option<(usize, usize)> {
        let start = usize::try_from(s.offset).ok()?;
        let end = start.checked_add(usize::try_from(s.size).ok()?)?.min(data.len());
        (start < end).then_some((start, end))
    }

    fn by_name(&self, data: &[u8], name: &[u8]) -> Option<(usize, usize)> {
        let s = self.shdrs.iter().find(|s| self.name(data, s) == name)?;
        self.range(data, s)
    }

    fn pick<'a>(&'a self, rng: &mut Rng, pred: impl Fn(&Shdr) -> bool) -> Option<&'a Shdr> {
        let v: Vec<&Shdr> = self.shdrs.iter().filter(|s| pred(s)).collect();
        (!v.is_empty()).then(|| v[rng.below(v.len())])
    }
}

/// Byte offsets (inside the .BTF section) of each type record.
fn btf_types(btf: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let (Some(hdr), Some(toff), Some(tlen)) = (rd(btf, 4, 4), rd(btf, 8, 4), rd(btf, 12, 4)) else {
        return out;
    };
    let start = (hdr + toff) as usize;
    let end = (start + tlen as usize).min(btf.len());
    let mut pos = start;
    while pos + 12 <= end && out.len() < 100_000 {
        out.push(pos);
        let info = rd(btf, pos + 4, 4).unwrap_or(0);
        let vlen = (info & 0xffff) as usize;
        let tail = match (info >> 24) & 0x1f {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => 12 * vlen,
            6 | 13 => 8 * vlen,
            2 | 7..=12 | 16 | 18 => 0,
            _ => break,
        };
        pos += 12 + tail;
    }
    out
}

/// Apply one structure-aware mutation; false if none applied.
fn mutate_once(data: &mut Vec<u8>, rng: &mut Rng) -> bool {
    let Some(lay) = layout(data) else { return false };
    let file_len = data.len() as u64;
    match rng.below(14) {
        // Section header fields: sizes and offsets beyond the file, types, links.
        0 | 1 => {
            let Some(s) = lay.pick(rng, |_| true) else { return false };
            let (off, n) = [(4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (56, 8)][rng.below(7)];
            let old = rd(data, s.at + off, n).unwrap_or(0);
            let v = if off == 4 {
                [1, 2, 3, 8, 9, 0x6fff4c03][rng.below(6)]
            } else {
                interesting(rng, old, file_len)
            };
            wr(data, s.at + off, n, v);
        }
        // ELF header: section count, table offset, string table index.
        2 => {
            let (off, n) = [(0x28, 8), (0x3c, 2), (0x3e, 2), (0x10, 2), (0x12, 2)][rng.below(5)];
            let old = rd(data, off, n).unwrap_or(0);
            let v = interesting(rng, old, file_len);
            wr(data, off, n, v);
        }
        // Symbols.
        3 | 4 => {
            let Some((a, b)) = lay.pick(rng, |s| s.typ == 2).and_then(|s| lay.range(data, s)) else {
                return false;
            };
            let nsym = (b - a) / 24;
            if nsym == 0 {
                return false;
            }
            let at = a + 24 * rng.below(nsym);
            let (off, n) = [(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)][rng.below(6)];
            let old = rd(data, at + off, n).unwrap_or(0);
            let v = match (off, rng.below(3)) {
                (4, 0) => [0x10, 0x11, 0x12, 0x20, 0x22, 0x03, 0x00][rng.below(7)],
                (6, 0) => rng.below(lay.shdrs.len() + 2) as u64,
                (8, 0) => 8 * rng.below(64) as u64,
                _ => interesting(rng, old, file_len),
            };
            wr(data, at + off, n, v);
        }
        // Relocations: offsets and symbol indices.
        5 | 6 => {
            let Some((a, b)) = lay.pick(rng, |s| s.typ == 9).and_then(|s| lay.range(data, s)) else {
                return false;
            };
            let nrel = (b - a) / 16;
            if nrel == 0 {
                return false;
            }
            let at = a + 16 * rng.below(nrel);
            if rng.chance(2) {
                let old = rd(data, at, 8).unwrap_or(0);
                let v = if rng.chance(2) {
                    8 * rng.below(512) as u64
                } else {
                    interesting(rng, old, file_len)
                };
                wr(data, at, 8, v);
            } else {
                let old = rd(data, at + 12, 4).unwrap_or(0);
                let v = if rng.chance(2) {
                    rng.below(64) as u64
                } else {
                    interesting(rng, old, file_len)
                };
                wr(data, at + 12, 4, v);
            }
        }
        // BTF header.
        7 => {
            let Some((a, _)) = lay.by_name(data, b".BTF") else {
                return false;
            };
            let off = [4, 8, 12, 16, 20][rng.below(5)];
            let old = rd(data, a + off, 4).unwrap_or(0);
            let v = interesting(rng, old, file_len);
            wr(data, a + off, 4, v);
        }
        // BTF types: kinds, vlen, referenced ids (cycles), sizes, tails.
        8..=10 => {
            let Some((a, b)) = lay.by_name(data, b".BTF") else {
                return false;
            };
            let types = btf_types(&data[a..b]);
            if types.is_empty() {
                return false;
            }
            let ti = rng.below(types.len());
            let at = a + types[ti];
            let ntypes = types.len() as u64;
            match rng.below(6) {
                0 => {
                    // kind / vlen / kflag
                    let old = rd(data, at + 4, 4).unwrap_or(0);
                    let v = match rng.below(4) {
                        0 => (old & 0x8000_ffff) | ((rng.below(21) as u64) << 24),
                        1 => (old & !0xffff) | interesting(rng, old & 0xffff, file_len) & 0xffff,
                        2 => old ^ 0x8000_0000,
                        _ => interesting(rng, old, file_len),
                    };
                    wr(data, at + 4, 4, v);
                }
                1 => {
                    // size_or_type: self (cycle), a neighbour, past the end
                    let v = match rng.below(4) {
                        0 => ti as u64 + 1,
                        1 => rng.below(types.len() + 1) as u64,
                        2 => ntypes + 1 + rng.below(4) as u64,
                        _ => interesting(rng, rd(data, at + 8, 4).unwrap_or(0), file_len),
                    };
                    wr(data, at + 8, 4, v);
                }
                2 => {
                    let old = rd(data, at, 4).unwrap_or(0);
                    let v = interesting(rng, old, file_len);
                    wr(data, at, 4, v);
                }
                _ => {
                    // A word of the kind-specific tail (member types, offsets, nelems).
                    let next = types.get(ti + 1).map(|&o| a + o).unwrap_or(b);
                    let words = next.saturating_sub(at + 12) / 4;
                    if words == 0 {
                        return false;
                    }
                    let w = at + 12 + 4 * rng.below(words);
                    let old = rd(data, w, 4).unwrap_or(0);
                    let v = if rng.chance(2) {
                        rng.below(types.len() + 2) as u64
                    } else {
                        interesting(rng, old, file_len)
                    };
                    wr(data, w, 4, v);
                }
            }
        }
        // BTF.ext: header words, record sizes and counts, instruction offsets.
        11 => {
            let Some((a, b)) = lay.by_name(data, b".BTF.ext") else {
                return false;
            };
            let words = (b - a) / 4;
            if words == 0 {
                return false;
            }
            let w = if rng.chance(2) {
                a + 4 * (1 + rng.below(7))
            } else {
                a + 4 * rng.below(words)
            };
            let old = rd(data, w, 4).unwrap_or(0);
            let v = interesting(rng, old, file_len);
            wr(data, w, 4, v);
        }
        // Instructions of executable sections.
        12 => {
            let Some((a, b)) = lay
                .pick(rng, |s| s.typ == 1 && s.flags & 4 != 0)
                .and_then(|s| lay.range(data, s))
            else {
                return false;
            };
            let n = (b - a) / 8;
            if n == 0 {
                return false;
            }
            let at = a + 8 * rng.below(n);
            match rng.below(4) {
                0 => data[at] = [0x18, 0x85, 0x95, 0x05, 0x00, 0xb7, 0x61][rng.below(7)],
                1 => data[at + 1] = (data[at + 1] & 0x0f) | ((rng.below(8) as u8) << 4),
                2 => {
                    let old = rd(data, at + 2, 2).unwrap_or(0);
                    let v = interesting(rng, old, file_len);
                    wr(data, at + 2, 2, v);
                }
                _ => {
                    let old = rd(data, at + 4, 4).unwrap_or(0);
                    let v = interesting(rng, old, file_len);
                    wr(data, at + 4, 4, v);
                }
            }
        }
        // Truncation, at a section boundary or anywhere.
        _ => {
            let cut = match lay.pick(rng, |_| true) {
                Some(s) if rng.chance(2) => s.offset.saturating_add(rng.below(2) as u64 * s.size) as usize,
                _ => rng.below(data.len()),
            };
            if cut < data.len() {
                data.truncate(cut);
            } else {
                return false;
            }
        }
    }
    true
}

/// Apply one to four structure-aware mutations. Returns false if the input
/// is not an ELF object we can navigate (the caller then mutates bytes).
pub fn mutate(data: &mut Vec<u8>, seed: u64) -> bool {
    let mut rng = Rng::new(seed);
    let rounds = 1 + rng.below(4);
    let mut any = false;
    for _ in 0..rounds {
        any |= mutate_once(data, &mut rng);
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutator_changes_fixtures_and_never_panics() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/obj");
        let mut changed = 0;
        let mut total = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            for seed in 0..300 {
                let mut m = bytes.clone();
                if mutate(&mut m, seed) && m != bytes {
                    changed += 1;
                }
                total += 1;
                run(&m);
            }
        }
        assert!(changed * 2 > total, "{changed}/{total}");
    }
}
