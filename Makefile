# The two commands operators and CI use. Everything else is plain CMake presets.
#   make run   install missing Debian packages, build release, serve the embedded sample site
#   make test  install, build release + ASan/UBSan + TSan, run every test suite, then each
#              fuzzer for a short run (the fuzz preset: clang, libFuzzer)
.PHONY: run test build bench bench-controllers experiments clean

ARGS ?= --listen 127.0.0.1:8080

build:
	scripts/bootstrap.sh build
	cmake --preset release
	cmake --build --preset release

run: build
	./build/release/weir $(ARGS)

test:
	scripts/bootstrap.sh test
	cmake --preset release && cmake --build --preset release && ctest --preset release
	cmake --preset debug && cmake --build --preset debug && ctest --preset debug
	cmake --preset tsan && cmake --build --preset tsan && ctest --preset tsan
	cmake --preset fuzz && cmake --build --preset fuzz && ctest --preset fuzz

bench: build
	scripts/bootstrap.sh bench
	bench/compare.sh

# controllers on against static topologies; e.g. make bench-controllers BENCH_ARGS="--rounds 3"
bench-controllers: build
	scripts/bootstrap.sh bench
	bench/controllers.sh $(BENCH_ARGS)

# the overload experiments (bench/README.md); e.g. make experiments EXP_ARGS="sweep --servers weir"
experiments: build
	scripts/bootstrap.sh bench
	/usr/bin/python3 bench/experiments/run.py $(EXP_ARGS)

clean:
	rm -rf build
