#!/usr/bin/env bash
# Rebuilds examples/hello.bpf.o (committed, so the example needs no compiler).
set -euo pipefail
cd "$(dirname "$0")"
clang-19 -O2 -g --target=bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu \
  -fdebug-prefix-map="$PWD"=. -c hello.bpf.c -o hello.bpf.o
