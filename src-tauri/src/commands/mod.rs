//! The IPC commands of the UI's contract (`ui/src/lib/api.ts`). Each is one line over
//! [`crate::AppState`]; errors are [`crate::CommandError`] (`{code, message}`). Secrets only
//! come in (the login form) and never go back to the webview.

pub mod app;
pub mod apps;
pub mod auth;
pub mod files;
pub mod keys;
pub mod restore;
pub mod sessions;
pub mod settings;
pub mod terminal;
pub mod tunnels;
