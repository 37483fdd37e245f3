//! The in-app file browser and transfers (the IPC contract in the notes, `remote-ipc.md`):
//! SFTP over the session's SSH connection (bai-core's [`bai_core::remote`]), a queue of
//! uploads and downloads ([`bai_core::remote::Transfers`], at most 3 at once) whose changes
//! are emitted as [`TRANSFERS_CHANGED`].
//!
//! Local paths: the web view never names a file to read or a folder to write on its own.
//! Uploads take paths from the native open dialog or from the window's drag-and-drop events
//! (recorded here in Rust as they arrive); downloads go to a folder picked in the native
//! dialog, or one of those dropped. Test builds (`cfg(any(test, feature = "e2e-commands"))`)
//! accept any path, as the WebDriver and IPC tests have no dialogs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bai_core::remote::{transfer, Direction, Remotes, Transfers};
use tauri::{AppHandle, Emitter as _, Runtime, State};
use tauri_plugin_dialog::DialogExt;

use crate::commands::terminal::Terminals;

mod views;
use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;
pub use views::{FileEntryView, ListingView, TransferView};

/// The event every transfer change is emitted as (payload: [`TransferView`]).
pub const TRANSFERS_CHANGED: &str = "transfers-changed";

/// The in-app SSH side of the app's state: connections, terminals, transfers, and the local
/// paths the user handed over (drag and drop).
#[derive(Debug, Default)]
pub struct RemoteState {
    /// One SSH connection per session.
    pub remotes: Remotes,
    /// Open terminals.
    pub terminals: Arc<Terminals>,
    /// The transfer queue.
    pub transfers: Transfers,
    dropped: Arc<Mutex<HashSet<PathBuf>>>,
    picks: Mutex<Option<Pick>>,
    watching: OnceLock<()>,
    forwarding: OnceLock<()>,
}

impl RemoteState {
    /// Records the paths dropped on `window` from now on (once per run).
    pub fn watch_drops<R: Runtime>(&self, window: &tauri::Window<R>) {
        self.watching.get_or_init(|| {
            let dropped = self.dropped.clone();
            window.on_window_event(move |e| {
                if let tauri::WindowEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = e {
                    let mut set = dropped.lock().unwrap_or_else(|e| e.into_inner());
                    if set.len() > 10_000 {
                        set.clear();
                    }
                    set.extend(paths.iter().cloned());
                }
            });
        });
    }

    /// Emits every transfer change to the UI (started once, on the first transfer).
    fn forward<R: Runtime>(&self, app: &AppHandle<R>) {
        self.forwarding.get_or_init(|| {
            let mut rx = self.transfers.subscribe();
            let transfers = self.transfers.clone();
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(t) => {
                            let _ = app.emit(TRANSFERS_CHANGED, TransferView::from(t));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // Missed changes: send the current state of every transfer.
                            for t in transfers.list() {
                                let _ = app.emit(TRANSFERS_CHANGED, TransferView::from(t));
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        });
    }

    /// Whether `path` came from the user (dropped on the window), or any path in test builds.
    fn granted(&self, path: &Path) -> bool {
        if cfg!(any(test, feature = "e2e-commands")) {
            return true;
        }
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(path)
    }
}

/// How long a dialog's pick is kept for the retry with `overwrite: true` after `Exists`.
const PICK_TTL: std::time::Duration = std::time::Duration::from_secs(120);

/// The paths a native dialog gave for a request that was then refused with `Exists`: the UI
/// asks "Replace?" and sends the same request with `overwrite: true`, which reuses them
/// instead of opening the dialog again.
#[derive(Debug)]
struct Pick {
    /// The request: session, direction, remote folder or paths, folder flag.
    request: String,
    paths: Vec<PathBuf>,
    at: std::time::Instant,
}

impl RemoteState {
    fn remember_pick(&self, request: String, paths: Vec<PathBuf>) {
        *self.picks.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pick {
            request,
            paths,
            at: std::time::Instant::now(),
        });
    }

    /// The remembered pick of `request` (taken), when the retry comes in time.
    fn take_pick(&self, request: &str) -> Option<Vec<PathBuf>> {
        let mut slot = self.picks.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(p) if p.request == request && p.at.elapsed() < PICK_TTL => Some(p.paths),
            other => {
                *slot = other;
                None
            }
        }
    }
}

