//! The HTTP wire: encoding a request body, sending a request with the headers every call
//! carries (user agent, API version, credentials), reading answers within size limits, and
//! turning a non-2xx answer into an [`Error`] (through [`crate::classify`]).
//!
//! Knows nothing of the API's routes: [`crate::Client`] and its per-area modules say what to
//! send; this says how.

use std::time::Duration;

use bai_problem::header as h;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::classify::{classify, header_str, wrong_url, Ctx};
use crate::credentials::{lock_cell, Credentials, Mode, SessionCell, Stamp};
use crate::error::{redact, Error, ErrorKind, Result};
use crate::sensitive::Sensitive;
use crate::sign;
use crate::version::ApiVersion;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("bai/", env!("CARGO_PKG_VERSION"));
/// Error bodies are read up to this size.
pub(crate) const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// JSON answers are read up to this size.
const JSON_BODY_LIMIT: u64 = 32 * 1024 * 1024;

/// A request body, and how it is labelled (and signed).
pub(crate) enum Body {
    /// No body; labelled `text/plain` as the Python client does.
    Empty,
    /// A JSON document.
    Json(Value),
    /// The encrypted login body of session mode over plain `http` (`iv:base64(…)`), sent with
    /// `X-BackendAI-Encoded: true`.
    Encrypted(String),
}

impl Body {
    /// The login credentials as the webserver expects them: plain JSON over `https`, else
    /// encrypted with a key derived from the origin (protocol.md §3).
    pub(crate) fn login(url: &Url, creds: Value) -> Body {
        if url.scheme() == "https" {
            return Body::Json(creds);
        }
        let origin = format!("{}://{}", url.scheme(), sign::host_header(url));
        let plain = serde_json::to_vec(&creds).expect("BUG: a JSON value always serializes");
        Body::Encrypted(sign::encrypt_login_body(
            &origin,
            &sign::random_iv(),
            &plain,
        ))
    }

    /// The content type (as sent and signed) and the bytes.
    fn encode(self) -> (&'static str, Vec<u8>) {
        match self {
            Body::Empty => ("text/plain", Vec::new()),
            Body::Json(v) => (
                "application/json",
                serde_json::to_vec(&v).expect("BUG: a JSON value always serializes"),
            ),
            Body::Encrypted(s) => ("application/octet-stream", s.into_bytes()),
        }
    }
}

/// Whether a request carries the client's credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Stamped by the client's [`Credentials`].
    Yes,
    /// Anonymous: the version probe, and the login itself (a second login in a logged-in web
    /// session is refused).
    No,
}

/// The HTTP side of a [`crate::Client`]: the reqwest client and who it is.
pub(crate) struct Wire {
    pub(crate) http: reqwest::Client,
    pub(crate) mode: Mode,
    pub(crate) timeout: Duration,
    pub(crate) insecure: bool,
    pub(crate) creds: Credentials,
    /// The login id (both modes hold one; only session mode sends it).
    pub(crate) session: SessionCell,
}

/// The `AIOHTTP_SESSION` value from `Set-Cookie` headers: `Some("")` when cleared.
pub(crate) fn session_from_cookies(hm: &HeaderMap) -> Option<String> {
    let mut found = None;
    for v in hm.get_all(reqwest::header::SET_COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        let mut attrs = v.split(';');
        let Some((name, value)) = attrs.next().and_then(|kv| kv.split_once('=')) else {
            continue;
        };
        if name.trim() != h::SESSION_COOKIE {
            continue;
        }
        let cleared = attrs.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("max-age=-")
        });
        let value = value.trim().trim_matches('"');
        found = Some(if cleared {
            String::new()
        } else {
            value.to_owned()
        });
    }
    found
}

