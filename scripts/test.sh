#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs formatting and lint checks, the Rust tests, the Python tests (golden
# byte-equality with bpftool 7.5.0 and, for --compat bpftool-7.8 and signed
# skeletons, with bpftool 7.8.0 built by scripts/oracle-bpftool-7.8.sh;
# kernel runs, error handling, batch, hostile input), the kernel selftests differential (prints its table) and a
# one-minute fuzz smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets -- -D warnings
cargo clippy --features pyo3 --lib -- -D warnings
step "cargo test"
cargo test --release
step "ruff"
ruff check python tests benches scripts
step "mypy"
mypy
step "second oracle: bpftool 7.8 (Debian sid linux-source-7.2, cached)"
BPFGEN_BPFTOOL78="$(bash scripts/oracle-bpftool-7.8.sh | tail -n1)"
export BPFGEN_BPFTOOL78
"$BPFGEN_BPFTOOL78" version | head -2
step "pytest"
pytest -q tests -m "not corpus"
step "selftests differential (bpftool 7.5.0 vs bpfgen_fast, kernel loads)"
python scripts/selftests/differential.py --kernel
step "selftests vs bpftool 7.8.0 (--compat bpftool-7.8 headers, unsigned and signed)"
python scripts/selftests/compat78.py --bpftool78 "$BPFGEN_BPFTOOL78"
step "fuzz smoke"
bash scripts/fuzz-smoke.sh
