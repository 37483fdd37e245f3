//! `bai config-ssh [--dry-run] [--remove] [--identity KEY]`: one `Host bai-<session>` per running session with
//! SSH, in `~/.ssh/bai/config`, which `~/.ssh/config` includes (added once, at the top).
//! `ProxyCommand` runs `bai proxy --stdio`, so there is no local port to remember. A key saved
//! earlier that is no longer the session's `id_container` (checked by fingerprint) is replaced.

use std::process::ExitCode;

use anyhow::Context as _;
use bai_core::commands::{ensure_known_hosts, known_hosts_path, validate_account, HostKeyPin};
use bai_core::keys::SavedKey;
use bai_core::ssh_config::{self, host_alias, keys_dir, HostEntry, MainChange, SshConfigPaths};
use bai_core::{ErrorCode, SSHD_APP};

use crate::context::Ctx;

/// `bai config-ssh` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be written, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the entries and the Include line again.
    #[arg(long)]
    pub remove: bool,
    /// Your own private key, for sessions without an id_container (whose .ssh folder is
    /// yours); sessions with one keep using it.
    #[arg(
        short = 'i',
        long = "identity",
        value_name = "KEY",
        conflicts_with = "remove"
    )]
    pub identity: Option<std::path::PathBuf>,
}

fn show_diff(title: &str, before: Option<&str>, after: &str) {
    println!("--- {title}");
    match before {
        Some(b) if b == after => println!("    (unchanged)"),
        _ => {
            for l in before.unwrap_or("").lines() {
                if !after.lines().any(|a| a == l) {
                    println!("- {l}");
                }
            }
            for l in after.lines() {
                if !before.unwrap_or("").lines().any(|b| b == l) {
                    println!("+ {l}");
                }
            }
        }
    }
}

