# Sourced by the benchmarks: a store of their own, laid out as the default one is. /run/tscontain is
# a tmpfs and /var/lib/tscontain a disk, so the bench store's run dir is a link into /run: a run dir
# on disk would make every start pay for disk writes a user's start does not make.
export TSCONTAIN_ROOT="${TSCONTAIN_BENCH_ROOT:-/tmp/tscontain-bench}"
if [ ! -L "$TSCONTAIN_ROOT/run" ] && [ -d /run ]; then
  mkdir -p /run/tscontain-bench "$TSCONTAIN_ROOT"
  rm -rf "$TSCONTAIN_ROOT/run"
  ln -s /run/tscontain-bench "$TSCONTAIN_ROOT/run"
fi
