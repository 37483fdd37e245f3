//! Opening one WebSocket to the server: ask the [`Connector`] for the request, resolve the host
//! (once per tunnel: the addresses are cached), connect TCP ourselves (nodelay, keepalive), then
//! run the TLS and WebSocket handshakes under one timeout. A refused upgrade becomes
//! [`ConnError::Rejected`] with the server's problem+json message.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderValue};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use crate::handshake::{handshake, Answer, MAX_BODY};
use crate::live::{Liveness, Metered};
use crate::{ConnError, Connector, Options, Problem, TlsConnector};

/// An open WebSocket to the server: the stream after the handshake, and the bytes of frames
/// that arrived together with the `101` response.
pub(crate) struct ServerWs<S = ServerIo> {
    /// The connection.
    pub io: S,
    /// Frame bytes already read.
    pub read_ahead: BytesMut,
}

/// The socket to the server, plain or TLS.
pub(crate) enum ServerIo {
    /// `ws://`, or `wss://` with [`TlsConnector::Plain`].
    Plain(Metered<TcpStream>),
    /// `wss://`.
    Tls(Box<TlsStream<Metered<TcpStream>>>),
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(s) => s.is_write_vectored(),
            ServerIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS configuration used when the [`Connector`] gives none: the platform's roots, loaded
/// (off the async workers) on first use and kept once that worked.
async fn default_tls() -> Result<Arc<rustls::ClientConfig>, ConnError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let built = tokio::task::spawn_blocking(build_default_tls)
        .await
        .map_err(|e| ConnError::Handshake(format!("loading the root certificates: {e}")))??;
    Ok(CONFIG.get_or_init(|| built).clone())
}

fn build_default_tls() -> Result<Arc<rustls::ClientConfig>, ConnError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(ConnError::Handshake(
            "no trusted root certificates were found on this system".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| ConnError::Handshake(e.to_string()))
}

/// Resolves once, connects many times.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    cache: Mutex<Option<CachedHost>>,
}

#[derive(Debug, Clone)]
struct CachedHost {
    host: String,
    port: u16,
    addrs: Arc<[SocketAddr]>,
}

impl Dialer {
    /// Opens one WebSocket, all of it (request, resolve, connect, TLS, upgrade) bounded by
    /// `options.connect_timeout`. The socket records its progress in `live`.
    pub(crate) async fn open<C: Connector + ?Sized>(
        &self,
        connector: &C,
        options: &Options,
        live: &Arc<Liveness>,
    ) -> Result<ServerWs, ConnError> {
        let timeout = options.connect_timeout;
        match tokio::time::timeout(timeout, self.open_inner(connector, options, live)).await {
            Ok(result) => result,
            Err(_) => Err(ConnError::Timeout(timeout)),
        }
    }

