#!/usr/bin/env bash
# Installs the system packages bpfgen_fast's tests need on a fresh Debian 12
# machine: the oracle (bpftool 7.5.0 / libbpf 1.5 from bookworm-backports),
# clang-19 for compiling BPF fixtures, libbpf-dev for skel_internal.h, and the
# linux-source-6.12 tarball (libbpf source, selftests corpus), and SoftHSM2
# (a PKCS#11 token for the signing tests).
# Idempotent: does nothing when everything is already present.
set -euo pipefail

need=()
command -v bpftool >/dev/null 2>&1 && bpftool version 2>/dev/null | grep -q 'v7.5.0' || need+=(bpftool)
command -v clang-19 >/dev/null 2>&1 || need+=(clang-19 llvm-19)
[ -f /usr/include/bpf/skel_internal.h ] || need+=(libbpf-dev)
[ -f /usr/src/linux-source-6.12.tar.xz ] || need+=(linux-source-6.12)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/include/libelf.h ] || need+=(libelf-dev zlib1g-dev)
command -v make >/dev/null 2>&1 || need+=(make)
# a PKCS#11 token for the signing tests (tests/test_pkcs11.py)
[ -f /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # the same archive the system already uses, with the backports suite added
  mirror="$(bash "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh")"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$mirror" /usr/share/keyrings/debian-archive-keyring.gpg |
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packages only in backports come from there; the rest from bookworm.
bp=() plain=()
for p in "${need[@]}"; do
  case "$p" in bpftool|linux-source-6.12) bp+=("$p") ;; *) plain+=("$p") ;; esac
done
[ ${#plain[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${plain[@]}"
[ ${#bp[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${bp[@]}"

if ! bpftool version | grep -q 'v7.5.0'; then
  echo "setup-system: expected bpftool v7.5.0, got: $(bpftool version | sed -n 1p)" >&2
  exit 1
fi