/// Runs `bai config-ssh`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let paths = SshConfigPaths::for_user(&ctx.profile)?;
    if args.remove {
        return remove(&ctx, &paths, args.dry_run);
    }
    // An absolute path: ssh reads the entry from any directory.
    let identity = match &args.identity {
        Some(p) => {
            crate::commands::ssh::check_identity(p)?;
            Some(
                std::fs::canonicalize(p)
                    .with_context(|| format!("finding the absolute path of {}", p.display()))?,
            )
        }
        None => None,
    };
    let conn = ctx.connect().await?;
    let sessions = conn
        .list_sessions(false)
        .await
        .context("listing sessions")?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("finding the path of the bai executable")?;
    let account = conn.profile().account.clone();
    validate_account(&account)?;
    let known_hosts = known_hosts_path(&conn.profile().config_dir);
    let mut entries = Vec::new();
    for s in sessions.iter().filter(|s| s.is_running()) {
        // Names and ids come from the server: only safe ones become ssh_config syntax.
        let Some(alias) = host_alias(&ctx.profile, &s.name) else {
            eprintln!(
                "∙ skipped session \"{}\": only letters, digits, `.`, `_` and `-` can be an ssh alias (use `bai ssh` for it)",
                bai_core::display::clean_line(&s.name)
            );
            continue;
        };
        let pin = match HostKeyPin::new(known_hosts.clone(), &s.id) {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "∙ skipped session \"{}\": {}",
                    s.name,
                    bai_core::display::clean_line(&e.to_string())
                );
                continue;
            }
        };
        let has_ssh = if s.service_ports.is_empty() {
            conn.session_apps(&s.name)
                .await
                .map(|a| a.iter().any(|n| n == SSHD_APP))
                .unwrap_or(false)
        } else {
            s.has_app(SSHD_APP)
        };
        if !has_ssh {
            tracing::info!(session = %s.name, "no sshd app; skipped");
            continue;
        }
        let identity_file = if args.dry_run {
            Some(conn.profile().key_path(&s.name))
        } else {
            match conn.sync_ssh_key(&s.name).await {
                Ok((p, SavedKey::Replaced { old, new })) => {
                    eprintln!(
                        "∙ {}: the saved key ({}) is not the session's current id_container ({}); replaced it",
                        s.name,
                        old.as_deref().unwrap_or("unreadable"),
                        new.as_deref().unwrap_or("unreadable"),
                    );
                    Some(p)
                }
                Ok((p, _)) => Some(p),
                Err(e) if e.code() == ErrorCode::FileNotFound => {
                    // No stale copy of an old session's key may stay behind under this name.
                    let saved = conn.profile().key_path(&s.name);
                    if saved.exists() {
                        std::fs::remove_file(&saved)
                            .with_context(|| format!("removing {}", saved.display()))?;
                    }
                    match &identity {
                        Some(k) => Some(k.clone()),
                        None => {
                            eprintln!(
                                "∙ {}: {e}; the entry uses your default keys (or pass `--identity KEY`)",
                                s.name
                            );
                            None
                        }
                    }
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("fetching the SSH key of session \"{}\"", s.name)))
                }
            }
        };
        let mut proxy = vec![exe.display().to_string()];
        if ctx.explicit_profile || ctx.profile != bai_core::config::DEFAULT_PROFILE {
            // One word, so a profile name starting with `-` is never taken for an option.
            proxy.push(format!("--profile={}", ctx.profile));
        }
        proxy.extend(["proxy".into(), "--stdio".into(), s.name.clone()]);
        entries.push(HostEntry {
            alias,
            session: s.name.clone(),
            account: account.clone(),
            identity_file,
            proxy_command: proxy,
            pin,
        });
    }
    if !args.dry_run && !entries.is_empty() {
        ensure_known_hosts(&known_hosts)?;
    }
    let plan = ssh_config::plan_write(&paths, &ctx.profile, &entries)?;
    if args.dry_run {
        show_diff(
            &paths.include.display().to_string(),
            plan.include_before.as_deref(),
            &plan.include_contents,
        );
        match &plan.main_after {
            Some(after) => {
                let before = std::fs::read_to_string(&paths.main).ok();
                show_diff(&paths.main.display().to_string(), before.as_deref(), after);
            }
            None => println!("--- {}\n    (already includes it)", paths.main.display()),
        }
        println!("(dry run: nothing written)");
        return Ok(ExitCode::SUCCESS);
    }
    plan.apply()?;
    println!(
        "✓ Wrote {} host(s) to {}{}",
        entries.len(),
        paths.include.display(),
        if plan.main_after.is_some() {
            format!(" and included it from {}", paths.main.display())
        } else {
            String::new()
        }
    );
    for e in &entries {
        println!("  ssh {}", e.alias);
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(ctx: &Ctx, paths: &SshConfigPaths, dry_run: bool) -> anyhow::Result<ExitCode> {
    let plan = ssh_config::plan_remove(paths)?;
    // The profile name is one sanitized path component: `--profile ../x` stays inside.
    let keys = keys_dir(ctx.config.dir(), &ctx.profile);
    if dry_run {
        match &plan.main {
            MainChange::Unchanged => println!("{}: unchanged", paths.main.display()),
            MainChange::Write(_) => println!(
                "{}: the Include block would be removed",
                paths.main.display()
            ),
            MainChange::Delete => println!(
                "{}: would be deleted (bai created it)",
                paths.main.display()
            ),
        }
        if plan.include_exists {
            println!("{}: would be deleted", paths.include.display());
        }
        if keys.exists() {
            println!("{}: saved keys would be deleted", keys.display());
        }
        println!("(dry run: nothing changed)");
        return Ok(ExitCode::SUCCESS);
    }
    plan.apply()?;
    if keys.exists() {
        std::fs::remove_dir_all(&keys).with_context(|| format!("removing {}", keys.display()))?;
    }
    if plan.is_noop() {
        println!("∙ Nothing to remove.");
    } else {
        println!("✓ Removed the bai entries from {}.", paths.main.display());
    }
    Ok(ExitCode::SUCCESS)
}
