#!/usr/bin/env bash
# Measures weir-loadgen's own ceiling: weir pinned to CPU 0, the generator to CPU 1, a 500 B file,
# rising rates in both client models; one line per run (goodput, the generator's CPU share and
# dispatch lag, its warnings). Run it under the shared build lock on a quiet machine:
#   flock /tmp/weir-build.lock bench/loadgen/ceiling.sh build/release/weir \
#     build/release/bench/loadgen/weir-loadgen "10000 20000 40000" "5000 10000 20000" 5
set -euo pipefail
usage='usage: ceiling.sh WEIR LOADGEN "POOL-RATES" "USERS-RATES" [DURATION]'
weir=${1:?$usage}
loadgen=${2:?$usage}
pool_rates=${3:-"10000 20000 40000"}
users_rates=${4:-"5000 10000 20000"}
duration=${5:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-loadgen-ceiling-XXXXXX")
weir_pid=""
cleanup() {
  [[ -n $weir_pid ]] && kill "$weir_pid" 2>/dev/null && wait "$weir_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

mkdir -p "$scratch/site"
head -c 500 /dev/urandom >"$scratch/site/f500.bin"
taskset -c 0 "$weir" --root "$scratch/site" --listen 127.0.0.1:0 --no-metrics --no-admin \
  --log-level info 2>"$scratch/weir.err" >/dev/null </dev/null &
weir_pid=$!
for _ in $(seq 200); do
  grep -qE ' listening on http://' "$scratch/weir.err" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -nE 's|.* listening on http://[^ ]+:([0-9]+)/$|\1|p' "$scratch/weir.err" | head -n 1)
[[ -n $port ]] || { echo "weir did not start: $(<"$scratch/weir.err")" >&2; exit 1; }

printf '%-6s %8s %9s %7s %8s %8s %9s %9s  %s\n' model rate goodput cpu lag_ms lag_p99 p99_ms \
  errors warnings
for model in pool users; do
  rates=$pool_rates
  [[ $model == users ]] && rates=$users_rates
  for rate in $rates; do
    taskset -c 1 "$loadgen" --target "127.0.0.1:$port" --model "$model" --connections 256 \
      --rate "$rate" --warmup 1 --duration "$duration" --timeout 2 --path /f500.bin \
      --json "$scratch/r.json" >/dev/null 2>&1 || true
    python3 - "$scratch/r.json" "$model" "$rate" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); s = j["summary"]; g = j["generator"]
errs = sum(s["errors"].values()) + s["unsent"]
print(f'{sys.argv[2]:<6} {sys.argv[3]:>8} {s["goodput_rps"]:9.0f} {g["cpu_share"]*100:6.0f}% '
      f'{g["dispatch_lag"]["mean_ms"]:8.3f} {g["dispatch_lag"]["p99_ms"]:8.3f} '
      f'{s["latency_intended"]["p99_ms"]:9.2f} {errs:9d}  {"; ".join(g["warnings"]) or "-"}')
PY
  done
done
