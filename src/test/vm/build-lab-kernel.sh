#!/usr/bin/env bash
# Builds the VM lab's own kernel from Debian's linux-source-7.2 with lab-kernel.config (IOMMUFD and the VFIO cdev
# path, which Debian's kernel leaves out) and prints the path of its bzImage. The result is cached under a key of
# the source version, the compiler and the config fragment: it is rebuilt only when one of them changes. A cold
# build takes about 15 minutes on 2 cores; ccache (kept beside it) brings a rebuild in a fresh tree to about 2.
#
# Environment: VFIOEXPORT_CACHE (default ~/.cache/vfio-export), JOBS (default: the number of CPUs)
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VFIOEXPORT_CACHE:-$HOME/.cache/vfio-export}
FRAGMENT=$HERE/lab-kernel.config
LAB=$CACHE/lab-kernel
say() { echo "build-lab-kernel: $*" >&2; }

# the kernel's build dependencies (Debian's names); rsync is not needed: no headers_install
missing=()
for t in gcc make bc bison flex xz ccache; do command -v "$t" >/dev/null || missing+=("$t"); done
[ -f /usr/include/libelf.h ] || missing+=(libelf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=()
  for t in "${missing[@]}"; do
    case $t in gcc|make) pkgs+=(build-essential);; xz) pkgs+=(xz-utils);; *) pkgs+=("$t");; esac
  done
  say "installing ${pkgs[*]}"
  apt=(apt-get -o APT::Sandbox::User=root)
  "${apt[@]}" update -q >&2 && "${apt[@]}" install -y -q --no-install-recommends "${pkgs[@]}" >&2
fi

deb=$("$HERE/fetch-debs.sh" linux-source-7.2)
version=$(dpkg-deb -f "$deb" Version)
# bump the last line when this script changes how the kernel is built
key=$({ echo "$version"; gcc --version | head -n 1; cat "$FRAGMENT"; echo "build-lab-kernel 1"; } | sha256sum | cut -c1-16)
OUT=$LAB/$key
if [ -f "$OUT/bzImage" ]; then echo "$OUT/bzImage"; exit 0; fi

# one build at a time: the cache is shared by every checkout of the user, and two builds in one tree break each
# other. A second caller waits, then finds the first one's kernel.
mkdir -p "$LAB"
exec 9> "$LAB/.lock"
if ! flock -n 9; then
  say "another build of the lab kernel is running; waiting for it"
  flock 9
fi
if [ -f "$OUT/bzImage" ]; then echo "$OUT/bzImage"; exit 0; fi

# the source, unpacked once per version (1.8 GB)
SRC=$LAB/src-$version
if [ ! -f "$SRC/.unpacked" ]; then
  say "unpacking linux-source-7.2 $version"
  rm -rf "$SRC" && mkdir -p "$SRC"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' \
    | tar -xJ -C "$SRC" --strip-components=1
  touch "$SRC/.unpacked"
fi

# a fresh build tree each time; ccache makes that cheap. Fixed build stamps keep init/version.c cacheable.
BUILD=$LAB/build-$key
rm -rf "$BUILD" && mkdir -p "$BUILD" "$OUT"
export CCACHE_DIR=$LAB/ccache CCACHE_MAXSIZE=3G CCACHE_BASEDIR=$LAB CCACHE_NOHASHDIR=true
export KBUILD_BUILD_TIMESTAMP="$version" KBUILD_BUILD_USER=vfio-export KBUILD_BUILD_HOST=vmlab
log=$OUT/build.log
mk=(make -C "$SRC" O="$BUILD" CC="ccache gcc" HOSTCC="ccache gcc" -j"${JOBS:-$(nproc)}")
"${mk[@]}" allnoconfig KCONFIG_ALLCONFIG="$FRAGMENT" > "$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
dropped=$(grep -E '^CONFIG_[A-Z0-9_]+=y' "$FRAGMENT" | while read -r sym; do
  grep -qx "$sym" "$BUILD/.config" || echo "${sym%=y}"; done)
if [ -n "$dropped" ]; then
  say "FAILED: allnoconfig dropped $(echo $dropped) (a dependency is missing from lab-kernel.config)"
  exit 1
fi
say "building bzImage ($(nproc) CPUs; log: $log)"
t0=$(date +%s)
"${mk[@]}" bzImage >> "$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
cp "$BUILD/.config" "$OUT/config"
cp "$BUILD/arch/x86/boot/bzImage" "$OUT/bzImage.tmp" && mv "$OUT/bzImage.tmp" "$OUT/bzImage"
say "built in $(( $(date +%s) - t0 )) s; $(ccache -s 2>/dev/null | grep -iE 'hits|misses' | head -n 2 | tr -s ' ' | paste -sd';')"
rm -rf "$BUILD"
echo "$OUT/bzImage"
