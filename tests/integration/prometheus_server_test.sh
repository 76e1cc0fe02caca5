#!/usr/bin/env bash
# weir scraped by a real Prometheus server (Debian's prometheus package), as an operator would run
# it: scrape every second while curl sends traffic, then the queries docs/metrics.md suggests,
# through Prometheus's HTTP API: the five stage queues, request p99, per-stage service p99, up.
# Everything on 127.0.0.1, in a temporary directory removed at exit.
# Usage: prometheus_server_test.sh /path/to/weir
set -euo pipefail

weir=${1:?usage: prometheus_server_test.sh /path/to/weir}
for cmd in prometheus promtool curl python3; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case $cmd in
      prometheus | promtool) echo "prometheus_server_test.sh: $cmd not found; install the Debian package prometheus: scripts/bootstrap.sh test" >&2 ;;
      *) echo "prometheus_server_test.sh: $cmd not found; install it: scripts/bootstrap.sh test" >&2 ;;
    esac
    exit 1
  fi
done

readonly START_TIMEOUT_SECS=15 # weir's "listening on" line, Prometheus's /-/ready
readonly FIRST_SCRAPE_SECS=20  # Prometheus hands new targets to the scraper only every 5 s
readonly TRAFFIC_SECS=6        # traffic before the queries count: the rate()s' 5 s window and more
readonly QUERY_SECS=24         # then the queries must all pass within this (30 s of traffic in all)
readonly STOP_TIMEOUT_SECS=15

scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-prometheus-test-XXXXXX")
weir_pid="" prom_pid="" traffic_pid=""

