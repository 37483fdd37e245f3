//! Unit tests of the parent module (kept apart so that the module itself stays readable).

use super::*;

#[test]
fn rejected_keeps_the_status_and_the_raw_body() {
    let json =
        r#"{"type":"https://api.backend.ai/probs/object-not-found","title":"No such session."}"#;
    let e = rejected(404, json.as_bytes());
    match &e {
        ConnError::Rejected {
            status,
            problem,
            body,
        } => {
            assert_eq!(*status, 404);
            assert_eq!(
                problem.as_ref().and_then(|p| p.title.as_deref()),
                Some("No such session.")
            );
            assert_eq!(
                body.as_deref(),
                Some(json),
                "the raw body, for callers to re-parse"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(
        e.to_string()
            .ends_with("HTTP 404 Not Found: No such session."),
        "{e}"
    );

    let long = "x".repeat(10_000);
    let e = rejected(502, long.as_bytes());
    let ConnError::Rejected {
        body: Some(body), ..
    } = &e
    else {
        panic!("expected a body: {e:?}");
    };
    assert_eq!(body.len(), MAX_BODY);
    assert!(e.to_string().len() < 1024, "the message stays short");
}

/// Aborts a background task when the test ends, however it ends.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets its flag when dropped: tells that a connection attempt was abandoned.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Where a black hole would be. Never contacted: the fake connect of [`black_holes`] hangs
/// on it in-process (and it is loopback anyway).
const HOLE: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)), 9);

/// A TCP connect that hangs forever, like a black hole, on [`HOLE`] and on the addresses in
/// `dark` (setting `abandoned` when such an attempt is dropped), and really connects
/// elsewhere.
fn black_holes(
    dark: Arc<Mutex<Vec<SocketAddr>>>,
    abandoned: Arc<std::sync::atomic::AtomicBool>,
) -> Arc<TcpConnectFn> {
    Arc::new(move |addr| {
        let hangs = addr == HOLE
            || dark
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&addr);
        if hangs {
            let flag = DropFlag(abandoned.clone());
            Box::pin(async move {
                let _flag = flag;
                std::future::pending::<io::Result<TcpStream>>().await
            })
        } else {
            Box::pin(TcpStream::connect(addr))
        }
    })
}

/// A resolver that counts its calls and answers the n-th call (from 0) with `answer(n)`.
fn counting_resolver(
    answer: impl Fn(usize) -> Vec<SocketAddr> + Send + Sync + 'static,
) -> (Resolver, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver = Resolver::new(move |host: &str, _port: u16| {
        assert_eq!(host, "bai.test", "only the test's name is resolved");
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Ok(answer(n)))
    });
    (resolver, calls)
}

/// A WebSocket server on loopback port 0 that accepts every upgrade and then reads until
/// the client goes away.
async fn ws_server() -> (SocketAddr, Abort) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            conns.spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    (addr, Abort(task))
}

/// A TCP server on loopback port 0 that accepts connections and never says a word.
async fn silent_server() -> (SocketAddr, Abort) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (addr, Abort(task))
}

fn dial_options(resolver: Resolver, connect_timeout: Duration) -> Options {
    Options {
        connect_timeout,
        resolver,
        ..Options::default()
    }
}

async fn dial(dialer: &Dialer, options: &Options, port: u16) -> Result<ServerWs, ConnError> {
    let connector = move || crate::Target::from_url(&format!("ws://bai.test:{port}/x"));
    let live = Arc::new(Liveness::default());
    dialer.open(&connector, options, &live).await
}

