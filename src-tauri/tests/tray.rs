//! The tray on the real app (through WebDriver, like tests/webdriver.rs): the tray itself
//! cannot be clicked under Xvfb (no StatusNotifier host), so its menu is read and clicked
//! through the commands the tray's own handler calls (`tray_menu`, `tray_action`); the menu is
//! saved as `target/screenshots/13-tray-menu.json` (its command equivalent). Closing the
//! window is not driven here: WebDriver's "close window" destroys the web view without the
//! window manager's close request that the close-to-tray handler answers.
//!
//! Run through `scripts/test-desktop.sh` with `BAI_DESKTOP_SUITE=tray`.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn tray_menu_lists_copies_and_stops_the_tunnels() {
    let Some(env) = env() else { return };
    with_timeout("tray", async {
        let (sb, _) = bai_testkit::sandbox::with_sessions(
            SandboxConfig::default(),
            bai_testkit::sandbox::desktop_sessions(),
        )
        .await;
        let r = with_app(&env, |c| {
            let sb = &sb;
            async move {
                to_login_screen(&c).await?;
                session_login(&c, sb, &sb.user().password, false).await?;
                let port = open_ssh_dialog(&c, "s1").await?;
                close_dialog(&c).await?;

                let menu = invoke(&c, "tray_menu", json!({})).await?;
                let dir = screenshot_dir();
                std::fs::create_dir_all(&dir)?;
                std::fs::write(
                    dir.join("13-tray-menu.json"),
                    serde_json::to_vec_pretty(&menu)?,
                )?;
                let items = menu.as_array().cloned().unwrap_or_default();
                let label = |i: &serde_json::Value| i["label"].as_str().unwrap_or("").to_owned();
                let tunnel = items
                    .iter()
                    .find(|i| label(i).contains(&format!(":{port}")))
                    .ok_or_else(|| format!("no tray item for port {port}: {menu}"))?;
                for want in ["Open bai", "Stop all tunnels", "Quit"] {
                    assert!(items.iter().any(|i| label(i) == want), "{want}: {menu}");
                }
                let copied = invoke(&c, "tray_action", json!({"id": tunnel["id"]})).await?;
                let copied = copied.as_str().unwrap_or_default().to_owned();
                assert!(
                    copied.starts_with("ssh ") && copied.contains(&port.to_string()),
                    "copied: {copied:?}"
                );
                let e = invoke(&c, "tray_action", json!({"id": "no-such-item"})).await;
                assert!(
                    e.as_ref()
                        .is_err_and(|e| e.to_string().contains("InvalidInput")),
                    "{e:?}"
                );

                // "Stop all tunnels" stops them: the port closes, the panel empties.
                let banner = ssh_banner(port).await?;
                assert!(banner.starts_with("SSH-2.0-"), "before: {banner:?}");
                invoke(&c, "tray_action", json!({"id": "stop-all"})).await?;
                let left = invoke(&c, "list_tunnels", json!({})).await?;
                assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
                assert!(
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_err(),
                    "port {port} still answers after Stop all tunnels"
                );
                let menu = invoke(&c, "tray_menu", json!({})).await?;
                assert!(menu.to_string().contains("No tunnels"), "{menu}");
                Ok(())
            }
        })
        .await;
        sb.shutdown().await;
        r
    })
    .await;
}
