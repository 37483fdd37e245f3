//! The desktop app's IPC path against the real Backend.AI 26.9.6 (bai_testkit::realstack:
//! manager, dummy agent and webserver on loopback, a stack of this test's own, torn down by
//! pid at its end): session-mode login through the real webserver, the session list from the
//! real GraphQL, `open_ssh` through the real tcpproxy (the dummy agent has no `id_container`,
//! so the dialog says so and the user's own key, picked once, logs in), the tunnels panel, a
//! wrong password, and logout. `BAI_SKIP_REAL_MANAGER=1` skips it, saying so.

use bai_testkit::realstack::{self, Stack};
use bai_testkit::{within, SshTarget};
use serde_json::json;

use super::harness;

#[test]
fn open_ssh_through_the_real_manager_and_webserver() {
    if realstack::skipped() {
        realstack::say_skipped("ipc_tests::real_manager");
        return;
    }
    let stack = Stack::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(within(180, stack.create_session("rm-desktop")));
    let h = harness();

    // A wrong password: the webserver's answer, as the app's AuthFailed.
    let e = h.err(
        "login",
        json!({"endpoint": stack.webserver, "mode": "session", "email": stack.email,
               "password": "wrong-password", "remember": false}),
    );
    assert_eq!(e["code"], "AuthFailed", "{e}");
    h.ok(
        "login",
        json!({"endpoint": stack.webserver, "mode": "session", "email": stack.email,
               "password": stack.password, "remember": false}),
    );

    let list = h.ok("list_sessions", json!({}));
    let s = list
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == "rm-desktop"))
        .unwrap_or_else(|| panic!("rm-desktop not listed: {list}"))
        .clone();
    assert_eq!(s["status"], "RUNNING", "{s}");
    assert!(
        s["apps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "sshd")),
        "{s}"
    );

    // SSH/SFTP: the tunnel opens (sshd answered through the real tcpproxy); no id_container.
    let t = h.ok(
        "open_ssh",
        json!({"session": "rm-desktop", "account": stack.account}),
    );
    assert_eq!(t["hasIdContainer"], false, "{t}");
    let port = t["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port");
    // The user's own key, picked once, becomes `-i`; ssh logs in through the tunnel.
    let t = h.ok(
        "use_own_key_from",
        json!({"session": "rm-desktop", "path": stack.key}),
    );
    let ssh = t["commands"]["ssh"].as_str().expect("ssh").to_owned();
    assert!(ssh.contains(" -i "), "{ssh}");
    let target = SshTarget::new(port, &stack.key, stack.account.clone()).hermetic();
    let out = rt
        .block_on(async { within(60, target.ssh(&["echo", "ok-desktop"]).output()).await })
        .expect("ssh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok-desktop",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tunnels = h.ok("list_tunnels", json!({}));
    assert_eq!(tunnels.as_array().map(Vec::len), Some(1), "{tunnels}");
    h.ok("stop_tunnel", json!({"session": "rm-desktop"}));
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    h.ok("logout", json!({}));
    let e = h.err("list_sessions", json!({}));
    assert_eq!(e["code"], "LoginRequired", "{e}");

    // Everything of the stack ends with it.
    let left = stack.stop();
    assert!(
        left.is_empty(),
        "processes left after the teardown: {left:?}"
    );
}
