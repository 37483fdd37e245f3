//! Shared rig of the integration tests: a bai-sandbox started in-process on port 0, a small
//! HMAC signer of our own (protocol.md §2; deliberately not bai-api's nor the sandbox's, so a
//! signing mistake cannot hide in both sides), the signed [`Connector`], an echo app, OpenSSH
//! command builders, and fast test data.
#![allow(dead_code)] // each test binary uses a different part of the rig

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bai_sandbox::{Config, Sandbox, SessionInfo, SessionSpec, Status};
use bai_tunnel::{BoxError, BoxFuture, Connector, Event, Options, Target, Tunnel, TunnelHandle};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::broadcast;

/// Every async test body runs under this.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("test timed out after {secs} s"))
}

pub const API_VERSION: &str = "v9.20250722";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` value for a body-less request signed as `application/octet-stream`
/// (how the Python client signs WebSockets, which it sends without a Content-Type).
pub fn authorization(
    access_key: &str,
    secret_key: &str,
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
) -> String {
    let to_sign = format!(
        "{method}\n{path_and_query}\n{date}\nhost:{host}\ncontent-type:application/octet-stream\nx-backendai-version:{API_VERSION}\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let ymd: String = date[..10].chars().filter(|c| *c != '-').collect();
    let k1 = hmac(secret_key.as_bytes(), ymd.as_bytes());
    let k2 = hmac(&k1, host.as_bytes());
    let sig = hex::encode(hmac(&k2, to_sign.as_bytes()));
    format!("BackendAI signMethod=HMAC-SHA256, credential={access_key}:{sig}")
}

#[test]
fn signer_matches_the_protocol_vector() {
    // protocol.md §2, vector 1.
    let auth = authorization(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "GET",
        "/stream/session/mysess/tcpproxy?app=sshd",
        "2025-01-02T03:04:05.678901+00:00",
        "127.0.0.1:8081",
    );
    assert!(auth.ends_with(":1217841933a3b65a1f8a99ea609ced3bcc2b298070dde82142fcc652cd9622f8"));
}

/// Builds a freshly signed tcpproxy request for every connection.
#[derive(Debug, Clone)]
pub struct SignedConnector {
    /// `127.0.0.1:PORT` of the manager.
    pub host: String,
    pub session: String,
    pub app: String,
    pub access_key: String,
    pub secret_key: String,
}

impl SignedConnector {
    pub fn target(&self) -> Result<Target, BoxError> {
        let path = format!("/stream/session/{}/tcpproxy?app={}", self.session, self.app);
        let date = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
            .to_string();
        let auth = authorization(
            &self.access_key,
            &self.secret_key,
            "GET",
            &path,
            &date,
            &self.host,
        );
        let request = http::Request::get(format!("ws://{}{}", self.host, path))
            .header("Host", &self.host)
            .header("Date", &date)
            .header("X-BackendAI-Version", API_VERSION)
            .header("Authorization", auth)
            .body(())?;
        Ok(Target::new(request))
    }
}

impl Connector for SignedConnector {
    fn target(&self) -> BoxFuture<'_, Result<Target, BoxError>> {
        let target = SignedConnector::target(self);
        Box::pin(async move { target })
    }
}

/// A sandbox with one RUNNING session (`sess`) that also has an `echo` app.
pub struct Env {
    pub sandbox: Sandbox,
    pub session: SessionInfo,
    pub echo: SocketAddr,
}

impl Env {
    pub async fn start() -> Env {
        let sandbox = Sandbox::start(Config::default())
            .await
            .expect("sandbox starts");
        let echo = echo_server().await;
        let session = sandbox
            .create_session(SessionSpec {
                name: "sess".into(),
                status: Status::Running,
                apps: vec![("echo".into(), echo)],
                authorized_keys: None,
                ssh_server: None,
            })
            .await
            .expect("session starts");
        Env {
            sandbox,
            session,
            echo,
        }
    }

    pub fn connector(&self, app: &str) -> SignedConnector {
        let user = self.sandbox.user();
        SignedConnector {
            host: self.sandbox.manager_addr().to_string(),
            session: self.session.name.clone(),
            app: app.into(),
            access_key: user.access_key.clone(),
            secret_key: user.secret_key.clone(),
        }
    }

    /// A tunnel to `app` on a port-0 listener, and a subscription to its events.
    pub async fn tunnel(
        &self,
        app: &str,
        options: Options,
    ) -> (TunnelHandle, broadcast::Receiver<Event>) {
        tunnel_with(self.connector(app), options).await
    }

    /// `ssh … account@127.0.0.1 <remote command>` through the tunnel on `port`.
    pub fn ssh(&self, port: u16, remote: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(ssh_options(&self.session))
            .arg("-p")
            .arg(port.to_string())
            .arg(format!("{}@127.0.0.1", self.session.account))
            .arg(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

pub async fn tunnel_with(
    connector: impl Connector,
    options: Options,
) -> (TunnelHandle, broadcast::Receiver<Event>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tunnel = Tunnel::new(listener, connector, options).expect("tunnel");
    let events = tunnel.subscribe();
    (tunnel.spawn(), events)
}

/// The non-interactive OpenSSH options every client here uses (`-F /dev/null`: no user config).
pub fn ssh_options(session: &SessionInfo) -> Vec<String> {
    let key = session
        .id_container
        .as_ref()
        .expect("the session has an id_container");
    [
        "-F",
        "/dev/null",
        "-i",
        &key.display().to_string(),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A TCP echo server (the sandbox's `echo` app): echoes until EOF, then closes its write half.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
            });
        }
    });
    addr
}

/// Deterministic pseudo-random bytes (xorshift64*), fast enough for hundreds of MiB.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    fill_noise(&mut out, len, seed);
    out
}

fn fill_noise(out: &mut Vec<u8>, len: usize, seed: u64) -> u64 {
    let mut x = seed | 1;
    while out.len() + 8 <= len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    while out.len() < len {
        out.push(x as u8);
        x = x.rotate_left(8);
    }
    x
}

/// Writes `size` pseudo-random bytes to `path`; returns their sha256 (hex).
pub fn write_noise_file(path: &Path, size: u64, seed: u64) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create data"));
    let mut hasher = Sha256::new();
    let mut state = seed;
    let mut left = size;
    let mut block = Vec::with_capacity(1 << 20);
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        block.clear();
        state = fill_noise(&mut block, n, state.wrapping_add(0x9E37_79B9_7F4A_7C15));
        hasher.update(&block);
        file.write_all(&block).expect("write data");
        left -= n as u64;
    }
    file.flush().expect("flush data");
    hex::encode(hasher.finalize())
}

/// sha256 (hex) of a file.
pub fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).expect("open for hashing");
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).expect("hash");
    hex::encode(hasher.finalize())
}

/// Events up to and including the `Closed` of one connection.
pub async fn events_until_closed(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let event = events.recv().await.expect("event stream");
        let done = matches!(event, Event::Closed { .. });
        out.push(event);
        if done {
            return out;
        }
    }
}

/// The error of the first `Failed` among `events`.
pub fn failure(events: &[Event]) -> Option<bai_tunnel::ConnError> {
    events.iter().find_map(|e| match e {
        Event::Failed { error, .. } => Some(error.clone()),
        _ => None,
    })
}
