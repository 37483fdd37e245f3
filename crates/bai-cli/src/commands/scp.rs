//! `bai scp`: scp with `SESSION:path` operands, through an in-process tunnel.

use std::path::PathBuf;
use std::process::ExitCode;

use bai_core::Operand;

use crate::commands::ssh::{prepare, run_client};
use crate::context::Ctx;
use crate::exit::CliError;

/// `bai scp` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Copy directories recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// The local tunnel port (default: any free port).
    #[arg(short, long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Use this private key instead of the session's id_container.
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    pub identity: Option<PathBuf>,
    /// Sources and target; remote ones are SESSION:path (relative paths start in the session
    /// account's home).
    #[arg(required = true, num_args = 2.., value_name = "SOURCE... TARGET")]
    pub operands: Vec<String>,
    /// Extra scp options after `--`.
    #[arg(last = true, value_name = "SCP ARGS")]
    pub extra: Vec<String>,
}

/// Runs `bai scp`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let parsed: Vec<Operand> = args.operands.iter().map(|o| Operand::parse(o)).collect();
    let mut sessions: Vec<&str> = parsed
        .iter()
        .filter_map(|o| match o {
            Operand::Remote { session, .. } => Some(session.as_str()),
            Operand::Local(_) => None,
        })
        .collect();
    sessions.dedup();
    let session = match sessions.as_slice() {
        [] => return Err(CliError::usage(
            "no remote operand",
            Some("name the session as SESSION:path, e.g. `bai scp data.csv mysession:` (the session home)"),
        )),
        [one] => (*one).to_owned(),
        _ => {
            return Err(CliError::usage(
                "all remote operands must name the same session",
                None,
            ))
        }
    };
    let conn = ctx.connect().await?;
    let prepared = prepare(&conn, &session, args.port, args.identity.clone()).await?;
    let operands: Vec<String> = parsed
        .iter()
        .map(|o| match o {
            Operand::Local(p) => p.clone(),
            Operand::Remote { path, .. } => prepared.endpoint.remote(path),
        })
        .collect();
    let mut extra = Vec::new();
    if args.recursive {
        extra.push("-r".to_owned());
    }
    extra.extend(args.extra.iter().cloned());
    let code = run_client(
        "scp",
        &prepared.endpoint.scp_args(&extra, &operands),
        &session,
        &prepared,
    )
    .await;
    prepared.finish().await;
    code
}
