#!/usr/bin/env bash
# The main job, for a newcomer: installs packages, builds, makes a demo source
# tree, mounts it with cachefuse on the default cache dir, reads it cold and
# warm, and shows the cache counters. Leaves the mount up for you to try.
#   bash scripts/demo.sh            demo under /var/tmp/cachefuse-demo
#   bash scripts/demo.sh --stop     unmount the demo
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-/var/tmp/cachefuse-demo}
SRC=$DEMO/source
MNT=$DEMO/mnt
if [ "${1:-}" = "--stop" ]; then
  fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null || true
  echo "demo unmounted"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/demo.sh: run as root (sudo scripts/demo.sh): it installs packages" >&2
  exit 1
fi
bash scripts/install-deps.sh
bash scripts/build.sh
BIN=$PWD/build/bin

mkdir -p "$SRC/photos" "$SRC/docs" "$MNT"
if [ ! -f "$SRC/dataset.bin" ]; then
  echo "making a demo source tree in $SRC (a stand-in for a slow NFS/SMB mount)"
  dd if=/dev/urandom of="$SRC/dataset.bin" bs=1M count=256 status=none
  for i in $(seq 1 20); do head -c $((i * 50000)) /dev/urandom >"$SRC/photos/img$i.jpg"; done
  cp README.md "$SRC/docs/"
fi
if mountpoint -q "$MNT"; then fusermount3 -u "$MNT"; fi

# No cache_dir: the default (/var/cache/cachefuse as root). The demo source is
# slowed down to 5 ms per read, as a network server would be.
"$BIN/cachefuse" "$SRC" "$MNT" -o debug_backend_latency_ms=5
echo "mounted $SRC on $MNT (cache: /var/cache/cachefuse)"

t() { local s; s=$(date +%s.%N); "$@" >/dev/null; printf "%.2f" "$(echo "$(date +%s.%N) - $s" | bc)"; }
# A demo run before this one left the files cached: start cold every time.
for f in "$MNT/dataset.bin" "$MNT"/photos/*; do "$BIN/cachefusectl" forget "$f" >/dev/null; done
sync; echo 3 >/proc/sys/vm/drop_caches
echo "first read (from the source):  $(t cat "$MNT/dataset.bin" "$MNT"/photos/*) s"
fusermount3 -u "$MNT"
"$BIN/cachefuse" "$SRC" "$MNT" -o debug_backend_latency_ms=5
sync; echo 3 >/proc/sys/vm/drop_caches
echo "after a remount (from cache): $(t cat "$MNT/dataset.bin" "$MNT"/photos/*) s"
cmp "$SRC/dataset.bin" "$MNT/dataset.bin" && echo "bytes identical to the source"
"$BIN/cachefusectl" stats "$MNT" | grep -E 'bytes\.|read\.|cache\.state|io\.engine'
echo "cached ranges of dataset.bin: $(getfattr --absolute-names --only-values -n user.cachefuse.cached "$MNT/dataset.bin")"
echo
echo "The demo stays mounted on $MNT. Try: ls -l $MNT; $BIN/cachefusectl status $MNT"
echo "Stop it with: bash scripts/demo.sh --stop"
