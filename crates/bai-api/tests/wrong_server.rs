//! What a wrong server address is told, precisely: the other kind of Backend.AI server (the
//! sandbox's manager in session mode, its webserver in API mode, a WebUI-like `GET /`), a
//! foreign web page, each TLS failure, and each way a host is unreachable.

use bai_api::{
    Client, ClientConfig, ErrorKind, Sensitive, ServerKind, StatusFilter, TlsOptions, TlsReason,
    UnreachableReason,
};
use bai_sandbox::{Config, Sandbox};
use bai_testkit::fake::{self, BadCert};
use bai_testkit::sandbox::start as sandbox;
use bai_testkit::{within, TEST_SECS};
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).expect("url")
}

/// A session-mode login at `endpoint`: its error.
async fn session_login(endpoint: &str, tls: TlsOptions) -> bai_api::Error {
    let mut cfg = ClientConfig::session(url(endpoint));
    cfg.tls = tls;
    Client::new(cfg)
        .expect("client")
        .login("a@b.c", &Sensitive::new("pw".to_owned()), None)
        .await
        .expect_err("the login must fail")
}

/// An API-mode call at `endpoint` (what an API-mode login does first): its error.
async fn api_login(endpoint: &str, tls: TlsOptions) -> bai_api::Error {
    let mut cfg = ClientConfig::api(url(endpoint), "AKIA".into(), "secret".into());
    cfg.tls = tls;
    Client::new(cfg)
        .expect("client")
        .list_sessions(StatusFilter::Running)
        .await
        .expect_err("the call must fail")
}

#[tokio::test]
async fn session_mode_at_the_manager_says_it_is_a_manager() {
    within(TEST_SECS, async {
        let sb: Sandbox = sandbox(Config::default()).await;
        let e = session_login(&sb.manager_url(), TlsOptions::default()).await;
        assert!(
            matches!(
                e.kind(),
                ErrorKind::WrongServerKind {
                    found: ServerKind::Manager,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("is a Backend.AI manager"), "{text}");
        assert!(text.contains("use API mode"), "{text}");
        assert!(text.contains("web UI's address"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn api_mode_at_the_webserver_says_it_is_a_webserver() {
    within(TEST_SECS, async {
        let sb: Sandbox = sandbox(Config::default()).await;
        let e = api_login(&sb.webserver_url(), TlsOptions::default()).await;
        assert!(
            matches!(
                e.kind(),
                ErrorKind::WrongServerKind {
                    found: ServerKind::Webserver,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains("is a Backend.AI webserver"), "{text}");
        assert!(text.contains("use session mode"), "{text}");
        assert!(text.contains("manager's address"), "{text}");
        // A working endpoint in its own mode is unaffected.
        let u = sb.user();
        let ok = Client::new(ClientConfig::api(
            url(&sb.manager_url()),
            u.access_key.clone().into(),
            u.secret_key.clone().into(),
        ))
        .expect("client")
        .list_sessions(StatusFilter::Running)
        .await;
        assert!(ok.is_ok(), "{ok:?}");
    })
    .await;
}

#[tokio::test]
async fn a_webserver_serving_the_webui_at_its_root_is_recognized() {
    // The real webserver's `/` is the WebUI's index.html, not a problem document like the
    // sandbox's: it must be told apart from a foreign page all the same.
    within(TEST_SECS, async {
        let addr = fake::webui_server("v8.20240915").await;
        let e = api_login(&format!("http://{addr}/"), TlsOptions::default()).await;
        assert!(
            matches!(
                e.kind(),
                ErrorKind::WrongServerKind {
                    found: ServerKind::Webserver,
                    ..
                }
            ),
            "{e:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_foreign_html_page_is_not_backend_ai() {
    within(TEST_SECS, async {
        let addr = fake::foreign_site().await;
        let endpoint = format!("http://{addr}/");
        for e in [
            session_login(&endpoint, TlsOptions::default()).await,
            api_login(&endpoint, TlsOptions::default()).await,
        ] {
            assert!(matches!(e.kind(), ErrorKind::WrongUrl { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.contains("is not a Backend.AI server"), "{text}");
            assert!(text.contains("HTML page"), "{text}");
        }
        // Not JSON, not HTML.
        let addr = fake::http_server(|_, _| ("200 OK", "text/plain", "hello".to_owned())).await;
        let e = session_login(&format!("http://{addr}/"), TlsOptions::default()).await;
        assert!(
            e.to_string().contains("is not a Backend.AI server")
                && e.to_string().contains("non-JSON"),
            "{e}"
        );
    })
    .await;
}

fn tls_reason(e: &bai_api::Error) -> TlsReason {
    match e.kind() {
        ErrorKind::Tls { reason, .. } => *reason,
        other => panic!("not a TLS error: {other:?}"),
    }
}

#[tokio::test]
async fn each_tls_failure_says_which() {
    within(TEST_SECS, async {
        // https:// at a plain http port.
        let sb: Sandbox = sandbox(Config::default()).await;
        let plain = sb.webserver_url().replace("http://", "https://");
        let e = session_login(&plain, TlsOptions::default()).await;
        assert_eq!(tls_reason(&e), TlsReason::NotTls, "{e}");
        assert!(e.to_string().contains("does not speak TLS"), "{e}");

        // A self-signed certificate nobody trusts.
        let s = fake::tls_server(BadCert::SelfSigned).await;
        let e = session_login(&format!("https://{}/", s.addr), TlsOptions::default()).await;
        assert_eq!(tls_reason(&e), TlsReason::Untrusted, "{e}");
        assert!(e.to_string().contains("not trusted"), "{e}");

        // Trusted, but expired.
        let s = fake::tls_server(BadCert::Expired).await;
        let trust = TlsOptions {
            extra_ca: Some(s.pem.clone()),
            insecure: false,
        };
        let e = api_login(&format!("https://{}/", s.addr), trust).await;
        assert_eq!(tls_reason(&e), TlsReason::Expired, "{e}");
        assert!(e.to_string().contains("has expired"), "{e}");

        // Trusted, but for another host name.
        let s = fake::tls_server(BadCert::OtherHost).await;
        let trust = TlsOptions {
            extra_ca: Some(s.pem.clone()),
            insecure: false,
        };
        let e = session_login(&format!("https://{}/", s.addr), trust).await;
        assert_eq!(tls_reason(&e), TlsReason::WrongHost, "{e}");
        assert!(
            e.to_string().contains("not valid for this host name"),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn each_unreachable_host_says_why() {
    within(TEST_SECS, async {
        let (l, port) = bai_testkit::taken_port();
        drop(l);
        let e = session_login(&format!("http://127.0.0.1:{port}/"), TlsOptions::default()).await;
        match e.kind() {
            ErrorKind::Unreachable { reason, .. } => {
                assert_eq!(*reason, UnreachableReason::Refused, "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("connection refused"), "{e}");

        // `.invalid` never resolves (RFC 6761).
        let e = api_login("http://bai-test.invalid/", TlsOptions::default()).await;
        match e.kind() {
            ErrorKind::Unreachable { reason, .. } => {
                assert_eq!(*reason, UnreachableReason::Dns, "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("does not resolve"), "{e}");
    })
    .await;
}
