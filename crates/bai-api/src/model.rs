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

/// A port number in a `service_ports` list: an integer 1–65535, nothing else.
fn port(v: &Value) -> Option<u16> {
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

/// The ports of a list up to (not including) its first entry that is not a port. Stopping
/// there, rather than skipping the entry, keeps `host_ports[i]` paired with
/// `container_ports[i]`: a dropped `null` in the middle would shift every later host port onto
/// the wrong container port.
fn port_prefix(v: &Value) -> Vec<u16> {
    v.as_array()
        .map(|a| a.iter().map_while(port).collect())
        .unwrap_or_default()
}

/// One `service_ports` element; `None` (skipped) unless it is an object with a string name.
fn service_port(v: &Value) -> Option<ServicePort> {
    let obj = v.as_object()?;
    let name = obj.get("name")?.as_str().filter(|n| !n.is_empty())?;
    // The plural list wins when present (even empty); the legacy single port otherwise.
    let ports = |plural: &str, single: &str| match obj.get(plural) {
        None | Some(Value::Null) => obj.get(single).and_then(port).into_iter().collect(),
        Some(list) => port_prefix(list),
    };
    Some(ServicePort {
        name: name.to_owned(),
        protocol: obj
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        container_ports: ports("container_ports", "container_port"),
        host_ports: ports("host_ports", "host_port"),
    })
}

/// Decodes `service_ports`: a string holding JSON (decoded twice), or the array itself, or
/// null/`""`/`[]`. Accepts the legacy single `host_port`/`container_port`.
///
/// The value comes from the server, so nothing in it is trusted: anything but a list (after
/// the string decoding) is an error; in the list, an element that is not an object with a
/// name is skipped, and a port list ends at its first entry that is not a port number (see
/// [`port_prefix`]). Junk thus loses ports, but never yields a wrong one.
pub(crate) fn decode_service_ports(v: &Value) -> Result<Vec<ServicePort>, String> {
    let decoded;
    let inner = match v {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("service_ports is not JSON: {e}"))?;
            &decoded
        }
        other => other,
    };
    match inner {
        Value::Null => Ok(Vec::new()),
        Value::Array(list) => Ok(list.iter().filter_map(service_port).collect()),
        _ => Err("bad service_ports: not a list".to_owned()),
    }
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
    fn junk_ports_never_shift_or_invent_a_port() {
        // A null host port in the middle must not move 30003 onto container port 2200.
        let v = json!([{"name":"app","protocol":"tcp","container_ports":[2200, 7681],
                        "host_ports":[null, 30003]}]);
        let p = decode_service_ports(&v).expect("decode");
        assert_eq!(p[0].container_ports, vec![2200, 7681]);
        assert!(p[0].host_ports.is_empty(), "{:?}", p[0].host_ports);
        // Out-of-range, negative, fractional, string and zero ports end the list there.
        let v = json!([{"name":"sshd","container_ports":[2200, 70000, 2201],
                        "host_ports":[30002, -1]},
                       {"name":"b","container_ports":[1.5], "host_ports":["30003"]},
                       {"name":"c","container_ports":[0, 1], "host_port": 65536}]);
        let p = decode_service_ports(&v).expect("decode");
        assert_eq!(p[0].container_ports, vec![2200]);
        assert_eq!(p[0].host_ports, vec![30002]);
        assert!(p[1].container_ports.is_empty() && p[1].host_ports.is_empty());
        assert!(p[2].container_ports.is_empty() && p[2].host_ports.is_empty());
    }

    #[test]
    fn junk_elements_are_skipped_and_other_shapes_are_errors() {
        let v = json!(["sshd", null, 5, {"protocol":"tcp"}, {"name": 7}, {"name":"ok"}]);
        let p = decode_service_ports(&v).expect("decode");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "ok");
        for bad in [
            json!({"name":"sshd"}),
            json!(5),
            json!(true),
            json!("\"[]\""),
        ] {
            assert!(decode_service_ports(&bad).is_err(), "{bad}");
        }
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

/// Property tests: `service_ports` from any server decodes to the ports it holds or to fewer,
/// never to a wrong one, and never panics.
#[cfg(test)]
pub(crate) mod props {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Any JSON value, nested a few levels.
    pub(crate) fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            (0u32..70000).prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("name".to_owned()),
                            Just("protocol".to_owned()),
                            Just("container_ports".to_owned()),
                            Just("host_ports".to_owned()),
                            Just("container_port".to_owned()),
                            Just("host_port".to_owned()),
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

