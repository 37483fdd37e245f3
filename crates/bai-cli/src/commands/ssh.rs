//! `bai ssh SESSION [-- ARGS]`: fetches the session key to a 0600 temp file (or uses `-i`),
//! runs the tunnel in-process, runs the system `ssh`, removes the key and exits with ssh's
//! status. [`prepare`] is shared with `bai scp`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bai_core::{Connection, ErrorCode, OpenTunnel, SshEndpoint, TunnelRequest, SSHD_APP};

use crate::commands::child_exit_code;
use crate::context::Ctx;

/// `bai ssh` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The session name (or id).
    pub session: String,
    /// The local tunnel port (default: any free port).
    #[arg(short, long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Use this private key instead of the session's id_container.
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    pub identity: Option<PathBuf>,
    /// Arguments for ssh after `--`: a remote command, or more ssh options.
    #[arg(last = true, value_name = "SSH ARGS")]
    pub args: Vec<String>,
}

/// A tunnel plus the key and account an OpenSSH client needs; dropping it stops the tunnel
/// and deletes the temporary key.
pub struct Prepared {
    /// The tunnel.
    pub tunnel: OpenTunnel,
    /// Where and how to connect.
    pub endpoint: SshEndpoint,
    _temp_key: Option<tempfile::TempPath>,
}

impl Prepared {
    /// Stops the tunnel (briefly graceful) and deletes the temporary key.
    pub async fn finish(self) {
        let Prepared {
            tunnel, _temp_key, ..
        } = self;
        tunnel.handle.stop_within(Duration::from_millis(500)).await;
        drop(_temp_key);
    }
}

async fn temp_key(conn: &Connection, session: &str) -> anyhow::Result<Option<tempfile::TempPath>> {
    let key = match conn.fetch_ssh_key(session).await {
        Ok(k) => k,
        Err(e) if e.code() == ErrorCode::FileNotFound => {
            tracing::warn!("{e}; trying your own SSH keys");
            return Ok(None);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("fetching the session's SSH key")),
    };
    // tempfile creates the file with mode 0600.
    let mut f = tempfile::Builder::new()
        .prefix("bai-id_container-")
        .tempfile()
        .context("creating a temporary key file")?;
    let mut data = key.expose().clone();
    if !data.ends_with('\n') {
        data.push('\n');
    }
    f.write_all(data.as_bytes())
        .context("writing the temporary key file")?;
    Ok(Some(f.into_temp_path()))
}

/// Opens the SSH tunnel (on `port`, else any free port) and gets the key, concurrently.
pub async fn prepare(
    conn: &Connection,
    session: &str,
    port: Option<u16>,
    identity: Option<PathBuf>,
) -> anyhow::Result<Prepared> {
    let mut req = TunnelRequest::new(conn, session, SSHD_APP, port);
    req.bind.preferred_port = port;
    let open = async {
        conn.open_tunnel(req)
            .await
            .with_context(|| format!("could not open an SSH tunnel to session \"{session}\""))
    };
    let key = async {
        match &identity {
            Some(_) => Ok(None),
            None => temp_key(conn, session).await,
        }
    };
    let (tunnel, temp) = tokio::try_join!(open, key)?;
    if tunnel.fell_back() {
        eprintln!("∙ {}", tunnel.port_note);
    }
    let key_path = identity.or_else(|| temp.as_ref().map(|t| t.to_path_buf()));
    let endpoint = SshEndpoint::loopback(
        tunnel.local_addr().port(),
        &conn.profile().account,
        key_path,
    );
    tracing::info!(port = endpoint.port, account = %endpoint.account, "SSH tunnel ready");
    Ok(Prepared {
        tunnel,
        endpoint,
        _temp_key: temp,
    })
}

/// Runs `program args`, with Ctrl-C going to the child only, and returns its exit code.
pub async fn run_child(program: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    tracing::debug!(program, ?args, "running");
    // While the child runs, Ctrl-C is the child's business (the terminal sends it to both).
    let swallow = tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                break;
            }
        }
    });
    let status = tokio::process::Command::new(program)
        .args(args)
        .status()
        .await
        .with_context(|| format!("could not run {program}"));
    swallow.abort();
    let status = status.map_err(|e| {
        crate::exit::CliError::with_code(
            format!("{e:#}"),
            1,
            Some("install the OpenSSH client (ssh, scp) and make sure it is on PATH"),
        )
    })?;
    Ok(child_exit_code(status))
}

/// Runs `bai ssh`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let prepared = prepare(&conn, &args.session, args.port, args.identity.clone()).await?;
    eprintln!(
        "∙ running a temporary sshd proxy at 127.0.0.1:{} ...",
        prepared.endpoint.port
    );
    let code = run_child("ssh", &prepared.endpoint.ssh_args(&args.args)).await;
    prepared.finish().await;
    code
}
