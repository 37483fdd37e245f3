//! The crate's one error type and its stable [`ErrorCode`]: the only error vocabulary the CLI
//! (exit codes, `hint:` lines) and the app (the UI's `{code, message, hint}`) see. Errors of
//! bai-api and bai-tunnel are classified here, in one place ([`Error::code`], [`api_code`]).

use std::path::PathBuf;

use bai_api::{ServerKind, TlsReason, UnreachableReason};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A small, stable classification of [`Error`]. It grows only when a caller (the CLI's exit
/// codes, the app's UI) branches on a new case. Serialized by its variant name
/// (`"SessionNotFound"`), which is what the UI receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[non_exhaustive]
pub enum ErrorCode {
    /// Wrong email/password/OTP, or an unknown keypair.
    AuthFailed,
    /// Not logged in, or the login expired: run `bai login`.
    LoginRequired,
    /// A one-time password is needed.
    TotpRequired,
    /// The preferred local port is taken and falling back was not allowed.
    PortInUse,
    /// No such compute session.
    SessionNotFound,
    /// The session exists but is not running.
    SessionNotRunning,
    /// The session has no such app (e.g. no `sshd`).
    AppNotFound,
    /// A file to download does not exist.
    FileNotFound,
    /// The server timed out, failed (5xx) or broke the tunnel.
    Network,
    /// The host cannot be reached at all (DNS, connection refused or reset).
    Unreachable,
    /// The endpoint is not a usable URL, or answers but not like Backend.AI.
    BadUrl,
    /// The server's API version is not supported.
    UnsupportedVersion,
    /// The TLS handshake failed.
    Tls,
    /// Missing or invalid configuration (no endpoint, bad profile, bad config file).
    Config,
    /// Bad input from the caller.
    InvalidInput,
    /// The secret store failed.
    SecretStore,
    /// A local file operation failed.
    Io,
    /// Anything else.
    Unknown,
    /// The session's SSH host key differs from the one pinned for it (the in-app client
    /// refuses to connect).
    HostKeyChanged,
    /// The session's SSH server refused the key (or the account).
    SshAuthFailed,
    /// The target of a transfer, rename or new folder already exists (overwrite needed).
    Exists,
    /// The user cancelled the operation.
    Cancelled,
}

impl ErrorCode {
    /// A stable snake_case name, e.g. `"session_not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::TotpRequired => "totp_required",
            ErrorCode::PortInUse => "port_in_use",
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::SessionNotRunning => "session_not_running",
            ErrorCode::AppNotFound => "app_not_found",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::Network => "network",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::BadUrl => "bad_url",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Tls => "tls",
            ErrorCode::Config => "config",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::SecretStore => "secret_store",
            ErrorCode::Io => "io",
            ErrorCode::Unknown => "unknown",
            ErrorCode::HostKeyChanged => "host_key_changed",
            ErrorCode::SshAuthFailed => "ssh_auth_failed",
            ErrorCode::Exists => "exists",
            ErrorCode::Cancelled => "cancelled",
        }
    }
}

