#!/usr/bin/env bash
# Everything a fresh machine of this kind needs before bpfgen_fast can run:
# system packages (scripts/setup-system.sh), a Python venv at .venv with the
# build and test tools, and the Rust core built into it with maturin.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.deps-stamp
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "maturin>=1.5,<2" "pytest>=8" "pytest-benchmark>=4" \
    "pyelftools>=0.31" "hypothesis>=6" "ruff>=0.6" "mypy>=1.10" \
    "cryptography>=44" "asn1crypto>=1.5" "python-pkcs11>=0.7"
  echo "$want" > "$stamp"
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# The native bpfgen-fast executable is a wheel of its own (cli/pyproject.toml), on which
# the Python package depends: built and installed first, so the dependency is met.
# Linked statically (glibc's libc.a): no dynamic loader work at exec, about a sixth
# of a small object's whole process time.
rm -rf target/cli-wheel
RUSTFLAGS="-C target-feature=+crt-static" maturin build --release -q -m cli/Cargo.toml \
  --target "$(rustc -vV | sed -n 's/^host: //p')" --out target/cli-wheel
python -m pip install -q --force-reinstall --no-deps target/cli-wheel/bpfgen_fast_cli-*.whl
maturin develop --release -q
# A venv made before the split still lists bin/bpfgen-fast as the Python package's
# console script, which that reinstall just removed: put the native one back.
if ! head -c4 .venv/bin/bpfgen-fast 2>/dev/null | grep -q ELF; then
  python -m pip install -q --force-reinstall --no-deps target/cli-wheel/bpfgen_fast_cli-*.whl
fi
