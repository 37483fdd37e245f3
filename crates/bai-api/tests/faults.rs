//! Error mapping and wire behaviour against wiremock (and tiny raw TCP servers).

use std::future::Future;
use std::time::Duration;

use bai_api::{Client, ClientConfig, DownloadStyle, ErrorKind, Mode, Sensitive, StatusFilter};
use serde_json::json;
use url::Url;
use wiremock::matchers::{
    body_json, body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn within<F: Future<Output = ()>>(f: F) {
    bai_testkit::within(30, f).await
}

fn problem(status: u16, slug: &str, title: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        json!({"type": format!("https://api.backend.ai/probs/{slug}"), "title": title}).to_string(),
        "application/problem+json",
    )
}

async fn server(version: &str) -> MockServer {
    let s = MockServer::start().await;
    for p in ["/func/", "/"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"version": version, "manager": "25.15.0"})),
            )
            .mount(&s)
            .await;
    }
    s
}

fn session_client(s: &MockServer) -> Client {
    let mut cfg = ClientConfig::session(Url::parse(&s.uri()).expect("url"));
    cfg.timeout = Duration::from_secs(5);
    Client::new(cfg).expect("client")
}

fn logged_in_client(s: &MockServer) -> Client {
    let mut cfg = ClientConfig::session(Url::parse(&s.uri()).expect("url"));
    cfg.session_id = Some("sid-123".into());
    cfg.timeout = Duration::from_secs(5);
    Client::new(cfg).expect("client")
}

fn api_client(s: &MockServer) -> Client {
    let mut cfg = ClientConfig::api(
        Url::parse(&s.uri()).expect("url"),
        "AKIAIOSFODNN7EXAMPLE".into(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    );
    cfg.timeout = Duration::from_secs(5);
    Client::new(cfg).expect("client")
}

fn decrypt_login(origin: &str, body: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    let text = std::str::from_utf8(body).expect("utf8");
    let (iv, data) = text.split_once(':').expect("iv:data");
    assert_eq!(iv.len(), 16);
    let mut key = base64::engine::general_purpose::STANDARD
        .encode(origin)
        .into_bytes();
    key.extend_from_slice(iv.as_bytes());
    key.extend_from_slice(iv.as_bytes());
    key.truncate(32);
    let ct = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("b64");
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv.as_bytes())
        .expect("key")
        .decrypt_padded_vec_mut::<Pkcs7>(&ct)
        .expect("decrypt");
    serde_json::from_slice(&plain).expect("json")
}

