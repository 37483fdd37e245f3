//! Exit codes and the `error:` / `hint:` lines.

use std::process::ExitCode;

use bai_core::ErrorCode;

/// The exit codes, as `bai --help` lists them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success (bai ssh/scp: the exit status of ssh/scp itself)
  1   unexpected error (local files, secret store, ...)
  2   bad command line
  3   configuration missing or invalid (no endpoint, bad config file or .env)
  4   authentication failed (wrong email/password/OTP or keys)
  5   not logged in, or the login expired (run `bai login`)
  6   no such session
  7   the session has no such app (e.g. no sshd)
  8   the session is not running
  9   network or server error (unreachable, timeout, 5xx, tunnel failure)
  10  the local port is in use
  11  no such file in the session (or no id_container)
  12  the session's SSH host key changed, or its SSH server refused the key
  13  the target already exists
  130 cancelled

Environment: BACKEND_ENDPOINT, BACKEND_ENDPOINT_TYPE (session|api), BACKEND_ACCESS_KEY,
BACKEND_SECRET_KEY (also read from ./.env), BAI_PROFILE, BAI_CONFIG_DIR,
BAI_SECRET_STORE (auto|keyring|file), RUST_LOG.";

/// Maps a core error code to the process exit code.
pub fn code_for(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Config | ErrorCode::BadUrl | ErrorCode::UnsupportedVersion => 3,
        ErrorCode::AuthFailed | ErrorCode::TotpRequired => 4,
        ErrorCode::LoginRequired => 5,
        ErrorCode::SessionNotFound => 6,
        ErrorCode::AppNotFound => 7,
        ErrorCode::SessionNotRunning => 8,
        ErrorCode::Network | ErrorCode::Unreachable | ErrorCode::Tls => 9,
        ErrorCode::PortInUse => 10,
        ErrorCode::FileNotFound => 11,
        ErrorCode::HostKeyChanged | ErrorCode::SshAuthFailed => 12,
        ErrorCode::Exists => 13,
        ErrorCode::Cancelled => 130,
        ErrorCode::InvalidInput => 2,
        _ => 1,
    }
}

/// An error the CLI itself raises, with an exit code and an optional hint.
#[derive(Debug)]
pub struct CliError {
    /// The message.
    pub message: String,
    /// The exit code.
    pub code: u8,
    /// The hint.
    pub hint: Option<String>,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>, hint: Option<&str>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            message: message.into(),
            code: 2,
            hint: hint.map(str::to_owned),
        })
    }

    /// An error with an exit code.
    pub fn with_code(message: impl Into<String>, code: u8, hint: Option<&str>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            message: message.into(),
            code,
            hint: hint.map(str::to_owned),
        })
    }
}

/// Prints `error: …` (the whole context chain) and a `hint:` line, and returns the exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    ExitCode::from(print(e))
}

/// Like [`report`], returning the raw code (for `std::process::exit`).
pub fn print(e: &anyhow::Error) -> u8 {
    // Error details can carry server text (problem+json): shown with controls escaped.
    eprintln!(
        "error: {}",
        bai_core::display::clean(&format!("{e:#}"), true)
    );
    let (code, hint) = classify(e);
    if let Some(h) = hint {
        eprintln!("hint: {}", bai_core::display::clean(&h, true));
    }
    code
}

/// The exit code and hint of an error chain.
pub fn classify(e: &anyhow::Error) -> (u8, Option<String>) {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return (c.code, c.hint.clone());
        }
        if let Some(c) = cause.downcast_ref::<bai_core::Error>() {
            return (code_for(c.code()), c.hint());
        }
        if let Some(c) = cause.downcast_ref::<bai_core::bai_api::Error>() {
            return (code_for(bai_core::api_code(c)), bai_core::api_hint(c));
        }
    }
    (1, None)
}
