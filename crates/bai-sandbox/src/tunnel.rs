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
//! session/sandbox stops; 1002/1007/1009 for bad client frames (see [`crate::ws`]).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::faults::TunnelFaults;
use crate::ws::{self, opcode, ControlFrame, Event, Parser, ProtocolError, Ranges};

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

/// Buffer sizing: doubles while reads fill the buffer, halves after [`SHORT_READS`] short
/// reads in a row, and drops to [`MIN_BUF`] when the connection idles.
#[derive(Debug)]
struct Sizer {
    cap: usize,
    short: u32,
}

impl Sizer {
    fn new() -> Self {
        Sizer {
            cap: MIN_BUF,
            short: 0,
        }
    }

    /// Records a read of `n` bytes into `room` free bytes.
    fn after_read(&mut self, n: usize, room: usize) {
        if n >= room && self.cap < CHUNK {
            self.cap = (self.cap * 2).min(CHUNK);
            self.short = 0;
        } else if n <= self.cap / 4 {
            self.short += 1;
            if self.short >= SHORT_READS && self.cap > MIN_BUF {
                self.cap /= 2;
                self.short = 0;
            }
        } else {
            self.short = 0;
        }
    }

    fn idle(&mut self) {
        self.cap = MIN_BUF;
        self.short = 0;
    }
}

/// Resizes `buf` to `len` bytes, giving memory back when it shrinks.
fn fit(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    } else if buf.len() > len {
        buf.truncate(len);
        buf.shrink_to_fit();
    }
}

/// The latest unanswered ping (RFC 6455 §5.5.3 allows answering only the latest), handed from
/// the up side to the down side, which owns the client's write half.
#[derive(Debug, Default)]
struct PendingPong {
    payload: Mutex<Option<Vec<u8>>>,
    notify: Notify,
}

impl PendingPong {
    fn set(&self, payload: Vec<u8>) {
        *crate::lock(&self.payload) = Some(payload);
        self.notify.notify_one();
    }
    fn take(&self) -> Option<Vec<u8>> {
        crate::lock(&self.payload).take()
    }
}

/// The client's write half and the down buffer. Unsent bytes are tracked here, not in a
/// future, so a frame cut short by cancellation can still be finished before the close.
struct Down<W> {
    w: W,
    /// `HEAD` bytes of headroom, then room for one TCP read.
    buf: Vec<u8>,
    /// Unsent bytes of the current data frame in `buf`.
    out: Range<usize>,
    ctl: ControlFrame,
    /// Unsent bytes of `ctl`.
    ctl_out: Range<usize>,
    size: Sizer,
}

impl<W: AsyncWrite + Unpin> Down<W> {
    fn new(w: W) -> Self {
        let size = Sizer::new();
        Down {
            w,
            buf: vec![0; HEAD + size.cap],
            out: 0..0,
            ctl: ControlFrame::new(opcode::PONG, &[]),
            ctl_out: 0..0,
            size,
        }
    }

    /// Writes whatever is unsent (cancel-safe: progress is recorded after every write).
    async fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            let n = self.w.write(&self.buf[self.out.clone()]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.out.start += n;
        }
        while !self.ctl_out.is_empty() {
            let n = self
                .w
                .write(&self.ctl.as_bytes()[self.ctl_out.clone()])
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.ctl_out.start += n;
        }
        self.w.flush().await
    }

    /// Sends `buf[HEAD..HEAD + n]` as one binary frame, header and payload in one write.
    async fn send_data(&mut self, n: usize) -> io::Result<()> {
        let (header, len) = ws::server_header(opcode::BINARY, n);
        self.buf[HEAD - len..HEAD].copy_from_slice(&header[..len]);
        self.out = HEAD - len..HEAD + n;
        self.flush().await
    }

    /// Sends a control frame after whatever is unsent.
    async fn send_control(&mut self, frame: ControlFrame) -> io::Result<()> {
        self.flush().await?;
        self.ctl = frame;
        self.ctl_out = 0..frame.as_bytes().len();
        self.flush().await
    }
}

/// The client's read half, the up buffer and the parser. `buf[start..end]` is read but not
/// yet parsed (at most a partial header between reads).
struct Up<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    parser: Parser,
    size: Sizer,
    ranges: Ranges,
}

impl<R: AsyncRead + Unpin> Up<R> {
    fn new(r: R) -> Self {
        let size = Sizer::new();
        Up {
            r,
            buf: vec![0; size.cap],
            start: 0,
            end: 0,
            parser: Parser::default(),
            size,
            ranges: Ranges::default(),
        }
    }

