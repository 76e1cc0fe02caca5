#!/usr/bin/python3
"""Tests of bench/experiments' pure parts: the capacity ramp (against a synthetic server), the
sustained bound, the step's recovery time, the /metrics parser, the loadgen report's row, and
the overload experiment's nstat parser and table, and watch.py's parsers.
Usage: experiments_test.py /path/to/bench/experiments"""

import sys
import types
import unittest

sys.path.insert(0, sys.argv.pop(1) if len(sys.argv) > 1 else "bench/experiments")

import loadgen  # noqa: E402
import run  # noqa: E402
import watch  # noqa: E402


def report(rate, goodput, p99_ms, duration=3.0, limited=False, status_503=0):
    """A loadgen JSON report with the fields summary_row reads."""
    lat = {"p50_ms": p99_ms / 4, "p99_ms": p99_ms}
    return {
        "config": {"rate": rate, "duration_s": duration},
        "summary": {"sent": rate * duration, "goodput_rps": goodput, "unsent": 0,
                    "status": {"2xx": goodput * duration, "503": status_503, "other": 0},
                    "errors": {"connect": 0, "read": 0, "timeout": 0, "timeout_in_backlog": 0},
                    "latency_intended": lat, "latency_sent": lat},
        "generator": {"limited": limited, "cpu_share": 0.2},
    }


class FakeBench:
    """Loads a synthetic server: it delivers min(rate, capacity); p99 is flat below the
    capacity and large past it; `spikes` lists rates whose first try has one p99 spike."""

    def __init__(self, capacity, ramp_start=1000, spikes=(), gen_limit=None):
        self.args = types.SimpleNamespace(ramp_start=ramp_start)
        self.capacity, self.spikes, self.gen_limit = capacity, set(spikes), gen_limit
        self.calls = []

    def load(self, srv, rate, workload, model, duration=None, warmup=None, tag=None, **kw):
        self.calls.append((rate, tag))
        if self.gen_limit is not None and rate > self.gen_limit:
            return report(rate, rate, 5.0, limited=True)
        if rate in self.spikes:
            self.spikes.discard(rate)
            return report(rate, rate, 500.0)
        if rate <= self.capacity:
            return report(rate, rate, 5.0)
        return report(rate, self.capacity, 1500.0)


class CapacityTest(unittest.TestCase):
    def ramp(self, bench):
        cap, steps, limited = run.capacity(bench, None, "c0", "pool", "t")
        return cap, steps, limited

    def test_finds_the_knee_within_the_bisection(self):
        for true_cap in (1100, 4300, 6000, 25000):
            cap, steps, limited = self.ramp(FakeBench(true_cap))
            self.assertFalse(limited)
            self.assertLessEqual(cap, true_cap, true_cap)
            # x1.25 steps bisected twice: within 1.25^(1/4) of the truth
            self.assertGreater(cap, true_cap / 1.25 ** 0.25 - 1, true_cap)

    def test_one_spike_is_retried_not_taken_as_the_limit(self):
        bench = FakeBench(6000, spikes=[1953.125])
        cap, _, _ = self.ramp(bench)
        self.assertGreater(cap, 5000)
        self.assertIn((1953.125, "t-ramp-1953-again"), bench.calls)

    def test_no_sustained_rate_is_zero(self):
        cap, _, limited = self.ramp(FakeBench(500))
        self.assertEqual(cap, 0.0)
        self.assertFalse(limited)

    def test_generator_limit_stops_the_ramp_and_says_so(self):
        cap, _, limited = self.ramp(FakeBench(10 ** 6, gen_limit=3000))
        self.assertTrue(limited)
        self.assertGreater(cap, 3000)


class SustainedTest(unittest.TestCase):
    def test_goodput_and_p99_bounds(self):
        row = loadgen.summary_row(report(1000, 980, 20.0))
        self.assertTrue(run.sustained(row, 1000))
        row = loadgen.summary_row(report(1000, 960, 20.0))  # 96 % delivered
        self.assertFalse(run.sustained(row, 1000))
        row = loadgen.summary_row(report(1000, 1000, run.SUSTAINED_P99_MS + 1))
        self.assertFalse(run.sustained(row, 1000))


class RecoveryTest(unittest.TestCase):
    @staticmethod
    def series(rows):
        return [{"second": i, "2xx": g, "p99_ms": p} for i, (g, p) in enumerate(rows)]

    def test_first_of_three_good_seconds_after_the_step(self):
        # 2 s before the step ends, then 3 bad seconds, then good ones
        rows = [(100, 5)] * 2 + [(100, 900), (40, 2000), (100, 50)] + [(100, 6)] * 5
        self.assertEqual(run.recovery_seconds(self.series(rows), 2, 5.0, 100), 3)

    def test_a_good_second_between_bad_ones_is_not_recovery(self):
        rows = [(100, 900), (100, 6), (100, 900), (100, 6), (100, 6), (100, 6)]
        self.assertEqual(run.recovery_seconds(self.series(rows), 0, 5.0, 100), 3)

    def test_low_goodput_is_not_recovery(self):
        rows = [(90, 6)] * 10  # 90 % of the rate, under the 97 % bound
        self.assertIsNone(run.recovery_seconds(self.series(rows), 0, 5.0, 100))

    def test_immediate_recovery_is_zero(self):
        self.assertEqual(run.recovery_seconds(self.series([(100, 6)] * 4), 0, 5.0, 100), 0)