impl ErrorCode {
    /// Every code, in declaration order (for the generated TypeScript list and tests).
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::AuthFailed,
        ErrorCode::LoginRequired,
        ErrorCode::TotpRequired,
        ErrorCode::PortInUse,
        ErrorCode::SessionNotFound,
        ErrorCode::SessionNotRunning,
        ErrorCode::AppNotFound,
        ErrorCode::FileNotFound,
        ErrorCode::Network,
        ErrorCode::Unreachable,
        ErrorCode::BadUrl,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Tls,
        ErrorCode::Config,
        ErrorCode::InvalidInput,
        ErrorCode::SecretStore,
        ErrorCode::Io,
        ErrorCode::Unknown,
        ErrorCode::HostKeyChanged,
        ErrorCode::SshAuthFailed,
        ErrorCode::Exists,
        ErrorCode::Cancelled,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Backend.AI API call failed.
    #[error(transparent)]
    Api(#[from] bai_api::Error),
    /// The local tunnel failed (binding, stdio connection).
    #[error(transparent)]
    Tunnel(#[from] bai_tunnel::Error),
    /// No endpoint is configured for the profile.
    #[error("no Backend.AI endpoint is configured for profile \"{profile}\"")]
    NoEndpoint {
        /// The profile.
        profile: String,
    },
    /// The profile has no stored login (session mode) or keypair (API mode).
    #[error("not logged in (profile \"{profile}\")")]
    NotLoggedIn {
        /// The profile.
        profile: String,
    },
    /// The effective endpoint is not the server the profile's stored secrets were issued by
    /// (e.g. `BACKEND_ENDPOINT` in a `./.env`), so none of them is used.
    #[error(
        "the endpoint {effective} (from {origin}) is not the server profile \"{profile}\" is \
         logged in to ({saved}); its stored login is not sent there"
    )]
    EndpointMismatch {
        /// The profile.
        profile: String,
        /// The profile's saved endpoint.
        saved: String,
        /// The endpoint in effect.
        effective: String,
        /// Where the effective endpoint came from.
        origin: &'static str,
    },
    /// No active session has that name or id.
    // The same words as the server's answer (bai-api's `SessionNotFound`).
    #[error("no such session: {session}")]
    SessionNotFound {
        /// The name or id asked for.
        session: String,
    },
    /// The stored login session was refused by the server.
    #[error("the login of profile \"{profile}\" has expired")]
    LoginExpired {
        /// The profile.
        profile: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A server address that is not an http(s) URL with a host.
    #[error("{input:?} is not a server address ({why}); use e.g. https://backend.example.com")]
    BadUrl {
        /// What was given.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// The configuration file cannot be parsed.
    #[error("cannot parse {}: {detail}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The preferred port is in use and fallback was not allowed.
    #[error("port {port} is already in use")]
    PortInUse {
        /// The port asked for.
        port: u16,
    },
    /// The session has no `id_container` (its user's own `.ssh` folder is mounted).
    #[error(
        "the session {session} has no id_container key (its .ssh folder is probably your own)"
    )]
    NoSessionKey {
        /// The session.
        session: String,
    },
    /// The tunnel came up but the app did not answer as expected (no SSH banner).
    #[error("the tunnel to {app} of session {session} is not working: {detail}")]
    NotReady {
        /// The session.
        session: String,
        /// The app.
        app: String,
        /// What the probe saw.
        detail: String,
        /// Whether the failure looks like a network problem (rather than the app).
        network: bool,
    },
    /// The secret store failed.
    #[error("secret store ({store}): {detail}")]
    SecretStore {
        /// Which store.
        store: &'static str,
        /// What failed (never the secret).
        detail: String,
    },
    /// Bad input from the caller.
    #[error("{0}")]
    InvalidInput(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The session's SSH host key is not the one pinned for it: possibly a man-in-the-middle,
    /// or the session's SSH server got a new key.
    #[error(
        "the SSH host key of session {session} has changed: it is now {fingerprint}, but \
         {known_hosts} has another key pinned for it (\"{alias}\"); bai refuses to connect, \
         since someone could be intercepting the connection (or the session's SSH server \
         got a new key)"
    )]
    HostKeyChanged {
        /// The session.
        session: String,
        /// The pin's alias (the session id).
        alias: String,
        /// The key offered now (`SHA256:…`).
        fingerprint: String,
        /// bai's `known_hosts`.
        known_hosts: String,
        /// The command that forgets the pin.
        reset: String,
    },
    /// The session's SSH server refused the key for the account.
    #[error(
        "the SSH server of session {session} refused the key for the account \"{user}\" ({key})"
    )]
    SshAuthFailed {
        /// The session.
        session: String,
        /// The account.
        user: String,
        /// Which key was tried (`the session's id_container`, or the own key's path).
        key: String,
    },
    /// An SSH/SFTP operation failed; `code` classifies it (Network, FileNotFound, Io, …).
    #[error("{message}")]
    Remote {
        /// The classification.
        code: ErrorCode,
        /// What failed (never a secret).
        message: String,
    },
    /// The target already exists and overwriting was not asked for.
    #[error("{path} already exists")]
    Exists {
        /// The path (remote or local).
        path: String,
    },
    /// Several targets already exist (a transfer of several items): all of them are named, so
    /// that confirming replaces exactly what was shown.
    #[error("{count} items already exist: {list}")]
    ExistMany {
        /// How many.
        count: usize,
        /// Their paths, comma-separated.
        list: String,
    },
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// `Exists` for one path, `ExistMany` naming all of several (none: `None`).
    pub fn exists(paths: Vec<String>) -> Option<Error> {
        match paths.len() {
            0 => None,
            1 => paths.into_iter().next().map(|path| Error::Exists { path }),
            count => Some(Error::ExistMany {
                count,
                list: paths.join(", "),
            }),
        }
    }

    /// An [`Error::Io`] with its context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The stable classification.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Api(e) => api_code(e),
            Error::Tunnel(bai_tunnel::Error::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                ErrorCode::PortInUse
            }
            Error::Tunnel(bai_tunnel::Error::Connection(_)) => ErrorCode::Network,
            Error::Tunnel(_) => ErrorCode::InvalidInput,
            Error::NoEndpoint { .. } | Error::Config(_) | Error::ConfigFile { .. } => {
                ErrorCode::Config
            }
            Error::BadUrl { .. } => ErrorCode::BadUrl,
            Error::NotLoggedIn { .. }
            | Error::LoginExpired { .. }
            | Error::EndpointMismatch { .. } => ErrorCode::LoginRequired,
            Error::PortInUse { .. } => ErrorCode::PortInUse,
            Error::SessionNotFound { .. } => ErrorCode::SessionNotFound,
            Error::NoSessionKey { .. } => ErrorCode::FileNotFound,
            Error::NotReady { network: true, .. } => ErrorCode::Network,
            Error::NotReady { .. } => ErrorCode::AppNotFound,
            Error::SecretStore { .. } => ErrorCode::SecretStore,
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::Io { .. } => ErrorCode::Io,
            Error::HostKeyChanged { .. } => ErrorCode::HostKeyChanged,
            Error::SshAuthFailed { .. } => ErrorCode::SshAuthFailed,
            Error::Remote { code, .. } => *code,
            Error::Exists { .. } | Error::ExistMany { .. } => ErrorCode::Exists,
            Error::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// A one-line suggestion for the user when there is an obvious fix. `bai` is the command
    /// name the hint uses; the app shows the same text.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoEndpoint { .. } => {
                "run `bai login --endpoint URL`, or set BACKEND_ENDPOINT (also read from ./.env)"
                    .into()
            }
            Error::NotLoggedIn { .. } | Error::LoginExpired { .. } => "run `bai login`".into(),
            Error::EndpointMismatch { .. } => {
                "log in to that server (`bai login`, or another profile with `--profile`), or \
                 remove BACKEND_ENDPOINT from the environment and ./.env"
                    .into()
            }
            Error::PortInUse { port } => {
                format!("pick another port, or stop the program listening on {port}")
            }
            Error::NoSessionKey { .. } => "pass your own key with `-i KEY`".into(),
            Error::SessionNotFound { .. } => "run `bai ps` to list your sessions".into(),
            Error::BadUrl { .. } => {
                "use the web UI's address (session mode) or the manager's (API mode)".into()
            }
            Error::NotReady { app, .. } if app == "sshd" => {
                "the session's SSH daemon may still be starting; retry in a few seconds".into()
            }
            Error::HostKeyChanged { reset, .. } => format!(
                "if the session's SSH server really has a new key (e.g. it was restarted with \
                 one), forget the pinned key with `{reset}` and connect again"
            ),
            Error::SshAuthFailed { .. } => {
                "check the account in Settings (the session's user, e.g. `work`), and that the \
                 session was started with this key (sessions without id_container use your own \
                 key, set in Settings)"
                    .into()
            }
            Error::Exists { .. } => "choose to overwrite it, or pick another name".into(),
            Error::ExistMany { .. } => "choose to overwrite them, or transfer elsewhere".into(),
            Error::Api(e) => return api_hint(e),
            _ => return None,
        })
    }

    /// Whether this error means "log in again".
    pub fn needs_login(&self) -> bool {
        self.code() == ErrorCode::LoginRequired
    }
}

