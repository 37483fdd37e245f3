//! The tray icon: the running tunnels (a click copies how to reach one), "Open bai", "Stop all
//! tunnels" and "Quit"; and close-to-tray (the main window hides instead of quitting while
//! tunnels run, with the `keepInTray` preference on).
//!
//! [`menu_model`] is the menu as data (unit-tested); [`refresh`] rebuilds the real menu from
//! it whenever the tunnels change. The tray is optional: on Linux it needs
//! libayatana-appindicator3 at run time, and when it cannot be created the app goes on without
//! it (and without close-to-tray).

use serde::{Deserialize, Serialize};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime, State, Window};

use crate::commands::tunnels::{notify, TunnelStatus};
use crate::error::{CommandError, CommandResult};
use crate::AppState;

/// The tray icon's id.
pub const TRAY_ID: &str = "bai-tray";
/// The disabled item shown when no tunnel runs.
pub const NO_TUNNELS: &str = "no-tunnels";
/// Shows and focuses the main window.
pub const OPEN: &str = "open";
/// Stops every tunnel.
pub const STOP_ALL: &str = "stop-all";
/// Quits the app (the exit hook stops the tunnels).
pub const QUIT: &str = "quit";
const TUNNEL_PREFIX: &str = "tunnel:";

/// One item of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct TrayItem {
    /// What [`tray_action`] takes.
    pub id: String,
    /// What the menu shows.
    pub label: String,
    /// Whether it can be clicked.
    pub enabled: bool,
}

fn item(id: &str, label: &str, enabled: bool) -> TrayItem {
    TrayItem {
        id: id.to_owned(),
        label: label.to_owned(),
        enabled,
    }
}

fn is_ssh(t: &TunnelStatus) -> bool {
    t.app == "sshd"
}

/// The menu for `tunnels`: one item per tunnel (`s1 · ssh · 127.0.0.1:2222`), or a disabled
/// "No tunnels"; then "Open bai", "Stop all tunnels" and "Quit".
pub fn menu_model(tunnels: &[TunnelStatus]) -> Vec<TrayItem> {
    let mut items: Vec<TrayItem> = tunnels
        .iter()
        .map(|t| {
            let app = if is_ssh(t) { "ssh" } else { t.app.as_str() };
            TrayItem {
                id: format!("{TUNNEL_PREFIX}{}", t.port),
                // Names come from the server: no control or bidi characters in the menu.
                label: format!(
                    "{} · {} · 127.0.0.1:{}",
                    bai_core::display::clean_line(&t.session),
                    bai_core::display::clean_line(app),
                    t.port
                ),
                enabled: true,
            }
        })
        .collect();
    if items.is_empty() {
        items.push(item(NO_TUNNELS, "No tunnels", false));
    }
    items.push(item(OPEN, "Open bai", true));
    items.push(item(STOP_ALL, "Stop all tunnels", !tunnels.is_empty()));
    items.push(item(QUIT, "Quit", true));
    items
}

/// What clicking a tunnel copies: the ssh command (SSH), the URL (HTTP apps) or
/// `127.0.0.1:PORT` (TCP apps).
fn copy_text(state: &AppState, t: &TunnelStatus) -> CommandResult<String> {
    if is_ssh(t) {
        return Ok(state.tunnel_info(&t.session)?.commands.ssh);
    }
    Ok(match &t.url {
        Some(url) => url.clone(),
        None => format!("127.0.0.1:{}", t.port),
    })
}

/// Writes `text` to the clipboard, best effort (the mock runtime has none).
fn copy<R: Runtime>(app: &AppHandle<R>, text: &str) {
    match app.try_state::<tauri_plugin_clipboard_manager::Clipboard<R>>() {
        Some(c) => {
            if let Err(e) = c.write_text(text) {
                tracing::warn!(error = %e, "cannot write the clipboard");
            }
        }
        None => tracing::warn!("no clipboard: the tray copies nothing"),
    }
}

/// Shows and focuses the main window.
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let shown = w
            .unminimize()
            .and_then(|()| w.show())
            .and_then(|()| w.set_focus());
        if let Err(e) = shown {
            tracing::warn!(error = %e, "cannot show the main window");
        }
    }
}

