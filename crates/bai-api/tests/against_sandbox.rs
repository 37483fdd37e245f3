//! The client against `bai-sandbox` (a Backend.AI-compatible webserver + manager on loopback,
//! sessions backed by real sshd), in both modes.

use bai_api::{
    Client, ClientConfig, DownloadStyle, ErrorKind, Sensitive, StatusFilter, TcpproxyTarget,
};
use bai_sandbox::{Config, Generation, Sandbox, SessionSpec, Status};
use bai_testkit::sandbox::start as sandbox;
use bai_testkit::{within, TEST_SECS};
use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

fn api_client(sb: &Sandbox) -> Client {
    let u = sb.user();
    Client::new(ClientConfig::api(
        Url::parse(&sb.manager_url()).expect("url"),
        u.access_key.clone().into(),
        u.secret_key.clone().into(),
    ))
    .expect("client")
}

async fn session_client(sb: &Sandbox) -> Client {
    let c = Client::new(ClientConfig::session(
        Url::parse(&sb.webserver_url()).expect("url"),
    ))
    .expect("client");
    let u = sb.user();
    c.login(&u.email, &Sensitive::new(u.password.clone()), None)
        .await
        .expect("login");
    c
}

/// Opens the tcpproxy WebSocket and reads until the sshd banner arrives.
async fn read_banner(target: &TcpproxyTarget) -> String {
    let ws = target.request().expect("request");
    let (mut stream, resp) = tokio_tungstenite::connect_async_tls_with_config(
        ws.request,
        None,
        false,
        ws.tls.map(tokio_tungstenite::Connector::Rustls),
    )
    .await
    .expect("websocket upgrade");
    assert_eq!(resp.status().as_u16(), 101);
    let mut got = Vec::new();
    while !got.contains(&b'\n') {
        match stream.next().await.expect("frame").expect("ws ok") {
            Message::Binary(b) => got.extend_from_slice(&b),
            Message::Close(c) => panic!("closed before the banner: {c:?}"),
            _ => {}
        }
    }
    let _ = stream.close(None).await;
    String::from_utf8_lossy(&got).into_owned()
}

