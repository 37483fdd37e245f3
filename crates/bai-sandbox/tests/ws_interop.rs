//! The sandbox's own WebSocket framing against third-party and hand-made clients: a real
//! tokio-tungstenite client pushing random sizes both ways through an echo app (SHA-256
//! compared), frames split byte by byte, pings inside fragmented messages, bad frames and
//! handshakes, and an ignored bulk-throughput measurement.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bai_sandbox::{Config, Sandbox, SessionSpec};
use bai_testkit::process::cpu_secs;
use bai_testkit::sandbox;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

async fn sandbox_with_echo() -> (Sandbox, SocketAddr) {
    let echo = echo_server().await;
    let (sb, _) = sandbox::with_sessions(
        Config::default(),
        [SessionSpec::running("s").app("echo", echo)],
    )
    .await;
    (sb, echo)
}

/// Sends `sizes` random messages while reading the echo concurrently; compares SHA-256.
async fn echo_random(ws: Ws, sizes: Vec<usize>, seed: u64) {
    let (mut tx, mut rx) = ws.split();
    let total: usize = sizes.iter().sum();
    let send = async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sha = Sha256::new();
        for n in sizes {
            let mut m = vec![0u8; n];
            rng.fill(&mut m[..]);
            sha.update(&m);
            tx.send(Message::Binary(m.into())).await.unwrap();
        }
        (tx, sha.finalize())
    };
    let recv = async move {
        let mut sha = Sha256::new();
        let mut got = 0;
        while got < total {
            match rx.next().await {
                Some(Ok(Message::Binary(b))) => {
                    assert!(b.len() <= 256 * 1024, "one TCP read per frame");
                    got += b.len();
                    sha.update(&b);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("after {got} of {total} bytes: {other:?}"),
            }
        }
        assert_eq!(got, total);
        (rx, sha.finalize())
    };
    let ((tx, sent), (rx, echoed)) = tokio::join!(send, recv);
    assert_eq!(sent, echoed, "the echo matches what was sent");
    let mut ws = tx.reunite(rx).unwrap();
    ws.close(None).await.unwrap();
}

