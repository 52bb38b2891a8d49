#!/usr/bin/env bash
# Fetches and caches the real kernels the VM tests boot (tests/test_vm.py), and
# installs what booting them needs: QEMU (x86 and s390x) from bookworm-backports,
# udev, kmod, keyutils, busybox, virtme-ng into .venv, and the s390x cross compiler that
# builds the static runner of the s390x guest.
#
#   bash scripts/kernels.sh [--update]
#
# Kernels (scripts/kernels.lock records the last proven version of each):
#   lts   Debian's 6.12 LTS (bookworm-backports, the system's own apt sources)
#   sid   Debian sid's newest amd64 kernel (a private apt configuration under the
#         cache: the system's sources, lists and state are never touched)
#   s390x Debian sid's newest s390x kernel, with sid's static s390x busybox for its
#         initramfs (the same private configuration, for that architecture only)
# Each is extracted, not installed, under $BPFGEN_CACHE/kernels/<package version>/
# with its modules (depmod'ed), and listed in $BPFGEN_CACHE/kernels/manifest.tsv
# (name, version, vmlinuz[, busybox]). The locked version is taken while the archive has it,
# else the newest of the same family, with a warning; --update rewrites the lock.
# When the archive cannot be reached at all, or QEMU cannot be installed, the
# manifest says so in an "unavailable" line and the VM tests skip with that reason;
# a failed download or extraction fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${BPFGEN_CACHE:-$HOME/.cache/bpfgen}/kernels"
LOCK=scripts/kernels.lock
mkdir -p "$CACHE"
MANIFEST="$CACHE/manifest.tsv"
update=0
[ "${1:-}" = "--update" ] && update=1

