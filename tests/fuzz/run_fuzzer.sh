#!/bin/sh
# run_fuzzer.sh FUZZER SECONDS SEEDS WORK DICT: runs a libFuzzer binary for SECONDS from the seed
# corpus, writing what it finds under WORK (new inputs in WORK/corpus, a failing input as
# WORK/crash-*), and prints libFuzzer's final figures (executions, coverage).
set -eu
fuzzer=$1 seconds=$2 seeds=$3 work=$4 dict=$5
mkdir -p "$work/corpus"
echo "fuzz: $(basename "$fuzzer") for ${seconds}s from $seeds (new inputs: $work/corpus)"
if "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -dict="$dict" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/" "$work/corpus" "$seeds"; then
  exit 0
fi
echo "fuzz: $(basename "$fuzzer") found a failing input: $(ls "$work"/crash-* "$work"/timeout-* \
  "$work"/oom-* 2>/dev/null | head -1)" >&2
echo "fuzz: keep it as a regression case: cp it to $seeds/regression-<what>, fix, re-run" >&2
exit 1
