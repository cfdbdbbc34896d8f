#!/bin/sh
# Inside the guest: starts the daemon on the real kernel (bin/vfio-exportd --backend linux) and drives it with the
# command-line client: list, show, export and hold a slice of the NVMe CMB, reset (the export is revoked and
# restored), memory off/on, a refused reset, release; on a kernel with iommufd, the importer (importer-smoke.py).
# Exit status 0 when every step answered as expected.
#
# Usage: daemon-smoke.sh PROJECT_DIR OUTPUT_DIR
set -u
P=$1
OUT=$2
S=/tmp/vfio-exportd.sock
NVME=0000:00:07.0
EDU=0000:00:06.0
failed=0
check() { # description, command...: the command must succeed
  d=$1; shift
  if "$@"; then echo "SMOKE ok   $d"; else echo "SMOKE FAIL $d"; failed=1; fi
}
cli() { "$P/bin/vfio-export" --socket "$S" "$@"; }
# true when process $1 holds a dma-buf fd exported by vfio_pci_core of 8192 bytes (its fdinfo is kept in OUT)
holds_vfio_dmabuf() {
  for f in /proc/$1/fd/*; do
    case "$(readlink "$f")" in
      /dmabuf:*)
        info=/proc/$1/fdinfo/${f##*/}
        cp "$info" "$OUT/fdinfo.txt"
        grep -q '^exp_name:[[:space:]]*vfio_pci_core$' "$info" && grep -q '^size:[[:space:]]*8192$' "$info" && return 0
        ;;
    esac
  done
  return 1
}
# polls for a condition every 0.2 s, at most $1 seconds
within() {
  n=$(($1 * 5)); shift
  while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
  return 1
}

"$P/bin/vfio-exportd" --backend linux --socket "$S" > "$OUT/daemon.log" 2>&1 &
daemon=$!
check "daemon listening" within 120 test -S "$S"

check "devices lists the four lab devices" sh -c "'$P/bin/vfio-export' --socket '$S' devices | tee '$OUT/devices.txt' | grep -c '^0000:00:0[4-7].0' | grep -qx 4"
cat "$OUT/devices.txt"
check "device shows the 16 MiB CMB" sh -c "'$P/bin/vfio-export' --socket '$S' device $NVME | tee '$OUT/device.txt' | grep -Eq '^2 +BAR2 +mmio +16 MiB'"
cat "$OUT/device.txt"

# started directly (bin/vfio-export execs the JVM), so $! is the client itself; it releases on SIGTERM
"$P/bin/vfio-export" --socket "$S" export --region 2 --offset 4K --length 8K $NVME > "$OUT/export.txt" 2>&1 &
holder=$!
check "export of 8 KiB from BAR2 is held" within 60 grep -q '^exported' "$OUT/export.txt"
cat "$OUT/export.txt"
check "the client holds a real dma-buf fd (fdinfo: exp_name vfio_pci_core, size 8192)" holds_vfio_dmabuf "$holder"
cat "$OUT/fdinfo.txt" 2>/dev/null
"$P/bin/vfio-export" --socket "$S" watch --device $NVME > "$OUT/events.txt" 2>&1 &
watcher=$!
check "a subscriber is watching" within 60 grep -q '^watching' "$OUT/events.txt"
check "reset revokes and restores the export" sh -c "'$P/bin/vfio-export' --socket '$S' reset $NVME | tee '$OUT/reset.txt' | grep -q 'revoked 1, restored 1'"
cat "$OUT/reset.txt"
check "the subscriber saw export.revoked and export.restored (cause reset)" within 60 sh -c \
  "grep -Eq 'export\.revoked +[^ ]+ +reset' '$OUT/events.txt' && grep -Eq 'export\.restored +[^ ]+ +reset' '$OUT/events.txt'"
kill -TERM "$watcher"
wait "$watcher"
cat "$OUT/events.txt"
check "memory off" cli memory $NVME off
check "memory on" cli memory $NVME on
check "reset without a reset method is refused with EINVAL" sh -c "! '$P/bin/vfio-export' --socket '$S' reset $EDU 2> '$OUT/reset-edu.txt'; grep -q EINVAL '$OUT/reset-edu.txt'"
cat "$OUT/reset-edu.txt"
if [ -e /dev/iommu ]; then
  # a kernel with iommufd: the daemon's importer, driven over the socket (importer-smoke.py prints SMOKE lines)
  python3 "$P/src/test/vm/importer-smoke.py" "$P" "$S" $NVME || failed=1
fi
kill -TERM "$holder"
wait "$holder"
check "the export is released when the client lets go" grep -q '^released' "$OUT/export.txt"

kill -TERM "$daemon"
wait "$daemon"
check "daemon stopped cleanly" grep -q 'vfio-exportd: stopped' "$OUT/daemon.log"
cat "$OUT/daemon.log"
exit $failed