unavailable() {
  printf 'unavailable\t%s\n' "$*" >"$MANIFEST.tmp"
  mv "$MANIFEST.tmp" "$MANIFEST"
  echo "kernels: unavailable: $*" >&2
  exit 0
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v udevadm >/dev/null 2>&1 || need+=(udev)
[ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || need+=(kmod)
command -v keyctl >/dev/null 2>&1 || need+=(keyutils)
# vng builds its guest's initramfs from the host's busybox (else "no busybox was found")
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v qemu-system-s390x >/dev/null 2>&1 || need+=(qemu-system-s390x)
command -v s390x-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-s390x-linux-gnu)
[ -f /usr/s390x-linux-gnu/lib/libc.a ] || need+=(libc6-dev-s390x-cross)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq || unavailable "apt-get update failed: no Debian archive"
  # QEMU 10 from backports: bookworm's 7.2 conflicts with the backports qemu-utils
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${need[@]}" \
    >/dev/null || unavailable "cannot install ${need[*]}"
fi
if [ ! -x .venv/bin/vng ]; then
  .venv/bin/python -m pip install -q "virtme-ng>=1.30" || unavailable "cannot install virtme-ng"
fi
DEPMOD="$(command -v depmod || echo /usr/sbin/depmod)"

locked() { awk -v k="$1" '$1 == k { print $2 }' "$LOCK" 2>/dev/null; }

# extract DEBS... into DIR and depmod VERSION there; prints the vmlinuz path
extract() {
  local dir="$1" version="$2"; shift 2
  local tmp="$dir.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for deb in "$@"; do dpkg-deb -x "$deb" "$tmp"; done
  [ -e "$tmp/lib" ] || ln -s usr/lib "$tmp/lib"
  "$DEPMOD" -b "$tmp" "$version"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

vmlinuz_of() {
  local dir="$1" version="$2"
  for f in "$dir/usr/lib/modules/$version/vmlinuz" "$dir/boot/vmlinuz-$version"; do
    [ -f "$f" ] && { echo "$f"; return; }
  done
  echo "kernels: no vmlinuz for $version in $dir" >&2
  return 1
}

rows=()

# --- Debian 6.12 LTS from bookworm-backports (the system's own sources)
lts_pkg="$(locked lts)"
if [ -z "$lts_pkg" ] || [ -z "$(apt-cache madison "$lts_pkg" 2>/dev/null)" ]; then
  $SUDO apt-get update -qq || unavailable "apt-get update failed: no Debian archive"
  newest="$(apt-cache pkgnames linux-image-6.12. | grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | sort -V | tail -n1)"
  [ -n "$newest" ] || { echo "kernels: no linux-image-6.12.*+deb12-amd64-unsigned in the archive" >&2; exit 1; }
  [ -z "$lts_pkg" ] || echo "kernels: warning: $lts_pkg is gone from the archive; using $newest" >&2
  lts_pkg="$newest"
fi
lts_ver="${lts_pkg#linux-image-}"
lts_ver="${lts_ver%-unsigned}"
lts_dir="$CACHE/$lts_ver"
if [ ! -d "$lts_dir" ]; then
  debs="$CACHE/debs-$lts_ver"
  mkdir -p "$debs"
  (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "$lts_pkg")
  extract "$lts_dir" "$lts_ver" "$debs"/*.deb
  rm -rf "$debs"
fi
rows+=("lts	$lts_ver	$(vmlinuz_of "$lts_dir" "$lts_ver")")

# --- Debian sid's newest amd64 kernel, through a private apt configuration
APTDIR="$CACHE/apt-sid"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
mirror="$(bash scripts/debian-mirror.sh)"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
  >"$APTDIR/sources.list"
APT=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o Acquire::Languages=none -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
  -o APT::Sandbox::User=root
)
sid_ver="$(locked sid)"
if [ -z "$sid_ver" ] || [ ! -d "$CACHE/$sid_ver" ] || [ "$update" = 1 ]; then
  apt-get -qq "${APT[@]}" update || unavailable "apt-get update of sid failed: no Debian archive"
  if [ -z "$sid_ver" ] || [ -z "$(apt-cache "${APT[@]}" madison "linux-binary-$sid_ver" 2>/dev/null)" ] || [ "$update" = 1 ]; then
    newest="$(apt-cache "${APT[@]}" depends linux-image-amd64 | sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -n1)"
    [ -n "$newest" ] || { echo "kernels: sid's linux-image-amd64 names no kernel" >&2; exit 1; }
    [ -z "$sid_ver" ] || [ "$sid_ver" = "$newest" ] || [ "$update" = 1 ] ||
      echo "kernels: warning: sid no longer has $sid_ver; using $newest" >&2
    sid_ver="$newest"
  fi
  if [ ! -d "$CACHE/$sid_ver" ]; then
    debs="$CACHE/debs-$sid_ver"
    mkdir -p "$debs"
    (cd "$debs" && apt-get -qq "${APT[@]}" download "linux-binary-$sid_ver" \
      "linux-modules-$sid_ver" "linux-base-$sid_ver")
    extract "$CACHE/$sid_ver" "$sid_ver" "$debs"/*.deb
    rm -rf "$debs"
  fi
fi
rows+=("sid	$sid_ver	$(vmlinuz_of "$CACHE/$sid_ver" "$sid_ver")")

# --- Debian sid's newest s390x kernel and its static busybox: the same private
# configuration, told that s390x is its only architecture and that nothing is
# installed (the system's dpkg status lists amd64 packages only)
APT390=("${APT[@]}" -o "Dir::State::Lists=$APTDIR/lists-s390x" -o APT::Architecture=s390x
  -o APT::Architectures=s390x -o Dir::State::status=/dev/null)
mkdir -p "$APTDIR/lists-s390x/partial"
s390x_ver="$(locked s390x)"
if [ -z "$s390x_ver" ] || [ ! -d "$CACHE/$s390x_ver" ] || [ "$update" = 1 ]; then
  apt-get -qq "${APT390[@]}" update || unavailable "apt-get update of sid (s390x) failed: no Debian archive"
  if [ -z "$s390x_ver" ] || [ -z "$(apt-cache "${APT390[@]}" madison "linux-binary-$s390x_ver" 2>/dev/null)" ] || [ "$update" = 1 ]; then
    newest="$(apt-cache "${APT390[@]}" depends linux-image-s390x | sed -n 's/^ *Depends: linux-image-\(.*-s390x\)$/\1/p' | head -n1)"
    [ -n "$newest" ] || { echo "kernels: sid's linux-image-s390x names no kernel" >&2; exit 1; }
    [ -z "$s390x_ver" ] || [ "$s390x_ver" = "$newest" ] || [ "$update" = 1 ] ||
      echo "kernels: warning: sid no longer has $s390x_ver; using $newest" >&2
    s390x_ver="$newest"
  fi
  if [ ! -d "$CACHE/$s390x_ver" ]; then
    debs="$CACHE/debs-$s390x_ver"
    mkdir -p "$debs"
    # the guest runs from an initramfs: no modules are loaded, so only the image
    (cd "$debs" && apt-get -qq "${APT390[@]}" download "linux-binary-$s390x_ver" busybox-static)
    tmp="$CACHE/$s390x_ver.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
    [ -x "$tmp/usr/bin/busybox" ] || { echo "kernels: no busybox in sid's busybox-static (s390x)" >&2; exit 1; }
    mv "$tmp" "$CACHE/$s390x_ver"
    rm -rf "$debs"
  fi
fi
rows+=("s390x	$s390x_ver	$(vmlinuz_of "$CACHE/$s390x_ver" "$s390x_ver")	$CACHE/$s390x_ver/usr/bin/busybox")

if [ "$update" = 1 ]; then
  printf '# kernel family -> last proven version (scripts/kernels.sh --update)\nlts\t%s\nsid\t%s\ns390x\t%s\n' \
    "$lts_pkg" "$sid_ver" "$s390x_ver" >"$LOCK"
fi
printf '%s\n' "${rows[@]}" >"$MANIFEST.tmp"
mv "$MANIFEST.tmp" "$MANIFEST"
cat "$MANIFEST"
