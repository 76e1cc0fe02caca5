#!/usr/bin/python3
"""Overload experiments: weir, nginx, lighttpd and h2o side by side on 127.0.0.1, each server
pinned to CPU 0 and CPU-capped (cgroup v1 cpu controller), bench/loadgen on CPU 1.

usage: bench/experiments/run.py [EXPERIMENT ...] [options]   (see --help)
Results (JSON per experiment, markdown tables, PNG plots) go to --out (default
bench/results/). Debian's python3 (matplotlib from python3-matplotlib).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import servers  # noqa: E402

EXPERIMENTS = ("sweep", "step", "slowdisk", "c10k", "refusal", "overload", "cpu", "capacity")
WORKLOADS = ("c0", "mix")
MODELS = ("pool", "users")
SWEEP_POINTS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
POOL_CONNECTIONS = 64      # the proxy in front of the server
USERS_CAP = 10000          # independent clients: connections open at once, at most
USERS_SOURCES = 16         # ...from this many loopback addresses (ephemeral ports: see loadgen)
SUSTAINED_GOODPUT = 0.97   # capacity: the highest rate whose goodput (2xx completed in the window) is this share of offered...
SUSTAINED_P99_MS = 100.0   # ...with p99 (from the intended send time) under this


def log(msg):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


class Bench:
    """What every experiment shares: the binaries, the docroot, the CPU cap, the output."""

    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs = self.out / "runs"
        self.runs.mkdir(exist_ok=True)
        self.weir = Path(args.weir)
        self.loadgen = Path(args.loadgen)
        self.floor = Path(args.floor)
        self.docroot = Path(args.docroot)
        self.shared = Path(args.shared)
        self.mix = Path(args.mix)
        for p, what in ((self.weir, "weir (--weir)"), (self.loadgen, "weir-loadgen (--loadgen)")):
            if not os.access(p, os.X_OK):
                sys.exit(f"run.py: {what} not found at {p}: build it (make build)")
        servers.require(args.servers)
        if not (self.docroot / "c0" / "f0.bin").is_file():
            log(f"making the docroot at {self.docroot}")
            subprocess.run([str(self.shared / "bench" / "make-docroot.sh"), str(self.docroot)],
                           check=True, stdout=subprocess.DEVNULL)

    def server(self, name, tag, cap=None, **kw):
        cap = self.args.cap if cap is None else cap
        if name == "weir" and self.args.weir_args:
            kw["weir_args"] = list(kw.get("weir_args", ())) + self.args.weir_args.split()
        return servers.Server(name, self.docroot, self.runs / f"{name}-{tag}", cpu=0,
                              cap=cap if cap > 0 else None, weir=str(self.weir),
                              peers_dir=self.shared / "bench" / "peers", **kw)

    def load(self, srv, rate, workload, model, duration=None, warmup=None, tag=None, **kw):
        if model == "pool":
            kw.setdefault("connections", POOL_CONNECTIONS)
        else:
            kw.setdefault("connections", USERS_CAP)
            kw.setdefault("session", 1)
            kw.setdefault("sources", USERS_SOURCES)
        if workload == "mix":
            kw["mix"] = self.mix
        else:
            kw.setdefault("path", "/c0/f0.bin")
        out = self.runs / f"{tag}.json" if tag else None
        return loadgen.run(self.loadgen, f"127.0.0.1:{srv.port}", rate, cpu=1, model=model,
                           duration=duration or self.args.duration,
                           warmup=self.args.warmup if warmup is None else warmup,
                           timeout=self.args.timeout, out=out, **kw)

    def save(self, name, data):
        data["machine"] = machine()
        data["args"] = {k: str(v) for k, v in vars(self.args).items()}
        (self.out / f"{name}.json").write_text(json.dumps(data, indent=1))


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "compiler": first(["c++", "--version"]), "date": f"{datetime.datetime.now():%F %T}",
            "nginx": _stderr_first(["nginx", "-v"]),
            "lighttpd": first(["lighttpd", "-v"]), "h2o": first(["h2o", "--version"])}


def _stderr_first(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return r.stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def sustained(row, rate):
    return (row["goodput_rps"] >= SUSTAINED_GOODPUT * rate and row["p99_ms"] <= SUSTAINED_P99_MS)


def capacity(bench, srv, workload, model, tag):
    """The highest offered rate sustained (goodput and p99 bounds), from an open-loop ramp:
    x1.25 steps from --ramp-start until one fails twice in a row, then two bisections."""
    rate, ok, bad, steps = bench.args.ramp_start, None, None, []
    while bad is None:
        row = loadgen.summary_row(bench.load(srv, rate, workload, model, duration=3, warmup=2,
                                             tag=f"{tag}-ramp-{rate:.0f}"))
        steps.append(row)
        if row["limited"]:
            log(f"  ramp {rate:.0f}/s: the generator was the limit; capacity is at least {rate:.0f}")
            return rate, steps, True
        if not sustained(row, rate):  # once more before calling it: one p99 spike is not a limit
            row = loadgen.summary_row(bench.load(srv, rate, workload, model, duration=3,
                                                 warmup=2, tag=f"{tag}-ramp-{rate:.0f}-again"))
            steps.append(row)
        if sustained(row, rate):
            ok, rate = rate, rate * 1.25
        else:
            bad = rate
        if rate > 1e6:
            break
    if ok is None:
        return 0.0, steps, False
    for _ in range(2):
        mid = (ok + bad) / 2
        row = loadgen.summary_row(bench.load(srv, mid, workload, model, duration=3, warmup=2,
                                             tag=f"{tag}-ramp-{mid:.0f}"))
        steps.append(row)
        if sustained(row, mid):
            ok = mid
        else:
            bad = mid
    return ok, steps, False


def run_sweep(bench):
    """Experiment 1: offered load 10 %..400 % of capacity, c0 and the mix, both client models."""
    result = {"points": list(SWEEP_POINTS), "series": []}
    for name in bench.args.servers:
        for workload in bench.args.workloads:
            for model in bench.args.models:
                tag = f"sweep-{name}-{workload}-{model}"
                with bench.server(name, tag) as srv:
                    cap, ramp, gen_limited = capacity(bench, srv, workload, model, tag)
                    log(f"{name} {workload} {model}: capacity {cap:.0f} req/s"
                        f"{' (generator-limited)' if gen_limited else ''}")
                    rows = []
                    for k in SWEEP_POINTS:
                        rate = max(1.0, k * cap)
                        row = loadgen.summary_row(bench.load(srv, rate, workload, model,
                                                             tag=f"{tag}-{k:g}"))
                        row["load"] = k
                        rows.append(row)
                        log(f"  {k * 100:4.0f} % {rate:8.0f}/s: goodput {row['goodput_rps']:8.0f}"
                            f"  p99 {row['p99_ms']:8.2f} ms  503 {row['rate_503']:6.0f}/s"
                            f"  err {row['rate_errors']:6.0f}/s  timeouts"
                            f" {row['rate_timeouts']:6.0f}/s{'  GENERATOR-LIMITED' if row['limited'] else ''}")
                    result["series"].append({"server": name, "workload": workload, "model": model,
                                             "capacity_rps": cap, "capacity_generator_limited":
                                             gen_limited, "ramp": ramp, "rows": rows})
                    bench.save("sweep", result)
    return result


class MetricsScraper:
    """GET weir's /metrics every `period` s in a thread: pool sizes, topology, queue depths."""

    def __init__(self, port, period=0.1):
        import threading
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic() - self.t0
            status, body = servers.http_get(self.url, timeout=1)
            if status == 200:
                self.samples.append({"t": round(t, 3), **parse_metrics(body.decode())})
            self._stop.wait(max(0.0, self.period - (time.monotonic() - self.t0 - t)))

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.samples


