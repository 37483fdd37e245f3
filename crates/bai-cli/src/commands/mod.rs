//! One module per subcommand; [`run`] dispatches.

pub mod app;
pub mod completions;
pub mod config_ssh;
pub mod keypair;
pub mod login;
pub mod logout;
pub mod proxy;
pub mod ps;
pub mod scp;
pub mod session;
pub mod ssh;
pub mod version;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::context::Ctx;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx::new(&cli);
    match cli.command {
        // A broken configuration must not hide which bai this is.
        Command::Version(a) => version::run(ctx.ok(), a).await,
        Command::Completions(a) => completions::run(&a),
        Command::Man => completions::man(),
        Command::Login(a) => login::run(ctx?, a).await,
        Command::Logout(a) => logout::run(ctx?, a).await,
        Command::Ps(a) => ps::run(ctx?, a).await,
        Command::App(a) => app::run(ctx?, a).await,
        Command::Ssh(a) => ssh::run(ctx?, a).await,
        Command::Scp(a) => scp::run(ctx?, a).await,
        Command::Session(a) => session::run(ctx?, a).await,
        Command::Proxy(a) => proxy::run(ctx?, a).await,
        Command::ConfigSsh(a) => config_ssh::run(ctx?, a).await,
        Command::Keypair(a) => keypair::run(ctx?, a).await,
    }
}

/// Exit code of a finished child process (128 + signal when killed, as shells report it).
pub fn child_exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(c) = status.code() {
        return ExitCode::from(u8::try_from(c).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return ExitCode::from(u8::try_from(128 + sig).unwrap_or(255));
        }
    }
    ExitCode::from(255)
}
