//! The session lifecycle as the [`Sandbox`] offers it: creating a session (its files, and its
//! SSH server when RUNNING), changing its status (starting or stopping the server), terminating
//! it, and the lookups and snapshots of sessions by name.

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    prepare_files, reap, SessionEntry, SessionInfo, SessionSpec, SshServer, SshdProcess, Status,
    UserKeys,
};
use crate::faults::Faults;
use crate::{lock, Error, Sandbox};

impl Sandbox {
    /// Creates a session; a RUNNING one gets its SSH server before this returns.
    ///
    /// Fails with [`Error::NotInstalled`] when the session needs Dropbear and it is missing.
    pub async fn create_session(&self, spec: SessionSpec) -> Result<SessionInfo, Error> {
        let name = spec.name.trim().to_owned();
        if name.is_empty() || name.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "bad session name {:?}",
                spec.name
            )));
        }
        if self.find_live(&name).is_some() {
            return Err(Error::SessionExists(name));
        }
        let server = spec.ssh_server.unwrap_or(self.state.ssh_server);
        // Dropbear's tools make the host key now; sshd is looked for only when one starts, as
        // before (a sandbox without RUNNING sessions works without it).
        if server == SshServer::Dropbear {
            server.check_installed()?;
        }
        let id = Uuid::new_v4();
        let dir = self
            .state
            .sessions_dir
            .join(format!("{name}-{}", &id.simple().to_string()[..8]));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let account = self.state.account.clone();
        // The account's stored keypair, as it is now: later changes reach new sessions only.
        let stored = lock(&self.state.ssh_keypairs)
            .get(&self.state.user.access_key)
            .cloned();
        let keys = match (spec.authorized_keys.as_deref(), stored.as_ref()) {
            (Some(own), _) => UserKeys::Own(own),
            (None, Some(k)) => UserKeys::Account(k),
            (None, None) => UserKeys::Generate,
        };
        let (home, ak_file, id_container) = prepare_files(&dir, &account, keys, server).await?;
        let sshd = if spec.status == Status::Running {
            Some(SshdProcess::start(server, &dir, &home, &ak_file, &account).await?)
        } else {
            None
        };
        let (web_apps, web_apps_guard) = if spec.web_apps {
            let stop = self.state.cancel.child_token();
            let apps = crate::webapps::start(&name, stop.clone()).await?;
            (apps, Some(stop.drop_guard()))
        } else {
            (Vec::new(), None)
        };
        let now = Utc::now();
        let entry = SessionEntry {
            name: name.clone(),
            id,
            status: spec.status,
            account: account.name,
            dir,
            home,
            authorized_keys_file: ak_file,
            id_container,
            apps: spec.apps,
            web_apps,
            _web_apps_guard: web_apps_guard,
            ssh_server: server,
            sshd,
            faults: Faults::new(),
            tunnels: CancellationToken::new(),
            created_at: now,
            status_changed: now,
            terminated_at: spec.status.is_terminal().then_some(now),
        };
        let info = entry.info();
        let rejected = {
            let mut sessions = lock(&self.state.sessions);
            if sessions
                .iter()
                .any(|s| s.name == name && !s.status.is_terminal())
            {
                Some(entry)
            } else {
                sessions.push(entry);
                None
            }
        };
        if let Some(mut entry) = rejected {
            reap(entry.stop().into_iter().collect()).await;
            return Err(Error::SessionExists(name));
        }
        Ok(info)
    }

    /// Index of the non-terminal session with this name.
    fn find_live(&self, name: &str) -> Option<usize> {
        lock(&self.state.sessions)
            .iter()
            .position(|s| s.name == name && !s.status.is_terminal())
    }

    /// Index of the session with this name: the live one, else the newest terminated one.
    fn find_any(&self, name: &str) -> Option<usize> {
        self.find_live(name).or_else(|| {
            lock(&self.state.sessions)
                .iter()
                .rposition(|s| s.name == name)
        })
    }

    /// Changes a session's status: RUNNING starts its SSH server, any other status stops it
    /// (and closes its tunnels).
    pub async fn set_status(&self, name: &str, status: Status) -> Result<(), Error> {
        let idx = self
            .find_any(name)
            .ok_or_else(|| Error::SessionNotFound(name.to_owned()))?;
        let mut stopped = None;
        let (id, dir, home, ak, server, needs_sshd) = {
            let mut sessions = lock(&self.state.sessions);
            let s = &mut sessions[idx];
            if status != Status::Running {
                stopped = s.stop();
            }
            let now = Utc::now();
            if s.status != status {
                s.status_changed = now;
            }
            s.status = status;
            s.terminated_at = status.is_terminal().then_some(now);
            (
                s.id,
                s.dir.clone(),
                s.home.clone(),
                s.authorized_keys_file.clone(),
                s.ssh_server,
                status == Status::Running && s.sshd.is_none(),
            )
        };
        reap(stopped.into_iter().collect()).await;
        if needs_sshd {
            let sshd = SshdProcess::start(server, &dir, &home, &ak, &self.state.account).await?;
            let unused = {
                let mut sessions = lock(&self.state.sessions);
                match sessions.iter_mut().find(|s| s.id == id) {
                    Some(s) if s.status == Status::Running && s.sshd.is_none() => {
                        s.tunnels = CancellationToken::new();
                        s.sshd = Some(sshd);
                        None
                    }
                    _ => Some(sshd),
                }
            };
            reap(unused.into_iter().collect()).await;
        }
        Ok(())
    }

    /// Terminates a session: stops its SSH server, closes its tunnels; its name is free again.
    pub async fn terminate(&self, name: &str) -> Result<(), Error> {
        let idx = self
            .find_live(name)
            .ok_or_else(|| Error::SessionNotFound(name.to_owned()))?;
        let stopped = {
            let mut sessions = lock(&self.state.sessions);
            let s = &mut sessions[idx];
            let stopped = s.stop();
            let now = Utc::now();
            s.status = Status::Terminated;
            s.status_changed = now;
            s.terminated_at = Some(now);
            stopped
        };
        reap(stopped.into_iter().collect()).await;
        Ok(())
    }

    /// Snapshots of every session (terminated ones included), in creation order.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        lock(&self.state.sessions)
            .iter()
            .map(SessionEntry::info)
            .collect()
    }

    /// The session with this name (the live one, else the newest terminated one).
    pub fn session(&self, name: &str) -> Option<SessionInfo> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions).get(idx).map(SessionEntry::info)
    }

    /// A handle to one session's fault knobs (live session first, else newest terminated).
    pub fn session_faults(&self, name: &str) -> Option<Faults> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions)
            .get(idx)
            .map(|s| s.faults.clone())
    }

    /// PIDs of the SSH servers now running (for clean-up tests): each sshd listener, and for
    /// Dropbear the `unshare` whose descendants are dropbear and everything it forked.
    pub fn sshd_pids(&self) -> Vec<u32> {
        lock(&self.state.sessions)
            .iter()
            .filter_map(|s| s.sshd.as_ref().map(SshdProcess::pid))
            .collect()
    }

    /// PID of the SSH server of the session with this name (live session first), when it is
    /// RUNNING (as in [`Sandbox::sshd_pids`]).
    pub fn session_sshd_pid(&self, name: &str) -> Option<u32> {
        let idx = self.find_any(name)?;
        lock(&self.state.sessions)
            .get(idx)
            .and_then(|s| s.sshd.as_ref().map(SshdProcess::pid))
    }
}
