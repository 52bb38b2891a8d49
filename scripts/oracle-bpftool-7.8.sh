#!/usr/bin/env bash
# Builds a second oracle: bpftool 7.8.x / libbpf 1.8 from Debian sid's
# linux-source-7.2 package (falls back to the newest linux-source-7.* sid has).
#
#   scripts/oracle-bpftool-7.8.sh          # prints the binary's absolute path (last line)
#   B78="$(scripts/oracle-bpftool-7.8.sh | tail -n1)"
#
# Everything lives under CACHE = $BPFGEN_CACHE/bpftool-7.8/ (BPFGEN_CACHE defaults to
# ~/.cache/bpfgen, the cache root of scripts/selftests/build_corpus.py too; override
# this one alone with BPFGEN_BPFTOOL78_CACHE):
#   CACHE/apt/                private apt state: sources list, lists/, cache/ (the .deb)
#   CACHE/<deb-version>/      unpacked subset of the kernel tree + build
#   CACHE/current             name of the <deb-version> directory last built
# A rerun with CACHE/current's binary present (and working) does nothing and uses
# no network.  The system's apt sources/lists are never touched: apt runs with its
# own Dir::Etc::SourceList/SourceParts/Preferences, Dir::State::Lists and Dir::Cache.
# Build deps (libelf-dev zlib1g-dev libssl-dev clang-19 llvm-19 make gcc
# pkg-config) are installed from the system's normal sources when missing.
set -euo pipefail

CACHE="${BPFGEN_BPFTOOL78_CACHE:-${BPFGEN_CACHE:-$HOME/.cache/bpfgen}/bpftool-7.8}"
WANT_PKG=linux-source-7.2

# checks the binary: bpftool 7.8.x / libbpf 1.8 (strict for linux-source-7.2),
# `skeletons` feature, and a trivial `gen skeleton` run; returns non-zero on failure
verify() {
  local bin="$1" strict="$2" ver
  [ -x "$bin" ] || return 1
  ver="$("$bin" version 2>/dev/null)" || return 1
  if ! grep -q '^bpftool v7\.8\.' <<<"$ver" || ! grep -q '^using libbpf v1\.8' <<<"$ver"; then
    if [ "$strict" = 1 ]; then
      echo "oracle-bpftool-7.8: expected bpftool v7.8.x / libbpf v1.8, got: $(head -2 <<<"$ver" | tr '\n' ' ')" >&2
      return 1
    fi
    echo "oracle-bpftool-7.8: note: built $(head -2 <<<"$ver" | tr '\n' ' ')" >&2
  fi
  grep -q 'skeletons' <<<"$ver" || { echo "oracle-bpftool-7.8: feature 'skeletons' missing" >&2; return 1; }
  # a real light-skeleton run on a committed fixture
  local obj out
  obj="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fixtures/obj/minimal.bpf.o"
  if [ -f "$obj" ]; then
    out="$("$bin" gen skeleton -L "$obj" 2>&1)" || { echo "oracle-bpftool-7.8: gen skeleton -L failed: $out" >&2; return 1; }
    grep -q 'bpf_load_and_run' <<<"$out" || { echo "oracle-bpftool-7.8: gen skeleton -L produced no loader" >&2; return 1; }
  fi
  return 0
}

# fast path: already built, no network
if [ -f "$CACHE/current" ]; then
  cur="$(cat "$CACHE/current")"
  bin="$CACHE/$cur/linux/tools/bpf/bpftool/bpftool"
  strict=0; [ -f "$CACHE/$cur/.strict" ] && strict=1
  if verify "$bin" "$strict"; then
    echo "$bin"
    exit 0
  fi
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# build deps from the normal system sources (bookworm)
need=()
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
[ -f /usr/include/openssl/cms.h ] || need+=(libssl-dev)
command -v clang-19 >/dev/null 2>&1 || need+=(clang-19)
command -v llvm-strip-19 >/dev/null 2>&1 || need+=(llvm-19)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "oracle-bpftool-7.8: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# private apt configuration: sid main, own lists and cache, no system sources/pins
APTDIR="$CACHE/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
mirror="$(bash "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh")"  # the system's own archive
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
  >"$APTDIR/sources.list"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null
  -o Dir::Etc::PreferencesParts=/dev/null
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::Cache=$APTDIR/cache"
  -o Acquire::Languages=none
  -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
  -o APT::Sandbox::User=root
)
apt-get -qq "${APT_OPTS[@]}" update >/dev/null

