#!/usr/bin/env bash
# Installs what `make test`, `make bench` and `make run` need on a fresh Debian machine, quietly
# and idempotently: Debian packages (only the missing ones, one `apt-get update` at most), the OS
# account `work` that sandbox sessions log in as (as in production), sshd's privilege-separation
# directory, and a Python venv with the official Backend.AI client for the interop tests.
# `scripts/deps.sh dist` adds what `make test-dist` needs (lintian, rpm); `scripts/deps.sh test`
# adds the real Backend.AI stack of the real-manager tests (below).
set -euo pipefail
cd "$(dirname "$0")/.."

want=(
  openssh-server openssh-client openssh-sftp-server   # real sshd behind sandbox sessions; ssh/sftp/scp
  dropbear-bin                                        # `--sshd dropbear` (not `dropbear`: no service)
  rsync iperf3 socat netcat-openbsd                   # e2e clients and benchmark servers
  putty-tools                                         # puttygen: checks the exported .ppk
  keyutils dbus-daemon                                # headless keyring for credential tests
  python3-venv                                        # venv for the official Python client
  libdbus-1-dev pkg-config                            # keyring (Secret Service) at build time
  ca-certificates
  # The desktop app (Tauri v2 on WebKitGTK) and its tests: build libraries, a virtual display,
  # the WebDriver for WebKitGTK, a Secret Service for the keyring, Chromium for the UI suite.
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev libssl-dev libxdo-dev
  xvfb xauth webkit2gtk-driver imagemagick gnome-keyring libsecret-tools chromium curl
  xclip                                               # reads the X11 clipboard in the copy-button tests
  libayatana-appindicator3-1                          # the tray icon: Tauri loads it at run time
)
# `make test-dist` (scripts/deps.sh dist): the package checkers.
if [ "${1:-}" = dist ]; then
  # The bundler looks for the tray library (pkg-config) to name it among the dependencies.
  want+=(lintian rpm desktop-file-utils binutils x11-utils libayatana-appindicator3-dev)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(id -u)" -eq 0 ]; then
  # Sessions log in as `work`, as in production. '*' (not '!') keeps the account usable for
  # public-key logins with UsePAM=no.
  if ! getent passwd work >/dev/null; then
    useradd -m -s /bin/bash work
    usermod -p '*' work
  fi
  mkdir -p /run/sshd && chmod 0755 /run/sshd
fi

# The official Python client (backend.ai-client 23.9.10 is the newest that installs on 3.11;
# newer yarl breaks it), for the interop tests and the benchmark baseline.
venv=.venv
stamp="$venv/.bai-client-23.9.10"
if [ ! -f "$stamp" ]; then
  echo "deps: creating $venv with backend.ai-client==23.9.10"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'backend.ai-client==23.9.10' 'yarl==1.8.2'
  touch "$stamp"
fi

# The real Backend.AI stack of the real-stack tests (bai-testkit's realstack module): the
# databases from Debian, and a Python 3.13 venv with the manager, agent, webserver and client
# 26.9.6 (wheels, about 630 MB, about 30 s). 3.13 comes from pyenv (its root, or `pyenv root`),
# else `python3.13` on PATH. BAI_SKIP_REAL_MANAGER=1 skips it (and those tests).
realstack() {
  local version=26.9.6 venv=.venv-realstack
  [ "${BAI_SKIP_REAL_MANAGER:-}" = 1 ] && return 0
  local need=() p
  for p in postgresql redis-server etcd-server etcd-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
      echo "deps: missing Debian packages for the real-stack tests: ${need[*]} (run as root, or set BAI_SKIP_REAL_MANAGER=1)" >&2
      exit 1
    fi
    echo "deps: installing ${need[*]}"
    apt-get update -qq >/dev/null
    # The packages' services are not started: the tests run their own servers on free ports.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  [ -f "$venv/.bai-realstack-$version" ] && return 0
  local py="" root
  root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  for p in $(ls -d "$root"/versions/3.13* 2>/dev/null | sort -V -r); do
    [ -x "$p/bin/python3.13" ] && { py=$p/bin/python3.13; break; }
  done
  [ -n "$py" ] || py=$(command -v python3.13 || true)
  if [ -z "$py" ]; then
    echo "deps: the real-stack tests need Python 3.13 (pyenv install 3.13, or python3.13 on PATH; $root/versions has none), or BAI_SKIP_REAL_MANAGER=1" >&2
    exit 1
  fi
  echo "deps: creating $venv with backend.ai-manager/agent/webserver/client==$version ($py)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "backend.ai-manager==$version" \
    "backend.ai-agent==$version" "backend.ai-webserver==$version" "backend.ai-client==$version" \
    "backend.ai-cli==$version"
  touch "$venv/.bai-realstack-$version"
}
# Only for the tests (`scripts/deps.sh test`): `make run` and `make bench` do not need it.
if [ "${1:-}" = test ]; then realstack; fi
