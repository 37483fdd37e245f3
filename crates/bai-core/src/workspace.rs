//! The behaviour behind the desktop app's buttons, with no UI in it: one login at a time
//! (restore, log in with or without "remember me", log out), the session list, SSH tunnels of
//! the current login with what the connection dialog shows about them, saving a session's key,
//! the profile's preferences, and (in `workspace/keypair.rs`) the account's SSH keypair and the
//! profile's own key, and (in `workspace/apps.rs`) tunnels to the session's other apps. The
//! app's commands call these one line each; the CLI shares
//! the pieces it needs ([`save_profile`], [`crate::config::validate_port`],
//! [`crate::config::validate_account`]), so the two cannot drift.
//!
//! The login sits behind a `std::sync::Mutex` that is only held to clone or swap it, never
//! across an `.await` (a [`Connection`] is a cheap clone of the API client).
//!
//! Length: about 500 lines of code (one type with the app's whole behaviour); its unit tests
//! follow, and the behaviour is tested end to end through the app's IPC suite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod apps;
mod keypair;
mod relogin;
mod remote;
mod restore;
pub use apps::{app_url_path, AppTunnel};
pub use keypair::{keypair_of_private_file, AccountKey};
pub use restore::{restore_with, Dropped, Reopened, RestoreReport, SavedTunnel, SavedTunnels};

use bai_api::{Mode, Sensitive, Session};
use bai_tunnel::PortChoice;

use crate::config::{mode_name, parse_endpoint, validate_account, validate_port};
use crate::registry::{TunnelInfo, TunnelKey, TunnelMeta, TunnelRegistry};
use crate::secrets::{MemoryStore, SecretKind, SecretStore};
use crate::{
    Config, Connection, Credentials, EnvOverrides, Error, OpenTunnel, Overrides, ResolvedProfile,
    Result, TunnelRequest, SSHD_APP,
};

/// A login form: the server, the mode and the credentials of that mode.
#[derive(Clone, Default)]
pub struct LoginForm {
    /// The webserver URL (session mode) or the manager URL (API mode).
    pub endpoint: String,
    /// Session or API mode.
    pub mode: Mode,
    /// Session mode: email.
    pub email: Option<String>,
    /// Session mode: password.
    pub password: Option<Sensitive<String>>,
    /// API mode: access key.
    pub access_key: Option<String>,
    /// API mode: secret key.
    pub secret_key: Option<Sensitive<String>>,
    /// One-time password.
    pub otp: Option<String>,
    /// Keep the login (and the profile) for the next start.
    pub remember: bool,
}

// Never print the secrets.
impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("endpoint", &self.endpoint)
            .field("mode", &self.mode)
            .field("email", &self.email)
            .field("access_key", &self.access_key)
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

/// The preferences stored in the profile (shared with the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePrefs {
    /// The port SSH tunnels try first (`None`: any free port).
    pub preferred_ssh_port: Option<u16>,
    /// The account inside sessions.
    pub account: String,
}

/// The formats a session key is saved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// The key as the session has it (`id_container`, for OpenSSH).
    Openssh,
    /// PuTTY-User-Key-File-2 (PuTTY, FileZilla, WinSCP).
    Ppk,
}

/// An SSH tunnel of the current login, with what the connection dialog shows.
#[derive(Debug, Clone)]
pub struct SshTunnel {
    /// The session as the caller named it.
    pub session: String,
    /// The session's id (the registry key; a host-key alias).
    pub session_id: String,
    /// The local port.
    pub port: u16,
    /// The dialog's data: account, preferred port, fallback, saved key.
    pub meta: TunnelMeta,
    /// The key saved for this session is no longer in its file (replaced by another key, or
    /// removed): the dialog says so instead of showing it as saved.
    pub saved_key_stale: bool,
}

/// One login at a time, its tunnels, and the profile it is saved in.
#[derive(Debug)]
pub struct Workspace {
    config_dir: PathBuf,
    store: Arc<dyn SecretStore>,
    conn: Mutex<Option<Connection>>,
    tunnels: TunnelRegistry,
}

impl Workspace {
    /// A workspace over a config directory and a secret store.
    pub fn new(config_dir: PathBuf, store: Arc<dyn SecretStore>) -> Self {
        Workspace {
            config_dir,
            store,
            conn: Mutex::new(None),
            tunnels: TunnelRegistry::new(),
        }
    }

    /// The configuration directory.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current login, if any.
    pub fn connection(&self) -> Option<Connection> {
        self.slot().clone()
    }

