#!/usr/bin/env bash
# Side-by-side benchmark: weir against nginx, lighttpd and h2o, on the shared docroot, one server
# at a time, each server pinned to CPU 0 and wrk pinned to CPU 1. See bench/README.md.
#
# usage: bench/compare.sh [--duration SECS] [--connections N] [--weir-config FILE] [--label TEXT]
#                         [--fused] [--metrics] [--admission] [--rounds N] [--help]
# env:   WEIR    weir binary      (default: <repo>/build/release/weir)
#        SHARED  shared fixtures  (default: <repo>/../shared; uses bench/make-docroot.sh,
#                                  bench/mix.lua, bench/peers/*.conf.in)
#        DOCROOT cached docroot   (default: ${TMPDIR:-/tmp}/weir-bench-docroot, kept between runs)
set -euo pipefail

readonly SERVER_CPU=0 LOAD_CPU=1
readonly WARMUP_SECS=2
readonly READY_TIMEOUT_SECS=10 # a server must answer 200 within this after launch
readonly STOP_TIMEOUT_SECS=15  # then SIGKILL (weir drains for up to timeouts.drain = 10s)
readonly TARGET_RATIO=0.8      # weir/lighttpd (and weir/h2o) target
readonly METRICS_TARGET=0.97   # weir/weir(no-metrics) target: metrics cost at most 3 %
readonly ADMISSION_TARGET=0.98 # weir/weir(no-admission) target: admission control costs at most 2 %

usage() {
  cat <<'EOF'
Usage: bench/compare.sh [OPTION]...
Benchmark weir side by side with nginx, lighttpd and h2o on 127.0.0.1.

Each server runs alone, pinned to CPU 0 (taskset -c 0); wrk runs pinned to CPU 1
(wrk -t1 -cN -dSECS --latency). Per workload (the 500 B file /c0/f0.bin, then the SPECweb96 mix
from mix.lua) the servers run in turn: weir, [weir(no-metrics),] [weir(no-admission),]
[weir(fused),] nginx, lighttpd, h2o.
Each run: fresh start, wait until it answers, 2 s warm-up (discarded), measured run, stop.
weir runs with its metrics endpoint on (the default), on a free loopback port.

  --duration SECS     length of each measured run, 1..3600 (default: 10)
  --connections N     wrk connections, 1..10000 (default: 64)
  --weir-config FILE  run weir with this YAML config (its root/listen are overridden)
  --label TEXT        free text printed with the results and in the RESULT lines
  --fused             also run weir with read_parse and cache_lookup fused into one stage group,
                      reported as the column weir(fused)
  --metrics           also run weir with --no-metrics, reported as the column weir(no-metrics),
                      and print the metrics cost weir/weir(no-metrics) (target >= 0.97)
  --admission         also run weir with controllers.admission.enabled: false, reported as the
                      column weir(no-admission), and print what admission control costs below
                      capacity, weir/weir(no-admission) (target >= 0.98); a --weir-config must
                      then have no controllers: section
  --rounds N          repeat each workload's sequence of servers N times, interleaved, and
                      report the mean requests/s and p99 of each server, 1..100 (default: 1).
                      Small differences (the metrics cost) need several rounds on a noisy host
  --help              print this help and exit

Environment: WEIR (weir binary, default build/release/weir), SHARED (shared fixture directory,
default ../shared relative to the repository), DOCROOT (cached docroot, default
${TMPDIR:-/tmp}/weir-bench-docroot).

Output: a table of requests/s and p99 latency per server, resident memory after the mix run, two
verdict lines per workload ("weir/lighttpd = R (target >= 0.8): PASS|BELOW", then the same for
weir/h2o; with --metrics also "metrics cost: weir/weir(no-metrics) = R (target >= 0.97)") and one
machine-readable "RESULT workload=..." line per workload.
Exit status: 0 every run clean; 1 setup error; 2 bad option; 3 results printed, but some run had
non-2xx responses, socket errors, a server that failed to start, or a server that died.
EOF
}

die() { echo "compare.sh: $*" >&2; exit 1; }
usage_error() { echo "compare.sh: $*" >&2; echo "Try 'bench/compare.sh --help'." >&2; exit 2; }

# ---------------------------------------------------------------------------------------- options
DURATION=10
CONNECTIONS=64
WEIR_CONFIG=""
LABEL=""
FUSED=0
METRICS=0
ADMISSION=0
ROUNDS=1
while (($#)); do
  opt=$1
  val=""
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --help | -h) usage; exit 0 ;;
    --fused) FUSED=1; shift; continue ;;
    --metrics) METRICS=1; shift; continue ;;
    --admission) ADMISSION=1; shift; continue ;;
    --duration | --connections | --weir-config | --label | --rounds)
      (($# >= 2)) || usage_error "$opt needs a value"
      val=$2; shift 2 ;;
    *) usage_error "unknown option: $opt" ;;
  esac
  case $opt in
    --duration) DURATION=$val ;;
    --connections) CONNECTIONS=$val ;;
    --weir-config) WEIR_CONFIG=$val ;;
    --label) LABEL=$val ;;
    --rounds) ROUNDS=$val ;;
    *) usage_error "unknown option: $opt" ;;
  esac
