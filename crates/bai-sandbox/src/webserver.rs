//! The webserver (session mode, protocol.md §1 and §9): login with plain or encrypted bodies,
//! optional TOTP, web sessions by cookie or `X-BackendAI-SessionID`, and `/func/*`.
//!
//! `/func/<path>` HTTP requests are re-signed with the user's keypair and handed to the manager's
//! router in-process, so they go through the same HMAC check as API-mode requests. WebSocket
//! requests under `/func/stream/` (but `…/apps`) are checked with the manager's logic and
//! bridged directly; any refusal of the manager's becomes 502 `bad-gateway` "The proxy target
//! server is inaccessible." (`api_request_unreachable`, none of the manager's reason), and a
//! request that is no WebSocket upgrade aiohttp's 400 `text/plain`, as with the real 26.9.6.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::manager;
use crate::problem::ProblemReply;
use crate::sign::{self, SignInput};
use crate::{lock, State, WebSession};

/// Lifetime of a web session (cookie `Max-Age`), renewed by `extend-login-session`.
const SESSION_MAX_AGE: i64 = 3600;
/// Failed logins per username allowed within [`FAILURE_WINDOW`] before 429.
const MAX_FAILURES: usize = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(1200);
const COOKIE: &str = "AIOHTTP_SESSION";
const SESSION_HEADER: &str = "x-backendai-sessionid";

#[derive(Clone)]
struct Web {
    state: Arc<State>,
    manager: Router,
    manager_host: String,
}

pub(crate) fn router(state: Arc<State>, manager: Router, manager_addr: SocketAddr) -> Router {
    let web = Web {
        state: state.clone(),
        manager,
        manager_host: manager_addr.to_string(),
    };
    Router::new()
        .route("/server/login", post(login))
        .route("/server/login-check", any(login_check))
        .route("/server/logout", any(logout))
        .route("/server/extend-login-session", post(extend))
        .route("/func", any(func_root))
        .route("/func/", any(func_root))
        .route("/func/{*path}", any(func))
        .fallback(|| async { ProblemReply::not_found_url() })
        .layer(middleware::from_fn_with_state(state, fail_route))
        .with_state(web)
}

async fn fail_route(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if let Some(status) = state.faults.failing_status(req.uri().path()) {
        return ProblemReply::injected(status).into_response();
    }
    next.run(req).await
}

/// The web session id: the `X-BackendAI-SessionID` header first, then the cookie.
fn session_id(headers: &HeaderMap) -> Option<String> {
    if let Some(h) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        if !h.trim().is_empty() {
            return Some(h.trim().to_owned());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The live web session with this id (expired ones are dropped).
fn web_session(state: &State, id: &str) -> Option<WebSession> {
    let mut store = lock(&state.web_sessions);
    match store.get(id) {
        Some(s) if s.expires > Utc::now() => Some(s.clone()),
        Some(_) => {
            store.remove(id);
            None
        }
        None => None,
    }
}

/// The access key of the logged-in user of this request, if any.
fn logged_in(state: &State, headers: &HeaderMap) -> Option<(String, String)> {
    let id = session_id(headers)?;
    let ak = web_session(state, &id)?.access_key?;
    Some((id, ak))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "https://api.backend.ai/probs/auth-failed", "title": "Unauthorized access"})
            .to_string(),
    )
        .into_response()
}

fn set_cookie(resp: &mut Response, id: &str, new: bool) {
    let cookie = format!("{COOKIE}={id}; HttpOnly; Max-Age={SESSION_MAX_AGE}; Path=/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    if new {
        if let Ok(v) = HeaderValue::from_str(id) {
            resp.headers_mut()
                .insert(HeaderName::from_static(SESSION_HEADER), v);
        }
    }
}

fn user_data(state: &State) -> Value {
    json!({"access_key": state.user.access_key, "role": "user", "status": "active"})
}

fn problem(status: u16, slug: &'static str, title: &str) -> Response {
    ProblemReply::new(status, slug, title).into_response()
}

