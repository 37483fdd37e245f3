//! `bai ssh SESSION [-- ARGS]`: fetches the session key to a 0600 temp file (or uses `-i`, or
//! the key `config-ssh` saved, replaced first when it is not the session's current one),
//! runs the tunnel in-process, runs the system `ssh`, removes the key and exits with ssh's
//! status. [`prepare`] is shared with `bai scp`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bai_core::commands::{ensure_known_hosts, known_hosts_path, validate_account, HostKeyPin};
use bai_core::keys::{self, SavedKey};
use bai_core::{Connection, Error, ErrorCode, OpenTunnel, SshEndpoint, TunnelRequest, SSHD_APP};

use crate::commands::child_exit_code;
use crate::context::Ctx;
use crate::exit::CliError;

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
    /// The session has no `id_container` and no `-i` was given: ssh tries the user's own
    /// default keys.
    pub own_keys: bool,
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

/// The key ssh uses for a session.
enum SessionKey {
    /// The session has no `id_container`.
    None,
    /// The key saved by `config-ssh`, checked to be the session's current one.
    Saved(PathBuf),
    /// The current key in a 0600 temporary file.
    Temp(tempfile::TempPath),
}

/// The session's current key: the saved one (by `config-ssh`) when there is one, replaced
/// first when stale; else a temporary copy.
async fn session_key(conn: &Connection, session: &str) -> anyhow::Result<SessionKey> {
    let key = match conn.fetch_ssh_key(session).await {
        Ok(k) => k,
        Err(e) if e.code() == ErrorCode::FileNotFound => {
            tracing::warn!("{e}; trying your own SSH keys (or pass one with `-i KEY`)");
            return Ok(SessionKey::None);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("fetching the session's SSH key")),
    };
    let saved = conn.profile().key_path(session);
    if saved.is_file() {
        match keys::sync_saved_key(&saved, &key) {
            Ok(SavedKey::Replaced { .. }) => {
                eprintln!(
                    "∙ the key saved for session \"{}\" was stale (the session has a new id_container); replaced it in {}",
                    bai_core::display::clean_line(session),
                    saved.display()
                );
                return Ok(SessionKey::Saved(saved));
            }
            Ok(_) => return Ok(SessionKey::Saved(saved)),
            Err(e) => tracing::warn!("{e}; using a temporary copy of the session's key"),
        }
    }
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
    Ok(SessionKey::Temp(f.into_temp_path()))
}

/// Checks a private key passed with `-i`/`--identity` (exists, is a private key, not the
/// `.pub`); logs its fingerprint when readable.
pub fn check_identity(path: &std::path::Path) -> anyhow::Result<()> {
    match keys::check_identity(path) {
        Ok(keys::Identity::Known(k)) => {
            tracing::info!(key = %path.display(), fingerprint = %k.fingerprint(), "own key");
            Ok(())
        }
        Ok(keys::Identity::Opaque) => Ok(()),
        Err(e) => Err(CliError::usage(
            format!("{e:#}"),
            Some("pass your own private key with `-i KEY` (its public key in the session's .ssh/authorized_keys)"),
        )),
    }
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
            Some(_) => Ok(SessionKey::None),
            None => session_key(conn, session).await,
        }
    };
    let pin = async {
        let pin = host_key_pin(conn, session).await?;
        ensure_known_hosts(&pin.known_hosts)?;
        anyhow::Ok(pin)
    };
    validate_account(&conn.profile().account)?;
    if let Some(path) = &identity {
        check_identity(path)?;
    }
    // All three, then the errors in this order: the tunnel's says best what is wrong.
    let (tunnel, temp, pin) = tokio::join!(open, key, pin);
    let (tunnel, temp, pin) = (tunnel?, temp?, pin?);
    if tunnel.fell_back() {
        eprintln!("∙ {}", tunnel.port_note);
    }
    let own_keys = identity.is_none() && matches!(temp, SessionKey::None);
    let (key_path, temp) = match (identity, temp) {
        (Some(path), _) => (Some(path), None),
        (None, SessionKey::None) => (None, None),
        (None, SessionKey::Saved(path)) => (Some(path), None),
        (None, SessionKey::Temp(t)) => (Some(t.to_path_buf()), Some(t)),
    };
    let endpoint = SshEndpoint::loopback(
        tunnel.local_addr().port(),
        &conn.profile().account,
        key_path,
    )
    .with_pin(pin);
    endpoint.validate()?;
    tracing::info!(port = endpoint.port, account = %endpoint.account, "SSH tunnel ready");
    Ok(Prepared {
        tunnel,
        endpoint,
        own_keys,
        _temp_key: temp,
    })
}

/// The host key pin of `session`: bai's `known_hosts`, under the session's id (looked up by
/// name or id among the active sessions; the id must be a safe name).
async fn host_key_pin(conn: &Connection, session: &str) -> anyhow::Result<HostKeyPin> {
    let s = conn.find_session(session).await?;
    Ok(HostKeyPin::new(
        known_hosts_path(&conn.profile().config_dir),
        &s.id,
    )?)
}

