# Tests of bench/loadgen (issue 13).
