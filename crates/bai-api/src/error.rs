//! The crate's one error type, its stable [`ErrorCode`], and Backend.AI's problem+json body.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Backend.AI `application/problem+json` body (or the webserver's login failure `data`).
///
/// Every field is optional: older managers omit `error_code`, the webserver uses `details`,
/// RFC 9457 says `detail` (kept in [`Problem::details`] too).
///
/// Parsing is lenient field by field (see [`Problem::from_value`]): a field of the wrong type
/// is dropped rather than failing the whole body, so one odd field from a server never hides
/// the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problem {
    /// `https://api.backend.ai/probs/<slug>`.
    pub type_: Option<String>,
    /// Short human-readable summary, e.g. "No such session.".
    pub title: Option<String>,
    /// Extra message from the manager.
    pub msg: Option<String>,
    /// Newer managers: `<domain>_<op>_<detail>`.
    pub error_code: Option<String>,
    /// Structured extra data.
    pub data: Option<serde_json::Value>,
    /// The webserver's free-text `details` (or RFC 9457's `detail`); non-string values are
    /// kept as their JSON text.
    pub details: Option<String>,
}

impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(Problem::from_value(&v))
    }
}

impl Problem {
    /// Parses a problem body; `None` unless it is a JSON object with a `type` or `title`.
    pub fn parse(body: &[u8]) -> Option<Problem> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let p = Problem::from_value(&v);
        (p.type_.is_some() || p.title.is_some()).then_some(p)
    }

    /// Reads the fields of a problem object, each on its own: `type`, `title` and `error_code`
    /// only when they are strings, `msg` and `details`/`detail` as text (strings as they are,
    /// other JSON as its text), `data` unless null. Anything but an object gives the empty
    /// problem.
    pub fn from_value(v: &serde_json::Value) -> Problem {
        use serde_json::Value;
        let Some(obj) = v.as_object() else {
            return Problem::default();
        };
        let string = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let text = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        Problem {
            type_: string("type"),
            title: string("title"),
            msg: text("msg"),
            error_code: string("error_code"),
            data: obj.get("data").filter(|d| !d.is_null()).cloned(),
            details: text("details").or_else(|| text("detail")),
        }
    }

    /// The slug at the end of `type` (`object-not-found`), if any.
    pub fn slug(&self) -> Option<&str> {
        self.type_.as_deref().and_then(|t| t.rsplit('/').next())
    }

    /// All the text fields joined, lowercased; used to classify the error.
    pub(crate) fn text_lower(&self) -> String {
        [
            &self.title,
            &self.msg,
            &self.details,
            &self.error_code,
            &self.type_,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.to_lowercase())
        .collect::<Vec<_>>()
        .join(" | ")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&str> = Vec::new();
        for s in [&self.title, &self.msg, &self.details]
            .into_iter()
            .flatten()
        {
            if !s.is_empty() && !parts.contains(&s.as_str()) {
                parts.push(s);
            }
        }
        if parts.is_empty() {
            if let Some(t) = self.slug() {
                parts.push(t);
            }
        }
        f.write_str(&parts.join(": "))?;
        if let Some(code) = &self.error_code {
            write!(f, " [{code}]")?;
        }
        Ok(())
    }
}

/// A stable, small classification of [`Error`] for UIs and exit codes to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The endpoint answered, but not like Backend.AI (HTML, non-JSON, redirect, unknown path).
    WrongUrl,
    /// The host could not be reached (DNS, refused, reset).
    Unreachable,
    /// The TLS handshake failed (untrusted or self-signed certificate, not TLS at all).
    Tls,
    /// Wrong email/password, or unknown/mismatching keypair.
    AuthFailed,
    /// The login session expired or was never established; log in again.
    LoginExpired,
    /// The account needs a one-time password.
    TotpRequired,
    /// No such compute session.
    SessionNotFound,
    /// The session has no such app (e.g. no `sshd`).
    AppNotFound,
    /// The session exists but is not running (yet).
    SessionNotRunning,
    /// A file to download does not exist in the session.
    FileNotFound,
    /// The server failed (5xx).
    ServerError,
    /// The request timed out.
    Timeout,
    /// The server's API version is not supported.
    UnsupportedVersion,
    /// A signature date was refused as more than 15 minutes off: the local clock in API mode
    /// ([`ErrorKind::ClockSkew`]), the webserver's vs the manager's clock in session mode
    /// ([`ErrorKind::ServerClockSkew`]; not fixable locally).
    ClockSkew,
    /// The server does not offer this feature (e.g. a 23.09 webserver cannot extend a login).
    NotSupported,
    /// Bad input from the caller (bad option, too many files, unreadable CA file).
    InvalidInput,
    /// Any other failure (other 4xx, malformed answer).
    Other,
}

