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
//! The manager also keeps the account's SSH keypair (`GET`/`PATCH`/`POST /auth/ssh-keypair`,
//! reachable signed or through `/func`): none at start (`GET` answers
//! `{"ssh_public_key": null}`); once stored, it is the key of every **new** session (the
//! module docs of `keypair` and `session` say how).
//!
//! It plays one Backend.AI server generation ([`Generation`], `Config::generation`,
//! `bai-sandbox --emulate GEN`): 22.09 … 26.x, each with its API version, session lookup,
//! GraphQL schema, download verbs, webserver behaviour, login answers and error bodies (the
//! table is `docs/compatibility.md`). The default is the newest.
//!
//! Fault knobs ([`Faults`]) inject refused ports, dropped WebSockets, slow upgrades, slow reads,
//! failing routes and clock skew, globally or per session.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![recursion_limit = "256"]

mod crypto;
mod download;
mod dropbear;
mod error;
mod faults;
mod generation;
mod gql;
mod keypair;
mod manager;
mod problem;
mod session;
pub mod sign;
pub mod sweep;
mod tunnel;
mod webapps;
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
pub use error::Error;
pub use faults::Faults;
pub use generation::{Generation, Lookup, ParseGenerationError, VerbAnswer};
pub use session::{SessionInfo, SessionSpec, SshServer, Status};
pub use webapps::WebApp;

use session::{reap, Account, SessionEntry, SshdProcess};

/// The newest API version, advertised by default.
pub const DEFAULT_SERVER_VERSION: &str = "v9.20250722";
/// The default [`Config::download_limit`]: 1 MiB, like Backend.AI's agent.
pub const DEFAULT_DOWNLOAD_LIMIT: u64 = 1 << 20;
/// The manager version string in `GET /` of the newest generation (the real manager bai's
/// suites run against, `bai_testkit::realstack`).
pub const MANAGER_VERSION: &str = "26.9.6";

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct Config {
    /// Webserver port on 127.0.0.1 (0 = any free port).
    pub webserver_port: u16,
    /// Manager port on 127.0.0.1 (0 = webserver port + 1 when that is free and the webserver
    /// port was given, else any free port).
    pub manager_port: u16,
    /// Number of RUNNING demo sessions (`demo-1`, `demo-2`, ...) created at start, each with
    /// the built-in apps ([`SessionSpec::web_apps`]).
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
    /// The server generation played ([`Generation`]; the newest by default). It decides the
    /// version `GET /` reports unless [`Config::server_version`] is changed from the default.
    pub generation: Generation,
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
            generation: Generation::default(),
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
    /// The stored SSH keypair of each access key (`/auth/ssh-keypair`); none at start.
    pub ssh_keypairs: Mutex<HashMap<String, keypair::StoredKeypair>>,
    pub login_failures: Mutex<HashMap<String, Vec<std::time::Instant>>>,
    /// The manager's rate-limit windows (`X-RateLimit-*`), per access key or anonymous.
    pub rate_windows: Mutex<HashMap<String, manager::RateWindow>>,
    pub faults: Faults,
    pub cancel: CancellationToken,
    pub download_limit: u64,
    pub generation: Generation,
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
            server_version: if config.server_version == DEFAULT_SERVER_VERSION {
                config.generation.api_version().to_owned()
            } else {
                config.server_version.clone()
            },
            totp_secret: config.totp_secret.clone(),
            account,
            ssh_server: config.ssh_server,
            sessions_dir,
            sessions: Mutex::new(Vec::new()),
            web_sessions: Mutex::new(HashMap::new()),
            ssh_keypairs: Mutex::new(HashMap::new()),
            login_failures: Mutex::new(HashMap::new()),
            rate_windows: Mutex::new(HashMap::new()),
            faults: Faults::new(),
            cancel: CancellationToken::new(),
            download_limit: config.download_limit,
            generation: config.generation,
        });

        let mut sandbox = Sandbox {
            state: state.clone(),
            webserver,
            manager,
            tasks: Vec::new(),
            _root: root,
        };
        sandbox.serve(manager_listener, web_listener);
        tracing::info!(%webserver, %manager, "sandbox listening");

        for i in 1..=config.demo_sessions {
            let mut spec = SessionSpec::running(format!("demo-{i}")).web_apps();
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

    /// The server generation played.
    pub fn generation(&self) -> Generation {
        self.state.generation
    }

    /// The API version `GET /` reports.
    pub fn server_version(&self) -> &str {
        &self.state.server_version
    }

    /// The global fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Serves the manager and the webserver on these listeners.
    fn serve(
        &mut self,
        manager_listener: tokio::net::TcpListener,
        web_listener: tokio::net::TcpListener,
    ) {
        let manager_router = manager::router(self.state.clone());
        let web_router =
            webserver::router(self.state.clone(), manager_router.clone(), self.manager);
        for (listener, router) in [
            (manager_listener, manager_router),
            (web_listener, web_router),
        ] {
            use axum::serve::ListenerExt as _;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let cancel = self.state.cancel.clone();
            self.tasks.push(tokio::spawn(async move {
                let serve = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { cancel.cancelled().await });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "sandbox server failed");
                }
            }));
        }
    }

    /// Stops the manager and the webserver: their listeners close (connections already
    /// accepted are not cut); sessions, their sshds, users and web logins stay, as behind a
    /// restarted server. [`Sandbox::start_servers`] starts them again on the same ports.
    pub async fn stop_servers(&mut self) {
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            let _ = t.await;
        }
        tracing::info!(webserver = %self.webserver, manager = %self.manager, "sandbox servers stopped");
    }

    /// Starts the manager and the webserver again on their ports (after
    /// [`Sandbox::stop_servers`]; a no-op while they run).
    ///
    /// # Errors
    /// When a port cannot be bound again within 10 seconds.
    pub async fn start_servers(&mut self) -> Result<(), Error> {
        if !self.tasks.is_empty() {
            return Ok(());
        }
        let rebind = |port: u16| async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                match bind(port).await {
                    Ok(l) => return Ok(l),
                    Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        };
        let manager_listener = rebind(self.manager.port()).await?;
        let web_listener = rebind(self.webserver.port()).await?;
        self.serve(manager_listener, web_listener);
        tracing::info!(webserver = %self.webserver, manager = %self.manager, "sandbox servers started again");
        Ok(())
    }

    /// Ends every web login (session mode), as when they expire: the next request with one of
    /// their session ids is unauthenticated. Returns how many ended.
    pub fn expire_web_logins(&self) -> usize {
        let mut logins = lock(&self.state.web_sessions);
        let n = logins.len();
        logins.clear();
        n
    }

    /// [`Sandbox::stop_servers`] then [`Sandbox::start_servers`]: a server restarted on the
    /// same ports.
    ///
    /// # Errors
    /// When a port cannot be bound again.
    pub async fn restart_servers(&mut self) -> Result<(), Error> {
        self.stop_servers().await;
        self.start_servers().await
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
