//! The registry of running tunnels (session, app) → [`OpenTunnel`], with their live stats: what
//! the desktop app lists, restarts and stops. Locks are never held across an `.await`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use bai_tunnel::StatsSnapshot;

use crate::access::OpenTunnel;

/// The key of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelKey {
    /// The session.
    pub session: String,
    /// The app.
    pub app: String,
}

impl TunnelKey {
    /// A key.
    pub fn new(session: &str, app: &str) -> Self {
        TunnelKey {
            session: session.to_owned(),
            app: app.to_owned(),
        }
    }
}

/// A registered tunnel's public state.
#[derive(Debug, Clone)]
pub struct TunnelInfo {
    /// Which tunnel.
    pub key: TunnelKey,
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// Whether the preferred port was taken.
    pub fell_back: bool,
    /// The port explanation.
    pub port_note: String,
    /// Its counters.
    pub stats: StatsSnapshot,
    /// Whether it has stopped on its own (a panic or cancellation).
    pub finished: bool,
}

/// Running tunnels by (session, app).
#[derive(Debug, Default)]
pub struct TunnelRegistry {
    tunnels: Mutex<BTreeMap<TunnelKey, OpenTunnel>>,
}

impl TunnelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TunnelKey, OpenTunnel>> {
        self.tunnels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a tunnel; returns the one it replaces (the caller stops it).
    pub fn insert(&self, tunnel: OpenTunnel) -> Option<OpenTunnel> {
        let key = TunnelKey::new(&tunnel.session, &tunnel.app);
        self.lock().insert(key, tunnel)
    }

    /// The address of a running tunnel.
    pub fn local_addr(&self, session: &str, app: &str) -> Option<SocketAddr> {
        self.lock()
            .get(&TunnelKey::new(session, app))
            .filter(|t| !t.handle.is_finished())
            .map(OpenTunnel::local_addr)
    }

    /// Every tunnel with its stats, sorted by session then app.
    pub fn list(&self) -> Vec<TunnelInfo> {
        self.lock()
            .iter()
            .map(|(k, t)| TunnelInfo {
                key: k.clone(),
                local_addr: t.local_addr(),
                fell_back: t.fell_back(),
                port_note: t.port_note.clone(),
                stats: t.handle.stats().snapshot(),
                finished: t.handle.is_finished(),
            })
            .collect()
    }

    /// Takes a tunnel out of the registry (still running; stop or drop it).
    pub fn remove(&self, session: &str, app: &str) -> Option<OpenTunnel> {
        self.lock().remove(&TunnelKey::new(session, app))
    }

    /// Stops one tunnel gracefully; `false` when there was none.
    pub async fn stop(&self, session: &str, app: &str) -> bool {
        match self.remove(session, app) {
            Some(t) => {
                t.handle.stop().await;
                true
            }
            None => false,
        }
    }

    /// Stops every tunnel of a session (e.g. when it terminated); returns how many.
    pub async fn stop_session(&self, session: &str) -> usize {
        let taken: Vec<OpenTunnel> = {
            let mut map = self.lock();
            let keys: Vec<TunnelKey> = map
                .keys()
                .filter(|k| k.session == session)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| map.remove(k)).collect()
        };
        let n = taken.len();
        for t in taken {
            t.handle.stop().await;
        }
        n
    }

    /// Stops everything (app exit).
    pub async fn stop_all(&self) {
        let taken: Vec<OpenTunnel> = std::mem::take(&mut *self.lock()).into_values().collect();
        for t in taken {
            t.handle.stop().await;
        }
    }

    /// Number of registered tunnels.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bai_tunnel::{bind, BindOptions, Options, Target, Tunnel};

    async fn fake(session: &str) -> OpenTunnel {
        let bound = bind(&BindOptions::loopback(None)).await.expect("bind");
        let port_note = bound.describe();
        let choice = bound.choice.clone();
        let tunnel = Tunnel::new(
            bound.listener,
            || Target::from_url("ws://127.0.0.1:9/none"),
            Options::default(),
        )
        .expect("tunnel");
        OpenTunnel {
            session: session.into(),
            app: "sshd".into(),
            handle: tunnel.spawn(),
            choice,
            port_note,
            banner: None,
        }
    }

    #[tokio::test]
    async fn registers_lists_and_stops() {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let r = TunnelRegistry::new();
            assert!(r.insert(fake("a").await).is_none());
            assert!(r.insert(fake("b").await).is_none());
            let old = r.insert(fake("a").await).expect("replaced");
            drop(old);
            assert_eq!(r.len(), 2);
            assert!(r.local_addr("a", "sshd").is_some());
            let l = r.list();
            assert_eq!(l[0].key, TunnelKey::new("a", "sshd"));
            assert_eq!(l[0].stats.total, 0);
            assert!(r.stop("a", "sshd").await);
            assert!(!r.stop("a", "sshd").await);
            assert_eq!(r.stop_session("b").await, 1);
            assert!(r.is_empty());
            r.insert(fake("c").await);
            r.stop_all().await;
            assert!(r.is_empty());
        })
        .await
        .expect("timed out");
    }
}
