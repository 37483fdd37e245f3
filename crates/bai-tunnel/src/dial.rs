//! Opening one WebSocket to the server: ask the [`Connector`] for the request, resolve the host
//! (with the [`Resolver`] of the options; the addresses are cached until a dial fails), connect
//! TCP ourselves to the first address that answers (Happy Eyeballs; nodelay, keepalive), then
//! run the TLS and WebSocket handshakes, all under one timeout. A refused upgrade becomes
//! [`ConnError::Rejected`] with the server's problem+json message.
//!
//! Length: about 630 lines (resolver, address cache, the Happy-Eyeballs race, TLS and the
//! handshake under one deadline); its timing tests are in `dial/tests.rs`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::header::{self, HeaderValue};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::handshake::{generate_key, handshake, Answer, MAX_BODY};
use crate::live::{Liveness, Metered};
use crate::{BoxFuture, ConnError, Connector, Options, Problem, TlsConnector};

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

/// How long the first connection attempt runs alone before the next address is tried as well
/// (RFC 8305 §5 recommends 250 ms).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// How long resolved addresses are reused. The wall clock counts too, so a cache from before a
/// suspend (during which the monotonic clock stands still) is not trusted after it.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(300);

/// A host's addresses, to come.
type ResolveFuture = BoxFuture<'static, io::Result<Vec<SocketAddr>>>;

type ResolveFn = dyn Fn(&str, u16) -> ResolveFuture + Send + Sync;

/// How the server's host name is turned into addresses: by default the system resolver
/// (`tokio::net::lookup_host`). IP literals in the URL are used as they are, without asking it.
///
/// ```
/// use std::net::SocketAddr;
/// let mut options = bai_tunnel::Options::default();
/// options.resolver = bai_tunnel::Resolver::new(|_host: &str, port: u16| async move {
///     Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
/// });
/// ```
#[derive(Clone)]
pub struct Resolver(Arc<ResolveFn>);

impl Resolver {
    /// The system resolver (`getaddrinfo`, off the async workers).
    pub fn system() -> Self {
        Resolver::new(|host: &str, port: u16| {
            let host = host.to_owned();
            async move {
                Ok(tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .collect())
            }
        })
    }

    /// A resolver that calls `resolve(host, port)`.
    pub fn new<F, Fut>(resolve: F) -> Self
    where
        F: Fn(&str, u16) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
    {
        Resolver(Arc::new(move |host: &str, port: u16| -> ResolveFuture {
            Box::pin(resolve(host, port))
        }))
    }

    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        (self.0)(host, port).await
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::system()
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// Opens the TCP connection to one address; a seam for tests, which simulate black holes
/// in-process rather than send packets anywhere.
pub(crate) type TcpConnectFn =
    dyn Fn(SocketAddr) -> BoxFuture<'static, io::Result<TcpStream>> + Send + Sync;

/// Resolves, caches the addresses for the next connections, and connects to the first address
/// that answers.
///
/// Dialing has to survive a laptop's suspend and a change of network: cached addresses are
/// dropped whenever a dial fails in a way that may be the address's fault (a timeout as much as
/// an error), and a dial whose attempts all failed or timed out resolves again and tries the new
/// addresses, within the connect timeout.
pub(crate) struct Dialer {
    cache: Mutex<Option<CachedHost>>,
    tcp_connect: Arc<TcpConnectFn>,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer::with_tcp_connect(Arc::new(|addr| Box::pin(TcpStream::connect(addr))))
    }
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("cache", &*self.lock())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct CachedHost {
    host: String,
    port: u16,
    addrs: Arc<[SocketAddr]>,
    at: tokio::time::Instant,
    wall: SystemTime,
}

impl CachedHost {
    fn fresh(&self) -> bool {
        self.at.elapsed() < CACHE_TTL
            && SystemTime::now()
                .duration_since(self.wall)
                .is_ok_and(|age| age < CACHE_TTL)
    }
}

/// Why a round of connection attempts failed.
#[derive(Debug)]
struct RoundFailed {
    /// At least one attempt ran out of time (rather than being refused).
    timed_out: bool,
    /// The error of the attempt that ended last.
    message: String,
}

impl Dialer {
    /// A dialer that opens TCP connections with `tcp_connect`.
    pub(crate) fn with_tcp_connect(tcp_connect: Arc<TcpConnectFn>) -> Self {
        Dialer {
            cache: Mutex::new(None),
            tcp_connect,
        }
    }