#[tokio::test]
async fn html_answer_is_wrong_url() {
    within(async {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw("<!DOCTYPE html><html>hi</html>", "text/html"),
            )
            .mount(&s)
            .await;
        let e = session_client(&s)
            .negotiate_version()
            .await
            .expect_err("html");
        assert!(matches!(e.kind(), ErrorKind::WrongUrl { .. }), "{e}");
        assert!(e.to_string().contains("HTML"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn non_json_answer_is_wrong_url() {
    within(async {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_raw("hello", "text/plain"))
            .mount(&s)
            .await;
        let e = api_client(&s).negotiate_version().await.expect_err("text");
        assert!(matches!(e.kind(), ErrorKind::WrongUrl { .. }), "{e}");
        // A 404 with a non-JSON body as well.
        let s = MockServer::start().await;
        let e = session_client(&s)
            .negotiate_version()
            .await
            .expect_err("404");
        assert!(matches!(e.kind(), ErrorKind::WrongUrl { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    within(async {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let cfg =
            ClientConfig::session(Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"));
        let e = Client::new(cfg)
            .expect("client")
            .negotiate_version()
            .await
            .expect_err("refused");
        assert!(matches!(e.kind(), ErrorKind::Unreachable { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn https_against_plain_http_is_tls_error() {
    within(async {
        let s = server("v9.20250722").await;
        let url = s.uri().replace("http://", "https://");
        for insecure in [false, true] {
            let mut cfg = ClientConfig::session(Url::parse(&url).expect("url"));
            cfg.tls.insecure = insecure;
            let e = Client::new(cfg)
                .expect("client")
                .negotiate_version()
                .await
                .expect_err("tls");
            assert!(matches!(e.kind(), ErrorKind::Tls { .. }), "{e}");
            assert!(e.to_string().contains("TLS"), "{e}");
        }
    })
    .await;
}

#[tokio::test]
async fn silent_server_times_out() {
    within(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = l.accept().await {
                held.push(sock);
            }
        });
        let mut cfg =
            ClientConfig::session(Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"));
        cfg.timeout = Duration::from_millis(300);
        let e = Client::new(cfg)
            .expect("client")
            .negotiate_version()
            .await
            .expect_err("timeout");
        assert!(matches!(e.kind(), ErrorKind::Timeout { .. }), "{e}");
        keep.abort();
    })
    .await;
}

#[tokio::test]
async fn unsupported_versions() {
    within(async {
        for body in [
            json!({"manager": "19.03"}),
            json!({"version": "v3.20170615"}),
            json!({"version": "garbage"}),
        ] {
            let s = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/func/"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()))
                .mount(&s)
                .await;
            let e = session_client(&s)
                .negotiate_version()
                .await
                .expect_err("old");
            assert!(
                matches!(e.kind(), ErrorKind::UnsupportedVersion { .. }),
                "{body}: {e}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn negotiated_version_is_sent_and_v4_uses_kernel_prefix() {
    within(async {
        let s = server("v4.20190615").await;
        // Servers before 23.09 find sessions by prefix: bai names the session by its UUID,
        // from the session list (the legacy `/admin/graphql` of v4).
        let id = "0f3c9a1e-2b4d-4c6e-8f00-123456789abc";
        Mock::given(method("POST"))
            .and(path("/func/admin/graphql"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "compute_session_list": {"total_count": 2, "items": [
                    {"id": "9f3c9a1e-2b4d-4c6e-8f00-123456789abc", "name": "s10", "status": "RUNNING"},
                    {"id": id, "name": "s1", "status": "RUNNING"}]}}})))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/func/stream/kernel/{id}/apps")))
            .and(header("X-BackendAI-Version", "v4.20190615"))
            .and(header("X-BackendAI-SessionID", "sid-123"))
            .and(header("Cookie", "AIOHTTP_SESSION=sid-123"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([{"name":"sshd","protocol":"tcp","ports":[2200]}])),
            )
            .expect(1)
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        let apps = c.session_apps("s1").await.expect("apps");
        assert_eq!(apps[0].name, "sshd");
        assert_eq!(apps[0].ports, vec![2200]);
        let newer = server("v10.20300101").await;
        assert_eq!(
            session_client(&newer).negotiate_version().await.expect("v"),
            bai_api::CLIENT_API_VERSION
        );
    })
    .await;
}

#[tokio::test]
async fn login_over_http_is_encrypted_and_keeps_the_session_id() {
    within(async {
        let s = server("v9.20250722").await;
        let origin = s.uri();
        Mock::given(method("POST"))
            .and(path("/server/login"))
            .and(header("X-BackendAI-Encoded", "true"))
            .respond_with(move |req: &Request| {
                let creds = decrypt_login(&origin, &req.body);
                assert_eq!(creds["username"], "me@example.com");
                assert_eq!(creds["password"], "pw");
                assert!(req.headers.get("X-BackendAI-SessionID").is_none());
                ResponseTemplate::new(200)
                    .insert_header(
                        "Set-Cookie",
                        "AIOHTTP_SESSION=cookieonly42; HttpOnly; Max-Age=604800; Path=/",
                    )
                    .set_body_json(json!({"authenticated": true,
                        "data": {"access_key": "AK", "role": "user", "status": "active"}}))
            })
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/server/login-check"))
            .and(header("X-BackendAI-SessionID", "cookieonly42"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"authenticated": true, "data": {"access_key": "AK", "role": "user",
                "status": "active"}, "session_id": "cookieonly42"}),
            ))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/server/logout"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&s)
            .await;
        let c = session_client(&s);
        let info = c
            .login("me@example.com", &Sensitive::new("pw".to_owned()), None)
            .await
            .expect("login");
        assert_eq!(info.account.role.as_deref(), Some("user"));
        assert_eq!(
            c.session_id().map(Sensitive::into_inner).as_deref(),
            Some("cookieonly42")
        );
        let check = c.login_check().await.expect("check");
        assert!(check.authenticated);
        // Restore the login in a new client.
        let mut cfg = ClientConfig::session(Url::parse(&s.uri()).expect("url"));
        cfg.session_id = c.session_id();
        assert!(
            Client::new(cfg)
                .expect("client")
                .login_check()
                .await
                .expect("check")
                .authenticated
        );
        c.logout().await.expect("logout");
        assert!(c.session_id().is_none());
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_auth_failed_in_both_shapes() {
    within(async {
        for status in [401, 200] {
            let s = server("v9.20250722").await;
            Mock::given(method("POST"))
                .and(path("/server/login"))
                .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                    "authenticated": false,
                    "data": {"type": "https://api.backend.ai/probs/auth-failed",
                             "title": "Unauthorized access", "details": "User credential mismatch."}
                })))
                .mount(&s)
                .await;
            let c = session_client(&s);
            let e = c
                .login(
                    "me@example.com",
                    &Sensitive::new("hunter2".to_owned()),
                    None,
                )
                .await
                .expect_err("wrong pw");
            assert!(matches!(e.kind(), ErrorKind::AuthFailed { .. }), "{e}");
            assert!(e.to_string().contains("credential mismatch"), "{e}");
            assert!(!format!("{e} {e:?}").contains("hunter2"));
            assert!(c.session_id().is_none());
        }
    })
    .await;
}

#[tokio::test]
async fn totp_required() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/server/login"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "authenticated": false,
                "data": {"type": "https://api.backend.ai/probs/require-totp-authentication",
                         "title": "Two-factor authentication required", "details": "OTP not provided"}
            })))
            .mount(&s)
            .await;
        let e = session_client(&s)
            .login("me@example.com", &Sensitive::new("pw".to_owned()), None)
            .await
            .expect_err("totp");
        assert!(matches!(e.kind(), ErrorKind::TotpRequired { .. }), "{e}");
        assert!(matches!(
            e.kind(),
            ErrorKind::TotpRequired {
                registration: false
            }
        ));
    })
    .await;
}

#[tokio::test]
async fn unauthorized_after_login_is_expired_and_before_is_not_logged_in() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/func/admin/gql"))
            .respond_with(problem(401, "auth-failed", "Unauthorized access"))
            .mount(&s)
            .await;
        let e = logged_in_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("expired");
        assert!(matches!(e.kind(), ErrorKind::LoginExpired), "{e}");
        assert!(matches!(
            e.kind(),
            ErrorKind::LoginExpired | ErrorKind::NotLoggedIn
        ));
        let e = session_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("anonymous");
        assert!(matches!(e.kind(), ErrorKind::NotLoggedIn), "{e}");
        // API mode: a 401 is a refused keypair.
        let e = api_client(&s).negotiate_version().await.map(|_| ());
        assert!(e.is_ok());
        let s2 = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .respond_with(problem(
                401,
                "auth-failed",
                "Credential/signature mismatch.",
            ))
            .mount(&s2)
            .await;
        let e = api_client(&s2)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("401");
        assert!(matches!(e.kind(), ErrorKind::AuthFailed { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn not_found_session_and_app_and_not_running() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("GET"))
            .and(path("/stream/session/nope/apps"))
            .respond_with(problem(404, "object-not-found", "No such session."))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/stream/session/up/apps"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([{"name":"ttyd","protocol":"http","ports":[7681]}])),
            )
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/session/up"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "RUNNING"})))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/stream/session/pending/apps"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/session/pending"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "PREPARING"})))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/session/up/download_single"))
            .respond_with(problem(404, "object-not-found", "No such app service."))
            .mount(&s)
            .await;
        let c = api_client(&s);
        let e = c.tcpproxy_target("nope", "sshd").await.expect_err("404");
        assert!(matches!(e.kind(), ErrorKind::SessionNotFound { .. }), "{e}");
        let e = c.tcpproxy_target("up", "sshd").await.expect_err("no sshd");
        assert!(matches!(e.kind(), ErrorKind::AppNotFound { .. }), "{e}");
        assert!(e.to_string().contains("ttyd"), "{e}");
        let e = c
            .tcpproxy_target("pending", "sshd")
            .await
            .expect_err("pending");
        assert!(
            matches!(e.kind(), ErrorKind::SessionNotRunning { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("PREPARING"), "{e}");
        assert_eq!(c.session_info("up").await.expect("info").status, "RUNNING");
        assert!(c.tcpproxy_target("up", "ttyd").await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn server_error_keeps_the_problem() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("GET"))
            .and(path("/func/stream/session/s1/apps"))
            .respond_with(problem(
                500,
                "internal-server-error",
                "Something went wrong.",
            ))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/func/session/s1"))
            .respond_with(
                ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "text/html"),
            )
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        let e = c.session_apps("s1").await.expect_err("500");
        assert!(matches!(e.kind(), ErrorKind::Server { .. }), "{e}");
        assert_eq!(e.status(), Some(500));
        assert_eq!(
            e.problem().and_then(|p| p.title.as_deref()),
            Some("Something went wrong.")
        );
        let e = c.session_info("s1").await.expect_err("502");
        assert!(matches!(e.kind(), ErrorKind::Server { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn clock_skew_names_both_clocks() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .respond_with(
                problem(
                    400,
                    "invalid-auth-params",
                    "Missing or invalid authorization parameters",
                )
                .set_body_raw(
                    json!({"type": "https://api.backend.ai/probs/invalid-auth-params",
                               "title": "Missing or invalid authorization parameters",
                               "msg": "Date/time sync error"})
                    .to_string(),
                    "application/problem+json",
                )
                .insert_header("Date", "Wed, 01 Jan 2020 00:00:00 GMT"),
            )
            .mount(&s)
            .await;
        let e = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("skew");
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ClockSkew { .. } | ErrorKind::ServerClockSkew { .. }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("local clock"), "{msg}");
        assert!(msg.contains("local time "), "{msg}");
        assert!(msg.contains("server time 2020-01-01 00:00:00"), "{msg}");
        assert!(msg.contains("fix the system time"), "{msg}");
        assert!(matches!(e.kind(), ErrorKind::ClockSkew { .. }), "{e:?}");
    })
    .await;
}

fn item(name: &str) -> serde_json::Value {
    json!({"id": format!("id-{name}"), "name": name, "status": "RUNNING", "status_info": null,
           "image": "cr.backend.ai/python:3.11", "type": "INTERACTIVE",
           "created_at": "2025-01-02T03:04:05+00:00", "group_name": "default",
           "service_ports": "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_ports\":[2200],\"host_ports\":[30002]}]"})
}

#[tokio::test]
async fn list_sessions_paginates_and_raises_graphql_errors() {
    within(async {
        let s = server("v9.20250722").await;
        let first: Vec<_> = (0..100).map(|i| item(&format!("s{i}"))).collect();
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(header("content-type", "application/json"))
            .and(body_partial_json(
                json!({"variables": {"offset": 0, "limit": 100,
                "status": "CREATING,RUNNING,RUNNING_DEGRADED"}}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": {"compute_session_list": {"items": first, "total_count": 101}},
                "errors": null})))
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(body_partial_json(json!({"variables": {"offset": 100}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": {"compute_session_list": {"items": [item("last")], "total_count": 101}},
                "errors": null})))
            .expect(1)
            .mount(&s)
            .await;
        let list = api_client(&s)
            .list_sessions(StatusFilter::Running)
            .await
            .expect("list");
        assert_eq!(list.len(), 101);
        assert!(list[100].has_app("sshd"));
        assert_eq!(list[100].service_ports[0].host_ports, vec![30002]);

        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": null, "errors": [{"message": "Cannot query field \"x\""}]})))
            .mount(&s)
            .await;
        let e = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("gql");
        assert!(e.to_string().contains("Cannot query field"), "{e}");
    })
    .await;
}

