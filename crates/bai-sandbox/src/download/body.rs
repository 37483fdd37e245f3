//! Response bodies written by a blocking producer (the tar or file reader) a chunk at a time,
//! so memory stays at a few chunks whatever the download's size.

use std::io::{self, Write};

use axum::body::{Body, Bytes};

/// Bytes per chunk of a streamed response body.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered between the reading thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Collects written bytes into chunks for a response body; fails with `BrokenPipe` once the
/// body is gone (the client went away), which stops the writer.
pub(crate) struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the response was dropped"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A response body written by `produce` on a blocking thread as it reads; memory stays at a
/// few chunks whatever the size. An error of `produce` aborts the body (the client sees a
/// truncated response, never a wrong one).
pub(crate) fn streamed_body<F>(produce: F) -> Body
where
    F: FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = produce(&mut w).and_then(|()| w.flush()) {
            tracing::warn!(error = %e, "download aborted");
            let _ = tx.blocking_send(Err(e));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
