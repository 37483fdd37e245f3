//! `bai ps`: the caller's compute sessions as a table or JSON.

use std::process::ExitCode;

use anyhow::Context as _;
use bai_core::bai_api::Session;
use bai_core::display::clean_line;
use serde_json::json;

use crate::context::Ctx;

/// `bai ps` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Include terminated and cancelled sessions.
    #[arg(short, long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn apps(s: &Session) -> String {
    s.service_ports
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `bai ps`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let sessions = conn
        .list_sessions(args.all)
        .await
        .context("listing sessions")?;
    if args.json {
        let v: Vec<_> = sessions
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "name": s.name,
                    "status": s.status,
                    "status_info": s.status_info,
                    "image": s.image,
                    "type": s.session_type,
                    "created_at": s.created_at,
                    "group": s.group_name,
                    "apps": s.service_ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
                    "ssh": s.has_app("sshd"),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        eprintln!("No sessions{}.", if args.all { "" } else { " (try --all)" });
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = sessions
        .iter()
        .map(|s| {
            // Everything here comes from the server: no control character reaches the terminal.
            [
                s.name.clone(),
                s.status.clone(),
                s.image.clone().unwrap_or_default(),
                apps(s),
                s.created_at
                    .as_deref()
                    .map(|c| c.chars().take(19).collect::<String>().replace('T', " "))
                    .unwrap_or_default(),
                s.id.chars().take(8).collect(),
            ]
            .map(|c| clean_line(&c))
        })
        .collect();
    let header = ["NAME", "STATUS", "IMAGE", "APPS", "CREATED", "ID"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