/// A GraphQL answer with `items` and a `total_count` claim.
fn page(items: Vec<serde_json::Value>, total: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"compute_session_list": {"items": items, "total_count": total}},
        "errors": null}))
}

/// Seen by a mock: the `offset` variables of every session list request.
async fn offsets(s: &MockServer) -> Vec<u64> {
    s.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/admin/gql")
        .filter_map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()?
                .pointer("/variables/offset")?
                .as_u64()
        })
        .collect()
}

#[tokio::test]
async fn list_sessions_does_not_trust_a_huge_total_count() {
    within(async {
        // The claim is 10^12 sessions; the pages run dry after 3.
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(body_partial_json(json!({"variables": {"offset": 0}})))
            .respond_with(page(
                vec![item("a"), item("b"), item("c")],
                1_000_000_000_000,
            ))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(body_partial_json(json!({"variables": {"offset": 3}})))
            .respond_with(page(vec![], 1_000_000_000_000))
            .mount(&s)
            .await;
        let list = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect("list");
        assert_eq!(list.len(), 3);
        assert_eq!(offsets(&s).await, vec![0, 3]);
    })
    .await;
}

#[tokio::test]
async fn list_sessions_stops_when_pages_never_run_dry() {
    within(async {
        // A server that ignores `offset` and claims 10^12 sessions: every page is the same
        // full page. The listing must end (as an error) after a bounded number of pages.
        let s = server("v9.20250722").await;
        let full: Vec<_> = (0..100).map(|i| item(&format!("s{i}"))).collect();
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .respond_with(page(full, 1_000_000_000_000))
            .mount(&s)
            .await;
        let e = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("endless list");
        assert!(matches!(e.kind(), ErrorKind::InvalidResponse { .. }), "{e}");
        let seen = offsets(&s).await;
        assert_eq!(seen.len(), bai_api::MAX_LISTED_SESSIONS / 100, "{e}");

        // A page with more items than asked for is refused at once.
        let s = server("v9.20250722").await;
        let oversized: Vec<_> = (0..101).map(|i| item(&format!("s{i}"))).collect();
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .respond_with(page(oversized, 1_000_000_000_000))
            .mount(&s)
            .await;
        let e = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("oversized page");
        assert!(matches!(e.kind(), ErrorKind::InvalidResponse { .. }), "{e}");
        assert_eq!(offsets(&s).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn list_sessions_ignores_a_negative_or_junk_total_count() {
    within(async {
        for total in [json!(-5), json!("lots"), json!(null), json!(1.5e300)] {
            let s = server("v9.20250722").await;
            Mock::given(method("POST"))
                .and(path("/admin/gql"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "data": {"compute_session_list": {"items": [item("a")], "total_count": total}},
                    "errors": null})))
                .mount(&s)
                .await;
            let list = api_client(&s)
                .list_sessions(StatusFilter::Active)
                .await
                .expect("list");
            assert_eq!(list.len(), 1, "total_count {total}");
            assert_eq!(offsets(&s).await, vec![0], "total_count {total}");
        }
    })
    .await;
}

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    b.append_data(&mut h, name, data).expect("append");
    b.into_inner().expect("tar")
}

fn multipart(boundary: &str, tars: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tars {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Encoding: identity\r\nContent-Length: {}\r\n\r\n", t.len())
                .as_bytes(),
        );
        out.extend_from_slice(t);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[tokio::test]
async fn downloads_in_both_styles() {
    within(async {
        let s = server("v9.20250722").await;
        let body = multipart(
            "BOUND",
            &[tar_of("a.txt", b"AAA"), tar_of("b.bin", b"\r\n--BOUND")],
        );
        Mock::given(method("POST"))
            .and(path("/session/s1/download"))
            .and(query_param("files", "a.txt"))
            .and(query_param("files", "dir/b.bin"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(body.clone(), "multipart/mixed; boundary=BOUND"),
            )
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/session/s1/download"))
            .and(body_json(json!({"files": ["a.txt", "dir/b.bin"]})))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body, "multipart/mixed; boundary=BOUND"),
            )
            .expect(1)
            .mount(&s)
            .await;
        let c = api_client(&s);
        for style in [DownloadStyle::Query, DownloadStyle::JsonBody] {
            let files = c
                .download("s1", &["a.txt", "dir/b.bin"], style)
                .await
                .expect("download");
            assert_eq!(files.len(), 2);
            assert_eq!(
                (files[0].name.as_str(), files[0].data.as_slice()),
                ("a.txt", &b"AAA"[..])
            );
            assert_eq!(files[1].data, b"\r\n--BOUND");
        }
        let e = c
            .download("s1", &["1", "2", "3", "4", "5", "6"], DownloadStyle::Query)
            .await
            .expect_err("6 files");
        assert!(matches!(e.kind(), ErrorKind::InvalidInput(_)));
    })
    .await;
}

#[tokio::test]
async fn hostile_download_answers_are_errors() {
    within(async {
        let s = server("v9.20250722").await;
        // A 200 without a single file.
        Mock::given(method("POST"))
            .and(path("/session/empty/download"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(b"--B--\r\n".to_vec(), "multipart/mixed; boundary=B"),
            )
            .mount(&s)
            .await;
        // A part length that overflows any offset.
        Mock::given(method("POST"))
            .and(path("/session/overflow/download"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(
                    format!(
                        "--B\r\nContent-Length: {}\r\n\r\nabc\r\n--B--\r\n",
                        u64::MAX
                    )
                    .into_bytes(),
                    "multipart/mixed; boundary=B",
                ),
            )
            .mount(&s)
            .await;
        // A tar cut before its end.
        let t = tar_of("a.txt", b"AAA");
        Mock::given(method("POST"))
            .and(path("/session/cut/download"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                multipart("B", &[t[..1024].to_vec()]),
                "multipart/mixed; boundary=B",
            ))
            .mount(&s)
            .await;
        let c = api_client(&s);
        for session in ["empty", "overflow", "cut"] {
            let e = c
                .download(session, &["a.txt"], DownloadStyle::Query)
                .await
                .expect_err(session);
            // A 200 without a single file is what the real manager answers for a file it
            // could not give: the file is missing (never a success).
            let expected = if session == "empty" {
                matches!(e.kind(), ErrorKind::FileNotFound { .. })
            } else {
                matches!(e.kind(), ErrorKind::InvalidResponse { .. })
            };
            assert!(expected, "{session}: {e}");
        }
    })
    .await;
}

#[tokio::test]
async fn ssh_key_fetch_strips_absent_and_too_large() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/func/session/has-key/download_single"))
            .and(query_param("file", bai_api::id_container_path()))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(
                b"\x00\x01junk-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
                    .to_vec(),
            ))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/func/session/no-key/download_single"))
            .respond_with(problem(400, "invalid-api-params", "The file is not found."))
            .mount(&s)
            .await;
        // The real manager's answer when the agent has no file to give (its dummy agent).
        Mock::given(method("POST"))
            .and(path("/func/session/empty/download_single"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(Vec::new()))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/func/session/gone/download_single"))
            .respond_with(problem(404, "object-not-found", "No such session."))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/func/session/big/download_single"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 1024 * 1024 + 1]))
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        let key = c.fetch_ssh_key("has-key").await.expect("key").expect("some");
        assert!(key.expose().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(format!("{key:?}"), "<redacted>");
        assert!(c.fetch_ssh_key("no-key").await.expect("none").is_none());
        assert!(c.fetch_ssh_key("empty").await.expect("none").is_none());
        let e = c.fetch_ssh_key("gone").await.expect_err("gone");
        assert!(matches!(e.kind(), ErrorKind::SessionNotFound { .. }), "{e}");
        let e = c
            .download_single("big", &format!("{}/big", bai_api::CONTAINER_HOME))
            .await
            .expect_err("too large");
        assert!(matches!(e.kind(), ErrorKind::TooLarge { .. }), "{e}");
    })
    .await;
}

#[tokio::test]
async fn tcpproxy_request_in_session_mode_uses_func_prefix() {
    within(async {
        let s = server("v8.20240915").await;
        Mock::given(method("GET"))
            .and(path("/func/stream/session/s1/apps"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([{"name":"sshd","protocol":"tcp","ports":[2200]}])),
            )
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        assert_eq!(c.mode(), Mode::Session);
        let t = c.tcpproxy_target("s1", "sshd").await.expect("target");
        let ws = t.request().expect("request");
        assert!(ws.tls.is_none());
        let uri = ws.request.uri().to_string();
        assert!(uri.starts_with("ws://127.0.0.1:"), "{uri}");
        assert!(
            uri.ends_with("/func/stream/session/s1/tcpproxy?app=sshd"),
            "{uri}"
        );
        assert_eq!(ws.request.headers()["x-backendai-version"], "v8.20240915");
        assert_eq!(ws.request.headers()["x-backendai-sessionid"], "sid-123");
        assert!(!ws.request.headers().contains_key("authorization"));
        assert!(!format!("{t:?}").contains("sid-123"));
    })
    .await;
}

/// A 23.09 webserver hands a fresh anonymous web session to the anonymous `GET /func/`.
async fn server_with_anonymous_cookie() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/func/"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Set-Cookie",
                    "AIOHTTP_SESSION=anon999; HttpOnly; Max-Age=604800; Path=/",
                )
                .insert_header("X-BackendAI-SessionID", "anon999")
                .set_body_json(json!({"version": "v9.20250722", "manager": "23.09.10"})),
        )
        .mount(&s)
        .await;
    s
}