    /// Moves the unparsed bytes to the front and reads more (at most `limit` bytes);
    /// `Ok(0)` at EOF. Shrinks the buffer while the client is idle.
    async fn fill(&mut self, limit: Option<usize>) -> io::Result<usize> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        loop {
            fit(&mut self.buf, self.size.cap.max(self.end + 1));
            let stop = limit.map_or(self.buf.len(), |l| (self.end + l).min(self.buf.len()));
            let room = self.buf.len() - self.end;
            let idle = self.size.cap > MIN_BUF;
            let read = tokio::select! {
                biased;
                r = self.r.read(&mut self.buf[self.end..stop]) => Some(r),
                _ = tokio::time::sleep(IDLE), if idle => None,
            };
            match read {
                None => self.size.idle(),
                Some(Ok(n)) => {
                    self.end += n;
                    if n > 0 {
                        self.size.after_read(n, room);
                    }
                    return Ok(n);
                }
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Parses the unread bytes into `ranges` (data, unmasked in place) until they run out, a
    /// close or an error, or [`MAX_IOV`] slices; pings go to `pong`. Returns how the client
    /// ended, if it did.
    fn parse(&mut self, pong: &PendingPong) -> Option<End> {
        self.ranges.clear();
        while self.start < self.end && self.ranges.len() < MAX_IOV {
            let step = match self.parser.step(&mut self.buf[self.start..self.end]) {
                Ok(s) => s,
                Err(e) => return Some(End::Protocol(e)),
            };
            if step.consumed == 0 && step.event.is_none() {
                break;
            }
            let at = self.start;
            self.start += step.consumed;
            match step.event {
                Some(Event::Data(n)) => self.ranges.push(at..at + n),
                Some(Event::Ping(p)) => pong.set(p),
                Some(Event::Pong) | None => {}
                Some(Event::Close(p)) => return Some(End::ClientClosed(p)),
            }
        }
        None
    }

    /// Whether a whole header is still waiting in the buffer (parsing stopped at `MAX_IOV`).
    fn has_more(&self) -> bool {
        self.ranges.len() >= MAX_IOV && self.start < self.end
    }
}

/// Writes `buf`'s `ranges` in order, as few (vectored) writes as the socket allows.
async fn write_ranges<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &[u8],
    ranges: &[Range<usize>],
) -> io::Result<()> {
    let (mut i, mut skip) = (0, 0);
    while i < ranges.len() {
        if i + 1 == ranges.len() {
            return w
                .write_all(&buf[ranges[i].start + skip..ranges[i].end])
                .await;
        }
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let k = (ranges.len() - i).min(MAX_IOV);
        for (j, r) in ranges[i..i + k].iter().enumerate() {
            let from = if j == 0 { r.start + skip } else { r.start };
            iov[j] = IoSlice::new(&buf[from..r.end]);
        }
        let mut n = w.write_vectored(&iov[..k]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && i < ranges.len() {
            let left = ranges[i].len() - skip;
            if n >= left {
                n -= left;
                i += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
    }
    Ok(())
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

/// Client → TCP until either ends.
async fn pump_up<R: AsyncRead + Unpin>(
    up: &mut Up<R>,
    tcp: &mut OwnedWriteHalf,
    budget: &Budget,
    pong: &PendingPong,
    slow: Option<u64>,
) -> End {
    // Under the slow-read fault, read in pieces of a tenth of a second's worth.
    let limit = slow.map(|bps| usize::try_from(bps / 10).unwrap_or(CHUNK).clamp(1, CHUNK));
    loop {
        let ended = up.parse(pong);
        let total = up.ranges.total();
        if total > 0 {
            let (n, cut) = budget.admit(total);
            up.ranges.truncate_bytes(n);
            if write_ranges(tcp, &up.buf, up.ranges.as_slice())
                .await
                .is_err()
            {
                return End::TcpError;
            }
            if cut {
                return End::Drop;
            }
            if let Some(bps) = slow {
                tokio::time::sleep(Duration::from_secs_f64(total as f64 / bps as f64)).await;
            }
        }
        if let Some(end) = ended {
            return end;
        }
        if up.has_more() {
            continue;
        }
        match up.fill(limit).await {
            Ok(0) | Err(_) => return End::ClientGone,
            Ok(_) => {}
        }
    }
}

/// TCP → client until either ends; also sends the pongs.
async fn pump_down<W: AsyncWrite + Unpin>(
    down: &mut Down<W>,
    tcp: &mut OwnedReadHalf,
    budget: &Budget,
    pong: &PendingPong,
) -> End {
    enum Wake {
        Pong,
        Read(io::Result<usize>),
        Idle,
    }
    loop {
        if let Some(p) = pong.take() {
            if down
                .send_control(ControlFrame::new(opcode::PONG, &p))
                .await
                .is_err()
            {
                return End::ClientGone;
            }
        }
        let cap = down.size.cap;
        let wake = tokio::select! {
            biased;
            _ = pong.notify.notified() => Wake::Pong,
            r = tcp.read(&mut down.buf[HEAD..HEAD + cap]) => Wake::Read(r),
            _ = tokio::time::sleep(IDLE), if cap > MIN_BUF => Wake::Idle,
        };
        match wake {
            Wake::Pong => {}
            Wake::Idle => {
                down.size.idle();
                fit(&mut down.buf, HEAD + down.size.cap);
            }
            Wake::Read(Ok(0)) => return End::TcpEof,
            Wake::Read(Err(_)) => return End::TcpError,
            Wake::Read(Ok(read)) => {
                let (n, cut) = budget.admit(read);
                if n > 0 && down.send_data(n).await.is_err() {
                    return End::ClientGone;
                }
                if cut {
                    return End::Drop;
                }
                down.size.after_read(read, cap);
                fit(&mut down.buf, HEAD + down.size.cap);
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

/// Ends the tunnel with a close, or swallows it under the fault.
async fn finish<R, W>(up: &mut Up<R>, down: &mut Down<W>, code: u16, reason: &str, target: &Target)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if target.faults.swallow_close {
        // Finish a frame cut short, so that the client's stream stays well-formed.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, down.flush()).await;
        swallow(up, down, &target.sandbox).await;
    } else {
        close(up, down, ControlFrame::close(code, reason)).await;
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
            finish(&mut up, &mut down, 1013, "connection refused", &target).await;
            return;
        }
        Err(e) => {
            tracing::debug!(addr = %target.addr, error = %e, "tcpproxy: connect failed");
            finish(&mut up, &mut down, 1011, "connect failed", &target).await;
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

    let (code, reason) = match end {
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
        End::TcpEof => (1001, "TCP connection closed"),
        End::TcpError => (1011, "TCP error"),
        End::Stopped => (1001, "session stopped"),
    };
    drop((tcp_r, tcp_w));
    finish(&mut up, &mut down, code, reason, &target).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::faults::TunnelFaults;

    /// Accepts at most `per_call` bytes per write, across vectored slices.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.per_call;
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(left);
                self.got.extend_from_slice(&b[..k]);
                n += k;
                left -= k;
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn vectored_writes_survive_partial_writes() {
        let buf: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let ranges: Vec<Range<usize>> = (0..100).map(|i| i * 30..i * 30 + 7 + i % 5).collect();
        let want: Vec<u8> = ranges
            .iter()
            .flat_map(|r| buf[r.clone()].to_vec())
            .collect();
        for per_call in [1, 2, 5, 7, 64, 10_000] {
            let mut w = Trickle {
                got: Vec::new(),
                per_call,
            };
            write_ranges(&mut w, &buf, &ranges).await.unwrap();
            assert_eq!(w.got, want, "{per_call} bytes per call");
        }
    }

    #[test]
    fn buffers_grow_on_full_reads_and_shrink_on_short_ones() {
        let mut s = Sizer::new();
        assert_eq!(s.cap, MIN_BUF);
        while s.cap < CHUNK {
            let cap = s.cap;
            s.after_read(cap, cap);
            assert_eq!(s.cap, cap * 2);
        }
        s.after_read(CHUNK, CHUNK);
        assert_eq!(s.cap, CHUNK, "never above CHUNK");
        // A few short reads are tolerated; a run of them halves the buffer.
        for _ in 0..SHORT_READS - 1 {
            s.after_read(100, CHUNK);
        }
        s.after_read(CHUNK / 2, CHUNK);
        assert_eq!(s.cap, CHUNK, "a long read resets the run");
        for _ in 0..SHORT_READS {
            s.after_read(100, CHUNK);
        }
        assert_eq!(s.cap, CHUNK / 2);
        s.idle();
        assert_eq!(s.cap, MIN_BUF);
        for _ in 0..10 * SHORT_READS {
            s.after_read(1, MIN_BUF);
        }
        assert_eq!(s.cap, MIN_BUF, "never below MIN_BUF");
    }

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
