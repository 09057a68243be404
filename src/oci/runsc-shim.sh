#!/bin/sh
# runsc-shim.sh: what conmon runs as its "runtime" for a runsc subcontainer (S1).
#
# Why: a runsc subcontainer has no host PID (it lives inside the sentry), its stdio is
# the stdio of `runsc start` (not of `runsc create`), and its exit status only comes
# from `runsc wait <id>`. conmon alone would watch the sandbox PID that `runsc create`
# writes, record -1, and never see the output. So on `create` this shim runs
# `runsc create`, then forks a small proxy and hands conmon the proxy's PID as "the
# container process". The proxy holds conmon's stdio pipes, waits on the `start` fifo
# until sandlot triggers the start, runs `runsc start` with those pipes (the output
# flows into conmon and the CRI log), then `runsc wait`, and exits with the container's
# exit status, which conmon writes to its exit file. conmon is a child subreaper, so the
# orphaned proxy is reaped by conmon; both outlive the daemon.
#
# POSIX sh on purpose: the proxy lives as long as the container (~1 MB, not a Node).
#
# usage (conmon adds everything from <command> on):
#   runsc-shim.sh --state-dir DIR --runsc PATH --argc N G1 … GN <command> [args…]
# G1…GN are runsc's global flags; runsc re-reads them on every call, so every call here
# repeats them. Commands other than `create` are passed through to runsc unchanged.
#
# Files in DIR (sandlot reads and writes them; src/oci/runsc-subcontainer.ts):
#   start       fifo: the proxy reads one line: `start`, or `kill <signal number>` to
#               end a never-started container (the proxy exits 128+N).
#   status      written once by the proxy (tmp + rename): `started`, `killed <N>` or
#               `start-failed <rc> <message>`.
#   start.log   runsc's own error log of the start call (JSON lines).
#   wait.err    stderr of `runsc wait` when it fails.
#   exit-reason why the proxy chose the exit status itself (the sandbox was gone).
#
# Exit codes of the proxy (conmon's exit file): the container's own status from
# `runsc wait` (0-255, 128+signal when signalled); 128 when `runsc start` failed (as
# containerd's StartError); 137 when the sandbox died under it (`exit-reason` says why);
# 255 when the start fifo vanished before any start.
set -u

PROXY_START_FAILED=128
PROXY_LOST=255
PROXY_SANDBOX_GONE=137

die() {
  echo "runsc-shim: $*" >&2
  exit 125
}

state_dir=
runsc=
argc=
while [ $# -gt 0 ]; do
  case $1 in
    --state-dir) [ $# -ge 2 ] || die "--state-dir needs a value"; state_dir=$2; shift 2 ;;
    --runsc) [ $# -ge 2 ] || die "--runsc needs a value"; runsc=$2; shift 2 ;;
    --argc) [ $# -ge 2 ] || die "--argc needs a value"; argc=$2; shift 2; break ;;
    *) die "unknown shim option \"$1\"" ;;
  esac
done
[ -n "$state_dir" ] || die "missing --state-dir"
[ -n "$runsc" ] || die "missing --runsc"
case $argc in '' | *[!0-9]*) die "--argc \"$argc\" is not a count" ;; esac

