//! Live counters ([`Stats`]) and the event stream ([`Event`]) that the app and the CLI display.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use crate::{CloseReason, ConnError};

/// Something that happened to one connection. Every `Opened` is followed by exactly one `Closed`;
/// a `Failed` comes just before the `Closed` of a connection that ended with an error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A local connection was accepted; its WebSocket is being opened.
    Opened {
        /// The connection's id (UUIDv7, also in the logs' `conn` span).
        id: Uuid,
        /// The local peer.
        peer: SocketAddr,
    },
    /// A connection ended (cleanly or not).
    Closed {
        /// The connection's id.
        id: Uuid,
        /// Bytes sent from the local side to the server.
        bytes_up: u64,
        /// Bytes sent from the server to the local side.
        bytes_down: u64,
        /// How long the connection lasted.
        duration: Duration,
        /// Why it ended: the server's close code and reason as received (in words), no close
        /// frame at all, the local client closing, the tunnel stopping, …
        reason: CloseReason,
    },
    /// A connection failed: refused upgrade, error close code, dropped WebSocket, …
    Failed {
        /// The connection's id.
        id: Uuid,
        /// What went wrong, with the server's message when it sent one.
        error: ConnError,
    },
}

/// Live counters of a tunnel, shared (`Arc`) between the tunnel and its observers.
#[derive(Debug)]
pub struct Stats {
    active: AtomicU64,
    total: AtomicU64,
    failed: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    buffered: AtomicU64,
    peak_buffered_per_conn: AtomicU64,
    started_at: SystemTime,
    started: Instant,
    last_error: Mutex<Option<ConnError>>,
    last_close: Mutex<Option<CloseReason>>,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections open now.
    pub active: u64,
    /// Connections accepted since the start.
    pub total: u64,
    /// Connections that failed since the start.
    pub failed: u64,
    /// Bytes sent from local sides to the server.
    pub bytes_up: u64,
    /// Bytes sent from the server to local sides.
    pub bytes_down: u64,
    /// Bytes the tunnel holds right now (read but not yet written), all connections together.
    pub buffered: u64,
    /// The most bytes any one connection ever held at once.
    pub peak_buffered_per_conn: u64,
    /// When the tunnel started.
    pub started_at: SystemTime,
    /// How long it has been running.
    pub uptime: Duration,
    /// The most recent connection error.
    pub last_error: Option<ConnError>,
    /// Why the most recent connection ended.
    pub last_close: Option<CloseReason>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            peak_buffered_per_conn: AtomicU64::new(0),
            started_at: SystemTime::now(),
            started: Instant::now(),
            last_error: Mutex::new(None),
            last_close: Mutex::new(None),
        }
    }
}

impl Stats {
    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }
    /// Connections accepted since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
    /// Connections that failed since the start.
    pub fn failed(&self) -> u64 {
        self.failed.load(Relaxed)
    }
    /// Bytes sent from local sides to the server.
    pub fn bytes_up(&self) -> u64 {
        self.bytes_up.load(Relaxed)
    }
    /// Bytes sent from the server to local sides.
    pub fn bytes_down(&self) -> u64 {
        self.bytes_down.load(Relaxed)
    }
    /// Bytes held by the tunnel right now, all connections together.
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Relaxed)
    }
    /// The most bytes any one connection ever held at once.
    pub fn peak_buffered_per_conn(&self) -> u64 {
        self.peak_buffered_per_conn.load(Relaxed)
    }
    /// When the tunnel started.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }
    /// The most recent connection error.
    pub fn last_error(&self) -> Option<ConnError> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
    /// Why the most recent connection ended.
    pub fn last_close(&self) -> Option<CloseReason> {
        self.last_close
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
    /// A consistent-enough copy of all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            active: self.active(),
            total: self.total(),
            failed: self.failed(),
            bytes_up: self.bytes_up(),
            bytes_down: self.bytes_down(),
            buffered: self.buffered(),
            peak_buffered_per_conn: self.peak_buffered_per_conn(),
            started_at: self.started_at,
            uptime: self.started.elapsed(),
            last_error: self.last_error(),
            last_close: self.last_close(),
        }
    }

    pub(crate) fn record_error(&self, error: &ConnError) {
        self.failed.fetch_add(1, Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error.clone());
    }

    pub(crate) fn record_close(&self, reason: &CloseReason) {
        *self
            .last_close
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason.clone());
    }

    /// Counts an accepted connection; the guard un-counts it when dropped, whatever the path.
    pub(crate) fn open(&self) -> ActiveGuard<'_> {
        self.total.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self)
    }
}

pub(crate) struct ActiveGuard<'a>(&'a Stats);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// Per-connection counters, mirrored into the tunnel's [`Stats`] when there is one.
#[derive(Debug, Default)]
pub(crate) struct Counters<'a> {
    pub(crate) up: AtomicU64,
    pub(crate) down: AtomicU64,
    buffered: AtomicU64,
    peak_buffered: AtomicU64,
    global: Option<&'a Stats>,
}

impl<'a> Counters<'a> {
    pub(crate) fn new(global: Option<&'a Stats>) -> Self {
        Counters {
            global,
            ..Counters::default()
        }
    }

    pub(crate) fn add_up(&self, n: usize) {
        self.up.fetch_add(n as u64, Relaxed);
        if let Some(g) = self.global {
            g.bytes_up.fetch_add(n as u64, Relaxed);
        }
    }

    pub(crate) fn add_down(&self, n: usize) {
        self.down.fetch_add(n as u64, Relaxed);
        if let Some(g) = self.global {
            g.bytes_down.fetch_add(n as u64, Relaxed);
        }
    }

    /// Marks `n` bytes as held until the returned guard is dropped, whatever the path (the
    /// holder finishing, failing, or its future being dropped mid-`.await`).
    pub(crate) fn hold(&self, n: usize) -> Held<'_, 'a> {
        let now = self.buffered.fetch_add(n as u64, Relaxed) + n as u64;
        self.peak_buffered.fetch_max(now, Relaxed);
        if let Some(g) = self.global {
            g.buffered.fetch_add(n as u64, Relaxed);
            g.peak_buffered_per_conn.fetch_max(now, Relaxed);
        }
        Held { counters: self, n }
    }

    fn release(&self, n: usize) {
        self.buffered.fetch_sub(n as u64, Relaxed);
        if let Some(g) = self.global {
            g.buffered.fetch_sub(n as u64, Relaxed);
        }
    }

    pub(crate) fn up(&self) -> u64 {
        self.up.load(Relaxed)
    }

    pub(crate) fn down(&self) -> u64 {
        self.down.load(Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn peak_buffered(&self) -> u64 {
        self.peak_buffered.load(Relaxed)
    }
}

/// Bytes marked as held by [`Counters::hold`]; released when dropped.
#[must_use = "the bytes are released when the guard is dropped"]
pub(crate) struct Held<'c, 'a> {
    counters: &'c Counters<'a>,
    n: usize,
}

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        self.counters.release(self.n);
    }
}
