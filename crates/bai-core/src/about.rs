//! What `bai version` and the app's About box show: bai's version and build commit (one
//! place for both front ends), and the server's versions when logged in.
//!
//! The server part never fails: a server that cannot be asked is reported in
//! [`ServerVersion::error`], so "which bai, against which server" can always be answered.

use std::time::Duration;

use serde::Serialize;

use crate::config::mode_name;
use crate::Connection;

/// bai's version: the workspace version, shared by the CLI and the app.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit bai was built from (12 hex digits), `$BAI_BUILD_COMMIT` outside a git checkout,
/// else `unknown` (see the crate's build script).
pub const BUILD_COMMIT: &str = env!("BAI_RESOLVED_BUILD_COMMIT");

/// How long the version probe may take before the server is reported as not answering.
pub const SERVER_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server's versions are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerProblem {
    /// The stable code (`unreachable`, `tls`, `bad_url`, `network`, …).
    pub code: String,
    /// The message, as the CLI prints it.
    pub message: String,
}

/// The server of the current login and what it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerVersion {
    /// The endpoint.
    pub endpoint: String,
    /// `session` or `api`.
    pub mode: String,
    /// The server's API version, e.g. `v8.20240915`.
    pub api_version: Option<String>,
    /// The manager's release, e.g. `24.09.0`, when the server reports it.
    pub manager_version: Option<String>,
    /// Set when the server could not be asked (unreachable, TLS, …).
    pub error: Option<ServerProblem>,
}

/// What `bai version --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionReport {
    /// bai's version.
    pub version: String,
    /// The build commit.
    pub commit: String,
    /// The server, when logged in; `None` otherwise.
    pub server: Option<ServerVersion>,
}

impl Connection {
    /// The server's versions (an anonymous probe, cached by the client), within
    /// [`SERVER_PROBE_TIMEOUT`]; a failure is reported in the answer, not returned.
    pub async fn server_version(&self) -> ServerVersion {
        let p = self.profile();
        let mut v = ServerVersion {
            endpoint: p.endpoint.as_str().trim_end_matches('/').to_owned(),
            mode: mode_name(p.mode).to_owned(),
            api_version: None,
            manager_version: None,
            error: None,
        };
        match tokio::time::timeout(SERVER_PROBE_TIMEOUT, self.client().server_info()).await {
            Ok(Ok(info)) => {
                v.api_version = Some(info.server.to_string());
                v.manager_version = info.manager;
            }
            Ok(Err(e)) => {
                let e = crate::Error::from(e);
                v.error = Some(ServerProblem {
                    code: e.code().as_str().to_owned(),
                    message: e.to_string(),
                });
            }
            Err(_) => {
                v.error = Some(ServerProblem {
                    code: crate::ErrorCode::Network.as_str().to_owned(),
                    message: format!(
                        "{} did not answer within {} s",
                        v.endpoint,
                        SERVER_PROBE_TIMEOUT.as_secs()
                    ),
                });
            }
        }
        v
    }
}

impl VersionReport {
    /// bai's version and commit, and the server of `conn` (the current login) if any.
    pub async fn of(conn: Option<&Connection>) -> VersionReport {
        let server = match conn {
            Some(c) => Some(c.server_version().await),
            None => None,
        };
        VersionReport {
            version: VERSION.to_owned(),
            commit: BUILD_COMMIT.to_owned(),
            server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_commit_are_set() {
        assert!(!VERSION.is_empty());
        assert!(
            BUILD_COMMIT == "unknown"
                || (BUILD_COMMIT.len() >= 7 && BUILD_COMMIT.bytes().all(|b| b.is_ascii_hexdigit()))
                || std::env::var_os("BAI_BUILD_COMMIT").is_some(),
            "{BUILD_COMMIT}"
        );
    }
}
