//! `make bench`: the same workloads (a) straight to loopback servers, (b) through `bai app` and
//! the sandbox's tcpproxy, (c) through the plainest tokio-tungstenite proxy (`bai-bench
//! tt-proxy`, [`tt_proxy`]) and the same sandbox, (d) through the official Python client's
//! `backend.ai app` proxy, and (e) through two socat relays, printed side by side in one run;
//! then the in-app SSH client (bai-core) against OpenSSH through the same tunnel ([`remote`]).
//!
//! Every process whose CPU time or memory is measured (the proxies) is a child of its own, read
//! from `/proc`; the sandbox, the echo and iperf3 servers and the load generators are shared by
//! all routes, so they cost each route the same.
//!
//! (Over 500 lines: one file keeps the workloads, the routes and the table side by side.)
//!
//! This file holds the routes and the run; [`workloads`] the measurements, [`table`] the output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

mod remote;
mod table;
mod tt_proxy;
mod workloads;

use table::render;
use workloads::*;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks bai's local proxy against direct loopback and the Python client")]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// The `bai` binary (release build).
    #[arg(long, default_value = "target/release/bai")]
    bai: PathBuf,
    /// The `bai-sandbox` binary (release build).
    #[arg(long, default_value = "target/release/bai-sandbox")]
    sandbox: PathBuf,
    /// The official client's `backend.ai` (skipped when missing).
    #[arg(long, default_value = ".venv/bin/backend.ai")]
    python: PathBuf,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    iperf_secs: u32,
    /// Connections for the setup-latency workload.
    #[arg(long, default_value_t = 300)]
    setups: usize,
    /// Connections held at once.
    #[arg(long, default_value_t = 1000)]
    held: usize,
    /// MiB copied by scp each way.
    #[arg(long, default_value_t = 512)]
    scp_mib: usize,
    /// MiB moved by SFTP each way (the in-app client vs OpenSSH `sftp`).
    #[arg(long, default_value_t = 1024)]
    sftp_mib: usize,
    /// Also write the table (markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these workloads (comma-separated: iperf, setup, rss, held, scp, remote); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The plainest tokio-tungstenite proxy (started by the bench for its column).
    #[command(hide = true)]
    TtProxy(tt_proxy::Opts),
}

impl Args {
    fn wants(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == workload)
    }
}

/// What the sandbox printed on its first line (`--json`).
struct SandboxInfo {
    manager: String,
    access_key: String,
    secret_key: String,
    session: String,
    account: String,
    sshd_port: u16,
    key: PathBuf,
}

/// One way of reaching the servers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Direct,
    Bai,
    /// The plainest tokio-tungstenite proxy (`bai-bench tt-proxy`) in bai's place: what
    /// bai-tunnel's own framing gains over it.
    TtProxy,
    Python,
    /// Two plain TCP relays (socat) in the places of bai and the sandbox: the same topology
    /// without WebSocket, as a reference for what two userspace hops cost on this machine.
    Socat,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Bai => "bai",
            Route::TtProxy => "tokio-tungstenite proxy",
            Route::Python => "python client",
            Route::Socat => "2 socat relays",
        }
    }
}

impl Endpoints {
    /// From the echo, iperf and ssh chains (in that order), each its processes (the one the
    /// client connects to first) and its port.
    fn from_chains(chains: Vec<(Vec<Child>, u16)>) -> Self {
        let mut proxies = Vec::new();
        let mut ports = Vec::new();
        let mut pids = Vec::new();
        for (chain, port) in chains {
            pids.push(chain.first().and_then(Child::id));
            proxies.extend(chain);
            ports.push(port);
        }
        let port = |i: usize| ports.get(i).copied().unwrap_or(0);
        let pid = |i: usize| pids.get(i).copied().flatten();
        Endpoints {
            echo: port(0),
            iperf: port(1),
            ssh: port(2),
            echo_pid: pid(0),
            iperf_pid: pid(1),
            proxies,
        }
    }
}

