#!/usr/bin/env bash
# `make test-dist`: checks what `make dist` put in target/dist/ without changing the system.
#   1. SHA256SUMS; the .deb's metadata, declared dependencies (every shared library the two
#      binaries load is owned by a declared dependency or by one of theirs), files, desktop
#      entry; lintian (errors fail, warnings are listed); the .rpm's metadata (rpm -qip).
#   2. The .deb unpacked into a throw-away root (dpkg-deb -x): the installed `bai` reports the
#      workspace version, logs in to a sandbox, lists its sessions and runs `ssh -- echo ok`.
#   3. The installed app under Xvfb through WebDriver (tests/installed.rs): five sessions
#      listed (screenshot), two tunnels answering with the SSH banner, idle memory (PSS); then
#      its cold start to a rendered session list (median of 5, scripts/measure-startup.sh).
#   4. The CLI tarball unpacked: `bai --version`, README and licences inside.
# Figures are printed as DIST_* lines (docs/benchmarks.md records them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

. scripts/meta.sh
dist="$target_dir/dist"
deb="$dist/bai_${version}_amd64.deb"
rpm="$dist/bai-${version}-1.x86_64.rpm"
tarball="$dist/bai-${version}-x86_64-linux.tar.gz"

fail() { echo "test-dist: FAIL: $*" >&2; exit 1; }
step() { printf '\ntest-dist: %s\n' "$*"; }
for f in "$deb" "$rpm" "$tarball" "$dist/SHA256SUMS"; do
  [ -f "$f" ] || fail "$f is missing: run \`make dist\` first"
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bai-test-dist.XXXXXX")"
sb=""
cleanup() {
  if [ -n "$sb" ]; then kill "$sb" 2>/dev/null || true; wait "$sb" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step "checksums"
(cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"

step ".deb metadata"
dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = bai ] || fail "Package is $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version $(field Version), the workspace says $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture is $(field Architecture)"
depends="$(field Depends)"
for d in libc6 libwebkit2gtk-4.1-0 libgtk-3-0 libdbus-1-3 libayatana-appindicator3-1; do
  grep -qE "(^|, )$d( |,|$)" <<<"$depends" || fail "Depends lacks $d: $depends"
done
grep -q openssh-client <<<"$(field Recommends)" || fail "Recommends lacks openssh-client"

step "unpacked into a throw-away root"
inst="$tmp/root"
dpkg-deb -x "$deb" "$inst"
for f in usr/bin/bai usr/bin/bai-desktop usr/share/applications/bai.desktop \
  usr/share/doc/bai/copyright usr/share/doc/bai/changelog.gz \
  usr/share/man/man1/bai.1.gz usr/share/man/man1/bai-desktop.1.gz \
  usr/share/bash-completion/completions/bai usr/share/zsh/vendor-completions/_bai \
  usr/share/fish/vendor_completions.d/bai.fish; do
  [ -e "$inst/$f" ] || fail "the .deb has no /$f"
done
ls "$inst"/usr/share/icons/hicolor/*/apps/bai-desktop.png >/dev/null 2>&1 || fail "no icon in hicolor"
for page in bai bai-desktop; do
  [ "$(zcat "$inst/usr/share/man/man1/$page.1.gz" | grep -c '^\.TH')" -ge 1 ] || fail "$page.1.gz is not a manual page"
done
bash -n "$inst/usr/share/bash-completion/completions/bai" || fail "the bash completion script does not parse"
desktop="$inst/usr/share/applications/bai.desktop"
cat "$desktop"
desktop-file-validate "$desktop" || fail "desktop-file-validate: $desktop"
for k in "Name=bai" "Comment=" "Categories=" "StartupWMClass=bai-desktop" "Exec=bai-desktop"; do
  grep -q "^$k" "$desktop" || fail "the desktop entry has no $k"
done

step "shared libraries against the declared dependencies"
# Every NEEDED library of both binaries must come from a declared dependency or from a package
# those pull in (apt's dependency closure), so that `apt install ./bai_….deb` brings it.
closure="$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances --no-pre-depends $(sed 's/([^)]*)//g; s/,/ /g; s/|/ /g' <<<"$depends") 2>/dev/null |
  grep -v '^ ' | sed 's/:amd64$//' | sort -u)"
for bin in "$inst/usr/bin/bai" "$inst/usr/bin/bai-desktop"; do
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path="$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ && !f {print $NF; f = 1}')"
    [ -n "$path" ] || fail "$(basename "$bin") needs $lib, which this machine does not have"
    owner="$( (dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true) |
      awk -F: 'NR == 1 {print $1}')"
    [ -n "$owner" ] || fail "no package owns $path ($lib)"
    grep -qx "$owner" <<<"$closure" || fail "$(basename "$bin") needs $lib ($owner), which no declared dependency brings"
    printf '  %-22s %-28s %s\n' "$(basename "$bin")" "$lib" "$owner"
  done
done

step "lintian"
lintian_out="$tmp/lintian.txt"
lintian --tag-display-limit 0 "$deb" >"$lintian_out" 2>&1 || true
cat "$lintian_out"
if grep -q '^E: ' "$lintian_out"; then fail "lintian reports errors"; fi
echo "DIST_LINTIAN errors=0 warnings=$(grep -c '^W: ' "$lintian_out" || true)"

step ".rpm metadata"
rpm -qip "$rpm" 2>/dev/null
[ "$(rpm -qp --qf '%{NAME} %{VERSION}' "$rpm" 2>/dev/null)" = "bai $version" ] || fail "rpm name/version"
rpm -qlp "$rpm" 2>/dev/null | grep -qx /usr/bin/bai || fail "the rpm has no /usr/bin/bai"
rpm -qlp "$rpm" 2>/dev/null | grep -qx /usr/bin/bai-desktop || fail "the rpm has no /usr/bin/bai-desktop"
requires="$(rpm -qp --requires "$rpm" 2>/dev/null)"
for r in 'libwebkit2gtk-4.1.so.0()(64bit)' 'libgtk-3.so.0()(64bit)' 'libdbus-1.so.3()(64bit)' 'libc.so.6(GLIBC_2.34)(64bit)'; do
  grep -qxF "$r" <<<"$requires" || fail "the rpm does not require $r: $requires"
done
rpm -qp --recommends "$rpm" 2>/dev/null | grep -qx openssh-clients || fail "the rpm does not recommend openssh-clients"

step "the installed CLI against the sandbox"
bai="$inst/usr/bin/bai"
got="$("$bai" --version)"
[ "$got" = "bai $version" ] || fail "bai --version says '$got', the workspace $version"
cargo build -q -p bai-sandbox
"$target_dir/debug/bai-sandbox" --json --sessions 2 --port 0 >"$tmp/sandbox.out" 2>"$tmp/sandbox.log" &
sb=$!
for _ in $(seq 300); do
  [ -s "$tmp/sandbox.out" ] && head -n1 "$tmp/sandbox.out" | grep -q '}$' && break
  kill -0 "$sb" 2>/dev/null || { cat "$tmp/sandbox.log" >&2; fail "bai-sandbox did not start"; }
  sleep 0.1
done
head -n1 "$tmp/sandbox.out" >"$tmp/sandbox.json"
j() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); exec("for k in sys.argv[2:]: v = v[int(k) if k.isdigit() else k]"); print(v)' "$tmp/sandbox.json" "$@"; }
export HOME="$tmp/home" BAI_CONFIG_DIR="$tmp/config" BAI_SECRET_STORE=file TMPDIR="$tmp"
mkdir -p "$HOME" "$BAI_CONFIG_DIR"
(cd "$tmp" && j password | "$bai" login --endpoint "$(j webserver)" --email "$(j email)" --password-stdin)
ps_out="$(cd "$tmp" && "$bai" ps)"
echo "$ps_out"
session="$(j sessions 0 name)"
grep -q "$session" <<<"$ps_out" || fail "bai ps does not list $session"
ok="$(cd "$tmp" && timeout 60 "$bai" ssh "$session" -- echo ok)"
[ "$ok" = ok ] || fail "bai ssh $session -- echo ok printed '$ok'"
(cd "$tmp" && "$bai" logout >/dev/null)
unset HOME BAI_CONFIG_DIR BAI_SECRET_STORE TMPDIR
HOME="$(getent passwd "$(id -un)" | cut -d: -f6)"
export HOME
kill "$sb" 2>/dev/null || true
wait "$sb" 2>/dev/null || true
sb=""

step "the CLI tarball"
mkdir -p "$tmp/tar"
tar -xzf "$tarball" -C "$tmp/tar"
t="$tmp/tar/bai-${version}-x86_64-linux"
for f in bai README.md LICENSE-MIT LICENSE-APACHE; do [ -f "$t/$f" ] || fail "the tarball has no $f"; done
[ "$("$t/bai" --version)" = "bai $version" ] || fail "the tarball's bai --version"

step "the installed app's window class is the desktop entry's StartupWMClass"
wmclass="$(sed -n 's/^StartupWMClass=//p' "$desktop")"
cat >"$tmp/wmclass.sh" <<'SH'
#!/usr/bin/env bash
"$1" >/dev/null 2>&1 &
app=$!
for _ in $(seq 100); do
  xwininfo -root -tree 2>/dev/null | grep -q '"bai": (' && break
  sleep 0.1
done
xwininfo -root -tree 2>/dev/null | sed -n 's/.*"bai": (\("[^"]*" "[^"]*"\)).*/\1/p'
kill "$app" 2>/dev/null; wait "$app" 2>/dev/null
exit 0
SH
classes="$(BAI_CONFIG_DIR="$tmp/wm-config" BAI_SECRET_STORE=file xvfb-run -a -s "-nolisten tcp" \
  dbus-run-session -- bash "$tmp/wmclass.sh" "$inst/usr/bin/bai-desktop" 2>/dev/null | awk '/^"/ && !f {print; f = 1}')"
echo "  window: WM_CLASS $classes; desktop entry: StartupWMClass=$wmclass"
grep -q "\"$wmclass\"" <<<"$classes" || fail "the window's WM_CLASS ($classes) is not StartupWMClass=$wmclass"

step "the installed app under Xvfb (WebDriver)"
export BAI_DESKTOP_INSTALLED="$inst/usr/bin/bai-desktop"
BAI_DESKTOP_SUITE=installed bash scripts/test-desktop.sh 2>&1 | tee "$tmp/app.log" |
  grep -E "IDLE_PSS_MIB|screenshot:|test result|FAILED|panicked|finished in" || true
grep -q "test result: ok. 1 passed" "$tmp/app.log" || { cat "$tmp/app.log" >&2; fail "the installed app's WebDriver test"; }
pss="$(grep -o 'IDLE_PSS_MIB.*' "$tmp/app.log")"

step "cold start of the installed app (5 runs)"
start="$(bash scripts/measure-startup.sh 5 | grep -o 'COLD_START_MS.*')" || fail "cold start"

deb_kib=$(( $(stat -c %s "$deb") / 1024 ))
echo
echo "DIST_SIZES deb=${deb_kib}KiB installed=$(field Installed-Size)KiB rpm=$(( $(stat -c %s "$rpm") / 1024 ))KiB tarball=$(( $(stat -c %s "$tarball") / 1024 ))KiB"
echo "DIST_${pss}"
echo "DIST_${start}"
echo "test-dist: all checks passed"
