//! Stopping SSH servers: [`SshdProcess`]'s `Drop` kills the server and everything it forked
//! (found through `/proc`, since per-connection children leave the process group) and reaps
//! it; [`reap`] does that off the async workers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SshServer, SshdProcess};

/// Kills and reaps servers off the async workers (the kill scans `/proc` and waits).
pub(crate) async fn reap(procs: Vec<SshdProcess>) {
    if procs.is_empty() {
        return;
    }
    // If the runtime is shutting down the closure is dropped instead, which kills them too.
    let _ = tokio::task::spawn_blocking(move || drop(procs)).await;
}

/// Every descendant of `root` (children first found by scanning `/proc/*/stat`).
pub(super) fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: read after the last ')'.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

impl Drop for SshdProcess {
    fn drop(&mut self) {
        // Both servers' per-connection children call setsid(), so a process-group kill misses
        // them: collect the tree before anything dies (orphans get reparented) and kill it all.
        let tree = descendants(self.child.id());
        let kill_tree = |tree: &[u32]| {
            if !tree.is_empty() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .args(tree.iter().map(u32::to_string))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        };
        match self.server {
            // The listener first, so that it forks nothing after the snapshot.
            SshServer::OpenSsh => {
                let _ = self.child.kill();
                kill_tree(&tree);
            }
            // Dropbear is the init of its PID namespace: killing it makes the kernel kill
            // everything inside (nothing can escape the snapshot), and `unshare`, still alive,
            // reaps it before we kill and reap `unshare`.
            SshServer::Dropbear => {
                kill_tree(&tree);
                let deadline = Instant::now() + Duration::from_secs(2);
                while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