#[tokio::test]
async fn anonymous_cookie_from_the_version_probe_does_not_replace_the_login() {
    within(async {
        let s = server_with_anonymous_cookie().await;
        Mock::given(method("POST"))
            .and(path("/func/admin/gql"))
            .and(header("X-BackendAI-SessionID", "sid-123"))
            .and(header("Cookie", "AIOHTTP_SESSION=sid-123"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "compute_session_list": {"items": [], "total_count": 0}}, "errors": null})))
            .expect(1)
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        c.negotiate_version().await.expect("probe");
        assert_eq!(
            c.session_id().map(Sensitive::into_inner).as_deref(),
            Some("sid-123"),
            "the anonymous probe's cookie replaced the login"
        );
        // The next call still carries the login id (the mock only matches that).
        c.list_sessions(StatusFilter::Active).await.expect("list");
        assert_eq!(
            c.session_id().map(Sensitive::into_inner).as_deref(),
            Some("sid-123")
        );
        // A client with no login does not adopt the anonymous session either.
        let anon = session_client(&s);
        anon.negotiate_version().await.expect("probe");
        assert!(anon.session_id().is_none());
    })
    .await;
}

#[tokio::test]
async fn login_check_adopts_its_session_id_or_clears_a_stale_one() {
    within(async {
        let s = server_with_anonymous_cookie().await;
        Mock::given(method("POST"))
            .and(path("/server/login-check"))
            .and(header("X-BackendAI-SessionID", "sid-123"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "authenticated": true, "data": {"access_key": "AK"}, "session_id": "sid-rotated"})))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/server/login-check"))
            .and(header("X-BackendAI-SessionID", "dead-id"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header(
                        "Set-Cookie",
                        "AIOHTTP_SESSION=anon777; HttpOnly; Max-Age=604800; Path=/",
                    )
                    .set_body_json(
                        json!({"authenticated": false, "data": null, "session_id": null}),
                    ),
            )
            .mount(&s)
            .await;
        let c = logged_in_client(&s);
        assert!(c.login_check().await.expect("check").authenticated);
        assert_eq!(
            c.session_id().map(Sensitive::into_inner).as_deref(),
            Some("sid-rotated")
        );
        c.set_session_id(Some("dead-id".into()));
        let check = c.login_check().await.expect("check");
        assert!(!check.authenticated);
        assert!(
            c.session_id().is_none(),
            "a stale id must be forgotten, not replaced by the anonymous one"
        );
    })
    .await;
}

