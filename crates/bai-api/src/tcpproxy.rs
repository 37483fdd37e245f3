//! The tcpproxy WebSocket request: what a tunnel needs to open one WebSocket per connection
//! without knowing anything about auth.

use std::sync::Arc;

use bai_problem::header as h;
use http::HeaderValue;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use url::Url;

use crate::credentials::{Credentials, Stamp};
use crate::error::{redact, Error, Result};
use crate::sign;
use crate::version::ApiVersion;
use crate::wire::USER_AGENT;

/// A ready WebSocket handshake request plus the TLS configuration for `wss`.
///
/// Open it with `tokio_tungstenite::connect_async_tls_with_config(ws.request, None, false,
/// ws.tls.map(tokio_tungstenite::Connector::Rustls))`.
///
/// **Logging:** the request carries credentials (`Cookie` and `X-BackendAI-SessionID` in
/// session mode, `Authorization` in API mode). This type's `Debug` redacts them, but
/// `tungstenite` itself logs the raw handshake request, headers included, at `trace` level
/// through the `log` crate. A caller that installs a log/tracing subscriber must cap the
/// `tungstenite` (and `tokio_tungstenite`) targets at `debug`, e.g. with the filter
/// `tungstenite=debug,tokio_tungstenite=debug`, or a trace log leaks the login.
pub struct WsRequest {
    /// The handshake request: Host, Connection, Upgrade, Sec-WebSocket-Version/-Key, auth.
    pub request: http::Request<()>,
    /// The rustls configuration for `wss` (None for `ws`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Headers whose values are credentials: never printed by [`WsRequest`]'s `Debug`.
const SECRET_HEADERS: [&str; 3] = ["cookie", "authorization", "x-backendai-sessionid"];

impl std::fmt::Debug for WsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Headers<'a>(&'a http::HeaderMap);
        impl std::fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut m = f.debug_map();
                for (name, value) in self.0 {
                    let secret = value.is_sensitive()
                        || SECRET_HEADERS.contains(&name.as_str().to_ascii_lowercase().as_str());
                    if secret {
                        m.entry(&name.as_str(), &"<redacted>");
                    } else {
                        m.entry(&name.as_str(), &value.to_str().unwrap_or("<binary>"));
                    }
                }
                m.finish()
            }
        }
        let uri = self.request.uri().to_string();
        let uri = Url::parse(&uri).map(|u| redact(&u)).unwrap_or(uri);
        f.debug_struct("WsRequest")
            .field("method", self.request.method())
            .field("uri", &uri)
            .field("headers", &Headers(self.request.headers()))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

struct Inner {
    url: Url,
    version: ApiVersion,
    /// The client's credentials: in session mode its live login id cell, so a re-login is
    /// seen by the next [`TcpproxyTarget::request`].
    auth: Credentials,
    tls: Option<Arc<rustls::ClientConfig>>,
    insecure: bool,
}

