#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, probes the
# kernel's capabilities once (tests/kcaps.py: the table is printed first), builds the
# kernel selftests corpus when the cache lacks it (so corpus-backed tests run in the
# first pass), then runs formatting and lint checks, the Rust tests, the Python tests
# (golden byte-equality with bpftool 7.5.0 and, for --compat bpftool-7.8 and signed
# skeletons, with bpftool 7.8.0 built by scripts/oracle-bpftool-7.8.sh; kernel runs,
# error handling, batch, hostile input), the kernel selftests differential (prints its
# table) and a one-minute fuzz smoke run. The Python tests include the VM tests:
# Debian's 6.12 LTS and sid amd64 kernels (tests/test_vm.py) and sid's s390x kernel
# (tests/test_vm_s390x.py), fetched and cached by scripts/kernels.sh, booted under QEMU
# with every fixture's loader, ours and bpftool's. It ends with the tests skipped per
# missing kernel capability (pytest and the differential), what loaded in each real
# kernel, and each step's wall time.
#
# BPFGEN_CACHE moves the cache root (default ~/.cache/bpfgen), e.g. to an empty
# directory to see a fresh machine's run; BPFGEN_TEST_DENY=all (or a comma-separated
# list of capability names) makes every probe (those named) report "missing".
set -euo pipefail
cd "$(dirname "$0")/.."
export BPFGEN_CACHE="${BPFGEN_CACHE:-$HOME/.cache/bpfgen}"
mkdir -p "$BPFGEN_CACHE"
run_dir="$(mktemp -d)"
export BPFGEN_CAPS_FILE="$run_dir/capabilities.json" BPFGEN_SKIP_LOG="$run_dir/skips.tsv"
: >"$BPFGEN_SKIP_LOG"

steps=() started=$SECONDS current="" current_at=$SECONDS
step() {
  finish_step
  current="$*" current_at=$SECONDS
  printf '\n== %s\n' "$*"
}
finish_step() {
  [ -z "$current" ] || steps+=("$(printf '%5ds  %s' $((SECONDS - current_at)) "$current")")
  current=""
}
report() {
  local rc=$?
  finish_step
  printf '\n== summary (%s)\n' "$([ "$rc" -eq 0 ] && echo passed || echo "FAILED, exit $rc")"
  if [ -x .venv/bin/python ] && [ -f tests/kcaps.py ]; then
    .venv/bin/python tests/kcaps.py --summary "$BPFGEN_SKIP_LOG" || true
    cat "$run_dir"/vm-*.txt 2>/dev/null || true
    # the s390x guest has no Python to run the probes in: its column shows what the
    # loaders that ran there used ("-": unknown, not refused)
    printf 'kernel capabilities, this host and the kernels booted (tests/test_vm.py; s390x: used by its bpfeb loaders, tests/test_vm_s390x.py):\n'
    .venv/bin/python tests/kcaps.py --columns "host=$BPFGEN_CAPS_FILE" \
      "6.12-lts=${BPFGEN_CAPS_FILE%.json}-lts.json" "sid=${BPFGEN_CAPS_FILE%.json}-sid.json" \
      "s390x=${BPFGEN_CAPS_FILE%.json}-s390x.json" || true
  fi
  printf 'wall time per step:\n'
  printf '  %s\n' "${steps[@]}"
  printf '%5ds  total\n' $((SECONDS - started)) | sed 's/^/  /'
  rm -rf "$run_dir"
}
trap report EXIT

step "install (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
. .venv/bin/activate

step "kernel capabilities (tests/kcaps.py; BPFGEN_TEST_DENY=${BPFGEN_TEST_DENY:-})"
python tests/kcaps.py --save "$BPFGEN_CAPS_FILE" --table

step "cargo fmt"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --features pyo3 --lib -- -D warnings
step "cargo test"
cargo test --release --workspace
step "ruff"
ruff check python tests benches scripts
step "mypy"
mypy
step "second oracle: bpftool 7.8 (Debian sid linux-source-7.2, cached)"
BPFGEN_BPFTOOL78="$(bash scripts/oracle-bpftool-7.8.sh | tail -n1)"
export BPFGEN_BPFTOOL78
"$BPFGEN_BPFTOOL78" version | sed -n 1,2p  # sed reads it all: no SIGPIPE under pipefail
step "selftests corpus (built once per input key, before pytest needs it)"
# exit 3 only says the corpus is smaller than the reference TSV: the differential
# reports that as a problem of its own
rc=0
python scripts/selftests/build_corpus.py --jobs "$(nproc)" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
step "real kernels: Debian 6.12 LTS, sid amd64 and s390x (scripts/kernels.sh, cached)"
bash scripts/kernels.sh
step "pytest"
pytest -q tests -m "not corpus"
step "selftests differential (bpftool 7.5.0 vs bpfgen_fast, kernel loads)"
python scripts/selftests/differential.py --kernel
step "selftests vs bpftool 7.8.0 (--compat bpftool-7.8 headers, unsigned and signed)"
python scripts/selftests/compat78.py --bpftool78 "$BPFGEN_BPFTOOL78"
step "fuzz smoke"
bash scripts/fuzz-smoke.sh
