//! The down direction (TCP → client): each TCP read becomes one binary frame, its header
//! written into the headroom in front of the payload; pongs go out between frames.

use std::io;
use std::ops::Range;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;

use super::buffer::{fit, Sizer};
use super::{Budget, End, HEAD, IDLE, MIN_BUF};
use crate::ws::{self, opcode, ControlFrame};

/// The latest unanswered ping (RFC 6455 §5.5.3 allows answering only the latest), handed from
/// the up side to the down side, which owns the client's write half.
#[derive(Debug, Default)]
pub(super) struct PendingPong {
    payload: Mutex<Option<Vec<u8>>>,
    notify: Notify,
}

impl PendingPong {
    pub(super) fn set(&self, payload: Vec<u8>) {
        *crate::lock(&self.payload) = Some(payload);
        self.notify.notify_one();
    }
    fn take(&self) -> Option<Vec<u8>> {
        crate::lock(&self.payload).take()
    }
}

/// The client's write half and the down buffer. Unsent bytes are tracked here, not in a
/// future, so a frame cut short by cancellation can still be finished before the close.
pub(super) struct Down<W> {
    pub(super) w: W,
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
    pub(super) fn new(w: W) -> Self {
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
    pub(super) async fn flush(&mut self) -> io::Result<()> {
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
    pub(super) async fn send_control(&mut self, frame: ControlFrame) -> io::Result<()> {
        self.flush().await?;
        self.ctl = frame;
        self.ctl_out = 0..frame.as_bytes().len();
        self.flush().await
    }
}

/// TCP → client until either ends; also sends the pongs.
pub(super) async fn pump_down<W: AsyncWrite + Unpin>(
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