#[tokio::test]
async fn tcpproxy_target_follows_a_relogin() {
    within(async {
        let s = server("v9.20250722").await;
        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n2 = n.clone();
        Mock::given(method("POST"))
            .and(path("/server/login"))
            .respond_with(move |_: &Request| {
                let i = n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                ResponseTemplate::new(200)
                    .insert_header("X-BackendAI-SessionID", format!("login-{i}").as_str())
                    .set_body_json(json!({"authenticated": true, "data": {"access_key": "AK"}}))
            })
            .mount(&s)
            .await;
        let c = session_client(&s);
        let pw = Sensitive::new("pw".to_owned());
        c.login("me@example.com", &pw, None).await.expect("login 1");
        let t = c
            .tcpproxy_target_unchecked("s1", "sshd")
            .await
            .expect("target");
        let r = t.request().expect("request").request;
        assert_eq!(r.headers()["x-backendai-sessionid"], "login-1");
        // Log in again (e.g. after the first login expired): the existing target follows.
        c.login("me@example.com", &pw, None).await.expect("login 2");
        let r = t.request().expect("request").request;
        assert_eq!(r.headers()["x-backendai-sessionid"], "login-2");
        assert_eq!(r.headers()["cookie"], "AIOHTTP_SESSION=login-2");
        // A clone of the client shares it too.
        c.clone().set_session_id(Some("restored".into()));
        let r = t.request().expect("request").request;
        assert_eq!(r.headers()["x-backendai-sessionid"], "restored");
    })
    .await;
}

