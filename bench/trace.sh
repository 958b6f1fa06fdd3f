#!/bin/sh
# Where the start-up time goes: one `tscontain run --rm busybox /bin/true`, program by program.
# Every process start (fork), program start (exec) and end (exit) the kernel saw, from its
# tracefs scheduler events, in ms since the command started. Nothing is sampled and nothing is slowed
# down the way strace would: the kernel records these events anyway.
set -eu
cd "$(dirname "$0")/.."
[ -n "${TSC_CLEAN_FDS-}" ] || TSC_CLEAN_FDS=1 exec sh bench/clean-fds sh "$0" "$@"   # as from a terminal
[ "$(id -u)" = 0 ] || { echo "trace: run as root" >&2; exit 1; }
. bench/store.sh
node bin/tscontain.cjs rootfs build busybox >/dev/null
node bin/tscontain.cjs run --rm busybox /bin/true   # warm: the /dev skeleton, the page cache

T=/sys/kernel/tracing
mounted=
if [ ! -d $T/events/sched ]; then mount -t tracefs tracefs $T; mounted=1; fi
events="sched_process_fork sched_process_exec sched_process_exit"
out=$(mktemp /tmp/tscontain-trace.XXXXXX)
done_() {
  echo 0 > $T/tracing_on
  for e in $events; do echo 0 > $T/events/sched/$e/enable; done
  echo > $T/trace
  [ -z "$mounted" ] || umount $T
  rm -f "$out"
}
trap done_ EXIT
echo 0 > $T/tracing_on; echo > $T/trace
for e in $events; do echo 1 > $T/events/sched/$e/enable; done
echo 1 > $T/tracing_on
${TSC_TRACE_CMD:-bin/tscontain} run --rm busybox /bin/true
echo 0 > $T/tracing_on
cp $T/trace "$out"

# node's own threads are left out (they start and end with it); the rest is one line per event
awk '
  /^#/ { next }
  {
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) t = substr($i, 1, length($i) - 1) * 1000
    ev = $0; sub(/^.*: sched_process_/, "", ev)
    if (!t0 && ev ~ /^exec/) { t0 = t; p = t }   # the command itself
    if (!t0) next
    if (ev ~ /^fork: comm=node .*child_comm=node/) next
    if (ev ~ /^exit: comm=node/ && ev !~ /group_dead=true/) next
    if (ev ~ /^exit: comm=node/) thr[++n] = t
    split(ev, w, " ")
    what = w[1]
    if (what == "exec:") { sub(/^exec: filename=/, "", ev); sub(/ pid=.*/, "", ev); line = "start  " ev }
    else if (what == "fork:") { sub(/^.*child_pid=/, "", ev); line = "fork   (" $1 " makes pid " ev ")" }
    else { sub(/^exit: comm=/, "", ev); sub(/ pid=/, " ", ev); sub(/ prio.*/, "", ev); line = "exit   " ev }
    printf "%7.1f ms  %+6.1f  %s\n", t - t0, t - p, line
    p = t
  }' "$out"
