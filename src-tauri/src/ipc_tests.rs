//! The commands through Tauri's mock runtime (`mock_builder` + `get_ipc_response`): the real
//! IPC path (argument names, serialization, `{code, message}` errors) without a webview,
//! against `bai-sandbox` started in-process on port 0.
//!
//! Length: tests only; one file so that every test shares the harness and the sandbox server.

use std::sync::Arc;

use bai_sandbox::{Config as SandboxConfig, Sandbox, SessionSpec};
use bai_testkit::{free_port, mode, sandbox, within, SshTarget};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

use crate::demo::DemoSandbox;
use crate::{run_app, AppState};

struct Harness {
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    dir: tempfile::TempDir,
}

fn harness_with(dir: tempfile::TempDir, demo: Option<DemoSandbox>) -> Harness {
    harness_caps(dir, demo, true)
}

/// `test_caps`: whether the test-only capability (`save_key_to`) is granted, as in the
/// WebDriver build; without it the window has exactly the production capabilities.
fn harness_caps(dir: tempfile::TempDir, demo: Option<DemoSandbox>, test_caps: bool) -> Harness {
    let store: Arc<dyn bai_core::SecretStore> = Arc::new(bai_core::FileStore::new(dir.path()));
    let state = AppState::new(dir.path().to_path_buf(), store, demo);
    let app = run_app(mock_builder(), state, |_| Ok(()))
        // The real context (with test = true): the app's capabilities and command ACL apply.
        .build(tauri::generate_context!("../tauri.conf.json", test = true))
        .expect("the mock app builds");
    if test_caps {
        crate::add_test_capability(&app).expect("the test capability");
    }
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("the mock window builds");
    Harness {
        _app: app,
        window,
        dir,
    }
}

fn harness() -> Harness {
    harness_with(tempfile::tempdir().expect("tempdir"), None)
}

impl Harness {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let req = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The app's own origin on Linux/macOS: only local content gets the capabilities.
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, req)
            .map(|b| b.deserialize::<Value>().expect("the answer is JSON"))
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err(&self, cmd: &str, args: Value) -> Value {
        match self.invoke(cmd, args) {
            Ok(v) => panic!("{cmd} should have failed, got {v}"),
            Err(e) => e,
        }
    }
}

