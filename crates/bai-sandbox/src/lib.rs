//! A Backend.AI-compatible server on loopback whose sessions are real SSH servers: OpenSSH's
//! `sshd`, or Dropbear as production runs it ([`SshServer`]).
//!
//! [`Sandbox::start`] binds two HTTP servers on 127.0.0.1: the **webserver** (session mode:
//! `/server/login`, cookie or `X-BackendAI-SessionID`, `/func/*`) and the **manager** (API
//! mode: HMAC-signed requests, GraphQL session list, `tcpproxy` WebSockets, downloads). The wire
//! behaviour follows `docs/protocol.md`. Every RUNNING session runs its own SSH server on a free
//! port; the `sshd` app of its tcpproxy connects there. Dropping the [`Sandbox`] kills every
//! server (and whatever it forked), even when a test panics.
//!
//! Fault knobs ([`Faults`]) inject refused ports, dropped WebSockets, slow upgrades, slow reads,
//! failing routes and clock skew, globally or per session.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![recursion_limit = "256"]

mod crypto;
mod download;
mod dropbear;
mod faults;
mod gql;
mod manager;
mod problem;
mod session;
pub mod sign;
mod sweep;
mod tunnel;
mod webserver;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crypto::{decrypt_login_body, encrypt_login_body, login_key, totp_at, totp_now};
pub use faults::Faults;
pub use session::{SessionInfo, SessionSpec, SshServer, Status};

use session::{reap, Account, SessionEntry, SshdProcess};

/// The newest API version, advertised by default.
pub const DEFAULT_SERVER_VERSION: &str = "v9.20250722";
/// The default [`Config::download_limit`]: 1 MiB, like Backend.AI's agent.
pub const DEFAULT_DOWNLOAD_LIMIT: u64 = 1 << 20;
/// The manager version string in `GET /`.
pub const MANAGER_VERSION: &str = "26.8.0";

/// Errors of the sandbox library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A port could not be bound.
    #[error("could not bind 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
    /// A file-system or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A helper program (`ssh-keygen`) failed.
    #[error("{program} failed: {stderr}")]
    Tool {
        /// The program.
        program: String,
        /// Its standard error.
        stderr: String,
    },
    /// The SSH server (sshd or dropbear) did not come up.
    #[error("{message}; server log:\n{log}")]
    Sshd {
        /// What went wrong.
        message: String,
        /// The server's log.
        log: String,
    },
    /// A program the chosen SSH server needs is not installed.
    #[error("{program} is not installed: {hint}")]
    NotInstalled {
        /// The program looked for.
        program: String,
        /// What to install.
        hint: String,
    },
    /// A non-terminal session already has this name.
    #[error("a session named {0:?} already exists")]
    SessionExists(String),
    /// No session has this name.
    #[error("no session named {0:?}")]
    SessionNotFound(String),
    /// A bad argument (empty name, unknown status, ...).
    #[error("{0}")]
    InvalidArgument(String),
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct Config {
    /// Webserver port on 127.0.0.1 (0 = any free port).
    pub webserver_port: u16,
    /// Manager port on 127.0.0.1 (0 = webserver port + 1 when that is free and the webserver
    /// port was given, else any free port).
    pub manager_port: u16,
    /// Number of RUNNING demo sessions (`demo-1`, `demo-2`, ...) created at start.
    pub demo_sessions: usize,
    /// Extra TCP apps added to every demo session.
    pub demo_apps: Vec<(String, SocketAddr)>,
    /// The API version advertised by `GET /` (e.g. `v7.20230615` to test negotiation).
    pub server_version: String,
    /// When set, logging in needs an `otp` (RFC 6238 over this base32 secret).
    pub totp_secret: Option<String>,
    /// The demo user's password; `None` (the default) generates a random one per start, so
    /// that no other local user can guess it.
    pub password: Option<String>,
    /// The SSH server of sessions that do not choose one ([`SessionSpec::ssh_server`]).
    pub ssh_server: SshServer,
    /// The largest file `download_single` returns, and the largest tar of one requested file
    /// or directory of a multi-file `download` (Backend.AI's agent refuses more than 1 MiB,
    /// the default). Larger requests are refused with 400 before anything is read; what is
    /// allowed is streamed, so memory does not grow with this limit.
    pub download_limit: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            webserver_port: 0,
            manager_port: 0,
            demo_sessions: 0,
            demo_apps: Vec::new(),
            server_version: DEFAULT_SERVER_VERSION.to_owned(),
            totp_secret: None,
            password: None,
            ssh_server: SshServer::default(),
            download_limit: DEFAULT_DOWNLOAD_LIMIT,
        }
    }
}

