# ---- the supervisor: the same in every plan (src/plan/supervisor.sh) ----
# It runs the phases above in order: tsc_host_setup, tsc_start_container (the container's PID 1 runs this
# script again with --init: tsc_container_init), tsc_at_gate, then waits, then tsc_cleanup.
# shellcheck shell=sh disable=SC2034,SC2154 # the variables are set by the plan above

say() { [ -z "$tsc_explain" ] || printf '%s\n' "$*" >&3; }

# Signals for tscontain go to the container's PID 1 (unshare --fork forwards none). Like docker,
# the third SIGINT (Ctrl-C) kills the container outright.
tsc_ints=0
tsc_forward() {
  tsc_sig=$1
  if [ "$tsc_sig" = INT ]; then
    tsc_ints=$((tsc_ints + 1))
    [ "$tsc_ints" -lt 3 ] || tsc_sig=KILL
  fi
  tsc_pid1=
  if [ -n "${tsc_upid-}" ]; then
    read -r tsc_pid1 tsc_more 2>/dev/null < "/proc/$tsc_upid/task/$tsc_upid/children"
  fi
  if [ -n "$tsc_pid1" ]; then
    kill -s "$tsc_sig" "$tsc_pid1" 2>/dev/null
  elif [ "$tsc_sig" = KILL ] && [ -n "${tsc_upid-}" ]; then
    kill -s KILL "$tsc_upid" 2>/dev/null   # no PID 1 yet: unshare --kill-child takes it along
  fi
  return 0
}

# The supervisor ends: the watcher (below) goes first, then the exit code is the container's.
tsc_end() {
  [ -z "$tsc_watch" ] || kill "$tsc_watch" 2>/dev/null
  exit "$1"
}

# Detached containers: stdout and stderr go through a FIFO each to an awk that timestamps every
# line and keeps at most tsc_log_cap bytes per file (the current file and one rotated). The file's
# name reaches awk and the sh of system() through the environment, never as program text.
tsc_log() {
  tsc_f="$tsc_ctr/$1.log"
  export tsc_f
  # shellcheck disable=SC2086 # tsc_awk_opts is one option or none
  exec "$tsc_awk" $tsc_awk_opts -v s="$1" -v cap="$tsc_log_cap" '
    BEGIN { f = ENVIRON["tsc_f"]; while ((getline l < "/proc/stat") > 0) if (l ~ /^btime /) bt = substr(l, 7)
            close("/proc/stat") }
    { getline up < "/proc/uptime"; close("/proc/uptime"); split(up, u, " ")
      line = sprintf("%.2f %s %s", bt + u[1], s, $0); print line >> f; fflush(f); n += length(line) + 1
      if (n > cap) { close(f); system("mv -f \"$tsc_f\" \"$tsc_f.1\""); n = 0 } }'
}

# Is fd $1 something the container may hold itself: a pipe, a socket, a device like /dev/null?
tsc_plain() {
  [ -p "/proc/self/fd/$1" ] || [ -S "/proc/self/fd/$1" ] || { [ -c "/proc/self/fd/$1" ] && [ ! -t "$1" ]; }
}

# Without -t the container gets pipes, as with docker: never the caller's terminal (it could read
# the caller's keys and change the terminal's modes) nor a file of the caller's, which it could open
# again through /proc/self/fd, for writing. A cat copies each such stream; a terminal as stdin (-i)
# stays: the container reads it, and it is not the container's controlling terminal (become.pl).
tsc_pipe_stdio() {
  tsc_o=; tsc_e=; tsc_i=
  tsc_plain 1 || tsc_o="$tsc_run/stdout"
  tsc_plain 3 || tsc_e="$tsc_run/stderr"
  [ "$tsc_pipes" != io ] || [ -t 5 ] || tsc_plain 5 || tsc_i="$tsc_run/stdin"
  [ -n "$tsc_o$tsc_e$tsc_i" ] || return 0
  mkfifo ${tsc_o:+"$tsc_o"} ${tsc_e:+"$tsc_e"} ${tsc_i:+"$tsc_i"} || { tsc_discard; tsc_end 125; }
  if [ -n "$tsc_i" ]; then cat <&5 >"$tsc_i" 3>&- & tsc_cat_in=$!; exec 5<"$tsc_i"; fi
  if [ -n "$tsc_o" ]; then cat <"$tsc_o" 5<&- & tsc_cats="$tsc_cats $!"; exec 1>"$tsc_o"; fi
  if [ -n "$tsc_e" ]; then cat <"$tsc_e" 1>&3 5<&- & tsc_cats="$tsc_cats $!"; exec 3>"$tsc_e"; fi
}

