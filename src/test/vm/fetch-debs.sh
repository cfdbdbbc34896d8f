#!/usr/bin/env bash
# Downloads (never installs) Debian packages from sid/experimental into a cache directory and prints the
# path of each .deb. Used to refresh the uAPI header snapshot (src/test/resources/uapi, linux-libc-dev) and by the VM lab (the guest kernel).
# A private apt configuration keeps the host's own package lists untouched.
#
# Usage: fetch-debs.sh PACKAGE...
# Environment: VFIOEXPORT_CACHE (default ~/.cache/vfio-export)
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
CACHE=${VFIOEXPORT_CACHE:-$HOME/.cache/vfio-export}
A=$CACHE/apt
mkdir -p "$A/lists/partial" "$A/archives/partial" "$CACHE/debs"
opts=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
# the Debian mirror this machine's apt already uses (deb822 .sources or a one-line sources.list)
mirror() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'
  } | grep -E '/debian/?$' | head -n 1
}
if [ ! -f "$A/sources.list" ]; then
  m=$(mirror || true)
  [ -n "$m" ] || { echo "fetch-debs: no Debian mirror found in the apt configuration" >&2; exit 1; }
  for s in sid experimental; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${m%/} $s main"
  done > "$A/sources.list"
fi
# refresh the lists at most once a day: sid moves, old kernel debs leave the pool
if [ -z "$(find "$A/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
  apt-get "${opts[@]}" -q update >&2
fi
cd "$CACHE/debs"
for p in "$@"; do
  ver=$(apt-cache "${opts[@]}" policy "$p" | awk '/Candidate:/{print $2}')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "fetch-debs: no candidate for $p" >&2; exit 1; }
  f=$(ls "${p}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$f" ]; then
    apt-get "${opts[@]}" -q download "$p=$ver" >&2
    f=$(ls "${p}_${ver//:/%3a}_"*.deb | head -n 1)
  fi
  echo "$CACHE/debs/$f"
done
