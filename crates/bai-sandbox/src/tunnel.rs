//! The tcpproxy data path (protocol.md §4.1): one WebSocket <-> one TCP connection.
//!
//! Client BINARY frames are written to TCP as they are; TCP reads (≤256 KiB) become one BINARY
//! frame each, from a reused buffer (the frame shares it, no copy until tungstenite frames it).
//! Close codes: 1013 when the port refuses, 1011 on other errors, 1001 at TCP EOF or when the
//! session/sandbox stops.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{BufMut as _, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::faults::TunnelFaults;

/// Largest TCP read forwarded as one frame.
pub(crate) const CHUNK: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a tunnel goes and what faults apply to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub faults: TunnelFaults,
    pub session: CancellationToken,
    pub sandbox: CancellationToken,
}

enum End {
    TcpEof,
    TcpError,
    ClientClosed,
    ClientGone,
    Drop,
    Stopped,
}

async fn close(ws: &mut WebSocket, code: u16, reason: &'static str, target: &Target) {
    if target.faults.swallow_close {
        let (_tx, rx) = ws.split();
        swallow(rx, target).await;
        return;
    }
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// The swallow-close fault: the close is not relayed; the client's WebSocket stays open and
/// whatever it sends is dropped, until it closes or goes away (or the sandbox stops).
async fn swallow<S>(mut rx: S, target: &Target)
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let drain = async {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = target.sandbox.cancelled() => {}
    }
}

/// Runs one tunnel until either side ends.
pub(crate) async fn run(mut ws: WebSocket, target: Target) {
    let connect = async {
        if target.faults.refuse_port {
            return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target.addr))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    };
    let tcp = match connect.await {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!(addr = %target.addr, "tcpproxy: connection refused");
            close(&mut ws, 1013, "connection refused", &target).await;
            return;
        }
        Err(e) => {
            tracing::debug!(addr = %target.addr, error = %e, "tcpproxy: connect failed");
            close(&mut ws, 1011, "connect failed", &target).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut tcp_r, mut tcp_w) = tcp.into_split();
    let (mut tx, mut rx) = ws.split();

    let budget = target.faults.drop_after;
    let used = AtomicU64::new(0);
    // How many of `n` bytes may pass, and whether the WebSocket must then be dropped.
    let admit = |n: usize| -> (usize, bool) {
        match budget {
            None => (n, false),
            Some(max) => {
                let prev = used.fetch_add(n as u64, Ordering::Relaxed);
                if prev.saturating_add(n as u64) >= max {
                    (max.saturating_sub(prev).min(n as u64) as usize, true)
                } else {
                    (n, false)
                }
            }
        }
    };
    let slow = target.faults.slow_read;

    let end = {
        let up = async {
            while let Some(msg) = rx.next().await {
                match msg {
                    Ok(Message::Binary(b)) => {
                        let (n, cut) = admit(b.len());
                        if tcp_w.write_all(&b[..n]).await.is_err() {
                            return End::TcpError;
                        }
                        if cut {
                            return End::Drop;
                        }
                        if let Some(bps) = slow {
                            let secs = b.len() as f64 / bps as f64;
                            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                        }
                    }
                    // Pings are answered by tungstenite itself (same payload).
                    Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)) => {}
                    Ok(Message::Close(_)) => return End::ClientClosed,
                    Err(_) => return End::ClientGone,
                }
            }
            End::ClientGone
        };
        let down = async {
            let mut buf = BytesMut::with_capacity(CHUNK);
            loop {
                // Reclaims the whole buffer once the previous frame has been written out.
                buf.reserve(CHUNK);
                match tcp_r.read_buf(&mut (&mut buf).limit(CHUNK)).await {
                    Ok(0) => return End::TcpEof,
                    Ok(n) => {
                        let (n, cut) = admit(n);
                        let chunk = buf.split_to(n).freeze();
                        buf.clear();
                        if !chunk.is_empty() && tx.send(Message::Binary(chunk)).await.is_err() {
                            return End::ClientGone;
                        }
                        if cut {
                            return End::Drop;
                        }
                    }
                    Err(_) => return End::TcpError,
                }
            }
        };
        tokio::select! {
            _ = target.session.cancelled() => End::Stopped,
            _ = target.sandbox.cancelled() => End::Stopped,
            e = up => e,
            e = down => e,
        }
    };

    let (code, reason) = match end {
        // Abrupt: dropping both halves closes the socket with no close frame.
        End::Drop => return,
        End::ClientGone => return,
        End::ClientClosed => {
            let _ = tcp_w.shutdown().await;
            let _ = tx.close().await;
            return;
        }
        End::TcpEof => (1001, "TCP connection closed"),
        End::TcpError => (1011, "TCP error"),
        End::Stopped => (1001, "session stopped"),
    };
    if target.faults.swallow_close {
        drop(tcp_w);
        swallow(rx, &target).await;
        return;
    }
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}