tsc_supervise() {
  tsc_rc=0; tsc_oomkilled=false; tsc_watch=; tsc_orphan=; tsc_cats=; tsc_cat_in=
  # the programs started here need no translations; the container gets only its own environment
  export LC_ALL=C
  exec 3>&2 5<&0   # 3: the container's stderr, 5: its stdin (a background job's own is /dev/null)
  trap 'tsc_orphan=1; tsc_forward KILL' ALRM   # tscontain died, so the container dies too
  if [ "${1-}" = --die-with-parent ]; then
    # fd 7 is a pipe from tscontain that it never writes: the read returns when tscontain exits or
    # is killed, even by SIGKILL. What setpriv --pdeathsig does, without starting a program.
    { read -r tsc_x <&7; kill -s ALRM $$; } 2>/dev/null &
    tsc_watch=$!
    exec 7<&-
  fi
  # set -e: a failing step ends this shell, and the EXIT trap discards what was made so far
  trap 'echo "tscontain: preparing the container failed" >&2; tsc_discard; tsc_end 125' EXIT
  # stopped while it is prepared: nothing of it is kept (there is no PID 1 yet to pass a signal to)
  trap 'trap - EXIT; tsc_discard; tsc_end 143' TERM
  trap 'trap - EXIT; tsc_discard; tsc_end 130' INT
  trap 'trap - EXIT; tsc_discard; tsc_end 129' HUP
  set -e
  tsc_host_setup
  set +e
  trap - EXIT
  [ -z "$tsc_orphan" ] || { tsc_discard; tsc_end 125; }
  if [ -n "$tsc_detach" ]; then
    mkfifo "$tsc_run/stdout" "$tsc_run/stderr"
    tsc_log out < "$tsc_run/stdout" &
    tsc_log err < "$tsc_run/stderr" &
    exec 1>"$tsc_run/stdout" 3>"$tsc_run/stderr" 5</dev/null
  fi
  [ -z "$tsc_pipes" ] || tsc_pipe_stdio
  for tsc_sig in TERM INT HUP QUIT USR1 USR2; do
    # shellcheck disable=SC2064 # the signal's name is meant to be expanded now
    trap "tsc_forward $tsc_sig" "$tsc_sig"
  done

  tsc_start_container
  [ -z "$tsc_orphan" ] || tsc_forward KILL   # tscontain died before there was an unshare to kill
  # the gate's steps act on the running PID 1: if one fails, the container must not start (set -e
  # holds in the subshell only when it is not part of an && or || list)
  # (its errors are said only by a supervisor that is still there to say them)
  ( set -e; tsc_at_gate ) 2>"$tsc_run/gate.err"
  # shellcheck disable=SC2181
  if [ $? != 0 ]; then
    sed 's/^/tscontain: /' "$tsc_run/gate.err" >&2
    echo "tscontain: connecting the container failed" >&2
    tsc_forward KILL
  else
    tsc_open_gate
  fi
  while :; do
    wait "$tsc_upid" 2>/dev/null; tsc_rc=$?   # 2>: sh's own "Killed", said below in tscontain's words
    kill -0 "$tsc_upid" 2>/dev/null || break   # still there: wait was interrupted by a signal
  done
  # -t: the relay copies the last of the output and gives the caller's terminal back first
  while [ -n "${tsc_relay-}" ]; do wait "$tsc_relay"; kill -0 "$tsc_relay" 2>/dev/null || tsc_relay=; done

  if [ ! -s "$tsc_run/started" ]; then
    if [ -z "$tsc_orphan" ]; then   # else tscontain was killed, and so was the container: nothing to say
      # the sigprocmask line: PID 1 was killed
      sed -e '/sigprocmask unblock failed/d' -e 's/^/tscontain: /' "$tsc_run/unshare.err" >&2
      echo "tscontain: the container did not start" >&2
    fi
    tsc_rc=125
  else
    # util-linux 2.38 unshare reports a child killed by SIGKILL as exit 1 and this message
    while read -r tsc_line; do
      case $tsc_line in
        *'sigprocmask unblock failed'*) tsc_rc=137 ;;
        *) echo "tscontain: $tsc_line" >&2 ;;
      esac
    done < "$tsc_run/unshare.err"
  fi
  tsc_oom_count
  if [ "$tsc_oom" -gt 0 ]; then
    tsc_rc=137; tsc_oomkilled=true
    echo "tscontain: container $tsc_short ran out of memory (limit $tsc_memory_limit) and was killed (OOM)" >&3
  fi
  trap '' TERM INT HUP QUIT USR1 USR2 ALRM
  if [ -n "$tsc_detach" ]; then exec 1>/dev/null 3>&-; wait; fi   # the log writers finish
  if [ -n "$tsc_cats" ]; then   # the copies end with the output, and give up the input
    exec 1>/dev/null 3>&2 5<&-
    [ -z "$tsc_cat_in" ] || kill "$tsc_cat_in" 2>/dev/null
    # shellcheck disable=SC2086 # pids
    wait $tsc_cats
  fi
  if [ -s "$tsc_run/started" ]; then tsc_cleanup; else tsc_discard; fi
  tsc_end "$tsc_rc"
}

case "${1-}" in
  --init) shift; tsc_container_init "$@" ;;
  *) tsc_supervise "$@" ;;
esac