class StepSlotsTest(unittest.TestCase):
    """The step's 100 ms series: how fast the 2xx p99 settles, and when refusals end."""

    @staticmethod
    def slots(rows):
        return [{"2xx": g, "503": r, "p99_2xx_sent_ms": p, "p99_2xx_ms": p, "p99_ms": p,
                 "sent": g + r, "other": 0, "errors": 0, "unsent": 0} for g, r, p in rows]

    def test_settles_after_the_last_slot_over_the_bound(self):
        # the step is slots 2..9 (0.2 s to 1.0 s); slots 2 and 3 over, 4 under, 5 over again
        rows = [(10, 0, 5)] * 2 + [(10, 5, 300), (10, 5, 200), (10, 5, 50), (10, 5, 150)] + \
            [(10, 5, 40)] * 4 + [(10, 0, 5)] * 3
        self.assertEqual(run.settle_ms(self.slots(rows), 100, 0.2, 1.0, 100), 400)

    def test_a_slot_without_2xx_has_not_settled(self):
        rows = [(10, 0, 5)] * 2 + [(0, 20, 0)] + [(10, 5, 40)] * 7
        self.assertEqual(run.settle_ms(self.slots(rows), 100, 0.2, 1.0, 100), 100)

    def test_never_settling_is_none_and_always_under_is_zero(self):
        over = [(10, 0, 500)] * 10
        self.assertIsNone(run.settle_ms(self.slots(over), 100, 0.2, 1.0, 100))
        under = [(10, 0, 50)] * 10
        self.assertEqual(run.settle_ms(self.slots(under), 100, 0.2, 1.0, 100), 0)

    def test_readmitted_after_the_last_refusal(self):
        rows = [(10, 5, 40)] * 5 + [(10, 2, 40), (10, 0, 5), (10, 1, 5)] + [(10, 0, 5)] * 4
        self.assertEqual(run.readmit_ms(self.slots(rows), 100, 0.5), 300)
        self.assertEqual(run.readmit_ms(self.slots([(10, 0, 5)] * 4), 100, 0.1), 0)

    def test_whole_seconds_sum_the_counts_and_take_the_worst_p99(self):
        rows = [(10, 1, 5)] * 9 + [(10, 1, 70)] + [(3, 0, 8)] * 4
        secs = run.per_second(self.slots(rows), 100)
        self.assertEqual([s["second"] for s in secs], [0, 1])
        self.assertEqual((secs[0]["2xx"], secs[0]["503"], secs[0]["p99_ms"]), (100, 10, 70))
        self.assertEqual((secs[1]["2xx"], secs[1]["p99_ms"]), (12, 8))


METRICS = """# HELP weir_stage_threads Threads
# TYPE weir_stage_threads gauge
weir_stage_threads{stage="accept"} 1
weir_stage_threads{stage="read_parse"} 1
weir_stage_threads{stage="disk_io"} 3
weir_stage_queue_depth{stage="disk_io"} 17
weir_stage_group_info{stage="accept",group="accept+read_parse"} 1
weir_stage_group_info{stage="read_parse",group="accept+read_parse"} 1
weir_stage_group_info{stage="disk_io",group="disk_io"} 1
weir_stage_rejected_total{stage="disk_io"} 4
weir_stage_rejected_total{stage="send"} 2
weir_connections_open 12
"""


class ParseMetricsTest(unittest.TestCase):
    def test_threads_depth_groups_and_rejections(self):
        m = run.parse_metrics(METRICS)
        self.assertEqual(m["threads"], {"accept": 1.0, "read_parse": 1.0, "disk_io": 3.0})
        self.assertEqual(m["depth"], {"disk_io": 17.0})
        self.assertEqual(m["groups"], 2)
        self.assertEqual(m["topology"], "accept+read_parse/disk_io")
        self.assertEqual(m["rejected"], 6.0)

    def test_empty_text(self):
        m = run.parse_metrics("")
        self.assertEqual((m["groups"], m["topology"], m["rejected"]), (0, "", 0.0))


