//! The [`Client`]: configuration, auth (webserver session or HMAC keypair), version negotiation,
//! and the typed calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::download::{self, MAX_FILE_SIZE};
use crate::error::{redact, Error, ErrorKind, Problem, Result};
use crate::model::{
    decode_service_ports, is_running_status, AccountInfo, App, DownloadStyle, DownloadedFile,
    LoginCheck, LoginInfo, Session, SessionInfo, StatusFilter,
};
use crate::sensitive::Sensitive;
use crate::sign;
use crate::tcpproxy::{TargetAuth, TcpproxyTarget};
use crate::tls::{self, TlsOptions};
use crate::version::{ApiVersion, CLIENT_API_VERSION, MIN_SUPPORTED_MAJOR};

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("bai/", env!("CARGO_PKG_VERSION"));
/// The web session cookie of the Backend.AI webserver.
pub(crate) const SESSION_COOKIE: &str = "AIOHTTP_SESSION";
/// The header that carries the web session id.
pub(crate) const SESSION_HEADER: &str = "X-BackendAI-SessionID";
/// The header that carries the negotiated API version.
pub(crate) const VERSION_HEADER: &str = "X-BackendAI-Version";
/// The header that names the user's domain on signed (API mode) requests (protocol.md §2).
pub(crate) const DOMAIN_HEADER: &str = "X-BackendAI-Domain";
/// The domain sent in [`DOMAIN_HEADER`] (the official clients' default).
pub(crate) const DEFAULT_DOMAIN: &str = "default";
/// The most files one download call may ask for.
pub const MAX_DOWNLOAD_FILES: usize = 5;
/// Error bodies are read up to this size.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// JSON answers are read up to this size.
const JSON_BODY_LIMIT: u64 = 32 * 1024 * 1024;
/// A whole multipart download answer (five tars of ≤ 1 MiB plus framing).
const DOWNLOAD_BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// The page size of `compute_session_list` (the server's maximum).
const PAGE_SIZE: usize = 100;
/// The most sessions [`Client::list_sessions`] accepts. The server's `total_count` is only a
/// claim: paging stops at the first empty page, and after this many sessions (or as many
/// pages as that takes) it is an error, whatever the server says, so a hostile or broken
/// server cannot keep it looping or allocating.
pub const MAX_LISTED_SESSIONS: usize = 10_000;
/// The most pages [`Client::list_sessions`] requests (enough for [`MAX_LISTED_SESSIONS`]).
const MAX_PAGES: usize = MAX_LISTED_SESSIONS / PAGE_SIZE;
/// The home directory of the container's login account: relative download paths start here.
pub const CONTAINER_HOME: &str = "/home/work";
/// The file name of the SSH key the agent writes into [`CONTAINER_HOME`].
pub const ID_CONTAINER: &str = "id_container";

/// The absolute path of the SSH key in the container (as the WebUI asks for it).
pub fn id_container_path() -> String {
    format!("{CONTAINER_HOME}/{ID_CONTAINER}")
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Against the webserver: email/password login, then a web session (`/func/…`).
    #[default]
    Session,
    /// Against the manager: every request HMAC-signed with an access/secret key pair.
    Api,
}

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
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    mode: Mode,
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    insecure: bool,
    keys: Option<(Sensitive<String>, Sensitive<String>)>,
    /// Shared with every [`TcpproxyTarget`] made by this client, so a re-login reaches them.
    session_id: SessionCell,
    version: tokio::sync::OnceCell<ServerInfo>,
}

/// The login session id, shared between a [`Client`] and its [`TcpproxyTarget`]s.
pub(crate) type SessionCell = Arc<Mutex<Option<Sensitive<String>>>>;

/// Locks a [`SessionCell`]. A poisoned lock only means another thread panicked
/// mid-assignment of an `Option`, so the value is still usable.
pub(crate) fn lock_cell(
    cell: &SessionCell,
) -> std::sync::MutexGuard<'_, Option<Sensitive<String>>> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &redact(&self.inner.endpoint))
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

/// What a request is about, to turn 404s into precise errors.
#[derive(Default, Clone, Copy)]
struct Ctx<'a> {
    session: Option<&'a str>,
    app: Option<&'a str>,
    file: Option<&'a str>,
}

