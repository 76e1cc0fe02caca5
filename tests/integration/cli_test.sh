#!/usr/bin/env bash
# The operator-facing contract of the weir binary: flags, exit codes, one-line errors,
# --test-config, and real servers: start-up log, requests, SIGHUP, graceful stop on SIGTERM and
# SIGINT, the access log file, and accept backing off when file descriptors run out.
# Usage: cli_test.sh /path/to/weir
set -euo pipefail

weir=${1:?usage: cli_test.sh /path/to/weir}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
for cmd in curl python3 prlimit; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "cli_test.sh: $cmd not found; install it: scripts/bootstrap.sh test" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=weir_process.sh
source "$here/weir_process.sh"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-cli-test-XXXXXX")

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

# run WANT_RC WHAT ARGS...: runs weir; leaves its exit code in $rc, its output in $out and $err.
run() {
  local want=$1 what=$2
  shift 2
  rc=0
  "$weir" "$@" >"$scratch/out" 2>"$scratch/err" </dev/null || rc=$?
  out=$(<"$scratch/out")
  err=$(<"$scratch/err")
  if [[ $rc -ne $want ]]; then
    fail "$what: exit $rc, want $want; stderr: $err"
  else
    echo "ok: $what"
  fi
}

# contains WHAT HAYSTACK NEEDLE
contains() {
  if [[ $2 != *"$3"* ]]; then fail "$1: missing '$3' in: $2"; fi
}

# An operator error: exit 2, nothing on stdout, one line on stderr starting "weir: " that
# contains NEEDLE.
usage_error() {
  local what=$1 needle=$2
  shift 2
  run 2 "$what" "$@"
  contains "$what" "$err" "$needle"
  [[ -z $out ]] || fail "$what: stdout should be empty, got: $out"
  [[ $(printf '%s\n' "$err" | wc -l) -eq 1 ]] || fail "$what: want one line on stderr, got: $err"
  [[ $err == "weir: "* ]] || fail "$what: stderr should start with 'weir: ': $err"
}

# status URL [CURL ARGS...]: prints the HTTP status code, or 000 when nothing answered.
status() {
  local url=$1
  shift
  curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@" "$url" || true
}

serves_200() {
  [[ $(status "$1") == 200 ]]
}

# shutdown_lines LOG: the lines from "shutting down" on, without timestamps, the signal's name
# replaced by SIG*, so a stop by SIGTERM and one by SIGINT compare equal.
shutdown_lines() {
  sed -n '/\] SIG[A-Z]*: shutting down/,$p' "$1" | sed -E 's/^[^ ]+ //; s/SIG(TERM|INT)\b/SIG*/'
}

# check_startup_lines WHAT LOG: every start-up line is above the ready line ("listening on"),
# which weir logs last so that tests can wait for it.
check_startup_lines() {
  local what=$1 log=$2 ready n pattern problems=""
  ready=$(grep -nE ' listening on http://' "$log" | head -n 1 | cut -d: -f1 || true)
  for pattern in '\] (root: |no root given: )' '\] metrics: ' '\] stage groups: ' \
    '\] access log: '; do
    n=$(grep -nE -- "$pattern" "$log" | head -n 1 | cut -d: -f1 || true)
    if [[ -z $n ]]; then
      problems+=" no line matching '$pattern';"
    elif [[ -z $ready || $n -gt $ready ]]; then
      problems+=" '$pattern' (line $n) not above 'listening on' (line ${ready:-none});"
    fi
  done
  if [[ -n $problems ]]; then
    fail "$what:$problems log:"$'\n'"$(<"$log")"
  else
    echo "ok: $what: every line above 'listening on'"
  fi
}

mkdir -p "$scratch/site" "$scratch/tmp"
echo "own root" >"$scratch/site/index.html"
touch "$scratch/not-a-dir"

# --- Information -------------------------------------------------------------------------------
run 0 "--help" --help
help_text=$out
for flag in --root --listen --config --access-log --log-level --metrics-listen --no-metrics \
  --test-config --help --version; do
  contains "--help lists $flag" "$out" "$flag"
