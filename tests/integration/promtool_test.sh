#!/usr/bin/env bash
# The /metrics scrape as Prometheus's own linter sees it: a real weir with a little traffic, one
# scrape checked by `promtool check metrics` (lint warnings fail too), the Content-Type, HELP and
# TYPE for every weir_ series, docs/metrics.md naming exactly the series scraped, and the
# separation of the two listeners: the metrics port serves no files, the public port serves no
# /metrics, and with --no-metrics there is no metrics listener.
# Usage: promtool_test.sh /path/to/weir
set -euo pipefail

weir=${1:?usage: promtool_test.sh /path/to/weir}
for cmd in promtool curl python3; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case $cmd in
      promtool) echo "promtool_test.sh: promtool not found; install the Debian package prometheus: scripts/bootstrap.sh test" >&2 ;;
      *) echo "promtool_test.sh: $cmd not found; install it: scripts/bootstrap.sh test" >&2 ;;
    esac
    exit 1
  fi
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=weir_process.sh
source "$here/weir_process.sh"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-promtool-test-XXXXXX")

cleanup() {
  stop_started_processes
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT # background jobs ignore SIGINT: the EXIT trap stops them
trap 'exit 143' TERM

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# listening_ports PID: the TCP ports PID listens on, sorted, one per line (from /proc, no ss).
listening_ports() {
  python3 - "$1" <<'EOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target.startswith("socket:["):
        inodes.add(target[8:-1])
ports = set()
for table in ("tcp", "tcp6"):
    try:
        lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
            ports.add(int(f[1].rsplit(":", 1)[1], 16))
print("\n".join(str(p) for p in sorted(ports)))
EOF
}

# start_weir LOG ARGS...: weir_start with ARGS and an ephemeral public port; sets public_port and
# metrics_port (empty with metrics off).
start_weir() {
  local log=$1
  shift
  weir_start "$log" /dev/null "$weir" --listen 127.0.0.1:0 --log-level info --no-admin "$@"
  public_port=$weir_port metrics_port=$weir_metrics_port
}

# stop_weir WHAT: SIGTERM; weir must exit 0 within WEIR_STOP_SECS.
stop_weir() {
  if ! weir_stop TERM; then
    fail "$1: weir still running ${WEIR_STOP_SECS}s after SIGTERM (killed)"
  elif [[ $stop_rc -ne 0 ]]; then
    fail "$1: weir exit code $stop_rc after SIGTERM, want 0"
  fi
}

# status URL [CURL ARGS...]: prints the HTTP status code, or 000 when nothing answered.
status() {
  local url=$1
  shift
  curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@" "$url" || true
}

mkdir -p "$scratch/site/sub"
echo "promtool test index" >"$scratch/site/index.html"
echo "promtool test hello" >"$scratch/site/hello.txt"
echo "promtool test nested" >"$scratch/site/sub/page.txt"

# --- weir with metrics on a port the kernel picks -------------------------------------------------
start_weir "$scratch/weir.log" --root "$scratch/site" --metrics-listen 127.0.0.1:0
pub=http://127.0.0.1:$public_port
met=http://127.0.0.1:$metrics_port
echo "ok: weir up (public port $public_port, metrics port $metrics_port)"

# Traffic: 200s, a 404, a HEAD.
for url in / /index.html /hello.txt /sub/page.txt /hello.txt /index.html; do
  code=$(status "$pub$url")
  [[ $code == 200 ]] || fail "GET $url on the public port: status $code, want 200"
done
code=$(status "$pub/no-such-file.txt")
[[ $code == 404 ]] || fail "GET /no-such-file.txt on the public port: status $code, want 404"
code=$(status "$pub/hello.txt" --head)
[[ $code == 200 ]] || fail "HEAD /hello.txt on the public port: status $code, want 200"
echo "ok: traffic sent (6 GET 200, 1 GET 404, 1 HEAD 200)"

# The scrape. A response is counted when it is finished, which may be a moment after curl has it:
# scrape again (5 s at most) until the 404 and the HEAD show in weir_requests_total.
counted=0
for _ in $(seq 50); do
  ctype=$(curl -sS --max-time 5 -o "$scratch/scrape.txt" -w '%{content_type}' "$met/metrics") || {
    fail "GET /metrics on the metrics port failed"
    break
  }
  if grep -q '^weir_requests_total{.*code="404"[^ ]* [1-9]' "$scratch/scrape.txt" &&
    grep -q '^weir_requests_total{.*method="HEAD"[^ ]* [1-9]' "$scratch/scrape.txt"; then
    counted=1
    break
  fi
  sleep 0.1
done
[[ $counted -eq 1 ]] ||
  fail "weir_requests_total shows no code=\"404\" or no method=\"HEAD\" response after 5 s: $(grep '^weir_requests_total' "$scratch/scrape.txt" | grep -v ' 0$' || true)"
echo "ok: scraped $met/metrics ($(wc -l <"$scratch/scrape.txt") lines)"

# Content-Type: the text format is served as text/plain. Prometheus reads text/plain without a
# version parameter as 0.0.4; prometheus-cpp 1.0.1 sends "text/plain; charset=utf-8". A version
# parameter, if one is ever sent, must say 0.0.4.
shopt -s nocasematch
if [[ $ctype =~ ^text/plain\ *(\;|$) ]] &&
  { [[ ! $ctype =~ version= ]] || [[ $ctype =~ \;\ *version=0\.0\.4\ *(\;|$) ]]; }; then
  echo "ok: Content-Type: $ctype"
else
  fail "Content-Type of /metrics: got '$ctype', want text/plain (version 0.0.4 if any is given)"
fi
shopt -u nocasematch

# promtool: parse errors and lint problems alike fail the test.
rc=0
promtool check metrics <"$scratch/scrape.txt" >"$scratch/promtool.out" 2>&1 || rc=$?
if [[ $rc -eq 0 && ! -s $scratch/promtool.out ]]; then
  echo "ok: promtool check metrics: no problems"
else
  fail "promtool check metrics: exit $rc; its output:"
  sed 's/^/  /' "$scratch/promtool.out" >&2
fi

# Every weir_ sample belongs to a family with # HELP and # TYPE; the series the dashboards use exist.
if python3 - "$scratch/scrape.txt" >"$scratch/families.out" 2>&1 <<'EOF'; then
import re, sys
helps, types, samples = set(), {}, []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    m = re.match(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$", line)
    if m:
        if m.group(1) == "HELP":
            helps.add(m.group(2))
        else:
            types[m.group(2)] = (m.group(3) or "").strip()
        continue
    if line.startswith("#") or not line.strip():
        continue
    samples.append(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))

def family(name):
    if name in types:
        return name
    for suffix, kinds in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                          ("_count", {"histogram", "summary"})):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in kinds:
            return base
    return None

