//! The in-app SSH client (bai-core's `remote`) against OpenSSH through the same tunnel code:
//! SFTP upload and download throughput (bai-core's pipelined transfer engine vs `sftp -b`) and
//! terminal echo latency (a key typed into a PTY shell until its echo is back: bai-core's shell
//! vs `ssh -tt`). Both sides reach the session through bai-tunnel's stdio path, one WebSocket
//! per connection: in process for bai-core, `ProxyCommand bai proxy --stdio` for OpenSSH.

use std::sync::Arc;

use bai_core::bai_api::{Mode, Sensitive};
use bai_core::remote::{transfer, Remotes, ShellEvent, SshClient};
use bai_core::{LoginForm, MemoryStore, Workspace};

#[allow(clippy::wildcard_imports)]
use super::*;

/// Keys typed for the echo latency.
const KEYS: usize = 200;

/// (bai-core, OpenSSH).
type Pair = (Option<f64>, Option<f64>);

/// What the remote section measured.
#[derive(Default)]
pub(crate) struct RemoteFigures {
    pub up: Pair,
    pub down: Pair,
    pub echo_median: Pair,
    pub echo_p99: Pair,
    pub notes: Vec<String>,
}

fn quantiles(mut v: Vec<f64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Some((at(0.5), at(0.99)))
}

async fn client(info: &SandboxInfo, dir: &Path) -> Result<(Workspace, Arc<SshClient>)> {
    let ws = Workspace::new(dir.to_path_buf(), Arc::new(MemoryStore::new()));
    ws.login(LoginForm {
        endpoint: info.manager.clone(),
        mode: Mode::Api,
        access_key: Some(info.access_key.clone()),
        secret_key: Some(Sensitive::new(info.secret_key.clone())),
        ..LoginForm::default()
    })
    .await
    .context("bai-core login")?;
    ws.set_profile_prefs(None, &info.account)?;
    let c = Remotes::new()
        .client(&ws, &info.session)
        .await
        .context("bai-core SSH connection")?;
    Ok((ws, c))
}

/// OpenSSH's options for the session through `bai proxy --stdio`.
fn openssh(program: &str, args: &Args, info: &SandboxInfo, home: &Path) -> Command {
    let mut c = Command::new(program);
    let proxy = format!("{} proxy --stdio {}", args.bai.display(), info.session);
    c.args(["-o", &format!("ProxyCommand={proxy}")])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg("-i")
        .arg(&info.key)
        .env("BAI_CONFIG_DIR", home.join("bai"))
        .env("BAI_SECRET_STORE", "file")
        .env("BACKEND_ENDPOINT", &info.manager)
        .env("BACKEND_ENDPOINT_TYPE", "api")
        .env("BACKEND_ACCESS_KEY", &info.access_key)
        .env("BACKEND_SECRET_KEY", &info.secret_key)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    c
}

