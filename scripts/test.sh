#!/usr/bin/env bash
# The test command: installs packages, builds with warnings as errors, runs the
# unit and integration tests, then the unit and core integration tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer. Needs root (FUSE mounts,
# loop devices, drop_caches). Exit status non-zero on any failure.
#   scripts/test.sh            everything
#   scripts/test.sh -L unit    only what ctest selects (args go to ctest)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the integration tests mount filesystems; run as root (sudo scripts/test.sh)" >&2
  exit 1
fi
bash scripts/install-deps.sh
bash scripts/build.sh
modprobe fuse 2>/dev/null || true

export CACHEFUSE_TEST_TMPDIR=${CACHEFUSE_TEST_TMPDIR:-/var/tmp}
echo "== tests (build/)"
(cd build && ctest --output-on-failure --timeout 1500 "$@")

if [ $# -eq 0 ] && [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== tests under ASan+UBSan (build-asan/)"
  BUILD_DIR=build-asan bash scripts/build.sh -DCACHEFUSE_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure --timeout 1500 -L unit)
  (cd build-asan && ctest --output-on-failure --timeout 1500 -R 'integration: test_(skeleton|cache_core|io_engine|read_helper)')
fi