problems = []
weir = [s for s in samples if s.startswith("weir_")]
if not weir:
    problems.append("no weir_ samples at all")
for name in sorted(set(weir)):
    fam = family(name)
    if fam is None:
        problems.append(f"{name}: no # TYPE line for it (or for a histogram/summary it belongs to)")
    elif fam not in helps:
        problems.append(f"{name}: no # HELP line for family {fam}")
for want in ("weir_stage_queue_depth", "weir_stage_processed_total",
             "weir_stage_service_seconds_bucket", "weir_request_duration_seconds_bucket",
             "weir_request_duration_seconds_sum", "weir_request_duration_seconds_count",
             "weir_requests_total", "weir_build_info", "process_resident_memory_bytes"):
    if want not in samples:
        problems.append(f"{want}: missing from the scrape")
print("\n".join(problems) if problems else
      f"{len(weir)} weir_ samples in {len({family(s) for s in weir})} families")
sys.exit(1 if problems else 0)
EOF
  echo "ok: HELP and TYPE for every weir_ sample, expected series present: $(<"$scratch/families.out")"
else
  fail "HELP/TYPE check of the scrape:"
  sed 's/^/  /' "$scratch/families.out" >&2
fi

# docs/metrics.md against the scrape, both ways: every series its tables name (first column) is a
# family in the scrape with the type the table gives, and every weir_ and process_ family in the
# scrape is in a table. prometheus-cpp's own exposer_* families are not weir's to document.
if python3 - "$source_dir/docs/metrics.md" "$scratch/scrape.txt" >"$scratch/docs.out" 2>&1 <<'EOF'; then
import re, sys
documented = {}
for line in open(sys.argv[1], encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.startswith("|") and len(cells) >= 2:
        m = re.fullmatch(r"`((?:weir|process)_[a-z0-9_]+)`", cells[0])
        if m:
            documented[m.group(1)] = cells[1].split()[0] if cells[1] else ""
scraped = {}
for line in open(sys.argv[2], encoding="utf-8"):
    m = re.match(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)", line)
    if m and not m.group(1).startswith("exposer_"):
        scraped[m.group(1)] = m.group(2)
problems = []
if len(documented) < 10:
    problems.append(f"only {len(documented)} series found in the docs tables: is the format changed?")
for name in sorted(set(documented) - set(scraped)):
    problems.append(f"{name}: in docs/metrics.md, not in the scrape")
for name in sorted(set(scraped) - set(documented)):
    problems.append(f"{name}: in the scrape, not in docs/metrics.md")
for name in sorted(set(documented) & set(scraped)):
    if documented[name] != scraped[name]:
        problems.append(f"{name}: docs say {documented[name]!r}, the scrape says {scraped[name]!r}")
print("\n".join(problems) if problems else f"{len(documented)} series, the same names and types")
sys.exit(1 if problems else 0)
EOF
  echo "ok: docs/metrics.md and the scrape agree: $(<"$scratch/docs.out")"
else
  fail "docs/metrics.md against the scrape:"
  sed 's/^/  /' "$scratch/docs.out" >&2
fi

# --- The two listeners stay apart ----------------------------------------------------------------
for url in /hello.txt /index.html /sub/page.txt /; do
  code=$(curl -s --max-time 5 -o "$scratch/body" -w '%{http_code}' "$met$url" || true)
  if [[ $code == 200 ]] || grep -q "promtool test" "$scratch/body" 2>/dev/null; then
    fail "metrics port serves the docroot: GET $url -> $code, body: $(head -c 200 "$scratch/body")"
  fi
done
echo "ok: metrics port serves no docroot file (GET /hello.txt -> $(status "$met/hello.txt"))"
for url in /metrics /metrics/; do
  code=$(curl -s --max-time 5 -o "$scratch/body" -w '%{http_code}' "$pub$url" || true)
  [[ $code == 404 ]] || fail "public port: GET $url -> $code, want 404"
  if grep -q '^# TYPE' "$scratch/body" 2>/dev/null; then fail "public port: GET $url serves metrics"; fi
done
echo "ok: public port answers 404 to /metrics"
ports=$(listening_ports "$weir_pid" | tr '\n' ' ')
[[ $ports == "$(printf '%s\n' "$public_port" "$metrics_port" | sort -n | tr '\n' ' ')" ]] ||
  fail "weir listens on ports '$ports', want exactly $public_port (public) and $metrics_port (metrics)"
stop_weir "metrics on"
echo "ok: weir stopped with exit 0"

# --- --no-metrics: the metrics address from the config file is not opened -------------------------
# The address is one held (bound, not listening) by hold_port: nothing else can serve it, so a
# connection there is refused unless weir opened it after all (then weir would not start).
hold_port "$scratch"
config_metrics_port=$held_port
printf 'metrics:\n  enabled: true\n  listen: "127.0.0.1:%s"\n' "$config_metrics_port" >"$scratch/metrics.yaml"
start_weir "$scratch/weir-off.log" --root "$scratch/site" --config "$scratch/metrics.yaml" --no-metrics
[[ -z $metrics_port ]] || fail "--no-metrics: the log announces a metrics port $metrics_port"
code=$(status "http://127.0.0.1:$public_port/hello.txt")
[[ $code == 200 ]] || fail "--no-metrics: GET /hello.txt on the public port: status $code, want 200"
rc=0
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$config_metrics_port/metrics" || rc=$?
[[ $rc -eq 7 ]] || fail "--no-metrics: port $config_metrics_port (metrics.listen) answered or did not refuse (curl exit $rc, want 7)"
ports=$(listening_ports "$weir_pid" | tr '\n' ' ')
[[ $ports == "$public_port " ]] ||
  fail "--no-metrics: weir listens on ports '$ports', want only the public port $public_port"
if grep -q "metrics: http" "$scratch/weir-off.log"; then
  fail "--no-metrics: the log announces a metrics endpoint: $(grep "metrics: http" "$scratch/weir-off.log")"
fi
echo "ok: --no-metrics: nothing listens on $config_metrics_port; weir listens only on $public_port"
stop_weir "--no-metrics"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all promtool checks passed"