class SummaryRowTest(unittest.TestCase):
    def test_rates_are_per_second_of_the_window(self):
        r = report(2000, 1500, 80.0, duration=4.0, status_503=400)
        row = loadgen.summary_row(r)
        self.assertEqual(row["offered_rps"], 2000)
        self.assertEqual(row["sent_rps"], 2000)
        self.assertEqual(row["goodput_rps"], 1500)
        self.assertEqual(row["rate_503"], 100)
        self.assertEqual(row["p99_ms"], 80.0)

    def test_the_2xx_and_503_latencies_apart(self):
        r = report(2000, 1500, 80.0)
        r["summary"]["latency_2xx_intended"] = {"p50_ms": 20.0, "p99_ms": 90.0}
        r["summary"]["latency_2xx_sent"] = {"p50_ms": 10.0, "p99_ms": 60.0}
        r["summary"]["latency_503_sent"] = {"p50_ms": 0.2, "p99_ms": 0.9}
        row = loadgen.summary_row(r)
        self.assertEqual((row["p99_2xx_ms"], row["p99_2xx_sent_ms"], row["p99_503_sent_ms"]),
                         (90.0, 60.0, 0.9))
        # a report from before they were split
        row = loadgen.summary_row(report(2000, 1500, 80.0))
        self.assertIsNone(row["p99_2xx_sent_ms"])

    def test_timeouts_by_phase(self):
        r = report(2000, 1500, 80.0, duration=4.0)
        r["summary"]["errors"].update(timeout=600, timeout_connecting=400, timeout_reading=160)
        row = loadgen.summary_row(r)
        self.assertEqual((row["rate_timeouts"], row["rate_timeouts_connecting"],
                          row["rate_timeouts_reading"]), (150, 100, 40))
        # a report from before they were counted
        row = loadgen.summary_row(report(2000, 1500, 80.0))
        self.assertIsNone(row["rate_timeouts_connecting"])


class OverloadTest(unittest.TestCase):
    NSTAT = """#kernel
IpInReceives                    1234               0.0
TcpPassiveOpens                 36015              0.0
TcpExtListenOverflows           191165             0.0
TcpExtSyncookiesSent            0                  0.0
"""

    def test_nstat_counters(self):
        self.assertEqual(run.nstat_counters(self.NSTAT),
                         {"IpInReceives": 1234, "TcpPassiveOpens": 36015,
                          "TcpExtListenOverflows": 191165, "TcpExtSyncookiesSent": 0})
        self.assertEqual(run.nstat_counters(""), {})

    def test_the_section_has_a_row_per_run_with_the_share_of_capacity(self):
        import report as rep
        row = loadgen.summary_row(report(7300, 1825, 2000.0, duration=10.0))
        limited = dict(row, limited=True)
        data = {"capacity_rps": 2433, "rate": 7300,
                "runs": [{"server": "weir", "round": 0, "connections": 19900, "row": row,
                          "kernel": {"TcpExtListenOverflows": 0, "TcpExtSyncookiesSent": 0}},
                         {"server": "nginx", "round": 0, "connections": 19900, "row": limited,
                          "kernel": {}}]}
        text = rep.overload_section(data)
        self.assertIn("3.0x weir's capacity of 2433/s", text)
        self.assertIn("| weir | 19900 | 0 | 1825 | 75% |", text)
        self.assertIn("| nginx | 19900 | 0 | 1825 (gen-limited) | 75% |", text)
        nginx = next(line for line in text.splitlines() if line.startswith("| nginx"))
        self.assertTrue(nginx.endswith("| - | - |"), nginx)  # no kernel counters: dashes


class WatchTest(unittest.TestCase):
    METRICS = "\n".join([
        "# HELP weir_syn_gate_share Share of new connections' SYNs",
        "weir_syn_gate_share 0.25",
        'weir_syn_gate_closes_total{reason="limit"} 3',
        'weir_syn_gate_closes_total{reason="queue"} 7',
        'weir_admission_limit{class="request"} 90',
        'weir_admission_limit{class="miss"} 10000',
        "weir_connections_open 12"])

    def test_gauges_takes_the_watched_series_with_their_labels(self):
        g = watch.gauges(self.METRICS)
        self.assertEqual(g["weir_syn_gate_share"], 0.25)
        self.assertEqual(g['weir_syn_gate_closes_total{reason="queue"}'], 7)
        self.assertEqual(g['weir_admission_limit{class="request"}'], 90)
        self.assertNotIn('weir_admission_limit{class="miss"}', g)
        self.assertEqual(watch.gauges(""), {})

    def test_accept_queue_is_the_listeners_recv_q(self):
        ss = "LISTEN 851    4096       127.0.0.1:45853      0.0.0.0:*\n"
        self.assertEqual(watch.accept_queue(ss), 851)
        self.assertIsNone(watch.accept_queue(""))
        self.assertIsNone(watch.accept_queue("ESTAB 0 0 127.0.0.1:1 127.0.0.1:2\n"))

    def test_percentiles_by_nearest_rank(self):
        got = watch.percentiles(list(range(1, 101)))
        self.assertEqual(got, {"p50": 50, "p90": 90, "p99": 99, "max": 100})
        self.assertEqual(watch.percentiles([7]), {"p50": 7, "p90": 7, "p99": 7, "max": 7})
        self.assertEqual(watch.percentiles([]), {})


if __name__ == "__main__":
    unittest.main(verbosity=1)
