//! The real stack's processes. `up.sh` starts every server with `setsid` (its pid is its
//! process group) and records `PID STARTTIME` in `DIR/pids/NAME.pid`; the patched agent does
//! the same for each session's sshd. Teardown signals those groups and every descendant of
//! their members (each sshd connection calls `setsid()`, so it leaves the group but stays a
//! child). A leader whose start time differs from the recorded one is a reused pid, never ours.
//! (Process titles and environments are no help: the manager, the agent and sshd rewrite
//! theirs.)
//!
//! A stack directory holds an `owner` file (`pid starttime` of the test process). At start,
//! [`sweep`] tears down the stacks of test processes that are gone (killed before their
//! watchdog could act) and removes their directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The prefix of stack directories in the temp dir.
pub(crate) const DIR_PREFIX: &str = "bai-realstack-";

/// The file naming a stack directory's owner.
pub(crate) use bai_sandbox::sweep::claim;
use bai_sandbox::sweep::start_time;

/// One process: pid, parent, process group (zombies left out).
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
}

/// Every live process.
fn table() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // After the command name (which may hold spaces): state, ppid, pgrp.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first().is_some_and(|s| *s == "Z" || *s == "X") {
            continue;
        }
        if let (Some(ppid), Some(pgrp)) = (
            f.get(1).and_then(|s| s.parse().ok()),
            f.get(2).and_then(|s| s.parse().ok()),
        ) {
            out.push(Proc { pid, ppid, pgrp });
        }
    }
    out
}

/// The process groups of the stack in `dir`, in the order servers should stop (front ends
/// first, the databases last): each recorded leader that still runs with its recorded start
/// time, or whose group still has members after the leader ended (a pid is not reused while
/// its process group exists).
pub(crate) fn groups(dir: &Path) -> Vec<(String, u32)> {
    const ORDER: [&str; 7] = [
        "webserver",
        "agent",
        "manager",
        "redis",
        "etcd",
        "postgres",
        "",
    ];
    let table = table();
    let mut out: Vec<(String, u32)> = std::fs::read_dir(dir.join("pids"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.strip_suffix(".pid")?.to_owned();
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    let mut f = text.split_whitespace();
                    let pid: u32 = f.next()?.parse().ok()?;
                    let recorded: Option<u64> = f.next().and_then(|s| s.parse().ok());
                    let ours = match start_time(pid) {
                        Some(now) => recorded.is_none_or(|r| r == now),
                        None => table.iter().any(|p| p.pgrp == pid),
                    };
                    ours.then_some((name, pid))
                })
                .collect()
        })
        .unwrap_or_default();
    let rank = |n: &str| ORDER.iter().position(|o| *o == n).unwrap_or(ORDER.len());
    out.sort_by_key(|(n, _)| rank(n));
    out
}

/// Live processes of the stack in `dir`: the members of its groups and all their
/// descendants.
pub(crate) fn members(dir: &Path) -> Vec<u32> {
    let table = table();
    let groups: Vec<u32> = groups(dir).into_iter().map(|(_, g)| g).collect();
    let mut out: Vec<u32> = table
        .iter()
        .filter(|p| groups.contains(&p.pgrp))
        .map(|p| p.pid)
        .collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for p in table.iter().filter(|p| p.ppid == parent) {
            if !out.contains(&p.pid) {
                out.push(p.pid);
            }
        }
        i += 1;
    }
    out
}

/// `kill -s SIGNAL PID…`; failures are ignored (a process may be gone already).
fn kill(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-s", signal, "--"])
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops every process of the stack in `dir`: SIGTERM, SIGKILL to what is left after
/// `grace`; returns the pids still alive afterwards (none, normally).
pub(crate) fn stop(dir: &Path, grace: Duration) -> Vec<u32> {
    let pids = members(dir);
    kill("TERM", &pids);
    let alive = |pids: &[u32]| -> Vec<u32> {
        let live: Vec<u32> = table().iter().map(|p| p.pid).collect();
        pids.iter().copied().filter(|p| live.contains(p)).collect()
    };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !alive(&pids).is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = alive(&pids);
    if !left.is_empty() {
        kill("KILL", &left);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !alive(&left).is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    alive(&pids)
}

/// Tears down the stacks in `tmp` whose owner process is gone and removes their directories;
/// returns the directories removed. Only this OS user's directories, never a symlink (the same
/// owner files as the sandbox's own sweep: [`bai_sandbox::sweep`]).
pub(crate) fn sweep(tmp: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for path in bai_sandbox::sweep::dead_dirs(tmp, DIR_PREFIX) {
        let left = stop(&path, Duration::from_secs(10));
        if left.is_empty() && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Starts the watchdog of the stack in `dir`: a detached shell that waits for this process to
/// end (however it ends: normally, a panic, SIGKILL) and then runs `down.sh` and removes the
/// directory.
pub(crate) fn watchdog(dir: &Path, down: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt as _;
    let script = r#"owner=$1 dir=$2 down=$3
while kill -0 "$owner" 2>/dev/null; do sleep 0.3; done
bash "$down" "$dir"
rm -rf "$dir""#;
    Command::new("bash")
        .args(["-c", script, "bai-realstack-watchdog"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(down)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the real stack's watchdog (bash)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bai_sandbox::sweep::OWNER;

    /// A "server": `sh` in a process group of its own with a child that leaves it (as an
    /// sshd connection does), recorded in `dir/pids/NAME.pid`.
    fn server(dir: &Path, name: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt as _;
        let child = Command::new("sh")
            .args(["-c", "setsid sleep 60 & sleep 60"])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let st = start_time(pid).expect("start time");
        std::fs::write(dir.join(format!("pids/{name}.pid")), format!("{pid} {st}"))
            .expect("pidfile");
        child
    }

    #[test]
    fn sweep_stops_the_processes_of_dead_owners_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dead = tmp.path().join(format!("{DIR_PREFIX}dead"));
        let live = tmp.path().join(format!("{DIR_PREFIX}live"));
        for d in [&dead, &live] {
            std::fs::create_dir_all(d.join("pids")).expect("mkdir");
        }
        std::fs::write(dead.join(OWNER), "4294967295 1").expect("owner");
        claim(&live);
        let mut child = server(&dead, "manager");
        // A pidfile whose start time is not the process's (a reused pid) is not ours.
        std::fs::write(
            live.join("pids/manager.pid"),
            format!("{} 1", std::process::id()),
        )
        .expect("pidfile");
        assert!(groups(&live).is_empty());
        let deadline = Instant::now() + Duration::from_secs(5);
        while members(&dead).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = members(&dead);
        assert_eq!(
            before.len(),
            3,
            "sh, its sleep and the setsid sleep: {before:?}"
        );

        assert_eq!(sweep(tmp.path()), vec![dead.clone()]);
        let _ = child.wait();
        assert!(!dead.exists());
        assert!(live.exists(), "a live owner keeps its stack");
        let live_pids: Vec<u32> = table().iter().map(|p| p.pid).collect();
        assert!(before.iter().all(|p| !live_pids.contains(p)), "{before:?}");
    }

    #[test]
    fn stop_order_is_front_ends_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("pids")).expect("mkdir");
        let me = std::process::id();
        for n in ["postgres", "sshd-k1", "manager", "webserver"] {
            std::fs::write(tmp.path().join(format!("pids/{n}.pid")), me.to_string())
                .expect("pidfile");
        }
        let names: Vec<String> = groups(tmp.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["webserver", "manager", "postgres", "sshd-k1"]);
    }
}
