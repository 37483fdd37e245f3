//! The [`Client`]: configuration, the endpoint's URLs, version negotiation, and the calls every
//! API area shares. The areas themselves live next door: [`crate::auth`] (login),
//! [`crate::sessions`] (listing, info, GraphQL), [`crate::apps`] (apps, tcpproxy) and
//! [`crate::download`]; the HTTP wire is [`crate::wire`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::classify::Ctx;
use crate::credentials::{lock_cell, Credentials, Mode};
use crate::dialect::{is_uuid, Dialect};
use crate::error::{redact, Error, ErrorKind, Result};
use crate::model::StatusFilter;
use crate::sensitive::Sensitive;
use crate::tls::{self, TlsOptions};
use crate::version::{ApiVersion, CLIENT_API_VERSION, MIN_SUPPORTED_MAJOR};
use crate::wire::{Auth, Body, Wire, USER_AGENT};

/// Everything needed to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The webserver (session mode) or manager (API mode) URL.
    pub endpoint: Url,
    /// Session or API mode.
    pub mode: Mode,
    /// TLS options.
    pub tls: TlsOptions,
    /// Timeout of each HTTP request (and its connect).
    pub timeout: Duration,
    /// API mode: the access key.
    pub access_key: Option<Sensitive<String>>,
    /// API mode: the secret key.
    pub secret_key: Option<Sensitive<String>>,
    /// Session mode: a saved login session id to restore.
    pub session_id: Option<Sensitive<String>>,
}

impl ClientConfig {
    /// Session mode against a webserver, not logged in yet.
    pub fn session(endpoint: Url) -> Self {
        Self {
            endpoint,
            mode: Mode::Session,
            tls: TlsOptions::default(),
            timeout: Duration::from_secs(30),
            access_key: None,
            secret_key: None,
            session_id: None,
        }
    }

    /// API mode against a manager with a keypair.
    pub fn api(
        endpoint: Url,
        access_key: Sensitive<String>,
        secret_key: Sensitive<String>,
    ) -> Self {
        Self {
            mode: Mode::Api,
            access_key: Some(access_key),
            secret_key: Some(secret_key),
            ..Self::session(endpoint)
        }
    }
}

/// The server's version as seen by [`Client::server_info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server's API version.
    pub server: ApiVersion,
    /// `min(client, server)`: what this client sends.
    pub negotiated: ApiVersion,
    /// The manager release, e.g. `25.15.0`, when reported.
    pub manager: Option<String>,
}

