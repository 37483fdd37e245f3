//! The tray through the IPC path: `tray_menu` lists the running tunnels, `tray_action` on a
//! tunnel returns what it copies (the ssh command for SSH), "stop-all" stops every tunnel and
//! an unknown id is `InvalidInput`.

use serde_json::{json, Value};

use super::{harness, session_login, Server};

#[test]
fn tray_menu_lists_tunnels_copies_and_stops_all() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");

    let ids = |menu: &Value| -> Vec<String> {
        menu.as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["id"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        ids(&h.ok("tray_menu", json!({}))),
        ["no-tunnels", "open", "stop-all", "quit"]
    );

    let account = sb.session("s1").expect("s1").account;
    let ssh = h.ok("open_ssh", json!({"session": "s1", "account": account}));
    let ssh_port = ssh["port"].as_u64().expect("a port");
    let echo = h.ok("open_app", json!({"session": "s1", "name": "tcp-echo"}));
    let echo_port = echo["port"].as_u64().expect("a port");

    let menu = h.ok("tray_menu", json!({}));
    let ssh_id = format!("tunnel:{ssh_port}");
    let echo_id = format!("tunnel:{echo_port}");
    assert_eq!(
        ids(&menu),
        [
            ssh_id.as_str(),
            echo_id.as_str(),
            "open",
            "stop-all",
            "quit"
        ]
    );
    assert_eq!(
        menu[0]["label"],
        json!(format!("s1 · ssh · 127.0.0.1:{ssh_port}"))
    );
    assert_eq!(
        menu[1]["label"],
        json!(format!("s1 · tcp-echo · 127.0.0.1:{echo_port}"))
    );

    // Clicking the SSH item copies its ssh command; the TCP one, host:port.
    let copied = h.ok("tray_action", json!({"id": ssh_id}));
    let cmd = copied.as_str().expect("the copied text");
    assert!(
        cmd.starts_with("ssh ") && cmd.contains(&ssh_port.to_string()),
        "{cmd}"
    );
    assert_eq!(cmd, ssh["commands"]["ssh"].as_str().unwrap_or_default());
    assert_eq!(
        h.ok("tray_action", json!({"id": echo_id})),
        json!(format!("127.0.0.1:{echo_port}"))
    );

    let e = h.err("tray_action", json!({"id": "nope"}));
    assert_eq!(e["code"], "InvalidInput", "{e}");

    assert_eq!(h.ok("tray_action", json!({"id": "stop-all"})), Value::Null);
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    assert_eq!(
        ids(&h.ok("tray_menu", json!({}))),
        ["no-tunnels", "open", "stop-all", "quit"]
    );
}
