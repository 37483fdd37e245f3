#!/usr/bin/env python3
"""Lists dependencies that a workspace crate declares but never names in its Rust code.

For every member's Cargo.toml, each entry of [dependencies], [dev-dependencies] and
[build-dependencies] must be named (as `name` with `-` turned into `_`, or its `package`
rename) somewhere in the crate's .rs files: src/, tests/, benches/, examples/, build.rs.
A dependency that is needed without being named (a feature switch, a linker-only crate) is
listed, with the reason, in `[package.metadata.unused-deps] ignore = ["name"]`.
Exits 1 and prints the findings when there are any (`make lint` runs it).
"""
import pathlib
import re
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
workspace = tomllib.loads((root / "Cargo.toml").read_text())
members = []
for pattern in workspace["workspace"]["members"]:
    members += [p for p in root.glob(pattern) if (p / "Cargo.toml").is_file()]

findings = []
for crate in sorted(members):
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    ignore = set(
        manifest.get("package", {}).get("metadata", {}).get("unused-deps", {}).get("ignore", [])
    )
    sources = []
    for sub in ["src", "tests", "benches", "examples"]:
        sources += (crate / sub).rglob("*.rs")
    if (crate / "build.rs").is_file():
        sources.append(crate / "build.rs")
    text = "\n".join(p.read_text(errors="replace") for p in sources)
    for table in ["dependencies", "dev-dependencies", "build-dependencies"]:
        for name, spec in manifest.get(table, {}).items():
            if name in ignore:
                continue
            ident = name.replace("-", "_")
            if re.search(rf"\b{re.escape(ident)}\b", text):
                continue
            findings.append(f"{crate.relative_to(root)}: [{table}] {name} is never used")

for f in findings:
    print(f)
if findings:
    print(
        "unused-deps: remove them, or list them with the reason in "
        "[package.metadata.unused-deps] ignore",
        file=sys.stderr,
    )
    sys.exit(1)
print(f"unused-deps: {len(members)} crates, every dependency is used")
