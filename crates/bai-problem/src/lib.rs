//! Backend.AI's wire vocabulary, shared by the HTTP client (bai-api) and the tunnel (bai-tunnel):
//!
//! - [`Problem`]: the `application/problem+json` error body (RFC 7807/9457 `type`, `title`,
//!   `detail`, plus Backend.AI's `msg`, `error_code`, `data` and the webserver's `details`),
//!   parsed leniently field by field so that one odd field from a server never hides the others;
//! - [`header`]: the names of the headers and the cookie the protocol uses.
//!
//! A leaf crate on purpose (serde only): both sides of the client read the same body the same
//! way, and neither has to depend on the other for it. The sandbox (the other side of the wire)
//! does not use it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use serde_json::Value;

/// The names of Backend.AI's headers, its web session cookie and its problem types
/// (`docs/protocol.md` §2, §3 and §7).
pub mod header {
    /// The negotiated API version, `vMAJOR.YYYYMMDD`; part of the HMAC signature.
    pub const VERSION: &str = "X-BackendAI-Version";
    /// The web session id (session mode). The webserver checks it before the cookie.
    pub const SESSION_ID: &str = "X-BackendAI-SessionID";
    /// The user's domain on signed (API mode) requests; sent, not signed.
    pub const DOMAIN: &str = "X-BackendAI-Domain";
    /// `true` when the login body is encrypted (session mode over plain `http`).
    pub const ENCODED: &str = "X-BackendAI-Encoded";
    /// The webserver's session cookie.
    pub const SESSION_COOKIE: &str = "AIOHTTP_SESSION";
    /// The scheme of the `Authorization` header of signed requests:
    /// `BackendAI signMethod=HMAC-SHA256, credential=<access key>:<hex signature>`.
    pub const AUTH_SCHEME: &str = "BackendAI";
    /// The `signMethod` of the `Authorization` header.
    pub const SIGN_METHOD: &str = "HMAC-SHA256";
    /// The content type of error bodies.
    pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
    /// The prefix of every Backend.AI problem `type`; the rest is the slug.
    pub const PROBLEM_TYPE_PREFIX: &str = "https://api.backend.ai/probs/";
}

/// A Backend.AI `application/problem+json` body (or the webserver's login failure `data`).
///
/// Every field is optional: older managers omit `error_code`, the webserver uses `details`,
/// RFC 9457 says `detail` (kept in [`Problem::details`] too).
///
/// Parsing is lenient field by field (see [`Problem::from_value`]): a field of the wrong type
/// is dropped rather than failing the whole body, so one odd field from a server never hides
/// the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problem {
    /// `https://api.backend.ai/probs/<slug>`.
    pub type_: Option<String>,
    /// Short human-readable summary, e.g. "No such session.".
    pub title: Option<String>,
    /// Extra message from the manager.
    pub msg: Option<String>,
    /// Newer managers: `<domain>_<op>_<detail>`, e.g. `session_read_not-found`.
    pub error_code: Option<String>,
    /// Structured extra data.
    pub data: Option<Value>,
    /// The webserver's free-text `details` (or RFC 9457's `detail`); non-string values are
    /// kept as their JSON text.
    pub details: Option<String>,
    /// RFC 9457's `status`, when it is an HTTP status number (Backend.AI seldom sends it; the
    /// answer's own status is what counts).
    pub status: Option<u16>,
    /// RFC 9457's `instance`, when it is a string.
    pub instance: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Problem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Problem::from_value(&v))
    }
}

/// The three parts of an `error_code`, `<domain>_<operation>_<detail>`
/// (e.g. `session` / `read` / `not-found`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeParts<'a> {
    /// What the error is about: `session`, `user`, `backendai`, …
    pub domain: &'a str,
    /// What was being done: `read`, `auth`, `create`, …
    pub operation: &'a str,
    /// What went wrong: `not-found`, `unauthorized`, `invalid-parameters`, …
    pub detail: &'a str,
}

