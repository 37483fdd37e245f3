//! The manager (API mode): HMAC authentication, GraphQL session list, stream apps and tcpproxy,
//! downloads and session info (protocol.md §2–§5, §7, §9). Responses are never compressed.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State as AxState};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::download::{self, file_not_found};
use crate::faults::{Faults, TunnelFaults};
use crate::problem::Problem;
use crate::session::Status;
use crate::sign::{self, SignInput};
use crate::tunnel::{self, Target};
use crate::ws;
use crate::{lock, State, MANAGER_VERSION};

type St = Arc<State>;

/// The authenticated caller (set by the HMAC middleware).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    #[allow(dead_code)]
    pub access_key: String,
}

pub(crate) fn router(state: St) -> Router {
    let session_routes = |prefix: &str| {
        Router::new()
            .route(&format!("/stream/{prefix}/{{s}}/apps"), get(stream_apps))
            .route(&format!("/stream/{prefix}/{{s}}/tcpproxy"), get(tcpproxy))
            .route(&format!("/stream/{prefix}/{{s}}/httpproxy"), get(tcpproxy))
            .route(&format!("/{prefix}/{{s}}"), get(session_info))
            .route(
                &format!("/{prefix}/{{s}}/direct-access-info"),
                get(direct_access_info),
            )
            .route(
                &format!("/{prefix}/{{s}}/download_single"),
                any(download_single),
            )
            .route(&format!("/{prefix}/{{s}}/download"), any(download))
    };
    Router::new()
        .route("/", get(root))
        .route("/auth/authorize", post(authorize_route))
        .route("/auth/logout", post(|| async { Json(json!({})) }))
        .route("/admin/gql", post(gql))
        .route("/admin/graphql", post(legacy_graphql))
        .merge(session_routes("session"))
        .merge(session_routes("kernel"))
        .fallback(|| async { Problem::not_found_url() })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The manager's root JSON.
pub(crate) fn root_json(state: &State) -> Value {
    json!({"version": state.server_version, "manager": MANAGER_VERSION})
}

async fn root(AxState(state): AxState<St>) -> Json<Value> {
    Json(root_json(&state))
}

fn is_anonymous(method: &Method, path: &str) -> bool {
    (method == Method::GET && (path == "/" || path.is_empty()))
        || path == "/auth/authorize"
        || path == "/auth/logout"
}

/// Fail-route fault, then API version and HMAC checks for everything but the anonymous routes.
async fn guard(AxState(state): AxState<St>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(status) = state.faults.failing_status(&path) {
        return Problem::injected(status).into_response();
    }
    if !is_anonymous(req.method(), &path) {
        match authenticate(&state, req.method(), req.uri(), req.headers()) {
            Ok(id) => {
                req.extensions_mut().insert(id);
            }
            Err(p) => return p.into_response(),
        }
    }
    next.run(req).await
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Checks the version header and the HMAC signature (protocol.md §2).
pub(crate) fn authenticate(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Identity, Problem> {
    let version = header_str(headers, "x-backendai-version")
        .ok_or_else(|| Problem::invalid_auth("API version missing in request headers"))?;
    if !sign::version_supported(version) {
        return Err(Problem::bad_version("Unsupported API version."));
    }
    let auth = header_str(headers, "authorization")
        .ok_or_else(|| Problem::auth_failed("Unauthorized access"))?;
    let cred = sign::parse_authorization(auth)
        .ok_or_else(|| Problem::invalid_auth("Malformed authorization header"))?;
    let raw_date = header_str(headers, "date")
        .or_else(|| header_str(headers, "x-backendai-date"))
        .or_else(|| header_str(headers, "x-sorna-date"))
        .ok_or_else(|| Problem::invalid_auth("Date/time sync error"))?;
    let date =
        sign::parse_date(raw_date).ok_or_else(|| Problem::invalid_auth("Date/time sync error"))?;
    let drift = (state.manager_now() - date.instant).num_seconds().abs();
    if drift > 15 * 60 {
        return Err(Problem::invalid_auth("Date/time sync error"));
    }
    if cred.access_key != state.user.access_key {
        return Err(Problem::auth_failed("Access key not found in HMAC"));
    }
    let host = header_str(headers, "host")
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let content_type = sign::signed_content_type(header_str(headers, "content-type"));
    let input = SignInput {
        method: method.as_str(),
        path_and_query,
        date: raw_date,
        host: &host,
        content_type: &content_type,
        version,
    };
    if !sign::verify(&state.user.secret_key, &date.ymd, &input, &cred.signature) {
        return Err(Problem::auth_failed("HMAC signature mismatch"));
    }
    Ok(Identity {
        access_key: cred.access_key,
    })
}

/// Why a login failed.
#[derive(Debug, Clone)]
pub(crate) struct AuthFail {
    pub status: u16,
    pub slug: &'static str,
    pub title: &'static str,
    pub details: &'static str,
    /// TOTP missing: not counted as a failed attempt.
    pub needs_otp: bool,
}

/// Checks a login (password and, when configured, the TOTP code).
pub(crate) fn authorize(
    state: &State,
    username: &str,
    password: &str,
    otp: Option<&str>,
) -> Result<(), AuthFail> {
    if username != state.user.email || password != state.user.password {
        return Err(AuthFail {
            status: 401,
            slug: "auth-failed",
            title: "Credential/signature mismatch.",
            details: "User credential mismatch.",
            needs_otp: false,
        });
    }
    if let Some(secret) = &state.totp_secret {
        match otp.map(str::trim).filter(|o| !o.is_empty()) {
            None => {
                return Err(AuthFail {
                    status: 401,
                    slug: "require-totp-authentication",
                    title: "Two-factor authentication required.",
                    details: "OTP not provided",
                    needs_otp: true,
                })
            }
            Some(code) if !crate::crypto::totp_matches(secret, code) => {
                return Err(AuthFail {
                    status: 401,
                    slug: "auth-failed",
                    title: "Credential/signature mismatch.",
                    details: "Invalid OTP",
                    needs_otp: false,
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn authorize_route(AxState(state): AxState<St>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Problem::invalid_params("Malformed JSON body").into_response();
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return Problem::invalid_params("username and password are required").into_response();
    };
    if field("type").is_some_and(|t| t != "keypair") {
        return Problem::invalid_params("Unsupported authorization type").into_response();
    }
    match authorize(&state, username, password, field("otp")) {
        Ok(()) => Json(json!({"data": {
            "access_key": state.user.access_key,
            "secret_key": state.user.secret_key,
            "role": "user",
            "status": "active",
        }}))
        .into_response(),
        Err(f) => {
            let mut p = Problem::new(f.status, f.slug, f.title).details(f.details);
            p.msg = Some(f.details.to_owned());
            p.into_response()
        }
    }
}

/// A snapshot of a session for one request.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub id: Uuid,
    pub name: String,
    pub status: Status,
    pub home: PathBuf,
    pub sshd_port: Option<u16>,
    pub apps: Vec<(String, SocketAddr)>,
    pub faults: Faults,
    pub tunnels: CancellationToken,
    pub created_at: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub terminated_at: Option<DateTime<Utc>>,
}

/// Resolves `s` by UUID, or by exact name among non-terminal sessions; applies the session's
/// fail-route fault to `path`.
pub(crate) fn resolve(state: &State, s: &str, path: &str) -> Result<Resolved, Problem> {
    let sessions = lock(&state.sessions);
    let by_id = Uuid::parse_str(s).ok();
    let e = sessions
        .iter()
        .find(|e| Some(e.id) == by_id)
        .or_else(|| {
            sessions
                .iter()
                .find(|e| e.name == s && !e.status.is_terminal())
        })
        .ok_or_else(Problem::no_session)?;
    if let Some(status) = e.faults.failing_status(path) {
        return Err(Problem::injected(status));
    }
    Ok(Resolved {
        id: e.id,
        name: e.name.clone(),
        status: e.status,
        home: e.home.clone(),
        sshd_port: e.sshd.as_ref().map(|p| p.port),
        apps: e.apps.clone(),
        faults: e.faults.clone(),
        tunnels: e.tunnels.clone(),
        created_at: e.created_at,
        status_changed: e.status_changed,
        terminated_at: e.terminated_at,
    })
}

/// One service port of a session.
struct Service {
    name: String,
    protocol: &'static str,
    container_port: u16,
    target: SocketAddr,
}

/// The session's service ports: none until RUNNING (with an sshd), then sshd plus extra apps.
fn services(r: &Resolved) -> Vec<Service> {
    let Some(port) = r.sshd_port.filter(|_| r.status == Status::Running) else {
        return Vec::new();
    };
    let mut v = vec![Service {
        name: "sshd".into(),
        protocol: "tcp",
        container_port: 2200,
        target: SocketAddr::from(([127, 0, 0, 1], port)),
    }];
    v.extend(r.apps.iter().map(|(name, addr)| Service {
        name: name.clone(),
        protocol: "tcp",
        container_port: addr.port(),
        target: *addr,
    }));
    v
}

/// `service_ports` as the GraphQL `JSONString` (a string holding JSON), null until started.
fn service_ports_json(r: &Resolved) -> Value {
    let sv = services(r);
    if sv.is_empty() {
        return if r.status == Status::Running {
            json!("[]")
        } else {
            Value::Null
        };
    }
    let list: Vec<Value> = sv
        .iter()
        .map(|s| {
            json!({"name": s.name, "protocol": s.protocol, "container_ports": [s.container_port],
                   "host_ports": [s.target.port()], "is_inference": false})
        })
        .collect();
    json!(Value::Array(list).to_string())
}

/// Decodes `application/x-www-form-urlencoded` pairs of a raw query.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn first<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn stream_apps(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let list: Vec<Value> = services(&r)
        .iter()
        .map(|s| json!({"name": s.name, "protocol": s.protocol, "ports": [s.container_port]}))
        .collect();
    Json(Value::Array(list)).into_response()
}

/// The pre-upgrade part of the tcpproxy: resolve session and app, pick the target.
pub(crate) fn prepare_tunnel(
    state: &State,
    s: &str,
    raw_query: Option<&str>,
    path: &str,
) -> Result<Target, Problem> {
    let q = query_pairs(raw_query);
    let app = first(&q, "app")
        .or_else(|| first(&q, "service"))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Problem::invalid_params("Missing parameter: app"))?
        .to_owned();
    let port = match first(&q, "port").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p >= 1024 => Some(p),
            _ => {
                return Err(Problem::invalid_params(
                    "port must be between 1024 and 65535",
                ))
            }
        },
    };
    let r = resolve(state, s, path)?;
    let svc = services(&r)
        .into_iter()
        .find(|sv| sv.name == app)
        .ok_or_else(|| Problem::no_app(s, &app))?;
    if let Some(p) = port {
        if p != svc.container_port {
            return Err(Problem::invalid_params(format!(
                "Port {p} is not one of the service's container ports"
            )));
        }
    }
    Ok(Target {
        addr: svc.target,
        faults: TunnelFaults::merge(&state.faults, &r.faults),
        session: r.tunnels.clone(),
        sandbox: state.cancel.clone(),
    })
}

/// The `Sec-WebSocket-Protocol` values the client offered (echoed so strict clients accept).
pub(crate) fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Answers a checked upgrade (after the upgrade-delay fault) and runs the tunnel on the
/// connection once the 101 has been sent.
pub(crate) async fn upgrade(up: ws::Upgrade, target: Target) -> Response {
    if let Some(d) = target.faults.upgrade_delay {
        tokio::time::sleep(d).await;
    }
    let (response, on_upgrade) = up.into_parts();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => tunnel::run(hyper_util::rt::TokioIo::new(io), target).await,
            Err(e) => tracing::debug!(error = %e, "tcpproxy: upgrade failed"),
        }
    });
    response
}

