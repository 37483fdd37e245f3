//! Preferences: the preferred SSH port and account (saved in bai's profile, shared with the
//! CLI) and the app-only ones: the session list's auto-refresh interval, host key pinning and
//! reopening the tunnels at start.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::error::{CommandError, CommandResult, ErrorCode};
use crate::AppState;

/// Lowest preferred port (unprivileged).
pub const PORT_MIN: i64 = bai_core::config::PORT_MIN as i64;
/// Highest preferred port.
pub const PORT_MAX: i64 = bai_core::config::PORT_MAX as i64;
/// Shortest auto-refresh interval (0 = off).
pub const REFRESH_MIN: i64 = 5;
/// Longest auto-refresh interval.
pub const REFRESH_MAX: i64 = 3600;

/// The settings as the UI sees them. Numbers are wide so that out-of-range values arrive
/// here and get a readable `InvalidInput` instead of a deserialization failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Settings")]
pub struct SettingsView {
    /// `null` = any free port.
    pub preferred_ssh_port: Option<i64>,
    /// 0 = off.
    pub refresh_seconds: i64,
    /// The account inside sessions.
    pub account: String,
    /// Copied commands pin the session's host key (bai's known_hosts, `HostKeyAlias` = the
    /// session id, `StrictHostKeyChecking accept-new`) instead of the guide's unchecked form.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub pin_host_keys: bool,
    /// The tunnels open when the app quits are reopened at the next start (same ports when
    /// free), after the saved login is restored. Default on.
    #[serde(default = "default_true")]
    #[ts(optional = nullable)]
    pub restore_tunnels: bool,
    /// Closing the main window hides it into the tray while tunnels run. Default on.
    #[serde(default = "default_true")]
    #[ts(optional = nullable)]
    pub keep_in_tray: bool,
    /// bai starts at login (the autostart plugin's OS entry). Default off.
    #[serde(default)]
    #[ts(optional = nullable)]
    pub start_at_login: bool,
}

fn default_true() -> bool {
    true
}

impl SettingsView {
    /// The settings with the account trimmed, or `InvalidInput`. Port and account follow
    /// bai-core's rules, the same ones `bai login` applies.
    pub fn validated(mut self) -> CommandResult<SettingsView> {
        if let Some(p) = self.preferred_ssh_port {
            bai_core::config::validate_port(p)?;
        }
        let r = self.refresh_seconds;
        if r != 0 && !(REFRESH_MIN..=REFRESH_MAX).contains(&r) {
            return Err(CommandError::invalid(format!(
                "auto-refresh must be 0 (off) or between {REFRESH_MIN} and {REFRESH_MAX} seconds, not {r}"
            )));
        }
        self.account = bai_core::config::validate_account(&self.account)?;
        Ok(self)
    }
}

/// `get_settings() -> Settings`.
#[tauri::command]
pub fn get_settings(state: State<'_, AppState>) -> CommandResult<SettingsView> {
    state.get_settings()
}

/// `set_settings({settings}) -> Settings`: also turns start at login on or off (before
/// anything is saved, so a failure changes nothing).
#[tauri::command]
pub fn set_settings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    settings: SettingsView,
) -> CommandResult<SettingsView> {
    let settings = settings.validated()?;
    apply_start_at_login(&app, settings.start_at_login)?;
    state.set_settings(settings)
}

/// Makes the OS start bai at login, or not, through the autostart plugin. Without the plugin
/// (the IPC tests' mock app) only turning it off is accepted.
fn apply_start_at_login<R: Runtime>(app: &AppHandle<R>, on: bool) -> CommandResult<()> {
    let Some(m) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return if on {
            Err(CommandError::new(
                ErrorCode::Unknown,
                "Start at login is not available in this build.",
            ))
        } else {
            Ok(())
        };
    };
    if m.is_enabled().ok() == Some(on) {
        return Ok(());
    }
    let done = if on { m.enable() } else { m.disable() };
    done.map_err(|e| {
        let what = if on { "turn on" } else { "turn off" };
        CommandError::new(ErrorCode::Io, format!("Cannot {what} start at login: {e}"))
    })
}