    /// Opens one WebSocket, all of it (request, resolve, connect, TLS, upgrade) bounded by
    /// `options.connect_timeout`. The socket records its progress in `live`.
    pub(crate) async fn open<C: Connector + ?Sized>(
        &self,
        connector: &C,
        options: &Options,
        live: &Arc<Liveness>,
    ) -> Result<ServerWs, ConnError> {
        let timeout = options.connect_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let result = match tokio::time::timeout_at(
            deadline,
            self.open_inner(connector, options, live, deadline),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(ConnError::Timeout(timeout)),
        };
        if let Err(e) = &result {
            // Only an answer from the server (or no request at all) says nothing against its
            // addresses; after anything else, including a timeout, the next dial resolves again.
            if !matches!(
                e,
                ConnError::Rejected { .. }
                    | ConnError::Connector(_)
                    | ConnError::InvalidTarget { .. }
            ) {
                self.forget();
            }
        }
        result
    }

    async fn open_inner<C: Connector + ?Sized>(
        &self,
        connector: &C,
        options: &Options,
        live: &Arc<Liveness>,
        deadline: tokio::time::Instant,
    ) -> Result<ServerWs, ConnError> {
        let target = connector
            .target()
            .await
            .map_err(|e| ConnError::Connector(e.to_string()))?;
        let mut request = target.request;
        let (host, port) = prepare_request(&mut request)?;
        let secure = request.uri().scheme_str() == Some("wss");
        let tcp = self.connect(&host, port, options, deadline).await?;
        tracing::debug!(peer = ?tcp.peer_addr().ok(), uri = %redacted_uri(request.uri()), "upgrading");
        let tcp = Metered::new(tcp, live.clone());
        let tls = match (secure, target.tls) {
            (false, _) | (true, Some(TlsConnector::Plain)) => None,
            (true, Some(TlsConnector::Rustls(config))) => Some(config),
            (true, None) => Some(default_tls().await?),
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

    /// Connects to `host:port`: races its addresses (see [`race`]), each attempt limited to a
    /// third of the connect timeout. When they all fail, the cached addresses are dropped, and
    /// the name is resolved again and the new addresses tried, if the addresses came from the
    /// cache or an attempt timed out (a black hole, typically after a change of network), for as
    /// long as `deadline` allows.
    async fn connect(
        &self,
        host: &str,
        port: u16,
        options: &Options,
        deadline: tokio::time::Instant,
    ) -> Result<TcpStream, ConnError> {
        let attempt_timeout = options.connect_timeout / 3;
        let mut use_cache = true;
        loop {
            let (addrs, cached) = self
                .resolve(host, port, &options.resolver, use_cache)
                .await?;
            let tcp_connect = &self.tcp_connect;
            match race(&addrs, |addr| tcp_connect(addr), attempt_timeout).await {
                Ok((tcp, addr)) => {
                    tracing::debug!(%addr, "connected");
                    tune_socket(&tcp, options.tcp_keepalive);
                    return Ok(tcp);
                }
                Err(failed) => {
                    // The host may have moved: resolve again, now or next time.
                    self.forget();
                    let again =
                        (cached || failed.timed_out) && tokio::time::Instant::now() < deadline;
                    if !again {
                        return Err(ConnError::Connect {
                            addr: format!("{host}:{port}"),
                            message: failed.message,
                        });
                    }
                    tracing::debug!(host, error = %failed.message, "resolving again");
                    use_cache = false;
                }
            }
        }
    }

    /// The addresses of `host:port` (from the cache when `use_cache` and it is fresh), and
    /// whether they came from the cache.
    async fn resolve(
        &self,
        host: &str,
        port: u16,
        resolver: &Resolver,
        use_cache: bool,
    ) -> Result<(Arc<[SocketAddr]>, bool), ConnError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok((Arc::from([SocketAddr::new(ip, port)]), false));
        }
        if use_cache {
            if let Some(cached) = self.lock().as_ref() {
                if cached.host == host && cached.port == port && cached.fresh() {
                    return Ok((cached.addrs.clone(), true));
                }
            }
        }
        let addrs = resolver
            .resolve(host, port)
            .await
            .map_err(|e| ConnError::Resolve {
                host: host.to_owned(),
                message: e.to_string(),
            })?;
        if addrs.is_empty() {
            return Err(ConnError::Resolve {
                host: host.to_owned(),
                message: "no addresses".to_owned(),
            });
        }
        tracing::debug!(host, ?addrs, "resolved");
        let addrs: Arc<[SocketAddr]> = interleave_families(addrs).into();
        *self.lock() = Some(CachedHost {
            host: host.to_owned(),
            port,
            addrs: addrs.clone(),
            at: tokio::time::Instant::now(),
            wall: SystemTime::now(),
        });
        Ok((addrs, false))
    }