/// A sandbox on its own runtime (the commands run on Tauri's), with one RUNNING and one
/// PREPARING session.
struct Server {
    rt: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (sandbox, _) = rt.block_on(within(
            30,
            sandbox::with_sessions(SandboxConfig::default(), sandbox::desktop_sessions()),
        ));
        Server {
            rt,
            sandbox: Some(sandbox),
        }
    }

    fn sb(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("BUG: only taken on drop")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn session_login(
    h: &Harness,
    sb: &Sandbox,
    password: &str,
    remember: bool,
) -> Result<Value, Value> {
    h.invoke(
        "login",
        json!({"endpoint": sb.webserver_url(), "mode": "session", "email": sb.user().email,
               "password": password, "remember": remember}),
    )
}

#[test]
fn commands_outside_the_allow_list_are_refused() {
    let h = harness();
    let e = h.err("not_a_command", json!({"session": "s1"}));
    assert!(
        e.to_string().contains("not allowed") || e.to_string().contains("not found"),
        "{e}"
    );
}

#[test]
fn app_info_has_the_version_and_no_sandbox() {
    let h = harness();
    assert_eq!(
        h.ok("app_info", json!({})),
        json!({"version": env!("CARGO_PKG_VERSION"), "sandbox": null})
    );
}

#[test]
fn nothing_to_restore_and_not_logged_in() {
    let h = harness();
    assert_eq!(h.ok("restore_login", json!({})), Value::Null);
    let e = h.err("list_sessions", json!({}));
    assert_eq!(e["code"], "LoginRequired", "{e}");
    h.ok("logout", json!({}));
}

#[test]
fn login_rejects_bad_input_with_codes() {
    let h = harness();
    let e = h.err("login", json!({"endpoint": "example.com", "mode": "session", "email": "a", "password": "b", "remember": false}));
    assert_eq!(e["code"], "BadUrl", "{e}");
    let e = h.err(
        "login",
        json!({"endpoint": "http://127.0.0.1:9", "mode": "ldap", "remember": false}),
    );
    assert_eq!(e["code"], "InvalidInput", "{e}");
    let e = h.err("login", json!({"endpoint": "http://127.0.0.1:9", "mode": "session", "email": "a@b", "remember": false}));
    assert_eq!(e["code"], "InvalidInput", "missing password: {e}");
    // Port 9 (discard) is closed on loopback.
    let e = h.err("login", json!({"endpoint": "http://127.0.0.1:9", "mode": "session", "email": "a@b", "password": "x", "remember": false}));
    assert_eq!(e["code"], "Unreachable", "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
}

#[test]
fn session_login_lists_sessions_restores_and_logs_out() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();

    let e = session_login(&h, sb, "not-the-password", true).expect_err("wrong password");
    assert_eq!(e["code"], "AuthFailed", "{e}");
    assert!(!e.to_string().contains(&sb.user().password));

    let state = session_login(&h, sb, &sb.user().password, true).expect("login");
    assert_eq!(
        state,
        json!({"endpoint": sb.webserver_url().trim_end_matches('/'), "mode": "session", "user": sb.user().email,
               "tls": {"scheme": "http", "insecure": false, "caFile": null, "warning": null}})
    );
    assert_eq!(h.ok("restore_login", json!({})), state, "the current login");

    let list = h.ok("list_sessions", json!({}));
    let rows = list.as_array().expect("an array");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {list}"))
    };
    let s1 = row("s1");
    assert_eq!(s1["status"], "RUNNING");
    assert_eq!(s1["sshAvailable"], true);
    assert!(s1.get("sshReason").is_none(), "{s1}");
    assert!(s1["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(s1["createdAt"].is_string() && s1["image"].is_string());
    let prep = row("prep");
    assert_eq!(prep["status"], "PREPARING");
    assert_eq!(prep["sshAvailable"], false);
    assert!(
        prep["sshReason"]
            .as_str()
            .is_some_and(|r| r.contains("preparing")),
        "{prep}"
    );

    // Nothing secret reached the config file; the login was saved for the next start.
    let config = std::fs::read_to_string(h.dir.path().join("config.toml")).expect("config saved");
    assert!(config.contains(&sb.user().email) && !config.contains(&sb.user().password));

    // A new app over the same config dir restores the saved login (checked with the server).
    let dir = h.dir;
    let h2 = harness_with(dir, None);
    assert_eq!(
        h2.ok("restore_login", json!({})),
        state,
        "restored at start"
    );
    assert!(h2
        .ok("list_sessions", json!({}))
        .as_array()
        .is_some_and(|a| a.len() == 2));

    h2.ok("logout", json!({}));
    let e = h2.err("list_sessions", json!({}));
    assert_eq!(e["code"], "LoginRequired", "{e}");
    let dir = h2.dir;
    let h3 = harness_with(dir, None);
    assert_eq!(
        h3.ok("restore_login", json!({})),
        Value::Null,
        "logged out for good"
    );
}

#[test]
fn unremembered_login_leaves_nothing_to_restore() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");
    assert_eq!(
        h.ok("list_sessions", json!({})).as_array().map(Vec::len),
        Some(2)
    );
    let h2 = harness_with(h.dir, None);
    assert_eq!(h2.ok("restore_login", json!({})), Value::Null);
}

#[test]
fn api_mode_login_with_a_keypair() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    let u = sb.user();
    let e = h.err("login", json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key, "secretKey": "wrong", "remember": false}));
    assert_eq!(e["code"], "AuthFailed", "{e}");
    let state = h.ok("login", json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key, "secretKey": u.secret_key, "remember": true}));
    assert_eq!(state["mode"], "api");
    assert_eq!(state["user"], u.access_key.as_str());
    let names: Vec<String> = h
        .ok("list_sessions", json!({}))
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"s1".to_owned()), "{names:?}");
    let secrets = std::fs::read_to_string(h.dir.path().join("config.toml")).expect("config");
    assert!(
        !secrets.contains(&u.secret_key),
        "the secret key is not in config.toml"
    );
    h.ok("logout", json!({}));
}

