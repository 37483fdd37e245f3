//! The in-app SSH/SFTP client: russh over the in-process tunnel (no local port), the session's
//! key held in memory only, host keys pinned on first use in bai's `known_hosts` (shared with
//! OpenSSH, [`hostkey`]), keep-alives, PTY shells ([`shell`]), SFTP ([`sftp`]) and a transfer
//! engine with pipelined requests, progress and cancellation ([`transfer`], [`queue`]).
//!
//! How a connection is made ([`SshClient::connect`]): a `tokio::io::duplex` pair; one end is
//! carried by [`bai_tunnel::run_stdio`] (the same code path as `bai proxy`, one WebSocket to the
//! session's `sshd` app), russh speaks SSH on the other. [`Workspace::remote_target`] gathers
//! what a connection needs (the tcpproxy connector, the account, the key, the pin) and
//! [`Remotes`] keeps one connection per session of the current login, shared by terminals and
//! the file browser.
//!
//! [`Workspace::remote_target`]: crate::Workspace::remote_target

pub(crate) mod connect;
#[cfg(test)]
mod hostile_tests;
pub mod hostkey;
mod pool;
pub mod queue;
pub mod sftp;
pub mod shell;
pub mod transfer;

pub use connect::{SshClient, Target};
pub use pool::Remotes;
pub use queue::{Direction, TransferInfo, TransferState, Transfers, MAX_RUNNING};
pub use sftp::{EntryKind, FileEntry, Listing, Sftp};
pub use shell::{ShellEvent, ShellReader, ShellWriter};
pub use transfer::Progress;

/// The terminal type the PTY asks for.
pub const TERM: &str = "xterm-256color";