async fn browser(state: &AppState, session: &str) -> CommandResult<Arc<bai_core::remote::Sftp>> {
    let remote = state.remote();
    let client = remote.remotes.client(state.workspace(), session).await?;
    match client.browser().await {
        Ok(s) => Ok(s),
        Err(_) if client.is_closed() => {
            remote.remotes.forget(session).await;
            let client = remote.remotes.client(state.workspace(), session).await?;
            Ok(client.browser().await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// `files_home({session}) -> string`.
#[tauri::command]
pub async fn files_home<R: Runtime>(
    window: tauri::Window<R>,
    state: State<'_, AppState>,
    session: String,
) -> CommandResult<String> {
    state.remote().watch_drops(&window);
    Ok(browser(&state, &session).await?.home().await?)
}

/// `files_list({session, path}) -> Listing`.
#[tauri::command]
pub async fn files_list(
    state: State<'_, AppState>,
    session: String,
    path: String,
) -> CommandResult<ListingView> {
    Ok(browser(&state, &session).await?.list(&path).await?.into())
}

/// `files_mkdir({session, path})`.
#[tauri::command]
pub async fn files_mkdir(
    state: State<'_, AppState>,
    session: String,
    path: String,
) -> CommandResult<()> {
    Ok(browser(&state, &session).await?.mkdir(&path).await?)
}

/// `files_rename({session, from, to})`: `Exists` when `to` exists.
#[tauri::command]
pub async fn files_rename(
    state: State<'_, AppState>,
    session: String,
    from: String,
    to: String,
) -> CommandResult<()> {
    Ok(browser(&state, &session).await?.rename(&from, &to).await?)
}

/// `files_delete({session, path})`: recursive; a symlink is removed, never followed.
#[tauri::command]
pub async fn files_delete(
    state: State<'_, AppState>,
    session: String,
    path: String,
) -> CommandResult<()> {
    Ok(browser(&state, &session).await?.delete(&path).await?)
}

fn dialog_failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::new(ErrorCode::Unknown, format!("the dialog failed: {e}"))
}

fn into_path(p: tauri_plugin_dialog::FilePath) -> CommandResult<PathBuf> {
    p.into_path()
        .map_err(|e| CommandError::invalid(format!("cannot use that location: {e}")))
}

/// `files_upload({session, remoteDir, localPaths, folder, overwrite}) -> number[]`: queues
/// uploads (`localPaths: null` opens the native dialog; `[]` when cancelled). Without
/// `overwrite`, an existing remote target is refused (`Exists`) before anything is queued.
#[tauri::command]
pub async fn files_upload<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    remote_dir: String,
    local_paths: Option<Vec<String>>,
    folder: bool,
    overwrite: bool,
) -> CommandResult<Vec<u64>> {
    bai_core::remote::sftp::check_path(&remote_dir).map_err(CommandError::from)?;
    let remote = state.remote();
    let request = format!("upload\n{session}\n{remote_dir}\n{folder}");
    // The retry with `overwrite` after `Exists` reuses the dialog's pick.
    let remembered = match (&local_paths, overwrite) {
        (None, true) => remote.take_pick(&request),
        _ => None,
    };
    let mut from_dialog = false;
    let paths: Vec<PathBuf> = match local_paths {
        Some(list) => {
            let list: Vec<PathBuf> = list.into_iter().map(PathBuf::from).collect();
            if let Some(p) = list.iter().find(|p| !remote.granted(p)) {
                return Err(CommandError::invalid(format!(
                    "{} was not chosen in a dialog or dropped on the window",
                    p.display()
                )));
            }
            list
        }
        None if remembered.is_some() => remembered.unwrap_or_default(),
        None => {
            from_dialog = true;
            let dialog = app.dialog().file().set_title("Upload to the session");
            let picked = tauri::async_runtime::spawn_blocking(move || {
                if folder {
                    dialog.blocking_pick_folder().map(|p| vec![p])
                } else {
                    dialog.blocking_pick_files()
                }
            })
            .await
            .map_err(dialog_failed)?;
            match picked {
                None => return Ok(Vec::new()),
                Some(list) => list
                    .into_iter()
                    .map(into_path)
                    .collect::<CommandResult<_>>()?,
            }
        }
    };
    let sftp = browser(&state, &session).await?;
    let mut targets = Vec::with_capacity(paths.len());
    let mut there = Vec::new();
    for p in &paths {
        let target = transfer::upload_target(p, &remote_dir)?;
        if !overwrite && sftp.lstat(&target).await?.is_some() {
            there.push(target.clone());
        }
        targets.push(target);
    }
    // Every conflict is named, so that "Replace" replaces exactly what the user was shown.
    if let Some(e) = bai_core::Error::exists(there) {
        if from_dialog {
            remote.remember_pick(request, paths.clone());
        }
        return Err(e.into());
    }
    let client = remote.remotes.client(state.workspace(), &session).await?;
    remote.forward(&app);
    let mut ids = Vec::with_capacity(paths.len());
    for (local, target) in paths.into_iter().zip(targets) {
        let name = target.rsplit('/').next().unwrap_or_default().to_owned();
        let (c, dir, from) = (client.clone(), remote_dir.clone(), local.clone());
        ids.push(remote.transfers.start(
            &session,
            Direction::Upload,
            &name,
            &local.display().to_string(),
            &target,
            move |(progress, cancel)| async move {
                let s = c.sftp().await?;
                transfer::upload(&s, &from, &dir, &progress, &cancel).await
            },
        ));
    }
    Ok(ids)
}

/// `files_download({session, remotePaths, localDir, overwrite}) -> number[]`: queues downloads
/// into `localDir` (`null`: the native folder dialog; `[]` when cancelled). Without
/// `overwrite`, an existing local target is refused (`Exists`) before anything is queued.
#[tauri::command]
pub async fn files_download<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    session: String,
    remote_paths: Vec<String>,
    local_dir: Option<String>,
    overwrite: bool,
) -> CommandResult<Vec<u64>> {
    for p in &remote_paths {
        bai_core::remote::sftp::check_path(p).map_err(CommandError::from)?;
    }
    let remote = state.remote();
    let request = format!("download\n{session}\n{}", remote_paths.join("\n"));
    let remembered = match (&local_dir, overwrite) {
        (None, true) => remote
            .take_pick(&request)
            .and_then(|p| p.into_iter().next()),
        _ => None,
    };
    let mut from_dialog = false;
    let dir = match local_dir {
        Some(d) => {
            let d = PathBuf::from(d);
            // Writing needs the folder dialog: a path dropped for upload is not a grant to write.
            if !cfg!(any(test, feature = "e2e-commands")) {
                return Err(CommandError::invalid(format!(
                    "{} was not chosen in the folder dialog: pass no folder to get the dialog",
                    d.display()
                )));
            }
            d
        }
        None if remembered.is_some() => remembered.unwrap_or_default(),
        None => {
            from_dialog = true;
            let dialog = app.dialog().file().set_title("Download to this folder");
            let picked =
                tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_folder())
                    .await
                    .map_err(dialog_failed)?;
            match picked {
                None => return Ok(Vec::new()),
                Some(p) => into_path(p)?,
            }
        }
    };
    if !dir.is_dir() {
        return Err(CommandError::invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let mut targets = Vec::with_capacity(remote_paths.len());
    let mut there = Vec::new();
    for p in &remote_paths {
        let target = transfer::download_target(p, &dir)?;
        if !overwrite && std::fs::symlink_metadata(&target).is_ok() {
            there.push(target.display().to_string());
        }
        targets.push(target);
    }
    if let Some(e) = bai_core::Error::exists(there) {
        if from_dialog {
            remote.remember_pick(request, vec![dir.clone()]);
        }
        return Err(e.into());
    }
    let client = remote.remotes.client(state.workspace(), &session).await?;
    remote.forward(&app);
    let mut ids = Vec::with_capacity(targets.len());
    for (from, target) in remote_paths.into_iter().zip(targets) {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (c, to, src) = (client.clone(), dir.clone(), from.clone());
        ids.push(remote.transfers.start(
            &session,
            Direction::Download,
            &name,
            &from,
            &target.display().to_string(),
            move |(progress, cancel)| async move {
                let s = c.sftp().await?;
                transfer::download(&s, &src, &to, &progress, &cancel).await
            },
        ));
    }
    Ok(ids)
}

/// `transfer_cancel({id})`: what it wrote is removed.
#[tauri::command]
pub fn transfer_cancel(state: State<'_, AppState>, id: u64) -> CommandResult<()> {
    state.remote().transfers.cancel(id);
    Ok(())
}

/// `transfer_list() -> TransferView[]`.
#[tauri::command]
pub fn transfer_list(state: State<'_, AppState>) -> Vec<TransferView> {
    state
        .remote()
        .transfers
        .list()
        .into_iter()
        .map(TransferView::from)
        .collect()
}

/// `transfer_clear()`: forgets finished transfers.
#[tauri::command]
pub fn transfer_clear(state: State<'_, AppState>) {
    state.remote().transfers.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dialog_pick_is_reused_once_for_the_same_request() {
        let r = RemoteState::default();
        assert_eq!(r.take_pick("a"), None);
        r.remember_pick("a".into(), vec![PathBuf::from("/x")]);
        assert_eq!(r.take_pick("b"), None, "another request");
        assert_eq!(r.take_pick("a"), Some(vec![PathBuf::from("/x")]));
        assert_eq!(r.take_pick("a"), None, "used once");
    }
}
