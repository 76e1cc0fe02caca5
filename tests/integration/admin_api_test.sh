#!/usr/bin/env bash
# The admin API of a real weir, as an operator drives it with curl: /healthz, /readyz, /topology;
# policies read, merged (PATCH), replaced (PUT) and refused whole (400, nothing changed); manual
# fuse, split and resize seen in /topology, /metrics and /decisions while requests are still
# served byte for byte; the bearer token; the start-up refusals of admin.listen and
# admin.token_file; SIGHUP putting the file's policies back over the API's; /readyz 503 while a
# drain holds a slow response open.
# Usage: admin_api_test.sh /path/to/weir
set -euo pipefail

weir=${1:?usage: admin_api_test.sh /path/to/weir}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for cmd in curl python3; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "admin_api_test.sh: $cmd not found; install it: scripts/bootstrap.sh test" >&2; exit 1; }
done
# shellcheck source-path=SCRIPTDIR source=weir_process.sh
source "$here/weir_process.sh"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-admin-api-test-XXXXXX")

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

# api METHOD URL [BODY [CURL ARGS...]]: one request; sets code (000: nothing answered), body and
# headers (the response's header block).
api() {
  local method=$1 url=$2
  shift 2
  local args=(-s --max-time 10 -X "$method" -o "$scratch/reply" -D "$scratch/reply-headers"
    -w '%{http_code}')
  if (($# > 0)); then
    args+=(-H 'Content-Type: application/json' --data-binary "$1")
    shift
  fi
  rm -f "$scratch/reply" "$scratch/reply-headers"
  code=$(curl "${args[@]}" "$@" "$url" || true)
  body="" headers=""
  if [[ -e $scratch/reply ]]; then body=$(<"$scratch/reply"); fi
  if [[ -e $scratch/reply-headers ]]; then headers=$(<"$scratch/reply-headers"); fi
}

# get URL: a GET that must answer 200; sets body ("" and a failed check otherwise).
get() {
  api GET "$1"
  if [[ $code != 200 ]]; then
    fail "GET $1: status $code, want 200: $body"
    body=""
  fi
}

# expect_status WHAT WANT: the last reply's status is WANT.
expect_status() {
  if [[ $code == "$2" ]]; then
    echo "ok: $1: $code"
  else
    fail "$1: status $code, want $2; body: $body"
  fi
}

# py JSON PYTHON [ARGS...]: runs PYTHON with `j` the parsed JSON and `a` the ARGS; an assert that
# fails prints its message and returns 1. Prints what PYTHON prints.
py() {
  python3 -c '
import json, sys
j = json.loads(sys.argv[2]) if sys.argv[2] else None
a = sys.argv[3:]
try:
    exec(sys.argv[1])
except AssertionError as e:
    print(e)
    sys.exit(1)
' "$2" "$1" "${@:3}"
}

# check WHAT JSON PYTHON [ARGS...]: py, as a check that passes or fails.
check() {
  local what=$1 json=$2 why
  shift 2
  if why=$(py "$json" "$@" 2>&1); then
    echo "ok: $what"
  else
    fail "$what: ${why:-assertion failed}; JSON: $json"
  fi
}

# refused WHAT STATUS PREFIX: the last reply is STATUS with a one-line JSON body
# {"error": "PREFIX..."} and nothing else in it.
refused() {
  local what=$1 want=$2 prefix=$3
  if [[ $code != "$want" ]]; then
    fail "$what: status $code, want $want; body: $body"
    return
  fi
  [[ $body != *$'\n'* ]] || fail "$what: the error body is not one line: $body"
  grep -qi '^content-type: application/json' <<<"$headers" ||
    fail "$what: Content-Type is not application/json: $headers"
  check "$what: $want {\"error\": \"$prefix...\"}" "$body" '
assert isinstance(j, dict) and list(j) == ["error"], "want an object with only \"error\""
assert j["error"].startswith(a[0]), "the error does not start with " + repr(a[0])
assert "\n" not in j["error"], "the error is not one line"' "$prefix"
}

# The topology's five stages, each in exactly one group; the groups' stages partition them, and
# each stage's "group" is the group that lists it.
partition_check='
want = ["accept", "read_parse", "cache_lookup", "disk_io", "send"]
names = [s["name"] for s in j["stages"]]
assert names == want, "stages are %s, want %s" % (names, want)
listed = [s for g in j["groups"] for s in g["stages"]]
assert sorted(listed) == sorted(want), "the groups list %s, not each stage once" % listed
owner = {s: g["name"] for g in j["groups"] for s in g["stages"]}
for s in j["stages"]:
    assert s["group"] == owner[s["name"]], "%s says group %s, listed by %s" % (
        s["name"], s["group"], owner[s["name"]])
'
# groups_in TOPOLOGY: its groups as "name=stage+stage", sorted ("" if it is not a topology).
groups_in() {
  py "$1" 'print(" ".join(sorted(g["name"] + "=" + "+".join(g["stages"]) for g in j["groups"])))' \
    2>/dev/null || true
}

# group_threads_are URL GROUP N: /topology shows GROUP with N threads.
group_threads_are() {
  local topo
  topo=$(curl -s --max-time 5 "$1/topology" || true)
  [[ -n $topo ]] && py "$topo" '
g = [g for g in j["groups"] if g["name"] == a[0]]
assert g and g[0]["threads"] == int(a[1])' "$2" "$3" >/dev/null
}

# group_info URL: the stage -> group map of weir_stage_group_info in a scrape, as JSON; a stage
# with more than one series maps to a list.
group_info() {
  curl -s --max-time 5 "$1/metrics" | python3 -c '
import json, re, sys
out = {}
for line in sys.stdin:
    m = re.match(r"weir_stage_group_info\{(.*)\} 1$", line.strip())
    if not m:
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(1)))
    s = labels["stage"]
    out[s] = [out[s], labels["group"]] if s in out else labels["group"]
print(json.dumps(out))'
}