async fn login(AxState(web): AxState<Web>, headers: HeaderMap, body: Bytes) -> Response {
    let state = &web.state;
    let existing = session_id(&headers).filter(|id| web_session(state, id).is_some());
    if let Some(id) = &existing {
        if web_session(state, id).and_then(|s| s.access_key).is_some() {
            return problem(400, "generic-bad-request", "You have already logged in.");
        }
    }
    let encoded = headers
        .get("x-backendai-encoded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let plain = if encoded {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        match crate::crypto::decrypt_login_body(&format!("http://{host}"), &text) {
            Some(p) => p,
            None => {
                return problem(
                    400,
                    "invalid-api-params",
                    "Could not decrypt the login body.",
                )
            }
        }
    } else {
        body.to_vec()
    };
    let creds: Value = serde_json::from_slice(&plain).unwrap_or(Value::Null);
    let field = |k: &str| creds.get(k).and_then(Value::as_str);
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return problem(
            400,
            "invalid-api-params",
            "You must provide the username and password.",
        );
    };
    {
        let mut failures = lock(&state.login_failures);
        let list = failures.entry(username.to_owned()).or_default();
        list.retain(|t| t.elapsed() < FAILURE_WINDOW);
        if list.len() >= MAX_FAILURES {
            return problem(429, "too-many-requests", "Too many failed login attempts.");
        }
    }
    let outcome = manager::authorize(state, username, password, field("otp"));
    let (id, new) = match existing {
        Some(id) => (id, false),
        None => (Uuid::new_v4().simple().to_string(), true),
    };
    let expires = Utc::now() + chrono::Duration::seconds(SESSION_MAX_AGE);
    let (status, body) = match outcome {
        Ok(()) => {
            lock(&state.web_sessions).insert(
                id.clone(),
                WebSession {
                    access_key: Some(state.user.access_key.clone()),
                    expires,
                },
            );
            lock(&state.login_failures).remove(username);
            (
                StatusCode::OK,
                json!({"authenticated": true, "data": user_data(state)}),
            )
        }
        Err(f) => {
            lock(&state.web_sessions).insert(
                id.clone(),
                WebSession {
                    access_key: None,
                    expires,
                },
            );
            if !f.needs_otp {
                lock(&state.login_failures)
                    .entry(username.to_owned())
                    .or_default()
                    .push(Instant::now());
            }
            // A TOTP request is a 200 the client reacts to; a wrong credential keeps the
            // manager's status from 26.x on (200 before).
            let generation = state.generation;
            let status = if f.needs_otp || !generation.login_failure_keeps_status() {
                StatusCode::OK
            } else {
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::UNAUTHORIZED)
            };
            // Before 25.x the webserver has no TOTP answer of its own: the manager's refusal
            // is passed on, and clients look for details "OTP not provided".
            let (slug, title) = if f.needs_otp && !generation.typed_totp() {
                ("auth-failed", "Credential/signature mismatch.")
            } else {
                (f.slug, f.title)
            };
            (
                status,
                json!({"authenticated": false, "data": {
                    "type": format!("https://api.backend.ai/probs/{slug}"),
                    "title": title,
                    "details": f.details,
                }}),
            )
        }
    };
    let mut resp = (status, Json(body)).into_response();
    set_cookie(&mut resp, &id, new);
    resp
}

async fn login_check(AxState(web): AxState<Web>, headers: HeaderMap) -> Response {
    match logged_in(&web.state, &headers) {
        Some((id, _)) => {
            Json(json!({"authenticated": true, "data": user_data(&web.state), "session_id": id}))
        }
        None => Json(json!({"authenticated": false, "data": null, "session_id": null})),
    }
    .into_response()
}

async fn logout(AxState(web): AxState<Web>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        lock(&web.state.web_sessions).remove(&id);
    }
    // 200 with an empty body (`web.Response()`, real 26.9.6).
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "AIOHTTP_SESSION=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
        ),
    );
    resp
}

async fn extend(AxState(web): AxState<Web>, headers: HeaderMap) -> Response {
    if !web.state.generation.has_extend_login_session() {
        // Before 24.09 the route does not exist.
        return ProblemReply::not_found_url().into_response();
    }
    let Some((id, _)) = logged_in(&web.state, &headers) else {
        return unauthorized();
    };
    let expires = Utc::now() + chrono::Duration::seconds(SESSION_MAX_AGE);
    if let Some(s) = lock(&web.state.web_sessions).get_mut(&id) {
        s.expires = expires;
    }
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"status": 201, "expires": expires.to_rfc3339()})),
    )
        .into_response();
    set_cookie(&mut resp, &id, false);
    resp
}

async fn func_root(AxState(web): AxState<Web>) -> Response {
    Json(manager::root_json(&web.state)).into_response()
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn func(AxState(web): AxState<Web>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/func/ping" {
        return Json(json!({"version": web.state.server_version})).into_response();
    }
    let Some((_, access_key)) = logged_in(&web.state, req.headers()) else {
        return unauthorized();
    };
    if is_websocket(req.headers()) || is_stream_proxy(req.method(), path) {
        return func_websocket(web, req).await;
    }
    forward(web, access_key, req).await
}

/// Whether the real webserver routes this request to its WebSocket proxy whatever its headers:
/// `GET /func/stream/…` but `stream/session/X/apps` and `stream/kernel/_/events`.
fn is_stream_proxy(method: &axum::http::Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/func/stream/") else {
        return false;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let http_routes = matches!(
        segs.as_slice(),
        ["session", _, "apps"] | ["kernel", "_", "events"]
    );
    method == axum::http::Method::GET && !http_routes
}

