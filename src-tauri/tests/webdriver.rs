//! End-to-end: the real app (debug or release binary) driven through tauri-driver +
//! WebKitWebDriver, against `bai-sandbox` started in-process on port 0.
//!
//! Run it with `scripts/test-desktop.sh`, which builds the UI and the app, starts Xvfb, a
//! D-Bus session and tauri-driver, and sets:
//! - `BAI_WEBDRIVER`: the tauri-driver URL (e.g. `http://127.0.0.1:4444`);
//! - `BAI_DESKTOP_BIN`: the absolute path of the `bai-desktop` binary;
//! - `BAI_CONFIG_DIR` (a fresh temp dir) and `BAI_SECRET_STORE=file`, inherited by the app.
//!
//! Without the first two every test prints why and returns. Screenshots go to
//! `$BAI_SCREENSHOT_DIR` (default `target/screenshots`). The tests share the app's config dir,
//! so they run one at a time (`--test-threads=1`) and each starts from the login screen.

mod support;

use std::path::PathBuf;
use std::time::Instant;

use bai_sandbox::SessionSpec;
use bai_testkit::{free_port, mode, SshTarget};
use serde_json::json;
use support::*;

#[tokio::test]
async fn a1_session_login_lists_sessions_then_logout() {
    let Some(env) = env() else { return };
    with_timeout("session login", async {
        let sb = start_sandbox().await?;
        let r = with_app(&env, |c| async move {
            to_login_screen(&c).await?;
            shot(&c, "01-login").await?;
            session_login(&c, &sb, &sb.user().password, false).await?;
            check_session_rows(&c).await?;
            let who = el(&c, "#whoami").await?.text().await?;
            assert!(
                who.contains(&sb.user().email),
                "header names the user: {who:?}"
            );
            shot(&c, "02-sessions").await?;

            // The filter narrows the list.
            type_into(&c, "#session-filter", "prep").await?;
            until(&c, "only prep listed", |c| async move {
                let rows = c
                    .find_all(Locator::Css("[data-testid=session-row]"))
                    .await
                    .ok()?;
                (rows.len() == 1).then_some(())
            })
            .await?;
            shot(&c, "03-filtered").await?;
            type_into(&c, "#session-filter", "").await?;
            el(&c, "#refresh").await?.click().await?;
            el(&c, &row("s1")).await?;

            logout(&c).await?;
            shot(&c, "04-logged-out").await?;
            sb.shutdown().await;
            Ok(())
        })
        .await;
        r
    })
    .await;
}

#[tokio::test]
async fn a2_wrong_password_shows_the_login_error() {
    let Some(env) = env() else { return };
    with_timeout("wrong password", async {
        let sb = start_sandbox().await?;
        with_app(&env, |c| async move {
            to_login_screen(&c).await?;
            session_login(&c, &sb, "definitely-wrong", false).await?;
            let err = el(&c, "#login-error").await?;
            let text = err.text().await?;
            assert!(
                text.to_lowercase().contains("wrong email or password"),
                "login error: {text:?}"
            );
            assert_eq!(err.attr("data-code").await?.as_deref(), Some("AuthFailed"));
            assert!(!text.contains(&sb.user().password));
            shot(&c, "05-wrong-password").await?;
            // Still on the login screen.
            el(&c, "#login-button").await?;
            sb.shutdown().await;
            Ok(())
        })
        .await
    })
    .await;
}

#[tokio::test]
async fn a3_api_mode_login_with_a_keypair() {
    let Some(env) = env() else { return };
    with_timeout("API mode", async {
        let sb = start_sandbox().await?;
        with_app(&env, |c| async move {
            to_login_screen(&c).await?;
            el(&c, "#mode-api").await?.click().await?;
            type_into(&c, "#endpoint", &sb.manager_url()).await?;
            type_into(&c, "#access-key", &sb.user().access_key).await?;
            type_into(&c, "#secret-key", &sb.user().secret_key).await?;
            set_remember(&c, false).await?;
            shot(&c, "06-api-login").await?;
            el(&c, "#login-button").await?.click().await?;
            check_session_rows(&c).await?;
            let who = el(&c, "#whoami").await?.text().await?;
            assert!(
                who.contains(&sb.user().access_key),
                "header names the access key: {who:?}"
            );
            shot(&c, "07-api-sessions").await?;
            logout(&c).await?;
            sb.shutdown().await;
            Ok(())
        })
        .await
    })
    .await;
}