# readiness URL: /readyz's status code.
readiness() {
  curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$1/readyz" || true
}
not_ready() { [[ $(readiness "$1") == 503 ]]; }

# served_intact URL FILE: GET URL answers 200 with exactly FILE's bytes.
served_intact() {
  local got=$scratch/served.$RANDOM c
  c=$(curl -s --max-time 10 -o "$got" -w '%{http_code}' "$1" || true)
  [[ $c == 200 ]] && cmp -s "$got" "$2"
}

# startup_refused WHAT NEEDLE ARGS...: weir ARGS exits 2 at start-up with one line on stderr that
# names NEEDLE.
startup_refused() {
  local what=$1 needle=$2 rc=0 err
  shift 2
  timeout 20 "$weir" "$@" >"$scratch/refused.out" 2>"$scratch/refused.err" </dev/null || rc=$?
  err=$(<"$scratch/refused.err")
  if [[ $rc -ne 2 ]]; then
    fail "$what: exit $rc, want 2; stderr: $err"
  elif [[ $(wc -l <"$scratch/refused.err") -ne 1 || $err != "weir: "*"$needle"* ]]; then
    fail "$what: want one line 'weir: ...$needle...' on stderr, got: $err"
  else
    echo "ok: $what: exit 2: $err"
  fi
}

# A root of our own: a file larger than one send (so a fused send still loops), and a small one.
mkdir -p "$scratch/site"
python3 -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(300 * 1024))' \
  "$scratch/site/big.bin"
echo "small file" >"$scratch/site/small.txt"
cp "$scratch/site/big.bin" "$scratch/site/slow.bin"

