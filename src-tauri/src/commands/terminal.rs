//! In-app terminals (`docs/remote-ipc.md` in the notes: the IPC contract): a PTY shell over the
//! session's SSH connection (bai-core's [`bai_core::remote`], through the in-process tunnel),
//! output streamed on a [`Channel`] as base64 `data` events, coalesced (the first bytes after
//! a quiet spell go out at once, so echo is immediate; under load at most one event per
//! [`COALESCE`] or [`MAX_EVENT`] bytes), then `exit` and `closed`.
//!
//! Input and resizes go through one ordered queue per terminal: `terminal_input` and
//! `terminal_resize` are synchronous commands (handled in call order) that only enqueue; a
//! task writes to the channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bai_core::remote::{ShellEvent, ShellReader, ShellWriter};
use base64::Engine as _;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{Runtime, State};
use tokio::sync::mpsc;

use crate::error::{CommandError, CommandResult};
use crate::AppState;

/// The longest output is held back to be coalesced.
pub const COALESCE: Duration = Duration::from_millis(4);
/// The most output bytes one `data` event carries.
pub const MAX_EVENT: usize = 64 * 1024;

/// An open terminal (`TerminalView` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct TerminalView {
    /// Its id (for input, resize, close).
    pub id: u32,
    /// The session.
    pub session: String,
    /// The account logged in.
    pub user: String,
    /// `user@session`.
    pub title: String,
}

/// What the terminal's channel carries (`TerminalEvent` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TerminalEvent {
    /// Output bytes, base64.
    Data {
        /// Base64 of the bytes.
        data: String,
    },
    /// The shell ended.
    Exit {
        /// Its exit status.
        status: Option<u32>,
        /// The signal that ended it.
        signal: Option<String>,
    },
    /// The channel or connection is gone.
    Closed {
        /// Why, when it failed.
        error: Option<CommandError>,
    },
}

enum Input {
    Data(Vec<u8>),
    Resize(u32, u32),
    Close,
}

/// The open terminals.
#[derive(Debug, Default)]
pub struct Terminals {
    next: AtomicU32,
    open: Mutex<HashMap<u32, mpsc::UnboundedSender<Input>>>,
}

impl Terminals {
    fn send(&self, id: u32, input: Input) -> CommandResult<()> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let tx = open
            .get(&id)
            .ok_or_else(|| CommandError::invalid(format!("no terminal {id} is open")))?;
        tx.send(input)
            .map_err(|_| CommandError::invalid(format!("terminal {id} is closed")))
    }

    fn remove(&self, id: u32) -> Option<mpsc::UnboundedSender<Input>> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// How many are open.
    pub fn count(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Closes every terminal (logout, quit).
    pub fn close_all(&self) {
        let all: Vec<_> = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, tx) in all {
            let _ = tx.send(Input::Close);
        }
    }
}

async fn write_loop(writer: ShellWriter, mut rx: mpsc::UnboundedReceiver<Input>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        // Keystrokes queued meanwhile go out in one write.
        while let Some(input) = next.take() {
            match input {
                Input::Data(d) => batch.extend_from_slice(&d),
                other => {
                    if !batch.is_empty() && writer.send(&batch).await.is_err() {
                        return;
                    }
                    batch.clear();
                    match other {
                        Input::Resize(c, r) => {
                            let _ = writer.resize(c, r).await;
                        }
                        Input::Close => {
                            writer.close().await;
                            return;
                        }
                        Input::Data(_) => {}
                    }
                }
            }
            if batch.len() < MAX_EVENT {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && writer.send(&batch).await.is_err() {
            return;
        }
    }
    writer.close().await;
}

/// The IPC tests' copy of every terminal event (the mock runtime's web view drops channel
/// messages): set here, as `TEST_OPENER_LOG` is in `apps.rs`.
#[cfg(test)]
pub(crate) static TEST_TAP: Mutex<Option<std::sync::mpsc::Sender<TerminalEvent>>> =
    Mutex::new(None);

/// Sends `event` on the terminal's channel; `false` when the web view is gone.
fn emit(output: &Channel<TerminalEvent>, event: TerminalEvent) -> bool {
    #[cfg(test)]
    if let Some(tap) = TEST_TAP.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        let _ = tap.send(event.clone());
    }
    output.send(event).is_ok()
}

