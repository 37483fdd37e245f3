//! stdio mode: one connection carried over a reader and a writer, for ssh's `ProxyCommand`
//! (`ProxyCommand bai proxy SESSION`: ssh talks to our stdin/stdout).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::dial::Dialer;
use crate::live::Liveness;
use crate::pump::pump;
use crate::stats::Counters;
use crate::{Connector, Error, Options};

/// What a finished stdio connection carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Bytes read from `reader` and sent to the server.
    pub bytes_up: u64,
    /// Bytes received from the server and written to `writer`.
    pub bytes_down: u64,
    /// How long the connection lasted.
    pub duration: Duration,
}

/// Opens one WebSocket through `connector` and carries `reader` → server and server → `writer`
/// until both ends are done (same semantics as a tunnel connection). The binary passes
/// `tokio::io::stdin()` and `tokio::io::stdout()`; tests pass `tokio::io::duplex` halves.
///
/// Nothing but the server's bytes is ever written to `writer`: when the WebSocket cannot be
/// opened, `writer` is left untouched and the error is returned (for the binary to print on
/// stderr).
///
/// Note for binaries: Tokio's stdin reads on a blocking thread that cannot be interrupted, so
/// exit the process when this returns rather than waiting for the runtime to shut down.
///
/// # Errors
/// [`Error::Connection`] when the WebSocket could not be opened or the server side failed.
pub async fn run_stdio<C, R, W>(
    connector: &C,
    mut reader: R,
    mut writer: W,
    options: &Options,
    cancel: CancellationToken,
) -> Result<Summary, Error>
where
    C: Connector + ?Sized,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let started = Instant::now();
    let dialer = Dialer::default();
    let live = Arc::new(Liveness::default());
    let ws = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            return Ok(Summary { bytes_up: 0, bytes_down: 0, duration: started.elapsed() });
        }
        ws = dialer.open(connector, options, &live) => ws?,
    };
    let counters = Counters::new(None);
    pump(
        &mut reader,
        &mut writer,
        ws,
        options,
        &counters,
        &live,
        &cancel,
    )
    .await?;
    Ok(Summary {
        bytes_up: counters.up(),
        bytes_down: counters.down(),
        duration: started.elapsed(),
    })
}
