//! What the commands share: the config directory, the secret store, the current login (a
//! [`Connection`]) and the demo sandbox. The logic lives here so the commands stay one line.
//!
//! The login sits behind a `std::sync::Mutex` that is only held to clone or swap it, never
//! across an `.await` (a [`Connection`] is a cheap clone of the API client).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bai_core::bai_api::{Mode, Sensitive, Session};
use bai_core::bai_tunnel::PortChoice;
use bai_core::commands::HostKeyPin;
use bai_core::config::mode_name;
use bai_core::secrets::SecretKind;
use bai_core::{
    Config, Connection, Credentials, EnvOverrides, MemoryStore, Overrides, ResolvedProfile,
    SecretStore, TunnelKey, TunnelRegistry, TunnelRequest, SSHD_APP,
};

use crate::commands::auth::{LoginRequest, LoginState, TlsState};
use crate::commands::sessions::SessionView;
use crate::commands::settings::SettingsView;
use crate::commands::tunnels::{Fallback, KeyFormat, SavedKey, TunnelStatus, TunnelView};
use crate::demo::DemoSandbox;
use crate::error::{CommandError, CommandResult, ErrorCode};

/// The app-only settings file (next to bai's `config.toml`).
pub const DESKTOP_SETTINGS_FILE: &str = "desktop.json";
/// The session-list auto-refresh interval when none is saved.
pub const DEFAULT_REFRESH_SECONDS: u32 = 30;

/// Managed state of the app.
#[derive(Debug)]
pub struct AppState {
    config_dir: PathBuf,
    store: Arc<dyn SecretStore>,
    conn: Mutex<Option<Connection>>,
    demo: Option<DemoSandbox>,
    tunnels: TunnelRegistry,
    meta: Mutex<BTreeMap<TunnelKey, TunnelMeta>>,
}

/// What the app remembers about a session's SSH tunnel besides the registry.
#[derive(Debug, Clone)]
struct TunnelMeta {
    user: String,
    preferred: Option<u16>,
    fallback: Option<Fallback>,
    key_path: Option<PathBuf>,
    has_id_container: bool,
}

impl AppState {
    /// State over an explicit config directory and secret store (tests pass a temp dir and a
    /// [`MemoryStore`]).
    pub fn new(
        config_dir: PathBuf,
        store: Arc<dyn SecretStore>,
        demo: Option<DemoSandbox>,
    ) -> Self {
        AppState {
            config_dir,
            store,
            conn: Mutex::new(None),
            demo,
            tunnels: TunnelRegistry::new(),
            meta: Mutex::new(BTreeMap::new()),
        }
    }

    /// State from the environment: `$BAI_CONFIG_DIR` (else the platform's config dir),
    /// `$BAI_SECRET_STORE`, `$BAI_DEMO_SANDBOX_JSON`.
    pub fn from_env() -> Result<Self, String> {
        let dir = bai_core::config::config_dir().map_err(|e| e.to_string())?;
        let store = bai_core::open_store(&dir).map_err(|e| e.to_string())?;
        let demo = DemoSandbox::from_env()?;
        Ok(Self::new(dir, store, demo))
    }

    /// The demo sandbox, if `make run` started one.
    pub fn demo(&self) -> Option<&DemoSandbox> {
        self.demo.as_ref()
    }

    fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current login, if any.
    pub fn connection(&self) -> Option<Connection> {
        self.slot().clone()
    }

    fn meta(&self) -> MutexGuard<'_, BTreeMap<TunnelKey, TunnelMeta>> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running tunnels.
    pub fn tunnels(&self) -> &TunnelRegistry {
        &self.tunnels
    }

    /// The key of the current login's SSH tunnel to `session` (name or id), if one runs.
    fn ssh_key_of(&self, session: &str) -> Option<(Connection, TunnelKey)> {
        let conn = self.connection()?;
        let key = self.tunnels.find(&conn.login_id(), session, SSHD_APP)?;
        Some((conn, key))
    }

