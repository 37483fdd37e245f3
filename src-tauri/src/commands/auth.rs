//! Login, restore and logout.

use serde::Serialize;
use tauri::State;

use crate::error::CommandResult;
use crate::AppState;

/// A login attempt from the login form.
#[derive(Clone, Default)]
pub struct LoginRequest {
    /// The webserver URL (session mode) or the manager URL (API mode).
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: String,
    /// Session mode: email.
    pub email: Option<String>,
    /// Session mode: password.
    pub password: Option<String>,
    /// API mode: access key.
    pub access_key: Option<String>,
    /// API mode: secret key.
    pub secret_key: Option<String>,
    /// One-time password.
    pub otp: Option<String>,
    /// Keep the login for the next start.
    pub remember: bool,
}

// Never print the secrets.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("endpoint", &self.endpoint)
            .field("mode", &self.mode)
            .field("email", &self.email)
            .field("access_key", &self.access_key)
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

/// Who is logged in where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginState {
    /// The endpoint URL.
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: String,
    /// The email (session mode) or access key (API mode).
    pub user: String,
    /// The user's role, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How the connection to the server is protected.
    pub tls: TlsState,
}

/// The transport security of the login's profile, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsState {
    /// `https` (TLS) or `http` (none).
    pub scheme: String,
    /// Certificate verification is off (`bai login --insecure`).
    pub insecure: bool,
    /// An extra CA file is trusted (`bai login --ca-file`).
    pub ca_file: Option<String>,
    /// Set when the endpoint is plain http to another machine: why that is dangerous.
    pub warning: Option<String>,
}

/// `restore_login() -> LoginState | null`.
#[tauri::command]
pub async fn restore_login(state: State<'_, AppState>) -> CommandResult<Option<LoginState>> {
    state.restore_login().await
}

/// `login({endpoint, mode, email?, password?, accessKey?, secretKey?, otp?, remember})`.
#[tauri::command]
#[allow(clippy::too_many_arguments)] // the UI's flat payload: one parameter per form field
pub async fn login(
    state: State<'_, AppState>,
    endpoint: String,
    mode: String,
    email: Option<String>,
    password: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    otp: Option<String>,
    remember: Option<bool>,
) -> CommandResult<LoginState> {
    state
        .login(LoginRequest {
            endpoint,
            mode,
            email,
            password,
            access_key,
            secret_key,
            otp,
            remember: remember.unwrap_or(false),
        })
        .await
}

/// `logout()`.
#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> CommandResult<()> {
    state.logout().await
}
