#!/usr/bin/env bash
# `make run`: builds the UI and the desktop app and starts it. With no server configured (no
# profile with an endpoint in bai's config dir), it first starts the demo sandbox
# (`bai-sandbox --json --sessions 3`) and hands it to the app through BAI_DEMO_SANDBOX_JSON:
# the app then logs in to the demo user by itself and shows the session list at once. The
# sandbox is stopped when the app exits.
#
#   scripts/run-desktop.sh [APP-ARGS...]
#
# Environment: BAI_DEMO=1 forces the demo sandbox, BAI_DEMO=0 never starts it;
# BAI_SANDBOX_PORT (default 0 = any free port); BAI_DESKTOP_PROFILE=debug|release;
# BAI_CONFIG_DIR (bai's config dir, as for the CLI).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

no_display() {
  echo "bai-desktop needs a graphical display; on a headless machine use the \`bai\` CLI (bai login, bai ps, bai ssh SESSION)" >&2
  echo "hint: cargo run -p bai-cli -- --help   (or: make sandbox, then bai login --endpoint URL)" >&2
  exit 2
}
if [ "$(uname -s)" = Linux ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  no_display
fi

profile="${BAI_DESKTOP_PROFILE:-debug}"
flags=()
[ "$profile" = release ] && flags=(--release --features tauri/custom-protocol)

if [ -f ui/package.json ]; then
  [ -d ui/node_modules ] || npm --prefix ui ci --no-audit --no-fund --loglevel=error
  npm --prefix ui run build --silent >/dev/null
fi
cargo build -q -p bai-desktop "${flags[@]}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
app="$target_dir/$profile/bai-desktop"

# Is a server configured? (a profile with an endpoint in config.toml)
config_dir="${BAI_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/bai}"
demo="${BAI_DEMO:-auto}"
if [ "$demo" = auto ]; then
  if grep -qs '^endpoint *=' "$config_dir/config.toml"; then demo=0; else demo=1; fi
fi
if [ "$demo" != 1 ]; then
  exec "$app" "$@"
fi

cargo build -q -p bai-sandbox
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bai-run.XXXXXX")"
sb=""
cleanup() {
  if [ -n "$sb" ]; then kill "$sb" 2>/dev/null || true; wait "$sb" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$target_dir/debug/bai-sandbox" --json --sessions 3 --port "${BAI_SANDBOX_PORT:-0}" \
  >"$tmp/sandbox.out" 2>"$tmp/sandbox.log" &
sb=$!
for _ in $(seq 300); do
  [ -s "$tmp/sandbox.out" ] && head -n1 "$tmp/sandbox.out" | grep -q '}$' && break
  kill -0 "$sb" 2>/dev/null || { echo "run-desktop: bai-sandbox failed:" >&2; cat "$tmp/sandbox.log" >&2; exit 1; }
  sleep 0.1
done
head -n1 "$tmp/sandbox.out" >"$tmp/sandbox.json"
python3 - "$tmp/sandbox.json" <<'PY' >&2
import json, sys
d = json.load(open(sys.argv[1]))
print(f"run-desktop: demo sandbox at {d['webserver']} (API mode: {d['manager']}), user {d['email']} / {d['password']}")
print(f"run-desktop: sessions: {', '.join(s['name'] + ' ' + s['status'] for s in d['sessions'])}")
PY
rc=0
BAI_DEMO_SANDBOX_JSON="$tmp/sandbox.json" "$app" "$@" || rc=$?
exit "$rc"