done
if ! [[ $DURATION =~ ^[0-9]{1,6}$ ]] || ((10#$DURATION < 1 || 10#$DURATION > 3600)); then
  usage_error "--duration must be 1..3600 seconds, got '$DURATION'"
fi
if ! [[ $CONNECTIONS =~ ^[0-9]{1,6}$ ]] || ((10#$CONNECTIONS < 1 || 10#$CONNECTIONS > 10000)); then
  usage_error "--connections must be 1..10000, got '$CONNECTIONS'"
fi
if ! [[ $ROUNDS =~ ^[0-9]{1,3}$ ]] || ((10#$ROUNDS < 1 || 10#$ROUNDS > 100)); then
  usage_error "--rounds must be 1..100, got '$ROUNDS'"
fi
ROUNDS=$((10#$ROUNDS))
DURATION=$((10#$DURATION))
CONNECTIONS=$((10#$CONNECTIONS))
if [[ -n $WEIR_CONFIG ]]; then
  [[ -f $WEIR_CONFIG && -r $WEIR_CONFIG ]] || usage_error "--weir-config: cannot read '$WEIR_CONFIG'"
  WEIR_CONFIG=$(cd "$(dirname "$WEIR_CONFIG")" && pwd)/$(basename "$WEIR_CONFIG")
fi

# ------------------------------------------------------------------------------------ environment
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$REPO_ROOT/../shared}
WEIR=${WEIR:-$REPO_ROOT/build/release/weir}
DOCROOT=${DOCROOT:-${TMPDIR:-/tmp}/weir-bench-docroot}

for cmd in wrk nginx lighttpd h2o taskset curl python3 timeout awk sed; do
  command -v "$cmd" >/dev/null 2>&1 ||
    die "'$cmd' not found (Debian: scripts/bootstrap.sh bench, or apt-get install wrk nginx-light lighttpd h2o curl python3 util-linux)"
done
[[ -x $WEIR ]] || die "weir binary not found at '$WEIR' (build it: cmake --preset release && cmake --build --preset release, or set WEIR=)"
[[ -d $SHARED/bench ]] || die "shared fixtures not found at '$SHARED/bench' (set SHARED=)"
SHARED=$(cd "$SHARED" && pwd)
for f in bench/make-docroot.sh bench/mix.lua bench/peers/nginx.conf.in bench/peers/lighttpd.conf.in \
  bench/peers/h2o.conf.in; do
  [[ -r $SHARED/$f ]] || die "missing shared fixture '$SHARED/$f'"
done
MIX_LUA=$SHARED/bench/mix.lua
if ! taskset -c "$SERVER_CPU" true 2>/dev/null || ! taskset -c "$LOAD_CPU" true 2>/dev/null; then
  die "need CPUs $SERVER_CPU and $LOAD_CPU to pin the server and wrk apart (nproc: $(nproc))"
fi

# ---------------------------------------------------------------------------- cleanup and signals
RUNDIR=""
CUR_PIDS=()   # every process of the server currently running (nginx: master and workers)
CHILD_PID=""  # the one among them that is this shell's child (weir, lighttpd, h2o), to reap

alive() { # pid: running and not a zombie
  [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Stops the current server: SIGTERM to the first pid, SIGKILL to everything after the deadline.
# Sets STOP_RC to the exit status of a child server (weir, lighttpd, h2o), or "" when unknown.
STOP_RC=""
stop_server() {
  STOP_RC=""
  ((${#CUR_PIDS[@]})) || return 0
  kill -TERM "${CUR_PIDS[0]}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_SECS)) p any
  while :; do
    any=0
    for p in "${CUR_PIDS[@]}"; do alive "$p" && any=1; done
    ((any)) || break
    if ((SECONDS >= deadline)); then
      echo "compare.sh: server (pids ${CUR_PIDS[*]}) still running ${STOP_TIMEOUT_SECS}s after SIGTERM; killing it" >&2
      for p in "${CUR_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
      sleep 0.2
      break
    fi
    sleep 0.05
  done
  if [[ -n $CHILD_PID ]]; then
    local rc=0
    wait "$CHILD_PID" 2>/dev/null || rc=$?
    STOP_RC=$rc
  fi
  CUR_PIDS=()
  CHILD_PID=""
}

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  stop_server || true
  [[ -n $RUNDIR && -d $RUNDIR ]] && rm -rf -- "$RUNDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/weir-bench.XXXXXX")
chmod 755 "$RUNDIR"

# ------------------------------------------------------------------------------------------ docroot
# make-docroot.sh keeps existing files, so a file cut short by an interrupted run would stay wrong:
# drop any file of the wrong size first.
check_docroot() {
  local cls size n i f bad=0
  for cls in c0:500:10 c1:5000:10 c2:50000:10 c3:5000000:2; do
    IFS=: read -r c size n <<<"$cls"
    for ((i = 0; i < n; i++)); do
      f=$DOCROOT/$c/f$i.bin
      if [[ -e $f ]] && [[ $(stat -c %s "$f") != "$size" ]]; then rm -f -- "$f"; bad=1; fi
      [[ -e $f ]] || bad=1
    done
  done
  return "$bad"
}
if ! check_docroot; then
  echo "compare.sh: building docroot $DOCROOT" >&2
  "$SHARED/bench/make-docroot.sh" "$DOCROOT" || die "make-docroot.sh failed"
  check_docroot || die "docroot $DOCROOT is incomplete after make-docroot.sh"
fi
DOCROOT=$(cd "$DOCROOT" && pwd)

# ---------------------------------------------------------------------------------- weir configs
"$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 ${WEIR_CONFIG:+--config "$WEIR_CONFIG"} \
  --test-config >"$RUNDIR/weir-test-config.log" 2>&1 ||
  die "weir rejects its configuration: $(cat "$RUNDIR/weir-test-config.log")"

# weir's metrics endpoint defaults to 127.0.0.1:9464; every weir run gets a free port of its own
# instead (--metrics-listen), so runs never collide with each other or with another weir. A weir
# built before the endpoint existed has no such flag and runs as it is, without --metrics.
weir_help=$("$WEIR" --help 2>/dev/null || true)
WEIR_HAS_METRICS=0
[[ $weir_help == *--metrics-listen* && $weir_help == *--no-metrics* ]] && WEIR_HAS_METRICS=1
if ((METRICS)); then
  ((WEIR_HAS_METRICS)) ||
    die "--metrics: $WEIR has no --metrics-listen/--no-metrics (built before the metrics endpoint?)"
  "$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 ${WEIR_CONFIG:+--config "$WEIR_CONFIG"} \
    --no-metrics --test-config >"$RUNDIR/weir-test-nometrics.log" 2>&1 ||
    die "weir rejects --no-metrics: $(cat "$RUNDIR/weir-test-nometrics.log")"
fi

# Fusion is limited to neighbouring stages (accept, read_parse, cache_lookup, disk_io, send):
# read_parse and cache_lookup share one queue and one thread; the group's first stage sets both.
FUSED_CONFIG=$RUNDIR/weir-fused.yaml
cat >"$FUSED_CONFIG" <<'EOF'
# generated by bench/compare.sh --fused: read_parse + cache_lookup in one group, the rest default
stages:
  read_parse:   { threads: 1, queue: 4096, group: fast }
  cache_lookup: { group: fast }
EOF
if ((FUSED)); then
  "$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 --config "$FUSED_CONFIG" \
    --test-config >"$RUNDIR/weir-test-fused.log" 2>&1 ||
    die "weir rejects the fused configuration: $(cat "$RUNDIR/weir-test-fused.log")"
fi

# weir(no-admission): the same configuration with admission control off.
NOADMISSION_CONFIG=$RUNDIR/weir-noadmission.yaml
if ((ADMISSION)); then
  if [[ -n $WEIR_CONFIG ]] && grep -q '^controllers:' "$WEIR_CONFIG"; then
    usage_error "--admission: $WEIR_CONFIG has a controllers: section; set controllers.admission.enabled there instead"
  fi
  { [[ -n $WEIR_CONFIG ]] && cat "$WEIR_CONFIG" && echo
    echo "# added by bench/compare.sh --admission"
    printf 'controllers:\n  admission:\n    enabled: false\n'; } >"$NOADMISSION_CONFIG"
  "$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 --config "$NOADMISSION_CONFIG" \
    --test-config >"$RUNDIR/weir-test-noadmission.log" 2>&1 ||
    die "weir rejects the no-admission configuration: $(cat "$RUNDIR/weir-test-noadmission.log")"
fi

# ---------------------------------------------------------------------------------------- servers
# A loopback port no socket uses, below the usual ephemeral range (32768..) so that wrk's own
# client ports never collide with it.
free_port() {
  local used port tries
  used=" $(awk '
    function hex(s,   i, n) {
      n = 0
      for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1
      return n
    }
    FNR > 1 { n = split($2, a, ":"); printf "%d ", hex(a[n]) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || true) "
  for ((tries = 0; tries < 1000; tries++)); do
    port=$((20000 + RANDOM % 12000))
    [[ $used == *" $port "* ]] || { echo "$port"; return 0; }
  done
  die "no free loopback port found"
}

# substitute CONF_IN OUT: fills @ROOT@ @PORT@ @WORKERS@ @RUNDIR@
substitute() {
  sed -e "s|@ROOT@|$DOCROOT|g" -e "s|@PORT@|$PORT|g" -e "s|@WORKERS@|$WORKERS|g" \
    -e "s|@RUNDIR@|$SRVDIR|g" "$1" >"$2"
}

# start_server NAME: launches NAME on a fresh port with its own run directory under $RUNDIR.
# Sets PORT, SRVDIR, LOG, CUR_PIDS, CHILD_PID. Returns 1 when it does not come up.
start_server() {
  local name=$1 tag=$2
  PORT=$(free_port)
  SRVDIR=$RUNDIR/$name-$tag
  mkdir -p "$SRVDIR"
  LOG=$SRVDIR/stderr.log
  CUR_PIDS=()
  CHILD_PID=""
  case $name in
    weir | weir_fused | weir_nometrics | weir_noadmission)
      local cfg=$WEIR_CONFIG metrics=()
      [[ $name == weir_fused ]] && cfg=$FUSED_CONFIG
      [[ $name == weir_noadmission ]] && cfg=$NOADMISSION_CONFIG
      METRICS_PORT=""
      if [[ $name == weir_nometrics ]]; then
        metrics=(--no-metrics)
      elif ((WEIR_HAS_METRICS)); then
        METRICS_PORT=$(free_port)
        while [[ $METRICS_PORT == "$PORT" ]]; do METRICS_PORT=$(free_port); done
        metrics=(--metrics-listen "127.0.0.1:$METRICS_PORT")
      fi
      # every thread weir starts inherits the launcher's affinity (the metrics threads too)
      taskset -c "$SERVER_CPU" "$WEIR" --root "$DOCROOT" --listen "127.0.0.1:$PORT" \
        ${cfg:+--config "$cfg"} "${metrics[@]}" </dev/null >"$LOG" 2>&1 &
      CHILD_PID=$!
      CUR_PIDS=("$CHILD_PID")
      ;;
    nginx)
      WORKERS=1
      substitute "$SHARED/bench/peers/nginx.conf.in" "$SRVDIR/nginx.conf"
      # Debian's nginx keeps its temp dirs under /var/lib/nginx and creates them at startup; move
      # them into the run directory (no request here has a body, so they stay empty).
      local t tmp=""
      for t in client_body proxy fastcgi uwsgi scgi; do tmp+=" ${t}_temp_path $SRVDIR/$t;"; done
      sed -i "s|^http {|http {$tmp|" "$SRVDIR/nginx.conf"
      local g=""
      # as root, workers would switch to "nobody"; keep them as the caller so they can read the
      # docroot wherever TMPDIR points
      [[ $(id -u) == 0 ]] && g="user $(id -un) $(id -gn);"
      # -p/-e: never touch /usr/share/nginx or the default error log; daemon on: pid from the file
      if ! taskset -c "$SERVER_CPU" nginx -p "$SRVDIR/" -e "$SRVDIR/nginx-startup.log" \
        -c "$SRVDIR/nginx.conf" ${g:+-g "$g"} </dev/null >"$LOG" 2>&1; then
        cat "$SRVDIR"/nginx-startup.log "$SRVDIR"/nginx-error.log >>"$LOG" 2>/dev/null || true
        return 1
      fi
      local deadline=$((SECONDS + READY_TIMEOUT_SECS)) master=""
      while ((SECONDS < deadline)); do
        master=$(cat "$SRVDIR/nginx.pid" 2>/dev/null || true)
        [[ $master =~ ^[0-9]+$ ]] && alive "$master" && break
        master=""
        sleep 0.05
      done
      [[ -n $master ]] || { cat "$SRVDIR"/nginx-error.log >>"$LOG" 2>/dev/null || true; return 1; }
      CUR_PIDS=("$master")
      ;;
    lighttpd)
      WORKERS=0
      substitute "$SHARED/bench/peers/lighttpd.conf.in" "$SRVDIR/lighttpd.conf"
      taskset -c "$SERVER_CPU" lighttpd -D -f "$SRVDIR/lighttpd.conf" </dev/null >"$LOG" 2>&1 &
      CHILD_PID=$!
      CUR_PIDS=("$CHILD_PID")
      ;;
    h2o)
      WORKERS=1 # num-threads: one event loop
      substitute "$SHARED/bench/peers/h2o.conf.in" "$SRVDIR/h2o.conf"
      # foreground; as root it serves as user nobody (the docroot is world-readable). Its error
      # log goes to $SRVDIR/h2o-error.log (error-log: @RUNDIR@/h2o-error.log).
      taskset -c "$SERVER_CPU" h2o -c "$SRVDIR/h2o.conf" </dev/null >"$LOG" 2>&1 &
      CHILD_PID=$!
      CUR_PIDS=("$CHILD_PID")
      ;;
    *) die "internal: unknown server $name" ;;
  esac

  # ready: /c0/f0.bin answers 200 with 500 bytes
  local deadline=$((SECONDS + READY_TIMEOUT_SECS)) got=""
  while :; do
    got=$(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' \
      "http://127.0.0.1:$PORT/c0/f0.bin" 2>/dev/null || true)
    [[ $got == "200 500" ]] && break
    if ! alive "${CUR_PIDS[0]}" || ((SECONDS >= deadline)); then
      [[ $name == nginx ]] && { cat "$SRVDIR"/nginx-error.log >>"$LOG" 2>/dev/null || true; }
      [[ $name == h2o ]] && { cat "$SRVDIR"/h2o-error.log >>"$LOG" 2>/dev/null || true; }
      echo "(last answer to GET /c0/f0.bin: '${got:-none}')" >>"$LOG"
      return 1
    fi
    sleep 0.05
  done
  # every size class is served whole (a wrong root or a broken peer config shows here)
  local u want
  for u in c1/f0.bin:5000 c2/f0.bin:50000 c3/f1.bin:5000000; do
    want="200 ${u#*:}"
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' \
      "http://127.0.0.1:$PORT/${u%%:*}" 2>/dev/null || true)
    [[ $got == "$want" ]] || { echo "(GET /${u%%:*}: got '$got', want '$want')" >>"$LOG"; return 1; }
  done
  # a weir with metrics on measures what it claims to: the endpoint answers
  if [[ $name == weir* && -n ${METRICS_PORT:-} ]]; then
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' \
      "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null || true)
    if [[ $got != 200 ]]; then
      echo "(GET /metrics on 127.0.0.1:$METRICS_PORT: got '$got', want 200)" >>"$LOG"
      return 1
    fi
  fi
  if [[ $name == nginx ]]; then
    local w
    for w in $(pgrep -P "${CUR_PIDS[0]}" || true); do CUR_PIDS+=("$w"); done
  fi
  return 0
}

# Threads of the current server not restricted to SERVER_CPU (prints "pid/tid:cpus" words).
unpinned_threads() {
  local p files=()
  for p in "${CUR_PIDS[@]}"; do files+=(/proc/"$p"/task/*/status); done
  awk -v want="$SERVER_CPU" '/^Cpus_allowed_list:/ && $2 != want {
      f = FILENAME; sub(/^\/proc\//, "", f); sub(/\/status$/, "", f); printf "%s:%s ", f, $2 }' \
    "${files[@]}" 2>/dev/null || true
}

rss_kib() { # sum of VmRSS over the current server's processes
  local p total=0 kib
  for p in "${CUR_PIDS[@]}"; do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

# ------------------------------------------------------------------------------------------ wrk
# run_wrk OUT SECS URL [LUA]: wrk pinned to LOAD_CPU, bounded by timeout
run_wrk() {
  local out=$1 secs=$2 url=$3 lua=${4:-}
  local args=(-t1 "-c$CONNECTIONS" "-d${secs}s" --latency)
  [[ -n $lua ]] && args+=(-s "$lua")
  # --foreground: Ctrl-C reaches wrk at once
  timeout --foreground --kill-after=5 $((secs + 30)) \
    taskset -c "$LOAD_CPU" wrk "${args[@]}" "$url" >"$out" 2>&1
}

# parse_wrk FILE: prints "rps p99_ms non2xx socket_errors requests"
parse_wrk() {
  awk '
    function ms(v,   n, u) {
      n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "us") return n / 1000
      if (u == "ms") return n
      if (u == "s") return n * 1000
      if (u == "m") return n * 60000
      if (u == "h") return n * 3600000
      return -1
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" && p99 == "" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(/,/, "", v); err += v } }
    / requests in / { reqs = $1 }
    END {
      if (rps == "") exit 1
      printf "%s %s %d %d %d\n", rps, (p99 == "" ? "-1" : sprintf("%.3f", p99)), non2xx, err, reqs
    }' "$1"
}

# ----------------------------------------------------------------------------------------- driver
SERVERS=(weir)
((METRICS)) && SERVERS+=(weir_nometrics)
((ADMISSION)) && SERVERS+=(weir_noadmission)
((FUSED)) && SERVERS+=(weir_fused)
SERVERS+=(nginx lighttpd h2o)
WORKLOADS=(c0 mix)
declare -A DISPLAY=([weir]=weir [weir_nometrics]="weir(no-metrics)" [weir_fused]="weir(fused)"
  [weir_noadmission]="weir(no-admission)"
  [nginx]=nginx [lighttpd]=lighttpd [h2o]=h2o)
NAME_WIDTH=12 # progress lines: wide enough for every server's name
for srv in "${SERVERS[@]}"; do
  if ((${#DISPLAY[$srv]} > NAME_WIDTH)); then NAME_WIDTH=${#DISPLAY[$srv]}; fi
done
declare -A WL_NAME=([c0]="c0 (500 B)" [mix]="mix (SPECweb96)")
declare -A RPS=() P99=() NON2XX=() SOCKERR=() STATUS=() RSS=() RUNS=() P99_RUNS=()
TROUBLE=0

log_tail() { # show the end of the current server's log (its run directory goes away on exit)
  echo "---- last lines of ${DISPLAY[$srv]}'s log ($wl run) ----" >&2
  tail -n 15 "$LOG" >&2 || true
  echo "----" >&2
}

cat <<EOF
weir side-by-side benchmark${LABEL:+  [$LABEL]}
  weir:     $WEIR ($("$WEIR" --version 2>/dev/null | head -n 1 || echo "version unknown"))
  config:   ${WEIR_CONFIG:-built-in defaults}$( ((METRICS)) && echo "; weir(no-metrics): --no-metrics")$( ((ADMISSION)) && echo "; weir(no-admission): controllers.admission.enabled false")$( ((FUSED)) && echo "; weir(fused): read_parse+cache_lookup in group 'fast'")
  peers:    $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(lighttpd -v 2>&1 | awk '{print $1}'), h2o/$(h2o --version 2>/dev/null | awk 'NR == 1 { print $3 }')
  docroot:  $DOCROOT
  load:     taskset -c $LOAD_CPU wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency (after a ${WARMUP_SECS}s warm-up, discarded)
  servers:  one at a time, taskset -c $SERVER_CPU, 127.0.0.1, fresh start per run$( ((ROUNDS > 1)) && echo "; $ROUNDS rounds, means reported")
  host:     $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)

EOF

for wl in "${WORKLOADS[@]}"; do
  for ((round = 1; round <= ROUNDS; round++)); do
  for srv in "${SERVERS[@]}"; do
    key=$wl:$srv
    tag=$wl
    ((ROUNDS > 1)) && tag="$wl $round/$ROUNDS"
    printf '[%s] %-*s ' "$tag" "$NAME_WIDTH" "${DISPLAY[$srv]}"
    if ! start_server "$srv" "$wl"; then
      STATUS[$key]=FAILED
      TROUBLE=1
      echo "FAILED to start"
      log_tail
      stop_server
      continue
    fi
    url=http://127.0.0.1:$PORT/c0/f0.bin
    lua=""
    if [[ $wl == mix ]]; then url=http://127.0.0.1:$PORT/; lua=$MIX_LUA; fi

    run_wrk "$SRVDIR/warmup.txt" "$WARMUP_SECS" "$url" "$lua" || true
    wrk_rc=0
    run_wrk "$SRVDIR/wrk.txt" "$DURATION" "$url" "$lua" || wrk_rc=$?

    status=ok
    if ! alive "${CUR_PIDS[0]}"; then status=DIED; fi
    [[ $srv == nginx ]] && for p in "${CUR_PIDS[@]:1}"; do alive "$p" || status=DIED; done
    if [[ $status == ok ]]; then
      unpinned=$(unpinned_threads)
      [[ -z $unpinned ]] || echo "(warning: threads not pinned to CPU $SERVER_CPU: $unpinned)" >&2
      [[ $wl == mix ]] && RSS[$srv]=$(rss_kib)
    fi

    measured=0
    if parsed=$(parse_wrk "$SRVDIR/wrk.txt"); then
      read -r rps p99 non2xx sockerr reqs <<<"$parsed"
      measured=1
      # Summed over the rounds; the report divides by RUNS.
      RUNS[$key]=$((${RUNS[$key]:-0} + 1))
      RPS[$key]=$(awk -v a="${RPS[$key]:-0}" -v b="$rps" 'BEGIN { printf "%.2f", a + b }')
      if [[ $p99 != -1 ]]; then # -1: wrk printed no p99
        P99_RUNS[$key]=$((${P99_RUNS[$key]:-0} + 1))
        P99[$key]=$(awk -v a="${P99[$key]:-0}" -v b="$p99" 'BEGIN { printf "%.3f", a + b }')
      fi
      NON2XX[$key]=$((${NON2XX[$key]:-0} + non2xx))
      SOCKERR[$key]=$((${SOCKERR[$key]:-0} + sockerr))
    else
      status=NO-RESULT
      echo "(wrk exit status $wrk_rc; its output:)" >&2
      sed 's/^/  /' "$SRVDIR/wrk.txt" >&2 || true
    fi

    stop_server
    if [[ $status == ok && -n $STOP_RC && $STOP_RC != 0 && $srv == weir* ]]; then
      status="EXIT-$STOP_RC"
    fi
    [[ ${STATUS[$key]:-ok} == ok ]] && STATUS[$key]=$status # the first trouble of any round stays

    if ((measured)); then
      printf '%10.0f req/s  p99 %8.2f ms  %d requests  non-2xx %d  socket errors %d' \
        "$rps" "$p99" "$reqs" "$non2xx" "$sockerr"
    fi
    [[ $wl == mix && -n ${RSS[$srv]:-} ]] && printf '  RSS %d KiB' "${RSS[$srv]}"
    [[ $status == ok ]] || printf '  %s' "$status"
    echo
    warns=""
    if [[ $srv == weir* ]]; then
      warns=$(grep -cE '\[(warn|warning|error|critical)\]' "$LOG" || true)
      ((warns > 0)) && echo "(weir logged $warns warning/error lines during this run)" >&2
    fi
    if [[ $status != ok || ${non2xx:-0} != 0 || ${sockerr:-0} != 0 ]]; then
      TROUBLE=1
      log_tail
    elif [[ ${warns:-0} -gt 0 ]]; then
      log_tail
    fi
  done
  done
done
# Means over the rounds that produced a result.
for key in "${!RUNS[@]}"; do
  RPS[$key]=$(awk -v s="${RPS[$key]}" -v n="${RUNS[$key]}" 'BEGIN { printf "%.2f", s / n }')
  if ((${P99_RUNS[$key]:-0} > 0)); then
    P99[$key]=$(awk -v s="${P99[$key]}" -v n="${P99_RUNS[$key]}" 'BEGIN { printf "%.3f", s / n }')
  else
    P99[$key]=-1
  fi
done

# ---------------------------------------------------------------------------------------- report
num() { [[ -n ${1:-} ]] && printf '%.0f' "$1" || printf -- '-'; }
ratio() { # a b -> a/b with 2 decimals, or n/a
  if [[ -n ${1:-} && -n ${2:-} ]]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
  else printf 'n/a'; fi
}
verdict() { # ratio -> PASS | BELOW | FAILED
  [[ $1 == n/a ]] && { printf 'FAILED'; return; }
  awk -v r="$1" -v t="$TARGET_RATIO" 'BEGIN { printf (r + 0 >= t) ? "PASS" : "BELOW" }'
}

echo
echo "Throughput (requests/s, higher is better)${LABEL:+  [$LABEL]}"
hdr=(workload "weir req/s")
((METRICS)) && hdr+=("weir(no-metrics) req/s")
((ADMISSION)) && hdr+=("weir(no-admission) req/s")
((FUSED)) && hdr+=("weir(fused) req/s")
hdr+=("nginx req/s" "lighttpd req/s" "h2o req/s" "weir/nginx" "weir/lighttpd" "weir/h2o")
((METRICS)) && hdr+=("weir/no-metrics")
((ADMISSION)) && hdr+=("weir/no-admission")
((FUSED)) && hdr+=("fused/lighttpd")
fmt="%-16s"
for ((i = 1; i < ${#hdr[@]}; i++)); do fmt+=" | %${#hdr[i]}s"; done
fmt+="\n"
# shellcheck disable=SC2059
printf "$fmt" "${hdr[@]}"
for wl in "${WORKLOADS[@]}"; do
  row=("${WL_NAME[$wl]}" "$(num "${RPS[$wl:weir]:-}")")
  ((METRICS)) && row+=("$(num "${RPS[$wl:weir_nometrics]:-}")")
  ((ADMISSION)) && row+=("$(num "${RPS[$wl:weir_noadmission]:-}")")
  ((FUSED)) && row+=("$(num "${RPS[$wl:weir_fused]:-}")")
  row+=("$(num "${RPS[$wl:nginx]:-}")" "$(num "${RPS[$wl:lighttpd]:-}")" "$(num "${RPS[$wl:h2o]:-}")"
    "$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:nginx]:-}")"
    "$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:lighttpd]:-}")"
    "$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:h2o]:-}")")
  ((METRICS)) && row+=("$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_nometrics]:-}")")
  ((ADMISSION)) && row+=("$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_noadmission]:-}")")
  ((FUSED)) && row+=("$(ratio "${RPS[$wl:weir_fused]:-}" "${RPS[$wl:lighttpd]:-}")")
  # shellcheck disable=SC2059
  printf "$fmt" "${row[@]}"
done

echo
echo "p99 latency (ms, lower is better) and non-2xx responses / socket errors"
hdr=(workload)
for srv in "${SERVERS[@]}"; do hdr+=("${DISPLAY[$srv]} p99 (bad)"); done
fmt="%-16s"
for ((i = 1; i < ${#hdr[@]}; i++)); do fmt+=" | %$((${#hdr[i]} > 20 ? ${#hdr[i]} : 20))s"; done
fmt+="\n"
# shellcheck disable=SC2059
printf "$fmt" "${hdr[@]}"
for wl in "${WORKLOADS[@]}"; do
  row=("${WL_NAME[$wl]}")
  for srv in "${SERVERS[@]}"; do
    k=$wl:$srv
    if [[ -n ${P99[$k]:-} ]]; then
      cell=$(printf '%.2f (%d/%d)' "${P99[$k]}" "${NON2XX[$k]}" "${SOCKERR[$k]}")
    else cell=-; fi
    [[ ${STATUS[$k]:-} == ok ]] || cell+=" ${STATUS[$k]:-}"
    row+=("$cell")
  done
  # shellcheck disable=SC2059
  printf "$fmt" "${row[@]}"
done

echo
printf 'Resident memory after the mix run (VmRSS, summed over the server'"'"'s processes):'
for srv in "${SERVERS[@]}"; do
  if [[ -n ${RSS[$srv]:-} ]]; then printf '  %s %.1f MiB' "${DISPLAY[$srv]}" "$(awk -v k="${RSS[$srv]}" 'BEGIN { print k / 1024 }')"
  else printf '  %s -' "${DISPLAY[$srv]}"; fi
done
echo

echo
safe_label=$(printf '%s' "$LABEL" | tr -c 'A-Za-z0-9._:/+=-' '_')
for wl in "${WORKLOADS[@]}"; do
  r=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:lighttpd]:-}")
  v=$(verdict "$r")
  printf '%-16s weir/lighttpd = %s (target >= %s): %s\n' "${WL_NAME[$wl]}:" "$r" "$TARGET_RATIO" "$v"
  rh=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:h2o]:-}")
  printf '%-16s weir/h2o = %s (target >= %s): %s\n' "${WL_NAME[$wl]}:" "$rh" "$TARGET_RATIO" "$(verdict "$rh")"
  if ((FUSED)); then
    rf=$(ratio "${RPS[$wl:weir_fused]:-}" "${RPS[$wl:lighttpd]:-}")
    printf '%-16s weir(fused)/lighttpd = %s (target >= %s): %s\n' "${WL_NAME[$wl]}:" "$rf" "$TARGET_RATIO" "$(verdict "$rf")"
  fi
  if ((METRICS)); then
    printf '%-16s metrics cost: weir/weir(no-metrics) = %s (target >= %s)\n' "${WL_NAME[$wl]}:" \
      "$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_nometrics]:-}")" "$METRICS_TARGET"
  fi
  if ((ADMISSION)); then
    printf '%-16s admission cost: weir/weir(no-admission) = %s (target >= %s)\n' "${WL_NAME[$wl]}:" \
      "$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_noadmission]:-}")" "$ADMISSION_TARGET"
  fi
done

echo
for wl in "${WORKLOADS[@]}"; do
  line="RESULT workload=$wl"
  for srv in "${SERVERS[@]}"; do line+=" $srv=${RPS[$wl:$srv]:-NA}"; done
  for srv in "${SERVERS[@]}"; do line+=" ${srv}_p99_ms=${P99[$wl:$srv]:-NA}"; done
  for srv in "${SERVERS[@]}"; do line+=" ${srv}_non2xx=${NON2XX[$wl:$srv]:-NA}"; done
  for srv in "${SERVERS[@]}"; do line+=" ${srv}_socket_errors=${SOCKERR[$wl:$srv]:-NA}"; done
  for srv in "${SERVERS[@]}"; do line+=" ${srv}_status=${STATUS[$wl:$srv]:-NA}"; done
  if [[ $wl == mix ]]; then
    for srv in "${SERVERS[@]}"; do line+=" ${srv}_rss_kib=${RSS[$srv]:-NA}"; done
  fi
  r=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:lighttpd]:-}")
  line+=" weir_nginx=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:nginx]:-}") weir_lighttpd=$r"
  line+=" weir_h2o=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:h2o]:-}")"
  ((FUSED)) && line+=" weir_fused_lighttpd=$(ratio "${RPS[$wl:weir_fused]:-}" "${RPS[$wl:lighttpd]:-}")"
  ((METRICS)) && line+=" metrics_ratio=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_nometrics]:-}")"
  ((ADMISSION)) && line+=" admission_ratio=$(ratio "${RPS[$wl:weir]:-}" "${RPS[$wl:weir_noadmission]:-}")"
  line+=" target=$TARGET_RATIO verdict=$(verdict "$r") duration=$DURATION connections=$CONNECTIONS rounds=$ROUNDS"
  [[ -n $LABEL ]] && line+=" label=$safe_label"
  echo "$line"
done

if ((TROUBLE)); then
  echo "compare.sh: some runs had errors (see above)" >&2
  exit 3
fi
exit 0
