#!/bin/sh
# Runs in the v2vm guest (see test/v2/host.sh): checks the host is pure cgroup v2, then runs the
# whole suite (test/run.sh) on the project the host built. ARGS go to ava.
set -u
cd "$(dirname "$0")/../.." || exit 1
fs=$(stat -fc %T /sys/fs/cgroup)
v1=$(grep -c '^[^ ]* [^ ]* cgroup ' /proc/mounts)
if [ "$fs" != cgroup2fs ] || [ "$v1" != 0 ]; then
  echo "test/v2/guest.sh: not a pure cgroup v2 host (/sys/fs/cgroup is $fs, $v1 v1 mounts)" >&2
  exit 1
fi
echo "pure cgroup v2: controllers $(cat /sys/fs/cgroup/cgroup.subtree_control); in cgroup $(cut -d: -f3 /proc/self/cgroup)"
echo "skipped here: the debian recipe (debootstrap needs the network; the guest has none)"
echo "skipped here: the iptables backend's suites (the firewall does not depend on the cgroup version; the native suite runs them)"
echo "skipped here, for time: the breakout probes and the Node.js path's early-kill sweeps (the native suite runs them)"
# built on the host; no network here; the CPU is emulated: the tests' deadlines are 5 times longer
export TSCONTAIN_TEST_NO_BUILD=1 TSCONTAIN_OFFLINE=1 TSCONTAIN_TEST_SLOWDOWN=5 TSCONTAIN_TEST_NO_IPTABLES=1 TSCONTAIN_TEST_LEAN=1
exec sh test/run.sh --timeout=10m "$@"
