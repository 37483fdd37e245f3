//! The in-app terminal and file browser on the real app (through WebDriver, like
//! tests/webdriver.rs), against the sandbox's real sshd: a Terminal tab runs `echo $((6*7))`
//! typed into xterm.js and shows `42`; a resize of the window reaches `stty size`; echo latency
//! through the app (IPC → SSH → tunnel → sshd → Channel → xterm.js) is measured in the page next
//! to OpenSSH's through the same sandbox; the Files tab lists the home, and a transfer (queued
//! through `files_upload`/`files_download`, as the native dialogs cannot be driven) shows its
//! progress, with sha256 both ways; a large upload is shown in progress and cancelled with its
//! Cancel button (nothing left), and a folder is deleted through the view. Screenshots:
//! `20-terminal.png`, `21-files.png`, `22-transfer.png` under target/screenshots/.
//!
//! Run through `scripts/test-desktop.sh` with `BAI_DESKTOP_SUITE=remote`
//! (`BAI_REMOTE_MIB` sets the transfer size; 1024 for the 1 GiB run).

mod support;

use serde_json::json;
use support::*;

fn mib() -> u64 {
    std::env::var("BAI_REMOTE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The text xterm.js shows (its DOM renderer's rows).
async fn screen(c: &Client) -> Res<String> {
    let v = c
        .execute(
            "const rows = document.querySelector('.xterm-rows');
             return rows ? Array.from(rows.children).map(r => r.textContent).join('\\n') : '';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

async fn until_screen(c: &Client, what: &str, f: impl Fn(&str) -> bool) -> Res<String> {
    let t0 = std::time::Instant::now();
    loop {
        let s = screen(c).await?;
        if f(&s) {
            return Ok(s);
        }
        if t0.elapsed() > UI_TIMEOUT {
            let _ = shot(c, "timeout-terminal").await;
            return Err(format!("{what} not on the terminal:\n{s}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types into the terminal (xterm.js's hidden textarea) as a user would.
async fn type_keys(c: &Client, keys: &str) -> Res {
    let ta = el(c, ".xterm-helper-textarea").await?;
    ta.send_keys(keys).await?;
    Ok(())
}

/// Median and p99 of `n` echo round trips measured in the page: `terminal_input` of one key
/// until xterm.js has rendered its echo.
async fn app_echo(c: &Client, id: u64, n: usize) -> Res<(f64, f64)> {
    let v = c
        .execute_async(
            "const id = arguments[0], n = arguments[1], done = arguments[arguments.length - 1];
             const rows = document.querySelector('.xterm-rows');
             const count = () => (rows.textContent.match(/q/g) || []).length;
             const out = [];
             const one = () => new Promise((resolve) => {
               const before = count();
               const t0 = performance.now();
               const obs = new MutationObserver(() => {
                 if (count() > before) { obs.disconnect(); resolve(performance.now() - t0); }
               });
               obs.observe(rows, {childList: true, subtree: true, characterData: true});
               window.__TAURI_INTERNALS__.invoke('terminal_input', {id, data: 'q'});
             });
             (async () => {
               // 20 ms between keys (fast typing): back to back, echoes would meet the
               // output coalescing (one event per 4 ms) instead.
               for (let i = 0; i < n; i++) {
                 await new Promise((r) => setTimeout(r, 20));
                 out.push(await one());
               }
               window.__TAURI_INTERNALS__.invoke('terminal_input', {id, data: '\\u0015'});
               done(out);
             })();",
            vec![json!(id), json!(n)],
        )
        .await?;
    let mut ms: Vec<f64> = v
        .as_array()
        .ok_or("no samples")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Median and p99 of `n` echo round trips through the IPC alone: a second shell whose
/// output channel is a plain JS callback (no xterm.js), `terminal_input` of one key until the
/// `data` event with its echo has arrived.
async fn ipc_echo(c: &Client, n: usize) -> Res<(f64, f64)> {
    let v = c
        .execute_async(
            "const n = arguments[0], done = arguments[arguments.length - 1];
             const I = window.__TAURI_INTERNALS__;
             let waiting = null, seen = '';
             const cb = I.transformCallback((m) => {
               const ev = (m && m.message !== undefined) ? m.message : m;
               if (!ev || ev.kind !== 'data') return;
               seen += atob(ev.data);
               if (waiting && waiting.test(seen)) { const w = waiting; waiting = null; w.resolve(); }
             });
             const until = (test) => new Promise((resolve) => {
               waiting = {test, resolve};
               if (test(seen)) { waiting = null; resolve(); }
             });
             (async () => {
               const t = await I.invoke('terminal_open', {session: 's1', cols: 80, rows: 24, output: `__CHANNEL__:${cb}`});
               await I.invoke('terminal_input', {id: t.id, data: 'echo READY\\n'});
               await until((s) => s.includes('READY\\r\\n'));
               await new Promise((r) => setTimeout(r, 300));
               const out = [];
               for (let i = 0; i < n; i++) {
                 await new Promise((r) => setTimeout(r, 20));
                 const before = (seen.match(/q/g) || []).length;
                 const t0 = performance.now();
                 const arrived = until((s) => (s.match(/q/g) || []).length > before);
                 I.invoke('terminal_input', {id: t.id, data: 'q'});
                 await arrived;
                 out.push(performance.now() - t0);
               }
               await I.invoke('terminal_close', {id: t.id});
               done(out);
             })().catch((e) => done(String(e)));",
            vec![json!(n)],
        )
        .await?;
    let mut ms: Vec<f64> = v
        .as_array()
        .ok_or_else(|| format!("no samples: {v}"))?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Median of `n` round trips of a command that does nothing remote (`transfer_list`): what
/// the IPC alone costs, for comparison.
async fn ipc_baseline(c: &Client, n: usize) -> Res<f64> {
    let v = c
        .execute_async(
            "const n = arguments[0], done = arguments[arguments.length - 1];
             (async () => {
               const out = [];
               for (let i = 0; i < n; i++) {
                 const t0 = performance.now();
                 await window.__TAURI_INTERNALS__.invoke('transfer_list', {});
                 out.push(performance.now() - t0);
               }
               done(out);
             })().catch((e) => done(String(e)));",
            vec![json!(n)],
        )
        .await?;
    let mut ms: Vec<f64> = v
        .as_array()
        .ok_or_else(|| format!("no samples: {v}"))?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// The same round trip with OpenSSH straight to the session's sshd (`ssh -tt`).
async fn openssh_echo(info: &bai_sandbox::SessionInfo, n: usize) -> Res<(f64, f64)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let key = info.id_container.as_ref().ok_or("no id_container")?;
    let mut child = tokio::process::Command::new("ssh")
        .args([
            "-tt",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ])
        .arg(key)
        .args(["-p", &info.sshd_port.ok_or("no sshd port")?.to_string()])
        .arg(format!("{}@127.0.0.1", info.account))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let mut stdout = child.stdout.take().ok_or("stdout")?;
    stdin.write_all(b"echo READY\n").await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("READY\r\n") {
        let k = tokio::time::timeout(UI_TIMEOUT, stdout.read(&mut buf)).await??;
        if k == 0 {
            return Err("ssh ended".into());
        }
        seen.extend_from_slice(&buf[..k]);
    }
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = std::time::Instant::now();
        stdin.write_all(b"q").await?;
        loop {
            let k = tokio::time::timeout(UI_TIMEOUT, stdout.read(&mut buf)).await??;
            if k == 0 || buf[..k].contains(&b'q') {
                break;
            }
        }
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let _ = stdin.write_all(b"\x15exit\n").await;
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

async fn wait_done(c: &Client, ids: &[u64], shoot: Option<&str>) -> Res {
    let t0 = std::time::Instant::now();
    let mut shot_taken = shoot.is_none();
    loop {
        let list = invoke(c, "transfer_list", json!({})).await?;
        let mine: Vec<_> = list
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| ids.contains(&t["id"].as_u64().unwrap_or(0)))
            .collect();
        if !shot_taken
            && mine
                .iter()
                .any(|t| t["state"] == "running" && t["bytes"].as_u64().unwrap_or(0) > 0)
        {
            if let Some(name) = shoot {
                tokio::time::sleep(Duration::from_millis(400)).await;
                shot(c, name).await?;
            }
            shot_taken = true;
        }
        if mine.len() == ids.len() && mine.iter().all(|t| t["state"] == "done") {
            return Ok(());
        }
        if let Some(t) = mine
            .iter()
            .find(|t| t["state"] == "failed" || t["state"] == "cancelled")
        {
            return Err(format!("transfer ended: {t}").into());
        }
        if t0.elapsed() > Duration::from_secs(600) {
            return Err(format!("transfers still running: {mine:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn terminal_and_files_in_the_real_app() {
    let Some(env) = env() else { return };
    let r = bai_testkit::within(900, async {
        let sb = start_sandbox().await?;
        let info = sb.session("s1").ok_or("s1")?;
        let local = tempfile::tempdir()?;
        let r = with_app(&env, |c| {
            let (sb, info, local) = (&sb, &info, local.path().to_path_buf());
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                el(&c, &row("s1")).await?;
                let mut s = invoke(&c, "get_settings", json!({})).await?;
                s["account"] = json!(info.account);
                invoke(&c, "set_settings", json!({ "settings": s })).await?;

                // Terminal: type, read 42; resize the window, stty size follows.
                el(&c, &format!("{} [data-testid=terminal-button]", row("s1"))).await?.click().await?;
                el(&c, "[data-testid=terminal-state][data-state=open]").await?;
                type_keys(&c, "echo $((6*7))\u{E007}").await?;
                until_screen(&c, "42", |s| s.lines().any(|l| l.trim() == "42")).await?;
                type_keys(&c, "stty size\u{E007}").await?;
                let before = until_screen(&c, "stty size", |s| {
                    s.lines().any(|l| l.trim().split(' ').filter_map(|w| w.parse::<u32>().ok()).count() == 2)
                })
                .await?;
                let size_of = |s: &str| -> Vec<String> {
                    s.lines()
                        .map(str::trim)
                        .filter(|l| {
                            let w: Vec<_> = l.split(' ').collect();
                            w.len() == 2 && w.iter().all(|x| x.parse::<u32>().is_ok())
                        })
                        .map(str::to_owned)
                        .collect()
                };
                let first = size_of(&before);
                c.set_window_size(1400, 900).await?;
                // The resize reaches the shell after the UI's debounce and a round trip: ask
                // again until it shows (no fixed sleep).
                let t0 = std::time::Instant::now();
                let after = loop {
                    type_keys(&c, "clear; stty size\u{E007}").await?;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let s = screen(&c).await?;
                    if size_of(&s).iter().any(|l| !first.contains(l)) {
                        break s;
                    }
                    if t0.elapsed() > UI_TIMEOUT {
                        return Err(format!("stty size did not change from {first:?}:\n{s}").into());
                    }
                };
                eprintln!("stty size: {first:?} -> {:?}", size_of(&after));
                shot(&c, "20-terminal").await?;

                // Echo latency through the app vs OpenSSH (same sandbox, same run).
                eprintln!("measuring the echo at the page (IPC only)");
                let (ipc_med, ipc_p99) = ipc_echo(&c, 100).await?;
                eprintln!("measuring the echo rendered by xterm.js");
                let (app_med, app_p99) = app_echo(&c, 1, 100).await?;
                let ipc_base = ipc_baseline(&c, 50).await?;
                let (ssh_med, ssh_p99) = openssh_echo(info, 100).await?;
                eprintln!(
                    "echo latency: rendered in xterm.js median {app_med:.2} ms p99 {app_p99:.2} ms; \
                     at the page (IPC + SSH, no rendering) median {ipc_med:.2} ms p99 {ipc_p99:.2} ms; \
                     ssh median {ssh_med:.2} ms p99 {ssh_p99:.2} ms; \
                     an IPC call that does nothing remote: median {ipc_base:.2} ms"
                );
                std::fs::create_dir_all(screenshot_dir())?;
                std::fs::write(
                    screenshot_dir().join("20-terminal-echo.json"),
                    serde_json::to_vec_pretty(&json!({
                        "rendered_ms": {"median": app_med, "p99": app_p99},
                        "ipc_ms": {"median": ipc_med, "p99": ipc_p99},
                        "ssh_ms": {"median": ssh_med, "p99": ssh_p99},
                        "ipc_call_ms": {"median": ipc_base},
                    }))?,
                )?;
                type_keys(&c, "exit 3\u{E007}").await?;
                until_screen(&c, "the exit status", |s| s.contains("status 3")).await?;

                // Files: the home listed; a file and a folder up and back down, sha256 both ways.
                el(&c, &format!("{} [data-testid=files-button]", row("s1"))).await?.click().await?;
                el(&c, "[data-testid=files-s1]").await?;
                let home = invoke(&c, "files_home", json!({"session": "s1"})).await?;
                let home = home.as_str().ok_or("home")?.to_owned();
                let big = local.join("big.bin");
                let sum = bai_testkit::write_noise_file(&big, mib() << 20, 5);
                let tree = local.join("tree");
                std::fs::create_dir_all(tree.join("a/b"))?;
                std::fs::write(tree.join("a/b/c.txt"), "c\n")?;
                std::fs::write(tree.join("top.txt"), "top\n")?;
                let ids = invoke(&c, "files_upload", json!({"session": "s1", "remoteDir": home, "localPaths": [big, tree], "folder": false, "overwrite": false})).await?;
                let ids: Vec<u64> = ids.as_array().ok_or("ids")?.iter().filter_map(|v| v.as_u64()).collect();
                wait_done(&c, &ids, None).await?;
                el(&c, "[data-testid=files-refresh]").await?.click().await?;
                el(&c, "[data-testid=file-row][data-name=\"big.bin\"]").await?;
                shot(&c, "21-files").await?;
                let e = invoke(&c, "files_upload", json!({"session": "s1", "remoteDir": home, "localPaths": [local.join("big.bin")], "folder": false, "overwrite": false})).await;
                assert!(e.as_ref().is_err_and(|e| e.to_string().contains("Exists")), "{e:?}");
                let down = local.join("down");
                std::fs::create_dir(&down)?;
                let ids = invoke(&c, "files_download", json!({"session": "s1", "remotePaths": [format!("{home}/big.bin"), format!("{home}/tree")], "localDir": down, "overwrite": false})).await?;
                let ids: Vec<u64> = ids.as_array().ok_or("ids")?.iter().filter_map(|v| v.as_u64()).collect();
                wait_done(&c, &ids, None).await?;
                assert_eq!(bai_testkit::sha256_file(&down.join("big.bin")), sum);
                assert_eq!(std::fs::read_to_string(down.join("tree/a/b/c.txt"))?, "c\n");

                // A transfer in progress on screen, then cancelled with its Cancel button:
                // nothing is left in the session.
                el(&c, "#transfers-clear").await?.click().await?;
                let slow = local.join("slow.bin");
                bai_testkit::write_noise_file(&slow, 512 << 20, 9);
                let ids = invoke(&c, "files_upload", json!({"session": "s1", "remoteDir": home, "localPaths": [slow], "folder": false, "overwrite": false})).await?;
                let id = ids.get(0).and_then(|v| v.as_u64()).ok_or("no transfer id")?;
                let sel = format!("[data-testid=transfer-row][data-id=\"{id}\"]");
                until(&c, "the upload running on screen", |c| {
                    let sel = sel.clone();
                    async move {
                        let row = c.find(Locator::Css(&sel)).await.ok()?;
                        let state = row.attr("data-state").await.ok()??;
                        let bytes = row.find(Locator::Css("[data-testid=transfer-bytes]")).await.ok()?.text().await.ok()?;
                        (state == "running" && !bytes.starts_with("0 B")).then_some(())
                    }
                })
                .await?;
                c.execute(
                    "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                    vec![json!(sel)],
                )
                .await?;
                shot(&c, "22-transfer").await?;
                el(&c, &format!("{sel} [data-testid=transfer-cancel]")).await?.click().await?;
                until(&c, "the upload cancelled", |c| {
                    let sel = sel.clone();
                    async move {
                        let row = c.find(Locator::Css(&sel)).await.ok()?;
                        (row.attr("data-state").await.ok()?? == "cancelled").then_some(())
                    }
                })
                .await?;
                let listing = invoke(&c, "files_list", json!({"session": "s1", "path": home})).await?;
                let names: Vec<String> = listing["entries"].as_array().cloned().unwrap_or_default().iter().filter_map(|e| e["name"].as_str().map(str::to_owned)).collect();
                assert!(!names.iter().any(|n| n.contains("slow.bin")), "left behind: {names:?}");

                // Delete through the view: confirm, and the folder is gone.
                el(&c, "[data-testid=files-refresh]").await?.click().await?;
                el(&c, "[data-testid=file-row][data-name=\"tree\"] [data-testid=file-select]").await?.click().await?;
                el(&c, "[data-testid=files-delete]").await?.click().await?;
                el(&c, "#delete-confirm-yes").await?.click().await?;
                until(&c, "the deleted folder to leave the list", |c| async move {
                    c.find(Locator::Css("[data-testid=file-row][data-name=\"tree\"]")).await.is_err().then_some(())
                })
                .await?;
                let listing = invoke(&c, "files_list", json!({"session": "s1", "path": home})).await?;
                assert!(!listing.to_string().contains("\"tree\""), "{listing}");
                Ok(())
            }
        })
        .await;
        sb.shutdown().await;
        r
    })
    .await;
    if let Err(e) = r {
        panic!("remote: {e}");
    }
}
