//! Unit tests of the data path over in-memory pipes (`tokio::io::duplex`, the server end as a
//! `Role::Server` WebSocket) and of the tunnel over loopback sockets with tiny fake servers.
//!
//! Length: tests only; one file so that every test shares the in-process rig above.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bai_testkit::{noise, within};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::live::{Liveness, Metered};
use crate::pump::pump;
use crate::stats::Counters;
use crate::{run_stdio, ConnError, Error, Event, Options, Stats, Target, Tunnel};

fn test_options() -> Options {
    Options {
        close_grace: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

type ServerWs = WebSocketStream<DuplexStream>;

/// The outcome of a pump run in the background, with its counters.
struct PumpRun {
    result: Result<(), ConnError>,
    up: u64,
    down: u64,
    peak_buffered: u64,
}

/// Starts `pump` between a local app end (returned) and a server WebSocket (returned).
async fn start_pump(
    options: Options,
    cancel: CancellationToken,
) -> (DuplexStream, ServerWs, tokio::task::JoinHandle<PumpRun>) {
    let (app, server_io, task) = start_pump_raw(options, cancel, 1024 * 1024, None);
    let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    (app, server, task)
}

/// Like [`start_pump`], with the server's end as raw bytes (a pipe of `ws_pipe` bytes) and the
/// counters mirrored into `stats`.
fn start_pump_raw(
    options: Options,
    cancel: CancellationToken,
    ws_pipe: usize,
    stats: Option<Arc<Stats>>,
) -> (DuplexStream, DuplexStream, tokio::task::JoinHandle<PumpRun>) {
    let (app, local) = tokio::io::duplex(64 * 1024);
    let (client_io, server_io) = tokio::io::duplex(ws_pipe);
    let task = tokio::spawn(async move {
        let live = Arc::new(Liveness::default());
        let client = crate::dial::ServerWs {
            io: Metered::new(client_io, live.clone()),
            read_ahead: bytes::BytesMut::new(),
        };
        let (mut reader, mut writer) = tokio::io::split(local);
        let counters = Counters::new(stats.as_deref());
        let result = pump(
            &mut reader,
            &mut writer,
            client,
            &options,
            &counters,
            &live,
            &cancel,
        )
        .await;
        PumpRun {
            result,
            up: counters.up(),
            down: counters.down(),
            peak_buffered: counters.peak_buffered(),
        }
    });
    (app, server_io, task)
}

/// Reads the server's next binary payload, skipping pongs.
async fn next_binary(server: &mut ServerWs) -> Option<Bytes> {
    loop {
        match server.next().await? {
            Ok(Message::Binary(b)) => return Some(b),
            Ok(Message::Pong(_) | Message::Ping(_)) => {}
            Ok(other) => panic!("expected binary, got {other:?}"),
            Err(e) => panic!("server read failed: {e}"),
        }
    }
}

#[tokio::test]
async fn forwards_bytes_both_ways_and_ignores_text() {
    within(10, async {
        let (mut app, mut server, task) =
            start_pump(test_options(), CancellationToken::new()).await;
        server.send(Message::binary(&b"hello"[..])).await.unwrap();
        server
            .send(Message::text("must not reach the socket"))
            .await
            .unwrap();
        server.send(Message::binary(&b" world"[..])).await.unwrap();
        let mut got = vec![0u8; 11];
        app.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");

        app.write_all(b"from the app").await.unwrap();
        assert_eq!(
            next_binary(&mut server).await.unwrap(),
            &b"from the app"[..]
        );

        server.close(None).await.unwrap();
        let mut rest = Vec::new();
        app.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "only binary payloads reach the socket");
        drop(app);
        let run = task.await.unwrap();
        assert!(run.result.is_ok(), "{:?}", run.result);
        assert_eq!((run.up, run.down), (12, 11));
    })
    .await;
}

#[tokio::test]
async fn ping_mid_stream_is_answered_and_data_flows() {
    within(10, async {
        let (mut app, mut server, task) =
            start_pump(test_options(), CancellationToken::new()).await;
        server.send(Message::binary(&b"one"[..])).await.unwrap();
        server
            .send(Message::Ping(Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        server.send(Message::binary(&b"two"[..])).await.unwrap();
        let mut got = [0u8; 6];
        app.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"onetwo");
        match server.next().await.unwrap().unwrap() {
            Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
            other => panic!("expected pong, got {other:?}"),
        }
        drop(app);
        drop(server);
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn tunnel_pings_the_server_on_its_interval() {
    within(10, async {
        let mut options = test_options();
        options.ping_interval = Some(Duration::from_millis(50));
        let (app, mut server, task) = start_pump(options, CancellationToken::new()).await;
        match server.next().await.unwrap().unwrap() {
            Message::Ping(_) => {}
            other => panic!("expected ping, got {other:?}"),
        }
        drop(app);
        drop(server);
        task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn server_close_is_local_eof_after_the_data() {
    within(10, async {
        let (mut app, mut server, task) =
            start_pump(test_options(), CancellationToken::new()).await;
        server
            .send(Message::binary(&b"last words"[..]))
            .await
            .unwrap();
        server
            .close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "".into(),
            }))
            .await
            .unwrap();
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got, b"last words");
        // The app closes too, as ssh would on EOF.
        drop(app);
        let run = task.await.unwrap();
        assert!(run.result.is_ok(), "1001 is a normal end: {:?}", run.result);
    })
    .await;
}

#[tokio::test]
async fn local_eof_sends_close_and_still_delivers_the_reply() {
    within(10, async {
        let (mut app, mut server, task) =
            start_pump(test_options(), CancellationToken::new()).await;
        app.write_all(b"request").await.unwrap();
        app.shutdown().await.unwrap();
        assert_eq!(next_binary(&mut server).await.unwrap(), &b"request"[..]);
        // The reply goes out after our close was sent; it must still reach the app.
        server.send(Message::binary(&b"reply"[..])).await.unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected close, got {other:?}"),
        }
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got, b"reply");
        let run = task.await.unwrap();
        assert!(run.result.is_ok(), "{:?}", run.result);
    })
    .await;
}

#[tokio::test]
async fn local_eof_without_a_close_from_the_server_ends_within_the_grace() {
    // A real 23.09 webserver never relays the close: the tunnel must not wait for it.
    within(10, async {
        let (mut app, server, task) = start_pump(test_options(), CancellationToken::new()).await;
        app.shutdown().await.unwrap();
        let started = std::time::Instant::now();
        let run = task.await.unwrap();
        assert!(run.result.is_ok(), "{:?}", run.result);
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        drop(server);
    })
    .await;
}

#[tokio::test]
async fn large_transfers_keep_integrity_both_ways() {
    within(60, async {
        let size = 8 * 1024 * 1024;
        let up_data = noise(size, 1);
        let down_data = noise(size, 2);
        let (app, server, task) = start_pump(test_options(), CancellationToken::new()).await;
        let (mut app_r, mut app_w) = tokio::io::split(app);

        let up_copy = up_data.clone();
        let writer = tokio::spawn(async move {
            app_w.write_all(&up_copy).await.unwrap();
            app_w
        });
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; size];
            app_r.read_exact(&mut got).await.unwrap();
            (app_r, got)
        });
        // The server sends big frames (bigger than ours) while receiving.
        let (mut server_tx, mut server_rx) = server.split();
        let down_copy = down_data.clone();
        let sender = tokio::spawn(async move {
            for chunk in down_copy.chunks(1024 * 1024) {
                server_tx
                    .send(Message::binary(chunk.to_vec()))
                    .await
                    .unwrap();
            }
            server_tx
        });
        let mut received = Vec::with_capacity(size);
        let mut largest = 0;
        while received.len() < size {
            match server_rx.next().await.unwrap().unwrap() {
                Message::Binary(b) => {
                    largest = largest.max(b.len());
                    received.extend_from_slice(&b);
                }
                Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(received == up_data, "upload corrupted");
        assert!(
            largest <= 256 * 1024,
            "frames are at most 256 KiB, got {largest}"
        );
        assert!(
            largest > 16 * 1024,
            "bulk reads grow to large frames, got {largest}"
        );
        let (app_r, got) = reader.await.unwrap();
        assert!(got == down_data, "download corrupted");
        let app_w = writer.await.unwrap();
        let server_tx = sender.await.unwrap();
        let mut server = server_tx.reunite(server_rx).unwrap();
        server.close(None).await.unwrap();
        drop((app_r, app_w));
        let run = task.await.unwrap();
        assert_eq!((run.up, run.down), (size as u64, size as u64));
    })
    .await;
}

#[tokio::test]
async fn error_close_fails_the_connection_and_writes_nothing() {
    within(10, async {
        let (mut app, mut server, task) =
            start_pump(test_options(), CancellationToken::new()).await;
        app.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap();
        server
            .close(Some(CloseFrame {
                code: CloseCode::Again,
                reason: "".into(),
            }))
            .await
            .unwrap();
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "nothing but remote bytes: {got:?}");
        drop(app);
        let run = task.await.unwrap();
        assert_eq!(run.result.unwrap_err().close_code(), Some(1013));
    })
    .await;
}

