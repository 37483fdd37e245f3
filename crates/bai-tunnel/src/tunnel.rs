//! The tunnel: an accept loop over a bound listener that gives every connection its own
//! WebSocket, plus the [`TunnelHandle`] that stops it (gracefully, or at once on drop).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::dial::{tune_socket, Dialer};
use crate::live::Liveness;
use crate::pump::{linger, pump_ended};
use crate::stats::Counters;
use crate::{CloseReason, Connector, Error, Event, Options, Stats};

/// After the grace of a stop, how long cancelled connections may take to send their close.
const CANCEL_BOUND: Duration = Duration::from_secs(3);

/// The longest pause between retries of a failing `accept` (out of file descriptors, …).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A tunnel ready to serve: a bound listener, the connector, and the options.
pub struct Tunnel {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

/// What every connection task of a tunnel shares.
struct Shared {
    connector: Arc<dyn Connector>,
    options: Options,
    dialer: Dialer,
    stats: Arc<Stats>,
    events: broadcast::Sender<Event>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// A tunnel over `listener` (see [`crate::bind`]; tests pass a port-0 listener).
    ///
    /// # Errors
    /// [`Error::Bind`] when the listener has no local address.
    pub fn new(
        listener: TcpListener,
        connector: impl Connector,
        options: Options,
    ) -> Result<Self, Error> {
        Self::with_shared_connector(listener, Arc::new(connector), options)
    }

    /// Like [`Tunnel::new`], with a connector that is shared with others.
    ///
    /// # Errors
    /// [`Error::Bind`] when the listener has no local address.
    pub fn with_shared_connector(
        listener: TcpListener,
        connector: Arc<dyn Connector>,
        options: Options,
    ) -> Result<Self, Error> {
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        Ok(Tunnel {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                connector,
                options,
                dialer: Dialer::default(),
                stats: Arc::new(Stats::default()),
                events,
            }),
        })
    }

    /// The address local clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// A receiver of connection events from now on. A receiver that falls more than
    /// `Options::event_capacity` behind loses the oldest events (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Serves until `cancel` fires, then stops gracefully: stops accepting, lets open
    /// connections continue for `Options::shutdown_grace`, then cancels them.
    ///
    /// Dropping the returned future (for example when it loses a `select!` against
    /// `ctrl_c()`) cancels the open connections at once: each sends a close to the server.
    pub async fn serve(self, cancel: CancellationToken) {
        let grace = self.shared.options.shutdown_grace;
        self.run(cancel, CancellationToken::new(), Some(grace))
            .await;
    }

    /// Runs the tunnel on the current Tokio runtime and returns its handle.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn spawn(self) -> TunnelHandle {
        let stop = CancellationToken::new();
        let kill = CancellationToken::new();
        let local_addr = self.local_addr;
        let stats = self.shared.stats.clone();
        let events = self.shared.events.clone();
        let grace = self.shared.options.shutdown_grace;
        // The handle times the grace itself (see `stop_within`).
        let task = tokio::spawn(self.run(stop.clone(), kill.clone(), None));
        TunnelHandle {
            local_addr,
            stop,
            kill,
            grace,
            task: Some(task),
            stats,
            events,
        }
    }

    /// The accept loop. `stop` ends accepting and starts the grace; `kill` (or the end of the
    /// grace, if any) cancels the open connections.
    async fn run(self, stop: CancellationToken, kill: CancellationToken, grace: Option<Duration>) {
        let Tunnel {
            listener,
            local_addr,
            shared,
        } = self;
        // When the caller drops this future (`serve` in a `select!` with ctrl_c, an aborted
        // task), the connections, which run in their own tasks, must end with it.
        let _kill_on_drop = kill.clone().drop_guard();
        tracing::info!(%local_addr, "tunnel listening");
        let tracker = TaskTracker::new();
        let limit = shared
            .options
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n.max(1))));
        let mut backoff = Duration::from_millis(5);
        loop {
            // With a cap, wait for a free slot before accepting: extra clients wait in the
            // kernel's backlog rather than in memory.
            let permit = match &limit {
                Some(limit) => tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    permit = limit.clone().acquire_owned() => match permit {
                        Ok(permit) => Some(permit),
                        Err(_) => break,
                    },
                },
                None => None,
            };
            let (tcp, peer) = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => {
                        backoff = Duration::from_millis(5);
                        accepted
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "accept failed; retrying");
                        tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                        continue;
                    }
                },
            };
            let id = Uuid::now_v7();
            let span = tracing::info_span!("conn", %id, %peer);
            let shared = shared.clone();
            let cancel = kill.child_token();
            tracker.spawn(
                async move {
                    handle_connection(tcp, peer, id, &shared, &cancel).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        drop(listener);
        tracker.close();
        let open = tracker.len();
        if open > 0 {
            tracing::info!(open, ?grace, "stopping; waiting for open connections");
        }
        let grace_over = async {
            match grace {
                Some(grace) => tokio::time::sleep(grace).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tracker.wait() => {}
            () = kill.cancelled() => {}
            () = grace_over => {
                tracing::info!(open = tracker.len(), "grace over; cancelling open connections");
            }
        }
        kill.cancel();
        if tokio::time::timeout(CANCEL_BOUND, tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                open = tracker.len(),
                "connections did not end after cancellation"
            );
        }
        tracing::info!(%local_addr, "tunnel stopped");
    }
}

