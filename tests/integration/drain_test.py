#!/usr/bin/python3
"""Graceful drain of the real binary (issue 16): SIGTERM while 200 requests are in flight (50 of
them 5 MiB files whose clients have not read yet) lets every response complete byte-exact, then
weir exits 0; a second SIGTERM during a drain that cannot finish (a client that never reads)
exits at once with status 3. Every wait polls a condition up to a bound.

usage: drain_test.py WEIR_BINARY
"""
import hashlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIG = 5 << 20
READY_SECS = 30  # sanitizer builds on a loaded machine
EXIT_SECS = 30


def fail(msg, log=None):
    print("FAIL:", msg, file=sys.stderr)
    if log and os.path.exists(log):
        print("---- weir's log ----", file=sys.stderr)
        print(open(log, errors="replace").read()[-4000:], file=sys.stderr)
    sys.exit(1)


def wait_for(secs, cond):
    deadline = time.monotonic() + secs
    while True:
        if cond():
            return True
        if time.monotonic() > deadline:
            return cond()
        time.sleep(0.05)


def start(weir, root, log, config=None):
    args = [weir, "--root", root, "--listen", "127.0.0.1:0", "--no-metrics", "--no-admin"]
    if config:
        args += ["--config", config]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    port = []

    def ready():
        if proc.poll() is not None:
            fail(f"weir exited with {proc.returncode} at start-up", log)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", open(log).read())
        if m:
            port.append(int(m.group(1)))
        return bool(port)

    if not wait_for(READY_SECS, ready):
        proc.kill()
        fail("weir not ready", log)
    return proc, port[0]


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def parse(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, None, raw
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    return status, length, body


def drain_completes_everything(weir, root, files, scratch):
    log = os.path.join(scratch, "drain.log")
    proc, port = start(weir, root, log)
    clients = []  # (socket, file name)
    for i in range(200):
        name = f"big{i % 10}.bin" if i % 4 == 0 else f"small{i % 20}.html"
        s = connect(port, rcvbuf=16384 if name.startswith("big") else None)
        s.sendall(f"GET /{name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        clients.append((s, name))
    # Every response has begun (its first bytes are here) before the signal.
    sel = selectors.DefaultSelector()
    for s, name in clients:
        sel.register(s, selectors.EVENT_READ, name)
    started = set()

    def all_started():
        for key, _ in sel.select(timeout=0.05):
            started.add(key.fileobj)
        return len(started) == len(clients)

    if not wait_for(30, all_started):
        proc.kill()
        fail(f"only {len(started)} of 200 responses began", log)
    proc.send_signal(signal.SIGTERM)
    # Now read everything, all clients at once, until each closes.
    data = {s: bytearray() for s, _ in clients}
    open_ = {s for s, _ in clients}
    deadline = time.monotonic() + 60
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                chunk = s.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                data[s] += chunk
            else:
                sel.unregister(s)
                open_.discard(s)
    if open_:
        proc.kill()
        fail(f"{len(open_)} connections still open 60 s after SIGTERM", log)
    for s, name in clients:
        status, length, body = parse(bytes(data[s]))
        if status != 200 or length != len(files[name]) or hashlib.sha256(body).digest() != \
                hashlib.sha256(files[name]).digest():
            proc.kill()
            fail(f"/{name}: status {status}, {len(body)} of {len(files[name])} bytes, "
                 f"content {'same' if body == files[name] else 'different'}", log)
        s.close()
    try:
        code = proc.wait(EXIT_SECS)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("weir still running after the drain", log)
    if code != 0:
        fail(f"weir exited with {code} after a drain that finished", log)
    text = open(log).read()
    if "SIGTERM: shutting down" not in text or "[info] stopped" not in text:
        fail("shutdown lines missing", log)
    print("ok: SIGTERM with 200 responses in flight (50 of 5 MiB): all 200 complete and "
          "byte-exact, exit 0")


def second_signal_exits_at_once(weir, root, scratch):
    log = os.path.join(scratch, "second.log")
    cfg = os.path.join(scratch, "long-drain.yaml")
    with open(cfg, "w") as f:
        f.write("timeouts:\n  drain: 120s\n  send: 120s\n")
    proc, port = start(weir, root, log, cfg)
    stalled = connect(port, rcvbuf=4096)
    stalled.sendall(b"GET /big0.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    if not wait_for(10, lambda: select_readable(stalled)):
        proc.kill()
        fail("the stalled client's response never began", log)
    proc.send_signal(signal.SIGTERM)
    if not wait_for(10, lambda: "SIGTERM: shutting down" in open(log).read()):
        proc.kill()
        fail("no shutdown line after the first SIGTERM", log)
    if proc.poll() is not None:
        fail(f"weir exited ({proc.returncode}) with a response still unread: the drain did not "
             "wait", log)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("a second SIGTERM did not end the drain within 10 s", log)
    if code != 3:
        fail(f"exit status {code} after a second SIGTERM, expected 3", log)
    if "SIGTERM again: exiting without finishing the drain" not in open(log).read():
        fail("no line for the second signal", log)
    stalled.close()
    print(f"ok: a second SIGTERM during a drain that waits on a stalled client: exit 3 after "
          f"{time.monotonic() - t0:.2f} s")


def select_readable(s):
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    ready = bool(sel.select(timeout=0.05))
    sel.close()
    return ready


def main():
    weir = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="weir-drain-") as scratch:
        root = os.path.join(scratch, "root")
        os.mkdir(root)
        files = {}
        for i in range(10):
            files[f"big{i}.bin"] = os.urandom(BIG)
        for i in range(20):
            files[f"small{i}.html"] = (f"<p>small {i}</p>\n" * (i + 1)).encode()
        for name, content in files.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(content)
        drain_completes_everything(weir, root, files, scratch)
        second_signal_exits_at_once(weir, root, scratch)


if __name__ == "__main__":
    main()