async fn tcpproxy(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    mut req: Request,
) -> Response {
    let mut target = match prepare_tunnel(&state, &s, req.uri().query(), req.uri().path()) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    // Only the webserver swallows closes; the manager itself always sends them.
    target.faults.swallow_close = false;
    match ws::accept(&mut req) {
        Ok(up) => upgrade(up, target).await,
        Err(e) => {
            tracing::debug!(error = %e, "tcpproxy: not a WebSocket upgrade");
            Problem::invalid_params("Expected a WebSocket upgrade request").into_response()
        }
    }
}

async fn session_info(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let age_ms = (Utc::now() - r.created_at).num_milliseconds().max(0);
    Json(json!({
        "sessionId": r.id.to_string(),
        "sessionName": r.name,
        "domainName": "default",
        "groupId": Uuid::nil().to_string(),
        "userId": state.user.user_id.to_string(),
        "lang": IMAGE,
        "image": IMAGE,
        "architecture": "x86_64",
        "registry": "cr.backend.ai",
        "tag": null,
        "containerId": r.id.simple().to_string(),
        "occupiedSlots": {"cpu": "1", "mem": "1073741824"},
        "occupyingSlots": {"cpu": "1", "mem": "1073741824"},
        "requestedSlots": {"cpu": "1", "mem": "1073741824"},
        "occupiedShares": {},
        "environ": [],
        "resourceOpts": {},
        "status": r.status.as_str(),
        "statusInfo": null,
        "statusData": null,
        "age": age_ms,
        "creationTime": r.created_at.to_rfc3339(),
        "terminationTime": r.terminated_at.map(|t| t.to_rfc3339()),
        "numQueriesExecuted": 0,
        "lastStat": null,
        "idleChecks": {},
    }))
    .into_response()
}