/// The [`ErrorCode`] of a bare API error (for callers that hold one without [`Error`]).
pub fn api_code(e: &bai_api::Error) -> ErrorCode {
    use bai_api::ErrorKind as K;
    match e.kind() {
        K::AuthFailed { .. } => ErrorCode::AuthFailed,
        K::LoginExpired | K::NotLoggedIn => ErrorCode::LoginRequired,
        K::TotpRequired { .. } => ErrorCode::TotpRequired,
        K::SessionNotFound { .. } => ErrorCode::SessionNotFound,
        K::AppNotFound { .. } => ErrorCode::AppNotFound,
        K::SessionNotRunning { .. } => ErrorCode::SessionNotRunning,
        K::FileNotFound { .. } => ErrorCode::FileNotFound,
        K::Server { .. } | K::Timeout { .. } => ErrorCode::Network,
        K::Unreachable { .. } => ErrorCode::Unreachable,
        K::Tls { .. } => ErrorCode::Tls,
        K::WrongUrl { .. } | K::WrongServerKind { .. } => ErrorCode::BadUrl,
        K::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
        K::ClockSkew { .. } | K::ServerClockSkew { .. } => ErrorCode::Config,
        K::InvalidInput(_) => ErrorCode::InvalidInput,
        K::InvalidKey { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Unknown,
    }
}

fn unreachable_hint(reason: UnreachableReason) -> &'static str {
    match reason {
        UnreachableReason::Refused => {
            "check the port in the address (the web UI's, or the manager's for API mode) and \
             that the server is running"
        }
        UnreachableReason::Dns => {
            "check the host name in the address (a typo?) and your DNS or VPN connection"
        }
        UnreachableReason::NoRoute => "check your network or VPN connection",
        _ => "check the endpoint URL and your network (`bai login --endpoint URL` changes it)",
    }
}