done
contains "--help has an example" "$out" "Example"
[[ -z $err ]] || fail "--help: stderr should be empty: $err"
run 0 "-h" -h
contains "-h" "$out" "--root"

run 0 "--version" --version
project_version=$(sed -n 's/^project(weir VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
[[ $out == "weir $project_version" ]] ||
  fail "--version: got '$out', want 'weir $project_version' (runtime/version.hpp vs CMakeLists.txt)"

# --- Bad flags: exit 2, one line naming the flag -------------------------------------------------
usage_error "unknown option" "--bogus" --bogus
usage_error "unknown option with value" "--bogus" --bogus=1
usage_error "positional argument" "\"serve\"" serve
usage_error "bad --listen" '--listen: "nope" is not ADDR:PORT' --listen nope
usage_error "bad --listen port" "--listen" --listen=127.0.0.1:65536
usage_error "missing value" "--listen: missing value" --listen
usage_error "missing value before a flag" "--root: missing value" --root --test-config
usage_error "bad --log-level" '--log-level: "loud" is not one of' --log-level loud
usage_error "bad --fault-shed" '--fault-shed: "yes" is not one of keep, close' --fault-shed yes
usage_error "bad --metrics-listen" '--metrics-listen: "9464" is not ADDR:PORT' --metrics-listen 9464
usage_error "--metrics-listen with --no-metrics" "choose one" --metrics-listen 127.0.0.1:1 \
  --no-metrics
usage_error "metrics on the public port" "metrics.listen" --listen 127.0.0.1:8081 \
  --metrics-listen 127.0.0.1:8081 --test-config
usage_error "switch with a value" "--help" --help=yes
usage_error "--root does not exist" '--root: "/nonexistent/weir" is not a directory' \
  --root /nonexistent/weir
usage_error "--root is a file" "--root" --root "$scratch/not-a-dir" --test-config

# --- Config files --------------------------------------------------------------------------------
printf 'cache:\n  policy: mru\n' >"$scratch/bad-policy.yaml"
usage_error "bad config value" "cache.policy" --config "$scratch/bad-policy.yaml" --test-config
printf 'stages:\n  parse: { threads: 2 }\n' >"$scratch/unknown-key.yaml"
usage_error "unknown config key" "stages.parse" --config "$scratch/unknown-key.yaml"
printf 'listen: "127.0.0.1:80"\ncache: { policy: lru\n' >"$scratch/syntax.yaml"
usage_error "config syntax error" "$scratch/syntax.yaml:" --config "$scratch/syntax.yaml"
usage_error "missing config file" "$scratch/missing.yaml: No such file or directory" \
  --config "$scratch/missing.yaml"
printf 'root: /nonexistent/weir\n' >"$scratch/bad-root.yaml"
usage_error "config root does not exist" "root" --config "$scratch/bad-root.yaml" --test-config

# --- --test-config -------------------------------------------------------------------------------
run 0 "--test-config with --root" --root "$scratch/site" --test-config
[[ $out == "weir: configuration ok" ]] || fail "--test-config: got '$out'"
run 0 "--test-config with the sample site" --test-config
run 0 "--test-config with deploy/weir.yaml" --config "$source_dir/deploy/weir.yaml" --test-config
run 0 "--test-config with =values" --root="$scratch/site" '--listen=[::1]:0' --log-level=warn \
  --access-log=- '--metrics-listen=127.0.0.1:0' --test-config
usage_error "IPv6 --metrics-listen" "IPv6 is not supported" '--metrics-listen=[::1]:9464' \
  --test-config
run 0 "--no-metrics" --no-metrics --test-config
# Flags override the file (the file must still be valid on its own).
printf 'root: /nonexistent/weir\n' >"$scratch/overridden-root.yaml"
run 0 "--root overrides the config file" --config "$scratch/overridden-root.yaml" \
  --root "$scratch/site" --test-config


# --- A real server -------------------------------------------------------------------------------
# The file's listen address and log level are overridden by flags; the log and the ports show it.
# Both ports are the kernel's choice (:0), read from the log.
printf 'listen: "127.0.0.1:1"\nlog_level: error\n' >"$scratch/server.yaml"
TMPDIR="$scratch/tmp" weir_start "$scratch/server.err" "$scratch/server.out" \
  "$weir" --config "$scratch/server.yaml" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --log-level info --access-log - \
  --metrics-listen 127.0.0.1:0
port=$weir_port mport=$weir_metrics_port
echo "ok: server ready on port $port, metrics on port $mport"
log=$(<"$scratch/server.err")
check_startup_lines "start-up log" "$scratch/server.err"
contains "start-up log" "$log" "weir $project_version (pid $weir_pid) listening on http://127.0.0.1:$port/"
contains "start-up log" "$log" "$scratch/tmp/weir-sample-"
contains "start-up log" "$log" "metrics: http://127.0.0.1:$mport/metrics"
contains "start-up log" "$log" "access log: stdout"

code=$(curl -s --max-time 5 -o "$scratch/index" -w '%{http_code}' "http://127.0.0.1:$port/" || true)
[[ $code == 200 ]] || fail "GET /: status $code"
grep -q "Welcome to weir" "$scratch/index" || fail "GET /: not the sample index page"
# The sample page names the metrics address: the default from --help, on its own listener.
default_metrics=$(sed -nE 's/.*\(default: ([0-9.]+:[0-9]+); keep it off the public network\).*/\1/p' \
  <<<"$help_text")
[[ -n $default_metrics ]] || fail "--help: no default metrics address in: $help_text"
grep -qF "<code>http://$default_metrics/metrics</code>" "$scratch/index" ||
  fail "sample index page does not name the metrics address http://$default_metrics/metrics"
if grep -q "will be served" "$scratch/index"; then fail "sample index page: metrics 'will be served'"; fi
echo "ok: sample index page names http://$default_metrics/metrics"
body=$(curl -s --max-time 5 "http://127.0.0.1:$port/hello.txt" || true)
[[ $body == "Hello from weir!" ]] || fail "GET /hello.txt: got '$body'"
code=$(status "http://127.0.0.1:$port/about/")
[[ $code == 200 ]] || fail "GET /about/: status $code"

metrics=$(curl -s --max-time 5 "http://127.0.0.1:$mport/metrics" || true)
contains "metrics endpoint" "$metrics" "weir_build_info{version=\"$project_version\"} 1"
contains "metrics endpoint" "$metrics" 'weir_stage_processed_total{stage="send"}'
code=$(status "http://127.0.0.1:$port/metrics")
[[ $code == 404 ]] || fail "GET /metrics on the public port: status $code, want 404"
compgen -G "$scratch/tmp/weir-sample-*/index.html" >/dev/null ||
  fail "sample site not materialized under \$TMPDIR"
echo "ok: requests served, metrics endpoint answers"

# A second server on the same port: a runtime error, exit 1.
rc=0
timeout 20 "$weir" --listen "127.0.0.1:$port" --root "$scratch/site" --no-metrics --no-admin \
  >/dev/null 2>"$scratch/in-use.err" </dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "port in use: exit $rc, want 1"
contains "port in use" "$(<"$scratch/in-use.err")" "$port"
# The metrics port in use: the same, naming the metrics address.
rc=0
timeout 20 "$weir" --listen "127.0.0.1:0" --root "$scratch/site" --no-admin \
  --metrics-listen "127.0.0.1:$mport" >/dev/null 2>"$scratch/in-use.err" </dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "metrics port in use: exit $rc, want 1"
contains "metrics port in use" "$(<"$scratch/in-use.err")" "metrics.listen"
contains "metrics port in use" "$(<"$scratch/in-use.err")" "127.0.0.1:$mport"
echo "ok: a port in use is exit 1 (public and metrics)"

# SIGHUP re-reads the file: a policy, the cache's bound and a header limit change live (the admin
# API and a request over the new limit show it), each logged in one line; the flags still override
# the file; and an invalid file changes nothing.
aport=$weir_admin_port
[[ -n $aport ]] || fail "no admin API port in the start-up log"
busy() {
  curl -s --max-time 5 "http://127.0.0.1:$aport/policies/pool" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["busy"])'
}
# topology PYTHON-EXPRESSION: evaluates it with t = GET /topology (parsed).
topology() {
  curl -s --max-time 5 "http://127.0.0.1:$aport/topology" |
    python3 -c "import json,sys; t = json.load(sys.stdin); print($1)"
}
big_header_status() {
  curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "X-Big: $(printf 'x%.0s' {1..2000})" \
    "http://127.0.0.1:$port/hello.txt" || true
}
reloads() { grep -c 'reload: configuration applied' "$scratch/server.err" || true; }
[[ $(busy) == 0.85 ]] || fail "before SIGHUP: controllers.pool.busy is $(busy), want the default 0.85"
[[ $(topology 't["cache"]["capacity_bytes"]') == 67108864 ]] ||
  fail "before SIGHUP: cache capacity $(topology 't["cache"]["capacity_bytes"]'), want 64 MiB"
