#!/usr/bin/env bash
# Builds what the VM boots: Debian sid's kernel (downloaded, never installed) and a busybox initramfs with the
# VFIO, 9p and IOMMU modules and the guest init of this directory. Prints the image directory.
# With "lab": only the initramfs, without modules, for the lab kernel (build-lab-kernel.sh), which has every
# driver built in.
#
# Usage: build-image.sh [debian|lab]   (default debian)
# Environment: KVER (Debian's kernel ABI name), VFIOEXPORT_CACHE (default ~/.cache/vfio-export)
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
KERNEL=${1:-debian}
KVER=${KVER:-7.2.13+deb14-amd64}
CACHE=${VFIOEXPORT_CACHE:-$HOME/.cache/vfio-export}
MODS="vfio vfio_iommu_type1 vfio-pci-core vfio-pci 9p 9pnet 9pnet_virtio overlay"

# the initramfs, rebuilt when the guest init changed (by content: checkouts give files fresh times)
stamp=$(sha256sum "$HERE/init" | cut -d' ' -f1)
fresh() { [ -f "$IMG/initramfs.cpio.gz" ] && [ "$(cat "$IMG/initramfs.init-sha256" 2>/dev/null)" = "$stamp" ]; }
# busybox and the init; the caller adds modules to $R, then pack
start_initrd() {
  R=$IMG/initrd
  rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,mnt/host}
  cp /bin/busybox "$R/bin/busybox"
  file -L "$R/bin/busybox" | grep -q 'statically linked' || { echo "build-image: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }
  cp "$HERE/init" "$R/init" && chmod +x "$R/init"
}
pack() {
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$IMG/initramfs.cpio.gz.tmp"
  mv "$IMG/initramfs.cpio.gz.tmp" "$IMG/initramfs.cpio.gz"
  echo "$stamp" > "$IMG/initramfs.init-sha256"
  echo "$IMG"
}

case $KERNEL in
  lab)
    IMG=$CACHE/vm/lab
    mkdir -p "$IMG"
    fresh && { echo "$IMG"; exit 0; }
    start_initrd
    pack
    exit 0;;
  debian) IMG=$CACHE/vm/$KVER;;
  *) echo "build-image: unknown kernel '$KERNEL' (debian or lab)" >&2; exit 1;;
esac

# the kernel: linux-image-$KVER is only a meta package, the files are in base/binary/modules
if [ ! -f "$IMG/kernel/usr/lib/modules/$KVER/vmlinuz" ]; then
  rm -rf "$IMG/kernel" && mkdir -p "$IMG/kernel"
  for deb in $("$HERE/fetch-debs.sh" "linux-base-$KVER" "linux-binary-$KVER" "linux-modules-$KVER"); do
    dpkg-deb -x "$deb" "$IMG/kernel"
  done
fi
SRC=$IMG/kernel/usr/lib/modules/$KVER

fresh && { echo "$IMG"; exit 0; }
start_initrd
mkdir -p "$R/lib/modules/$KVER"
cp "$SRC"/modules.order "$SRC"/modules.builtin "$SRC"/modules.builtin.modinfo "$R/lib/modules/$KVER/"
# resolve module dependencies with the host's kmod against the unpacked tree
mkdir -p "$IMG/kdep/lib/modules" && ln -sfn "$SRC" "$IMG/kdep/lib/modules/$KVER"
depmod -b "$IMG/kdep" "$KVER"
need=$(for m in $MODS; do modprobe -d "$IMG/kdep" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'; done | sort -u)
for f in $need; do
  rel=${f#"$IMG/kdep/lib/modules/$KVER/"}; rel=${rel#"$SRC/"}
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
  # busybox modprobe cannot read .ko.xz: store them decompressed
  case $f in *.xz) xz -dc "$f" > "$R/lib/modules/$KVER/${rel%.xz}";; *) cp "$f" "$R/lib/modules/$KVER/$rel";; esac
done
depmod -b "$R" "$KVER"
pack