#[tokio::test]
async fn dropped_websocket_fails_the_connection_and_writes_nothing() {
    within(10, async {
        let (mut app, server, task) = start_pump(test_options(), CancellationToken::new()).await;
        drop(server);
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        drop(app);
        let run = task.await.unwrap();
        assert!(
            matches!(run.result, Err(ConnError::WebSocket(_))),
            "{:?}",
            run.result
        );
    })
    .await;
}

#[tokio::test]
async fn silent_server_times_out() {
    within(10, async {
        let mut options = test_options();
        options.ping_interval = None;
        options.peer_timeout = Some(Duration::from_millis(200));
        let (_app, mut server, task) = start_pump(options, CancellationToken::new()).await;
        // The tunnel says goodbye before it drops the WebSocket.
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected close, got {other:?}"),
        }
        let run = task.await.unwrap();
        assert_eq!(
            run.result.unwrap_err(),
            ConnError::PeerTimeout(Duration::from_millis(200))
        );
    })
    .await;
}

/// Reads the server's end of the pipe slowly (`per_tick` bytes every 10 ms) and never writes:
/// no data, no pongs. Returns how many bytes it read.
fn slow_silent_server(
    mut server_io: DuplexStream,
    per_tick: usize,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; per_tick];
        let mut total = 0u64;
        loop {
            match server_io.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test]
async fn issue_4_slow_uplink_with_a_silent_server_is_not_a_peer_timeout() {
    // A slow uplink: one 256 KiB frame takes ~0.6 s to leave, far longer than the peer timeout,
    // and the server sends nothing back (its pongs would be queued behind our data anyway).
    within(30, async {
        let mut options = test_options();
        options.ping_interval = Some(Duration::from_millis(50));
        options.peer_timeout = Some(Duration::from_millis(300));
        options.close_grace = Duration::from_millis(100);
        let (mut app, server_io, task) =
            start_pump_raw(options, CancellationToken::new(), 4 * 1024, None);
        let server = slow_silent_server(server_io, 4 * 1024);
        let total = 1024 * 1024;
        app.write_all(&noise(total, 9)).await.unwrap();
        app.shutdown().await.unwrap();
        let run = task.await.unwrap();
        assert!(
            run.result.is_ok(),
            "a live upload was killed: {:?}",
            run.result
        );
        assert_eq!(run.up, total as u64);
        assert!(server.await.unwrap() > total as u64);
    })
    .await;
}

#[tokio::test]
async fn stalled_server_that_takes_no_data_still_times_out() {
    within(10, async {
        let mut options = test_options();
        options.ping_interval = None;
        options.peer_timeout = Some(Duration::from_millis(300));
        let stats = Arc::new(Stats::default());
        let (mut app, server_io, task) = start_pump_raw(
            options,
            CancellationToken::new(),
            8 * 1024,
            Some(stats.clone()),
        );
        // The upload fills the pipe, then nothing moves either way.
        let writer = tokio::spawn(async move {
            let _ = app.write_all(&noise(1024 * 1024, 5)).await;
            app
        });
        let run = task.await.unwrap();
        assert_eq!(
            run.result.unwrap_err(),
            ConnError::PeerTimeout(Duration::from_millis(300))
        );
        assert_eq!(stats.buffered(), 0);
        drop(server_io);
        writer.abort();
    })
    .await;
}

#[tokio::test]
async fn buffered_bytes_return_to_zero_when_a_transfer_is_cancelled_or_aborted() {
    within(20, async {
        for abort in [false, true] {
            let stats = Arc::new(Stats::default());
            let cancel = CancellationToken::new();
            // The server never reads: the first frame's send blocks with its bytes held.
            let (mut app, server_io, task) =
                start_pump_raw(test_options(), cancel.clone(), 1024, Some(stats.clone()));
            app.write_all(&noise(32 * 1024, 6)).await.unwrap();
            while stats.buffered() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if abort {
                task.abort();
                let _ = task.await;
            } else {
                cancel.cancel();
                let run = task.await.unwrap();
                assert!(run.result.is_ok(), "{:?}", run.result);
            }
            assert_eq!(stats.buffered(), 0, "abort={abort}: held bytes leaked");
            drop((app, server_io));
        }
    })
    .await;
}

/// A local side whose reads fail (a reset socket).
struct FailingReader;

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
    }
}

