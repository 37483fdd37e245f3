//! The installed app (scripts/test-dist.sh: the `.deb` unpacked into a throw-away root), driven
//! through WebDriver like tests/webdriver.rs: it logs in to a sandbox with five sessions, shows
//! them (screenshot `dist-01-session-list`), opens two SSH tunnels whose ports answer with the
//! SSH banner, shows bai's and the server's versions in About, offers the server among the
//! recent ones after logout, and reports the idle memory of all its processes (PSS: the app and WebKit's web
//! and network processes), which docs/benchmarks.md records.
//!
//! Run through `scripts/test-desktop.sh` with `BAI_DESKTOP_SUITE=installed` and
//! `BAI_DESKTOP_INSTALLED=<root>/usr/bin/bai-desktop`; without them it prints why and passes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use bai_sandbox::SessionSpec;
use support::*;

/// One process's PSS in KiB (`/proc/PID/smaps_rollup`), 0 when it is gone.
fn pss_kib(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `(pid, parent pid, command name)` of every process.
fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (comm) S PPID ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        out.push((pid, ppid, comm));
    }
    out
}

/// The app's processes: those running `bin`, and all their descendants, by command name.
fn app_tree(bin: &Path) -> Vec<(u32, String)> {
    let all = processes();
    let mut tree: Vec<(u32, String)> = all
        .iter()
        .filter(|(pid, _, _)| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == bin)
        })
        .map(|(pid, _, comm)| (*pid, comm.clone()))
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        for (pid, ppid, comm) in &all {
            if *ppid == parent && !tree.iter().any(|(p, _)| p == pid) {
                tree.push((*pid, comm.clone()));
            }
        }
        i += 1;
    }
    tree
}

/// PSS in KiB per command name, summed over the app's processes.
fn app_pss(bin: &Path) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    for (pid, comm) in app_tree(bin) {
        *by_name.entry(comm).or_insert(0) += pss_kib(pid);
    }
    by_name
}

#[tokio::test]
async fn installed_app_lists_sessions_holds_two_tunnels_and_reports_its_memory() {
    let Some(env) = env() else { return };
    if std::env::var_os("BAI_DESKTOP_INSTALLED").is_none() {
        eprintln!("skipped: BAI_DESKTOP_INSTALLED is not set (scripts/test-dist.sh sets it)");
        return;
    }
    with_timeout("installed app", async {
        let names = ["s1", "s2", "s3", "s4", "s5"];
        let (sb, _) = bai_testkit::sandbox::with_sessions(
            SandboxConfig::default(),
            names.iter().map(|n| SessionSpec::running(*n)),
        )
        .await;
        let bin = std::fs::canonicalize(&env.bin)?;
        let r = with_app(&env, |c| {
            let sb = &sb;
            let bin = &bin;
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                for n in names {
                    el(&c, &row(n)).await?;
                }
                shot(&c, "dist-01-session-list").await?;
                let mut ports = Vec::new();
                for n in ["s1", "s2"] {
                    let port = open_ssh_dialog(&c, n).await?;
                    close_dialog(&c).await?;
                    el(&c, &tunnel_row(n)).await?;
                    let banner = ssh_banner(port).await?;
                    assert!(banner.starts_with("SSH-2.0-"), "{n} on {port}: {banner:?}");
                    ports.push(port);
                }
                shot(&c, "dist-02-two-tunnels").await?;
                // Idle: let start-up work and the first connections settle, then sample.
                tokio::time::sleep(std::time::Duration::from_secs(8)).await;
                let pss = app_pss(bin);
                let total: u64 = pss.values().sum();
                assert!(
                    pss.keys().any(|k| k.contains("WebKitWebProces")),
                    "no web process found under {}: {pss:?}",
                    bin.display()
                );
                let parts: Vec<String> = pss
                    .iter()
                    .map(|(k, v)| format!("{k}={:.1}", *v as f64 / 1024.0))
                    .collect();
                println!(
                    "IDLE_PSS_MIB total={:.1} {} sessions=5 tunnels={:?}",
                    total as f64 / 1024.0,
                    parts.join(" "),
                    ports
                );
                // About: bai's version and the server's, as a user checks a fresh install.
                el(&c, "#about-button").await?.click().await?;
                let version = el(&c, "#about-version").await?.text().await?;
                assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
                let manager = until(&c, "the server's version in About", |c| async move {
                    let t = c.find(Locator::Id("about-manager-version")).await.ok()?;
                    let t = t.text().await.ok()?;
                    (!t.trim().is_empty()).then_some(t)
                })
                .await?;
                assert_ne!(
                    manager.trim(),
                    "not reported",
                    "the sandbox reports its manager version"
                );
                shot(&c, "dist-03-about").await?;
                el(&c, "#about-close").await?.click().await?;
                logout(&c).await?;
                // The server just used is offered on the login screen.
                el(&c, "#recent-servers").await?;
                shot(&c, "dist-04-login-with-recent-servers").await?;
                let text = text_content(&c, "#recent-servers").await?;
                let host = sb.webserver_url().replace("http://", "");
                assert!(
                    text.contains(host.trim_end_matches('/')),
                    "recent servers: {text:?}"
                );
                Ok(())
            }
        })
        .await;
        sb.shutdown().await;
        r
    })
    .await;
}
