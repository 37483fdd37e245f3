//! TLS for real: a local HTTPS server with a self-signed certificate (rcgen + tokio-rustls).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bai_api::{Client, ClientConfig, ErrorKind, Sensitive, TlsOptions};
use bai_testkit::within;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use url::Url;

const TEST_SECS: u64 = 30;

/// One request as the HTTPS server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1-over-TLS server: `GET /func/` and `GET /` give the version document,
/// `POST /server/login` logs in; everything is recorded.
struct Https {
    addr: SocketAddr,
    ca_file: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    _dir: tempfile::TempDir,
}

impl Https {
    fn url(&self) -> Url {
        Url::parse(&format!("https://{}/", self.addr)).expect("url")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn https_server() -> Https {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".into()])
        .expect("self-signed certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("server.pem");
    std::fs::write(&ca_file, ck.cert.pem()).expect("write pem");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                // A refused handshake (untrusted certificate) just ends the connection.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = serve(tls, seen).await;
                }
            });
        }
    });
    Https {
        addr,
        ca_file,
        seen,
        _dir: dir,
    }
}

async fn serve<S>(stream: S, seen: Arc<Mutex<Vec<Seen>>>) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        let (status, extra, reply) = match (method.as_str(), path.as_str()) {
            ("GET", "/func/" | "/") => (
                "200 OK",
                String::new(),
                json!({"version": "v9.20250722", "manager": "25.15.0"}),
            ),
            ("POST", "/server/login") => (
                "200 OK",
                "Set-Cookie: AIOHTTP_SESSION=tls-sid; HttpOnly; Max-Age=604800; Path=/\r\n\
                 X-BackendAI-SessionID: tls-sid\r\n"
                    .to_owned(),
                json!({"authenticated": true,
                       "data": {"access_key": "AK", "role": "user", "status": "active"}}),
            ),
            _ => (
                "404 Not Found",
                String::new(),
                json!({"type": "https://api.backend.ai/probs/url-not-found", "title": "Unknown URL path."}),
            ),
        };
        seen.lock().expect("lock").push(Seen {
            method,
            path,
            headers,
            body,
        });
        let reply = reply.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
            reply.len()
        );
        let w = r.get_mut();
        w.write_all(head.as_bytes()).await?;
        w.write_all(reply.as_bytes()).await?;
        w.flush().await?;
    }
}

fn client(s: &Https, tls: TlsOptions) -> Client {
    let mut cfg = ClientConfig::session(s.url());
    cfg.tls = tls;
    cfg.timeout = Duration::from_secs(5);
    Client::new(cfg).expect("client")
}

#[tokio::test]
async fn self_signed_certificate_is_refused_by_default() {
    within(TEST_SECS, async {
        let s = https_server().await;
        let e = client(&s, TlsOptions::default())
            .server_info()
            .await
            .expect_err("untrusted certificate");
        assert!(matches!(e.kind(), ErrorKind::Tls { .. }), "{e}");
        assert!(matches!(e.kind(), ErrorKind::Tls { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("TLS handshake with https://127.0.0.1:"),
            "{msg}"
        );
        assert!(msg.contains("certificate"), "{msg}");
        assert!(msg.contains("self-signed"), "{msg}");
        assert!(
            s.seen().is_empty(),
            "no request may pass an untrusted handshake"
        );
    })
    .await;
}

#[tokio::test]
async fn extra_ca_file_trusts_the_self_signed_certificate() {
    within(TEST_SECS, async {
        let s = https_server().await;
        let c = client(
            &s,
            TlsOptions {
                extra_ca: Some(s.ca_file.clone()),
                insecure: false,
            },
        );
        let info = c.server_info().await.expect("server info over https");
        assert_eq!(info.server.to_string(), "v9.20250722");
        assert_eq!(info.manager.as_deref(), Some("25.15.0"));
        let seen = s.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].path, "/func/");
    })
    .await;
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test]
async fn insecure_accepts_the_certificate_and_warns() {
    within(TEST_SECS, async {
        let s = https_server().await;
        let logs = Captured::default();
        let w = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        // The test runtime is single-threaded: everything below runs under this subscriber.
        let _guard = tracing::subscriber::set_default(subscriber);
        let c = client(
            &s,
            TlsOptions {
                extra_ca: None,
                insecure: true,
            },
        );
        let built = logs.text();
        assert!(built.contains("WARN"), "{built}");
        assert!(built.contains("verification is DISABLED"), "{built}");
        c.server_info().await.expect("server info, insecure");
        // Every wss tunnel connection warns again.
        let target = c
            .tcpproxy_target_unchecked("s1", "sshd")
            .await
            .expect("target");
        assert_eq!(target.url().scheme(), "wss");
        let before = logs.text().matches("WARN").count();
        let ws = target.request().expect("request");
        assert!(ws.tls.is_some());
        let after = logs.text();
        assert_eq!(after.matches("WARN").count(), before + 1, "{after}");
        assert!(after.contains("WebSocket with TLS certificate verification DISABLED"));
    })
    .await;
}

#[tokio::test]
async fn login_over_https_sends_plain_json() {
    within(TEST_SECS, async {
        let s = https_server().await;
        let c = client(
            &s,
            TlsOptions {
                extra_ca: Some(s.ca_file.clone()),
                insecure: false,
            },
        );
        let pw = Sensitive::new("pw over tls".to_owned());
        c.login("me@example.com", &pw, None).await.expect("login");
        assert_eq!(
            c.session_id().map(Sensitive::into_inner).as_deref(),
            Some("tls-sid")
        );
        let seen = s.seen();
        let login = seen
            .iter()
            .find(|r| r.method == "POST" && r.path == "/server/login")
            .expect("login request seen");
        assert!(
            login.header("X-BackendAI-Encoded").is_none(),
            "{:?}",
            login.headers
        );
        assert_eq!(login.header("Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&login.body).expect("plain JSON");
        assert_eq!(
            body,
            json!({"username": "me@example.com", "password": "pw over tls"})
        );
    })
    .await;
}