async fn sftp_batch(args: &Args, info: &SandboxInfo, home: &Path, line: &str) -> Result<f64> {
    let batch = home.join("batch");
    std::fs::write(&batch, format!("{line}\n"))?;
    let t = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(900),
        openssh("sftp", args, info, home)
            .arg("-b")
            .arg(&batch)
            .arg(format!("{}@bai-bench", info.account))
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .context("sftp timed out")??;
    if !out.status.success() {
        bail!("sftp: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(t.elapsed().as_secs_f64())
}

async fn bai_echo(c: &SshClient) -> Result<Vec<f64>> {
    let (w, mut r) = c.shell(80, 24).await?;
    // Wait for the prompt, then type keys one at a time.
    w.send(b"echo READY\n").await?;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("READY\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), r.next()).await? {
            Some(ShellEvent::Data(d)) => seen.extend_from_slice(&d),
            _ => bail!("the shell ended"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        let t = Instant::now();
        w.send(b"x").await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), r.next()).await? {
                Some(ShellEvent::Data(d)) if d.contains(&b'x') => break,
                Some(_) => {}
                None => bail!("the shell ended"),
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    w.send(b"\x15exit\n").await?;
    Ok(samples)
}

async fn openssh_echo(args: &Args, info: &SandboxInfo, home: &Path) -> Result<Vec<f64>> {
    let mut child = openssh("ssh", args, info, home)
        .arg("-tt")
        .arg(format!("{}@bai-bench", info.account))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ssh")?;
    let mut stdin = child.stdin.take().context("ssh stdin")?;
    let mut stdout = child.stdout.take().context("ssh stdout")?;
    stdin.write_all(b"echo READY\n").await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("READY\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stdout.read(&mut buf)).await??;
        if n == 0 {
            bail!("ssh ended: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::with_capacity(KEYS);
    for _ in 0..KEYS {
        let t = Instant::now();
        stdin.write_all(b"x").await?;
        stdin.flush().await?;
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut buf)).await??;
            if n == 0 {
                bail!("ssh ended");
            }
            if buf[..n].contains(&b'x') {
                break;
            }
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _ = stdin.write_all(b"\x15exit\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(samples)
}

/// Runs the section: `mib` MiB each way with each client, then the echo latency.
pub(crate) async fn measure(args: &Args, info: &SandboxInfo, scratch: &Path) -> RemoteFigures {
    let mut f = RemoteFigures::default();
    if let Err(e) = run(args, info, scratch, &mut f).await {
        f.notes.push(format!("{e:#}"));
    }
    f
}

async fn run(args: &Args, info: &SandboxInfo, scratch: &Path, f: &mut RemoteFigures) -> Result<()> {
    let home = scratch.join("remote");
    std::fs::create_dir_all(home.join("local"))?;
    let payload = home.join("sftp.bin");
    write_payload(&payload, args.sftp_mib)?;
    let size = std::fs::metadata(&payload)?.len() as f64;
    let (_ws, c) = client(info, &home.join("core")).await?;
    let never = tokio_util::sync::CancellationToken::new();

    // bai-core: upload into the home, download back, compare.
    let sftp = c.sftp().await?;
    let remote_home = sftp.home().await?;
    let p = transfer::Progress::new();
    let t = Instant::now();
    transfer::upload(&sftp, &payload, &remote_home, &p, &never).await?;
    f.up.0 = Some(size / t.elapsed().as_secs_f64() / 1e6);
    let back = home.join("local");
    let t = Instant::now();
    transfer::download(&sftp, &format!("{remote_home}/sftp.bin"), &back, &p, &never).await?;
    f.down.0 = Some(size / t.elapsed().as_secs_f64() / 1e6);
    if !same_file(&payload, &back.join("sftp.bin")) {
        f.notes.push("bai-core download: the copy differs".into());
    }
    let _ = std::fs::remove_file(back.join("sftp.bin"));

    // OpenSSH sftp through `bai proxy --stdio`.
    let put = format!("put {} sftp-openssh.bin", payload.display());
    match sftp_batch(args, info, &home, &put).await {
        Ok(s) => f.up.1 = Some(size / s / 1e6),
        Err(e) => f.notes.push(format!("OpenSSH sftp put: {e:#}")),
    }
    let get = format!("get sftp-openssh.bin {}", back.join("o.bin").display());
    match sftp_batch(args, info, &home, &get).await {
        Ok(s) => {
            f.down.1 = Some(size / s / 1e6);
            if !same_file(&payload, &back.join("o.bin")) {
                f.notes.push("OpenSSH sftp get: the copy differs".into());
            }
        }
        Err(e) => f.notes.push(format!("OpenSSH sftp get: {e:#}")),
    }
    let _ = std::fs::remove_file(back.join("o.bin"));
    let _ = sftp.delete(&format!("{remote_home}/sftp.bin")).await;

    match bai_echo(&c).await.map(quantiles) {
        Ok(Some((m, p))) => (f.echo_median.0, f.echo_p99.0) = (Some(m), Some(p)),
        Ok(None) => {}
        Err(e) => f.notes.push(format!("bai-core echo: {e:#}")),
    }
    match openssh_echo(args, info, &home).await.map(quantiles) {
        Ok(Some((m, p))) => (f.echo_median.1, f.echo_p99.1) = (Some(m), Some(p)),
        Ok(None) => {}
        Err(e) => f.notes.push(format!("ssh echo: {e:#}")),
    }
    Ok(())
}

/// The section's table: bai-core's client and OpenSSH side by side, with the ratio.
pub(crate) fn render(args: &Args, f: &RemoteFigures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| in-app SSH client vs OpenSSH (same tunnel) | bai-core (russh) | OpenSSH | ratio |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let rows: [(String, Pair, &str, bool); 4] = [
        (
            format!("SFTP {} MiB upload", args.sftp_mib),
            f.up,
            "MB/s",
            true,
        ),
        (
            format!("SFTP {} MiB download", args.sftp_mib),
            f.down,
            "MB/s",
            true,
        ),
        (
            format!("terminal echo, median of {KEYS} keys"),
            f.echo_median,
            "µs",
            false,
        ),
        (
            format!("terminal echo, p99 of {KEYS} keys"),
            f.echo_p99,
            "µs",
            false,
        ),
    ];
    for (label, (ours, theirs), unit, higher_better) in rows {
        let cell = |v: Option<f64>| {
            v.map_or("n/a".to_owned(), |v| {
                format!("{} {unit}", table::fmt_num(v))
            })
        };
        let ratio = match (ours, theirs) {
            (Some(a), Some(b)) if b > 0.0 => {
                let r = a / b;
                format!(
                    "×{r:.2}{}",
                    if higher_better {
                        ""
                    } else {
                        " (lower is better)"
                    }
                )
            }
            _ => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {ratio} |",
            cell(ours),
            cell(theirs)
        );
    }
    for n in &f.notes {
        let _ = writeln!(out, "\n- remote: {n}");
    }
    out
}