/// Three local ports to use for one route, and the proxy processes behind them.
struct Endpoints {
    echo: u16,
    iperf: u16,
    ssh: u16,
    proxies: Vec<Child>,
    /// pid of the process that carries the iperf3 and echo traffic, when it is a proxy.
    iperf_pid: Option<u32>,
    echo_pid: Option<u32>,
}

#[derive(Default, Clone)]
struct Figures {
    up_gbps: Option<f64>,
    down_gbps: Option<f64>,
    cpu_s_per_gib: Option<f64>,
    setup_median_us: Option<f64>,
    setup_p99_us: Option<f64>,
    held_ok: Option<usize>,
    rss_mib_100: Option<f64>,
    scp_up_mbs: Option<f64>,
    scp_down_mbs: Option<f64>,
    notes: Vec<String>,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if let Some(Cmd::TtProxy(opts)) = args.cmd.take() {
        return tt_proxy::main(opts);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run(args))
}

async fn run(mut args: Args) -> Result<()> {
    for (what, path) in [("bai", &mut args.bai), ("bai-sandbox", &mut args.sandbox)] {
        // Absolute: the proxies run in their own working directories.
        *path = std::fs::canonicalize(&*path).with_context(|| {
            format!(
                "{what} not found at {} (make bench builds it)",
                path.display()
            )
        })?;
    }
    if let Ok(p) = std::fs::canonicalize(&args.python) {
        args.python = p;
    }
    let scratch = tempfile::tempdir().context("creating a scratch dir")?;

    let echo_port = spawn_echo_server().await?;
    let iperf_port = free_port()?;
    let _iperf = Command::new("iperf3")
        .args(["-s", "-B", "127.0.0.1", "-p", &iperf_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting iperf3 -s (apt-get install iperf3)")?;
    wait_port(iperf_port).await?;

    let (_sandbox, info) = start_sandbox(&args.sandbox, echo_port, iperf_port).await?;
    eprintln!(
        "sandbox up: manager {}, session {}",
        info.manager, info.session
    );

    let payload = scratch.path().join("payload.bin");
    if args.wants("scp") {
        write_payload(&payload, args.scp_mib)?;
    }

    let mut routes = vec![Route::Direct, Route::Bai, Route::TtProxy];
    if args.python.exists() {
        routes.push(Route::Python);
    } else {
        eprintln!(
            "python client not found at {}: its column skipped",
            args.python.display()
        );
    }

    routes.push(Route::Socat);
    // Only the in-app client's section asked for: no routes.
    if !["iperf", "setup", "rss", "held", "scp"]
        .iter()
        .any(|w| args.wants(w))
    {
        routes.clear();
    }

    let mut results = Vec::new();
    for route in routes {
        eprintln!("== {}", route.label());
        let mut ep = endpoints(route, &args, &info, scratch.path(), echo_port, iperf_port).await?;
        let fig = measure(route, &args, &info, &mut ep, scratch.path(), &payload).await;
        for mut p in ep.proxies.drain(..) {
            let _ = p.kill().await;
        }
        results.push((route, fig));
    }

    let mut table = if results.is_empty() {
        String::new()
    } else {
        render(&args, &results)
    };
    if args.wants("remote") {
        eprintln!("== in-app SSH client vs OpenSSH");
        let f = remote::measure(&args, &info, scratch.path()).await;
        table.push_str(&remote::render(&args, &f));
    }
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

async fn measure(
    route: Route,
    args: &Args,
    info: &SandboxInfo,
    ep: &mut Endpoints,
    scratch: &Path,
    payload: &Path,
) -> Figures {
    let mut f = Figures::default();
    let cpu_before = ep.iperf_pid.and_then(cpu_seconds);
    let mut bytes = 0u64;
    if args.wants("iperf") {
        iperf_both(ep, args, &mut f, &mut bytes).await;
        // socat's per-connection children count once reaped.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let (Some(before), Some(after)) = (cpu_before, ep.iperf_pid.and_then(cpu_seconds)) {
        if bytes > 0 {
            f.cpu_s_per_gib = Some((after - before) / (bytes as f64 / (1u64 << 30) as f64));
        }
    }
    if args.wants("setup") {
        match setup_latency(ep.echo, args.setups).await {
            Ok((median, p99)) => {
                f.setup_median_us = Some(median);
                f.setup_p99_us = Some(p99);
            }
            Err(e) => f.notes.push(format!("setup: {e:#}")),
        }
    }
    // socat forks a process per connection: its memory and connection count say nothing.
    let forks = route == Route::Socat;
    if args.wants("rss") && !forks {
        match hold(ep.echo, 100, ep.echo_pid).await {
            Ok((_, rss)) => f.rss_mib_100 = rss,
            Err(e) => f.notes.push(format!("100 held: {e:#}")),
        }
    }
    if args.wants("held") && !forks {
        match hold(ep.echo, args.held, None).await {
            Ok((ok, _)) => f.held_ok = Some(ok),
            Err(e) => f.notes.push(format!("{} held: {e:#}", args.held)),
        }
    }
    if args.wants("scp") {
        scp_both(route, ep, info, scratch, payload, &mut f).await;
    }
    f
}

async fn iperf_both(ep: &Endpoints, args: &Args, f: &mut Figures, bytes: &mut u64) {
    match iperf(ep.iperf, args.iperf_secs, false).await {
        Ok((bps, b)) => {
            f.up_gbps = Some(bps / 1e9);
            *bytes += b;
        }
        Err(e) => f.notes.push(format!("iperf3 up: {e:#}")),
    }
    match iperf(ep.iperf, args.iperf_secs, true).await {
        Ok((bps, b)) => {
            f.down_gbps = Some(bps / 1e9);
            *bytes += b;
        }
        Err(e) => f.notes.push(format!("iperf3 down: {e:#}")),
    }
}

async fn scp_both(
    route: Route,
    ep: &Endpoints,
    info: &SandboxInfo,
    scratch: &Path,
    payload: &Path,
    f: &mut Figures,
) {
    let key = info.key.to_string_lossy().into_owned();
    let remote = format!(
        "{}@127.0.0.1:bench-{}.bin",
        info.account,
        route.label().replace(' ', "-")
    );
    let back = scratch.join(format!("back-{:?}.bin", route));
    let size = std::fs::metadata(payload).map(|m| m.len()).unwrap_or(0) as f64;
    match scp(ep.ssh, &key, &payload.to_string_lossy(), &remote).await {
        Ok(secs) => f.scp_up_mbs = Some(size / secs / 1e6),
        Err(e) => f.notes.push(format!("scp up: {e:#}")),
    }
    match scp(ep.ssh, &key, &remote, &back.to_string_lossy()).await {
        Ok(secs) => {
            f.scp_down_mbs = Some(size / secs / 1e6);
            if !same_file(payload, &back) {
                f.notes
                    .push("scp down: the copy differs from the original".into());
            }
        }
        Err(e) => f.notes.push(format!("scp down: {e:#}")),
    }
    // The remote copy lives in the session's home, which the sandbox removes at exit.
    let _ = std::fs::remove_file(&back);
}

// ---- routes ---------------------------------------------------------------------------------

async fn endpoints(
    route: Route,
    args: &Args,
    info: &SandboxInfo,
    scratch: &Path,
    echo_port: u16,
    iperf_port: u16,
) -> Result<Endpoints> {
    match route {
        Route::Direct => Ok(Endpoints {
            echo: echo_port,
            iperf: iperf_port,
            ssh: info.sshd_port,
            proxies: Vec::new(),
            iperf_pid: None,
            echo_pid: None,
        }),
        Route::Socat => {
            let mut chains = Vec::new();
            for target in [echo_port, iperf_port, info.sshd_port] {
                let (second, middle) = spawn_socat(target).await?;
                let (first, port) = spawn_socat(middle).await?;
                chains.push((vec![first, second], port));
            }
            Ok(Endpoints::from_chains(chains))
        }
        Route::Bai | Route::TtProxy | Route::Python => {
            let mut chains = Vec::new();
            for app in ["echo", "iperf", "sshd"] {
                let (child, port) = spawn_proxy(route, args, info, scratch, app).await?;
                chains.push((vec![child], port));
            }
            Ok(Endpoints::from_chains(chains))
        }
    }
}

/// Starts a socat relay (256 KiB buffers, a process per connection) from a new port to
/// `target`; returns it with its port.
async fn spawn_socat(target: u16) -> Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new("socat")
        .args([
            "-b",
            "262144",
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
            &format!("TCP:127.0.0.1:{target}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting socat (apt-get install socat)")?;
    wait_port(port).await?;
    Ok((child, port))
}

/// Starts one proxy process for `app` and returns it with the port it serves on.
async fn spawn_proxy(
    route: Route,
    args: &Args,
    info: &SandboxInfo,
    scratch: &Path,
    app: &str,
) -> Result<(Child, u16)> {
    let home = scratch.join(format!("home-{}", route.label().replace(' ', "-")));
    std::fs::create_dir_all(&home).context("creating a proxy home")?;
    let port = free_port()?;
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = match route {
        Route::Bai => {
            let mut c = Command::new(&args.bai);
            c.args(["app", &info.session, app, "-b", &bind])
                .env("BAI_CONFIG_DIR", home.join("bai"))
                .env("BAI_SECRET_STORE", "file");
            c
        }
        Route::TtProxy => {
            let exe = std::env::current_exe().context("finding bai-bench's own binary")?;
            let mut c = Command::new(exe);
            c.args(["tt-proxy", "--session", &info.session, "--app", app])
                .args(["--port", &port.to_string()]);
            c
        }
        _ => {
            let mut c = Command::new(&args.python);
            c.args(["app", &info.session, app, "-b", &bind]);
            c
        }
    };
    cmd.env("HOME", &home)
        .env("BACKEND_ENDPOINT", &info.manager)
        .env("BACKEND_ENDPOINT_TYPE", "api")
        .env("BACKEND_ACCESS_KEY", &info.access_key)
        .env("BACKEND_SECRET_KEY", &info.secret_key)
        .env("RUST_LOG", "warn")
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the {} proxy for {app}", route.label()))?;
    // bai prints the address on stdout, the Python client on stderr: watch both, and keep
    // draining them so the proxy never blocks on a full pipe.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().context("proxy stdout")?;
    let stderr = child.stderr.take().context("proxy stderr")?;
    let tx2 = tx.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx.send(l);
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx2.send(l);
        }
    });
    let wanted = format!("127.0.0.1:{port}");
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = rx.recv().await {
            if line.contains(&wanted) {
                return Ok(());
            }
        }
        bail!("the proxy exited before announcing {wanted}")
    })
    .await
    .with_context(|| format!("waiting for the {} proxy for {app}", route.label()))??;
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Ok((child, port))
}

async fn start_sandbox(bin: &Path, echo: u16, iperf: u16) -> Result<(Child, SandboxInfo)> {
    let mut child = Command::new(bin)
        .args([
            "--port",
            "0",
            "--sessions",
            "1",
            "--json",
            "--app",
            &format!("echo=127.0.0.1:{echo}"),
            "--app",
            &format!("iperf=127.0.0.1:{iperf}"),
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting bai-sandbox")?;
    let stdout = child.stdout.take().context("sandbox stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("waiting for the sandbox")??
        .context("the sandbox exited before printing its endpoints")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let v: serde_json::Value = serde_json::from_str(&first).context("sandbox --json line")?;
    let s = v["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["status"] == "RUNNING"))
        .context("the sandbox has no RUNNING session")?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Ok((
        child,
        SandboxInfo {
            manager: text(&v["manager"]),
            access_key: text(&v["access_key"]),
            secret_key: text(&v["secret_key"]),
            session: text(&s["name"]),
            account: text(&s["account"]),
            sshd_port: s["sshd_port"].as_u64().unwrap_or(0) as u16,
            key: PathBuf::from(text(&s["id_container"])),
        },
    ))
}

// ---- workloads ------------------------------------------------------------------------------