/// The one user of the sandbox: all sessions belong to it.
#[derive(Debug, Clone)]
pub struct DemoUser {
    /// Login e-mail (`username` at `/server/login`).
    pub email: String,
    /// Login password.
    pub password: String,
    /// HMAC access key.
    pub access_key: String,
    /// HMAC secret key.
    pub secret_key: String,
    /// The user's UUID.
    pub user_id: Uuid,
}

/// One web (login) session of the webserver.
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    pub access_key: Option<String>,
    pub expires: chrono::DateTime<Utc>,
}

/// State shared by both servers.
#[derive(Debug)]
pub(crate) struct State {
    pub user: DemoUser,
    pub server_version: String,
    pub totp_secret: Option<String>,
    pub account: Account,
    pub ssh_server: SshServer,
    pub sessions_dir: PathBuf,
    pub sessions: Mutex<Vec<SessionEntry>>,
    pub web_sessions: Mutex<HashMap<String, WebSession>>,
    pub login_failures: Mutex<HashMap<String, Vec<std::time::Instant>>>,
    pub faults: Faults,
    pub cancel: CancellationToken,
    pub download_limit: u64,
}

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the clean-up).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// The manager's notion of now (shifted by the clock-skew fault).
    pub fn manager_now(&self) -> chrono::DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.faults.clock_skew())
    }
}

/// A running sandbox. Dropping it stops the servers and kills every SSH server.
#[derive(Debug)]
pub struct Sandbox {
    state: Arc<State>,
    webserver: SocketAddr,
    manager: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    // Declared last: removed after the sshds are gone.
    _root: tempfile::TempDir,
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| Error::Bind { port, source })
}