#[test]
fn demo_sandbox_is_announced_and_logged_in_automatically() {
    let server = Server::start();
    let sb = server.sb();
    let demo = DemoSandbox::parse(
        &json!({"webserver": sb.webserver_url(), "manager": sb.manager_url(), "email": sb.user().email,
                "password": sb.user().password, "access_key": "x", "secret_key": "y", "sessions": []})
        .to_string(),
    )
    .expect("demo line");
    let h = harness_with(tempfile::tempdir().expect("tempdir"), Some(demo));
    let info = h.ok("app_info", json!({}));
    assert_eq!(
        info["sandbox"],
        json!({"webserver": sb.webserver_url(), "email": sb.user().email})
    );
    assert!(
        !info.to_string().contains(&sb.user().password),
        "the password stays in Rust"
    );
    let state = h.ok("restore_login", json!({}));
    assert_eq!(state["user"], sb.user().email.as_str());
    assert_eq!(
        h.ok("list_sessions", json!({})).as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        !h.dir.path().join("config.toml").exists(),
        "the demo login is not saved in the user's config"
    );
}

#[test]
fn settings_round_trip_and_validation() {
    let h = harness();
    assert_eq!(
        h.ok("get_settings", json!({})),
        json!({"preferredSshPort": null, "refreshSeconds": 30, "account": "work", "pinHostKeys": false, "restoreTunnels": true, "keepInTray": true, "startAtLogin": false})
    );
    let s = json!({"preferredSshPort": 10022, "refreshSeconds": 0, "account": " work2 "});
    assert_eq!(
        h.ok("set_settings", json!({"settings": s})),
        json!({"preferredSshPort": 10022, "refreshSeconds": 0, "account": "work2", "pinHostKeys": false, "restoreTunnels": true, "keepInTray": true, "startAtLogin": false})
    );
    assert_eq!(
        h.ok("get_settings", json!({})),
        json!({"preferredSshPort": 10022, "refreshSeconds": 0, "account": "work2", "pinHostKeys": false, "restoreTunnels": true, "keepInTray": true, "startAtLogin": false})
    );
    let config = std::fs::read_to_string(h.dir.path().join("config.toml")).expect("config");
    assert!(
        config.contains("preferred_ssh_port = 10022"),
        "shared with the CLI: {config}"
    );
    for bad in [
        json!({"preferredSshPort": 80, "refreshSeconds": 30, "account": "work"}),
        json!({"preferredSshPort": 99999, "refreshSeconds": 30, "account": "work"}),
        json!({"preferredSshPort": null, "refreshSeconds": 2, "account": "work"}),
        json!({"preferredSshPort": null, "refreshSeconds": 30, "account": "bad user"}),
    ] {
        let e = h.err("set_settings", json!({"settings": bad}));
        assert_eq!(e["code"], "InvalidInput", "{e}");
    }
    h.ok(
        "set_settings",
        json!({"settings": {"preferredSshPort": null, "refreshSeconds": 60, "account": "work"}}),
    );
    assert_eq!(
        h.ok("get_settings", json!({}))["preferredSshPort"],
        Value::Null
    );
}

