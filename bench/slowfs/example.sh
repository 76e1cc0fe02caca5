#!/bin/bash
# The measured example of bench/slowfs/README.md: mounts a demo directory at 20 ms, times cat,
# stat, big reads, 64 concurrent reads on Q=4 at 10 ms, sendfile/mmap, and weir on top.
# Usage: bench/slowfs/example.sh [build dir, default build/release]  (root, /dev/fuse)
set -u
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build/release}")
bin=$build/bench/slowfs/weir-slowfs
d=${TMPDIR:-/tmp}/slowfs-demo; rm -rf $d; mkdir -p $d/src/sub $d/mnt
printf 'hello, slow world\n' > $d/src/small.txt
head -c $((3*1024*1024)) /dev/urandom > $d/src/big.bin
printf 'x\n' > $d/src/sub/inner.txt
trap 'fusermount3 -u $d/mnt 2>/dev/null' EXIT
echo '$ weir-slowfs src mnt --latency-ms 20'
$bin $d/src $d/mnt --latency-ms 20 || exit 1
cd $d
echo reset > mnt/.slowfs
echo '$ time cat mnt/small.txt'; ( time cat mnt/small.txt ) 2>&1 | grep -v '^$'
grep -E '^served' mnt/.slowfs | tr '\n' ' '; echo
echo reset > mnt/.slowfs
echo '$ time stat mnt/sub/inner.txt'; ( time stat -c %s mnt/sub/inner.txt ) 2>&1 | grep -v '^$'
grep -E '^served' mnt/.slowfs | tr '\n' ' '; echo
echo reset > mnt/.slowfs
echo '$ time cat mnt/big.bin > /dev/null  # 3 MiB'; ( time cat mnt/big.bin >/dev/null ) 2>&1 | grep -v '^$'
grep -E '^(served|read_bytes)' mnt/.slowfs | tr '\n' ' '; echo
echo reset > mnt/.slowfs
echo '$ time dd if=mnt/big.bin bs=64k of=/dev/null'; ( time dd if=mnt/big.bin bs=64k of=/dev/null status=none ) 2>&1 | grep -v '^$'
grep -E '^(served_read|read_bytes)' mnt/.slowfs | tr '\n' ' '; echo
echo '$ echo "latency_ms=0 read_latency_ms=10 queue=4 reset" > mnt/.slowfs'
echo "latency_ms=0 read_latency_ms=10 queue=4 reset" > mnt/.slowfs
echo '# 64 threads, each with its own fd, pread 4 KiB at once:'
python3 - mnt/small.txt <<'PY'
import os, sys, threading, time
n, path = 64, sys.argv[1]
fds = [os.open(path, os.O_RDONLY) for _ in range(n)]
b = threading.Barrier(n + 1)
def r(fd):
    b.wait(); os.pread(fd, 4096, 0)
ts = [threading.Thread(target=r, args=(fd,)) for fd in fds]
[t.start() for t in ts]; s = time.monotonic(); b.wait(); [t.join() for t in ts]
print("64 reads: %.0f ms" % ((time.monotonic() - s) * 1000))
PY
cat mnt/.slowfs
echo '# sendfile and mmap through direct_io:'
python3 - mnt/big.bin copy <<'PY'
import os, sys, mmap
fd = os.open(sys.argv[1], os.O_RDONLY); out = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
n = 0
while True:
    k = os.sendfile(out, fd, n, 1 << 20)
    if k == 0: break
    n += k
print("sendfile copied", n, "bytes")
for flags, name in ((mmap.MAP_SHARED, "MAP_SHARED"), (mmap.MAP_PRIVATE, "MAP_PRIVATE")):
    try:
        m = mmap.mmap(fd, 4096, flags=flags, prot=mmap.PROT_READ); m[:1]; print(name, "ok")
    except OSError as e:
        print(name, "refused:", e)
PY
cmp src/big.bin copy && echo "sendfile copy identical"
echo "latency_ms=0 stat_latency_ms=0 read_latency_ms=20 queue=1 reset" > mnt/.slowfs
echo '# weir serving small.txt from the mount, read latency 20 ms:'
"$build/weir" --root $d/mnt --listen 127.0.0.1:18931 --no-metrics --no-admin --log-level warn & wp=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18931/small.txt && break; sleep 0.1; done
for i in 1 2 3; do curl -s -o /dev/null -w 'GET /small.txt (%{http_code}) %{time_total}s\n' http://127.0.0.1:18931/small.txt; done
kill $wp; wait $wp
grep -E '^served' mnt/.slowfs | tr '\n' ' '; echo
