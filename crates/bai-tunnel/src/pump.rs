//! The data path of one connection: local bytes ⇄ binary WebSocket frames.
//!
//! Two halves run concurrently in the connection's task:
//! - **up** reads the local side (only once the previous frame was flushed to the server, so a
//!   slow server stalls the local reader rather than filling memory), sends each read as one
//!   binary frame, and pings the server on a timer. Local EOF sends a normal close.
//! - **down** takes frames from the server (only once the previous one was written to the local
//!   side, so a slow local reader stalls the WebSocket rather than filling memory) and writes
//!   binary payloads and nothing else to the local side. Text is ignored; pings are answered by
//!   tungstenite; a close ends it.
//!
//! Neither half ends the other at the first EOF: after local EOF the server may still be sending.
//! But the server's close is awaited only for `close_grace`, because a real 23.09 webserver does
//! not relay the manager's close. After the server ends, the local write half is shut down and
//! the local side gets `close_grace` to notice, so that its unread bytes do not turn our close
//! into a reset.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::live::{Liveness, SendingData};
use crate::stats::Counters;
use crate::{ConnError, Options};

/// The first read size; doubled (up to `max_chunk`) whenever a read fills it, so idle
/// interactive sessions keep small buffers and bulk transfers get large frames. A short read
/// halves it again, and an idle local side drops a large buffer (see [`IDLE_SHRINK`]).
const MIN_CHUNK: usize = 16 * 1024;

/// How long the local side may stay silent before a read buffer grown by a burst is freed.
const IDLE_SHRINK: Duration = Duration::from_millis(200);

/// How long the last frames (close, its reply) may take to leave.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// How the up half ended.
enum UpEnd {
    /// Local EOF; the close was sent.
    Eof,
    /// Reading the local side failed: it is gone.
    LocalGone,
    /// Sending to the server failed.
    Ws(tungstenite::Error),
}

/// How the down half ended.
enum DownEnd {
    /// The server sent a close.
    Closed(Option<CloseFrame>),
    /// The stream ended after the closing handshake.
    Ended,
    /// Writing to the local side failed: it is gone.
    LocalGone,
    /// The WebSocket failed.
    Ws(tungstenite::Error),
    /// Nothing came from the server for `peer_timeout`.
    PeerTimeout(Duration),
}

enum Outcome {
    Cancelled,
    /// The server side ended first.
    Down(DownEnd),
    /// The local side ended first; then the server side ended (`Some`) or the grace ran out.
    Up(UpEnd, Option<DownEnd>),
}

/// Carries bytes between the local `reader`/`writer` and `ws` until both sides are done, one of
/// them fails, or `cancel` fires. `Ok` for a clean end (including the local side going away);
/// `Err` when the server side failed. Nothing but the server's binary payloads is ever written
/// to `writer`.
pub(crate) async fn pump<R, W, S>(
    reader: &mut R,
    writer: &mut W,
    ws: WebSocketStream<S>,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
    cancel: &CancellationToken,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let outcome = {
        let up = upstream(reader, &mut sink, options, counters, live);
        let down = downstream(&mut stream, writer, options, counters, live);
        tokio::pin!(up, down);
        tokio::select! {
            biased;
            () = cancel.cancelled() => Outcome::Cancelled,
            d = &mut down => Outcome::Down(d),
            u = &mut up => {
                // After local EOF, keep delivering what the server still sends, until it closes
                // or the grace runs out. When the local side is gone, the grace only bounds the
                // wait for the write that will fail.
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => Outcome::Cancelled,
                    d = tokio::time::timeout(options.close_grace, &mut down) => Outcome::Up(u, d.ok()),
                }
            }
        }
    };

    match outcome {
        Outcome::Cancelled => {
            tracing::debug!("cancelled; closing");
            let away = Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "tunnel stopped".into(),
            }));
            let _ = tokio::time::timeout(FINAL_FLUSH, sink.send(away)).await;
            let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
            Ok(())
        }
        Outcome::Down(end) => {
            let result = down_result(&end, false);
            match &end {
                // Flush tungstenite's queued reply to the server's close.
                DownEnd::Closed(_) => {
                    let _ = tokio::time::timeout(FINAL_FLUSH, sink.close()).await;
                }
                DownEnd::Ended => {}
                DownEnd::LocalGone => {
                    send_close(&mut sink, CloseCode::Away, "local side gone").await
                }
                DownEnd::PeerTimeout(_) => {
                    send_close(&mut sink, CloseCode::Away, "no answer from the server").await;
                }
                DownEnd::Ws(error) if still_usable(error) => {
                    send_close(&mut sink, CloseCode::Away, "WebSocket error").await;
                }
                DownEnd::Ws(_) => {}
            }
            drop(sink);
            drop(stream);
            if !matches!(end, DownEnd::LocalGone) {
                linger(reader, writer, options.close_grace, cancel).await;
            }
            result
        }
        Outcome::Up(up, down) => {
            let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
            match (up, down) {
                (UpEnd::Eof | UpEnd::LocalGone, None) => {
                    tracing::debug!("no close from the server within the grace; dropping");
                    Ok(())
                }
                (UpEnd::Eof | UpEnd::LocalGone, Some(end)) => down_result(&end, true),
                (UpEnd::Ws(error), down) => match down {
                    Some(end @ DownEnd::Closed(_)) => down_result(&end, false),
                    _ => {
                        if still_usable(&error) {
                            send_close(&mut sink, CloseCode::Away, "WebSocket error").await;
                        }
                        Err(ws_error(&error))
                    }
                },
            }
        }
    }
}

