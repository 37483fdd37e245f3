//! SSH keys beyond the session's `id_container`: the account's keypair (Preferences: show,
//! generate, upload a private key file picked in a native open dialog) and the profile's own
//! key, the `-i` of sessions that use the user's own `.ssh` folder (the SSH/SFTP dialog).
//! Private keys are read in Rust from the file the user picked; they never pass through the
//! web view. The `…_from(path)` variants are test-only (see [`crate::add_test_capability`]).

use std::path::PathBuf;

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;

use crate::commands::tunnels::TunnelView;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;

/// The account's keypair as Preferences shows it: the public half only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct AccountKeyView {
    /// The OpenSSH public key line.
    pub public_key: String,
    /// Its SHA256 fingerprint (`SHA256:…`), when the line parses.
    pub fingerprint: Option<String>,
}

impl From<bai_core::workspace::AccountKey> for AccountKeyView {
    fn from(k: bai_core::workspace::AccountKey) -> Self {
        AccountKeyView {
            public_key: k.public_key,
            fingerprint: k.fingerprint,
        }
    }
}

/// A native open dialog for a private key file (`None` when cancelled).
async fn pick_private_key<R: Runtime>(
    app: &AppHandle<R>,
    title: &str,
) -> CommandResult<Option<PathBuf>> {
    let mut dialog = app.dialog().file().set_title(title);
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        let ssh = home.join(".ssh");
        if ssh.is_dir() {
            dialog = dialog.set_directory(ssh);
        }
    }
    let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_file())
        .await
        .map_err(|e| {
            CommandError::new(ErrorCode::Unknown, format!("the open dialog failed: {e}"))
        })?;
    picked
        .map(|p| {
            p.into_path()
                .map_err(|e| CommandError::invalid(format!("cannot read that file: {e}")))
        })
        .transpose()
}

/// `account_keypair() -> AccountKeyView | null`: the account's stored public key.
#[tauri::command]
pub async fn account_keypair(state: State<'_, AppState>) -> CommandResult<Option<AccountKeyView>> {
    Ok(state.workspace().account_keypair().await?.map(Into::into))
}

/// `generate_keypair() -> AccountKeyView`: a new server-generated pair (new sessions only).
#[tauri::command]
pub async fn generate_keypair(state: State<'_, AppState>) -> CommandResult<AccountKeyView> {
    Ok(state.workspace().generate_account_keypair().await?.into())
}

/// `upload_keypair_from({path}) -> AccountKeyView`: what the open dialog calls once a private
/// key file is chosen (test-only: the WebDriver and IPC tests call it directly).
#[tauri::command]
pub async fn upload_keypair_from(
    state: State<'_, AppState>,
    path: PathBuf,
) -> CommandResult<AccountKeyView> {
    Ok(state
        .workspace()
        .upload_account_keypair(&path)
        .await?
        .into())
}

/// `upload_keypair() -> AccountKeyView | null`: a native open dialog for the private key,
/// then [`upload_keypair_from`]; `null` when cancelled.
#[tauri::command]
pub async fn upload_keypair<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<Option<AccountKeyView>> {
    let Some(path) = pick_private_key(&app, "Choose your SSH private key to upload").await? else {
        return Ok(None);
    };
    Ok(Some(
        state
            .workspace()
            .upload_account_keypair(&path)
            .await?
            .into(),
    ))
}

/// `use_own_key_from({session, path}) -> TunnelInfo`: remembers `path` as the profile's own
/// key and returns the session's dialog with it as `-i` (test-only, like
/// [`upload_keypair_from`]).
#[tauri::command]
pub fn use_own_key_from(
    state: State<'_, AppState>,
    session: String,
    path: PathBuf,
) -> CommandResult<TunnelView> {
    state.use_own_key(&session, &path)
}

/// `use_own_key({session}) -> TunnelInfo | null`: a native open dialog for the private key,
/// then [`use_own_key_from`]; `null` when cancelled.
#[tauri::command]
pub async fn use_own_key<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
) -> CommandResult<Option<TunnelView>> {
    let Some(path) = pick_private_key(&app, "Choose your SSH private key").await? else {
        return Ok(None);
    };
    state.use_own_key(&session, &path).map(Some)
}