impl Problem {
    /// Parses a problem body; `None` unless it is a JSON object with a `type` or `title`.
    pub fn parse(body: &[u8]) -> Option<Problem> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let p = Problem::from_value(&v);
        (p.type_.is_some() || p.title.is_some()).then_some(p)
    }

    /// Parses any problem-shaped answer, for messages: the webserver's login envelope
    /// `{"authenticated":false,"data":{…}}` is opened (when the top level has no `title`), and
    /// any text field (`type`, `title`, `msg`, `details`/`detail`, `error_code`) is enough.
    /// `None` when the body is not JSON or carries none of them.
    pub fn parse_any(body: &[u8]) -> Option<Problem> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        let inner = match obj.get("data") {
            Some(d @ Value::Object(_)) if !obj.contains_key("title") => d,
            _ => &v,
        };
        let p = Problem::from_value(inner);
        (!p.has_no_text()).then_some(p)
    }

    /// Reads the fields of a problem object, each on its own: `type`, `title`, `error_code` and
    /// `instance` only when they are strings, `msg` and `details`/`detail` as text (strings as
    /// they are, other JSON as its text), `data` unless null, `status` when it is a number from
    /// 100 to 599. Anything but an object gives the empty problem.
    pub fn from_value(v: &Value) -> Problem {
        let Some(obj) = v.as_object() else {
            return Problem::default();
        };
        let string = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let text = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        Problem {
            type_: string("type"),
            title: string("title"),
            msg: text("msg"),
            error_code: string("error_code"),
            data: obj.get("data").filter(|d| !d.is_null()).cloned(),
            details: text("details").or_else(|| text("detail")),
            status: obj
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| (100..=599).contains(n)),
            instance: string("instance"),
        }
    }

    /// True when none of the text fields (`type`, `title`, `msg`, `details`, `error_code`) is
    /// there.
    pub fn has_no_text(&self) -> bool {
        [
            &self.type_,
            &self.title,
            &self.msg,
            &self.details,
            &self.error_code,
        ]
        .iter()
        .all(|f| f.is_none())
    }

    /// The slug at the end of `type` (`object-not-found`), if any.
    pub fn slug(&self) -> Option<&str> {
        self.type_.as_deref().and_then(|t| t.rsplit('/').next())
    }

    /// `error_code` split into its parts, when it has the `<domain>_<op>_<detail>` shape.
    /// The detail may itself hold underscores; the domain and operation never do.
    pub fn error_code_parts(&self) -> Option<ErrorCodeParts<'_>> {
        let code = self.error_code.as_deref()?;
        let mut it = code.splitn(3, '_');
        let (domain, operation, detail) = (it.next()?, it.next()?, it.next()?);
        if domain.is_empty() || operation.is_empty() || detail.is_empty() {
            return None;
        }
        Some(ErrorCodeParts {
            domain,
            operation,
            detail,
        })
    }

    /// The human text: `msg`, else `details` (the webserver's field), else nothing.
    pub fn message(&self) -> Option<&str> {
        self.msg.as_deref().or(self.details.as_deref())
    }
}

