#!/bin/sh
# The whole test suite: build, unit tests (no root), integration tests (as root), then a leak check.
set -u
cd "$(dirname "$0")/.."
# TSCONTAIN_TEST_NO_BUILD=1: use the dist/ that is there (the v2 guest runs what the host built)
[ "${TSCONTAIN_TEST_NO_BUILD:-}" = 1 ] || npm run build --silent || exit 1
export TSCONTAIN_ROOT="${TSCONTAIN_TEST_ROOT:-/tmp/tscontain-test}"
if [ "$(id -u)" = 0 ]; then
  node bin/tscontain.cjs rootfs build busybox >/dev/null || exit 1
fi
rc=0
npx ava "$@" || rc=$?
node dist/test/leak-check.js || rc=1
# the bridge and its nft table may stay while empty; the suite leaves the machine as it found it
[ "$(id -u)" != 0 ] || node bin/tscontain.cjs network prune >/dev/null || { echo "network prune failed"; rc=1; }
echo "tscontain-test: status $rc"
exit $rc
