//! What the commands share: bai-core's [`Workspace`] (the login, its tunnels, key saving,
//! the profile's preferences: all the behaviour) and the demo sandbox of `make run`. What is
//! left here turns bai-core's results into the UI's view types and keeps the app-only
//! preferences (`desktop.json`); there is no login, profile or tunnel logic in this crate.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bai_core::bai_api::Mode;
use bai_core::commands::{known_hosts_path, HostKeyPin};

use bai_core::{Connection, KeyFormat, SecretStore, Workspace};

use crate::commands::auth::{LoginMode, LoginRequest, LoginState, TlsState};
use crate::commands::restore::RestoredTunnels;
use crate::commands::sessions::SessionView;
use crate::commands::settings::SettingsView;
use crate::commands::tunnels::{Fallback, SavedKey, TunnelStatus, TunnelView};
use crate::demo::DemoSandbox;
use crate::desktop::{self, DesktopFile, RecentServer};
use crate::error::CommandResult;

pub use crate::desktop::{DEFAULT_REFRESH_SECONDS, DESKTOP_SETTINGS_FILE};

/// Managed state of the app.
#[derive(Debug)]
pub struct AppState {
    ws: Workspace,
    demo: Option<DemoSandbox>,
    desktop: DesktopFile,
    // The saved login was restored in this run (the tunnels of the last run may come back).
    login_restored: AtomicBool,
    // The tunnels of the last run were restored (once per run).
    tunnels_restored: AtomicBool,
    // The in-app SSH client: connections, terminals, transfers (commands/files.rs).
    remote: crate::commands::files::RemoteState,
}

impl AppState {
    /// State over an explicit config directory and secret store (tests pass a temp dir).
    pub fn new(
        config_dir: PathBuf,
        store: Arc<dyn SecretStore>,
        demo: Option<DemoSandbox>,
    ) -> Self {
        AppState {
            ws: Workspace::new(config_dir, store),
            demo,
            desktop: DesktopFile::default(),
            login_restored: AtomicBool::new(false),
            tunnels_restored: AtomicBool::new(false),
            remote: crate::commands::files::RemoteState::default(),
        }
    }

