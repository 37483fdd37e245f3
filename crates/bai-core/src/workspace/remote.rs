//! What the in-app SSH client needs to reach a session of the current login
//! ([`crate::remote::Target`]): the tcpproxy connector, the account, the key (the session's
//! `id_container`, else the profile's own key) and the host-key pin.

use std::sync::Arc;

use super::Workspace;
use crate::commands::{known_hosts_path, HostKeyPin};
use crate::remote::{connect::parse_key, Target};
use crate::{Error, LoginId, Result, TcpproxyConnector, SSHD_APP};

impl Workspace {
    /// The current login's id, or [`Error::NotLoggedIn`].
    pub fn login_now(&self) -> Result<LoginId> {
        Ok(self.require_connection()?.login_id())
    }

    /// Everything a connection of the in-app SSH client to `session` (name or id) needs. The
    /// account is that of the session's open SSH tunnel (the dialog's), else the profile's.
    ///
    /// # Errors
    /// Not logged in, no such session or no sshd, or no usable key: the session has no
    /// `id_container` and the profile has no own key ([`Error::NoSessionKey`]).
    pub async fn remote_target(&self, session: &str) -> Result<Target> {
        let conn = self.require_connection()?;
        let found = conn.find_session(session).await?;
        let user = match self
            .ssh_key_of(session)
            .and_then(|(_, k)| self.tunnels.meta(&k))
        {
            Some(meta) => meta.user,
            None => self.profile_prefs()?.account,
        };
        let (key, key_label) = match conn.fetch_ssh_key(session).await {
            Ok(pem) => {
                let label = "the session's id_container key".to_owned();
                (parse_key(pem.expose(), &label)?, label)
            }
            Err(Error::NoSessionKey { session: s }) => {
                let Some(path) = self.own_key()? else {
                    return Err(Error::NoSessionKey { session: s });
                };
                let label = format!("your own key {}", path.display());
                let text = zeroize::Zeroizing::new(crate::keys::read_key_file(&path)?);
                (parse_key(&text, &label)?, label)
            }
            Err(e) => return Err(e),
        };
        let pin = HostKeyPin::new(known_hosts_path(self.config_dir()), &found.id)?;
        let connector = TcpproxyConnector::new(conn.tcpproxy_target(session, SSHD_APP).await?);
        Ok(Target {
            session: session.to_owned(),
            user,
            key,
            key_label,
            pin,
            connector: Arc::new(connector),
        })
    }
}