#[tokio::test]
async fn local_side_gone_sends_going_away() {
    within(10, async {
        let options = test_options();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let live = Arc::new(Liveness::default());
        let client = crate::dial::ServerWs {
            io: Metered::new(client_io, live.clone()),
            read_ahead: bytes::BytesMut::new(),
        };
        let mut server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let run = tokio::spawn(async move {
            let counters = Counters::new(None);
            pump(
                &mut FailingReader,
                &mut tokio::io::sink(),
                client,
                &options,
                &counters,
                &live,
                &CancellationToken::new(),
            )
            .await
        });
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected close, got {other:?}"),
        }
        // The server's reply to the close ends the connection cleanly.
        while let Some(Ok(_)) = server.next().await {}
        assert!(run.await.unwrap().is_ok());
    })
    .await;
}

#[tokio::test]
async fn local_side_gone_while_receiving_sends_going_away() {
    within(10, async {
        let options = test_options();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let live = Arc::new(Liveness::default());
        let client = crate::dial::ServerWs {
            io: Metered::new(client_io, live.clone()),
            read_ahead: bytes::BytesMut::new(),
        };
        let mut server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        // The local reader stays silent; local writes fail.
        let (_keep, local) = tokio::io::duplex(1024);
        let (mut reader, _) = tokio::io::split(local);
        let (gone, _) = tokio::io::duplex(1024);
        let (_, mut writer) = tokio::io::split(gone);
        let run = tokio::spawn(async move {
            let counters = Counters::new(None);
            pump(
                &mut reader,
                &mut writer,
                client,
                &options,
                &counters,
                &live,
                &CancellationToken::new(),
            )
            .await
        });
        server
            .send(Message::binary(&b"for nobody"[..]))
            .await
            .unwrap();
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected close, got {other:?}"),
        }
        assert!(run.await.unwrap().is_ok());
    })
    .await;
}

#[tokio::test]
async fn memory_stays_bounded_under_a_slow_local_reader() {
    within(60, async {
        let mut options = test_options();
        // A reader pause far longer than the peer timeout must not count against the server.
        options.peer_timeout = Some(Duration::from_millis(100));
        let (mut app, server, task) = start_pump(options, CancellationToken::new()).await;
        let total: u64 = 24 * 1024 * 1024;
        let frame = 256 * 1024;
        let sent = Arc::new(AtomicU64::new(0));
        let (mut server_tx, server_rx) = server.split();
        let sent2 = sent.clone();
        let sender = tokio::spawn(async move {
            let payload = Bytes::from(noise(frame, 3));
            let mut n = 0;
            while n < total {
                server_tx
                    .send(Message::Binary(payload.clone()))
                    .await
                    .unwrap();
                n += frame as u64;
                sent2.store(n, Ordering::SeqCst);
            }
            server_tx
        });
        // Keep reading the server's side so our pongs do not pile up.
        let drain = tokio::spawn(async move {
            let mut rx = server_rx;
            while let Some(Ok(_)) = rx.next().await {}
        });
        let mut read: u64 = 0;
        let mut max_ahead: u64 = 0;
        let mut buf = vec![0u8; 32 * 1024];
        let mut paused = false;
        while read < total {
            let n = app.read(&mut buf).await.unwrap();
            assert!(n > 0);
            read += n as u64;
            max_ahead = max_ahead.max(sent.load(Ordering::SeqCst).saturating_sub(read));
            if !paused && read > total / 3 {
                paused = true;
                tokio::time::sleep(Duration::from_millis(400)).await;
            } else if read % (1024 * 1024) < 32 * 1024 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // In flight at most: the WS pipe (1 MiB), tungstenite's read buffer and one message,
        // the message being written, and the local pipe (64 KiB).
        assert!(
            max_ahead <= 3 * 1024 * 1024,
            "the server got {max_ahead} bytes ahead of a slow reader"
        );
        let mut server = sender.await.unwrap();
        server.close().await.unwrap();
        drop(app);
        drain.abort();
        let run = task.await.unwrap();
        assert!(run.result.is_ok(), "{:?}", run.result);
        assert!(
            run.peak_buffered <= frame as u64,
            "the tunnel held {} bytes at once",
            run.peak_buffered
        );
    })
    .await;
}

#[tokio::test]
async fn memory_stays_bounded_under_a_slow_server() {
    within(60, async {
        let (app, mut server, task) = start_pump(test_options(), CancellationToken::new()).await;
        let total: u64 = 16 * 1024 * 1024;
        let written = Arc::new(AtomicU64::new(0));
        let written2 = written.clone();
        let (_app_r, mut app_w) = tokio::io::split(app);
        let writer = tokio::spawn(async move {
            let chunk = noise(64 * 1024, 4);
            let mut n = 0;
            while n < total {
                app_w.write_all(&chunk).await.unwrap();
                n += chunk.len() as u64;
                written2.store(n, Ordering::SeqCst);
            }
            app_w.shutdown().await.unwrap();
        });
        let mut received: u64 = 0;
        let mut max_ahead: u64 = 0;
        let mut frames = 0u64;
        while received < total {
            let b = next_binary(&mut server).await.unwrap();
            received += b.len() as u64;
            frames += 1;
            max_ahead = max_ahead.max(written.load(Ordering::SeqCst).saturating_sub(received));
            if frames.is_multiple_of(8) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        assert!(
            max_ahead <= 3 * 1024 * 1024,
            "the app got {max_ahead} bytes ahead of a slow server"
        );
        writer.await.unwrap();
        let run = task.await.unwrap();
        assert!(run.peak_buffered <= 256 * 1024, "{}", run.peak_buffered);
        assert_eq!(run.up, total);
    })
    .await;
}

#[tokio::test]
async fn cancel_sends_going_away_and_ends() {
    within(10, async {
        let cancel = CancellationToken::new();
        let (mut app, mut server, task) = start_pump(test_options(), cancel.clone()).await;
        app.write_all(b"x").await.unwrap();
        assert_eq!(next_binary(&mut server).await.unwrap(), &b"x"[..]);
        cancel.cancel();
        match server.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected close, got {other:?}"),
        }
        let run = task.await.unwrap();
        assert!(run.result.is_ok());
        let mut got = Vec::new();
        app.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
    })
    .await;
}

// ---- the tunnel over loopback, with tiny fake servers ----

/// A WebSocket server on loopback port 0 that runs `serve` for every connection.
async fn ws_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(WebSocketStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let serve = serve.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    serve(ws).await;
                }
            });
        }
    });
    addr
}