async fn handle_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    id: Uuid,
    shared: &Shared,
    cancel: &CancellationToken,
) {
    let started = Instant::now();
    let _active = shared.stats.open();
    let _ = shared.events.send(Event::Opened { id, peer });
    tracing::info!("connection opened");
    tune_socket(&tcp, shared.options.tcp_keepalive);

    let counters = Counters::new(Some(&shared.stats));
    let live = Arc::new(Liveness::default());
    let opened = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        ws = shared.dialer.open(shared.connector.as_ref(), &shared.options, &live) => Some(ws),
    };
    let (mut reader, mut writer) = tcp.split();
    let (result, reason) = match opened {
        None => (Ok(()), CloseReason::Stopped),
        Some(Err(error)) => {
            // Nothing is written to the local side: it just sees an orderly close.
            linger(&mut reader, &mut writer, shared.options.close_grace, cancel).await;
            let reason = CloseReason::Failed(error.to_string());
            (Err(error), reason)
        }
        Some(Ok(ws)) => {
            pump_ended(
                &mut reader,
                &mut writer,
                ws,
                &shared.options,
                &counters,
                &live,
                cancel,
            )
            .await
        }
    };
    let (bytes_up, bytes_down, duration) = (counters.up(), counters.down(), started.elapsed());
    if let Err(error) = result {
        tracing::warn!(%error, %reason, bytes_up, bytes_down, "connection failed");
        shared.stats.record_error(&error);
        let _ = shared.events.send(Event::Failed { id, error });
    } else {
        tracing::info!(%reason, bytes_up, bytes_down, ?duration, "connection closed");
    }
    shared.stats.record_close(&reason);
    let _ = shared.events.send(Event::Closed {
        id,
        bytes_up,
        bytes_down,
        duration,
        reason,
    });
}

/// Controls a spawned [`Tunnel`]. Dropping it cancels the tunnel and its connections at once.
#[derive(Debug)]
pub struct TunnelHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    kill: CancellationToken,
    grace: Duration,
    task: Option<JoinHandle<()>>,
    stats: Arc<Stats>,
    events: broadcast::Sender<Event>,
}

impl TunnelHandle {
    /// The address local clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// A receiver of connection events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Whether the tunnel has stopped (after [`TunnelHandle::cancel`], or a panic).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops gracefully with `Options::shutdown_grace`: see [`TunnelHandle::stop_within`].
    pub async fn stop(self) {
        let grace = self.grace;
        self.stop_within(grace).await;
    }

    /// Stops accepting at once, lets open connections continue for up to `grace`, then cancels
    /// them (each sends a close to the server) and returns when everything has ended.
    pub async fn stop_within(mut self, grace: Duration) {
        self.stop.cancel();
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            self.kill.cancel();
            if let Err(e) = task.await {
                tracing::error!(error = %e, "tunnel task failed");
            }
        }
    }

    /// Cancels the tunnel and its connections now, without waiting.
    pub fn cancel(&self) {
        self.stop.cancel();
        self.kill.cancel();
    }
}

impl Drop for TunnelHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}
