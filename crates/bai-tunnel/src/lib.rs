//! Local proxy from TCP (or stdio) to a Backend.AI session's `tcpproxy` WebSocket.
//!
//! Every accepted TCP connection gets its own WebSocket, opened with the request a [`Connector`]
//! builds (bai-api provides the signed one; this crate knows nothing of HTTP auth), and raw bytes
//! move both ways as binary frames; nothing else is ever written to the local socket.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bai_tunnel::Error> {
//! use bai_tunnel::{bind, BindOptions, Options, Target, Tunnel};
//!
//! let bound = bind(&BindOptions::loopback(Some(9922))).await?;
//! println!("{}", bound.describe());
//! let connector = || Target::from_url("ws://127.0.0.1:8081/stream/session/s/tcpproxy?app=sshd");
//! let handle = Tunnel::new(bound.listener, connector, Options::default())?.spawn();
//! let mut events = handle.subscribe();
//! while let Ok(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! handle.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Semantics (see `docs/protocol.md` §4 and §9):
//! - local EOF → a normal close to the server, then server data is still delivered until the
//!   server closes or `Options::close_grace` passes (a 23.09 webserver never relays the close);
//! - server close → the local write half is shut down after the data before it was written;
//! - a refused upgrade or an error close (1013, 1011) → an orderly close of the local socket and
//!   an [`Event::Failed`] with the server's message;
//! - backpressure both ways: the local side is read only when the previous frame was flushed,
//!   and the WebSocket is read only when the previous payload was written locally.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bind;
mod close;
mod connector;
mod dial;
mod error;
mod frame;
mod handshake;
mod live;
mod options;
mod pump;
mod stats;
mod stdio;
mod tunnel;

#[cfg(test)]
mod tests;

pub use bai_problem::Problem;
pub use bind::{bind, BindOptions, Bound, FallbackReason, PortChoice};
pub use close::{close_code_meaning, CloseReason};
pub use connector::{BoxError, BoxFuture, Connector, Target, TlsConnector};
pub use dial::Resolver;
pub use error::{ConnError, Error};
pub use options::Options;
pub use stats::{Event, Stats, StatsSnapshot};
pub use stdio::{run_stdio, Summary};
pub use tunnel::{Tunnel, TunnelHandle};