async fn exercise(sb: &Sandbox, c: &Client) {
    let info = sb
        .create_session(SessionSpec::running("s1"))
        .await
        .expect("session");
    std::fs::write(info.home.join("hello.txt"), b"hello world").expect("write file");
    sb.create_session(SessionSpec::with_status("waiting", Status::Pending))
        .await
        .expect("pending session");

    // List.
    let all = c.list_sessions(StatusFilter::Active).await.expect("list");
    let s1 = all.iter().find(|s| s.name == "s1").expect("s1 listed");
    assert_eq!(s1.id, info.id.to_string());
    assert!(s1.is_running(), "{s1:?}");
    assert!(s1.has_app("sshd"), "{s1:?}");
    assert!(all.iter().any(|s| s.name == "waiting"));
    let running = c.list_sessions(StatusFilter::Running).await.expect("list");
    assert!(running.iter().any(|s| s.name == "s1"));
    assert!(!running.iter().any(|s| s.name == "waiting"));

    // Apps and info.
    let apps = c.session_apps("s1").await.expect("apps");
    assert!(apps.iter().any(|a| a.name == "sshd"), "{apps:?}");
    assert_eq!(c.session_info("s1").await.expect("info").status, "RUNNING");
    let e = c.session_apps("no-such").await.expect_err("missing");
    assert!(matches!(e.kind(), ErrorKind::SessionNotFound { .. }), "{e}");

    // Key and downloads.
    let key = c.fetch_ssh_key("s1").await.expect("key").expect("present");
    assert!(key.expose().starts_with("-----BEGIN"), "key format");
    let single = c
        .download_single("s1", &format!("{}/hello.txt", bai_api::CONTAINER_HOME))
        .await
        .expect("download_single");
    assert_eq!(single, b"hello world");
    // The JSON body is read up to 25.x; 26.x reads the query only.
    let styles: &[DownloadStyle] = if sb.generation().download_reads_body() {
        &[DownloadStyle::Query, DownloadStyle::JsonBody]
    } else {
        &[DownloadStyle::Query]
    };
    for &style in styles {
        let files = c
            .download("s1", &["hello.txt", "id_container"], style)
            .await
            .unwrap_or_else(|e| panic!("download {style:?}: {e}"));
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].name, "hello.txt");
        assert_eq!(files[0].data, b"hello world");
        assert_eq!(files[1].name, "id_container");
    }

    // The tunnel: 101 and the sshd banner, twice (a fresh request each time).
    let target = c.tcpproxy_target("s1", "sshd").await.expect("target");
    for _ in 0..2 {
        let banner = read_banner(&target).await;
        assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    }
    // By UUID too (the 26.4.4 release candidates refuse it in stream paths: retried by name).
    let by_id = c
        .tcpproxy_target(&info.id.to_string(), "sshd")
        .await
        .expect("target by UUID");
    assert!(read_banner(&by_id).await.starts_with("SSH-2.0-"));
    // A name prefix is no name, whatever the server's lookup (22.09 matches prefixes).
    let e = c.session_apps("s").await.expect_err("prefix");
    assert!(matches!(e.kind(), ErrorKind::SessionNotFound { .. }), "{e}");
    let e = c.tcpproxy_target("s1", "nope").await.expect_err("no app");
    assert!(matches!(e.kind(), ErrorKind::AppNotFound { .. }), "{e}");
    let e = c
        .tcpproxy_target("waiting", "sshd")
        .await
        .expect_err("pending");
    assert!(
        matches!(e.kind(), ErrorKind::SessionNotRunning { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn api_mode_end_to_end() {
    within(TEST_SECS, async {
        let sb = sandbox(Config::default()).await;
        let c = api_client(&sb);
        assert_eq!(
            c.negotiate_version().await.expect("version"),
            bai_api::CLIENT_API_VERSION
        );
        exercise(&sb, &c).await;
    })
    .await;
}

#[tokio::test]
async fn session_mode_end_to_end() {
    within(TEST_SECS, async {
        let sb = sandbox(Config::default()).await;
        let c = session_client(&sb).await;
        let check = c.login_check().await.expect("check");
        assert!(check.authenticated);
        exercise(&sb, &c).await;

        // Restore the login from the saved id in a fresh client.
        let mut cfg = ClientConfig::session(Url::parse(&sb.webserver_url()).expect("url"));
        cfg.session_id = c.session_id();
        let restored = Client::new(cfg).expect("client");
        assert!(restored.login_check().await.expect("check").authenticated);
        restored
            .list_sessions(StatusFilter::Active)
            .await
            .expect("list after restore");

        c.logout().await.expect("logout");
        assert!(c.session_id().is_none());
        let e = c
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("logged out");
        assert!(
            matches!(e.kind(), ErrorKind::LoginExpired | ErrorKind::NotLoggedIn),
            "{e}"
        );
        // The restored client's id is now dead: expired.
        let e = restored
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("expired");
        assert!(
            matches!(e.kind(), ErrorKind::LoginExpired | ErrorKind::NotLoggedIn),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn wrong_password_and_totp() {
    within(TEST_SECS, async {
        let secret = "JBSWY3DPEHPK3PXP";
        let sb = sandbox(Config {
            totp_secret: Some(secret.to_owned()),
            ..Config::default()
        })
        .await;
        let c = Client::new(ClientConfig::session(
            Url::parse(&sb.webserver_url()).expect("url"),
        ))
        .expect("client");
        let u = sb.user();
        let e = c
            .login(&u.email, &Sensitive::new("wrong".to_owned()), None)
            .await
            .expect_err("wrong password");
        assert!(matches!(e.kind(), ErrorKind::AuthFailed { .. }), "{e}");
        let e = c
            .login(&u.email, &Sensitive::new(u.password.clone()), None)
            .await
            .expect_err("otp needed");
        assert!(matches!(e.kind(), ErrorKind::TotpRequired { .. }), "{e}");
        let otp = bai_sandbox::totp_now(secret);
        c.login(&u.email, &Sensitive::new(u.password.clone()), Some(&otp))
            .await
            .expect("login with otp");
        assert!(c.login_check().await.expect("check").authenticated);
    })
    .await;
}

#[tokio::test]
async fn older_server_version_is_negotiated() {
    within(TEST_SECS, async {
        let sb = sandbox(Config {
            server_version: "v7.20230615".to_owned(),
            ..Config::default()
        })
        .await;
        let c = api_client(&sb);
        assert_eq!(
            c.negotiate_version().await.expect("version").to_string(),
            "v7.20230615"
        );
        sb.create_session(SessionSpec::running("old"))
            .await
            .expect("session");
        let list = c.list_sessions(StatusFilter::Running).await.expect("list");
        assert!(list.iter().any(|s| s.name == "old"));
        let s = session_client(&sb).await;
        assert_eq!(
            s.negotiate_version().await.expect("version").to_string(),
            "v7.20230615"
        );
        let banner = read_banner(&s.tcpproxy_target("old", "sshd").await.expect("target")).await;
        assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    })
    .await;
}

#[tokio::test]
async fn extend_login_session_and_relogin_reach_an_existing_target() {
    within(TEST_SECS, async {
        let sb = sandbox(Config::default()).await;
        sb.create_session(SessionSpec::running("s1"))
            .await
            .expect("session");
        let c = session_client(&sb).await;

        // Extend: `{"status":201,"expires":ISO}`.
        let expires = c
            .extend_login_session()
            .await
            .expect("extend")
            .expect("expires");
        let expires = chrono::DateTime::parse_from_rfc3339(&expires).expect("ISO expiry");
        assert!(expires > chrono::Utc::now(), "{expires}");
        assert!(c.login_check().await.expect("check").authenticated);

        // A target made before a re-login uses the new id afterwards.
        let target = c.tcpproxy_target("s1", "sshd").await.expect("target");
        let first = c.session_id().expect("id");
        c.logout().await.expect("logout");
        let u = sb.user();
        c.login(&u.email, &Sensitive::new(u.password.clone()), None)
            .await
            .expect("login again");
        let second = c.session_id().expect("id");
        assert_ne!(first, second, "a new login gets a new web session");
        let ws = target.request().expect("request");
        assert_eq!(
            ws.request.headers()["x-backendai-sessionid"],
            second.expose().as_str()
        );
        let banner = read_banner(&target).await;
        assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");

        // Logged out: extending is refused as an expired login.
        c.logout().await.expect("logout");
        let e = c.extend_login_session().await.expect_err("logged out");
        assert!(
            matches!(e.kind(), ErrorKind::LoginExpired | ErrorKind::NotLoggedIn),
            "{e}"
        );
    })
    .await;
}

/// The whole client flow, in both modes, against every server generation the sandbox plays
/// (docs/compatibility.md): negotiation, lookup, downloads and the tunnel adapt to each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generation_in_both_modes() {
    within(TEST_SECS * 2, async {
        for generation in Generation::ALL {
            let config = || Config {
                generation,
                ..Config::default()
            };
            let sb = sandbox(config()).await;
            let c = api_client(&sb);
            let negotiated = c.negotiate_version().await.expect("version");
            assert_eq!(negotiated.to_string(), generation.api_version());
            exercise(&sb, &c).await;
            sb.shutdown().await;

            let sb = sandbox(config()).await;
            let c = session_client(&sb).await;
            exercise(&sb, &c).await;
            // extend-login-session exists from 24.09 on; older webservers: NotSupported.
            match c.extend_login_session().await {
                Ok(_) => assert!(generation >= Generation::G24_09, "{generation}"),
                Err(e) => {
                    assert!(generation < Generation::G24_09, "{generation}: {e}");
                    assert!(matches!(e.kind(), ErrorKind::NotSupported { .. }), "{e}");
                }
            }
            sb.shutdown().await;

            // Refused logins and TOTP, in each generation's shapes.
            let secret = "JBSWY3DPEHPK3PXP";
            let sb = sandbox(Config {
                totp_secret: Some(secret.to_owned()),
                ..config()
            })
            .await;
            let c = Client::new(ClientConfig::session(
                Url::parse(&sb.webserver_url()).expect("url"),
            ))
            .expect("client");
            let u = sb.user();
            let e = c
                .login(&u.email, &Sensitive::new("wrong".to_owned()), None)
                .await
                .expect_err("wrong password");
            assert!(
                matches!(e.kind(), ErrorKind::AuthFailed { .. }),
                "{generation}: {e}"
            );
            let e = c
                .login(&u.email, &Sensitive::new(u.password.clone()), None)
                .await
                .expect_err("otp needed");
            assert!(
                matches!(e.kind(), ErrorKind::TotpRequired { .. }),
                "{generation}: {e}"
            );
            let otp = bai_sandbox::totp_now(secret);
            c.login(&u.email, &Sensitive::new(u.password.clone()), Some(&otp))
                .await
                .expect("login with otp");
            sb.shutdown().await;
        }
    })
    .await;
}
