#!/usr/bin/env bash
# bench/slowfs mounted for real: a mirrored directory read back byte for byte, reads that take at
# least the set latency, a queue that holds concurrent reads to Q at a time, settings changed
# while mounted through the control file, EROFS on every write, one-line refusals of bad options
# and bad control lines, and a clean unmount on SIGTERM, SIGINT and fusermount3 -u.
# Usage: slowfs_test.sh /path/to/weir-slowfs
set -euo pipefail

slowfs=${1:?usage: slowfs_test.sh /path/to/weir-slowfs}
for cmd in python3 mountpoint fusermount3 cmp; do
  command -v "$cmd" >/dev/null 2>&1 ||
    { echo "slowfs_test.sh: $cmd not found; install it: scripts/bootstrap.sh test" >&2; exit 1; }
done
# This machine and CI have FUSE: without it the test fails, it never passes by skipping.
if [[ ! -c /dev/fuse ]]; then
  echo "FAIL: /dev/fuse is missing: slowfs cannot mount (modprobe fuse; in a container: --device /dev/fuse --cap-add SYS_ADMIN)" >&2
  exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/weir-slowfs-test-XXXXXX")
src=$scratch/src mnt=$scratch/mnt
mkdir -p "$src/sub" "$mnt"
pid=""

# stop SIGNAL: sends SIGNAL to the running instance and waits (30 s at most) until it exits;
# sets rc to its exit status (KILLED if it had to be killed).
stop() {
  kill -"$1" "$pid" 2>/dev/null || true
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rc=KILLED
  else
    rc=0
    wait "$pid" || rc=$?
  fi
  pid=""
}

unmount_all() {
  if [[ -n $pid ]]; then stop TERM; fi
  # /proc/self/mounts, not mountpoint(1): a crashed instance's mount cannot even be stat'ed.
  if grep -qF " $mnt " /proc/self/mounts; then
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
}
cleanup() {
  unmount_all
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

# wait_for DESCRIPTION COMMAND...: polls until COMMAND succeeds; fails the test after 30 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 600); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  fail "timed out waiting for $what"
  return 1
}

not_mounted() { ! mountpoint -q "$mnt"; }

mount_fg() {
  "$slowfs" "$src" "$mnt" --foreground "$@" 2>"$scratch/slowfs.err" &
  pid=$!
  wait_for "the mount at $mnt" mountpoint -q "$mnt"
}

# control LINE: writes LINE to the control file; must be accepted.
control() {
  echo "$1" >"$mnt/.slowfs" || fail "control line '$1' refused: $(cat "$mnt/.slowfs")"
}
status_value() { sed -n "s/^$1=//p" "$mnt/.slowfs"; }

# elapsed_ms COUNT FILE: COUNT threads each open FILE, then (together) pread 4 KiB from it;
# prints the milliseconds from the first pread's start to the last one's end.
elapsed_ms() {
  python3 - "$1" "$2" <<'PY'
import os, sys, threading, time
n, path = int(sys.argv[1]), sys.argv[2]
fds = [os.open(path, os.O_RDONLY) for _ in range(n)]
barrier = threading.Barrier(n + 1)
def read(fd):
    barrier.wait()
    assert len(os.pread(fd, 4096, 0)) > 0
threads = [threading.Thread(target=read, args=(fd,)) for fd in fds]
for t in threads: t.start()
start = time.monotonic()
barrier.wait()
for t in threads: t.join()
print(int((time.monotonic() - start) * 1000))
for fd in fds: os.close(fd)
PY
}

# --- bad options: one line naming the option, exit 2, nothing mounted -------------------------
bad_option() {
  local want=$1
  shift
  local rc=0
  "$slowfs" "$@" >"$scratch/out" 2>"$scratch/err" || rc=$?
  if [[ $rc != 2 ]]; then fail "weir-slowfs $*: exit $rc, want 2"; fi
  if [[ $(wc -l <"$scratch/err") != 1 ]] || ! grep -qF -- "$want" "$scratch/err"; then
    fail "weir-slowfs $*: want one line with '$want', got: $(cat "$scratch/err")"
  fi
  if mountpoint -q "$mnt"; then fail "weir-slowfs $*: mounted anyway"; fi
}
bad_option "--queue: want the number of operations served at a time, an integer 1..4096" \
  "$src" "$mnt" --queue 0