    async fn open_inner<C: Connector + ?Sized>(
        &self,
        connector: &C,
        options: &Options,
        live: &Arc<Liveness>,
    ) -> Result<ServerWs, ConnError> {
        let target = connector
            .target()
            .await
            .map_err(|e| ConnError::Connector(e.to_string()))?;
        let mut request = target.request;
        let (host, port) = prepare_request(&mut request)?;
        let secure = request.uri().scheme_str() == Some("wss");
        let tcp = self.connect(&host, port, options.tcp_keepalive).await?;
        tracing::debug!(peer = ?tcp.peer_addr().ok(), uri = %redacted_uri(request.uri()), "upgrading");
        let tcp = Metered::new(tcp, live.clone());
        let tls = match (secure, target.tls) {
            (false, _) | (true, Some(TlsConnector::Plain)) => None,
            (true, Some(TlsConnector::Rustls(config))) => Some(config),
            (true, None) => Some(default_tls().await?),
            (true, Some(_)) => {
                return Err(ConnError::Handshake(
                    "this TLS connector kind is not supported".to_owned(),
                ))
            }
        };
        let mut io = match tls {
            None => ServerIo::Plain(tcp),
            Some(config) => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| ConnError::Handshake(format!("invalid TLS server name: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ConnError::Handshake(format!("TLS: {e}")))?;
                ServerIo::Tls(Box::new(stream))
            }
        };
        match handshake(&mut io, &request).await? {
            Answer::Open(read_ahead) => {
                tracing::debug!("WebSocket open");
                Ok(ServerWs { io, read_ahead })
            }
            Answer::Refused { status, body } => Err(rejected(status, &body)),
        }
    }

    async fn connect(
        &self,
        host: &str,
        port: u16,
        keepalive: Option<Duration>,
    ) -> Result<TcpStream, ConnError> {
        let (addrs, cached) = self.resolve(host, port).await?;
        let mut last_error = None;
        for addr in addrs.iter() {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    tune_socket(&tcp, keepalive);
                    return Ok(tcp);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "connect failed");
                    last_error = Some(e);
                }
            }
        }
        if cached {
            // The host may have moved: resolve again next time.
            *self.lock() = None;
        }
        Err(ConnError::Connect {
            addr: format!("{host}:{port}"),
            message: last_error.map_or_else(|| "no addresses".to_owned(), |e| e.to_string()),
        })
    }

    /// The addresses of `host:port`, and whether they came from the cache.
    async fn resolve(&self, host: &str, port: u16) -> Result<(Arc<[SocketAddr]>, bool), ConnError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok((Arc::from([SocketAddr::new(ip, port)]), false));
        }
        if let Some(cached) = self.lock().as_ref() {
            if cached.host == host && cached.port == port {
                return Ok((cached.addrs.clone(), true));
            }
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ConnError::Resolve {
                host: host.to_owned(),
                message: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(ConnError::Resolve {
                host: host.to_owned(),
                message: "no addresses".to_owned(),
            });
        }
        tracing::debug!(host, ?addrs, "resolved");
        let addrs: Arc<[SocketAddr]> = addrs.into();
        *self.lock() = Some(CachedHost {
            host: host.to_owned(),
            port,
            addrs: addrs.clone(),
        });
        Ok((addrs, false))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedHost>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// TCP_NODELAY (SSH is interactive) and keepalive (notice dead peers, keep NATs open).
pub(crate) fn tune_socket(tcp: &TcpStream, keepalive: Option<Duration>) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    if let Some(idle) = keepalive {
        let params = socket2::TcpKeepalive::new().with_time(idle).with_interval(
            idle.min(Duration::from_secs(10))
                .max(Duration::from_secs(1)),
        );
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&params) {
            tracing::debug!(error = %e, "could not set TCP keepalive");
        }
    }
}

