//! `bai`: SSH/SFTP access to Backend.AI compute sessions in one step.
//!
//! The binary is clap plus one module per subcommand (`commands/*.rs`); the logic lives in
//! `bai-core`, which the desktop app shares.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod context;
mod exit;
mod prompt;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}

/// Logs go to stderr: warnings by default, more with `-v`/`-vv`/`-vvv`, or `RUST_LOG`.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // At the default level, bai-api's per-call error events would repeat the `error:` line.
    let default = match verbose {
        0 => "warn,bai_api=off",
        1 => "info,hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,tungstenite=warn,tokio_tungstenite=warn",
        2 => "debug,hyper=info,hyper_util=info,reqwest=info,rustls=info,tungstenite=info,tokio_tungstenite=info",
        _ => "trace",
    };
    let wanted = match std::env::var("RUST_LOG") {
        Ok(env) if verbose == 0 && !env.trim().is_empty() => env,
        _ => default.to_owned(),
    };
    // Some HTTP/WebSocket libraries print raw requests (cookies, session ids) at trace level:
    // whatever was asked for, they never get past debug (any spelling of "trace").
    let capped = bai_core::logging::cap_log_filter(&wanted);
    let filter = EnvFilter::try_new(&capped).unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .init();
}
