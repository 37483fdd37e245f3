//! The tcpproxy data path (protocol.md §4.1): one WebSocket <-> one TCP connection, framed by
//! [`crate::ws`] directly over the upgraded HTTP connection.
//!
//! - **Down** (TCP → client): a TCP read (≤ 256 KiB) lands behind [`HEAD`] bytes of headroom;
//!   the frame header is written there, so header and payload leave in one write, uncopied.
//! - **Up** (client → TCP): client bytes are parsed where they were read, unmasked in place,
//!   and the payload slices go to TCP in one vectored write per read.
//! - Neither side reads again before the other side took everything it read (backpressure).
//!   Buffers start at [`MIN_BUF`], double while reads fill them, and shrink back after a run
//!   of short reads or when the connection idles, so idle tunnels stay small.
//! - Pings get a pong with the same payload, sent by the down side between its frames.
//!
//! Close codes: 1013 when the port refuses, 1011 on other errors, 1001 at TCP EOF or when the
//! session/sandbox stops, all with an empty reason as the manager's `TCPProxy` sends them (real
//! 26.9.6, `manager/api/wsproxy.py`); 1002/1007/1009 for bad client frames (see [`crate::ws`]).
//!
//! Layout: this module runs a tunnel (connect, pump both ways, end with the right close);
//! `up` and `down` are the two directions with their buffers, and `buffer` sizes those buffers.

mod buffer;
mod down;
mod up;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::faults::TunnelFaults;
use crate::ws::{self, opcode, ControlFrame, Event, ProtocolError};
use down::{pump_down, Down, PendingPong};
use up::{pump_up, Up};

/// Largest TCP read forwarded as one frame, and the largest buffer either side grows to.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Headroom in front of a down buffer: room for the longest server frame header.
const HEAD: usize = ws::MAX_SERVER_HEADER;
/// Smallest (and first) buffer size.
const MIN_BUF: usize = 16 * 1024;
/// Short reads in a row (each ≤ a quarter of the buffer) before the buffer halves.
const SHORT_READS: u32 = 4;
/// A side that waits this long for a read drops its buffer back to [`MIN_BUF`].
const IDLE: Duration = Duration::from_secs(1);
/// Most data slices gathered into one vectored TCP write.
const MAX_IOV: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on finishing a frame and sending the close at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// After our close, how long the client may take to close its side.
const LINGER: Duration = Duration::from_secs(2);

/// Where a tunnel goes and what faults apply to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub faults: TunnelFaults,
    pub session: CancellationToken,
    pub sandbox: CancellationToken,
}

#[derive(Debug)]
enum End {
    TcpEof,
    TcpError,
    /// The client's close, with the payload to echo.
    ClientClosed(Vec<u8>),
    ClientGone,
    /// Bad client frames: fail the WebSocket with this close.
    Protocol(ProtocolError),
    Drop,
    Stopped,
}

/// Counts payload bytes against the drop-after fault: how many of `n` may pass, and whether
/// the WebSocket must then be dropped.
struct Budget {
    max: Option<u64>,
    used: AtomicU64,
}

impl Budget {
    fn admit(&self, n: usize) -> (usize, bool) {
        match self.max {
            None => (n, false),
            Some(max) => {
                let prev = self.used.fetch_add(n as u64, Ordering::Relaxed);
                if prev.saturating_add(n as u64) >= max {
                    (max.saturating_sub(prev).min(n as u64) as usize, true)
                } else {
                    (n, false)
                }
            }
        }
    }
}

/// Sends our close after any unfinished frame, then gives the client [`LINGER`] to close its
/// side (so the close is not lost to a reset over unread bytes).
async fn close<R, W>(up: &mut Up<R>, down: &mut Down<W>, frame: ControlFrame)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, down.send_control(frame)).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let _ = down.w.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            up.start = 0;
            up.end = 0;
            match up.r.read(&mut up.buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// The swallow-close fault: the close is not relayed; the client's WebSocket stays open and
/// whatever it sends is dropped (pings still get pongs), until it closes or goes away (or the
/// sandbox stops).
async fn swallow<R, W>(up: &mut Up<R>, down: &mut Down<W>, sandbox: &CancellationToken)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let drain = async {
        loop {
            while up.start < up.end {
                let Ok(step) = up.parser.step(&mut up.buf[up.start..up.end]) else {
                    return;
                };
                if step.consumed == 0 && step.event.is_none() {
                    break;
                }
                up.start += step.consumed;
                let pong = match step.event {
                    Some(Event::Ping(p)) => ControlFrame::new(opcode::PONG, &p),
                    Some(Event::Close(_)) => return,
                    _ => continue,
                };
                if down.send_control(pong).await.is_err() {
                    return;
                }
            }
            if !matches!(up.fill(None).await, Ok(n) if n > 0) {
                return;
            }
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = sandbox.cancelled() => {}
    }
}

/// Ends the tunnel with a close (`code`, empty reason), or swallows it under the fault.
async fn finish<R, W>(up: &mut Up<R>, down: &mut Down<W>, code: u16, target: &Target)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if target.faults.swallow_close {
        // Finish a frame cut short, so that the client's stream stays well-formed.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, down.flush()).await;
        swallow(up, down, &target.sandbox).await;
    } else {
        close(up, down, ControlFrame::close(code, "")).await;
    }
}

