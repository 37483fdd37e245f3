//! `bai session download SESSION FILE… [-o DIR]`: files from the session (≤ 1 MiB each, as
//! the server allows) with a progress bar; keys are written 0600.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::context::Ctx;

/// `bai session` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operation.
    #[command(subcommand)]
    pub command: SessionCommand,
}

/// `bai session` operations.
#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Download files from a session (paths relative to /home/work, or absolute below it).
    Download(DownloadArgs),
}

/// `bai session download` arguments.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The session name (or id).
    pub session: String,
    /// The files, e.g. id_container.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// The directory to write into (default: the current directory).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// Runs `bai session …`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        SessionCommand::Download(a) => download(ctx, a).await,
    }
}

async fn download(ctx: Ctx, args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let dir = match args.output {
        Some(d) => d,
        None => std::env::current_dir().context("finding the current directory")?,
    };
    // Each path once, in the order given: asking twice would only fetch the file twice.
    let mut wanted: Vec<String> = Vec::with_capacity(args.files.len());
    for f in args.files {
        if !wanted.contains(&f) {
            wanted.push(f);
        }
    }
    let bar = ProgressBar::new(wanted.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("Downloading files: {bar:30} {pos}/{len} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let files = conn
        .download(&args.session, &wanted, |done, _| {
            bar.set_position(done as u64)
        })
        .await
        .with_context(|| format!("downloading from session \"{}\"", args.session));
    bar.finish_and_clear();
    let files = files?;
    // Saved under the names asked for, never the server's; see `write_download`.
    let saved = bai_core::write_download(&dir, &args.session, &wanted, &files)
        .with_context(|| format!("saving the files from session \"{}\"", args.session))?;
    let mut total = 0usize;
    for (path, f) in &saved {
        total += f.data.len();
        eprintln!("∙ {} ({} bytes)", path.display(), f.data.len());
    }
    let dir_shown = std::fs::canonicalize(&dir).unwrap_or(dir);
    println!(
        "✓ Downloaded {} file(s), {total} bytes, to {}.",
        saved.len(),
        dir_shown.display()
    );
    Ok(ExitCode::SUCCESS)
}
