# The README's commands. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm

.PHONY: test lint deps deps-test bench run sandbox test-rust test-ui test-desktop ui fuzz dist test-dist test-dist-if-built

# Property tests (proptest) of every parser that faces the network: a fixed seed and a bounded
# number of cases in `make test` (the same cases every run); `make fuzz` runs many more, from
# another seed each time unless PROPTEST_RNG_SEED is given.
PROPTEST_SEED ?= 20261130
PROPTEST_TEST_CASES ?= 256
FUZZ_CASES ?= 20000

deps:
	@bash scripts/deps.sh

# What the tests need on top: the real Backend.AI stack (databases, a Python 3.13 venv).
deps-test:
	@bash scripts/deps.sh test

# Formatting, clippy, rustdoc (broken links and missing docs are errors), and no dependency a
# crate never uses (scripts/unused-deps.py).
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --exclude bai-desktop --quiet
	python3 scripts/unused-deps.py

# Everything: lints, the Rust crates (real sshd, official Python client), the web UI (Vitest,
# Playwright in headless Chromium) and the real desktop app through WebDriver under Xvfb.
test: deps lint test-rust test-ui test-desktop test-dist-if-built

test-rust: deps-test
	PROPTEST_RNG_SEED=$(PROPTEST_SEED) PROPTEST_CASES=$(PROPTEST_TEST_CASES) \
	  $(CARGO) test --workspace --exclude bai-desktop --no-fail-fast

# The property tests with many more cases (minutes): they live in the unit tests of bai-api
# (decoders, problem+json, session list, key stripping) and bai-tunnel (frames, pump, upgrade
# response, problem+json), and in bai-core's ssh_props (ssh_config, PPK, copied commands). A
# failure prints the seed and the minimal input.
fuzz: deps
	PROPTEST_CASES=$(FUZZ_CASES) PROPTEST_RNG_SEED=$${PROPTEST_RNG_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	  bash -c 'echo "fuzz: PROPTEST_RNG_SEED=$$PROPTEST_RNG_SEED, $$PROPTEST_CASES cases per property"; \
	  $(CARGO) test --release -p bai-problem -p bai-api -p bai-tunnel -p bai-core --lib --no-fail-fast && \
	  $(CARGO) test --release -p bai-core --test ssh_props --no-fail-fast'


ui/node_modules/.package-lock.json: ui/package-lock.json
	$(NPM) --prefix ui ci --no-audit --no-fund --loglevel=error

ui: ui/node_modules/.package-lock.json
	$(NPM) --prefix ui run build --silent

test-ui: deps ui/node_modules/.package-lock.json
	$(NPM) --prefix ui run check
	$(NPM) --prefix ui test
	$(NPM) --prefix ui run test:e2e

test-desktop: deps-test ui
	$(CARGO) test -p bai-desktop --lib --bins
	BAI_SKIP_UI_BUILD=1 bash scripts/test-desktop.sh
	BAI_SKIP_UI_BUILD=1 BAI_DESKTOP_SUITE=tray bash scripts/test-desktop.sh
	BAI_SKIP_UI_BUILD=1 BAI_DESKTOP_SUITE=remote BAI_REMOTE_MIB=64 bash scripts/test-desktop.sh

# Release packages in target/dist/: the .deb and .rpm (app + CLI), the CLI tarball, SHA256SUMS.
dist:
	@bash scripts/deps.sh dist
	bash scripts/dist.sh

# Installs what `make dist` built into throw-away roots and runs it: package metadata and
# dependencies, lintian, the installed CLI against the sandbox (login, ps, ssh), the installed
# app under Xvfb (session list, screenshot, cold start, memory). Needs `make dist` first.
test-dist:
	@bash scripts/deps.sh dist
	bash scripts/test-dist.sh

# In `make test`: the install test when `make dist` has built the packages (CI does not build
# them: a release build does not fit its time budget).
test-dist-if-built:
	@if [ -f "$${CARGO_TARGET_DIR:-target}/dist/SHA256SUMS" ]; then $(MAKE) --no-print-directory test-dist; \
	else echo "test-dist: skipped (no target/dist/: run make dist first)"; fi

bench: deps
	$(CARGO) build --release -p bai-sandbox -p bai-cli -p bai-bench
	bash bench/run.sh

# The desktop app. With no server configured it starts the sandbox with demo sessions and opens
# the app logged in to the demo user; without a display it says so and suggests the CLI.
run: deps
	bash scripts/run-desktop.sh

# The sandbox server on its own: prints endpoints, a demo user and keys, and demo sessions.
sandbox: deps
	$(CARGO) run -p bai-sandbox -- --sessions 3
