#!/usr/bin/python3
"""One weir run at a fixed offered rate, watched from outside every few milliseconds: the
listener's accept queue (`ss`) and the admission gauges (the SYN gate's share and closes, the
request limit and in flight, accepting's pauses, connections). It is how the fourth admission
measurements in bench/README.md found the listen queue the binary SYN gate left (p90 302,
max 851 connections at 3x).

usage: watch.py [--rate R] [--cap SHARE] [--duration S] [--timeout S] [--model users|pool]
                [--connections N] [--interval-ms MS] [--weir BIN] [--weir-args '...']
                [--out FILE.json]
Prints the loadgen's summary, the listen queue's p50/p90/p99/max over the samples and the
samples where it held more than --show connections; --out keeps every sample."""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import servers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WATCHED = ("weir_syn_gate_share", 'weir_syn_gate_closes_total{reason="limit"}',
           'weir_syn_gate_closes_total{reason="queue"}', 'weir_admission_limit{class="request"}',
           'weir_admission_in_flight{class="request"}', "weir_accept_pauses_total",
           "weir_connections_open", "weir_connections_accepted_total")


def gauges(text, names=WATCHED):
    """The values of the `names` series (name with its labels, as exposed) in a /metrics text."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series in names:
            out[series] = float(value)
    return out


def accept_queue(ss_text):
    """The accept queue's length from `ss -ltnH` for one listener (its Recv-Q); None if absent."""
    for line in ss_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "LISTEN":
            return int(fields[1])
    return None


def percentiles(values, ps=(50, 90, 99)):
    """Nearest-rank percentiles and the max of `values` ({} when empty)."""
    if not values:
        return {}
    v = sorted(values)
    out = {f"p{p}": v[min(len(v) - 1, max(0, -(-p * len(v) // 100) - 1))] for p in ps}
    out["max"] = v[-1]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=7324, help="offered requests/s (default 7324)")
    p.add_argument("--cap", type=float, default=0.1, help="weir's CPU cap, 0 for none (default 0.1)")
    p.add_argument("--duration", type=float, default=6, help="measured seconds (default 6)")
    p.add_argument("--timeout", type=float, default=2, help="loadgen's timeout (default 2)")
    p.add_argument("--model", choices=("users", "pool"), default="users")
    p.add_argument("--connections", type=int, default=19900)
    p.add_argument("--interval-ms", type=float, default=10, help="sampling period (default 10)")
    p.add_argument("--show", type=int, default=300, help="print samples with a longer queue")
    p.add_argument("--weir", default=str(REPO / "build" / "release" / "weir"))
    p.add_argument("--weir-args", default="")
    p.add_argument("--loadgen", default=str(REPO / "build" / "release" / "bench" / "loadgen" / "weir-loadgen"))
    p.add_argument("--docroot", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "weir-bench-docroot"))
    p.add_argument("--out")
    args = p.parse_args()
    if not (args.cap == 0 or 0.05 <= args.cap <= 1):
        p.exit(2, f"watch.py: --cap must be 0 or 0.05..1, got {args.cap}\n")
    if not Path(args.docroot, "c0", "f0.bin").is_file():
        p.exit(2, f"watch.py: no {args.docroot}/c0/f0.bin: run bench/experiments/run.py once to make the docroot\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.connections + 100)), hard))

    srv = servers.Server("weir", args.docroot, Path(os.environ.get("TMPDIR", "/tmp")) / "weir-watch",
                         cap=args.cap or None, weir=args.weir, weir_args=args.weir_args.split())
    report = {}

    def load():
        kw = {"session": 1, "sources": 16} if args.model == "users" else {}
        report["r"] = loadgen.run(args.loadgen, f"127.0.0.1:{srv.port}", args.rate, model=args.model,
                                  connections=args.connections, duration=args.duration, warmup=1,
                                  timeout=args.timeout, path="/c0/f0.bin", series_ms=100, **kw)

    samples = []
    try:
        t = threading.Thread(target=load)
        t.start()
        t0 = time.monotonic()
        while t.is_alive():
            status, body = servers.http_get(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=1)
            ss = subprocess.run(["ss", "-ltnH", f"sport = :{srv.port}"], stdout=subprocess.PIPE,
                                text=True).stdout
            samples.append({"t": round(time.monotonic() - t0, 3), "accept_queue": accept_queue(ss),
                            **(gauges(body.decode()) if status == 200 else {})})
            time.sleep(args.interval_ms / 1000)
        t.join()
    finally:
        srv.stop()
    s = report["r"]["summary"]
    print(f"goodput {s['goodput_rps']:.0f}/s; 2xx p50/p99 from the write "
          f"{s['latency_2xx_sent']['p50_ms']:.0f}/{s['latency_2xx_sent']['p99_ms']:.0f} ms, "
          f"p99 from the intended time {s['latency_2xx_intended']['p99_ms']:.0f} ms; "
          f"errors {s['errors']}; generator limited: {report['r']['generator']['limited']}")
    queue = [x["accept_queue"] for x in samples if x["accept_queue"] is not None]
    print(f"accept queue over {len(queue)} samples: {percentiles(queue)}")
    for x in samples:
        if (x["accept_queue"] or 0) > args.show:
            print(json.dumps(x))
    if args.out:
        Path(args.out).write_text(json.dumps({"samples": samples, "loadgen": report["r"]}, indent=1))


if __name__ == "__main__":
    main()
