//! SSH/SFTP: open a tunnel to a session's sshd, show how to connect, save the key, list and
//! stop tunnels (SSH ones and those of other apps, `commands/apps.rs`). Every change emits [`TUNNELS_CHANGED`]
//! and rebuilds the tray menu.

use std::path::{Path, PathBuf};

use bai_core::commands::HostKeyPin;
use bai_core::SshEndpoint;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Runtime, State};
use tauri_plugin_dialog::DialogExt;

use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;

/// The event emitted whenever a tunnel starts or stops.
pub const TUNNELS_CHANGED: &str = "tunnels-changed";

/// The key file formats `save_key` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// The key as the session has it (`id_container`, for OpenSSH).
    Openssh,
    /// PuTTY-User-Key-File-2 (PuTTY, FileZilla, WinSCP).
    Ppk,
}

impl From<KeyFormat> for bai_core::KeyFormat {
    fn from(f: KeyFormat) -> Self {
        match f {
            KeyFormat::Openssh => bai_core::KeyFormat::Openssh,
            KeyFormat::Ppk => bai_core::KeyFormat::Ppk,
        }
    }
}

impl KeyFormat {
    /// The save dialog's default file name.
    pub fn default_file_name(self) -> &'static str {
        match self {
            KeyFormat::Openssh => "id_container",
            KeyFormat::Ppk => "id_container.ppk",
        }
    }
}

/// The preferred port that was taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Fallback {
    /// The port asked for.
    pub preferred: u16,
    /// Why it was not used, naming both ports.
    pub reason: String,
}

/// The copyable command lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CommandLines {
    /// `ssh …`.
    pub ssh: String,
    /// `sftp …`.
    pub sftp: String,
    /// `scp …`.
    pub scp: String,
    /// `rsync …`.
    pub rsync: String,
}

/// The connection dialog of one tunnel (`TunnelInfo` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "TunnelInfo")]
pub struct TunnelView {
    /// The session.
    pub session: String,
    /// The local port.
    pub port: u16,
    /// The preferred port asked for, if any.
    pub preferred_port: Option<u16>,
    /// Set when the preferred port was taken.
    pub fallback: Option<Fallback>,
    /// The account.
    pub user: String,
    /// `127.0.0.1`.
    pub host: String,
    /// `sftp://user@127.0.0.1:port`.
    pub sftp_url: String,
    /// Where the key was saved (OpenSSH format), once saved.
    pub key_path: Option<String>,
    /// Whether the session has an `id_container` key in its home.
    pub has_id_container: bool,
    /// Why the session's `id_container` could not be used, when downloading it failed.
    pub key_problem: Option<String>,
    /// Set when the key saved from this dialog is no longer in its file: why, and what to do.
    pub key_stale: Option<String>,
    /// The user's own private key (remembered per profile), the commands' `-i` when the
    /// session has no `id_container`; `null` otherwise.
    pub own_key: Option<String>,
    /// The command lines.
    pub commands: CommandLines,
    /// The `~/.ssh/config` block for VS Code.
    pub vscode_config: String,
    /// `vscode://vscode-remote/ssh-remote+bai-<session>/home/work`.
    pub vscode_url: String,
}

impl TunnelView {
    /// The dialog for a tunnel of `session` on `port`.
    pub fn build(
        session: &str,
        port: u16,
        user: &str,
        key_path: Option<&Path>,
        has_id_container: bool,
        own_key: Option<&Path>,
        pin: Option<HostKeyPin>,
    ) -> TunnelView {
        // Without an id_container the session takes the user's own key.
        let own_key = own_key.filter(|_| !has_id_container && key_path.is_none());
        let key = match key_path {
            Some(p) => Some(p.to_path_buf()),
            None if has_id_container => Some(PathBuf::from("./id_container")),
            None => own_key.map(Path::to_path_buf),
        };
        let mut e = SshEndpoint::loopback(port, user, key);
        if let Some(pin) = pin {
            e = e.with_pin(pin);
        }
        // Session names come from the server: the same safe alias as the snippet uses.
        let alias = bai_core::commands::safe_alias(&format!("bai-{session}"));
        TunnelView {
            session: session.to_owned(),
            port,
            preferred_port: None,
            fallback: None,
            user: user.to_owned(),
            host: e.host.clone(),
            sftp_url: format!("sftp://{user}@{}:{port}", e.host),
            key_path: key_path.map(|p| p.display().to_string()),
            has_id_container,
            key_problem: None,
            key_stale: None,
            own_key: own_key.map(|p| p.display().to_string()),
            commands: CommandLines {
                ssh: e.ssh_command_line(),
                sftp: e.sftp_command_line(),
                scp: e.scp_command_line(),
                rsync: e.rsync_command_line(),
            },
            vscode_config: e.vscode_snippet(&alias),
            vscode_url: format!(
                "vscode://vscode-remote/ssh-remote+{}/home/work",
                url::form_urlencoded::byte_serialize(alias.as_bytes()).collect::<String>()
            ),
        }
    }
}