bad_option "--latency-ms: want milliseconds 0..60000" "$src" "$mnt" --latency-ms abc
bad_option "--read-latency-ms: want milliseconds 0..60000" "$src" "$mnt" --read-latency-ms=-3
bad_option "--stat-latency-ms: want milliseconds" "$src" "$mnt" --stat-latency-ms
bad_option "--threads: want FUSE worker threads, an integer 1..1024" "$src" "$mnt" --threads 0
bad_option "unknown option '--bogus'" "$src" "$mnt" --bogus
bad_option "want SOURCE MOUNTPOINT, got 1 arguments" "$src"

# --- a mirror, byte for byte ------------------------------------------------------------------
printf 'hello, slow world\n' >"$src/small.txt"
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom >"$src/big.bin"
printf 'nested\n' >"$src/sub/inner.txt"
: >"$src/empty"
ln -s small.txt "$src/link"

mount_fg
cmp "$src/big.bin" "$mnt/big.bin" || fail "big.bin differs through the mount"
cmp "$src/sub/inner.txt" "$mnt/sub/inner.txt" || fail "sub/inner.txt differs through the mount"
cmp "$src/empty" "$mnt/empty" || fail "empty differs through the mount"
[[ $(readlink "$mnt/link") == small.txt ]] || fail "link: readlink says $(readlink "$mnt/link")"
cmp "$src/small.txt" "$mnt/link" || fail "link does not lead to small.txt"
[[ $(ls -A "$mnt") == "$(ls -A "$src")" ]] || fail "listing differs: $(ls -A "$mnt")"
[[ $(stat -c %s "$mnt/big.bin") == $(stat -c %s "$src/big.bin") ]] || fail "big.bin size differs"
grep -q '^read_latency_ms=0 open_latency_ms=0 stat_latency_ms=0 queue=1$' "$mnt/.slowfs" ||
  fail "initial status: $(cat "$mnt/.slowfs")"

# --- read-only: every write is EROFS, nothing changes -----------------------------------------
erofs() {
  local what=$1
  shift
  if "$@" 2>"$scratch/err"; then
    fail "$what succeeded on a read-only mount"
  elif ! grep -q 'Read-only file system' "$scratch/err"; then
    fail "$what: want EROFS, got: $(cat "$scratch/err")"
  fi
}
erofs "overwrite" sh -c "echo x > '$mnt/small.txt'"
erofs "append" sh -c "echo x >> '$mnt/small.txt'"
erofs "create" touch "$mnt/new"
erofs "mkdir" mkdir "$mnt/newdir"
erofs "unlink" rm "$mnt/small.txt"
erofs "rename" mv "$mnt/small.txt" "$mnt/moved"
erofs "chmod" chmod 600 "$mnt/small.txt"
[[ $(cat "$src/small.txt") == 'hello, slow world' ]] || fail "small.txt changed"
[[ ! -e $src/new && ! -e $src/newdir && ! -e $src/moved ]] || fail "a write reached the source"

# --- latency: one read takes at least the read latency ----------------------------------------
control "latency_ms=0 read_latency_ms=50 queue=1"
ms=$(elapsed_ms 1 "$mnt/small.txt")
if ((ms < 50 || ms > 10000)); then fail "one read at 50 ms took $ms ms"; fi
echo "one read at read_latency_ms=50: $ms ms"

# --- changed while mounted: takes effect on the next read -------------------------------------
control "read_latency_ms=300"
ms=$(elapsed_ms 1 "$mnt/small.txt")
if ((ms < 300 || ms > 10000)); then fail "one read at 300 ms took $ms ms"; fi
echo "one read at read_latency_ms=300: $ms ms"

# --- the queue: 64 concurrent reads on Q=4 at 10 ms take at least 160 ms ----------------------
control "read_latency_ms=10 queue=4 reset"
ms=$(elapsed_ms 64 "$mnt/small.txt")
if ((ms < 160 || ms > 20000)); then fail "64 reads on Q=4 at 10 ms took $ms ms"; fi
echo "64 concurrent reads at queue=4 read_latency_ms=10: $ms ms"
[[ $(status_value served_read) == 64 ]] || fail "served_read $(status_value served_read), want 64"
[[ $(status_value read_bytes) == $((64 * 18)) ]] || fail "read_bytes $(status_value read_bytes)"

# --- counters: waiting readers are visible while they wait ------------------------------------
control "read_latency_ms=1500 queue=1 reset"
readers=()
for _ in 1 2 3; do
  dd if="$mnt/small.txt" of=/dev/null bs=4k count=1 status=none &
  readers+=($!)