async fn direct_access_info(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
) -> Response {
    match resolve(&state, &s, uri.path()) {
        // Only SYSTEM (SFTP) sessions answer with ports; sandbox sessions are INTERACTIVE.
        Ok(_) => Json(json!({})).into_response(),
        Err(p) => p.into_response(),
    }
}

const IMAGE: &str = "cr.backend.ai/stable/python:3.11-ubuntu22.04";
/// Maps a container path (absolute under `/home/work`, or relative to it) into the session home.
fn container_path(home: &Path, p: &str) -> Result<PathBuf, Problem> {
    let rel = if let Some(r) = p.strip_prefix("/home/work") {
        if !(r.is_empty() || r.starts_with('/')) {
            return Err(Problem::internal("The path is outside /home/work."));
        }
        r.trim_start_matches('/')
    } else if p.starts_with('/') {
        return Err(Problem::internal("The path is outside /home/work."));
    } else {
        p
    };
    let rel = Path::new(rel);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Problem::internal("The path is outside /home/work."));
    }
    Ok(home.join(rel))
}

fn body_json(body: &Bytes) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    serde_json::from_slice(body).ok()
}

async fn download_single(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let q = query_pairs(uri.query());
    let json_body = body_json(&body);
    let file = first(&q, "file")
        .map(str::to_owned)
        .or_else(|| json_body.as_ref()?.get("file")?.as_str().map(str::to_owned));
    let Some(file) = file else {
        return Problem::invalid_params("Missing parameter: file").into_response();
    };
    let path = match container_path(&r.home, &file) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    let (home, limit) = (r.home.clone(), state.download_limit);
    let (file, size) =
        match tokio::task::spawn_blocking(move || download::open_single(&home, &path, limit)).await
        {
            Ok(Ok(f)) => f,
            Ok(Err(p)) => return p.into_response(),
            Err(_) => return file_not_found().into_response(),
        };
    let body = download::streamed_body(move |w| {
        std::io::copy(&mut download::exact(&file, size), w).map(drop)
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response()
}

async fn download(
    AxState(state): AxState<St>,
    UrlPath(s): UrlPath<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let r = match resolve(&state, &s, uri.path()) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let mut files: Vec<String> = query_pairs(uri.query())
        .into_iter()
        .filter(|(k, _)| k == "files")
        .map(|(_, v)| v)
        .collect();
    if let Some(list) = body_json(&body).and_then(|v| v.get("files").cloned()) {
        match list {
            Value::Array(a) => files.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            Value::String(s) => files.push(s),
            _ => {}
        }
    }
    if files.is_empty() {
        return Problem::invalid_params("Missing parameter: files").into_response();
    }
    if files.len() > 5 {
        return Problem::invalid_params("Too many files (at most 5).").into_response();
    }
    let mut paths = Vec::with_capacity(files.len());
    for f in &files {
        match container_path(&r.home, f) {
            Ok(p) => paths.push(p),
            Err(p) => return p.into_response(),
        }
    }
    // Every part is planned (opened, checked, measured) before a byte is sent, so that a
    // refusal is a problem response; the tars are then streamed as they are read.
    let (home, limit) = (r.home.clone(), state.download_limit);
    let plan = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| download::plan_part(&home, p, limit))
            .collect::<Result<Vec<_>, _>>()
    });
    let parts = match plan.await {
        Ok(Ok(parts)) => parts,
        Ok(Err(p)) => return p.into_response(),
        Err(_) => return file_not_found().into_response(),
    };
    let boundary = Uuid::new_v4().simple().to_string();
    let part_head = |len: u64| {
        format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Encoding: identity\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let end = format!("--{boundary}--\r\n");
    let total = parts
        .iter()
        .map(|p| part_head(p.len()).len() as u64 + p.len() + 2)
        .sum::<u64>()
        + end.len() as u64;
    let heads: Vec<String> = parts.iter().map(|p| part_head(p.len())).collect();
    let body = download::streamed_body(move |w| {
        use std::io::Write as _;
        for (part, head) in parts.iter().zip(&heads) {
            w.write_all(head.as_bytes())?;
            download::write_part(part, w)?;
            w.write_all(b"\r\n")?;
        }
        w.write_all(end.as_bytes())
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/mixed; boundary={boundary}"),
            ),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        body,
    )
        .into_response()
}