/// One row of the active-tunnels panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct TunnelStatus {
    /// The session.
    pub session: String,
    /// The app (`sshd` for SSH/SFTP).
    pub app: String,
    /// Its protocol (`tcp`, `http`, …).
    pub protocol: String,
    /// For an app opened in the browser: its URL.
    pub url: Option<String>,
    /// The local port.
    pub port: u16,
    /// Connections open now.
    pub active: u64,
    /// Connections since the start.
    pub total: u64,
    /// Bytes to the session.
    pub bytes_up: u64,
    /// Bytes from the session.
    pub bytes_down: u64,
    /// When the tunnel started (ISO 8601).
    pub since: String,
    /// The last connection error.
    pub last_error: Option<String>,
}

/// Where a key was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct SavedKey {
    /// The file.
    pub path: String,
}

/// Tells the UI the tunnels changed (best effort), and records them for the next start: the
/// exit hook records them again, but an app that is killed never runs it.
pub fn notify<R: Runtime>(app: &AppHandle<R>) {
    use tauri::Manager as _;
    if let Some(state) = app.try_state::<AppState>() {
        state.record_tunnels_for_restart();
    }
    if let Err(e) = app.emit(TUNNELS_CHANGED, ()) {
        tracing::warn!(error = %e, "cannot emit {TUNNELS_CHANGED}");
    }
    crate::tray::refresh(app);
}

/// `open_ssh({session, account?}) -> TunnelInfo`.
#[tauri::command]
pub async fn open_ssh<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    account: Option<String>,
) -> CommandResult<TunnelView> {
    let view = state.open_ssh(&session, account).await?;
    notify(&app);
    Ok(view)
}

/// `tunnel_info({session}) -> TunnelInfo`.
#[tauri::command]
pub fn tunnel_info(state: State<'_, AppState>, session: String) -> CommandResult<TunnelView> {
    state.tunnel_info(&session)
}

/// `list_tunnels() -> TunnelStatus[]`.
#[tauri::command]
pub fn list_tunnels(state: State<'_, AppState>) -> CommandResult<Vec<TunnelStatus>> {
    Ok(state.list_tunnels())
}

/// `stop_tunnel({session, app?})`: without `app`, the session's tunnels (SSH's dialog);
/// with it, only the tunnel to that app.
#[tauri::command]
pub async fn stop_tunnel<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    name: Option<String>,
) -> CommandResult<()> {
    match name {
        Some(name) => {
            state.workspace().stop_app_tunnel(&session, &name).await;
        }
        None => {
            state.stop_tunnel(&session).await;
        }
    }
    notify(&app);
    Ok(())
}

/// `save_key_to({session, path, format}) -> {path}`: what the save dialog calls once a file
/// is chosen (and the WebDriver tests call directly).
#[tauri::command]
pub async fn save_key_to(
    state: State<'_, AppState>,
    session: String,
    path: PathBuf,
    format: KeyFormat,
) -> CommandResult<SavedKey> {
    state.save_key_to(&session, &path, format.into()).await
}

/// `save_key({session, format}) -> {path} | null`: a native save dialog, then
/// [`save_key_to`]; `null` when cancelled. The key never passes through the webview.
#[tauri::command]
pub async fn save_key<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    format: KeyFormat,
) -> CommandResult<Option<SavedKey>> {
    let dialog = app
        .dialog()
        .file()
        .set_title("Save the SSH key")
        .set_file_name(format.default_file_name());
    let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
        .await
        .map_err(|e| {
            CommandError::new(ErrorCode::Unknown, format!("the save dialog failed: {e}"))
        })?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let path = picked
        .into_path()
        .map_err(|e| CommandError::invalid(format!("cannot save there: {e}")))?;
    state
        .save_key_to(&session, &path, format.into())
        .await
        .map(Some)
}
