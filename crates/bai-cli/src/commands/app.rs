//! `bai app SESSION [APP] -b [HOST:]PORT`: a local proxy to a session's app until Ctrl-C,
//! with connection events on stderr.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bai_core::bai_tunnel::Event;
use bai_core::{TunnelRequest, SSHD_APP};
use tokio::sync::broadcast::error::RecvError;

use crate::context::Ctx;
use crate::exit::CliError;

/// `bai app` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The session name (or id).
    pub session: String,
    /// The app (service) to reach.
    #[arg(default_value = SSHD_APP)]
    pub app: String,
    /// Where to listen: PORT or HOST:PORT (default: the profile's preferred SSH port for sshd,
    /// else any free port, on 127.0.0.1). A taken port falls back to a free one.
    #[arg(short = 'b', long = "bind", value_name = "[HOST:]PORT")]
    pub bind: Option<String>,
    /// Fail instead of falling back when the port is taken.
    #[arg(long)]
    pub strict_port: bool,
}

/// Parses `PORT` or `HOST:PORT` (`[v6]:PORT` too).
pub fn parse_bind(s: &str) -> anyhow::Result<(Option<IpAddr>, u16)> {
    let bad = || {
        CliError::usage(
            format!("invalid bind address {s:?}"),
            Some("use PORT or HOST:PORT, e.g. -b 9922 or -b 127.0.0.1:9922"),
        )
    };
    if let Ok(port) = s.parse::<u16>() {
        return Ok((None, port));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| bad())?
    };
    Ok((Some(ip), port))
}

/// Runs `bai app`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let (ip, port) = match &args.bind {
        Some(b) => {
            let (ip, port) = parse_bind(b)?;
            (ip, Some(port))
        }
        None => (None, None),
    };
    let mut req = TunnelRequest::new(&conn, &args.session, &args.app, port);
    if let Some(ip) = ip {
        if !ip.is_loopback() {
            tracing::warn!(%ip, "listening on a non-loopback address: anyone who reaches it reaches the session");
        }
        req.bind.ip = ip;
    }
    if args.strict_port {
        req.bind.fallback = false;
    }
    let tunnel = conn.open_tunnel(req).await.with_context(|| {
        format!(
            "could not open a proxy to \"{}\" of session \"{}\"",
            args.app, args.session
        )
    })?;
    // Subscribed before the address is printed, so that no client can connect unseen.
    let mut events = tunnel.handle.subscribe();
    if tunnel.fell_back() {
        eprintln!("∙ {}", tunnel.port_note);
    }
    eprintln!(
        "∙ A local proxy to the application \"{}\" provided by the session \"{}\" is available at:",
        args.app, args.session
    );
    println!("{}", tunnel.url());
    if args.app == SSHD_APP {
        let port = tunnel.local_addr().port();
        let account = &conn.profile().account;
        eprintln!("∙ Connect with: ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i ID_CONTAINER -p {port} {account}@127.0.0.1");
        eprintln!(
            "  (get the key with: bai session download {} id_container)",
            args.session
        );
    }
    eprintln!("∙ Press Ctrl-C to stop.");
    // Only connections opened from now on are reported (not the readiness probe's).
    let mut seen = std::collections::HashSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            r = &mut ctrl_c => {
                r.context("waiting for Ctrl-C")?;
                break;
            }
            ev = events.recv() => match ev {
                Ok(ev) => report(&mut seen, ev),
                Err(RecvError::Lagged(n)) => tracing::debug!(n, "missed events"),
                Err(RecvError::Closed) => {
                    return Err(CliError::with_code("the proxy stopped unexpectedly", 9, None));
                }
            }
        }
    }
    eprintln!("∙ Stopping the proxy.");
    tunnel.handle.stop_within(Duration::from_secs(2)).await;
    // What happened up to the stop (a connection that ended just before Ctrl-C, the ones the
    // stop closed) is still reported.
    loop {
        match events.try_recv() {
            Ok(ev) => report(&mut seen, ev),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one connection event of a connection opened after the proxy was ready.
fn report(seen: &mut std::collections::HashSet<String>, ev: Event) {
    match ev {
        Event::Opened { id, peer } => {
            seen.insert(id.to_string());
            tracing::info!(%id, %peer, "connection opened");
            say(format!("∙ connection {} from {peer}", short(&id)));
        }
        Event::Closed {
            id,
            bytes_up,
            bytes_down,
            duration,
            reason,
            ..
        } if seen.remove(&id.to_string()) => {
            tracing::info!(%id, bytes_up, bytes_down, ?duration, %reason, "connection closed");
            say(format!(
                "∙ connection {} closed ({bytes_up} bytes up, {bytes_down} bytes down, {:.1}s): \
                 {reason}",
                short(&id),
                duration.as_secs_f64()
            ));
        }
        Event::Failed { id, error } if seen.contains(&id.to_string()) => {
            tracing::warn!(%id, %error, "connection failed");
            say(format!("! connection {} failed: {error}", short(&id)));
        }
        _ => {}
    }
}

/// One status line on stderr in a single write (stderr is unbuffered: `eprintln!` would issue a
/// write per formatting piece, on every connection).
fn say(mut line: String) {
    use std::io::Write as _;
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn short(id: &impl std::fmt::Display) -> String {
    let s = id.to_string();
    s.chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        assert_eq!(parse_bind("9922").expect("port"), (None, 9922));
        assert_eq!(
            parse_bind("127.0.0.1:9922").expect("v4"),
            (Some(IpAddr::from([127, 0, 0, 1])), 9922)
        );
        assert_eq!(
            parse_bind("localhost:1").expect("localhost"),
            (Some(IpAddr::from([127, 0, 0, 1])), 1)
        );
        assert!(parse_bind("[::1]:22")
            .expect("v6")
            .0
            .is_some_and(|i| i.is_loopback()));
        assert!(parse_bind("nope").is_err());
        assert!(parse_bind("1.2.3.4:99999").is_err());
    }
}
