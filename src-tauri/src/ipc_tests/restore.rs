//! Tunnels across a restart, through the IPC path: the tunnels open when the app quits come
//! back at the next start on the same ports (another one, said so, when a port is taken) once
//! the saved login is restored; a session that ended in between is dropped with the reason;
//! "Reopen tunnels at start" off reopens nothing. And a tunnel outlives a restart of the
//! server behind it: new connections work again without reopening it.

use std::time::Duration;

use bai_sandbox::SessionSpec;
use serde_json::{json, Value};

use super::{harness, harness_with, port_of, session_login, Harness, Server};

/// Reads the first line through the tunnel at `port`.
fn banner(port: u16) -> std::io::Result<String> {
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(tcp), &mut line)?;
    Ok(line)
}

fn assert_ssh(port: u16) {
    let b = banner(port).unwrap_or_else(|e| panic!("port {port}: {e}"));
    assert!(b.starts_with("SSH-2.0-"), "port {port}: {b:?}");
}

/// Quits the app as `RunEvent::Exit` does and starts a new one on the same config dir.
fn restart(h: Harness) -> Harness {
    crate::stop_tunnels_on_exit(h._app.handle());
    let Harness { _app, window, dir } = h;
    drop(window);
    drop(_app);
    harness_with(dir, None)
}