/// Checks the URL, maps `http(s)` to `ws(s)`, adds the handshake headers the caller left out and
/// strips extension offers. Returns the host (without IPv6 brackets) and port to connect to.
fn prepare_request(request: &mut http::Request<()>) -> Result<(String, u16), ConnError> {
    let url = redacted_uri(request.uri());
    let invalid = |reason: &str| ConnError::InvalidTarget {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    let uri = request.uri().clone();
    let (scheme, default_port) = match uri.scheme_str() {
        Some("ws") | Some("http") => ("ws", 80),
        Some("wss") | Some("https") => ("wss", 443),
        Some(_) => return Err(invalid("the scheme must be ws, wss, http or https")),
        None => return Err(invalid("the URL must be absolute")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| invalid("the URL has no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(invalid("the URL has no host"));
    }
    let port = authority.port_u16().unwrap_or(default_port);
    if uri.scheme_str() != Some(scheme) {
        let mut parts = uri.into_parts();
        parts.scheme = Some(
            scheme
                .parse()
                .map_err(|_| invalid("could not rewrite the scheme"))?,
        );
        *request.uri_mut() =
            http::Uri::from_parts(parts).map_err(|_| invalid("could not rewrite the scheme"))?;
    }
    let host_header = match authority.port_u16() {
        Some(p) if p != default_port => format!("{}:{p}", authority.host()),
        _ => authority.host().to_owned(),
    };
    let headers = request.headers_mut();
    if !headers.contains_key(header::HOST) {
        let value = HeaderValue::from_str(&host_header)
            .map_err(|_| invalid("the host is not a valid header"))?;
        headers.insert(header::HOST, value);
    }
    let defaults: [(header::HeaderName, &str); 3] = [
        (header::CONNECTION, "Upgrade"),
        (header::UPGRADE, "websocket"),
        (header::SEC_WEBSOCKET_VERSION, "13"),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::SEC_WEBSOCKET_KEY) {
        let key = HeaderValue::from_str(&generate_key())
            .map_err(|_| invalid("could not generate a WebSocket key"))?;
        headers.insert(header::SEC_WEBSOCKET_KEY, key);
    }
    // permessage-deflate stays off: it costs CPU on data that SSH already encrypted.
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    Ok((host, port))
}

/// The URI without its query (which may carry tokens), for logs and errors.
fn redacted_uri(uri: &http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

/// A refused upgrade: the status, the problem+json when the body is one, and the body's text.
fn rejected(status: u16, raw: &[u8]) -> ConnError {
    let problem = Problem::parse(raw).map(Box::new);
    let body = if raw.is_empty() {
        None
    } else {
        let text = String::from_utf8_lossy(raw);
        let mut end = text.len().min(MAX_BODY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(text[..end].trim().to_owned()).filter(|t| !t.is_empty())
    };
    ConnError::Rejected {
        status,
        problem,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_keeps_the_status_and_the_raw_body() {
        let json = r#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such session."}"#;
        let e = rejected(404, json.as_bytes());
        match &e {
            ConnError::Rejected {
                status,
                problem,
                body,
            } => {
                assert_eq!(*status, 404);
                assert_eq!(
                    problem.as_ref().and_then(|p| p.title.as_deref()),
                    Some("No such session.")
                );
                assert_eq!(
                    body.as_deref(),
                    Some(json),
                    "the raw body, for callers to re-parse"
                );
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
        assert!(
            e.to_string()
                .ends_with("HTTP 404 Not Found: No such session."),
            "{e}"
        );

        let long = "x".repeat(10_000);
        let e = rejected(502, long.as_bytes());
        let ConnError::Rejected {
            body: Some(body), ..
        } = &e
        else {
            panic!("expected a body: {e:?}");
        };
        assert_eq!(body.len(), MAX_BODY);
        assert!(e.to_string().len() < 1024, "the message stays short");
    }

    #[test]
    fn prepare_request_fills_handshake_headers() {
        let mut req = http::Request::get("https://example.com/stream/session/s/tcpproxy?app=sshd")
            .header("Sec-WebSocket-Extensions", "permessage-deflate")
            .body(())
            .expect("request");
        let (host, port) = prepare_request(&mut req).expect("valid");
        assert_eq!((host.as_str(), port), ("example.com", 443));
        assert_eq!(req.uri().scheme_str(), Some("wss"));
        assert_eq!(req.uri().query(), Some("app=sshd"));
        let h = req.headers();
        assert_eq!(h[header::HOST], "example.com");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert!(h.contains_key(header::SEC_WEBSOCKET_KEY));
        assert!(!h.contains_key(header::SEC_WEBSOCKET_EXTENSIONS));

        let mut req = http::Request::get("ws://[::1]:8081/x")
            .header("Host", "custom:1")
            .body(())
            .expect("request");
        let (host, port) = prepare_request(&mut req).expect("valid");
        assert_eq!((host.as_str(), port), ("::1", 8081));
        assert_eq!(req.headers()[header::HOST], "custom:1");

        let mut req = http::Request::get("/relative").body(()).expect("request");
        assert!(matches!(
            prepare_request(&mut req),
            Err(ConnError::InvalidTarget { .. })
        ));
    }
}
