# shellcheck shell=bash
# Sourced by the shell integration tests (cli_test.sh, admin_api_test.sh, promtool_test.sh,
# prometheus_server_test.sh): start weir and learn its ports from its log, wait for conditions,
# stop processes. Every wait polls a condition in 100 ms steps up to a bound; no fixed sleep
# decides an outcome. The caller runs under `set -euo pipefail` and calls stop_started_processes
# from its EXIT trap.
# The variables set here are read by the scripts that source this file:
# shellcheck disable=SC2034

readonly WEIR_READY_SECS=20 # start-up under ASan/TSan on a loaded machine included
readonly WEIR_STOP_SECS=15  # SIGTERM/SIGINT to exit: drain plus the metrics listener's 2 s stop

weir_pid="" weir_port="" weir_metrics_port=""
started_pids=()

# die_with_log MESSAGE FILE...: prints FAIL: MESSAGE and each FILE that exists, then exits 1.
die_with_log() {
  local message=$1 file
  shift
  echo "FAIL: $message" >&2
  for file in "$@"; do
    if [[ -e $file ]]; then
      echo "---- $file ----" >&2
      cat "$file" >&2
    else
      echo "---- $file: does not exist ----" >&2
    fi
  done
  exit 1
}

# wait_for SECS COMMAND...: runs COMMAND every 100 ms until it succeeds; returns 1 if it still
# fails after SECS seconds.
wait_for() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  "$@"
}

# file_has FILE ERE: FILE exists and has a line matching ERE (grep -E).
file_has() {
  grep -qE -- "$2" "$1" 2>/dev/null
}

# line_count FILE: its number of lines, 0 if it does not exist yet.
line_count() {
  if [[ -e $1 ]]; then wc -l <"$1"; else echo 0; fi
}

# weir_start LOG OUT COMMAND...: runs COMMAND (weir and its flags, possibly behind prlimit or env,
# which exec it) in the background with stderr to LOG and stdout to OUT, and waits for the line
# weir logs last at start-up, "listening on http://HOST:PORT/": every other start-up line is above
# it. Sets weir_pid, weir_port (the public port), weir_metrics_port (empty with metrics off) and
# weir_admin_port (empty with the admin API off).
# Start weir with --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 so the kernel picks both
# ports; the log says which. Exits with the log printed if weir exits or is not ready in time.
weir_start() {
  local log=$1 out=$2 ready="" rc=0 i
  shift 2
  "$@" >"$out" 2>"$log" </dev/null &
  weir_pid=$!
  started_pids+=("$weir_pid")
  weir_port="" weir_metrics_port=""
  # The shell creates LOG in the child, so it may not exist yet: file_has tolerates that.
  for ((i = 0; i < WEIR_READY_SECS * 10; i++)); do
    if file_has "$log" ' listening on http://[^ ]+:[0-9]+/$'; then
      ready=1
      break
    fi
    if ! kill -0 "$weir_pid" 2>/dev/null; then
      wait "$weir_pid" || rc=$?
      weir_pid=""
      die_with_log "weir exited with status $rc before it was ready ($*)" "$log"
    fi
    sleep 0.1
  done
  [[ -n $ready ]] ||
    die_with_log "weir logged no 'listening on' line within ${WEIR_READY_SECS}s ($*)" "$log"
  weir_port=$(sed -nE 's|.* listening on http://[^ ]+:([0-9]+)/$|\1|p' "$log" | head -n 1)
  if file_has "$log" '\] metrics: http://'; then
    weir_metrics_port=$(sed -nE 's|.*\] metrics: http://[^ ]+:([0-9]+)/metrics$|\1|p' "$log" |
      head -n 1)
    [[ -n $weir_metrics_port ]] || die_with_log "cannot read the metrics port from the log" "$log"
  elif ! file_has "$log" '\] metrics: off$'; then
    die_with_log "weir is ready but logged no 'metrics:' line above 'listening on'" "$log"
  fi
  weir_admin_port=""
  if file_has "$log" '\] admin API: http://'; then
    weir_admin_port=$(sed -nE 's|.*\] admin API: http://[^ ]+:([0-9]+)/ .*|\1|p' "$log" | head -n 1)
    [[ -n $weir_admin_port ]] || die_with_log "cannot read the admin port from the log" "$log"
  fi
}

# stop_process PID SIGNAL: sends SIGNAL, waits WEIR_STOP_SECS for PID to exit, SIGKILL after
# that. Sets stop_rc to its exit status; returns 1 if it had to be killed.
stop_process() {
  kill "-$2" "$1" 2>/dev/null || true
  wait_exit "$1"
}

# wait_exit PID: waits up to WEIR_STOP_SECS for PID to exit; sets stop_rc; kills it and returns 1
# if it is still running.
wait_exit() {
  local pid=$1 killed=0
  stop_rc=0
  if ! wait_for "$WEIR_STOP_SECS" process_gone "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    killed=1
  fi
  wait "$pid" 2>/dev/null || stop_rc=$?
  return "$killed"
}

process_gone() {
  ! kill -0 "$1" 2>/dev/null
}

# weir_stop SIGNAL: stop_process for the weir of the last weir_start; clears weir_pid.
weir_stop() {
  local pid=$weir_pid
  weir_pid=""
  stop_process "$pid" "$1"
}

# weir_wait_exit: waits up to WEIR_STOP_SECS for the weir of the last weir_start, already sent a
# stop signal, to exit on its own (a second signal would cut its drain short: exit 3); sets
# stop_rc; kills it and returns 1 if it is still running. Clears weir_pid.
weir_wait_exit() {
  local pid=$weir_pid
  weir_pid=""
  wait_exit "$pid"
}

# pick_port: a port that was free a moment ago. Only for programs that cannot bind port 0 and
# report the port (Prometheus): the port may be taken before they bind it, so retry on failure.
pick_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# hold_port DIR: binds a loopback port without listening on it, in a python3 process that lives
# until stop_started_processes (10 min at most); sets held_port. Connections to it are refused and
# nothing else can bind it: an address that is certainly not served.
hold_port() {
  local file=$1/held-port.$RANDOM
  python3 -c '
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    print(s.getsockname()[1], file=f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])  # whole, or not there yet
time.sleep(600)
' "$file" </dev/null &
  started_pids+=("$!")
  wait_for 10 test -s "$file" || die_with_log "hold_port: python3 bound no port within 10 s"
  held_port=$(<"$file")
}

# stop_started_processes: SIGKILLs whatever weir_start and hold_port started that still runs.
stop_started_processes() {
  local pid
  for pid in "${started_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  started_pids=()
}