# --- weir B: the defaults, and a bearer token --------------------------------------------------
# Its controller settings are the defaults: the PUT check below compares with them.
token="weir-admin-test-$RANDOM$RANDOM"
printf '%s\n' "$token" >"$scratch/token" # the trailing line break is not part of the token
printf 'admin:\n  listen: "127.0.0.1:0"\n  token_file: "%s"\n' "$scratch/token" >"$scratch/b.yaml"
weir_start "$scratch/b.err" /dev/null "$weir" --config "$scratch/b.yaml" --root "$scratch/site" \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0
b_pid=$weir_pid
[[ -n $weir_admin_port ]] || die_with_log "weir B: no admin API port in its log" "$scratch/b.err"
b=http://127.0.0.1:$weir_admin_port
file_has "$scratch/b.err" '\] admin API: http://127\.0\.0\.1:[0-9]+/ \(changes need the bearer token\)$' ||
  fail "weir B: the start-up log does not say that changes need the token"

get "$b/policies"
defaults=$body
check "token: GET /policies needs no token" "$defaults" 'assert set(j) == {"pool", "grouping", "admission"}'
api GET "$b/topology"
expect_status "token: GET /topology needs no token" 200
api GET "$b/healthz"
expect_status "token: GET /healthz needs no token" 200

api PATCH "$b/policies/pool" '{"busy": 0.9}'
refused "token: PATCH without Authorization" 401 "authorization: "
grep -qi '^www-authenticate: Bearer' <<<"$headers" ||
  fail "token: a 401 has no 'WWW-Authenticate: Bearer': $headers"
api PATCH "$b/policies/pool" '{"busy": 0.9}' -H "Authorization: Bearer wrong-$token"
refused "token: PATCH with a wrong token" 401 "authorization: wrong token"
api PATCH "$b/policies/pool" '{"busy": 0.9}' -H "Authorization: Basic $token"
refused "token: PATCH with the token but not as Bearer" 401 "authorization: "
api POST "$b/fuse" '{"stages": ["read_parse", "cache_lookup"]}'
refused "token: POST /fuse without Authorization" 401 "authorization: "
get "$b/policies"
now=$body
[[ $now == "$defaults" ]] || fail "token: a refused PATCH changed the policies: $now"
api PATCH "$b/policies/pool" '{"busy": 0.9}' -H "Authorization: Bearer $token"
expect_status "token: PATCH with the right token" 200
get "$b/policies/pool"
check "token: the PATCH applied" "$body" 'assert j["busy"] == 0.9'
weir_pid=$b_pid
weir_stop TERM || fail "weir B: still running ${WEIR_STOP_SECS}s after SIGTERM"

# --- Refused at start-up: exit 2, one line naming the field -------------------------------------
printf 'admin:\n  listen: "0.0.0.0:0"\n' >"$scratch/open.yaml"
startup_refused "admin.listen off loopback without a token" "admin.listen" \
  --config "$scratch/open.yaml" --root "$scratch/site" --listen 127.0.0.1:0 --no-metrics
for bad in missing empty directory; do
  tf=$scratch/token-$bad
  [[ $bad == empty ]] && : >"$tf"
  [[ $bad == directory ]] && mkdir -p "$tf"
  printf 'admin:\n  listen: "127.0.0.1:0"\n  token_file: "%s"\n' "$tf" >"$scratch/$bad.yaml"
  startup_refused "admin.token_file $bad" "admin.token_file" \
    --config "$scratch/$bad.yaml" --root "$scratch/site" --listen 127.0.0.1:0 --no-metrics
  # --test-config reads the token too: "configuration ok" must mean that weir starts.
  startup_refused "--test-config, admin.token_file $bad" "admin.token_file" \
    --config "$scratch/$bad.yaml" --root "$scratch/site" --test-config
done

# --- weir A: the API without a token -----------------------------------------------------------
# The grouping controller is off from the start, so no regroup of its own interferes with the
# manual ones; the file's other values differ from the defaults so that SIGHUP's are recognisable.
cat >"$scratch/a.yaml" <<'EOF'
controllers:
  pool: {busy: 0.8}
  grouping: {enabled: false, fuse_after: 20, cooldown: 5s}
