//! The data path of one connection: local bytes ⇄ binary WebSocket frames (RFC 6455, our own
//! framing in [`crate::frame`], so that no payload is copied in user space).
//!
//! Two halves run concurrently in the connection's task:
//! - **up** reads the local side into a buffer with room for the frame header in front, masks
//!   the bytes in place and writes header and payload with one write, and only then reads again
//!   (so a slow server stalls the local reader rather than filling memory). It also pings the
//!   server on a timer and sends the pongs the down half owes. Local EOF sends a normal close.
//! - **down** reads the server's stream and writes binary payloads straight from its read buffer
//!   to the local side, and nothing else; it reads again only once they were written (so a slow
//!   local reader stalls the WebSocket rather than filling memory). Text is skipped; a ping is
//!   handed to the up half; a close ends it.
//!
//! Neither half ends the other at the first EOF: after local EOF the server may still be sending.
//! But the server's close is awaited only for `close_grace`, because a real 23.09 webserver does
//! not relay the manager's close. After the server ends, the local write half is shut down and
//! the local side gets `close_grace` to notice, so that its unread bytes do not turn our close
//! into a reset.
//!
//! The down half's frame parsing lives in [`down`]; both halves share this module's connection
//! state (buffers, the pong hand-off, close codes). Length: about 560 lines; tests in `tests.rs`.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Notify;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::dial::ServerWs;
use crate::frame::{
    apply_mask, close_payload, control_frame, parse_close, parse_header, put_client_header, Close,
    FrameError, Header, HEADROOM, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
};
use crate::live::{Liveness, SendingData};
use crate::stats::Counters;
use crate::{CloseReason, ConnError, Options};

mod down;
use down::downstream;

/// The first read size; doubled (up to `max_chunk`) whenever a read fills it, so idle
/// interactive sessions keep small buffers and bulk transfers get large frames. An idle side
/// drops a large buffer and starts small again (see [`IDLE_SHRINK`]).
const MIN_CHUNK: usize = 16 * 1024;

/// The largest read from the server (frames are streamed, so this bounds memory, not frames).
const MAX_DOWN_READ: usize = 256 * 1024;

/// How long a side may stay silent before a read buffer grown by a burst is freed.
const IDLE_SHRINK: Duration = Duration::from_millis(200);

/// How long the last frames (close, its reply) may take to leave.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// Close codes we send.
const NORMAL: u16 = 1000;
const AWAY: u16 = 1001;

/// What went wrong on the WebSocket.
#[derive(Debug)]
enum WsError {
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The server's stream ended without a close frame.
    Eof,
    /// The server broke the framing rules.
    Frame(FrameError),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Io(e) => write!(f, "{e}"),
            WsError::Eof => f.write_str("the server dropped the connection without closing it"),
            WsError::Frame(e) => write!(f, "{e}"),
        }
    }
}

/// How the up half ended.
enum UpEnd {
    /// Local EOF; the close was sent.
    Eof,
    /// Reading the local side failed: it is gone.
    LocalGone,
    /// Sending to the server failed.
    Ws(WsError),
}

/// How the down half ended.
enum DownEnd {
    /// The server sent a close.
    Closed(Option<Close>),
    /// The stream ended after our close.
    Ended,
    /// Writing to the local side failed: it is gone.
    LocalGone,
    /// The WebSocket failed.
    Ws(WsError),
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

/// What the two halves share: a pong the down half owes the server, and whether our close went
/// out (after which the server may simply drop the connection).
#[derive(Default)]
struct Shared {
    pong: Mutex<Option<Vec<u8>>>,
    pong_due: Notify,
    close_sent: AtomicBool,
}

impl Shared {
    fn owe_pong(&self, payload: &[u8]) {
        *self.pong.lock().unwrap_or_else(|p| p.into_inner()) = Some(payload.to_vec());
        self.pong_due.notify_one();
    }

