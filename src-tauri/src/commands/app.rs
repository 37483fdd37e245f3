//! The app itself: `app_info` (the version and the demo sandbox of `make run`), the login
//! screen's recent servers, and the About box (`about`, `open_log_folder`).

use serde::Serialize;
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::desktop::RecentServer;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;

/// The demo server shown on the login screen (no password: it stays on the Rust side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct SandboxInfo {
    /// The webserver URL.
    pub webserver: String,
    /// The demo user's email.
    pub email: String,
}

/// The answer of `app_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct AppInfo {
    /// The app's version (the workspace version, the same as `bai --version`).
    pub version: String,
    /// The demo sandbox, if any.
    pub sandbox: Option<SandboxInfo>,
}

impl AppInfo {
    /// The info for `state`.
    pub fn of(state: &AppState) -> AppInfo {
        AppInfo {
            version: bai_core::about::VERSION.to_owned(),
            sandbox: state.demo().map(|d| SandboxInfo {
                webserver: d.webserver.clone(),
                email: d.email.clone(),
            }),
        }
    }
}

/// `app_info() -> {version, sandbox: {webserver, email} | null}`.
#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> CommandResult<AppInfo> {
    Ok(AppInfo::of(&state))
}

/// `recent_servers() -> RecentServer[]`: the last successful logins, most recent first.
#[tauri::command]
pub fn recent_servers(state: State<'_, AppState>) -> CommandResult<Vec<RecentServer>> {
    Ok(state.recent_servers())
}

/// `forget_recent_server({server}) -> RecentServer[]`: removes one; returns the rest.
#[tauri::command]
pub fn forget_recent_server(
    state: State<'_, AppState>,
    server: RecentServer,
) -> CommandResult<Vec<RecentServer>> {
    state.forget_recent_server(&server)
}

/// The server of the current login, as the About box shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerAbout {
    /// The endpoint.
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: String,
    /// The server's API version, e.g. `v8.20240915`.
    pub api_version: Option<String>,
    /// The manager's release, e.g. `24.09.0`.
    pub manager_version: Option<String>,
    /// Why the versions are missing (the server cannot be asked).
    pub error: Option<String>,
}

/// The answer of `about`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AboutView {
    /// bai's version.
    pub version: String,
    /// The build commit.
    pub commit: String,
    /// The server, when logged in.
    pub server: Option<ServerAbout>,
    /// The folder of the app's log files, when the platform has one.
    pub log_dir: Option<String>,
}

fn log_dir<R: Runtime>(app: &AppHandle<R>) -> CommandResult<std::path::PathBuf> {
    // The folder logging.rs writes to.
    app.path()
        .app_log_dir()
        .map_err(|e| CommandError::new(ErrorCode::Io, format!("no log folder: {e}")))
}

/// `about() -> AboutView`: bai's version and commit, the server's versions (asked now, never
/// an error: a server that cannot be asked is said in `server.error`) and the log folder.
#[tauri::command]
pub async fn about<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<AboutView> {
    let conn = state.workspace().connection();
    let r = bai_core::about::VersionReport::of(conn.as_ref()).await;
    Ok(AboutView {
        version: r.version,
        commit: r.commit,
        server: r.server.map(|s| ServerAbout {
            endpoint: s.endpoint,
            mode: s.mode,
            api_version: s.api_version,
            manager_version: s.manager_version,
            error: s.error.map(|e| e.message),
        }),
        log_dir: log_dir(&app).ok().map(|d| d.display().to_string()),
    })
}

/// `open_log_folder() -> string`: opens the log folder in the file manager (the path comes
/// from Rust, never from the web view); returns it.
#[tauri::command]
pub fn open_log_folder<R: Runtime>(app: AppHandle<R>) -> CommandResult<String> {
    let dir = log_dir(&app)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| bai_core::Error::io(format!("creating {}", dir.display()), e))?;
    tauri_plugin_opener::open_path(&dir, None::<&str>).map_err(|e| {
        CommandError::new(ErrorCode::Io, format!("cannot open {}: {e}", dir.display()))
    })?;
    Ok(dir.display().to_string())
}