EOF
weir_start "$scratch/a.err" /dev/null "$weir" --config "$scratch/a.yaml" --root "$scratch/site" \
  --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
a=http://127.0.0.1:$weir_admin_port
pub=http://127.0.0.1:$weir_port
metrics=http://127.0.0.1:$weir_metrics_port

api GET "$a/healthz"
expect_status "GET /healthz" 200
check "GET /healthz body" "$body" 'assert j == {"status": "ok"}'
api GET "$a/readyz"
expect_status "GET /readyz while serving" 200
check "GET /readyz body" "$body" 'assert j == {"ready": True}'
get "$a/topology"
topo=$body
check "GET /topology: five stages, each in exactly one group" "$topo" "$partition_check"
groups_at_start=$(groups_in "$topo")
want_groups="accept=accept cache_lookup=cache_lookup disk_io=disk_io read_parse=read_parse send=send"
[[ $groups_at_start == "$want_groups" ]] ||
  fail "GET /topology at start: groups $groups_at_start, want $want_groups"
served_intact "$pub/big.bin" "$scratch/site/big.bin" || fail "GET /big.bin: not the file's bytes"

# Policies: GET, PATCH merges, PUT replaces.
get "$a/policies"
initial=$body
check "GET /policies: pool, grouping and admission, as the file set them" "$initial" '
assert list(j) == ["pool", "grouping", "admission"], "controllers: %s" % list(j)
assert j["pool"]["busy"] == 0.8 and j["grouping"]["enabled"] is False
assert j["grouping"]["fuse_after"] == 20 and j["grouping"]["cooldown"] == "5s"'
api GET "$a/policies/grouping"
expect_status "GET /policies/grouping" 200
check "GET /policies/grouping is /policies' grouping" "$initial" \
  'assert j["grouping"] == json.loads(a[0])' "$body"

api PATCH "$a/policies/pool" '{"busy": 0.9}'
expect_status "PATCH /policies/pool {\"busy\": 0.9}" 200
patch_reply=$body
get "$a/policies"
after=$body
check "PATCH: 0.9 in force, every other field unchanged" "$after" '
before = json.loads(a[0])
assert j["pool"]["busy"] == 0.9, "busy is %r" % j["pool"]["busy"]
for k in before["pool"]:
    if k != "busy":
        assert j["pool"][k] == before["pool"][k], "pool.%s changed" % k
assert j["grouping"] == before["grouping"], "grouping changed"
assert json.loads(a[1]) == j["pool"], "the 200 body is not the settings in force"' \
  "$initial" "$patch_reply"

api PUT "$a/policies/grouping" '{"enabled": false}'
expect_status "PUT /policies/grouping {\"enabled\": false}" 200
get "$a/policies"
check "PUT: every other grouping field back at its default" "$body" '
default = json.loads(a[0])["grouping"]
want = dict(default, enabled=False)
assert j["grouping"] == want, "grouping %s, want %s" % (j["grouping"], want)
assert j["pool"]["busy"] == 0.9, "PUT on grouping changed pool"' "$defaults"

# Refused changes: 400 naming the field, and the whole of /policies as it was.
get "$a/policies"
before=$body
while IFS='|' read -r method name body_sent prefix; do
  api "$method" "$a/policies/$name" "$body_sent"
  refused "$method /policies/$name $body_sent" 400 "$prefix"
  get "$a/policies"
now=$body
  [[ $now == "$before" ]] ||
    fail "$method /policies/$name $body_sent: refused, yet /policies changed: $now (was $before)"
