#!/usr/bin/env bash
# Prints the Debian archive URL this machine's apt is configured with, so that no
# script names an archive host of its own: the first URIs: of a deb822 source in
# /etc/apt/sources.list.d/*.sources, else the first `deb URL ...` line of a one-line
# sources file, skipping the security archive. Exits 1 when there is none.
set -euo pipefail
shopt -s nullglob
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
  url="$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /-security\/?$/) { print $i; exit } }' "$f")"
  if [ -n "$url" ]; then echo "${url%/}"; exit 0; fi
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  url="$(awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($i !~ /-security\/?$/) { print $i; exit } }' "$f")"
  if [ -n "$url" ]; then echo "${url%/}"; exit 0; fi
done
echo "debian-mirror: no Debian archive in the apt sources" >&2
exit 1