    fn take_pong(&self) -> Option<Vec<u8>> {
        self.pong.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A frame partly written.
enum Pending {
    None,
    Data(Range<usize>),
    Control(Range<usize>),
}

/// The writing side of the WebSocket. A frame's progress is kept here, not in a future, so a
/// frame cut off by cancellation is completed before anything else is sent.
struct Out<'s, W> {
    io: WriteHalf<W>,
    /// [`HEADROOM`] bytes for the header, then the payload read from the local side.
    data: Vec<u8>,
    control: Vec<u8>,
    pending: Pending,
    shared: &'s Shared,
}

impl<W: AsyncWrite> Out<'_, W> {
    /// Writes what is left of the frame in flight, then flushes. Cancel-safe.
    async fn finish(&mut self) -> io::Result<()> {
        let Out {
            io,
            data,
            control,
            pending,
            ..
        } = self;
        loop {
            let (buf, range) = match pending {
                Pending::None => break,
                Pending::Data(range) => (&data[..], range),
                Pending::Control(range) => (&control[..], range),
            };
            if range.start >= range.end {
                *pending = Pending::None;
                break;
            }
            let n = io.write(&buf[range.clone()]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            range.start += n;
        }
        io.flush().await
    }

    /// Sends the `n` payload bytes at `data[HEADROOM..]` as one binary frame.
    async fn send_data(&mut self, n: usize) -> io::Result<()> {
        let key: [u8; 4] = rand::random();
        let end = HEADROOM + n;
        apply_mask(&mut self.data[HEADROOM..end], key);
        let start = put_client_header(&mut self.data, HEADROOM, OP_BINARY, n, key);
        self.pending = Pending::Data(start..end);
        self.finish().await
    }

    async fn send_control(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.finish().await?;
        control_frame(&mut self.control, opcode, payload, rand::random());
        self.pending = Pending::Control(0..self.control.len());
        self.finish().await
    }

    /// Ends the connection to the server in order (TCP FIN; TLS close_notify first), within
    /// the final-flush time.
    async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(FINAL_FLUSH, self.io.shutdown()).await;
    }

