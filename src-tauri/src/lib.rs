//! The bai desktop app: a Tauri v2 shell around `bai-core`, with the Svelte UI in `ui/dist`.
//!
//! [`run`] is the real entry point (display check, logging, plugins, the generated context);
//! [`run_app`] wires state and commands onto any [`tauri::Builder`], so unit tests can pass
//! `tauri::test::mock_builder()` and call commands without a webview.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bindings;
pub mod commands;
pub mod demo;
pub mod desktop;
pub mod error;
mod logging;
pub mod state;
pub mod tray;
mod webview;

use tauri::{App, Builder, Runtime};

pub use error::{CommandError, ErrorCode};
pub use state::AppState;

/// Printed (and the app exits with status 2) when no graphical display is available.
pub const NO_DISPLAY_MESSAGE: &str = "bai-desktop needs a graphical display; on a headless machine use the `bai` CLI (bai login, bai ps, bai ssh SESSION)";

/// Whether a graphical display is reachable, judged from the environment (Linux/BSD: `DISPLAY`
/// or `WAYLAND_DISPLAY`; other platforms always have one).
pub fn has_display(get: impl Fn(&str) -> Option<String>) -> bool {
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    )) {
        ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| get(v).is_some_and(|s| !s.trim().is_empty()))
    } else {
        true
    }
}

/// Adds the app's state and commands to `builder`; `setup` runs first in Tauri's setup hook
/// (the real app starts logging there; tests pass a no-op).
pub fn run_app<R, F>(builder: Builder<R>, state: AppState, setup: F) -> Builder<R>
where
    R: Runtime,
    F: FnOnce(&mut App<R>) -> Result<(), Box<dyn std::error::Error>> + Send + 'static,
{
    builder
        .manage(state)
        .setup(move |app| setup(app))
        .invoke_handler(handler::<R>())
}

/// The app's commands: `$extra` are the test-only ones that take a path from the web view.
macro_rules! app_handler {
    ($($extra:path,)*) => {
        tauri::generate_handler![
            commands::app::app_info,
            commands::app::recent_servers,
            commands::app::forget_recent_server,
            commands::app::about,
            commands::app::open_log_folder,
            commands::auth::restore_login,
            commands::auth::login,
            commands::auth::logout,
            commands::sessions::list_sessions,
            commands::settings::get_settings,
            commands::settings::set_settings,
            commands::tunnels::open_ssh,
            commands::tunnels::tunnel_info,
            commands::tunnels::save_key,
            commands::tunnels::list_tunnels,
            commands::tunnels::stop_tunnel,
            commands::restore::restore_tunnels,
            commands::apps::open_app,
            commands::keys::account_keypair,
            commands::keys::generate_keypair,
            commands::keys::upload_keypair,
            commands::keys::use_own_key,
            commands::terminal::terminal_open,
            commands::terminal::terminal_input,
            commands::terminal::terminal_resize,
            commands::terminal::terminal_close,
            commands::files::files_home,
            commands::files::files_list,
            commands::files::files_mkdir,
            commands::files::files_rename,
            commands::files::files_delete,
            commands::files::files_upload,
            commands::files::files_download,
            commands::files::transfer_cancel,
            commands::files::transfer_list,
            commands::files::transfer_clear,
            tray::tray_menu,
            tray::tray_action,
            $($extra,)*
        ]
    };
}

/// Test builds (the WebDriver build, the IPC tests) also register the commands that take a
/// path from the web view; a production build does not have them at all, so not even a
/// misconfigured capability could expose them.
#[cfg(any(test, feature = "e2e-commands"))]
fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    app_handler![
        commands::tunnels::save_key_to,
        commands::keys::upload_keypair_from,
        commands::keys::use_own_key_from,
    ]
}

/// A production build's commands.
#[cfg(not(any(test, feature = "e2e-commands")))]
fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    app_handler![]
}

