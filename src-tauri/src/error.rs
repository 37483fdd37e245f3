//! The error every command returns: `{code, message}` on the wire. `code` is what the UI
//! branches on (see `ui/src/lib/api.ts`); `message` is shown to the user and never holds a
//! secret.

use serde::Serialize;

/// The codes are bai-core's: the CLI's exit codes and the UI branch on the same vocabulary.
pub use bai_core::ErrorCode;

/// A failed command, serialized as `{"code": "...", "message": "...", "hint": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, ts_rs::TS)]
#[error("{message}")]
pub struct CommandError {
    /// What the UI branches on.
    pub code: ErrorCode,
    /// What the UI shows (the same wording as the CLI's `error:` line).
    pub message: String,
    /// The CLI's `hint:` line, when there is an obvious fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub hint: Option<String>,
}

/// What commands return.
pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Bad input from the UI.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// Not logged in (the UI goes back to the login screen).
    pub fn not_logged_in() -> Self {
        Self::new(ErrorCode::LoginRequired, "You are not logged in.")
    }
}

/// Every error of the app's logic is a bai-core error: classified there, once.
impl From<bai_core::Error> for CommandError {
    fn from(e: bai_core::Error) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
            hint: e.hint(),
        }
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
        assert_eq!(e.code, ErrorCode::LoginRequired);
        let e: CommandError = bai_core::Error::PortInUse { port: 10022 }.into();
        assert_eq!(e.code, ErrorCode::PortInUse);
        assert!(e.message.contains("10022"));
        let e: CommandError = bai_core::Error::InvalidInput("bad".into()).into();
        assert_eq!(e.code, ErrorCode::InvalidInput);
    }
}
