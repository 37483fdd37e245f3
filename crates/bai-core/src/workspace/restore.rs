//! Tunnels that come back after a restart: the list of the current login's tunnels recorded
//! when the app quits ([`Workspace::tunnels_to_restore`]: session id, name, app and port, and
//! the account they belong to; never a secret), and [`Workspace::restore_tunnels`], which
//! reopens them on the same ports (another free port when one is taken, and says so) for the
//! sessions that still run, and only for the same account (endpoint + mode + user) as the
//! login in effect. Sessions that ended or disappeared are dropped with the reason.
//!
//! The decisions are in [`restore_with`], which takes the opener as a closure so that its unit
//! tests need no server.

use std::future::Future;

use bai_api::Session;
use serde::{Deserialize, Serialize};

use super::Workspace;
use crate::error::Result;
use crate::registry::LoginId;
use crate::SSHD_APP;

/// One tunnel to reopen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTunnel {
    /// The session's id (what decides whether it is the same session).
    pub session_id: String,
    /// The session's name when the tunnel was recorded.
    pub session: String,
    /// The app (`sshd`, `jupyter`, …).
    pub app: String,
    /// The local port it listened on.
    pub port: u16,
}

/// The tunnels of one account, recorded at exit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTunnels {
    /// The account they belong to ([`LoginId::account`]: endpoint + mode + user).
    pub login: String,
    /// The tunnels.
    pub tunnels: Vec<SavedTunnel>,
}

/// A tunnel reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopened {
    /// The session's name (now).
    pub session: String,
    /// The app.
    pub app: String,
    /// The port it listens on now.
    pub port: u16,
    /// The port it had, when that one was taken (and why it is another).
    pub moved_from: Option<(u16, String)>,
}

/// A tunnel not reopened, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The session's name (as recorded).
    pub session: String,
    /// The app.
    pub app: String,
    /// Why ("the session ended", the error met while reopening it).
    pub reason: String,
}

/// What [`Workspace::restore_tunnels`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// The tunnels open again, in the recorded order.
    pub reopened: Vec<Reopened>,
    /// The tunnels not reopened.
    pub dropped: Vec<Dropped>,
}

impl RestoreReport {
    /// Whether there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.reopened.is_empty() && self.dropped.is_empty()
    }
}

/// Reopens `saved` for `login`: nothing at all when it belongs to another account; each
/// tunnel of a session (by id) that is among `sessions` and running through `open(tunnel,
/// current name)`, which returns the port it got; the others dropped with the reason.
pub async fn restore_with<F, Fut>(
    saved: &SavedTunnels,
    login: &LoginId,
    sessions: &[Session],
    mut open: F,
) -> RestoreReport
where
    F: FnMut(SavedTunnel, String) -> Fut,
    Fut: Future<Output = Result<u16>>,
{
    let mut report = RestoreReport::default();
    if saved.login != login.account() {
        if !saved.tunnels.is_empty() {
            tracing::info!(saved = %saved.login, current = %login.account(), "the recorded tunnels belong to another login: not reopened");
        }
        return report;
    }
    for t in &saved.tunnels {
        let drop = |reason: String| Dropped {
            session: t.session.clone(),
            app: t.app.clone(),
            reason,
        };
        let Some(s) = sessions.iter().find(|s| s.id == t.session_id) else {
            report
                .dropped
                .push(drop("the session ended (it is no longer listed)".into()));
            continue;
        };
        if !s.is_running() {
            report.dropped.push(drop(format!(
                "the session is no longer running ({})",
                s.status
            )));
            continue;
        }
        match open(t.clone(), s.name.clone()).await {
            Ok(port) => report.reopened.push(Reopened {
                session: s.name.clone(),
                app: t.app.clone(),
                port,
                moved_from: (port != t.port).then(|| {
                    (
                        t.port,
                        format!("port {} was taken; port {port} is used instead", t.port),
                    )
                }),
            }),
            Err(e) => report
                .dropped
                .push(drop(format!("it could not be reopened: {e}"))),
        }
    }
    report
}

impl Workspace {
    /// The current login's running tunnels (SSH and other apps) as they would be reopened at
    /// the next start; `None` when no one is logged in.
    pub fn tunnels_to_restore(&self) -> Option<SavedTunnels> {
        let login = self.connection()?.login_id();
        let tunnels = self
            .list_tunnels()
            .into_iter()
            .map(|t| SavedTunnel {
                session_id: t.key.session,
                session: t.session,
                app: t.key.app,
                port: t.local_addr.port(),
            })
            .collect();
        Some(SavedTunnels {
            login: login.account().to_owned(),
            tunnels,
        })
    }