def parse_metrics(text):
    """The series the step plot needs: threads and queue depth per stage, stage -> group."""
    threads, depth, group, rejected = {}, {}, {}, 0.0
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels_text, value = rest.rsplit("}", 1)
        labels = dict(kv.split("=", 1) for kv in labels_text.split(",") if "=" in kv)
        labels = {k: v.strip('"') for k, v in labels.items()}
        if name == "weir_stage_threads":
            threads[labels["stage"]] = float(value)
        elif name == "weir_stage_queue_depth":
            depth[labels["stage"]] = float(value)
        elif name == "weir_stage_group_info":
            group[labels["stage"]] = labels["group"]
        elif name == "weir_stage_rejected_total":
            rejected += float(value)
    groups = {}
    for stage, g in group.items():
        groups.setdefault(g, []).append(stage)
    return {"threads": threads, "depth": depth, "groups": len(groups),
            "topology": "/".join(sorted("+".join(v) for v in groups.values())),
            "rejected": rejected}


def known_capacity(bench, name, workload, model):
    f = bench.out / "sweep.json"
    if f.is_file():
        for s in json.loads(f.read_text())["series"]:
            if (s["server"], s["workload"], s["model"]) == (name, workload, model) and \
                    s["capacity_rps"] > 0:
                return s["capacity_rps"]
    return None


STEP_PHASES = ((0.5, 10), (3.0, 30), (0.5, 30))  # (share of capacity, seconds)
STEP_SLOT_MS = 100       # the step's series: one entry per 100 ms
STEP_TARGET_MS = 100.0   # weir's admission target (controllers.admission.target's default)


