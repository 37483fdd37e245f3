#!/usr/bin/env bash
# `make bench`: runs crates/bai-bench with the release binaries and records the table.
set -euo pipefail
cd "$(dirname "$0")/.."
# 1000 held connections need ~4 descriptors each across proxy, sandbox and load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p target/bench
./target/release/bai-bench --out target/bench/table.md "$@"
echo
echo "table written to target/bench/table.md (copy it into docs/benchmarks.md with the date)"
