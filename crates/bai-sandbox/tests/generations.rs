//! The sandbox plays each Backend.AI generation (`Config::generation`, `--emulate`): the
//! switches of `docs/compatibility.md`, checked on the wire with signed requests, one sandbox
//! per generation (sessions without sshd, so the whole file stays fast).

mod common;

use bai_sandbox::{Config, Generation, Sandbox, SessionSpec, Status};
use common::{api_with, login_sid, within};
use serde_json::{json, Value};

async fn start(generation: Generation) -> Sandbox {
    let sb = Sandbox::start(Config {
        generation,
        ..Config::default()
    })
    .await
    .expect("sandbox");
    for name in ["box-1", "box-2", "alpha"] {
        sb.create_session(SessionSpec::with_status(name, Status::Preparing))
            .await
            .expect("session");
    }
    sb
}

async fn call(sb: &Sandbox, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let v = sb.generation().api_version();
    let r = api_with(sb, method, path, body, 0, v).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_negotiation() {
    within(120, async {
        for g in Generation::ALL {
            let sb = start(g).await;
            let root: Value = reqwest::get(format!("{}/", sb.manager_url()))
                .await
                .expect("GET /")
                .json()
                .await
                .expect("json");
            assert_eq!(root["version"], g.api_version(), "{g}");
            assert_eq!(root["manager"], g.manager_version(), "{g}");
            // The generation's own version and older ones are accepted; newer are refused.
            for (v, ok) in [
                (g.api_version(), true),
                ("v6.20220615", true),
                ("v9.20250722", g.api_version() == "v9.20250722"),
            ] {
                let r = api_with(&sb, "GET", "/stream/session/alpha/apps", None, 0, v).await;
                assert_eq!(r.status().is_success(), ok, "{g} {v}: {}", r.status());
                if !ok {
                    let p: Value = r.json().await.expect("problem");
                    assert_eq!(p["msg"], "Unsupported API version.", "{g}");
                }
            }
            sb.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lookup_per_generation() {
    within(120, async {
        for g in Generation::ALL {
            let sb = start(g).await;
            let alpha = sb.session("alpha").expect("alpha").id.to_string();
            // An exact name works everywhere.
            let (s, _) = call(&sb, "GET", "/stream/session/alpha/apps", None).await;
            assert_eq!(s, 200, "{g}");
            // A name prefix: one match on 22.09, too many for "box", none elsewhere.
            let (s, p) = call(&sb, "GET", "/stream/session/alp/apps", None).await;
            let (s2, p2) = call(&sb, "GET", "/stream/session/box/apps", None).await;
            if g == Generation::G22_09 {
                assert_eq!(s, 200, "{g}: {p}");
                assert_eq!(s2, 404, "{g}");
                assert_eq!(
                    p2["type"],
                    "https://api.backend.ai/probs/too-many-sessions-matched"
                );
                assert_eq!(p2["data"]["matches"].as_array().map(Vec::len), Some(2));
                // A UUID prefix matches too.
                let (s, _) = call(&sb, "GET", &format!("/session/{}", &alpha[..8]), None).await;
                assert_eq!(s, 200);
            } else {
                assert_eq!((s, s2), (404, 404), "{g}");
                let title = if g.entity_not_found() {
                    "Entity not found."
                } else {
                    "No such session."
                };
                assert_eq!(p["title"], title, "{g}");
            }
            // A UUID: refused in stream paths by the 26.4.4 release candidates only.
            let (s, _) = call(&sb, "GET", &format!("/stream/session/{alpha}/apps"), None).await;
            let refused = g == Generation::G26_4Rc;
            assert_eq!(s, if refused { 404 } else { 200 }, "{g}");
            let (s, _) = call(&sb, "GET", &format!("/session/{alpha}"), None).await;
            assert_eq!(s, 200, "{g}: non-stream paths take UUIDs");
            // error_code only from 25.x on.
            let (_, p) = call(&sb, "GET", "/session/nope", None).await;
            assert_eq!(
                p.get("error_code").is_some(),
                g.has_error_code(),
                "{g}: {p}"
            );
            sb.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_schema_and_downloads_per_generation() {
    within(120, async {
        let list = json!({"query": "query { compute_session_list(limit:10, offset:0) { items { name priority } total_count } }"}).to_string();
        let nodes = json!({"query": "query { compute_session_nodes(first:10) { edges { node { name row_id } } count } }"}).to_string();
        for g in Generation::ALL {
            let sb = start(g).await;
            let (_, v) = call(&sb, "POST", "/admin/gql", Some(&list)).await;
            let priority = v["errors"].is_null();
            assert_eq!(priority, g >= Generation::G24_09, "{g}: {v}");
            let (_, v) = call(&sb, "POST", "/admin/gql", Some(&nodes)).await;
            assert_eq!(v["errors"].is_null(), g.has_compute_session_nodes(), "{g}: {v}");
            if g.has_compute_session_nodes() {
                assert_eq!(v["data"]["compute_session_nodes"]["count"], 3);
            }

            let home = sb.session("alpha").expect("alpha").home;
            std::fs::write(home.join("f.txt"), b"hello").expect("write");
            let q = "/session/alpha/download_single?file=f.txt";
            let (get, _) = call(&sb, "GET", q, None).await;
            let (post, _) = call(&sb, "POST", q, None).await;
            let expected = match g {
                Generation::G22_09 | Generation::G23_09 => (200, 405),
                Generation::G26_4Rc | Generation::G26 => (405, 200),
                _ => (400, 200),
            };
            assert_eq!((get, post), expected, "{g}");
            // The JSON body is read up to 25.x; 26.x reads the query only.
            let verb = if g <= Generation::G23_09 { "GET" } else { "POST" };
            let (s, _) = call(
                &sb,
                verb,
                "/session/alpha/download",
                Some(r#"{"files":["f.txt"]}"#),
            )
            .await;
            assert_eq!(s == 200, g.download_reads_body(), "{g}: {s}");
            let (s, _) = call(&sb, verb, "/session/alpha/download?files=f.txt", None).await;
            assert_eq!(s, 200, "{g}");
            sb.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_per_generation() {
    within(120, async {
        for g in Generation::ALL {
            let sb = Sandbox::start(Config {
                generation: g,
                totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
                ..Config::default()
            })
            .await
            .expect("sandbox");
            let web = sb.webserver_url();
            let c = reqwest::Client::new();
            let login = |body: Value| c.post(format!("{web}/server/login")).json(&body).send();
            let u = sb.user().clone();
            let r = login(json!({"username": u.email, "password": "wrong"}))
                .await
                .expect("login");
            let expected = if g.login_failure_keeps_status() {
                401
            } else {
                200
            };
            assert_eq!(r.status().as_u16(), expected, "{g}");
            let v: Value = r.json().await.expect("json");
            assert_eq!(v["authenticated"], false);
            let r = login(json!({"username": u.email, "password": u.password}))
                .await
                .expect("login");
            assert_eq!(r.status().as_u16(), 200, "{g}");
            let v: Value = r.json().await.expect("json");
            assert_eq!(v["data"]["details"], "OTP not provided", "{g}: {v}");
            let slug = if g.typed_totp() {
                "require-totp-authentication"
            } else {
                "auth-failed"
            };
            assert_eq!(
                v["data"]["type"],
                format!("https://api.backend.ai/probs/{slug}"),
                "{g}"
            );
            let code = bai_sandbox::totp_now("JBSWY3DPEHPK3PXP");
            let r = login(json!({"username": u.email, "password": u.password, "otp": code}))
                .await
                .expect("login");
            let sid = r.headers()["x-backendai-sessionid"]
                .to_str()
                .expect("sid")
                .to_owned();
            let r = c
                .post(format!("{web}/server/extend-login-session"))
                .header("X-BackendAI-SessionID", &sid)
                .send()
                .await
                .expect("extend");
            let expected = if g.has_extend_login_session() {
                201
            } else {
                404
            };
            assert_eq!(r.status().as_u16(), expected, "{g}");
            let root: Value = c
                .get(format!("{web}/func/"))
                .send()
                .await
                .expect("func")
                .json()
                .await
                .expect("json");
            assert_eq!(root["version"], g.api_version(), "{g}");
            sb.shutdown().await;
        }
        let _ = login_sid;
    })
    .await;
}

/// The answers of the real Backend.AI 26.9.6 (docs/compatibility.md, "The real manager"), as
/// the newest generation plays them: close frames without a reason, the unknown session, the
/// webserver's 502 and 400, the tcpproxy's schema errors, logout's 200, `GET /` and the
/// rate-limit headers. Where a generation keeps its older answer, that is checked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_generation_answers_as_the_real_26_9_6() {
    use common::{greeter, manager_ws, web_ws};
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    /// The next close frame (code, reason), skipping data and pings.
    async fn close_of(ws: &mut common::Ws) -> (u16, String) {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(e) => panic!("no close frame: {e}"),
            }
        }
        panic!("no close frame: stream ended")
    }
    fn refused(r: Result<common::Ws, WsError>) -> (u16, Value) {
        match r {
            Err(WsError::Http(resp)) => {
                let body = resp.body().clone().unwrap_or_default();
                let v = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                (resp.status().as_u16(), v)
            }
            Err(e) => panic!("expected an HTTP refusal, got {e}"),
            Ok(_) => panic!("expected a refusal, got a WebSocket"),
        }
    }
    const PROBS: &str = "https://api.backend.ai/probs/";

    within(120, async {
        let sb = Sandbox::start(Config::default()).await.expect("sandbox");
        let bye = greeter(b"bye").await;
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        sb.create_session(
            SessionSpec::running("real")
                .app("bye", bye)
                .app("closed", closed),
        )
        .await
        .expect("session");

        // 2. Close frames: codes only, empty reasons (target EOF 1001, refused 1013, the
        // session stopped 1001).
        let mut ws = manager_ws(&sb, "/stream/session/real/tcpproxy?app=bye")
            .await
            .expect("ws");
        assert_eq!(close_of(&mut ws).await, (1001, String::new()));
        let mut ws = manager_ws(&sb, "/stream/session/real/tcpproxy?app=closed")
            .await
            .expect("ws");
        assert_eq!(close_of(&mut ws).await, (1013, String::new()));

        // 3. The unknown session: the repository layer's entity-not-found.
        let entity = json!({"type": format!("{PROBS}entity-not-found"), "title": "Entity not found.",
                            "error_code": "session_read_not-found",
                            "msg": "No SessionRow matches the given key"});
        for path in ["/session/nope", "/stream/session/nope/apps"] {
            assert_eq!(call(&sb, "GET", path, None).await, (404, entity.clone()), "{path}");
        }
        let r = manager_ws(&sb, "/stream/session/nope/tcpproxy?app=sshd").await;
        assert_eq!(refused(r), (404, entity.clone()));

        // 5. The tcpproxy's query, checked by `StreamProxyRequest`.
        for (q, field, says) in [
            ("", "app", "Field required [type=missing, input_value={}, input_type=dict]"),
            (
                "?app=sshd&port=80",
                "port",
                "Input should be greater than or equal to 1024 [type=greater_than_equal, \
                 input_value='80', input_type=str]",
            ),
        ] {
            let (st, p) = refused(manager_ws(&sb, &format!("/stream/session/real/tcpproxy{q}")).await);
            assert_eq!(st, 400, "{q}: {p}");
            assert_eq!(p["type"], format!("{PROBS}generic-bad-request"), "{q}");
            assert_eq!(p["title"], "Invalid or Missing API Parameters.", "{q}");
            assert_eq!(p["error_code"], "api_parsing_invalid-parameters", "{q}");
            let msg = p["msg"].as_str().expect("msg");
            assert!(
                msg.starts_with(&format!(
                    "Schema validation failed. (1 validation error for StreamProxyRequest\n{field}\n  {says}"
                )),
                "{q}: {msg}"
            );
        }

        // 4. Session mode: any refusal of the manager's is the webserver's opaque 502.
        let sid = common::login_sid(&sb).await;
        let hdr = [("X-BackendAI-SessionID", sid.as_str())];
        let unreachable = json!({"type": format!("{PROBS}bad-gateway"),
                                 "title": "The proxy target server is inaccessible.",
                                 "error_code": "api_request_unreachable"});
        for q in ["nope/tcpproxy?app=sshd", "real/tcpproxy?app=nope", "real/tcpproxy"] {
            let r = web_ws(&sb, &format!("/func/stream/session/{q}"), &hdr).await;
            assert_eq!(refused(r), (502, unreachable.clone()), "{q}");
        }

        // 6. No Upgrade header through the webserver: aiohttp's text/plain 400.
        let c = reqwest::Client::new();
        let r = c
            .get(format!("{}/func/stream/session/real/tcpproxy?app=bye", sb.webserver_url()))
            .header("X-BackendAI-SessionID", &sid)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 400);
        let ct = r.headers()["content-type"].to_str().expect("ct").to_owned();
        assert!(ct.starts_with("text/plain"), "{ct}");
        assert_eq!(
            r.text().await.expect("text"),
            "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to \"WebSocket\"."
        );
        // `…/apps` stays an HTTP route.
        let r = c
            .get(format!("{}/func/stream/session/real/apps", sb.webserver_url()))
            .header("X-BackendAI-SessionID", &sid)
            .send()
            .await
            .expect("apps");
        assert_eq!(r.status().as_u16(), 200);

        // 8. `GET /` says 26.9.6; every manager answer carries the rate-limit headers, the
        // count going down per caller.
        let r = reqwest::get(format!("{}/", sb.manager_url())).await.expect("GET /");
        let h = r.headers().clone();
        let root: Value = r.json().await.expect("json");
        assert_eq!(root, json!({"version": "v9.20250722", "manager": "26.9.6"}));
        assert_eq!(h["x-ratelimit-limit"], "1000");
        assert_eq!(h["x-ratelimit-window"], "900");
        let remaining = |h: &reqwest::header::HeaderMap| -> u64 {
            h["x-ratelimit-remaining"].to_str().expect("text").parse().expect("number")
        };
        let signed = |path: &'static str| {
            let sb = &sb;
            async move { common::api(sb, "GET", path, None).await.headers().clone() }
        };
        let (a, b) = (signed("/stream/session/real/apps").await, signed("/session/nope").await);
        assert_eq!(a["x-ratelimit-limit"], "30000");
        assert_eq!(remaining(&a), remaining(&b) + 1, "the 404 counts too");
        let reset: u64 = b["x-ratelimit-reset"].to_str().expect("t").parse().expect("n");
        assert!((1..=900).contains(&reset), "{reset}");
        // Through the webserver as well.
        let r = c
            .get(format!("{}/func/session/real", sb.webserver_url()))
            .header("X-BackendAI-SessionID", &sid)
            .send()
            .await
            .expect("func");
        assert!(r.headers().contains_key("x-ratelimit-remaining"));

        // 2 (end). The session stops under an open tunnel: 1001, no reason.
        sb.create_session(SessionSpec::running("echoes").app("echo", common::echo_server().await))
            .await
            .expect("session");
        let mut ws = manager_ws(&sb, "/stream/session/echoes/tcpproxy?app=echo")
            .await
            .expect("ws");
        sb.terminate("echoes").await.expect("terminate");
        assert_eq!(close_of(&mut ws).await, (1001, String::new()));

        // 7. Logout: 200.
        let r = c
            .post(format!("{}/server/logout", sb.webserver_url()))
            .header("X-BackendAI-SessionID", &sid)
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status().as_u16(), 200);
        sb.shutdown().await;

        // Older generations keep theirs: `object-not-found` for the session, before 26.x the
        // `invalid-api-params` of `check_api_params`.
        let sb = start(Generation::G25).await;
        let (st, p) = call(&sb, "GET", "/session/nope", None).await;
        assert_eq!((st, &p["title"]), (404, &json!("No such session.")));
        assert_eq!(p["type"], format!("{PROBS}object-not-found"));
        let (st, p) = refused(manager_ws(&sb, "/stream/session/alpha/tcpproxy").await);
        assert_eq!(st, 400);
        assert_eq!(p["type"], format!("{PROBS}invalid-api-params"));
        assert_eq!(p["msg"], "Missing parameter: app");
        sb.shutdown().await;
        // Before 25.x the webserver's 502 has no `error_code` either.
        let sb = start(Generation::G24_09).await;
        let sid = common::login_sid(&sb).await;
        let hdr = [("X-BackendAI-SessionID", sid.as_str())];
        let r = web_ws(&sb, "/func/stream/session/nope/tcpproxy?app=sshd", &hdr).await;
        let mut old = unreachable;
        if let Some(o) = old.as_object_mut() {
            o.remove("error_code");
        }
        assert_eq!(refused(r), (502, old));
        sb.shutdown().await;
    })
    .await;
}
