//! Logging: stderr plus a daily rolling file in the app's log directory. The non-blocking
//! writer's guard lives in managed state so buffered lines are flushed when the app exits.

use tauri::{App, Manager, Runtime};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, EnvFilter};

/// Keeps the file writer alive (and flushes it on drop).
struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the global subscriber (`RUST_LOG` filters; default `info`). A second call (or a
/// subscriber installed by someone else) is not an error: the first one stays.
pub(crate) fn init<R: Runtime>(app: &mut App<R>) -> Result<(), Box<dyn std::error::Error>> {
    let dir = app.path().app_log_dir()?;
    std::fs::create_dir_all(&dir)?;
    let (file, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::daily(&dir, "bai-desktop.log"));
    let wanted = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "info".to_owned());
    // Some HTTP/WebSocket libraries print raw requests (cookies, session ids) at trace level:
    // whatever was asked for, they never get past debug (any spelling of "trace").
    let capped = bai_core::logging::cap_log_filter(&wanted);
    let filter = EnvFilter::try_new(capped).unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .with(fmt::layer().with_ansi(false).with_writer(file))
        .try_init();
    if installed.is_ok() {
        app.manage(LogGuard(guard));
        tracing::info!(log_dir = %dir.display(), version = env!("CARGO_PKG_VERSION"), "bai-desktop starting");
    }
    Ok(())
}
