//! The up direction (client → TCP): client bytes are parsed where they were read, unmasked in
//! place, and the payload slices go to TCP in one vectored write per read.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::tcp::OwnedWriteHalf;

use super::buffer::{fit, Sizer};
use super::down::PendingPong;
use super::{Budget, End, CHUNK, IDLE, MAX_IOV, MIN_BUF};
use crate::ws::{Event, Parser, Ranges};

/// The client's read half, the up buffer and the parser. `buf[start..end]` is read but not
/// yet parsed (at most a partial header between reads).
pub(super) struct Up<R> {
    pub(super) r: R,
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) parser: Parser,
    size: Sizer,
    ranges: Ranges,
}

impl<R: AsyncRead + Unpin> Up<R> {
    pub(super) fn new(r: R) -> Self {
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
    pub(super) async fn fill(&mut self, limit: Option<usize>) -> io::Result<usize> {
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

/// Client → TCP until either ends.
pub(super) async fn pump_up<R: AsyncRead + Unpin>(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

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
}
