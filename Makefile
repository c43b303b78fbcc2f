# Outpost — the README's two commands, and the developer targets.
#
#   make demo     install missing Debian packages, build, run the main job
#   make test     install missing Debian packages, build, run the whole test suite
#   make build | bench | asan | format-check | clean

SHELL := /bin/bash
JOBS  ?= $(shell nproc)
.DEFAULT_GOAL := build

.PHONY: demo test deps configure build bench asan format-check format clean

deps:
	@./tools/install-deps.sh

build/build.ninja: CMakeLists.txt CMakePresets.json | deps
	@cmake --preset dev >/dev/null

configure: build/build.ninja

build: deps configure
	@cmake --build build -j $(JOBS)

demo: build
	@./tools/demo.sh

test: build format-check
	@ctest --test-dir build --output-on-failure -j $(JOBS)

bench: build
	@./build/bin/outpost-bench w1

asan: deps
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

format-check: deps
	@./tools/format.sh --check

format:
	@./tools/format.sh

clean:
	@rm -rf build build-asan build-release