fn run_tool(cmd: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn key_blob(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn ssh_tunnels_keys_and_the_tunnel_panel() {
    let server = Server::start();
    let sb = server.sb();
    server
        .rt
        .block_on(sb.create_session(SessionSpec::running("s2")))
        .expect("s2");
    let account = sb.session("s1").expect("s1").account;
    let h = harness();
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    let e = h.err("open_ssh", json!({"session": "s1"}));
    assert_eq!(e["code"], "LoginRequired", "{e}");
    session_login(&h, sb, &sb.user().password, false).expect("login");

    // The preferred port is free: it is used.
    let preferred = free_port();
    h.ok(
        "set_settings",
        json!({"settings": {"preferredSshPort": preferred, "refreshSeconds": 30, "account": "work"}}),
    );
    let t = h.ok("open_ssh", json!({"session": "s1", "account": account}));
    let port = t["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port");
    assert_eq!(port, preferred, "{t}");
    assert_eq!(t["preferredPort"], preferred);
    assert_eq!(t["fallback"], Value::Null);
    assert_eq!(t["user"], account.as_str());
    assert_eq!(t["host"], "127.0.0.1");
    assert_eq!(t["sftpUrl"], format!("sftp://{account}@127.0.0.1:{port}"));
    assert_eq!(t["hasIdContainer"], true);
    assert_eq!(t["keyPath"], Value::Null);
    let ssh = t["commands"]["ssh"].as_str().expect("ssh");
    assert!(
        ssh.contains("-i ./id_container") && ssh.contains(&format!("-p {port}")),
        "{ssh}"
    );
    for c in ["sftp", "scp", "rsync"] {
        assert!(
            t["commands"][c].as_str().is_some_and(|s| s.starts_with(c)),
            "{t}"
        );
    }
    assert_eq!(
        t["vscodeUrl"],
        "vscode://vscode-remote/ssh-remote+bai-s1/home/work"
    );
    assert!(t["vscodeConfig"]
        .as_str()
        .is_some_and(|c| c.starts_with("Host bai-s1\n") && c.contains(&format!("Port {port}"))));
    // A second click shows the same tunnel; tunnel_info too.
    assert_eq!(h.ok("open_ssh", json!({"session": "s1"})), t);
    assert_eq!(h.ok("tunnel_info", json!({"session": "s1"})), t);
    // The account is editable per session: same tunnel, other user in every command.
    let other = h.ok("open_ssh", json!({"session": "s1", "account": "alice"}));
    assert_eq!(other["port"], t["port"]);
    assert_eq!(other["user"], "alice");
    assert!(other["commands"]["ssh"]
        .as_str()
        .is_some_and(|c| c.ends_with("alice@127.0.0.1")));
    assert_eq!(
        h.ok("open_ssh", json!({"session": "s1", "account": account})),
        t
    );

    // The key, saved by the command the dialog calls: 0600, a valid key, used by `-i`.
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("id_container");
    let key_s = key.to_string_lossy().into_owned();
    let saved = h.ok(
        "save_key_to",
        json!({"session": "s1", "path": key, "format": "openssh"}),
    );
    assert_eq!(saved, json!({"path": key_s}));
    assert_eq!(mode(&key), 0o600);
    let pubkey = run_tool("ssh-keygen", &["-y", "-f", &key_s]);
    assert!(pubkey.status.success(), "ssh-keygen -y");
    let pubkey = String::from_utf8_lossy(&pubkey.stdout).into_owned();
    let t2 = h.ok("tunnel_info", json!({"session": "s1"}));
    assert_eq!(t2["keyPath"], key_s.as_str());
    assert!(t2["commands"]["ssh"]
        .as_str()
        .is_some_and(|s| s.contains(&format!("-i {key_s}"))));

    // A real ssh through the tunnel.
    let ssh_args = SshTarget::new(port, &key, account.clone())
        .option("IdentitiesOnly=yes")
        .ssh_args(&["echo", "ok"]);
    let ssh_args: Vec<&str> = ssh_args.iter().map(String::as_str).collect();
    let out = run_tool("ssh", &ssh_args);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "ssh: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The PuTTY key: accepted by puttygen, same public key.
    let ppk = keys.path().join("id_container.ppk");
    h.ok(
        "save_key_to",
        json!({"session": "s1", "path": ppk, "format": "ppk"}),
    );
    let out = run_tool(
        "puttygen",
        &[&ppk.to_string_lossy(), "-O", "public-openssh"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        key_blob(&String::from_utf8_lossy(&out.stdout)),
        key_blob(&pubkey)
    );

    // A second session with the same preferred port: another port, with the notice.
    let t3 = h.ok("open_ssh", json!({"session": "s2"}));
    let port2 = t3["port"].as_u64().expect("port");
    assert_ne!(port2, u64::from(port));
    assert_eq!(t3["user"], "work", "the account setting");
    assert_eq!(t3["fallback"]["preferred"], preferred);
    let reason = t3["fallback"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&preferred.to_string()) && reason.contains(&port2.to_string()),
        "{reason}"
    );

    // The panel: both tunnels, with the ssh connection counted.
    let list = h.ok("list_tunnels", json!({}));
    let rows = list.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{list}");
    let r1 = rows.iter().find(|r| r["session"] == "s1").expect("s1 row");
    assert_eq!(r1["port"], port);
    assert!(r1["total"].as_u64().is_some_and(|n| n >= 2), "{r1}");
    assert!(r1["bytesUp"].as_u64().is_some_and(|n| n > 0), "{r1}");
    assert!(r1["bytesDown"].as_u64().is_some_and(|n| n > 0), "{r1}");
    assert!(
        r1["since"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{r1}"
    );
    assert!(r1.get("active").is_some() && r1.get("lastError").is_some());

    // Stop: connection refused.
    h.ok("stop_tunnel", json!({"session": "s1"}));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(
        h.err("tunnel_info", json!({"session": "s1"}))["code"],
        "InvalidInput"
    );
    assert_eq!(
        h.ok("list_tunnels", json!({})).as_array().map(Vec::len),
        Some(1)
    );

    // A session that terminates loses its tunnel at the next refresh.
    server.rt.block_on(sb.terminate("s2")).expect("terminate");
    h.ok("list_sessions", json!({}));
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port2).expect("port"))).is_err()
    );
}