def per_second(slots, slot_ms):
    """Whole seconds from a finer series: the counts summed, `p99_ms` the worst slot's (an
    upper bound of the second's own p99)."""
    per = max(1, 1000 // slot_ms)
    out = []
    for i in range(0, len(slots), per):
        chunk = slots[i:i + per]
        row = {"second": i // per}
        for k in ("sent", "2xx", "503", "other", "errors", "unsent"):
            row[k] = sum(x.get(k, 0) for x in chunk)
        row["p99_ms"] = max((x["p99_ms"] for x in chunk), default=0.0)
        out.append(row)
    return out


def settle_ms(slots, slot_ms, start_s, end_s, bound_ms, key="p99_2xx_sent_ms"):
    """How long after `start_s` the server settled: from then on to `end_s` every slot answered
    some 2xx, their p99 (`key`) within `bound_ms`. The end of the last slot that did not, less
    `start_s`; 0 when none; None when the last one still did not."""
    first, last = round(start_s * 1000 / slot_ms), round(end_s * 1000 / slot_ms)
    window = slots[first:last]
    bad = [i for i, x in enumerate(window) if x["2xx"] == 0 or x[key] > bound_ms]
    if not bad:
        return 0
    if bad[-1] == len(window) - 1:
        return None
    return (bad[-1] + 1) * slot_ms


def readmit_ms(slots, slot_ms, end_s):
    """How long after `end_s` every request was admitted again: the end of the last slot with a
    503 after it, less `end_s`; 0 when there is none."""
    after = slots[round(end_s * 1000 / slot_ms):]
    bad = [i for i, x in enumerate(after) if x["503"] > 0]
    return (bad[-1] + 1) * slot_ms if bad else 0


def recovery_seconds(series, step_end_s, base_p99, rate):
    """Seconds after the step ends until 3 seconds in a row have goodput >= 97 % of the offered
    rate and p99 <= max(2 x the base p99, base + 5 ms); None when it never recovers."""
    bound = max(2 * base_p99, base_p99 + 5)
    good = 0
    for sec in series[step_end_s:]:
        if sec["2xx"] >= SUSTAINED_GOODPUT * rate and sec["p99_ms"] <= bound:
            good += 1
            if good == 3:
                return sec["second"] - 2 - step_end_s
        else:
            good = 0
    return None


def run_step(bench):
    """Experiment 2: 50 % -> 3x for 30 s -> 50 %, c0, per 100 ms; weir's pools and topology."""
    result = {"phases": STEP_PHASES, "slot_ms": STEP_SLOT_MS, "target_ms": STEP_TARGET_MS,
              "series": []}
    for model in bench.args.models:
        for name in bench.args.servers:
            tag = f"step-{name}-c0-{model}"
            with bench.server(name, tag) as srv:
                cap = known_capacity(bench, name, "c0", model)
                if cap is None:
                    cap, _, _ = capacity(bench, srv, "c0", model, tag)
                profile = ",".join(f"{k * cap:.0f}:{secs}" for k, secs in STEP_PHASES)
                scraper = MetricsScraper(srv.metrics_port) if name == "weir" else None
                # 3x in the users model: refused clients hold a connection each for their timeout
                more = {"connections": overload_connections()} if model == "users" else {}
                report = bench.load(srv, STEP_PHASES[0][0] * cap, "c0", model, warmup=5,
                                    duration=sum(secs for _, secs in STEP_PHASES),
                                    profile=profile, tag=tag, series_ms=STEP_SLOT_MS, **more)
                samples = scraper.stop() if scraper else []
            slots = report["series"]
            series = per_second(slots, STEP_SLOT_MS)
            before = [sec["p99_ms"] for sec in series[2:STEP_PHASES[0][1]]]
            base = sorted(before)[len(before) // 2] if before else 0.0
            start = STEP_PHASES[0][1]
            end = start + STEP_PHASES[1][1]
            rec = recovery_seconds(series, end, base, STEP_PHASES[2][0] * cap)
            settled = settle_ms(slots, STEP_SLOT_MS, start, end, STEP_TARGET_MS)
            settled_intended = settle_ms(slots, STEP_SLOT_MS, start, end, STEP_TARGET_MS,
                                         key="p99_2xx_ms")
            readmitted = readmit_ms(slots, STEP_SLOT_MS, end)
            during = series[start:end]
            log(f"{name} {model}: capacity {cap:.0f}/s, base p99 {base:.2f} ms, during the step"
                f" goodput {sum(s['2xx'] for s in during) / max(1, len(during)):.0f}/s,"
                f" 503 {sum(s['503'] for s in during) / max(1, len(during)):.0f}/s;"
                f" 2xx p99 (from the write) under {STEP_TARGET_MS:.0f} ms"
                f" {'never' if settled is None else f'{settled} ms'} into it; every request"
                f" admitted {readmitted} ms after it; recovered"
                f" {'never' if rec is None else f'{rec} s'} after it")
            result["series"].append({"server": name, "model": model, "capacity_rps": cap,
                                     "base_p99_ms": base, "recovery_s": rec,
                                     "settle_ms": settled,
                                     "settle_intended_ms": settled_intended,
                                     "readmit_ms": readmitted,
                                     "seconds": series, "slots": slots,
                                     "weir_metrics": samples,
                                     "summary": loadgen.summary_row(report)})
            bench.save("step", result)
    return result


C10K_IDLE = 10000
C10K_LOAD = 0.5  # the steady load, a share of the server's c0 pool capacity


def c10k_edit(name):
    """Each server as its users tune it to hold 10,000 idle keep-alive connections: descriptors
    and connection limits over 16,384 and idle timeouts of 65 s (nginx's default)."""
    if name == "nginx":
        return lambda t: t.replace("worker_connections 8192", "worker_connections 16384")
    if name == "lighttpd":  # its connection limit is max-fds / 3 unless set (16384 / 3 = 5461)
        return lambda t: (t.replace("server.max-fds = 16384", "server.max-fds = 32768")
                          + "server.max-connections = 16384\nserver.max-keep-alive-idle = 65\n")
    if name == "h2o":
        return lambda t: t.replace("http1-request-timeout: 10", "http1-request-timeout: 65")
    return None


def sockstat_tcp_pages():
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            f = line.split()
            return int(f[f.index("mem") + 1])
    return 0


def run_c10k(bench):
    """Experiment 4: 10,000 idle keep-alive connections held while a steady load runs."""
    result = {"idle": C10K_IDLE, "load_share": C10K_LOAD, "servers": []}
    weir_cfg = bench.runs / "weir-c10k.yaml"
    weir_cfg.write_text("limits:\n  max_connections: 20000\n")
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for name in bench.args.servers:
        tag = f"c10k-{name}"
        kw = {"conf_edit": c10k_edit(name)}
        if name == "weir":
            kw = {"weir_args": ["--config", str(weir_cfg)]}
        with bench.server(name, tag, **kw) as srv:
            cap = known_capacity(bench, name, "c0", "pool")
            if cap is None:
                cap, _, _ = capacity(bench, srv, "c0", "pool", tag)
            rate = C10K_LOAD * cap
            before = loadgen.summary_row(bench.load(srv, rate, "c0", "pool", tag=f"{tag}-before"))
            rss0, tcp0 = srv.rss_kib(), sockstat_tcp_pages()
            holder = subprocess.Popen(["taskset", "-c", "1", sys.executable,
                                       str(HERE / "idle_clients.py"), f"127.0.0.1:{srv.port}",
                                       str(C10K_IDLE), "/c0/f0.bin"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            ready = holder.stdout.readline().split()
            opened = int(ready[1]) if len(ready) >= 2 and ready[0] == "ready" else 0
            time.sleep(1)  # let the server settle what the connections allocated
            rss1, tcp1 = srv.rss_kib(), sockstat_tcp_pages()
            during = loadgen.summary_row(bench.load(srv, rate, "c0", "pool", tag=f"{tag}-during"))
            holder.stdin.write("check\n")
            holder.stdin.flush()
            alive_line = holder.stdout.readline().split()
            alive = int(alive_line[1]) if len(alive_line) >= 2 else 0
            holder.stdin.close()
            holder.wait(30)
        per_conn = (rss1 - rss0) / opened if opened else None
        tcp_per = (tcp1 - tcp0) * page_kib / opened if opened else None
        log(f"{name}: {opened} idle opened, {alive} still open after the load; RSS {rss0} -> "
            f"{rss1} KiB = {per_conn if per_conn is None else round(per_conn, 2)} KiB each "
            f"(kernel TCP {tcp_per if tcp_per is None else round(tcp_per, 2)} KiB each); p99 "
            f"{before['p99_ms']:.2f} -> {during['p99_ms']:.2f} ms at {rate:.0f}/s")
        result["servers"].append({"server": name, "capacity_rps": cap, "rate": rate,
                                  "opened": opened, "alive_after": alive, "rss_before_kib": rss0,
                                  "rss_after_kib": rss1, "rss_per_idle_kib": per_conn,
                                  "kernel_tcp_per_idle_kib": tcp_per, "before": before,
                                  "during": during})
        bench.save("c10k", result)
    return result


REFUSAL_RATE = 8000  # req/s: well under capacity for all three cases, uncapped
REFUSAL_SETTLE = 10  # s of the same load first: the cache warm, the controllers settled


def run_refusal(bench):
    """Experiment 5: weir's CPU per response for a 503 (--fault-shed) against a cached 500 B hit,
    each on a kept connection and on a new connection per request: a 503 that keeps the
    connection (what admission control sends) and one that closes it (what a full queue sends:
    its client comes back on a new connection)."""
    cases = (("hit, keep-alive", "pool", []),
             ("hit, new connection", "users", []),
             ("503, keep-alive", "pool", ["--fault-shed", "keep"]),
             ("503 and close", "users", ["--fault-shed", "close"]))
    result = {"rate": REFUSAL_RATE, "cases": []}
    for label, model, extra in cases:
        tag = "refusal-" + label.replace(", ", "-").replace(" ", "_")
        with bench.server("weir", tag, cap=0, weir_args=extra) as srv:
            bench.load(srv, REFUSAL_RATE, "c0", model, duration=REFUSAL_SETTLE, warmup=0)
            c0 = srv.cpu_seconds()
            report = bench.load(srv, REFUSAL_RATE, "c0", model, warmup=0, tag=tag)
            c1 = srv.cpu_seconds()
        st = report["summary"]["status"]
        answered = st["2xx"] + st["503"] + st["other"]
        per = (c1 - c0) / answered * 1e6 if answered else None
        log(f"{label}: {answered} responses (2xx {st['2xx']}, 503 {st['503']}), "
            f"{per if per is None else round(per, 2)} us of weir CPU each")
        result["cases"].append({"case": label, "model": model, "responses": answered,
                                "status": st, "cpu_us_per_response": per,
                                "errors": report["summary"]["errors"]})
    bench.save("refusal", result)
    return result


CPU_SETTLE = 3  # s of the same load before each measured run: caches warm, controllers settled


def run_cpu(bench):
    """Experiment 7: server CPU per 500 B keep-alive response at a fixed open-loop rate, uncapped,
    against bench/floor's canned-response epoll loop (the kernel's cost of a request). Variants
    run interleaved, round after round, so that a drift of the machine spreads over all of them;
    the figure kept is each variant's median over the rounds."""
    admission_off = bench.runs / "weir-admission-off.yaml"
    admission_off.write_text("controllers:\n  admission:\n    enabled: false\n")
    variants = [("floor", "floor", {})]
    for name in bench.args.servers:
        variants.append((name, name, {}))
        if name == "weir":
            variants.append(("weir, admission off", "weir",
                             {"weir_args": ["--config", str(admission_off)]}))
    rate = bench.args.cpu_rate
    model = bench.args.cpu_model
    runs = {label: [] for label, _, _ in variants}
    result = {"rate": rate, "model": model, "rounds": bench.args.rounds, "variants": []}
    for rnd in range(bench.args.rounds):
        for label, name, kw in variants:
            tag = f"cpu-{label.replace(', ', '-').replace(' ', '_')}-{rnd}"
            with bench.server(name, tag, cap=0, floor=str(bench.floor), **kw) as srv:
                bench.load(srv, rate, "c0", model, duration=CPU_SETTLE, warmup=0)
                c0 = srv.cpu_seconds()
                report = bench.load(srv, rate, "c0", model, warmup=0, tag=tag)
                c1 = srv.cpu_seconds()
                groups = weir_groups(srv)
            st = report["summary"]["status"]
            answered = st["2xx"] + st["503"] + st["other"]
            per = (c1 - c0) / answered * 1e6 if answered else None
            runs[label].append({"responses": answered, "status": st, "cpu_us_per_response": per,
                                "errors": report["summary"]["errors"], "groups": groups,
                                "p99_ms": loadgen.summary_row(report)["p99_ms"]})
            log(f"round {rnd + 1}: {label}: {answered} responses, "
                f"{per if per is None else round(per, 2)} us of CPU each"
                + (f"; groups {' | '.join(groups)}" if groups else ""))
    floor = median([r["cpu_us_per_response"] for r in runs["floor"]])
    for label, _, _ in variants:
        med = median([r["cpu_us_per_response"] for r in runs[label]])
        result["variants"].append({"variant": label, "runs": runs[label],
                                   "cpu_us_per_response": med,
                                   "vs_floor": med / floor if med and floor else None})
        log(f"{label}: median {med if med is None else round(med, 2)} us per response"
            + (f" = {med / floor:.2f}x the floor" if med and floor else ""))
    bench.save("cpu" if model == "pool" else f"cpu-{model}", result)
    return result


def run_capacity(bench):
    """Experiment 8: each server's capacity under the CPU cap (the sweep's ramp, without the
    sweep), for --workloads and --models, over --rounds interleaved rounds; the median is kept.
    Issue 15's short-connection target is c0 in the users model."""
    runs = {}
    for rnd in range(bench.args.rounds):
        for workload in bench.args.workloads:
            for model in bench.args.models:
                for name in bench.args.servers:
                    tag = f"capacity-{name}-{workload}-{model}-{rnd}"
                    with bench.server(name, tag) as srv:
                        cap, ramp, gen_limited = capacity(bench, srv, workload, model, tag)
                        groups = weir_groups(srv)
                    runs.setdefault((name, workload, model), []).append(
                        {"capacity_rps": cap, "generator_limited": gen_limited, "ramp": ramp,
                         "groups": groups})
                    log(f"round {rnd + 1}: {name} {workload} {model}: capacity {cap:.0f} req/s"
                        + (" (generator-limited)" if gen_limited else "")
                        + (f"; groups {' | '.join(groups)}" if groups else ""))
    result = {"cap": bench.args.cap, "rounds": bench.args.rounds, "series": []}
    for (name, workload, model), rs in runs.items():
        med = median([r["capacity_rps"] for r in rs])
        result["series"].append({"server": name, "workload": workload, "model": model,
                                 "runs": rs, "capacity_rps": med})
        log(f"{name} {workload} {model}: median capacity {med:.0f} req/s")
    bench.save("capacity", result)
    return result


def weir_groups(srv):
    """weir's groups as it ran at the end ("name:threads"), from the admin API; None otherwise."""
    if srv.admin_port is None:
        return None
    status, body = servers.http_get(f"http://127.0.0.1:{srv.admin_port}/topology", timeout=5)
    if status != 200:
        return None
    return [f"{g['name']}:{g['threads']}" for g in json.loads(body)["groups"]]


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


SLOW_QUEUE = 4           # the disk serves 4 operations at a time...
SLOW_LATENCY_MS = 10     # ...each taking 10 ms: 400 operations/s
SLOW_COLD_FILES = 20000  # 5 KB each, distinct: a cold request is a first touch (lookup + read)
# ...in directories of 100: FUSE sends the lookups of one directory's names one at a time (8
# concurrent stats of uncached names in one directory take 8 latencies, in 8 directories one), so
# one flat cold directory would be a disk that looks up one name at a time, whatever its queue.
SLOW_COLD_PER_DIR = 100
SLOW_HOT_RATE = 2000     # hits per second, well under every server's capacity
SLOW_DURATION = 20


def cold_path(i):
    return f"cold/{i // SLOW_COLD_PER_DIR:03d}/{i:05d}.bin"


def cold_dirs():
    return [f"cold/{d:03d}" for d in range((SLOW_COLD_FILES - 1) // SLOW_COLD_PER_DIR + 1)]


def slowdisk_source(bench):
    """The slow disk's content: the docroot's hot classes (c0, c1) and a cold set."""
    src = Path(os.environ.get("TMPDIR", "/tmp")) / "weir-slowdisk-src"
    marker = src / cold_path(SLOW_COLD_FILES - 1)
    if not marker.is_file():
        log(f"making the slow disk's content at {src} ({SLOW_COLD_FILES} cold files)")
        for d in ("c0", "c1"):
            (src / d).mkdir(parents=True, exist_ok=True)
            for f in (bench.docroot / d).iterdir():
                (src / d / f.name).write_bytes(f.read_bytes())
        for d in cold_dirs():
            (src / d).mkdir(parents=True, exist_ok=True)
        block = bytes(range(256)) * 20  # 5120 bytes
        for i in range(SLOW_COLD_FILES):
            (src / cold_path(i)).write_bytes(block)
    hot = bench.runs / "slowdisk-hot.mix"
    hot.write_text("".join(f"1 /{d}/f{i}.bin\n" for d in ("c0", "c1") for i in range(10)))
    cold = bench.runs / "slowdisk-cold.mix"
    cold.write_text("".join(f"1 /{cold_path(i)}\n" for i in range(SLOW_COLD_FILES)))
    return src, hot, cold


class SlowDisk:
    """weir-slowfs mounted over `src` (a fresh mount: nothing of it in the kernel's caches)."""

    def __init__(self, binary, src, mnt):
        self.mnt = Path(mnt)
        self.mnt.mkdir(parents=True, exist_ok=True)
        subprocess.run(["fusermount3", "-u", "-q", str(self.mnt)], stderr=subprocess.DEVNULL)
        subprocess.run([str(binary), str(src), str(self.mnt), "--read-latency-ms",
                        str(SLOW_LATENCY_MS), "--stat-latency-ms", str(SLOW_LATENCY_MS),
                        "--open-latency-ms", "0", "--queue", str(SLOW_QUEUE), "--attr-timeout",
                        "3600", "--keep-cache"], check=True)

    def status(self):
        out = {}
        for line in (self.mnt / ".slowfs").read_text().split():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def close(self):
        # a server's processes may still hold files for a moment after it stopped
        for _ in range(50):
            if subprocess.run(["fusermount3", "-u", "-q", str(self.mnt)]).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["umount", "-l", str(self.mnt)], check=False)


def run_slowdisk(bench):
    """Experiment 3: hits on a hot set while misses on a cold set queue on a slow disk, past its
    capacity: do hits stay fast? nginx also as its users tune it for slow disks (aio threads)."""
    src, hot_mix, cold_mix = slowdisk_source(bench)
    # 3x the disk's cold capacity (each miss is a lookup and a read: 200 misses/s)
    cold_rate = SLOW_QUEUE / (SLOW_LATENCY_MS / 1000) / 2 * 3
    mnt = bench.runs / "slowdisk-mnt"
    result = {"queue": SLOW_QUEUE, "latency_ms": SLOW_LATENCY_MS, "hot_rate": SLOW_HOT_RATE,
              "cold_rate": cold_rate, "servers": []}
    names = list(bench.args.servers)
    if "nginx" in names:
        names.insert(names.index("nginx") + 1, "nginx-aio")
    for label in names:
        name = "nginx" if label == "nginx-aio" else label
        kw = {"nginx_conf": "nginx-aio.conf.in"} if label == "nginx-aio" else {}
        disk = SlowDisk(bench.args.slowfs, src, mnt)
        try:
            # uncapped: the disk is the bottleneck here, not the CPU (hits are 2000/s)
            if name == "weir" and bench.args.weir_args:
                kw["weir_args"] = bench.args.weir_args.split()
            srv = servers.Server(name, mnt, bench.runs / f"slowdisk-{label}", cpu=0,
                                 cap=None, weir=str(bench.weir),
                                 peers_dir=bench.shared / "bench" / "peers", **kw)
            with srv:
                host = f"127.0.0.1:{srv.port}"
                # warm the hot set and the cold directories' entries (one at a time, as FUSE
                # looks them up: 2 s), then hits alone (the baseline), then hits with cold misses
                loadgen.run(bench.loadgen, host, 500, cpu=1, mix=hot_mix, duration=3, warmup=0)
                for d in cold_dirs():
                    os.stat(mnt / d)
                alone = loadgen.summary_row(loadgen.run(
                    bench.loadgen, host, SLOW_HOT_RATE, cpu=1, mix=hot_mix, duration=10,
                    warmup=1, timeout=bench.args.timeout, out=bench.runs / f"slowdisk-{label}-alone.json"))
                cold_proc = subprocess.Popen(
                    ["taskset", "-c", "1", str(bench.loadgen), "--target", host, "--rate",
                     f"{cold_rate:g}", "--model", "pool", "--connections", "512", "--mix",
                     str(cold_mix), "--duration", str(SLOW_DURATION + 2), "--timeout",
                     str(bench.args.timeout), "--json",
                     str(bench.runs / f"slowdisk-{label}-cold.json")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(1)  # the misses queue first
                mixed = loadgen.summary_row(loadgen.run(
                    bench.loadgen, host, SLOW_HOT_RATE, cpu=1, mix=hot_mix,
                    duration=SLOW_DURATION, warmup=0, timeout=bench.args.timeout,
                    out=bench.runs / f"slowdisk-{label}-hot.json"))
                cold_proc.wait(SLOW_DURATION + 60)
                cold = loadgen.summary_row(json.loads(
                    (bench.runs / f"slowdisk-{label}-cold.json").read_text()))
                disk_status = disk.status()
        finally:
            disk.close()
        log(f"{label}: hits alone p50 {alone['p50_ms']:.2f} p99 {alone['p99_ms']:.2f} ms; with "
            f"misses p50 {mixed['p50_ms']:.2f} p99 {mixed['p99_ms']:.2f} ms, hit goodput "
            f"{mixed['goodput_rps']:.0f}/s; misses: goodput {cold['goodput_rps']:.0f}/s, p99 "
            f"{cold['p99_ms']:.0f} ms (2xx from the write {cold['p99_2xx_sent_ms']:.0f} ms, 503"
            f" {cold['p99_503_sent_ms']:.2f} ms), 503 {cold['rate_503']:.0f}/s, timeouts"
            f" {cold['rate_timeouts']:.0f}/s; disk max waiting "
            f"{disk_status.get('max_waiting')}")
        result["servers"].append({"server": label, "hits_alone": alone, "hits_with_misses": mixed,
                                  "misses": cold, "disk": disk_status})
        bench.save("slowdisk", result)
    return result


OVERLOAD_SHARE = 3.0        # offered: 3x weir's users-model capacity on c0, the same for every server
OVERLOAD_DURATION = 10
OVERLOAD_WARMUP = 2
OVERLOAD_ROUNDS = 2         # each server this many times, interleaved (single runs vary 2x)
# The kernel's counters that say where the excess went (nstat, host-wide: one run at a time).
OVERLOAD_NSTAT = ("TcpExtListenOverflows", "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv",
                  "TcpExtTCPSynRetrans", "TcpPassiveOpens", "TcpEstabResets")


def nstat_counters(text):
    """{counter: value} from `nstat -az` (absolute values; the header and odd lines skipped)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0][:1].isupper() and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def nstat_now():
    r = subprocess.run(["nstat", "-az"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    return nstat_counters(r.stdout) if r.returncode == 0 else {}


def overload_connections():
    """Client connections for the users model past capacity: each refused client holds one for
    its whole timeout (3x capacity x 2 s is about 15,000), so as many as the fd limit allows."""
    import resource
    return max(USERS_CAP, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100, 30000))


def run_overload(bench):
    """Experiment 6 (issue 14, target 2): c0 in the users model (a new connection per request)
    at 3x weir's capacity, every server CPU-capped, the same offered rate for all, rounds
    interleaved. Where the excess went: 503s, connects that timed out (SYNs dropped), requests
    written and not answered in time, and the kernel's listen-queue counters."""
    cap = known_capacity(bench, "weir", "c0", "users")
    if cap is None:
        with bench.server("weir", "overload-capacity") as srv:
            cap, _, _ = capacity(bench, srv, "c0", "users", "overload-capacity")
    rate = cap * OVERLOAD_SHARE
    # Both: with USERS_CAP the generator runs out of connections against a server that drops
    # SYNs (each refused client holds one for its timeout); with more, the kernel's work for a
    # server whose listen queue overflows (cookies, drops, retransmits) lands on the generator's
    # CPU on loopback and can saturate it (`limited`).
    counts = sorted({USERS_CAP, overload_connections()})
    result = {"capacity_rps": cap, "rate": rate, "runs": []}
    log(f"overload: weir's users capacity {cap:.0f}/s, offering {rate:.0f}/s to each server, "
        f"{' and '.join(map(str, counts))} client connections, {OVERLOAD_ROUNDS} rounds")
    for rnd in range(OVERLOAD_ROUNDS):
        for name, conns in ((n, c) for n in bench.args.servers for c in counts):
            tag = f"overload-{name}-{conns}-{rnd}"
            with bench.server(name, tag) as srv:
                n0 = nstat_now()
                row = loadgen.summary_row(bench.load(
                    srv, rate, "c0", "users", duration=OVERLOAD_DURATION, warmup=OVERLOAD_WARMUP,
                    tag=tag, connections=conns))
                n1 = nstat_now()
            kernel = {k: n1.get(k, 0) - n0.get(k, 0) for k in OVERLOAD_NSTAT if k in n1}
            log(f"{name} round {rnd}, {conns} connections: goodput {row['goodput_rps']:.0f}/s "
                f"({row['goodput_rps'] / cap:.0%} of weir's capacity), 2xx p99 from the write "
                f"{opt_ms(row['p99_2xx_sent_ms'])}, from the intended time "
                f"{opt_ms(row['p99_2xx_ms'])}; 503 {row['rate_503']:.0f}/s; timeouts "
                f"{row['rate_timeouts']:.0f}/s (connecting {opt_ms(row['rate_timeouts_connecting'], '')}"
                f", after the write {opt_ms(row['rate_timeouts_reading'], '')}); unsent "
                f"{row['rate_unsent']:.0f}/s; kernel {kernel}")
            result["runs"].append({"server": name, "round": rnd, "connections": conns, "row": row,
                                   "kernel": kernel})
            bench.save("overload", result)
    return result


def opt_ms(v, unit=" ms"):
    return "-" if v is None else f"{v:.0f}{unit}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("experiments", nargs="*", default=list(EXPERIMENTS),
                   help=f"which to run, of {', '.join(EXPERIMENTS)} (default: all)")
    p.add_argument("--servers", default=",".join(servers.SERVERS),
                   help="comma-separated, of weir,nginx,lighttpd,h2o (default: all)")
    p.add_argument("--workloads", default="c0,mix", help="c0, mix or both (default: both)")
    p.add_argument("--models", default="pool,users", help="pool, users or both (default: both)")
    p.add_argument("--cap", type=float, default=0.1,
                   help="the servers' CPU cap, a share of one core, 0 (none) or 0.05..1 "
                        "(default 0.1: on a fast core 3x of 0.15 outruns one generator core)")
    p.add_argument("--duration", type=float, default=5, help="seconds per measured run (default 5)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of warm-up per run (default 1)")
    p.add_argument("--timeout", type=float, default=2, help="loadgen's response timeout (default 2)")
    p.add_argument("--ramp-start", type=float, default=1000, help="first rate of a ramp (default 1000)")
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--weir", default=str(REPO / "build" / "release" / "weir"))
    p.add_argument("--weir-args", default="",
                   help="more arguments for every weir run, e.g. '--log-level debug' (its log is "
                        "in the run's directory under --out/runs)")
    p.add_argument("--loadgen", default=str(REPO / "build" / "release" / "bench" / "loadgen" / "weir-loadgen"))
    p.add_argument("--shared", default=str(REPO.parent / "shared"))
    p.add_argument("--docroot", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "weir-bench-docroot"))
    p.add_argument("--mix", default=str(REPO / "bench" / "loadgen" / "specweb96.mix"))
    p.add_argument("--floor", default=str(REPO / "build" / "release" / "bench" / "floor" / "weir-floor"))
    p.add_argument("--rounds", type=int, default=3,
                   help="cpu, capacity: rounds of every variant (default 3)")
    p.add_argument("--cpu-rate", type=float, default=20000,
                   help="cpu: the open-loop rate, requests/s (default 20000)")
    p.add_argument("--cpu-model", choices=("pool", "users"), default="pool",
                   help="cpu: keep-alive connections (pool) or a new connection per request "
                        "(users; results in cpu-users.json) (default pool)")
    p.add_argument("--slowfs", default=str(REPO / "build" / "release" / "bench" / "slowfs" / "weir-slowfs"))
    args = p.parse_args()

    def words(flag, value, allowed):
        got = [w for w in value.split(",") if w]
        bad = [w for w in got if w not in allowed]
        if bad or not got:
            p.exit(2, f"run.py: {flag}: '{','.join(bad) or value}' is not one of: {', '.join(allowed)}\n")
        return got
    args.experiments = [w for e in args.experiments for w in words("EXPERIMENT", e, EXPERIMENTS)]
    args.servers = words("--servers", args.servers, servers.SERVERS)
    args.workloads = words("--workloads", args.workloads, WORKLOADS)
    args.models = words("--models", args.models, MODELS)
    if not (args.cap == 0 or 0.05 <= args.cap <= 1):
        p.exit(2, f"run.py: --cap must be 0 or 0.05..1, got {args.cap}\n")
    if os.geteuid() != 0 and args.cap > 0:
        p.exit(2, "run.py: --cap needs root (the cgroup v1 cpu controller); or --cap 0\n")

    # the users model and C10K hold thousands of sockets; servers and tools inherit this
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    bench = Bench(args)
    for e in args.experiments:
        log(f"experiment {e}")
        globals()[f"run_{e}"](bench)
    import report  # noqa: E402  (matplotlib only when there is something to draw)
    report.write_all(bench.out)


if __name__ == "__main__":
    main()