done
waiting_two() { [[ $(status_value waiting) == 2 && $(status_value in_service) == 1 ]]; }
wait_for "two reads waiting behind one" waiting_two || true
for r in "${readers[@]}"; do wait "$r" || fail "a reader failed"; done
[[ $(status_value max_waiting) == 2 ]] || fail "max_waiting $(status_value max_waiting), want 2"
[[ $(status_value waiting) == 0 ]] || fail "waiting $(status_value waiting) after all finished"

# --- a bad control line: refused whole, nothing changed, the reason readable -------------------
control "latency_ms=0 queue=3"
if echo "queue=8 latency_ms=fast" >"$mnt/.slowfs" 2>/dev/null; then
  fail "a bad control line was accepted"
fi
grep -q '^read_latency_ms=0 open_latency_ms=0 stat_latency_ms=0 queue=3$' "$mnt/.slowfs" ||
  fail "a refused line changed the settings: $(head -1 "$mnt/.slowfs")"
grep -q "^last_error=latency_ms: want milliseconds 0..60000" "$mnt/.slowfs" ||
  fail "last_error missing: $(cat "$mnt/.slowfs")"
grep -q "latency_ms: want milliseconds" "$scratch/slowfs.err" || fail "refusal not logged"

# --- clean unmount on SIGTERM, then SIGINT ------------------------------------------------------
for sig in TERM INT; do
  if [[ $sig == INT ]]; then mount_fg --latency-ms 1; fi
  stop "$sig"
  [[ $rc == 0 ]] || fail "SIG$sig: exit $rc, want 0: $(cat "$scratch/slowfs.err")"
  not_mounted || fail "SIG$sig: still mounted"
done

# --- daemon mode: mounted when the command returns; fusermount3 -u stops it --------------------
"$slowfs" "$src" "$mnt" --latency-ms 1 || fail "daemon mode: exit $?"
mountpoint -q "$mnt" || fail "daemon mode: not mounted when the command returned"
cmp "$src/small.txt" "$mnt/small.txt" || fail "daemon mode: small.txt differs"
fusermount3 -u "$mnt" || fail "fusermount3 -u failed"
not_mounted || fail "still mounted after fusermount3 -u"

# --- --keep-cache: a file's first read reaches the disk, the next opens read the page cache ----
# The first open stays open with its page mapped and mlock'ed through the next two opens: with
# entry_timeout 0 a closed file's dentry goes at once, and under memory pressure the kernel's
# inode shrinker then drops an unused inode's pages, which sends a second read to the disk with
# keep_cache working (fresh-check saw it while the machine was busy; drop_caches=2 between the
# opens shows it at will). Held and locked, the page can leave only if an open invalidates it,
# which is what this checks: without --keep-cache the same steps make three reads.
keep_cache_reads() {
  python3 - "$mnt/small.txt" "$src/small.txt" "$mnt/.slowfs" <<'PY'
import ctypes, os, sys, time
path, src, status = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
PROT_READ, MAP_SHARED, PAGE = 1, 1, os.sysconf("SC_PAGE_SIZE")
held = os.open(path, os.O_RDONLY)
addr = libc.mmap(None, PAGE, PROT_READ, MAP_SHARED, held, 0)
if addr is None or addr == ctypes.c_void_p(-1).value:
    sys.exit(f"mmap {path}: {os.strerror(ctypes.get_errno())}")
start = time.monotonic()
if libc.mlock(addr, PAGE) != 0:  # faults the page in: the first read
    sys.exit(f"mlock {path}: {os.strerror(ctypes.get_errno())}")
first_ms = int((time.monotonic() - start) * 1000)
want = open(src, "rb").read()
for i in (2, 3):
    with open(path, "rb") as f:
        if f.read() != want:
            sys.exit(f"open {i}: {path} differs from {src}")
reads = [l.split("=", 1)[1] for l in open(status).read().splitlines()
         if l.startswith("served_read=")]
print(first_ms, reads[0] if reads else "none")
PY
}
mount_fg --keep-cache --read-latency-ms 50
if out=$(keep_cache_reads); then
  read -r ms reads <<<"$out"
  if ((ms < 50 || ms > 10000)); then fail "--keep-cache: the first read took $ms ms, want >= 50"; fi
  [[ $reads == 1 ]] || fail "--keep-cache: $reads reads reached the disk for three opens, want 1"
else
  fail "--keep-cache: the reads failed"
fi
stop TERM
[[ $rc == 0 ]] || fail "--keep-cache: exit $rc"

if ((failures > 0)); then
  echo "slowfs_test.sh: $failures failure(s)" >&2
  exit 1
fi
echo "slowfs_test.sh: all passed"
