//! `bai login`: email/password (session mode, hidden prompt, TOTP) or access/secret key
//! (API mode); saves the profile and keeps the secrets in the secret store.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bai_core::bai_api::{Mode, Sensitive};
use bai_core::config::{mode_name, parse_mode};
use bai_core::{Connection, Credentials, ErrorCode};

use crate::context::Ctx;
use crate::exit::CliError;

/// `bai login` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: the web UI's URL (session mode) or the manager's (API mode).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// `session` (email/password, the default) or `api` (access/secret key).
    #[arg(long, alias = "endpoint-type", value_name = "MODE")]
    pub mode: Option<String>,
    /// Session mode: the login email (prompted when missing).
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password (API mode: the secret key) from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Session mode: the one-time password, when the account has 2FA.
    #[arg(long, value_name = "CODE")]
    pub otp: Option<String>,
    /// Session mode: also keep the password in the keyring.
    #[arg(long)]
    pub save_password: bool,
    /// API mode: the access key (or BACKEND_ACCESS_KEY).
    #[arg(long, value_name = "KEY")]
    pub access_key: Option<String>,
    /// A PEM file of extra CA certificates to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (self-signed servers).
    #[arg(long, conflicts_with = "no_insecure")]
    pub insecure: bool,
    /// Verify the server's TLS certificate again (undoes an earlier `--insecure`).
    #[arg(long)]
    pub no_insecure: bool,
    /// Forget the profile's extra CA file.
    #[arg(long, conflicts_with = "ca_file")]
    pub no_ca_file: bool,
    /// The local port SSH tunnels try first (saved in the profile).
    #[arg(long, value_name = "PORT")]
    pub preferred_port: Option<u16>,
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    crate::prompt::line(
        prompt,
        &format!("cannot prompt for {}", prompt.trim_end_matches([':', ' '])),
        "pass it as an option (see `bai login --help`)",
    )
}

fn prompt_hidden(prompt: &str) -> anyhow::Result<Sensitive<String>> {
    rpassword::prompt_password(prompt)
        .map(Sensitive::new)
        .map_err(|e| {
            CliError::usage(
                format!(
                    "cannot prompt for {}: {e}",
                    prompt.trim_end_matches([':', ' '])
                ),
                Some("use --password-stdin in scripts"),
            )
        })
}

fn read_stdin_secret() -> anyhow::Result<Sensitive<String>> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the secret from stdin")?;
    let s = line.trim_end_matches(['\r', '\n']).to_owned();
    if s.is_empty() {
        return Err(CliError::usage("stdin was empty (--password-stdin)", None));
    }
    Ok(Sensitive::new(s))
}

/// Runs `bai login`.
pub async fn run(mut ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    ctx.overrides.endpoint = args.endpoint.clone();
    ctx.overrides.access_key = args.access_key.clone();
    ctx.overrides.ca_file = args.ca_file.clone();
    ctx.overrides.insecure = match (args.insecure, args.no_insecure) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let preferred_port = args
        .preferred_port
        .map(|p| bai_core::config::validate_port(i64::from(p)))
        .transpose()?;
    ctx.overrides.mode = match &args.mode {
        Some(m) => Some(parse_mode(m)?),
        // An access key on the command line means API mode.
        None if args.access_key.is_some() => Some(Mode::Api),
        None => None,
    };
    let mut profile = ctx.resolve()?;
    // The email saved for another server is not offered to this one.
    let saved_email = if profile.check_stored_secrets().is_ok() {
        profile.email.clone()
    } else {
        None
    };
    let from = match profile.endpoint_source {
        bai_core::config::EndpointSource::Environment => " (from BACKEND_ENDPOINT)",
        _ => "",
    };
    eprintln!(
        "Logging in to {}{from} ({} mode)…",
        profile.endpoint,
        mode_name(profile.mode)
    );
    let mut used_email: Option<String> = None;
    let conn = match profile.mode {
        Mode::Api => {
            let access_key = match profile.access_key.clone() {
                Some(ak) => ak,
                None => prompt_line("Access key: ")?,
            };
            let secret_key = if args.password_stdin {
                read_stdin_secret()?
            } else if let Some(sk) = ctx.env.secret_key.clone() {
                sk
            } else {
                prompt_hidden("Secret key: ")?
            };
            profile.access_key = Some(access_key.clone());
            Connection::login(
                profile.clone(),
                ctx.store.clone(),
                Credentials::Keypair {
                    access_key,
                    secret_key,
                },
            )
            .await
            .context("login failed")?
        }
        _ => {
            let email = match args.email.clone().or(saved_email) {
                Some(e) => e,
                None => prompt_line("User ID (email): ")?,
            };
            let password = if args.password_stdin {
                read_stdin_secret()?
            } else {
                prompt_hidden("Password: ")?
            };
            used_email = Some(email.clone());
            let mut otp = args.otp.clone();
            loop {
                let creds = Credentials::Password {
                    email: email.clone(),
                    password: password.clone(),
                    otp: otp.clone(),
                    save_password: args.save_password,
                };
                match Connection::login(profile.clone(), ctx.store.clone(), creds).await {
                    Ok(c) => break c,
                    Err(e)
                        if e.code() == ErrorCode::TotpRequired
                            && otp.is_none()
                            && !args.password_stdin
                            && std::io::stdin().is_terminal() =>
                    {
                        otp = Some(prompt_line("One-time password (OTP): ")?);
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context("login failed")),
                }
            }
        }
    };
    // Save the non-secret parts of the profile (the app saves its logins the same way), then
    // this command's own options.
    let p = conn.profile().clone();
    let name = ctx.profile.clone();
    let entry = ctx.config.profile_mut(&name);
    if let Some(u) = &ctx.overrides.account {
        entry.account = Some(u.clone());
    }
    if let Some(port) = preferred_port {
        entry.preferred_ssh_port = Some(port);
    }
    if let Some(ca) = &args.ca_file {
        entry.tls.ca_file = Some(ca.clone());
    }
    if args.no_ca_file {
        entry.tls.ca_file = None;
    }
    if args.insecure {
        entry.tls.insecure = true;
    }
    if args.no_insecure {
        entry.tls.insecure = false;
    }
    bai_core::workspace::save_profile(&mut ctx.config, &name, &p, used_email)
        .context("saving the profile")?;
    println!(
        "✓ Login succeeded (profile \"{name}\", {} mode, {}).",
        mode_name(p.mode),
        p.endpoint
    );
    Ok(ExitCode::SUCCESS)
}