[[ $(big_header_status) == 200 ]] || fail "before SIGHUP: a 2 KB header: status $(big_header_status), want 200"
printf '%s\n' 'listen: "127.0.0.1:1"' 'log_level: error' 'cache: {max_bytes: 32MiB}' \
  'limits: {max_request_line: 512, max_header_bytes: 1KiB}' 'controllers: {pool: {busy: 0.9}}' \
  >"$scratch/server.yaml"
kill -HUP "$weir_pid"
if wait_for 10 file_has "$scratch/server.err" 'reload: configuration applied$'; then
  [[ $(busy) == 0.9 ]] || fail "after SIGHUP: controllers.pool.busy is $(busy), want 0.9"
  [[ $(topology 't["cache"]["capacity_bytes"]') == 33554432 ]] ||
    fail "after SIGHUP: cache capacity $(topology 't["cache"]["capacity_bytes"]'), want 32 MiB"
  code=$(big_header_status)
  [[ $code == 431 ]] || fail "after SIGHUP lowered limits.max_header_bytes: a 2 KB header: status $code, want 431"
  for line in 'cache\.max_bytes 64MiB -> 32MiB' 'limits\.max_header_bytes 16KiB -> 1KiB' \
    'limits\.max_request_line 8KiB -> 512$' 'controllers\.pool \{.*"busy": ?0\.9'; do
    file_has "$scratch/server.err" "\[info\] reload: $line" ||
      fail "SIGHUP: no '$line' line; stderr: $(<"$scratch/server.err")"
  done
  if file_has "$scratch/server.err" 'reload: .* changed; it takes effect at the next restart'; then
    fail "SIGHUP: a live change (or an overridden flag) was reported as needing a restart"
  fi
  code=$(status "http://127.0.0.1:$port/hello.txt")
  [[ $code == 200 ]] || fail "after SIGHUP: GET /hello.txt: status $code, want 200"
  echo "ok: SIGHUP applied a policy, the cache's bound and a header limit live"
