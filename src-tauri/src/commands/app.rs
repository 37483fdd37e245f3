//! `app_info`: the version and the demo sandbox (if `make run` started one).

use serde::Serialize;
use tauri::State;

use crate::error::CommandResult;
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
    /// The app's version.
    pub version: String,
    /// The demo sandbox, if any.
    pub sandbox: Option<SandboxInfo>,
}

impl AppInfo {
    /// The info for `state`.
    pub fn of(state: &AppState) -> AppInfo {
        AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
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
