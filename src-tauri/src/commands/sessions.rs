//! The session list.

use bai_core::bai_api::Session;
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::error::CommandResult;
use crate::AppState;

/// One row of the session list (`Session` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Session")]
pub struct SessionView {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status, e.g. `RUNNING`.
    pub status: String,
    /// Extra status information.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status_info: Option<String>,
    /// Image reference.
    pub image: String,
    /// Creation time (ISO 8601).
    pub created_at: String,
    /// Whether SSH/SFTP can be opened now.
    pub ssh_available: bool,
    /// Why not (the tooltip).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ssh_reason: Option<String>,
    /// The session's apps (its service ports, `sshd` included), in the server's order.
    pub apps: Vec<crate::commands::apps::AppView>,
}

impl SessionView {
    /// The row for `s`: SSH needs a running session with an `sshd` app.
    pub fn from_session(s: &Session) -> SessionView {
        let ssh_reason = if !s.is_running() {
            Some(format!(
                "The session is {}; SSH needs a running session.",
                s.status.to_lowercase()
            ))
        } else if !s.has_app(bai_core::SSHD_APP) {
            Some("This session was started without SSH (it has no sshd app).".to_owned())
        } else {
            None
        };
        SessionView {
            id: s.id.clone(),
            name: s.name.clone(),
            status: s.status.clone(),
            status_info: s.status_info.clone().filter(|i| !i.is_empty()),
            image: s.image.clone().unwrap_or_default(),
            created_at: s.created_at.clone().unwrap_or_default(),
            ssh_available: ssh_reason.is_none(),
            ssh_reason,
            apps: s
                .service_ports
                .iter()
                .map(|p| crate::commands::apps::AppView {
                    name: p.name.clone(),
                    protocol: p.protocol.clone(),
                })
                .collect(),
        }
    }
}

/// `list_sessions() -> Session[]`; tunnels of sessions no longer RUNNING are stopped.
#[tauri::command]
pub async fn list_sessions<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<Vec<SessionView>> {
    let (views, stopped) = state.refresh_sessions().await?;
    if stopped {
        crate::commands::tunnels::notify(&app);
    }
    Ok(views)
}
