//! A new login of the same account keeps the tunnels: when the user logs in again as the same
//! user on the same server in the same mode (typically after the login expired), the running
//! tunnels of that account are not stopped; each is given to the new login, and its
//! connector uses the new login's credentials for new connections. A tunnel of a session
//! that no longer runs, or of another account (server, mode or user), is stopped as before
//! ([`Workspace::login`]). See docs/security.md ("A tunnel belongs to one login").

use super::Workspace;
use crate::Connection;

impl Workspace {
    /// Gives `conn` the running tunnels of its account opened by an earlier login, with
    /// `conn`'s credentials; returns how many. Those it cannot take over are left to the
    /// caller, which stops them.
    pub(super) async fn adopt_tunnels(&self, conn: &Connection) -> usize {
        let login = conn.login_id();
        let same = self.tunnels.of_same_account(&login);
        if same.is_empty() {
            return 0;
        }
        let sessions = match conn.list_sessions(false).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the sessions: the tunnels of the earlier login stop");
                return 0;
            }
        };
        let mut adopted = 0;
        for (key, session, connector) in same {
            let Some(connector) = connector else {
                continue;
            };
            // The same session (by id), still running; asked for by its current name.
            let Some(s) = sessions
                .iter()
                .find(|s| s.id == key.session && s.is_running())
            else {
                continue;
            };
            match conn.tcpproxy_target(&s.name, &key.app).await {
                Ok(target) => {
                    connector.replace_target(target);
                    if self.tunnels.adopt(&key, &login).is_some() {
                        adopted += 1;
                        tracing::info!(%session, app = %key.app, "tunnel kept across the new login of the same account");
                    }
                }
                Err(e) => {
                    tracing::warn!(%session, app = %key.app, error = %e, "the tunnel cannot be kept")
                }
            }
        }
        adopted
    }
}
