#!/usr/bin/env bash
# `make dist`: release builds of the desktop app and the CLI, packaged into target/dist/:
#   bai_<version>_amd64.deb and bai-<version>-1.x86_64.rpm (the app and `bai` on PATH),
#   bai-<version>-x86_64-linux.tar.gz (the CLI alone, with README and licences), SHA256SUMS.
#
# The Tauri CLI (npm, ui/node_modules/.bin/tauri) bundles: it wants its config beside the app's
# crate, so a copy of the top-level tauri.conf.json (the source of truth) with the bundle turned
# on and every path made absolute is written to src-tauri/tauri.conf.json for the build and
# removed afterwards. AppImage is out of scope (its tools are downloaded at build time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

. scripts/meta.sh
dist="$target_dir/dist"
gen="$root/src-tauri/tauri.conf.json"

step() { printf 'dist: %s\n' "$*"; }

[ -f ui/node_modules/.package-lock.json ] || npm --prefix ui ci --no-audit --no-fund --loglevel=error
step "web UI"
npm --prefix ui run build --silent

step "bai (CLI), release"
cargo build --release --locked -q -p bai-cli

step "manual pages and shell completions"
extra="$target_dir/dist-extra"
rm -rf "$extra" && mkdir -p "$extra"
bai_bin="$target_dir/release/bai"
"$bai_bin" man | gzip -n -9 >"$extra/bai.1.gz"
gzip -n -9 <packaging/bai-desktop.1 >"$extra/bai-desktop.1.gz"
"$bai_bin" completions bash >"$extra/bai.bash"
"$bai_bin" completions zsh >"$extra/_bai"
"$bai_bin" completions fish >"$extra/bai.fish"

cleanup() { rm -f "$gen"; }
trap cleanup EXIT
python3 - "$root" "$target_dir" "$gen" "$version" <<'PY'
import json, os, sys
root, target, out, version = sys.argv[1:5]
c = json.load(open(os.path.join(root, "tauri.conf.json")))
# One version: the workspace's (the app itself reads it from Cargo when the config has none).
c["version"] = version
b = c["bundle"]
b["active"] = True
def here(p):
    if p.startswith("target/"):
        return os.path.join(target, p[len("target/"):])
    return os.path.join(root, p)
c["build"]["frontendDist"] = here(c["build"]["frontendDist"])
b["icon"] = [here(p) for p in b["icon"]]
b["licenseFile"] = here(b["licenseFile"])
for kind in ("deb", "rpm"):
    k = b["linux"][kind]
    k["desktopTemplate"] = here(k["desktopTemplate"])
    k["files"] = {dest: here(src) for dest, src in k["files"].items()}
# Debian wants /usr/share/doc/bai/changelog.gz (a native package's changelog): one entry for
# this version, dated by the commit.
import email.utils, subprocess
try:
    when = int(subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip())
except (OSError, subprocess.CalledProcessError, ValueError):
    when = 0
changelog = os.path.join(target, "dist-changelog")
with open(changelog, "w") as f:
    f.write(f"bai ({c['version']}) unstable; urgency=medium\n\n"
            f"  * bai {c['version']}: the desktop app and the bai command-line tool.\n\n"
            f" -- bai developers <bai-dev@users.noreply.github.com>  "
            f"{email.utils.formatdate(when, usegmt=False)}\n")
b["linux"]["deb"]["changelog"] = changelog
json.dump(c, open(out, "w"), indent=2)
PY

step "desktop app, release, .deb and .rpm"
(cd src-tauri && ../ui/node_modules/.bin/tauri build --ci --bundles deb,rpm) 2>&1 |
  grep -vE '^\s*(Compiling|Downloaded|Downloading) ' || { echo "dist: tauri build failed" >&2; exit 1; }

rm -rf "$dist"
mkdir -p "$dist"
deb="$target_dir/release/bundle/deb/bai_${version}_amd64.deb"
rpm="$target_dir/release/bundle/rpm/bai-${version}-1.x86_64.rpm"
for f in "$deb" "$rpm"; do
  [ -f "$f" ] || { echo "dist: the bundler did not produce $f" >&2; exit 1; }
  cp "$f" "$dist/"
done

step "CLI tarball"
name="bai-${version}-x86_64-linux"
stage="$(mktemp -d "${TMPDIR:-/tmp}/bai-dist.XXXXXX")"
trap 'cleanup; rm -rf "$stage"' EXIT
mkdir -p "$stage/$name"
install -m 0755 "$target_dir/release/bai" "$stage/$name/bai"
install -m 0644 README.md LICENSE-MIT LICENSE-APACHE "$stage/$name/"
# Reproducible: fixed owner, order and times (the commit's time when in a checkout).
mtime="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -C "$stage" -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz"

(cd "$dist" && sha256sum -- *.deb *.rpm *.tar.gz >SHA256SUMS)
step "done: $dist"
(cd "$dist" && ls -l --block-size=K -- * | awk '{print "  " $5 "  " $9}')
