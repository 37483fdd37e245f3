//! Child processes (run with a timeout, check success, read output) and `/proc` checks (what
//! is still running, and what it costs).

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// Bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that a command succeeded, showing its exit status, stdout and stderr otherwise.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Runs `cmd` to its end (killed if dropped), asserts success and returns its stdout.
pub async fn run_ok(mut cmd: Command) -> String {
    cmd.kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cmd` with `stdin` written to it (or a null stdin), capturing stdout and stderr, and
/// waits at most `limit` for it to end.
pub async fn output_within(mut cmd: Command, stdin: Option<&str>, limit: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).await.expect("write stdin");
        drop(s);
    }
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("command timed out")
        .expect("wait")
}

/// Whether a process is gone (absent, or a zombie waiting to be reaped by someone else).
pub fn pid_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|st| st == "Z" || st == "X"),
    }
}

/// `(pid, ppid)` of every process.
pub fn process_table() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
        {
            out.push((pid, ppid));
        }
    }
    out
}

/// Every descendant of `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in table.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub fn live_with_cmdline(needle: &str) -> Vec<u32> {
    process_table()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| !pid_gone(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether every one of `pids` is gone within `within_secs`.
pub async fn all_gone(pids: &[u32], within_secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        if pids.iter().all(|p| pid_gone(*p)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User + system CPU seconds of a process so far (from `/proc/<pid>/stat`).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from the state (field 3) here.
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// A `kB` field of this process's `/proc/self/status` (`VmRSS`, `VmHWM`, …), in KiB.
pub fn self_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::within;

    #[tokio::test]
    async fn output_within_feeds_stdin_and_run_ok_returns_stdout() {
        within(20, async {
            let out =
                output_within(Command::new("cat"), Some("hello"), Duration::from_secs(10)).await;
            assert_success(&out);
            assert_eq!(text(&out.stdout), "hello");
            let mut echo = Command::new("echo");
            echo.arg("ok");
            assert_eq!(run_ok(echo).await, "ok\n");
        })
        .await;
    }

    #[tokio::test]
    async fn a_child_is_a_descendant_until_it_is_gone() {
        within(20, async {
            let mut child = Command::new("sleep")
                .arg("30")
                .kill_on_drop(true)
                .spawn()
                .expect("spawn sleep");
            let pid = child.id().expect("pid");
            assert!(descendants(std::process::id()).contains(&pid));
            assert!(!pid_gone(pid));
            assert!(cpu_secs(pid) >= 0.0);
            child.kill().await.expect("kill");
            assert!(all_gone(&[pid], 5).await);
        })
        .await;
    }

    #[test]
    fn own_status_has_a_resident_size() {
        assert!(self_status_kib("VmRSS").is_some_and(|k| k > 0));
        assert!(self_status_kib("VmHWM").is_some_and(|k| k > 0));
        assert_eq!(self_status_kib("NoSuchField"), None);
    }
}
