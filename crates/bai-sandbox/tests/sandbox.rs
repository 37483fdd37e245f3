//! Integration tests: every route's success and error answers, every fault knob, real sshd,
//! tcpproxy round trips, and process clean-up.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bai_sandbox::{Config, Sandbox, SessionSpec, Status};
use bai_testkit::sandbox::demo as sandbox;
use bai_testkit::{free_addr, SshTarget};
use common::*;
use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = r.json().await.unwrap();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "errors are problem+json");
    }
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_root_auth_and_hmac_errors() {
    within(30, async {
        let sb = Sandbox::start(Config {
            server_version: "v7.20230615".into(),
            ..Config::default()
        })
        .await
        .unwrap();
        sb.create_session(SessionSpec::with_status("s1", Status::Pending))
            .await
            .unwrap();
        let root: Value = reqwest::get(sb.manager_url()).await.unwrap().json().await.unwrap();
        assert_eq!(root, json!({"version": "v7.20230615", "manager": "26.9.6"}));

        // Signed request works (Python style), no compression.
        let r = api(&sb, "GET", "/session/s1", None).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("content-encoding").is_none());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "PENDING");

        let c = reqwest::Client::new();
        let url = format!("{}/session/s1", sb.manager_url());
        // No version header.
        let (st, body) = problem(c.get(&url).send().await.unwrap()).await;
        assert_eq!((st, body["type"].as_str().unwrap()), (400, "https://api.backend.ai/probs/invalid-auth-params"));
        // Unsupported version.
        let (st, body) = problem(c.get(&url).header("X-BackendAI-Version", "v3.20170615").send().await.unwrap()).await;
        assert_eq!(st, 400);
        assert_eq!(body["msg"], "Unsupported API version.");
        // No credentials.
        let (st, body) = problem(c.get(&url).header("X-BackendAI-Version", VERSION).send().await.unwrap()).await;
        assert_eq!((st, body["type"].as_str().unwrap()), (401, "https://api.backend.ai/probs/auth-failed"));
        // Wrong secret.
        let date = now_date(0);
        let host = sb.manager_addr().to_string();
        let auth = sign_at(&sb.user().access_key, "wrong", "GET", "/session/s1", &host, "application/octet-stream", VERSION, &date);
        let r = c.get(&url).header("X-BackendAI-Version", VERSION).header("Date", &date).header("Authorization", auth).send().await.unwrap();
        let (st, body) = problem(r).await;
        assert_eq!((st, body["msg"].as_str().unwrap()), (401, "HMAC signature mismatch"));
        // Unknown key.
        let auth = sign_at("AKIANOPE", "x", "GET", "/session/s1", &host, "application/octet-stream", VERSION, &date);
        let r = c.get(&url).header("X-BackendAI-Version", VERSION).header("Date", &date).header("Authorization", auth).send().await.unwrap();
        assert_eq!(problem(r).await.0, 401);
        // Stale date.
        let (st, body) = problem(api_with(&sb, "GET", "/session/s1", None, -20 * 60, VERSION).await).await;
        assert_eq!((st, body["type"].as_str().unwrap()), (400, "https://api.backend.ai/probs/invalid-auth-params"));
        // JS style: X-BackendAI-Date with Z and application/json.
        let jsdate = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let auth = sign_at(&sb.user().access_key, &sb.user().secret_key, "GET", "/session/s1", &host, "application/json", "v8.20240915", &jsdate);
        let r = c.get(&url).header("X-BackendAI-Version", "v8.20240915").header("X-BackendAI-Date", &jsdate)
            .header("Content-Type", "application/json").header("Authorization", auth.replace("BackendAI", "Sorna")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // Unknown session / URL.
        let (st, body) = problem(api(&sb, "GET", "/session/nope", None).await).await;
        assert_eq!((st, body["title"].as_str().unwrap()), (404, "Entity not found."));
        assert_eq!(body["error_code"], "session_read_not-found");
        let (st, _) = problem(api(&sb, "GET", "/no/such/route", None).await).await;
        assert_eq!(st, 404);

        // /auth/authorize
        let r = c.post(format!("{}/auth/authorize", sb.manager_url()))
            .json(&json!({"type": "keypair", "domain": "default", "username": sb.user().email, "password": sb.user().password}))
            .send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["secret_key"], sb.user().secret_key.as_str());
        let r = c.post(format!("{}/auth/authorize", sb.manager_url()))
            .json(&json!({"type": "keypair", "domain": "default", "username": sb.user().email, "password": "bad"}))
            .send().await.unwrap();
        assert_eq!(problem(r).await.0, 401);
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gql_apps_session_lookup_and_downloads() {
    within(40, async {
        let echo = echo_server().await;
        let sb = sandbox(0).await;
        let run = sb.create_session(SessionSpec::running("run").app("echo", echo)).await.unwrap();
        sb.create_session(SessionSpec::with_status("prep", Status::Preparing)).await.unwrap();
        let gone = sb.create_session(SessionSpec::with_status("gone", Status::Terminated)).await.unwrap();

        // keypair query, then the `backend.ai ps` query with its default status list.
        let v: Value = api(&sb, "POST", "/admin/gql", Some(&json!({"query": "query { keypair { user_id access_key secret_key is_active is_admin } }"}).to_string())).await.json().await.unwrap();
        assert_eq!(v["data"]["keypair"]["access_key"], sb.user().access_key.as_str());
        let q = "query($limit:Int!, $offset:Int!, $status: String) { compute_session_list(limit:$limit, offset:$offset, status:$status) { items { name id status service_ports } total_count } }";
        let body = json!({"query": q, "variables": {"limit": 20, "offset": 0, "status": "PENDING,PREPARING,RUNNING,ERROR"}});
        let v: Value = api(&sb, "POST", "/admin/gql", Some(&body.to_string())).await.json().await.unwrap();
        assert!(v["errors"].is_null());
        let list = &v["data"]["compute_session_list"];
        assert_eq!(list["total_count"], 2, "terminated session filtered out: {v}");
        let item = list["items"].as_array().unwrap().iter().find(|i| i["name"] == "run").unwrap();
        assert_eq!(item["id"], run.id.to_string());
        let ports: Value = serde_json::from_str(item["service_ports"].as_str().expect("JSONString")).unwrap();
        assert_eq!(ports[0]["name"], "sshd");
        assert_eq!(ports[0]["container_ports"], json!([2200]));
        assert_eq!(ports[0]["host_ports"], json!([run.sshd_port.unwrap()]));
        assert_eq!(ports[1]["name"], "echo");
        let prep = list["items"].as_array().unwrap().iter().find(|i| i["name"] == "prep").unwrap();
        assert!(prep["service_ports"].is_null());
        let v: Value = api(&sb, "POST", "/admin/gql", Some(r#"{"query":"{ nonsense }"}"#)).await.json().await.unwrap();
        assert!(!v["errors"].as_array().unwrap().is_empty());

        // apps
        let v: Value = api(&sb, "GET", "/stream/session/run/apps", None).await.json().await.unwrap();
        assert_eq!(v, json!([{"name":"sshd","protocol":"tcp","ports":[2200]},{"name":"echo","protocol":"tcp","ports":[echo.port()]}]));
        let v: Value = api(&sb, "GET", "/stream/session/prep/apps", None).await.json().await.unwrap();
        assert_eq!(v, json!([]));
        // terminated: not found by name, found by UUID.
        assert_eq!(api(&sb, "GET", "/stream/session/gone/apps", None).await.status(), 404);
        assert_eq!(api(&sb, "GET", &format!("/session/{}", gone.id), None).await.status(), 200);
        assert_eq!(api(&sb, "GET", &format!("/session/{}", run.id), None).await.status(), 200);
        // tcpproxy pre-upgrade errors.
        let e = manager_ws(&sb, "/stream/session/prep/tcpproxy?app=sshd").await.unwrap_err();
        assert_eq!(handshake_status(&e), 404);
        let (st, body) = problem(api(&sb, "GET", "/stream/session/run/tcpproxy?app=nope", None).await).await;
        assert_eq!((st, body["title"].as_str().unwrap(), body["msg"].as_str().unwrap()), (404, "No such app service.", "run:nope"));
        let e = manager_ws(&sb, "/stream/session/nope/tcpproxy?app=sshd").await.unwrap_err();
        assert_eq!(handshake_status(&e), 404);

        // download_single, query style, POST (26.x has no GET route: 405; older generations
        // in tests/generations.rs).
        let key = std::fs::read(run.id_container.as_ref().unwrap()).unwrap();
        let single = "/session/run/download_single?file=%2Fhome%2Fwork%2Fid_container";
        let r = api(&sb, "POST", single, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), key.as_slice());
        assert_eq!(api(&sb, "GET", single, None).await.status(), 405);
        assert!(String::from_utf8_lossy(&key).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let (st, body) = problem(api(&sb, "POST", "/session/run/download_single?file=missing", None).await).await;
        assert_eq!((st, body["title"].as_str().unwrap()), (400, "The file is not found."));
        assert_eq!(api(&sb, "POST", "/session/run/download_single?file=%2Fetc%2Fpasswd", None).await.status(), 500);
        assert_eq!(api(&sb, "POST", "/session/run/download_single?file=.ssh", None).await.status(), 400);
        // download (multipart/mixed tars), query style; 26.x ignores a JSON body (read up to
        // 25.x: tests/generations.rs).
        std::fs::write(run.home.join("b.txt"), b"bee").unwrap();
        let body_only = api(&sb, "POST", "/session/run/download", Some(r#"{"files":["b.txt"]}"#)).await;
        assert_eq!(body_only.status(), 400);
        for (path, body) in [
            ("/session/run/download?files=id_container&files=b.txt", None),
            ("/session/run/download?files=id_container&files=b.txt", Some(r#"{"files":["x"]}"#)),
        ] {
            let r = api(&sb, "POST", path, body).await;
            assert_eq!(r.status(), 200);
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            let boundary = ct.strip_prefix("multipart/mixed; boundary=").expect("multipart");
            let bytes = r.bytes().await.unwrap();
            let parts = split_multipart(&bytes, boundary);
            assert_eq!(parts.len(), 2);
            let mut a = tar::Archive::new(parts[1].as_slice());
            let mut e = a.entries().unwrap().next().unwrap().unwrap();
            assert_eq!(e.path().unwrap().to_str().unwrap(), "b.txt");
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert_eq!(s, "bee");
        }
        let many = "/session/run/download?files=a&files=b&files=c&files=d&files=e&files=f";
        assert_eq!(api(&sb, "POST", many, None).await.status(), 400);
        sb.shutdown().await;
    })
    .await
}

/// Part bodies of a multipart/mixed payload.
fn split_multipart(body: &[u8], boundary: &str) -> Vec<Vec<u8>> {
    let text = body.to_vec();
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &text[..];
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let hdr_end = find(rest, b"\r\n\r\n").unwrap();
        let headers = String::from_utf8_lossy(&rest[..hdr_end]).to_string();
        assert!(headers.contains("Content-Type: application/octet-stream"));
        let len: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let body_start = hdr_end + 4;
        parts.push(rest[body_start..body_start + len].to_vec());
        rest = &rest[body_start + len..];
    }
    parts
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_login_func_and_logout() {
    within(40, async {
        let sb = sandbox(1).await;
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let w = sb.webserver_url();
        // Not logged in.
        let (st, body) = problem(c.get(format!("{w}/func/session/demo-1")).send().await.unwrap()).await;
        assert_eq!((st, body["type"].as_str().unwrap()), (401, "https://api.backend.ai/probs/auth-failed"));
        let v: Value = c.get(format!("{w}/func/")).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["version"], "v9.20250722");
        let v: Value = c.post(format!("{w}/server/login-check")).send().await.unwrap().json().await.unwrap();
        assert_eq!(v, json!({"authenticated": false, "data": null, "session_id": null}));
        assert_eq!(c.post(format!("{w}/server/extend-login-session")).send().await.unwrap().status(), 401);
        // Missing fields, wrong password.
        let r = c.post(format!("{w}/server/login")).json(&json!({"username": "x"})).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let r = c.post(format!("{w}/server/login")).json(&json!({"username": sb.user().email, "password": "bad"})).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["authenticated"], false);
        assert_eq!(v["data"]["type"], "https://api.backend.ai/probs/auth-failed");
        // Login (plain JSON).
        let r = c.post(format!("{w}/server/login")).json(&json!({"username": sb.user().email, "password": sb.user().password})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.starts_with("AIOHTTP_SESSION=") && set_cookie.contains("HttpOnly") && set_cookie.contains("Path=/") && set_cookie.contains("Max-Age="), "{set_cookie}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({"authenticated": true, "data": {"access_key": sb.user().access_key, "role": "user", "status": "active"}}));
        let sid = set_cookie.split(';').next().unwrap().trim_start_matches("AIOHTTP_SESSION=").to_owned();
        assert_eq!(sid.len(), 32);
        // Already logged in.
        let r = c.post(format!("{w}/server/login")).json(&json!({"username": sb.user().email, "password": sb.user().password})).send().await.unwrap();
        let (st, body) = problem(r).await;
        assert_eq!((st, body["title"].as_str().unwrap()), (400, "You have already logged in."));
        let v: Value = c.post(format!("{w}/server/login-check")).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["authenticated"], true);
        assert_eq!(v["session_id"], sid.as_str());
        // /func proxied with the keypair (HMAC path), query re-signed as received.
        let r = c.get(format!("{w}/func/session/demo-1")).header("X-BackendAI-Version", "v8.20240915").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = c.get(format!("{w}/func/stream/session/demo-1/apps")).send().await.unwrap().json().await.unwrap();
        assert_eq!(v[0]["name"], "sshd");
        let v: Value = c.post(format!("{w}/func/admin/gql")).json(&json!({"query": "{ compute_session_list(limit: 10, offset: 0) { items { name } total_count } }"})).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["data"]["compute_session_list"]["total_count"], 1);
        let r = c.post(format!("{w}/func/session/demo-1/download_single?file=id_container")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // Manager errors pass through for HTTP.
        assert_eq!(c.get(format!("{w}/func/session/nope")).send().await.unwrap().status(), 404);
        // The session header works instead of the cookie.
        let plain = reqwest::Client::new();
        let r = plain.get(format!("{w}/func/session/demo-1")).header("X-BackendAI-SessionID", &sid).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // Extend.
        let r = c.post(format!("{w}/server/extend-login-session")).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], 201);
        assert!(chrono::DateTime::parse_from_rfc3339(v["expires"].as_str().unwrap()).is_ok());
        // Logout.
        let r = c.post(format!("{w}/server/logout")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert!(r.bytes().await.unwrap().is_empty());
        let r = plain.get(format!("{w}/func/session/demo-1")).header("X-BackendAI-SessionID", &sid).send().await.unwrap();
        assert_eq!(r.status(), 401);

        // Encrypted login body (fresh client, no cookie).
        let c2 = reqwest::Client::new();
        let body = json!({"username": sb.user().email, "password": sb.user().password}).to_string();
        let enc = bai_sandbox::encrypt_login_body(&format!("http://{}", sb.webserver_addr()), "ABCDEFGHIJKLMNOP", body.as_bytes()).unwrap();
        let r = c2.post(format!("{w}/server/login")).header("X-BackendAI-Encoded", "true").body(enc).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-backendai-sessionid"));

        // Too many failures.
        for _ in 0..10 {
            let r = c2.post(format!("{w}/server/login")).json(&json!({"username": "x@y", "password": "bad"})).send().await.unwrap();
            assert_eq!(r.status(), 401);
        }
        let r = c2.post(format!("{w}/server/login")).json(&json!({"username": "x@y", "password": "bad"})).send().await.unwrap();
        assert_eq!(r.status(), 429);
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_totp_login() {
    within(20, async {
        let secret = "JBSWY3DPEHPK3PXP";
        let sb = Sandbox::start(Config {
            totp_secret: Some(secret.into()),
            ..Config::default()
        })
        .await
        .unwrap();
        let c = reqwest::Client::new();
        let url = format!("{}/server/login", sb.webserver_url());
        let (email, pw) = (sb.user().email.clone(), sb.user().password.clone());
        let r = c
            .post(&url)
            .json(&json!({"username": email, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["authenticated"], false);
        assert_eq!(
            v["data"]["type"],
            "https://api.backend.ai/probs/require-totp-authentication"
        );
        assert_eq!(v["data"]["details"], "OTP not provided");
        let wrong = if bai_sandbox::totp_now(secret) == "000000" {
            "111111"
        } else {
            "000000"
        };
        let r = c
            .post(&url)
            .json(&json!({"username": email, "password": pw, "otp": wrong}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["authenticated"], false);
        let r = c
            .post(&url)
            .json(&json!({"username": email, "password": pw, "otp": bai_sandbox::totp_now(secret)}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["authenticated"], true);
        sb.shutdown().await;
    })
    .await
}

async fn expect_banner(ws: &mut Ws) {
    match next(ws).await {
        Got::Data(d) => assert!(
            d.starts_with(b"SSH-2.0-"),
            "{:?}",
            String::from_utf8_lossy(&d)
        ),
        other => panic!("expected the SSH banner, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpproxy_echo_sshd_and_webserver_websockets() {
    within(40, async {
        let echo = echo_server().await;
        let bye = greeter(b"bye").await;
        let sb = sandbox(0).await;
        sb.create_session(SessionSpec::running("s").app("echo", echo).app("bye", bye))
            .await
            .unwrap();

        // Echo round trips, small and large (multi-chunk), plus ping -> pong.
        let mut ws = manager_ws(&sb, "/stream/session/s/tcpproxy?app=echo")
            .await
            .unwrap();
        echo_round_trip(&mut ws, b"hello").await;
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        echo_round_trip(&mut ws, &big).await;
        ws.send(Message::Ping(b"p1".to_vec().into())).await.unwrap();
        loop {
            match next(&mut ws).await {
                Got::Pong(p) => {
                    assert_eq!(p, b"p1");
                    break;
                }
                Got::Data(_) => continue,
                other => panic!("expected pong, got {other:?}"),
            }
        }
        // Text frames are ignored.
        ws.send(Message::Text("ignored".into())).await.unwrap();
        echo_round_trip(&mut ws, b"after text").await;
        ws.close(None).await.unwrap();

        // TCP EOF -> data then close 1001.
        let mut ws = manager_ws(&sb, "/stream/session/s/tcpproxy?app=bye")
            .await
            .unwrap();
        match next(&mut ws).await {
            Got::Data(d) => assert_eq!(d, b"bye"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1001))));

        // The real sshd through the tunnel (by UUID too, and with `port=2200`).
        let id = sb.session("s").unwrap().id;
        let mut ws = manager_ws(
            &sb,
            &format!("/stream/session/{id}/tcpproxy?app=sshd&port=2200"),
        )
        .await
        .unwrap();
        expect_banner(&mut ws).await;

        // Webserver WebSockets: cookie, header, 401 when logged out, 502 on pre-upgrade errors.
        let sid = login_sid(&sb).await;
        let cookie = format!("AIOHTTP_SESSION={sid}");
        let mut ws = web_ws(
            &sb,
            "/func/stream/session/s/tcpproxy?app=sshd",
            &[("Cookie", &cookie), ("Content-Type", "application/json")],
        )
        .await
        .unwrap();
        expect_banner(&mut ws).await;
        let mut ws = web_ws(
            &sb,
            "/func/stream/session/s/tcpproxy?app=echo",
            &[("X-BackendAI-SessionID", &sid)],
        )
        .await
        .unwrap();
        echo_round_trip(&mut ws, b"via webserver").await;
        let e = web_ws(&sb, "/func/stream/session/s/tcpproxy?app=sshd", &[])
            .await
            .unwrap_err();
        assert_eq!(handshake_status(&e), 401);
        for bad in [
            "/func/stream/session/nope/tcpproxy?app=sshd",
            "/func/stream/session/s/tcpproxy?app=nope",
            "/func/stream/session/s/tcpproxy",
        ] {
            let e = web_ws(&sb, bad, &[("X-BackendAI-SessionID", &sid)])
                .await
                .unwrap_err();
            assert_eq!(handshake_status(&e), 502, "{bad}");
        }
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_knobs() {
    within(40, async {
        let echo = echo_server().await;
        let closed = free_addr();
        let sb = sandbox(0).await;
        sb.create_session(
            SessionSpec::running("f")
                .app("echo", echo)
                .app("closed", closed),
        )
        .await
        .unwrap();
        sb.create_session(SessionSpec::running("other").app("echo", echo))
            .await
            .unwrap();
        let sid = login_sid(&sb).await;

        // A port that really refuses -> 1013.
        let mut ws = manager_ws(&sb, "/stream/session/f/tcpproxy?app=closed")
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1013))));

        // refuse_port (per session) -> 1013; the other session is unaffected.
        let f = sb.session_faults("f").unwrap();
        f.set_refuse_port(true);
        let mut ws = manager_ws(&sb, "/stream/session/f/tcpproxy?app=echo")
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1013))));
        let mut ws = manager_ws(&sb, "/stream/session/other/tcpproxy?app=echo")
            .await
            .unwrap();
        echo_round_trip(&mut ws, b"fine").await;
        f.set_refuse_port(false);
        // Global refuse_port.
        sb.faults().set_refuse_port(true);
        let mut ws = manager_ws(&sb, "/stream/session/other/tcpproxy?app=echo")
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1013))));
        sb.faults().set_refuse_port(false);

        // drop_after: abrupt end, no close frame, at most N bytes in total.
        f.set_drop_after(Some(1000));
        let mut ws = manager_ws(&sb, "/stream/session/f/tcpproxy?app=echo")
            .await
            .unwrap();
        ws.send(Message::Binary(vec![7u8; 600].into()))
            .await
            .unwrap();
        let mut got = 0;
        loop {
            match next(&mut ws).await {
                Got::Data(d) => got += d.len(),
                Got::Gone => break,
                other => panic!("expected an abrupt drop, got {other:?}"),
            }
        }
        assert_eq!(got, 400);
        f.set_drop_after(None);

        // upgrade delay (through the webserver too).
        sb.faults()
            .set_upgrade_delay(Some(Duration::from_millis(400)));
        let t = Instant::now();
        let mut ws = web_ws(
            &sb,
            "/func/stream/session/f/tcpproxy?app=echo",
            &[("X-BackendAI-SessionID", &sid)],
        )
        .await
        .unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(380),
            "{:?}",
            t.elapsed()
        );
        echo_round_trip(&mut ws, b"late").await;
        sb.faults().set_upgrade_delay(None);

        // slow read: 100 KB at 100 KB/s takes most of a second.
        f.set_slow_read(Some(100_000));
        let mut ws = manager_ws(&sb, "/stream/session/f/tcpproxy?app=echo")
            .await
            .unwrap();
        let t = Instant::now();
        for _ in 0..5 {
            echo_round_trip(&mut ws, &[1u8; 20_000]).await;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(700),
            "{:?}",
            t.elapsed()
        );
        f.set_slow_read(None);

        // fail_route, global: manager path and webserver path.
        sb.faults().set_fail_route(Some(("/session".into(), 503)));
        assert_eq!(api(&sb, "GET", "/session/f", None).await.status(), 503);
        let plain = reqwest::Client::new();
        let r = plain
            .get(format!("{}/func/session/f", sb.webserver_url()))
            .header("X-BackendAI-SessionID", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        sb.faults().set_fail_route(Some(("/stream".into(), 500)));
        let e = manager_ws(&sb, "/stream/session/f/tcpproxy?app=echo")
            .await
            .unwrap_err();
        assert_eq!(handshake_status(&e), 500);
        let e = web_ws(
            &sb,
            "/func/stream/session/f/tcpproxy?app=echo",
            &[("X-BackendAI-SessionID", &sid)],
        )
        .await
        .unwrap_err();
        assert_eq!(
            handshake_status(&e),
            502,
            "pre-upgrade errors become 502 through the webserver"
        );
        sb.faults()
            .set_fail_route(Some(("/server/login".into(), 500)));
        let r = plain
            .post(format!("{}/server/login", sb.webserver_url()))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        sb.faults().set_fail_route(None);
        // fail_route, per session.
        f.set_fail_route(Some(("/session".into(), 502)));
        assert_eq!(api(&sb, "GET", "/session/f", None).await.status(), 502);
        assert_eq!(api(&sb, "GET", "/session/other", None).await.status(), 200);
        f.set_fail_route(None);

        // clock skew: a correct clock now fails, a matching skewed one passes.
        sb.faults().set_clock_skew(3600);
        assert_eq!(api(&sb, "GET", "/session/f", None).await.status(), 400);
        assert_eq!(
            api_with(&sb, "GET", "/session/f", None, 3600, VERSION)
                .await
                .status(),
            200
        );
        sb.faults().set_clock_skew(0);
        assert_eq!(api(&sb, "GET", "/session/f", None).await.status(), 200);
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ssh_login_and_status_changes() {
    within(40, async {
        let sb = sandbox(1).await;
        let s = sb.session("demo-1").unwrap();
        assert_eq!(s.status, Status::Running);
        assert_eq!(s.status.to_string(), "RUNNING");
        let port = s.sshd_port.unwrap();
        let out = SshTarget::new(port, s.id_container.as_ref().unwrap(), s.account.clone())
            .ssh(&["echo", "ok"])
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "ssh stderr: {}", String::from_utf8_lossy(&out.stderr));

        // A session made with the user's own authorized_keys has no id_container.
        let own = sb.create_session(SessionSpec { authorized_keys: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n".into()), ..SessionSpec::running("own") }).await.unwrap();
        assert!(own.id_container.is_none());
        assert!(own.sshd_port.is_some());
        assert!(matches!(sb.create_session(SessionSpec::running("own")).await, Err(bai_sandbox::Error::SessionExists(_))));

        // An open tunnel is closed (1001) when the session stops; its sshd dies.
        let mut ws = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=sshd").await.unwrap();
        expect_banner(&mut ws).await;
        let pids = sb.sshd_pids();
        assert_eq!(pids.len(), 2);
        sb.set_status("demo-1", Status::Preparing).await.unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1001))));
        assert_eq!(sb.sshd_pids().len(), 1);
        assert!(sb.session("demo-1").unwrap().sshd_port.is_none());
        let e = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=sshd").await.unwrap_err();
        assert_eq!(handshake_status(&e), 404);
        // Back to RUNNING: a new sshd.
        sb.set_status("demo-1", Status::Running).await.unwrap();
        let mut ws = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=sshd").await.unwrap();
        expect_banner(&mut ws).await;
        // Terminate: not found by name, name reusable.
        sb.terminate("demo-1").await.unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1001))));
        assert_eq!(api(&sb, "GET", "/session/demo-1", None).await.status(), 404);
        sb.create_session(SessionSpec::with_status("demo-1", Status::Pending)).await.unwrap();
        assert_eq!(api(&sb, "GET", "/session/demo-1", None).await.status(), 200);

        let all = sb.sshd_pids();
        sb.shutdown().await;
        for p in pids.into_iter().chain(all) {
            assert!(pid_gone(p), "sshd {p} survived");
        }
    })
    .await
}

