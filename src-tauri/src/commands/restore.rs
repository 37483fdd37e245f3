//! Tunnels that come back after a restart: `restore_tunnels`, called by the UI once the saved
//! login is restored, reopens the tunnels recorded when the app last quit (bai-core decides
//! which; see `bai_core::workspace::restore`) and returns what happened, for a banner shown
//! once. "Reopen tunnels at start" in Preferences turns it off.

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::error::CommandResult;
use crate::AppState;

/// A tunnel reopened at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct ReopenedTunnel {
    /// The session's name.
    pub session: String,
    /// The app (`sshd`, `jupyter`, …).
    pub app: String,
    /// The port it listens on now.
    pub port: u16,
    /// The port it had last time, when that one was taken.
    pub moved_from: Option<u16>,
    /// Why it moved, naming both ports.
    pub note: Option<String>,
}

/// A tunnel of the last run that was not reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct DroppedTunnel {
    /// The session's name (as it was).
    pub session: String,
    /// The app.
    pub app: String,
    /// Why ("the session ended …").
    pub reason: String,
}

/// What `restore_tunnels` did (both lists empty: nothing to tell).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct RestoredTunnels {
    /// Open again.
    pub reopened: Vec<ReopenedTunnel>,
    /// Not reopened, with the reason.
    pub dropped: Vec<DroppedTunnel>,
}

impl From<bai_core::RestoreReport> for RestoredTunnels {
    fn from(r: bai_core::RestoreReport) -> Self {
        RestoredTunnels {
            reopened: r
                .reopened
                .into_iter()
                .map(|t| ReopenedTunnel {
                    session: t.session,
                    app: t.app,
                    port: t.port,
                    moved_from: t.moved_from.as_ref().map(|(p, _)| *p),
                    note: t.moved_from.map(|(_, n)| n),
                })
                .collect(),
            dropped: r
                .dropped
                .into_iter()
                .map(|d| DroppedTunnel {
                    session: d.session,
                    app: d.app,
                    reason: d.reason,
                })
                .collect(),
        }
    }
}

/// `restore_tunnels() -> RestoredTunnels`: once per run, after `restore_login` restored the
/// saved login; otherwise (or with the preference off) nothing.
#[tauri::command]
pub async fn restore_tunnels<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<RestoredTunnels> {
    let report = state.restore_tunnels().await?;
    if !report.reopened.is_empty() {
        super::tunnels::notify(&app);
    }
    Ok(report)
}
