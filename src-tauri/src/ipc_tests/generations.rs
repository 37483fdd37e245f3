//! The app's IPC path against every Backend.AI generation the sandbox plays (`--emulate`,
//! docs/compatibility.md): session and API logins, the session list, an SSH tunnel with a real
//! ssh through it using the saved key, the same by session UUID, and logout. One test per
//! generation (run: `cargo test -p bai-desktop --lib ipc_tests::generations`).

use bai_sandbox::Generation;
use bai_testkit::{sandbox, within, SshTarget};
use serde_json::json;

use super::{harness, run_tool, session_login, Server};

fn start(generation: Generation) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (sandbox, _) = rt.block_on(within(
        30,
        sandbox::with_sessions(sandbox::emulating(generation), sandbox::desktop_sessions()),
    ));
    Server {
        rt,
        sandbox: Some(sandbox),
    }
}

fn flow(generation: Generation) {
    let server = start(generation);
    let sb = server.sb();
    let account = sb.session("s1").expect("s1").account;
    let s1_id = sb.session("s1").expect("s1").id.to_string();
    let h = harness();

    // Session mode: a wrong password, then the login.
    let e = session_login(&h, sb, "not-the-password", false).expect_err("wrong password");
    assert_eq!(e["code"], "AuthFailed", "{generation}: {e}");
    session_login(&h, sb, &sb.user().password, false).expect("login");
    let list = h.ok("list_sessions", json!({}));
    let rows = list.as_array().expect("an array");
    let s1 = rows
        .iter()
        .find(|r| r["name"] == "s1")
        .unwrap_or_else(|| panic!("{generation}: no s1 in {list}"));
    assert_eq!(s1["status"], "RUNNING", "{generation}");
    assert_eq!(s1["sshAvailable"], true, "{generation}");
    assert_eq!(s1["id"], s1_id.as_str(), "{generation}");
    assert!(
        rows.iter()
            .any(|r| r["name"] == "prep" && r["sshAvailable"] == false),
        "{generation}: {list}"
    );

    // The tunnel, the key saved by the dialog's command, and a real ssh through it.
    let t = h.ok("open_ssh", json!({"session": "s1", "account": account}));
    assert_eq!(t["hasIdContainer"], true, "{generation}: {t}");
    let port = t["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port");
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("id_container");
    h.ok(
        "save_key_to",
        json!({"session": "s1", "path": key, "format": "openssh"}),
    );
    let ssh = |port: u16| {
        let args = SshTarget::new(port, &key, account.clone())
            .option("IdentitiesOnly=yes")
            .ssh_args(&["echo", "ok"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_tool("ssh", &args);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{generation}: ssh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ssh(port);
    h.ok("stop_tunnel", json!({"session": "s1"}));
    h.ok("logout", json!({}));

    // API mode, and the session named by its UUID (refused in stream paths by the 26.4.4
    // release candidates: bai retries by name).
    let u = sb.user();
    h.ok(
        "login",
        json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key,
               "secretKey": u.secret_key, "remember": false}),
    );
    assert!(h
        .ok("list_sessions", json!({}))
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["name"] == "s1")));
    let t = h.ok("open_ssh", json!({"session": s1_id, "account": account}));
    ssh(t["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port"));
    h.ok("logout", json!({}));
}

macro_rules! generations {
    ($($name:ident => $generation:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            flow($generation);
        }
    )*};
}

generations! {
    ipc_on_22_09 => Generation::G22_09,
    ipc_on_23_09 => Generation::G23_09,
    ipc_on_24_03 => Generation::G24_03,
    ipc_on_24_09 => Generation::G24_09,
    ipc_on_25_x => Generation::G25,
    ipc_on_26_4rc => Generation::G26_4Rc,
    ipc_on_26_x => Generation::G26,
}
