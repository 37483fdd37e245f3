# Sourced by scripts/dist.sh and scripts/test-dist.sh (from the repository root): sets
# `target_dir` (cargo's, wherever CARGO_TARGET_DIR puts it) and `version` (the workspace's).
meta="$(cargo metadata --format-version 1 --no-deps)"
target_dir="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["target_directory"])' "$meta")"
version="$(python3 -c 'import json,sys; print(next(p["version"] for p in json.loads(sys.argv[1])["packages"] if p["name"] == "bai-cli"))' "$meta")"
unset meta
