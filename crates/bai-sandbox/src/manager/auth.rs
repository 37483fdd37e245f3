//! Who may call the manager: the middleware that applies the fail-route fault and checks the
//! API version and HMAC signature (protocol.md §2) of every non-anonymous request, and the
//! password (and TOTP) login of `/auth/authorize`, which the webserver's login shares.

use axum::body::Bytes;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::St;
use crate::problem::ProblemReply;
use crate::sign::{self, SignInput};
use crate::State;

/// The authenticated caller (set by the HMAC middleware).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub access_key: String,
}

fn is_anonymous(method: &Method, path: &str) -> bool {
    (method == Method::GET && (path == "/" || path.is_empty()))
        || path == "/auth/authorize"
        || path == "/auth/logout"
}

/// Fail-route fault, then API version and HMAC checks for everything but the anonymous routes.
pub(super) async fn guard(AxState(state): AxState<St>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(status) = state.faults.failing_status(&path) {
        return ProblemReply::injected(status).into_response();
    }
    let mut caller = None;
    if !is_anonymous(req.method(), &path) {
        match authenticate(&state, req.method(), req.uri(), req.headers()) {
            Ok(id) => {
                caller = Some(id.access_key.clone());
                req.extensions_mut().insert(id);
            }
            Err(p) => return p.into_response(),
        }
    }
    let quota = super::ratelimit::consume(&state, caller.as_deref());
    let mut resp = next.run(req).await;
    quota.apply(resp.headers_mut());
    resp
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
) -> Result<Identity, ProblemReply> {
    let version = header_str(headers, "x-backendai-version")
        .ok_or_else(|| ProblemReply::invalid_auth("API version missing in request headers"))?;
    if !state.generation.accepts_version(version) {
        return Err(ProblemReply::bad_version("Unsupported API version."));
    }
    let auth = header_str(headers, "authorization")
        .ok_or_else(|| ProblemReply::auth_failed("Unauthorized access"))?;
    let cred = sign::parse_authorization(auth)
        .ok_or_else(|| ProblemReply::invalid_auth("Malformed authorization header"))?;
    let raw_date = header_str(headers, "date")
        .or_else(|| header_str(headers, "x-backendai-date"))
        .or_else(|| header_str(headers, "x-sorna-date"))
        .ok_or_else(|| ProblemReply::invalid_auth("Date/time sync error"))?;
    let date = sign::parse_date(raw_date)
        .ok_or_else(|| ProblemReply::invalid_auth("Date/time sync error"))?;
    let drift = (state.manager_now() - date.instant).num_seconds().abs();
    if drift > 15 * 60 {
        return Err(ProblemReply::invalid_auth("Date/time sync error"));
    }
    if cred.access_key != state.user.access_key {
        return Err(ProblemReply::auth_failed("Access key not found in HMAC"));
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
        return Err(ProblemReply::auth_failed("HMAC signature mismatch"));
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

pub(super) async fn authorize_route(AxState(state): AxState<St>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return ProblemReply::invalid_params("Malformed JSON body").into_response();
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return ProblemReply::invalid_params("username and password are required").into_response();
    };
    if field("type").is_some_and(|t| t != "keypair") {
        return ProblemReply::invalid_params("Unsupported authorization type").into_response();
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
            let mut p = ProblemReply::new(f.status, f.slug, f.title).details(f.details);
            p.msg = Some(f.details.to_owned());
            p.into_response()
        }
    }
}