/// A Backend.AI client. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Sends and reads; holds the credentials (shared with every [`crate::TcpproxyTarget`]
    /// made by this client, so a re-login reaches them).
    pub(crate) wire: Wire,
    pub(crate) endpoint: Url,
    /// The rustls configuration of `wss` tunnels (the same as the HTTP client's).
    pub(crate) tls: Arc<rustls::ClientConfig>,
    version: tokio::sync::OnceCell<ServerInfo>,
    /// The download method the server accepted after a fallback (see [`crate::Dialect`]).
    pub(crate) download_method: Mutex<Option<Method>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &redact(&self.inner.endpoint))
            .field("mode", &self.inner.wire.mode)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client. Makes no request (the version is negotiated lazily).
    pub fn new(cfg: ClientConfig) -> Result<Client> {
        if !matches!(cfg.endpoint.scheme(), "http" | "https") {
            return Err(Error::invalid_input(format!(
                "the endpoint must be an http or https URL, not {}",
                redact(&cfg.endpoint)
            )));
        }
        if cfg.endpoint.host_str().is_none() {
            return Err(Error::invalid_input("the endpoint has no host"));
        }
        let session = Arc::new(Mutex::new(
            cfg.session_id.filter(|s| !s.expose().is_empty()),
        ));
        let creds = match cfg.mode {
            Mode::Api => match (cfg.access_key, cfg.secret_key) {
                (Some(a), Some(s)) if !a.expose().is_empty() && !s.expose().is_empty() => {
                    Credentials::Keypair {
                        access_key: a,
                        secret_key: s,
                    }
                }
                _ => {
                    return Err(Error::invalid_input(
                        "API mode needs an access key and a secret key",
                    ))
                }
            },
            Mode::Session => Credentials::Session(session.clone()),
        };
        let mut endpoint = cfg.endpoint;
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let tls = tls::build(&cfg.tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .user_agent(USER_AGENT)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::invalid_input(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                wire: Wire {
                    http,
                    mode: cfg.mode,
                    timeout: cfg.timeout,
                    insecure: cfg.tls.insecure,
                    creds,
                    session,
                },
                endpoint,
                tls,
                version: tokio::sync::OnceCell::new(),
                download_method: Mutex::new(None),
            }),
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// Session or API mode.
    pub fn mode(&self) -> Mode {
        self.inner.wire.mode
    }

    /// The current login session id (session mode), to persist and restore a login later
    /// through [`ClientConfig::session_id`].
    pub fn session_id(&self) -> Option<Sensitive<String>> {
        lock_cell(&self.inner.wire.session).clone()
    }

    /// Replaces the login session id (e.g. restored from a keyring).
    pub fn set_session_id(&self, id: Option<Sensitive<String>>) {
        *lock_cell(&self.inner.wire.session) = id.filter(|s| !s.expose().is_empty());
    }

    pub(crate) fn require_session_mode(&self, what: &str) -> Result<()> {
        match self.inner.wire.mode {
            Mode::Session => Ok(()),
            Mode::Api => Err(Error::invalid_input(format!(
                "{what} is only available in session mode"
            ))),
        }
    }

    /// `endpoint` + segments (each percent-encoded) + query.
    pub(crate) fn build_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.endpoint.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .expect("BUG: http(s) URLs can have path segments");
            segs.pop_if_empty();
            segs.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// A manager API URL: with the `/func` prefix in session mode.
    pub(crate) fn api_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        match self.inner.wire.mode {
            Mode::Session => {
                let mut all = vec!["func"];
                all.extend_from_slice(segments);
                self.build_url(&all, query)
            }
            Mode::Api => self.build_url(segments, query),
        }
    }

    /// The negotiated API version (`min(client, server)`), probing the server once.
    #[tracing::instrument(level = "debug", skip(self), err)]
    pub async fn negotiate_version(&self) -> Result<ApiVersion> {
        Ok(self.server_info().await?.negotiated)
    }

    /// The server's versions, probing once (`GET /` or `GET /func/`) and caching the answer.
    pub async fn server_info(&self) -> Result<ServerInfo> {
        self.inner
            .version
            .get_or_try_init(|| async {
                match self.probe_version().await {
                    Ok(info) => Ok(info),
                    Err(e) => Err(self.identify_wrong_kind(e).await),
                }
            })
            .await
            .cloned()
    }

    async fn probe_version(&self) -> Result<ServerInfo> {
        let wire = &self.inner.wire;
        let url = self.api_url(&[""], &[]);
        // Anonymous: no session id is sent, so a cookie in the answer (a 23.09 webserver
        // hands a fresh anonymous web session to `GET /func/`) is never taken as the login.
        let (resp, sent) = wire
            .send(Method::GET, &url, Body::Empty, None, Auth::No)
            .await?;
        let resp = wire
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        let v: Value = wire.read_json(resp, &url).await?;
        let Some(obj) = v.as_object() else {
            return Err(Error::invalid_response(
                &url,
                "the root document is not a JSON object",
            ));
        };
        let manager = obj
            .get("manager")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let raw = match obj.get("version").and_then(Value::as_str) {
            Some(raw) => raw,
            None => {
                return Err(ErrorKind::UnsupportedVersion {
                    detail: format!("{} reports no API version", redact(&url)),
                }
                .into())
            }
        };
        let server: ApiVersion = raw.parse().map_err(|_| {
            Error::from(ErrorKind::UnsupportedVersion {
                detail: format!("unparsable API version {raw:?}"),
            })
        })?;
        if server.major < MIN_SUPPORTED_MAJOR {
            return Err(ErrorKind::UnsupportedVersion {
                detail: format!(
                    "API version {server} is older than the oldest supported (v{MIN_SUPPORTED_MAJOR})"
                ),
            }
            .into());
        }
        let negotiated = ApiVersion::negotiate(server);
        tracing::debug!(%server, %negotiated, client = %CLIENT_API_VERSION, "API version negotiated");
        Ok(ServerInfo {
            server,
            negotiated,
            manager,
        })
    }

    /// The call shapes of the server's generation ([`Dialect`]), negotiating first.
    pub async fn dialect(&self) -> Result<Dialect> {
        Ok(Dialect::of(self.negotiate_version().await?))
    }

    /// The path prefix of the session routes at the negotiated version.
    pub(crate) async fn prefix(&self) -> Result<&'static str> {
        Ok(self.dialect().await?.session_prefix())
    }

    /// How to name `session` in a path on this server: as given, except on a server that
    /// finds sessions by prefix ([`Dialect::prefix_lookup`], 22.09), where a name is replaced
    /// by the UUID of the live session of exactly that name (none: [`ErrorKind::SessionNotFound`]).
    pub(crate) async fn session_ref(&self, session: &str) -> Result<String> {
        if !self.dialect().await?.prefix_lookup() || is_uuid(session) {
            return Ok(session.to_owned());
        }
        let sessions = self.list_sessions(StatusFilter::Active).await?;
        match sessions
            .iter()
            .find(|s| s.name == session && !s.id.is_empty())
        {
            Some(s) => {
                tracing::debug!(session, id = %s.id, "prefix-matching server: addressing the session by its id");
                Ok(s.id.clone())
            }
            None => Err(ErrorKind::SessionNotFound {
                session: session.to_owned(),
            }
            .into()),
        }
    }

    /// Sends an authenticated manager API call (negotiating the version first), unchecked.
    pub(crate) async fn send_call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
    ) -> Result<(reqwest::Response, Url, Option<Sensitive<String>>)> {
        let version = self.negotiate_version().await?;
        let url = self.api_url(segments, query);
        let (resp, sent) = self
            .inner
            .wire
            .send(method, &url, body, Some(version), Auth::Yes)
            .await?;
        Ok((resp, url, sent))
    }

    /// Sends an authenticated manager API call (negotiating the version first) and checks it.
    pub(crate) async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
        ctx: Ctx<'_>,
    ) -> Result<(reqwest::Response, Url)> {
        let (resp, url, sent) = self.send_call(method, segments, query, body).await?;
        let resp = self
            .inner
            .wire
            .check(resp, &url, ctx, sent.as_ref())
            .await?;
        Ok((resp, url))
    }

    /// [`Client::call`], then the answer as JSON.
    pub(crate) async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
        ctx: Ctx<'_>,
    ) -> Result<T> {
        let (resp, url) = self.call(method, segments, query, body, ctx).await?;
        self.inner.wire.read_json(resp, &url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_func_prefix_and_encoding() {
        let c = Client::new(ClientConfig::session(
            Url::parse("http://127.0.0.1:8090/").expect("url"),
        ))
        .expect("client");
        assert_eq!(
            c.api_url(&["session", "my sess", "download_single"], &[("file", &crate::id_container_path())])
                .as_str(),
            "http://127.0.0.1:8090/func/session/my%20sess/download_single?file=%2Fhome%2Fwork%2Fid_container"
        );
        assert_eq!(
            c.api_url(&[""], &[]).as_str(),
            "http://127.0.0.1:8090/func/"
        );
        let c = Client::new(ClientConfig::api(
            Url::parse("https://api.example.com/base").expect("url"),
            "AK".into(),
            "SK".into(),
        ))
        .expect("client");
        assert_eq!(
            c.api_url(&[""], &[]).as_str(),
            "https://api.example.com/base/"
        );
        assert_eq!(
            c.api_url(&["admin", "gql"], &[]).as_str(),
            "https://api.example.com/base/admin/gql"
        );
    }

    #[test]
    fn api_mode_needs_keys() {
        let mut cfg = ClientConfig::session(Url::parse("http://h/").expect("url"));
        cfg.mode = Mode::Api;
        assert!(matches!(
            Client::new(cfg).expect_err("no keys").kind(),
            ErrorKind::InvalidInput(_)
        ));
    }
}
