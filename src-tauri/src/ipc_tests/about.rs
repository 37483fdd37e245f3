//! The login screen's recent servers, the About box, and what a wrong server address is told,
//! through the IPC path (the harness and sandbox of the parent module).

use serde_json::{json, Value};

use super::{harness, session_login, Server};
use crate::desktop::{DESKTOP_SETTINGS_FILE, RECENT_MAX};

fn desktop_json(h: &super::Harness) -> String {
    std::fs::read_to_string(h.dir.path().join(DESKTOP_SETTINGS_FILE)).unwrap_or_default()
}

#[test]
fn recent_servers_are_recorded_without_secrets_capped_and_removable() {
    let server = Server::start();
    let sb = server.sb();
    let u = sb.user();
    let h = harness();
    assert_eq!(h.ok("recent_servers", json!({})), json!([]));

    // A failed login is not a recent server.
    session_login(&h, sb, "not-the-password", false).expect_err("wrong password");
    assert_eq!(h.ok("recent_servers", json!({})), json!([]));

    session_login(&h, sb, &u.password, false).expect("login");
    let webserver = sb.webserver_url().trim_end_matches('/').to_owned();
    let session_entry = json!({"endpoint": webserver, "mode": "session", "user": u.email});
    assert_eq!(h.ok("recent_servers", json!({})), json!([session_entry]));

    h.ok(
        "login",
        json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key,
                         "secretKey": u.secret_key, "remember": false}),
    );
    let manager = sb.manager_url().trim_end_matches('/').to_owned();
    let api_entry = json!({"endpoint": manager, "mode": "api", "user": u.access_key});
    assert_eq!(
        h.ok("recent_servers", json!({})),
        json!([api_entry, session_entry]),
        "most recent first"
    );
    let text = desktop_json(&h);
    assert!(
        !text.contains(&u.password),
        "no password in desktop.json: {text}"
    );
    assert!(
        !text.contains(&u.secret_key),
        "no secret key in desktop.json: {text}"
    );

    // Logging in again to a known server moves it up; it is not listed twice.
    session_login(&h, sb, &u.password, false).expect("login again");
    assert_eq!(
        h.ok("recent_servers", json!({})),
        json!([session_entry, api_entry])
    );

    // Saving the preferences keeps them.
    let settings = h.ok("get_settings", json!({}));
    h.ok("set_settings", json!({"settings": settings}));
    assert_eq!(
        h.ok("recent_servers", json!({})).as_array().map(Vec::len),
        Some(2)
    );

    // At most RECENT_MAX: the oldest goes.
    for n in 0..RECENT_MAX {
        let list: Vec<Value> = h
            .ok("recent_servers", json!({}))
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut seeded = vec![
            json!({"endpoint": format!("https://b{n}.example.com"), "mode": "session", "user": "x@example.com"}),
        ];
        seeded.extend(list);
        std::fs::write(
            h.dir.path().join(DESKTOP_SETTINGS_FILE),
            json!({"recentServers": seeded}).to_string(),
        )
        .expect("seed");
    }
    session_login(&h, sb, &u.password, false).expect("login");
    let list = h.ok("recent_servers", json!({}));
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), RECENT_MAX, "{list:?}");
    assert_eq!(list[0], session_entry);
    assert!(
        !list.contains(&api_entry),
        "the oldest was dropped: {list:?}"
    );

    // Removable.
    let left = h.ok("forget_recent_server", json!({"server": session_entry}));
    assert_eq!(left.as_array().map(Vec::len), Some(RECENT_MAX - 1));
    assert!(!left.as_array().expect("array").contains(&session_entry));
    assert_eq!(h.ok("recent_servers", json!({})), left);
}

#[test]
fn about_has_the_versions_and_the_log_folder() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    let a = h.ok("about", json!({}));
    assert_eq!(a["version"], bai_core::about::VERSION);
    assert_eq!(a["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(a["commit"], bai_core::about::BUILD_COMMIT);
    assert!(a["server"].is_null(), "not logged in: {a}");
    let log_dir = a["logDir"].as_str().expect("a log folder");
    assert!(log_dir.contains("log"), "{log_dir}");

    session_login(&h, sb, &sb.user().password, false).expect("login");
    let a = h.ok("about", json!({}));
    let s = &a["server"];
    assert_eq!(s["endpoint"], sb.webserver_url().trim_end_matches('/'));
    assert_eq!(s["mode"], "session");
    assert_eq!(s["apiVersion"], bai_sandbox::DEFAULT_SERVER_VERSION, "{a}");
    assert_eq!(s["managerVersion"], bai_sandbox::MANAGER_VERSION, "{a}");
    assert!(s["error"].is_null(), "{a}");
}

#[test]
fn a_wrong_server_address_is_explained() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    let e = h.err(
        "login",
        json!({"endpoint": sb.manager_url(), "mode": "session",
                                  "email": sb.user().email, "password": "x", "remember": false}),
    );
    assert_eq!(e["code"], "BadUrl", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("is a Backend.AI manager")),
        "{e}"
    );
    assert!(
        e["hint"].as_str().is_some_and(|m| m.contains("API mode")),
        "{e}"
    );
    let e = h.err(
        "login",
        json!({"endpoint": sb.webserver_url(), "mode": "api",
                                  "accessKey": "AKIA", "secretKey": "x", "remember": false}),
    );
    assert_eq!(e["code"], "BadUrl", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("is a Backend.AI webserver")),
        "{e}"
    );
    assert_eq!(h.ok("recent_servers", json!({})), json!([]));
}