#[test]
fn save_key_formats_and_default_names() {
    use crate::commands::tunnels::KeyFormat;
    assert_eq!(KeyFormat::Openssh.default_file_name(), "id_container");
    assert_eq!(KeyFormat::Ppk.default_file_name(), "id_container.ppk");
    let h = harness();
    let e = h.err(
        "save_key_to",
        json!({"session": "s1", "path": "/tmp/x", "format": "pem"}),
    );
    assert!(
        e.to_string().contains("pem") || e.to_string().contains("variant"),
        "{e}"
    );
}

#[test]
fn save_key_to_is_not_in_the_production_capabilities() {
    // The production window: a web view that names a path must not get the key written there.
    let h = harness_caps(tempfile::tempdir().expect("tempdir"), None, false);
    let target = h.dir.path().join("written-by-the-webview");
    let e = h.err(
        "save_key_to",
        json!({"session": "s1", "path": target, "format": "openssh"}),
    );
    assert!(e.to_string().contains("not allowed"), "{e}");
    assert!(!target.exists());
    // The commands the UI does use are still allowed.
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));
}

fn port_of(t: &Value) -> u16 {
    t["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("port")
}

#[test]
fn tunnels_belong_to_one_login() {
    let server = Server::start();
    let sb = server.sb();
    let u = sb.user();
    let h = harness();

    // API mode: logout stops the tunnel (it would go on signing requests with the keys).
    h.ok("login", json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key, "secretKey": u.secret_key, "remember": false}));
    let t = h.ok("open_ssh", json!({"session": "s1"}));
    let api_port = port_of(&t);
    assert!(std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok());
    h.ok("logout", json!({}));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", api_port)).is_err(),
        "the API-mode tunnel stopped at logout"
    );
    assert_eq!(h.ok("list_tunnels", json!({})), json!([]));

    // A login to another endpoint (the webserver) never reuses a tunnel of the old login.
    session_login(&h, sb, &u.password, false).expect("login");
    let t1 = h.ok("open_ssh", json!({"session": "s1"}));
    let p1 = port_of(&t1);
    h.ok("login", json!({"endpoint": sb.manager_url(), "mode": "api", "accessKey": u.access_key, "secretKey": u.secret_key, "remember": false}));
    let e = h.err("tunnel_info", json!({"session": "s1"}));
    assert_eq!(e["code"], "InvalidInput", "{e}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", p1)).is_err(),
        "the old login's tunnel stopped when another login began"
    );
    let t2 = h.ok("open_ssh", json!({"session": "s1"}));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port_of(&t2))).is_ok());
    assert_eq!(
        h.ok("list_tunnels", json!({})).as_array().map(Vec::len),
        Some(1)
    );

    // The per-session account is validated like the settings' one.
    for bad in ["x\nMatch exec id", "a b", "$(id)", "-oProxyCommand=x"] {
        let e = h.err("open_ssh", json!({"session": "s1", "account": bad}));
        assert_eq!(e["code"], "InvalidInput", "{bad:?}: {e}");
    }
    let e = h.err(
        "set_settings",
        json!({"settings": {"preferredSshPort": 80, "refreshSeconds": 30, "account": "work"}}),
    );
    assert_eq!(e["code"], "InvalidInput", "{e}");

    // The copied commands keep the guide's form unless the user opts into pinning.
    let plain = h.ok("tunnel_info", json!({"session": "s1"}));
    let ssh = plain["commands"]["ssh"].as_str().expect("ssh");
    assert!(ssh.contains("StrictHostKeyChecking=no"), "{ssh}");
    h.ok(
        "set_settings",
        json!({"settings": {"preferredSshPort": null, "refreshSeconds": 30, "account": "work", "pinHostKeys": true}}),
    );
    let pinned = h.ok("tunnel_info", json!({"session": "s1"}));
    let id = sb.session("s1").expect("s1").id;
    for c in ["ssh", "sftp", "scp", "rsync"] {
        let line = pinned["commands"][c].as_str().expect("line");
        assert!(
            line.contains(&format!("HostKeyAlias={id}"))
                && line.contains("StrictHostKeyChecking=accept-new")
                && line.contains("known_hosts")
                && !line.contains("StrictHostKeyChecking=no"),
            "{c}: {line}"
        );
    }
    let vscode = pinned["vscodeConfig"].as_str().expect("vscode");
    assert!(vscode.contains(&format!("HostKeyAlias {id}")), "{vscode}");
    h.ok("logout", json!({}));
}

