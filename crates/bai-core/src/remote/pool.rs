//! One SSH connection per session of the current login, shared by its terminals and its file
//! browser; a closed one is replaced on next use, those of another login are dropped.

use std::collections::HashMap;
use std::sync::Arc;

use super::connect::SshClient;
use crate::{LoginId, Result, Workspace};

/// The open connections.
#[derive(Debug, Default)]
pub struct Remotes {
    map: tokio::sync::Mutex<HashMap<(LoginId, String), Arc<SshClient>>>,
}

impl Remotes {
    /// No connections yet.
    pub fn new() -> Remotes {
        Remotes::default()
    }

    /// The open connection to `session`, or a new one.
    ///
    /// # Errors
    /// As [`crate::Workspace::remote_target`] and [`SshClient::connect`].
    pub async fn client(&self, ws: &Workspace, session: &str) -> Result<Arc<SshClient>> {
        let login = ws.login_now()?;
        let key = (login.clone(), session.to_owned());
        {
            let mut map = self.map.lock().await;
            map.retain(|(l, _), c| *l == login && !c.is_closed());
            if let Some(c) = map.get(&key) {
                return Ok(c.clone());
            }
        }
        // Connecting takes a while: other sessions are not held up meanwhile.
        let client = Arc::new(SshClient::connect(ws.remote_target(session).await?).await?);
        let mut map = self.map.lock().await;
        match map.get(&key) {
            // Another caller connected first: use theirs, close ours.
            Some(c) if !c.is_closed() => {
                let winner = c.clone();
                drop(map);
                client.close().await;
                Ok(winner)
            }
            _ => {
                map.insert(key, client.clone());
                Ok(client)
            }
        }
    }

    /// Drops the connection to `session` (the next use reconnects).
    pub async fn forget(&self, session: &str) {
        self.map.lock().await.retain(|(_, s), _| s != session);
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let all: Vec<_> = self.map.lock().await.drain().map(|(_, c)| c).collect();
        for c in all {
            c.close().await;
        }
    }
}
