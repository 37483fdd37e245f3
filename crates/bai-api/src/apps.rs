//! A session's apps, and the tcpproxy target a tunnel opens to one of them.

use reqwest::Method;

use crate::classify::Ctx;
use crate::client::Client;
use crate::dialect::is_uuid;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{is_running_status, App, StatusFilter};
use crate::tcpproxy::TcpproxyTarget;
use crate::wire::Body;

impl Client {
    /// The apps of a session (`GET /stream/session/{s}/apps`).
    #[tracing::instrument(skip(self), err)]
    pub async fn session_apps(&self, session: &str) -> Result<Vec<App>> {
        Ok(self.session_apps_as(session).await?.0)
    }

    /// The apps of a session, and how the stream paths must name it on this server: as
    /// [`Client::session_ref`] says, except that a UUID the server refuses in stream paths
    /// (the 26.4.4 release candidates answer "No such session.") is replaced by the session's
    /// name, looked up in the session list.
    async fn session_apps_as(&self, session: &str) -> Result<(Vec<App>, String)> {
        let prefix = self.prefix().await?;
        let target = self.session_ref(session).await?;
        let ctx = Ctx {
            session: Some(session),
            ..Ctx::default()
        };
        let segments = |s: &str| {
            [
                "stream".to_owned(),
                prefix.to_owned(),
                s.to_owned(),
                "apps".to_owned(),
            ]
        };
        let first = {
            let seg = segments(&target);
            let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
            self.call_json(Method::GET, &seg, &[], Body::Empty, ctx)
                .await
        };
        match first {
            Ok(apps) => Ok((apps, target)),
            Err(e) if is_uuid(&target) && matches!(e.kind(), ErrorKind::SessionNotFound { .. }) => {
                let sessions = self.list_sessions(StatusFilter::Active).await?;
                let Some(found) = sessions
                    .into_iter()
                    .find(|s| s.id.eq_ignore_ascii_case(&target))
                else {
                    return Err(e);
                };
                tracing::debug!(id = %target, name = %found.name, "the server refused the session id in a stream path: retrying by name");
                let seg = segments(&found.name);
                let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
                let apps = self
                    .call_json(Method::GET, &seg, &[], Body::Empty, ctx)
                    .await?;
                Ok((apps, found.name))
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that the session runs and has `app`, and returns a [`TcpproxyTarget`] that makes
    /// a fresh, authenticated WebSocket request to `/stream/session/{s}/tcpproxy?app=…` for each
    /// connection. In session mode the target shares this client's login id, so it keeps
    /// working after [`Client::login`] or [`Client::set_session_id`] replaces the id.
    #[tracing::instrument(skip(self), err)]
    pub async fn tcpproxy_target(&self, session: &str, app: &str) -> Result<TcpproxyTarget> {
        let (apps, target) = self.session_apps_as(session).await?;
        if !apps.iter().any(|a| a.name == app) {
            let info = self.session_info(session).await?;
            if !is_running_status(&info.status) {
                return Err(ErrorKind::SessionNotRunning {
                    session: session.to_owned(),
                    status: info.status,
                }
                .into());
            }
            return Err(ErrorKind::AppNotFound {
                session: session.to_owned(),
                app: app.to_owned(),
                available: apps.into_iter().map(|a| a.name).collect(),
            }
            .into());
        }
        self.tcpproxy_target_as(&target, app).await
    }

    /// Like [`Client::tcpproxy_target`] without the apps check (one request fewer).
    pub async fn tcpproxy_target_unchecked(
        &self,
        session: &str,
        app: &str,
    ) -> Result<TcpproxyTarget> {
        let target = self.session_ref(session).await?;
        self.tcpproxy_target_as(&target, app).await
    }

    /// The tcpproxy target with `session` as the path names it (already resolved).
    async fn tcpproxy_target_as(&self, session: &str, app: &str) -> Result<TcpproxyTarget> {
        let version = self.negotiate_version().await?;
        let mut url = self.api_url(
            &["stream", version.session_prefix(), session, "tcpproxy"],
            &[("app", app)],
        );
        let ws_scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(ws_scheme)
            .map_err(|()| Error::invalid_input("cannot make a WebSocket URL"))?;
        let tls = (ws_scheme == "wss").then(|| self.inner.tls.clone());
        let wire = &self.inner.wire;
        Ok(TcpproxyTarget::new(
            url,
            version,
            wire.creds.clone(),
            tls,
            wire.insecure,
        ))
    }
}
