//! Turning a non-2xx answer into an [`ErrorKind`], by what the server says the error *is*.
//!
//! A Backend.AI problem is classified by its type first: the slug of
//! `type` (`https://api.backend.ai/probs/<slug>`), the `error_code` (`<domain>_<op>_<detail>`),
//! and the `title` of the manager's exception class ("No such session."). Message text
//! (`msg`, `details`) is read only where the type cannot tell (the manager raises one type,
//! `invalid-auth-params`, for a bad date and for a bad header alike; no type says "file
//! missing"), and, as a last resort, for problems with neither a Backend.AI type nor an
//! `error_code` (older or foreign servers). The rules, in order:
//!
//! 1. 3xx → [`ErrorKind::WrongUrl`] (the endpoint redirects: not the API).
//! 2. 401 → [`ErrorKind::LoginExpired`] / [`ErrorKind::NotLoggedIn`] (session mode, with or
//!    without a login id sent) or [`ErrorKind::AuthFailed`] (API mode).
//! 3. 400 clock skew → [`ErrorKind::ClockSkew`] (API mode) / [`ErrorKind::ServerClockSkew`]
//!    (session mode): type `invalid-auth-params` or code `user_auth_invalid-parameters` whose
//!    message says "Date/time sync"; untyped: any text saying so.
//! 4. 400 unsupported version → [`ErrorKind::UnsupportedVersion`]: type `generic-bad-request`
//!    whose message says "Unsupported API version"; untyped: any text saying so.
//! 5. 400 SSH keypair refused → [`ErrorKind::InvalidKey`]: type `invalid-ssh-private-key`,
//!    `invalid-ssh-public-key` or `ssh-keypair-mismatch`; untyped: any text naming one.
//! 6. A file request (400, 404 or 500) whose message says the file is missing ("not found",
//!    "no such file", "does not exist") → [`ErrorKind::FileNotFound`], unless the problem is
//!    about the session (rule 7's test, or an `error_code` in the `session` domain).
//! 7. 404 with a problem, on a session:
//!    - session missing → [`ErrorKind::SessionNotFound`]: code `session_*_not-found`, type
//!      `session-not-found`, type `object-not-found` titled "No such session…", or type
//!      `entity-not-found` about a `SessionRow` (26.x);
//!    - app missing → [`ErrorKind::AppNotFound`]: type `app-not-found`, or type
//!      `object-not-found` titled "No such app…".
//! 8. 5xx → [`ErrorKind::Server`]; any other problem → [`ErrorKind::Api`]; anything else
//!    → [`ErrorKind::WrongUrl`].
//!
//! About 580 lines: half of it is the table of cases above as unit tests, kept beside the
//! rules they pin down.

use bai_problem::{header::PROBLEM_TYPE_PREFIX, Problem};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use url::Url;

use crate::credentials::Mode;
use crate::error::{redact, Error, ErrorKind, InvalidKeyReason};

/// A header's value as text, empty when absent or not text.
pub(crate) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn looks_like_html(content_type: &str, body: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    content_type.contains("html")
        || start.trim_start().starts_with("<!doctype")
        || start.trim_start().starts_with("<html")
}

/// The error for an answer that is not Backend.AI's (HTML, not JSON, empty).
pub(crate) fn wrong_url(url: &Url, status: StatusCode, content_type: &str, body: &[u8]) -> Error {
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

/// What a request is about, to turn 404s into precise errors.
#[derive(Default, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The session named in the request.
    pub session: Option<&'a str>,
    /// The app asked for.
    pub app: Option<&'a str>,
    /// The file (or files) asked for.
    pub file: Option<&'a str>,
}

/// What a problem says about itself, read once.
pub(crate) struct Signals<'a> {
    /// The Backend.AI slug of `type`, when `type` is a Backend.AI problem type.
    slug: Option<&'a str>,
    /// The `error_code`, when it has the `<domain>_<op>_<detail>` shape.
    code: Option<bai_problem::ErrorCodeParts<'a>>,
    /// The title, lowercased.
    title: String,
    /// `msg` and `details`, lowercased.
    message: String,
    /// Every text field, lowercased: the last resort for untyped problems.
    text: String,
}

