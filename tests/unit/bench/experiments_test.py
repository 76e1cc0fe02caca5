#!/usr/bin/python3
"""Tests of bench/experiments' pure parts: the capacity ramp (against a synthetic server), the
sustained bound, the step's recovery time, the /metrics parser, and the loadgen report's row.
Usage: experiments_test.py /path/to/bench/experiments"""

import sys
import types
import unittest

sys.path.insert(0, sys.argv.pop(1) if len(sys.argv) > 1 else "bench/experiments")

import loadgen  # noqa: E402
import run  # noqa: E402


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


if __name__ == "__main__":
    unittest.main(verbosity=1)
