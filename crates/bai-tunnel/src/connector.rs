//! What the caller hands the tunnel: a [`Connector`] that builds, for every new connection, the
//! WebSocket request to open (URL, auth headers, signature with a fresh date) and optionally the
//! TLS connector. The tunnel knows nothing of HTTP auth; bai-api provides the real connector.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed error from a [`Connector`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, as returned by [`Connector::target`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One WebSocket to open: the upgrade request and how to do TLS.
pub struct Target {
    /// The request, e.g. `GET wss://host/stream/session/NAME/tcpproxy?app=sshd` with its auth
    /// headers. The scheme is `ws`/`wss` (`http`/`https` are accepted and mapped). Headers the
    /// WebSocket handshake needs (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`) are added when missing; `Sec-WebSocket-Extensions` is removed
    /// (permessage-deflate stays off).
    pub request: http::Request<()>,
    /// The TLS connector for `wss`: `Rustls` with the caller's configuration, `Plain` for no TLS.
    /// `None` uses the platform's root certificates (loaded once per process).
    pub tls: Option<TlsConnector>,
}

/// How a `wss` target does TLS.
#[derive(Clone)]
#[non_exhaustive]
pub enum TlsConnector {
    /// No TLS even for `wss` (a TLS-terminating proxy in front, tests).
    Plain,
    /// TLS with this rustls configuration (the caller's roots, client certificates, or no
    /// verification).
    Rustls(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsConnector::Plain => f.write_str("Plain"),
            TlsConnector::Rustls(_) => f.write_str("Rustls(..)"),
        }
    }
}

impl std::fmt::Debug for Target {
    /// Shows the method and URL without the query, never the headers (they carry credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uri = self.request.uri();
        f.debug_struct("Target")
            .field("method", self.request.method())
            .field("scheme", &uri.scheme_str())
            .field("authority", &uri.authority().map(|a| a.as_str()))
            .field("path", &uri.path())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// A target with the given request and the default TLS handling.
    pub fn new(request: http::Request<()>) -> Self {
        Target { request, tls: None }
    }

    /// A plain `GET` of `url` with no extra headers (tests, unauthenticated servers).
    pub fn from_url(url: &str) -> Result<Self, http::Error> {
        let request = http::Request::get(url).body(())?;
        Ok(Target::new(request))
    }
}

/// Produces the WebSocket request for each new connection.
///
/// Called once per accepted TCP connection, so a signed request carries a fresh date. A closure
/// `Fn() -> Result<Target, E>` is a `Connector` too.
pub trait Connector: Send + Sync + 'static {
    /// Builds the request for one new WebSocket.
    fn target(&self) -> BoxFuture<'_, Result<Target, BoxError>>;
}

impl<F, E> Connector for F
where
    F: Fn() -> Result<Target, E> + Send + Sync + 'static,
    E: Into<BoxError>,
{
    fn target(&self) -> BoxFuture<'_, Result<Target, BoxError>> {
        let result = self().map_err(Into::into);
        Box::pin(std::future::ready(result))
    }
}
