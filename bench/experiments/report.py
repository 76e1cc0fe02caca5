"""Markdown tables and PNG plots from the experiments' JSON (bench/results/*.json)."""

import json
from pathlib import Path


def _pyplot():
    """matplotlib (python3-matplotlib, a bench dependency), only when there is a plot to draw."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt

COLORS = {"weir": "tab:red", "nginx": "tab:green", "lighttpd": "tab:blue", "h2o": "tab:purple",
          "nginx-aio": "tab:olive"}
TABLE_POINTS = (0.5, 1.0, 2.0, 4.0)


def _fmt(v, digits=0):
    return "-" if v is None else f"{v:.{digits}f}"


def sweep_tables(data):
    lines = []
    for workload in sorted({s["workload"] for s in data["series"]}):
        for model in sorted({s["model"] for s in data["series"]}):
            series = [s for s in data["series"] if s["workload"] == workload and s["model"] == model
                      and s.get("rows")]  # a capacity alone (run.py step's) has no rows
            if not series:
                continue
            lines += [f"**{workload}, {model} model** (goodput req/s · p99 ms from the intended send "
                      f"time · 503/s · errors+timeouts/s, at a share of each server's capacity)", "",
                      "| server | capacity req/s | " + " | ".join(f"{k:.0%}" for k in TABLE_POINTS)
                      + " |", "|---|---|" + "---|" * len(TABLE_POINTS)]
            for s in series:
                cells = []
                for k in TABLE_POINTS:
                    row = next((r for r in s["rows"] if abs(r["load"] - k) < 1e-9), None)
                    if row is None:
                        cells.append("-")
                        continue
                    bad = row["rate_errors"] + row["rate_timeouts"] + row["rate_unsent"]
                    cells.append(f"{row['goodput_rps']:.0f} · {row['p99_ms']:.1f} · "
                                 f"{row['rate_503']:.0f} · {bad:.0f}"
                                 + (" (gen-limited)" if row["limited"] else ""))
                cap = f"{s['capacity_rps']:.0f}" + (" (≥, generator-limited)"
                                                    if s["capacity_generator_limited"] else "")
                lines.append(f"| {s['server']} | {cap} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def sweep_plots(data, out):
    plt = _pyplot()
    written = []
    for workload in sorted({s["workload"] for s in data["series"]}):
        for model in sorted({s["model"] for s in data["series"]}):
            series = [s for s in data["series"] if s["workload"] == workload and s["model"] == model
                      and s.get("rows")]
            if not series:
                continue
            fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
            for s in series:
                x = [r["load"] * 100 for r in s["rows"]]
                c = COLORS.get(s["server"])
                label = f"{s['server']} (cap. {s['capacity_rps']:.0f}/s)"
                ax1.plot(x, [r["goodput_rps"] / max(1, s["capacity_rps"]) * 100 for r in s["rows"]],
                         "o-", color=c, label=label)
                # no response at all has no latency: a gap, not a point at 0
                ax2.plot(x, [r["p99_ms"] if r["p99_ms"] > 0 else float("nan") for r in s["rows"]],
                         "o-", color=c,
                         label=f"{s['server']} intended")
                ax2.plot(x, [r["p99_sent_ms"] if r["p99_sent_ms"] > 0 else float("nan")
                             for r in s["rows"]], "x--", color=c,
                         alpha=0.6, label=f"{s['server']} from write")
                ax3.plot(x, [r["rate_503"] / max(1, s["capacity_rps"]) * 100 for r in s["rows"]],
                         "o-", color=c, label=f"{s['server']} 503")
                ax3.plot(x, [(r["rate_errors"] + r["rate_timeouts"] + r["rate_unsent"])
                             / max(1, s["capacity_rps"]) * 100 for r in s["rows"]], "x--", color=c,
                         alpha=0.6, label=f"{s['server']} errors+timeouts")
            ax1.set(xlabel="offered load, % of capacity", ylabel="goodput, % of capacity",
                    title="goodput")
            ax2.set(xlabel="offered load, % of capacity", ylabel="p99 ms (log)", yscale="log",
                    title="p99 latency")
            ax3.set(xlabel="offered load, % of capacity", ylabel="% of capacity",
                    title="503s and failures")
            for ax in (ax1, ax2, ax3):
                ax.grid(alpha=0.3)
            ax1.legend(fontsize=7)
            ax2.legend(fontsize=6, ncol=2)
            ax3.legend(fontsize=6, ncol=2)
            fig.suptitle(f"Capacity sweep: {workload}, {model} model")
            fig.tight_layout()
            name = f"sweep-{workload}-{model}.png"
            fig.savefig(out / name, dpi=90)
            plt.close(fig)
            written.append(name)
    return written


def step_section(data, out):
    plt = _pyplot()
    target = data.get("target_ms", 100)
    lines = ["| server | model | capacity req/s | base p99 ms | goodput in the step req/s | "
             "503/s in the step | errors+timeouts in the step | p99 max ms | "
             f"2xx p99 (write) under {target:.0f} ms after | (intended) | "
             "all admitted again after | recovery s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    a, b = data["phases"][0][1], data["phases"][0][1] + data["phases"][1][1]

    def ms(key):  # "-": not measured (a run from before the figure existed)
        if key not in s:
            return "-"
        return "never" if s[key] is None else f"{s[key]} ms"
    for s in data["series"]:
        during = s["seconds"][a:b]
        n = max(1, len(during))
        lines.append(
            f"| {s['server']} | {s['model']} | {s['capacity_rps']:.0f} | {s['base_p99_ms']:.2f} | "
            f"{sum(x['2xx'] for x in during) / n:.0f} | {sum(x['503'] for x in during) / n:.0f} | "
            f"{sum(x['errors'] + x['unsent'] for x in during) / n:.0f} | "
            f"{max((x['p99_ms'] for x in s['seconds']), default=0):.0f} | "
            f"{ms('settle_ms')} | {ms('settle_intended_ms')} | {ms('readmit_ms')} | "
            f"{'never' if s['recovery_s'] is None else s['recovery_s']} |")
    written = []
    for model in sorted({s["model"] for s in data["series"]}):
        series = [s for s in data["series"] if s["model"] == model]
        weir = next((s for s in series if s["server"] == "weir" and s["weir_metrics"]), None)
        fig, axes = plt.subplots(4 if weir else 3, 1, figsize=(10, 11 if weir else 8.5),
                                 sharex=True)
        for s in series:
            c = COLORS.get(s["server"])
            t = [x["second"] for x in s["seconds"]]
            axes[0].plot(t, [x["2xx"] / max(1, s["capacity_rps"]) * 100 for x in s["seconds"]],
                         color=c, label=s["server"])
            if s.get("slots"):  # the 100 ms series: the 2xx p99 from the write
                slot_s = data.get("slot_ms", 100) / 1000
                axes[1].plot([i * slot_s for i in range(len(s["slots"]))],
                             [x["p99_2xx_sent_ms"] if x.get("p99_2xx_sent_ms", 0) > 0
                              else float("nan") for x in s["slots"]], color=c, lw=0.8,
                             label=s["server"])
            else:
                axes[1].plot(t, [x["p99_ms"] if x["p99_ms"] > 0 else float("nan")
                                 for x in s["seconds"]], color=c, label=s["server"])
            axes[2].plot(t, [(x["503"] + x["errors"] + x["unsent"]) / max(1, s["capacity_rps"])
                             * 100 for x in s["seconds"]], color=c, label=s["server"])
        for ax in axes[:3]:
            ax.axvspan(a, b, color="0.9")
            ax.grid(alpha=0.3)
        axes[0].set(ylabel="goodput, % of capacity", title=f"Step 50 % -> 300 % -> 50 %, c0, "
                                                          f"{model} model")
        axes[1].set(ylabel="2xx p99 ms, per 100 ms (log)", yscale="log")
        axes[1].axhline(target, color="0.5", ls=":", lw=0.8)
        axes[2].set(ylabel="503 + errors, % of cap.")
        axes[0].legend(fontsize=7)
        if weir:
            ax = axes[3]
            samples = weir["weir_metrics"]
            t0 = (samples[0]["t"] if samples else 0) + 5  # the scrape began with the warm-up
            stages = sorted({k for x in samples for k in x["threads"]})
            for st in stages:
                ax.step([x["t"] - t0 for x in samples], [x["threads"].get(st, 0) for x in samples],
                        where="post", label=f"{st} threads")
            ax.step([x["t"] - t0 for x in samples], [x["groups"] for x in samples], "k--",
                    where="post", label="groups")
            ax.axvspan(a, b, color="0.9")
            ax.set(ylabel="weir: threads, groups", xlabel="seconds of the measured window")
            ax.legend(fontsize=6, ncol=3)
            ax.grid(alpha=0.3)
        else:
            axes[2].set(xlabel="seconds")
        fig.tight_layout()
        name = f"step-{model}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append(name)
    return "\n".join(lines) + "\n", written


def opt(v, digits=0):
    """A figure that older results do not have."""
    return "-" if v is None else f"{v:.{digits}f}"


def slowdisk_section(data):
    lines = [f"Disk: {data['queue']} operations at a time, {data['latency_ms']} ms each; hits "
             f"{data['hot_rate']}/s on 20 hot files, misses {data['cold_rate']:.0f}/s on distinct "
             f"cold files. The disk ops are what slowfs served over the server's whole run "
             f"(stat / read).", "",
             "| server | hits alone p50 / p99 ms | hits with misses p50 / p99 ms | hit goodput | "
             "hits 503 + timed out /s | misses goodput | misses 503 /s | misses timed out /s | "
             "misses p99 ms | misses 2xx p99 ms (write) | misses 503 p99 ms (write) | "
             "disk ops stat / read | disk max waiting |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in data["servers"]:
        a, m, c, d = s["hits_alone"], s["hits_with_misses"], s["misses"], s["disk"]

        def lat(r):  # no response at all: no latency to show
            return f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" if r["goodput_rps"] > 0 else "none answered"
        lines.append(f"| {s['server']} | {lat(a)} | "
                     f"{lat(m)} | {m['goodput_rps']:.0f} | "
                     f"{m['rate_503'] + m['rate_timeouts']:.1f} | "
                     f"{c['goodput_rps']:.0f} | {c['rate_503']:.0f} | {c['rate_timeouts']:.0f} | "
                     f"{c['p99_ms']:.0f} | {opt(c.get('p99_2xx_sent_ms'))} | "
                     f"{opt(c.get('p99_503_sent_ms'), 2)} | "
                     f"{d.get('served_stat', '-')} / {d.get('served_read', '-')} | "
                     f"{d.get('max_waiting', '-')} |")
    return "\n".join(lines) + "\n"


def c10k_section(data):
    lines = [f"{data['idle']} idle keep-alive connections; steady c0 load at "
             f"{data['load_share']:.0%} of each server's capacity.", "",
             "| server | idle opened | still open after | RSS per idle KiB | kernel TCP per idle "
             "KiB | p99 ms without | p99 ms with |", "|---|---|---|---|---|---|---|"]
    for s in data["servers"]:
        lines.append(f"| {s['server']} | {s['opened']} | {s['alive_after']} | "
                     f"{_fmt(s['rss_per_idle_kib'], 2)} | {_fmt(s['kernel_tcp_per_idle_kib'], 2)} | "
                     f"{s['before']['p99_ms']:.2f} | {s['during']['p99_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def refusal_section(data):
    lines = [f"weir, uncapped, {data['rate']} req/s open loop:", "",
             "| case | responses | 2xx | 503 | read/connect errors | CPU us per response |",
             "|---|---|---|---|---|---|"]
    for c in data["cases"]:
        e = c["errors"]
        lines.append(f"| {c['case']} | {c['responses']} | {c['status']['2xx']} | "
                     f"{c['status']['503']} | {e['read'] + e['connect']} | "
                     f"{_fmt(c['cpu_us_per_response'], 2)} |")
    return "\n".join(lines) + "\n"


def cpu_section(data):
    how = ("on a new connection each (users model)" if data.get("model") == "users"
           else "on 64 keep-alive connections")
    lines = [f"Server CPU per 500 B response at {data['rate']:.0f}/s open loop, {how}, uncapped, "
             f"CPU 0; {data['rounds']} interleaved rounds, the median:", "",
             "| variant | us per response, each round | median | of the floor |",
             "|---|---|---|---|"]
    for v in data["variants"]:
        each = ", ".join(_fmt(r["cpu_us_per_response"], 1) for r in v["runs"])
        lines.append(f"| {v['variant']} | {each} | {_fmt(v['cpu_us_per_response'], 2)} | "
                     f"{_fmt(v['vs_floor'], 2)}x |")
    return "\n".join(lines) + "\n"


def capacity_section(data):
    lines = [f"Capacity (the sweep's ramp: the highest rate with 99 % goodput and p99 within "
             f"bounds) at a CPU cap of {data['cap']} of CPU 0, {data['rounds']} interleaved "
             f"rounds; the median, and weir's against it:", "",
             "| workload, model | server | capacity, each round | median | weir / it |",
             "|---|---|---|---|---|"]
    weir = {(s["workload"], s["model"]): s["capacity_rps"] for s in data["series"]
            if s["server"] == "weir"}
    for s in data["series"]:
        each = ", ".join(f"{r['capacity_rps']:.0f}" + (" (gen-limited)" if r["generator_limited"]
                                                       else "") for r in s["runs"])
        w = weir.get((s["workload"], s["model"]))
        ratio = f"{w / s['capacity_rps']:.2f}x" if w and s["capacity_rps"] else "-"
        lines.append(f"| {s['workload']}, {s['model']} | {s['server']} | {each} | "
                     f"{s['capacity_rps']:.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


def overload_section(data):
    cap = data["capacity_rps"]
    lines = [f"c0, users model, {data['rate']:.0f}/s offered to each server ({data['rate'] / cap:.1f}x "
             f"weir's capacity of {cap:.0f}/s); the kernel's counters over each run; "
             f"gen-limited: the generator fell behind.", "",
             "| server | connections | round | goodput | of capacity | 2xx p50 / p99 ms (write) | "
             "2xx p99 ms (intended) | 503 /s | timeouts /s: connecting / after the write | "
             "unsent /s | listen overflows | SYN cookies sent |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(data["runs"], key=lambda r: (r.get("connections", 0), r["server"], r["round"])):
        w, k = r["row"], r["kernel"]
        lim = " (gen-limited)" if w.get("limited") else ""
        lines.append(f"| {r['server']} | {r.get('connections', '-')} | {r['round']} | "
                     f"{w['goodput_rps']:.0f}{lim} | "
                     f"{w['goodput_rps'] / cap:.0%} | {w['p50_sent_ms']:.0f} / "
                     f"{opt(w.get('p99_2xx_sent_ms'))} | {opt(w.get('p99_2xx_ms'))} | "
                     f"{w['rate_503']:.0f} | {opt(w.get('rate_timeouts_connecting'))} / "
                     f"{opt(w.get('rate_timeouts_reading'))} | {w['rate_unsent']:.0f} | "
                     f"{k.get('TcpExtListenOverflows', '-')} | {k.get('TcpExtSyncookiesSent', '-')} |")
    return "\n".join(lines) + "\n"


def write_all(out):
    out = Path(out)
    md = []
    f = out / "sweep.json"
    if f.is_file():
        data = json.loads(f.read_text())
        md += ["## Capacity sweep", "", sweep_tables(data)]
        md += [f"![{n}]({n})" for n in sweep_plots(data, out)] + [""]
    f = out / "step.json"
    if f.is_file():
        text, pngs = step_section(json.loads(f.read_text()), out)
        md += ["## Step", "", text] + [f"![{n}]({n})" for n in pngs] + [""]
    for name, title, fn in (("slowdisk", "Slow disk", slowdisk_section),
                            ("c10k", "C10K", c10k_section),
                            ("overload", "Overload: users at 3x", overload_section),
                            ("refusal", "The cost of a refusal", refusal_section),
                            ("cpu", "CPU per request against the floor", cpu_section),
                            ("cpu-users", "CPU per short connection against the floor",
                             cpu_section),
                            ("capacity", "Capacity, interleaved rounds", capacity_section)):
        f = out / f"{name}.json"
        if f.is_file():
            md += [f"## {title}", "", fn(json.loads(f.read_text()))]
    (out / "results.md").write_text("\n".join(md) + "\n")