/// aiohttp's refusal of a request that is no WebSocket handshake (`WebSocketResponse`'s
/// `_handshake`), a 400 `text/plain`.
fn not_a_websocket(req: &Request, e: crate::ws::HandshakeError) -> Response {
    use crate::ws::HandshakeError as H;
    let h = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("None")
            .to_owned()
    };
    let text = match e {
        H::Upgrade | H::NotGet => format!(
            "No WebSocket UPGRADE hdr: {}\n Can \"Upgrade\" only to \"WebSocket\".",
            h(header::UPGRADE)
        ),
        H::Connection => format!("No CONNECTION upgrade hdr: {}", h(header::CONNECTION)),
        H::Version => format!("Unsupported version: {}", h(header::SEC_WEBSOCKET_VERSION)),
        // Python's `repr` of the key: quoted, or `None` when absent.
        H::Key => match req
            .headers()
            .get(header::SEC_WEBSOCKET_KEY)
            .and_then(|v| v.to_str().ok())
        {
            Some(k) => format!("Handshake error: '{k}'"),
            None => "Handshake error: None".to_owned(),
        },
        H::NotUpgradable => return ProblemReply::proxy_unreachable().into_response(),
    };
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// `/func/stream/session/{s}/tcpproxy` in-process: the manager's refusal is a 502 that names
/// nothing of it (the webserver opens the upstream WebSocket first, real 26.9.6); then a request
/// that is no WebSocket handshake is aiohttp's 400.
async fn func_websocket(web: Web, mut req: Request) -> Response {
    let state = &web.state;
    let mgr_path = req.uri().path().trim_start_matches("/func").to_owned();
    let segs: Vec<&str> = mgr_path.trim_start_matches('/').split('/').collect();
    let bad_gateway = |why: &str| {
        tracing::debug!(why, "func/stream: the manager refused the WebSocket");
        let mut p = ProblemReply::proxy_unreachable();
        if !state.generation.has_error_code() {
            p.error_code = None;
        }
        p.into_response()
    };
    if let Some(status) = state.faults.failing_status(&mgr_path) {
        return bad_gateway(&format!("manager answered {status}"));
    }
    let version = req
        .headers()
        .get("x-backendai-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&state.server_version);
    if !state.generation.accepts_version(version) {
        return bad_gateway("manager answered 400");
    }
    if state.faults.clock_skew().abs() > 15 * 60 {
        return bad_gateway("manager answered 400");
    }
    let s = match segs.as_slice() {
        ["stream", "session" | "kernel", s, "tcpproxy" | "httpproxy"] => *s,
        _ => return bad_gateway("manager answered 404"),
    };
    let target = match manager::prepare_tunnel(state, s, req.uri().query(), &mgr_path) {
        Ok(t) => t,
        Err(p) => return bad_gateway(&format!("manager answered {}", p.status.as_u16())),
    };
    let mut target = target;
    if !state.generation.webserver_relays_close() {
        target.faults.swallow_close = true;
    }
    match crate::ws::accept(&mut req) {
        Ok(up) => manager::upgrade(up, target).await,
        Err(e) => not_a_websocket(&req, e),
    }
}

/// Re-signs the request with the user's keypair and runs it through the manager's router.
async fn forward(web: Web, access_key: String, req: Request) -> Response {
    let state = &web.state;
    let (parts, body) = req.into_parts();
    let mgr_path = parts.uri.path().trim_start_matches("/func");
    let target = match parts.uri.query() {
        Some(q) => format!("{mgr_path}?{q}"),
        None => mgr_path.to_owned(),
    };
    let version = parts
        .headers
        .get("x-backendai-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&state.server_version)
        .to_owned();
    let content_type = sign::signed_content_type(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let now = Utc::now();
    let date = sign::python_date(now);
    let secret = if access_key == state.user.access_key {
        state.user.secret_key.clone()
    } else {
        return unauthorized();
    };
    let authorization = sign::authorization(
        &access_key,
        &secret,
        &now.format("%Y%m%d").to_string(),
        &SignInput {
            method: parts.method.as_str(),
            path_and_query: &target,
            date: &date,
            host: &web.manager_host,
            content_type: &content_type,
            version: &version,
        },
    );

    let mut builder = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(target.as_str());
    for (k, v) in parts.headers.iter() {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name)
            || matches!(
                name,
                "host"
                    | "authorization"
                    | "date"
                    | "x-backendai-date"
                    | "x-sorna-date"
                    | "x-backendai-version"
            )
        {
            continue;
        }
        builder = builder.header(k, v);
    }
    let client_host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    builder = builder
        .header(header::HOST, web.manager_host.as_str())
        .header(header::DATE, date.as_str())
        .header(header::AUTHORIZATION, authorization)
        .header("x-backendai-version", version.as_str())
        .header("x-forwarded-for", "127.0.0.1")
        .header("x-forwarded-host", client_host)
        .header("x-forwarded-proto", "http");
    if !parts.headers.contains_key("x-backendai-domain") {
        builder = builder.header("x-backendai-domain", "default");
    }
    let mgr_req = match builder.body(Body::new(body)) {
        Ok(r) => r,
        Err(e) => return ProblemReply::bad_gateway(e.to_string()).into_response(),
    };
    let mut resp = match web.manager.clone().oneshot(mgr_req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    for h in HOP_BY_HOP {
        resp.headers_mut().remove(h);
    }
    resp
}