#[tokio::test]
async fn clock_skew_in_session_mode_blames_the_server_clocks() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/func/admin/gql"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_raw(
                        json!({"type": "https://api.backend.ai/probs/invalid-auth-params",
                               "title": "Missing or invalid authorization parameters",
                               "msg": "Date/time sync error"})
                        .to_string(),
                        "application/problem+json",
                    )
                    .insert_header("Date", "Wed, 01 Jan 2020 00:00:00 GMT"),
            )
            .mount(&s)
            .await;
        let e = logged_in_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect_err("skew");
        assert!(
            matches!(
                e.kind(),
                ErrorKind::ClockSkew { .. } | ErrorKind::ServerClockSkew { .. }
            ),
            "{e}"
        );
        assert!(
            matches!(e.kind(), ErrorKind::ServerClockSkew { server: Some(_) }),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("webserver"), "{msg}");
        assert!(msg.contains("manager"), "{msg}");
        assert!(msg.contains("server-side"), "{msg}");
        assert!(msg.contains("2020-01-01 00:00:00"), "{msg}");
        assert!(!msg.contains("fix the system time"), "{msg}");
    })
    .await;
}

#[tokio::test]
async fn extend_login_session_on_a_server_without_it_is_not_supported() {
    within(async {
        // No route mounted: wiremock answers 404 with an empty body, as a 23.09 webserver
        // answers with its own 404 page.
        let s = server("v7.20230615").await;
        let e = logged_in_client(&s)
            .extend_login_session()
            .await
            .expect_err("404");
        assert!(matches!(e.kind(), ErrorKind::NotSupported { .. }), "{e}");
        assert!(matches!(e.kind(), ErrorKind::NotSupported { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("does not support extending the login session"),
            "{e}"
        );
        // The route exists: the expiry comes back.
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/server/extend-login-session"))
            .and(header("X-BackendAI-SessionID", "sid-123"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"status": 201, "expires": "2030-01-01T00:00:00+00:00"})),
            )
            .mount(&s)
            .await;
        assert_eq!(
            logged_in_client(&s)
                .extend_login_session()
                .await
                .expect("extend")
                .as_deref(),
            Some("2030-01-01T00:00:00+00:00")
        );
    })
    .await;
}