impl Wire {
    /// Sends one request. `version` is the `X-BackendAI-Version` value. Also returns the login
    /// id the request carried (session mode, [`Auth::Yes`] only).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Body,
        version: Option<ApiVersion>,
        auth: Auth,
    ) -> Result<(reqwest::Response, Option<Sensitive<String>>)> {
        let encoded = matches!(body, Body::Encrypted(_));
        let (content_type, bytes) = body.encode();
        let version_s = version.map(|v| v.to_string()).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if !version_s.is_empty() {
            headers.insert(
                h::VERSION,
                HeaderValue::from_str(&version_s).expect("BUG: a version is ASCII"),
            );
        }
        if encoded {
            headers.insert(h::ENCODED, HeaderValue::from_static("true"));
        }
        let sent = match auth {
            Auth::No => None,
            Auth::Yes => self.creds.stamp(
                &mut headers,
                &Stamp {
                    method: method.as_str(),
                    path_and_query: &sign::path_and_query(url),
                    host: &sign::host_header(url),
                    content_type,
                    version: &version_s,
                },
            )?,
        };
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers);
        if !bytes.is_empty() {
            req = req.body(bytes);
        }
        if self.insecure && url.scheme() == "https" {
            // Per client, not per request: see `TlsOptions::insecure`.
            tracing::debug!(url = %redact(url), "HTTPS request without certificate verification");
        }
        tracing::debug!(%method, url = %redact(url), "request");
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(e, url, self.timeout))?;
        Ok((resp, sent))
    }

    /// Follows the server clearing the login cookie (`Max-Age=0`, e.g. at logout) on a 2xx
    /// answer to a request that carried the current login id.
    ///
    /// A *new* id in an answer is never adopted here: an anonymous request (the version probe)
    /// or one whose login died may get a brand-new anonymous web session, which must not
    /// replace the login. Only `/server/login` and `/server/login-check` (when authenticated)
    /// set the id.
    fn capture_session(&self, hm: &HeaderMap, sent: Option<&Sensitive<String>>) {
        if self.mode != Mode::Session {
            return;
        }
        let Some(sent) = sent else { return };
        let from_header = header_str(hm, h::SESSION_ID).trim().to_owned();
        let id = if !from_header.is_empty() {
            Some(from_header)
        } else {
            session_from_cookies(hm)
        };
        match id {
            Some(id) if id.is_empty() => {
                let mut cur = lock_cell(&self.session);
                // Compare and swap: a concurrent login may have replaced the id meanwhile.
                if cur.as_ref() == Some(sent) {
                    tracing::debug!("the server cleared the login session id");
                    *cur = None;
                }
            }
            Some(id) if id != *sent.expose() => {
                tracing::debug!("ignoring a different web session id in an answer");
            }
            _ => {}
        }
    }

    /// Passes a 2xx answer through; turns anything else into a precise error.
    pub(crate) async fn check(
        &self,
        resp: reqwest::Response,
        url: &Url,
        ctx: Ctx<'_>,
        sent: Option<&Sensitive<String>>,
    ) -> Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            self.capture_session(resp.headers(), sent);
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = self
            .read_limited(resp, url, ERROR_BODY_LIMIT, "error body", true)
            .await?;
        Err(self.classify(status, &headers, &body, url, ctx, sent.is_some()))
    }

    /// [`classify`] with this client's mode.
    pub(crate) fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        url: &Url,
        ctx: Ctx<'_>,
        had_session: bool,
    ) -> Error {
        classify(status, headers, body, url, ctx, self.mode, had_session)
    }

    /// Reads a body up to `limit` bytes; over the limit is [`ErrorKind::TooLarge`] (or, when
    /// `truncate`, the first `limit` bytes).
    pub(crate) async fn read_limited(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
        limit: u64,
        what: &str,
        truncate: bool,
    ) -> Result<Vec<u8>> {
        if !truncate && resp.content_length().is_some_and(|l| l > limit) {
            return Err(ErrorKind::TooLarge {
                what: what.to_owned(),
                limit,
            }
            .into());
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::from_reqwest(e, url, self.timeout))?
        {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > limit {
                if truncate {
                    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    break;
                }
                return Err(ErrorKind::TooLarge {
                    what: what.to_owned(),
                    limit,
                }
                .into());
            }
        }
        Ok(out)
    }

    /// Reads a JSON answer into `T`; an answer that is no JSON at all is
    /// [`ErrorKind::WrongUrl`], JSON of the wrong shape [`ErrorKind::InvalidResponse`].
    pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        url: &Url,
    ) -> Result<T> {
        let status = resp.status();
        let content_type = header_str(resp.headers(), "content-type").to_owned();
        let body = self
            .read_limited(resp, url, JSON_BODY_LIMIT, "the answer", false)
            .await?;
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return Err(wrong_url(url, status, &content_type, &body)),
        };
        serde_json::from_value(v).map_err(|e| Error::invalid_response(url, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut hm = HeaderMap::new();
        hm.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("other=1; Path=/"),
        );
        hm.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static(
                "AIOHTTP_SESSION=abc123; expires=2025-01-02T03:04:05; HttpOnly; Max-Age=604800; Path=/",
            ),
        );
        assert_eq!(session_from_cookies(&hm).as_deref(), Some("abc123"));
        let mut hm = HeaderMap::new();
        hm.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("AIOHTTP_SESSION=\"\"; Max-Age=0; Path=/"),
        );
        assert_eq!(session_from_cookies(&hm).as_deref(), Some(""));
    }

    #[test]
    fn bodies_are_labelled_as_signed() {
        assert_eq!(Body::Empty.encode(), ("text/plain", Vec::new()));
        let (ct, bytes) = Body::Json(serde_json::json!({"a": 1})).encode();
        assert_eq!(
            (ct, bytes.as_slice()),
            ("application/json", &br#"{"a":1}"#[..])
        );
        let url = Url::parse("http://127.0.0.1:8090/server/login").expect("url");
        let Body::Encrypted(enc) = Body::login(&url, serde_json::json!({"username": "u"})) else {
            panic!("plain http encrypts the login");
        };
        assert_eq!(enc.split_once(':').map(|(iv, _)| iv.len()), Some(16));
        let url = Url::parse("https://h/server/login").expect("url");
        assert!(matches!(
            Body::login(&url, serde_json::json!({})),
            Body::Json(_)
        ));
    }
}