    /// Sends a close (once): `None` for an empty one.
    async fn send_close(&mut self, close: Option<(u16, &str)>) -> io::Result<()> {
        if self.shared.close_sent.swap(true, Ordering::Relaxed) {
            return self.finish().await;
        }
        let payload = close.map_or_else(Vec::new, |(code, reason)| close_payload(code, reason));
        self.send_control(OP_CLOSE, &payload).await
    }
}

/// The reading side of the WebSocket: `buf[start..end]` is read but not yet consumed.
struct In<R> {
    io: ReadHalf<R>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R> In<R> {
    fn new(io: ReadHalf<R>, read_ahead: &[u8]) -> Self {
        let mut buf = vec![0u8; MIN_CHUNK.max(read_ahead.len())];
        buf[..read_ahead.len()].copy_from_slice(read_ahead);
        In {
            io,
            buf,
            start: 0,
            end: read_ahead.len(),
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes room at the end of the buffer for the next read: reuses it from the start when
    /// everything was consumed, moves a partial frame header or control frame to the front.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let bigger = (self.buf.len() * 2).max(MIN_CHUNK);
            self.buf.resize(bigger, 0);
        }
    }
}

/// Carries bytes between the local `reader`/`writer` and the WebSocket `ws` until both sides
/// are done, one of them fails, or `cancel` fires. `Ok` for a clean end (including the local
/// side going away); `Err` when the server side failed. Nothing but the server's binary
/// payloads is ever written to `writer`.
pub(crate) async fn pump<R, W, S>(
    reader: &mut R,
    writer: &mut W,
    ws: ServerWs<S>,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
    cancel: &CancellationToken,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite,
{
    pump_ended(reader, writer, ws, options, counters, live, cancel)
        .await
        .0
}

/// [`pump`], and why the connection ended ([`CloseReason`]).
pub(crate) async fn pump_ended<R, W, S>(
    reader: &mut R,
    writer: &mut W,
    ws: ServerWs<S>,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
    cancel: &CancellationToken,
) -> (Result<(), ConnError>, CloseReason)
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
    S: AsyncRead + AsyncWrite,
{
    let (rd, wr) = tokio::io::split(ws.io);
    let shared = Shared::default();
    let mut out = Out {
        io: wr,
        data: Vec::new(),
        control: Vec::new(),
        pending: Pending::None,
        shared: &shared,
    };
    let mut input = In::new(rd, &ws.read_ahead);
    let outcome = {
        let up = upstream(reader, &mut out, options, counters, live);
        let down = downstream(&mut input, writer, options, counters, live, &shared);
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
            send_close(&mut out, AWAY, "tunnel stopped").await;
            out.shutdown().await;
            let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
            (Ok(()), CloseReason::Stopped)
        }
        Outcome::Down(end) => {
            let result = down_result(&end, false);
            let reason = down_reason(&end);
            match &end {
                // Answer the server's close with its code (when it may be sent at all).
                DownEnd::Closed(close) => {
                    let reply = close
                        .as_ref()
                        .filter(|c| sendable(c.code))
                        .map(|c| (c.code, ""));
                    let _ = tokio::time::timeout(FINAL_FLUSH, out.send_close(reply)).await;
                }
                DownEnd::Ended => {}
                DownEnd::LocalGone => send_close(&mut out, AWAY, "local side gone").await,
                DownEnd::PeerTimeout(_) => {
                    send_close(&mut out, AWAY, "no answer from the server").await;
                }
                DownEnd::Ws(WsError::Frame(e)) => {
                    send_close(&mut out, e.close_code(), "protocol error").await;
                }
                DownEnd::Ws(_) => {}
            }
            out.shutdown().await;
            drop(input);
            if !matches!(end, DownEnd::LocalGone) {
                linger(reader, writer, options.close_grace, cancel).await;
            }
            (result, reason)
        }
        Outcome::Up(up, down) => {
            let _ = tokio::time::timeout(FINAL_FLUSH, writer.shutdown()).await;
            out.shutdown().await;
            match (up, down) {
                (UpEnd::Eof, None) => {
                    tracing::debug!("no close from the server within the grace; dropping");
                    (Ok(()), CloseReason::LocalClosed)
                }
                (UpEnd::LocalGone, None) => (Ok(()), CloseReason::LocalGone),
                (UpEnd::Eof, Some(end)) => (down_result(&end, true), CloseReason::LocalClosed),
                (UpEnd::LocalGone, Some(end)) => (down_result(&end, true), CloseReason::LocalGone),
                (UpEnd::Ws(error), down) => match down {
                    Some(end @ DownEnd::Closed(_)) => (down_result(&end, false), down_reason(&end)),
                    _ => {
                        let reason = match error {
                            WsError::Eof => CloseReason::NoCloseFrame,
                            _ => CloseReason::Failed(ws_error(&error).to_string()),
                        };
                        (Err(ws_error(&error)), reason)
                    }
                },
            }
        }
    }
}

/// Why the connection ended when the server's side ended first.
fn down_reason(end: &DownEnd) -> CloseReason {
    match end {
        DownEnd::Closed(Some(close)) => CloseReason::Server {
            code: close.code,
            reason: close.reason.clone(),
        },
        DownEnd::Closed(None) => CloseReason::Server {
            code: 1005,
            reason: String::new(),
        },
        // Our close went out first (the local side ended), then the server's stream.
        DownEnd::Ended => CloseReason::LocalClosed,
        DownEnd::LocalGone => CloseReason::LocalGone,
        DownEnd::Ws(WsError::Eof) => CloseReason::NoCloseFrame,
        DownEnd::Ws(error) => CloseReason::Failed(ws_error(error).to_string()),
        DownEnd::PeerTimeout(d) => CloseReason::Failed(ConnError::PeerTimeout(*d).to_string()),
    }
}

/// Sends a close under the final-flush timeout (the server may be gone or stalled), after what
/// is left of a frame cut off mid-way.
async fn send_close<W: AsyncWrite>(out: &mut Out<'_, W>, code: u16, reason: &'static str) {
    match tokio::time::timeout(FINAL_FLUSH, out.send_close(Some((code, reason)))).await {
        Ok(Ok(())) => tracing::debug!(code, reason, "close sent"),
        Ok(Err(e)) => tracing::debug!(error = %e, "could not send the close"),
        Err(_) => tracing::debug!("the close did not leave in time"),
    }
}

/// The result of the down half ending; `we_closed` when our close went out first, after which
/// a dropped connection is not an error.
fn down_result(end: &DownEnd, we_closed: bool) -> Result<(), ConnError> {
    match end {
        DownEnd::Closed(close) => {
            let Some(close) = close else { return Ok(()) };
            match close.code {
                1000 | 1001 | 1005 => Ok(()),
                code => Err(ConnError::Closed {
                    code,
                    reason: close.reason.clone(),
                }),
            }
        }
        DownEnd::Ended | DownEnd::LocalGone => Ok(()),
        DownEnd::Ws(_) if we_closed => Ok(()),
        DownEnd::Ws(error) => Err(ws_error(error)),
        DownEnd::PeerTimeout(d) => Err(ConnError::PeerTimeout(*d)),
    }
}

/// Whether a close code may appear on the wire (RFC 6455 §7.4): 1005, 1006 and 1015 are only
/// for reporting, and codes below 1000 or from 5000 are not defined.
fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn ws_error(error: &WsError) -> ConnError {
    ConnError::WebSocket(error.to_string())
}

async fn upstream<R, W>(
    reader: &mut R,
    out: &mut Out<'_, W>,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
) -> UpEnd
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite,
{
    let max_chunk = options.max_chunk.max(1);
    let min_chunk = MIN_CHUNK.min(max_chunk);
    let mut chunk = min_chunk;
    let mut ping = options.ping_interval.map(|every| {
        let mut timer = tokio::time::interval_at(Instant::now() + every, every);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    });
    let shared = out.shared;
    loop {
        if out.data.len() < HEADROOM + chunk {
            out.data.resize(HEADROOM + chunk, 0);
        }
        // A buffer grown by a burst is freed when the local side goes quiet.
        let shrink =
            (out.data.len() > HEADROOM + 2 * MIN_CHUNK).then(|| tokio::time::sleep(IDLE_SHRINK));
        let read = tokio::select! {
            biased;
            () = tick(&mut ping) => {
                tracing::trace!("ping");
                if let Err(e) = out.send_control(OP_PING, &[]).await {
                    return UpEnd::Ws(WsError::Io(e));
                }
                continue;
            }
            () = shared.pong_due.notified() => {
                if let Some(payload) = shared.take_pong() {
                    tracing::trace!("pong");
                    if let Err(e) = out.send_control(OP_PONG, &payload).await {
                        return UpEnd::Ws(WsError::Io(e));
                    }
                }
                continue;
            }
            // Cancel-safe: when another branch wins, no data was read.
            r = reader.read(&mut out.data[HEADROOM..HEADROOM + chunk]) => r,
            () = maybe_sleep(shrink) => {
                tracing::trace!(capacity = out.data.len(), "idle; freeing the read buffer");
                out.data = Vec::new();
                chunk = min_chunk;
                continue;
            }
        };
        match read {
            Ok(0) => {
                tracing::debug!("local EOF; closing the WebSocket");
                return match out.send_close(Some((NORMAL, ""))).await {
                    Ok(()) => UpEnd::Eof,
                    Err(e) => UpEnd::Ws(WsError::Io(e)),
                };
            }
            Ok(n) => {
                // A short read only means the socket was drained for now: the size comes down
                // when the local side goes quiet (above), not between bursts of a transfer.
                if n == chunk {
                    chunk = (chunk * 2).min(max_chunk);
                }
                tracing::trace!(n, "up");
                let sent = {
                    let _held = counters.hold(n);
                    // Bytes of this frame leaving count as progress (see `Liveness`).
                    let _sending = SendingData::start(live);
                    out.send_data(n).await
                };
                if let Err(e) = sent {
                    return UpEnd::Ws(WsError::Io(e));
                }
                counters.add_up(n);
            }
            Err(e) => {
                tracing::debug!(error = %e, "local side gone; closing the WebSocket");
                send_close(out, AWAY, "local side gone").await;
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

#[cfg(test)]
mod tests {
    use super::sendable;

    #[test]
    fn only_wire_close_codes_are_echoed() {
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1013, 1014, 3000, 4999] {
            assert!(sendable(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!sendable(code), "{code}");
        }
    }
}
