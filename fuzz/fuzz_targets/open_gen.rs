//! Arbitrary bytes through open → gen_loader → self-check → gen_skeleton.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bpfgen_fuzz::run(data));