async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn a_black_holed_first_address_falls_back_to_the_next_one() {
    within(20, async {
        let (good, _server) = ws_server().await;
        let (resolver, calls) = counting_resolver(move |_| vec![HOLE, good]);
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dialer = Dialer::with_tcp_connect(black_holes(Arc::default(), abandoned.clone()));
        // Each attempt may take 10 s: the fallback must not wait for that.
        let options = dial_options(resolver, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        // Only the second address can answer: the black hole never does.
        dial(&dialer, &options, good.port()).await.expect("open");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(
            took >= ATTEMPT_DELAY,
            "the first address had its head start: {took:?}"
        );
        assert!(
            abandoned.load(std::sync::atomic::Ordering::SeqCst),
            "the losing attempt was dropped"
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn a_dial_whose_addresses_time_out_resolves_again() {
    within(20, async {
        let (good, _server) = ws_server().await;
        // First only the black hole (the old network's address), then the real one.
        let (resolver, calls) =
            counting_resolver(move |n| if n == 0 { vec![HOLE] } else { vec![good] });
        let dialer = Dialer::with_tcp_connect(black_holes(Arc::default(), Arc::default()));
        let options = dial_options(resolver, Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        dial(&dialer, &options, good.port())
            .await
            .expect("opened through the address resolved after the timeout");
        let took = started.elapsed();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            took >= Duration::from_secs(1),
            "one attempt timeout: {took:?}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
    })
    .await;
}

#[tokio::test]
async fn cached_addresses_that_went_dark_are_resolved_again() {
    within(20, async {
        let (first, _server1) = ws_server().await;
        let (second, _server2) = ws_server().await;
        let (resolver, calls) =
            counting_resolver(move |n| if n == 0 { vec![first] } else { vec![second] });
        let dark = Arc::new(Mutex::new(Vec::new()));
        let dialer = Dialer::with_tcp_connect(black_holes(dark.clone(), Arc::default()));
        let options = dial_options(resolver, Duration::from_secs(3));
        dial(&dialer, &options, 80).await.expect("first open");
        dial(&dialer, &options, 80).await.expect("cached");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "cached");
        // Suspend, wake up on another network: the cached address now black-holes, and
        // the name resolves to another one.
        dark.lock().expect("lock").push(first);
        dial(&dialer, &options, 80)
            .await
            .expect("opened through the address resolved again");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn a_dial_that_timed_out_forgets_the_cached_addresses() {
    within(20, async {
        // TCP connects but the upgrade never gets an answer: only the overall deadline
        // ends this dial.
        let (silent, _silent) = silent_server().await;
        let (good, _server) = ws_server().await;
        let (resolver, calls) =
            counting_resolver(move |n| if n == 0 { vec![silent] } else { vec![good] });
        let dialer = Dialer::default();
        let options = dial_options(resolver, Duration::from_millis(500));
        let first = dial(&dialer, &options, 80).await;
        assert!(
            matches!(first, Err(ConnError::Timeout(_))),
            "{:?}",
            first.err()
        );
        dial(&dialer, &options, 80)
            .await
            .expect("the next dial resolved again");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn cached_addresses_expire() {
    let (resolver, calls) = counting_resolver(|_| vec![HOLE]);
    let dialer = Dialer::default();
    for _ in 0..2 {
        dialer
            .resolve("bai.test", 1, &resolver, true)
            .await
            .expect("resolved");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    tokio::time::advance(CACHE_TTL).await;
    dialer
        .resolve("bai.test", 1, &resolver, true)
        .await
        .expect("resolved");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// `race` over fake connections: `plan` gives, per address, after how long its attempt
/// succeeds (`Some(Ok)`), fails (`Some(Err)`) or never ends (`None`). Returns the winner
/// or the failure, when it came, and when each attempt started and whether it was dropped
/// before it ended.
async fn run_race(
    plan: &[Option<Result<Duration, Duration>>],
    attempt_timeout: Duration,
) -> (
    Result<SocketAddr, RoundFailed>,
    Duration,
    Vec<(SocketAddr, Duration)>,
    Vec<SocketAddr>,
) {
    let addrs: Vec<SocketAddr> = (0..plan.len())
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)))
        .collect();
    let t0 = tokio::time::Instant::now();
    let started = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let result = race(
        &addrs,
        |addr| {
            started.lock().expect("lock").push((addr, t0.elapsed()));
            let step = plan[usize::from(addr.port() - 1000)];
            let dropped = dropped.clone();
            async move {
                struct OnDrop(SocketAddr, Arc<Mutex<Vec<SocketAddr>>>, bool);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        if !self.2 {
                            self.1.lock().expect("lock").push(self.0);
                        }
                    }
                }
                let mut guard = OnDrop(addr, dropped, false);
                let out = match step {
                    None => std::future::pending().await,
                    Some(Ok(after)) => {
                        tokio::time::sleep(after).await;
                        Ok(addr)
                    }
                    Some(Err(after)) => {
                        tokio::time::sleep(after).await;
                        Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                    }
                };
                guard.2 = true;
                out
            }
        },
        attempt_timeout,
    )
    .await
    .map(|(stream, addr)| {
        assert_eq!(stream, addr);
        addr
    });
    let took = t0.elapsed();
    let started = started.lock().expect("lock").clone();
    let dropped = dropped.lock().expect("lock").clone();
    (result, took, started, dropped)
}

fn port(addr: &SocketAddr) -> u16 {
    addr.port() - 1000
}

#[tokio::test(start_paused = true)]
async fn race_gives_each_address_a_head_start_and_drops_the_losers() {
    let ms = Duration::from_millis;
    let (result, took, started, dropped) = run_race(
        &[None, Some(Ok(ms(10))), None, Some(Ok(ms(0)))],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(result.as_ref().map(port).ok(), Some(1));
    assert_eq!(took, ms(260));
    let starts: Vec<_> = started.iter().map(|(a, t)| (port(a), *t)).collect();
    assert_eq!(
        starts,
        vec![(0, ms(0)), (1, ms(250))],
        "the rest never started"
    );
    assert_eq!(dropped.iter().map(port).collect::<Vec<_>>(), vec![0]);
}

#[tokio::test(start_paused = true)]
async fn race_starts_the_next_address_as_soon_as_one_fails() {
    let ms = Duration::from_millis;
    let (result, took, started, _) = run_race(
        &[Some(Err(ms(20))), Some(Err(ms(30))), Some(Ok(ms(5)))],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(result.as_ref().map(port).ok(), Some(2));
    assert_eq!(took, ms(55));
    let starts: Vec<_> = started.iter().map(|(a, t)| (port(a), *t)).collect();
    assert_eq!(starts, vec![(0, ms(0)), (1, ms(20)), (2, ms(50))]);
}

#[tokio::test(start_paused = true)]
async fn race_gives_up_when_every_attempt_failed_or_timed_out() {
    let ms = Duration::from_millis;
    let (result, took, _, _) =
        run_race(&[None, Some(Err(ms(100))), None], Duration::from_secs(1)).await;
    let failed = result.expect_err("nothing connected");
    assert!(failed.timed_out);
    // 0: 0..1000 ms; 1: 250..350 ms; 2: 350..1350 ms.
    assert_eq!(took, ms(1350));
    let (result, _, _, _) = run_race(
        &[Some(Err(ms(1))), Some(Err(ms(1)))],
        Duration::from_secs(1),
    )
    .await;
    let failed = result.expect_err("nothing connected");
    assert!(!failed.timed_out, "all refused");
    assert!(failed.message.contains("refused"), "{}", failed.message);
    let (result, _, _, _) = run_race(&[], Duration::from_secs(1)).await;
    assert!(result.is_err());
}

#[test]
fn address_families_alternate_from_the_first() {
    let v4 = |i: u8| SocketAddr::from(([127, 0, 0, i], 1));
    let v6 = |i: u16| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, i], 1));
    assert_eq!(
        interleave_families(vec![v6(1), v6(2), v6(3), v4(1), v4(2)]),
        vec![v6(1), v4(1), v6(2), v4(2), v6(3)]
    );
    assert_eq!(
        interleave_families(vec![v4(1), v4(2), v6(1)]),
        vec![v4(1), v6(1), v4(2)]
    );
    assert_eq!(interleave_families(vec![]), vec![]);
}

#[test]
fn prepare_request_fills_handshake_headers() {
    let mut req = http::Request::get("https://example.com/stream/session/s/tcpproxy?app=sshd")
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .body(())
        .expect("request");
    let (host, port) = prepare_request(&mut req).expect("valid");
    assert_eq!((host.as_str(), port), ("example.com", 443));
    assert_eq!(req.uri().scheme_str(), Some("wss"));
    assert_eq!(req.uri().query(), Some("app=sshd"));
    let h = req.headers();
    assert_eq!(h[header::HOST], "example.com");
    assert_eq!(h[header::UPGRADE], "websocket");
    assert!(h.contains_key(header::SEC_WEBSOCKET_KEY));
    assert!(!h.contains_key(header::SEC_WEBSOCKET_EXTENSIONS));

    let mut req = http::Request::get("ws://[::1]:8081/x")
        .header("Host", "custom:1")
        .body(())
        .expect("request");
    let (host, port) = prepare_request(&mut req).expect("valid");
    assert_eq!((host.as_str(), port), ("::1", 8081));
    assert_eq!(req.headers()[header::HOST], "custom:1");

    let mut req = http::Request::get("/relative").body(()).expect("request");
    assert!(matches!(
        prepare_request(&mut req),
        Err(ConnError::InvalidTarget { .. })
    ));
}
