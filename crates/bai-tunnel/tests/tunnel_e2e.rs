//! The tunnel against bai-sandbox started in-process on port 0 (real sshd sessions, HMAC auth,
//! the manager's tcpproxy), with real OpenSSH clients and the sandbox's fault knobs.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bai_tunnel::{run_stdio, CloseReason, ConnError, Event, Options};
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

fn quick_options() -> Options {
    let mut options = Options::default();
    options.close_grace = Duration::from_millis(500);
    options.shutdown_grace = Duration::from_secs(2);
    options
}

/// Sends `data` through `port` while reading the echo back; returns what came back (all of it
/// on success, a prefix when the connection is cut).
async fn echo_through(port: u16, data: Arc<Vec<u8>>) -> Vec<u8> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut r, mut w) = tcp.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&data).await;
        w
    });
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < len {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    // The manager closes the app's socket on our close, so end only after the echo is in.
    let mut w = writer.await.expect("writer");
    let _ = w.shutdown().await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ssh_runs_a_command_through_the_tunnel() {
    within(60, async {
        let env = Env::start().await;
        let (handle, mut events) = env.tunnel("sshd", quick_options()).await;
        let out = env
            .ssh(handle.local_addr().port(), "echo ok")
            .output()
            .await
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "{seen:?}");
        match seen.last() {
            Some(Event::Closed {
                bytes_up,
                bytes_down,
                ..
            }) => assert!(*bytes_up > 1000 && *bytes_down > 1000),
            other => panic!("expected Closed, got {other:?}"),
        }
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_app_round_trips_keep_every_byte() {
    within(120, async {
        let env = Env::start().await;
        let (handle, _events) = env.tunnel("echo", quick_options()).await;
        let port = handle.local_addr().port();
        for (i, size) in [1usize, 1000, 64 * 1024, 300_000, 4 * 1024 * 1024]
            .into_iter()
            .enumerate()
        {
            let data = Arc::new(noise(size, i as u64 + 10));
            let got = echo_through(port, data.clone()).await;
            assert!(got == *data, "size {size}: got {} bytes back", got.len());
        }
        // Many at once.
        let mut tasks = Vec::new();
        for i in 0..32u64 {
            let data = Arc::new(noise(200_000 + i as usize, i));
            tasks.push(tokio::spawn(async move {
                let got = echo_through(port, data.clone()).await;
                got == *data
            }));
        }
        for t in tasks {
            assert!(t.await.expect("task"), "a concurrent echo lost bytes");
        }
        let stats = handle.stats().snapshot();
        assert_eq!(stats.failed, 0, "{:?}", stats.last_error);
        assert_eq!(stats.total, 37);
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_ssh_sessions_all_succeed() {
    const N: usize = 200;
    within(400, async {
        let env = Env::start().await;
        let (handle, _events) = env.tunnel("sshd", quick_options()).await;
        let port = handle.local_addr().port();
        // Handshakes are CPU-bound (2 cores): start them a few at a time, but hold every
        // session open until all N are up at once.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(12));
        let all_up = Arc::new(tokio::sync::Barrier::new(N + 1));
        let release = CancellationToken::new();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..N {
            let mut cmd = env.ssh(port, "echo up; read line; echo bye");
            cmd.stdin(std::process::Stdio::piped());
            let handshakes = handshakes.clone();
            let all_up = all_up.clone();
            let release = release.clone();
            tasks.push(tokio::spawn(async move {
                let permit = handshakes.acquire_owned().await.expect("semaphore");
                let mut child = cmd.spawn().expect("spawn ssh");
                let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
                let mut first = String::new();
                let up = stdout.read_line(&mut first).await.is_ok() && first == "up\n";
                drop(permit);
                all_up.wait().await;
                release.cancelled().await;
                drop(child.stdin.take());
                let mut rest = String::new();
                let _ = stdout.read_to_string(&mut rest).await;
                let status = child.wait().await.expect("wait ssh");
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err).await;
                }
                if up && status.success() && rest == "bye\n" {
                    Ok(())
                } else {
                    Err(format!(
                        "ssh #{i}: up={up} status={status} out={rest:?} err={err}"
                    ))
                }
            }));
        }
        all_up.wait().await;
        let established = started.elapsed();
        let active = handle.stats().active();
        release.cancel();
        let mut failures = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.expect("task") {
                failures.push(e);
            }
        }
        assert!(
            failures.is_empty(),
            "{} failed: {failures:#?}",
            failures.len()
        );
        assert_eq!(active, N as u64, "all sessions were open at once");
        eprintln!("{N} ssh sessions established in {established:?}");
        let stats = handle.stats().snapshot();
        assert_eq!((stats.total, stats.failed), (N as u64, 0));
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_port_reports_1013_and_the_listener_keeps_serving() {
    within(60, async {
        let env = Env::start().await;
        let faults = env.sandbox.session_faults("sess").expect("session faults");
        faults.set_refuse_port(true);
        let (handle, mut events) = env.tunnel("sshd", quick_options()).await;
        let port = handle.local_addr().port();
        let out = env.ssh(port, "echo ok").output().await.expect("run ssh");
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("HTTP") && !stderr.contains("503"),
            "nothing but remote bytes reach ssh: {stderr}"
        );
        let seen = events_until_closed(&mut events).await;
        let error = failure(&seen).expect("a Failed event");
        assert_eq!(error.close_code(), Some(1013), "{error}");

        faults.set_refuse_port(false);
        let out = env.ssh(port, "echo ok").output().await.expect("run ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_websocket_cuts_the_connection_with_only_remote_bytes() {
    within(60, async {
        let env = Env::start().await;
        let faults = env.sandbox.session_faults("sess").expect("session faults");
        faults.set_drop_after(Some(100_000));
        let (handle, mut events) = env.tunnel("echo", quick_options()).await;
        let data = Arc::new(noise(1024 * 1024, 7));
        let got = echo_through(handle.local_addr().port(), data.clone()).await;
        assert!(got.len() < data.len(), "the connection was cut");
        assert!(
            data.starts_with(&got),
            "only echoed bytes reached the socket"
        );
        let seen = events_until_closed(&mut events).await;
        assert!(
            matches!(failure(&seen), Some(ConnError::WebSocket(_))),
            "{seen:?}"
        );
        faults.set_drop_after(None);
        let got = echo_through(handle.local_addr().port(), data.clone()).await;
        assert!(got == *data);
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_reads_throttle_without_buffering() {
    within(60, async {
        let env = Env::start().await;
        let faults = env.sandbox.session_faults("sess").expect("session faults");
        let rate = 2 * 1024 * 1024;
        faults.set_slow_read(Some(rate));
        let (handle, mut events) = env.tunnel("echo", quick_options()).await;
        let data = Arc::new(noise(6 * 1024 * 1024, 8));
        let started = Instant::now();
        let got = echo_through(handle.local_addr().port(), data.clone()).await;
        let took = started.elapsed();
        assert!(got == *data, "got {} of {} bytes", got.len(), data.len());
        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "{seen:?}");
        match seen.last() {
            Some(Event::Closed {
                bytes_up,
                bytes_down,
                ..
            }) => assert_eq!(
                (*bytes_up, *bytes_down),
                (data.len() as u64, data.len() as u64)
            ),
            other => panic!("expected Closed, got {other:?}"),
        }
        assert!(
            took >= Duration::from_secs(2),
            "the throttle applied ({took:?})"
        );
        let stats = handle.stats().snapshot();
        // One local read (≤ 256 KiB) going up plus one server frame (≤ 256 KiB) going down.
        assert!(
            stats.peak_buffered_per_conn <= 512 * 1024,
            "the tunnel held {} bytes at once",
            stats.peak_buffered_per_conn
        );
        assert_eq!(stats.buffered, 0);
        assert_eq!(stats.failed, 0, "{:?}", stats.last_error);
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upgrade_against_the_connect_timeout() {
    within(60, async {
        let env = Env::start().await;
        let faults = env.sandbox.session_faults("sess").expect("session faults");
        faults.set_upgrade_delay(Some(Duration::from_secs(3)));
        let mut options = quick_options();
        options.connect_timeout = Duration::from_millis(500);
        let (handle, mut events) = env.tunnel("echo", options).await;
        let started = Instant::now();
        let got = echo_through(handle.local_addr().port(), Arc::new(b"hello".to_vec())).await;
        assert!(got.is_empty());
        assert!(started.elapsed() < Duration::from_secs(3));
        let seen = events_until_closed(&mut events).await;
        assert!(
            matches!(failure(&seen), Some(ConnError::Timeout(_))),
            "{seen:?}"
        );

        // The same listener serves the next connection; a delay within the timeout is just
        // slow.
        faults.set_upgrade_delay(Some(Duration::from_millis(200)));
        let got = echo_through(handle.local_addr().port(), Arc::new(b"hello".to_vec())).await;
        assert_eq!(got, b"hello");
        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "{seen:?}");
        faults.set_upgrade_delay(None);
        let got = echo_through(handle.local_addr().port(), Arc::new(b"again".to_vec())).await;
        assert_eq!(got, b"again");
        let stats = handle.stats().snapshot();
        assert_eq!((stats.total, stats.failed), (3, 1));
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_route_and_bad_credentials_are_reported_with_the_server_message() {
    within(60, async {
        let env = Env::start().await;
        env.sandbox
            .faults()
            .set_fail_route(Some(("/stream".into(), 500)));
        let (handle, mut events) = env.tunnel("sshd", quick_options()).await;
        let out = env
            .ssh(handle.local_addr().port(), "echo ok")
            .output()
            .await
            .expect("run ssh");
        assert!(!out.status.success());
        let seen = events_until_closed(&mut events).await;
        let error = failure(&seen).expect("a Failed event");
        assert_eq!(error.http_status(), Some(500));
        assert!(error.to_string().contains("Injected failure"), "{error}");
        // The same listener serves the next connection once the server recovers.
        env.sandbox.faults().set_fail_route(None);
        let out = env
            .ssh(handle.local_addr().port(), "echo ok")
            .output()
            .await
            .expect("run ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "{seen:?}");
        handle.stop().await;

        let mut connector = env.connector("sshd");
        connector.secret_key = "not-the-secret".into();
        let (handle, mut events) = tunnel_with(connector, quick_options()).await;
        let got = echo_through(handle.local_addr().port(), Arc::new(b"x".to_vec())).await;
        assert!(got.is_empty());
        let seen = events_until_closed(&mut events).await;
        let error = failure(&seen).expect("a Failed event");
        assert_eq!(error.http_status(), Some(401), "{error}");
        handle.stop().await;

        let mut connector = env.connector("sshd");
        connector.session = "no-such-session".into();
        let (handle, mut events) = tunnel_with(connector, quick_options()).await;
        let _ = echo_through(handle.local_addr().port(), Arc::new(b"x".to_vec())).await;
        let seen = events_until_closed(&mut events).await;
        let error = failure(&seen).expect("a Failed event");
        assert_eq!(error.http_status(), Some(404), "{error}");
        // 26.x (real 26.9.6): the repository layer's "Entity not found." with its message.
        assert!(
            error
                .to_string()
                .contains("Entity not found. (No SessionRow matches"),
            "{error}"
        );
        handle.stop().await;
    })
    .await;
}

/// A session destroyed under an open tunnel: the manager closes the WebSocket with 1001 and no
/// reason (as the real 26.9.6 does), and the `Closed` event says what that means; a connection
/// the local client ends says so too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_session_closes_its_connection_naming_the_reason() {
    within(60, async {
        let env = Env::start().await;
        let (handle, mut events) = env.tunnel("sshd", quick_options()).await;
        let port = handle.local_addr().port();

        // First a connection the local client ends.
        let out = env.ssh(port, "true").output().await.expect("run ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = events_until_closed(&mut events).await;
        match seen.last() {
            Some(Event::Closed { reason, .. }) => assert!(
                matches!(
                    reason,
                    CloseReason::LocalClosed | CloseReason::Server { code: 1001, .. }
                ),
                "{reason:?}"
            ),
            other => panic!("expected Closed, got {other:?}"),
        }

        let mut child = env
            .ssh(port, "echo up; sleep 60")
            .spawn()
            .expect("spawn ssh");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).await.expect("read");
        assert_eq!(line, "up\n");
        env.sandbox.terminate("sess").await.expect("terminate");

        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "a 1001 is no failure: {seen:?}");
        let reason = match seen.last() {
            Some(Event::Closed { reason, .. }) => reason.clone(),
            other => panic!("expected Closed, got {other:?}"),
        };
        assert_eq!(
            reason,
            CloseReason::Server {
                code: 1001,
                reason: String::new()
            }
        );
        let said = reason.to_string();
        assert!(
            said.starts_with("the server closed the connection (1001: ")
                && said.contains("the session stopped"),
            "{said}"
        );
        assert_eq!(handle.stats().last_close(), Some(reason));
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("ssh ends with the session")
            .expect("wait");
        assert!(!status.success());
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_open_ssh_sessions_ends_them_within_the_grace() {
    within(60, async {
        let env = Env::start().await;
        let (handle, mut events) = env.tunnel("sshd", quick_options()).await;
        let port = handle.local_addr().port();
        let mut children = Vec::new();
        for _ in 0..3 {
            let mut child = env
                .ssh(port, "echo up; sleep 60")
                .spawn()
                .expect("spawn ssh");
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            stdout.read_line(&mut line).await.expect("read");
            assert_eq!(line, "up\n");
            children.push(child);
        }
        assert_eq!(handle.stats().active(), 3);
        let stats = handle.stats();
        let started = Instant::now();
        handle.stop_within(Duration::from_millis(500)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(stats.active(), 0);
        for mut child in children {
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("ssh ends after the stop")
                .expect("wait");
            assert!(!status.success());
        }
        let mut closed = 0;
        while let Ok(event) = events.try_recv() {
            if let Event::Closed { reason, .. } = event {
                assert_eq!(reason, CloseReason::Stopped);
                assert_eq!(reason.to_string(), "tunnel stopped");
                closed += 1;
            }
        }
        assert_eq!(closed, 3);
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_mode_carries_ssh_as_a_proxy_command_would() {
    within(60, async {
        let env = Env::start().await;
        // ssh itself can only run a ProxyCommand binary; here a loopback listener stands in for
        // the pipe pair and `run_stdio` carries the one connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connector = env.connector("sshd");
        let calls = Arc::new(AtomicUsize::new(0));
        let calls2 = calls.clone();
        let proxy = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            calls2.fetch_add(1, Ordering::SeqCst);
            let (r, w) = tcp.into_split();
            run_stdio(&connector, r, w, &quick_options(), CancellationToken::new()).await
        });
        let out = env.ssh(port, "echo ok").output().await.expect("run ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let summary = proxy.await.expect("proxy task").expect("stdio run");
        assert!(summary.bytes_up > 0 && summary.bytes_down > 0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_proxycommand_through_stdio_with_nc_style_relay() {
    // Real ProxyCommand: ssh spawns a relay to a loopback port where run_stdio serves the pipe.
    // Skipped when no `nc` is installed.
    let nc = ["nc", "ncat", "netcat"].into_iter().find(|n| {
        std::process::Command::new("which")
            .arg(n)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(nc) = nc else {
        eprintln!("skipped: no nc/ncat/netcat installed");
        return;
    };
    within(60, async {
        let env = Env::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connector = env.connector("sshd");
        let proxy = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let (r, w) = tcp.into_split();
            run_stdio(&connector, r, w, &quick_options(), CancellationToken::new()).await
        });
        let mut cmd = Command::new("ssh");
        cmd.args(env.target(port).options())
            .arg("-o")
            .arg(format!("ProxyCommand={nc} 127.0.0.1 {port}"))
            .arg(format!("{}@bai-session", env.session.account))
            .arg("echo ok")
            .kill_on_drop(true);
        let out = cmd.output().await.expect("run ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let _ = tokio::time::timeout(Duration::from_secs(5), proxy).await;
    })
    .await;
}

/// Logs in to the sandbox's webserver (session mode, plain JSON body, protocol.md §9) with a
/// hand-written HTTP/1.1 POST; returns the web session id.
async fn web_login(env: &Env) -> String {
    let user = env.sandbox.user();
    let body = serde_json::json!({"username": user.email, "password": user.password}).to_string();
    let addr = env.sandbox.webserver_addr();
    let mut tcp = TcpStream::connect(addr).await.expect("connect webserver");
    let request = format!(
        "POST /server/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("send login");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read login");
    let response = String::from_utf8_lossy(&response);
    let (head, rest) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "login failed: {response}");
    assert!(
        rest.contains("\"authenticated\":true"),
        "login failed: {response}"
    );
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    header("X-BackendAI-SessionID")
        .or_else(|| {
            let cookie = header("Set-Cookie")?;
            let value = cookie.split(';').next()?.strip_prefix("AIOHTTP_SESSION=")?;
            Some(value.to_owned())
        })
        .expect("a web session id")
}

/// A tunnel through the webserver: `/func/stream/session/{s}/tcpproxy?app=sshd` with the web
/// session in `X-BackendAI-SessionID`, as the WebUI's session mode does.
async fn web_tunnel(
    env: &Env,
    options: Options,
) -> (
    bai_tunnel::TunnelHandle,
    tokio::sync::broadcast::Receiver<Event>,
) {
    let session_id = web_login(env).await;
    let url = format!(
        "ws://{}/func/stream/session/{}/tcpproxy?app=sshd",
        env.sandbox.webserver_addr(),
        env.session.name
    );
    let connector = move || -> Result<bai_tunnel::Target, http::Error> {
        let request = http::Request::get(&url)
            .header("X-BackendAI-SessionID", &session_id)
            .body(())?;
        Ok(bai_tunnel::Target::new(request))
    };
    tunnel_with(connector, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ssh_through_the_webserver_in_session_mode() {
    within(60, async {
        let env = Env::start().await;
        let (handle, mut events) = web_tunnel(&env, quick_options()).await;
        let out = env
            .ssh(handle.local_addr().port(), "echo ok")
            .output()
            .await
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let seen = events_until_closed(&mut events).await;
        assert!(failure(&seen).is_none(), "{seen:?}");
        handle.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_finishes_promptly_when_the_webserver_swallows_the_close() {
    // protocol.md §9: a 23.09 webserver does not relay the manager's close. ssh closing its
    // side must still tear the connection down, promptly.
    within(60, async {
        let env = Env::start().await;
        env.sandbox.faults().set_swallow_close(true);
        let (handle, mut events) = web_tunnel(&env, quick_options()).await;
        let started = Instant::now();
        let out = env
            .ssh(handle.local_addr().port(), "echo ok")
            .output()
            .await
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        let seen = tokio::time::timeout(Duration::from_secs(5), events_until_closed(&mut events))
            .await
            .expect("the Closed event arrives without the server's close");
        assert!(failure(&seen).is_none(), "{seen:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        handle.stop().await;
    })
    .await;
}
