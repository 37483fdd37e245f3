//! The registry of running tunnels, keyed by (login, session id, app) → [`OpenTunnel`], with
//! their live stats: what the desktop app lists, restarts and stops. A tunnel belongs to the
//! login that opened it: another login (a re-login, another server or user) never finds it,
//! and logging out stops it; only a new login of the same account can take it over
//! ([`TunnelRegistry::adopt`], with the new credentials). Locks are never held across an
//! `.await`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use bai_tunnel::StatsSnapshot;

use crate::access::OpenTunnel;

/// Who a tunnel belongs to: the endpoint, the mode and the user (email or access key) of the
/// login that opened it. Two logins with the same id are the same account on the same server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LoginId {
    /// `{mode}:{user}@{endpoint}`.
    account: String,
    /// Which login of that account (a re-login is another); none for the account itself.
    generation: Option<u64>,
}

impl LoginId {
    /// The id of a login of `user` to `endpoint` in `mode` (`session` or `api`).
    pub fn new(endpoint: &str, mode: &str, user: &str) -> Self {
        LoginId {
            account: format!(
                "{mode}:{user}@{}",
                endpoint.trim_end_matches('/').to_ascii_lowercase()
            ),
            generation: None,
        }
    }

    /// The same account on the same server, as one particular login (a re-login is another).
    pub fn of_generation(self, generation: u64) -> Self {
        LoginId {
            generation: Some(generation),
            ..self
        }
    }

    /// The account on the server (endpoint + mode + user) without the login's generation:
    /// the same for every login of that user to that server. Not a secret. Kept apart from
    /// the generation, so no character of a user name (`#` is valid in an email) can make
    /// two accounts look alike.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl std::fmt::Display for LoginId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.generation {
            Some(g) => write!(f, "{}#{g}", self.account),
            None => f.write_str(&self.account),
        }
    }
}

/// The key of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelKey {
    /// The login that opened it.
    pub login: LoginId,
    /// The session's id (its name when the id was not known).
    pub session: String,
    /// The app.
    pub app: String,
}

impl TunnelKey {
    /// The key of `tunnel`.
    pub fn of(tunnel: &OpenTunnel) -> Self {
        TunnelKey {
            login: tunnel.login.clone(),
            session: tunnel
                .session_id
                .clone()
                .unwrap_or_else(|| tunnel.session.clone()),
            app: tunnel.app.clone(),
        }
    }
}

/// What a tunnel's connection dialog shows besides its port: kept with the tunnel, so that
/// there is one map of tunnels and no second one to keep in step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelMeta {
    /// The account the commands log in as.
    pub user: String,
    /// The preferred port that was asked for.
    pub preferred: Option<u16>,
    /// When the preferred port was taken: it, and why another one is used (naming both).
    pub fallback: Option<(u16, String)>,
    /// Where the session key was saved (OpenSSH format), once saved.
    pub key_path: Option<std::path::PathBuf>,
    /// The fingerprint of the key saved there, and when it was saved: a file that no longer
    /// holds that key is stale (another session's key saved over it, or removed).
    pub key_saved: Option<(Option<String>, std::time::SystemTime)>,
    /// Whether the session has a usable `id_container` key.
    pub has_id_container: bool,
    /// Why the session's `id_container` could not be used, when it exists but failed.
    pub key_problem: Option<String>,
    /// The app's protocol in the session's service ports (`tcp`, `http`, …).
    pub protocol: String,
    /// For an app opened in a browser: `http://127.0.0.1:PORT/…`.
    pub url: Option<String>,
}

/// A registered tunnel's public state.
#[derive(Debug, Clone)]
pub struct TunnelInfo {
    /// Which tunnel.
    pub key: TunnelKey,
    /// The session as the caller named it when opening.
    pub session: String,
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
    /// The app's protocol (`tcp`, `http`, …; empty when not recorded).
    pub protocol: String,
    /// For an app opened in a browser: its URL.
    pub url: Option<String>,
}

/// Running tunnels by (login, session, app).
#[derive(Debug, Default)]
pub struct TunnelRegistry {
    tunnels: Mutex<BTreeMap<TunnelKey, (OpenTunnel, TunnelMeta)>>,
}

impl TunnelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TunnelKey, (OpenTunnel, TunnelMeta)>> {
        self.tunnels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a tunnel; returns the one it replaces (the caller stops it).
    pub fn insert(&self, tunnel: OpenTunnel) -> Option<OpenTunnel> {
        self.insert_with(tunnel, TunnelMeta::default())
    }

    /// Registers a tunnel with its dialog data; returns the one it replaces.
    pub fn insert_with(&self, tunnel: OpenTunnel, meta: TunnelMeta) -> Option<OpenTunnel> {
        let key = TunnelKey::of(&tunnel);
        self.lock().insert(key, (tunnel, meta)).map(|(t, _)| t)
    }