    fn valid_port() -> impl Strategy<Value = u16> {
        1u16..=u16::MAX
    }

    /// A port list entry: a port, or junk that is no port.
    fn entry() -> impl Strategy<Value = (Value, Option<u16>)> {
        prop_oneof![
            4 => valid_port().prop_map(|p| (json!(p), Some(p))),
            1 => prop_oneof![
                Just(Value::Null),
                Just(json!(0)),
                (65536u64..).prop_map(|n| json!(n)),
                (i64::MIN..0).prop_map(|n| json!(n)),
                (1.0e-3f64..65535.0).prop_filter("not whole", |f| f.fract() != 0.0)
                    .prop_map(|f| json!(f)),
                valid_port().prop_map(|p| json!(p.to_string())),
                Just(json!([2200])),
                Just(json!({"port": 2200})),
            ].prop_map(|v| (v, None)),
        ]
    }

    /// What a list of entries must decode to: the ports before the first junk entry.
    fn expected(entries: &[(Value, Option<u16>)]) -> Vec<u16> {
        entries.iter().map_while(|(_, p)| *p).collect()
    }

    fn port_lists() -> impl Strategy<Value = Vec<ServicePort>> {
        proptest::collection::vec(
            (
                "[a-z][a-z0-9-]{0,10}",
                prop_oneof![Just("tcp"), Just("http"), Just("preopen"), Just("vnc")],
                proptest::collection::vec(valid_port(), 0..4),
                proptest::collection::vec(valid_port(), 0..4),
            )
                .prop_map(|(name, protocol, container_ports, host_ports)| {
                    ServicePort {
                        name,
                        protocol: protocol.to_owned(),
                        container_ports,
                        host_ports,
                    }
                }),
            0..5,
        )
    }

    fn to_json(ports: &[ServicePort], legacy: bool) -> Value {
        Value::Array(
            ports
                .iter()
                .map(|p| {
                    let mut o = json!({"name": p.name, "protocol": p.protocol,
                                       "is_inference": false, "url_template": null});
                    // The legacy single ports exist only for one-port apps.
                    if legacy && p.container_ports.len() == 1 && p.host_ports.len() == 1 {
                        o["container_port"] = json!(p.container_ports[0]);
                        o["host_port"] = json!(p.host_ports[0]);
                    } else {
                        o["container_ports"] = json!(p.container_ports);
                        o["host_ports"] = json!(p.host_ports);
                    }
                    o
                })
                .collect(),
        )
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_json_never_panics(v in any_json()) {
            let _ = decode_service_ports(&v);
            // Double-encoded, as the server sends it.
            let _ = decode_service_ports(&Value::String(v.to_string()));
        }

        #[test]
        fn any_string_never_panics(s in ".{0,64}") {
            let _ = decode_service_ports(&Value::String(s));
        }

        #[test]
        fn valid_ports_decode_exactly_in_every_encoding(
            ports in port_lists(),
            legacy in any::<bool>(),
        ) {
            let plain = to_json(&ports, legacy);
            prop_assert_eq!(&decode_service_ports(&plain).expect("plain"), &ports);
            let once = Value::String(plain.to_string());
            prop_assert_eq!(&decode_service_ports(&once).expect("double-encoded"), &ports);
        }

        #[test]
        fn junk_ports_are_dropped_never_wrong(
            name in "[a-z]{1,8}",
            container in proptest::collection::vec(entry(), 0..5),
            host in proptest::collection::vec(entry(), 0..5),
            encode in any::<bool>(),
        ) {
            let v = json!([{
                "name": name,
                "container_ports": container.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
                "host_ports": host.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
            }]);
            let v = if encode { Value::String(v.to_string()) } else { v };
            let got = decode_service_ports(&v).expect("a list of objects");
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].container_ports, &expected(&container));
            prop_assert_eq!(&got[0].host_ports, &expected(&host));
        }

        #[test]
        fn legacy_single_ports_decode_or_drop(
            container in entry(),
            host in entry(),
        ) {
            let v = json!([{"name": "sshd", "container_port": container.0, "host_port": host.0}]);
            let got = decode_service_ports(&v).expect("a list of objects");
            prop_assert_eq!(got[0].container_ports.clone(), container.1.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(got[0].host_ports.clone(), host.1.into_iter().collect::<Vec<_>>());
        }
    }
}