/// Echoes binary frames until the client closes.
async fn echo(mut ws: WebSocketStream<TcpStream>) {
    while let Some(Ok(msg)) = ws.next().await {
        let sent = match msg {
            Message::Binary(b) => ws.send(Message::Binary(b)).await,
            Message::Close(_) => return,
            _ => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A plain TCP server that answers every request with `response` and closes.
async fn http_server(response: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(response.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/stream/session/mysess/tcpproxy?app=sshd")
}

async fn spawn_tunnel(
    connector: impl crate::Connector,
    options: Options,
) -> (crate::TunnelHandle, broadcast::Receiver<Event>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tunnel = Tunnel::new(listener, connector, options).unwrap();
    let events = tunnel.subscribe();
    (tunnel.spawn(), events)
}

/// Events up to and including the `Closed` of one connection.
async fn events_until_closed(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    bai_testkit::recv_until(events, |e| matches!(e, Event::Closed { .. })).await
}

#[tokio::test]
async fn refused_upgrade_closes_cleanly_reports_the_message_and_keeps_serving() {
    within(20, async {
        let body = r#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such session.","error_code":"session_read_not-found"}"#;
        let refusing = http_server(format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let good = ws_server(echo).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let calls2 = calls.clone();
        let connector = move || {
            let addr = if calls2.fetch_add(1, Ordering::SeqCst) == 0 {
                refusing
            } else {
                good
            };
            Target::from_url(&url(addr))
        };
        let (handle, mut events) = spawn_tunnel(connector, test_options()).await;

        // Like ssh: the client speaks first, then must see an orderly close with zero bytes.
        let mut client = TcpStream::connect(handle.local_addr()).await.unwrap();
        client.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap();
        let mut got = Vec::new();
        client
            .read_to_end(&mut got)
            .await
            .expect("an orderly close, not a reset");
        assert!(got.is_empty(), "nothing but remote bytes: {got:?}");
        drop(client);

        let seen = events_until_closed(&mut events).await;
        assert!(matches!(seen[0], Event::Opened { .. }));
        let failure = seen
            .iter()
            .find_map(|e| match e {
                Event::Failed { error, .. } => Some(error.clone()),
                _ => None,
            })
            .expect("a Failed event");
        assert_eq!(failure.http_status(), Some(404));
        assert!(
            failure.to_string().contains("No such session."),
            "{failure}"
        );
        assert_eq!(handle.stats().last_error(), Some(failure));

        // The listener still serves.
        let mut client = TcpStream::connect(handle.local_addr()).await.unwrap();
        client.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"still here");
        drop(client);
        let seen = events_until_closed(&mut events).await;
        assert!(!seen.iter().any(|e| matches!(e, Event::Failed { .. })), "{seen:?}");
        let stats = handle.stats().snapshot();
        assert_eq!((stats.total, stats.failed), (2, 1));
        handle.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refused_port_close_1013_is_reported() {
    within(20, async {
        let server = ws_server(|mut ws: WebSocketStream<TcpStream>| async move {
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Again,
                    reason: "".into(),
                }))
                .await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let (handle, mut events) =
            spawn_tunnel(move || Target::from_url(&url(server)), test_options()).await;
        let mut client = TcpStream::connect(handle.local_addr()).await.unwrap();
        client.write_all(b"SSH-2.0-x\r\n").await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        drop(client);
        let seen = events_until_closed(&mut events).await;
        assert!(
            seen.iter().any(
                |e| matches!(e, Event::Failed { error, .. } if error.close_code() == Some(1013))
            ),
            "{seen:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn slow_upgrade_hits_the_connect_timeout() {
    within(20, async {
        // Accepts TCP, never answers the upgrade.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let mut options = test_options();
        options.connect_timeout = Duration::from_millis(300);
        let (handle, mut events) =
            spawn_tunnel(move || Target::from_url(&url(addr)), options).await;
        let mut client = TcpStream::connect(handle.local_addr()).await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
        let seen = events_until_closed(&mut events).await;
        assert!(
            seen.iter().any(|e| matches!(
                e,
                Event::Failed {
                    error: ConnError::Timeout(_),
                    ..
                }
            )),
            "{seen:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn connector_errors_are_reported() {
    within(10, async {
        let connector = || -> Result<Target, std::io::Error> {
            Err(std::io::Error::other("credentials expired"))
        };
        let (handle, mut events) = spawn_tunnel(connector, test_options()).await;
        let mut client = TcpStream::connect(handle.local_addr()).await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let seen = events_until_closed(&mut events).await;
        assert!(
            seen.iter().any(|e| matches!(e, Event::Failed { error: ConnError::Connector(m), .. } if m.contains("expired"))),
            "{seen:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn stop_with_open_streams_ends_within_the_grace() {
    within(20, async {
        let closes = Arc::new(AtomicUsize::new(0));
        let closes2 = closes.clone();
        let server = ws_server(move |mut ws: WebSocketStream<TcpStream>| {
            let closes = closes2.clone();
            async move {
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Binary(b) => {
                            let _ = ws.send(Message::Binary(b)).await;
                        }
                        Message::Close(Some(f)) if f.code == CloseCode::Away => {
                            closes.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        let (handle, mut events) =
            spawn_tunnel(move || Target::from_url(&url(server)), test_options()).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut c = TcpStream::connect(handle.local_addr()).await.unwrap();
            c.write_all(b"hi").await.unwrap();
            let mut back = [0u8; 2];
            c.read_exact(&mut back).await.unwrap();
            clients.push(c);
        }
        assert_eq!(handle.stats().active(), 3);
        let addr = handle.local_addr();
        let stats = handle.stats();
        let started = std::time::Instant::now();
        handle.stop_within(Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(stats.active(), 0);
        for mut c in clients {
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest).await;
            assert!(rest.is_empty());
        }
        let mut closed = 0;
        while let Ok(event) = events.try_recv() {
            if matches!(event, Event::Closed { .. }) {
                closed += 1;
            }
        }
        assert_eq!(closed, 3);
        // The server saw "going away" from each.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(closes.load(Ordering::SeqCst), 3);
        // And the port is no longer served.
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_tunnel() {
    within(10, async {
        let server = ws_server(echo).await;
        let (handle, _events) =
            spawn_tunnel(move || Target::from_url(&url(server)), test_options()).await;
        let addr = handle.local_addr();
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ok").await.unwrap();
        let mut back = [0u8; 2];
        c.read_exact(&mut back).await.unwrap();
        drop(handle);
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        // The listener is gone soon after.
        for _ in 0..50 {
            if TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("still listening after the handle was dropped");
    })
    .await;
}

#[tokio::test]
async fn connection_cap_queues_extra_clients() {
    within(20, async {
        let server = ws_server(echo).await;
        let mut options = test_options();
        options.max_connections = Some(1);
        let (handle, _events) = spawn_tunnel(move || Target::from_url(&url(server)), options).await;
        let mut first = TcpStream::connect(handle.local_addr()).await.unwrap();
        first.write_all(b"1").await.unwrap();
        let mut b = [0u8; 1];
        first.read_exact(&mut b).await.unwrap();
        let mut second = TcpStream::connect(handle.local_addr()).await.unwrap();
        second.write_all(b"2").await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(200), second.read_exact(&mut b)).await;
        assert!(waited.is_err(), "the second client waits for a slot");
        drop(first);
        second.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"2");
        handle.stop().await;
    })
    .await;
}

#[tokio::test]
async fn stdio_mode_carries_one_connection() {
    within(10, async {
        let server = ws_server(echo).await;
        let connector = move || Target::from_url(&url(server));
        let (mut stdin_w, stdin_r) = tokio::io::duplex(1024);
        let (stdout_w, mut stdout_r) = tokio::io::duplex(1024);
        let run = tokio::spawn(async move {
            run_stdio(
                &connector,
                stdin_r,
                stdout_w,
                &test_options(),
                CancellationToken::new(),
            )
            .await
        });
        stdin_w.write_all(b"over stdio").await.unwrap();
        let mut back = [0u8; 10];
        stdout_r.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"over stdio");
        drop(stdin_w);
        let summary = run.await.unwrap().unwrap();
        assert_eq!((summary.bytes_up, summary.bytes_down), (10, 10));
        let mut rest = Vec::new();
        stdout_r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await;
}

#[tokio::test]
async fn stdio_mode_refused_upgrade_writes_nothing() {
    within(10, async {
        let refusing = http_server(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        )
        .await;
        let connector = move || Target::from_url(&url(refusing));
        let (_stdin_w, stdin_r) = tokio::io::duplex(1024);
        let (stdout_w, mut stdout_r) = tokio::io::duplex(1024);
        let result = run_stdio(
            &connector,
            stdin_r,
            stdout_w,
            &test_options(),
            CancellationToken::new(),
        )
        .await;
        match result {
            Err(Error::Connection(e)) => assert_eq!(e.http_status(), Some(502)),
            other => panic!("expected a refused upgrade, got {other:?}"),
        }
        let mut rest = Vec::new();
        stdout_r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await;
}

#[tokio::test]
async fn dropping_the_serve_future_cancels_its_connections() {
    within(20, async {
        let closes = Arc::new(AtomicUsize::new(0));
        let closes2 = closes.clone();
        let server = ws_server(move |mut ws: WebSocketStream<TcpStream>| {
            let closes = closes2.clone();
            async move {
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Binary(b) => {
                            let _ = ws.send(Message::Binary(b)).await;
                        }
                        Message::Close(Some(f)) if f.code == CloseCode::Away => {
                            closes.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tunnel = Tunnel::new(
            listener,
            move || Target::from_url(&url(server)),
            test_options(),
        )
        .unwrap();
        let addr = tunnel.local_addr();
        let stats = tunnel.stats();
        let mut events = tunnel.subscribe();
        let mut client = TcpStream::connect(addr).await.unwrap();
        // As a CLI would: serve until something else (ctrl_c) wins the select.
        tokio::select! {
            () = tunnel.serve(CancellationToken::new()) => panic!("serve ended by itself"),
            () = async {
                client.write_all(b"hi").await.unwrap();
                let mut back = [0u8; 2];
                client.read_exact(&mut back).await.unwrap();
            } => {}
        }
        // The serve future is gone: its connection must end too.
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        let seen = events_until_closed(&mut events).await;
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Failed { .. })),
            "{seen:?}"
        );
        for _ in 0..100 {
            if stats.active() == 0 && closes.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stats.active(), 0);
        assert_eq!(
            closes.load(Ordering::SeqCst),
            1,
            "the server saw going away"
        );
    })
    .await;
}

/// Resident memory of this process, from /proc (Linux only).
fn vm_rss_kib() -> Option<u64> {
    bai_testkit::process::self_status_kib("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_after_bursts_hold_nothing() {
    // Prints the resident memory of 100 idle connections that each moved 1 MiB both ways. The
    // figure includes this process's echo server (its own WebSocket buffers), so it is an upper
    // bound for the tunnel; only the tunnel's own accounting is asserted.
    const N: usize = 100;
    within(120, async {
        let server = ws_server(echo).await;
        let (handle, _events) =
            spawn_tunnel(move || Target::from_url(&url(server)), test_options()).await;
        let addr = handle.local_addr();
        let before = vm_rss_kib();
        let data = Arc::new(noise(1024 * 1024, 11));
        let mut clients = Vec::new();
        for batch in 0..N / 10 {
            let mut tasks = Vec::new();
            for _ in 0..10 {
                let data = data.clone();
                tasks.push(tokio::spawn(async move {
                    let tcp = TcpStream::connect(addr).await.unwrap();
                    let (mut r, mut w) = tcp.into_split();
                    let sent = data.clone();
                    let writer = tokio::spawn(async move {
                        w.write_all(&sent).await.unwrap();
                        w
                    });
                    // Compared piecewise, so the test's own buffers stay small.
                    let mut piece = [0u8; 16 * 1024];
                    let mut at = 0;
                    while at < data.len() {
                        let n = r.read(&mut piece).await.unwrap();
                        assert!(n > 0 && piece[..n] == data[at..at + n]);
                        at += n;
                    }
                    (r, writer.await.unwrap())
                }));
            }
            for t in tasks {
                clients.push(t.await.unwrap());
            }
            let _ = batch;
        }
        let stats = handle.stats();
        assert_eq!(stats.active(), N as u64);
        // Let the connections notice they are idle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = vm_rss_kib();
        assert_eq!(stats.buffered(), 0);
        if let (Some(before), Some(after)) = (before, after) {
            eprintln!(
                "{N} idle connections after 1 MiB each way: VmRSS {before} KiB -> {after} KiB \
                 (+{} KiB, tunnel and echo server together)",
                after.saturating_sub(before)
            );
        }
        drop(clients);
        handle.stop().await;
    })
    .await;
}

/// A `wss` echo server with a fresh self-signed certificate for `localhost`; returns its
/// address and the certificate.
async fn wss_echo_server() -> (SocketAddr, rustls::pki_types::CertificateDer<'static>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cert = ck.cert.der().clone();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    let sent = match msg {
                        Message::Binary(b) => ws.send(Message::Binary(b)).await,
                        Message::Close(_) => return,
                        _ => Ok(()),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, cert)
}

fn client_tls(trusted: &rustls::pki_types::CertificateDer<'static>) -> crate::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    crate::TlsConnector::Rustls(Arc::new(config))
}

#[tokio::test]
async fn wss_carries_bytes_both_ways_and_refuses_an_untrusted_certificate() {
    within(30, async {
        let (addr, cert) = wss_echo_server().await;
        let url = format!(
            "wss://localhost:{}/stream/session/s/tcpproxy?app=sshd",
            addr.port()
        );
        let tls = client_tls(&cert);
        let trusted_url = url.clone();
        let (handle, _events) = spawn_tunnel(
            move || {
                Target::from_url(&trusted_url).map(|mut t| {
                    t.tls = Some(tls.clone());
                    t
                })
            },
            test_options(),
        )
        .await;
        // Several MiB, so that TLS records and WebSocket frames split differently.
        let data = noise(3 * 1024 * 1024 + 17, 5);
        let tcp = TcpStream::connect(handle.local_addr()).await.unwrap();
        let (mut r, mut w) = tcp.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w
        });
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.unwrap();
        assert!(back == data, "the echo through wss differs");
        drop(writer.await.unwrap());
        handle.stop().await;

        // Another certificate: the handshake fails with a TLS error and nothing is written.
        let (_, other) = wss_echo_server().await;
        let tls = client_tls(&other);
        let (handle, mut events) = spawn_tunnel(
            move || {
                Target::from_url(&url).map(|mut t| {
                    t.tls = Some(tls.clone());
                    t
                })
            },
            test_options(),
        )
        .await;
        let mut tcp = TcpStream::connect(handle.local_addr()).await.unwrap();
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "nothing but server bytes reach the client");
        let failed = events_until_closed(&mut events).await;
        let message = failed
            .iter()
            .find_map(|e| match e {
                Event::Failed { error, .. } => Some(error.to_string()),
                _ => None,
            })
            .expect("a failed event");
        assert!(message.contains("TLS"), "{message}");
        handle.stop().await;
    })
    .await;
}

/// The pump against hand-made server frames (tungstenite never fragments or misbehaves).
mod hand_made_frames {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_util::sync::CancellationToken;

    use crate::live::{Liveness, Metered};
    use crate::stats::Counters;
    use crate::{ConnError, Options};

    /// An unmasked server frame.
    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    /// Reads one client frame, checks it is masked, returns its first byte and payload.
    async fn client_frame(s: &mut DuplexStream) -> (u8, Vec<u8>) {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).await.unwrap();
        assert!(h[1] & 0x80 != 0, "client frames are masked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).await.unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).await.unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut key = [0u8; 4];
        s.read_exact(&mut key).await.unwrap();
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).await.unwrap();
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        (h[0], p)
    }

    fn options() -> Options {
        Options {
            ping_interval: None,
            peer_timeout: Some(Duration::from_secs(5)),
            close_grace: Duration::from_millis(300),
            ..Options::default()
        }
    }

    type Run = tokio::task::JoinHandle<(Result<(), ConnError>, u64)>;

    /// The pump with `read_ahead` as the bytes that came with the 101; returns the local app's
    /// end, the server's raw end, and the pump's result with the bytes delivered down.
    fn start(read_ahead: &[u8]) -> (DuplexStream, DuplexStream, Run) {
        let (app, local) = tokio::io::duplex(64 * 1024);
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let read_ahead = bytes::BytesMut::from(read_ahead);
        let task = tokio::spawn(async move {
            let live = Arc::new(Liveness::default());
            let ws = crate::dial::ServerWs {
                io: Metered::new(client_io, live.clone()),
                read_ahead,
            };
            let (mut r, mut w) = tokio::io::split(local);
            let counters = Counters::new(None);
            let options = options();
            let cancel = CancellationToken::new();
            let result =
                crate::pump::pump(&mut r, &mut w, ws, &options, &counters, &live, &cancel).await;
            (result, counters.down())
        });
        (app, server_io, task)
    }

    #[tokio::test]
    async fn fragments_with_controls_between_them_arrive_and_text_is_skipped() {
        super::within(20, async {
            let mut stream = Vec::new();
            stream.extend(server_frame(0x02, b"ab")); // binary, more to come
            stream.extend(server_frame(0x89, b"p1")); // ping between fragments
            stream.extend(server_frame(0x00, b"cd")); // continuation
            stream.extend(server_frame(0x8A, b"")); // pong between fragments
            stream.extend(server_frame(0x80, b"ef")); // last continuation
            stream.extend(server_frame(0x01, b"TEXT")); // text, more to come
            stream.extend(server_frame(0x89, b"p2"));
            stream.extend(server_frame(0x80, b"MORE")); // its continuation: skipped too
            stream.extend(server_frame(0x82, b"gh"));
            stream.extend(server_frame(0x82, &vec![7u8; 70_000]));
            stream.extend(server_frame(0x88, &1000u16.to_be_bytes()));
            // Five bytes come with the 101; the rest one byte at a time, so every header is
            // split at every offset.
            let (mut app, mut server, task) = start(&stream[..5]);
            let rest = stream[5..].to_vec();
            let frames = tokio::spawn(async move {
                for b in rest {
                    server.write_all(&[b]).await.unwrap();
                }
                let mut got = Vec::new();
                loop {
                    let (b0, p) = client_frame(&mut server).await;
                    got.push((b0, p));
                    if b0 == 0x88 {
                        return got;
                    }
                }
            });
            let mut out = Vec::new();
            app.read_to_end(&mut out).await.unwrap();
            let mut want = b"abcdefgh".to_vec();
            want.extend(vec![7u8; 70_000]);
            assert!(out == want, "got {} bytes", out.len());
            let got = frames.await.unwrap();
            assert!(
                got.iter().any(|(b0, p)| *b0 == 0x8A && p == b"p2"),
                "a pong for the latest ping"
            );
            assert_eq!(
                got.last().unwrap(),
                &(0x88u8, 1000u16.to_be_bytes().to_vec())
            );
            let (result, down) = task.await.unwrap();
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(down, 70_008);
        })
        .await;
    }

    #[tokio::test]
    async fn frames_that_break_the_rules_close_with_1002() {
        super::within(20, async {
            let orphan = server_frame(0x00, b"x");
            let mut interleaved = server_frame(0x02, b"a");
            interleaved.extend(server_frame(0x82, b"b"));
            let masked = vec![0x82, 0x81, 0, 0, 0, 0, 1];
            for bad in [orphan, interleaved, masked] {
                let (mut app, mut server, task) = start(&[]);
                server.write_all(&bad).await.unwrap();
                let (b0, p) = client_frame(&mut server).await;
                assert_eq!(b0, 0x88);
                assert_eq!(&p[..2], &1002u16.to_be_bytes());
                let mut out = Vec::new();
                app.read_to_end(&mut out).await.unwrap();
                assert!(out.is_empty() || out == b"a", "{out:?}");
                let (result, _) = task.await.unwrap();
                assert!(result.is_err());
            }
        })
        .await;
    }
}

/// Property tests of the down half: whatever the server sends, only binary payloads reach the
/// local side. Bounded and deterministic by default (`PROPTEST_CASES` and `PROPTEST_RNG_SEED`
/// override the case count and the seed).
mod pump_props {
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use proptest::sample::Index;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::sync::CancellationToken;

    use crate::live::{Liveness, Metered};
    use crate::stats::Counters;
    use crate::{ConnError, Options};

    /// The largest frame the pump accepts here (bigger ones close with 1009).
    const MAX_FRAME: usize = 100_000;

    /// A fragment of a message: payload length and seed, and the first byte and length of a
    /// control frame sent after it.
    type Fragment = (usize, u64, Option<(u8, usize)>);

    /// A client frame: first byte and payload.
    type ClientFrame = (u8, Vec<u8>);

    /// One thing the server sends.
    #[derive(Debug, Clone)]
    enum Piece {
        /// A frame with any first byte (FIN, RSV, opcode) and a payload of this length.
        Frame { b0: u8, len: usize, seed: u64 },
        /// A whole, valid message, fragmented, with control frames between the fragments.
        Message {
            binary: bool,
            fragments: Vec<Fragment>,
        },
        /// A close frame with any payload.
        Close(Vec<u8>),
        /// Anything.
        Garbage(Vec<u8>),
        /// The header of a frame longer than the limit, with the payload that fits in 64 KiB.
        Huge { b0: u8, len: u64 },
    }

    fn filler(len: usize, seed: u64) -> Vec<u8> {
        super::noise(len, seed)
    }

    fn payload_len() -> impl Strategy<Value = usize> {
        prop_oneof![8 => 0usize..126, 3 => 126usize..3000, 1 => 65536usize..70_000]
    }

    /// A whole message, fragmented, with pings and pongs between its fragments.
    fn message() -> impl Strategy<Value = Piece> {
        (
            any::<bool>(),
            prop::collection::vec(
                (
                    payload_len(),
                    any::<u64>(),
                    prop::option::weighted(
                        0.3,
                        (prop::sample::select(vec![0x89u8, 0x8A]), 0usize..=125),
                    ),
                ),
                1..4,
            ),
        )
            .prop_map(|(binary, fragments)| Piece::Message { binary, fragments })
    }

    /// A ping or a pong.
    fn ping_pong() -> impl Strategy<Value = Piece> {
        (
            prop::sample::select(vec![0x89u8, 0x8A]),
            0usize..=125,
            any::<u64>(),
        )
            .prop_map(|(b0, len, seed)| Piece::Frame { b0, len, seed })
    }

    /// Anything: frames with any first byte, closes with any payload, garbage, frames over
    /// the limit, as well as valid messages.
    fn chaos() -> impl Strategy<Value = Piece> {
        let first_bytes = prop::sample::select(vec![
            0x00u8, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x03, 0x0B, 0x82, 0x81, 0x80, 0x89, 0x8A, 0x88,
            0xC2, 0xA2, 0x92,
        ]);
        prop_oneof![
            3 => (first_bytes, prop_oneof![payload_len(), 0usize..200], any::<u64>())
                .prop_map(|(b0, len, seed)| Piece::Frame { b0, len, seed }),
            3 => message(),
            1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Piece::Close),
            1 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Piece::Garbage),
            1 => (prop::sample::select(vec![0x82u8, 0x02, 0x81, 0x80]), MAX_FRAME as u64 + 1..1 << 40)
                .prop_map(|(b0, len)| Piece::Huge { b0, len }),
        ]
    }

    /// What a server might send: mostly a well-behaved stream (messages, pings and pongs, and
    /// perhaps a close at the end), sometimes chaos.
    fn pieces() -> impl Strategy<Value = Vec<Piece>> {
        let valid = (
            prop::collection::vec(prop_oneof![3 => message(), 1 => ping_pong()], 0..6),
            prop::option::of(prop_oneof![
                Just(Vec::new()),
                any::<u16>().prop_map(|c| c.to_be_bytes().to_vec()),
                (any::<u16>(), "[a-z ]{0,20}").prop_map(|(c, r)| {
                    let mut p = c.to_be_bytes().to_vec();
                    p.extend_from_slice(r.as_bytes());
                    p
                }),
            ]),
        )
            .prop_map(|(mut pieces, close)| {
                pieces.extend(close.map(Piece::Close));
                pieces
            });
        prop_oneof![
            2 => valid,
            1 => prop::collection::vec(chaos(), 0..8),
        ]
    }

    /// An unmasked frame with a minimally encoded length.
    fn frame(b0: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(b0);
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
    }

    fn encode(pieces: &[Piece]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, piece) in pieces.iter().enumerate() {
            let seed = n as u64 * 7919;
            match piece {
                Piece::Frame { b0, len, seed } => frame(*b0, &filler(*len, *seed), &mut out),
                Piece::Message { binary, fragments } => {
                    let last = fragments.len() - 1;
                    for (i, (len, seed, control)) in fragments.iter().enumerate() {
                        let opcode = match (i, binary) {
                            (0, true) => 0x2,
                            (0, false) => 0x1,
                            _ => 0x0,
                        };
                        let fin = if i == last { 0x80 } else { 0 };
                        frame(fin | opcode, &filler(*len, *seed), &mut out);
                        if let (Some((b0, len)), true) = (control, i != last) {
                            frame(*b0, &filler(*len, seed.wrapping_add(1)), &mut out);
                        }
                    }
                }
                Piece::Close(payload) => frame(0x88, payload, &mut out),
                Piece::Huge { b0, len } => {
                    out.extend_from_slice(&[*b0, 127]);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend(filler(usize::try_from(*len).unwrap_or(0).min(65536), seed));
                }
                Piece::Garbage(bytes) if bytes.is_empty() => out.extend(filler(3, seed)),
                Piece::Garbage(bytes) => out.extend_from_slice(bytes),
            }
        }
        out
    }

    /// How the server's stream ends, by the book.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum End {
        /// A close frame, with its code when it has one.
        Closed(Option<u16>),
        /// A protocol error (1002) or a frame over the limit (1009): the client closes with it.
        Failed(u16),
        /// The bytes ran out.
        Eof,
    }

    /// What RFC 6455 says a client delivers for `stream`, written from the spec alone: the
    /// binary payload bytes (a frame's bytes as they arrive), the ping payloads, and the end.
    fn by_the_book(stream: &[u8], max: usize) -> (Vec<u8>, Vec<Vec<u8>>, End) {
        let mut out = Vec::new();
        let mut pings = Vec::new();
        let mut message: Option<bool> = None; // Some(binary) inside a fragmented message
        let mut rest = stream;
        loop {
            let [b0, b1, ..] = *rest else {
                return (out, pings, End::Eof);
            };
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0F;
            if b0 & 0x70 != 0 || ![0, 1, 2, 8, 9, 10].contains(&opcode) || b1 & 0x80 != 0 {
                return (out, pings, End::Failed(1002));
            }
            let (len, header) = match b1 & 0x7F {
                126 => {
                    let Some(b) = rest.get(2..4) else {
                        return (out, pings, End::Eof);
                    };
                    let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
                    if len < 126 {
                        return (out, pings, End::Failed(1002));
                    }
                    (len, 4)
                }
                127 => {
                    let Some(b) = rest.get(2..10) else {
                        return (out, pings, End::Eof);
                    };
                    let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                    if len >> 63 != 0 || len <= 0xFFFF {
                        return (out, pings, End::Failed(1002));
                    }
                    (len, 10)
                }
                n => (u64::from(n), 2),
            };
            let control = opcode & 0x8 != 0;
            if control && (!fin || len > 125) {
                return (out, pings, End::Failed(1002));
            }
            if !control && len > max as u64 {
                return (out, pings, End::Failed(1009));
            }
            rest = &rest[header..];
            let available = &rest[..rest.len().min(usize::try_from(len).unwrap_or(usize::MAX))];
            let complete = available.len() as u64 == len;
            if control {
                if !complete {
                    return (out, pings, End::Eof);
                }
                match opcode {
                    9 => pings.push(available.to_vec()),
                    8 => {
                        return match available {
                            [] => (out, pings, End::Closed(None)),
                            [_] => (out, pings, End::Failed(1002)),
                            [hi, lo, reason @ ..] => {
                                if std::str::from_utf8(reason).is_err() {
                                    (out, pings, End::Failed(1002))
                                } else {
                                    let code = u16::from_be_bytes([*hi, *lo]);
                                    (out, pings, End::Closed(Some(code)))
                                }
                            }
                        };
                    }
                    _ => {}
                }
            } else {
                let binary = match (opcode, message) {
                    (0, Some(binary)) => binary,
                    (0, None) | (1 | 2, Some(_)) => return (out, pings, End::Failed(1002)),
                    (op, None) => op == 2,
                    _ => unreachable!("data opcodes are 0, 1, 2"),
                };
                message = (!fin).then_some(binary);
                if binary {
                    out.extend_from_slice(available);
                }
                if !complete {
                    return (out, pings, End::Eof);
                }
            }
            rest = &rest[available.len()..];
        }
    }

    /// The client's frames (masked), decoded: first byte and payload.
    fn client_frames(mut bytes: &[u8]) -> Vec<ClientFrame> {
        let mut out = Vec::new();
        while bytes.len() >= 2 {
            assert!(bytes[1] & 0x80 != 0, "client frames are masked");
            let (len, at) = match bytes[1] & 0x7F {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (
                    usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().expect("8")))
                        .expect("small"),
                    10,
                ),
                n => (usize::from(n), 2),
            };
            let key = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            let mut payload = bytes[at + 4..at + 4 + len].to_vec();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
            out.push((bytes[0], payload));
            bytes = &bytes[at + 4 + len..];
        }
        assert!(bytes.is_empty(), "no partial client frame");
        out
    }

    /// Runs the pump against `stream`, of which the first `read_ahead` bytes came with the
    /// 101 and the rest arrive in pieces cut at `cuts`; then EOF. Returns what the local side
    /// got, the pump's result and the client's frames.
    fn run(
        stream: &[u8],
        read_ahead: usize,
        cuts: &[Index],
    ) -> (Vec<u8>, Result<(), ConnError>, Vec<ClientFrame>) {
        let (ahead, rest) = stream.split_at(read_ahead);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(rest.len() + 1)).collect();
        at.sort_unstable();
        at.push(rest.len());
        let mut chunks = Vec::new();
        let mut start = 0;
        for end in at {
            chunks.push(rest[start..end].to_vec());
            start = end;
        }
        let ahead = bytes::BytesMut::from(ahead);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(super::within(10, async move {
            let (mut app, local) = tokio::io::duplex(64 * 1024);
            let (client_io, server_io) = tokio::io::duplex(1 << 20);
            let (mut server_rd, mut server_wr) = tokio::io::split(server_io);
            let pump = tokio::spawn(async move {
                let live = Arc::new(Liveness::default());
                let ws = crate::dial::ServerWs {
                    io: Metered::new(client_io, live.clone()),
                    read_ahead: ahead,
                };
                let (mut r, mut w) = tokio::io::split(local);
                let counters = Counters::new(None);
                let options = Options {
                    ping_interval: None,
                    peer_timeout: Some(Duration::from_secs(5)),
                    close_grace: Duration::from_secs(2),
                    max_message_size: MAX_FRAME,
                    ..Options::default()
                };
                let cancel = CancellationToken::new();
                crate::pump::pump(&mut r, &mut w, ws, &options, &counters, &live, &cancel).await
            });
            let server = tokio::spawn(async move {
                for chunk in chunks {
                    if server_wr.write_all(&chunk).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                let _ = server_wr.shutdown().await;
                let mut sent = Vec::new();
                let _ = server_rd.read_to_end(&mut sent).await;
                sent
            });
            let mut got = Vec::new();
            app.read_to_end(&mut got).await.expect("local read");
            drop(app);
            let result = pump.await.expect("the pump did not panic");
            let sent = server.await.expect("server");
            (got, result, client_frames(&sent))
        }))
    }

    fn check(stream: &[u8], read_ahead: &Index, cuts: &[Index]) -> Result<(), TestCaseError> {
        let (want, pings, end) = by_the_book(stream, MAX_FRAME);
        let (got, result, frames) = run(stream, read_ahead.index(stream.len() + 1), cuts);
        prop_assert!(
            got == want,
            "local side got {} bytes, want {}",
            got.len(),
            want.len()
        );
        let (closes, pongs): (Vec<_>, Vec<_>) = frames.iter().partition(|(b0, _)| *b0 == 0x88);
        // Pongs answer pings, in order (a ping not yet answered may be replaced by a newer one).
        let mut unanswered = pings.iter();
        for (b0, payload) in &pongs {
            prop_assert_eq!(*b0, 0x8A, "only pongs and a close are sent");
            prop_assert!(
                unanswered.any(|p| p == payload),
                "a pong for a ping: {:?}",
                payload
            );
        }
        prop_assert!(closes.len() <= 1, "one close at most");
        let close = closes.first().map(|(_, p)| p.clone());
        match end {
            End::Closed(code) => {
                let echo = code.filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999));
                prop_assert_eq!(
                    close,
                    Some(echo.map_or_else(Vec::new, |c| c.to_be_bytes().to_vec()))
                );
                let ok = code.is_none_or(|c| matches!(c, 1000 | 1001 | 1005));
                prop_assert_eq!(result.is_ok(), ok, "{:?}", result);
            }
            End::Failed(code) => {
                let close = close.expect("a close on a protocol error");
                prop_assert_eq!(&close[..2], &code.to_be_bytes()[..]);
                prop_assert!(result.is_err());
            }
            End::Eof => {
                prop_assert_eq!(close, None);
                prop_assert!(result.is_err(), "dropped without a close");
            }
        }
        Ok(())
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn only_binary_payloads_reach_the_local_side(
            pieces in pieces(),
            read_ahead in any::<Index>(),
            cuts in prop::collection::vec(any::<Index>(), 0..10),
        ) {
            check(&encode(&pieces), &read_ahead, &cuts)?;
        }

        #[test]
        fn arbitrary_bytes_from_the_server_end_cleanly(
            stream in prop::collection::vec(any::<u8>(), 0..300),
            read_ahead in any::<Index>(),
            cuts in prop::collection::vec(any::<Index>(), 0..6),
        ) {
            check(&stream, &read_ahead, &cuts)?;
        }
    }
}