/// Where a session's app tunnel goes; makes a fresh authenticated request per connection.
/// Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct TcpproxyTarget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TcpproxyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpproxyTarget")
            .field("url", &redact(&self.inner.url))
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl TcpproxyTarget {
    pub(crate) fn new(
        url: Url,
        version: ApiVersion,
        auth: Credentials,
        tls: Option<Arc<rustls::ClientConfig>>,
        insecure: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                url,
                version,
                auth,
                tls,
                insecure,
            }),
        }
    }

    /// The `ws://` or `wss://` URL (no credentials in it).
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// Builds a fresh handshake request (new key, new date and signature in API mode).
    ///
    /// In session mode it carries the client's **current** login id (the target shares it
    /// with the [`crate::Client`] that made it), so a re-login on that client is picked up
    /// by the next connection.
    ///
    /// **Logging:** `tungstenite` logs the raw handshake request, credentials included, at
    /// `trace` level (through the `log` crate). Cap the `tungstenite` and `tokio_tungstenite`
    /// targets at `debug` in any subscriber. [`WsRequest`]'s own `Debug` redacts them.
    pub fn request(&self) -> Result<WsRequest> {
        let inner = &*self.inner;
        if inner.insecure && inner.tls.is_some() {
            tracing::warn!(
                url = %redact(&inner.url),
                "opening a WebSocket with TLS certificate verification DISABLED (insecure option)"
            );
        }
        let mut request = inner
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::invalid_input(format!("bad WebSocket URL: {e}")))?;
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| sign::host_header(&inner.url));
        let version = inner.version.to_string();
        let pq = sign::path_and_query(&inner.url);
        let headers = request.headers_mut();
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        headers.insert(
            h::VERSION,
            HeaderValue::from_str(&version).expect("BUG: a version is ASCII"),
        );
        // As the Python client: signed as application/octet-stream, no Content-Type sent.
        inner.auth.stamp(
            headers,
            &Stamp {
                method: "GET",
                path_and_query: &pq,
                host: &host,
                content_type: "application/octet-stream",
                version: &version,
            },
        )?;
        Ok(WsRequest {
            request,
            tls: inner.tls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn target(auth: Credentials) -> TcpproxyTarget {
        TcpproxyTarget::new(
            Url::parse("ws://127.0.0.1:8081/stream/session/mysess/tcpproxy?app=sshd").expect("url"),
            "v9.20250722".parse().expect("version"),
            auth,
            None,
            false,
        )
    }

    #[test]
    fn api_request_is_signed_without_content_type() {
        let t = target(Credentials::Keypair {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        });
        let r = t.request().expect("request").request;
        let h = r.headers();
        assert_eq!(h["host"], "127.0.0.1:8081");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-version"], "13");
        assert!(h.contains_key("sec-websocket-key"));
        assert!(!h.contains_key("content-type"));
        assert_eq!(h["x-backendai-version"], "v9.20250722");
        assert_eq!(h["x-backendai-domain"], "default");
        let date = h["date"].to_str().expect("date").to_owned();
        let d = chrono::DateTime::parse_from_rfc3339(&date)
            .expect("iso date")
            .with_timezone(&Utc);
        let expected = sign::authorization(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &sign::SignInput {
                method: "GET",
                path_and_query: "/stream/session/mysess/tcpproxy?app=sshd",
                date_str: &date,
                date: d,
                host: "127.0.0.1:8081",
                content_type: "application/octet-stream",
                version: "v9.20250722",
            },
        );
        assert_eq!(h["authorization"], expected.as_str());
        // A fresh key each time.
        let r2 = t.request().expect("request").request;
        assert_ne!(h["sec-websocket-key"], r2.headers()["sec-websocket-key"]);
    }

    fn cell(id: Option<&str>) -> crate::credentials::SessionCell {
        std::sync::Arc::new(std::sync::Mutex::new(id.map(crate::Sensitive::from)))
    }

    #[test]
    fn session_request_carries_id_and_debug_hides_it() {
        let t = target(Credentials::Session(cell(Some("s3cr3t-id"))));
        let r = t.request().expect("request");
        assert_eq!(r.request.headers()["x-backendai-sessionid"], "s3cr3t-id");
        assert_eq!(r.request.headers()["cookie"], "AIOHTTP_SESSION=s3cr3t-id");
        assert!(!r.request.headers().contains_key("x-backendai-domain"));
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", r.request).contains("s3cr3t"));
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("\"cookie\": \"<redacted>\""), "{dbg}");
        assert!(
            dbg.contains("\"x-backendai-sessionid\": \"<redacted>\""),
            "{dbg}"
        );
        assert!(dbg.contains("tcpproxy?app=sshd"), "{dbg}");
    }

    #[test]
    fn session_request_follows_the_shared_id() {
        let c = cell(Some("first"));
        let t = target(Credentials::Session(c.clone()));
        *crate::credentials::lock_cell(&c) = Some("second".into());
        let r = t.request().expect("request").request;
        assert_eq!(r.headers()["x-backendai-sessionid"], "second");
        *crate::credentials::lock_cell(&c) = None;
        let r = t.request().expect("request").request;
        assert!(!r.headers().contains_key("x-backendai-sessionid"));
        assert!(!r.headers().contains_key("cookie"));
    }

    #[test]
    fn api_request_debug_hides_the_signature() {
        let t = target(Credentials::Keypair {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        });
        let r = t.request().expect("request");
        let authz = r.request.headers()["authorization"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let sig = authz.rsplit(':').next().expect("sig").to_owned();
        for dbg in [format!("{r:?}"), format!("{t:?}")] {
            assert!(!dbg.contains(&sig), "{dbg}");
            assert!(!dbg.contains("AKIAIOSFODNN7EXAMPLE"), "{dbg}");
            assert!(!dbg.contains("EXAMPLEKEY"), "{dbg}");
        }
        assert!(format!("{r:?}").contains("\"authorization\": \"<redacted>\""));
    }
}
