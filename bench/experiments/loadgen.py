"""Runs bench/loadgen (weir-loadgen) pinned to the load CPU and returns its JSON report."""

import json
import subprocess
import tempfile
from pathlib import Path


class LoadgenError(RuntimeError):
    pass


def run(binary, target, rate, *, cpu=1, model="pool", connections=64, session=None,
        duration=5.0, warmup=1.0, timeout=2.0, path=None, mix=None, arrival="poisson", seed=1,
        profile=None, series_ms=None, sources=None, out=None):
    """One open-loop run; returns the parsed JSON report (with `out` kept, if given).
    `series_ms`: the series' slot length (None: the generator's default, a second);
    `sources`: how many loopback source addresses (None: one)."""
    args = ["taskset", "-c", str(cpu), str(binary), "--target", target, "--model", model,
            "--warmup", f"{warmup:g}", "--timeout", f"{timeout:g}", "--arrival", arrival,
            "--seed", str(seed)]
    if profile is None:
        args += ["--rate", f"{rate:g}", "--duration", f"{duration:g}"]
    else:  # the profile sets the rate and the duration
        args += ["--rate-profile", profile]
    if connections is not None:
        args += ["--connections", str(connections)]
    if session is not None:
        args += ["--session", str(session)]
    if series_ms is not None:
        args += ["--series-ms", str(series_ms)]
    if sources is not None:
        args += ["--sources", str(sources)]
    if mix is not None:
        args += ["--mix", str(mix)]
    else:
        args += ["--path", path or "/c0/f0.bin"]
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(out) if out else Path(tmp) / "run.json"
        r = subprocess.run(args + ["--json", str(json_path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise LoadgenError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        report = json.loads(json_path.read_text())
    report["stderr"] = r.stderr
    return report


def _per(count, dur):
    return None if count is None else count / dur


def summary_row(report):
    """The figures a table row needs, from one report."""
    s = report["summary"]
    dur = report["config"]["duration_s"]
    li, ls = s["latency_intended"], s["latency_sent"]
    # The 2xx and 503 latencies apart; a report from before they were split has neither (None).
    l2i, l2s = s.get("latency_2xx_intended", {}), s.get("latency_2xx_sent", {})
    l503s = s.get("latency_503_sent", {})
    errors = s["errors"]
    return {
        "offered_rps": report["config"]["rate"],
        "sent_rps": s["sent"] / dur,
        "goodput_rps": s["goodput_rps"],
        "rate_503": s["status"]["503"] / dur,
        "rate_other": s["status"]["other"] / dur,
        "rate_errors": (errors["connect"] + errors["read"]) / dur,
        "rate_timeouts": errors["timeout"] / dur,  # timeout_in_backlog is a part of it
        # parts of it too, by phase (None in reports from before they were counted)
        "rate_timeouts_connecting": _per(errors.get("timeout_connecting"), dur),
        "rate_timeouts_reading": _per(errors.get("timeout_reading"), dur),
        "rate_unsent": s["unsent"] / dur,
        "p50_ms": li["p50_ms"], "p99_ms": li["p99_ms"],
        "p50_sent_ms": ls["p50_ms"], "p99_sent_ms": ls["p99_ms"],
        "p99_2xx_ms": l2i.get("p99_ms"), "p99_2xx_sent_ms": l2s.get("p99_ms"),
        "p99_503_sent_ms": l503s.get("p99_ms"),
        "limited": report["generator"]["limited"],
        "gen_cpu": report["generator"]["cpu_share"],
    }