/// Runs one tunnel over the upgraded connection until either side ends.
pub(crate) async fn run<S>(io: S, target: Target)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    let mut up = Up::new(r);
    let mut down = Down::new(w);

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
            finish(&mut up, &mut down, 1013, &target).await;
            return;
        }
        Err(e) => {
            tracing::debug!(addr = %target.addr, error = %e, "tcpproxy: connect failed");
            finish(&mut up, &mut down, 1011, &target).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut tcp_r, mut tcp_w) = tcp.into_split();

    let budget = Budget {
        max: target.faults.drop_after,
        used: AtomicU64::new(0),
    };
    let pong = PendingPong::default();
    let end = tokio::select! {
        biased;
        _ = target.session.cancelled() => End::Stopped,
        _ = target.sandbox.cancelled() => End::Stopped,
        e = pump_up(&mut up, &mut tcp_w, &budget, &pong, target.faults.slow_read) => e,
        e = pump_down(&mut down, &mut tcp_r, &budget, &pong) => e,
    };
    tracing::debug!(addr = %target.addr, end = ?end, "tcpproxy: tunnel ended");

    let code = match end {
        // Abrupt: dropping both halves closes the socket with no close frame.
        End::Drop | End::ClientGone => return,
        End::ClientClosed(payload) => {
            let _ = tcp_w.shutdown().await;
            let echo = ControlFrame::new(opcode::CLOSE, &payload);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, down.send_control(echo)).await;
            return;
        }
        End::Protocol(e) => {
            drop((tcp_r, tcp_w));
            close(&mut up, &mut down, ControlFrame::close(e.code, e.reason)).await;
            return;
        }
        // The manager's `TCPProxy` closes with a code and no reason (real 26.9.6).
        End::TcpEof | End::Stopped => 1001,
        End::TcpError => 1011,
    };
    drop((tcp_r, tcp_w));
    finish(&mut up, &mut down, code, &target).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(addr: SocketAddr, faults: TunnelFaults) -> Target {
        Target {
            addr,
            faults,
            session: CancellationToken::new(),
            sandbox: CancellationToken::new(),
        }
    }

    /// A masked client frame.
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        crate::ws::tests::frame(b0, payload, [0xA1, 0x22, 0x03, 0x94])
    }

    /// The next server frame (first byte and payload) on `s`.
    async fn read_frame<R: tokio::io::AsyncRead + Unpin>(s: &mut R) -> Option<(u8, Vec<u8>)> {
        let b0 = s.read_u8().await.ok()?;
        let b1 = s.read_u8().await.ok()?;
        assert_eq!(b1 & 0x80, 0, "server frames are unmasked");
        let len = match b1 & 0x7F {
            126 => u64::from(s.read_u16().await.ok()?),
            127 => s.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut p = vec![0u8; len as usize];
        s.read_exact(&mut p).await.ok()?;
        Some((b0, p))
    }

    async fn echo_app() -> SocketAddr {
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

    #[tokio::test]
    async fn pongs_go_between_whole_frames_and_the_app_eof_closes_with_1001() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let t = target(echo_app().await, TunnelFaults::default());
            let task = tokio::spawn(run(server, t.clone()));
            let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let mut stream = Vec::new();
            for (i, piece) in data.chunks(200_000).enumerate() {
                stream.extend(frame(0x82, piece));
                stream.extend(frame(0x89, format!("ping {i}").as_bytes()));
            }
            let (mut r, mut w) = tokio::io::split(client);
            let writer = tokio::spawn(async move {
                w.write_all(&stream).await.unwrap();
                w
            });
            let mut got = Vec::new();
            let mut pongs = 0;
            while got.len() < data.len() {
                let (b0, p) = read_frame(&mut r).await.unwrap();
                match b0 {
                    0x82 => got.extend(p),
                    0x8A => {
                        assert!(p.starts_with(b"ping "), "{p:?}");
                        pongs += 1;
                    }
                    other => panic!("unexpected frame {other:#x}"),
                }
            }
            assert!(got == data, "the echo is intact");
            assert!(pongs >= 1, "pings were answered");
            // The session stops: close 1001.
            let w = writer.await.unwrap();
            t.session.cancel();
            loop {
                let (b0, p) = read_frame(&mut r).await.unwrap();
                if b0 == 0x88 {
                    assert_eq!(&p[..2], &1001u16.to_be_bytes());
                    break;
                }
                assert_eq!(b0, 0x8A, "only late pongs before the close");
            }
            client = r.unsplit(w);
            drop(client);
            task.await.unwrap();
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn refused_ports_close_with_1013_and_drop_after_cuts_abruptly() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let (mut client, server) = tokio::io::duplex(4096);
            let faults = TunnelFaults {
                refuse_port: true,
                ..TunnelFaults::default()
            };
            tokio::spawn(run(server, target(echo_app().await, faults)));
            let (b0, p) = read_frame(&mut client).await.unwrap();
            assert_eq!((b0, &p[..2]), (0x88, &1013u16.to_be_bytes()[..]));

            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let faults = TunnelFaults {
                drop_after: Some(1000),
                ..TunnelFaults::default()
            };
            tokio::spawn(run(server, target(echo_app().await, faults)));
            client.write_all(&frame(0x82, &[7u8; 600])).await.unwrap();
            let mut got = 0;
            while let Some((b0, p)) = read_frame(&mut client).await {
                assert_eq!(b0, 0x82, "no close frame");
                got += p.len();
            }
            assert_eq!(got, 400, "1000 bytes in all, both ways");
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_app_closing_sends_1001_after_its_data() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                s.write_all(&[9u8; 100_000]).await.unwrap();
            });
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(run(server, target(addr, TunnelFaults::default())));
            let mut got = 0;
            loop {
                let (b0, p) = read_frame(&mut client).await.unwrap();
                if b0 == 0x88 {
                    assert_eq!(&p[..2], &1001u16.to_be_bytes());
                    break;
                }
                assert_eq!(b0, 0x82);
                got += p.len();
            }
            assert_eq!(got, 100_000);
        })
        .await
        .unwrap();
    }
}
