#!/usr/bin/env bash
# weir with its controllers on against static topologies (controllers off), closed loop and at a
# fixed rate, weir pinned to CPU 0 and wrk pinned to CPU 1. See bench/README.md.
#
# usage: bench/controllers.sh [--duration SECS] [--rounds N] [--confirm N] [--settle SECS]
#                             [--layouts LIST] [--rate-layouts LIST] [--rate R] [--rate-delay MS]
#                             [--rate-workloads LIST] [--phases LIST] [--ctl-config FILE]
#                             [--label TEXT] [--help]
# env:   WEIR    weir binary      (default: <repo>/build/release/weir)
#        SHARED  shared fixtures  (default: <repo>/../shared; uses bench/make-docroot.sh, mix.lua)
#        DOCROOT cached docroot   (default: ${TMPDIR:-/tmp}/weir-bench-docroot, kept between runs)
set -euo pipefail

readonly SERVER_CPU=0 LOAD_CPU=1
readonly WARMUP_SECS=2
readonly READY_TIMEOUT_SECS=10 # weir must answer 200 within this after launch
readonly STOP_TIMEOUT_SECS=15  # then SIGKILL (weir drains for up to timeouts.drain = 10s)
readonly CLOSED_CONNECTIONS=64
readonly THROUGHPUT_TARGET=0.95 # controllers-on req/s over the best static layout's, at least
readonly CPU_TARGET=1.10        # controllers-on CPU per request over fully fused's, at most
readonly P50_TARGET=1.10        # controllers-on p50 over the best static p50, at most
readonly MAX_DECISION_LINES=12  # decision lines printed per controllers-on run (the last ones)
readonly CALIBRATION_STEPS=3    # short runs to find the connections that meet --rate
readonly DISTURBED_ABOVE=0.10   # share of CPU 0 busy outside weir that marks a run as disturbed


DEFAULT_LAYOUTS="a/r/c/d:2/s,a/r+c/d:2/s,a+r/c/d:2/s,a+r+c/d:2/s,a+r+c:2/d:2/s,a+r+c+d+s:1,a+r+c+d+s:2"
DEFAULT_RATE_LAYOUTS="a/r/c/d:2/s,a+r+c+d+s:1,a+r+c+d+s:2"

usage() {
  cat <<EOF
Usage: bench/controllers.sh [OPTION]...
Benchmark weir with its controllers on (the default configuration) against static topologies
(controllers off, stage groups fixed), on 127.0.0.1.

Every run starts a fresh weir pinned to CPU $SERVER_CPU (taskset -c $SERVER_CPU) and loads it with
wrk pinned to CPU $LOAD_CPU.
  closed  full load, wrk -t1 -c$CLOSED_CONNECTIONS, on the 500 B file /c0/f0.bin and on the
          SPECweb96 mix (mix.lua): requests/s, p99 and CPU per request of every configuration.
  rate    a fixed rate (default 20000 req/s) on /c0/f0.bin: N connections, each waiting
          --rate-delay ms after every response (wrk's delay() hook); N is calibrated once per
          workload so that the rate is met. CPU per request (utime+stime of weir over the
          measured run / responses) and p50/p99.
Each run: start, wait until it answers, warm-up with the same load (discarded: ${WARMUP_SECS}s, or
--settle seconds for controllers on, so that the controllers settle), measured run, then
GET /topology and GET /decisions from the admin API, stop.

  --duration SECS       length of each measured run, 1..3600 (default: 10)
  --rounds N            run each workload's sequence of configurations N times, interleaved;
                        means are reported, 1..100 (default: 1)
  --confirm N           after the closed-loop rounds, measure controllers on against the best
                        static layout of those rounds in N back-to-back pairs (the order
                        alternating); the closed-loop target is judged on the median of the N
                        pair ratios, 0..50 (default: 5; 0: judge on the rounds' means)
  --settle SECS         warm-up of the controllers-on runs, 0..3600 (default: 20; the grouping
                        controller settled within 6-18 s in the runs of bench/README.md)
  --layouts LIST        static layouts for the closed-loop phase, comma-separated (default:
                        $DEFAULT_LAYOUTS)
  --rate-layouts LIST   static layouts for the fixed-rate phase (default:
                        $DEFAULT_RATE_LAYOUTS)
  --rate R              target rate of the fixed-rate phase, req/s, 100..200000 (default: 20000)
  --rate-delay MS       each connection's wait between requests, 1..1000 ms (default: 5)
  --rate-workloads LIST c0, mix or c0,mix (default: c0)
  --phases LIST         closed, rate or closed,rate (default: closed,rate)
  --ctl-config FILE     run the controllers-on configuration with this YAML config (e.g. other
                        controllers.grouping settings); its root and listen are overridden
  --label TEXT          free text printed with the results and in the RESULT lines
  --help                print this help and exit

A layout lists the stage groups in pipeline order, separated by '/'; a group is its stages joined
by '+' (a=accept r=read_parse c=cache_lookup d=disk_io s=send), optionally ':THREADS' (default:
weir's default for its first stage, 2 for disk_io, else 1). "a+r+c:2/d:2/s" is accept, read_parse
and cache_lookup fused on 2 threads, disk_io on 2, send on 1. Groups must be contiguous (weir
refuses others at start-up), so "everything but disk_io" cannot be written; the grouping controller
can reach such a topology at run time.

Environment: WEIR (weir binary, default build/release/weir), SHARED (shared fixture directory,
default ../shared relative to the repository), DOCROOT (cached docroot, default
\${TMPDIR:-/tmp}/weir-bench-docroot).

Output: progress lines, tables (closed loop, fixed rate, where the controllers settled), one
PASS/BELOW line per target, and machine-readable "RESULT ..." lines: one per configuration and
workload, one per target.
Exit status: 0 every run clean; 1 setup error; 2 bad option; 3 results printed, but some run had
non-2xx responses, socket errors, a weir that failed to start, died, or ran another layout than
configured.
EOF
}

die() { echo "controllers.sh: $*" >&2; exit 1; }
usage_error() { echo "controllers.sh: $*" >&2; echo "Try 'bench/controllers.sh --help'." >&2; exit 2; }

# ---------------------------------------------------------------------------------------- options
DURATION=10
ROUNDS=1
CONFIRM=5
SETTLE=20
LAYOUTS=$DEFAULT_LAYOUTS
RATE_LAYOUTS=$DEFAULT_RATE_LAYOUTS
RATE=20000
RATE_DELAY=5
RATE_WORKLOADS=c0
PHASES=closed,rate
CTL_CONFIG=""
LABEL=""
while (($#)); do
  opt=$1
  val=""
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
    --help | -h) usage; exit 0 ;;
    --duration | --rounds | --confirm | --settle | --layouts | --rate-layouts | --rate | --rate-delay | \
      --rate-workloads | --phases | --ctl-config | --label)
      (($# >= 2)) || usage_error "$opt needs a value"
      val=$2; shift 2 ;;
    *) usage_error "unknown option: $opt" ;;
  esac
  case $opt in
    --duration) DURATION=$val ;;
    --rounds) ROUNDS=$val ;;
    --confirm) CONFIRM=$val ;;
    --settle) SETTLE=$val ;;
    --layouts) LAYOUTS=$val ;;
    --rate-layouts) RATE_LAYOUTS=$val ;;
    --rate) RATE=$val ;;
    --rate-delay) RATE_DELAY=$val ;;
    --rate-workloads) RATE_WORKLOADS=$val ;;
    --phases) PHASES=$val ;;
    --ctl-config) CTL_CONFIG=$val ;;
    --label) LABEL=$val ;;
    *) usage_error "unknown option: $opt" ;;
  esac