    /// Opens (or returns the open) SSH tunnel of `session`: the preferred SSH port when free,
    /// else a random one; ready once sshd's banner came through it. Only a tunnel of the
    /// current login is ever reused.
    pub async fn open_ssh(
        &self,
        session: &str,
        account: Option<String>,
    ) -> CommandResult<TunnelView> {
        let account = nonempty(account)
            .map(|a| bai_core::config::validate_account(&a))
            .transpose()?;
        if let Some((_, key)) = self.ssh_key_of(session) {
            // The same tunnel; a per-session account given now replaces the one shown.
            if let Some(user) = account {
                if let Some(m) = self.meta().get_mut(&key) {
                    m.user = user;
                }
            }
            return self.tunnel_info(session);
        }
        let conn = self.connection().ok_or_else(CommandError::not_logged_in)?;
        let settings = self.get_settings()?;
        let user = account.unwrap_or(settings.account);
        let preferred = settings
            .preferred_ssh_port
            .and_then(|p| u16::try_from(p).ok());
        // The registry keys on the session's id: a session re-created under the same name is
        // another session.
        let found = conn.find_session(session).await?;
        let mut req = TunnelRequest::new(&conn, session, SSHD_APP, preferred);
        req.session_id = Some(found.id.clone());
        req.bind.fallback = true;
        let tunnel = conn.open_tunnel(req).await?;
        let has_id_container = match conn.fetch_ssh_key(session).await {
            Ok(_) => true,
            Err(bai_core::Error::NoSessionKey { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        let port = tunnel.local_addr().port();
        let fallback = match &tunnel.choice {
            PortChoice::Fallback { preferred, reason } => Some(Fallback {
                preferred: *preferred,
                reason: format!(
                    "The preferred port {preferred} could not be used ({reason}); port {port} was assigned instead."
                ),
            }),
            _ => None,
        };
        let key = TunnelKey::of(&tunnel);
        if self.tunnels.local_addr(&key).is_some() {
            // Another click won the race: keep its tunnel.
            tunnel.handle.stop().await;
            return self.tunnel_info(session);
        }
        if self.connection().map(|c| c.login_id()) != Some(key.login.clone()) {
            // Logged out or in as someone else while this tunnel was opening.
            tunnel.handle.stop().await;
            return Err(CommandError::not_logged_in());
        }
        tracing::info!(session, port, note = %tunnel.port_note, "ssh tunnel ready");
        self.meta().insert(
            key,
            TunnelMeta {
                user,
                preferred,
                fallback,
                key_path: None,
                has_id_container,
            },
        );
        if let Some(old) = self.tunnels.insert(tunnel) {
            old.handle.stop().await;
        }
        self.tunnel_info(session)
    }

    /// The connection dialog of the current login's open tunnel of `session`.
    pub fn tunnel_info(&self, session: &str) -> CommandResult<TunnelView> {
        let found = self.ssh_key_of(session).and_then(|(_, key)| {
            let addr = self.tunnels.local_addr(&key)?;
            let meta = self.meta().get(&key).cloned()?;
            Some((addr, meta, key.session))
        });
        let Some((addr, m, key_session)) = found else {
            return Err(CommandError::invalid(format!(
                "no SSH tunnel is open for the session {session}"
            )));
        };
        // The pinned form when the user opted into it (Preferences); a session id that cannot
        // be a HostKeyAlias leaves the guide's form.
        let pin = read_desktop_settings(&self.config_dir)
            .pin_host_keys
            .then(|| {
                HostKeyPin::new(
                    bai_core::commands::known_hosts_path(&self.config_dir),
                    &key_session,
                )
                .ok()
            })
            .flatten();
        let mut v = TunnelView::build(
            session,
            addr.port(),
            &m.user,
            m.key_path.as_deref(),
            m.has_id_container,
            pin,
        );
        v.preferred_port = m.preferred;
        v.fallback = m.fallback;
        Ok(v)
    }

    /// The current login's SSH tunnels with their counters.
    pub fn list_tunnels(&self) -> Vec<TunnelStatus> {
        let Some(login) = self.connection().map(|c| c.login_id()) else {
            return Vec::new();
        };
        self.tunnels
            .list()
            .into_iter()
            .filter(|t| t.key.app == SSHD_APP && !t.finished && t.key.login == login)
            .map(|t| TunnelStatus {
                session: t.session,
                port: t.local_addr.port(),
                active: t.stats.active,
                total: t.stats.total,
                bytes_up: t.stats.bytes_up,
                bytes_down: t.stats.bytes_down,
                since: chrono::DateTime::<chrono::Utc>::from(t.stats.started_at)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                last_error: t.stats.last_error.map(|e| e.to_string()),
            })
            .collect()
    }

    /// Stops the current login's tunnels of `session` (name or id); returns how many.
    pub async fn stop_tunnel(&self, session: &str) -> usize {
        let Some((conn, key)) = self.ssh_key_of(session) else {
            return 0;
        };
        let login = conn.login_id();
        let id = key.session.clone();
        self.meta()
            .retain(|k, _| !(k.login == login && k.session == id));
        let n = self.tunnels.stop_session(&login, &id).await;
        if n > 0 {
            tracing::info!(session, "tunnel stopped");
        }
        n
    }

    /// Stops every tunnel (the app exits).
    pub async fn stop_all_tunnels(&self) {
        self.meta().clear();
        self.tunnels.stop_all().await;
    }

    /// Fetches the session's key and writes it at `path` (mode 0600) as `format`; an OpenSSH
    /// key becomes the `-i` of the tunnel's commands.
    pub async fn save_key_to(
        &self,
        session: &str,
        path: &Path,
        format: KeyFormat,
    ) -> CommandResult<SavedKey> {
        let conn = self.connection().ok_or_else(CommandError::not_logged_in)?;
        let key = conn.fetch_ssh_key(session).await?;
        match format {
            KeyFormat::Openssh => bai_core::save_key(path, &key)?,
            KeyFormat::Ppk => bai_core::ppk::save_ppk(path, &key, &format!("bai-{session}"))?,
        }
        if format == KeyFormat::Openssh {
            if let Some((_, k)) = self.ssh_key_of(session) {
                if let Some(m) = self.meta().get_mut(&k) {
                    m.key_path = Some(path.to_path_buf());
                }
            }
        }
        tracing::info!(session, path = %path.display(), ?format, "key saved");
        Ok(SavedKey {
            path: path.display().to_string(),
        })
    }

    /// Stops the current login's tunnels of sessions that are not in `running` (ids and names
    /// of the RUNNING sessions); returns whether any stopped.
    pub async fn stop_gone_tunnels(&self, running: &[&str]) -> bool {
        let Some(login) = self.connection().map(|c| c.login_id()) else {
            return false;
        };
        let gone: Vec<String> = self
            .tunnels
            .list()
            .into_iter()
            .filter(|t| t.key.login == login)
            .filter(|t| !running.contains(&t.key.session.as_str()))
            .map(|t| t.key.session)
            .collect();
        let mut any = false;
        for s in gone {
            self.meta()
                .retain(|k, _| !(k.login == login && k.session == s));
            any |= self.tunnels.stop_session(&login, &s).await > 0;
        }
        any
    }

    fn replace_connection(&self, conn: Option<Connection>) -> Option<Connection> {
        std::mem::replace(&mut *self.slot(), conn)
    }

    fn load_config(&self) -> CommandResult<Config> {
        Ok(Config::load_from(self.config_dir.clone())?)
    }

    fn forget_secrets(&self, profile: &str) -> CommandResult<()> {
        for kind in SecretKind::ALL {
            self.store.delete(profile, kind)?;
        }
        Ok(())
    }

    /// The current login; else the saved one (a session-mode login is checked with the
    /// server); else, with a demo sandbox, a fresh login to the demo user; else `None`.
    pub async fn restore_login(&self) -> CommandResult<Option<LoginState>> {
        if let Some(c) = self.connection() {
            return Ok(Some(login_state(&c)));
        }
        if let Some(state) = self.restore_saved().await? {
            return Ok(Some(state));
        }
        match self.demo.clone() {
            Some(d) => self.login(demo_request(&d)).await.map(Some),
            None => Ok(None),
        }
    }

    async fn restore_saved(&self) -> CommandResult<Option<LoginState>> {
        let config = self.load_config()?;
        let name = config.profile_name(None);
        let profile = match config.resolve(&name, &EnvOverrides::default(), &Overrides::default()) {
            Ok(p) => p,
            Err(bai_core::Error::NoEndpoint { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let conn = match Connection::restore(profile, self.store.clone()) {
            Ok(c) => c,
            Err(e) if e.needs_login() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if conn.profile().mode != Mode::Api {
            let check = conn
                .client()
                .login_check()
                .await
                .map_err(|e| conn.map_err(e))?;
            if !check.authenticated {
                self.store.delete(&name, SecretKind::LoginSession)?;
                return Err(CommandError::new(
                    ErrorCode::LoginExpired,
                    "your saved login has expired; please log in again",
                ));
            }
        }
        let state = login_state(&conn);
        self.replace_connection(Some(conn));
        tracing::info!(endpoint = %state.endpoint, mode = %state.mode, "restored the saved login");
        Ok(Some(state))
    }

    /// Logs in; with `remember` the login (and the profile's endpoint, mode and user) is
    /// saved for the next start, without it nothing is persisted and any saved login of the
    /// profile is forgotten.
    pub async fn login(&self, req: LoginRequest) -> CommandResult<LoginState> {
        let endpoint = parse_endpoint(&req.endpoint)?;
        let mode = match req.mode.as_str() {
            "session" => Mode::Session,
            "api" => Mode::Api,
            other => {
                return Err(CommandError::invalid(format!(
                    "unknown login mode {other:?} (expected \"session\" or \"api\")"
                )))
            }
        };
        let mut config = self.load_config()?;
        let name = config.profile_name(None);
        let access_key = nonempty(req.access_key);
        let overrides = Overrides {
            endpoint: Some(endpoint),
            mode: Some(mode),
            access_key: if mode == Mode::Api {
                access_key.clone()
            } else {
                None
            },
            ..Overrides::default()
        };
        let mut profile = config.resolve(&name, &EnvOverrides::default(), &overrides)?;
        let creds = match mode {
            Mode::Api => Credentials::Keypair {
                access_key: access_key
                    .ok_or_else(|| CommandError::invalid("enter your access key"))?,
                secret_key: Sensitive::new(
                    req.secret_key
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| CommandError::invalid("enter your secret key"))?,
                ),
            },
            _ => {
                let email =
                    nonempty(req.email).ok_or_else(|| CommandError::invalid("enter your email"))?;
                profile.email = Some(email.clone());
                Credentials::Password {
                    email,
                    password: Sensitive::new(
                        req.password
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| CommandError::invalid("enter your password"))?,
                    ),
                    otp: nonempty(req.otp),
                    save_password: false,
                }
            }
        };
        let store: Arc<dyn SecretStore> = if req.remember {
            self.store.clone()
        } else {
            Arc::new(MemoryStore::new())
        };
        let conn = Connection::login(profile, store, creds).await?;
        if req.remember {
            save_profile(&mut config, &name, conn.profile())?;
        } else {
            self.forget_secrets(&name)?;
        }
        let state = login_state(&conn);
        // Tunnels belong to the login that opened them: a new login (another server, user, or
        // the same one again) never inherits them.
        self.stop_all_tunnels().await;
        self.replace_connection(Some(conn));
        tracing::info!(endpoint = %state.endpoint, mode = %state.mode, remember = req.remember, "logged in");
        Ok(state)
    }

    /// Logs out (on the server too, best effort) and forgets the login's secrets.
    pub async fn logout(&self) -> CommandResult<()> {
        // Every tunnel of the login stops first: API-mode tunnels would otherwise go on signing
        // requests with the forgotten keys.
        self.stop_all_tunnels().await;
        match self.replace_connection(None) {
            Some(c) => Connection::logout(c.profile(), c.store().as_ref()).await?,
            None => {
                let config = self.load_config()?;
                self.forget_secrets(&config.profile_name(None))?;
            }
        }
        tracing::info!("logged out");
        Ok(())
    }

    /// The caller's active sessions, with SSH availability.
    pub async fn list_sessions(&self) -> CommandResult<Vec<SessionView>> {
        let conn = self.connection().ok_or_else(CommandError::not_logged_in)?;
        let sessions: Vec<Session> = conn.list_sessions(false).await?;
        Ok(sessions.iter().map(SessionView::from_session).collect())
    }

    /// [`AppState::list_sessions`], then stops the tunnels of sessions that left RUNNING or
    /// disappeared; the flag says whether any stopped.
    pub async fn refresh_sessions(&self) -> CommandResult<(Vec<SessionView>, bool)> {
        let views = self.list_sessions().await?;
        let running: Vec<&str> = views
            .iter()
            .filter(|v| v.status == "RUNNING")
            .flat_map(|v| [v.id.as_str(), v.name.as_str()])
            .collect();
        let stopped = self.stop_gone_tunnels(&running).await;
        Ok((views, stopped))
    }

    fn profile_name(&self, config: &Config) -> String {
        match self.connection() {
            Some(c) => c.profile().name.clone(),
            None => config.profile_name(None),
        }
    }

    /// The preferred SSH port and account of the profile, and the app's refresh interval.
    pub fn get_settings(&self) -> CommandResult<SettingsView> {
        let config = self.load_config()?;
        let p = config.profile(&self.profile_name(&config));
        let desktop = read_desktop_settings(&self.config_dir);
        Ok(SettingsView {
            preferred_ssh_port: p.preferred_ssh_port.map(i64::from),
            refresh_seconds: i64::from(desktop.refresh_seconds),
            account: p
                .account
                .unwrap_or_else(|| bai_core::config::DEFAULT_ACCOUNT.to_owned()),
            pin_host_keys: desktop.pin_host_keys,
        })
    }

    /// Validates and saves the settings; returns what was saved.
    pub fn set_settings(&self, s: SettingsView) -> CommandResult<SettingsView> {
        let s = s.validated()?;
        let mut config = self.load_config()?;
        let name = self.profile_name(&config);
        let p = config.profile_mut(&name);
        p.preferred_ssh_port = s.preferred_ssh_port.and_then(|v| u16::try_from(v).ok());
        p.account = Some(s.account.clone());
        config.save()?;
        let refresh = u32::try_from(s.refresh_seconds).unwrap_or(DEFAULT_REFRESH_SECONDS);
        let json = serde_json::json!({ "refreshSeconds": refresh, "pinHostKeys": s.pin_host_keys });
        bai_core::write_atomic(
            &self.config_dir.join(DESKTOP_SETTINGS_FILE),
            format!("{json:#}\n").as_bytes(),
            0o644,
        )?;
        tracing::info!(profile = %name, port = ?s.preferred_ssh_port, refresh, "settings saved");
        Ok(s)
    }
}

fn demo_request(d: &DemoSandbox) -> LoginRequest {
    LoginRequest {
        endpoint: d.webserver.clone(),
        mode: "session".into(),
        email: Some(d.email.clone()),
        password: Some(d.password.expose().clone()),
        access_key: None,
        secret_key: None,
        otp: None,
        // The sandbox lives only as long as `make run`: never save it in the user's config.
        remember: false,
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Checks that `raw` is an http(s) URL with a host (`BadUrl` otherwise).
pub fn parse_endpoint(raw: &str) -> CommandResult<String> {
    let s = raw.trim();
    let bad = |why: &str| {
        CommandError::new(
            ErrorCode::BadUrl,
            format!("{s:?} is not a server address ({why}); use e.g. https://backend.example.com"),
        )
    };
    let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("it must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(s.to_owned())
}

fn save_profile(config: &mut Config, name: &str, p: &ResolvedProfile) -> CommandResult<()> {
    let entry = config.profile_mut(name);
    entry.endpoint = Some(p.endpoint.to_string());
    entry.mode = Some(mode_name(p.mode).to_owned());
    match p.mode {
        Mode::Api => entry.access_key = p.access_key.clone(),
        _ => entry.email = p.email.clone(),
    }
    if config.settings.default_profile.is_none() {
        config.settings.default_profile = Some(name.to_owned());
    }
    Ok(config.save()?)
}

/// What the UI shows about the login.
pub fn login_state(conn: &Connection) -> LoginState {
    let p = conn.profile();
    let user = match p.mode {
        Mode::Api => p.access_key.clone(),
        _ => p.email.clone(),
    };
    LoginState {
        endpoint: p.endpoint.as_str().trim_end_matches('/').to_owned(),
        mode: mode_name(p.mode).to_owned(),
        user: user.unwrap_or_default(),
        role: None,
        tls: TlsState {
            scheme: p.endpoint.scheme().to_owned(),
            insecure: p.tls.insecure && p.endpoint.scheme() == "https",
            ca_file: p.tls.extra_ca.as_ref().map(|f| f.display().to_string()),
            warning: p.plain_http_warning(),
        },
    }
}

/// The app-only settings (`desktop.json`).
struct DesktopSettings {
    refresh_seconds: u32,
    pin_host_keys: bool,
}

fn read_desktop_settings(dir: &Path) -> DesktopSettings {
    let v = std::fs::read_to_string(dir.join(DESKTOP_SETTINGS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default();
    DesktopSettings {
        refresh_seconds: v
            .get("refreshSeconds")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_REFRESH_SECONDS),
        pin_host_keys: v
            .get("pinHostKeys")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    }
}
