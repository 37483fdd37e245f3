//! The tcpproxy WebSocket request: what a tunnel needs to open one WebSocket per connection
//! without knowing anything about auth.

use std::sync::Arc;

use chrono::Utc;
use http::HeaderValue;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use url::Url;

use crate::client::{SESSION_COOKIE, SESSION_HEADER, USER_AGENT, VERSION_HEADER};
use crate::error::{redact, Error, Result};
use crate::sensitive::Sensitive;
use crate::sign;
use crate::version::ApiVersion;

/// A ready WebSocket handshake request plus the TLS configuration for `wss`.
///
/// Open it with `tokio_tungstenite::connect_async_tls_with_config(ws.request, None, false,
/// ws.tls.map(tokio_tungstenite::Connector::Rustls))`.
#[derive(Debug)]
pub struct WsRequest {
    /// The handshake request: Host, Connection, Upgrade, Sec-WebSocket-Version/-Key, auth.
    pub request: http::Request<()>,
    /// The rustls configuration for `wss` (None for `ws`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Clone)]
pub(crate) enum TargetAuth {
    Session(Option<Sensitive<String>>),
    Api {
        access_key: Sensitive<String>,
        secret_key: Sensitive<String>,
    },
}

struct Inner {
    url: Url,
    version: ApiVersion,
    auth: TargetAuth,
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

fn header(v: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(v).map_err(|_| Error::invalid_input("invalid characters in a header"))
}

fn sensitive_header(v: &str) -> Result<HeaderValue> {
    let mut h = header(v)?;
    h.set_sensitive(true);
    Ok(h)
}

impl TcpproxyTarget {
    pub(crate) fn new(
        url: Url,
        version: ApiVersion,
        auth: TargetAuth,
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
        let h = request.headers_mut();
        h.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        h.insert(VERSION_HEADER, header(&version)?);
        match &inner.auth {
            TargetAuth::Session(Some(id)) => {
                h.insert(SESSION_HEADER, sensitive_header(id.expose())?);
                h.insert(
                    http::header::COOKIE,
                    sensitive_header(&format!("{SESSION_COOKIE}={}", id.expose()))?,
                );
            }
            TargetAuth::Session(None) => {}
            TargetAuth::Api {
                access_key,
                secret_key,
            } => {
                let now = Utc::now();
                let date_str = sign::python_iso_date(now);
                let pq = sign::path_and_query(&inner.url);
                // As the Python client: signed as application/octet-stream, no Content-Type sent.
                let input = sign::SignInput {
                    method: "GET",
                    path_and_query: &pq,
                    date_str: &date_str,
                    date: now,
                    host: &host,
                    content_type: "application/octet-stream",
                    version: &version,
                };
                let authz = sign::authorization(access_key.expose(), secret_key.expose(), &input);
                h.insert(http::header::DATE, header(&date_str)?);
                h.insert(http::header::AUTHORIZATION, sensitive_header(&authz)?);
            }
        }
        Ok(WsRequest {
            request,
            tls: inner.tls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(auth: TargetAuth) -> TcpproxyTarget {
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
        let t = target(TargetAuth::Api {
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

    #[test]
    fn session_request_carries_id_and_debug_hides_it() {
        let t = target(TargetAuth::Session(Some("s3cr3t-id".into())));
        let r = t.request().expect("request");
        assert_eq!(r.request.headers()["x-backendai-sessionid"], "s3cr3t-id");
        assert_eq!(r.request.headers()["cookie"], "AIOHTTP_SESSION=s3cr3t-id");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", r.request).contains("s3cr3t"));
    }
}