/// The capability the WebDriver and IPC tests add at run time: the commands that take a path
/// the web view names instead of one the user picked in a native dialog: `save_key_to` (writes
/// the session key there), `upload_keypair_from` (uploads the private key read there) and
/// `use_own_key_from`. They are not in the production capability set
/// (`capabilities/default.json`): a compromised web view must not read or write files at will.
pub const TEST_CAPABILITY: &str = "e2e-save-key-to";

/// Grants the main window [`TEST_CAPABILITY`] (test builds only).
///
/// # Errors
/// When Tauri refuses the capability.
pub fn add_test_capability<R: Runtime>(app: &App<R>) -> Result<(), Box<dyn std::error::Error>> {
    use tauri::Manager as _;
    app.add_capability(
        tauri::ipc::CapabilityBuilder::new(TEST_CAPABILITY)
            .window("main")
            .permission("allow-save-key-to")
            .permission("allow-upload-keypair-from")
            .permission("allow-use-own-key-from")
            // The tray suite closes the window as a window manager would (a close request the
            // close-to-tray handler answers) and checks whether it is shown.
            .permission("core:window:allow-close")
            .permission("core:window:allow-is-visible"),
    )?;
    Ok(())
}

/// Records the current login's tunnels for the next start (unless turned off in Preferences),
/// then stops every tunnel (on [`tauri::RunEvent::Exit`]).
pub fn stop_tunnels_on_exit<R: Runtime>(app: &tauri::AppHandle<R>) {
    use tauri::Manager;
    let state = app.state::<AppState>();
    state.record_tunnels_for_restart();
    tauri::async_runtime::block_on(state.stop_all_tunnels());
}

/// Starts the desktop app; exits the process with status 2 when there is no display, and 1
/// when the app cannot start.
pub fn run() {
    if !has_display(|v| std::env::var(v).ok()) {
        eprintln!("{NO_DISPLAY_MESSAGE}");
        std::process::exit(2);
    }
    let state = match AppState::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bai-desktop: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let builder = Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::Builder::new().build())
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                tray::on_close_requested(window, api);
            }
        })
        // A reloaded page has no terminal tabs: the shells of the old one end with it.
        .on_page_load(|webview, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Started {
                use tauri::Manager as _;
                if let Some(state) = webview.app_handle().try_state::<AppState>() {
                    state.remote().terminals.close_all();
                }
            }
        });
    let app = run_app(builder, state, |app| {
        logging::init(app)?;
        webview::tune(app);
        tray::install(app.handle());
        Ok(())
    })
    .build(tauri::generate_context!("../tauri.conf.json"));
    match app {
        Ok(app) => {
            // Test builds only. A capability added in the setup hook does not take; after the
            // build it does.
            #[cfg(feature = "e2e-commands")]
            {
                tracing::warn!("test build: the web view may call save_key_to, upload_keypair_from, use_own_key_from");
                if let Err(e) = add_test_capability(&app) {
                    eprintln!("bai-desktop: {e}");
                    std::process::exit(1);
                }
            }
            app.run(|app, event| {
                if let tauri::RunEvent::Exit = event {
                    stop_tunnels_on_exit(app);
                }
            })
        }
        Err(e) => {
            eprintln!("bai-desktop: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_needed_on_linux() {
        let none = |_: &str| None;
        let x11 = |v: &str| (v == "DISPLAY").then(|| ":0".to_owned());
        let wayland = |v: &str| (v == "WAYLAND_DISPLAY").then(|| "wayland-0".to_owned());
        let blank = |_: &str| Some("  ".to_owned());
        if cfg!(target_os = "linux") {
            assert!(!has_display(none), "no variable set means no display");
            assert!(!has_display(blank), "blank values do not count");
        }
        assert!(has_display(x11));
        assert!(has_display(wayland));
        assert!(NO_DISPLAY_MESSAGE.contains("bai ssh SESSION"));
    }
}

#[cfg(test)]
mod ipc_tests;