else
  fail "SIGHUP: no 'reload: configuration applied' line within 10 s; stderr: $(<"$scratch/server.err")"
fi
printf 'controllers: {pool: {busy: 2}}\n' >"$scratch/server.yaml"
kill -HUP "$weir_pid"
if wait_for 10 file_has "$scratch/server.err" \
  '\[error\] reload: config: controllers.pool.busy: 2 is out of range .*; still running with the previous configuration$'; then
  [[ $(busy) == 0.9 ]] || fail "after a bad SIGHUP: controllers.pool.busy is $(busy), want 0.9 kept"
  [[ $(topology 't["cache"]["capacity_bytes"]') == 33554432 ]] ||
    fail "after a bad SIGHUP: the cache's bound changed"
  [[ $(reloads) == 1 ]] || fail "a bad file was applied"
  code=$(status "http://127.0.0.1:$port/hello.txt")
  [[ $code == 200 ]] || fail "after a bad SIGHUP: GET /hello.txt: status $code, want 200"
  echo "ok: SIGHUP with an invalid file keeps the running configuration"
else
  fail "bad SIGHUP: no error line within 10 s; stderr: $(<"$scratch/server.err")"
fi

# SIGTERM: exit 0, the sample site removed, the access log (stdout) has the requests.
stop_process_ok() {
  local what=$1 signal=$2 log=$3
  if ! weir_stop "$signal"; then
    fail "$what: still running ${WEIR_STOP_SECS}s after SIG$signal (killed)"
  elif [[ $stop_rc -ne 0 ]]; then
    fail "$what: exit code $stop_rc after SIG$signal, want 0; stderr: $(<"$log")"
  else
    echo "ok: $what: exit 0 after SIG$signal"
  fi
}
stop_process_ok "server" TERM "$scratch/server.err"
term_lines=$(shutdown_lines "$scratch/server.err")
contains "SIGTERM log" "$term_lines" "SIG*: shutting down (drain up to"
contains "SIGTERM log" "$term_lines" "[info] stopped"
if compgen -G "$scratch/tmp/weir-sample-*" >/dev/null; then
  fail "sample site directory left behind: $(echo "$scratch"/tmp/weir-sample-*)"
