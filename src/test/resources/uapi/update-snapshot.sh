#!/usr/bin/env bash
# Refreshes the uAPI header snapshot beside this script from a Debian linux-libc-dev package: the headers listed
# in headers.txt and everything they include, unmodified, for each architecture in ARCHES. LayoutTest compiles
# against exactly these files (gcc -nostdinc), so it runs offline.
#
# Usage: update-snapshot.sh [linux-libc-dev_*.deb]   (default: the current sid package, via src/test/vm/fetch-debs.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
ARCHES=(x86_64-linux-gnu aarch64-linux-gnu)
deb=${1:-$(bash "$root/src/test/vm/fetch-debs.sh" linux-libc-dev | tail -n 1)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/pkg"
inc=$work/pkg/usr/include
{ grep -v '^#' "$here/headers.txt" | sed 's/.*/#include <&>/'; } > "$work/all.c"
rm -rf "$here/include"
for a in "${ARCHES[@]}"; do
  gcc -nostdinc -I "$inc/$a" -I "$inc" -M -MT x "$work/all.c" | tr ' \\' '\n\n' | grep "^$inc/" | sed "s|^$inc/||"
done | sort -u | while read -r f; do
  mkdir -p "$here/include/$(dirname "$f")"
  cp "$inc/$f" "$here/include/$f"
done
{
  echo "package: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) ($(basename "$deb"))"
  echo "sha256: $(sha256sum "$deb" | cut -d' ' -f1)"
  echo "arches: ${ARCHES[*]}"
} > "$here/SOURCE"
cat "$here/SOURCE"
(cd "$here/include" && find . -type f | sort | xargs sha256sum) > "$here/SHA256SUMS"
