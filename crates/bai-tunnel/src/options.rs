//! Tunables of the data path and of the tunnel's lifecycle, with defaults that suit SSH.

use std::time::Duration;

/// Tunables. Build with [`Options::default`] and change fields:
///
/// ```
/// let mut options = bai_tunnel::Options::default();
/// options.connect_timeout = std::time::Duration::from_secs(5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limit on resolving, TCP connect, TLS and WebSocket handshake to the server together.
    /// Default 15 s. The server's addresses are tried Happy-Eyeballs style (the next one joins
    /// every 250 ms, or as soon as an attempt fails), each attempt for at most a third of this;
    /// when all fail or time out, the name is resolved again and the new addresses tried, as long
    /// as this allows.
    pub connect_timeout: Duration,
    /// Resolves the server's host name. Default: the system resolver.
    pub resolver: crate::Resolver,
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
    /// Largest frame accepted from the server; a larger one fails the connection (close 1009).
    /// Frames are streamed to the local side, never held whole, so this is a sanity limit, not
    /// a memory bound. Default 32 MiB (the manager sends ≤ 256 KiB per frame).
    ///
    /// # Memory per connection
    /// One read buffer each way, starting at 16 KiB and growing (doubling while reads fill it)
    /// to at most `max_chunk` up and 256 KiB down; backpressure keeps it there under a slow
    /// reader or a slow server, and a side that goes quiet drops a grown buffer back to nothing
    /// (up) or 16 KiB (down). An interactive connection holds about 32 KiB.
    pub max_message_size: usize,
    /// Capacity of the event channel of [`crate::TunnelHandle::subscribe`]. Default 1024.
    pub event_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(15),
            resolver: crate::Resolver::default(),
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