fi
contains "access log on stdout" "$(<"$scratch/server.out")" "/hello.txt"

# --- SIGHUP: what needs a restart, and a regroup ---------------------------------------------------
# listen comes from the file here, so changing it is reported (one line) and the old port keeps
# serving; the file's new grouping is applied live, as /topology shows.
printf '%s\n' 'listen: "127.0.0.1:0"' 'controllers: {grouping: {enabled: false}}' >"$scratch/hup.yaml"
weir_start "$scratch/hup.err" "$scratch/hup.out" "$weir" --config "$scratch/hup.yaml" \
  --root "$scratch/site" --no-metrics --admin-listen 127.0.0.1:0
hport=$weir_port aport=$weir_admin_port
groups_of() { # the groups that run read_parse, as "name:stage+stage"
  curl -s --max-time 5 "http://127.0.0.1:$aport/topology" | python3 -c '
import json, sys
t = json.load(sys.stdin)
print(" ".join(g["name"] + ":" + "+".join(g["stages"]) for g in t["groups"] if "read_parse" in g["stages"]))'
}
[[ $(groups_of) == "read_parse:read_parse" ]] || fail "before SIGHUP: read_parse runs in $(groups_of)"
printf '%s\n' 'listen: "127.0.0.1:1"' 'controllers: {grouping: {enabled: false}}' \
  'stages: {read_parse: {group: parse}, cache_lookup: {group: parse}}' >"$scratch/hup.yaml"
kill -HUP "$weir_pid"
if wait_for 10 file_has "$scratch/hup.err" 'reload: configuration applied$'; then
  file_has "$scratch/hup.err" '\[warning\] reload: listen changed; it takes effect at the next restart$' ||
    fail "SIGHUP: no line naming listen as needing a restart; stderr: $(<"$scratch/hup.err")"
  [[ $(grep -c 'takes effect at the next restart' "$scratch/hup.err") == 1 ]] ||
    fail "SIGHUP: more than listen reported as needing a restart: $(<"$scratch/hup.err")"
  [[ $(groups_of) == "parse:read_parse+cache_lookup" ]] ||
    fail "after SIGHUP: read_parse runs in '$(groups_of)', want parse:read_parse+cache_lookup"
  file_has "$scratch/hup.err" '\[info\] reload: group parse runs read_parse\+cache_lookup' ||
    fail "SIGHUP: no line for the regroup; stderr: $(<"$scratch/hup.err")"
  code=$(status "http://127.0.0.1:$hport/")
  [[ $code == 200 ]] || fail "after SIGHUP: GET / on the old port: status $code, want 200"
  echo "ok: SIGHUP regrouped live and named listen as needing a restart"
else
  fail "SIGHUP: no 'reload: configuration applied' line within 10 s; stderr: $(<"$scratch/hup.err")"
fi
stop_process_ok "SIGHUP server" TERM "$scratch/hup.err"