impl fmt::Display for Problem {
    /// `title: msg: details [error_code]` (each once, empty ones left out), or the slug when
    /// there is no text at all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&str> = Vec::new();
        for s in [&self.title, &self.msg, &self.details]
            .into_iter()
            .flatten()
        {
            if !s.is_empty() && !parts.contains(&s.as_str()) {
                parts.push(s);
            }
        }
        if parts.is_empty() {
            if let Some(t) = self.slug() {
                parts.push(t);
            }
        }
        f.write_str(&parts.join(": "))?;
        if let Some(code) = &self.error_code {
            write!(f, " [{code}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_parses_and_displays() {
        let p = Problem::parse(
            br#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such session.","error_code":"session_read_not-found"}"#,
        )
        .expect("problem");
        assert_eq!(p.slug(), Some("object-not-found"));
        assert_eq!(p.to_string(), "No such session. [session_read_not-found]");
        assert!(Problem::parse(b"<html>").is_none());
        assert!(Problem::parse(b"{\"a\":1}").is_none());
    }

    #[test]
    fn one_odd_field_does_not_hide_the_others() {
        // A numeric `msg`, an object `title`, duplicate keys and RFC 9457's `detail`.
        let p = Problem::parse(
            br#"{"type":"https://api.backend.ai/probs/x","title":{"a":1},"msg":5,
                "detail":"d","error_code":"c_1","error_code":"c_2"}"#,
        )
        .expect("problem");
        assert_eq!(p.type_.as_deref(), Some("https://api.backend.ai/probs/x"));
        assert_eq!(p.title, None);
        assert_eq!(p.msg.as_deref(), Some("5"));
        assert_eq!(p.details.as_deref(), Some("d"));
        assert_eq!(p.error_code.as_deref(), Some("c_2"));
        // `details` (the webserver's) wins over `detail`.
        let p = Problem::parse(br#"{"title":"t","details":"a","detail":"b"}"#).expect("p");
        assert_eq!(p.details.as_deref(), Some("a"));
        // RFC 9457's `status` and `instance`, when they have their types.
        let p = Problem::parse(br#"{"title":"t","status":404,"instance":"/x"}"#).expect("p");
        assert_eq!((p.status, p.instance.as_deref()), (Some(404), Some("/x")));
        let p = Problem::parse(br#"{"title":"t","status":"404","instance":1}"#).expect("p");
        assert_eq!((p.status, p.instance), (None, None));
        assert_eq!(
            Problem::parse(br#"{"title":"t","status":70000}"#).and_then(|p| p.status),
            None
        );
        // Deserializing (as the login answer's `data` is) is just as lenient.
        let p: Problem =
            serde_json::from_value(serde_json::json!({"title": 1, "type": "t"})).expect("p");
        assert_eq!(p.type_.as_deref(), Some("t"));
    }

    #[test]
    fn parse_any_opens_the_login_envelope_and_takes_any_text() {
        let p = Problem::parse_any(
            br#"{"authenticated":false,"data":{"type":"x/auth-failed","title":"Unauthorized","details":"bad password"}}"#,
        )
        .expect("nested problem");
        assert_eq!(p.title.as_deref(), Some("Unauthorized"));
        assert_eq!(p.message(), Some("bad password"));
        assert_eq!(
            Problem::parse_any(br#"{"msg":"only a message"}"#)
                .expect("msg")
                .message(),
            Some("only a message")
        );
        // A top-level title wins over the envelope.
        let p = Problem::parse_any(br#"{"title":"top","data":{"title":"inner"}}"#).expect("p");
        assert_eq!(p.title.as_deref(), Some("top"));
        assert!(Problem::parse_any(b"{}").is_none());
        assert!(Problem::parse_any(br#"{"data":5}"#).is_none());
        assert!(Problem::parse_any(b"<html>nope</html>").is_none());
    }

    #[test]
    fn error_code_splits_into_three_parts() {
        let p = Problem {
            error_code: Some("session_read_not-found".into()),
            ..Problem::default()
        };
        assert_eq!(
            p.error_code_parts(),
            Some(ErrorCodeParts {
                domain: "session",
                operation: "read",
                detail: "not-found"
            })
        );
        let p = Problem {
            error_code: Some("user_auth_invalid_parameters".into()),
            ..Problem::default()
        };
        assert_eq!(
            p.error_code_parts().map(|c| c.detail),
            Some("invalid_parameters")
        );
        for bad in ["", "session", "session_read", "_read_x", "a__x"] {
            let p = Problem {
                error_code: Some(bad.into()),
                ..Problem::default()
            };
            assert_eq!(p.error_code_parts(), None, "{bad:?}");
        }
    }
}

/// Property tests: problem bodies from any server parse or are refused, never panic, and the
/// fields a server sends are the fields read. Bounded and deterministic by default
/// (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the case count and the seed).
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_owned()),
                            Just("title".to_owned()),
                            Just("msg".to_owned()),
                            Just("detail".to_owned()),
                            Just("details".to_owned()),
                            Just("error_code".to_owned()),
                            Just("data".to_owned()),
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

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(p) = Problem::parse(&body) {
                prop_assert!(p.type_.is_some() || p.title.is_some());
                let _ = (p.to_string(), p.slug(), p.error_code_parts());
            }
            if let Some(p) = Problem::parse_any(&body) {
                prop_assert!(!p.has_no_text());
                let _ = (p.to_string(), p.message());
            }
        }

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            if let Some(p) = Problem::parse(v.to_string().as_bytes()) {
                let _ = (p.to_string(), p.slug(), p.error_code_parts());
            }
            if let Some(p) = Problem::parse_any(v.to_string().as_bytes()) {
                prop_assert!(!p.has_no_text());
            }
            let _ = Problem::from_value(&v).to_string();
        }

        #[test]
        fn the_fields_sent_are_the_fields_read(
            type_ in proptest::option::of(".{0,30}"),
            title in proptest::option::of(".{0,30}"),
            detail in proptest::option::of(".{0,30}"),
            error_code in proptest::option::of("[a-z_-]{0,20}"),
            msg in proptest::option::of(".{0,30}"),
            extra in proptest::collection::vec(("[a-z]{1,6}x", any_json()), 0..4),
        ) {
            let mut o = serde_json::Map::new();
            for (k, v) in extra {
                o.insert(k, v);
            }
            for (k, v) in [("type", &type_), ("title", &title), ("detail", &detail),
                           ("error_code", &error_code), ("msg", &msg)] {
                if let Some(v) = v {
                    o.insert(k.to_owned(), json!(v));
                }
            }
            let body = Value::Object(o).to_string();
            match Problem::parse(body.as_bytes()) {
                None => prop_assert!(type_.is_none() && title.is_none()),
                Some(p) => {
                    prop_assert_eq!(p.type_, type_);
                    prop_assert_eq!(p.title, title);
                    prop_assert_eq!(p.details, detail);
                    prop_assert_eq!(p.error_code, error_code);
                    prop_assert_eq!(p.msg, msg);
                }
            }
        }
    }
}