done <<'EOF'
PATCH|pool|{"busy": 2}|controllers.pool.busy: 2 is out of range 0.05..1
PATCH|pool|{"idle": 0.99}|controllers.pool.idle: 0.99 must be below controllers.pool.busy
PATCH|pool|{"nope": 1}|controllers.pool.nope: unknown key
PATCH|pool|{"busy": 0.95, "period": "soon"}|controllers.pool.period:
PATCH|pool|{"grow_after": 0}|controllers.pool.grow_after:
PATCH|pool|not json|body: not JSON
PATCH|pool|[1, 2]|body: expected a JSON object
PATCH|pool|{"busy": 1e400}|body: not JSON
PUT|grouping|{"fuse_below": 0.95}|controllers.grouping.fuse_below: 0.95 must be below
PUT|grouping|{"period": "1ms"}|controllers.grouping.period: 1ms is out of range
PATCH|admission|{"min_limit": 50, "max_limit": 10}|controllers.admission.min_limit: 50 must be at most controllers.admission.max_limit
PATCH|admission|{"percentile": 1}|controllers.admission.percentile: 1 is out of range 0.5..0.9999
PATCH|admission|{"target": "0ms"}|controllers.admission.target: 0ms is out of range
EOF
api PATCH "$a/policies/pool" ''
refused "PATCH /policies/pool with no body" 400 "body: "
for method in GET PATCH PUT; do
  if [[ $method == GET ]]; then api GET "$a/policies/shedding"; else
    api "$method" "$a/policies/shedding" '{"enabled": true}'
  fi
  if [[ $method == GET ]]; then prefix="policies: no controller named"; else
    prefix="no controller named"
  fi
  refused "$method /policies/shedding (no such controller)" 404 "$prefix \"shedding\""
done
get "$a/policies"
now=$body
[[ $now == "$before" ]] || fail "the refused changes changed /policies: $now (was $before)"
api DELETE "$a/policies/pool"
expect_status "DELETE /policies/pool" 405
grep -qi '^allow: GET, HEAD, PUT, PATCH' <<<"$headers" || fail "405 without Allow: $headers"

# Manual actions. The pool controller is turned off first, so no shrink undoes the resize.
api PATCH "$a/policies/pool" '{"enabled": false}'
expect_status "PATCH /policies/pool {\"enabled\": false}" 200

api POST "$a/fuse" '{"stages": ["read_parse", "cache_lookup"]}'
expect_status "POST /fuse read_parse+cache_lookup" 200
check "POST /fuse body" "$body" 'assert j == {"ok": True}'
get "$a/topology"
topo=$body
check "fused: /topology is still a partition" "$topo" "$partition_check"
check "fused: one group read_parse+cache_lookup" "$topo" '
g = [g for g in j["groups"] if g["name"] == "read_parse+cache_lookup"]
assert g, "no group read_parse+cache_lookup in %s" % [g["name"] for g in j["groups"]]
assert g[0]["stages"] == ["read_parse", "cache_lookup"], "its stages: %s" % g[0]["stages"]
assert len(j["groups"]) == 4, "%d groups, want 4" % len(j["groups"])'
check "fused: weir_stage_group_info" "$(group_info "$metrics")" '
assert j.get("read_parse") == j.get("cache_lookup") == "read_parse+cache_lookup", j
for s in ("accept", "disk_io", "send"):
    assert j.get(s) == s, "%s is in %r" % (s, j.get(s))'
served_intact "$pub/big.bin" "$scratch/site/big.bin" ||
  fail "fused: GET /big.bin (a hit) is not the file's bytes"
served_intact "$pub/small.txt" "$scratch/site/small.txt" ||
  fail "fused: GET /small.txt (a miss) is not the file's bytes"

api POST "$a/groups/read_parse+cache_lookup/resize" '{"threads": 3}'
expect_status "POST /groups/read_parse+cache_lookup/resize {\"threads\": 3}" 200
if group_threads_are "$a" "read_parse+cache_lookup" 3; then
  echo "ok: resized: /topology shows read_parse+cache_lookup with 3 threads"
