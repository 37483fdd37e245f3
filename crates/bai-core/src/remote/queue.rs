//! The transfer queue: every upload or download gets an id and runs when one of
//! [`MAX_RUNNING`] slots is free; its state, bytes, speed and ETA are published on a broadcast
//! channel (at most every [`TICK`] while running, plus every state change).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use super::transfer::Progress;
use crate::{Error, ErrorCode, Result};

/// Transfers running at once.
pub const MAX_RUNNING: usize = 3;
/// How often a running transfer publishes its progress.
pub const TICK: Duration = Duration::from_millis(200);
/// The window the speed is measured over.
const SPEED_WINDOW: Duration = Duration::from_secs(3);

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Local → session.
    Upload,
    /// Session → local.
    Download,
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    /// Waiting for a slot.
    Queued,
    /// Moving bytes.
    Running,
    /// Finished.
    Done,
    /// Failed (see the error).
    Failed,
    /// Cancelled; what it had written is removed.
    Cancelled,
}

/// A failed transfer's error, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferError {
    /// The classification.
    pub code: ErrorCode,
    /// The message.
    pub message: String,
    /// The hint.
    pub hint: Option<String>,
}

/// One transfer as the UI sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferInfo {
    /// Its id.
    pub id: u64,
    /// The session.
    pub session: String,
    /// Which way.
    pub direction: Direction,
    /// The file or folder name.
    pub name: String,
    /// Where from (a local path or a remote path).
    pub source: String,
    /// Where to.
    pub target: String,
    /// Bytes moved.
    pub bytes: u64,
    /// Bytes to move, once known.
    pub total: Option<u64>,
    /// Files finished.
    pub files: u64,
    /// Files to move, once known.
    pub files_total: Option<u64>,
    /// Current speed.
    pub bytes_per_sec: f64,
    /// Seconds left, when known.
    pub eta_secs: Option<u64>,
    /// Its state.
    pub state: TransferState,
    /// Why it failed.
    pub error: Option<TransferError>,
}

struct Entry {
    info: TransferInfo,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    samples: VecDeque<(Instant, u64)>,
}

impl Entry {
    /// Refreshes bytes, totals, speed and ETA from the counters.
    fn refresh(&mut self) {
        let p = &self.progress;
        let known = |v: u64| (v != u64::MAX).then_some(v);
        self.info.bytes = p.bytes.load(Ordering::Relaxed);
        self.info.total = known(p.total.load(Ordering::Relaxed));
        self.info.files = p.files.load(Ordering::Relaxed);
        self.info.files_total = known(p.files_total.load(Ordering::Relaxed));
        let now = Instant::now();
        self.samples.push_back((now, self.info.bytes));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > SPEED_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        if let (Some((t0, b0)), Some((t1, b1))) = (self.samples.front(), self.samples.back()) {
            let dt = t1.duration_since(*t0).as_secs_f64();
            if dt > 0.1 {
                self.info.bytes_per_sec = b1.saturating_sub(*b0) as f64 / dt;
            }
        }
        self.info.eta_secs = match (self.info.total, self.info.bytes_per_sec) {
            (Some(t), s) if s > 1.0 => {
                Some((t.saturating_sub(self.info.bytes) as f64 / s).ceil() as u64)
            }
            _ => None,
        };
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
}

/// How many finished transfers the list keeps (the oldest are forgotten first).
pub const KEEP_FINISHED: usize = 500;

/// The queue. Clones share it.
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Mutex<Inner>>,
    slots: Arc<Semaphore>,
    events: broadcast::Sender<TransferInfo>,
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").finish_non_exhaustive()
    }
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers::new(MAX_RUNNING)
    }
}

/// What a queued job gets: its counters and its cancellation.
pub type JobContext = (Arc<Progress>, CancellationToken);