# stop PID: SIGTERM, SIGKILL after STOP_TIMEOUT_SECS; prints nothing, returns the exit status.
stop() {
  local pid=$1 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((STOP_TIMEOUT_SECS * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "prometheus_server_test.sh: pid $pid still running ${STOP_TIMEOUT_SECS}s after SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT
  [[ -n $traffic_pid ]] && stop_traffic
  [[ -n $prom_pid ]] && { stop "$prom_pid" || true; }
  [[ -n $weir_pid ]] && { stop "$weir_pid" || true; }
  if [[ $rc -ne 0 ]]; then
    for log in prometheus.log weir.log; do
      if [[ -s $scratch/$log ]]; then
        echo "---- $log (last 40 lines) ----" >&2
        tail -n 40 "$scratch/$log" >&2
      fi
    done
  fi
  rm -rf "$scratch"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT # background jobs ignore SIGINT: the EXIT trap stops them
trap 'exit 143' TERM

# The traffic loop stops at its next round (each curl is bounded by --max-time 2).
stop_traffic() {
  touch "$scratch/stop-traffic"
  wait "$traffic_pid" 2>/dev/null || true
  traffic_pid=""
}

die() {
  echo "FAIL: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started=$SECONDS
mkdir -p "$scratch/site/sub"
echo "prometheus test index" >"$scratch/site/index.html"
echo "prometheus test hello" >"$scratch/site/hello.txt"
head -c 20000 /dev/zero >"$scratch/site/sub/zeros.bin"

# --- weir ------------------------------------------------------------------------------------------
metrics_port=$(free_port)
"$weir" --root "$scratch/site" --listen 127.0.0.1:0 --metrics-listen "127.0.0.1:$metrics_port" \
  --log-level info >/dev/null 2>"$scratch/weir.log" </dev/null &
weir_pid=$!
public_port=""
for _ in $(seq $((START_TIMEOUT_SECS * 10))); do
  public_port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' "$scratch/weir.log")
  [[ -n $public_port ]] && break
  kill -0 "$weir_pid" 2>/dev/null || die "weir exited at start-up"
  sleep 0.1
done
[[ -n $public_port ]] || die "weir logged no 'listening on' line within ${START_TIMEOUT_SECS}s"
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$metrics_port/metrics" ||
  die "weir's metrics endpoint http://127.0.0.1:$metrics_port/metrics does not answer"
echo "ok: weir up (public port $public_port, metrics port $metrics_port)"

# --- Prometheus ------------------------------------------------------------------------------------
prom_port=$(free_port)
prom=http://127.0.0.1:$prom_port
cat >"$scratch/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: weir
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
promtool check config "$scratch/prometheus.yml" >"$scratch/promtool.out" 2>&1 ||
  die "promtool rejects the generated prometheus.yml: $(<"$scratch/promtool.out")"
# Debian's build reads its web assets from /usr/share/prometheus/web (--web.local-assets, the
# default) and the console templates from /etc/prometheus; the API needs neither.
prometheus --config.file="$scratch/prometheus.yml" --storage.tsdb.path="$scratch/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=info \
  >"$scratch/prometheus.log" 2>&1 </dev/null &
prom_pid=$!
ready=0
for _ in $(seq $((START_TIMEOUT_SECS * 10))); do
  kill -0 "$prom_pid" 2>/dev/null || die "prometheus exited at start-up"
  if curl -sf --max-time 2 -o /dev/null "$prom/-/ready"; then ready=1; break; fi
  sleep 0.1
done
[[ $ready -eq 1 ]] || die "prometheus not ready within ${START_TIMEOUT_SECS}s"
echo "ok: prometheus $(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p') ready on port $prom_port"

# The four checks, through the HTTP API; exit 0 when all pass, 1 (with the reasons) when not yet.
cat >"$scratch/check.py" <<'EOF'
import json, math, sys, urllib.parse, urllib.request

prom, target = sys.argv[1], sys.argv[2]
stages = ["accept", "read_parse", "cache_lookup", "disk_io", "send"]
only_up = len(sys.argv) > 3 and sys.argv[3] == "--up"

def query(q):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{q}: {body}")
    return body["data"]["result"]

def up():
    r = query('up{job="weir"}')
    if len(r) != 1 or r[0]["value"][1] != "1":
        return None, f'up{{job="weir"}} = {[s["value"][1] for s in r]}, want one series = 1'
    return f'up{{job="weir",instance="{r[0]["metric"].get("instance")}"}} = 1', None

def queue_depth():
    r = query("weir_stage_queue_depth")
    got = sorted(s["metric"].get("stage", "") for s in r)
    if got != sorted(stages):
        return None, f"weir_stage_queue_depth: stage labels {got}, want {sorted(stages)}"
    for s in r:
        m = s["metric"]
        if m.get("job") != "weir" or m.get("instance") != target:
            return None, f"weir_stage_queue_depth: labels {m}, want job=weir instance={target}"
    vals = ", ".join(f'{s["metric"]["stage"]}={s["value"][1]}'
                     for s in sorted(r, key=lambda s: stages.index(s["metric"]["stage"])))
    return f'weir_stage_queue_depth: 5 series, job="weir", instance="{target}": {vals}', None

def request_p99():
    q = "histogram_quantile(0.99, sum by (le) (rate(weir_request_duration_seconds_bucket[5s])))"
    r = query(q)
    if len(r) != 1:
        return None, f"{q}: {len(r)} series, want 1"
    v = float(r[0]["value"][1])
    if not math.isfinite(v) or v <= 0:
        return None, f"{q} = {r[0]['value'][1]}, want a finite number > 0"
    return f"{q} = {v:.6g} s", None

def stage_p99():
    q = "histogram_quantile(0.99, sum by (stage, le) (rate(weir_stage_service_seconds_bucket[5s])))"
    r = query(q)
    got = sorted(s["metric"].get("stage", "") for s in r)
    if got != sorted(stages):
        return None, f"{q}: stage labels {got}, want one series for each of {sorted(stages)}"
    vals = ", ".join(f'{s["metric"]["stage"]}={float(s["value"][1]):.3g}'
                     for s in sorted(r, key=lambda s: stages.index(s["metric"]["stage"])))
    return f"{q}: 5 series (seconds): {vals}", None

checks = [up] if only_up else [queue_depth, request_p99, stage_p99, up]
passed, waiting = [], []
for check in checks:
    try:
        ok, why = check()
    except Exception as e:  # not answering yet counts as "not yet"
        ok, why = None, f"{check.__name__}: {e}"
    (passed if ok else waiting).append(ok or why)
for line in passed:
    print("ok: " + line)
for line in waiting:
    print("not yet: " + line)
sys.exit(1 if waiting else 0)
EOF

# Prometheus hands a new target to its scraper up to 5 s after start-up: wait for the first scrape.
deadline=$((SECONDS + FIRST_SCRAPE_SECS))
until python3 "$scratch/check.py" "$prom" "127.0.0.1:$metrics_port" --up >"$scratch/check.out" 2>&1; do
  ((SECONDS < deadline)) || die "no successful scrape of weir within ${FIRST_SCRAPE_SECS}s: $(<"$scratch/check.out")"
  sleep 0.2
done
echo "ok: prometheus scrapes weir ($((SECONDS - started)) s after start)"

# --- traffic while Prometheus scrapes, then the queries --------------------------------------------
# A bounded loop (QUERY_SECS + 5 s at most): 200s of three sizes, a 404 and a HEAD per round. After
# TRAFFIC_SECS of it the queries are polled; the loop stops as soon as they pass.
pub=http://127.0.0.1:$public_port
(
  end=$((SECONDS + TRAFFIC_SECS + QUERY_SECS + 5))
  while ((SECONDS < end)) && [[ ! -e $scratch/stop-traffic ]]; do
    curl -s --max-time 2 -o /dev/null "$pub/" -o /dev/null "$pub/hello.txt" \
      -o /dev/null "$pub/sub/zeros.bin" -o /dev/null "$pub/missing.txt" || true
    curl -s --max-time 2 -o /dev/null --head "$pub/hello.txt" || true
  done
) &
traffic_pid=$!
traffic_started=$SECONDS

deadline=$((SECONDS + TRAFFIC_SECS + QUERY_SECS))
until ((SECONDS - traffic_started >= TRAFFIC_SECS)) &&
  python3 "$scratch/check.py" "$prom" "127.0.0.1:$metrics_port" >"$scratch/check.out" 2>&1; do
  if ((SECONDS >= deadline)); then
    cat "$scratch/check.out" >&2
    die "the queries did not all pass within $((TRAFFIC_SECS + QUERY_SECS))s of traffic"
  fi
  sleep 0.5
done
stop_traffic
cat "$scratch/check.out"
echo "ok: all queries passed after $((SECONDS - traffic_started)) s of traffic"

rc=0
stop "$prom_pid" || rc=$?
prom_pid=""
[[ $rc -eq 0 ]] || die "prometheus exit code $rc after SIGTERM, want 0"
rc=0
stop "$weir_pid" || rc=$?
weir_pid=""
[[ $rc -eq 0 ]] || die "weir exit code $rc after SIGTERM, want 0"
echo "ok: prometheus and weir stopped with exit 0"
echo "all Prometheus server checks passed in $((SECONDS - started)) s"