#[tokio::test]
async fn api_mode_sends_the_domain_header() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(header("X-BackendAI-Domain", "default"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "compute_session_list": {"items": [], "total_count": 0}}, "errors": null})))
            .expect(1)
            .mount(&s)
            .await;
        api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect("list with the domain header");
        // Sent next to the signature, not signed (the sandbox tests check the HMAC with it).
        let reqs = s.received_requests().await.expect("recorded");
        let gql = reqs
            .iter()
            .find(|r| r.url.path() == "/admin/gql")
            .expect("gql");
        assert!(gql.headers.get("authorization").is_some());
    })
    .await;
}

/// The problem's type and `error_code` decide, not its wording: a localized "no such session"
/// is still a missing session, and an unknown route that mentions a session is not one.
#[tokio::test]
async fn errors_are_classified_by_problem_type_not_wording() {
    within(async {
        let s = server("v9.20250722").await;
        Mock::given(method("GET"))
            .and(path("/stream/session/gone/apps"))
            .respond_with(
                ResponseTemplate::new(404).set_body_raw(
                    json!({"type": "https://api.backend.ai/probs/object-not-found",
                       "title": "Sitzung nicht gefunden.",
                       "error_code": "session_read_not-found"})
                    .to_string(),
                    "application/problem+json",
                ),
            )
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/stream/session/odd/apps"))
            .respond_with(
                ResponseTemplate::new(404).set_body_raw(
                    json!({"type": "https://api.backend.ai/probs/url-not-found",
                       "title": "Unknown URL path.", "msg": "no such session route"})
                    .to_string(),
                    "application/problem+json",
                ),
            )
            .mount(&s)
            .await;
        let c = api_client(&s);
        let e = c.session_apps("gone").await.expect_err("404");
        assert!(
            matches!(e.kind(), ErrorKind::SessionNotFound { session } if session == "gone"),
            "{e:?}"
        );
        let e = c.session_apps("odd").await.expect_err("404");
        assert!(
            matches!(e.kind(), ErrorKind::Api { status: 404, .. }),
            "{e:?}"
        );
    })
    .await;
}

