//! The workloads, each against one local port (whichever route stands behind it): iperf3
//! throughput, connect + echo latency, held connections, scp; and the /proc readings of the
//! proxies' CPU and memory.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One iperf3 run; returns (bits per second received, bytes).
pub(crate) async fn iperf(port: u16, secs: u32, reverse: bool) -> Result<(f64, u64)> {
    let mut cmd = Command::new("iperf3");
    cmd.args([
        "-c",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        &secs.to_string(),
        "-J",
    ]);
    if reverse {
        cmd.arg("-R");
    }
    let out = tokio::time::timeout(
        Duration::from_secs(u64::from(secs) + 30),
        cmd.kill_on_drop(true).output(),
    )
    .await
    .context("iperf3 timed out")??;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("iperf3 -J output")?;
    if let Some(e) = v["error"].as_str() {
        bail!("iperf3: {e}");
    }
    let sum = &v["end"]["sum_received"];
    Ok((
        sum["bits_per_second"]
            .as_f64()
            .context("no bits_per_second")?,
        sum["bytes"].as_u64().unwrap_or(0),
    ))
}

/// `n` sequential connect + 32-byte echo + close; returns (median, p99) in µs.
pub(crate) async fn setup_latency(port: u16, n: usize) -> Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), echo_once(port))
            .await
            .context("an echo timed out")??;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

pub(crate) async fn echo_once(port: u16) -> Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    echo_on(&mut s).await
}

pub(crate) async fn echo_on(s: &mut TcpStream) -> Result<()> {
    let msg = [0x5au8; 32];
    s.write_all(&msg).await?;
    let mut back = [0u8; 32];
    s.read_exact(&mut back).await?;
    if back != msg {
        bail!("echo mismatch");
    }
    Ok(())
}

/// Opens `n` connections at once, each echoing; returns how many echoed twice (once on open,
/// once after all were open) and, with a pid, that process's RSS in MiB while they were open.
pub(crate) async fn hold(port: u16, n: usize, pid: Option<u32>) -> Result<(usize, Option<f64>)> {
    let deadline = Duration::from_secs(60);
    let mut tasks = tokio::task::JoinSet::new();
    let (all_open_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<bool>(n.max(1));
    for _ in 0..n {
        let mut go = all_open_tx.subscribe();
        let done = done_tx.clone();
        tasks.spawn(async move {
            let first = async {
                let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
                s.set_nodelay(true)?;
                echo_on(&mut s).await?;
                anyhow::Ok(s)
            };
            let s = tokio::time::timeout(deadline, first).await;
            let mut s = match s {
                Ok(Ok(s)) => s,
                _ => {
                    let _ = done.send(false).await;
                    return false;
                }
            };
            let _ = done.send(true).await;
            if go.recv().await.is_err() {
                return false;
            }
            matches!(
                tokio::time::timeout(deadline, echo_on(&mut s)).await,
                Ok(Ok(()))
            )
        });
    }
    drop(done_tx);
    // Every task reports once (opened and echoed, or failed) and then waits for the signal, so
    // count reports rather than waiting for the channel to close.
    for _ in 0..n {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    let rss = pid.and_then(rss_mib);
    let _ = all_open_tx.send(());
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        ok += usize::from(matches!(r, Ok(true)));
    }
    Ok((ok, rss))
}

/// scp `from` to `to` over `port`; returns seconds.
pub(crate) async fn scp(port: u16, key: &str, from: &str, to: &str) -> Result<f64> {
    let t = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        Command::new("scp")
            .args([
                "-q",
                "-i",
                key,
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-P",
                &port.to_string(),
                from,
                to,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("scp timed out")??;
    if !out.status.success() {
        bail!(
            "scp failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(t.elapsed().as_secs_f64())
}

// ---- plumbing -------------------------------------------------------------------------------

pub(crate) async fn spawn_echo_server() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(port)
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) async fn wait_port(port: u16) -> Result<()> {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on 127.0.0.1:{port}")
}

pub(crate) fn write_payload(path: &Path, mib: usize) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            // xorshift64: incompressible, so ssh's optional compression cannot flatter a route.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// utime + stime of a process (and its reaped children), in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    let tick = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    let ticks = tick(14)? + tick(15)? + tick(16)? + tick(17)?;
    Some(ticks / 100.0)
}

pub(crate) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

// ---- report ---------------------------------------------------------------------------------