# --- SIGINT and --access-log FILE -----------------------------------------------------------------
# SIGINT as a terminal's Ctrl-C sends it: env resets the SIG_IGN that background jobs inherit.
mkdir -p "$scratch/site/sub"
echo "sub index" >"$scratch/site/sub/index.html"
access_log=$scratch/access.log
weir_start "$scratch/sigint.err" /dev/null env --default-signal=INT \
  "$weir" --root "$scratch/site" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --no-admin \
  --log-level info --access-log "$access_log"
pub=http://127.0.0.1:$weir_port
contains "start-up log" "$(<"$scratch/sigint.err")" "access log: $access_log"
# METHOD PATH VERSION STATUS, one per request; each curl is its own connection.
want_access=(
  "GET /index.html HTTP/1.1 200"
  "GET /missing.txt HTTP/1.1 404"
  "HEAD /index.html HTTP/1.1 200"
  "GET /sub HTTP/1.1 301"
  "GET /sub/ HTTP/1.0 200"
)
[[ $(status "$pub/index.html") == 200 ]] || fail "GET /index.html: not 200"
[[ $(status "$pub/missing.txt") == 404 ]] || fail "GET /missing.txt: not 404"
[[ $(status "$pub/index.html" --head) == 200 ]] || fail "HEAD /index.html: not 200"
[[ $(status "$pub/sub") == 301 ]] || fail "GET /sub: not 301"
[[ $(status "$pub/sub/" --http1.0) == 200 ]] || fail "GET /sub/ (HTTP/1.0): not 200"
has_lines() { (($(line_count "$1") >= $2)); }
# The log is written by a background thread (every 200 ms): wait for the lines.
wait_for 10 has_lines "$access_log" "${#want_access[@]}" ||
  fail "access log: $(line_count "$access_log") lines after 10 s, want ${#want_access[@]}"

stop_process_ok "server with --access-log" INT "$scratch/sigint.err"
int_lines=$(shutdown_lines "$scratch/sigint.err")
contains "SIGINT log" "$(<"$scratch/sigint.err")" "SIGINT: shutting down (drain up to"
if [[ $int_lines == "$term_lines" ]]; then
  echo "ok: SIGINT: the same shutdown lines as SIGTERM"
else
  fail "SIGINT: shutdown lines differ from SIGTERM's:"$'\n'"$int_lines"$'\n'"vs"$'\n'"$term_lines"
fi

# Exactly one line per request, also after the stop (the last flush): the common log format.
line_re='^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000\] "([A-Z]+) ([^ "]+) (HTTP/1\.[01])" ([0-9]{3}) ([0-9]+)$'
got_access=()
if [[ -e $access_log ]]; then
  while IFS= read -r line; do
    if [[ $line =~ $line_re ]]; then
      got_access+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]} ${BASH_REMATCH[4]}")
    else
      fail "access log: malformed line: $line"
    fi
  done <"$access_log"
