#!/usr/bin/env bash
# weir scraped by a real Prometheus server (Debian's prometheus package), as an operator would run
# it: scrape every second while curl sends traffic, then queries through Prometheus's HTTP API: the
# five stage queues, request p99, per-stage service p99, up, and every query in the "Queries"
# section of docs/metrics.md, read from the docs so that the docs are what is tested.
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
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=weir_process.sh
source "$here/weir_process.sh"

readonly PROM_READY_SECS=15   # Prometheus's "Server is ready" line and /-/ready
readonly PROM_PORT_ATTEMPTS=5 # Prometheus cannot take port 0: pick one, another if it is taken
readonly FIRST_SCRAPE_SECS=20 # Prometheus hands new targets to the scraper only every 5 s
readonly TRAFFIC_SECS=6       # traffic before the queries count: the rate()s' 5 s window and more
readonly QUERY_SECS=24        # then the queries must all pass within this (30 s of traffic in all)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-prometheus-test-XXXXXX")
prom_pid="" traffic_pid=""

cleanup() {
  local rc=$?
  trap - EXIT
  [[ -n $traffic_pid ]] && stop_traffic
  [[ -n $prom_pid ]] && { stop_process "$prom_pid" TERM || true; }
  [[ -n $weir_pid ]] && { weir_stop TERM || true; }
  stop_started_processes
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

started=$SECONDS
mkdir -p "$scratch/site/sub"
echo "prometheus test index" >"$scratch/site/index.html"
echo "prometheus test hello" >"$scratch/site/hello.txt"
head -c 20000 /dev/zero >"$scratch/site/sub/zeros.bin"

# --- weir ------------------------------------------------------------------------------------------
# Every stage in its own group (the grouping controller off): a fused stage has no queue wait, so
# its queue-wait quantile would be NaN and the per-stage queries below could not all be finite.
printf 'controllers:\n  grouping:\n    enabled: false\n' >"$scratch/weir.yaml"
weir_start "$scratch/weir.log" /dev/null "$weir" --config "$scratch/weir.yaml" --root "$scratch/site" \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --no-admin --log-level info
public_port=$weir_port metrics_port=$weir_metrics_port
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$metrics_port/metrics" ||
  die "weir's metrics endpoint http://127.0.0.1:$metrics_port/metrics does not answer"
echo "ok: weir up (public port $public_port, metrics port $metrics_port)"

# --- Prometheus ------------------------------------------------------------------------------------
cat >"$scratch/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: weir
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
promtool check config "$scratch/prometheus.yml" >"$scratch/promtool.out" 2>&1 ||
  die "promtool rejects the generated prometheus.yml: $(<"$scratch/promtool.out")"

# prometheus_ready: ours is running, says it is ready, and its port answers /-/ready. (Another
# server could answer on a port ours failed to bind; ours exits then, and never logs "ready".)
prometheus_ready() {
  kill -0 "$prom_pid" 2>/dev/null &&
    file_has "$scratch/prometheus.log" 'msg="Server is ready to receive web requests\."' &&
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$prom_port/-/ready"
}

# start_prometheus: on a picked port; when it exits because the port was taken meanwhile, again
# on another (PROM_PORT_ATTEMPTS at most). Sets prom_pid and prom_port.
start_prometheus() {
  local attempt i rc
  for ((attempt = 1; attempt <= PROM_PORT_ATTEMPTS; attempt++)); do
    prom_port=$(pick_port)
    # Debian's build reads its web assets from /usr/share/prometheus/web (--web.local-assets, the
    # default) and the console templates from /etc/prometheus; the API needs neither.
    prometheus --config.file="$scratch/prometheus.yml" --storage.tsdb.path="$scratch/data.$attempt" \
      --web.listen-address="127.0.0.1:$prom_port" --log.level=info \
      >"$scratch/prometheus.log" 2>&1 </dev/null &
    prom_pid=$!
    for ((i = 0; i < PROM_READY_SECS * 10; i++)); do
      prometheus_ready && return 0
      if ! kill -0 "$prom_pid" 2>/dev/null; then
        rc=0
        wait "$prom_pid" || rc=$?
        prom_pid=""
        if file_has "$scratch/prometheus.log" 'address already in use'; then
          echo "prometheus: port $prom_port was taken (attempt $attempt of $PROM_PORT_ATTEMPTS); another one"
          continue 2
        fi
        die_with_log "prometheus exited with status $rc at start-up" "$scratch/prometheus.log"
      fi
      sleep 0.1
    done
    die_with_log "prometheus not ready within ${PROM_READY_SECS}s" "$scratch/prometheus.log"
  done
  die_with_log "prometheus: no free port in $PROM_PORT_ATTEMPTS attempts" "$scratch/prometheus.log"
}
start_prometheus
prom=http://127.0.0.1:$prom_port
echo "ok: prometheus $(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p') ready on port $prom_port"

# The checks, through the HTTP API; exit 0 when all pass, 1 (with the reasons) when not yet.
cat >"$scratch/check.py" <<'EOF'
import json, math, re, sys, urllib.parse, urllib.request

prom, target, docs = sys.argv[1], sys.argv[2], sys.argv[3]
stages = ["accept", "read_parse", "cache_lookup", "disk_io", "send"]
only_up = len(sys.argv) > 4 and sys.argv[4] == "--up"

def query(q):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:  # a bad query is a 400 with the error in the body
        body = json.load(e)
    if body.get("status") != "success" or body.get("error") or body.get("warnings"):
        raise RuntimeError(f"{q}: {body}")
    return body["data"]["result"]

def finite(s):
    return math.isfinite(float(s["value"][1]))

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
    bad = [f'{s["metric"]["stage"]}={s["value"][1]}' for s in r
           if not finite(s) or float(s["value"][1]) <= 0]
    if bad:
        return None, f"{q}: want a finite number > 0 for every stage, got {', '.join(bad)}"
    vals = ", ".join(f'{s["metric"]["stage"]}={float(s["value"][1]):.3g}'
                     for s in sorted(r, key=lambda s: stages.index(s["metric"]["stage"])))
    return f"{q}: 5 series (seconds): {vals}", None

def docs_queries():
    """The PromQL of the "## Queries" section: each line of a promql block, each expr: of a yaml one."""
    text = open(docs, encoding="utf-8").read()
    m = re.search(r"^## Queries\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{docs}: no '## Queries' section")
    out = []
    for lang, block in re.findall(r"^```(\w+)\n(.*?)^```", m.group(1), re.S | re.M):
        for line in block.splitlines():
            if lang == "promql" and line.strip():
                out.append(line.strip())
            elif lang == "yaml" and re.match(r"\s*expr:", line):
                out.append(line.split("expr:", 1)[1].strip())
    if len(out) < 2:
        raise SystemExit(f"{docs}: only {len(out)} queries in the Queries section")
    return out

# A docs query must succeed; with this test's traffic (200s, a 404, HEADs, no shedding) it must
# also return series, every value finite. A comparison filters, so it may return none.
def docs_check(q):
    def check():
        r = query(q)
        if not r and not re.search(r"\s(>|<|>=|<=|==|!=)\s", q):
            return None, f"docs query {q}: no series"
        bad = [f'{s["metric"]}={s["value"][1]}' for s in r if not finite(s)]
        if bad:
            return None, f"docs query {q}: not finite: {'; '.join(bad)}"
        return f"docs query {q}: {len(r)} series, finite", None
    check.__name__ = q
    return check

checks = [up] if only_up else [queue_depth, request_p99, stage_p99, up] + \
    [docs_check(q) for q in docs_queries()]
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
check() {
  python3 "$scratch/check.py" "$prom" "127.0.0.1:$metrics_port" "$source_dir/docs/metrics.md" "$@"
}

# Prometheus hands a new target to its scraper up to 5 s after start-up: wait for the first scrape.
deadline=$((SECONDS + FIRST_SCRAPE_SECS))
until check --up >"$scratch/check.out" 2>&1; do
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
until ((SECONDS - traffic_started >= TRAFFIC_SECS)) && check >"$scratch/check.out" 2>&1; do
  if ((SECONDS >= deadline)); then
    cat "$scratch/check.out" >&2
    die "the queries did not all pass within $((TRAFFIC_SECS + QUERY_SECS))s of traffic"
  fi
  sleep 0.5
done
stop_traffic
cat "$scratch/check.out"
echo "ok: all queries passed after $((SECONDS - traffic_started)) s of traffic"

stop_process "$prom_pid" TERM || die "prometheus still running ${WEIR_STOP_SECS}s after SIGTERM (killed)"
prom_pid=""
[[ $stop_rc -eq 0 ]] || die "prometheus exit code $stop_rc after SIGTERM, want 0"
weir_stop TERM || die "weir still running ${WEIR_STOP_SECS}s after SIGTERM (killed)"
[[ $stop_rc -eq 0 ]] || die "weir exit code $stop_rc after SIGTERM, want 0"
echo "ok: prometheus and weir stopped with exit 0"
echo "all Prometheus server checks passed in $((SECONDS - started)) s"
