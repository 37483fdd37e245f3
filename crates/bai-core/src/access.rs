//! SSH access: opening a local tunnel to a session's app (preferred port with fallback, ready
//! only once the app answers through it) and the stdio proxy behind `ProxyCommand`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bai_api::TcpproxyTarget;
use bai_tunnel::{
    BindOptions, BoxError, BoxFuture, ConnError, Connector, Event, Options, PortChoice, Summary,
    Target, TlsConnector, Tunnel, TunnelHandle,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::registry::LoginId;
use crate::{Connection, Error, Result};

/// The app SSH goes through.
pub const SSHD_APP: &str = "sshd";
/// How long the readiness probe waits for the SSH banner.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// A [`Connector`] that asks bai-api for a fresh, authenticated tcpproxy request for every
/// connection (a new signature date in API mode). Clones share the target, so the registry
/// can give a running tunnel the credentials of a new login of the same account
/// ([`TcpproxyConnector::replace_target`]); connections already open keep theirs.
#[derive(Debug, Clone)]
pub struct TcpproxyConnector {
    target: Arc<RwLock<TcpproxyTarget>>,
}

impl TcpproxyConnector {
    /// Wraps a target from `Client::tcpproxy_target`.
    pub fn new(target: TcpproxyTarget) -> Self {
        TcpproxyConnector {
            target: Arc::new(RwLock::new(target)),
        }
    }

    /// New connections use `target` (its URL and credentials) from now on. The caller makes
    /// sure it is the same account on the same server (see `Workspace::login`).
    pub fn replace_target(&self, target: TcpproxyTarget) {
        *self.target.write().unwrap_or_else(|e| e.into_inner()) = target;
    }
}

impl Connector for TcpproxyConnector {
    fn target(&self) -> BoxFuture<'_, std::result::Result<Target, BoxError>> {
        let target = self
            .target
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let result = target
            .request()
            .map(|ws| Target {
                request: ws.request,
                tls: ws.tls.map(TlsConnector::Rustls),
            })
            .map_err(BoxError::from);
        Box::pin(std::future::ready(result))
    }
}

/// How to check that a tunnel works before calling it ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// No check.
    None,
    /// Open one connection through the tunnel and read the `SSH-2.0-` banner.
    SshBanner,
}

/// What to open.
#[derive(Debug, Clone)]
pub struct TunnelRequest {
    /// The session name (or id).
    pub session: String,
    /// The session's id when the caller knows it (the registry keys on it).
    pub session_id: Option<String>,
    /// The app, e.g. `sshd`.
    pub app: String,
    /// Where to listen.
    pub bind: BindOptions,
    /// Tunnel tunables.
    pub options: Options,
    /// The readiness check.
    pub probe: Probe,
}

impl TunnelRequest {
    /// A tunnel to `app` of `session` on loopback: `port` (or the profile's preferred SSH port
    /// for `sshd`), falling back as the profile allows; the SSH banner is probed for `sshd`.
    pub fn new(conn: &Connection, session: &str, app: &str, port: Option<u16>) -> Self {
        let p = conn.profile();
        let preferred = port.or(if app == SSHD_APP {
            p.preferred_ssh_port
        } else {
            None
        });
        let mut bind = BindOptions::loopback(preferred);
        bind.fallback = p.port_fallback;
        TunnelRequest {
            session: session.to_owned(),
            session_id: None,
            app: app.to_owned(),
            bind,
            options: Options::default(),
            probe: if app == SSHD_APP {
                Probe::SshBanner
            } else {
                Probe::None
            },
        }
    }
}

/// A running tunnel: dropping it (or its handle) stops it.
#[derive(Debug)]
pub struct OpenTunnel {
    /// The login that opened it (the tunnel signs its requests with that login).
    pub login: LoginId,
    /// The session as the caller named it.
    pub session: String,
    /// The session's id, when known.
    pub session_id: Option<String>,
    /// The app.
    pub app: String,
    /// The handle (stats, events, stop).
    pub handle: TunnelHandle,
    /// How the port was chosen.
    pub choice: PortChoice,
    /// A one-line explanation of the port choice ("port 9922 cannot be used (…); using …").
    pub port_note: String,
    /// The SSH banner read by the probe, if probed.
    pub banner: Option<String>,
    /// Where its connections go and with which credentials (`None`: a tunnel not opened by
    /// [`Connection::open_tunnel`], e.g. in tests).
    pub connector: Option<TcpproxyConnector>,
}

impl OpenTunnel {
    /// The local address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// `tcp://127.0.0.1:PORT`, as the Python client prints it.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.local_addr())
    }

    /// Whether the preferred port was taken and another one is used.
    pub fn fell_back(&self) -> bool {
        matches!(self.choice, PortChoice::Fallback { .. })
    }
}

fn is_network(e: &ConnError) -> bool {
    match e {
        ConnError::Closed { code, .. } => *code != 1013,
        ConnError::Rejected { status, .. } => *status >= 500 && *status != 502,
        _ => true,
    }
}

