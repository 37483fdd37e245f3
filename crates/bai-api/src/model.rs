//! The data types the calls return: sessions, service ports, apps, login state.

use serde::Deserialize;
use serde_json::Value;

/// A compute session from `compute_session_list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session UUID.
    pub id: String,
    /// The session name.
    pub name: String,
    /// Status name, e.g. `RUNNING`, `PENDING`, `TERMINATED`.
    pub status: String,
    /// Extra status information, e.g. `user-requested`.
    pub status_info: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Session type (`INTERACTIVE`, `BATCH`, `SYSTEM`, ...).
    pub session_type: Option<String>,
    /// Creation time as the server writes it (ISO-8601).
    pub created_at: Option<String>,
    /// Project (group) name.
    pub group_name: Option<String>,
    /// The service ports (apps) of the main kernel; empty until it starts.
    pub service_ports: Vec<ServicePort>,
}

impl Session {
    /// True if the session has an app (service port) of that name, e.g. `"sshd"`.
    pub fn has_app(&self, name: &str) -> bool {
        self.service_ports.iter().any(|p| p.name == name)
    }

    /// True if the status is `RUNNING` (or `RUNNING_DEGRADED`).
    pub fn is_running(&self) -> bool {
        is_running_status(&self.status)
    }
}

pub(crate) fn is_running_status(s: &str) -> bool {
    matches!(s, "RUNNING" | "RUNNING_DEGRADED")
}

/// One service port of a session, as in `service_ports`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicePort {
    /// App name, e.g. `sshd`, `ttyd`, `jupyter`.
    pub name: String,
    /// `tcp`, `http`, `preopen`, `internal`, `vnc` or `rdp`.
    pub protocol: String,
    /// Ports inside the container.
    pub container_ports: Vec<u16>,
    /// Matching host ports (`host_ports[i]` maps to `container_ports[i]`).
    pub host_ports: Vec<u16>,
}

#[derive(Deserialize)]
struct RawServicePort {
    name: String,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    container_ports: Option<Vec<u16>>,
    #[serde(default)]
    container_port: Option<u16>,
    #[serde(default)]
    host_ports: Option<Vec<Option<u16>>>,
    #[serde(default)]
    host_port: Option<u16>,
}

/// Decodes `service_ports`: a string holding JSON (decoded twice), or the array itself, or
/// null/`""`/`[]`. Accepts the legacy single `host_port`/`container_port`.
pub(crate) fn decode_service_ports(v: &Value) -> Result<Vec<ServicePort>, String> {
    let inner: Value = match v {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("service_ports is not JSON: {e}"))?
        }
        other => other.clone(),
    };
    let raw: Option<Vec<RawServicePort>> =
        serde_json::from_value(inner).map_err(|e| format!("bad service_ports: {e}"))?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|r| ServicePort {
            name: r.name,
            protocol: r.protocol.unwrap_or_default(),
            container_ports: r
                .container_ports
                .or_else(|| r.container_port.map(|p| vec![p]))
                .unwrap_or_default(),
            host_ports: r
                .host_ports
                .map(|v| v.into_iter().flatten().collect())
                .or_else(|| r.host_port.map(|p| vec![p]))
                .unwrap_or_default(),
        })
        .collect())
}

/// Which sessions [`crate::Client::list_sessions`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Everything not terminated (the CLI's default list).
    #[default]
    Active,
    /// `CREATING,RUNNING,RUNNING_DEGRADED` (the CLI's `--running`).
    Running,
    /// An explicit list of status names.
    Custom(Vec<String>),
}

impl StatusFilter {
    /// The comma-separated `status` argument of `compute_session_list`.
    pub fn as_query(&self) -> String {
        match self {
            StatusFilter::Active => "PENDING,SCHEDULED,PULLING,PREPARED,PREPARING,CREATING,RUNNING,RUNNING_DEGRADED,TERMINATING,ERROR".to_owned(),
            StatusFilter::Running => "CREATING,RUNNING,RUNNING_DEGRADED".to_owned(),
            StatusFilter::Custom(v) => v.join(","),
        }
    }
}

/// An app of a session, from `GET /stream/session/{s}/apps`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct App {
    /// App name, e.g. `sshd`.
    pub name: String,
    /// Protocol, e.g. `tcp`.
    #[serde(default)]
    pub protocol: String,
    /// Container ports.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// URL template of http apps, if any.
    #[serde(default)]
    pub url_template: Option<String>,
}

/// The account data returned by a login or login check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AccountInfo {
    /// The user's access key.
    #[serde(default)]
    pub access_key: Option<String>,
    /// Role, e.g. `user`, `admin`, `superadmin`.
    #[serde(default)]
    pub role: Option<String>,
    /// Account status, e.g. `active`.
    #[serde(default)]
    pub status: Option<String>,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginInfo {
    /// Account data.
    pub account: AccountInfo,
}

/// The answer of `login-check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCheck {
    /// Whether the web session is logged in.
    pub authenticated: bool,
    /// Account data when logged in.
    pub account: Option<AccountInfo>,
}

/// `GET /session/{s}`: the status plus the raw camelCase document.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// Status name, e.g. `RUNNING` (empty if the server sent none).
    pub status: String,
    /// The whole answer.
    pub raw: Value,
}

/// How [`crate::Client::download`] asks for files (§8 of the protocol notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadStyle {
    /// `POST …/download?files=a&files=b` with no body (current managers).
    #[default]
    Query,
    /// `POST …/download` with the body `{"files":[…]}` (≤ 24.03 managers).
    JsonBody,
}

/// One downloaded file.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    /// The file name (the tar entry name, normally the basename).
    pub name: String,
    /// The contents.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for DownloadedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents may be a private key: never print them.
        f.debug_struct("DownloadedFile")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_ports_decoded_twice() {
        let v = json!(
            "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_ports\":[2200],\"host_ports\":[30002],\"is_inference\":false},{\"name\":\"ttyd\",\"protocol\":\"http\",\"container_ports\":[7681],\"host_ports\":[30003]}]"
        );
        let p = decode_service_ports(&v).expect("decode");
        assert_eq!(
            p[0],
            ServicePort {
                name: "sshd".into(),
                protocol: "tcp".into(),
                container_ports: vec![2200],
                host_ports: vec![30002]
            }
        );
        assert_eq!(p[1].name, "ttyd");
    }

    #[test]
    fn service_ports_legacy_null_empty_and_plain_array() {
        let legacy = json!(
            "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_port\":2200,\"host_port\":30002}]"
        );
        let p = decode_service_ports(&legacy).expect("decode");
        assert_eq!(p[0].host_ports, vec![30002]);
        assert_eq!(p[0].container_ports, vec![2200]);
        assert!(decode_service_ports(&Value::Null).expect("null").is_empty());
        assert!(decode_service_ports(&json!("[]")).expect("[]").is_empty());
        assert!(decode_service_ports(&json!("null"))
            .expect("null str")
            .is_empty());
        assert!(decode_service_ports(&json!([])).expect("array").is_empty());
        let plain =
            json!([{"name":"sshd","protocol":"tcp","container_ports":[2200],"host_ports":[null]}]);
        let p = decode_service_ports(&plain).expect("plain");
        assert!(p[0].host_ports.is_empty());
        assert!(decode_service_ports(&json!("{oops")).is_err());
    }

    #[test]
    fn status_filters() {
        assert_eq!(
            StatusFilter::Running.as_query(),
            "CREATING,RUNNING,RUNNING_DEGRADED"
        );
        assert!(StatusFilter::Active.as_query().starts_with("PENDING,"));
    }
}
