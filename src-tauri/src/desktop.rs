//! The app-only settings file, `desktop.json` next to bai's `config.toml`: the session list's
//! auto-refresh, host key pinning, whether tunnels are reopened at start (and the tunnels
//! recorded at exit for that: session id, name, app, port and the account, no secret), and
//! the recent servers of the login screen.
//!
//! A recent server is the endpoint, the mode and the identity (email or access key) of one of
//! the last [`RECENT_MAX`] successful logins, most recent first: never a password, secret key
//! or login id. Every writer goes through [`DesktopFile::update`], which keeps the keys it does not know.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::commands::auth::LoginMode;
use crate::error::CommandResult;

/// The app-only settings file (next to bai's `config.toml`).
pub const DESKTOP_SETTINGS_FILE: &str = "desktop.json";
/// The session-list auto-refresh interval when none is saved.
pub const DEFAULT_REFRESH_SECONDS: u32 = 30;
/// How many recent servers are kept.
pub const RECENT_MAX: usize = 5;

const RECENT_KEY: &str = "recentServers";
const LAST_TUNNELS_KEY: &str = "lastTunnels";

/// A server logged in to recently, as the login screen offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RecentServer {
    /// The endpoint URL (the webserver in session mode, the manager in API mode).
    pub endpoint: String,
    /// How the login was made.
    pub mode: LoginMode,
    /// The email (session mode) or access key (API mode): never a secret.
    pub user: String,
}

/// The app-only settings (`desktop.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopSettings {
    /// The session list's auto-refresh (0 = off).
    pub refresh_seconds: u32,
    /// Copied commands pin host keys.
    pub pin_host_keys: bool,
    /// The tunnels open at exit are reopened at the next start (default on).
    pub restore_tunnels: bool,
    /// Most recent first, at most [`RECENT_MAX`].
    pub recent: Vec<RecentServer>,
    /// Closing the main window hides it into the tray while tunnels run (default on).
    pub keep_in_tray: bool,
    /// bai starts at login (default off; the OS entry is made by the autostart plugin).
    pub start_at_login: bool,
    /// The one-time "bai keeps running in the tray" notice was shown.
    pub tray_notice_shown: bool,
}

fn read_object(dir: &Path) -> Map<String, Value> {
    std::fs::read_to_string(dir.join(DESKTOP_SETTINGS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

fn recent_of(m: &Map<String, Value>) -> Vec<RecentServer> {
    m.get(RECENT_KEY)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| serde_json::from_value::<RecentServer>(v.clone()).ok())
                .take(RECENT_MAX)
                .collect()
        })
        .unwrap_or_default()
}

/// The settings in `dir` (defaults for whatever is missing or unreadable).
pub fn read(dir: &Path) -> DesktopSettings {
    let m = read_object(dir);
    DesktopSettings {
        refresh_seconds: m
            .get("refreshSeconds")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_REFRESH_SECONDS),
        pin_host_keys: m
            .get("pinHostKeys")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        restore_tunnels: m
            .get("restoreTunnels")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        recent: recent_of(&m),
        keep_in_tray: flag(&m, "keepInTray", true),
        start_at_login: flag(&m, "startAtLogin", false),
        tray_notice_shown: flag(&m, "trayNoticeShown", false),
    }
}

fn flag(m: &Map<String, Value>, key: &str, default: bool) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Serializes the writers of one `desktop.json` (read, change, write back).
#[derive(Debug, Default)]
pub struct DesktopFile {
    lock: Mutex<()>,
}

impl DesktopFile {
    /// Applies `change` to the file's JSON object in `dir` and writes it back atomically.
    pub fn update(
        &self,
        dir: &Path,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> CommandResult<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = read_object(dir);
        change(&mut m);
        let text = serde_json::to_string_pretty(&Value::Object(m))
            .map_err(|e| crate::error::CommandError::invalid(e.to_string()))?;
        bai_core::write_atomic(
            &dir.join(DESKTOP_SETTINGS_FILE),
            format!("{text}\n").as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Puts `server` first among the recent servers (once), keeping at most [`RECENT_MAX`].
    pub fn remember(&self, dir: &Path, server: RecentServer) -> CommandResult<Vec<RecentServer>> {
        let mut out = Vec::new();
        self.update(dir, |m| {
            let mut list = recent_of(m);
            list.retain(|s| s != &server);
            list.insert(0, server);
            list.truncate(RECENT_MAX);
            m.insert(RECENT_KEY.into(), serde_json::json!(list));
            out = list;
        })?;
        Ok(out)
    }

    /// Records the tunnels to reopen at the next start (`None`: none).
    pub fn record_tunnels(
        &self,
        dir: &Path,
        tunnels: Option<&bai_core::SavedTunnels>,
    ) -> CommandResult<()> {
        self.update(dir, |m| match tunnels {
            Some(t) if !t.tunnels.is_empty() => {
                m.insert(LAST_TUNNELS_KEY.into(), serde_json::json!(t));
            }
            _ => {
                m.remove(LAST_TUNNELS_KEY);
            }
        })
    }

    /// Remembers that the tray notice was shown.
    pub fn mark_tray_notice_shown(&self, dir: &Path) -> CommandResult<()> {
        self.update(dir, |m| {
            m.insert("trayNoticeShown".into(), true.into());
        })
    }

    /// Removes `server` from the recent servers; returns what is left.
    pub fn forget(&self, dir: &Path, server: &RecentServer) -> CommandResult<Vec<RecentServer>> {
        let mut out = Vec::new();
        self.update(dir, |m| {
            let mut list = recent_of(m);
            list.retain(|s| s != server);
            m.insert(RECENT_KEY.into(), serde_json::json!(list));
            out = list;
        })?;
        Ok(out)
    }
}

/// The tunnels recorded at the last exit, if any.
pub fn last_tunnels(dir: &Path) -> Option<bai_core::SavedTunnels> {
    read_object(dir)
        .get(LAST_TUNNELS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(n: usize) -> RecentServer {
        RecentServer {
            endpoint: format!("https://b{n}.example.com"),
            mode: LoginMode::Session,
            user: format!("u{n}@example.com"),
        }
    }

    #[test]
    fn most_recent_first_unique_capped_and_other_keys_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(DESKTOP_SETTINGS_FILE),
            r#"{"refreshSeconds": 10, "future": 1}"#,
        )
        .expect("write");
        let f = DesktopFile::default();
        for n in 0..7 {
            f.remember(dir.path(), server(n)).expect("remember");
        }
        let list = f.remember(dir.path(), server(4)).expect("again");
        let users: Vec<&str> = list.iter().map(|s| s.user.as_str()).collect();
        assert_eq!(
            users,
            [
                "u4@example.com",
                "u6@example.com",
                "u5@example.com",
                "u3@example.com",
                "u2@example.com"
            ]
        );
        let s = read(dir.path());
        assert_eq!((s.refresh_seconds, s.recent.len()), (10, RECENT_MAX));
        let left = f.forget(dir.path(), &server(6)).expect("forget");
        assert_eq!(left.len(), RECENT_MAX - 1);
        assert!(!left.contains(&server(6)));
        let raw = std::fs::read_to_string(dir.path().join(DESKTOP_SETTINGS_FILE)).expect("read");
        assert!(raw.contains("\"future\": 1"), "{raw}");
    }

    #[test]
    fn a_broken_file_reads_as_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(DESKTOP_SETTINGS_FILE), "[1, 2").expect("write");
        let s = read(dir.path());
        assert_eq!(s.refresh_seconds, DEFAULT_REFRESH_SECONDS);
        assert!(s.recent.is_empty());
    }
}