impl Sandbox {
    /// Binds both servers, creates the demo sessions and starts serving.
    ///
    /// Fails when running as root and the OS user `work` does not exist (sessions never log
    /// in as root), or when Dropbear is chosen but not installed.
    pub async fn start(config: Config) -> Result<Sandbox, Error> {
        let account = session::detect_account()?;
        if config.ssh_server == SshServer::Dropbear {
            config.ssh_server.check_installed()?;
        }
        let swept = sweep::sweep(&std::env::temp_dir());
        if swept > 0 {
            tracing::info!(swept, "removed directories of sandboxes that were killed");
        }
        let root = tempfile::Builder::new()
            .prefix("bai-sandbox-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "creating the sandbox directory".into(),
                source,
            })?;
        sweep::claim(root.path());
        let sessions_dir = root.path().join("sessions");
        std::fs::create_dir_all(&sessions_dir).map_err(|source| Error::Io {
            context: "creating the sessions directory".into(),
            source,
        })?;
        // The login account (not root) must traverse to its home inside.
        for d in [root.path(), sessions_dir.as_path()] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).map_err(
                |source| Error::Io {
                    context: format!("chmod {}", d.display()),
                    source,
                },
            )?;
        }

        let web_listener = bind(config.webserver_port).await?;
        let manager_listener = if config.manager_port == 0 && config.webserver_port != 0 {
            match bind(config.webserver_port.wrapping_add(1)).await {
                Ok(l) => l,
                Err(_) => bind(0).await?,
            }
        } else {
            bind(config.manager_port).await?
        };
        let local = |l: &tokio::net::TcpListener| {
            l.local_addr().map_err(|source| Error::Io {
                context: "reading the bound address".into(),
                source,
            })
        };
        let webserver = local(&web_listener)?;
        let manager = local(&manager_listener)?;

        const ALNUM_UP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let user = DemoUser {
            email: "demo@example.com".into(),
            password: config
                .password
                .clone()
                .unwrap_or_else(|| random_string(20, ALNUM)),
            access_key: format!("AKIA{}", random_string(16, ALNUM_UP)),
            secret_key: random_string(40, ALNUM),
            user_id: Uuid::new_v4(),
        };
        let state = Arc::new(State {
            user,
            server_version: config.server_version.clone(),
            totp_secret: config.totp_secret.clone(),
            account,
            ssh_server: config.ssh_server,
            sessions_dir,
            sessions: Mutex::new(Vec::new()),
            web_sessions: Mutex::new(HashMap::new()),
            login_failures: Mutex::new(HashMap::new()),
            faults: Faults::new(),
            cancel: CancellationToken::new(),
            download_limit: config.download_limit,
        });

        let manager_router = manager::router(state.clone());
        let web_router = webserver::router(state.clone(), manager_router.clone(), manager);
        let mut sandbox = Sandbox {
            state: state.clone(),
            webserver,
            manager,
            tasks: Vec::new(),
            _root: root,
        };
        for (listener, router) in [
            (manager_listener, manager_router),
            (web_listener, web_router),
        ] {
            use axum::serve::ListenerExt as _;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let cancel = state.cancel.clone();
            sandbox.tasks.push(tokio::spawn(async move {
                let serve = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { cancel.cancelled().await });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "sandbox server failed");
                }
            }));
        }
        tracing::info!(%webserver, %manager, "sandbox listening");

        for i in 1..=config.demo_sessions {
            let mut spec = SessionSpec::running(format!("demo-{i}"));
            spec.apps = config.demo_apps.clone();
            sandbox.create_session(spec).await?;
        }
        Ok(sandbox)
    }

    /// `http://127.0.0.1:PORT` of the webserver (session mode).
    pub fn webserver_url(&self) -> String {
        format!("http://{}", self.webserver)
    }

    /// `http://127.0.0.1:PORT` of the manager (API mode).
    pub fn manager_url(&self) -> String {
        format!("http://{}", self.manager)
    }

    /// The webserver's address.
    pub fn webserver_addr(&self) -> SocketAddr {
        self.webserver
    }

    /// The manager's address.
    pub fn manager_addr(&self) -> SocketAddr {
        self.manager
    }

    /// The demo user (login and keypair).
    pub fn user(&self) -> &DemoUser {
        &self.state.user
    }

    /// The OS account sessions log in as.
    pub fn account(&self) -> &str {
        &self.state.account.name
    }

    /// The SSH server of sessions that do not choose one.
    pub fn ssh_server(&self) -> SshServer {
        self.state.ssh_server
    }

    /// Creates a session; a RUNNING one gets its SSH server before this returns.
    ///
    /// Fails with [`Error::NotInstalled`] when the session needs Dropbear and it is missing.
    pub async fn create_session(&self, spec: SessionSpec) -> Result<SessionInfo, Error> {
        let name = spec.name.trim().to_owned();
        if name.is_empty() || name.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "bad session name {:?}",
                spec.name
            )));
        }
        if self.find_live(&name).is_some() {
            return Err(Error::SessionExists(name));
        }
        let server = spec.ssh_server.unwrap_or(self.state.ssh_server);
        // Dropbear's tools make the host key now; sshd is looked for only when one starts, as
        // before (a sandbox without RUNNING sessions works without it).
        if server == SshServer::Dropbear {
            server.check_installed()?;
        }
        let id = Uuid::new_v4();
        let dir = self
            .state
            .sessions_dir
            .join(format!("{name}-{}", &id.simple().to_string()[..8]));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let account = self.state.account.clone();
        let (home, ak_file, id_container) =
            session::prepare_files(&dir, &account, spec.authorized_keys.as_deref(), server).await?;
        let sshd = if spec.status == Status::Running {
            Some(SshdProcess::start(server, &dir, &home, &ak_file, &account).await?)
        } else {
            None
        };
        let now = Utc::now();
        let entry = SessionEntry {
            name: name.clone(),
            id,
            status: spec.status,
            account: account.name,
            dir,
            home,
            authorized_keys_file: ak_file,
            id_container,
            apps: spec.apps,
            ssh_server: server,
            sshd,
            faults: Faults::new(),
            tunnels: CancellationToken::new(),
            created_at: now,
            status_changed: now,
            terminated_at: spec.status.is_terminal().then_some(now),
        };
        let info = entry.info();
        let rejected = {
            let mut sessions = lock(&self.state.sessions);
            if sessions
                .iter()
                .any(|s| s.name == name && !s.status.is_terminal())
            {
                Some(entry)
            } else {
                sessions.push(entry);
                None
            }
        };
        if let Some(mut entry) = rejected {
            reap(entry.stop().into_iter().collect()).await;
            return Err(Error::SessionExists(name));
        }
        Ok(info)
    }

    /// Index of the non-terminal session with this name.
    fn find_live(&self, name: &str) -> Option<usize> {
        lock(&self.state.sessions)
            .iter()
            .position(|s| s.name == name && !s.status.is_terminal())
    }

    /// Index of the session with this name: the live one, else the newest terminated one.
    fn find_any(&self, name: &str) -> Option<usize> {
        self.find_live(name).or_else(|| {
            lock(&self.state.sessions)
                .iter()
                .rposition(|s| s.name == name)
        })
    }

    /// Changes a session's status: RUNNING starts its SSH server, any other status stops it
    /// (and closes its tunnels).
    pub async fn set_status(&self, name: &str, status: Status) -> Result<(), Error> {
        let idx = self
            .find_any(name)
            .ok_or_else(|| Error::SessionNotFound(name.to_owned()))?;
        let mut stopped = None;
        let (id, dir, home, ak, server, needs_sshd) = {
            let mut sessions = lock(&self.state.sessions);
            let s = &mut sessions[idx];
            if status != Status::Running {
                stopped = s.stop();
            }
            let now = Utc::now();
            if s.status != status {
                s.status_changed = now;
            }
            s.status = status;
            s.terminated_at = status.is_terminal().then_some(now);
            (
                s.id,
                s.dir.clone(),
                s.home.clone(),
                s.authorized_keys_file.clone(),
                s.ssh_server,
                status == Status::Running && s.sshd.is_none(),
            )
        };
        reap(stopped.into_iter().collect()).await;
        if needs_sshd {
            let sshd = SshdProcess::start(server, &dir, &home, &ak, &self.state.account).await?;
            let unused = {
                let mut sessions = lock(&self.state.sessions);
                match sessions.iter_mut().find(|s| s.id == id) {
                    Some(s) if s.status == Status::Running && s.sshd.is_none() => {
                        s.tunnels = CancellationToken::new();
                        s.sshd = Some(sshd);
                        None
                    }
                    _ => Some(sshd),
                }
            };
            reap(unused.into_iter().collect()).await;
        }
        Ok(())
    }

    /// Terminates a session: stops its SSH server, closes its tunnels; its name is free again.
    pub async fn terminate(&self, name: &str) -> Result<(), Error> {
        let idx = self
            .find_live(name)
            .ok_or_else(|| Error::SessionNotFound(name.to_owned()))?;
        let stopped = {
            let mut sessions = lock(&self.state.sessions);
            let s = &mut sessions[idx];
            let stopped = s.stop();
            let now = Utc::now();
            s.status = Status::Terminated;
            s.status_changed = now;
            s.terminated_at = Some(now);
            stopped
        };
        reap(stopped.into_iter().collect()).await;
        Ok(())
    }

    /// Snapshots of every session (terminated ones included), in creation order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        lock(&self.state.sessions)
            .iter()
            .map(SessionEntry::info)
            .collect()
    }

    /// The session with this name (the live one, else the newest terminated one).
    pub fn session(&self, name: &str) -> Option<SessionInfo> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions).get(idx).map(SessionEntry::info)
    }

    /// The global fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// A handle to one session's fault knobs (live session first, else newest terminated).
    pub fn session_faults(&self, name: &str) -> Option<Faults> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions)
            .get(idx)
            .map(|s| s.faults.clone())
    }

    /// PIDs of the SSH servers now running (for clean-up tests): each sshd listener, and for
    /// Dropbear the `unshare` whose descendants are dropbear and everything it forked.
    pub fn sshd_pids(&self) -> Vec<u32> {
        lock(&self.state.sessions)
            .iter()
            .filter_map(|s| s.sshd.as_ref().map(SshdProcess::pid))
            .collect()
    }

    /// PID of the SSH server of the session with this name (live session first), when it is
    /// RUNNING (as in [`Sandbox::sshd_pids`]).
    pub fn session_sshd_pid(&self, name: &str) -> Option<u32> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions)
            .get(idx)
            .and_then(|s| s.sshd.as_ref().map(SshdProcess::pid))
    }

    /// Stops everything and waits (briefly) for the servers to finish.
    pub async fn shutdown(mut self) {
        reap(self.stop_all()).await;
        for t in std::mem::take(&mut self.tasks) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Cancels the servers and tunnels and takes every SSH server out of the sessions (to be
    /// killed by dropping them, outside the lock).
    fn stop_all(&self) -> Vec<SshdProcess> {
        self.state.cancel.cancel();
        let mut sessions = lock(&self.state.sessions);
        sessions.iter_mut().filter_map(SessionEntry::stop).collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Synchronous on purpose: this also runs when a test panics, and must kill everything.
        drop(self.stop_all());
        for t in &self.tasks {
            t.abort();
        }
    }
}