impl Transfers {
    /// A queue running at most `running` transfers at once.
    pub fn new(running: usize) -> Transfers {
        Transfers {
            inner: Arc::new(Mutex::new(Inner::default())),
            slots: Arc::new(Semaphore::new(running.max(1))),
            events: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every change of every transfer.
    pub fn subscribe(&self) -> broadcast::Receiver<TransferInfo> {
        self.events.subscribe()
    }

    /// All transfers, oldest first.
    pub fn list(&self) -> Vec<TransferInfo> {
        self.lock()
            .entries
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    /// One transfer.
    pub fn get(&self, id: u64) -> Option<TransferInfo> {
        self.lock().entries.get(&id).map(|e| e.info.clone())
    }

    /// Cancels a transfer (queued or running); `false` when unknown or finished.
    pub fn cancel(&self, id: u64) -> bool {
        let inner = self.lock();
        match inner.entries.get(&id) {
            Some(e) if matches!(e.info.state, TransferState::Queued | TransferState::Running) => {
                e.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Cancels every transfer (logout, quit).
    pub fn cancel_all(&self) {
        for e in self.lock().entries.values() {
            e.cancel.cancel();
        }
    }

    /// Forgets finished transfers.
    pub fn clear(&self) {
        self.lock()
            .entries
            .retain(|_, e| matches!(e.info.state, TransferState::Queued | TransferState::Running));
    }

    fn publish(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        let info = {
            let mut inner = self.lock();
            let Some(e) = inner.entries.get_mut(&id) else {
                return;
            };
            f(e);
            e.info.clone()
        };
        let _ = self.events.send(info);
    }

    /// Queues a job; returns its id at once. `job` runs when a slot is free.
    pub fn start<F, Fut>(
        &self,
        session: &str,
        direction: Direction,
        name: &str,
        source: &str,
        target: &str,
        job: F,
    ) -> u64
    where
        F: FnOnce(JobContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let progress = Progress::new();
        let cancel = CancellationToken::new();
        let id = {
            let mut inner = self.lock();
            // The history is bounded: beyond KEEP_FINISHED finished transfers, the oldest go.
            let finished: Vec<u64> = inner
                .entries
                .iter()
                .filter(|(_, e)| {
                    !matches!(e.info.state, TransferState::Queued | TransferState::Running)
                })
                .map(|(id, _)| *id)
                .collect();
            for old in finished
                .iter()
                .take(finished.len().saturating_sub(KEEP_FINISHED))
            {
                inner.entries.remove(old);
            }
            inner.next_id += 1;
            let id = inner.next_id;
            inner.entries.insert(
                id,
                Entry {
                    info: TransferInfo {
                        id,
                        session: session.to_owned(),
                        direction,
                        name: name.to_owned(),
                        source: source.to_owned(),
                        target: target.to_owned(),
                        bytes: 0,
                        total: None,
                        files: 0,
                        files_total: None,
                        bytes_per_sec: 0.0,
                        eta_secs: None,
                        state: TransferState::Queued,
                        error: None,
                    },
                    progress: progress.clone(),
                    cancel: cancel.clone(),
                    samples: VecDeque::new(),
                },
            );
            id
        };
        self.publish(id, |_| {});
        let me = self.clone();
        tokio::spawn(async move {
            let permit = tokio::select! {
                p = me.slots.clone().acquire_owned() => p.ok(),
                () = cancel.cancelled() => None,
            };
            let result = match permit {
                None => Err(Error::Cancelled),
                Some(_permit) => {
                    me.publish(id, |e| e.info.state = TransferState::Running);
                    let work = job((progress, cancel.clone()));
                    tokio::pin!(work);
                    let mut tick = tokio::time::interval(TICK);
                    loop {
                        tokio::select! {
                            r = &mut work => break r,
                            _ = tick.tick() => me.publish(id, Entry::refresh),
                        }
                    }
                }
            };
            me.publish(id, |e| {
                e.refresh();
                e.info.eta_secs = None;
                match result {
                    Ok(()) => {
                        e.info.state = TransferState::Done;
                        e.info.eta_secs = Some(0);
                    }
                    Err(_) if e.cancel.is_cancelled() => e.info.state = TransferState::Cancelled,
                    Err(Error::Cancelled) => e.info.state = TransferState::Cancelled,
                    Err(err) => {
                        tracing::warn!(id, error = %err, "transfer failed");
                        e.info.state = TransferState::Failed;
                        e.info.error = Some(TransferError {
                            code: err.code(),
                            message: err.to_string(),
                            hint: err.hint(),
                        });
                    }
                }
            });
        });
        id
    }

    /// Waits until transfer `id` has finished; its last state (tests, the CLI).
    pub async fn wait(&self, id: u64) -> Option<TransferInfo> {
        let mut rx = self.subscribe();
        loop {
            let now = self.get(id)?;
            if !matches!(now.state, TransferState::Queued | TransferState::Running) {
                return Some(now);
            }
            match rx.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return self.get(id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_history_of_finished_transfers_is_bounded() {
        let q = Transfers::default();
        let mut last = 0;
        for _ in 0..KEEP_FINISHED + 20 {
            last = q.start("s", Direction::Upload, "f", "", "", |_| async { Ok(()) });
            q.wait(last).await;
        }
        let busy = q.start("s", Direction::Upload, "f", "", "", |(_, c)| async move {
            c.cancelled().await;
            Err(Error::Cancelled)
        });
        let list = q.list();
        assert_eq!(list.len(), KEEP_FINISHED + 1, "the oldest finished ones go");
        assert_eq!(list.last().map(|t| t.id), Some(busy));
        assert!(list.iter().any(|t| t.id == last));
        assert!(q.cancel(busy));
    }

    #[tokio::test]
    async fn at_most_three_run_and_cancel_works_queued_or_running() {
        let q = Transfers::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut ids = Vec::new();
        for i in 0..5 {
            let gate = gate.clone();
            ids.push(q.start(
                "s",
                Direction::Upload,
                &format!("f{i}"),
                "a",
                "b",
                move |(p, cancel)| async move {
                    p.total.store(10, Ordering::Relaxed);
                    p.bytes.store(5, Ordering::Relaxed);
                    tokio::select! {
                        g = gate.acquire() => { g.map_err(|_| Error::Cancelled)?.forget(); Ok(()) }
                        () = cancel.cancelled() => Err(Error::Cancelled),
                    }
                },
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let running = |q: &Transfers| {
            q.list()
                .iter()
                .filter(|t| t.state == TransferState::Running)
                .count()
        };
        assert_eq!(running(&q), 3);
        // A queued one cancelled never runs; a running one cancelled frees its slot.
        assert!(q.cancel(ids[4]));
        assert!(q.cancel(ids[0]));
        assert_eq!(
            q.wait(ids[4]).await.map(|t| t.state),
            Some(TransferState::Cancelled)
        );
        assert_eq!(
            q.wait(ids[0]).await.map(|t| t.state),
            Some(TransferState::Cancelled)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(running(&q), 3, "the 4th started in the freed slot");
        gate.add_permits(3);
        for id in &ids[1..4] {
            let t = q.wait(*id).await.expect("known");
            assert_eq!(t.state, TransferState::Done);
            assert_eq!((t.bytes, t.total), (5, Some(10)));
        }
        assert!(!q.cancel(ids[1]), "finished");
        q.clear();
        assert!(q.list().is_empty());
    }
}