    /// Reopens `saved` for the current login (see [`restore_with`]): each tunnel on its old
    /// port, or another free one when that is taken.
    ///
    /// # Errors
    /// [`crate::Error::NotLoggedIn`] without a login; the session list's errors.
    pub async fn restore_tunnels(&self, saved: &SavedTunnels) -> Result<RestoreReport> {
        let conn = self.require_connection()?;
        let login = conn.login_id();
        if saved.login != login.account() || saved.tunnels.is_empty() {
            // Nothing to open: another account's list (logged and ignored), or an empty one.
            return Ok(restore_with(saved, &login, &[], |_, _| std::future::ready(Ok(0))).await);
        }
        let sessions = conn.list_sessions(false).await?;
        let report = restore_with(saved, &login, &sessions, |t, name| async move {
            if t.app == SSHD_APP {
                Ok(self.open_ssh_with(&name, None, Some(t.port)).await?.port)
            } else {
                Ok(self.open_app_with(&name, &t.app, Some(t.port)).await?.port)
            }
        })
        .await;
        tracing::info!(
            reopened = report.reopened.len(),
            dropped = report.dropped.len(),
            "tunnels of the last run restored"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use bai_tunnel::{bind, BindOptions};

    fn session(id: &str, name: &str, status: &str) -> Session {
        Session {
            id: id.into(),
            name: name.into(),
            status: status.into(),
            status_info: None,
            image: None,
            session_type: None,
            created_at: None,
            group_name: None,
            service_ports: Vec::new(),
        }
    }

    fn saved(login: &LoginId, list: &[(&str, &str, &str, u16)]) -> SavedTunnels {
        SavedTunnels {
            login: login.account().to_owned(),
            tunnels: list
                .iter()
                .map(|(id, name, app, port)| SavedTunnel {
                    session_id: (*id).into(),
                    session: (*name).into(),
                    app: (*app).into(),
                    port: *port,
                })
                .collect(),
        }
    }

    /// Opens like the workspace does: the old port when free, else another one. The
    /// listeners are kept so that the ports stay taken for the test's duration.
    async fn open_real(
        kept: &std::sync::Mutex<Vec<tokio::net::TcpListener>>,
        t: SavedTunnel,
    ) -> Result<u16> {
        let mut opts = BindOptions::loopback(Some(t.port));
        opts.fallback = true;
        let bound = bind(&opts).await.map_err(Error::Tunnel)?;
        let port = bound
            .listener
            .local_addr()
            .map_err(|e| Error::InvalidInput(e.to_string()))?
            .port();
        kept.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bound.listener);
        Ok(port)
    }

    async fn free_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").port()
    }

