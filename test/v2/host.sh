#!/bin/sh
# The whole test suite on a pure cgroup v2 host: a QEMU guest booted with cgroup_no_v1=all (as root).
# Uses the v2vm tool that lives beside the project (../shared/tools/v2vm, or V2VM_TOOL): builds its
# guest when missing or when the package list below changed, builds the project here (the guest has
# no network), runs test/v2/guest.sh in the guest and exits with its status. ARGS go to ava.
# Env: V2VM_DIR (the guest; default /var/tmp/tscontain-v2vm), V2VM_TOOL, V2VM_TIMEOUT (seconds) and
# the other knobs of run-in-v2vm.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
[ "$(id -u)" = 0 ] || { echo "test:v2: run as root (it boots a VM and runs containers in it)" >&2; exit 1; }
tool=${V2VM_TOOL:-../shared/tools/v2vm}
[ -r "$tool/run-in-v2vm.sh" ] || { echo "test:v2: the v2vm tool is not at $tool: set V2VM_TOOL" >&2; exit 1; }
export V2VM_DIR="${V2VM_DIR:-/var/tmp/tscontain-v2vm}"
# a guard against a hung guest, not the time budget: a slow run still reports every test
export V2VM_TIMEOUT="${V2VM_TIMEOUT:-3600}"
# No address space randomization in the guest: QEMU then reuses its translation of a shared
# library's code from one process to the next, and starting a program gets several times cheaper
# (the suite starts thousands). Nothing the suite tests depends on it.
export V2VM_APPEND="norandmaps ${V2VM_APPEND:-}"
# What the suite needs in the guest beyond the tool's base (util-linux, iproute2, procps, busybox-static,
# tar): make and a C compiler for the demos, skopeo for the archive fixtures, shellcheck for the
# plan lint, nftables for networking. Not debootstrap: the debian recipe needs the network.
# netavark: skopeo's dependencies need a container-network-stack, which debootstrap does not choose.
export V2VM_PACKAGES=make,gcc,libc6-dev,tar,iproute2,skopeo,netavark,shellcheck,nftables

stamp() {
  echo "packages=$V2VM_PACKAGES node=$(node --version)"
  cat "$tool/build-guest.sh" "$tool/init.sh" | cksum
}
if [ "$(cat "$V2VM_DIR/tscontain-guest" 2>/dev/null)" != "$(stamp)" ]; then
  echo "test:v2: building the guest in $V2VM_DIR" >&2
  rm -f "$V2VM_DIR/tscontain-guest"
  sh "$tool/build-guest.sh" "$V2VM_DIR" || exit 1
  stamp > "$V2VM_DIR/tscontain-guest"
fi

[ -d node_modules ] || npm ci --no-audit --no-fund || exit 1
npm run build --silent || exit 1
t0=$(date +%s)
rc=0
sh "$tool/run-in-v2vm.sh" . sh test/v2/guest.sh "$@" || rc=$?
echo "test:v2: the suite ran on pure cgroup v2 in $(( $(date +%s) - t0 ))s, status $rc" >&2
if [ "$rc" != 0 ]; then
  console=${V2VM_CONSOLE:-$V2VM_DIR/console.log}
  echo "test:v2: the guest's kernel console ($console), last lines:" >&2
  tail -n 40 "$console" >&2
fi
exit "$rc"