    /// The dialog data of a tunnel.
    pub fn meta(&self, key: &TunnelKey) -> Option<TunnelMeta> {
        self.lock().get(key).map(|(_, m)| m.clone())
    }

    /// Changes the dialog data of a tunnel; `false` when there is no such tunnel.
    pub fn update_meta(&self, key: &TunnelKey, f: impl FnOnce(&mut TunnelMeta)) -> bool {
        match self.lock().get_mut(key) {
            Some((_, m)) => {
                f(m);
                true
            }
            None => false,
        }
    }

    /// The key of `login`'s running tunnel to `app` of `session` (its id, or the name it was
    /// opened with). Tunnels of other logins are never found.
    pub fn find(&self, login: &LoginId, session: &str, app: &str) -> Option<TunnelKey> {
        self.lock()
            .iter()
            .find(|(k, (t, _))| {
                &k.login == login
                    && k.app == app
                    && (k.session == session || t.session == session)
                    && !t.handle.is_finished()
            })
            .map(|(k, _)| k.clone())
    }

    /// The address of a running tunnel.
    pub fn local_addr(&self, key: &TunnelKey) -> Option<SocketAddr> {
        self.lock()
            .get(key)
            .map(|(t, _)| t)
            .filter(|t| !t.handle.is_finished())
            .map(OpenTunnel::local_addr)
    }

    /// Every tunnel with its stats, sorted by login, session then app.
    pub fn list(&self) -> Vec<TunnelInfo> {
        self.lock()
            .iter()
            .map(|(k, (t, m))| TunnelInfo {
                key: k.clone(),
                session: t.session.clone(),
                local_addr: t.local_addr(),
                fell_back: t.fell_back(),
                port_note: t.port_note.clone(),
                stats: t.handle.stats().snapshot(),
                finished: t.handle.is_finished(),
                protocol: m.protocol.clone(),
                url: m.url.clone(),
            })
            .collect()
    }

    /// Takes a tunnel out of the registry (still running; stop or drop it).
    pub fn remove(&self, key: &TunnelKey) -> Option<OpenTunnel> {
        self.lock().remove(key).map(|(t, _)| t)
    }

    /// Stops one tunnel gracefully; `false` when there was none.
    pub async fn stop(&self, key: &TunnelKey) -> bool {
        match self.remove(key) {
            Some(t) => {
                t.handle.stop().await;
                true
            }
            None => false,
        }
    }

    /// Stops the tunnels whose key matches `pred`; returns how many.
    pub async fn stop_where(&self, pred: impl Fn(&TunnelKey) -> bool) -> usize {
        let taken: Vec<OpenTunnel> = {
            let mut map = self.lock();
            let keys: Vec<TunnelKey> = map.keys().filter(|k| pred(k)).cloned().collect();
            keys.iter()
                .filter_map(|k| map.remove(k))
                .map(|(t, _)| t)
                .collect()
        };
        let n = taken.len();
        for t in taken {
            t.handle.stop().await;
        }
        n
    }

    /// Stops every tunnel of `login`'s session (e.g. when it terminated); returns how many.
    pub async fn stop_session(&self, login: &LoginId, session: &str) -> usize {
        self.stop_where(|k| &k.login == login && k.session == session)
            .await
    }

    /// Stops every tunnel of `login` (logout); returns how many.
    pub async fn stop_login(&self, login: &LoginId) -> usize {
        self.stop_where(|k| &k.login == login).await
    }

    /// Stops every tunnel not opened by `login` (a new login replaces the old); returns how
    /// many.
    pub async fn stop_other_logins(&self, login: &LoginId) -> usize {
        self.stop_where(|k| &k.login != login).await
    }

    /// The tunnels of `login`'s account (same endpoint, mode and user) opened by another login
    /// of it: `(key, session name, connector)`, for [`TunnelRegistry::adopt`].
    pub fn of_same_account(
        &self,
        login: &LoginId,
    ) -> Vec<(TunnelKey, String, Option<crate::TcpproxyConnector>)> {
        self.lock()
            .iter()
            .filter(|(k, _)| &k.login != login && k.login.account() == login.account())
            .map(|(k, (t, _))| (k.clone(), t.session.clone(), t.connector.clone()))
            .collect()
    }

    /// Gives the tunnel `key` to `login` (a new login of the same account, whose credentials
    /// its connector now uses); returns its new key, `None` when there is no such tunnel or
    /// `login` is another account (then nothing changes).
    pub fn adopt(&self, key: &TunnelKey, login: &LoginId) -> Option<TunnelKey> {
        if key.login.account() != login.account() {
            return None;
        }
        let mut map = self.lock();
        let (mut tunnel, meta) = map.remove(key)?;
        tunnel.login = login.clone();
        let new = TunnelKey::of(&tunnel);
        if let Some((old, _)) = map.insert(new.clone(), (tunnel, meta)) {
            // Cannot happen (the new login opened nothing of that session yet); never leak.
            old.handle.cancel();
        }
        Some(new)
    }