fn sessions_of(list: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .as_array()
        .map(|l| {
            l.iter()
                .map(|t| {
                    (
                        t["session"].as_str().unwrap_or("").to_owned(),
                        t["app"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn tunnels_open_at_quit_come_back_at_the_next_start() {
    let server = Server::start();
    let sb = server.sb();
    server
        .rt
        .block_on(async {
            sb.create_session(SessionSpec::running("s2")).await?;
            sb.create_session(SessionSpec::running("s3")).await
        })
        .expect("s2 and s3");
    let h = harness();
    session_login(&h, sb, &sb.user().password, true).expect("login");
    let p1 = port_of(&h.ok("open_ssh", json!({"session": "s1"})));
    let p2 = port_of(&h.ok("open_ssh", json!({"session": "s2"})));
    let p3 = port_of(&h.ok("open_ssh", json!({"session": "s3"})));
    let echo = port_of(&h.ok("open_app", json!({"session": "s1", "name": "tcp-echo"})));

    let h = restart(h);
    for p in [p1, p2, p3, echo] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", p)).is_err(),
            "port {p} closed at exit"
        );
    }
    let saved = std::fs::read_to_string(h.dir.path().join(crate::desktop::DESKTOP_SETTINGS_FILE))
        .expect("desktop.json");
    assert!(
        saved.contains("lastTunnels") && !saved.contains(&sb.user().password),
        "{saved}"
    );
    // In between: s3 ends, and another program takes s2's port.
    server
        .rt
        .block_on(sb.terminate("s3"))
        .expect("terminate s3");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", p2)).expect("take s2's port");

    // Nothing before the saved login is restored.
    assert_eq!(
        h.ok("restore_tunnels", json!({})),
        json!({"reopened": [], "dropped": []})
    );
    assert!(h.ok("restore_login", json!({})).is_object());
    let r = h.ok("restore_tunnels", json!({}));
    let reopened = r["reopened"].as_array().expect("reopened");
    assert_eq!(reopened.len(), 3, "{r}");
    let find = |s: &str, app: &str| {
        reopened
            .iter()
            .find(|t| t["session"] == s && t["app"] == app)
            .unwrap_or_else(|| panic!("{s}/{app} reopened: {r}"))
            .clone()
    };
    let s1 = find("s1", "sshd");
    assert_eq!((port_of(&s1), &s1["movedFrom"]), (p1, &Value::Null), "{s1}");
    assert_eq!(port_of(&find("s1", "tcp-echo")), echo);
    let s2 = find("s2", "sshd");
    let new2 = port_of(&s2);
    assert_ne!(new2, p2);
    assert_eq!(s2["movedFrom"], json!(p2), "{s2}");
    let note = s2["note"].as_str().expect("a note");
    assert!(
        note.contains(&p2.to_string()) && note.contains(&new2.to_string()),
        "{note}"
    );
    assert_eq!(r["dropped"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["dropped"][0]["session"], "s3");
    assert!(
        r["dropped"][0]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("ended") || m.contains("no longer running")),
        "{r}"
    );
    assert_ssh(p1);
    assert_ssh(new2);
    drop(squatter);
    // The panel shows them; the dialog of a moved tunnel says why.
    assert_eq!(
        sessions_of(&h.ok("list_tunnels", json!({}))),
        [
            ("s1".to_owned(), "sshd".to_owned()),
            ("s1".to_owned(), "tcp-echo".to_owned()),
            ("s2".to_owned(), "sshd".to_owned())
        ]
    );
    let dialog = h.ok("tunnel_info", json!({"session": "s2"}));
    assert_eq!(dialog["fallback"]["preferred"], json!(p2), "{dialog}");
    // Once per run.
    assert_eq!(
        h.ok("restore_tunnels", json!({})),
        json!({"reopened": [], "dropped": []})
    );

    // With the preference off, the next start reopens nothing.
    let mut s = h.ok("get_settings", json!({}));
    assert_eq!(s["restoreTunnels"], true, "on by default: {s}");
    s["restoreTunnels"] = json!(false);
    h.ok("set_settings", json!({"settings": s}));
    let h = restart(h);
    assert!(h.ok("restore_login", json!({})).is_object());
    assert_eq!(
        h.ok("restore_tunnels", json!({})),
        json!({"reopened": [], "dropped": []})
    );
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    assert!(std::net::TcpStream::connect(("127.0.0.1", p1)).is_err());
    h.ok("logout", json!({}));
}

#[test]
fn a_tunnel_outlives_a_restart_of_the_server() {
    let mut server = Server::start();
    let h = harness();
    session_login(&h, server.sb(), &server.sb().user().password, false).expect("login");
    let port = port_of(&h.ok("open_ssh", json!({"session": "s1"})));
    assert_ssh(port);
    let sandbox = server.sandbox.as_mut().expect("the sandbox");
    server.rt.block_on(sandbox.stop_servers());
    // While the server is down, a new connection through the tunnel gets no banner.
    let down = banner(port);
    assert!(
        !down.as_deref().is_ok_and(|b| b.starts_with("SSH-")),
        "{down:?}"
    );
    server
        .rt
        .block_on(sandbox.start_servers())
        .expect("the server starts again on its ports");
    // The same tunnel, not reopened: new connections work again.
    assert_ssh(port);
    let list = h.ok("list_tunnels", json!({}));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(port_of(&list[0]), port);
    assert!(list[0]["total"].as_u64().is_some_and(|n| n >= 3), "{list}");
    h.ok("logout", json!({}));
}

#[test]
fn a_tunnel_keeps_working_when_the_same_user_logs_in_again() {
    let server = Server::start();
    let sb = server.sb();
    let u = sb.user();
    let h = harness();
    session_login(&h, sb, &u.password, false).expect("login");
    let port = port_of(&h.ok("open_ssh", json!({"session": "s1"})));
    assert_ssh(port);

    // The login expires: new connections through the tunnel are refused by the server.
    assert!(sb.expire_web_logins() >= 1);
    let expired = banner(port);
    assert!(
        !expired.as_deref().is_ok_and(|b| b.starts_with("SSH-")),
        "{expired:?}"
    );
    h.err("list_sessions", json!({}));

    // The same user logs in again: the same tunnel (not reopened) works with the new login.
    session_login(&h, sb, &u.password, false).expect("the same user again");
    assert_ssh(port);
    let list = h.ok("list_tunnels", json!({}));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(port_of(&list[0]), port);
    assert!(list[0]["total"].as_u64().is_some_and(|n| n >= 3), "{list}");
    assert_eq!(
        port_of(&h.ok("tunnel_info", json!({"session": "s1"}))),
        port
    );

    // Another account (here the API mode of the same user) never takes it over.
    h.ok("login", json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key, "secretKey": u.secret_key, "remember": false}));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the tunnel stopped when another account logged in"
    );
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    h.ok("logout", json!({}));
}