/// Sends a close under the final-flush timeout (the server may be gone or stalled).
async fn send_close<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    code: CloseCode,
    reason: &'static str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    match tokio::time::timeout(FINAL_FLUSH, sink.send(close)).await {
        Ok(Ok(())) => tracing::debug!(%code, reason, "close sent"),
        Ok(Err(e)) => tracing::debug!(error = %e, "could not send the close"),
        Err(_) => tracing::debug!("the close did not leave in time"),
    }
}

/// Whether the WebSocket may still carry a close after `error`.
fn still_usable(error: &tungstenite::Error) -> bool {
    use tungstenite::error::ProtocolError;
    !matches!(
        error,
        tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(
                ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing
            )
    )
}

/// The result of the down half ending; `we_closed` when our close went out first, after which
/// a dropped connection is not an error.
fn down_result(end: &DownEnd, we_closed: bool) -> Result<(), ConnError> {
    match end {
        DownEnd::Closed(frame) => {
            let Some(frame) = frame else { return Ok(()) };
            match u16::from(frame.code) {
                1000 | 1001 | 1005 => Ok(()),
                code => Err(ConnError::Closed {
                    code,
                    reason: frame.reason.to_string(),
                }),
            }
        }
        DownEnd::Ended | DownEnd::LocalGone => Ok(()),
        DownEnd::Ws(_) if we_closed => Ok(()),
        DownEnd::Ws(error) => Err(ws_error(error)),
        DownEnd::PeerTimeout(d) => Err(ConnError::PeerTimeout(*d)),
    }
}

fn ws_error(error: &tungstenite::Error) -> ConnError {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            ConnError::WebSocket("the server dropped the connection without closing it".into())
        }
        other => ConnError::WebSocket(other.to_string()),
    }
}

