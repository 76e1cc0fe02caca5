#!/usr/bin/env bash
# weir-loadgen against a real weir: short open-loop runs in both client models, checked through
# the JSON report (every due request has exactly one outcome, the counts match the schedule, a
# 404 is "other", the 2xx and the 503s timed apart, the series in 1 s and in 100 ms slots),
# refused connections counted as connect errors, timeouts counted by phase (connecting, after
# the write), several source addresses, and the operator errors (a non-loopback target,
# a bad flag: exit 2 and one line).
# Usage: loadgen_test.sh /path/to/weir /path/to/weir-loadgen
set -euo pipefail

weir=${1:?usage: loadgen_test.sh /path/to/weir /path/to/weir-loadgen}
loadgen=${2:?usage: loadgen_test.sh /path/to/weir /path/to/weir-loadgen}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v python3 >/dev/null 2>&1 ||
  { echo "loadgen_test.sh: python3 not found; install it: scripts/bootstrap.sh test" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=weir_process.sh
source "$here/weir_process.sh"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-loadgen-test-XXXXXX")

cleanup() {
  stop_started_processes
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# check WHAT JSON-FILE PYTHON-EXPRESSION: the expression (over j = the report, s = its summary)
# must be true.
check() {
  local what=$1 file=$2 expr=$3
  if python3 - "$file" "$expr" <<'PY'; then echo "ok: $what"; else fail "$what: $expr; report: $(<"$file")"; fi
import json, sys
j = json.load(open(sys.argv[1]))
s = j["summary"]
e, st = s["errors"], s["status"]
outcomes = st["2xx"] + st["503"] + st["other"] + e["connect"] + e["read"] + e["timeout"] + s["unsent"]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# load NAME ARGS...: runs weir-loadgen with ARGS, the report in $scratch/NAME.json; exit 0 wanted.
load() {
  local name=$1 rc=0
  shift
  "$loadgen" --json "$scratch/$name.json" "$@" >"$scratch/$name.out" 2>"$scratch/$name.err" \
    </dev/null || rc=$?
  if [[ $rc -ne 0 || ! -s $scratch/$name.json ]]; then
    fail "$name: exit $rc; stderr: $(<"$scratch/$name.err")"
    echo '{"summary": {}}' >"$scratch/$name.json"
    return 1
  fi
  echo "ok: $name ran: $(grep -m1 '^requests:' "$scratch/$name.out")"
}

mkdir -p "$scratch/site"
head -c 500 /dev/zero | tr '\0' 'x' >"$scratch/site/f500.bin"
printf '9 /f500.bin\n# one request in ten is not found\n1 /missing.bin\n' >"$scratch/test.mix"

weir_start "$scratch/weir.err" /dev/null "$weir" --root "$scratch/site" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --no-admin --log-level info
target=127.0.0.1:$weir_port

# Pool: Poisson arrivals at 200/s for 2 s after a warm-up. The arrivals are fixed by the seed;
# each due request ends in exactly one outcome, all of them responses.
if load pool --target "$target" --model pool --connections 8 --rate 200 --arrival poisson \
  --seed 7 --warmup 0.5 --duration 2 --mix "$scratch/test.mix"; then
  f=$scratch/pool.json
  check "pool: scheduled is rate x duration within 15 %" "$f" 'abs(s["scheduled"] - 400) <= 60'
  check "pool: one outcome per due request" "$f" 'outcomes == s["scheduled"]'
  check "pool: no errors, nothing unsent" "$f" 'sum(e.values()) == 0 and s["unsent"] == 0'
  check "pool: every request sent and answered 2xx or 404" "$f" \
    's["sent"] == s["scheduled"] == st["2xx"] + st["other"] and st["503"] == 0'
  check "pool: the 404s are 'other', about one in ten" "$f" \
    '0.04 <= st["other"] / s["scheduled"] <= 0.18'
  check "pool: latencies recorded for every response" "$f" \
    's["latency_intended"]["count"] == s["latency_sent"]["count"] == st["2xx"] + st["other"]'
  check "pool: intended-time latency >= sent-time latency" "$f" \
    's["latency_intended"]["max_ms"] >= s["latency_sent"]["max_ms"] > 0'
  check "pool: the series adds up to the summary" "$f" \
    'sum(x["2xx"] for x in j["series"]) == st["2xx"] and sum(x["sent"] for x in j["series"]) == s["sent"] and len(j["series"]) >= 2'
  check "pool: by default a slot is a second, its start an integer" "$f" \
    'j["config"]["series_ms"] == 1000 and all(type(x["second"]) is int and x["second"] == i and x["start_ms"] == 1000 * i for i, x in enumerate(j["series"]))'
  check "pool: the 2xx latencies are the 2xx's, no 503 latencies" "$f" \
    's["latency_2xx_intended"]["count"] == s["latency_2xx_sent"]["count"] == st["2xx"] > 0 and s["latency_503_intended"]["count"] == s["latency_503_sent"]["count"] == st["503"] == 0'
  check "pool: at most 8 connections" "$f" '1 <= j["generator"]["max_open_connections"] <= 8'
  check "pool: goodput is the 2xx completed in the window / duration" "$f" \
    'abs(s["goodput_rps"] - s["2xx_in_window"] / 2) < 1e-6'
  check "pool: under capacity, goodput is about the window's 2xx" "$f" \
    'abs(s["2xx_in_window"] - st["2xx"]) <= 10'
fi

# Past capacity, goodput is the server's pace, not the 2xx divided by the duration: a server that
# takes 20 ms per response on one connection delivers at most 50/s, while 100 requests due in 1 s
# are all answered (the backlog drains after the window, within the 10 s timeout).
slow_port_file=$scratch/slow.port
python3 - "$slow_port_file" <<'PY' &
import socket, sys, time, os
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conn, _ = srv.accept()
buf = b""
while True:
    data = conn.recv(65536)
    if not data:
        break
    buf += data
    while b"\r\n\r\n" in buf:
        _, buf = buf.split(b"\r\n\r\n", 1)
        time.sleep(0.02)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
PY
slow_pid=$!
started_pids+=("$slow_pid")
for _ in $(seq 1 500); do
  [[ -s $slow_port_file ]] && break
  sleep 0.01
done
if [[ ! -s $slow_port_file ]]; then
  fail "the slow server did not start"
elif load overload --target "127.0.0.1:$(<"$slow_port_file")" --model pool --connections 1 \
  --rate 100 --arrival constant --duration 1 --timeout 10 --path /; then
  f=$scratch/overload.json
  check "overload: all 100 answered 2xx, after the window" "$f" \
    'st["2xx"] == 100 == outcomes and len(j["series"]) >= 2'
  check "overload: goodput is the server's pace (<= 50/s), not 100/s" "$f" \
    '5 <= s["goodput_rps"] <= 51 and s["2xx_in_window"] < st["2xx"]'
  check "overload: a second's 2xx p99 from the write is the server's 20 ms, queueing on top" "$f" \
    'all(x["p99_2xx_ms"] > 2 * x["p99_2xx_sent_ms"] >= 2 * 19 for x in j["series"] if x["2xx"])'
fi

# A server that answers /busy with a 503 at once and anything else with a 200 after 50 ms, on
# keep-alive connections: the 2xx and the 503s each have their latencies (a fast 503 does not
# lower the 2xx's), and a 100 ms series has ten slots a second.
status_port_file=$scratch/status.port
python3 - "$status_port_file" <<'PY' &
import http.server, os, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/busy":
            status, body = b"503 Service Unavailable", b"busy"
        else:
            time.sleep(0.05)
            status, body = b"200 OK", b"ok"
        self.wfile.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 64

srv = Server(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
PY
started_pids+=("$!")
printf '3 /ok\n1 /busy\n' >"$scratch/status.mix"
if ! wait_for 10 test -s "$status_port_file"; then
  fail "the status server did not start"
elif load slots --target "127.0.0.1:$(<"$status_port_file")" --model pool --connections 32 \
  --rate 200 --arrival poisson --seed 3 --warmup 0.5 --duration 2 --series-ms 100 \
  --mix "$scratch/status.mix"; then
  f=$scratch/slots.json
  check "slots: every request answered, 2xx or 503, about one in four a 503" "$f" \
    'outcomes == s["scheduled"] == s["sent"] == st["2xx"] + st["503"] and 0.1 <= st["503"] / s["scheduled"] <= 0.4'
  check "slots: the 2xx and the 503 histograms count the 2xx and the 503s" "$f" \
    's["latency_2xx_intended"]["count"] == s["latency_2xx_sent"]["count"] == st["2xx"] and s["latency_503_intended"]["count"] == s["latency_503_sent"]["count"] == st["503"] and s["latency_intended"]["count"] == st["2xx"] + st["503"]'
  check "slots: 2xx and 503 p99s, intended >= sent" "$f" \
    's["latency_2xx_intended"]["p99_ms"] >= s["latency_2xx_sent"]["p99_ms"] > 0 and s["latency_503_intended"]["p99_ms"] >= s["latency_503_sent"]["p99_ms"] > 0'
  check "slots: the 2xx take 50 ms from the write, the 503s not; intended > sent" "$f" \
    's["latency_2xx_sent"]["p50_ms"] >= 49 > s["latency_503_sent"]["p50_ms"] and s["latency_2xx_intended"]["mean_ms"] > s["latency_2xx_sent"]["mean_ms"] and s["latency_503_intended"]["mean_ms"] > s["latency_503_sent"]["mean_ms"]'
  # The last slot is that of the last response: at most the longest latency past the window.
  check "slots: ten per second of the 2 s window, plus the drain" "$f" \
    'j["config"]["series_ms"] == 100 and 20 <= len(j["series"]) <= 21 + int(s["latency_intended"]["max_ms"] / 100)'
  check "slots: start_ms steps by 100, second is its start in seconds" "$f" \
    'all(x["start_ms"] == 100 * i and type(x["second"]) is float and abs(x["second"] - i / 10) < 1e-9 for i, x in enumerate(j["series"]))'
  check "slots: the series adds up to the summary" "$f" \
    'sum(x["2xx"] for x in j["series"]) == st["2xx"] and sum(x["503"] for x in j["series"]) == st["503"] and sum(x["sent"] for x in j["series"]) == s["sent"]'
  check "slots: a slot's 2xx p99s are there exactly when it has 2xx, intended >= sent" "$f" \
    'all((x["p99_2xx_ms"] > 0) == (x["p99_2xx_sent_ms"] > 0) == (x["2xx"] > 0) and x["p99_2xx_ms"] >= x["p99_2xx_sent_ms"] for x in j["series"]) and all((x["p99_ms"] > 0) == (x["2xx"] + x["503"] > 0) for x in j["series"])'
  check "slots: a slot's 2xx p99 from the write is at least the 50 ms the server waits" "$f" \
    'all(x["p99_2xx_sent_ms"] >= 49 for x in j["series"] if x["2xx"])'
  n503=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"]["status"]["503"])' "$f")
  if grep -qE '^  2xx +p99 +[0-9.]+ intended, +[0-9.]+ sent \([0-9]+ responses\)$' "$scratch/slots.out" &&
    grep -qE "^  503 +p99 +[0-9.]+ intended, +[0-9.]+ sent \($n503 responses\)\$" "$scratch/slots.out"; then
    echo "ok: slots: the summary prints the 2xx and the 503 p99s"
  else
    fail "slots: no 2xx/503 p99 lines (503 count $n503) in: $(<"$scratch/slots.out")"
  fi
fi

# Users: constant arrivals, a connection per request: exactly rate x duration requests.
if load users --target "$target" --model users --connections 64 --rate 200 --arrival constant \
  --duration 2 --path /f500.bin; then
  f=$scratch/users.json
  check "users: exactly 400 due" "$f" 's["scheduled"] == 400'
  check "users: all 400 answered 2xx" "$f" 'st["2xx"] == 400 and outcomes == 400'
  check "users: a connection per request" "$f" 'j["generator"]["connections_opened"] == 400'
  check "users: bodies counted" "$f" 's["body_bytes"] == 400 * 500'
fi

# Users with sessions of 4 requests: a quarter of the connections.
if load session --target "$target" --model users --session 4 --connections 64 --rate 200 \
  --arrival constant --duration 2 --path /f500.bin; then
  f=$scratch/session.json
  check "sessions: 400 due, all 2xx" "$f" 's["scheduled"] == 400 and st["2xx"] == 400 and outcomes == 400'
  check "sessions: 100 connections" "$f" 'j["generator"]["connections_opened"] == 100'
fi

# A 404 path: every response is "other", none 2xx.
if load notfound --target "$target" --model users --rate 100 --arrival constant --duration 1 \
  --path /missing.bin; then
  check "404 only: all 'other'" "$scratch/notfound.json" \
    'st["other"] == 100 == s["scheduled"] and st["2xx"] == 0 and s["goodput_rps"] == 0'
fi

# Nothing listening: every request a connect error, in both models.
hold_port "$scratch"
for model in pool users; do
  if load "refused-$model" --target "127.0.0.1:$held_port" --model "$model" --rate 100 \
    --arrival constant --duration 0.5; then
    check "refused ($model): every request a connect error" "$scratch/refused-$model.json" \
      's["scheduled"] == 50 == e["connect"] == outcomes and s["sent"] == 0'
  fi
done

# Timeouts by phase: a listener that drops every SYN (a socket filter, as weir's SYN gate) never
# completes a connection; one that never accepts completes the handshakes (the kernel does) but
# answers nothing. Each request times out, counted as still connecting or as after the write.
silent_port_file=$scratch/silent.ports
python3 - "$silent_port_file" <<'PY' &
import ctypes, os, socket, struct, sys, time

# ldb [13]; and #0x12; jeq #0x02 -> drop; else keep (see stages/reactor.cpp)
code = [(0x30, 0, 0, 13), (0x54, 0, 0, 0x12), (0x15, 0, 1, 0x02), (0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFFFFFF)]
insns = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in code))
prog = struct.pack("HL", len(code), ctypes.addressof(insns))
gated, mute = socket.socket(), socket.socket()
for s in (gated, mute):
    s.bind(("127.0.0.1", 0))
    s.listen(128)
gated.setsockopt(socket.SOL_SOCKET, 26, prog)  # SO_ATTACH_FILTER
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{gated.getsockname()[1]} {mute.getsockname()[1]}\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
PY
started_pids+=("$!")
if ! wait_for 10 test -s "$silent_port_file"; then
  fail "timeouts by phase: the listeners did not start within 10 s"
else
  read -r gated_port mute_port <"$silent_port_file"
  if load "gated" --target "127.0.0.1:$gated_port" --model users --rate 20 --arrival constant \
    --warmup 0 --duration 0.5 --timeout 0.3; then
    check "SYNs dropped: every request timed out connecting" "$scratch/gated.json" \
      's["scheduled"] == 10 == e["timeout"] == e["timeout_connecting"] == outcomes and e["timeout_reading"] == 0 and s["sent"] == 0'
  fi
  if load "mute" --target "127.0.0.1:$mute_port" --model users --rate 20 --arrival constant \
    --warmup 0 --duration 0.5 --timeout 0.3; then
    check "never answered: every request timed out after the write" "$scratch/mute.json" \
      's["scheduled"] == 10 == s["sent"] == e["timeout"] == e["timeout_reading"] == outcomes and e["timeout_connecting"] == 0'
  fi
fi

# --sources 4: the connections come from 127.0.0.1 to 127.0.0.4, in turn (a server that answers
# each request and notes its peer's address).
peers_file=$scratch/peers.txt
python3 - "$scratch/peers.port" "$peers_file" <<'PY' &
import os, socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(128)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{srv.getsockname()[1]}\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        c, peer = srv.accept()
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()
        out.write(peer[0] + "\n")
        out.flush()
PY
started_pids+=("$!")
if ! wait_for 10 test -s "$scratch/peers.port"; then
  fail "sources: the listener did not start within 10 s"
else
  read -r peers_port <"$scratch/peers.port"
  if load "sources" --target "127.0.0.1:$peers_port" --model users --rate 40 --arrival constant \
    --duration 0.5 --sources 4 --timeout 5; then
    check "sources: all 20 answered" "$scratch/sources.json" 's["scheduled"] == 20 == st["2xx"]'
    got=$(sort -u "$peers_file" | tr '\n' ' ')
    if [[ $got == "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 " ]]; then
      echo "ok: sources: from 127.0.0.1 to 127.0.0.4"
    else
      fail "sources: the peers were '$got', not 127.0.0.1 to 127.0.0.4"
    fi
  fi
fi

# Operator errors: exit 2, nothing on stdout, one line naming the flag.
usage_error() {
  local what=$1 needle=$2 rc=0
  shift 2
  "$loadgen" "$@" >"$scratch/usage.out" 2>"$scratch/usage.err" </dev/null || rc=$?
  local err
  err=$(<"$scratch/usage.err")
  if [[ $rc -ne 2 ]]; then
    fail "$what: exit $rc, want 2; stderr: $err"
  elif [[ -s $scratch/usage.out ]]; then
    fail "$what: stdout should be empty: $(<"$scratch/usage.out")"
  elif [[ $(printf '%s\n' "$err" | wc -l) -ne 1 || $err != "weir-loadgen: "*"$needle"* ]]; then
    fail "$what: want one line 'weir-loadgen: ...$needle...', got: $err"
  else
    echo "ok: $what"
  fi
}
usage_error "non-loopback target refused" "--target: 192.0.2.1 is not a loopback address" \
  --target 192.0.2.1:80 --rate 10 --duration 1
usage_error "bad --rate" '--rate: "fast" is not a number in (0, 1000000]' --target "$target" \
  --rate fast
usage_error "bad --model" "--model" --target "$target" --rate 10 --model closed
usage_error "bad --series-ms" '--series-ms: "5" is not an integer in [10, 60000]' \
  --target "$target" --rate 10 --series-ms 5
usage_error "bad --sources" '--sources: "0" is not an integer in [1, 254]' \
  --target "$target" --rate 10 --sources 0

kill -0 "$weir_pid" 2>/dev/null || fail "weir is no longer running"
if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all loadgen checks passed"