else
  get "$a/topology"
  fail "resized: /topology does not show 3 threads: $body"
fi
api POST "$a/groups/nope/resize" '{"threads": 3}'
refused "resize an unknown group" 404 'group "nope" does not exist'
while IFS='|' read -r bad prefix; do
  api POST "$a/groups/send/resize" "$bad"
  refused "resize with $bad" 400 "$prefix"
done <<'EOF'
{"threads": 0}|threads: expected a whole number 1..256, got 0
{"threads": 257}|threads: expected a whole number 1..256, got 257
{"threads": "3"}|threads: expected a whole number 1..256, got "3"
{}|threads: missing
{"threads": 2, "x": 1}|x: unknown field
three|body: not JSON
EOF
group_threads_are "$a" send 1 || fail "a refused resize changed send's pool"

api POST "$a/split" '{"stage": "cache_lookup"}'
expect_status "POST /split cache_lookup" 200
get "$a/topology"
topo=$body
check "split: /topology is still a partition" "$topo" "$partition_check"
groups_now=$(groups_in "$topo")
[[ $groups_now == "$want_groups" ]] || fail "split: groups $groups_now, want $want_groups"
check "split: weir_stage_group_info" "$(group_info "$metrics")" '
for s in ("accept", "read_parse", "cache_lookup", "disk_io", "send"):
    assert j.get(s) == s, "%s is in %r" % (s, j.get(s))'
served_intact "$pub/big.bin" "$scratch/site/big.bin" || fail "split: GET /big.bin is not the file's bytes"

api POST "$a/fuse" '{"stages": ["accept", "send"]}'
refused "fuse non-neighbours accept and send" 409 "accept and send are not neighbours"
api POST "$a/fuse" '{"stages": ["accept", "nope"]}'
refused "fuse an unknown stage" 404 'no stage named "nope"'
api POST "$a/fuse" '{"stages": ["accept"]}'
refused "fuse with one stage" 400 "stages: "
api POST "$a/split" '{"stage": "send"}'
refused "split a stage that runs alone" 409 "it already runs alone"
api POST "$a/split" '{"stages": "send"}'
refused "split with a wrong field" 400 "stages: unknown field"
get "$a/topology"
groups_now=$(groups_in "$body")
[[ $groups_now == "$want_groups" ]] || fail "refused actions changed the groups: $groups_now"

get "$a/decisions"
check "GET /decisions: the manual actions, by the admin" "$body" '
mine = [(d["action"], d["group"], d["applied"]) for d in j["decisions"] if d["controller"] == "admin"]
want = [("fuse", "read_parse+cache_lookup", True), ("resize", "read_parse+cache_lookup", True),
        ("split", "cache_lookup", True)]
assert mine == want, "admin decisions %s, want %s" % (mine, want)
grouping = [d for d in j["decisions"] if d["controller"] == "grouping"]
assert not grouping, "the disabled grouping controller decided: %s" % grouping'

# SIGHUP: the file is the source of truth. Every policy goes back to what the file says (pool
# busy 0.8, pool enabled again, grouping as the file has it), whatever the API set; the groups
# are runtime state, not policies, and stay as the API left them.
api POST "$a/fuse" '{"stages": ["accept", "read_parse"]}'
expect_status "POST /fuse accept+read_parse (before SIGHUP)" 200
get "$a/topology"
groups_before=$(groups_in "$body")
get "$a/policies"
check "before SIGHUP: the API's policies" "$body" '
assert j["pool"]["busy"] == 0.9 and j["pool"]["enabled"] is False'
kill -HUP "$weir_pid"
if wait_for 10 file_has "$scratch/a.err" 'reload: configuration applied$'; then
  get "$a/policies"