async fn upstream<R, S>(
    reader: &mut R,
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
) -> UpEnd
where
    R: AsyncRead + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_chunk = options.max_chunk.max(1);
    let min_chunk = MIN_CHUNK.min(max_chunk);
    let mut chunk = min_chunk;
    let mut buf = BytesMut::new();
    let mut ping = options.ping_interval.map(|every| {
        let mut timer = tokio::time::interval_at(Instant::now() + every, every);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    });
    loop {
        // Reuses the allocation once tungstenite has dropped the previous frame's `Bytes`.
        buf.reserve(chunk);
        // A buffer grown by a burst is freed when the local side goes quiet.
        let shrink = (buf.capacity() > 2 * MIN_CHUNK).then(|| tokio::time::sleep(IDLE_SHRINK));
        let mut limited = AsyncReadExt::take(&mut *reader, chunk as u64);
        let read = tokio::select! {
            biased;
            () = tick(&mut ping) => {
                tracing::trace!("ping");
                if let Err(e) = sink.send(Message::Ping(Bytes::new())).await {
                    return UpEnd::Ws(e);
                }
                continue;
            }
            // Cancel-safe: when another branch wins, no data was read.
            r = limited.read_buf(&mut buf) => r,
            () = maybe_sleep(shrink) => {
                tracing::trace!(capacity = buf.capacity(), "idle; freeing the read buffer");
                buf = BytesMut::new();
                chunk = min_chunk;
                continue;
            }
        };
        match read {
            Ok(0) => {
                tracing::debug!("local EOF; closing the WebSocket");
                let close = Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }));
                return match sink.send(close).await {
                    Ok(()) => UpEnd::Eof,
                    Err(e) => UpEnd::Ws(e),
                };
            }
            Ok(n) => {
                if n == chunk {
                    chunk = (chunk * 2).min(max_chunk);
                } else if n < chunk / 2 {
                    chunk = (chunk / 2).max(min_chunk);
                }
                tracing::trace!(n, "up");
                let sent = {
                    let _held = counters.hold(n);
                    // Bytes of this frame leaving count as progress (see `Liveness`).
                    let _sending = SendingData::start(live);
                    sink.send(Message::Binary(buf.split().freeze())).await
                };
                if let Err(e) = sent {
                    return UpEnd::Ws(e);
                }
                counters.add_up(n);
            }
            Err(e) => {
                tracing::debug!(error = %e, "local side gone; closing the WebSocket");
                send_close(sink, CloseCode::Away, "local side gone").await;
                return UpEnd::LocalGone;
            }
        }
    }
}

async fn maybe_sleep(sleep: Option<tokio::time::Sleep>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn downstream<S, W>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    writer: &mut W,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
) -> DownEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin + ?Sized,
{
    loop {
        let next = match options.peer_timeout {
            Some(limit) => match next_or_timeout(stream, live, limit).await {
                Some(next) => next,
                None => return DownEnd::PeerTimeout(limit),
            },
            None => stream.next().await,
        };
        live.mark();
        match next {
            Some(Ok(Message::Binary(data))) => {
                let n = data.len();
                tracing::trace!(n, "down");
                let written = {
                    let _held = counters.hold(n);
                    write_all_flush(writer, &data).await
                };
                drop(data);
                // Time spent blocked on a slow local reader never counts against the server.
                live.mark();
                if let Err(e) = written {
                    tracing::debug!(error = %e, "local side gone");
                    return DownEnd::LocalGone;
                }
                counters.add_down(n);
            }
            Some(Ok(Message::Close(frame))) => {
                tracing::debug!(?frame, "server closed the WebSocket");
                return DownEnd::Closed(frame);
            }
            Some(Ok(Message::Text(text))) => {
                tracing::trace!(len = text.len(), "ignoring a text frame");
            }
            // Pings are answered by tungstenite on the next read or write; pongs only prove
            // the server is alive, which `live` already noted.
            Some(Ok(_)) => {}
            Some(Err(e)) => return DownEnd::Ws(e),
            None => return DownEnd::Ended,
        }
    }
}

/// The next message, or `None` when there was no progress either way (see [`Liveness`]) for
/// `limit`: no byte from the server, none of our data leaving, nothing delivered locally.
async fn next_or_timeout<S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    live: &Liveness,
    limit: Duration,
) -> Option<Option<Result<Message, tungstenite::Error>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let deadline = live.last() + limit;
        if deadline <= Instant::now() {
            return None;
        }
        tokio::select! {
            biased;
            // Cancel-safe: a partly read frame stays in tungstenite's buffer.
            next = stream.next() => return Some(next),
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn write_all_flush<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    data: &[u8],
) -> io::Result<()> {
    writer.write_all(data).await?;
    writer.flush().await
}

/// After the server ended: shut the local write half (EOF for the local side), then read and
/// discard until the local side closes too, for at most `grace`. Closing a socket with unread
/// bytes would send a reset instead of an orderly close.
pub(crate) async fn linger<R, W>(
    reader: &mut R,
    writer: &mut W,
    grace: Duration,
    cancel: &CancellationToken,
) where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
    let drain = async {
        let mut scratch = [0u8; 8 * 1024];
        loop {
            match reader.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => {}
        _ = tokio::time::timeout(grace, drain) => {}
    }
}
