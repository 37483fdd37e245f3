//! `bai version [--json]`: bai's version and build commit, and the server's versions when
//! logged in. Never fails for want of a login or a server: not logged in prints no server
//! (`"server": null`), an unreachable server is said in `server.error`.

use std::process::ExitCode;

use bai_core::about::VersionReport;
use bai_core::Connection;

use crate::context::Ctx;

/// `bai version` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print `{"version", "commit", "server": {…} | null}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The current login's connection, if there is one (no request is made).
fn logged_in(ctx: Option<&Ctx>) -> Option<Connection> {
    let ctx = ctx?;
    // Quietly: no warnings about the profile's TLS settings here.
    let p = ctx
        .config
        .resolve(&ctx.profile, &ctx.env, &ctx.overrides)
        .ok()?;
    Connection::restore(p, ctx.store.clone()).ok()
}

/// The report as text.
pub fn human(r: &VersionReport) -> String {
    let mut out = format!("bai {} (commit {})\n", r.version, r.commit);
    match &r.server {
        None => out.push_str("server: not logged in\n"),
        Some(s) => {
            out.push_str(&format!("server: {} ({} mode)\n", s.endpoint, s.mode));
            if let Some(e) = &s.error {
                out.push_str(&format!("  versions unknown: {}\n", e.message));
            } else {
                out.push_str(&format!(
                    "  manager {}, API {}\n",
                    s.manager_version.as_deref().unwrap_or("(not reported)"),
                    s.api_version.as_deref().unwrap_or("(not reported)"),
                ));
            }
        }
    }
    out
}

/// Runs `bai version` (`ctx` is `None` when the configuration cannot be loaded).
pub async fn run(ctx: Option<Ctx>, args: Args) -> anyhow::Result<ExitCode> {
    let conn = logged_in(ctx.as_ref());
    let report = VersionReport::of(conn.as_ref()).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", bai_core::display::clean(&human(&report), true));
    }
    Ok(ExitCode::SUCCESS)
}