#[test]
fn the_tunnel_never_depends_on_the_key() {
    // Seen against a real manager: a session whose key file holds no key made the whole dialog
    // fail although its sshd was reachable.
    let server = Server::start();
    let sb = server.sb();
    let s = server
        .rt
        .block_on(sb.create_session(SessionSpec::running("badkey")))
        .expect("badkey");
    let key = s.id_container.expect("the session has a key file");
    std::fs::write(&key, "this is not a key\n").expect("spoil the key");
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");
    let t = h.ok("open_ssh", json!({"session": "badkey"}));
    assert_eq!(t["hasIdContainer"], false, "{t}");
    assert!(
        t["keyProblem"].as_str().is_some_and(|p| !p.is_empty()),
        "the key section says why: {t}"
    );
    let mut banner = String::new();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port_of(&t))).expect("the tunnel");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(tcp), &mut banner).expect("banner");
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    h.ok("logout", json!({}));
}

#[test]
fn a_session_recreated_under_the_same_name_gets_its_own_tunnel() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");
    // With pinned commands the dialog names the session id it is for.
    h.ok(
        "set_settings",
        json!({"settings": {"preferredSshPort": null, "refreshSeconds": 0, "account": "work", "pinHostKeys": true}}),
    );
    let first = h.ok("open_ssh", json!({"session": "s1"}));
    let old = port_of(&first);
    let old_id = sb.session("s1").expect("s1").id.to_string();
    assert!(first["commands"]["ssh"]
        .as_str()
        .is_some_and(|c| c.contains(&old_id)));
    let again = server
        .rt
        .block_on(async {
            sb.terminate("s1").await?;
            sb.create_session(SessionSpec::running("s1")).await
        })
        .expect("s1 again");
    let new = h.ok("open_ssh", json!({"session": "s1"}));
    let ssh = new["commands"]["ssh"].as_str().expect("ssh");
    assert!(
        ssh.contains(&again.id.to_string()) && !ssh.contains(&old_id),
        "the dialog is the new session's: {ssh}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old)).is_err() || port_of(&new) == old,
        "the old session's tunnel is gone"
    );
    let mut banner = String::new();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port_of(&new))).expect("the tunnel");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(tcp), &mut banner).expect("banner");
    assert!(
        banner.starts_with("SSH-2.0-"),
        "the new session answers: {banner:?}"
    );
    assert_eq!(
        h.ok("list_tunnels", json!({})).as_array().map(Vec::len),
        Some(1)
    );
    h.ok("logout", json!({}));
}