    /// Drops the cached addresses.
    fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedHost>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Orders addresses for [`race`] as RFC 8305 §4 does: the resolver's first address first, then
/// alternating between the address families, each in the resolver's order.
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut preferred, mut other): (VecDeque<_>, VecDeque<_>) =
        addrs.iter().copied().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        match (preferred.pop_front(), other.pop_front()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Happy Eyeballs (RFC 8305 §5): starts connecting to the first address; whenever an attempt
/// fails, or [`ATTEMPT_DELAY`] passes without a connection, starts the next one as well. Each
/// attempt may take `attempt_timeout`. The first connection wins; the other attempts are
/// dropped (their sockets closed) on return. Fails when every address failed or timed out.
async fn race<T, F, Fut>(
    addrs: &[SocketAddr],
    connect: F,
    attempt_timeout: Duration,
) -> Result<(T, SocketAddr), RoundFailed>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut next = addrs.iter().copied();
    let mut attempts = FuturesUnordered::new();
    let start = |addr: SocketAddr| {
        let attempt = tokio::time::timeout(attempt_timeout, connect(addr));
        async move { (addr, attempt.await) }
    };
    let mut failed = RoundFailed {
        timed_out: false,
        message: "no addresses".to_owned(),
    };
    let mut next_at = tokio::time::Instant::now();
    loop {
        let more = next.len() > 0;
        if attempts.is_empty() || (more && tokio::time::Instant::now() >= next_at) {
            let Some(addr) = next.next() else {
                return Err(failed);
            };
            attempts.push(start(addr));
            next_at = tokio::time::Instant::now() + ATTEMPT_DELAY;
            continue;
        }
        tokio::select! {
            Some((addr, result)) = attempts.next() => match result {
                Ok(Ok(stream)) => return Ok((stream, addr)),
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "connect failed");
                    failed.message = e.to_string();
                    // The next address starts now.
                    next_at = tokio::time::Instant::now();
                }
                Err(_) => {
                    tracing::debug!(%addr, ?attempt_timeout, "connect timed out");
                    failed.timed_out = true;
                    failed.message = format!("timed out after {attempt_timeout:?}");
                    next_at = tokio::time::Instant::now();
                }
            },
            () = tokio::time::sleep_until(next_at), if more => {}
            else => return Err(failed),
        }
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
    let problem = Problem::parse_any(raw).map(Box::new);
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
mod tests;