#[tokio::test]
async fn a4_preferences_save_the_preferred_port() {
    let Some(env) = env() else { return };
    with_timeout("preferences", async {
        let sb = start_sandbox().await?;
        with_app(&env, |c| async move {
            to_login_screen(&c).await?;
            session_login(&c, &sb, &sb.user().password, false).await?;
            el(&c, &row("s1")).await?;
            el(&c, "#prefs-button").await?.click().await?;
            type_into(&c, "#pref-port", "10022").await?;
            shot(&c, "08-preferences").await?;
            el(&c, "#pref-save").await?.click().await?;
            until(&c, "the preferences dialog to close", |c| async move {
                c.find(Locator::Id("pref-save"))
                    .await
                    .is_err()
                    .then_some(())
            })
            .await?;
            if let Some(dir) = std::env::var_os("BAI_CONFIG_DIR").map(PathBuf::from) {
                let config = std::fs::read_to_string(dir.join("config.toml"))?;
                assert!(
                    config.contains("preferred_ssh_port = 10022"),
                    "saved: {config}"
                );
            }
            logout(&c).await?;
            sb.shutdown().await;
            Ok(())
        })
        .await
    })
    .await;
}

/// Cold start with a remembered login: from launching the app to a rendered session list.
/// With `BAI_DEMO_SANDBOX_JSON` set (scripts/measure-startup.sh) the app logs in to that
/// sandbox by itself and only the start is timed.
#[tokio::test]
async fn a5_cold_start_to_session_list() {
    let Some(env) = env() else { return };
    with_timeout("cold start", async {
        let demo = std::env::var_os("BAI_DEMO_SANDBOX_JSON").is_some();
        let sb = if demo {
            None
        } else {
            let sb = start_sandbox().await?;
            with_app(&env, |c| {
                let sb = &sb;
                async move {
                    to_login_screen(&c).await?;
                    session_login(&c, sb, &sb.user().password, true).await?;
                    el(&c, &row("s1")).await?;
                    Ok(())
                }
            })
            .await?;
            Some(sb)
        };
        let runs = std::env::var("BAI_STARTUP_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1u32);
        let mut times = Vec::new();
        for i in 0..runs {
            let t0 = Instant::now();
            let last = i + 1 == runs;
            let rendered = with_app(&env, |c| {
                let times = &mut times;
                async move {
                    let started = t0.elapsed();
                    el(&c, "[data-testid=session-row]").await?;
                    let rendered = t0.elapsed();
                    eprintln!(
                        "cold start #{}: session list rendered {} ms after launch (WebDriver session up after {} ms)",
                        i + 1,
                        rendered.as_millis(),
                        started.as_millis()
                    );
                    times.push(rendered.as_millis());
                    if i == 0 {
                        shot(&c, "09-cold-start").await?;
                    }
                    if last && !demo {
                        logout(&c).await?;
                    }
                    Ok(())
                }
            })
            .await;
            rendered?;
        }
        times.sort_unstable();
        println!(
            "COLD_START_MS median={} min={} max={} runs={} bin={}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len(),
            env.bin
        );
        if let Some(sb) = sb {
            sb.shutdown().await;
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn b1_ssh_dialog_key_and_tunnels() {
    let Some(env) = env() else { return };
    with_timeout("ssh dialog", async {
        let sb = Sandbox::start(SandboxConfig::default()).await?;
        let s1 = sb.create_session(SessionSpec::running("s1")).await?;
        sb.create_session(SessionSpec::running("s2")).await?;
        let tmp = std::env::temp_dir().join(format!("bai-e2e-key-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let r = with_app(&env, |c| {
            let (sb, tmp, s1) = (&sb, &tmp, &s1);
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                el(&c, &row("s1")).await?;
                el(&c, &row("s2")).await?;

                let p = free_port();
                el(&c, "#prefs-button").await?.click().await?;
                type_into(&c, "#pref-port", &p.to_string()).await?;
                el(&c, "#pref-save").await?.click().await?;
                until(&c, "the preferences dialog to close", |c| async move {
                    c.find(Locator::Id("pref-save"))
                        .await
                        .is_err()
                        .then_some(())
                })
                .await?;

                let port1 = open_ssh_dialog(&c, "s1").await?;
                assert_eq!(port1, p, "s1's tunnel uses the preferred port");
                shot(&c, "10-ssh-dialog").await?;
                for (button, code) in [
                    ("#copy-sftp-url", "#sftp-url"),
                    ("#copy-ssh", "#cmd-ssh"),
                    ("#copy-sftp", "#cmd-sftp"),
                    ("#copy-scp", "#cmd-scp"),
                    ("#copy-rsync", "#cmd-rsync"),
                    ("#copy-vscode", "#vscode-config"),
                ] {
                    assert_copies(&c, button, code).await?;
                }

                let saved = c
                    .execute_async(
                        "const done = arguments[arguments.length - 1];
                         window.__TAURI_INTERNALS__
                           .invoke('save_key_to', {session: arguments[0], path: arguments[1], format: 'openssh'})
                           .then(r => done({ok: r}), e => done({err: String(JSON.stringify(e))}));",
                        vec![json!("s1"), json!(tmp.to_string_lossy())],
                    )
                    .await?;
                assert!(saved.get("err").is_none(), "save_key_to failed: {saved}");
                let key_mode = mode(tmp);
                assert_eq!(key_mode, 0o600, "key file mode {key_mode:o}");
                let out = std::process::Command::new("ssh-keygen")
                    .arg("-y")
                    .arg("-f")
                    .arg(tmp)
                    .output()?;
                assert!(
                    out.status.success(),
                    "ssh-keygen -y: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let ssh = tokio::time::timeout(
                    Duration::from_secs(30),
                    SshTarget::new(p, tmp, s1.account.clone())
                        .option("ConnectTimeout=10")
                        .ssh(&["echo", "ok"])
                        .output(),
                )
                .await??;
                assert_eq!(
                    String::from_utf8_lossy(&ssh.stdout).trim(),
                    "ok",
                    "ssh: {}",
                    String::from_utf8_lossy(&ssh.stderr)
                );
                close_dialog(&c).await?;

                let port2 = open_ssh_dialog(&c, "s2").await?;
                assert_ne!(port2, p, "s2 falls back to another port");
                let notice = el(&c, "#fallback-notice").await?.text().await?;
                assert!(
                    notice.contains(&p.to_string()) && notice.contains(&port2.to_string()),
                    "fallback notice: {notice:?}"
                );
                shot(&c, "11-fallback").await?;
                close_dialog(&c).await?;

                until(&c, "two tunnel rows", |c| async move {
                    let rows = c
                        .find_all(Locator::Css("#tunnels-panel [data-testid=tunnel-row]"))
                        .await
                        .ok()?;
                    (rows.len() == 2).then_some(())
                })
                .await?;
                shot(&c, "12-tunnels").await?;

                el(&c, &tunnel_row("s1"))
                    .await?
                    .find(Locator::Css("[data-testid=stop-tunnel]"))
                    .await?
                    .click()
                    .await?;
                until(&c, "port P to refuse connections", |_| async move {
                    std::net::TcpStream::connect(("127.0.0.1", p))
                        .is_err()
                        .then_some(())
                })
                .await?;

                sb.terminate("s2").await?;
                el(&c, "#refresh").await?.click().await?;
                let deadline = Instant::now() + Duration::from_secs(10);
                while c.find(Locator::Css(&tunnel_row("s2"))).await.is_ok() {
                    if Instant::now() > deadline {
                        return Err("s2's tunnel row is still shown 10 s after refresh".into());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                logout(&c).await?;
                Ok(())
            }
        })
        .await;
        let _ = std::fs::remove_file(&tmp);
        sb.shutdown().await;
        r
    })
    .await;
}

#[tokio::test]
async fn b2_own_key_and_account_keypair() {
    let Some(env) = env() else { return };
    with_timeout("own key", async {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("id_ed25519");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f"])
            .arg(&key)
            .output()?;
        assert!(out.status.success(), "ssh-keygen");
        let pub_text = std::fs::read_to_string(key.with_extension("pub"))?;
        let sb = Sandbox::start(SandboxConfig::default()).await?;
        let own = sb
            .create_session(SessionSpec {
                authorized_keys: Some(pub_text.clone()),
                ..SessionSpec::running("own")
            })
            .await?;
        let r = with_app(&env, |c| {
            let (sb, key, own, pub_text) = (&sb, &key, &own, &pub_text);
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                el(&c, &row("own")).await?;

                // Preferences: no keypair, then the uploaded one with its fingerprint.
                el(&c, "#prefs-button").await?.click().await?;
                el(&c, "#keypair-none").await?;
                let up = invoke(&c, "upload_keypair_from", json!({"path": key})).await?;
                assert_eq!(up["publicKey"], pub_text.trim(), "{up}");
                el(&c, "#pref-cancel").await?.click().await?;
                el(&c, "#prefs-button").await?.click().await?;
                let shown = text_content(&c, "#keypair-public").await?;
                assert_eq!(shown.trim(), pub_text.trim());
                let fp = text_content(&c, "#keypair-fingerprint").await?;
                assert_eq!(fp.trim(), up["fingerprint"].as_str().unwrap_or("?"));
                shot(&c, "13-prefs-keypair").await?;
                el(&c, "#pref-cancel").await?.click().await?;

                // The session without id_container: pick the own key (the path variant of the
                // open dialog), reopen, and the shown ssh line logs in.
                let port = open_ssh_dialog(&c, "own").await?;
                el(&c, "#no-id-container").await?;
                el(&c, "#pick-own-key").await?;
                invoke(
                    &c,
                    "use_own_key_from",
                    json!({"session": "own", "path": key}),
                )
                .await?;
                close_dialog(&c).await?;
                open_ssh_dialog(&c, "own").await?;
                let path = std::fs::canonicalize(key)?.to_string_lossy().into_owned();
                assert_eq!(text_content(&c, "#own-key-path").await?.trim(), path);
                if own.account != "work" {
                    // The sandbox logs in as the OS user when there is no `work` account.
                    type_into(&c, "#ssh-user-input", &own.account).await?;
                    el(&c, "#ssh-user-apply").await?.click().await?;
                    let want = own.account.clone();
                    until(&c, "the account to change", move |c| {
                        let want = want.clone();
                        async move {
                            let t = c
                                .find(Locator::Id("ssh-user"))
                                .await
                                .ok()?
                                .text()
                                .await
                                .ok()?;
                            (t.trim() == want).then_some(())
                        }
                    })
                    .await?;
                }
                let ssh = text_content(&c, "#cmd-ssh").await?;
                assert!(
                    ssh.contains(&format!("-i {path}")) && ssh.contains(&format!("-p {port}")),
                    "{ssh}"
                );
                assert!(ssh.contains(&format!("{}@127.0.0.1", own.account)), "{ssh}");
                shot(&c, "14-own-key").await?;
                let line = ssh.trim().replacen(
                    "ssh ",
                    "ssh -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 ",
                    1,
                );
                let out = tokio::time::timeout(
                    Duration::from_secs(30),
                    tokio::process::Command::new("sh")
                        .arg("-c")
                        .arg(format!("{line} echo ok"))
                        .env_remove("SSH_AUTH_SOCK")
                        .stdin(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .output(),
                )
                .await??;
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout).trim(),
                    "ok",
                    "{line}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                close_dialog(&c).await?;
                logout(&c).await?;
                Ok(())
            }
        })
        .await;
        sb.shutdown().await;
        r
    })
    .await;
}

#[tokio::test]
async fn c1_open_an_http_app() {
    let Some(env) = env() else { return };
    let Some(log) = std::env::var_os("BAI_TEST_OPENER_LOG").map(PathBuf::from) else {
        eprintln!(
            "c1_open_an_http_app: BAI_TEST_OPENER_LOG is not set (scripts/test-desktop.sh sets it)"
        );
        return;
    };
    with_timeout("open an http app", async {
        let sb = start_sandbox().await?;
        let before = std::fs::read_to_string(&log).unwrap_or_default();
        let r = with_app(&env, |c| {
            let (sb, log, before) = (&sb, &log, &before);
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                let s1 = el(&c, &row("s1")).await?;
                s1.find(Locator::Css("[data-testid=apps-menu] summary"))
                    .await?
                    .click()
                    .await?;
                let item = el(
                    &c,
                    &format!("{} [data-testid=app-item][data-app=jupyter]", row("s1")),
                )
                .await?;
                shot(&c, "11-apps-menu").await?;
                item.find(Locator::Css("[data-testid=app-open]"))
                    .await?
                    .click()
                    .await?;
                // The URL went to the opener (the log, in this build), not to a browser.
                let url = until(&c, "the URL in the opener log", |_| async move {
                    let now = std::fs::read_to_string(log).ok()?;
                    let new = now.strip_prefix(before.as_str())?;
                    new.lines().next().map(str::to_owned)
                })
                .await?;
                assert!(
                    url.starts_with("http://127.0.0.1:") && url.ends_with("/tree"),
                    "the jupyter URL: {url:?}"
                );
                let page = reqwest::get(&url).await?.text().await?;
                assert!(
                    page.contains("<title>Jupyter (bai sandbox)</title>"),
                    "{page}"
                );
                assert!(page.contains("s1"), "the page names the session: {page}");
                // The tunnel is in the panel with the app's name, and stops from there.
                let panel_row = "[data-testid=tunnel-row][data-session=\"s1\"][data-app=jupyter]";
                let app_cell = el(&c, &format!("{panel_row} [data-testid=tunnel-app]")).await?;
                assert_eq!(app_cell.text().await?.trim(), "jupyter");
                el(&c, &format!("{panel_row} [data-testid=stop-tunnel]"))
                    .await?
                    .click()
                    .await?;
                until(&c, "the app tunnel to stop", |c| async move {
                    c.find(Locator::Css(panel_row)).await.is_err().then_some(())
                })
                .await?;
                logout(&c).await?;
                Ok(())
            }
        })
        .await;
        sb.shutdown().await;
        r
    })
    .await;
}

/// The first line read through the tunnel at `port`.
async fn d_banner(port: u16) -> Res<String> {
    use tokio::io::AsyncBufReadExt as _;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut line = String::new();
    tokio::io::BufReader::new(tcp).read_line(&mut line).await?;
    Ok(line)
}

#[tokio::test]
async fn d1_tunnels_come_back_after_restart() {
    let Some(env) = env() else { return };
    with_timeout("tunnels come back after a restart", async {
        let sb = start_sandbox().await?;
        sb.create_session(bai_sandbox::SessionSpec::running("s2"))
            .await?;
        let mut ports = (0u16, 0u16);
        let first = with_app(&env, |c| {
            let (sb, ports) = (&sb, &mut ports);
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, true).await?;
                let p1 = open_ssh_dialog(&c, "s1").await?;
                close_dialog(&c).await?;
                let p2 = open_ssh_dialog(&c, "s2").await?;
                close_dialog(&c).await?;
                *ports = (p1, p2);
                Ok(())
            }
        })
        .await;
        // The WebDriver session's end closed the app: its tunnels are gone.
        let (p1, p2) = ports;
        let second = match first {
            Err(e) => Err(e),
            Ok(()) => {
                with_app(&env, |c| async move {
                    let text = until(&c, "the restore banner", |c| async move {
                        let b = c.find(Locator::Id("restore-banner")).await.ok()?;
                        b.text().await.ok()
                    })
                    .await?;
                    shot(&c, "12-tunnels-restored").await?;
                    assert!(text.contains("Reopened 2 tunnels"), "{text}");
                    assert!(
                        text.contains(&format!("s1 on {p1}"))
                            && text.contains(&format!("s2 on {p2}")),
                        "the same ports: {text}"
                    );
                    for p in [p1, p2] {
                        let b = d_banner(p).await?;
                        assert!(b.starts_with("SSH-2.0-"), "port {p}: {b:?}");
                    }
                    el(&c, &tunnel_row("s1")).await?;
                    el(&c, &tunnel_row("s2")).await?;
                    el(&c, "#restore-dismiss").await?.click().await?;
                    until(&c, "the banner to go", |c| async move {
                        c.find(Locator::Id("restore-banner"))
                            .await
                            .is_err()
                            .then_some(())
                    })
                    .await?;
                    logout(&c).await?;
                    Ok(())
                })
                .await
            }
        };
        sb.shutdown().await;
        second
    })
    .await;
}
