//! Who the client is on the wire: the one place that stamps auth headers on a request, for
//! HTTP calls and tcpproxy WebSocket upgrades alike.
//!
//! - Session mode: the current login id as `X-BackendAI-SessionID` and as the
//!   `AIOHTTP_SESSION` cookie (none when not logged in).
//! - API mode: `Date` and an HMAC-SHA256 `Authorization` over method, path and query, date,
//!   host, content type and API version ([`crate::sign`]), plus `X-BackendAI-Domain` (sent, not
//!   signed; protocol.md §2).
//!
//! Every credential header is marked sensitive, so `http`'s own `Debug` hides it.

use std::sync::{Arc, Mutex, MutexGuard};

use bai_problem::header as h;
use chrono::Utc;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, COOKIE, DATE};

use crate::error::{Error, Result};
use crate::sensitive::Sensitive;
use crate::sign;

/// The domain sent in `X-BackendAI-Domain` (the official clients' default).
pub(crate) const DEFAULT_DOMAIN: &str = "default";

/// The login session id, shared between a [`crate::Client`] and its
/// [`crate::TcpproxyTarget`]s so that a re-login reaches them.
pub(crate) type SessionCell = Arc<Mutex<Option<Sensitive<String>>>>;

/// Locks a [`SessionCell`]. A poisoned lock only means another thread panicked
/// mid-assignment of an `Option`, so the value is still usable.
pub(crate) fn lock_cell(cell: &SessionCell) -> MutexGuard<'_, Option<Sensitive<String>>> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Against the webserver: email/password login, then a web session (`/func/…`).
    #[default]
    Session,
    /// Against the manager: every request HMAC-signed with an access/secret key pair.
    Api,
}

/// How requests are authenticated.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// The client's live login id cell: a re-login is seen by the next request.
    Session(SessionCell),
    /// An access/secret key pair; every request is signed with a fresh date.
    Keypair {
        access_key: Sensitive<String>,
        secret_key: Sensitive<String>,
    },
}

/// What a signature covers, besides the keys.
pub(crate) struct Stamp<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path and query exactly as sent.
    pub path_and_query: &'a str,
    /// The `Host` header as sent.
    pub host: &'a str,
    /// The media type signed (without parameters).
    pub content_type: &'a str,
    /// The `X-BackendAI-Version` value sent, or empty.
    pub version: &'a str,
}

/// A header value; `what` names it in the error (never the value: it may be a secret).
fn value(v: &str, what: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(v)
        .map_err(|_| Error::invalid_input(format!("{what} has invalid characters")))
}

/// A header value that is a credential: never shown by `Debug`.
fn secret(v: &str, what: &str) -> Result<HeaderValue> {
    let mut hv = value(v, what)?;
    hv.set_sensitive(true);
    Ok(hv)
}

impl Credentials {
    /// Adds the auth headers to `headers`. Returns the login id the request carries (session
    /// mode), so that an answer clearing it can be matched to it.
    pub(crate) fn stamp(
        &self,
        headers: &mut HeaderMap,
        s: &Stamp<'_>,
    ) -> Result<Option<Sensitive<String>>> {
        match self {
            Credentials::Session(cell) => {
                let current = lock_cell(cell).clone();
                if let Some(id) = &current {
                    headers.insert(h::SESSION_ID, secret(id.expose(), "the session id")?);
                    headers.insert(
                        COOKIE,
                        secret(
                            &format!("{}={}", h::SESSION_COOKIE, id.expose()),
                            "the session id",
                        )?,
                    );
                }
                Ok(current)
            }
            Credentials::Keypair {
                access_key,
                secret_key,
            } => {
                let now = Utc::now();
                let date_str = sign::python_iso_date(now);
                let input = sign::SignInput {
                    method: s.method,
                    path_and_query: s.path_and_query,
                    date_str: &date_str,
                    date: now,
                    host: s.host,
                    content_type: s.content_type,
                    version: s.version,
                };
                let authz = sign::authorization(access_key.expose(), secret_key.expose(), &input);
                headers.insert(DATE, value(&date_str, "the date")?);
                headers.insert(AUTHORIZATION, secret(&authz, "the access key")?);
                headers.insert(h::DOMAIN, HeaderValue::from_static(DEFAULT_DOMAIN));
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp<'static> {
        Stamp {
            method: "GET",
            path_and_query: "/a?b=c",
            host: "h:1",
            content_type: "application/octet-stream",
            version: "v9.20250722",
        }
    }

    #[test]
    fn session_stamps_the_current_id_or_nothing() {
        let cell: SessionCell = Arc::new(Mutex::new(Some("s3cr3t".into())));
        let creds = Credentials::Session(cell.clone());
        let mut hm = HeaderMap::new();
        let sent = creds.stamp(&mut hm, &stamp()).expect("stamp");
        assert_eq!(
            sent.as_ref().map(Sensitive::expose).map(String::as_str),
            Some("s3cr3t")
        );
        assert_eq!(hm["x-backendai-sessionid"], "s3cr3t");
        assert_eq!(hm["cookie"], "AIOHTTP_SESSION=s3cr3t");
        assert!(hm["cookie"].is_sensitive());
        assert!(!hm.contains_key("authorization"));
        *lock_cell(&cell) = None;
        let mut hm = HeaderMap::new();
        assert!(creds.stamp(&mut hm, &stamp()).expect("stamp").is_none());
        assert!(hm.is_empty());
    }

    #[test]
    fn keypair_signs_and_names_the_domain() {
        let creds = Credentials::Keypair {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let mut hm = HeaderMap::new();
        assert!(creds.stamp(&mut hm, &stamp()).expect("stamp").is_none());
        let authz = hm["authorization"].to_str().expect("ascii");
        assert!(
            authz.starts_with("BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:"),
            "{authz}"
        );
        assert!(hm["authorization"].is_sensitive());
        assert_eq!(hm["x-backendai-domain"], "default");
        assert!(hm.contains_key("date"));
        assert!(!hm.contains_key("cookie"));
    }
}
