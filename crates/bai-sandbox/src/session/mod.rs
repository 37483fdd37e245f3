//! Compute sessions: their public description, and the real SSH server behind a RUNNING one.
//!
//! Each session owns a directory `<sandbox root>/sessions/<name>-<id8>/` holding its host key,
//! server config and log (`sshd_config`, `sshd.log`; root-readable), the `enter` wrapper, and
//! `home/` (owned by the login account), which stands in for `/home/work`:
//! `home/.ssh/authorized_keys` and `home/id_container`.
//!
//! **User keys**, chosen when the session is created, in the agent's order of priority
//! (modern-ssh.md: `.ssh` folder > stored keypair > generated):
//! 1. [`SessionSpec::authorized_keys`] (the user's own `.ssh` folder): that text is
//!    `authorized_keys`, and no private key is written (no `id_container`, no account key);
//! 2. else the account's stored keypair (`/auth/ssh-keypair`, [`crate::keypair`]), as the
//!    agent writes it: its public key is `authorized_keys`, its private key is `id_container`
//!    and `.ssh/id_rsa`;
//! 3. else an RSA 2048 keypair generated for this session (the kernel runner's fallback).
//!
//! The keypair is read once, at creation: changing it later affects new sessions only, and a
//! session that is stopped and started again keeps its keys.
//!
//! The server is OpenSSH's `sshd` (the default) or Dropbear, which production runs
//! ([`SshServer`]; how Dropbear is given the session's home is explained in `dropbear.rs`).
//! Either way it is forked under `setpriv --pdeathsig KILL` from one long-lived thread, and
//! [`SshdProcess`]'s `Drop` kills and reaps it with everything it forked.
//!
//! This module holds the model (statuses, specs, snapshots, the sandbox's record of a
//! session); the rest is split by concern:
//! - `account`: which OS account sessions log in as;
//! - `home`: the session directory, home, keys and `enter` wrapper;
//! - `sshd`: writing the server's config, spawning it and waiting until it answers;
//! - `cleanup`: killing and reaping a server with everything it forked;
//! - `lifecycle`: the [`crate::Sandbox`] operations that create, change and end sessions.

mod account;
mod cleanup;
mod home;
mod lifecycle;
mod sshd;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::faults::Faults;
use crate::Error;

pub(crate) use account::{detect_account, running_as_root, Account};
pub(crate) use cleanup::reap;
pub(crate) use home::{io_err, prepare_files, run_tool, sh_quote, UserKeys};
use sshd::SSHD;
pub(crate) use sshd::{setpriv, SshdProcess};

/// A session's status, as Backend.AI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Waiting in the scheduler queue.
    Pending,
    /// Scheduled onto an agent.
    Scheduled,
    /// Pulling images and preparing the kernel.
    Preparing,
    /// The container is being created.
    Creating,
    /// Up: its sshd (and apps) answer.
    Running,
    /// Being torn down.
    Terminating,
    /// Gone: not found by name any more.
    Terminated,
    /// Failed.
    Error,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Scheduled,
        Status::Preparing,
        Status::Creating,
        Status::Running,
        Status::Terminating,
        Status::Terminated,
        Status::Error,
    ];

    /// The upper-case wire name (`RUNNING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Scheduled => "SCHEDULED",
            Status::Preparing => "PREPARING",
            Status::Creating => "CREATING",
            Status::Running => "RUNNING",
            Status::Terminating => "TERMINATING",
            Status::Terminated => "TERMINATED",
            Status::Error => "ERROR",
        }
    }

    /// Terminal statuses are invisible to name lookups (protocol.md §4.1).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Terminated)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::InvalidArgument(format!("unknown session status {s:?}")))
    }
}

/// Which SSH server runs behind a RUNNING session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SshServer {
    /// OpenSSH's `sshd` (package `openssh-server`).
    #[default]
    OpenSsh,
    /// Dropbear, as production Backend.AI runs it (package `dropbear-bin`).
    Dropbear,
}

impl SshServer {
    /// Every server, default first.
    pub const ALL: [SshServer; 2] = [SshServer::OpenSsh, SshServer::Dropbear];

    /// The lower-case name (`openssh`, `dropbear`), as `--sshd` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SshServer::OpenSsh => "openssh",
            SshServer::Dropbear => "dropbear",
        }
    }

    /// Fails with [`Error::NotInstalled`] when this server's programs are missing.
    pub fn check_installed(self) -> Result<(), Error> {
        match self {
            SshServer::OpenSsh => {
                Path::new(SSHD)
                    .exists()
                    .then_some(())
                    .ok_or_else(|| Error::NotInstalled {
                        program: SSHD.into(),
                        hint: "install openssh-server (make deps does)".into(),
                    })
            }
            SshServer::Dropbear => crate::dropbear::Tools::find().map(drop),
        }
    }
}

