//! `bai-sandbox`: runs the Backend.AI-compatible sandbox until Ctrl-C (or SIGTERM/SIGHUP).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bai_sandbox::{Config, Generation, Sandbox, SessionSpec, SshServer, Status};
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::Parser;

/// A Backend.AI-compatible server on loopback whose sessions are real SSH servers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Webserver port on 127.0.0.1 (0 = any); the manager takes PORT+1 when free.
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Manager port (0 = webserver port + 1, or any free port).
    #[arg(long, default_value_t = 0)]
    manager_port: u16,
    /// Number of RUNNING demo sessions (demo-1, demo-2, ...).
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// The SSH server behind every session: OpenSSH's sshd, or Dropbear as production runs it
    /// (needs the Debian package dropbear-bin).
    #[arg(
        long = "sshd",
        default_value = "openssh",
        value_parser = PossibleValuesParser::new(["openssh", "dropbear"])
            .try_map(|s| s.parse::<SshServer>()),
    )]
    ssh_server: SshServer,
    /// Extra TCP app for every demo session, NAME=HOST:PORT (repeatable).
    #[arg(long = "app", value_parser = parse_app)]
    apps: Vec<(String, SocketAddr)>,
    /// Print one JSON object (endpoints, credentials, sessions) as the first stdout line.
    #[arg(long)]
    json: bool,
    /// The Backend.AI server generation to play: its API version and negotiation, session
    /// lookup, GraphQL schema, download verbs, stream parameters, webserver behaviour, login
    /// answers and error bodies (22.09, 23.09, 24.03, 24.09, 25.x, 26.4rc, 26.x).
    #[arg(long, value_name = "GEN", default_value = "26.x")]
    emulate: Generation,
    /// API version advertised by `GET /` (default: the generation's own).
    #[arg(long)]
    server_version: Option<String>,
    /// Require a TOTP code at login (base32 secret).
    #[arg(long)]
    totp_secret: Option<String>,
    /// The demo user's password (default: a random one, printed at start).
    #[arg(long)]
    password: Option<String>,
    /// Apply the fault flags below to this session only instead of globally (repeatable;
    /// the clock skew is always global).
    #[arg(long = "fault-session", value_name = "NAME")]
    fault_sessions: Vec<String>,
    /// Largest file download_single returns, and largest tar per requested path of download
    /// (larger ones are refused with 400; downloads are streamed).
    #[arg(long, value_name = "BYTES", default_value_t = bai_sandbox::DEFAULT_DOWNLOAD_LIMIT)]
    download_limit: u64,
    /// Fault: tunnels get "connection refused" (close 1013).
    #[arg(long)]
    refuse_port: bool,
    /// Fault: drop each tunnel's WebSocket after this many bytes.
    #[arg(long, value_name = "BYTES")]
    drop_after: Option<u64>,
    /// Fault: delay every WebSocket upgrade.
    #[arg(long, value_name = "MS")]
    upgrade_delay_ms: Option<u64>,
    /// Fault: read from the client WebSocket at this many bytes per second.
    #[arg(long, value_name = "BPS")]
    slow_read_bps: Option<u64>,
    /// Fault: answer STATUS on paths starting with PATH (PATH=STATUS).
    #[arg(long, value_parser = parse_fail_route)]
    fail_route: Option<(String, u16)>,
    /// Fault: shift the manager's clock by this many seconds.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_skew_secs: i64,
    /// Fault: like the 23.09 webserver, do not relay the manager's close on /func/stream
    /// WebSockets (the client's WebSocket stays open, later frames are dropped).
    #[arg(long)]
    swallow_close: bool,
}

fn parse_app(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected NAME=HOST:PORT")?;
    let addr = addr
        .parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    Ok((name.to_owned(), addr))
}

