#!/usr/bin/env bash
# The main job on the example object shipped in the repo: install everything
# (first run only), then generate the light skeleton exactly as
# `bpftool gen skeleton -L` would, plus the raw loader blobs, and show them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
out=examples/out
mkdir -p "$out"
bpfgen-fast inspect examples/hello.bpf.o
bpfgen-fast gen loader examples/hello.bpf.o -o "$out/hello"
if bpfgen-fast gen skeleton -L examples/hello.bpf.o -o "$out/hello.lskel.h"; then
  echo "wrote $out/hello.lskel.h ($(wc -c < "$out/hello.lskel.h") bytes)"
  if command -v bpftool >/dev/null && bpftool gen skeleton -L examples/hello.bpf.o > "$out/hello.bpftool.lskel.h" 2>/dev/null; then
    if cmp -s "$out/hello.lskel.h" "$out/hello.bpftool.lskel.h"; then
      echo "identical to bpftool $(bpftool version | head -1 | awk '{print $2}')'s header"
    else
      echo "differs from bpftool's header" >&2
      exit 1
    fi
  fi
fi
echo "wrote $out/hello.data.bin, $out/hello.insns.bin, $out/hello.json"
