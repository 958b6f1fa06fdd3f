#!/bin/sh
# npm run bench: start-up time of `tscontain run --rm busybox /bin/true` against raw unshare,
# node -e 0 and (when installed) runc, with hyperfine. Target: tscontain <= 1.5 x (node -e 0 + raw unshare)
# with --network none; the bridge's cost and the cost of the containment layers are printed beside it.
set -eu
cd "$(dirname "$0")/.."
[ -n "${TSC_CLEAN_FDS-}" ] || TSC_CLEAN_FDS=1 exec sh bench/clean-fds sh "$0" "$@"   # as from a terminal
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
npm run build --silent
. bench/store.sh
node bin/tscontain.cjs rootfs build busybox >/dev/null
R="$TSCONTAIN_ROOT/lib/images/busybox/rootfs"
out=$(mktemp -d /tmp/tscontain-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
set -- \
  "node -e 0=node -e 0" \
  "raw unshare=unshare --uts --pid --mount --ipc --fork chroot $R /bin/true" \
  "tscontain run=bin/tscontain run --rm --network none busybox /bin/true" \
  "tscontain plan=bin/tscontain plan --rm --network none busybox /bin/true" \
  "node .cjs run=node bin/tscontain.cjs run --rm --network none busybox /bin/true" \
  "run bridge=bin/tscontain run --rm busybox /bin/true" \
  "run unconfined=bin/tscontain run --rm --network none --security-opt seccomp=unconfined busybox /bin/true" \
  "run privileged=bin/tscontain run --rm --network none --privileged busybox /bin/true"
if command -v runc >/dev/null; then
  mkdir -p "$out/bundle" && cp -a "$R" "$out/bundle/rootfs"
  (cd "$out/bundle" && runc spec)
  node -e 'const f=process.argv[1],c=JSON.parse(require("fs").readFileSync(f));c.process.terminal=false;c.process.args=["/bin/true"];require("fs").writeFileSync(f,JSON.stringify(c))' "$out/bundle/config.json"
  set -- "$@" "runc run=runc run -b $out/bundle tscontain-bench"
fi
node bench/startup.mjs "$out" "$@"
echo
node bench/memory.mjs
echo
sh bench/import.sh
echo
echo "where the start-up time goes (bench/trace.sh, one run):"
sh bench/trace.sh