    /// Stops everything (app exit).
    pub async fn stop_all(&self) {
        let taken: Vec<OpenTunnel> = std::mem::take(&mut *self.lock())
            .into_values()
            .map(|(t, _)| t)
            .collect();
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

    async fn fake(login: &LoginId, session: &str, id: Option<&str>) -> OpenTunnel {
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
            login: login.clone(),
            session: session.into(),
            session_id: id.map(str::to_owned),
            app: "sshd".into(),
            handle: tunnel.spawn(),
            choice,
            port_note,
            banner: None,
            connector: None,
        }
    }

    #[tokio::test]
    async fn registers_lists_and_stops() {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let me = LoginId::new("http://x/", "session", "a@x");
            let r = TunnelRegistry::new();
            assert!(r.insert(fake(&me, "a", None).await).is_none());
            assert!(r.insert(fake(&me, "b", None).await).is_none());
            let old = r.insert(fake(&me, "a", None).await).expect("replaced");
            drop(old);
            assert_eq!(r.len(), 2);
            let a = r.find(&me, "a", "sshd").expect("found");
            assert!(r.local_addr(&a).is_some());
            let l = r.list();
            assert_eq!(l[0].key, a);
            assert_eq!(l[0].stats.total, 0);
            assert!(r.stop(&a).await);
            assert!(!r.stop(&a).await);
            assert_eq!(r.stop_session(&me, "b").await, 1);
            assert!(r.is_empty());
            r.insert(fake(&me, "c", None).await);
            r.stop_all().await;
            assert!(r.is_empty());
        })
        .await
        .expect("timed out");
    }

    #[test]
    fn accounts_differ_whatever_the_user_name_holds() {
        // `#` is valid in an email's local part; it once separated the generation.
        let a = LoginId::new("https://b.example", "session", "a#1@x").of_generation(2);
        let b = LoginId::new("https://b.example", "session", "a#2@x").of_generation(2);
        assert_ne!(a.account(), b.account());
        assert_ne!(a, b);
        let c = LoginId::new("https://c.example", "session", "a#1@x").of_generation(2);
        assert_ne!(a.account(), c.account());
        assert_eq!(
            a.account(),
            LoginId::new("https://b.example/", "session", "a#1@x").account()
        );
        assert_eq!(a.to_string(), "session:a#1@x@https://b.example#2");
    }

    #[tokio::test]
    async fn tunnels_belong_to_their_login() {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let alice = LoginId::new("https://one.example/", "session", "alice@x");
            let bob = LoginId::new("https://one.example", "session", "bob@x");
            let other = LoginId::new("https://two.example", "session", "alice@x");
            assert_eq!(
                alice,
                LoginId::new("https://ONE.example", "session", "alice@x"),
                "a trailing slash or case does not make another server"
            );
            let r = TunnelRegistry::new();
            r.insert(fake(&alice, "s1", Some("id-1")).await);
            // Found by id and by the name it was opened with, by its own login only.
            assert!(r.find(&alice, "s1", "sshd").is_some());
            assert!(r.find(&alice, "id-1", "sshd").is_some());
            assert!(r.find(&bob, "s1", "sshd").is_none());
            assert!(r.find(&other, "s1", "sshd").is_none());
            // The same name on another server is another tunnel, not a replacement.
            assert!(r.insert(fake(&other, "s1", Some("id-9")).await).is_none());
            // A session re-created under the same name gets its own key (new id).
            assert!(r.insert(fake(&alice, "s1", Some("id-2")).await).is_none());
            assert_eq!(r.len(), 3);
            assert_eq!(r.stop_other_logins(&alice).await, 1);
            assert!(r.find(&other, "s1", "sshd").is_none());
            assert_eq!(r.stop_login(&alice).await, 2);
            assert!(r.is_empty());

            // A new login of the same account may take a tunnel over; another account never.
            let first = alice.clone().of_generation(1);
            let again = alice.clone().of_generation(2);
            r.insert(fake(&first, "s1", Some("id-1")).await);
            let key = r.find(&first, "s1", "sshd").expect("found");
            assert_eq!(r.of_same_account(&again).len(), 1);
            assert!(r.of_same_account(&bob.clone().of_generation(3)).is_empty());
            assert!(r.adopt(&key, &bob.clone().of_generation(3)).is_none());
            assert!(r.adopt(&key, &other.clone().of_generation(4)).is_none());
            assert!(r.find(&first, "s1", "sshd").is_some(), "unchanged");
            let moved = r.adopt(&key, &again).expect("the same account");
            assert_eq!(moved.login, again);
            assert!(r.find(&first, "s1", "sshd").is_none());
            assert!(r.find(&again, "s1", "sshd").is_some());
            assert_eq!(r.list()[0].key.login, again);
            assert_eq!(r.stop_other_logins(&again).await, 0);
            r.stop_all().await;
        })
        .await
        .expect("timed out");
    }
}
