//! Login, restore and logout.

use serde::Serialize;
use tauri::State;

use crate::error::CommandResult;
use crate::AppState;

/// A login attempt from the login form: the `login` command's arguments.
#[derive(Clone, Default, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// The webserver URL (session mode) or the manager URL (API mode).
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: LoginMode,
    /// Session mode: email.
    #[ts(optional)]
    pub email: Option<String>,
    /// Session mode: password.
    #[ts(optional)]
    pub password: Option<String>,
    /// API mode: access key.
    #[ts(optional)]
    pub access_key: Option<String>,
    /// API mode: secret key.
    #[ts(optional)]
    pub secret_key: Option<String>,
    /// One-time password.
    #[ts(optional)]
    pub otp: Option<String>,
    /// Keep the login for the next start.
    #[serde(default)]
    pub remember: bool,
}

impl From<LoginRequest> for bai_core::LoginForm {
    fn from(req: LoginRequest) -> Self {
        bai_core::LoginForm {
            endpoint: req.endpoint,
            mode: req.mode.into(),
            email: req.email,
            password: req.password.map(Into::into),
            access_key: req.access_key,
            secret_key: req.secret_key.map(Into::into),
            otp: req.otp,
            remember: req.remember,
        }
    }
}

// Never print the secrets: the same redaction as bai-core's form.
impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&bai_core::LoginForm::from(self.clone()), f)
    }
}

/// Session mode (email and password through the webserver) or API mode (an access/secret
/// keypair signed against the manager).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// Email and password.
    #[default]
    Session,
    /// Access and secret key.
    Api,
}

impl From<LoginMode> for bai_core::bai_api::Mode {
    fn from(m: LoginMode) -> Self {
        match m {
            LoginMode::Session => bai_core::bai_api::Mode::Session,
            LoginMode::Api => bai_core::bai_api::Mode::Api,
        }
    }
}

impl From<bai_core::bai_api::Mode> for LoginMode {
    fn from(m: bai_core::bai_api::Mode) -> Self {
        match m {
            bai_core::bai_api::Mode::Api => LoginMode::Api,
            _ => LoginMode::Session,
        }
    }
}

/// Who is logged in where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct LoginState {
    /// The endpoint URL.
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: LoginMode,
    /// The email (session mode) or access key (API mode).
    pub user: String,
    /// The user's role, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub role: Option<String>,
    /// How the connection to the server is protected.
    pub tls: TlsState,
}

/// The transport security of the login's profile, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
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
            // Parsed here (not by serde) so that a bad mode is an InvalidInput error like the
            // CLI's, not an argument-decoding failure.
            mode: bai_core::config::parse_mode(&mode)
                .map_err(|e| crate::error::CommandError::invalid(e.to_string()))?
                .into(),
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
