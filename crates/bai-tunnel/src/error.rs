//! Errors: [`Error`] for the tunnel as a whole (binding, stdio mode) and [`ConnError`] for one
//! connection, which is `Clone` so it can travel in [`crate::Event::Failed`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bai_problem::Problem;

/// An error of the tunnel as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The local listener could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The preferred port is not usable (0) and falling back was not allowed.
    #[error("port {port} is not a usable port")]
    InvalidPort {
        /// The port that was asked for.
        port: u16,
    },
    /// The one connection of stdio mode failed.
    #[error(transparent)]
    Connection(#[from] ConnError),
}

/// Why one tunnelled connection failed. Cloneable so that it can be broadcast in events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The [`crate::Connector`] could not produce a request (for example, credentials expired).
    #[error("could not prepare the WebSocket request: {0}")]
    Connector(String),
    /// The request's URL cannot be used (no host, unknown scheme).
    #[error("invalid WebSocket URL {url}: {reason}")]
    InvalidTarget {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server's host name did not resolve.
    #[error("could not resolve {host}: {message}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        message: String,
    },
    /// No TCP connection to the server could be made.
    #[error("could not connect to {addr}: {message}")]
    Connect {
        /// The address (or addresses) tried.
        addr: String,
        /// The last OS error.
        message: String,
    },
    /// Connecting, TLS and the WebSocket handshake together took longer than the connect timeout.
    #[error("timed out after {0:?} opening the WebSocket")]
    Timeout(Duration),
    /// The server answered the upgrade with an HTTP error (401, 404, 502, …).
    #[error("{}", rejected_message(*.status, .problem.as_deref(), .body.as_deref()))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's problem+json body, when it sent one.
        problem: Option<Box<Problem>>,
        /// The body as text (at most 4 KiB, trimmed), when there was one: the raw problem+json
        /// too, so callers can parse it their own way.
        body: Option<String>,
    },
    /// The WebSocket handshake failed for another reason (TLS, protocol, connection reset).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// The server closed the WebSocket with an error code: 1013 when the session's port refused
    /// the connection, 1011 for other errors on the server's side.
    #[error("{}", closed_message(*.code, .reason))]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
    /// The WebSocket failed mid-stream (reset, protocol error).
    #[error("WebSocket error: {0}")]
    WebSocket(String),
    /// Nothing at all (not even a pong) came from the server for this long while waiting for it.
    #[error("no answer from the server for {0:?}")]
    PeerTimeout(Duration),
}

impl ConnError {
    /// The HTTP status of a refused upgrade.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ConnError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The WebSocket close code of a connection the server closed with an error.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ConnError::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The most of a non-problem body shown in the message.
const MAX_SHOWN_BODY: usize = 300;

fn rejected_message(status: u16, problem: Option<&Problem>, body: Option<&str>) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = format!("the server refused the WebSocket: HTTP {status} {reason}");
    let out_trimmed_len = out.trim_end().len();
    out.truncate(out_trimmed_len);
    if let Some(problem) = problem {
        let text = problem_text(problem);
        if !text.is_empty() {
            out.push_str(": ");
            out.push_str(&text);
        }
        if status == 502 && is_proxy_unreachable(problem) {
            out.push_str(
                " (the webserver could not open the session's service through the manager: \
                 the session may have ended, or the app is not running)",
            );
        }
    } else if let Some(body) = body.map(str::trim).filter(|b| !b.is_empty()) {
        out.push_str(": ");
        let mut end = body.len().min(MAX_SHOWN_BODY);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&body[..end]);
        if end < body.len() {
            out.push('…');
        }
    }
    out
}

/// The webserver's `ProxyTargetUnreachableError` (real 26.9.6): the manager refused its
/// upstream WebSocket, for whatever reason (unknown session or app, the session gone); the
/// manager's own answer is not passed on.
fn is_proxy_unreachable(problem: &Problem) -> bool {
    problem.error_code.as_deref() == Some("api_request_unreachable")
        || (problem.slug() == Some("bad-gateway")
            && problem.title.as_deref() == Some("The proxy target server is inaccessible."))
}

fn closed_message(code: u16, reason: &str) -> String {
    let meaning = match code {
        1011 => " (error on the server's side)",
        1013 => " (the session's port refused the connection; is the service running?)",
        1008 => " (policy violation)",
        1006 => " (abnormal closure)",
        _ => "",
    };
    if reason.is_empty() {
        format!("the server closed the WebSocket with code {code}{meaning}")
    } else {
        format!("the server closed the WebSocket with code {code}{meaning}: {reason}")
    }
}