enum Body {
    Empty,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The `AIOHTTP_SESSION` value from `Set-Cookie` headers: `Some("")` when cleared.
fn session_from_cookies(h: &HeaderMap) -> Option<String> {
    let mut found = None;
    for v in h.get_all(reqwest::header::SET_COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        let mut attrs = v.split(';');
        let Some((name, value)) = attrs.next().and_then(|kv| kv.split_once('=')) else {
            continue;
        };
        if name.trim() != SESSION_COOKIE {
            continue;
        }
        let cleared = attrs.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("max-age=-")
        });
        let value = value.trim().trim_matches('"');
        found = Some(if cleared {
            String::new()
        } else {
            value.to_owned()
        });
    }
    found
}

fn looks_like_html(content_type: &str, body: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    content_type.contains("html")
        || start.trim_start().starts_with("<!doctype")
        || start.trim_start().starts_with("<html")
}

fn wrong_url(url: &Url, status: StatusCode, content_type: &str, body: &[u8]) -> Error {
    let detail = if looks_like_html(content_type, body) {
        format!("got an HTML page, HTTP {}", status.as_u16())
    } else if body.is_empty() {
        format!("got an empty answer, HTTP {}", status.as_u16())
    } else {
        format!(
            "got a non-JSON answer ({}), HTTP {}",
            if content_type.is_empty() {
                "no content type"
            } else {
                content_type
            },
            status.as_u16()
        )
    };
    ErrorKind::WrongUrl {
        url: redact(url),
        detail,
    }
    .into()
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
        let keys = match cfg.mode {
            Mode::Api => match (cfg.access_key, cfg.secret_key) {
                (Some(a), Some(s)) if !a.expose().is_empty() && !s.expose().is_empty() => {
                    Some((a, s))
                }
                _ => {
                    return Err(Error::invalid_input(
                        "API mode needs an access key and a secret key",
                    ))
                }
            },
            Mode::Session => None,
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
        let session_id = cfg.session_id.filter(|s| !s.expose().is_empty());
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                mode: cfg.mode,
                timeout: cfg.timeout,
                tls,
                insecure: cfg.tls.insecure,
                keys,
                session_id: Arc::new(Mutex::new(session_id)),
                version: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// Session or API mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The current login session id (session mode), to persist and restore a login later
    /// through [`ClientConfig::session_id`].
    pub fn session_id(&self) -> Option<Sensitive<String>> {
        self.lock_session().clone()
    }

    /// Replaces the login session id (e.g. restored from a keyring).
    pub fn set_session_id(&self, id: Option<Sensitive<String>>) {
        *self.lock_session() = id.filter(|s| !s.expose().is_empty());
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Sensitive<String>>> {
        lock_cell(&self.inner.session_id)
    }

    fn require_session_mode(&self, what: &str) -> Result<()> {
        match self.inner.mode {
            Mode::Session => Ok(()),
            Mode::Api => Err(Error::invalid_input(format!(
                "{what} is only available in session mode"
            ))),
        }
    }

    /// `endpoint` + segments (each percent-encoded) + query.
    fn build_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
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
    fn api_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        match self.inner.mode {
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
            .get_or_try_init(|| self.probe_version())
            .await
            .cloned()
    }

    async fn probe_version(&self) -> Result<ServerInfo> {
        let url = self.api_url(&[""], &[]);
        // Anonymous: no session id is sent, so a cookie in the answer (a 23.09 webserver
        // hands a fresh anonymous web session to `GET /func/`) is never taken as the login.
        let (resp, sent) = self
            .send_raw(Method::GET, &url, Body::Empty, None, false)
            .await?;
        let resp = self
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        let v: Value = self.read_json(resp, &url).await?;
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

    /// Sends one request with the auth of the mode. `version` is the `X-BackendAI-Version` value.
    /// Also returns the login session id the request carried (session mode, `auth` only).
    async fn send_raw(
        &self,
        method: Method,
        url: &Url,
        body: Body,
        version: Option<ApiVersion>,
        auth: bool,
    ) -> Result<(reqwest::Response, Option<Sensitive<String>>)> {
        let mut sent = None;
        let (content_type, bytes): (&str, Vec<u8>) = match body {
            Body::Empty => ("text/plain", Vec::new()),
            Body::Json(v) => (
                "application/json",
                serde_json::to_vec(&v).expect("BUG: a JSON value always serializes"),
            ),
            Body::Raw(ct, b) => (ct, b),
        };
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(CONTENT_TYPE, content_type);
        let version_s = version.map(|v| v.to_string());
        if let Some(v) = &version_s {
            req = req.header(VERSION_HEADER, v);
        }
        if auth {
            match (&self.inner.mode, &self.inner.keys) {
                (Mode::Api, Some((ak, sk))) => {
                    let now = Utc::now();
                    let date_str = sign::python_iso_date(now);
                    let host = sign::host_header(url);
                    let pq = sign::path_and_query(url);
                    let input = sign::SignInput {
                        method: method.as_str(),
                        path_and_query: &pq,
                        date_str: &date_str,
                        date: now,
                        host: &host,
                        content_type,
                        version: version_s.as_deref().unwrap_or(""),
                    };
                    let authz = sign::authorization(ak.expose(), sk.expose(), &input);
                    let mut hv = HeaderValue::from_str(&authz).map_err(|_| {
                        Error::invalid_input("the access key has invalid characters")
                    })?;
                    hv.set_sensitive(true);
                    // Not part of the signature (protocol.md §2 lists it among the headers sent).
                    req = req
                        .header(reqwest::header::DATE, date_str)
                        .header(reqwest::header::AUTHORIZATION, hv)
                        .header(DOMAIN_HEADER, DEFAULT_DOMAIN);
                }
                _ => {
                    sent = self.session_id();
                    if let Some(id) = &sent {
                        let mut hv = HeaderValue::from_str(id.expose()).map_err(|_| {
                            Error::invalid_input("the session id has invalid characters")
                        })?;
                        hv.set_sensitive(true);
                        let mut cookie =
                            HeaderValue::from_str(&format!("{SESSION_COOKIE}={}", id.expose()))
                                .map_err(|_| {
                                    Error::invalid_input("the session id has invalid characters")
                                })?;
                        cookie.set_sensitive(true);
                        req = req
                            .header(SESSION_HEADER, hv)
                            .header(reqwest::header::COOKIE, cookie);
                    }
                }
            }
        }
        if !bytes.is_empty() {
            req = req.body(bytes);
        }
        if self.inner.insecure && url.scheme() == "https" {
            // Per client, not per request: see `TlsOptions::insecure`.
            tracing::debug!(url = %redact(url), "HTTPS request without certificate verification");
        }
        tracing::debug!(%method, url = %redact(url), "request");
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(e, url, self.inner.timeout))?;
        Ok((resp, sent))
    }

    /// Follows the server clearing the login cookie (`Max-Age=0`, e.g. at logout) on a 2xx
    /// answer to a request that carried the current login id.
    ///
    /// A *new* id in an answer is never adopted here: an anonymous request (the version probe)
    /// or one whose login died may get a brand-new anonymous web session, which must not
    /// replace the login. Only `/server/login` and `/server/login-check` (when authenticated)
    /// set the id.
    fn capture_session(&self, h: &HeaderMap, sent: Option<&Sensitive<String>>) {
        if self.inner.mode != Mode::Session {
            return;
        }
        let Some(sent) = sent else { return };
        let from_header = header_str(h, SESSION_HEADER).trim().to_owned();
        let id = if !from_header.is_empty() {
            Some(from_header)
        } else {
            session_from_cookies(h)
        };
        match id {
            Some(id) if id.is_empty() => {
                let mut cur = self.lock_session();
                // Compare and swap: a concurrent login may have replaced the id meanwhile.
                if cur.as_ref() == Some(sent) {
                    tracing::debug!("the server cleared the login session id");
                    *cur = None;
                }
            }
            Some(id) if id != *sent.expose() => {
                tracing::debug!("ignoring a different web session id in an answer");
            }
            _ => {}
        }
    }

    /// Passes a 2xx answer through; turns anything else into a precise error.
    async fn check(
        &self,
        resp: reqwest::Response,
        url: &Url,
        ctx: Ctx<'_>,
        sent: Option<&Sensitive<String>>,
    ) -> Result<reqwest::Response> {
        let status = resp.status();
        let had_session = sent.is_some();
        if status.is_success() {
            self.capture_session(resp.headers(), sent);
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = self
            .read_limited(resp, url, ERROR_BODY_LIMIT, "error body", true)
            .await?;
        Err(self.classify(status, &headers, &body, url, ctx, had_session))
    }

    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        url: &Url,
        ctx: Ctx<'_>,
        had_session: bool,
    ) -> Error {
        let content_type = header_str(headers, "content-type");
        let problem = Problem::parse(body);
        let text = problem
            .as_ref()
            .map(Problem::text_lower)
            .unwrap_or_default();
        let code = status.as_u16();
        if status.is_redirection() {
            return ErrorKind::WrongUrl {
                url: redact(url),
                detail: format!("redirected ({code}) to {}", header_str(headers, "location")),
            }
            .into();
        }
        if status == StatusCode::UNAUTHORIZED {
            return match self.inner.mode {
                Mode::Session if had_session => ErrorKind::LoginExpired.into(),
                Mode::Session => ErrorKind::NotLoggedIn.into(),
                Mode::Api => ErrorKind::AuthFailed {
                    detail: problem
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "the access key or secret key was refused".into()),
                }
                .into(),
            };
        }
        if status == StatusCode::BAD_REQUEST
            && (text.contains("date/time sync") || text.contains("time sync error"))
        {
            let server = DateTime::parse_from_rfc2822(header_str(headers, "date"))
                .ok()
                .map(|d| d.with_timezone(&Utc));
            return match self.inner.mode {
                // The webserver signs `/func/…` with its own clock: ours plays no part.
                Mode::Session => ErrorKind::ServerClockSkew { server }.into(),
                Mode::Api => ErrorKind::ClockSkew {
                    local: Utc::now(),
                    server,
                }
                .into(),
            };
        }
        if status == StatusCode::BAD_REQUEST && text.contains("unsupported api version") {
            return ErrorKind::UnsupportedVersion {
                detail: "the server refused the API version".into(),
            }
            .into();
        }
        if let Some(file) = ctx.file {
            let missing = text.contains("not found")
                || text.contains("no such file")
                || text.contains("does not exist");
            let about_session = text.contains("no such session") || text.contains("session_");
            if missing && !about_session && matches!(code, 400 | 404 | 500) {
                return ErrorKind::FileNotFound {
                    session: ctx.session.unwrap_or_default().to_owned(),
                    path: file.to_owned(),
                }
                .into();
            }
        }
        if status == StatusCode::NOT_FOUND && problem.is_some() {
            if let Some(session) = ctx.session {
                if text.contains("no such session")
                    || text.contains("session-not-found")
                    || (text.contains("session_") && text.contains("not-found"))
                {
                    return ErrorKind::SessionNotFound {
                        session: session.to_owned(),
                    }
                    .into();
                }
                if text.contains("no such app") || text.contains("app-not-found") {
                    return ErrorKind::AppNotFound {
                        session: session.to_owned(),
                        app: ctx.app.unwrap_or_default().to_owned(),
                        available: Vec::new(),
                    }
                    .into();
                }
            }
        }
        if status.is_server_error() {
            return ErrorKind::Server {
                status: code,
                url: redact(url),
                problem,
            }
            .into();
        }
        match problem {
            Some(problem) => ErrorKind::Api {
                status: code,
                url: redact(url),
                problem,
            }
            .into(),
            None => wrong_url(url, status, content_type, body),
        }
    }

    /// Reads a body up to `limit` bytes; over the limit is [`ErrorKind::TooLarge`] (or, when
    /// `truncate`, the first `limit` bytes).
    async fn read_limited(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
        limit: u64,
        what: &str,
        truncate: bool,
    ) -> Result<Vec<u8>> {
        if !truncate && resp.content_length().is_some_and(|l| l > limit) {
            return Err(ErrorKind::TooLarge {
                what: what.to_owned(),
                limit,
            }
            .into());
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::from_reqwest(e, url, self.inner.timeout))?
        {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > limit {
                if truncate {
                    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    break;
                }
                return Err(ErrorKind::TooLarge {
                    what: what.to_owned(),
                    limit,
                }
                .into());
            }
        }
        Ok(out)
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        url: &Url,
    ) -> Result<T> {
        let status = resp.status();
        let content_type = header_str(resp.headers(), "content-type").to_owned();
        let body = self
            .read_limited(resp, url, JSON_BODY_LIMIT, "the answer", false)
            .await?;
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return Err(wrong_url(url, status, &content_type, &body)),
        };
        serde_json::from_value(v).map_err(|e| Error::invalid_response(url, e.to_string()))
    }

    /// Sends an authenticated manager API call (negotiating the version first) and checks it.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
        ctx: Ctx<'_>,
    ) -> Result<(reqwest::Response, Url)> {
        let version = self.negotiate_version().await?;
        let url = self.api_url(segments, query);
        let (resp, sent) = self
            .send_raw(method, &url, body, Some(version), true)
            .await?;
        let resp = self.check(resp, &url, ctx, sent.as_ref()).await?;
        Ok((resp, url))
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body,
        ctx: Ctx<'_>,
    ) -> Result<T> {
        let (resp, url) = self.call(method, segments, query, body, ctx).await?;
        self.read_json(resp, &url).await
    }

    /// A webserver call (`/server/…`), session mode only.
    async fn server_call(&self, name: &str, body: Body) -> Result<(reqwest::Response, Url)> {
        let (resp, url, sent) = self.server_send(name, body).await?;
        let resp = self
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        Ok((resp, url))
    }

    /// Sends a webserver call (`/server/…`) without checking the answer.
    async fn server_send(
        &self,
        name: &str,
        body: Body,
    ) -> Result<(reqwest::Response, Url, Option<Sensitive<String>>)> {
        let version = self.negotiate_version().await?;
        let url = self.build_url(&["server", name], &[]);
        let (resp, sent) = self
            .send_raw(Method::POST, &url, body, Some(version), true)
            .await?;
        Ok((resp, url, sent))
    }

    /// Logs in to the webserver (session mode). Over plain `http` the body is encrypted as
    /// the webserver's `decrypt_payload` expects. On success the login session id is kept
    /// (see [`Client::session_id`]).
    ///
    /// Fails with [`ErrorKind::TotpRequired`] when the account needs a one-time password and
    /// none (or a wrong one) was given, and [`ErrorKind::AuthFailed`] for a wrong password.
    #[tracing::instrument(skip(self, password, otp), fields(endpoint = %redact(&self.inner.endpoint)), err)]
    pub async fn login(
        &self,
        email: &str,
        password: &Sensitive<String>,
        otp: Option<&str>,
    ) -> Result<LoginInfo> {
        self.require_session_mode("login")?;
        let version = self.negotiate_version().await?;
        let url = self.build_url(&["server", "login"], &[]);
        let mut creds = json!({"username": email, "password": password.expose()});
        if let Some(otp) = otp {
            creds["otp"] = json!(otp);
        }
        let body = if url.scheme() == "https" {
            Body::Json(creds)
        } else {
            let origin = format!("{}://{}", url.scheme(), sign::host_header(&url));
            let plain = serde_json::to_vec(&creds).expect("BUG: a JSON value always serializes");
            let enc = sign::encrypt_login_body(&origin, &sign::random_iv(), &plain);
            Body::Raw("application/octet-stream", enc.into_bytes())
        };
        let (content_type, bytes) = match body {
            Body::Json(v) => (
                "application/json",
                serde_json::to_vec(&v).expect("BUG: a JSON value always serializes"),
            ),
            Body::Raw(ct, b) => (ct, b),
            Body::Empty => ("text/plain", Vec::new()),
        };
        let mut req = self
            .inner
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, content_type)
            .header(VERSION_HEADER, version.to_string())
            .body(bytes);
        if url.scheme() != "https" {
            req = req.header("X-BackendAI-Encoded", "true");
        }
        // Deliberately no session id: a second login in a logged-in web session is refused.
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(e, &url, self.inner.timeout))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self
            .read_limited(resp, &url, ERROR_BODY_LIMIT, "login answer", true)
            .await?;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let authenticated = parsed
            .as_ref()
            .and_then(|v| v.get("authenticated"))
            .and_then(Value::as_bool);
        match authenticated {
            Some(true) if status.is_success() => {
                let account: AccountInfo = parsed
                    .as_ref()
                    .and_then(|v| v.get("data"))
                    .cloned()
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default();
                let header_id = header_str(&headers, SESSION_HEADER).trim().to_owned();
                let id = if header_id.is_empty() {
                    session_from_cookies(&headers).filter(|s| !s.is_empty())
                } else {
                    Some(header_id)
                };
                let Some(id) = id else {
                    return Err(Error::invalid_response(
                        &url,
                        "the login succeeded but the server sent no session id",
                    ));
                };
                self.set_session_id(Some(Sensitive::new(id)));
                tracing::info!(role = account.role.as_deref().unwrap_or(""), "logged in");
                Ok(LoginInfo { account })
            }
            Some(_) => {
                let data = parsed.as_ref().and_then(|v| v.get("data")).cloned();
                let problem: Problem = data
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default();
                let text = problem.text_lower();
                if text.contains("require-totp-registration") {
                    return Err(ErrorKind::TotpRequired { registration: true }.into());
                }
                if text.contains("require-totp-authentication")
                    || (otp.is_none() && text.contains("otp not provided"))
                {
                    return Err(ErrorKind::TotpRequired {
                        registration: false,
                    }
                    .into());
                }
                let detail = problem.to_string();
                Err(ErrorKind::AuthFailed {
                    detail: if detail.is_empty() {
                        "wrong email or password".into()
                    } else {
                        detail
                    },
                }
                .into())
            }
            None if status == StatusCode::UNAUTHORIZED => Err(ErrorKind::AuthFailed {
                detail: Problem::parse(&body)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "wrong email or password".into()),
            }
            .into()),
            None => Err(if status.is_success() {
                wrong_url(&url, status, header_str(&headers, "content-type"), &body)
            } else {
                self.classify(status, &headers, &body, &url, Ctx::default(), false)
            }),
        }
    }

    /// Asks the webserver whether the web session is logged in (session mode).
    ///
    /// When authenticated, the id in the answer's `session_id` becomes the current login id;
    /// when not, the stale local id is forgotten ([`Client::session_id`] is then `None`).
    #[tracing::instrument(skip(self), err)]
    pub async fn login_check(&self) -> Result<LoginCheck> {
        self.require_session_mode("login-check")?;
        let (resp, url) = self.server_call("login-check", Body::Empty).await?;
        let v: Value = self.read_json(resp, &url).await?;
        let authenticated = v
            .get("authenticated")
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::invalid_response(&url, "no `authenticated` in login-check"))?;
        if authenticated {
            if let Some(id) = v.get("session_id").and_then(Value::as_str) {
                self.set_session_id(Some(Sensitive::new(id.to_owned())));
            }
        } else {
            // The saved id is dead (expired, logged out elsewhere): forget it.
            self.set_session_id(None);
        }
        let account = if authenticated {
            v.get("data")
                .cloned()
                .and_then(|d| serde_json::from_value(d).ok())
        } else {
            None
        };
        Ok(LoginCheck {
            authenticated,
            account,
        })
    }

    /// Logs out (session mode). The local session id is forgotten even if the call fails.
    #[tracing::instrument(skip(self), err)]
    pub async fn logout(&self) -> Result<()> {
        self.require_session_mode("logout")?;
        let r = self.server_call("logout", Body::Empty).await;
        self.set_session_id(None);
        r.map(|_| ())
    }

    /// Extends the web session (newer webservers). Returns the new expiry as sent (`None` when
    /// the answer carries no `expires`).
    ///
    /// A webserver without the route (23.09 and older answer 404 or 405) gives
    /// [`ErrorKind::NotSupported`] ([`crate::ErrorCode::NotSupported`]): the login still works
    /// until it expires, it just cannot be extended. It is an error rather than `Ok(None)` so
    /// a caller cannot mistake it for a successful extension.
    #[tracing::instrument(skip(self), err)]
    pub async fn extend_login_session(&self) -> Result<Option<String>> {
        self.require_session_mode("extend-login-session")?;
        let (resp, url, sent) = self
            .server_send("extend-login-session", Body::Empty)
            .await?;
        if matches!(
            resp.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            return Err(ErrorKind::NotSupported {
                feature: "extending the login session".into(),
                detail: format!("{} answered {}", redact(&url), resp.status().as_u16()),
            }
            .into());
        }
        let resp = self
            .check(resp, &url, Ctx::default(), sent.as_ref())
            .await?;
        let v: Value = self.read_json(resp, &url).await?;
        Ok(v.get("expires").and_then(Value::as_str).map(str::to_owned))
    }

    /// Runs a GraphQL query and returns `data`; non-empty `errors` is an error.
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let version = self.negotiate_version().await?;
        let path = if version
            < (ApiVersion {
                major: 6,
                date: 20210815,
            }) {
            "graphql"
        } else {
            "gql"
        };
        let body = json!({"query": query, "variables": variables});
        let v: Value = self
            .call_json(
                Method::POST,
                &["admin", path],
                &[],
                Body::Json(body),
                Ctx::default(),
            )
            .await?;
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            if !errors.is_empty() {
                let messages = errors
                    .iter()
                    .map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect();
                return Err(ErrorKind::GraphQl { messages }.into());
            }
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Lists the caller's compute sessions (`compute_session_list`, 100 per page).
    ///
    /// Paging follows `total_count` but never trusts it: it stops at the first page without
    /// items, and a list that does not end within [`MAX_LISTED_SESSIONS`] sessions' worth of
    /// pages (or a page with more items than asked for) is an [`ErrorKind::InvalidResponse`].
    #[tracing::instrument(skip(self), err)]
    pub async fn list_sessions(&self, filter: StatusFilter) -> Result<Vec<Session>> {
        const QUERY: &str = "query($limit:Int!, $offset:Int!, $status:String) { \
            compute_session_list(limit:$limit, offset:$offset, status:$status) { \
            items { id name type image status status_info created_at group_name service_ports } \
            total_count } }";
        let status = filter.as_query();
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let data = self
                .graphql(
                    QUERY,
                    json!({"limit": PAGE_SIZE, "offset": out.len(), "status": status}),
                )
                .await?;
            let list = data.get("compute_session_list").ok_or_else(|| {
                Error::invalid_response(&self.inner.endpoint, "no compute_session_list in data")
            })?;
            let items = list
                .get("items")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if items.len() > PAGE_SIZE {
                return Err(Error::invalid_response(
                    &self.inner.endpoint,
                    format!(
                        "a session list page holds {} items, more than the {PAGE_SIZE} asked for",
                        items.len()
                    ),
                ));
            }
            let total = list.get("total_count").and_then(Value::as_u64).unwrap_or(0);
            for item in items {
                out.push(parse_session(item).map_err(|e| {
                    Error::invalid_response(&self.inner.endpoint, format!("bad session item: {e}"))
                })?);
            }
            if items.is_empty() || u64::try_from(out.len()).map_or(true, |n| n >= total) {
                return Ok(out);
            }
        }
        Err(Error::invalid_response(
            &self.inner.endpoint,
            format!(
                "the session list does not end within {MAX_PAGES} pages ({} sessions so far; \
                 bai lists at most {MAX_LISTED_SESSIONS})",
                out.len()
            ),
        ))
    }

    async fn prefix(&self) -> Result<&'static str> {
        Ok(self.negotiate_version().await?.session_prefix())
    }

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

    /// The session's info (`GET /session/{s}`).
    #[tracing::instrument(skip(self), err)]
    pub async fn session_info(&self, session: &str) -> Result<SessionInfo> {
        let prefix = self.prefix().await?;
        let ctx = Ctx {
            session: Some(session),
            ..Ctx::default()
        };
        let raw: Value = self
            .call_json(Method::GET, &[prefix, session], &[], Body::Empty, ctx)
            .await?;
        let status = raw
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(SessionInfo { status, raw })
    }

    /// Downloads one file (≤ 1 MiB) from the session (`POST /session/{s}/download_single`).
    #[tracing::instrument(skip(self), err)]
    pub async fn download_single(&self, session: &str, path: &str) -> Result<Vec<u8>> {
        let prefix = self.prefix().await?;
        let ctx = Ctx {
            session: Some(session),
            file: Some(path),
            ..Ctx::default()
        };
        let (resp, url) = self
            .call(
                Method::POST,
                &[prefix, session, "download_single"],
                &[("file", path)],
                Body::Empty,
                ctx,
            )
            .await?;
        self.read_limited(resp, &url, MAX_FILE_SIZE, path, false)
            .await
    }

    /// Fetches the session's SSH private key (`id_container` in [`CONTAINER_HOME`]), cut to start at its
    /// first `-----`. `None` when the file does not exist (the user's own `.ssh` is mounted).
    #[tracing::instrument(skip(self), err)]
    pub async fn fetch_ssh_key(&self, session: &str) -> Result<Option<Sensitive<String>>> {
        let path = id_container_path();
        let data = match self.download_single(session, &path).await {
            Ok(d) => d,
            Err(e) if matches!(e.kind(), ErrorKind::FileNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let key = download::strip_key(&data)
            .map_err(|e| Error::invalid_response(&self.inner.endpoint, format!("{path}: {e}")))?;
        Ok(Some(Sensitive::new(key)))
    }

    /// Downloads up to five files (paths relative to `/home/work`) as `(name, bytes)`.
    #[tracing::instrument(skip(self), err)]
    pub async fn download(
        &self,
        session: &str,
        files: &[&str],
        style: DownloadStyle,
    ) -> Result<Vec<DownloadedFile>> {
        if files.is_empty() || files.len() > MAX_DOWNLOAD_FILES {
            return Err(Error::invalid_input(format!(
                "download takes 1 to {MAX_DOWNLOAD_FILES} files, not {}",
                files.len()
            )));
        }
        let prefix = self.prefix().await?;
        let joined = files.join(", ");
        let ctx = Ctx {
            session: Some(session),
            file: Some(&joined),
            ..Ctx::default()
        };
        let segments = [prefix, session, "download"];
        let (resp, url) = match style {
            DownloadStyle::Query => {
                let q: Vec<(&str, &str)> = files.iter().map(|f| ("files", *f)).collect();
                self.call(Method::POST, &segments, &q, Body::Empty, ctx)
                    .await?
            }
            DownloadStyle::JsonBody => {
                self.call(
                    Method::POST,
                    &segments,
                    &[],
                    Body::Json(json!({ "files": files })),
                    ctx,
                )
                .await?
            }
        };
        let content_type = header_str(resp.headers(), "content-type").to_owned();
        let body = self
            .read_limited(resp, &url, DOWNLOAD_BODY_LIMIT, "the download", false)
            .await?;
        let got = download::decode_download(&content_type, &body)
            .map_err(|e| Error::invalid_response(&url, e))?;
        if got.is_empty() {
            // A 200 without a single file is no download; never let it pass for success.
            return Err(Error::invalid_response(
                &url,
                "the download answer holds no files",
            ));
        }
        Ok(got)
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
        let auth = match (&self.inner.mode, &self.inner.keys) {
            (Mode::Api, Some((ak, sk))) => TargetAuth::Api {
                access_key: ak.clone(),
                secret_key: sk.clone(),
            },
            _ => TargetAuth::Session(self.inner.session_id.clone()),
        };
        Ok(TcpproxyTarget::new(
            url,
            version,
            auth,
            tls,
            self.inner.insecure,
        ))
    }
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn parse_session(item: &Value) -> std::result::Result<Session, String> {
    let id = match item.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok(Session {
        id,
        name: opt_str(item, "name").ok_or("no name")?,
        status: opt_str(item, "status").unwrap_or_default(),
        status_info: opt_str(item, "status_info"),
        image: opt_str(item, "image"),
        session_type: opt_str(item, "type"),
        created_at: opt_str(item, "created_at"),
        group_name: opt_str(item, "group_name"),
        service_ports: decode_service_ports(item.get("service_ports").unwrap_or(&Value::Null))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("other=1; Path=/"),
        );
        h.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static(
                "AIOHTTP_SESSION=abc123; expires=2025-01-02T03:04:05; HttpOnly; Max-Age=604800; Path=/",
            ),
        );
        assert_eq!(session_from_cookies(&h).as_deref(), Some("abc123"));
        let mut h = HeaderMap::new();
        h.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("AIOHTTP_SESSION=\"\"; Max-Age=0; Path=/"),
        );
        assert_eq!(session_from_cookies(&h).as_deref(), Some(""));
    }

    #[test]
    fn urls_get_func_prefix_and_encoding() {
        let c = Client::new(ClientConfig::session(
            Url::parse("http://127.0.0.1:8090/").expect("url"),
        ))
        .expect("client");
        assert_eq!(
            c.api_url(&["session", "my sess", "download_single"], &[("file", &id_container_path())])
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
        assert_eq!(
            Client::new(cfg).expect_err("no keys").code(),
            crate::ErrorCode::InvalidInput
        );
    }

    #[test]
    fn parses_session_items() {
        let s = parse_session(&json!({
            "id": "8f9a", "name": "s1", "status": "RUNNING", "type": "INTERACTIVE",
            "service_ports": "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_ports\":[2200],\"host_ports\":[30002]}]"
        }))
        .expect("session");
        assert!(s.has_app("sshd"));
        assert!(!s.has_app("ttyd"));
        assert!(s.is_running());
        assert_eq!(s.session_type.as_deref(), Some("INTERACTIVE"));
    }

    mod props {
        use proptest::prelude::*;
        use serde_json::{json, Value};

        use super::*;
        use crate::model::props::any_json;

        proptest! {
            #![proptest_config(ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_session_item_never_panics(v in any_json()) {
                let _ = parse_session(&v);
            }

            #[test]
            fn junk_service_ports_never_break_a_session_item(
                ports in any_json(),
                encode in any::<bool>(),
                id in any_json(),
            ) {
                let ports = if encode { Value::String(ports.to_string()) } else { ports };
                let item = json!({"id": id, "name": "s", "status": "RUNNING",
                                  "service_ports": ports});
                if let Ok(s) = parse_session(&item) {
                    prop_assert_eq!(s.name, "s");
                    for p in &s.service_ports {
                        prop_assert!(!p.name.is_empty());
                        prop_assert!(p.container_ports.iter().chain(&p.host_ports).all(|&n| n != 0));
                    }
                }
            }
        }
    }
}
