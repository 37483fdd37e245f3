//! Fault knobs: shared, interior-mutable switches read by the servers on every request.
//!
//! There is one global [`Faults`] and one per session. For a tunnel the session's knob wins when
//! set, else the global one applies (`refuse_port` is on when either is). The route failure
//! applies to the webserver and manager paths (global) or to requests naming the session
//! (per session); the clock skew is global only.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `u64::MAX` stands for "unset" in the atomics below.
const UNSET: u64 = u64::MAX;

#[derive(Debug)]
struct Inner {
    refuse_port: AtomicBool,
    drop_after: AtomicU64,
    upgrade_delay_ms: AtomicU64,
    slow_read_bps: AtomicU64,
    fail_route: Mutex<Option<(String, u16)>>,
    clock_skew_secs: AtomicI64,
    swallow_close: AtomicBool,
}

/// A cheap, cloneable handle to a set of fault knobs (clones share the same state).
#[derive(Debug, Clone)]
pub struct Faults(Arc<Inner>);

impl Default for Faults {
    fn default() -> Self {
        Faults(Arc::new(Inner {
            refuse_port: AtomicBool::new(false),
            drop_after: AtomicU64::new(UNSET),
            upgrade_delay_ms: AtomicU64::new(UNSET),
            slow_read_bps: AtomicU64::new(UNSET),
            fail_route: Mutex::new(None),
            clock_skew_secs: AtomicI64::new(0),
            swallow_close: AtomicBool::new(false),
        }))
    }
}

fn opt(v: u64) -> Option<u64> {
    (v != UNSET).then_some(v)
}

impl Faults {
    /// Creates knobs with every fault off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set_refuse_port(false);
        self.set_drop_after(None);
        self.set_upgrade_delay(None);
        self.set_slow_read(None);
        self.set_fail_route(None);
        self.set_clock_skew(0);
        self.set_swallow_close(false);
    }

    /// Tunnels act as if the app's port refused the connection: close 1013 after the upgrade.
    pub fn set_refuse_port(&self, on: bool) {
        self.0.refuse_port.store(on, Ordering::Relaxed);
    }
    /// Whether the refuse-port fault is on.
    pub fn refuse_port(&self) -> bool {
        self.0.refuse_port.load(Ordering::Relaxed)
    }

    /// After this many payload bytes (both directions together) a tunnel's WebSocket is dropped
    /// abruptly, with no close frame.
    pub fn set_drop_after(&self, bytes: Option<u64>) {
        self.0
            .drop_after
            .store(bytes.unwrap_or(UNSET), Ordering::Relaxed);
    }
    /// The drop-after threshold.
    pub fn drop_after(&self) -> Option<u64> {
        opt(self.0.drop_after.load(Ordering::Relaxed))
    }

    /// Delays the answer to every WebSocket upgrade request.
    pub fn set_upgrade_delay(&self, delay: Option<Duration>) {
        let v = delay.map_or(UNSET, |d| d.as_millis().min(u128::from(UNSET - 1)) as u64);
        self.0.upgrade_delay_ms.store(v, Ordering::Relaxed);
    }
    /// The upgrade delay.
    pub fn upgrade_delay(&self) -> Option<Duration> {
        opt(self.0.upgrade_delay_ms.load(Ordering::Relaxed)).map(Duration::from_millis)
    }

    /// Reads from the client's WebSocket at most this many bytes per second (backpressure).
    pub fn set_slow_read(&self, bytes_per_sec: Option<u64>) {
        let v = bytes_per_sec.map_or(UNSET, |b| b.clamp(1, UNSET - 1));
        self.0.slow_read_bps.store(v, Ordering::Relaxed);
    }
    /// The slow-read rate.
    pub fn slow_read(&self) -> Option<u64> {
        opt(self.0.slow_read_bps.load(Ordering::Relaxed))
    }

    /// Answers `status` (problem+json) to every request whose path starts with the prefix
    /// (e.g. `("/server/login", 503)` or `("/stream", 500)`).
    pub fn set_fail_route(&self, route: Option<(String, u16)>) {
        *self.0.fail_route.lock().unwrap_or_else(|e| e.into_inner()) = route;
    }
    /// The failing route.
    pub fn fail_route(&self) -> Option<(String, u16)> {
        self.0
            .fail_route
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Shifts the manager's clock by this many seconds (affects the ±15 min date check).
    pub fn set_clock_skew(&self, secs: i64) {
        self.0.clock_skew_secs.store(secs, Ordering::Relaxed);
    }
    /// The clock skew in seconds.
    pub fn clock_skew(&self) -> i64 {
        self.0.clock_skew_secs.load(Ordering::Relaxed)
    }

    /// Emulates the 23.09 webserver (protocol.md §9): on `/func/stream/*` WebSockets the
    /// manager's close is not relayed; the client's WebSocket stays open and the frames it
    /// sends afterwards are dropped. Direct manager WebSockets are unaffected.
    pub fn set_swallow_close(&self, on: bool) {
        self.0.swallow_close.store(on, Ordering::Relaxed);
    }
    /// Whether the swallow-close fault is on.
    pub fn swallow_close(&self) -> bool {
        self.0.swallow_close.load(Ordering::Relaxed)
    }

    /// The status to answer when `path` starts with the failing route's prefix.
    pub(crate) fn failing_status(&self, path: &str) -> Option<u16> {
        let (prefix, status) = self.fail_route()?;
        path.starts_with(&prefix).then_some(status)
    }
}

/// The knobs that apply to one tunnel: the session's, falling back to the global ones.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TunnelFaults {
    pub refuse_port: bool,
    pub drop_after: Option<u64>,
    pub upgrade_delay: Option<Duration>,
    pub slow_read: Option<u64>,
    /// Set only on the webserver's `/func/stream/*` path (see [`Faults::set_swallow_close`]).
    pub swallow_close: bool,
}

impl TunnelFaults {
    pub(crate) fn merge(global: &Faults, session: &Faults) -> Self {
        TunnelFaults {
            refuse_port: global.refuse_port() || session.refuse_port(),
            drop_after: session.drop_after().or(global.drop_after()),
            upgrade_delay: session.upgrade_delay().or(global.upgrade_delay()),
            slow_read: session.slow_read().or(global.slow_read()),
            swallow_close: global.swallow_close() || session.swallow_close(),
        }
    }
}
