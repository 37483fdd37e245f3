//! The in-app terminal and file browser through the IPC path (argument names, the ACL,
//! `{code, message}` errors) against the sandbox's real sshd: a shell runs `echo $((6*7))` and
//! reports its exit status, a resize reaches `stty size`; files are listed, created, renamed,
//! uploaded and downloaded through the queue (sha256 both ways), an existing target is refused
//! with `Exists`, a cancelled transfer leaves nothing, and a changed host key is refused.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::{harness, session_login, Harness, Server};
use crate::commands::terminal::{TerminalEvent, TEST_TAP};

fn login_as_session_account(h: &Harness, server: &Server) {
    let sb = server.sb();
    session_login(h, sb, &sb.user().password, false).expect("login");
    let account = sb.session("s1").expect("s1").account;
    h.ok(
        "set_settings",
        json!({"settings": {"preferredSshPort": null, "refreshSeconds": 30, "account": account}}),
    );
}

/// Output until `want` shows up (or the shell's exit status, with `want` = None).
fn until(
    rx: &std::sync::mpsc::Receiver<TerminalEvent>,
    want: Option<&str>,
) -> (String, Option<u32>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(TerminalEvent::Data { data }) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .expect("base64");
                seen.push_str(&String::from_utf8_lossy(&bytes));
                if want.is_some_and(|w| seen.contains(w)) {
                    return (seen, None);
                }
            }
            Ok(TerminalEvent::Exit { status, .. }) if want.is_none() => return (seen, status),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("{want:?} not seen in {seen:?}");
}

