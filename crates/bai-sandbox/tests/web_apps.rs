//! The built-in apps of demo sessions (`jupyter`, `jupyterlab`, `tcp-echo`): listed in
//! `service_ports` and `/apps` as the real server lists them, reachable through `tcpproxy` and
//! `httpproxy` (signed, and through the webserver's `/func/stream/`), hidden when not RUNNING.

#![allow(clippy::unwrap_used)]

mod common;

use bai_sandbox::Status;
use bai_testkit::sandbox::demo as sandbox;
use common::*;
use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Sends an HTTP GET for `path` through the WebSocket and returns the whole answer (the app
/// closes after it: `Connection: close`).
fn response_complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .is_some_and(|n| body.len() >= n)
}

async fn http_get(ws: &mut Ws, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ws.send(Message::Binary(req.into_bytes().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        // Through the webserver the app's close is not relayed (as the real one does not):
        // a response complete by its Content-Length ends the read.
        if response_complete(&got) {
            break;
        }
        match next(ws).await {
            Got::Data(d) => got.extend(d),
            Got::Pong(_) => {}
            Got::Close(code) => {
                assert_eq!(code, Some(1001), "the app's EOF closes with 1001");
                break;
            }
            Got::Gone => break,
        }
    }
    String::from_utf8(got).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sessions_serve_jupyter_through_the_stream_endpoints() {
    within(60, async {
        let sb = sandbox(1).await;
        let info = sb.session("demo-1").unwrap();
        let jupyter = info.web_apps.iter().find(|a| a.name == "jupyter").unwrap();

        // service_ports, as the real server reports it (a JSONString).
        let q = "{ compute_session_list(limit: 10, offset: 0) { items { name service_ports } total_count } }";
        let v: Value = api(&sb, "POST", "/admin/gql", Some(&json!({"query": q}).to_string()))
            .await
            .json()
            .await
            .unwrap();
        let ports = v["data"]["compute_session_list"]["items"][0]["service_ports"]
            .as_str()
            .unwrap();
        let ports: Value = serde_json::from_str(ports).unwrap();
        let names: Vec<&str> = ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sshd", "jupyter", "jupyterlab", "tcp-echo"]);
        assert_eq!(
            ports[1],
            json!({"name": "jupyter", "protocol": "http", "container_ports": [8081],
                   "host_ports": [jupyter.addr.port()], "is_inference": false})
        );
        assert_eq!(ports[3]["protocol"], "tcp");
        let apps: Value = api(&sb, "GET", "/stream/session/demo-1/apps", None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            apps[2],
            json!({"name": "jupyterlab", "protocol": "http", "ports": [8090]})
        );

        // The page, through tcpproxy (what bai uses) and httpproxy (the WebUI desktop's choice
        // for HTTP apps).
        for endpoint in ["tcpproxy", "httpproxy"] {
            let mut ws = manager_ws(&sb, &format!("/stream/session/demo-1/{endpoint}?app=jupyter"))
                .await
                .unwrap();
            let page = http_get(&mut ws, "/tree").await;
            assert!(page.starts_with("HTTP/1.1 200"), "{page}");
            assert!(page.contains("<title>Jupyter (bai sandbox)</title>"), "{page}");
            assert!(page.contains("demo-1") && page.contains("/tree"), "{page}");
        }
        let mut ws = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=jupyterlab")
            .await
            .unwrap();
        let page = http_get(&mut ws, "/lab").await;
        assert!(page.contains("<title>JupyterLab (bai sandbox)</title>"), "{page}");
        // Session mode: through the webserver.
        let sid = login_sid(&sb).await;
        let mut ws = web_ws(
            &sb,
            "/func/stream/session/demo-1/httpproxy?app=jupyter",
            &[("X-BackendAI-SessionID", &sid)],
        )
        .await
        .unwrap();
        assert!(http_get(&mut ws, "/").await.contains("Jupyter (bai sandbox)"));
        // The TCP app echoes.
        let mut ws = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=tcp-echo")
            .await
            .unwrap();
        echo_round_trip(&mut ws, b"hello through tcp-echo").await;

        // Not RUNNING: no service ports, no app.
        sb.set_status("demo-1", Status::Preparing).await.unwrap();
        let e = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=jupyter")
            .await
            .unwrap_err();
        assert_eq!(handshake_status(&e), 404);
        sb.shutdown().await;
    })
    .await;
}
