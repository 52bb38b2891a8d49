#!/usr/bin/env bash
# Bounded smoke run of the fuzz targets (fuzz/README.md): about a minute of
# fuzzing in all, after a one-time build. Exits non-zero if any target finds a
# crash, a timeout or an out-of-memory input (the reproducer is left in
# fuzz/artifacts/<target>/).
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only -Z flags
# (sanitizer, coverage instrumentation), which RUSTC_BOOTSTRAP=1 enables on
# stable; libFuzzer itself is compiled from C++ by the libfuzzer-sys crate.
#
#   FUZZ_SECONDS=60 bash scripts/fuzz-smoke.sh        # total budget (default 60)
#   FUZZ_TARGETS="elf_mutate" bash scripts/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TOTAL=${FUZZ_SECONDS:-60}
TARGETS=(${FUZZ_TARGETS:-open_gen elf_mutate selfcheck})
export RUSTC_BOOTSTRAP=1

if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz-smoke: a C++ compiler is needed to build libFuzzer (apt-get install g++)" >&2
    exit 1
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION (once, into ~/.cargo/bin)"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cd fuzz
echo "== building fuzz targets (address sanitizer, debug assertions)"
cargo fuzz build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
share=$((TOTAL / ${#TARGETS[@]}))
[ "$share" -ge 5 ] || share=5
status=0
execs=0
for t in "${TARGETS[@]}"; do
    # Committed seeds: corpus/<target> where it exists, plus the fixture
    # objects and the regression inputs for the ELF targets.
    seeds=()
    [ -d "corpus/$t" ] && seeds+=("corpus/$t")
    case $t in
        open_gen|elf_mutate) seeds+=(../tests/fixtures/obj ../tests/fixtures/eb ../tests/fixtures/bad regressions) ;;
    esac
    mkdir -p "$work/$t"
    echo "== $t: ${share}s"
    # New inputs go to the scratch directory (first), never to the committed
    # corpus; fixed seed, so a run is reproducible for a given budget.
    if ! cargo fuzz run "$t" "$work/$t" "${seeds[@]}" -- \
        -max_total_time="$share" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
        -seed=1 -print_final_stats=1 >"$work/$t.log" 2>&1; then
        status=1
        echo "fuzz-smoke: $t FAILED; log tail:" >&2
        tail -n 40 "$work/$t.log" >&2
    fi
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n 1)
    echo "   $t: ${n:-0} executions"
    execs=$((execs + ${n:-0}))
done
echo "== fuzz smoke: $execs executions, $([ $status = 0 ] && echo "no findings" || echo "FINDINGS")"
exit $status