fn lower(parts: &[&Option<String>]) -> String {
    parts
        .iter()
        .copied()
        .flatten()
        .map(|s| s.to_lowercase())
        .collect::<Vec<_>>()
        .join(" | ")
}

impl<'a> Signals<'a> {
    pub(crate) fn of(p: &'a Problem) -> Self {
        Signals {
            slug: p
                .type_
                .as_deref()
                .and_then(|t| t.strip_prefix(PROBLEM_TYPE_PREFIX))
                .filter(|s| !s.is_empty()),
            code: p.error_code_parts(),
            title: lower(&[&p.title]),
            message: lower(&[&p.msg, &p.details]),
            text: lower(&[&p.title, &p.msg, &p.details, &p.error_code, &p.type_]),
        }
    }

    /// True when the server said what kind of error this is (a Backend.AI type or an
    /// `error_code`): then the type decides, not the wording.
    fn typed(&self) -> bool {
        self.slug.is_some() || self.code.is_some()
    }

    fn slug_is(&self, slug: &str) -> bool {
        self.slug == Some(slug)
    }

    fn code_is(&self, domain: &str, detail: &str) -> bool {
        self.code
            .is_some_and(|c| c.domain == domain && c.detail == detail)
    }

    fn text_has(&self, needles: &[&str]) -> bool {
        needles.iter().any(|n| self.text.contains(n))
    }

    /// A bad request date (the signature's, or the webserver's in session mode).
    pub(crate) fn is_clock_skew(&self) -> bool {
        const SAYS: [&str; 2] = ["date/time sync", "time sync error"];
        if self.typed() {
            (self.slug_is("invalid-auth-params") || self.code_is("user", "invalid-parameters"))
                && SAYS
                    .iter()
                    .any(|n| self.message.contains(n) || self.title.contains(n))
        } else {
            self.text_has(&SAYS)
        }
    }

    /// The manager refused the API version sent.
    pub(crate) fn is_unsupported_version(&self) -> bool {
        const SAYS: &str = "unsupported api version";
        if self.typed() {
            self.slug_is("generic-bad-request")
                && (self.message.contains(SAYS) || self.title.contains(SAYS))
        } else {
            self.text.contains(SAYS)
        }
    }

    /// No such session.
    pub(crate) fn is_session_not_found(&self) -> bool {
        if self.typed() {
            self.code_is("session", "not-found")
                || self.slug_is("session-not-found")
                || (self.slug_is("object-not-found") && self.title.starts_with("no such session"))
                // 26.x's repository layer (real 26.9.6): "Entity not found.", msg "No
                // SessionRow matches the given key" (its `error_code` says so too).
                || (self.slug_is("entity-not-found") && self.message.contains("sessionrow"))
        } else {
            self.text_has(&["no such session", "session-not-found"])
                || (self.text.contains("session_") && self.text.contains("not-found"))
        }
    }

    /// No such app in the session (or the session has not started it).
    pub(crate) fn is_app_not_found(&self) -> bool {
        if self.typed() {
            self.slug_is("app-not-found")
                || (self.slug_is("object-not-found") && self.title.starts_with("no such app"))
        } else {
            self.text_has(&["no such app", "app-not-found"])
        }
    }

    /// An uploaded SSH keypair was refused, and why.
    pub(crate) fn ssh_key_problem(&self) -> Option<InvalidKeyReason> {
        if self.typed() {
            self.slug.and_then(InvalidKeyReason::from_slug)
        } else {
            [
                "invalid-ssh-private-key",
                "invalid-ssh-public-key",
                "ssh-keypair-mismatch",
            ]
            .into_iter()
            .find(|n| self.text.contains(n))
            .and_then(InvalidKeyReason::from_slug)
        }
    }

    /// The problem is about the session, not a file in it.
    fn is_about_session(&self) -> bool {
        if self.typed() {
            self.is_session_not_found() || self.code.is_some_and(|c| c.domain == "session")
        } else {
            self.text_has(&["no such session", "session_"])
        }
    }

