//! What the `bai` CLI and the desktop app share.
//!
//! - [`config`]: profiles and settings (endpoint, mode, account, preferred SSH port, TLS) in
//!   the platform's config directory (`$BAI_CONFIG_DIR` overrides it), plus the `BACKEND_*`
//!   variables of the Python client, also read from `./.env`.
//! - [`secrets`]: the [`SecretStore`] seam (OS keyring, a 0600 file fallback, in-memory).
//! - [`Connection`]: login, logout and restore; the API calls bai needs, with errors that name
//!   the profile and say when to log in again.
//! - [`access`]: tunnels to a session's app (preferred port with fallback, ready once the SSH
//!   banner arrives) and the stdio proxy behind `ProxyCommand`.
//! - [`commands`]: ssh/scp/sftp/rsync command lines and the VS Code snippet.
//! - [`keys`]: public key lines, SHA256 fingerprints, the public key of a private key file
//!   without decrypting it, and keeping a saved `id_container` current.
//! - [`ssh_config`]: `Host bai-<session>` entries and the `Include` in `~/.ssh/config`.
//! - [`TunnelRegistry`]: the running tunnels, their stats and dialog data (for the app).
//! - [`Workspace`]: the app's behaviour without UI — one login at a time, its SSH tunnels, key
//!   saving and the profile's preferences (the app's commands are one line over it).
//! - [`about`]: bai's version and build commit (one place for the CLI and the app) and the
//!   server's versions, for `bai version` and the app's About box.
//! - [`remote`]: the in-app SSH/SFTP client over the in-process tunnel (terminals, files,
//!   transfers).
//! - [`display`]: server text made safe for a terminal; [`logging`]: the shared log-filter cap.
//!
//! The library never creates a runtime or a tracing subscriber.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod about;
pub mod access;
pub mod commands;
pub mod config;
mod connection;
pub mod display;
mod error;
mod fsutil;
pub mod keys;
pub mod logging;
pub mod ppk;
pub mod registry;
pub mod remote;
pub mod secrets;
pub mod ssh_config;
pub mod validate;
pub mod workspace;

pub use access::{OpenTunnel, Probe, TcpproxyConnector, TunnelRequest, SSHD_APP};
pub use commands::{Operand, SshEndpoint};
pub use config::{Config, EnvOverrides, Overrides, Profile, ResolvedProfile, Settings};
pub use connection::{looks_like_private_key, save_key, write_download, Connection, Credentials};
pub use error::{api_code, api_hint, Error, ErrorCode, Result};
pub use fsutil::{write_atomic, write_private};
pub use registry::{LoginId, TunnelInfo, TunnelKey, TunnelMeta, TunnelRegistry};
pub use secrets::{
    open_store, AutoStore, FileStore, KeyringStore, MemoryStore, SecretKind, SecretStore,
};
pub use workspace::{
    app_url_path, AppTunnel, KeyFormat, LoginForm, ProfilePrefs, RestoreReport, SavedTunnel,
    SavedTunnels, SshTunnel, Workspace,
};

/// The Backend.AI client crate, re-exported so callers share its types (`Mode`, `Session`,
/// `Sensitive`, …).
pub use bai_api;
/// The tunnel crate, re-exported (`BindOptions`, `Event`, `Options`, …).
pub use bai_tunnel;
