//! The same pipeline as `open_gen`, driven by a structure-aware mutator:
//! section header lies, symbol and relocation edits, BTF header / type /
//! reference-cycle edits, BTF.ext record edits, instruction edits and
//! truncations of real objects (seed with the fixture objects). Inputs and
//! crash artifacts are plain ELF files.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

fuzz_target!(|data: &[u8]| bpfgen_fuzz::run(data));

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    // One in four rounds: libFuzzer's own byte-level mutations.
    if seed.is_multiple_of(4) {
        return fuzzer_mutate(data, size, max_size);
    }
    let mut buf = data[..size].to_vec();
    if !bpfgen_fuzz::mutate(&mut buf, seed as u64) {
        return fuzzer_mutate(data, size, max_size);
    }
    let n = buf.len().min(max_size);
    data[..n].copy_from_slice(&buf[..n]);
    n
});