    /// A requested file is missing. No problem type says so (the sandbox answers
    /// `invalid-api-params` "The file is not found."; the manager passes the agent's error on),
    /// so the wording decides, once the type has ruled out the session.
    pub(crate) fn is_file_missing(&self) -> bool {
        const SAYS: [&str; 3] = ["not found", "no such file", "does not exist"];
        let said = if self.typed() {
            SAYS.iter()
                .any(|n| self.title.contains(n) || self.message.contains(n))
        } else {
            self.text_has(&SAYS)
        };
        said && !self.is_about_session()
    }
}

/// Classifies a non-2xx answer (see the module docs for the rules).
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    url: &Url,
    ctx: Ctx<'_>,
    mode: Mode,
    had_session: bool,
) -> Error {
    let content_type = header_str(headers, "content-type");
    let problem = Problem::parse(body);
    let code = status.as_u16();
    if status.is_redirection() {
        return ErrorKind::WrongUrl {
            url: redact(url),
            detail: format!("redirected ({code}) to {}", header_str(headers, "location")),
        }
        .into();
    }
    if status == StatusCode::UNAUTHORIZED {
        return match mode {
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
    let signals = problem.as_ref().map(Signals::of);
    let says = signals.as_ref();
    if status == StatusCode::BAD_REQUEST && says.is_some_and(Signals::is_clock_skew) {
        let server = DateTime::parse_from_rfc2822(header_str(headers, "date"))
            .ok()
            .map(|d| d.with_timezone(&Utc));
        return match mode {
            // The webserver signs `/func/…` with its own clock: ours plays no part.
            Mode::Session => ErrorKind::ServerClockSkew { server }.into(),
            Mode::Api => ErrorKind::ClockSkew {
                local: Utc::now(),
                server,
            }
            .into(),
        };
    }
    if status == StatusCode::BAD_REQUEST && says.is_some_and(Signals::is_unsupported_version) {
        return ErrorKind::UnsupportedVersion {
            detail: "the server refused the API version".into(),
        }
        .into();
    }
    if status == StatusCode::BAD_REQUEST {
        if let Some(reason) = says.and_then(Signals::ssh_key_problem) {
            let detail = problem
                .as_ref()
                .and_then(|p| p.message().or(p.title.as_deref()))
                .unwrap_or_default()
                .to_owned();
            return ErrorKind::InvalidKey { reason, detail }.into();
        }
    }
    if let Some(file) = ctx.file {
        if matches!(code, 400 | 404 | 500) && says.is_some_and(Signals::is_file_missing) {
            return ErrorKind::FileNotFound {
                session: ctx.session.unwrap_or_default().to_owned(),
                path: file.to_owned(),
            }
            .into();
        }
    }
    if status == StatusCode::NOT_FOUND {
        if let Some(session) = ctx.session {
            if says.is_some_and(Signals::is_session_not_found) {
                return ErrorKind::SessionNotFound {
                    session: session.to_owned(),
                }
                .into();
            }
            if says.is_some_and(Signals::is_app_not_found) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn url() -> Url {
        Url::parse("http://h/session/s1/download_single").expect("url")
    }

    fn run(status: u16, body: serde_json::Value, ctx: Ctx<'_>, mode: Mode) -> ErrorKind {
        classify(
            StatusCode::from_u16(status).expect("status"),
            &HeaderMap::new(),
            body.to_string().as_bytes(),
            &url(),
            ctx,
            mode,
            true,
        )
        .into_kind()
    }

    fn on_session() -> Ctx<'static> {
        Ctx {
            session: Some("s1"),
            app: Some("sshd"),
            file: None,
        }
    }

    fn on_file() -> Ctx<'static> {
        Ctx {
            session: Some("s1"),
            app: None,
            file: Some(crate::ID_CONTAINER),
        }
    }

    const PROBS: &str = "https://api.backend.ai/probs/";

    #[test]
    fn session_not_found_by_error_code_whatever_the_wording() {
        // A localized title and no English anywhere: the code decides.
        let body = json!({"type": format!("{PROBS}object-not-found"),
                          "title": "Sitzung unbekannt.", "error_code": "session_read_not-found"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
        // The code alone (no type) is enough.
        let body = json!({"title": "?", "error_code": "session_read_not-found"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
        // The newer slug.
        let body = json!({"type": format!("{PROBS}session-not-found"), "title": "Gone"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
    }

    #[test]
    fn the_real_26_9_6_unknown_session_and_unreachable_proxy() {
        // `GET /session/X`, `…/apps` of an unknown session on 26.9.6 (and the sandbox's 26.x).
        let body = json!({"type": format!("{PROBS}entity-not-found"), "title": "Entity not found.",
                          "error_code": "session_read_not-found",
                          "msg": "No SessionRow matches the given key"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Session),
            ErrorKind::SessionNotFound { .. }
        ));
        // Without its code (a proxy that strips fields), the type and message still tell.
        let body = json!({"type": format!("{PROBS}entity-not-found"), "title": "Entity not found.",
                          "msg": "No SessionRow matches the given key"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
        // Another entity is not a missing session.
        let body = json!({"type": format!("{PROBS}entity-not-found"), "title": "Entity not found.",
                          "msg": "No VFolderRow matches the given key"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::Api { .. }
        ));
        // Nor is it a missing file, on a file request.
        let body = json!({"type": format!("{PROBS}entity-not-found"), "title": "Entity not found.",
                          "error_code": "session_read_not-found",
                          "msg": "No SessionRow matches the given key"});
        assert!(matches!(
            run(404, body, on_file(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
        // The webserver's opaque 502 says nothing of a session or app: a server error, never
        // "no such session" (bai asks `…/apps` first for that).
        let body = json!({"type": format!("{PROBS}bad-gateway"),
                          "title": "The proxy target server is inaccessible.",
                          "error_code": "api_request_unreachable"});
        match run(502, body, on_session(), Mode::Session) {
            ErrorKind::Server {
                status: 502,
                problem: Some(p),
                ..
            } => {
                assert_eq!(
                    p.title.as_deref(),
                    Some("The proxy target server is inaccessible.")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn app_not_found_by_type_and_title() {
        let body = json!({"type": format!("{PROBS}object-not-found"),
                          "title": "No such app service.", "msg": "s1:sshd",
                          "error_code": "backendai_read_not-found"});
        match run(404, body, on_session(), Mode::Api) {
            ErrorKind::AppNotFound { session, app, .. } => {
                assert_eq!((session.as_str(), app.as_str()), ("s1", "sshd"));
            }
            other => panic!("{other:?}"),
        }
        let body = json!({"type": format!("{PROBS}app-not-found"), "title": "x"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::AppNotFound { .. }
        ));
    }

    #[test]
    fn a_typed_problem_is_not_reclassified_by_its_wording() {
        // An unknown route whose message happens to mention a missing session.
        let body = json!({"type": format!("{PROBS}url-not-found"), "title": "Unknown URL path.",
                          "msg": "no such session route"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::Api { status: 404, .. }
        ));
        // A bad parameter that quotes the words of a clock error is no clock error.
        let body = json!({"type": format!("{PROBS}invalid-api-params"),
                          "title": "Missing or invalid API parameters.",
                          "msg": "field 'note': Date/time sync error"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::Api { status: 400, .. }
        ));
        // Nor is an unsupported version outside `generic-bad-request`.
        let body = json!({"type": format!("{PROBS}invalid-api-params"),
                          "title": "Missing or invalid API parameters.",
                          "msg": "Unsupported API version."});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::Api { .. }
        ));
    }

    #[test]
    fn clock_skew_by_type_or_error_code() {
        let body = json!({"type": format!("{PROBS}invalid-auth-params"),
                          "title": "Missing or invalid authorization parameters.",
                          "msg": "Date/time sync error"});
        assert!(matches!(
            run(400, body.clone(), Ctx::default(), Mode::Api),
            ErrorKind::ClockSkew { .. }
        ));
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Session),
            ErrorKind::ServerClockSkew { .. }
        ));
        let body = json!({"title": "Bad auth", "error_code": "user_auth_invalid-parameters",
                          "msg": "Date/time sync error"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::ClockSkew { .. }
        ));
        // The same type with another message is an ordinary refusal.
        let body = json!({"type": format!("{PROBS}invalid-auth-params"),
                          "title": "Missing or invalid authorization parameters.",
                          "msg": "Malformed authorization header"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::Api { .. }
        ));
    }

    #[test]
    fn unsupported_version_by_type() {
        let body = json!({"type": format!("{PROBS}generic-bad-request"), "title": "Bad request.",
                          "msg": "Unsupported API version."});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::UnsupportedVersion { .. }
        ));
    }

    #[test]
    fn untyped_problems_fall_back_to_their_text() {
        let body = json!({"title": "Date/time sync error"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::ClockSkew { .. }
        ));
        let body = json!({"title": "No such session."});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::SessionNotFound { .. }
        ));
        // A foreign type (RFC 9457's default) is no Backend.AI type.
        let body = json!({"type": "about:blank", "title": "No such app: sshd"});
        assert!(matches!(
            run(404, body, on_session(), Mode::Api),
            ErrorKind::AppNotFound { .. }
        ));
    }

    #[test]
    fn missing_files_but_never_a_missing_session() {
        let body = json!({"type": format!("{PROBS}invalid-api-params"),
                          "title": "The file is not found."});
        assert!(matches!(
            run(400, body, on_file(), Mode::Session),
            ErrorKind::FileNotFound { .. }
        ));
        let body = json!({"type": format!("{PROBS}internal-server-error"),
                          "title": "Internal server error.",
                          "msg": "FileNotFoundError: No such file or directory"});
        assert!(matches!(
            run(500, body, on_file(), Mode::Session),
            ErrorKind::FileNotFound { .. }
        ));
        let body = json!({"type": format!("{PROBS}object-not-found"),
                          "title": "Session not found", "error_code": "session_read_not-found"});
        assert!(matches!(
            run(404, body, on_file(), Mode::Session),
            ErrorKind::SessionNotFound { .. }
        ));
    }

    #[test]
    fn unauthorized_depends_on_the_mode() {
        let body = json!({"type": format!("{PROBS}auth-failed"), "title": "Unauthorized access"});
        assert!(matches!(
            run(401, body.clone(), Ctx::default(), Mode::Session),
            ErrorKind::LoginExpired
        ));
        assert!(matches!(
            run(401, body, Ctx::default(), Mode::Api),
            ErrorKind::AuthFailed { .. }
        ));
    }

    #[test]
    fn refused_ssh_keypairs_by_type() {
        for (slug, reason) in [
            ("invalid-ssh-private-key", InvalidKeyReason::PrivateKey),
            ("invalid-ssh-public-key", InvalidKeyReason::PublicKey),
            ("ssh-keypair-mismatch", InvalidKeyReason::Mismatch),
        ] {
            let body = json!({"type": format!("{PROBS}{slug}"), "title": "Bad key.", "msg": "why"});
            match run(400, body, Ctx::default(), Mode::Api) {
                ErrorKind::InvalidKey { reason: r, detail } => {
                    assert_eq!((r, detail.as_str()), (reason, "why"));
                }
                other => panic!("{slug}: {other:?}"),
            }
        }
        // Another 400 stays an API error; an untyped one naming the type is classified.
        let body =
            json!({"type": format!("{PROBS}invalid-api-params"), "title": "ssh-keypair-mismatch"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Api),
            ErrorKind::Api { .. }
        ));
        let body = json!({"title": "ssh-keypair-mismatch"});
        assert!(matches!(
            run(400, body, Ctx::default(), Mode::Session),
            ErrorKind::InvalidKey {
                reason: InvalidKeyReason::Mismatch,
                ..
            }
        ));
    }
}
