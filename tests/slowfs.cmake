# Tests of bench/slowfs (issue 13).
