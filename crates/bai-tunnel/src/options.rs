//! Tunables of the data path and of the tunnel's lifecycle, with defaults that suit SSH.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Tunables. Build with [`Options::default`] and change fields:
///
/// ```
/// let mut options = bai_tunnel::Options::default();
/// options.connect_timeout = std::time::Duration::from_secs(5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limit on TCP connect + TLS + WebSocket handshake to the server. Default 15 s.
    pub connect_timeout: Duration,
    /// Interval of WebSocket pings to the server (keeps proxies from idling the socket out).
    /// Default 30 s; `None` sends none.
    pub ping_interval: Option<Duration>,
    /// A connection is failed when there is no progress with the server either way for this
    /// long: no byte arrives from it (data, pong, part of a frame), none of our data leaves for
    /// it, and nothing is delivered to the local side. A slow uplink still moving our frames, or
    /// a slow local reader, keeps the connection alive, so this never kills a live session; only
    /// a server that neither answers pings nor takes data does. Default 90 s (three pings);
    /// `None` disables.
    pub peer_timeout: Option<Duration>,
    /// TCP keepalive idle time on accepted sockets and on the socket to the server.
    /// Default 30 s; `None` leaves the OS default (off).
    pub tcp_keepalive: Option<Duration>,
    /// After one side ends, how long to wait for the other: for the server's close after the
    /// local side's EOF (a real 23.09 webserver never relays it), and for the local side's EOF
    /// after the tunnel closed the local socket's write half. Default 3 s.
    pub close_grace: Duration,
    /// On a graceful stop, how long open connections may continue before they are cancelled.
    /// Default 5 s.
    pub shutdown_grace: Duration,
    /// Cap on concurrent connections; more wait in the listen backlog. Default `None` (no cap).
    pub max_connections: Option<usize>,
    /// Largest read from the local socket, sent as one binary frame. Default 256 KiB (the
    /// manager's own chunk size).
    pub max_chunk: usize,
    /// Largest message (and frame) accepted from the server; a larger one fails the
    /// connection. Default 32 MiB (the manager sends ≤ 256 KiB per frame, so anything from
    /// 256 KiB up works with a real server).
    ///
    /// # Memory per connection
    /// While data flows, one connection holds at most: one local read (≤ `max_chunk`) being
    /// sent, one message from the server (≤ `max_message_size`, in practice the manager's
    /// 256 KiB) being written locally, plus ~32 KiB of WebSocket read buffer. Backpressure keeps
    /// it there under a slow reader or a slow server. When a connection goes quiet, the local
    /// read buffer is freed; the WebSocket library keeps its buffers at the largest frame seen
    /// in each direction (so up to about `max_chunk` + 256 KiB for an idle connection after a
    /// bulk transfer, and about 32 KiB for one that only carried interactive traffic).
    pub max_message_size: usize,
    /// Capacity of the event channel of [`crate::TunnelHandle::subscribe`]. Default 1024.
    pub event_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(15),
            ping_interval: Some(Duration::from_secs(30)),
            peer_timeout: Some(Duration::from_secs(90)),
            tcp_keepalive: Some(Duration::from_secs(30)),
            close_grace: Duration::from_secs(3),
            shutdown_grace: Duration::from_secs(5),
            max_connections: None,
            max_chunk: 256 * 1024,
            max_message_size: 32 * 1024 * 1024,
            event_capacity: 1024,
        }
    }
}

impl Options {
    /// The tungstenite configuration these options imply.
    pub(crate) fn ws_config(&self) -> WebSocketConfig {
        let max_chunk = self.max_chunk.max(1);
        let max_message = self.max_message_size.max(1);
        WebSocketConfig::default()
            // The first allocation of the read buffer and the most read per syscall: small for
            // idle connections; a large frame still grows it to the frame's size.
            .read_buffer_size(READ_BUFFER)
            // Every send is flushed before the next read from the local socket, so write
            // coalescing buys nothing: frames go straight out.
            .write_buffer_size(0)
            // At most one frame, a pong and a close wait here: this bound is never reached in
            // normal operation and only guards against a bug.
            .max_write_buffer_size(max_chunk + 64 * 1024)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message))
    }
}

/// See [`Options::ws_config`].
const READ_BUFFER: usize = 32 * 1024;