#[test]
fn terminal_runs_commands_resizes_and_reports_the_exit_status() {
    let server = Server::start();
    let h = harness();
    let (tx, rx) = std::sync::mpsc::channel();
    *TEST_TAP.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    let e = h.err(
        "terminal_open",
        json!({"session": "s1", "cols": 80, "rows": 24, "output": "__CHANNEL__:7"}),
    );
    assert_eq!(e["code"], "LoginRequired", "{e}");
    login_as_session_account(&h, &server);

    let t = h.ok(
        "terminal_open",
        json!({"session": "s1", "cols": 80, "rows": 24, "output": "__CHANNEL__:7"}),
    );
    let id = t["id"].as_u64().expect("id");
    let user = t["user"].as_str().expect("user").to_owned();
    assert_eq!(t["title"], format!("{user}@s1"));
    h.ok(
        "terminal_input",
        json!({"id": id, "data": "echo $((6*7))\n"}),
    );
    until(&rx, Some("42\r\n"));
    h.ok(
        "terminal_resize",
        json!({"id": id, "cols": 100, "rows": 30}),
    );
    h.ok("terminal_input", json!({"id": id, "data": "stty size\n"}));
    until(&rx, Some("30 100"));
    h.ok("terminal_input", json!({"id": id, "data": "exit 4\n"}));
    let (_, status) = until(&rx, None);
    assert_eq!(status, Some(4));

    // Unknown ids are refused; closing is idempotent.
    let e = h.err("terminal_input", json!({"id": 999, "data": "x"}));
    assert_eq!(e["code"], "InvalidInput", "{e}");
    h.ok("terminal_close", json!({"id": id}));
    h.ok("terminal_close", json!({"id": id}));
    *TEST_TAP.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn wait_transfers(h: &Harness, ids: &[u64]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = h.ok("transfer_list", json!({}));
        let mine: Vec<Value> = list
            .as_array()
            .expect("a list")
            .iter()
            .filter(|t| ids.contains(&t["id"].as_u64().unwrap_or(0)))
            .cloned()
            .collect();
        if mine.len() == ids.len()
            && mine
                .iter()
                .all(|t| !matches!(t["state"].as_str(), Some("queued" | "running")))
        {
            return mine;
        }
        assert!(
            Instant::now() < deadline,
            "transfers still running: {mine:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn files_browse_upload_download_overwrite_cancel_and_delete() {
    let server = Server::start();
    let h = harness();
    login_as_session_account(&h, &server);
    let home = h.ok("files_home", json!({"session": "s1"}));
    let home = home.as_str().expect("home").to_owned();
    let dir = format!("{home}/ipc");
    h.ok("files_mkdir", json!({"session": "s1", "path": dir}));
    let e = h.err("files_mkdir", json!({"session": "s1", "path": dir}));
    assert_eq!(e["code"], "Exists", "{e}");
    let e = h.err("files_list", json!({"session": "s1", "path": "relative"}));
    assert_eq!(e["code"], "InvalidInput", "{e}");

    // Upload a file and a folder through the queue.
    let local = tempfile::tempdir().expect("tempdir");
    let big = local.path().join("big.bin");
    let sum = bai_testkit::write_noise_file(&big, 16 << 20, 3);
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("sub/x.txt"), "x\n").expect("write");
    let ids = h.ok(
        "files_upload",
        json!({"session": "s1", "remoteDir": dir, "localPaths": [big, tree], "folder": false, "overwrite": false}),
    );
    let ids: Vec<u64> = ids
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(ids.len(), 2);
    for t in wait_transfers(&h, &ids) {
        assert_eq!(t["state"], "done", "{t}");
        assert_eq!(t["direction"], "upload");
        assert_eq!(t["session"], "s1");
    }
    let listing = h.ok("files_list", json!({"session": "s1", "path": dir}));
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["tree", "big.bin"], "folders first");
    assert_eq!(listing["entries"][1]["size"], 16 << 20);
    assert_eq!(listing["entries"][0]["kind"], "dir");

    // Overwrite needs asking, both ways.
    let e = h.err(
        "files_upload",
        json!({"session": "s1", "remoteDir": dir, "localPaths": [big], "folder": false, "overwrite": false}),
    );
    assert_eq!(e["code"], "Exists", "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("big.bin")),
        "{e}"
    );

    let down = tempfile::tempdir().expect("tempdir");
    let ids = h.ok(
        "files_download",
        json!({"session": "s1", "remotePaths": [format!("{dir}/big.bin"), format!("{dir}/tree")], "localDir": down.path(), "overwrite": false}),
    );
    let ids: Vec<u64> = ids
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    for t in wait_transfers(&h, &ids) {
        assert_eq!(t["state"], "done", "{t}");
    }
    assert_eq!(bai_testkit::sha256_file(&down.path().join("big.bin")), sum);
    assert_eq!(
        std::fs::read_to_string(down.path().join("tree/sub/x.txt")).expect("x"),
        "x\n"
    );
    let e = h.err(
        "files_download",
        json!({"session": "s1", "remotePaths": [format!("{dir}/big.bin")], "localDir": down.path(), "overwrite": false}),
    );
    assert_eq!(e["code"], "Exists", "{e}");
    // Several conflicts are all named (what "Replace" will replace is what the user saw).
    let e = h.err(
        "files_download",
        json!({"session": "s1", "remotePaths": [format!("{dir}/big.bin"), format!("{dir}/tree")], "localDir": down.path(), "overwrite": false}),
    );
    assert_eq!(e["code"], "Exists", "{e}");
    let m = e["message"].as_str().unwrap_or_default();
    assert!(
        m.starts_with("2 items already exist") && m.contains("big.bin") && m.contains("tree"),
        "{e}"
    );
    let ids = h.ok(
        "files_download",
        json!({"session": "s1", "remotePaths": [format!("{dir}/big.bin")], "localDir": down.path(), "overwrite": true}),
    );
    let ids: Vec<u64> = ids
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(wait_transfers(&h, &ids)[0]["state"], "done");

    // Cancel right away: cancelled, nothing left.
    let fresh = tempfile::tempdir().expect("tempdir");
    let ids = h.ok(
        "files_download",
        json!({"session": "s1", "remotePaths": [format!("{dir}/big.bin")], "localDir": fresh.path(), "overwrite": false}),
    );
    let id = ids[0].as_u64().expect("id");
    h.ok("transfer_cancel", json!({"id": id}));
    assert_eq!(wait_transfers(&h, &[id])[0]["state"], "cancelled");
    assert_eq!(std::fs::read_dir(fresh.path()).expect("dir").count(), 0);

    // Rename, delete; finished transfers can be cleared.
    let e = h.err(
        "files_rename",
        json!({"session": "s1", "from": format!("{dir}/tree"), "to": format!("{dir}/big.bin")}),
    );
    assert_eq!(e["code"], "Exists", "{e}");
    h.ok(
        "files_rename",
        json!({"session": "s1", "from": format!("{dir}/tree"), "to": format!("{dir}/tree2")}),
    );
    h.ok("files_delete", json!({"session": "s1", "path": dir}));
    let e = h.err("files_list", json!({"session": "s1", "path": dir}));
    assert_eq!(e["code"], "FileNotFound", "{e}");
    h.ok("transfer_clear", json!({}));
    assert_eq!(h.ok("transfer_list", json!({})), json!([]));
}

#[test]
fn a_changed_host_key_is_refused_with_an_explanation() {
    let server = Server::start();
    let h = harness();
    login_as_session_account(&h, &server);
    let id = server.sb().session("s1").expect("s1").id.to_string();
    let kh = bai_core::commands::known_hosts_path(h.dir.path());
    std::fs::write(
        &kh,
        format!("{id} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"),
    )
    .expect("a pin for another key");
    let e = h.err("files_home", json!({"session": "s1"}));
    assert_eq!(e["code"], "HostKeyChanged", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("has changed")),
        "{e}"
    );
    assert!(
        e["hint"]
            .as_str()
            .is_some_and(|m| m.contains("ssh-keygen -R")),
        "{e}"
    );
}