    fn require_connection(&self) -> Result<Connection> {
        self.connection().ok_or_else(|| Error::NotLoggedIn {
            profile: self.profile_name_now(),
        })
    }

    fn replace_connection(&self, conn: Option<Connection>) -> Option<Connection> {
        std::mem::replace(&mut *self.slot(), conn)
    }

    /// The running tunnels (all logins).
    pub fn tunnels(&self) -> &TunnelRegistry {
        &self.tunnels
    }

    fn load_config(&self) -> Result<Config> {
        Config::load_from(self.config_dir.clone())
    }

    fn profile_name_now(&self) -> String {
        match self.connection() {
            Some(c) => c.profile().name.clone(),
            None => self
                .load_config()
                .map(|c| c.profile_name(None))
                .unwrap_or_else(|_| crate::config::DEFAULT_PROFILE.to_owned()),
        }
    }

    fn forget_secrets(&self, profile: &str) -> Result<()> {
        for kind in SecretKind::ALL {
            self.store.delete(profile, kind)?;
        }
        Ok(())
    }

    /// The saved login of the default profile, checked with the server in session mode:
    /// `None` when there is none; [`Error::LoginExpired`] (and the stale login forgotten) when
    /// the server no longer accepts it. The app reads no `BACKEND_*` variables.
    pub async fn restore_saved(&self) -> Result<Option<Connection>> {
        if let Some(c) = self.connection() {
            return Ok(Some(c));
        }
        let config = self.load_config()?;
        let name = config.profile_name(None);
        let profile = match config.resolve(&name, &EnvOverrides::default(), &Overrides::default()) {
            Ok(p) => p,
            Err(Error::NoEndpoint { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let conn = match Connection::restore(profile, self.store.clone()) {
            Ok(c) => c,
            Err(e) if e.needs_login() => return Ok(None),
            Err(e) => return Err(e),
        };
        if conn.profile().mode != Mode::Api {
            let check = conn
                .client()
                .login_check()
                .await
                .map_err(|e| conn.map_err(e))?;
            if !check.authenticated {
                self.store.delete(&name, SecretKind::LoginSession)?;
                return Err(Error::LoginExpired { profile: name });
            }
        }
        tracing::info!(endpoint = %conn.profile().endpoint, mode = mode_name(conn.profile().mode), "restored the saved login");
        self.replace_connection(Some(conn.clone()));
        Ok(Some(conn))
    }

    /// Logs in. With `remember` the login and the profile (endpoint, mode, user) are saved for
    /// the next start; without it nothing is persisted and any saved login of the profile is
    /// forgotten. Tunnels of the previous login stop, unless it was the same account (same
    /// endpoint, mode and user): those of its sessions still running are kept and use the new
    /// login's credentials from now on (`workspace/relogin.rs`).
    pub async fn login(&self, form: LoginForm) -> Result<Connection> {
        let endpoint = parse_endpoint(&form.endpoint)?;
        let mut config = self.load_config()?;
        let name = config.profile_name(None);
        let access_key = nonempty(form.access_key);
        let overrides = Overrides {
            endpoint: Some(endpoint.to_string()),
            mode: Some(form.mode),
            access_key: if form.mode == Mode::Api {
                access_key.clone()
            } else {
                None
            },
            ..Overrides::default()
        };
        let mut profile = config.resolve(&name, &EnvOverrides::default(), &overrides)?;
        let creds = match form.mode {
            Mode::Api => Credentials::Keypair {
                access_key: access_key
                    .ok_or_else(|| Error::InvalidInput("enter your access key".into()))?,
                secret_key: form
                    .secret_key
                    .filter(|s| !s.expose().is_empty())
                    .ok_or_else(|| Error::InvalidInput("enter your secret key".into()))?,
            },
            _ => {
                let email = nonempty(form.email)
                    .ok_or_else(|| Error::InvalidInput("enter your email".into()))?;
                profile.email = Some(email.clone());
                Credentials::Password {
                    email,
                    password: form
                        .password
                        .filter(|s| !s.expose().is_empty())
                        .ok_or_else(|| Error::InvalidInput("enter your password".into()))?,
                    otp: nonempty(form.otp),
                    save_password: false,
                }
            }
        };
        let store: Arc<dyn SecretStore> = if form.remember {
            self.store.clone()
        } else {
            Arc::new(MemoryStore::new())
        };
        let conn = Connection::login(profile, store, creds).await?;
        if form.remember {
            let p = conn.profile().clone();
            save_profile(&mut config, &name, &p, p.email.clone())?;
        } else {
            self.forget_secrets(&name)?;
        }
        // The new login first, then the old tunnels stop: a tunnel of the old login that
        // finishes opening in between sees the change and stops itself (open_ssh). Those of
        // the same account are taken over first, with the new credentials.
        self.replace_connection(Some(conn.clone()));
        self.adopt_tunnels(&conn).await;
        self.tunnels.stop_other_logins(&conn.login_id()).await;
        tracing::info!(endpoint = %conn.profile().endpoint, mode = mode_name(conn.profile().mode), remember = form.remember, "logged in");
        Ok(conn)
    }

    /// Logs out (on the server too, best effort) and forgets the login's secrets. Every tunnel
    /// stops first: API-mode tunnels would otherwise go on signing requests.
    pub async fn logout(&self) -> Result<()> {
        let old = self.replace_connection(None);
        self.tunnels.stop_all().await;
        match old {
            Some(c) => Connection::logout(c.profile(), c.store().as_ref()).await?,
            None => {
                let config = self.load_config()?;
                self.forget_secrets(&config.profile_name(None))?;
            }
        }
        tracing::info!("logged out");
        Ok(())
    }

    /// The current login's active sessions; tunnels of sessions that left RUNNING (or
    /// disappeared) are stopped. The flag says whether any stopped.
    pub async fn refresh_sessions(&self) -> Result<(Vec<Session>, bool)> {
        let conn = self.require_connection()?;
        let sessions = conn.list_sessions(false).await?;
        let running: Vec<&str> = sessions
            .iter()
            .filter(|s| s.status == "RUNNING")
            .flat_map(|s| [s.id.as_str(), s.name.as_str()])
            .collect();
        let login = conn.login_id();
        let gone: Vec<String> = self
            .tunnels
            .list()
            .into_iter()
            .filter(|t| t.key.login == login && !running.contains(&t.key.session.as_str()))
            .map(|t| t.key.session)
            .collect();
        let mut stopped = false;
        for s in gone {
            stopped |= self.tunnels.stop_session(&login, &s).await > 0;
        }
        Ok((sessions, stopped))
    }

    fn ssh_key_of(&self, session: &str) -> Option<(Connection, TunnelKey)> {
        let conn = self.connection()?;
        let key = self.tunnels.find(&conn.login_id(), session, SSHD_APP)?;
        Some((conn, key))
    }

    /// The current login's open tunnel to `app` of `session` (name or id), when it is still
    /// that session's: its key. A tunnel of a session since re-created under the same name is
    /// stopped. Also returns the session when it had to be looked up.
    async fn reusable_tunnel(
        &self,
        session: &str,
        app: &str,
    ) -> Result<(Option<TunnelKey>, Option<Session>)> {
        let Some(conn) = self.connection() else {
            return Ok((None, None));
        };
        let Some(key) = self.tunnels.find(&conn.login_id(), session, app) else {
            return Ok((None, None));
        };
        // Found by name: the session may have been re-created under it (a new id).
        if key.session == session {
            return Ok((Some(key), None));
        }
        let s = conn.find_session(session).await?;
        if s.id == key.session {
            return Ok((Some(key), Some(s)));
        }
        self.tunnels.stop(&key).await;
        Ok((None, Some(s)))
    }

    /// Registers a tunnel `conn` just opened, with its dialog data, and returns its key;
    /// unless another click won the race (its tunnel is kept, this one stopped) or the login
    /// changed while it opened (stopped, [`Error::NotLoggedIn`]).
    async fn register_tunnel(
        &self,
        conn: &Connection,
        tunnel: OpenTunnel,
        meta: TunnelMeta,
    ) -> Result<TunnelKey> {
        let key = TunnelKey::of(&tunnel);
        if self.tunnels.local_addr(&key).is_some() {
            // Another click won the race: keep its tunnel.
            tunnel.handle.stop().await;
            return Ok(key);
        }
        let still_logged_in = || self.connection().map(|c| c.login_id()) == Some(key.login.clone());
        let logged_out = || Error::NotLoggedIn {
            profile: conn.profile().name.clone(),
        };
        if !still_logged_in() {
            // Logged out, or in as someone else, while this tunnel was opening.
            tunnel.handle.stop().await;
            return Err(logged_out());
        }
        if let Some(old) = self.tunnels.insert_with(tunnel, meta) {
            old.handle.stop().await;
        }
        // Checked again after the insert: a logout or a new login that ran meanwhile either
        // stopped this tunnel already or is seen here.
        if !still_logged_in() {
            if let Some(t) = self.tunnels.remove(&key) {
                t.handle.stop().await;
            }
            return Err(logged_out());
        }
        Ok(key)
    }

    /// Opens (or returns the open) SSH tunnel of `session` (name or id): the preferred SSH port
    /// when free, else a random one; ready once sshd's banner came through it. `account`
    /// replaces the profile's account for this session (validated like the profile's).
    pub async fn open_ssh(&self, session: &str, account: Option<String>) -> Result<SshTunnel> {
        self.open_ssh_with(session, account, None).await
    }

    /// [`Workspace::open_ssh`], trying `port` first (else the profile's preferred port) with
    /// fallback to a free port.
    async fn open_ssh_with(
        &self,
        session: &str,
        account: Option<String>,
        port: Option<u16>,
    ) -> Result<SshTunnel> {
        let account = nonempty(account)
            .map(|a| validate_account(&a))
            .transpose()?;
        let (open, found) = self.reusable_tunnel(session, SSHD_APP).await?;
        if let Some(key) = open {
            if let Some(user) = account {
                self.tunnels.update_meta(&key, |m| m.user = user);
            }
            return self.ssh_tunnel(session);
        }
        let conn = self.require_connection()?;
        let prefs = self.profile_prefs()?;
        let user = account.unwrap_or(prefs.account);
        let preferred = port.or(prefs.preferred_ssh_port);
        // The registry keys on the session's id: a session re-created under the same name is
        // another session.
        let found = match found {
            Some(s) => s,
            None => conn.find_session(session).await?,
        };
        let mut req = TunnelRequest::new(&conn, session, SSHD_APP, preferred);
        req.session_id = Some(found.id.clone());
        req.bind.fallback = true;
        let tunnel = conn.open_tunnel(req).await?;
        // The tunnel never depends on the key: sshd answered through it, so the dialog opens
        // whatever the key download says, and an unusable key is one line in the key section.
        let (has_id_container, key_problem) = match conn.fetch_ssh_key(session).await {
            Ok(_) => (true, None),
            Err(Error::NoSessionKey { .. }) => (false, None),
            Err(e) => {
                tracing::warn!(session, error = %e, "the session's id_container cannot be used");
                (false, Some(e.to_string()))
            }
        };
        let port = tunnel.local_addr().port();
        let fallback = match &tunnel.choice {
            PortChoice::Fallback { preferred, reason } => Some((
                *preferred,
                format!(
                    "The preferred port {preferred} could not be used ({reason}); port {port} was assigned instead."
                ),
            )),
            _ => None,
        };
        tracing::info!(session, port, note = %tunnel.port_note, "ssh tunnel ready");
        let meta = TunnelMeta {
            user,
            preferred,
            fallback,
            has_id_container,
            key_problem,
            protocol: "tcp".to_owned(),
            ..TunnelMeta::default()
        };
        self.register_tunnel(&conn, tunnel, meta).await?;
        self.ssh_tunnel(session)
    }

    /// The current login's open SSH tunnel of `session` (name or id).
    pub fn ssh_tunnel(&self, session: &str) -> Result<SshTunnel> {
        let found = self.ssh_key_of(session).and_then(|(_, key)| {
            let addr = self.tunnels.local_addr(&key)?;
            let meta = self.tunnels.meta(&key)?;
            Some((addr, meta, key.session))
        });
        let Some((addr, meta, session_id)) = found else {
            return Err(Error::InvalidInput(format!(
                "no SSH tunnel is open for the session {session}"
            )));
        };
        // A saved key is shown as saved only while the file still holds it.
        let saved_key_stale = match (&meta.key_path, &meta.key_saved) {
            (Some(path), Some((Some(fingerprint), _))) => {
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|text| crate::keys::private_key_fingerprint(&text))
                    .as_ref()
                    != Some(fingerprint)
            }
            (Some(path), _) => !path.is_file(),
            _ => false,
        };
        Ok(SshTunnel {
            session: session.to_owned(),
            session_id,
            port: addr.port(),
            meta,
            saved_key_stale,
        })
    }

    /// The current login's running SSH tunnels with their counters.
    pub fn list_ssh_tunnels(&self) -> Vec<TunnelInfo> {
        let Some(login) = self.connection().map(|c| c.login_id()) else {
            return Vec::new();
        };
        self.tunnels
            .list()
            .into_iter()
            .filter(|t| t.key.app == SSHD_APP && !t.finished && t.key.login == login)
            .collect()
    }

    /// Stops the current login's tunnels of `session` (name or id); returns how many.
    pub async fn stop_tunnel(&self, session: &str) -> usize {
        let Some((conn, key)) = self.ssh_key_of(session) else {
            return 0;
        };
        let n = self
            .tunnels
            .stop_session(&conn.login_id(), &key.session)
            .await;
        if n > 0 {
            tracing::info!(session, "tunnel stopped");
        }
        n
    }

    /// Stops every tunnel (the app exits).
    pub async fn stop_all_tunnels(&self) {
        self.tunnels.stop_all().await;
    }

    /// Fetches the session's key and writes it at `path` (mode 0600) as `format`; an OpenSSH
    /// key becomes the `-i` of the tunnel's commands.
    pub async fn save_key(&self, session: &str, path: &Path, format: KeyFormat) -> Result<()> {
        let conn = self.require_connection()?;
        let key = conn.fetch_ssh_key(session).await?;
        match format {
            KeyFormat::Openssh => crate::save_key(path, &key)?,
            KeyFormat::Ppk => crate::ppk::save_ppk(path, &key, &format!("bai-{session}"))?,
        }
        if format == KeyFormat::Openssh {
            if let Some((_, k)) = self.ssh_key_of(session) {
                let p = path.to_path_buf();
                let fingerprint = crate::keys::private_key_fingerprint(key.expose());
                self.tunnels.update_meta(&k, |m| {
                    m.key_path = Some(p);
                    m.key_saved = Some((fingerprint, std::time::SystemTime::now()));
                });
            }
        }
        tracing::info!(session, path = %path.display(), ?format, "key saved");
        Ok(())
    }

    /// The current profile's preferred SSH port and account.
    pub fn profile_prefs(&self) -> Result<ProfilePrefs> {
        let config = self.load_config()?;
        let p = config.profile(&self.profile_name_now());
        Ok(ProfilePrefs {
            preferred_ssh_port: p.preferred_ssh_port,
            account: p
                .account
                .unwrap_or_else(|| crate::config::DEFAULT_ACCOUNT.to_owned()),
        })
    }

    /// Validates (the same rules as `bai login`) and saves the profile's preferences; returns
    /// what was saved.
    pub fn set_profile_prefs(&self, port: Option<i64>, account: &str) -> Result<ProfilePrefs> {
        let prefs = ProfilePrefs {
            preferred_ssh_port: port.map(validate_port).transpose()?,
            account: validate_account(account)?,
        };
        let mut config = self.load_config()?;
        let name = self.profile_name_now();
        let p = config.profile_mut(&name);
        p.preferred_ssh_port = prefs.preferred_ssh_port;
        p.account = Some(prefs.account.clone());
        config.save()?;
        tracing::info!(profile = %name, port = ?prefs.preferred_ssh_port, "preferences saved");
        Ok(prefs)
    }
}

/// Saves the non-secret parts of a login in the profile `name` (endpoint, mode, and the email
/// or access key), and makes it the default profile when there is none. The CLI and the app
/// save logins with this one function.
pub fn save_profile(
    config: &mut Config,
    name: &str,
    p: &ResolvedProfile,
    email: Option<String>,
) -> Result<()> {
    let entry = config.profile_mut(name);
    entry.endpoint = Some(p.endpoint.to_string());
    entry.mode = Some(mode_name(p.mode).to_owned());
    // The other mode's identity goes: the profile names one login.
    match p.mode {
        Mode::Api => {
            entry.access_key = p.access_key.clone();
            entry.email = None;
        }
        _ => {
            entry.email = email;
            entry.access_key = None;
        }
    }
    if config.settings.default_profile.is_none() {
        config.settings.default_profile = Some(name.to_owned());
    }
    config.save()
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_forms_never_print_secrets() {
        let f = LoginForm {
            endpoint: "https://x".into(),
            password: Some(Sensitive::new("hunter2".into())),
            secret_key: Some(Sensitive::new("sk-123".into())),
            ..LoginForm::default()
        };
        let s = format!("{f:?}");
        assert!(!s.contains("hunter2") && !s.contains("sk-123"), "{s}");
    }

    #[test]
    fn prefs_follow_the_cli_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workspace::new(dir.path().to_path_buf(), Arc::new(MemoryStore::new()));
        assert_eq!(
            w.profile_prefs().expect("prefs"),
            ProfilePrefs {
                preferred_ssh_port: None,
                account: "work".into()
            }
        );
        let e = w.set_profile_prefs(Some(80), "work").expect_err("port 80");
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
        let e = w.set_profile_prefs(None, "a b").expect_err("account");
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
        let saved = w.set_profile_prefs(Some(10022), " alice ").expect("ok");
        assert_eq!(saved.account, "alice");
        assert_eq!(w.profile_prefs().expect("prefs"), saved);
    }
}