fn data_event(buf: &[u8]) -> TerminalEvent {
    TerminalEvent::Data {
        data: base64::engine::general_purpose::STANDARD.encode(buf),
    }
}

async fn read_loop(mut reader: ShellReader, output: Channel<TerminalEvent>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut last_flush = tokio::time::Instant::now() - COALESCE;
    loop {
        let event = if buf.is_empty() {
            reader.next().await
        } else {
            // Output waiting: more that is already there joins it; else it goes out once
            // COALESCE has passed since the last event (at once after a quiet spell).
            let deadline = last_flush + COALESCE;
            match tokio::time::timeout_at(deadline, reader.next()).await {
                Ok(e) => e,
                Err(_) => {
                    if !emit(&output, data_event(&buf)) {
                        return;
                    }
                    buf.clear();
                    last_flush = tokio::time::Instant::now();
                    continue;
                }
            }
        };
        match event {
            Some(ShellEvent::Data(d)) => {
                buf.extend_from_slice(&d);
                let now = tokio::time::Instant::now();
                if buf.len() >= MAX_EVENT || now >= last_flush + COALESCE {
                    if !emit(&output, data_event(&buf)) {
                        return;
                    }
                    buf.clear();
                    last_flush = now;
                }
            }
            Some(ShellEvent::Exit { status, signal }) => {
                if !buf.is_empty() {
                    let _ = emit(&output, data_event(&buf));
                    buf.clear();
                }
                let _ = emit(&output, TerminalEvent::Exit { status, signal });
            }
            None => {
                if !buf.is_empty() {
                    let _ = emit(&output, data_event(&buf));
                }
                let _ = emit(&output, TerminalEvent::Closed { error: None });
                return;
            }
        }
    }
}

/// `terminal_open({session, cols, rows, output}) -> TerminalView`: a PTY shell in `session`
/// over its SSH connection (opened, or reused); output arrives on `output`.
#[tauri::command]
pub async fn terminal_open<R: Runtime>(
    window: tauri::Window<R>,
    state: State<'_, AppState>,
    session: String,
    cols: u32,
    rows: u32,
    output: Channel<TerminalEvent>,
) -> CommandResult<TerminalView> {
    let remote = state.remote();
    remote.watch_drops(&window);
    let ws = state.workspace();
    let mut client = remote.remotes.client(ws, &session).await?;
    let shell = match client.shell(cols, rows).await {
        Ok(s) => s,
        Err(_) if client.is_closed() => {
            // The connection died since it was last used: once more on a new one.
            remote.remotes.forget(&session).await;
            client = remote.remotes.client(ws, &session).await?;
            client.shell(cols, rows).await?
        }
        Err(e) => return Err(e.into()),
    };
    let (writer, reader) = shell;
    let id = remote.terminals.next.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = mpsc::unbounded_channel();
    remote
        .terminals
        .open
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    let terminals = remote.terminals.clone();
    tauri::async_runtime::spawn(write_loop(writer, rx));
    tauri::async_runtime::spawn(async move {
        read_loop(reader, output).await;
        if let Some(tx) = terminals.remove(id) {
            let _ = tx.send(Input::Close);
        }
    });
    let user = client.user().to_owned();
    tracing::info!(session = %session, id, "terminal opened");
    Ok(TerminalView {
        id,
        title: format!("{user}@{session}"),
        session,
        user,
    })
}

/// `terminal_input({id, data})`: typed or pasted text (queued in order).
#[tauri::command]
pub fn terminal_input(state: State<'_, AppState>, id: u32, data: String) -> CommandResult<()> {
    state
        .remote()
        .terminals
        .send(id, Input::Data(data.into_bytes()))
}

/// `terminal_resize({id, cols, rows})`.
#[tauri::command]
pub fn terminal_resize(
    state: State<'_, AppState>,
    id: u32,
    cols: u32,
    rows: u32,
) -> CommandResult<()> {
    state.remote().terminals.send(id, Input::Resize(cols, rows))
}

/// `terminal_close({id})`: idempotent.
#[tauri::command]
pub fn terminal_close(state: State<'_, AppState>, id: u32) -> CommandResult<()> {
    if let Some(tx) = state.remote().terminals.remove(id) {
        let _ = tx.send(Input::Close);
    }
    Ok(())
}
