#!/bin/bash
# Cold large files on a slow disk: do they hold up the small requests around them?
#
# usage: bench/coldlarge.sh [--read-latency-ms MS] [--label TEXT] [--help]
# env:   WEIR (weir binary, default build/release/weir), BUILD (build dir, default build/release)
#
# Mounts bench/slowfs (weir-slowfs) over a docroot of the ten 500 B files and 16 files of 2 MiB,
# with the page cache on and kept across opens (--keep-cache: only a file's first read is slow;
# each read MS ms, 4 at a time). weir (pinned to CPU 0) serves it; after 20 s of warm-up at
# 2,000 req/s on one 500 B file (64 keep-alive connections, weir-loadgen on CPU 1; the groups
# settle), the measured 10 s go on at that rate while a client fetches each cold 2 MiB file once,
# one after another. Prints each cold fetch's time and the 500 B requests' goodput, p50, p99 and
# max (from their intended send time). A send stage (or event loop) that reads the disk inside
# sendfile holds every response queued behind it for as long as the disk takes. Root, /dev/fuse.
set -u
cd "$(dirname "$0")/.."
lat=40 label=
while [ $# -gt 0 ]; do
  case $1 in
    --read-latency-ms) lat=${2:?--read-latency-ms wants a number of ms}; shift 2 ;;
    --label) label=${2:?--label wants text}; shift 2 ;;
    --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "coldlarge.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $lat in ''|*[!0-9.]*) echo "coldlarge.sh: --read-latency-ms: want a number of ms, got '$lat'" >&2; exit 2 ;; esac
build=$(realpath "${BUILD:-build/release}")
weir=$(realpath "${WEIR:-$build/weir}")
for b in "$weir" "$build/bench/slowfs/weir-slowfs" "$build/bench/loadgen/weir-loadgen"; do
  [ -x "$b" ] || { echo "coldlarge.sh: $b is missing: build first (cmake --build $build)" >&2; exit 2; }
done
d=${TMPDIR:-/tmp}/weir-coldlarge
port=18601 mport=18602
fusermount3 -u $d/mnt 2>/dev/null
mkdir -p $d/src/c0 $d/src/cold $d/mnt
if [ ! -f $d/src/cold/g15.bin ]; then
  for i in $(seq 0 9); do head -c 500 /dev/urandom > $d/src/c0/f$i.bin; done
  for i in $(seq 0 15); do head -c $((2 * 1024 * 1024)) /dev/urandom > $d/src/cold/g$i.bin; done
fi
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM $pid 2>/dev/null && wait $pid 2>/dev/null
  fusermount3 -u $d/mnt 2>/dev/null
}
trap cleanup EXIT
"$build/bench/slowfs/weir-slowfs" $d/src $d/mnt --read-latency-ms $lat --queue 4 --keep-cache \
  --attr-timeout 3600 || exit 1
taskset -c 0 "$weir" --root $d/mnt --listen 127.0.0.1:$port --no-admin \
  --metrics-listen 127.0.0.1:$mport > $d/weir.log 2>&1 &
pid=$!
for _ in $(seq 200); do curl -sf -o /dev/null http://127.0.0.1:$port/c0/f0.bin && break; sleep 0.05; done
curl -sf -o /dev/null http://127.0.0.1:$port/c0/f0.bin || { echo "coldlarge.sh: weir did not answer; see $d/weir.log" >&2; exit 1; }
for i in $(seq 0 9); do curl -sf -o /dev/null http://127.0.0.1:$port/c0/f$i.bin; done
# The cold files' entries (open descriptors) are made now: what is measured is their reads.
for i in $(seq 0 15); do curl -sfI -o /dev/null http://127.0.0.1:$port/cold/g$i.bin; done
taskset -c 1 "$build/bench/loadgen/weir-loadgen" --target 127.0.0.1:$port --rate 2000 \
  --duration 10 --warmup 20 --connections 64 --path /c0/f0.bin --json $d/load.json > /dev/null 2>&1 &
gen=$!
sleep 22
printf 'cold 2 MiB fetches (s):'
for i in $(seq 0 15); do
  taskset -c 1 curl -s -o /dev/null -w ' %{time_total}' http://127.0.0.1:$port/cold/g$i.bin
done
echo
wait $gen || { echo "coldlarge.sh: weir-loadgen failed" >&2; exit 1; }
python3 - "$d/load.json" "$lat" "$label" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
l = s["latency_intended"]
print(f"RESULT read_latency_ms={sys.argv[2]} label={sys.argv[3]!r} c0_goodput={s['goodput_rps']:.0f} "
      f"c0_p50_ms={l['p50_ms']:.2f} c0_p99_ms={l['p99_ms']:.2f} c0_max_ms={l.get('max_ms', 0):.2f}")
PY