/// A problem in a refusal message: `title (msg)`, or whichever of the two exists, or the slug of
/// its type. Empty fields count as missing.
fn problem_text(problem: &Problem) -> String {
    fn nonempty(s: &Option<String>) -> Option<&str> {
        s.as_deref().filter(|s| !s.is_empty())
    }
    let title = nonempty(&problem.title);
    let msg = nonempty(&problem.msg).or(nonempty(&problem.details));
    match (title, msg) {
        (Some(title), Some(msg)) if title != msg => format!("{title} ({msg})"),
        (Some(title), _) => title.to_owned(),
        (None, Some(msg)) => msg.to_owned(),
        (None, None) => problem.slug().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webservers_unreachable_proxy_is_explained() {
        let body = br#"{"type":"https://api.backend.ai/probs/bad-gateway","title":"The proxy target server is inaccessible.","error_code":"api_request_unreachable"}"#;
        let p = Problem::parse_any(body).expect("valid problem");
        let e = ConnError::Rejected {
            status: 502,
            problem: Some(Box::new(p)),
            body: None,
        };
        assert_eq!(
            e.to_string(),
            "the server refused the WebSocket: HTTP 502 Bad Gateway: The proxy target server is \
             inaccessible. (the webserver could not open the session's service through the \
             manager: the session may have ended, or the app is not running)"
        );
    }

    #[test]
    fn parses_manager_problem_json() {
        let body = br#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such app service.","msg":"mysess:sshd","error_code":"backendai_read_not-found"}"#;
        let p = Problem::parse_any(body).expect("valid problem");
        assert_eq!(p.title.as_deref(), Some("No such app service."));
        assert_eq!(p.msg.as_deref(), Some("mysess:sshd"));
        assert_eq!(problem_text(&p), "No such app service. (mysess:sshd)");
        let e = ConnError::Rejected {
            status: 404,
            problem: Some(Box::new(p)),
            body: None,
        };
        assert_eq!(
            e.to_string(),
            "the server refused the WebSocket: HTTP 404 Not Found: No such app service. (mysess:sshd)"
        );
        assert_eq!(e.http_status(), Some(404));
    }

    #[test]
    fn parses_webserver_nested_problem_and_rejects_non_json() {
        let body = br#"{"authenticated":false,"data":{"type":"x/auth-failed","title":"Unauthorized","details":"bad password"}}"#;
        let p = Problem::parse_any(body).expect("nested problem");
        assert_eq!(problem_text(&p), "Unauthorized (bad password)");
        assert!(Problem::parse_any(b"<html>nope</html>").is_none());
        assert!(Problem::parse_any(b"{}").is_none());
        let e = ConnError::Rejected {
            status: 502,
            problem: None,
            body: Some("upstream down".into()),
        };
        assert_eq!(
            e.to_string(),
            "the server refused the WebSocket: HTTP 502 Bad Gateway: upstream down"
        );
    }

    #[test]
    fn close_codes_are_explained() {
        let e = ConnError::Closed {
            code: 1013,
            reason: String::new(),
        };
        assert!(e.to_string().contains("1013"));
        assert!(e.to_string().contains("refused"));
        assert_eq!(e.close_code(), Some(1013));
    }
}

/// Property tests of the problem+json parsing: bounded and deterministic by default
/// (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the case count and the seed).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Any JSON value, a few levels deep.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(key(), inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The keys that mean something, and others.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "type",
                "title",
                "msg",
                "details",
                "error_code",
                "data"
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,8}",
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Some(problem) = Problem::parse_any(&body) {
                prop_assert_ne!(&problem, &Problem::default());
                let _ = problem_text(&problem);
            }
        }

        #[test]
        fn any_json_object_parses_or_is_ignored(
            fields in prop::collection::btree_map(key(), json(), 0..6),
            status in any::<u16>(),
        ) {
            let body = serde_json::to_vec(&fields).expect("json");
            let problem = Problem::parse_any(&body);
            let has_known = ["type", "title", "msg", "details", "error_code", "data"]
                .iter()
                .any(|k| fields.contains_key(*k));
            if !has_known {
                prop_assert_eq!(&problem, &None);
            }
            if let (Some(p), Some(serde_json::Value::String(title))) = (&problem, fields.get("title")) {
                if !title.is_empty() {
                    prop_assert_eq!(p.title.as_deref(), Some(title.as_str()));
                }
            }
            let text = body_text(&body);
            let error = ConnError::Rejected {
                status,
                problem: problem.map(Box::new),
                body: Some(text),
            };
            let message = error.to_string();
            prop_assert!(message.starts_with("the server refused the WebSocket: HTTP "));
        }

        #[test]
        fn non_problem_bodies_are_shown_short(
            body in ".{0,600}",
            status in any::<u16>(),
        ) {
            let error = ConnError::Rejected { status, problem: None, body: Some(body) };
            prop_assert!(error.to_string().len() < 100 + MAX_SHOWN_BODY);
        }
    }

    fn body_text(body: &[u8]) -> String {
        String::from_utf8_lossy(body).into_owned()
    }
}