fn random_sizes(seed: u64, count: usize, max: usize) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![
        1,
        125,
        126,
        65535,
        65536,
        256 * 1024,
        256 * 1024 + 1,
        5 << 20,
    ];
    v.extend((0..count).map(|_| match rng.gen_range(0..3) {
        0 => rng.gen_range(1..200),
        1 => rng.gen_range(200..70_000),
        _ => rng.gen_range(70_000..max),
    }));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tungstenite_client_echoes_random_sizes_both_ways() {
    within(120, async {
        let (sb, _) = sandbox_with_echo().await;
        let ws = manager_ws(&sb, "/stream/session/s/tcpproxy?app=echo")
            .await
            .unwrap();
        echo_random(ws, random_sizes(1, 60, 3 << 20), 1).await;

        // The same through the webserver's /func/stream route.
        let sid = login_sid(&sb).await;
        let ws = web_ws(
            &sb,
            "/func/stream/session/s/tcpproxy?app=echo",
            &[("X-BackendAI-SessionID", &sid)],
        )
        .await
        .unwrap();
        echo_random(ws, random_sizes(2, 30, 2 << 20), 2).await;

        // Many tunnels at once.
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let ws = manager_ws(&sb, "/stream/session/s/tcpproxy?app=echo")
                .await
                .unwrap();
            tasks.push(tokio::spawn(echo_random(
                ws,
                random_sizes(10 + i, 10, 1 << 20),
                10 + i,
            )));
        }
        for t in tasks {
            t.await.unwrap();
        }
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_with_their_payload_and_close_is_echoed() {
    within(30, async {
        let (sb, _) = sandbox_with_echo().await;
        let mut ws = manager_ws(&sb, "/stream/session/s/tcpproxy?app=echo")
            .await
            .unwrap();
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Pong(p) if p == b"are you there"));
        // A ping while a large echo is on its way back: the pong comes between frames.
        let big = vec![0x5Au8; 3 << 20];
        ws.send(Message::Binary(big.clone().into())).await.unwrap();
        ws.send(Message::Ping(b"mid".to_vec().into()))
            .await
            .unwrap();
        let mut got = 0;
        let mut pong = false;
        while got < big.len() || !pong {
            match next(&mut ws).await {
                Got::Data(d) => {
                    assert!(d.iter().all(|&b| b == 0x5A));
                    got += d.len();
                }
                Got::Pong(p) => {
                    assert_eq!(p, b"mid");
                    pong = true;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, big.len());
        ws.send(Message::Text("ignored".into())).await.unwrap();
        echo_round_trip(&mut ws, b"text frames are dropped").await;
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        match ws.next().await {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!((u16::from(f.code), f.reason.as_str()), (1001, "bye"));
            }
            other => panic!("expected the close echoed, got {other:?}"),
        }
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_offered_subprotocol_is_echoed() {
    within(30, async {
        let (sb, _) = sandbox_with_echo().await;
        let path_q = "/stream/session/s/tcpproxy?app=echo";
        let mut req = format!("ws://{}{path_q}", sb.manager_addr())
            .into_client_request()
            .unwrap();
        for (k, v) in signed_headers(&sb, path_q) {
            req.headers_mut()
                .insert(k, HeaderValue::from_str(&v).unwrap());
        }
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("binary, base64"),
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "binary");
        assert!(resp.headers().get("sec-websocket-extensions").is_none());
        echo_round_trip(&mut ws, b"with a subprotocol").await;
        sb.shutdown().await;
    })
    .await
}

fn signed_headers(sb: &Sandbox, path_q: &str) -> Vec<(&'static str, String)> {
    let host = sb.manager_addr().to_string();
    let date = now_date(0);
    let auth = sign_at(
        &sb.user().access_key,
        &sb.user().secret_key,
        "GET",
        path_q,
        &host,
        "application/octet-stream",
        VERSION,
        &date,
    );
    vec![
        ("Date", date),
        ("X-BackendAI-Version", VERSION.to_owned()),
        ("Authorization", auth),
    ]
}

/// A hand-made upgrade (signed like the official client); returns the status line, the
/// headers, and the socket positioned after them.
async fn raw_upgrade(sb: &Sandbox, path_q: &str, handshake: &str) -> (String, String, TcpStream) {
    let mut s = TcpStream::connect(sb.manager_addr()).await.unwrap();
    let mut req = format!("GET {path_q} HTTP/1.1\r\nHost: {}\r\n", sb.manager_addr());
    for (k, v) in signed_headers(sb, path_q) {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(handshake);
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (status.to_owned(), headers.to_ascii_lowercase(), s)
}

const GOOD: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

async fn raw_ws(sb: &Sandbox, path_q: &str) -> TcpStream {
    let (status, headers, s) = raw_upgrade(sb, path_q, GOOD).await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    assert!(
        headers.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{headers}"
    );
    s
}

/// A masked client frame.
fn frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n if n <= 125 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one server frame: (first byte, payload). Server frames must be unmasked.
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let b0 = s.read_u8().await.unwrap();
    let b1 = s.read_u8().await.unwrap();
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let len = match b1 & 0x7F {
        126 => u64::from(s.read_u16().await.unwrap()),
        127 => s.read_u64().await.unwrap(),
        n => u64::from(n),
    };
    let mut p = vec![0u8; len as usize];
    s.read_exact(&mut p).await.unwrap();
    (b0, p)
}

/// Reads frames until a close; returns its code.
async fn close_code(s: &mut TcpStream) -> u16 {
    loop {
        let (b0, p) = read_frame(s).await;
        if b0 == 0x88 {
            return u16::from_be_bytes([p[0], p[1]]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_made_frames_split_byte_by_byte_are_reassembled() {
    within(30, async {
        let (sb, _) = sandbox_with_echo().await;
        let mut s = raw_ws(&sb, "/stream/session/s/tcpproxy?app=echo").await;
        let mut stream = Vec::new();
        stream.extend(frame(0x02, b"frag", [1, 2, 3, 4]));
        stream.extend(frame(0x89, b"ping!", [5, 6, 7, 8]));
        stream.extend(frame(0x00, &[b'x'; 300], [9, 10, 11, 12]));
        stream.extend(frame(0x8A, b"unsolicited pong", [1, 1, 1, 1]));
        stream.extend(frame(0x80, b"end", [0xFF, 0, 0xFF, 0]));
        for b in &stream {
            s.write_all(&[*b]).await.unwrap();
            s.flush().await.unwrap();
        }
        let mut want = b"frag".to_vec();
        want.extend([b'x'; 300]);
        want.extend(b"end");
        let mut got = Vec::new();
        let mut pong = None;
        while got.len() < want.len() || pong.is_none() {
            let (b0, p) = read_frame(&mut s).await;
            match b0 {
                0x82 => got.extend(p),
                0x8A => pong = Some(p),
                other => panic!("unexpected frame {other:#x}"),
            }
        }
        assert_eq!(got, want);
        assert_eq!(pong.unwrap(), b"ping!");
        // A masked close is echoed.
        s.write_all(&frame(0x88, b"\x03\xe8done", [4, 3, 2, 1]))
            .await
            .unwrap();
        let (b0, p) = read_frame(&mut s).await;
        assert_eq!((b0, p.as_slice()), (0x88, &b"\x03\xe8done"[..]));
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_fail_the_websocket_with_their_close_code() {
    within(30, async {
        let (sb, _) = sandbox_with_echo().await;
        let path = "/stream/session/s/tcpproxy?app=echo";
        let mut oversized = vec![0x82, 0x80 | 127];
        oversized.extend_from_slice(&((16u64 << 20) + 1).to_be_bytes());
        oversized.extend_from_slice(&[1, 2, 3, 4]);
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("unmasked", vec![0x82, 0x03, b'a', b'b', b'c'], 1002),
            ("rsv1", frame(0xC2, b"x", [1, 2, 3, 4]), 1002),
            ("unknown opcode", frame(0x83, b"x", [1, 2, 3, 4]), 1002),
            ("long ping", frame(0x89, &[0; 126], [1, 2, 3, 4]), 1002),
            ("fragmented ping", frame(0x09, b"x", [1, 2, 3, 4]), 1002),
            ("stray continuation", frame(0x80, b"x", [1, 2, 3, 4]), 1002),
            ("over 16 MiB", oversized, 1009),
        ];
        for (what, bytes, code) in cases {
            let mut s = raw_ws(&sb, path).await;
            // A good frame first, in the same write: the bad one is found in the middle.
            let mut all = frame(0x82, b"ok", [7, 7, 7, 7]);
            all.extend(bytes);
            s.write_all(&all).await.unwrap();
            assert_eq!(close_code(&mut s).await, code, "{what}");
        }
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_keep_their_answers() {
    within(30, async {
        let (sb, _) = sandbox_with_echo().await;
        let path = "/stream/session/s/tcpproxy?app=echo";
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        for (what, handshake) in [
            (
                "no key",
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    .to_owned(),
            ),
            (
                "version 8",
                format!("Upgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 8\r\n"),
            ),
            (
                "no upgrade token",
                format!("Upgrade: websocket\r\nConnection: keep-alive\r\n{key}Sec-WebSocket-Version: 13\r\n"),
            ),
            (
                "not websocket",
                format!("Upgrade: h2c\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 13\r\n"),
            ),
            ("plain GET", String::new()),
        ] {
            let (status, headers, mut s) = raw_upgrade(&sb, path, &handshake).await;
            assert!(status.starts_with("HTTP/1.1 400"), "{what}: {status}");
            assert!(headers.contains("application/problem+json"), "{what}");
            let len: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["msg"], "Expected a WebSocket upgrade request", "{what}");
        }
        // Through the webserver, the manager accepts the webserver's own upgrade; then aiohttp
        // refuses the client's bad handshake: 400 text/plain (real 26.9.6).
        let sid = login_sid(&sb).await;
        let r = reqwest::Client::new()
            .get(format!(
                "{}/func/stream/session/s/tcpproxy?app=echo",
                sb.webserver_url()
            ))
            .header("X-BackendAI-SessionID", &sid)
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.text().await.unwrap(), "Handshake error: None");
        sb.shutdown().await;
    })
    .await
}

/// A source app that writes `total` bytes per connection, and a sink that counts what it gets.
async fn source_and_sink(total: u64, sunk: Arc<AtomicU64>) -> (SocketAddr, SocketAddr) {
    let source = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (source.local_addr().unwrap(), sink.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = source.accept().await {
            tokio::spawn(async move {
                let block = vec![0xA5u8; 256 * 1024];
                let mut left = total;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if s.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = sink.accept().await {
            let sunk = sunk.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sunk.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    addrs
}

/// Bulk throughput of the tcpproxy route, down (app → client) and up (client → app), with a
/// tokio-tungstenite client. Against the in-process sandbox by default; set
/// `BAI_BENCH_SANDBOX` to a `bai-sandbox` binary (e.g. a release build) to measure that one,
/// and `BAI_BENCH_BYTES` to the bytes moved each way (default 32 MiB, which only checks that
/// every byte arrives; use 1 GiB and a release binary for figures). It prints, never asserts,
/// the speed: `cargo test -p bai-sandbox --test ws_interop bulk_throughput -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_throughput() {
    within(600, measure_bulk_throughput()).await;
}

async fn measure_bulk_throughput() {
    let total: u64 = std::env::var("BAI_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32 << 20);
    let sunk = Arc::new(AtomicU64::new(0));
    let (source, sink) = source_and_sink(total, sunk.clone()).await;
    let (_guard, manager, ak, sk) = match std::env::var_os("BAI_BENCH_SANDBOX") {
        Some(bin) => {
            let mut child = tokio::process::Command::new(bin)
                .args(["--json", "--port", "0", "--sessions", "1"])
                .args(["--app", &format!("source={source}")])
                .args(["--app", &format!("sink={sink}")])
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut out = child.stdout.take().unwrap();
            let mut line = Vec::new();
            while !line.ends_with(b"\n") {
                line.push(out.read_u8().await.unwrap());
            }
            let v: Value = serde_json::from_slice(&line).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            let manager = s("manager").trim_start_matches("http://").to_owned();
            (
                Guard::Child(child),
                manager,
                s("access_key"),
                s("secret_key"),
            )
        }
        None => {
            let sb = Sandbox::start(Config {
                demo_sessions: 1,
                demo_apps: vec![("source".into(), source), ("sink".into(), sink)],
                ..Config::default()
            })
            .await
            .unwrap();
            let m = sb.manager_addr().to_string();
            let (ak, sk) = (sb.user().access_key.clone(), sb.user().secret_key.clone());
            (Guard::Sandbox(Box::new(sb)), m, ak, sk)
        }
    };
    let connect = |app: &str| {
        let path_q = format!("/stream/session/demo-1/tcpproxy?app={app}");
        let date = now_date(0);
        let auth = sign_at(
            &ak,
            &sk,
            "GET",
            &path_q,
            &manager,
            "application/octet-stream",
            VERSION,
            &date,
        );
        let mut req = format!("ws://{manager}{path_q}")
            .into_client_request()
            .unwrap();
        let h = req.headers_mut();
        h.insert("Date", HeaderValue::from_str(&date).unwrap());
        h.insert("X-BackendAI-Version", HeaderValue::from_static(VERSION));
        h.insert("Authorization", HeaderValue::from_str(&auth).unwrap());
        async move { tokio_tungstenite::connect_async(req).await.unwrap().0 }
    };

    let pid = match &_guard {
        Guard::Child(c) => c.id().unwrap(),
        Guard::Sandbox(_) => std::process::id(),
    };
    let mut ws = connect("source").await;
    let cpu = cpu_secs(pid);
    let t = Instant::now();
    let mut got = 0u64;
    while got < total {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => got += b.len() as u64,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let down = total as f64 / t.elapsed().as_secs_f64() / 1e6;
    let gib = total as f64 / f64::from(1u32 << 30);
    let down_cpu = (cpu_secs(pid) - cpu) / gib;

    let mut ws = connect("sink").await;
    let block = bytes::Bytes::from(vec![0x3Cu8; 256 * 1024]);
    let cpu = cpu_secs(pid);
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        ws.feed(Message::Binary(block.clone())).await.unwrap();
        sent += block.len() as u64;
    }
    ws.flush().await.unwrap();
    while sunk.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let up = total as f64 / t.elapsed().as_secs_f64() / 1e6;
    let up_cpu = (cpu_secs(pid) - cpu) / gib;
    // In-process, the CPU time includes the client and the apps.
    println!(
        "tcpproxy bulk: down {down:.0} MB/s ({down_cpu:.2} CPU s/GiB), \
         up {up:.0} MB/s ({up_cpu:.2} CPU s/GiB)"
    );
}

enum Guard {
    Child(#[allow(dead_code)] tokio::process::Child),
    Sandbox(#[allow(dead_code)] Box<Sandbox>),
}