now=$body
  if [[ $now == "$initial" ]]; then
    echo "ok: SIGHUP: the file's policies replace the API's (pool busy 0.8, enabled again)"
  else
    fail "SIGHUP: /policies is $now, want the file's $initial"
  fi
  get "$a/topology"
  groups_now=$(groups_in "$body")
  [[ $groups_now == "$groups_before" ]] ||
    fail "SIGHUP changed the groups: $groups_now (was $groups_before)"
  if file_has "$scratch/a.err" 'reload: .* changed; it takes effect at the next restart'; then
    fail "SIGHUP of an unchanged file reported a setting needing a restart"
  fi
  served_intact "$pub/big.bin" "$scratch/site/big.bin" ||
    fail "after SIGHUP: GET /big.bin is not the file's bytes"
else
  fail "SIGHUP: no 'reload: configuration applied' line within 10 s: $(<"$scratch/a.err")"
fi
api GET "$a/readyz"
expect_status "GET /readyz before SIGTERM" 200
weir_stop TERM || fail "weir A: still running ${WEIR_STOP_SECS}s after SIGTERM"
[[ $stop_rc -eq 0 ]] || fail "weir A: exit $stop_rc after SIGTERM, want 0"

# --- weir C: /readyz while a drain holds a response open ----------------------------------------
# Every disk read waits 5 s first. A miss for slow.bin is in flight once disk_io's pool has a busy
# thread; SIGTERM then starts a drain that must let it finish, and /readyz says 503 from the
# drain's first moment. The 5 s bound the polls below (a few hundred ms each, even under ASan on
# a loaded machine); the curl still running when 503 is seen proves the order.
weir_start "$scratch/c.err" /dev/null "$weir" --root "$scratch/site" --listen 127.0.0.1:0 \
  --no-metrics --admin-listen 127.0.0.1:0 --fault-disk-latency 5s
c=http://127.0.0.1:$weir_admin_port
curl -s --max-time 30 -o "$scratch/slow.got" -w '%{http_code}' \
  "http://127.0.0.1:$weir_port/slow.bin" >"$scratch/slow.code" &
slow_pid=$!
started_pids+=("$slow_pid")
disk_io_busy() {
  local topo
  topo=$(curl -s --max-time 5 "$c/topology" || true)
  [[ -n $topo ]] && py "$topo" '
assert any("disk_io" in g["stages"] and g["busy_threads"] >= 1 for g in j["groups"])' >/dev/null
}
if ! wait_for 10 disk_io_busy; then
  fail "drain: the miss for /slow.bin never occupied disk_io"
elif ! kill -0 "$slow_pid" 2>/dev/null; then
  fail "drain: the slow request ended before SIGTERM (the machine stalled for 5 s?)"
else
  kill -TERM "$weir_pid"
  if ! wait_for 10 not_ready "$c"; then
    fail "drain: /readyz never said 503 after SIGTERM (last: $(readiness "$c"))"
  elif ! kill -0 "$slow_pid" 2>/dev/null; then
    fail "drain: /readyz said 503 only after the slow request had ended"
  else
    echo "ok: drain: /readyz 503 while a response is still in flight"
    api GET "$c/readyz"
    check "drain: /readyz body" "$body" 'assert j == {"ready": False}'
  fi
  wait "$slow_pid" || fail "drain: curl of /slow.bin failed"
  if [[ $(<"$scratch/slow.code") == 200 ]] && cmp -s "$scratch/slow.got" "$scratch/site/slow.bin"
  then
    echo "ok: drain: the response in flight finished, 200 and whole"
  else
    fail "drain: the response in flight was not finished whole (status $(<"$scratch/slow.code"))"
  fi
  # The SIGTERM above ends it once the drain is done; another would force the exit (status 3).
  weir_wait_exit || fail "weir C: still running ${WEIR_STOP_SECS}s after SIGTERM"
  [[ $stop_rc -eq 0 ]] || fail "weir C: exit $stop_rc after the drain, want 0"
  if file_has "$scratch/c.err" 'drain did not finish'; then fail "drain: cut off a connection"; fi
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all admin API checks passed"
