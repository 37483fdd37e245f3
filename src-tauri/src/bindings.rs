//! The TypeScript side of the IPC contract, generated from the Rust types: every command's
//! arguments and results, the error codes (bai-core's one vocabulary) and the input limits.
//! `ui/src/lib/bindings.ts` is this module's output; the test below fails when the file is
//! stale, and `BAI_UPDATE_BINDINGS=1 cargo test -p bai-desktop --lib bindings` rewrites it.

use ts_rs::{Config, TS};

use crate::commands::app::{AboutView, AppInfo, SandboxInfo, ServerAbout};
use crate::commands::apps::{AppTunnelView, AppView};
use crate::commands::auth::{LoginMode, LoginRequest, LoginState, TlsState};
use crate::commands::files::{FileEntryView, ListingView, TransferView};
use crate::commands::keys::AccountKeyView;
use crate::commands::restore::{DroppedTunnel, ReopenedTunnel, RestoredTunnels};
use crate::commands::sessions::SessionView;
use crate::commands::settings::{SettingsView, REFRESH_MAX, REFRESH_MIN};
use crate::commands::terminal::{TerminalEvent, TerminalView};
use crate::commands::tunnels::{
    CommandLines, Fallback, KeyFormat, SavedKey, TunnelStatus, TunnelView,
};
use crate::desktop::RecentServer;
use crate::error::CommandError;
use crate::tray::TrayItem;
use bai_core::ErrorCode;

/// Where the generated file lives, relative to the repository root.
pub const BINDINGS_FILE: &str = "ui/src/lib/bindings.ts";

fn decl<T: TS>(cfg: &Config, out: &mut String) {
    let docs = T::docs().unwrap_or_default();
    out.push('\n');
    out.push_str(&docs);
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push('\n');
}

/// The whole generated file.
pub fn typescript() -> String {
    // JSON numbers: the app's u64 counters stay far below 2^53.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types (src-tauri/src/bindings.rs); do not edit by hand.\n\
         // `BAI_UPDATE_BINDINGS=1 cargo test -p bai-desktop --lib bindings` rewrites it, and\n\
         // `make test` fails when it is stale.\n",
    );
    decl::<ErrorCode>(&cfg, &mut out);
    let codes: Vec<String> = ErrorCode::ALL.iter().map(|c| format!("'{c:?}'")).collect();
    out.push_str(&format!(
        "\n/** Every {{@link ErrorCode}}, for checking what a rejection carries. */\nexport const ERROR_CODES: readonly ErrorCode[] = [{}];\n",
        codes.join(", ")
    ));
    decl::<CommandError>(&cfg, &mut out);
    decl::<SandboxInfo>(&cfg, &mut out);
    decl::<AppInfo>(&cfg, &mut out);
    decl::<ServerAbout>(&cfg, &mut out);
    decl::<AboutView>(&cfg, &mut out);
    decl::<LoginMode>(&cfg, &mut out);
    decl::<RecentServer>(&cfg, &mut out);
    decl::<LoginRequest>(&cfg, &mut out);
    decl::<TlsState>(&cfg, &mut out);
    decl::<LoginState>(&cfg, &mut out);
    decl::<AppView>(&cfg, &mut out);
    decl::<SessionView>(&cfg, &mut out);
    decl::<SettingsView>(&cfg, &mut out);
    decl::<Fallback>(&cfg, &mut out);
    decl::<CommandLines>(&cfg, &mut out);
    decl::<TunnelView>(&cfg, &mut out);
    decl::<KeyFormat>(&cfg, &mut out);
    decl::<TunnelStatus>(&cfg, &mut out);
    decl::<AppTunnelView>(&cfg, &mut out);
    decl::<TrayItem>(&cfg, &mut out);
    decl::<ReopenedTunnel>(&cfg, &mut out);
    decl::<DroppedTunnel>(&cfg, &mut out);
    decl::<RestoredTunnels>(&cfg, &mut out);
    decl::<SavedKey>(&cfg, &mut out);
    decl::<AccountKeyView>(&cfg, &mut out);
    decl::<TerminalView>(&cfg, &mut out);
    decl::<TerminalEvent>(&cfg, &mut out);
    decl::<FileEntryView>(&cfg, &mut out);
    decl::<ListingView>(&cfg, &mut out);
    decl::<TransferView>(&cfg, &mut out);
    out.push_str(&format!(
        "\n/** Input limits, checked again by the Rust side (bai-core). */\n\
         export const PORT_MIN = {};\nexport const PORT_MAX = {};\n\
         export const ACCOUNT_MAX = {};\nexport const REFRESH_MIN = {REFRESH_MIN};\n\
         export const REFRESH_MAX = {REFRESH_MAX};\n",
        bai_core::config::PORT_MIN,
        bai_core::config::PORT_MAX,
        bai_core::config::ACCOUNT_MAX,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_file_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(BINDINGS_FILE);
        let want = typescript();
        if std::env::var_os("BAI_UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &want).expect("write the bindings");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{BINDINGS_FILE} is stale: run `BAI_UPDATE_BINDINGS=1 cargo test -p bai-desktop --lib bindings` and commit it"
        );
    }
}
