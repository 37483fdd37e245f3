//! The build commit, in one place for the CLI and the app (`bai_core::about::BUILD_COMMIT`):
//! `git rev-parse --short=12 HEAD` in a git checkout, else `$BAI_BUILD_COMMIT` (a source
//! tarball's packager sets it), else `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BAI_BUILD_COMMIT");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    if commit.is_some() {
        // A new commit or checkout moves HEAD (or the branch it names): build again then.
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
            for f in ["HEAD", "packed-refs"] {
                println!("cargo:rerun-if-changed={}", dir.join(f).display());
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={}", dir.join(r).display());
            }
        }
    }
    let commit = commit
        .or_else(|| {
            std::env::var("BAI_BUILD_COMMIT")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BAI_RESOLVED_BUILD_COMMIT={commit}");
}