impl Connection {
    /// The tcpproxy target of `(session, app)`, after checking `/stream/session/{s}/apps` has
    /// the app (so errors are clear even in session mode, where a refused upgrade is an opaque
    /// 502).
    pub async fn tcpproxy_target(&self, session: &str, app: &str) -> Result<TcpproxyTarget> {
        self.client()
            .tcpproxy_target(session, app)
            .await
            .map_err(|e| self.map_err(e))
    }

    /// Opens a tunnel: checks the app, binds (preferred port, fallback), serves, and probes.
    pub async fn open_tunnel(&self, req: TunnelRequest) -> Result<OpenTunnel> {
        let target = self.tcpproxy_target(&req.session, &req.app).await?;
        let bound =
            bai_tunnel::bind(&req.bind)
                .await
                .map_err(|e| match (&e, req.bind.preferred_port) {
                    (bai_tunnel::Error::Bind { source, .. }, Some(port))
                        if source.kind() == std::io::ErrorKind::AddrInUse =>
                    {
                        Error::PortInUse { port }
                    }
                    _ => Error::Tunnel(e),
                })?;
        let port_note = bound.describe();
        let choice = bound.choice.clone();
        let connector = TcpproxyConnector::new(target);
        let tunnel = Tunnel::new(bound.listener, connector.clone(), req.options.clone())?;
        let mut events = tunnel.subscribe();
        let handle = tunnel.spawn();
        tracing::info!(session = %req.session, app = %req.app, addr = %handle.local_addr(), "tunnel listening");
        let banner = match req.probe {
            Probe::None => None,
            Probe::SshBanner => match probe_ssh_banner(handle.local_addr(), PROBE_TIMEOUT).await {
                Ok(b) => Some(b),
                Err(detail) => {
                    // The tunnel's own event says why (refused upgrade, close 1013, …).
                    let mut failure: Option<ConnError> = None;
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
                    while failure.is_none() {
                        match tokio::time::timeout_at(deadline, events.recv()).await {
                            Ok(Ok(Event::Failed { error, .. })) => failure = Some(error),
                            Ok(Ok(_)) => {}
                            _ => break,
                        }
                    }
                    handle.cancel();
                    return Err(match failure {
                        Some(e) => Error::NotReady {
                            session: req.session,
                            app: req.app,
                            network: is_network(&e),
                            detail: e.to_string(),
                        },
                        None => Error::NotReady {
                            session: req.session,
                            app: req.app,
                            detail,
                            network: false,
                        },
                    });
                }
            },
        };
        Ok(OpenTunnel {
            login: self.login_id(),
            session: req.session,
            session_id: req.session_id,
            app: req.app,
            handle,
            choice,
            port_note,
            banner,
            connector: Some(connector),
        })
    }

    /// Carries one connection to `(session, app)` over `reader`/`writer` (the stdio of
    /// `ProxyCommand`), after the same apps check as [`Connection::open_tunnel`].
    pub async fn proxy_stdio<R, W>(
        &self,
        session: &str,
        app: &str,
        reader: R,
        writer: W,
        cancel: CancellationToken,
    ) -> Result<Summary>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let target = self.tcpproxy_target(session, app).await?;
        let connector = TcpproxyConnector::new(target);
        Ok(bai_tunnel::run_stdio(&connector, reader, writer, &Options::default(), cancel).await?)
    }
}

/// Connects to `addr` and reads the first line; `Ok(banner)` when it starts with `SSH-`.
pub async fn probe_ssh_banner(
    addr: SocketAddr,
    timeout: Duration,
) -> std::result::Result<String, String> {
    let work = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to the tunnel at {addr}: {e}"))?;
        let mut buf = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        // The server may send other lines before the banner (RFC 4253 §4.2).
        loop {
            let n = tcp
                .read(&mut byte)
                .await
                .map_err(|e| format!("reading the SSH banner failed: {e}"))?;
            if n == 0 {
                return Err("the connection closed before the SSH banner arrived".to_owned());
            }
            if byte[0] == b'\n' {
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if line.starts_with("SSH-") {
                    return Ok(line);
                }
                buf.clear();
            } else {
                buf.push(byte[0]);
            }
            if buf.len() > 1024 {
                return Err("the app did not send an SSH banner".to_owned());
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no SSH banner within {}s", timeout.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn probe_reads_a_banner_after_other_lines() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            s.write_all(b"hello\r\nSSH-2.0-OpenSSH_9.2\r\n")
                .await
                .expect("write");
        });
        let b = probe_ssh_banner(addr, Duration::from_secs(5))
            .await
            .expect("banner");
        assert_eq!(b, "SSH-2.0-OpenSSH_9.2");
    }

    #[tokio::test]
    async fn probe_fails_on_early_close() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (s, _) = l.accept().await.expect("accept");
            drop(s);
        });
        let e = probe_ssh_banner(addr, Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(e.contains("closed"), "{e}");
    }
}