#[test]
fn no_sshd_survives_a_panicking_test() {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let sb = sandbox(2).await;
            tx.send(sb.sshd_pids()).unwrap();
            panic!("deliberate panic with a live sandbox");
        })
    });
    let pids = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // The panicking thread must finish (its Drop kills everything) within a bound, too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "test timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.join().is_err());
    assert_eq!(pids.len(), 2);
    for p in pids {
        assert!(pid_gone(p), "sshd {p} survived the panic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_json_and_stops_cleanly() {
    within(40, async {
        use tokio::io::AsyncBufReadExt as _;
        let echo = echo_server().await;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bai-sandbox"))
            .args([
                "--port",
                "0",
                "--sessions",
                "1",
                "--json",
                "--app",
                &format!("echo={echo}"),
                "--clock-skew-secs",
                "-5",
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(&first).unwrap();
        for k in [
            "webserver",
            "manager",
            "email",
            "password",
            "access_key",
            "secret_key",
        ] {
            assert!(v[k].is_string(), "{k} in {v}");
        }
        let sessions = v["sessions"].as_array().unwrap();
        let names: Vec<&str> = sessions
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"demo-1") && names.contains(&"demo-preparing"),
            "{names:?}"
        );
        let demo = sessions.iter().find(|s| s["name"] == "demo-1").unwrap();
        assert_eq!(demo["status"], "RUNNING");
        assert!(demo["id"].is_string() && demo["account"].is_string());
        let port = demo["sshd_port"].as_u64().unwrap();
        // The sshd is up; SIGTERM stops everything.
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port as u16))
            .await
            .is_ok());
        let pid = child.id().unwrap();
        let st = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{status}");
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port as u16))
                .await
                .is_err(),
            "sshd still listening"
        );
    })
    .await
}
