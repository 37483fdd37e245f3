//! `bai proxy --stdio SESSION [APP]`: one connection over stdin/stdout, for ssh's
//! `ProxyCommand`. Nothing but the app's bytes is ever written to stdout; errors go to stderr.

use std::process::ExitCode;

use anyhow::Context as _;
use bai_core::SSHD_APP;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::exit::CliError;

/// `bai proxy` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Carry the connection over stdin/stdout (the only mode; `bai app` listens on TCP).
    #[arg(long)]
    pub stdio: bool,
    /// The session name (or id).
    pub session: String,
    /// The app (service) to reach.
    #[arg(default_value = SSHD_APP)]
    pub app: String,
}

/// Runs `bai proxy`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if !args.stdio {
        return Err(CliError::usage(
            "bai proxy needs --stdio",
            Some("for a local TCP port use `bai app SESSION -b PORT`"),
        ));
    }
    let conn = ctx.connect().await?;
    let cancel = CancellationToken::new();
    let result = conn
        .proxy_stdio(
            &args.session,
            &args.app,
            tokio::io::stdin(),
            tokio::io::stdout(),
            cancel,
        )
        .await
        .with_context(|| format!("proxy to \"{}\" of session \"{}\"", args.app, args.session));
    let code: u8 = match result {
        Ok(summary) => {
            tracing::info!(
                bytes_up = summary.bytes_up,
                bytes_down = summary.bytes_down,
                "proxy finished"
            );
            0
        }
        Err(e) => crate::exit::print(&e),
    };
    // Tokio's stdin reader blocks a thread that cannot be interrupted: exit now rather than
    // wait for the runtime to shut down.
    use std::io::Write as _;
    std::io::stdout().flush().ok();
    std::process::exit(i32::from(code));
}
