//! Servers that are *not* a working Backend.AI endpoint, for the tests of what a wrong server
//! address is told: a foreign web page, a stand-in for the real webserver's `GET /` (the
//! WebUI's `index.html`), and HTTPS servers whose certificate is self-signed, expired or for
//! another host name. Each lives as long as the runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A page of some other web server (not Backend.AI).
pub const FOREIGN_HTML: &str =
    "<!doctype html>\n<html><head><title>Welcome to nginx!</title></head>\
     <body><h1>Welcome to nginx!</h1></body></html>\n";

/// The start of the WebUI's `index.html`, as a real webserver serves it at `/`.
pub const WEBUI_HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>Backend.AI</title></head><body><backend-ai-webui id=\"webui-shell\"></backend-ai-webui>\
     </body></html>\n";

/// Reads one request head; the method and path.
async fn read_head(s: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut parts = head.split_whitespace();
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

async fn reply(s: &mut tokio::net::TcpStream, status: &str, content_type: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(msg.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// An HTTP server answering every request with `route(method, path)`: `(status line, content
/// type, body)`.
pub async fn http_server(
    route: impl Fn(&str, &str) -> (&'static str, &'static str, String) + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
    let addr = listener.local_addr().expect("fake addr");
    let route = Arc::new(route);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let route = route.clone();
            tokio::spawn(async move {
                if let Some((method, path)) = read_head(&mut s).await {
                    let (status, ct, body) = route(&method, &path);
                    reply(&mut s, status, ct, &body).await;
                }
            });
        }
    });
    addr
}

/// Some other web site: [`FOREIGN_HTML`] for every path.
pub async fn foreign_site() -> SocketAddr {
    http_server(|_, _| {
        (
            "200 OK",
            "text/html; charset=utf-8",
            FOREIGN_HTML.to_owned(),
        )
    })
    .await
}

/// What a real webserver answers without a login: the WebUI's `index.html` at `/` (and for
/// unknown paths, as a single-page app does), the manager's version document at `/func/`,
/// `{"authenticated": false}` at `/server/login-check`.
pub async fn webui_server(api_version: &'static str) -> SocketAddr {
    http_server(move |method, path| match (method, path) {
        (_, "/func/") | (_, "/func") => (
            "200 OK",
            "application/json",
            format!("{{\"version\":\"{api_version}\",\"manager\":\"24.09.0\"}}"),
        ),
        ("POST", "/server/login-check") => (
            "200 OK",
            "application/json",
            "{\"authenticated\":false,\"data\":null,\"session_id\":null}".to_owned(),
        ),
        _ => ("200 OK", "text/html", WEBUI_HTML.to_owned()),
    })
    .await
}

/// What is wrong with a [`tls_server`]'s certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadCert {
    /// Self-signed for 127.0.0.1 (trusted only through its own PEM file).
    SelfSigned,
    /// For 127.0.0.1, but expired in 2001.
    Expired,
    /// Valid, but for `other.example`, not 127.0.0.1.
    OtherHost,
}

/// An HTTPS server on 127.0.0.1 with a certificate that is wrong as `bad` says, and its PEM
/// file (to trust it as a CA: then only the expiry or the host name is wrong). The handshake
/// is all it does.
pub struct TlsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate as PEM.
    pub pem: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a [`TlsServer`].
pub async fn tls_server(bad: BadCert) -> TlsServer {
    let host = match bad {
        BadCert::OtherHost => "other.example",
        _ => "127.0.0.1",
    };
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).expect("cert params");
    if bad == BadCert::Expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = dir.path().join("server.pem");
    std::fs::write(&pem, cert.pem()).expect("write pem");
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], der)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
    let addr = listener.local_addr().expect("tls addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The client refuses the certificate: the handshake just ends.
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    TlsServer {
        addr,
        pem,
        _dir: dir,
    }
}
