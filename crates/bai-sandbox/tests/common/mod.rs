//! Shared helpers of the sandbox's tests: signed manager requests and WebSockets (with
//! bai-testkit's signer, independent of the crate's own), a tcpproxy bridge, and re-exports of
//! the kit's timeouts, servers, hashes and process checks.
#![allow(dead_code, unused_imports, clippy::unwrap_used)] // each test binary uses a part

use std::net::SocketAddr;

use bai_sandbox::Sandbox;
pub use bai_testkit::process::{all_gone, descendants, live_with_cmdline, pid_gone};
pub use bai_testkit::sandbox::login_sid;
pub use bai_testkit::sign::{now_date, sign_at, API_VERSION as VERSION};
pub use bai_testkit::{echo_server, greeter, noise, sha256_file, within};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