done
int_in() { # name value lo hi: a decimal integer in lo..hi, else a usage error
  if ! [[ $2 =~ ^[0-9]{1,7}$ ]] || ((10#$2 < $3 || 10#$2 > $4)); then
    usage_error "$1 must be $3..$4, got '$2'"
  fi
}
int_in --duration "$DURATION" 1 3600
int_in --rounds "$ROUNDS" 1 100
int_in --confirm "$CONFIRM" 0 50
int_in --settle "$SETTLE" 0 3600
int_in --rate "$RATE" 100 200000
int_in --rate-delay "$RATE_DELAY" 1 1000
DURATION=$((10#$DURATION)) ROUNDS=$((10#$ROUNDS)) CONFIRM=$((10#$CONFIRM)) SETTLE=$((10#$SETTLE))
RATE=$((10#$RATE)) RATE_DELAY=$((10#$RATE_DELAY))

# list_of OPTION VALUE ALLOWED...: sets LIST to the words of the comma-separated VALUE, each one
# of ALLOWED, without repeats; anything else is a usage error
list_of() {
  local opt=$1 value=$2 w seen=" " words=()
  shift 2
  LIST=()
  [[ -n $value ]] || usage_error "$opt: empty list"
  IFS=, read -r -a words <<<"$value"
  for w in "${words[@]}"; do
    [[ " $* " == *" $w "* ]] || usage_error "$opt: '$w' is not one of: $*"
    [[ $seen == *" $w "* ]] || LIST+=("$w")
    seen+="$w "
  done
}
if [[ -n $CTL_CONFIG ]]; then
  [[ -f $CTL_CONFIG && -r $CTL_CONFIG ]] || usage_error "--ctl-config: cannot read '$CTL_CONFIG'"
  CTL_CONFIG=$(cd "$(dirname "$CTL_CONFIG")" && pwd)/$(basename "$CTL_CONFIG")
fi
list_of --rate-workloads "$RATE_WORKLOADS" c0 mix
RATE_WORKLOAD_LIST=("${LIST[@]}")
list_of --phases "$PHASES" closed rate
PHASE_LIST=("${LIST[@]}")
has_phase() { [[ " ${PHASE_LIST[*]} " == *" $1 "* ]]; }

# A layout, normalized: every group with its thread count ("a+r+c:1/d:2/s:1"). Sets LAYOUT_NORM,
# LAYOUT_GROUPS (number of groups) and writes nothing; a bad layout is a usage error.
declare -A STAGE_OF=([a]=accept [r]=read_parse [c]=cache_lookup [d]=disk_io [s]=send)
declare -A QUEUE_OF=([a]=1024 [r]=4096 [c]=4096 [d]=1024 [s]=4096) # weir's default queues
normalize_layout() {
  local spec=$1 groups=() g stages threads order="" norm="" n=0
  [[ $spec =~ ^[arcds+:/0-9]+$ ]] || usage_error "layout '$spec': use the letters a r c d s, '+', ':N' and '/'"
  IFS=/ read -r -a groups <<<"$spec"
  for g in "${groups[@]}"; do
    stages=${g%%:*}
    threads=""
    [[ $g == *:* ]] && threads=${g#*:}
    [[ $stages =~ ^[arcds](\+[arcds])*$ ]] ||
      usage_error "layout '$spec': group '$g' is not stages joined by '+'"
    if [[ -n $threads ]]; then
      if ! [[ $threads =~ ^[0-9]{1,3}$ ]] || ((10#$threads < 1 || 10#$threads > 256)); then
        usage_error "layout '$spec': threads of group '$stages' must be 1..256, got '$threads'"
      fi
      threads=$((10#$threads))
    else
      threads=1
      [[ ${stages:0:1} == d ]] && threads=2 # weir's default for disk_io
    fi
    order+=${stages//+/}
    norm+="${norm:+/}$stages:$threads"
    n=$((n + 1))
  done
  [[ $order == arcds ]] ||
    usage_error "layout '$spec': must hold a r c d s once each, in pipeline order, each group contiguous (weir fuses only neighbouring stages at start-up)"
  LAYOUT_NORM=$norm
  LAYOUT_GROUPS=$n
}
# write_layout_config NORM FILE: the YAML of a static layout (controllers off)
write_layout_config() {
  local norm=$1 file=$2 g stages threads name queue st i groups=() sts=()
  {
    echo "# generated by bench/controllers.sh: layout $norm, controllers off"
    echo "stages:"
    IFS=/ read -r -a groups <<<"$norm"
    for g in "${groups[@]}"; do
      stages=${g%%:*} threads=${g#*:}
      name=""
      queue=0
      IFS=+ read -r -a sts <<<"$stages"
      if ((${#sts[@]} > 1)); then name=${stages//+/}; fi
      for st in "${sts[@]}"; do ((QUEUE_OF[$st] > queue)) && queue=${QUEUE_OF[$st]}; done
      for ((i = 0; i < ${#sts[@]}; i++)); do
        st=${sts[i]}
        if ((i == 0)); then
          printf '  %-13s { threads: %d, queue: %d, group: "%s" }\n' "${STAGE_OF[$st]}:" "$threads" "$queue" "$name"
        else
          printf '  %-13s { group: "%s" }\n' "${STAGE_OF[$st]}:" "$name"
        fi
      done
    done
    echo "controllers: { pool: { enabled: false }, grouping: { enabled: false } }"
  } >"$file"
}

CLOSED_CFGS=(ctl)
[[ -n $LAYOUTS ]] || usage_error "--layouts: empty list"
IFS=, read -r -a _l <<<"$LAYOUTS"
declare -A NORM_OF=() NGROUPS_OF=()
for l in "${_l[@]}"; do
  normalize_layout "$l"
  [[ -n ${NORM_OF[$LAYOUT_NORM]:-} ]] && continue
  NORM_OF[$LAYOUT_NORM]=$LAYOUT_NORM
  NGROUPS_OF[$LAYOUT_NORM]=$LAYOUT_GROUPS
  CLOSED_CFGS+=("$LAYOUT_NORM")
done
RATE_CFGS=()
[[ -n $RATE_LAYOUTS ]] || usage_error "--rate-layouts: empty list"
IFS=, read -r -a _l <<<"$RATE_LAYOUTS"
for l in "${_l[@]}"; do
  normalize_layout "$l"
  [[ " ${RATE_CFGS[*]} " == *" $LAYOUT_NORM "* ]] && continue
  NORM_OF[$LAYOUT_NORM]=$LAYOUT_NORM
  NGROUPS_OF[$LAYOUT_NORM]=$LAYOUT_GROUPS
  RATE_CFGS+=("$LAYOUT_NORM")
done
RATE_CFGS+=(ctl) # last: the calibration runs in the first static layout's warm-up
HAVE_FUSED=0
for c in "${RATE_CFGS[@]}"; do [[ $c != ctl ]] && ((NGROUPS_OF[$c] == 1)) && HAVE_FUSED=1; done

# ------------------------------------------------------------------------------------ environment
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$REPO_ROOT/../shared}
WEIR=${WEIR:-$REPO_ROOT/build/release/weir}
DOCROOT=${DOCROOT:-${TMPDIR:-/tmp}/weir-bench-docroot}

for cmd in wrk taskset curl python3 timeout awk sed getconf; do
  command -v "$cmd" >/dev/null 2>&1 ||
    die "'$cmd' not found (Debian: scripts/bootstrap.sh bench, or apt-get install wrk curl python3 util-linux)"
done
[[ -x $WEIR ]] || die "weir binary not found at '$WEIR' (build it: cmake --preset release && cmake --build --preset release, or set WEIR=)"
[[ -d $SHARED/bench ]] || die "shared fixtures not found at '$SHARED/bench' (set SHARED=)"
SHARED=$(cd "$SHARED" && pwd)
for fx in bench/make-docroot.sh bench/mix.lua; do
  [[ -r $SHARED/$fx ]] || die "missing shared fixture '$SHARED/$fx'"
done
MIX_LUA=$SHARED/bench/mix.lua
if ! taskset -c "$SERVER_CPU" true 2>/dev/null || ! taskset -c "$LOAD_CPU" true 2>/dev/null; then
  die "need CPUs $SERVER_CPU and $LOAD_CPU to pin weir and wrk apart (nproc: $(nproc))"
fi
CLK_TCK=$(getconf CLK_TCK)
weir_help=$("$WEIR" --help 2>/dev/null || true)
[[ $weir_help == *--admin-listen* && $weir_help == *--metrics-listen* ]] ||
  die "$WEIR has no --admin-listen/--metrics-listen (built before the admin API?)"

# ---------------------------------------------------------------------------- cleanup and signals
RUNDIR=""
WEIR_PID=""
START_EPOCH=$SECONDS

alive() { # pid: running and not a zombie
  [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Stops the running weir: SIGTERM, SIGKILL after the deadline. Sets STOP_RC to its exit status.
STOP_RC=""
stop_weir() {
  STOP_RC=""
  [[ -n $WEIR_PID ]] || return 0
  kill -TERM "$WEIR_PID" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_SECS)) rc=0
  while alive "$WEIR_PID"; do
    if ((SECONDS >= deadline)); then
      echo "controllers.sh: weir (pid $WEIR_PID) still running ${STOP_TIMEOUT_SECS}s after SIGTERM; killing it" >&2
      kill -KILL "$WEIR_PID" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  wait "$WEIR_PID" 2>/dev/null || rc=$?
  STOP_RC=$rc
  WEIR_PID=""
}

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  stop_weir || true
  [[ -n $RUNDIR && -d $RUNDIR ]] && rm -rf -- "$RUNDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "controllers.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/weir-bench-ctl.XXXXXX")

# ------------------------------------------------------------------------------------------ docroot
# As bench/compare.sh: make-docroot.sh keeps existing files, so drop any of the wrong size first.
check_docroot() {
  local cls c size n i f bad=0
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
  echo "controllers.sh: building docroot $DOCROOT" >&2
  "$SHARED/bench/make-docroot.sh" "$DOCROOT" || die "make-docroot.sh failed"
  check_docroot || die "docroot $DOCROOT is incomplete after make-docroot.sh"
fi
DOCROOT=$(cd "$DOCROOT" && pwd)

# ---------------------------------------------------------------------------------- weir configs
declare -A CONFIG_FILE=([ctl]="$CTL_CONFIG")
i=0
for c in "${!NORM_OF[@]}"; do
  i=$((i + 1))
  CONFIG_FILE[$c]=$RUNDIR/layout-$i.yaml
  write_layout_config "$c" "${CONFIG_FILE[$c]}"
done
for c in "${!CONFIG_FILE[@]}"; do
  "$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 ${CONFIG_FILE[$c]:+--config "${CONFIG_FILE[$c]}"} \
    --test-config >"$RUNDIR/test-config.log" 2>&1 ||
    die "weir rejects the configuration of ${c/ctl/controllers on}: $(cat "$RUNDIR/test-config.log")"
done

# ----------------------------------------------------------------------------------- helpers
# One Python helper for the clock the controllers stamp decisions with (CLOCK_MONOTONIC, ms) and
# for reading the admin API's JSON.
HELPER=$RUNDIR/helper.py
cat >"$HELPER" <<'EOF'
import json, sys, time

SHORT = {"accept": "a", "read_parse": "r", "cache_lookup": "c", "disk_io": "d", "send": "s"}
ORDER = list(SHORT)

def topology(path):
    # the groups in the notation of the layouts: stages in pipeline order, groups by first stage
    groups = json.load(open(path))["groups"]
    out = []
    for g in groups:
        st = sorted(g["stages"], key=ORDER.index)
        out.append((ORDER.index(st[0]), "+".join(SHORT[s] for s in st) + ":" + str(g["threads"])))
    print("/".join(x for _, x in sorted(out)))

def decisions(path, t0, m0, m1, limit):
    ds = json.load(open(path))["decisions"]
    t0, m0, m1, limit = int(t0), int(m0), int(m1), int(limit)
    measured = sum(1 for d in ds if m0 <= d["at_ms"] <= m1)
    fuse = sum(1 for d in ds if d["action"] == "fuse" and d["applied"])
    split = sum(1 for d in ds if d["action"] == "split" and d["applied"])
    grow = sum(1 for d in ds if d["action"] == "grow" and d["applied"])
    shrink = sum(1 for d in ds if d["action"] == "shrink" and d["applied"])
    last = "%.1f" % ((ds[-1]["at_ms"] - t0) / 1000.0) if ds else "NA"
    print(len(ds), measured, fuse, split, grow, shrink, last)
    shown = ds[-limit:] if limit > 0 else []
    if len(ds) > len(shown):
        print("  (%d earlier decisions not shown)" % (len(ds) - len(shown)))
    for d in shown:
        when = (d["at_ms"] - t0) / 1000.0
        tag = "measured" if m0 <= d["at_ms"] <= m1 else ("warm-up" if d["at_ms"] < m0 else "after")
        if d["controller"] == "grouping":
            what = "%s %s (%d -> %d groups)" % (d["action"], d["group"], d["from"], d["to"])
        else:
            what = "%s %s %d -> %d threads" % (d["action"], d["group"], d["from"], d["to"])
        print("  t+%6.2fs [%s] %s %s%s: %s" % (when, tag, d["controller"], what,
              "" if d["applied"] else " (not applied)", d["why"]))

cmd = sys.argv[1]
if cmd == "mono":
    print(int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000))
elif cmd == "topology":
    topology(sys.argv[2])
elif cmd == "decisions":
    decisions(*sys.argv[2:7])
EOF
mono_ms() { python3 "$HELPER" mono; }

cpu_ticks() { # utime + stime of a process, in clock ticks (threads that ended are counted too)
  local stat fields=()
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
  stat=${stat##*) } # the command name may hold blanks; the fields after it do not
  read -r -a fields <<<"$stat"
  echo $((fields[11] + fields[12])) # fields 14 and 15 of stat(5), counting from the state (field 3) as 0
}

cpu_busy_total() { # "busy total" ticks of SERVER_CPU from /proc/stat (busy: all but idle and iowait)
  awk -v cpu="cpu$SERVER_CPU" '$1 == cpu { t = 0; for (i = 2; i <= 9; i++) t += $i
    print t - $5 - $6, t; exit }' /proc/stat
}

unpinned_threads() { # threads of weir not restricted to SERVER_CPU ("tid:cpus" words)
  awk -v want="$SERVER_CPU" '/^Cpus_allowed_list:/ && $2 != want {
      f = FILENAME; sub(/^\/proc\/[0-9]+\/task\//, "", f); sub(/\/status$/, "", f); printf "%s:%s ", f, $2 }' \
    /proc/"$1"/task/*/status 2>/dev/null || true
}

# start_weir CFG DIR: launches weir on free loopback ports (port 0, read back from its log); sets
# WEIR_PID, LOG, PORT, ADMIN_PORT, T0_MS (launch, on the controllers' clock). 1: it did not come up.
start_weir() {
  local cfg=$1 dir=$2 file=${CONFIG_FILE[$1]}
  LOG=$dir/stderr.log
  PORT="" ADMIN_PORT=""
  T0_MS=$(mono_ms)
  # every thread weir starts inherits the launcher's affinity
  taskset -c "$SERVER_CPU" "$WEIR" --root "$DOCROOT" --listen 127.0.0.1:0 ${file:+--config "$file"} \
    --metrics-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 </dev/null >"$LOG" 2>&1 &
  WEIR_PID=$!
  local deadline=$((SECONDS + READY_TIMEOUT_SECS)) got=""
  while :; do
    PORT=$(sed -n 's|.* listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$LOG" | head -n 1)
    [[ -n $PORT ]] && break
    if ! alive "$WEIR_PID" || ((SECONDS >= deadline)); then
      echo "(no 'listening on' line in weir's log)" >>"$LOG"
      return 1
    fi
    sleep 0.05
  done
  ADMIN_PORT=$(sed -n 's|.*admin API: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$LOG" | head -n 1)
  [[ -n $ADMIN_PORT ]] || { echo "(no 'admin API:' line in weir's log)" >>"$LOG"; return 1; }
  # ready: /c0/f0.bin answers 200 with 500 bytes, and one file of every other class comes back whole
  while :; do
    got=$(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' \
      "http://127.0.0.1:$PORT/c0/f0.bin" 2>/dev/null || true)
    [[ $got == "200 500" ]] && break
    if ! alive "$WEIR_PID" || ((SECONDS >= deadline)); then
      echo "(last answer to GET /c0/f0.bin: '${got:-none}')" >>"$LOG"
      return 1
    fi
    sleep 0.05
  done
  local u want
  for u in c1/f0.bin:5000 c2/f0.bin:50000 c3/f1.bin:5000000; do
    want="200 ${u#*:}"
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' \
      "http://127.0.0.1:$PORT/${u%%:*}" 2>/dev/null || true)
    [[ $got == "$want" ]] || { echo "(GET /${u%%:*}: got '$got', want '$want')" >>"$LOG"; return 1; }
  done
  return 0
}

admin_get() { # path out: GET from the admin API
  curl -s -f --max-time 5 -o "$2" "http://127.0.0.1:$ADMIN_PORT$1"
}

# ------------------------------------------------------------------------------------------ wrk
RATE_LUA_C0=$RUNDIR/rate-c0.lua
RATE_LUA_MIX=$RUNDIR/rate-mix.lua
printf -- '-- generated by bench/controllers.sh: every connection waits %d ms after each response\nfunction delay() return %d end\n' \
  "$RATE_DELAY" "$RATE_DELAY" >"$RATE_LUA_C0"
{ printf 'dofile([[%s]])\n' "$MIX_LUA"; cat "$RATE_LUA_C0"; } >"$RATE_LUA_MIX"

# run_wrk OUT SECS CONNECTIONS URL [LUA]: wrk pinned to LOAD_CPU, bounded by timeout
run_wrk() {
  local out=$1 secs=$2 conns=$3 url=$4 lua=${5:-}
  local args=(-t1 "-c$conns" "-d${secs}s" --latency)
  [[ -n $lua ]] && args+=(-s "$lua")
  timeout --foreground --kill-after=5 $((secs + 30)) \
    taskset -c "$LOAD_CPU" wrk "${args[@]}" "$url" >"$out" 2>&1
}

# parse_wrk FILE: prints "rps p50_ms p99_ms non2xx socket_errors requests"
parse_wrk() {
  awk '
    function ms(v,   n, u) {
      n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "us") return n / 1000
      if (u == "ms") return n
      if (u == "s") return n * 1000
      if (u == "m") return n * 60000
      return -1
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "50%" && p50 == "" { p50 = ms($2) }
    $1 == "99%" && p99 == "" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(/,/, "", v); err += v } }
    / requests in / { reqs = $1 }
    END {
      if (rps == "") exit 1
      printf "%s %s %s %d %d %d\n", rps, (p50 == "" ? "-1" : sprintf("%.3f", p50)),
        (p99 == "" ? "-1" : sprintf("%.3f", p99)), non2xx, err, reqs
    }' "$1"
}

# ----------------------------------------------------------------------------------------- driver
declare -A WL_NAME=([c0]="c0 (500 B)" [mix]="mix (SPECweb96)")
declare -A RUNS=() RPS=() P50=() P99=() CPU_US=() CPU_CORE=() OTHERS=() NON2XX=() SOCKERR=() STATUS=()
declare -A RPS_RUNS=()
declare -A TOPO=() DECISIONS=() DLINES=() RATE_CONNS=()
TROUBLE=0
BAD_RUNS=()
DISTURBED=()

display() { [[ $1 == ctl ]] && echo "controllers on" || echo "$1"; }

add() { # key value: sums for the means over the rounds
  local -n arr=$1
  arr[$2]=$(awk -v a="${arr[$2]:-0}" -v b="$3" 'BEGIN { printf "%.4f", a + b }')
}

# calibrate DIR CONNECTIONS URL LUA: sets RATE_CONNS[$wl], the connections that meet RATE, once
# per workload, so that every configuration then gets the same offered load. The rate falls short
# of connections*1000/delay by the response time and wrk's timer slack (about a millisecond), so
# the count is scaled by target/achieved, in up to CALIBRATION_STEPS short runs.
calibrate() {
  local dir=$1 conns=$2 url=$3 lua=$4 step got
  for ((step = 1; step <= CALIBRATION_STEPS; step++)); do
    run_wrk "$dir/calibrate-$step.txt" "$WARMUP_SECS" "$conns" "$url" "$lua" || true
    got=$(parse_wrk "$dir/calibrate-$step.txt" 2>/dev/null | awk '{ print $1 }' || true)
    if [[ -z $got ]] || ! awk -v g="$got" 'BEGIN { exit !(g > 0) }'; then break; fi
    # within 2 %: keep it
    awk -v g="$got" -v r="$RATE" 'BEGIN { exit !(g >= 0.98 * r && g <= 1.02 * r) }' && break
    conns=$(awk -v c="$conns" -v r="$RATE" -v g="$got" -v max="$((4 * RATE * RATE_DELAY / 1000 + 4))" 'BEGIN {
      n = int(c * r / g + 0.5); if (n > max) n = max; if (n < 1) n = 1; print n }')
  done
  RATE_CONNS[$wl]=$conns
}

# run_one PHASE WL CFG ROUND
run_one() {
  local phase=$1 wl=$2 cfg=$3 round=$4
  local key=$phase:$wl:$cfg tag="$phase $wl" dir conns url lua warm status=ok
  if [[ $phase == confirm ]]; then tag+=" pair $round/$CONFIRM"
  elif ((ROUNDS > 1)); then tag+=" $round/$ROUNDS"; fi
  LAST_RPS=""
  dir=$RUNDIR/$phase-$wl-$round-${cfg//[\/+:]/_}
  mkdir -p "$dir"
  printf '[%s] %-22s ' "$tag" "$(display "$cfg")"
  url=http://127.0.0.1:PORT/c0/f0.bin lua=""
  [[ $wl == mix ]] && url=http://127.0.0.1:PORT/ lua=$MIX_LUA
  if [[ $phase == closed || $phase == confirm ]]; then
    conns=$CLOSED_CONNECTIONS
  else
    lua=$RATE_LUA_C0
    [[ $wl == mix ]] && lua=$RATE_LUA_MIX
    conns=${RATE_CONNS[$wl]:-$(((RATE * RATE_DELAY + 999) / 1000))}
  fi
  if ! start_weir "$cfg" "$dir"; then
    echo "FAILED to start"
    STATUS[$key]=FAILED
    TROUBLE=1
    BAD_RUNS+=("$tag $(display "$cfg"): failed to start")
    echo "---- last lines of weir's log ----" >&2; tail -n 15 "$LOG" >&2 || true; echo "----" >&2
    stop_weir
    return 0
  fi
  url=${url/PORT/$PORT}

  warm=$WARMUP_SECS
  [[ $cfg == ctl ]] && ((SETTLE > warm)) && warm=$SETTLE
  if ((warm > 0)); then run_wrk "$dir/warmup.txt" "$warm" "$conns" "$url" "$lua" || true; fi
  if [[ $phase == rate && -z ${RATE_CONNS[$wl]:-} ]]; then
    calibrate "$dir" "$conns" "$url" "$lua"
    conns=${RATE_CONNS[$wl]}
  fi

  local c0 c1 m0 m1 b0 b1 wrk_rc=0
  m0=$(mono_ms)
  c0=$(cpu_ticks "$WEIR_PID")
  b0=$(cpu_busy_total)
  run_wrk "$dir/wrk.txt" "$DURATION" "$conns" "$url" "$lua" || wrk_rc=$?
  b1=$(cpu_busy_total)
  c1=$(cpu_ticks "$WEIR_PID")
  m1=$(mono_ms)

  if ! alive "$WEIR_PID"; then status=DIED; fi
  local topo="" unpinned summary=()
  if [[ $status == ok ]]; then
    unpinned=$(unpinned_threads "$WEIR_PID")
    [[ -z $unpinned ]] || echo "(warning: threads not pinned to CPU $SERVER_CPU: $unpinned)" >&2
    if admin_get /topology "$dir/topology.json" && topo=$(python3 "$HELPER" topology "$dir/topology.json"); then
      TOPO[$key]=$topo
      if [[ $cfg != ctl && $topo != "$cfg" ]]; then
        echo "(weir runs layout $topo, configured $cfg)" >&2
        status=LAYOUT-MISMATCH
      fi
    else
      status=NO-TOPOLOGY
    fi
    if [[ $cfg == ctl ]]; then
      if admin_get /decisions "$dir/decisions.json" &&
        python3 "$HELPER" decisions "$dir/decisions.json" "$T0_MS" "$m0" "$m1" "$MAX_DECISION_LINES" \
          >"$dir/decisions.txt"; then
        read -r -a summary < <(head -n 1 "$dir/decisions.txt")
        DECISIONS[$key]="${summary[*]}"
        DLINES[$key]=$(tail -n +2 "$dir/decisions.txt")
      else
        status=NO-DECISIONS
      fi
    fi
  fi

  local measured=0 rps p50 p99 non2xx=0 sockerr=0 reqs cpu_us=NA cpu_core=NA others=NA
  # CPU 0's busy time that weir did not use (other processes, interrupts not charged to weir)
  others=$(awk -v b0="$b0" -v b1="$b1" -v c0="$c0" -v c1="$c1" 'BEGIN {
    split(b0, x, " "); split(b1, y, " "); t = y[2] - x[2]
    if (t <= 0 || c0 < 0 || c1 < c0) { print "NA"; exit }
    o = (y[1] - x[1] - (c1 - c0)) / t; if (o < 0) o = 0; printf "%.3f", o }')
  if parsed=$(parse_wrk "$dir/wrk.txt"); then
    read -r rps p50 p99 non2xx sockerr reqs <<<"$parsed"
    measured=1
    if ((c0 >= 0 && c1 >= c0 && reqs > 0)); then
      cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.3f", t / hz / n * 1e6 }')
      cpu_core=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v a="$m0" -v b="$m1" 'BEGIN { printf "%.3f", t / hz / ((b - a) / 1000) }')
    fi
    RUNS[$key]=$((${RUNS[$key]:-0} + 1))
    add RPS "$key" "$rps"
    add P50 "$key" "$p50"
    add P99 "$key" "$p99"
    if [[ $cpu_us != NA ]]; then
      add CPU_US "$key" "$cpu_us"
      add CPU_CORE "$key" "$cpu_core"
    fi
    if [[ $others != NA ]]; then
      add OTHERS "$key" "$others"
      awk -v o="$others" -v m="$DISTURBED_ABOVE" 'BEGIN { exit !(o > m) }' &&
        DISTURBED+=("$tag $(display "$cfg"): $(awk -v o="$others" 'BEGIN { printf "%.0f", o * 100 }') %")
    fi
    RPS_RUNS[$key]+="${RPS_RUNS[$key]:+,}$rps"
    NON2XX[$key]=$((${NON2XX[$key]:-0} + non2xx))
    SOCKERR[$key]=$((${SOCKERR[$key]:-0} + sockerr))
  else
    status=NO-RESULT
    echo "(wrk exit status $wrk_rc; its output:)" >&2
    sed 's/^/  /' "$dir/wrk.txt" >&2 || true
  fi

  stop_weir
  [[ $status == ok && -n $STOP_RC && $STOP_RC != 0 ]] && status="EXIT-$STOP_RC"
  [[ ${STATUS[$key]:-ok} == ok ]] && STATUS[$key]=$status # the first trouble of any round stays
  ((measured)) && [[ $status == ok && $non2xx == 0 && $sockerr == 0 ]] && LAST_RPS=$rps

  if ((measured)); then
    printf '%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6s us/req (%s of a core; others on CPU %d: %s)  -c%d  bad %d/%d' \
      "$rps" "$p50" "$p99" "$cpu_us" "$cpu_core" "$SERVER_CPU" "$others" "$conns" "$non2xx" "$sockerr"
  fi
  [[ $status == ok ]] || printf '  %s' "$status"
  echo
  if [[ $cfg == ctl && -n ${DECISIONS[$key]:-} ]]; then
    read -r -a summary <<<"${DECISIONS[$key]}"
    echo "    ended on $topo after ${summary[0]} decisions (${summary[1]} during the measured run$([[ ${summary[6]} != NA ]] && echo "; the last at t+${summary[6]}s after launch")): ${summary[2]} fuse, ${summary[3]} split, ${summary[4]} grow, ${summary[5]} shrink"
    [[ -n ${DLINES[$key]} ]] && echo "${DLINES[$key]}"
  fi
  local warns
  warns=$(grep -cE '\[(warn|warning|error|critical)\]' "$LOG" || true)
  if [[ $status != ok || $non2xx != 0 || $sockerr != 0 ]]; then
    TROUBLE=1
    BAD_RUNS+=("$tag $(display "$cfg"): status $status, non-2xx $non2xx, socket errors $sockerr")
    echo "---- last lines of weir's log ----" >&2; tail -n 15 "$LOG" >&2 || true; echo "----" >&2
  elif ((warns > 0)); then
    echo "(weir logged $warns warning/error lines during this run)" >&2
    grep -E '\[(warn|warning|error|critical)\]' "$LOG" | tail -n 5 >&2 || true
  fi
}

runs_per_round=0
has_phase closed && runs_per_round=$((runs_per_round + 2 * ${#CLOSED_CFGS[@]}))
has_phase rate && runs_per_round=$((runs_per_round + ${#RATE_WORKLOAD_LIST[@]} * ${#RATE_CFGS[@]}))
settle_runs=0
has_phase closed && settle_runs=$((settle_runs + 2))
has_phase rate && settle_runs=$((settle_runs + ${#RATE_WORKLOAD_LIST[@]}))
warm_ctl=$((SETTLE > WARMUP_SECS ? SETTLE : WARMUP_SECS))
# about 5 s per run for start, checks and stop (weir's shutdown takes a few seconds)
estimate=$((ROUNDS * (runs_per_round * (DURATION + WARMUP_SECS + 5) + settle_runs * (warm_ctl - WARMUP_SECS))))
has_phase closed && estimate=$((estimate + 2 * CONFIRM * (2 * (DURATION + WARMUP_SECS + 5) + warm_ctl - WARMUP_SECS)))

cat <<EOF
weir controllers benchmark${LABEL:+  [$LABEL]}
  weir:     $WEIR ($("$WEIR" --version 2>/dev/null | head -n 1 || echo "version unknown"))
  docroot:  $DOCROOT
  configs:  controllers on: ${CTL_CONFIG:-the defaults} (pool and grouping controllers on)
            layouts: static, controllers off (a=accept r=read_parse c=cache_lookup d=disk_io
            s=send, ':N' threads, '/' between groups)
  closed:   taskset -c $LOAD_CPU wrk -t1 -c$CLOSED_CONNECTIONS -d${DURATION}s --latency, /c0/f0.bin and mix.lua
  confirm:  $( ((CONFIRM > 0)) && echo "$CONFIRM pairs, controllers on and the best static layout of the rounds, back to back" || echo "none")
  rate:     ${RATE} req/s on ${RATE_WORKLOAD_LIST[*]}: each connection waits ${RATE_DELAY} ms after a response (connections calibrated once)
  warm-up:  ${WARMUP_SECS}s (discarded), controllers on: ${warm_ctl}s (--settle)
  weir:     one at a time, taskset -c $SERVER_CPU (1 core: the pool controller's budget is one thread per CPU-bound group), 127.0.0.1$( ((ROUNDS > 1)) && echo "; $ROUNDS rounds, means reported")
  host:     $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); expect about $((estimate / 60)) min $((estimate % 60)) s

EOF

num() { # value decimals: the number rounded, or '-' when there is none
  if [[ ${1:-} =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then printf "%.${2}f" "$1"; else printf -- '-'; fi
}
ratio() { # a b -> a/b with 2 decimals, or n/a
  if [[ -n ${1:-} && -n ${2:-} && $1 != NA && $2 != NA ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'
  else printf 'n/a'; fi
}
verdict() { # ratio op target -> PASS | BELOW | FAILED
  [[ $1 == n/a ]] && { printf 'FAILED'; return; }
  awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
    ok = (op == ">=") ? (r + 0 >= t - 1e-9) : (r + 0 <= t + 1e-9); printf ok ? "PASS" : "BELOW" }'
}
# best PHASE WL ARRAY max|min [single-group-only]: the static configuration with the best value
best() {
  local phase=$1 wl=$2 dir=$4 only=${5:-} c v bestc="" bestv=""
  local -n arr=$3
  local -a list=("${CLOSED_CFGS[@]}")
  [[ $phase == rate ]] && list=("${RATE_CFGS[@]}")
  for c in "${list[@]}"; do
    [[ $c == ctl ]] && continue
    [[ -n $only ]] && ((NGROUPS_OF[$c] != 1)) && continue
    [[ ${STATUS[$phase:$wl:$c]:-} == ok ]] || continue
    v=${arr[$phase:$wl:$c]:-}
    [[ -n $v ]] || continue
    if [[ -z $bestv ]] || awk -v v="$v" -v b="$bestv" -v d="$dir" 'BEGIN { exit !(d == "max" ? v > b : v < b) }'; then
      bestc=$c bestv=$v
    fi
  done
  echo "$bestc"
}
mark() { # key: the run's trouble, if any, for a table cell
  [[ ${STATUS[$1]:-} == ok ]] || { printf ' %s' "${STATUS[$1]:-NOT-RUN}"; return; }
  ((${NON2XX[$1]:-0} + ${SOCKERR[$1]:-0} == 0)) || printf ' (bad %d/%d)' "${NON2XX[$1]}" "${SOCKERR[$1]}"
}

run_phase() { # phase: every round of every workload
  local phase=$1 wl round cfg shift_by wls cfgs order
  if [[ $phase == closed ]]; then wls=(c0 mix); cfgs=("${CLOSED_CFGS[@]}")
  else wls=("${RATE_WORKLOAD_LIST[@]}"); cfgs=("${RATE_CFGS[@]}"); fi
  for wl in "${wls[@]}"; do
    for ((round = 1; round <= ROUNDS; round++)); do
      # The closed loop starts each round one configuration further along the list, so that none
      # is always measured first (or last) in its round. (The fixed rate keeps its order: its
      # calibration runs before the first round's first static layout.)
      order=("${cfgs[@]}")
      if [[ $phase == closed ]]; then
        shift_by=$(((round - 1) % ${#cfgs[@]}))
        order=("${cfgs[@]:shift_by}" "${cfgs[@]:0:shift_by}")
      fi
      for cfg in "${order[@]}"; do run_one "$phase" "$wl" "$cfg" "$round"; done
    done
  done
}
means_of() { # phase: means over the rounds that produced a result, for that phase's keys
  local key arr
  for key in "${!RUNS[@]}"; do
    [[ $key == "$1":* ]] || continue
    for arr in RPS P50 P99 CPU_US CPU_CORE OTHERS; do
      declare -n a=$arr
      [[ -n ${a[$key]:-} ]] && a["$key"]=$(awk -v s="${a[$key]}" -v n="${RUNS[$key]}" 'BEGIN { printf "%.3f", s / n }')
      unset -n a
    done
  done
}

# The best static layout of the closed-loop rounds is the highest of several noisy means, so its
# mean overstates it (the more layouts, the more so; runs here vary by +-25 %). The confirmation
# measures it afresh against controllers on, in pairs run back to back (drift in the host's speed
# then hits both), the order alternating; the target is judged on the median pair ratio.
declare -A PAIR_RATIOS=() CONFIRM_LAYOUT=()
run_confirm() {
  local wl b i first second r
  for wl in c0 mix; do
    b=$(best closed "$wl" RPS max)
    [[ -n $b ]] || continue
    CONFIRM_LAYOUT[$wl]=$b
    for ((i = 1; i <= CONFIRM; i++)); do
      first=ctl second=$b
      ((i % 2 == 0)) && first=$b second=ctl
      run_one confirm "$wl" "$first" "$i"
      local r1=$LAST_RPS
      run_one confirm "$wl" "$second" "$i"
      local r2=$LAST_RPS
      [[ -n $r1 && -n $r2 ]] || continue
      if [[ $first == ctl ]]; then r=$(ratio "$r1" "$r2"); else r=$(ratio "$r2" "$r1"); fi
      PAIR_RATIOS[$wl]+="${PAIR_RATIOS[$wl]:+ }$r"
    done
  done
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a";
  else if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

if has_phase closed; then
  run_phase closed
  means_of closed
  ((CONFIRM > 0)) && { run_confirm; means_of confirm; }
fi
if has_phase rate; then
  run_phase rate
  means_of rate
fi

# ---------------------------------------------------------------------------------------- report
declare -A BEST_RPS=()
if has_phase closed; then
  echo
  echo "Closed loop, full load: wrk -t1 -c$CLOSED_CONNECTIONS  (req/s: higher is better; p99, CPU per request: lower)${LABEL:+  [$LABEL]}"
  for wl in c0 mix; do BEST_RPS[$wl]=$(best closed "$wl" RPS max); done
  fmt="%-22s | %9s | %7s | %7s | %9s | %7s | %7s\n"
  # shellcheck disable=SC2059
  printf "$fmt" configuration "c0 req/s" "p99 ms" "us/req" "mix req/s" "p99 ms" "us/req"
  for cfg in "${CLOSED_CFGS[@]}"; do
    row=("$(display "$cfg")")
    for wl in c0 mix; do
      k=closed:$wl:$cfg
      cell=$(num "${RPS[$k]:-}" 0)
      [[ $cfg == "${BEST_RPS[$wl]}" ]] && cell="*$cell"
      row+=("$cell" "$(num "${P99[$k]:-}" 2)" "$(num "${CPU_US[$k]:-}" 2)$(mark "$k")")
    done
    # shellcheck disable=SC2059
    printf "$fmt" "${row[@]}"
  done
  echo "  * the best static layout of the workload (highest req/s)"
  if ((CONFIRM > 0)); then
    echo
    echo "Closed loop, confirmation: controllers on against the best static layout, $CONFIRM pairs back to back (req/s)"
    for wl in c0 mix; do
      b=${CONFIRM_LAYOUT[$wl]:-}
      [[ -n $b ]] || { printf '  %-16s no static layout to confirm against\n' "${WL_NAME[$wl]}:"; continue; }
      # shellcheck disable=SC2086
      printf '  %-16s controllers on %s (runs %s) / %s %s (runs %s): pair ratios %s, median %s\n' \
        "${WL_NAME[$wl]}:" "$(num "${RPS[confirm:$wl:ctl]:-}" 0)" "${RPS_RUNS[confirm:$wl:ctl]:-none}" \
        "$b" "$(num "${RPS[confirm:$wl:$b]:-}" 0)" "${RPS_RUNS[confirm:$wl:$b]:-none}" \
        "${PAIR_RATIOS[$wl]:-none}" "$(median ${PAIR_RATIOS[$wl]:-})"
    done
  fi
fi

declare -A REF_CPU=() BEST_P50=()
if has_phase rate; then
  for wl in "${RATE_WORKLOAD_LIST[@]}"; do
    REF_CPU[$wl]=$(best rate "$wl" CPU_US min single)
    BEST_P50[$wl]=$(best rate "$wl" P50 min)
    echo
    echo "Fixed rate, ${WL_NAME[$wl]}: target $RATE req/s, wrk -t1 -c${RATE_CONNS[$wl]:-?}, each connection waiting ${RATE_DELAY} ms between requests"
    fmt="%-22s | %9s | %7s | %7s | %10s | %9s\n"
    # shellcheck disable=SC2059
    printf "$fmt" configuration "req/s" "p50 ms" "p99 ms" "CPU us/req" "CPU cores"
    for cfg in "${RATE_CFGS[@]}"; do
      k=rate:$wl:$cfg
      cell_cpu=$(num "${CPU_US[$k]:-}" 2)
      [[ $cfg == "${REF_CPU[$wl]}" ]] && cell_cpu="f$cell_cpu"
      cell_p50=$(num "${P50[$k]:-}" 3)
      [[ $cfg == "${BEST_P50[$wl]}" ]] && cell_p50="*$cell_p50"
      # shellcheck disable=SC2059
      printf "$fmt" "$(display "$cfg")" "$(num "${RPS[$k]:-}" 0)" "$cell_p50" "$(num "${P99[$k]:-}" 2)" \
        "$cell_cpu" "$(num "${CPU_CORE[$k]:-}" 3)$(mark "$k")"
    done
    echo "  f the fully fused layout with the least CPU per request; * the best static p50"
  done
fi

if ((${#DISTURBED[@]})); then
  echo
  echo "Runs where CPU $SERVER_CPU was busy outside weir for more than $(awk -v m="$DISTURBED_ABOVE" 'BEGIN { print m * 100 }') % of the time (other load; compare with care):"
  for d in "${DISTURBED[@]}"; do echo "  $d"; done
fi

echo
echo "Controllers on: the topology at the end of the measured run (GET /topology) and the decisions (GET /decisions)$( ((ROUNDS > 1)) && echo ", last round")"
for phase in closed rate; do
  has_phase "$phase" || continue
  wls=(c0 mix)
  [[ $phase == rate ]] && wls=("${RATE_WORKLOAD_LIST[@]}")
  for wl in "${wls[@]}"; do
    k=$phase:$wl:ctl
    if [[ -n ${DECISIONS[$k]:-} ]]; then
      read -r -a s <<<"${DECISIONS[$k]}"
      last="last at t+${s[6]}s"
      [[ ${s[6]} == NA ]] && last="none"
      printf '  %-6s %-4s %-22s %3d decisions (fuse %d, split %d, grow %d, shrink %d), %d while measured, %s\n' \
        "$phase" "$wl" "${TOPO[$k]:-?}" "${s[0]}" "${s[2]}" "${s[3]}" "${s[4]}" "${s[5]}" "${s[1]}" "$last"
    else
      printf '  %-6s %-4s %s\n' "$phase" "$wl" "${TOPO[$k]:-?} (no decisions read)"
    fi
  done
done

echo
safe_label=$(printf '%s' "$LABEL" | tr -c 'A-Za-z0-9._:/+=-' '_')
TARGET_LINES=()
if has_phase closed; then
  for wl in c0 mix; do
    b=${BEST_RPS[$wl]}
    r=$(ratio "${RPS[closed:$wl:ctl]:-}" "${RPS[closed:$wl:$b]:-}")
    if ((CONFIRM > 0)); then
      printf '%-16s closed loop, rounds: controllers on / best static (%s) req/s = %s (the best of %d means: biased up)\n' \
        "${WL_NAME[$wl]}:" "${b:-none}" "$(num "$r" 2)" "$((${#CLOSED_CFGS[@]} - 1))"
      TARGET_LINES+=("RESULT target=closed_rps_rounds workload=$wl ctl=${RPS[closed:$wl:ctl]:-NA} best=${RPS[closed:$wl:$b]:-NA} best_layout=${b:-NA} ratio=$r")
      # shellcheck disable=SC2086
      r=$(median ${PAIR_RATIOS[$wl]:-})
      v=$(verdict "$r" ">=" "$THROUGHPUT_TARGET")
      printf '%-16s closed loop, %d pairs: controllers on / %s req/s, median = %s (target >= %s): %s\n' \
        "${WL_NAME[$wl]}:" "$CONFIRM" "${CONFIRM_LAYOUT[$wl]:-none}" "$(num "$r" 2)" "$THROUGHPUT_TARGET" "$v"
      TARGET_LINES+=("RESULT target=closed_rps workload=$wl ctl=${RPS[confirm:$wl:ctl]:-NA} best=${RPS[confirm:$wl:${CONFIRM_LAYOUT[$wl]:-}]:-NA} best_layout=${CONFIRM_LAYOUT[$wl]:-NA} pair_ratios=$(tr ' ' , <<<"${PAIR_RATIOS[$wl]:-NA}") ratio=$r target=$THROUGHPUT_TARGET verdict=$v")
      continue
    fi
    v=$(verdict "$r" ">=" "$THROUGHPUT_TARGET")
    printf '%-16s closed loop: controllers on / best static (%s) req/s = %s (target >= %s): %s\n' \
      "${WL_NAME[$wl]}:" "${b:-none}" "$(num "$r" 2)" "$THROUGHPUT_TARGET" "$v"
    TARGET_LINES+=("RESULT target=closed_rps workload=$wl ctl=${RPS[closed:$wl:ctl]:-NA} best=${RPS[closed:$wl:$b]:-NA} best_layout=${b:-NA} ratio=$r target=$THROUGHPUT_TARGET verdict=$v")
  done
fi
if has_phase rate; then
  for wl in "${RATE_WORKLOAD_LIST[@]}"; do
    fz=${REF_CPU[$wl]}
    if ((HAVE_FUSED)); then
      r=$(ratio "${CPU_US[rate:$wl:ctl]:-}" "${CPU_US[rate:$wl:$fz]:-}")
      v=$(verdict "$r" "<=" "$CPU_TARGET")
    else
      r=n/a v="FAILED (no fully fused layout in --rate-layouts)"
    fi
    printf '%-16s fixed rate: controllers on / fully fused (%s) CPU per request = %s (target <= %s): %s\n' \
      "${WL_NAME[$wl]}:" "${fz:-none}" "$(num "$r" 2)" "$CPU_TARGET" "$v"
    TARGET_LINES+=("RESULT target=rate_cpu workload=$wl ctl=${CPU_US[rate:$wl:ctl]:-NA} fused=${CPU_US[rate:$wl:$fz]:-NA} fused_layout=${fz:-NA} ratio=$r target=$CPU_TARGET verdict=${v%% *}")
    b=${BEST_P50[$wl]}
    r=$(ratio "${P50[rate:$wl:ctl]:-}" "${P50[rate:$wl:$b]:-}")
    v=$(verdict "$r" "<=" "$P50_TARGET")
    printf '%-16s fixed rate: controllers on / best static (%s) p50 = %s (target <= %s): %s\n' \
      "${WL_NAME[$wl]}:" "${b:-none}" "$(num "$r" 2)" "$P50_TARGET" "$v"
    TARGET_LINES+=("RESULT target=rate_p50 workload=$wl ctl=${P50[rate:$wl:ctl]:-NA} best=${P50[rate:$wl:$b]:-NA} best_layout=${b:-NA} ratio=$r target=$P50_TARGET verdict=$v")
  done
fi

echo
for phase in closed rate; do
  has_phase "$phase" || continue
  wls=(c0 mix) cfgs=("${CLOSED_CFGS[@]}")
  [[ $phase == rate ]] && wls=("${RATE_WORKLOAD_LIST[@]}") cfgs=("${RATE_CFGS[@]}")
  for wl in "${wls[@]}"; do
    for cfg in "${cfgs[@]}"; do
      k=$phase:$wl:$cfg
      line="RESULT phase=$phase workload=$wl config=$([[ $cfg == ctl ]] && echo controllers_on || echo "$cfg")"
      line+=" rps=${RPS[$k]:-NA} p50_ms=${P50[$k]:-NA} p99_ms=${P99[$k]:-NA} cpu_us_per_req=${CPU_US[$k]:-NA}"
      line+=" cpu_cores=${CPU_CORE[$k]:-NA} cpu0_others=${OTHERS[$k]:-NA} rps_runs=${RPS_RUNS[$k]:-NA} non2xx=${NON2XX[$k]:-NA} socket_errors=${SOCKERR[$k]:-NA} status=${STATUS[$k]:-NA}"
      line+=" topology=${TOPO[$k]:-NA}"
      if [[ $cfg == ctl ]]; then
        read -r -a s <<<"${DECISIONS[$k]:-NA NA NA NA NA NA NA}"
        line+=" decisions=${s[0]} decisions_measured=${s[1]} fuse=${s[2]} split=${s[3]} grow=${s[4]} shrink=${s[5]} last_decision_s=${s[6]}"
      fi
      if [[ $phase == closed ]]; then line+=" connections=$CLOSED_CONNECTIONS"
      else line+=" connections=${RATE_CONNS[$wl]:-NA} delay_ms=$RATE_DELAY target_rps=$RATE"; fi
      line+=" duration=$DURATION rounds=$ROUNDS"
      [[ -n $LABEL ]] && line+=" label=$safe_label"
      echo "$line"
    done
  done
done
for line in "${TARGET_LINES[@]}"; do echo "$line${LABEL:+ label=$safe_label}"; done

echo
echo "total runtime: $((SECONDS - START_EPOCH)) s"
if ((TROUBLE)); then
  echo "controllers.sh: some runs had errors:" >&2
  for b in "${BAD_RUNS[@]}"; do echo "  $b" >&2; done
  exit 3
fi
exit 0