impl ErrorCode {
    /// A stable snake_case name, e.g. `"session_not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::WrongUrl => "wrong_url",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::Tls => "tls",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::LoginExpired => "login_expired",
            ErrorCode::TotpRequired => "totp_required",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::AppNotFound => "app_not_found",
            ErrorCode::SessionNotRunning => "session_not_running",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::ServerError => "server_error",
            ErrorCode::Timeout => "timeout",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn opt_problem(p: &Option<Problem>) -> String {
    match p {
        Some(p) => format!(": {p}"),
        None => String::new(),
    }
}

fn server_time_text(server: &Option<DateTime<Utc>>) -> String {
    match server {
        Some(s) => format!(" (server time {})", s.format("%Y-%m-%d %H:%M:%S UTC")),
        None => String::new(),
    }
}

fn skew_text(local: &DateTime<Utc>, server: &Option<DateTime<Utc>>) -> String {
    match server {
        Some(s) => format!(
            "local time {}, server time {}",
            local.format("%Y-%m-%d %H:%M:%S UTC"),
            s.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => format!("local time {}", local.format("%Y-%m-%d %H:%M:%S UTC")),
    }
}

/// What went wrong. URLs in here never carry credentials; secrets never appear.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The endpoint answered, but not like a Backend.AI server.
    #[error("{url} does not look like a Backend.AI endpoint ({detail}); check the server URL")]
    WrongUrl {
        /// The URL requested.
        url: String,
        /// What was seen instead.
        detail: String,
    },
    /// The host could not be reached.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {url} failed ({detail}); if the server uses a self-signed certificate, add its CA file or allow insecure TLS")]
    Tls {
        /// The URL requested.
        url: String,
        /// The TLS failure, as text.
        detail: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// Wrong credentials (email/password or keypair).
    #[error("authentication failed: {detail}")]
    AuthFailed {
        /// The server's explanation.
        detail: String,
    },
    /// A 401 in session mode after a login: the web session expired or was logged out.
    #[error("the login session has expired; log in again")]
    LoginExpired,
    /// A 401 in session mode with no login session at all.
    #[error("not logged in; log in first")]
    NotLoggedIn,
    /// The account needs a one-time password (or must register one first).
    #[error("{}", if *registration { "two-factor authentication must be registered in the web UI first" } else { "a one-time password (TOTP) is required" })]
    TotpRequired {
        /// True when the server asks for TOTP registration rather than a code.
        registration: bool,
    },
    /// No such compute session.
    #[error("no such session: {session}")]
    SessionNotFound {
        /// The session name or id asked for.
        session: String,
    },
    /// The session has no such app.
    #[error("the app \"{app}\" is not supported by the session {session}{}", if available.is_empty() { String::new() } else { format!(" (available: {})", available.join(", ")) })]
    AppNotFound {
        /// The session.
        session: String,
        /// The app asked for.
        app: String,
        /// The apps the session does have, when known.
        available: Vec<String>,
    },
    /// The session exists but is not running.
    #[error("the session {session} is not running (status {status})")]
    SessionNotRunning {
        /// The session.
        session: String,
        /// Its current status.
        status: String,
    },
    /// The file does not exist in the session.
    #[error("no such file in session {session}: {path}")]
    FileNotFound {
        /// The session.
        session: String,
        /// The path asked for.
        path: String,
    },
    /// A body exceeded a size limit.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The server failed (5xx).
    #[error("server error {status} from {url}{}", opt_problem(problem))]
    Server {
        /// The HTTP status.
        status: u16,
        /// The URL requested.
        url: String,
        /// The problem body, if any.
        problem: Option<Problem>,
    },
    /// Any other 4xx with a problem body.
    #[error("request to {url} failed with {status}: {problem}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The URL requested.
        url: String,
        /// The problem body.
        problem: Problem,
    },
    /// GraphQL returned errors.
    #[error("GraphQL query failed: {}", messages.join("; "))]
    GraphQl {
        /// The error messages.
        messages: Vec<String>,
    },
    /// The request timed out.
    #[error("{url} did not answer within {}s", after.as_secs_f32())]
    Timeout {
        /// The URL requested.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The server's API version is not supported.
    #[error("unsupported Backend.AI server: {detail}")]
    UnsupportedVersion {
        /// Why.
        detail: String,
    },
    /// API mode: the local clock is more than 15 minutes off the server's.
    #[error("the local clock differs from the server's by more than the allowed 15 minutes ({}); fix the system time", skew_text(local, server))]
    ClockSkew {
        /// The local time when the error arrived.
        local: DateTime<Utc>,
        /// The server's time from its `Date` header, when it sent one.
        server: Option<DateTime<Utc>>,
    },
    /// Session mode: the manager refused the date the webserver signed with, so the
    /// webserver's and the manager's clocks differ by more than 15 minutes. The local clock
    /// plays no part (the webserver signs `/func/…` requests itself); only the server's
    /// administrator can fix it.
    #[error("the Backend.AI server's clocks disagree: the manager refused the webserver's request date as more than 15 minutes off{}; this is a server-side problem (the webserver and manager clocks must be synchronized), not your local clock; contact the server administrator", server_time_text(server))]
    ServerClockSkew {
        /// The time in the answer's `Date` header, when there was one.
        server: Option<DateTime<Utc>>,
    },
    /// The server does not offer this feature.
    #[error("this server does not support {feature} ({detail})")]
    NotSupported {
        /// What is not supported, e.g. "extending the login session".
        feature: String,
        /// How the server answered.
        detail: String,
    },
    /// The answer was JSON (or expected structure) but malformed.
    #[error("unexpected answer from {url}: {detail}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// Bad input from the caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Other transport failure.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
}

/// The error of every fallible call in this crate.
#[derive(Debug)]
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// What went wrong, in detail.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Consumes the error, returning its kind.
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// A stable classification for UIs to branch on.
    pub fn code(&self) -> ErrorCode {
        match &*self.kind {
            ErrorKind::WrongUrl { .. } => ErrorCode::WrongUrl,
            ErrorKind::Unreachable { .. } => ErrorCode::Unreachable,
            ErrorKind::Tls { .. } => ErrorCode::Tls,
            ErrorKind::AuthFailed { .. } => ErrorCode::AuthFailed,
            ErrorKind::LoginExpired | ErrorKind::NotLoggedIn => ErrorCode::LoginExpired,
            ErrorKind::TotpRequired { .. } => ErrorCode::TotpRequired,
            ErrorKind::SessionNotFound { .. } => ErrorCode::SessionNotFound,
            ErrorKind::AppNotFound { .. } => ErrorCode::AppNotFound,
            ErrorKind::SessionNotRunning { .. } => ErrorCode::SessionNotRunning,
            ErrorKind::FileNotFound { .. } => ErrorCode::FileNotFound,
            ErrorKind::Server { .. } => ErrorCode::ServerError,
            ErrorKind::Timeout { .. } => ErrorCode::Timeout,
            ErrorKind::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ErrorKind::ClockSkew { .. } | ErrorKind::ServerClockSkew { .. } => ErrorCode::ClockSkew,
            ErrorKind::NotSupported { .. } => ErrorCode::NotSupported,
            ErrorKind::InvalidInput(_) => ErrorCode::InvalidInput,
            ErrorKind::TooLarge { .. }
            | ErrorKind::Api { .. }
            | ErrorKind::GraphQl { .. }
            | ErrorKind::InvalidResponse { .. }
            | ErrorKind::Http { .. } => ErrorCode::Other,
        }
    }

    /// The problem+json body the server sent, if any.
    pub fn problem(&self) -> Option<&Problem> {
        match &*self.kind {
            ErrorKind::Server { problem, .. } => problem.as_ref(),
            ErrorKind::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The HTTP status the server answered with, if the error came from one.
    pub fn status(&self) -> Option<u16> {
        match &*self.kind {
            ErrorKind::Server { status, .. } | ErrorKind::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }
}

/// Redacts credentials from a URL for display.
pub(crate) fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("");
    }
    if u.password().is_some() {
        let _ = u.set_password(None);
    }
    u.to_string()
}

/// The rustls error somewhere in the chain, if any (io errors are unwrapped: tokio-rustls
/// nests the rustls error inside one or two `io::Error`s, whose `source()` skips it).
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

impl Error {
    pub(crate) fn from_reqwest(e: reqwest::Error, url: &url::Url, timeout: Duration) -> Error {
        let url_s = redact(url);
        if e.is_timeout() {
            return ErrorKind::Timeout {
                url: url_s,
                after: timeout,
            }
            .into();
        }
        if let Some(detail) = tls_cause(&e) {
            return ErrorKind::Tls {
                url: url_s,
                detail,
                source: e,
            }
            .into();
        }
        if e.is_connect() {
            return ErrorKind::Unreachable {
                url: url_s,
                source: e,
            }
            .into();
        }
        ErrorKind::Http {
            url: url_s,
            source: e,
        }
        .into()
    }

    pub(crate) fn invalid_input(msg: impl Into<String>) -> Error {
        ErrorKind::InvalidInput(msg.into()).into()
    }

    pub(crate) fn invalid_response(url: &url::Url, detail: impl Into<String>) -> Error {
        ErrorKind::InvalidResponse {
            url: redact(url),
            detail: detail.into(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_parses_and_displays() {
        let p = Problem::parse(
            br#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such session.","error_code":"session_read_not-found"}"#,
        )
        .expect("problem");
        assert_eq!(p.slug(), Some("object-not-found"));
        assert_eq!(p.to_string(), "No such session. [session_read_not-found]");
        assert!(Problem::parse(b"<html>").is_none());
        assert!(Problem::parse(b"{\"a\":1}").is_none());
    }

    #[test]
    fn one_odd_field_does_not_hide_the_others() {
        // A numeric `msg`, an object `title`, duplicate keys and RFC 9457's `detail`.
        let p = Problem::parse(
            br#"{"type":"https://api.backend.ai/probs/x","title":{"a":1},"msg":5,
                "detail":"d","error_code":"c_1","error_code":"c_2"}"#,
        )
        .expect("problem");
        assert_eq!(p.type_.as_deref(), Some("https://api.backend.ai/probs/x"));
        assert_eq!(p.title, None);
        assert_eq!(p.msg.as_deref(), Some("5"));
        assert_eq!(p.details.as_deref(), Some("d"));
        assert_eq!(p.error_code.as_deref(), Some("c_2"));
        // `details` (the webserver's) wins over `detail`.
        let p = Problem::parse(br#"{"title":"t","details":"a","detail":"b"}"#).expect("p");
        assert_eq!(p.details.as_deref(), Some("a"));
        // Deserializing (as the login answer's `data` is) is just as lenient.
        let p: Problem =
            serde_json::from_value(serde_json::json!({"title": 1, "type": "t"})).expect("p");
        assert_eq!(p.type_.as_deref(), Some("t"));
    }

    #[test]
    fn redact_strips_userinfo() {
        let u = url::Url::parse("https://me:pw@h.example/x").expect("url");
        assert_eq!(redact(&u), "https://h.example/x");
    }
}

/// Property tests: problem bodies from any server parse or are refused, never panic, and the
/// fields a server sends are the fields read.
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_owned()),
                            Just("title".to_owned()),
                            Just("msg".to_owned()),
                            Just("detail".to_owned()),
                            Just("details".to_owned()),
                            Just("error_code".to_owned()),
                            Just("data".to_owned()),
                            "[a-z_]{1,8}",
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(p) = Problem::parse(&body) {
                prop_assert!(p.type_.is_some() || p.title.is_some());
                let _ = (p.to_string(), p.slug(), p.text_lower());
            }
        }

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            if let Some(p) = Problem::parse(v.to_string().as_bytes()) {
                let _ = (p.to_string(), p.slug(), p.text_lower());
            }
            let _ = Problem::from_value(&v).to_string();
        }

        #[test]
        fn the_fields_sent_are_the_fields_read(
            type_ in proptest::option::of(".{0,30}"),
            title in proptest::option::of(".{0,30}"),
            detail in proptest::option::of(".{0,30}"),
            error_code in proptest::option::of("[a-z_-]{0,20}"),
            msg in proptest::option::of(".{0,30}"),
            extra in proptest::collection::vec(("[a-z]{1,6}x", any_json()), 0..4),
        ) {
            let mut o = serde_json::Map::new();
            for (k, v) in extra {
                o.insert(k, v);
            }
            for (k, v) in [("type", &type_), ("title", &title), ("detail", &detail),
                           ("error_code", &error_code), ("msg", &msg)] {
                if let Some(v) = v {
                    o.insert(k.to_owned(), json!(v));
                }
            }
            let body = Value::Object(o).to_string();
            match Problem::parse(body.as_bytes()) {
                None => prop_assert!(type_.is_none() && title.is_none()),
                Some(p) => {
                    prop_assert_eq!(p.type_, type_);
                    prop_assert_eq!(p.title, title);
                    prop_assert_eq!(p.details, detail);
                    prop_assert_eq!(p.error_code, error_code);
                    prop_assert_eq!(p.msg, msg);
                }
            }
        }
    }
}
