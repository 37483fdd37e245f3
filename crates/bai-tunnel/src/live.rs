//! Liveness of the server side, for `Options::peer_timeout`: when did anything last move?
//!
//! Any progress counts: bytes arriving from the server (data, pongs, even a part of a large
//! frame), and bytes of our data frames leaving for it. Pings we send do not count (a dead peer
//! accepts them into the kernel's buffer for a long time). [`Metered`] wraps the server socket to
//! see progress at the byte level, so a slow uplink that takes minutes for one large frame, with
//! the server's pongs queued behind it, never looks dead.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The last moment of progress with the server, shared by both halves of a connection.
#[derive(Debug)]
pub(crate) struct Liveness {
    base: Instant,
    /// Milliseconds from `base` to the last progress.
    last_ms: AtomicU64,
    /// Whether a data frame is being written (so written bytes count as progress).
    sending_data: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            sending_data: AtomicBool::new(false),
        }
    }
}

impl Liveness {
    /// Records progress now.
    pub(crate) fn mark(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Relaxed);
    }

    /// When progress was last recorded.
    pub(crate) fn last(&self) -> Instant {
        self.base + std::time::Duration::from_millis(self.last_ms.load(Relaxed))
    }

    /// Marks the start or the end of writing a data frame.
    pub(crate) fn set_sending_data(&self, on: bool) {
        self.sending_data.store(on, Relaxed);
    }
}

/// Ends "sending data" when dropped, whatever the path.
pub(crate) struct SendingData<'a>(&'a Liveness);

impl<'a> SendingData<'a> {
    pub(crate) fn start(live: &'a Liveness) -> Self {
        live.set_sending_data(true);
        SendingData(live)
    }
}

impl Drop for SendingData<'_> {
    fn drop(&mut self) {
        self.0.set_sending_data(false);
        self.0.mark();
    }
}

/// A socket that records progress in a [`Liveness`]: every read that returns bytes, and every
/// write that moves bytes of a data frame.
#[derive(Debug)]
pub(crate) struct Metered<S> {
    inner: S,
    live: std::sync::Arc<Liveness>,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S, live: std::sync::Arc<Liveness>) -> Self {
        Metered { inner, live }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.live.mark();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Metered<S> {
    fn written(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) && self.live.sending_data.load(Relaxed) {
            self.live.mark();
        }
    }
}