/// Runs the tray item `id`; returns what was copied, if anything.
pub async fn run_action<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    id: &str,
) -> CommandResult<Option<String>> {
    match id {
        OPEN => show_main(app),
        STOP_ALL => {
            state.stop_all_tunnels().await;
            notify(app);
        }
        QUIT => app.exit(0),
        NO_TUNNELS => {}
        _ => {
            let port = id
                .strip_prefix(TUNNEL_PREFIX)
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| CommandError::invalid(format!("unknown tray item: {id}")))?;
            let tunnels = state.list_tunnels();
            let t = tunnels
                .iter()
                .find(|t| t.port == port)
                .ok_or_else(|| CommandError::invalid(format!("no tunnel on port {port}")))?;
            let text = copy_text(state, t)?;
            copy(app, &text);
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// `tray_menu() -> TrayItem[]`: the tray's menu as it is now.
#[tauri::command]
pub fn tray_menu(state: State<'_, AppState>) -> CommandResult<Vec<TrayItem>> {
    Ok(menu_model(&state.list_tunnels()))
}

/// `tray_action({id}) -> string | null`: clicks a tray item; returns what was copied.
#[tauri::command]
pub async fn tray_action<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Option<String>> {
    run_action(&app, &state, &id).await
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, items: &[TrayItem]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for (i, it) in items.iter().enumerate() {
        if it.id == OPEN && i > 0 {
            menu.append(&PredefinedMenuItem::separator(app)?)?;
        }
        menu.append(&MenuItem::with_id(
            app,
            it.id.as_str(),
            it.label.as_str(),
            it.enabled,
            None::<&str>,
        )?)?;
    }
    Ok(menu)
}

/// Rebuilds the tray's menu from the current tunnels (nothing when there is no tray).
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let items = menu_model(&state.list_tunnels());
    let set = build_menu(app, &items).and_then(|m| tray.set_menu(Some(m)));
    if let Err(e) = set {
        tracing::warn!(error = %e, "cannot update the tray menu");
    }
}

fn create_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let state = app.state::<AppState>();
    let menu = build_menu(app, &menu_model(&state.list_tunnels()))?;
    let mut b = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("bai")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let app = app.clone();
            let id = event.id().0.clone();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                if let Err(e) = run_action(&app, &state, &id).await {
                    tracing::warn!(error = %e, id, "tray action failed");
                }
            });
        });
    if let Some(icon) = app.default_window_icon() {
        b = b.icon(icon.clone());
    }
    b.build(app)?;
    Ok(())
}

/// Creates the tray; a failure (or a panic, e.g. libayatana-appindicator3 missing on Linux)
/// is logged and the app goes on without one.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| create_tray(app))) {
        Ok(Ok(())) => tracing::info!("tray icon created"),
        Ok(Err(e)) => tracing::warn!(error = %e, "no tray icon"),
        Err(_) => tracing::warn!(
            "no tray icon (creating it panicked; on Linux install libayatana-appindicator3-1)"
        ),
    }
}

/// Whether closing the main window hides it instead: the preference is on, tunnels run and
/// there is a tray to come back from.
pub fn keeps_running(keep_in_tray: bool, tunnels: usize, has_tray: bool) -> bool {
    keep_in_tray && tunnels > 0 && has_tray
}

/// The one-time notice shown the first time the window hides into the tray.
pub fn notice(tunnels: usize) -> String {
    let s = if tunnels == 1 { "" } else { "s" };
    format!("bai keeps running in the tray with {tunnels} tunnel{s}. Quit from the tray menu.")
}

/// The main window's close request: hides it into the tray (see [`keeps_running`]) and says
/// so once; otherwise the close goes on (and the app quits as before).
pub fn on_close_requested<R: Runtime>(window: &Window<R>, api: &tauri::CloseRequestApi) {
    if window.label() != "main" {
        return;
    }
    let app = window.app_handle();
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let n = state.list_tunnels().len();
    let prefs = crate::desktop::read(state.workspace().config_dir());
    if !keeps_running(prefs.keep_in_tray, n, app.tray_by_id(TRAY_ID).is_some()) {
        return;
    }
    api.prevent_close();
    if let Err(e) = window.hide() {
        tracing::warn!(error = %e, "cannot hide the main window");
    }
    if !prefs.tray_notice_shown {
        state.mark_tray_notice_shown();
        use tauri_plugin_dialog::DialogExt as _;
        app.dialog()
            .message(notice(n))
            .title("bai")
            .kind(tauri_plugin_dialog::MessageDialogKind::Info)
            .show(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(session: &str, app: &str, port: u16) -> TunnelStatus {
        TunnelStatus {
            session: session.into(),
            app: app.into(),
            protocol: "tcp".into(),
            url: None,
            port,
            active: 0,
            total: 0,
            bytes_up: 0,
            bytes_down: 0,
            since: String::new(),
            last_error: None,
        }
    }

    fn ids(items: &[TrayItem]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn no_tunnels_is_a_disabled_item_then_the_fixed_ones() {
        let m = menu_model(&[]);
        assert_eq!(ids(&m), [NO_TUNNELS, OPEN, STOP_ALL, QUIT]);
        assert_eq!(m[0], item(NO_TUNNELS, "No tunnels", false));
        assert!(m[1].enabled && m[3].enabled);
        assert_eq!(
            (m[1].label.as_str(), m[3].label.as_str()),
            ("Open bai", "Quit")
        );
    }

    #[test]
    fn tunnels_are_listed_in_order() {
        let m = menu_model(&[tunnel("s1", "sshd", 2222), tunnel("s2", "tcp-echo", 3333)]);
        assert_eq!(
            ids(&m),
            ["tunnel:2222", "tunnel:3333", OPEN, STOP_ALL, QUIT]
        );
        assert_eq!(m[0].label, "s1 · ssh · 127.0.0.1:2222");
        assert_eq!(m[1].label, "s2 · tcp-echo · 127.0.0.1:3333");
        assert!(m.iter().all(|i| i.enabled));
    }

    #[test]
    fn close_hides_only_with_the_pref_tunnels_and_a_tray() {
        assert!(keeps_running(true, 1, true));
        assert!(!keeps_running(false, 1, true));
        assert!(!keeps_running(true, 0, true));
        assert!(!keeps_running(true, 2, false));
        assert_eq!(
            notice(1),
            "bai keeps running in the tray with 1 tunnel. Quit from the tray menu."
        );
        assert!(notice(2).contains("2 tunnels"));
    }
}
