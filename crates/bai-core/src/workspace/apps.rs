//! Every app of a session, not only SSH: a local tunnel to any of its service ports (`jupyter`,
//! `jupyterlab`, `ttyd`, `vscode`, `tensorboard`, any TCP service), registered like the SSH
//! tunnel (per login and session id, see [`crate::TunnelRegistry`]) with the app's protocol
//! and, for an app opened in a browser, the URL to open. Split from `workspace.rs` to keep it
//! short; `sshd` itself goes through [`Workspace::open_ssh`].
//!
//! Every app goes through the `tcpproxy` stream endpoint, as the official client's
//! `backend.ai app SESSION APP` does for any app (protocol.md §4.2); the manager gives
//! `httpproxy` the same handler (§4.1), so HTTP apps need nothing else.

use super::Workspace;
use crate::error::{Error, Result};
use crate::registry::{TunnelInfo, TunnelKey, TunnelMeta};
use crate::{TunnelRequest, SSHD_APP};

/// The path (and query) a launcher opens for an app, after `http://127.0.0.1:PORT`.
///
/// The one table of it. Source: the WebUI's app template (`lablup/backend.ai-webui`,
/// `resources/app_template.json`, each app's `redirect`, which the WebUI's local proxy
/// (`src/wsproxy`) turns into the path it redirects to): `jupyter` → `/tree`, `jupyterlab` →
/// `/lab`, `tensorboard` and `digits` → `/`, `novnc` → `/vnc.html?autoconnect=true&password=backendai`;
/// every other app (`ttyd`, `vscode`, `mlflow-ui`, …) opens at its root.
pub fn app_url_path(app: &str) -> &'static str {
    match app {
        "jupyter" => "/tree",
        "jupyterlab" => "/lab",
        "novnc" => "/vnc.html?autoconnect=true&password=backendai",
        _ => "/",
    }
}

/// Whether an app of this protocol opens in a browser (`http`, and `preopen`, which the
/// WebUI also opens as a web page); `tcp`, `vnc`, `rdp` are for a native client.
fn opens_in_browser(protocol: &str) -> bool {
    matches!(protocol, "http" | "preopen")
}

/// An app tunnel of the current login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTunnel {
    /// The session as the caller named it.
    pub session: String,
    /// The session's id (the registry key).
    pub session_id: String,
    /// The app (`jupyter`).
    pub app: String,
    /// Its protocol in the session's service ports (`http`, `tcp`, …).
    pub protocol: String,
    /// `127.0.0.1`.
    pub host: String,
    /// The local port.
    pub port: u16,
    /// For an app opened in a browser: `http://127.0.0.1:PORT` + [`app_url_path`].
    pub url: Option<String>,
}

impl Workspace {
    /// Opens (or returns the open) tunnel to `app` of `session` (name or id) on a free local
    /// port. An app that is not among the session's fails with `AppNotFound` (a session that
    /// is not running with `SessionNotRunning`). `sshd` opens the SSH tunnel
    /// ([`Workspace::open_ssh`]).
    pub async fn open_app(&self, session: &str, app: &str) -> Result<AppTunnel> {
        self.open_app_with(session, app, None).await
    }

    /// [`Workspace::open_app`] trying `port` first, with fallback to a free port.
    pub(super) async fn open_app_with(
        &self,
        session: &str,
        app: &str,
        port: Option<u16>,
    ) -> Result<AppTunnel> {
        if app == SSHD_APP {
            let t = self.open_ssh(session, None).await?;
            return self.app_tunnel(&t.session, app);
        }
        let (open, found) = self.reusable_tunnel(session, app).await?;
        if open.is_some() {
            return self.app_tunnel(session, app);
        }
        let conn = self.require_connection()?;
        let found = match found {
            Some(s) => s,
            None => conn.find_session(session).await?,
        };
        let mut req = TunnelRequest::new(&conn, session, app, port);
        req.session_id = Some(found.id.clone());
        if port.is_some() {
            req.bind.fallback = true;
        }
        // Checks the app against `/stream/session/{s}/apps` first (AppNotFound).
        let tunnel = conn.open_tunnel(req).await?;
        let protocol = found
            .service_ports
            .iter()
            .find(|p| p.name == app)
            .map(|p| p.protocol.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "tcp".to_owned());
        let port = tunnel.local_addr().port();
        let url = opens_in_browser(&protocol)
            .then(|| format!("http://127.0.0.1:{port}{}", app_url_path(app)));
        tracing::info!(session, app, port, %protocol, "app tunnel ready");
        let meta = TunnelMeta {
            protocol,
            url,
            ..TunnelMeta::default()
        };
        self.register_tunnel(&conn, tunnel, meta).await?;
        self.app_tunnel(session, app)
    }

    /// The current login's open tunnel to `app` of `session` (name or id).
    pub fn app_tunnel(&self, session: &str, app: &str) -> Result<AppTunnel> {
        let found = self.app_key(session, app).and_then(|key| {
            let addr = self.tunnels.local_addr(&key)?;
            let meta = self.tunnels.meta(&key)?;
            Some((addr, meta, key.session))
        });
        let Some((addr, meta, session_id)) = found else {
            return Err(Error::InvalidInput(format!(
                "no tunnel to {app} is open for the session {session}"
            )));
        };
        Ok(AppTunnel {
            session: session.to_owned(),
            session_id,
            app: app.to_owned(),
            protocol: meta.protocol,
            host: addr.ip().to_string(),
            port: addr.port(),
            url: meta.url,
        })
    }

    fn app_key(&self, session: &str, app: &str) -> Option<TunnelKey> {
        let conn = self.connection()?;
        self.tunnels.find(&conn.login_id(), session, app)
    }

    /// The current login's running tunnels (SSH and other apps) with their counters, sorted
    /// by session then app.
    pub fn list_tunnels(&self) -> Vec<TunnelInfo> {
        let Some(login) = self.connection().map(|c| c.login_id()) else {
            return Vec::new();
        };
        self.tunnels
            .list()
            .into_iter()
            .filter(|t| !t.finished && t.key.login == login)
            .collect()
    }

    /// Stops the current login's tunnel to `app` of `session` (name or id); whether one ran.
    pub async fn stop_app_tunnel(&self, session: &str, app: &str) -> bool {
        let Some(key) = self.app_key(session, app) else {
            return false;
        };
        let stopped = self.tunnels.stop(&key).await;
        if stopped {
            tracing::info!(session, app, "tunnel stopped");
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_open_these_paths() {
        assert_eq!(app_url_path("jupyterlab"), "/lab");
        assert_eq!(app_url_path("jupyter"), "/tree");
        assert_eq!(app_url_path("ttyd"), "/");
        assert!(opens_in_browser("http") && opens_in_browser("preopen"));
        assert!(!opens_in_browser("tcp") && !opens_in_browser("vnc"));
    }
}