    /// The in-app SSH client's state (terminals, files, transfers).
    pub fn remote(&self) -> &crate::commands::files::RemoteState {
        &self.remote
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

    /// The behaviour (bai-core).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// The current login; else the saved one; else, with a demo sandbox, a fresh login to the
    /// demo user; else `None`.
    pub async fn restore_login(&self) -> CommandResult<Option<LoginState>> {
        if let Some(c) = self.ws.restore_saved().await? {
            self.login_restored.store(true, Ordering::SeqCst);
            return Ok(Some(login_state(&c)));
        }
        match self.demo.clone() {
            // Not a recent server: the demo lives only as long as `make run`.
            Some(d) => Ok(Some(login_state(
                &self.ws.login(demo_request(&d).into()).await?,
            ))),
            None => Ok(None),
        }
    }

    /// Logs in (see [`Workspace::login`]) and puts the server first among the recent ones
    /// (endpoint, mode and identity only).
    pub async fn login(&self, req: LoginRequest) -> CommandResult<LoginState> {
        let state = login_state(&self.ws.login(req.into()).await?);
        let recent = RecentServer {
            endpoint: state.endpoint.clone(),
            mode: state.mode,
            user: state.user.clone(),
        };
        // The login worked: a settings file that cannot be written only costs the shortcut.
        if let Err(e) = self.desktop.remember(self.ws.config_dir(), recent) {
            tracing::warn!(error = %e, "cannot remember the recent server");
        }
        Ok(state)
    }

    /// The recent servers, most recent first.
    pub fn recent_servers(&self) -> Vec<RecentServer> {
        desktop::read(self.ws.config_dir()).recent
    }

    /// Removes one recent server; returns the others.
    pub fn forget_recent_server(&self, server: &RecentServer) -> CommandResult<Vec<RecentServer>> {
        self.desktop.forget(self.ws.config_dir(), server)
    }

    /// Logs out; every tunnel stops, and so do the in-app terminals, transfers and SSH connections.
    pub async fn logout(&self) -> CommandResult<()> {
        // The in-app terminals, transfers and SSH connections belong to the login that ends.
        self.remote.transfers.cancel_all();
        self.remote.terminals.close_all();
        self.remote.remotes.close_all().await;
        Ok(self.ws.logout().await?)
    }

    /// The active sessions as rows; tunnels of sessions that left RUNNING are stopped (the
    /// flag says whether any stopped).
    pub async fn refresh_sessions(&self) -> CommandResult<(Vec<SessionView>, bool)> {
        let (sessions, stopped) = self.ws.refresh_sessions().await?;
        Ok((
            sessions.iter().map(SessionView::from_session).collect(),
            stopped,
        ))
    }

    /// Opens (or returns) the SSH tunnel of `session`, as the connection dialog shows it.
    pub async fn open_ssh(
        &self,
        session: &str,
        account: Option<String>,
    ) -> CommandResult<TunnelView> {
        self.ws.open_ssh(session, account).await?;
        self.tunnel_info(session)
    }

    /// The connection dialog of the open tunnel of `session`.
    pub fn tunnel_info(&self, session: &str) -> CommandResult<TunnelView> {
        let t = self.ws.ssh_tunnel(session)?;
        // The pinned form when the user opted into it (Preferences).
        let pin = if desktop::read(self.ws.config_dir()).pin_host_keys {
            // Fails closed: a session id that cannot be a HostKeyAlias is an error, never the
            // unchecked form. bai's known_hosts is created 0600 before ssh writes to it.
            let path = known_hosts_path(self.ws.config_dir());
            bai_core::commands::ensure_known_hosts(&path)?;
            Some(HostKeyPin::new(path, &t.session_id)?)
        } else {
            None
        };
        let m = &t.meta;
        let own_key = if m.has_id_container {
            None
        } else {
            self.ws.own_key()?
        };
        // A saved key that is no longer in its file is not used, and the dialog says why.
        let key_path = m.key_path.as_deref().filter(|_| !t.saved_key_stale);
        let mut v = TunnelView::build(
            session,
            t.port,
            &m.user,
            key_path,
            m.has_id_container,
            own_key.as_deref(),
            pin,
        );
        v.preferred_port = m.preferred;
        v.key_problem = m.key_problem.clone();
        if t.saved_key_stale {
            if let (Some(path), Some((_, at))) = (&m.key_path, &m.key_saved) {
                let date = chrono::DateTime::<chrono::Local>::from(*at).format("%Y-%m-%d %H:%M");
                v.key_stale = Some(format!(
                    "The key you saved on {date} at {} is no longer this session's key (the file was replaced or removed): download it again.",
                    path.display()
                ));
            }
        }
        v.fallback = m
            .fallback
            .clone()
            .map(|(preferred, reason)| Fallback { preferred, reason });
        Ok(v)
    }

    /// Remembers `path` as the profile's own private key (checked by bai-core) and returns the
    /// dialog of `session`, whose commands now use it when the session has no `id_container`.
    pub fn use_own_key(&self, session: &str, path: &Path) -> CommandResult<TunnelView> {
        self.ws.set_own_key(path)?;
        self.tunnel_info(session)
    }

    /// The tunnels of the current login (SSH and other apps), with their counters.
    pub fn list_tunnels(&self) -> Vec<TunnelStatus> {
        self.ws
            .list_tunnels()
            .into_iter()
            .map(|t| TunnelStatus {
                session: t.session,
                app: t.key.app,
                protocol: t.protocol,
                url: t.url,
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

    /// Stops the tunnels of `session`; returns how many.
    pub async fn stop_tunnel(&self, session: &str) -> usize {
        self.ws.stop_tunnel(session).await
    }

    /// Stops every tunnel (the app exits).
    pub async fn stop_all_tunnels(&self) {
        self.ws.stop_all_tunnels().await;
    }

    /// Records the current login's tunnels for the next start (whenever they change, and just
    /// before they stop at exit); with "Reopen tunnels at start" off, records none. Before
    /// the last run's tunnels were restored (or found nothing to restore), the record of the
    /// last run is kept.
    pub fn record_tunnels_for_restart(&self) {
        let dir = self.ws.config_dir();
        if self.login_restored.load(Ordering::SeqCst)
            && !self.tunnels_restored.load(Ordering::SeqCst)
            && self.ws.list_tunnels().is_empty()
        {
            // Quit (or a change) before the restore ran: keep what is to be restored.
            return;
        }
        let saved = if desktop::read(dir).restore_tunnels {
            self.ws.tunnels_to_restore()
        } else {
            None
        };
        let n = saved.as_ref().map_or(0, |s| s.tunnels.len());
        match self.desktop.record_tunnels(dir, saved.as_ref()) {
            Ok(()) => tracing::debug!(tunnels = n, "tunnels recorded for the next start"),
            Err(e) => tracing::warn!(error = %e, "cannot record the tunnels for the next start"),
        }
    }

    /// Reopens the tunnels recorded at the last exit (see `bai_core::workspace::restore`):
    /// once per run, and only after [`AppState::restore_login`] restored the saved login;
    /// nothing with the preference off. The record is used up once restored.
    pub async fn restore_tunnels(&self) -> CommandResult<RestoredTunnels> {
        let dir = self.ws.config_dir();
        if !self.login_restored.load(Ordering::SeqCst)
            || self.tunnels_restored.swap(true, Ordering::SeqCst)
        {
            return Ok(RestoredTunnels::default());
        }
        let saved = match desktop::last_tunnels(dir) {
            Some(saved) if desktop::read(dir).restore_tunnels => saved,
            _ => {
                self.desktop.record_tunnels(dir, None)?;
                return Ok(RestoredTunnels::default());
            }
        };
        let report = match self.ws.restore_tunnels(&saved).await {
            Ok(r) => r,
            Err(e) => {
                // Kept for a later run: the server may be back then.
                self.tunnels_restored.store(false, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        self.desktop.record_tunnels(dir, None)?;
        Ok(report.into())
    }

    /// Fetches the session's key and writes it at `path` (mode 0600) as `format`.
    pub async fn save_key_to(
        &self,
        session: &str,
        path: &Path,
        format: KeyFormat,
    ) -> CommandResult<SavedKey> {
        self.ws.save_key(session, path, format).await?;
        Ok(SavedKey {
            path: path.display().to_string(),
        })
    }

    /// The preferences: the profile's (port, account) and the app's own.
    pub fn get_settings(&self) -> CommandResult<SettingsView> {
        let p = self.ws.profile_prefs()?;
        let desktop = desktop::read(self.ws.config_dir());
        Ok(SettingsView {
            preferred_ssh_port: p.preferred_ssh_port.map(i64::from),
            refresh_seconds: i64::from(desktop.refresh_seconds),
            account: p.account,
            pin_host_keys: desktop.pin_host_keys,
            restore_tunnels: desktop.restore_tunnels,
            keep_in_tray: desktop.keep_in_tray,
            start_at_login: desktop.start_at_login,
        })
    }

    /// Remembers that the one-time tray notice was shown (best effort).
    pub fn mark_tray_notice_shown(&self) {
        if let Err(e) = self.desktop.mark_tray_notice_shown(self.ws.config_dir()) {
            tracing::warn!(error = %e, "cannot remember the tray notice");
        }
    }

    /// Validates and saves the preferences; returns what was saved.
    pub fn set_settings(&self, s: SettingsView) -> CommandResult<SettingsView> {
        let s = s.validated()?;
        let p = self
            .ws
            .set_profile_prefs(s.preferred_ssh_port, &s.account)?;
        let refresh = u32::try_from(s.refresh_seconds).unwrap_or(DEFAULT_REFRESH_SECONDS);
        self.desktop.update(self.ws.config_dir(), |m| {
            m.insert("refreshSeconds".into(), refresh.into());
            m.insert("pinHostKeys".into(), s.pin_host_keys.into());
            m.insert("restoreTunnels".into(), s.restore_tunnels.into());
            m.insert("keepInTray".into(), s.keep_in_tray.into());
            m.insert("startAtLogin".into(), s.start_at_login.into());
        })?;
        Ok(SettingsView {
            preferred_ssh_port: p.preferred_ssh_port.map(i64::from),
            account: p.account,
            ..s
        })
    }
}

fn demo_request(d: &DemoSandbox) -> LoginRequest {
    LoginRequest {
        endpoint: d.webserver.clone(),
        mode: LoginMode::Session,
        email: Some(d.email.clone()),
        password: Some(d.password.expose().clone()),
        access_key: None,
        secret_key: None,
        otp: None,
        // The sandbox lives only as long as `make run`: never save it in the user's config.
        remember: false,
    }
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
        mode: p.mode.into(),
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