pkg="$WANT_PKG"
strict=1
if [ -z "$(apt-cache "${APT_OPTS[@]}" madison "$pkg" 2>/dev/null)" ]; then
  pkg="$(apt-cache "${APT_OPTS[@]}" pkgnames linux-source-7. 2>/dev/null |
         grep -E '^linux-source-7\.[0-9]+$' | sort -V | tail -n1 || true)"
  [ -n "$pkg" ] || { echo "oracle-bpftool-7.8: sid has no linux-source-7.*" >&2; exit 1; }
  echo "oracle-bpftool-7.8: sid has no $WANT_PKG; using $pkg" >&2
  strict=0
fi
ver="$(apt-cache "${APT_OPTS[@]}" madison "$pkg" | awk -F'|' 'NR==1 {gsub(/ /,"",$2); print $2}')"
key="${pkg}_${ver//:/%3a}"
WORK="$CACHE/$key"
bin="$WORK/linux/tools/bpf/bpftool/bpftool"
mkdir -p "$WORK"
if [ "$strict" = 1 ]; then : >"$WORK/.strict"; else rm -f "$WORK/.strict"; fi

if ! verify "$bin" "$strict" 2>/dev/null; then
  # download the .deb (kept in the private apt cache dir, keyed by version)
  debdir="$APTDIR/cache/archives"
  deb="$(ls "$debdir/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)"
  if [ -z "$deb" ]; then
    (cd "$debdir" && apt-get -qq "${APT_OPTS[@]}" download "$pkg=$ver" >/dev/null)
    deb="$(ls "$debdir/${pkg}_${ver//:/%3a}_"*.deb | sed -n 1p)"
  fi

  # unpack only what the bpftool build needs from the tarball inside the .deb:
  # tools/ (bpftool, libbpf, tools/include uapi headers, build system),
  # kernel/bpf/ (disasm.c/.h) and scripts/bpf_doc.py (bpf_helper_defs.h)
  if [ ! -f "$WORK/linux/.unpacked" ]; then
    rm -rf "$WORK/linux" "$WORK/linux.tmp"
    mkdir -p "$WORK/linux.tmp"
    tarball="$(dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E '/usr/src/linux-source-[^/]*\.tar\.(xz|bz2|gz|zst)$' | sed -n 1p)"
    [ -n "$tarball" ] || { echo "oracle-bpftool-7.8: no source tarball in $deb" >&2; exit 1; }
    top="$(basename "$tarball")"; top="${top%.tar.*}"
    case "$tarball" in
      *.xz) z=-J ;; *.bz2) z=-j ;; *.gz) z=-z ;; *.zst) z=--zstd ;;
    esac
    dpkg-deb --fsys-tarfile "$deb" | tar -xO -f - "$tarball" |
      tar -x $z -f - -C "$WORK/linux.tmp" --strip-components=1 \
        "$top/tools" "$top/kernel/bpf" "$top/scripts/bpf_doc.py"
    : >"$WORK/linux.tmp/.unpacked"
    mv "$WORK/linux.tmp" "$WORK/linux"
  fi

  # build; CLANG must come from the environment: as a make argument it would
  # override the Makefile's clang feature probe setup and skeletons get dropped
  log="$WORK/build.log"
  start=$(date +%s)
  if ! env CLANG=clang-19 LLC=llc-19 LLVM_STRIP=llvm-strip-19 \
       make -C "$WORK/linux/tools/bpf/bpftool" -j2 SKIP_LLVM=1 \
       LLVM_STRIP=llvm-strip-19 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "oracle-bpftool-7.8: build failed, full log: $log" >&2
    exit 1
  fi
  echo "oracle-bpftool-7.8: built $pkg $ver in $(( $(date +%s) - start ))s" >&2
  verify "$bin" "$strict"
fi

echo "$key" >"$CACHE/current"
echo "$bin"
