//! The error every command returns: `{code, message}` on the wire. `code` is what the UI
//! branches on (see `ui/src/lib/api.ts`); `message` is shown to the user and never holds a
//! secret.

use bai_core::bai_api;
use serde::Serialize;

/// The codes the UI knows (`ERROR_CODES` in `ui/src/lib/api.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    /// Wrong email/password or keypair.
    AuthFailed,
    /// The account needs a one-time password (or the one given was wrong).
    TotpRequired,
    /// The endpoint is not a usable URL, or does not answer like Backend.AI.
    BadUrl,
    /// The server cannot be reached.
    Unreachable,
    /// The TLS handshake failed.
    Tls,
    /// The server's API version is not supported.
    UnsupportedVersion,
    /// Not logged in, or the login expired: back to the login screen.
    LoginExpired,
    /// No such compute session.
    SessionNotFound,
    /// The session has no such app (no `sshd`).
    AppNotFound,
    /// The preferred local port is taken.
    PortInUse,
    /// Bad input from the UI.
    InvalidInput,
    /// The server failed, timed out or broke the connection.
    Network,
    /// Anything else.
    Unknown,
}

/// A failed command, serialized as `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// What the UI branches on.
    pub code: ErrorCode,
    /// What the UI shows.
    pub message: String,
}

/// What commands return.
pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
        }
    }

    /// Bad input from the UI.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// Not logged in (the UI goes back to the login screen).
    pub fn not_logged_in() -> Self {
        Self::new(ErrorCode::LoginExpired, "You are not logged in.")
    }
}

/// The UI code of an API error.
pub fn api_error_code(e: &bai_api::Error) -> ErrorCode {
    use bai_api::ErrorCode as A;
    match e.code() {
        A::WrongUrl => ErrorCode::BadUrl,
        A::Unreachable => ErrorCode::Unreachable,
        A::Tls => ErrorCode::Tls,
        A::AuthFailed => ErrorCode::AuthFailed,
        A::LoginExpired => ErrorCode::LoginExpired,
        A::TotpRequired => ErrorCode::TotpRequired,
        A::SessionNotFound => ErrorCode::SessionNotFound,
        A::AppNotFound => ErrorCode::AppNotFound,
        A::UnsupportedVersion => ErrorCode::UnsupportedVersion,
        A::ServerError | A::Timeout => ErrorCode::Network,
        A::InvalidInput => ErrorCode::InvalidInput,
        _ => ErrorCode::Unknown,
    }
}

impl From<bai_core::Error> for CommandError {
    fn from(e: bai_core::Error) -> Self {
        use bai_core::Error as E;
        let code = match &e {
            E::Api(api) => api_error_code(api),
            E::NotLoggedIn { .. } | E::LoginExpired { .. } | E::EndpointMismatch { .. } => {
                ErrorCode::LoginExpired
            }
            E::SessionNotFound { .. } => ErrorCode::SessionNotFound,
            E::NoEndpoint { .. } => ErrorCode::BadUrl,
            E::PortInUse { .. } => ErrorCode::PortInUse,
            E::NotReady { network: true, .. } => ErrorCode::Network,
            E::NotReady { .. } => ErrorCode::AppNotFound,
            E::InvalidInput(_) | E::Config(_) => ErrorCode::InvalidInput,
            other => match other.code() {
                bai_core::ErrorCode::PortInUse => ErrorCode::PortInUse,
                bai_core::ErrorCode::Network => ErrorCode::Network,
                _ => ErrorCode::Unknown,
            },
        };
        CommandError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let e = CommandError::new(ErrorCode::AuthFailed, "wrong email or password");
        assert_eq!(
            serde_json::to_value(&e).expect("serializes"),
            serde_json::json!({"code": "AuthFailed", "message": "wrong email or password"})
        );
        let e = CommandError::new(ErrorCode::PortInUse, "port 10022 is already in use");
        assert_eq!(
            serde_json::to_string(&e).expect("serializes"),
            r#"{"code":"PortInUse","message":"port 10022 is already in use"}"#
        );
    }

    #[test]
    fn core_errors_map_to_ui_codes() {
        let e: CommandError = bai_core::Error::NotLoggedIn {
            profile: "default".into(),
        }
        .into();
        assert_eq!(e.code, ErrorCode::LoginExpired);
        let e: CommandError = bai_core::Error::PortInUse { port: 10022 }.into();
        assert_eq!(e.code, ErrorCode::PortInUse);
        assert!(e.message.contains("10022"));
        let e: CommandError = bai_core::Error::InvalidInput("bad".into()).into();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }
}
