//! A session's other apps through the IPC path: the session row lists them, `open_app` opens
//! an HTTP app (its URL, built in Rust, goes to the opener: here the test log) and a TCP app,
//! unknown apps are `AppNotFound`, and the tunnels panel lists and stops them.

use serde_json::{json, Value};

use super::{harness, session_login, Server};
use crate::commands::apps::TEST_OPENER_LOG;

/// Fetches `url` (plain HTTP to the local tunnel) on the sandbox's runtime.
fn fetch(server: &Server, url: &str) -> String {
    server.rt.block_on(bai_testkit::within(30, async {
        reqwest::get(url)
            .await
            .expect("the app answers through the tunnel")
            .text()
            .await
            .expect("a text page")
    }))
}

#[test]
fn open_app_serves_http_apps_in_the_browser_and_tcp_apps_as_host_port() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    // The opener log (open_url in test builds writes the URL there instead of opening it).
    let log = h.dir.path().join("opener.log");
    *TEST_OPENER_LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(log.clone());
    session_login(&h, sb, &sb.user().password, false).expect("login");

    // The row lists the session's apps, sshd included.
    let list = h.ok("list_sessions", json!({}));
    let s1 = list
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "s1"))
        .expect("s1 listed")
        .clone();
    assert_eq!(
        s1["apps"],
        json!([{"name": "sshd", "protocol": "tcp"}, {"name": "jupyter", "protocol": "http"},
               {"name": "jupyterlab", "protocol": "http"}, {"name": "tcp-echo", "protocol": "tcp"}])
    );

    // An HTTP app: a tunnel, and its URL handed to the opener.
    let t = h.ok("open_app", json!({"session": "s1", "name": "jupyterlab"}));
    let port = t["port"].as_u64().expect("a port");
    let url = format!("http://127.0.0.1:{port}/lab");
    assert_eq!(
        t,
        json!({"session": "s1", "app": "jupyterlab", "protocol": "http", "host": "127.0.0.1",
               "port": port, "url": url})
    );
    let opened = std::fs::read_to_string(&log).expect("the opener log");
    assert_eq!(opened.lines().collect::<Vec<_>>(), [url.as_str()]);
    let page = fetch(&server, &url);
    assert!(
        page.contains("<title>JupyterLab (bai sandbox)</title>"),
        "{page}"
    );
    assert!(page.contains("s1") && page.contains("/lab"), "{page}");
    // Opening it again reuses the tunnel (and opens the page again).
    let again = h.ok("open_app", json!({"session": "s1", "name": "jupyterlab"}));
    assert_eq!(again["port"], t["port"]);
    assert_eq!(
        std::fs::read_to_string(&log)
            .map(|l| l.lines().count())
            .ok(),
        Some(2)
    );

    // A TCP app: host and port, nothing opened.
    let e = h.ok("open_app", json!({"session": "s1", "name": "tcp-echo"}));
    assert_eq!(
        (&e["protocol"], &e["host"], &e["url"]),
        (&json!("tcp"), &json!("127.0.0.1"), &Value::Null)
    );
    let echo_port = e["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("a port");
    server.rt.block_on(bai_testkit::within(30, async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", echo_port))
            .await
            .expect("connect");
        s.write_all(b"echo me").await.expect("write");
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.expect("the echo");
        assert_eq!(&got, b"echo me");
    }));
    assert_eq!(
        std::fs::read_to_string(&log)
            .map(|l| l.lines().count())
            .ok(),
        Some(2)
    );

    // Unknown apps and sessions that do not run.
    let err = h.err("open_app", json!({"session": "s1", "name": "nope"}));
    assert_eq!(err["code"], "AppNotFound", "{err}");
    let err = h.err("open_app", json!({"session": "prep", "name": "jupyter"}));
    assert_ne!(err["code"], "Unknown", "{err}");

    // The panel lists both with their app; stopping one leaves the other.
    let list = h.ok("list_tunnels", json!({}));
    let rows = list.as_array().expect("a list");
    let apps: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["app"].as_str().unwrap_or(""),
                r["protocol"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(apps, [("jupyterlab", "http"), ("tcp-echo", "tcp")]);
    assert_eq!(rows[0]["url"], json!(url));
    h.ok(
        "stop_tunnel",
        json!({"session": "s1", "name": "jupyterlab"}),
    );
    let list = h.ok("list_tunnels", json!({}));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["app"], "tcp-echo");
    *TEST_OPENER_LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}