/// The key blobs (`type base64`) stored for `alias` in a `known_hosts` text (plain, not
/// hashed, entries; markers and comments skipped).
pub fn known_keys(known_hosts: &str, alias: &str) -> Vec<String> {
    known_hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with(['#', '@']))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let hosts = w.next()?;
            let (t, k) = (w.next()?, w.next()?);
            hosts
                .split(',')
                .any(|h| h == alias)
                .then(|| format!("{t} {k}"))
        })
        .collect()
}

/// After ssh failed (status 255) with a pin: whether the session now presents a host key
/// that differs from the one pinned for it. Scans the key through the still open tunnel.
pub async fn host_key_changed(endpoint: &SshEndpoint) -> bool {
    let Some(pin) = &endpoint.pin else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(&pin.known_hosts) else {
        return false;
    };
    let known = known_keys(&text, &pin.alias);
    if known.is_empty() {
        return false;
    }
    let scan = tokio::process::Command::new("ssh-keyscan")
        .args(["-T", "10", "-p", &endpoint.port.to_string(), &endpoint.host])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(15), scan).await else {
        return false;
    };
    let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect();
    !offered.is_empty() && !offered.iter().any(|k| known.contains(k))
}

/// What bai says when ssh refused a changed host key.
pub fn host_key_changed_error(session: &str, pin: &HostKeyPin) -> anyhow::Error {
    CliError::with_code(
        format!(
            "the SSH host key of session \"{session}\" (id {id}) has changed since bai first \
             connected to it, so ssh refused the connection.\n\
             bai trusts a session's host key on first use and pins it, under the session id, in \
             {file}. A different key for the same session means its sshd was set up again with \
             new keys, or that someone is intercepting the connection.",
            id = pin.alias,
            file = pin.known_hosts.display(),
        ),
        HOST_KEY_CHANGED_EXIT,
        Some(&format!(
            "if you trust the change, forget the old key and connect again:\n  {}",
            pin.reset_command()
        )),
    )
}

/// `bai ssh`/`bai scp` exit code when the session's pinned host key changed (ssh's own code
/// for a refused connection).
pub const HOST_KEY_CHANGED_EXIT: u8 = 255;

/// Runs an OpenSSH client through `prepared` (ssh or scp) and turns a refused changed host
/// key, or a refused login to a session without `id_container` when no key was given, into
/// bai's explanation.
pub async fn run_client(
    program: &str,
    args: &[String],
    session: &str,
    prepared: &Prepared,
) -> anyhow::Result<ExitCode> {
    let endpoint = &prepared.endpoint;
    let status = run_child_status(program, args).await?;
    if status.code() == Some(255) {
        if host_key_changed(endpoint).await {
            if let Some(pin) = &endpoint.pin {
                return Err(host_key_changed_error(session, pin));
            }
        }
        if prepared.own_keys {
            return Err(no_session_key_error(session));
        }
    }
    Ok(child_exit_code(status))
}

/// What bai says when ssh failed against a session without `id_container` and no `-i`.
fn no_session_key_error(session: &str) -> anyhow::Error {
    let e = Error::NoSessionKey {
        session: bai_core::display::clean_line(session),
    };
    CliError::with_code(
        format!("{e}, and ssh could not log in with your default keys"),
        // ssh's own code for a failed connection.
        255,
        Some(&format!(
            "{} (the private key of a public key in the session's .ssh/authorized_keys)",
            e.hint().unwrap_or_default()
        )),
    )
}

/// Runs `program args`, with Ctrl-C going to the child only, and returns its exit status.
async fn run_child_status(
    program: &str,
    args: &[String],
) -> anyhow::Result<std::process::ExitStatus> {
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
    Ok(status)
}

/// Runs `bai ssh`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let prepared = prepare(&conn, &args.session, args.port, args.identity.clone()).await?;
    eprintln!(
        "∙ running a temporary sshd proxy at 127.0.0.1:{} ...",
        prepared.endpoint.port
    );
    let code = run_client(
        "ssh",
        &prepared.endpoint.ssh_args(&args.args),
        &args.session,
        &prepared,
    )
    .await;
    prepared.finish().await;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_of_an_alias() {
        let text = "# comment\n\
                    sid-1 ssh-ed25519 AAAAk1\n\
                    other,sid-1 ssh-rsa AAAAk2 comment\n\
                    @revoked sid-1 ssh-ed25519 AAAAk3\n\
                    sid-10 ssh-ed25519 AAAAk4\n\
                    |1|salt|hash ssh-ed25519 AAAAk5\n\
                    broken\n";
        assert_eq!(
            known_keys(text, "sid-1"),
            ["ssh-ed25519 AAAAk1", "ssh-rsa AAAAk2"]
        );
        assert!(known_keys(text, "sid").is_empty());
    }
}