fn tls_hint(reason: TlsReason) -> &'static str {
    match reason {
        TlsReason::NotTls => {
            "this port speaks plain HTTP: use an http:// address, or the server's HTTPS port"
        }
        TlsReason::Expired => {
            "the server's administrator must renew its certificate (`--insecure` skips the \
             check meanwhile)"
        }
        TlsReason::NotYetValid => "check the system clock; else the certificate starts later",
        TlsReason::WrongHost => {
            "use the host name the certificate was issued for (the one in the web UI's address)"
        }
        _ => "pass `--ca-file FILE` for a private CA, or `--insecure` to skip verification",
    }
}

/// The hint for a bare API error.
pub fn api_hint(e: &bai_api::Error) -> Option<String> {
    use bai_api::ErrorKind as K;
    Some(match e.kind() {
        K::AuthFailed { .. } => {
            "check the email and password (or the access/secret keys) and run `bai login` again"
                .into()
        }
        K::LoginExpired | K::NotLoggedIn => "run `bai login`".into(),
        K::TotpRequired { .. } => "pass the one-time password with `--otp CODE`".into(),
        K::SessionNotFound { .. } => "run `bai ps` to list your sessions".into(),
        K::InvalidKey { .. } => {
            "upload a private key with its own public key (unencrypted: the server refuses \
             password-protected keys)"
                .into()
        }
        K::AppNotFound { .. } => {
            "start the session with SSH enabled, or name another app (`bai ps` shows them)".into()
        }
        K::SessionNotRunning { .. } => "wait until the session is RUNNING (`bai ps`)".into(),
        K::Unreachable { reason, .. } => unreachable_hint(*reason).into(),
        K::Timeout { .. } | K::Server { .. } => {
            "the server may be overloaded or down; retry later".into()
        }
        K::Tls { reason, .. } => tls_hint(*reason).into(),
        K::ClockSkew { .. } | K::ServerClockSkew { .. } => {
            "fix the system clock (e.g. enable NTP)".into()
        }
        K::WrongUrl { .. } => {
            "use the same URL as the web UI (session mode) or the manager's (API mode)".into()
        }
        K::WrongServerKind {
            found: ServerKind::Manager,
            ..
        } => "for this address log in with API mode (`bai login --mode api --access-key KEY`; \
              in the app: API keypair), or give the web UI's address for email/password"
            .into(),
        K::WrongServerKind { .. } => {
            "for this address log in with email and password (`bai login --mode session`; in \
             the app: Email and password), or give the manager's address for an API keypair"
                .into()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_hints_exist() {
        let e = Error::NotLoggedIn {
            profile: "p".into(),
        };
        assert_eq!(e.code(), ErrorCode::LoginRequired);
        assert_eq!(e.code().as_str(), "login_required");
        assert!(e.hint().is_some_and(|h| h.contains("bai login")));
        let e = Error::PortInUse { port: 9922 };
        assert_eq!(e.code(), ErrorCode::PortInUse);
        let e = Error::Tunnel(bai_tunnel::Error::Bind {
            addr: "127.0.0.1:1".parse().expect("addr"),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        });
        assert_eq!(e.code(), ErrorCode::PortInUse);
    }
}