impl fmt::Display for SshServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SshServer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        SshServer::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown SSH server {s:?} (expected openssh or dropbear)"
                ))
            })
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Session name (unique among non-terminal sessions).
    pub name: String,
    /// Initial status; RUNNING starts an sshd.
    pub status: Status,
    /// Extra TCP apps (service ports) that the tcpproxy connects to: `(name, target)`.
    pub apps: Vec<(String, SocketAddr)>,
    /// The user's own `authorized_keys` text; when set, no keypair (neither the account's
    /// stored one nor a generated one) and no `id_container`.
    pub authorized_keys: Option<String>,
    /// The SSH server; `None` takes the sandbox's ([`crate::Config::ssh_server`]).
    pub ssh_server: Option<SshServer>,
    /// Whether the session serves the built-in apps (`jupyter`, `jupyterlab`, `tcp-echo`;
    /// [`crate::WebApp`]), as every demo session does.
    pub web_apps: bool,
}

impl SessionSpec {
    /// A RUNNING session with no extra apps, and the account's stored keypair (or, without
    /// one, a generated keypair).
    pub fn running(name: impl Into<String>) -> Self {
        Self::with_status(name, Status::Running)
    }

    /// A session in the given status, with no extra apps, and the account's stored keypair
    /// (or, without one, a generated keypair).
    pub fn with_status(name: impl Into<String>, status: Status) -> Self {
        SessionSpec {
            name: name.into(),
            status,
            apps: Vec::new(),
            authorized_keys: None,
            ssh_server: None,
            web_apps: false,
        }
    }

    /// Serves the built-in apps (`jupyter`, `jupyterlab`, `tcp-echo`) as service ports.
    pub fn web_apps(mut self) -> Self {
        self.web_apps = true;
        self
    }

    /// Adds an extra TCP app.
    pub fn app(mut self, name: impl Into<String>, target: SocketAddr) -> Self {
        self.apps.push((name.into(), target));
        self
    }

    /// Runs this session on the given SSH server instead of the sandbox's default.
    pub fn ssh_server(mut self, server: SshServer) -> Self {
        self.ssh_server = Some(server);
        self
    }
}

/// A snapshot of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Name.
    pub name: String,
    /// Session UUID.
    pub id: Uuid,
    /// Current status.
    pub status: Status,
    /// The OS account that logs in through its sshd (`work` when available).
    pub account: String,
    /// The directory standing in for `/home/work`.
    pub home: PathBuf,
    /// The SSH server behind the session.
    pub ssh_server: SshServer,
    /// The SSH server's port on 127.0.0.1, when RUNNING.
    pub sshd_port: Option<u16>,
    /// The private key (`home/id_container`), unless the session was made with the user's own
    /// `authorized_keys`.
    pub id_container: Option<PathBuf>,
    /// Extra TCP apps.
    pub apps: Vec<(String, SocketAddr)>,
    /// The built-in apps ([`SessionSpec::web_apps`]), listed after sshd and before `apps`.
    pub web_apps: Vec<crate::WebApp>,
}

/// The sandbox's record of a session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub name: String,
    pub id: Uuid,
    pub status: Status,
    pub account: String,
    pub dir: PathBuf,
    pub home: PathBuf,
    pub authorized_keys_file: PathBuf,
    pub id_container: Option<PathBuf>,
    pub apps: Vec<(String, SocketAddr)>,
    pub web_apps: Vec<crate::WebApp>,
    /// Stops the built-in apps' servers when the record goes.
    pub _web_apps_guard: Option<tokio_util::sync::DropGuard>,
    pub ssh_server: SshServer,
    pub sshd: Option<SshdProcess>,
    pub faults: Faults,
    /// Cancelled when the sshd stops: closes this session's tunnels.
    pub tunnels: CancellationToken,
    pub created_at: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub terminated_at: Option<DateTime<Utc>>,
}

impl SessionEntry {
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            name: self.name.clone(),
            id: self.id,
            status: self.status,
            account: self.account.clone(),
            home: self.home.clone(),
            ssh_server: self.ssh_server,
            sshd_port: self.sshd.as_ref().map(|s| s.port),
            id_container: self.id_container.clone(),
            apps: self.apps.clone(),
            web_apps: self.web_apps.clone(),
        }
    }

    /// Closes the tunnels and hands back the SSH server (if any) for the caller to kill outside
    /// the sessions lock (dropping it blocks).
    #[must_use]
    pub fn stop(&mut self) -> Option<SshdProcess> {
        self.tunnels.cancel();
        self.sshd.take()
    }
}
