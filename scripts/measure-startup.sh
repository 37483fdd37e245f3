#!/usr/bin/env bash
# Cold start of the release app: the time from launching it to a rendered session list,
# measured through WebDriver (src-tauri/tests/webdriver.rs, a5_cold_start_to_session_list).
# The app logs in to a demo sandbox by itself (BAI_DEMO_SANDBOX_JSON), as with `make run`.
#
#   scripts/measure-startup.sh [RUNS]     (default 5; prints COLD_START_MS median=… min=… max=…)
#
# BAI_DESKTOP_PROFILE=debug measures the debug build instead (no release build needed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export BAI_STARTUP_RUNS="${1:-5}"
export BAI_DESKTOP_PROFILE="${BAI_DESKTOP_PROFILE:-release}"

cargo build -q -p bai-sandbox
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bai-startup.XXXXXX")"
sb=""
cleanup() {
  if [ -n "$sb" ]; then kill "$sb" 2>/dev/null || true; wait "$sb" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
"$target_dir/debug/bai-sandbox" --json --sessions 3 --port 0 >"$tmp/sandbox.out" 2>"$tmp/sandbox.log" &
sb=$!
for _ in $(seq 300); do
  [ -s "$tmp/sandbox.out" ] && head -n1 "$tmp/sandbox.out" | grep -q '}$' && break
  kill -0 "$sb" 2>/dev/null || { echo "measure-startup: bai-sandbox failed:" >&2; cat "$tmp/sandbox.log" >&2; exit 1; }
  sleep 0.1
done
head -n1 "$tmp/sandbox.out" >"$tmp/sandbox.json"
export BAI_DEMO_SANDBOX_JSON="$tmp/sandbox.json"
bash scripts/test-desktop.sh a5_cold_start_to_session_list 2>&1 | tee "$tmp/run.log" | grep -E "COLD_START_MS|cold start #|test result|FAILED|panicked" || true
grep -q "COLD_START_MS" "$tmp/run.log" || { echo "measure-startup: no figure; the log:" >&2; cat "$tmp/run.log" >&2; exit 1; }
