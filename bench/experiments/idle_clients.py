#!/usr/bin/python3
"""Holds N idle HTTP/1.1 keep-alive connections to a server: each sends one GET, reads its whole
response, then stays open and silent. Prints "ready OPEN" once every connection has its response
(or failed), then waits; on a line "check" on stdin prints "alive OPEN CLOSED" (closed: the server
hung up meanwhile); on EOF closes everything and exits.

usage: idle_clients.py ADDR:PORT N PATH
"""

import resource
import select
import socket
import sys
import time

CONNECT_TIMEOUT_S = 30


def main():
    addr, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    host, port = addr.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, soft), hard), hard))
    request = f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode()
    ep = select.epoll()
    socks, state = {}, {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, int(port)))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        socks[s.fileno()] = s
        state[s.fileno()] = b""
        ep.register(s.fileno(), select.EPOLLOUT)
        if i % 500 == 499:  # let the listen queue drain: a burst of 10,000 SYNs overflows it
            drive(ep, socks, state, request, 0.05)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while any(v is not None for v in state.values()) and time.monotonic() < deadline:
        drive(ep, socks, state, request, 0.1)
    for fd in [fd for fd, v in state.items() if v is not None]:  # never answered
        ep.unregister(fd)
        socks.pop(fd).close()
        del state[fd]
    print(f"ready {len(socks)} failed {n - len(socks)}", flush=True)
    for fd in socks:
        ep.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    for line in sys.stdin:
        if line.strip() == "check":
            closed = 0
            for fd, ev in ep.poll(0):
                closed += 1
                ep.unregister(fd)
                socks.pop(fd).close()
            print(f"alive {len(socks)} closed {closed}", flush=True)
    for s in socks.values():
        s.close()


def drive(ep, socks, state, request, timeout):
    """Writes each connected socket's request and reads its response to the end of its body."""
    for fd, ev in ep.poll(timeout):
        s = socks.get(fd)
        if s is None:
            continue
        if ev & (select.EPOLLERR | select.EPOLLHUP) and state[fd] == b"":
            ep.unregister(fd)
            s.close()
            del socks[fd]
            state[fd] = None
            continue
        if ev & select.EPOLLOUT:
            try:
                s.send(request)
            except OSError:
                pass
            ep.modify(fd, select.EPOLLIN)
            continue
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            ep.unregister(fd)
            s.close()
            del socks[fd]
            state[fd] = None
            continue
        buf = state[fd] + data
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            length = 0
            for line in buf[:head_end].split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if len(buf) >= head_end + 4 + length:
                ep.unregister(fd)
                state[fd] = None  # done: idle from now on
                continue
        state[fd] = buf


if __name__ == "__main__":
    main()
