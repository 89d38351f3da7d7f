# Livecast: the two commands.
#   make run    install what is missing, build, start the all-in-one platform on embedded defaults
#   make test   install what is missing, start the real test servers, run every test, stop them
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test bench chaos web build deps test-deps lint fmt

run: deps web
	cargo build --bin livecast
	./target/debug/livecast

# The viewer app, embedded into the livecast binary at build time.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

test: test-deps
	scripts/test.sh

# Long-form benchmarks against peers on this machine, each recorded into bench/results/; then
# bench/RESULTS.md is rewritten from them (bench/all.sh).
bench: deps
	bench/all.sh

# The fault scenarios against the real engines, with the long-form worker chaos run; when every
# scenario passed, their figures replace bench/results/faults.rows and bench/RESULTS.md is rewritten.
chaos: test-deps
	scripts/chaos.sh

build: deps
	cargo build --workspace --all-targets

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh test

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