# Sets q to $1 made safe inside single quotes for eval (no fork unless it holds a quote).
sq() {
  case $1 in
    *\'*) q=$(printf '%s' "$1" | sed "s/'/'\\\\''/g") ;;
    *) q=$1 ;;
  esac
}
globals=
i=0
while [ "$i" -lt "$argc" ]; do
  [ $# -gt 0 ] || die "--argc $argc but only $i global args"
  sq "$1"
  globals="$globals '$q'"
  shift
  i=$((i + 1))
done
[ $# -gt 0 ] || die "missing command"

run_runsc() {
  eval "\"\$runsc\" $globals \"\$@\""
}

fifo=$state_dir/start

# Writes the status file atomically: sandlot polls for it.
write_status() {
  printf '%s\n' "$1" >"$state_dir/status.tmp" && mv -f "$state_dir/status.tmp" "$state_dir/status"
}

# The long-lived half: conmon's "container process".
proxy() {
  id=$1
  cd / || exit "$PROXY_LOST"
  while :; do
    [ -p "$fifo" ] || exit "$PROXY_LOST"
    line=
    IFS= read -r line <"$fifo" || true
    case $line in
      start) break ;;
      kill\ *)
        n=${line#kill }
        case $n in '' | *[!0-9]*) continue ;; esac
        write_status "killed $n"
        exit $((128 + n))
        ;;
    esac
  done
  run_runsc --log "$state_dir/start.log" start "$id"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    msg=
    [ -f "$state_dir/start.log" ] && msg=$(sed -n 's/.*"msg":"\(.*\)","level".*/\1/p' "$state_dir/start.log" | tail -n 1)
    write_status "start-failed $rc $msg"
    exit "$PROXY_START_FAILED"
  fi
  write_status started
  while :; do
    # exec: no second shell stays around for the container's lifetime.
    out=$(eval "exec \"\$runsc\" $globals wait \"\$id\"" </dev/null 2>"$state_dir/wait.err")
    rc=$?
    # {"id":"<id>","exitStatus":N}
    code=${out##*\"exitStatus\":}
    code=${code%%[!0-9]*}
    if [ "$rc" -eq 0 ] && [ -n "$code" ]; then
      exit "$code"
    fi
    # wait fails ("urpc method containerManager.Wait failed: EOF", or "connection reset
    # by peer", or "connection refused", by when the sentry died) when the sandbox
    # process died: killed by the host OOM killer at the pod cgroup's limit, or with
    # the pod. Its processes were killed with it: 137, as runc's are when the pod's
    # PID namespace goes. Anything still running is waited for again.
    st=$(run_runsc state "$id" 2>/dev/null </dev/null | tr -d ' \n')
    case $st in
      *'"status":"running"'* | *'"status":"paused"'* | *'"status":"created"'*) sleep 1 ;;
      *)
        printf 'sandbox-gone: runsc wait exited %s: %s %s\n' "$rc" "$out" "$(cat "$state_dir/wait.err" 2>/dev/null)" >"$state_dir/exit-reason"
        exit "$PROXY_SANDBOX_GONE"
        ;;
    esac
  done
}

create() {
  bundle=
  pid_file=
  id=
  extra=
  while [ $# -gt 0 ]; do
    case $1 in
      --bundle | -bundle | -b) bundle=$2; shift 2 ;;
      --pid-file | -pid-file) pid_file=$2; shift 2 ;;
      --console-socket | -console-socket) sq "$2"; extra="$extra --console-socket '$q'"; shift 2 ;;
      -*) sq "$1"; extra="$extra '$q'"; shift ;;
      *) id=$1; shift ;;
    esac
  done
  [ -n "$bundle" ] || die "create: missing --bundle"
  [ -n "$pid_file" ] || die "create: missing --pid-file"
  [ -n "$id" ] || die "create: missing container id"
  mkdir -p "$state_dir" || die "create: making \"$state_dir\""
  rm -f "$fifo" "$state_dir/status" "$state_dir/status.tmp" "$state_dir/start.log" "$state_dir/wait.err" "$state_dir/exit-reason"
  mkfifo -m 600 "$fifo" || die "create: making the fifo \"$fifo\""
  # runsc's --pid-file would name the sandbox process: conmon must watch the proxy.
  eval "run_runsc create --bundle \"\$bundle\" $extra \"\$id\"" </dev/null || exit $?
  # An asynchronous list gets /dev/null as stdin unless redirected: keep conmon's.
  exec 3<&0
  # fds 4-9 (conmon's sync pipe and the like) are no business of the proxy.
  proxy "$id" 0<&3 3<&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  exec 3<&-
  printf '%s' "$!" >"$pid_file.tmp" && mv -f "$pid_file.tmp" "$pid_file" || die "create: writing \"$pid_file\""
  exit 0
}

case $1 in
  create) shift; create "$@" ;;
  *) eval "exec \"\$runsc\" $globals \"\$@\"" ;;
esac
