//! Shared helpers: a tiny HMAC signer (independent of the crate's own), echo servers, WebSockets.
#![allow(dead_code, clippy::unwrap_used, clippy::too_many_arguments)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bai_sandbox::Sandbox;
use futures_util::{SinkExt as _, StreamExt as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const VERSION: &str = "v9.20250722";

/// Runs a test body under a timeout.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Signs like the Python client: returns (Date, Authorization).
pub fn sign_at(
    ak: &str,
    sk: &str,
    method: &str,
    path_q: &str,
    host: &str,
    ct: &str,
    version: &str,
    date: &str,
) -> String {
    let ymd: String = date[..10].chars().filter(|c| *c != '-').collect();
    let k1 = mac(sk.as_bytes(), &ymd);
    let k2 = mac(&k1, host);
    let s = format!(
        "{method}\n{path_q}\n{date}\nhost:{host}\ncontent-type:{ct}\nx-backendai-version:{version}\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    format!(
        "BackendAI signMethod=HMAC-SHA256, credential={ak}:{}",
        hex::encode(mac(&k2, &s))
    )
}

pub fn now_date(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// A signed manager request.
pub async fn api(
    sb: &Sandbox,
    method: &str,
    path_q: &str,
    json: Option<&str>,
) -> reqwest::Response {
    api_with(sb, method, path_q, json, 0, VERSION).await
}

pub async fn api_with(
    sb: &Sandbox,
    method: &str,
    path_q: &str,
    json: Option<&str>,
    date_offset: i64,
    version: &str,
) -> reqwest::Response {
    let host = sb.manager_addr().to_string();
    let ct = if json.is_some() {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let date = now_date(date_offset);
    let auth = sign_at(
        &sb.user().access_key,
        &sb.user().secret_key,
        method,
        path_q,
        &host,
        ct,
        version,
        &date,
    );
    let c = reqwest::Client::new();
    let mut rb = c
        .request(
            method.parse().unwrap(),
            format!("{}{path_q}", sb.manager_url()),
        )
        .header("Date", date)
        .header("X-BackendAI-Version", version)
        .header("Authorization", auth);
    if let Some(j) = json {
        rb = rb
            .header("Content-Type", "application/json")
            .body(j.to_owned());
    }
    rb.send().await.unwrap()
}

/// A signed WebSocket to the manager (signed as application/octet-stream, no Content-Type).
pub async fn manager_ws(
    sb: &Sandbox,
    path_q: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    manager_ws_to(
        sb.manager_addr(),
        &sb.user().access_key,
        &sb.user().secret_key,
        path_q,
    )
    .await
}

/// [`manager_ws`] from the manager's address and the user's keys (for spawned tasks).
pub async fn manager_ws_to(
    manager: SocketAddr,
    access_key: &str,
    secret_key: &str,
    path_q: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let host = manager.to_string();
    let date = now_date(0);
    let auth = sign_at(
        access_key,
        secret_key,
        "GET",
        path_q,
        &host,
        "application/octet-stream",
        VERSION,
        &date,
    );
    let mut req = format!("ws://{host}{path_q}")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Date", HeaderValue::from_str(&date).unwrap());
    h.insert("X-BackendAI-Version", HeaderValue::from_static(VERSION));
    h.insert("Authorization", HeaderValue::from_str(&auth).unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// A WebSocket to the webserver with extra headers (cookie or session header).
pub async fn web_ws(
    sb: &Sandbox,
    path_q: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}{path_q}", sb.webserver_addr())
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Status of a failed WebSocket handshake.
pub fn handshake_status(e: &tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

/// A TCP echo server; returns its address.
pub async fn echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that writes `msg` and closes.
pub async fn greeter(msg: &'static [u8]) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(msg).await;
            let _ = s.shutdown().await;
            let mut sink = [0u8; 64];
            let _ = s.read(&mut sink).await;
        }
    });
    addr
}

/// What the server sent next, skipping pings/pongs.
#[derive(Debug)]
pub enum Got {
    Data(Vec<u8>),
    Close(Option<u16>),
    Pong(Vec<u8>),
    /// Stream ended or errored without a close frame.
    Gone,
}

pub async fn next(ws: &mut Ws) -> Got {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Got::Data(b.to_vec()),
            Some(Ok(Message::Close(f))) => return Got::Close(f.map(|f| u16::from(f.code))),
            Some(Ok(Message::Pong(p))) => return Got::Pong(p.to_vec()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Got::Gone,
        }
    }
}

/// Sends `data` and reads back exactly as many bytes.
pub async fn echo_round_trip(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::Binary(data.to_vec().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        match next(ws).await {
            Got::Data(d) => got.extend(d),
            other => panic!("expected data, got {other:?}"),
        }
    }
    assert_eq!(got, data);
}

/// Whether a process is gone (absent, or a zombie waiting to be reaped by someone else).
pub fn pid_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|st| st == "Z" || st == "X"),
    }
}

/// A local TCP listener whose every connection is bridged through its own signed
/// `tcpproxy?app=sshd` WebSocket to `session`, as the bai tunnel does: returns the port for
/// ssh/scp/sftp/rsync. The listener lives until the returned handle is aborted (or the runtime
/// ends).
pub async fn sshd_bridge(sb: &Sandbox, session: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let manager = sb.manager_addr();
    let (ak, sk) = (sb.user().access_key.clone(), sb.user().secret_key.clone());
    let path = format!("/stream/session/{session}/tcpproxy?app=sshd");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (ak, sk, path) = (ak.clone(), sk.clone(), path.clone());
            tokio::spawn(async move {
                let Ok(ws) = manager_ws_to(manager, &ak, &sk, &path).await else {
                    return;
                };
                pump(tcp, ws).await;
            });
        }
    });
    (port, task)
}

/// Copies TCP bytes into BINARY frames and back until both sides are done.
async fn pump(tcp: tokio::net::TcpStream, ws: Ws) {
    let (mut tcp_r, mut tcp_w) = tcp.into_split();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tcp_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = ws_tx.close().await;
    };
    let down = async move {
        while let Some(Ok(m)) = ws_rx.next().await {
            let more = match m {
                Message::Binary(b) => tcp_w.write_all(&b).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !more {
                break;
            }
        }
        let _ = tcp_w.shutdown().await;
    };
    tokio::join!(up, down);
}

/// The hex SHA-256 of a file.
pub fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// `len` pseudo-random bytes (xorshift; incompressible enough for transfer tests).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `(pid, ppid)` of every process.
pub fn process_table() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
        {
            out.push((pid, ppid));
        }
    }
    out
}

/// Every descendant of `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in table.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub fn live_with_cmdline(needle: &str) -> Vec<u32> {
    process_table()
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| !pid_gone(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether every one of `pids` is gone within `within_secs`.
pub async fn all_gone(pids: &[u32], within_secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        if pids.iter().all(|p| pid_gone(*p)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