fn parse_fail_route(s: &str) -> Result<(String, u16), String> {
    let (path, status) = s.rsplit_once('=').ok_or("expected PATH=STATUS")?;
    let status: u16 = status.parse().map_err(|e| format!("bad status: {e}"))?;
    if !(100..=599).contains(&status) {
        return Err("status must be 100..=599".into());
    }
    Ok((path.to_owned(), status))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // A closed terminal: stop cleanly too (not die and leave the sshds behind).
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let server_version = args
        .server_version
        .clone()
        .unwrap_or_else(|| args.emulate.api_version().to_owned());
    if !bai_sandbox::sign::version_supported(&server_version) {
        bail!("unsupported --server-version {server_version:?}");
    }
    let sandbox = Sandbox::start(Config {
        webserver_port: args.port,
        manager_port: args.manager_port,
        demo_sessions: args.sessions,
        demo_apps: args.apps.clone(),
        server_version,
        generation: args.emulate,
        totp_secret: args.totp_secret.clone(),
        password: args.password.clone(),
        ssh_server: args.ssh_server,
        download_limit: args.download_limit,
    })
    .await
    .context("starting the sandbox")?;
    for (name, status) in [
        ("demo-preparing", Status::Preparing),
        ("demo-pending", Status::Pending),
        ("demo-terminated", Status::Terminated),
    ] {
        let mut spec = SessionSpec::with_status(name, status).web_apps();
        spec.apps = args.apps.clone();
        sandbox
            .create_session(spec)
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    let targets = if args.fault_sessions.is_empty() {
        vec![sandbox.faults().clone()]
    } else {
        args.fault_sessions
            .iter()
            .map(|name| {
                sandbox
                    .session_faults(name)
                    .with_context(|| format!("--fault-session: no session named {name:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    for f in &targets {
        f.set_refuse_port(args.refuse_port);
        f.set_drop_after(args.drop_after);
        f.set_upgrade_delay(args.upgrade_delay_ms.map(Duration::from_millis));
        f.set_slow_read(args.slow_read_bps);
        f.set_fail_route(args.fail_route.clone());
        f.set_swallow_close(args.swallow_close);
    }
    sandbox.faults().set_clock_skew(args.clock_skew_secs);

    let user = sandbox.user();
    let sessions = sandbox.sessions();
    if args.json {
        let list: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "id": s.id.to_string(), "status": s.status.to_string(),
                    "account": s.account, "ssh_server": s.ssh_server.as_str(),
                    "sshd_port": s.sshd_port,
                    "id_container": s.id_container.as_ref().map(|p| p.display().to_string()),
                    "home": s.home.display().to_string(),
                    "sshd_pid": sandbox.session_sshd_pid(&s.name).filter(|_| s.sshd_port.is_some()),
                })
            })
            .collect();
        let line = serde_json::json!({
            "webserver": sandbox.webserver_url(),
            "manager": sandbox.manager_url(),
            "email": user.email,
            "password": user.password,
            "access_key": user.access_key,
            "secret_key": user.secret_key,
            "server_version": sandbox.server_version(),
            "generation": sandbox.generation().name(),
            "ssh_server": sandbox.ssh_server().as_str(),
            "sessions": list,
        });
        println!("{line}");
    } else {
        println!("bai-sandbox is running (Ctrl-C stops it)");
        println!("  webserver:  {}", sandbox.webserver_url());
        println!(
            "  manager:    {} (plays Backend.AI {}, API {})",
            sandbox.manager_url(),
            sandbox.generation(),
            sandbox.server_version()
        );
        println!("  email:      {}", user.email);
        println!("  password:   {}", user.password);
        println!("  access key: {}", user.access_key);
        println!("  secret key: {}", user.secret_key);
        if let Some(t) = &args.totp_secret {
            println!(
                "  totp:       secret {t} (current code {})",
                bai_sandbox::totp_now(t)
            );
        }
        println!("  sessions:");
        for s in &sessions {
            let port = s
                .sshd_port
                .map(|p| match s.ssh_server {
                    SshServer::Dropbear => format!(" dropbear 127.0.0.1:{p}"),
                    _ => format!(" sshd 127.0.0.1:{p}"),
                })
                .unwrap_or_default();
            println!(
                "    {:<16} {:<11} {} as {}{port}",
                s.name, s.status, s.id, s.account
            );
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    wait_for_signal().await?;
    sandbox.shutdown().await;
    Ok(())
}
