//! A session's other apps (`jupyter`, `ttyd`, any TCP service): `open_app` opens a local
//! tunnel to one ([`bai_core::Workspace::open_app`]); an app opened in a browser has its URL
//! built in Rust (bai-core's table) and handed to the OS here, never a URL from the web view.
//! The tunnel joins the tunnels panel ([`crate::commands::tunnels::TUNNELS_CHANGED`]).
//!
//! Test builds (`cfg(any(test, feature = "e2e-commands"))`): when `BAI_TEST_OPENER_LOG` names
//! a file, the URL is appended to it (one line) instead of launching a browser.

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::commands::tunnels::notify;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;

/// The environment variable of the test builds' opener log.
pub const OPENER_LOG_ENV: &str = "BAI_TEST_OPENER_LOG";

/// One app of a session, from its service ports (`SessionApp` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "SessionApp")]
pub struct AppView {
    /// Its name (`jupyter`).
    pub name: String,
    /// Its protocol (`http`, `tcp`, `preopen`, `vnc`, …).
    pub protocol: String,
}

/// An open app tunnel (`AppTunnel` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "AppTunnel")]
pub struct AppTunnelView {
    /// The session.
    pub session: String,
    /// The app.
    pub app: String,
    /// Its protocol.
    pub protocol: String,
    /// `127.0.0.1`.
    pub host: String,
    /// The local port.
    pub port: u16,
    /// For an app opened in the browser: the URL that was opened.
    pub url: Option<String>,
}

impl From<bai_core::AppTunnel> for AppTunnelView {
    fn from(t: bai_core::AppTunnel) -> Self {
        AppTunnelView {
            session: t.session,
            app: t.app,
            protocol: t.protocol,
            host: t.host,
            port: t.port,
            url: t.url,
        }
    }
}

/// The IPC tests' opener log: set here rather than through the environment, which a test must
/// not change while others run.
#[cfg(test)]
pub(crate) static TEST_OPENER_LOG: std::sync::Mutex<Option<std::path::PathBuf>> =
    std::sync::Mutex::new(None);

/// Where test builds write opened URLs instead of opening them, if anywhere.
#[cfg(any(test, feature = "e2e-commands"))]
fn opener_log() -> Option<std::path::PathBuf> {
    #[cfg(test)]
    if let Some(p) = TEST_OPENER_LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
    {
        return Some(p);
    }
    std::env::var_os(OPENER_LOG_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// Hands `url` (built in Rust) to the system browser; in test builds with
/// [`OPENER_LOG_ENV`] set, appends it to that file instead.
fn open_url(url: &str) -> CommandResult<()> {
    #[cfg(any(test, feature = "e2e-commands"))]
    if let Some(log) = opener_log() {
        use std::io::Write as _;
        let append = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{url}"));
        return append.map_err(|e| {
            CommandError::new(ErrorCode::Io, format!("cannot write the opener log: {e}"))
        });
    }
    tauri_plugin_opener::open_url(url, None::<&str>).map_err(|e| {
        CommandError::new(
            ErrorCode::Io,
            format!("cannot open {url} in a browser: {e}"),
        )
    })
}

/// `open_app({session, app}) -> AppTunnel`: a tunnel to `app` of `session`; an HTTP app's URL
/// is opened in the system browser.
#[tauri::command]
pub async fn open_app<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    name: String,
) -> CommandResult<AppTunnelView> {
    let t: AppTunnelView = state.workspace().open_app(&session, &name).await?.into();
    notify(&app);
    if let Some(url) = &t.url {
        open_url(url)?;
    }
    Ok(t)
}
