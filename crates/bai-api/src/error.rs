//! The crate's one error type: [`Error`], a boxed [`ErrorKind`] that callers match on, with
//! the server's problem+json body ([`Problem`]) where there was one. How an answer becomes a
//! kind is [`crate::classify`]'s business.

use std::fmt;
use std::time::Duration;

pub use bai_problem::Problem;
use chrono::{DateTime, Utc};

use crate::diagnose::{ServerKind, TlsReason, UnreachableReason};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

fn unreachable_text(reason: UnreachableReason, source: &reqwest::Error) -> String {
    match reason {
        // The reason says it all; the CLI prints the chain of causes after it anyway.
        UnreachableReason::Other => format!("{reason} ({source})"),
        _ => reason.to_string(),
    }
}

fn wrong_kind_text(url: &str, found: ServerKind) -> String {
    match found {
        ServerKind::Manager => format!(
            "{url} is a Backend.AI manager (the API endpoint), not a webserver: use API mode \
             with an access key and secret key, or enter the web UI's address for an \
             email/password login"
        ),
        ServerKind::Webserver => format!(
            "{url} is a Backend.AI webserver (the web UI), not the manager API: use session \
             mode (email and password), or enter the manager's address for access/secret keys"
        ),
    }
}

/// What went wrong. URLs in here never carry credentials; secrets never appear.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The endpoint answered, but not like a Backend.AI server.
    #[error(
        "{url} is not a Backend.AI server, or not its address ({detail}); check the server URL"
    )]
    WrongUrl {
        /// The URL requested.
        url: String,
        /// What was seen instead.
        detail: String,
    },
    /// The endpoint is a Backend.AI server, but not the kind the login mode talks to: a
    /// manager in session mode, a webserver (the WebUI) in API mode.
    #[error("{}", wrong_kind_text(url, *found))]
    WrongServerKind {
        /// The endpoint.
        url: String,
        /// What the endpoint turned out to be.
        found: ServerKind,
    },
    /// The host could not be reached.
    #[error("cannot reach {url}: {}", unreachable_text(*reason, source))]
    Unreachable {
        /// The URL requested.
        url: String,
        /// Why, when the error tells.
        reason: UnreachableReason,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {url} failed: {reason} ({detail})")]
    Tls {
        /// The URL requested.
        url: String,
        /// Why, when the error tells.
        reason: TlsReason,
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
    /// The server refused an uploaded SSH keypair (`400 invalid-ssh-private-key`,
    /// `invalid-ssh-public-key` or `ssh-keypair-mismatch`).
    #[error("{reason}: {detail}")]
    InvalidKey {
        /// Which check failed.
        reason: InvalidKeyReason,
        /// The server's explanation (e.g. "Password-protected private keys are not supported").
        detail: String,
    },
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

/// Why the server refused an uploaded SSH keypair ([`ErrorKind::InvalidKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidKeyReason {
    /// `invalid-ssh-private-key`: not a usable PEM or OpenSSH RSA/ECDSA/Ed25519 private key,
    /// or a password-protected one.
    PrivateKey,
    /// `invalid-ssh-public-key`: not an OpenSSH public key line.
    PublicKey,
    /// `ssh-keypair-mismatch`: the public key is not the private key's.
    Mismatch,
}

impl InvalidKeyReason {
    /// The reason of a Backend.AI problem type slug, if it is one of the three.
    pub(crate) fn from_slug(slug: &str) -> Option<Self> {
        match slug {
            "invalid-ssh-private-key" => Some(Self::PrivateKey),
            "invalid-ssh-public-key" => Some(Self::PublicKey),
            "ssh-keypair-mismatch" => Some(Self::Mismatch),
            _ => None,
        }
    }
}

impl fmt::Display for InvalidKeyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrivateKey => "the server refused the SSH private key",
            Self::PublicKey => "the server refused the SSH public key",
            Self::Mismatch => "the SSH public key does not belong to the private key",
        })
    }
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
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<(TlsReason, String)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some((TlsReason::of(r), r.to_string()));
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
        if let Some((reason, detail)) = tls_cause(&e) {
            return ErrorKind::Tls {
                url: url_s,
                reason,
                detail,
                source: e,
            }
            .into();
        }
        if e.is_connect() {
            return ErrorKind::Unreachable {
                url: url_s,
                reason: UnreachableReason::of(&e),
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
    fn redact_strips_userinfo() {
        let u = url::Url::parse("https://me:pw@h.example/x").expect("url");
        assert_eq!(redact(&u), "https://h.example/x");
    }
}
