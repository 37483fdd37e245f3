//! Directories left behind by sandboxes that were killed (SIGKILL, a crash, a power cut) and so
//! could not remove their own `bai-sandbox-*` directory.
//!
//! Each sandbox writes an `owner` file into its directory: its process id and that process's
//! start time (so a reused pid does not count as alive). At start, a sandbox removes every
//! `bai-sandbox-*` directory in the temp dir that belongs to this OS user, has an `owner` file,
//! and whose owner process is gone. Directories without an `owner` file (a sandbox still
//! starting, or an older version) are left alone. `remove_dir_all` does not follow symlinks.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The file that names a directory's owner.
pub const OWNER: &str = "owner";

/// `pid starttime` of this process.
fn me() -> Option<String> {
    let pid = std::process::id();
    Some(format!("{pid} {}", start_time(pid)?))
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process an `owner` file names still runs.
fn alive(owner: &str) -> bool {
    let mut parts = owner.split_whitespace();
    let (Some(pid), Some(started)) = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        // Unreadable: assume alive rather than delete what we do not understand.
        return true;
    };
    start_time(pid) == Some(started)
}

/// Marks `dir` as this process's (its `owner` file: pid and start time).
pub fn claim(dir: &Path) {
    if let Some(me) = me() {
        if let Err(e) = std::fs::write(dir.join(OWNER), me) {
            tracing::debug!(error = %e, "could not write the owner file");
        }
    }
}

/// The directories in `tmp` named `prefix…` that belong to this OS user (real directories,
/// never symlinks) and whose `owner` process is gone. Directories without an `owner` file are
/// left out. The sandbox's sweep and the test kit's real-stack sweep share this.
pub fn dead_dirs(tmp: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || Some(meta.uid()) != uid {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER)) else {
            continue;
        };
        if !alive(&owner) {
            dead.push(path);
        }
    }
    dead
}

/// Removes the directories of dead sandboxes of this user from `tmp`; returns how many.
pub(crate) fn sweep(tmp: &Path) -> usize {
    let mut removed = 0;
    for path in dead_dirs(tmp, "bai-sandbox-") {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::debug!(dir = %path.display(), "removed a dead sandbox's directory");
                removed += 1;
            }
            Err(e) => tracing::debug!(dir = %path.display(), error = %e, "could not remove"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_directories_of_dead_owners() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mine = tmp.path().join("bai-sandbox-live");
        let dead = tmp.path().join("bai-sandbox-dead");
        let reused = tmp.path().join("bai-sandbox-reused");
        let unowned = tmp.path().join("bai-sandbox-starting");
        let other = tmp.path().join("something-else");
        for d in [&mine, &dead, &reused, &unowned, &other] {
            std::fs::create_dir_all(d.join("sessions/x/home")).expect("mkdir");
        }
        claim(&mine);
        // A pid that cannot exist, and this pid with another start time (a reused pid).
        std::fs::write(dead.join(OWNER), "4294967295 1").expect("write");
        let pid = std::process::id();
        let started = start_time(pid).expect("start time");
        std::fs::write(reused.join(OWNER), format!("{pid} {}", started + 1)).expect("write");
        std::fs::write(other.join(OWNER), "4294967295 1").expect("write");

        assert_eq!(sweep(tmp.path()), 2);
        assert!(mine.exists(), "a live owner keeps its directory");
        assert!(!dead.exists());
        assert!(!reused.exists(), "a reused pid is not the owner");
        assert!(unowned.exists(), "no owner file: left alone");
        assert!(other.exists(), "not a sandbox directory");
    }
}
