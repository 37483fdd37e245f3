# The README's commands. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test lint deps bench run sandbox build

deps:
	@bash scripts/deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: deps lint
	$(CARGO) test --workspace --no-fail-fast

bench: deps
	$(CARGO) build --release -p bai-sandbox -p bai-cli -p bai-bench
	bash bench/run.sh

# The sandbox server on its own: prints endpoints, a demo user and keys, and demo sessions.
sandbox: deps
	$(CARGO) run -p bai-sandbox -- --sessions 3

run: sandbox