    #[tokio::test]
    async fn free_ports_are_reused_taken_ones_move_and_ended_sessions_drop() {
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let me = LoginId::new("https://b.example/", "session", "a@x").of_generation(7);
            let free = free_port().await;
            let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let taken_port = taken.local_addr().expect("addr").port();
            let list = saved(
                &me,
                &[
                    ("id-1", "s1", "sshd", free),
                    ("id-2", "s2-old-name", "sshd", taken_port),
                    ("id-3", "s3", "sshd", 40001),
                    ("id-4", "s4", "jupyter", 40002),
                ],
            );
            let sessions = [
                session("id-1", "s1", "RUNNING"),
                session("id-2", "s2", "RUNNING"),
                session("id-4", "s4", "TERMINATING"),
                // The name of a session that ended, re-created: another session.
                session("id-9", "s3", "RUNNING"),
            ];
            let kept = std::sync::Mutex::new(Vec::new());
            let mut asked = Vec::new();
            // A later login of the same account (another generation) restores them.
            let later = LoginId::new("https://B.example", "session", "a@x").of_generation(8);
            let report = restore_with(&list, &later, &sessions, |t, name| {
                asked.push((t.session_id.clone(), name));
                open_real(&kept, t)
            })
            .await;
            assert_eq!(
                asked,
                [
                    ("id-1".to_owned(), "s1".to_owned()),
                    ("id-2".to_owned(), "s2".to_owned())
                ],
                "only running sessions, by their current name"
            );
            assert_eq!(report.reopened.len(), 2, "{report:?}");
            assert_eq!(
                report.reopened[0],
                Reopened {
                    session: "s1".into(),
                    app: "sshd".into(),
                    port: free,
                    moved_from: None
                },
                "a free port is reused"
            );
            let moved = &report.reopened[1];
            assert_ne!(moved.port, taken_port);
            let (from, why) = moved.moved_from.clone().expect("the move is reported");
            assert_eq!(from, taken_port);
            assert!(
                why.contains(&taken_port.to_string()) && why.contains(&moved.port.to_string()),
                "{why}"
            );
            let dropped: Vec<(&str, &str)> = report
                .dropped
                .iter()
                .map(|d| (d.session.as_str(), d.reason.as_str()))
                .collect();
            assert_eq!(dropped.len(), 2, "{dropped:?}");
            assert_eq!(dropped[0].0, "s3");
            assert!(dropped[0].1.contains("ended"), "{dropped:?}");
            assert_eq!(dropped[1].0, "s4");
            assert!(dropped[1].1.contains("TERMINATING"), "{dropped:?}");
            drop(taken);
        })
        .await
        .expect("timed out");
    }

    #[tokio::test]
    async fn another_login_restores_nothing() {
        let me = LoginId::new("https://b.example", "session", "a@x").of_generation(1);
        let list = saved(&me, &[("id-1", "s1", "sshd", 40000)]);
        let sessions = [session("id-1", "s1", "RUNNING")];
        for other in [
            LoginId::new("https://b.example", "session", "b@x"),
            LoginId::new("https://c.example", "session", "a@x"),
            LoginId::new("https://b.example", "api", "a@x"),
        ] {
            let mut calls = 0;
            let report = restore_with(&list, &other.clone().of_generation(2), &sessions, |_, _| {
                calls += 1;
                async { Ok(40000) }
            })
            .await;
            assert_eq!(calls, 0, "{other:?}");
            assert!(report.is_empty(), "{other:?}: {report:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_reopen_is_dropped_with_its_reason() {
        let me = LoginId::new("https://b.example", "session", "a@x");
        let list = saved(&me, &[("id-1", "s1", "sshd", 40000)]);
        let sessions = [session("id-1", "s1", "RUNNING")];
        let report = restore_with(&list, &me, &sessions, |_, _| async {
            Err(Error::PortInUse { port: 40000 })
        })
        .await;
        assert!(report.reopened.is_empty());
        assert_eq!(report.dropped.len(), 1);
        assert!(report.dropped[0].reason.contains("40000"), "{report:?}");
    }

    #[test]
    fn the_account_ignores_the_generation() {
        let a = LoginId::new("https://b.example/", "api", "AK");
        assert_eq!(a.clone().of_generation(3).account(), a.account());
        assert_eq!(a.account(), "api:AK@https://b.example");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::sync::Mutex;

        proptest! {
            /// What `desktop.json` says is hostile too: whatever it holds, only sessions the
            /// server lists as running, of the same account, are opened; each saved tunnel is
            /// either reopened or dropped; nothing panics.
            #[test]
            fn only_running_sessions_of_the_same_account_are_reopened(
                tunnels in prop::collection::vec(("[ab#@ ]{0,3}", "\\PC{0,6}", "\\PC{0,6}", any::<u16>()), 0..6),
                listed in prop::collection::vec(("[ab#@ ]{0,3}", "\\PC{0,6}", any::<bool>()), 0..6),
                same_account in any::<bool>(),
            ) {
                let me = LoginId::new("https://b.example", "session", "a#1@x").of_generation(1);
                let other = LoginId::new("https://b.example", "session", "a#2@x");
                let saved = SavedTunnels {
                    login: if same_account { me.account() } else { other.account() }.to_owned(),
                    tunnels: tunnels.iter().map(|(id, name, app, port)| SavedTunnel {
                        session_id: id.clone(), session: name.clone(), app: app.clone(), port: *port,
                    }).collect(),
                };
                let sessions: Vec<Session> = listed.iter().map(|(id, name, running)| {
                    session(id, name, if *running { "RUNNING" } else { "TERMINATED" })
                }).collect();
                let opened = Mutex::new(Vec::new());
                let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                let report = rt.block_on(restore_with(&saved, &me, &sessions, |t, name| {
                    opened.lock().expect("lock").push((t.session_id.clone(), name));
                    async move { Ok::<u16, Error>(t.port) }
                }));
                let opened = opened.into_inner().expect("lock");
                if !same_account {
                    prop_assert!(report.is_empty() && opened.is_empty());
                } else {
                    prop_assert_eq!(report.reopened.len() + report.dropped.len(), saved.tunnels.len());
                    for (id, name) in &opened {
                        let s = sessions.iter().find(|s| &s.id == id);
                        prop_assert!(s.is_some_and(|s| s.is_running() && &s.name == name));
                    }
                }
            }
        }
    }
}
