//! The manager's rate limit as its answers show it (real 26.9.6,
//! `manager/api/rest/ratelimit/handler.py`): a fixed window of 15 minutes per user (per access
//! key here) or, unsigned, per client; every answer carries `X-RateLimit-Limit`, `-Remaining`,
//! `-Reset` (seconds until the window ends) and `-Window`. The sandbox counts but never refuses.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

use crate::{lock, State};

/// The window's length (`_RATELIMIT_WINDOW_SECONDS`).
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The limit of an unsigned caller (`_ANONYMOUS_RATELIMIT`).
const ANONYMOUS_LIMIT: u64 = 1000;
/// A keypair's limit (the default keypair resource policy's `rate_limit`).
const USER_LIMIT: u64 = 30_000;

/// One caller's current window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateWindow {
    started: Instant,
    count: u64,
}

/// What one answer says about its caller's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub limit: u64,
    pub remaining: u64,
    pub reset_after: u64,
}

impl Quota {
    /// Sets the four `X-RateLimit-*` headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let pairs = [
            ("x-ratelimit-limit", self.limit),
            ("x-ratelimit-remaining", self.remaining),
            ("x-ratelimit-reset", self.reset_after),
            ("x-ratelimit-window", WINDOW.as_secs()),
        ];
        for (name, value) in pairs {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// Counts one request of `access_key` (`None`: an unsigned request) in its window.
pub(crate) fn consume(state: &State, access_key: Option<&str>) -> Quota {
    let (key, limit) = match access_key {
        Some(ak) => (ak, USER_LIMIT),
        None => ("", ANONYMOUS_LIMIT),
    };
    let now = Instant::now();
    let mut windows = lock(&state.rate_windows);
    let w = windows.entry(key.to_owned()).or_insert(RateWindow {
        started: now,
        count: 0,
    });
    if now.duration_since(w.started) >= WINDOW {
        *w = RateWindow {
            started: now,
            count: 0,
        };
    }
    w.count = w.count.saturating_add(1);
    let left = WINDOW.saturating_sub(now.duration_since(w.started));
    Quota {
        limit,
        remaining: limit.saturating_sub(w.count),
        reset_after: left.as_secs().max(1),
    }
}
