//! A PTY shell on a session channel: input and resizes on one half, output and the exit status
//! on the other.

use std::sync::Arc;

use bytes::Bytes;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Pty, Sig};

use super::connect::{ssh_error, SshClient};
use crate::Result;

/// What a shell sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    /// Output (stdout and stderr, as a terminal shows them).
    Data(Bytes),
    /// The shell ended: its exit status, or the signal that ended it.
    Exit {
        /// The exit status.
        status: Option<u32>,
        /// The signal's name (`TERM`, `KILL`, …).
        signal: Option<String>,
    },
}

/// Typing into the shell, resizing and closing it. Clones share the channel.
#[derive(Clone)]
pub struct ShellWriter {
    half: Arc<ChannelWriteHalf<Msg>>,
}

impl std::fmt::Debug for ShellWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellWriter").finish_non_exhaustive()
    }
}

/// The shell's output.
pub struct ShellReader {
    half: ChannelReadHalf,
    exited: bool,
}

impl std::fmt::Debug for ShellReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellReader").finish_non_exhaustive()
    }
}

fn signal_name(s: &Sig) -> String {
    match s {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Clamps a terminal dimension to what a PTY accepts.
fn dim(n: u32) -> u32 {
    n.clamp(1, 10_000)
}

impl SshClient {
    /// Opens a login shell on a PTY of `cols` × `rows` (`TERM=xterm-256color`, UTF-8 input).
    ///
    /// # Errors
    /// A [`crate::ErrorCode::Network`] error when the channel, PTY or shell is refused.
    pub async fn shell(&self, cols: u32, rows: u32) -> Result<(ShellWriter, ShellReader)> {
        let ch = self.channel().await?;
        ch.request_pty(
            true,
            super::TERM,
            dim(cols),
            dim(rows),
            0,
            0,
            &[(Pty::IUTF8, 1), (Pty::ECHO, 1)],
        )
        .await
        .map_err(|e| ssh_error("requesting a terminal", &e))?;
        ch.request_shell(true)
            .await
            .map_err(|e| ssh_error("starting the shell", &e))?;
        let (read, write) = ch.split();
        Ok((
            ShellWriter {
                half: Arc::new(write),
            },
            ShellReader {
                half: read,
                exited: false,
            },
        ))
    }
}

impl ShellWriter {
    /// Sends typed or pasted bytes.
    ///
    /// # Errors
    /// When the channel is closed.
    pub async fn send(&self, data: &[u8]) -> Result<()> {
        self.half
            .data_bytes(Bytes::copy_from_slice(data))
            .await
            .map_err(|e| ssh_error("writing to the shell", &e))
    }

    /// Tells the PTY its new size.
    ///
    /// # Errors
    /// When the channel is closed.
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<()> {
        self.half
            .window_change(dim(cols), dim(rows), 0, 0)
            .await
            .map_err(|e| ssh_error("resizing the terminal", &e))
    }

    /// Closes the channel (the shell gets a hang-up).
    pub async fn close(&self) {
        let _ = self.half.eof().await;
        let _ = self.half.close().await;
    }
}

impl ShellReader {
    /// The next output or the exit; `None` once the channel is closed.
    pub async fn next(&mut self) -> Option<ShellEvent> {
        loop {
            match self.half.wait().await? {
                ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                    return Some(ShellEvent::Data(data))
                }
                ChannelMsg::ExitStatus { exit_status } if !self.exited => {
                    self.exited = true;
                    return Some(ShellEvent::Exit {
                        status: Some(exit_status),
                        signal: None,
                    });
                }
                ChannelMsg::ExitSignal { signal_name: s, .. } if !self.exited => {
                    self.exited = true;
                    return Some(ShellEvent::Exit {
                        status: None,
                        signal: Some(signal_name(&s)),
                    });
                }
                ChannelMsg::Close => return None,
                _ => {}
            }
        }
    }
}