async fn legacy_graphql() -> Response {
    Problem::invalid_params("The legacy GraphQL endpoint is not supported; use /admin/gql.")
        .into_response()
}

/// Whether `field` occurs in the query as a whole word.
fn has_field(query: &str, field: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    query.match_indices(field).any(|(i, _)| {
        let before = query[..i].chars().next_back();
        let after = query[i + field.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn session_item(state: &State, r: &Resolved) -> Value {
    json!({
        "id": r.id.to_string(),
        "session_id": r.id.to_string(),
        "name": r.name,
        "priority": 10,
        "type": "interactive",
        "session_type": "interactive",
        "image": IMAGE,
        "architecture": "x86_64",
        "status": r.status.as_str(),
        "status_info": null,
        "status_data": null,
        "status_changed": r.status_changed.to_rfc3339(),
        "result": "UNDEFINED",
        "service_ports": service_ports_json(r),
        "created_at": r.created_at.to_rfc3339(),
        "terminated_at": r.terminated_at.map(|t| t.to_rfc3339()),
        "starts_at": null,
        "scheduled_at": r.created_at.to_rfc3339(),
        "access_key": state.user.access_key,
        "user_email": state.user.email,
        "user_id": state.user.user_id.to_string(),
        "domain_name": "default",
        "group_name": "default",
        "group_id": Uuid::nil().to_string(),
        "project_id": Uuid::nil().to_string(),
        "cluster_mode": "single-node",
        "cluster_size": 1,
        "mounts": [],
        "vfolder_mounts": [],
        "occupied_slots": "{\"cpu\": \"1\", \"mem\": \"1073741824\"}",
        "requested_slots": "{\"cpu\": \"1\", \"mem\": \"1073741824\"}",
        "resource_opts": "{}",
        "idle_checks": "{}",
        "inference_metrics": null,
        "agent": "i-sandbox",
        "agents": ["i-sandbox"],
        "containers": [{"container_id": r.id.simple().to_string(), "agent": "i-sandbox", "status": r.status.as_str()}],
        "kernels": [{"container_id": r.id.simple().to_string(), "agent_id": "i-sandbox", "status": r.status.as_str(), "cluster_role": "main"}],
        "main_kernel_role": "COMPUTE",
        "commit_status": null,
        "tag": null,
        "startup_command": null,
        "num_queries": 0,
        "last_stat": null,
    })
}

fn snapshots(state: &State) -> Vec<Resolved> {
    let ids: Vec<Uuid> = lock(&state.sessions).iter().map(|e| e.id).collect();
    ids.iter()
        .filter_map(|id| resolve(state, &id.to_string(), "").ok())
        .collect()
}

fn var_u64(vars: &Value, key: &str) -> Option<u64> {
    vars.get(key).and_then(Value::as_u64)
}

async fn gql(AxState(state): AxState<St>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return Json(
            json!({"data": null, "errors": [{"message": "Malformed GraphQL request body"}]}),
        )
        .into_response();
    };
    let query = req.get("query").and_then(Value::as_str).unwrap_or("");
    let vars = req.get("variables").cloned().unwrap_or(Value::Null);
    let mut data = serde_json::Map::new();

    if has_field(query, "keypair") {
        data.insert(
            "keypair".into(),
            json!({"user_id": state.user.email, "access_key": state.user.access_key,
                   "secret_key": state.user.secret_key, "is_active": true, "is_admin": false,
                   "resource_policy": "default", "concurrency_used": 0}),
        );
    }
    let all = snapshots(&state);
    let status_filter: Option<Vec<String>> = vars.get("status").and_then(Value::as_str).map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .collect()
    });
    if has_field(query, "compute_session_list") {
        let filtered: Vec<&Resolved> = all
            .iter()
            .filter(|r| {
                status_filter
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x == r.status.as_str()))
            })
            .collect();
        let limit = var_u64(&vars, "limit").unwrap_or(100) as usize;
        let offset = var_u64(&vars, "offset").unwrap_or(0) as usize;
        let items: Vec<Value> = filtered
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| session_item(&state, r))
            .collect();
        data.insert(
            "compute_session_list".into(),
            json!({"items": items, "total_count": filtered.len()}),
        );
    }
    if has_field(query, "compute_session_nodes") {
        let first_n = var_u64(&vars, "first").unwrap_or(100) as usize;
        let offset = var_u64(&vars, "offset").unwrap_or(0) as usize;
        let edges: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(first_n)
            .map(|r| {
                use base64::Engine as _;
                let gid = base64::engine::general_purpose::STANDARD
                    .encode(format!("ComputeSessionNode:{}", r.id));
                let mut node = session_item(&state, r);
                node["row_id"] = json!(r.id.to_string());
                node["id"] = json!(gid);
                json!({"node": node, "cursor": gid})
            })
            .collect();
        data.insert(
            "compute_session_nodes".into(),
            json!({"edges": edges, "count": all.len()}),
        );
    }
    if has_field(query, "compute_session") {
        let id = vars
            .get("id")
            .or_else(|| vars.get("session_id"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let item = all
            .iter()
            .find(|r| r.id.to_string() == id || r.name == id)
            .map(|r| session_item(&state, r));
        data.insert("compute_session".into(), item.unwrap_or(Value::Null));
    }
    if data.is_empty() {
        return Json(
            json!({"data": null, "errors": [{"message": "bai-sandbox: unsupported query"}]}),
        )
        .into_response();
    }
    // Answer only the selected fields, in the query's order, under the query's aliases.
    let data = match crate::gql::parse(query) {
        Some(roots) => {
            let mut out = serde_json::Map::new();
            for f in &roots {
                if let Some(v) = data.get(&f.name) {
                    out.insert(f.key.clone(), crate::gql::project(v, &f.children));
                }
            }
            Value::Object(out)
        }
        None => Value::Object(data),
    };
    Json(json!({"data": data, "errors": null})).into_response()
}
