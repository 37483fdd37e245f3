#!/usr/bin/env bash
# The desktop app's end-to-end suite: the real app driven through WebDriver
# (tauri-driver + WebKitWebDriver) under Xvfb and a private D-Bus session, against the
# sandbox server started in-process by the tests (src-tauri/tests/webdriver.rs).
#
#   scripts/test-desktop.sh [TEST-FILTER...]     e.g. scripts/test-desktop.sh a2_wrong_password
#
# It installs tauri-driver when missing, builds the UI (ui/dist) and the app, and leaves no
# process behind. The app gets a fresh BAI_CONFIG_DIR and BAI_SECRET_STORE=file, so the real
# user configuration and keyring are never touched. Screenshots: target/screenshots/*.png.
#
# Environment:
#   BAI_DESKTOP_PROFILE=debug|release   which build to test (default debug; release adds
#                                       tauri/custom-protocol, like a shipped build)
#   BAI_SKIP_UI_BUILD=1                 use ui/dist as it is
#   BAI_DEMO_SANDBOX_JSON, BAI_STARTUP_RUNS   passed through (scripts/measure-startup.sh)
#   BAI_DESKTOP_INSTALLED=PATH          test that binary (an installed app, scripts/test-dist.sh)
#                                       instead of building one
#   BAI_DESKTOP_SUITE=NAME              the test target: webdriver (default) or installed
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [ "${1:-}" = "--inner" ]; then
  # Inside xvfb-run + dbus-run-session: start tauri-driver, run the suite, stop the driver.
  shift
  suite="${BAI_DESKTOP_SUITE:-webdriver}"
  log="$BAI_E2E_OUT/tauri-driver.log"
  td=""
  # tauri-driver stops its WebKitWebDriver on SIGTERM, but not when it dies on its own: stop
  # the driver's children first (by parent PID), then the driver.
  stop_driver() {
    [ -n "$td" ] || return 0
    pkill -TERM -P "$td" 2>/dev/null || true
    kill "$td" 2>/dev/null || true
    wait "$td" 2>/dev/null || true
    td=""
  }
  trap stop_driver EXIT
  # Free ports picked up front; another process may grab one in between, so retry.
  for attempt in 1 2 3; do
    read -r port native_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
    tauri-driver --port "$port" --native-port "$native_port" \
      --native-driver "$(command -v WebKitWebDriver)" >"$log" 2>&1 &
    td=$!
    up=""
    for _ in $(seq 100); do
      if curl -fsS "http://127.0.0.1:$port/status" >/dev/null 2>&1; then up=1; break; fi
      kill -0 "$td" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$up" ] && break
    stop_driver
    echo "test-desktop: tauri-driver did not start (attempt $attempt):" >&2; cat "$log" >&2
  done
  [ -n "$td" ] || exit 1
  export BAI_WEBDRIVER="http://127.0.0.1:$port"
  rc=0
  cargo test -q -p bai-desktop --features e2e-commands --test "$suite" -- --test-threads=1 --nocapture "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "--- tauri-driver log (last 40 lines) ---" >&2
    tail -n 40 "$log" >&2 || true
  fi
  exit "$rc"
fi

# 1. Tools.
if ! command -v tauri-driver >/dev/null; then
  echo "test-desktop: installing tauri-driver (cargo install, ~30 s)" >&2
  cargo install tauri-driver --locked --version '^2' --quiet
fi
missing=()
for t in xvfb-run xauth dbus-run-session WebKitWebDriver curl python3; do
  command -v "$t" >/dev/null || missing+=("$t")
done
if ((${#missing[@]})); then
  echo "test-desktop: missing ${missing[*]}; install the Debian packages:" >&2
  echo "  apt-get install xvfb xauth webkit2gtk-driver dbus-daemon curl libwebkit2gtk-4.1-dev libgtk-3-dev" >&2
  exit 1
fi

# 2. The UI. `npm ci` only when node_modules is missing or older than the lock file, so a
# colleague's running dev server or test watcher keeps its node_modules.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bai-desktop-e2e.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if [ "${BAI_SKIP_UI_BUILD:-}" != 1 ]; then
  if [ -f ui/package.json ]; then
    if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
      npm --prefix ui ci --no-audit --no-fund --loglevel=error
    fi
    npm --prefix ui run build --silent >/dev/null
  elif [ ! -f ui/dist/index.html ]; then
    # No UI yet: a placeholder page, outside ui/, through the config override.
    mkdir -p "$tmp/dist"
    echo '<!doctype html><title>bai</title><p id="placeholder">bai (the UI is not built yet)</p>' >"$tmp/dist/index.html"
    export TAURI_CONFIG="{\"build\":{\"frontendDist\":\"$tmp/dist\"}}"
  fi
fi

# 3. The app and the test binary.
profile="${BAI_DESKTOP_PROFILE:-debug}"
export BAI_DESKTOP_SUITE="${BAI_DESKTOP_SUITE:-webdriver}"
if [ -n "${BAI_DESKTOP_INSTALLED:-}" ]; then
  : # an installed app: nothing to build
elif [ "$profile" = release ]; then
  cargo build -q --release -p bai-desktop --features tauri/custom-protocol,e2e-commands
else
  cargo build -q -p bai-desktop --features e2e-commands
fi
# The test driver itself is always a debug build; only the app under test changes. The
# e2e-commands feature (save_key_to for the web view) is in both, so that building the test
# does not rebuild the app without it.
cargo test -q -p bai-desktop --features e2e-commands --test "$BAI_DESKTOP_SUITE" --no-run
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export BAI_DESKTOP_BIN="${BAI_DESKTOP_INSTALLED:-$target_dir/$profile/bai-desktop}"
[ -x "$BAI_DESKTOP_BIN" ] || { echo "test-desktop: $BAI_DESKTOP_BIN was not built" >&2; exit 1; }

# 4. Hermetic app environment; screenshots under target/.
export BAI_CONFIG_DIR="$tmp/config"
export BAI_SECRET_STORE=file
# Test builds append the URLs they would open in a browser here (src-tauri commands/apps.rs).
export BAI_TEST_OPENER_LOG="$tmp/opener.log"
export BAI_SCREENSHOT_DIR="${BAI_SCREENSHOT_DIR:-$target_dir/screenshots}"
export BAI_E2E_OUT="$tmp"
export XDG_CONFIG_HOME="$tmp/xdg-config" XDG_DATA_HOME="$tmp/xdg-data" XDG_CACHE_HOME="$tmp/xdg-cache"
# A home of its own too: the autostart plugin writes ~/.config/autostart whatever XDG says, and
# ssh reads ~/.ssh. Cargo and rustup keep theirs.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export HOME="$tmp/home"
mkdir -p "$BAI_CONFIG_DIR" "$BAI_SCREENSHOT_DIR" "$HOME"

start=$(date +%s)
rc=0
xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- "$0" --inner "$@" || rc=$?
echo "test-desktop: WebDriver suite finished in $(($(date +%s) - start)) s (rc=$rc); screenshots in $BAI_SCREENSHOT_DIR" >&2
exit "$rc"