/// `ssh-keygen -q -t <kind> -N <pass> -f dir/name` (plus `extra`); the private key's path.
fn keygen(dir: &std::path::Path, name: &str, pass: &str, extra: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let path_s = path.to_string_lossy().into_owned();
    let mut args = vec!["-q", "-N", pass, "-C", "me@laptop", "-f", &path_s];
    args.extend_from_slice(extra);
    let out = run_tool("ssh-keygen", &args);
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `ssh-keygen -l -E sha256` of a file: the `SHA256:…` field.
fn fingerprint_of(path: &std::path::Path) -> String {
    let out = run_tool(
        "ssh-keygen",
        &["-l", "-E", "sha256", "-f", &path.to_string_lossy()],
    );
    assert!(out.status.success(), "ssh-keygen -l");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn account_keypair_show_generate_and_upload() {
    let server = Server::start();
    let sb = server.sb();
    let h = harness();
    assert_eq!(h.err("account_keypair", json!({}))["code"], "LoginRequired");
    session_login(&h, sb, &sb.user().password, false).expect("login");
    // A fresh account has none.
    assert_eq!(h.ok("account_keypair", json!({})), Value::Null);

    // Generated: the public half and its fingerprint; no private key reaches the web view.
    let g = h.ok("generate_keypair", json!({}));
    assert!(!g.to_string().contains("PRIVATE"), "{g}");
    let line = g["publicKey"].as_str().expect("publicKey");
    assert!(line.starts_with("ssh-rsa "), "{g}");
    let dir = tempfile::tempdir().expect("tempdir");
    let pub_file = dir.path().join("generated.pub");
    std::fs::write(&pub_file, format!("{line}\n")).expect("write");
    assert_eq!(g["fingerprint"], fingerprint_of(&pub_file));
    assert_eq!(h.ok("account_keypair", json!({})), g);

    // Uploaded from a private key file: the public half is derived, the comment of the .pub
    // next to it kept.
    let key = keygen(dir.path(), "id_ed25519", "", &["-t", "ed25519"]);
    let u = h.ok("upload_keypair_from", json!({"path": key}));
    let pub_text = std::fs::read_to_string(key.with_extension("pub")).expect(".pub");
    assert_eq!(u["publicKey"], pub_text.trim());
    assert_eq!(u["fingerprint"], fingerprint_of(&key));
    assert_eq!(h.ok("account_keypair", json!({})), u);

    // Refused locally: a passphrase, a public key, a missing file; the stored pair stays.
    let locked = keygen(dir.path(), "locked", "a passphrase", &["-t", "ed25519"]);
    let e = h.err("upload_keypair_from", json!({"path": locked}));
    assert_eq!(e["code"], "InvalidInput", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("passphrase")),
        "{e}"
    );
    let e = h.err(
        "upload_keypair_from",
        json!({"path": key.with_extension("pub")}),
    );
    assert_eq!(e["code"], "InvalidInput", "{e}");
    assert!(h
        .invoke(
            "upload_keypair_from",
            json!({"path": dir.path().join("nope")})
        )
        .is_err());
    assert_eq!(h.ok("account_keypair", json!({})), u);

    // Refused by the server, with its reason: a PKCS#8 key (its public half comes from the
    // .pub) next to the .pub of another key.
    let p8 = keygen(
        dir.path(),
        "p8",
        "",
        &["-t", "rsa", "-b", "2048", "-m", "PKCS8"],
    );
    std::fs::copy(key.with_extension("pub"), p8.with_extension("pub")).expect("copy");
    let e = h.err("upload_keypair_from", json!({"path": p8}));
    assert_eq!(e["code"], "InvalidInput", "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert_eq!(h.ok("account_keypair", json!({})), u);
    h.ok("logout", json!({}));
}

#[test]
fn a_session_with_the_users_own_key_uses_the_picked_private_key() {
    let server = Server::start();
    let sb = server.sb();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "id_ed25519", "", &["-t", "ed25519"]);
    let pub_text = std::fs::read_to_string(key.with_extension("pub")).expect(".pub");
    let s = server
        .rt
        .block_on(sb.create_session(SessionSpec {
            authorized_keys: Some(pub_text),
            ..SessionSpec::running("own")
        }))
        .expect("own");
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");
    let t = h.ok("open_ssh", json!({"session": "own", "account": s.account}));
    assert_eq!(t["hasIdContainer"], false, "{t}");
    assert_eq!(t["ownKey"], Value::Null);
    assert!(
        !t["commands"]["ssh"].as_str().expect("ssh").contains(" -i "),
        "{t}"
    );

    // A public key is refused; the private key is remembered and becomes `-i`.
    let e = h.err(
        "use_own_key_from",
        json!({"session": "own", "path": key.with_extension("pub")}),
    );
    assert_eq!(e["code"], "InvalidInput", "{e}");
    let t = h.ok("use_own_key_from", json!({"session": "own", "path": key}));
    let abs = std::fs::canonicalize(&key).expect("abs");
    let abs_s = abs.to_string_lossy().into_owned();
    assert_eq!(t["ownKey"], abs_s.as_str(), "{t}");
    assert_eq!(t["keyPath"], Value::Null);
    let ssh = t["commands"]["ssh"].as_str().expect("ssh");
    assert!(ssh.contains(&format!("-i {abs_s}")), "{ssh}");
    assert_eq!(h.ok("tunnel_info", json!({"session": "own"})), t);
    // Remembered in the profile: a session with an id_container still uses its own key.
    let s1 = h.ok("open_ssh", json!({"session": "s1"}));
    assert_eq!(s1["ownKey"], Value::Null);
    assert!(s1["commands"]["ssh"]
        .as_str()
        .is_some_and(|c| c.contains("-i ./id_container")));

    // The dialog's ssh line, as the user would paste it, logs in.
    let line = ssh.replacen("ssh ", "ssh -o BatchMode=yes -o IdentitiesOnly=yes ", 1);
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{line} echo ok")])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.ok("logout", json!({}));
}

#[test]
fn path_variants_are_not_in_the_production_capabilities() {
    let h = harness_caps(tempfile::tempdir().expect("tempdir"), None, false);
    let path = h.dir.path().join("id_ed25519");
    for (cmd, args) in [
        ("upload_keypair_from", json!({"path": path})),
        ("use_own_key_from", json!({"session": "s1", "path": path})),
    ] {
        let e = h.err(cmd, args);
        assert!(e.to_string().contains("not allowed"), "{cmd}: {e}");
    }
    // Their dialog variants are allowed (they fail here for want of a login first).
    assert_eq!(h.err("account_keypair", json!({}))["code"], "LoginRequired");
}

#[test]
fn a_saved_key_replaced_by_another_sessions_key_is_flagged() {
    let server = Server::start();
    let sb = server.sb();
    server
        .rt
        .block_on(sb.create_session(SessionSpec::running("s2")))
        .expect("s2");
    let h = harness();
    session_login(&h, sb, &sb.user().password, false).expect("login");
    h.ok("open_ssh", json!({"session": "s1"}));
    h.ok("open_ssh", json!({"session": "s2"}));
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("id_container");
    let key_s = key.to_string_lossy().into_owned();
    h.ok(
        "save_key_to",
        json!({"session": "s1", "path": key, "format": "openssh"}),
    );
    let t = h.ok("tunnel_info", json!({"session": "s1"}));
    assert_eq!(t["keyPath"], key_s.as_str());
    assert_eq!(t["keyStale"], Value::Null);
    // The same file, now holding s2's key: s1's dialog no longer calls it saved.
    h.ok(
        "save_key_to",
        json!({"session": "s2", "path": key, "format": "openssh"}),
    );
    let t = h.ok("tunnel_info", json!({"session": "s1"}));
    assert_eq!(t["keyPath"], Value::Null, "{t}");
    assert!(
        t["keyStale"]
            .as_str()
            .is_some_and(|m| m.contains(&key_s) && m.contains("download it again")),
        "{t}"
    );
    assert!(t["commands"]["ssh"]
        .as_str()
        .is_some_and(|c| c.contains("./id_container")));
    let t2 = h.ok("tunnel_info", json!({"session": "s2"}));
    assert_eq!(t2["keyPath"], key_s.as_str());
    assert_eq!(t2["keyStale"], Value::Null);
    // Removed: flagged too.
    std::fs::remove_file(&key).expect("rm");
    let t2 = h.ok("tunnel_info", json!({"session": "s2"}));
    assert!(t2["keyStale"].is_string(), "{t2}");
    h.ok("logout", json!({}));
}

mod about;
mod apps;
mod generations;
mod real_manager;
mod remote;
mod restore;
mod tray;
