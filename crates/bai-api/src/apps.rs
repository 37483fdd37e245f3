//! A session's apps, and the tcpproxy target a tunnel opens to one of them.

use reqwest::Method;

use crate::classify::Ctx;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{is_running_status, App};
use crate::tcpproxy::TcpproxyTarget;
use crate::wire::Body;

impl Client {
    /// The apps of a session (`GET /stream/session/{s}/apps`).
    #[tracing::instrument(skip(self), err)]
    pub async fn session_apps(&self, session: &str) -> Result<Vec<App>> {
        let prefix = self.prefix().await?;
        let ctx = Ctx {
            session: Some(session),
            ..Ctx::default()
        };
        self.call_json(
            Method::GET,
            &["stream", prefix, session, "apps"],
            &[],
            Body::Empty,
            ctx,
        )
        .await
    }

    /// Checks that the session runs and has `app`, and returns a [`TcpproxyTarget`] that makes
    /// a fresh, authenticated WebSocket request to `/stream/session/{s}/tcpproxy?app=…` for each
    /// connection. In session mode the target shares this client's login id, so it keeps
    /// working after [`Client::login`] or [`Client::set_session_id`] replaces the id.
    #[tracing::instrument(skip(self), err)]
    pub async fn tcpproxy_target(&self, session: &str, app: &str) -> Result<TcpproxyTarget> {
        let apps = self.session_apps(session).await?;
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
        self.tcpproxy_target_unchecked(session, app).await
    }

    /// Like [`Client::tcpproxy_target`] without the apps check (one request fewer).
    pub async fn tcpproxy_target_unchecked(
        &self,
        session: &str,
        app: &str,
    ) -> Result<TcpproxyTarget> {
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