fi
# Compared as sets: a request is logged once its response is finished, which may be after the
# next one has begun.
got_sorted=$(printf '%s\n' "${got_access[@]}" | sort)
want_sorted=$(printf '%s\n' "${want_access[@]}" | sort)
if [[ $(line_count "$access_log") -eq ${#want_access[@]} && $got_sorted == "$want_sorted" ]]; then
  echo "ok: access log: ${#want_access[@]} lines, one per request (method, path, version, status)"
else
  fail "access log: got $(line_count "$access_log") lines:"$'\n'"$(cat "$access_log" 2>/dev/null)"$'\n'"want (in any order):"$'\n'"$want_sorted"
fi

# --- Accept backs off when file descriptors run out -----------------------------------------------
# Both limits low (weir raises the soft one to the hard one), then more connections than fit.
# The controllers stay off: a pool resize or a regroup starts threads, and UBSan's vptr check in
# a new thread needs a free descriptor (a sanitizer artefact that kills the debug build here).
fd_limit=64
printf 'controllers: {pool: {enabled: false}, grouping: {enabled: false}}\n' >"$scratch/static.yaml"
weir_start "$scratch/emfile.err" /dev/null prlimit --nofile=$fd_limit:$fd_limit -- \
  "$weir" --config "$scratch/static.yaml" --root "$scratch/site" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --no-admin --log-level info
pub=http://127.0.0.1:$weir_port
fds=("/proc/$weir_pid/fd/"*)
idle_fds=${#fds[@]}
if ((idle_fds + 8 > fd_limit)); then
  fail "weir uses $idle_fds file descriptors idle: raise fd_limit ($fd_limit) in cli_test.sh"
fi
clients=$((fd_limit - idle_fds + 16))
# First requests through every stage (a miss via disk_io, a hit, a 404), as a server that runs out
# of fds has served before. UBSan's vptr check (debug build) needs a free fd (a pipe) when its type
# cache misses, so with none left a first call of a handler is reported as an invalid vptr.
for url in /index.html /index.html /missing.txt; do status "$pub$url" >/dev/null; done
python3 - "$weir_port" "$clients" "$scratch/clients-connected" "$scratch/clients-release" <<'PY' &
import os, socket, sys, time
port, n, connected, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
# The kernel completes each handshake into the listen backlog, accepted by weir or not.
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
open(connected, "w").write(f"{len(socks)}\n")
deadline = time.monotonic() + 60
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
PY
clients_pid=$!
started_pids+=("$clients_pid")
wait_for 10 test -s "$scratch/clients-connected" ||
  fail "EMFILE: $clients client connections not open within 10 s"
if wait_for 10 file_has "$scratch/emfile.err" '\[warning\] accept: .+; pausing accepts for [0-9]+ ms$'; then
  echo "ok: EMFILE: $clients connections to a weir limited to $fd_limit fds ($idle_fds idle): $(grep -m1 'pausing accepts' "$scratch/emfile.err" | sed 's/^[^ ]* //')"
else
  fail "EMFILE: no 'accept: ...; pausing accepts for ... ms' warning within 10 s; stderr (last 20 lines): $(tail -n 20 "$scratch/emfile.err")"
fi
kill -0 "$weir_pid" 2>/dev/null || fail "EMFILE: weir is no longer running"
touch "$scratch/clients-release"
wait_for 10 process_gone "$clients_pid" || fail "EMFILE: the client connections did not close"
if wait_for 10 serves_200 "$pub/index.html"; then
  echo "ok: EMFILE: a new request is served 200 once the clients are gone"
else
  fail "EMFILE: GET /index.html not 200 within 10 s of the clients closing"
fi
# One warning per episode, however many pauses, and one line when accepts succeed again.
if wait_for 10 file_has "$scratch/emfile.err" '\[info\] accept: accepting again after [0-9]+ pauses? for file descriptors$'; then
  warnings=$(grep -c 'pausing accepts for' "$scratch/emfile.err" || true)
  if [[ $warnings -eq 1 ]]; then
    echo "ok: EMFILE: one warning for the episode, then: $(grep -m1 'accepting again' "$scratch/emfile.err" | sed 's/^[^ ]* //')"
  else
    fail "EMFILE: $warnings 'pausing accepts' warnings for one episode, want 1"
  fi
else
  fail "EMFILE: no 'accepting again after N pauses' line after the clients closed"
fi
scrape=$(curl -s --max-time 5 "http://127.0.0.1:$weir_metrics_port/metrics" || true)
backoffs=$(sed -nE 's/^weir_accept_backoffs_total ([0-9.e+]+)$/\1/p' <<<"$scrape")
max_fds=$(sed -nE 's/^process_max_fds ([0-9.e+]+)$/\1/p' <<<"$scrape")
if [[ -n $backoffs ]] && awk -v v="$backoffs" 'BEGIN { exit !(v > 0) }'; then
  echo "ok: EMFILE: weir_accept_backoffs_total $backoffs"
else
  fail "EMFILE: weir_accept_backoffs_total is '${backoffs:-missing}', want > 0"
fi
if [[ -z $max_fds ]] || ! awk -v v="$max_fds" -v l="$fd_limit" 'BEGIN { exit !(v == l) }'; then
  fail "EMFILE: process_max_fds is '${max_fds:-missing}', want $fd_limit (prlimit)"
fi
stop_process_ok "server limited to $fd_limit fds" TERM "$scratch/emfile.err"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all CLI checks passed"
