# The README's commands. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm

.PHONY: test lint deps bench run sandbox test-rust test-ui test-desktop ui

deps:
	@bash scripts/deps.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Everything: lints, the Rust crates (real sshd, official Python client), the web UI (Vitest,
# Playwright in headless Chromium) and the real desktop app through WebDriver under Xvfb.
test: deps lint test-rust test-ui test-desktop

test-rust: deps
	$(CARGO) test --workspace --exclude bai-desktop --no-fail-fast

ui/node_modules/.package-lock.json: ui/package-lock.json
	$(NPM) --prefix ui ci --no-audit --no-fund --loglevel=error

ui: ui/node_modules/.package-lock.json
	$(NPM) --prefix ui run build --silent

test-ui: deps ui/node_modules/.package-lock.json
	$(NPM) --prefix ui run check
	$(NPM) --prefix ui test
	$(NPM) --prefix ui run test:e2e

test-desktop: deps ui
	$(CARGO) test -p bai-desktop --lib --bins
	BAI_SKIP_UI_BUILD=1 bash scripts/test-desktop.sh

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