/// 24.03.0 … 24.03.6 report v8.20240315 like 24.03.7+, but still serve downloads by GET only:
/// the POST is refused (405), GET is tried and then remembered. A 400 `deprecated` (a GET to a
/// newer server) likewise switches to POST.
#[tokio::test]
async fn download_method_falls_back_on_refusal_and_is_remembered() {
    within(async {
        let s = server("v8.20240315").await;
        Mock::given(method("POST"))
            .and(path("/session/s1/download_single"))
            .respond_with(ResponseTemplate::new(405).set_body_string("405: Method Not Allowed"))
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/session/s1/download_single"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hello".to_vec()))
            .expect(2)
            .mount(&s)
            .await;
        let c = api_client(&s);
        for _ in 0..2 {
            assert_eq!(
                c.download_single("s1", "a.txt").await.expect("get"),
                b"hello"
            );
        }

        let s = server("v7.20230615").await;
        Mock::given(method("GET"))
            .and(path("/session/s1/download_single"))
            .respond_with(problem(400, "deprecated", "This API is deprecated."))
            .expect(1)
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/session/s1/download_single"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"hi".to_vec()))
            .expect(1)
            .mount(&s)
            .await;
        assert_eq!(
            api_client(&s)
                .download_single("s1", "a.txt")
                .await
                .expect("post"),
            b"hi"
        );
    })
    .await;
}

/// A future server without `compute_session_list` in its schema: the session list comes from
/// the relay `compute_session_nodes` (UUID from `row_id`), filtered by status here.
#[tokio::test]
async fn session_list_falls_back_to_compute_session_nodes() {
    within(async {
        let s = server("v10.20300101").await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(body_string_contains("compute_session_list"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": null,
                "errors": [{"message": "Cannot query field \"compute_session_list\" on type \"Queries\"."}]})))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/admin/gql"))
            .and(body_string_contains("compute_session_nodes"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "compute_session_nodes": {"count": 2, "edges": [
                    {"node": {"row_id": "0f3c9a1e-2b4d-4c6e-8f00-123456789abc", "name": "s1",
                              "status": "RUNNING", "service_ports":
                              "[{\"name\":\"sshd\",\"protocol\":\"tcp\",\"container_ports\":[2200],\"host_ports\":[30002]}]"}},
                    {"node": {"row_id": "1f3c9a1e-2b4d-4c6e-8f00-123456789abc", "name": "old",
                              "status": "TERMINATED"}}]}}, "errors": null})))
            .mount(&s)
            .await;
        let list = api_client(&s)
            .list_sessions(StatusFilter::Active)
            .await
            .expect("list");
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].name, "s1");
        assert_eq!(list[0].id, "0f3c9a1e-2b4d-4c6e-8f00-123456789abc");
        assert!(list[0].has_app("sshd"));
    })
    .await;
}
