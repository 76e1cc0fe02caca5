"""The servers the experiments compare: weir, nginx, lighttpd and h2o, each started on a free
loopback port with its own run directory, pinned to one CPU, optionally CPU-capped with the cgroup
v1 `cpu` controller (../shared/bench/README.md), and stopped cleanly.

Peer configurations come from ../shared/bench/peers/ (their users' tuning for static files);
weir runs with its defaults (controllers on) unless a config file is given.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

SERVERS = ("weir", "nginx", "lighttpd", "h2o")
# Not a server to compare, a floor to measure against: bench/floor's canned-response epoll loop.
FLOOR = "floor"
READY_TIMEOUT_S = 10
STOP_TIMEOUT_S = 15  # weir drains for up to timeouts.drain (10 s) before it exits
CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
CGROUP_PERIOD_US = 10000  # 10 ms keeps capacity intact (../shared/bench/README.md)


class ServerError(RuntimeError):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    """(status, body) of a GET, or (None, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return None, b""


def _children(pid):
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class CpuCap:
    """A cgroup v1 cpu group capping its processes at `share` of one CPU."""

    def __init__(self, name, share):
        if not CGROUP_ROOT.is_dir():
            raise ServerError(f"no cgroup v1 cpu controller at {CGROUP_ROOT}")
        self.path = CGROUP_ROOT / f"weir-exp-{name}-{os.getpid()}"
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(CGROUP_PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(max(1000, int(share * CGROUP_PERIOD_US))))

    def add(self, pids):
        for pid in pids:
            (self.path / "cgroup.procs").write_text(str(pid))

    def throttled(self):
        """(periods throttled, total throttled seconds) so far."""
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat.get("nr_throttled", 0)), int(stat.get("throttled_time", 0)) / 1e9

    def remove(self):
        for _ in range(100):  # the processes leave the group when they exit
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)


class Server:
    """One running server. `pids` are every process serving (nginx: master and worker)."""

    def __init__(self, name, docroot, rundir, cpu=0, cap=None, weir=None, weir_args=(),
                 peers_dir=None, nginx_conf="nginx.conf.in", workers=1, conf_edit=None,
                 floor=None):
        if name not in SERVERS and name != FLOOR:
            raise ServerError(f"unknown server {name!r}: one of {', '.join(SERVERS)}")
        self.name, self.docroot, self.cpu = name, str(docroot), cpu
        self.rundir = Path(rundir)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = self.admin_port = None
        self.proc = None
        self.pids = []
        self.log = self.rundir / "stderr.log"
        self.cap = None
        # a weir that sheds everything (--fault-shed) is ready when it answers 503
        self.ready_status = 503 if "--fault-shed" in weir_args else 200
        self.floor = floor
        self._start(weir, list(weir_args), Path(peers_dir) if peers_dir else None, nginx_conf,
                    workers, conf_edit)
        try:
            self._wait_ready()
            if cap is not None:
                self.cap = CpuCap(name, cap)
                self.cap.add(self.pids)
        except Exception:
            self.stop()
            raise

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _conf(self, peers_dir, template, workers, conf_edit):
        text = (peers_dir / template).read_text()
        for key, value in (("ROOT", self.docroot), ("PORT", str(self.port)),
                           ("WORKERS", str(workers)), ("RUNDIR", str(self.rundir))):
            text = text.replace(f"@{key}@", value)
        if conf_edit:
            text = conf_edit(text)
        out = self.rundir / template.removesuffix(".in")
        out.write_text(text)
        return out

    def _start(self, weir, weir_args, peers_dir, nginx_conf, workers, conf_edit):
        pin = ["taskset", "-c", str(self.cpu)]
        logf = open(self.log, "wb")
        if self.name == "weir":
            self.metrics_port, self.admin_port = free_port(), free_port()
            cmd = pin + [weir, "--root", self.docroot, "--listen", f"127.0.0.1:{self.port}",
                         "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                         "--admin-listen", f"127.0.0.1:{self.admin_port}"] + weir_args
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
            self.pids = [self.proc.pid]
        elif self.name == FLOOR:
            self.proc = subprocess.Popen(pin + [self.floor, "--listen", f"127.0.0.1:{self.port}"],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
            self.pids = [self.proc.pid]
        elif self.name == "nginx":
            conf = self._conf(peers_dir, nginx_conf, workers, conf_edit)
            text = conf.read_text()
            # Debian's nginx keeps temp dirs under /var/lib/nginx: move them into the run dir
            temps = "".join(f" {t}_temp_path {self.rundir}/{t};"
                            for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            conf.write_text(text.replace("http {", "http {" + temps, 1))
            user = []
            if os.getuid() == 0:  # keep workers as root so they read the docroot wherever it is
                user = ["-g", "user root root;"]
            r = subprocess.run(pin + ["nginx", "-p", f"{self.rundir}/", "-e",
                                      str(self.rundir / "nginx-startup.log"), "-c", str(conf)]
                               + user, stdin=subprocess.DEVNULL, stdout=logf,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise ServerError(f"nginx did not start: see {self.log}")
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    master = int((self.rundir / "nginx.pid").read_text())
                    if _alive(master):
                        self.pids = [master]
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            else:
                raise ServerError("nginx wrote no pid file")
        elif self.name == "lighttpd":
            conf = self._conf(peers_dir, "lighttpd.conf.in", 0 if workers == 1 else workers,
                              conf_edit)
            self.proc = subprocess.Popen(pin + ["lighttpd", "-D", "-f", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
            self.pids = [self.proc.pid]
        else:  # h2o, in the foreground
            conf = self._conf(peers_dir, "h2o.conf.in", workers, conf_edit)
            self.proc = subprocess.Popen(pin + ["h2o", "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
            self.pids = [self.proc.pid]

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            status, body = http_get(self.url + "/c0/f0.bin", timeout=1)
            if status == self.ready_status and (status != 200 or len(body) == 500):
                break
            if not _alive(self.pids[0]) or time.monotonic() > deadline:
                raise ServerError(f"{self.name} did not answer GET /c0/f0.bin with "
                                  f"{self.ready_status} (and 500 bytes) within {READY_TIMEOUT_S} s (last: {status}); see "
                                  f"{self.log}")
            time.sleep(0.05)
        if self.name == "nginx":
            self.pids += _children(self.pids[0])
        if self.name == "weir":
            while True:
                status, _ = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise ServerError(f"weir's /metrics answered {status}; see {self.log}")
                time.sleep(0.05)

    def cpu_seconds(self):
        """utime + stime of every serving process (threads that ended included)."""
        hz = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(f[11]) + int(f[12])
            except OSError:
                pass
        return total / hz

    def rss_kib(self):
        total = 0
        for pid in self.pids:
            try:
                m = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
                total += int(m.group(1)) if m else 0
            except OSError:
                pass
        return total

    def stop(self):
        if self.name == "nginx" and self.pids:
            try:
                os.kill(self.pids[0], signal.SIGQUIT)  # graceful: workers finish and leave
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while any(_alive(p) for p in self.pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            for p in self.pids:
                if _alive(p):
                    os.kill(p, signal.SIGKILL)
        elif self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.cap is not None:
            self.cap.remove()
            self.cap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def require(names):
    """The binaries the servers need, or a ServerError naming what is missing."""
    missing = [n for n in names if n not in ("weir", FLOOR) and shutil.which(n) is None]
    if missing:
        raise ServerError(f"missing {', '.join(missing)}: apt-get install "
                          + " ".join({"nginx": "nginx-light"}.get(m, m) for m in missing))
