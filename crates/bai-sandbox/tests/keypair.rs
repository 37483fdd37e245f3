//! The account's SSH keypair (`/auth/ssh-keypair`) in both modes, and its effect on new
//! sessions, checked with the real `ssh` against real sshd.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use bai_sandbox::{Sandbox, SessionSpec, SshServer};
use bai_testkit::sandbox::demo as sandbox;
use bai_testkit::SshTarget;
use common::*;
use serde_json::{json, Value};

/// A request through the webserver's `/func` relay (session mode).
async fn web(
    sb: &Sandbox,
    sid: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut rb = c
        .request(
            method.parse().unwrap(),
            format!("{}/func{path}", sb.webserver_url()),
        )
        .header("X-BackendAI-SessionID", sid);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    read(rb.send().await.unwrap()).await
}

/// A signed request to the manager (API mode).
async fn mgr(sb: &Sandbox, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    read(api(sb, method, path, text.as_deref()).await).await
}

async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v: Value = r.json().await.unwrap();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json");
    }
    (status, v)
}

fn slug(v: &Value) -> &str {
    v["type"].as_str().unwrap().rsplit('/').next().unwrap()
}

/// Writes a private key (0600) for the ssh client.
fn key_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `ssh-keygen` a keypair into `dir/name`; returns (public, private).
async fn keygen(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let f = dir.join(name);
    let mut cmd = tokio::process::Command::new("ssh-keygen");
    cmd.args(["-q", "-C", "test@example"])
        .args(args)
        .arg("-f")
        .arg(&f);
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(f.with_extension("pub")).unwrap(),
        std::fs::read_to_string(&f).unwrap(),
    )
}

/// Whether `ssh` with only `key` logs in to the session.
async fn logs_in(sb: &Sandbox, session: &str, key: &Path) -> bool {
    let s = sb.session(session).unwrap();
    let out = SshTarget::new(s.sshd_port.unwrap(), key, s.account.clone())
        .hermetic()
        .ssh(&["echo", "ok"])
        .output()
        .await
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_patch_in_both_modes_reach_new_sessions_only() {
    within(90, async {
        let sb = sandbox(1).await;
        let sid = login_sid(&sb).await;
        let tmp = tempfile::tempdir().unwrap();
        let old = sb.session("demo-1").unwrap();
        let old_key = old.id_container.clone().unwrap();

        // No stored keypair: null in both modes.
        assert_eq!(
            mgr(&sb, "GET", "/auth/ssh-keypair", None).await,
            (200, json!({"ssh_public_key": null}))
        );
        assert_eq!(
            web(&sb, &sid, "GET", "/auth/ssh-keypair", None).await,
            (200, json!({"ssh_public_key": null}))
        );

        // PATCH (API mode): RSA 2048, PEM; GET returns it in both modes.
        let (st, v) = mgr(&sb, "PATCH", "/auth/ssh-keypair", None).await;
        assert_eq!(st, 200, "{v}");
        let public1 = v["ssh_public_key"].as_str().unwrap().to_owned();
        let private1 = v["ssh_private_key"].as_str().unwrap().to_owned();
        assert!(
            public1.starts_with("ssh-rsa ")
                && public1.ends_with('\n')
                && !public1.trim_end().contains('\n')
        );
        assert!(
            private1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
            "{private1}"
        );
        assert!(private1.ends_with("-----END RSA PRIVATE KEY-----\n"));
        assert_eq!(
            mgr(&sb, "GET", "/auth/ssh-keypair", None).await.1["ssh_public_key"],
            json!(public1)
        );
        assert_eq!(
            web(&sb, &sid, "GET", "/auth/ssh-keypair", None).await.1["ssh_public_key"],
            json!(public1)
        );

        // PATCH (session mode): a different key, seen by API mode too.
        let (st, v) = web(&sb, &sid, "PATCH", "/auth/ssh-keypair", None).await;
        assert_eq!(st, 200, "{v}");
        let public2 = v["ssh_public_key"].as_str().unwrap().to_owned();
        let private2 = v["ssh_private_key"].as_str().unwrap().to_owned();
        assert_ne!(public1, public2);
        assert!(private2.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert_eq!(
            mgr(&sb, "GET", "/auth/ssh-keypair", None).await.1["ssh_public_key"],
            json!(public2)
        );

        // A new session gets the stored keypair: authorized_keys, id_container, .ssh/id_rsa.
        let new = sb
            .create_session(SessionSpec::running("new"))
            .await
            .unwrap();
        let idc = new.id_container.clone().unwrap();
        assert_eq!(std::fs::read_to_string(&idc).unwrap(), private2);
        assert_eq!(
            std::fs::read_to_string(new.home.join(".ssh/authorized_keys")).unwrap(),
            public2
        );
        assert_eq!(
            std::fs::read_to_string(new.home.join(".ssh/id_rsa")).unwrap(),
            private2
        );
        let new_key = key_file(tmp.path(), "new", &private2);
        assert!(
            logs_in(&sb, "new", &new_key).await,
            "the new session refuses the account key"
        );
        assert!(
            !logs_in(&sb, "new", &old_key).await,
            "the new session accepts the old session key"
        );
        // Its id_container is what `download_single` hands out.
        let r = api(
            &sb,
            "POST",
            "/session/new/download_single?file=%2Fhome%2Fwork%2Fid_container",
            None,
        )
        .await;
        assert_eq!(r.text().await.unwrap(), private2);

        // The old session is unchanged.
        assert_eq!(
            std::fs::read_to_string(&old_key).unwrap(),
            std::fs::read_to_string(old.id_container.as_ref().unwrap()).unwrap()
        );
        assert!(
            logs_in(&sb, "demo-1", &old_key).await,
            "the old session refuses its own key"
        );
        assert!(
            !logs_in(&sb, "demo-1", &new_key).await,
            "the old session accepts the new account key"
        );

        // The user's own .ssh still wins: no id_container, no account key.
        let own = sb
            .create_session(SessionSpec {
                authorized_keys: Some(public1.clone()),
                ..SessionSpec::running("own")
            })
            .await
            .unwrap();
        assert!(own.id_container.is_none());
        assert!(!own.home.join(".ssh/id_rsa").exists());
        assert_eq!(
            std::fs::read_to_string(own.home.join(".ssh/authorized_keys")).unwrap(),
            public1
        );
        assert!(!logs_in(&sb, "own", &new_key).await);
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_accepts_matching_pairs_and_refuses_the_rest() {
    within(90, async {
        let sb = sandbox(0).await;
        let sid = login_sid(&sb).await;
        let tmp = tempfile::tempdir().unwrap();

        // Ed25519 in OpenSSH format (session mode), trailing whitespace normalised.
        let (ed_pub, ed_priv) = keygen(tmp.path(), "ed", &["-t", "ed25519", "-N", ""]).await;
        assert!(ed_priv.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let body = json!({"pubkey": format!("{}  \r\n\n", ed_pub.trim_end()), "privkey": format!("{}\n\n  ", ed_priv.trim_end())});
        let (st, v) = web(&sb, &sid, "POST", "/auth/ssh-keypair", Some(body)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["ssh_public_key"], json!(ed_pub));
        assert_eq!(mgr(&sb, "GET", "/auth/ssh-keypair", None).await.1["ssh_public_key"], json!(ed_pub));
        let s = sb.create_session(SessionSpec::running("ed")).await.unwrap();
        assert_eq!(std::fs::read_to_string(s.id_container.unwrap()).unwrap(), ed_priv);
        let ed_key = key_file(tmp.path(), "ed-copy", &ed_priv);
        assert!(logs_in(&sb, "ed", &ed_key).await, "the session refuses the uploaded Ed25519 key");
        // Dropbear, as production runs it, takes it too.
        sb.create_session(SessionSpec::running("ed-dropbear").ssh_server(SshServer::Dropbear)).await.unwrap();
        assert!(logs_in(&sb, "ed-dropbear", &ed_key).await, "dropbear refuses the uploaded Ed25519 key");

        // ECDSA in PEM and RSA in OpenSSH format (API mode).
        let (ec_pub, ec_priv) = keygen(tmp.path(), "ec", &["-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", ""]).await;
        assert!(ec_priv.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let (st, v) = mgr(&sb, "POST", "/auth/ssh-keypair", Some(json!({"pubkey": ec_pub, "privkey": ec_priv}))).await;
        assert_eq!(st, 200, "{v}");
        let (rsa_pub, rsa_priv) = keygen(tmp.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]).await;
        let (st, v) = mgr(&sb, "POST", "/auth/ssh-keypair", Some(json!({"pubkey": rsa_pub, "privkey": rsa_priv}))).await;
        assert_eq!(st, 200, "{v}");
        let s = sb.create_session(SessionSpec::running("rsa")).await.unwrap();
        assert!(logs_in(&sb, "rsa", s.id_container.as_ref().unwrap()).await);

        // Errors, in both modes; the stored key stays.
        let (_, enc_priv) = keygen(tmp.path(), "enc", &["-t", "ed25519", "-N", "secret-pass"]).await;
        let (enc_pem_pub, enc_pem_priv) = keygen(tmp.path(), "encpem", &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "secret-pass"]).await;
        let cases = [
            (json!({"pubkey": rsa_pub, "privkey": ed_priv}), "ssh-keypair-mismatch", ""),
            (json!({"pubkey": ed_pub, "privkey": rsa_priv}), "ssh-keypair-mismatch", ""),
            (json!({"pubkey": "not a key", "privkey": ed_priv}), "invalid-ssh-public-key", ""),
            (json!({"pubkey": "ssh-ed25519 AAAA!!!", "privkey": ed_priv}), "invalid-ssh-public-key", ""),
            (json!({"pubkey": ed_pub, "privkey": "garbage"}), "invalid-ssh-private-key", ""),
            (json!({"pubkey": ed_pub, "privkey": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAgarbage\n-----END OPENSSH PRIVATE KEY-----\n"}), "invalid-ssh-private-key", ""),
            (json!({"pubkey": ed_pub, "privkey": enc_priv}), "invalid-ssh-private-key", "Password-protected private keys are not supported"),
            (json!({"pubkey": enc_pem_pub, "privkey": enc_pem_priv}), "invalid-ssh-private-key", "Password-protected private keys are not supported"),
        ];
        for (body, want, msg) in cases {
            for (st, v) in [
                mgr(&sb, "POST", "/auth/ssh-keypair", Some(body.clone())).await,
                web(&sb, &sid, "POST", "/auth/ssh-keypair", Some(body.clone())).await,
            ] {
                assert_eq!(st, 400, "{body} → {v}");
                assert_eq!(slug(&v), want, "{body} → {v}");
                assert!(v["title"].is_string());
                assert!(v["msg"].as_str().unwrap().contains(msg), "{v}");
            }
        }
        let (st, v) = mgr(&sb, "POST", "/auth/ssh-keypair", Some(json!({"pubkey": rsa_pub}))).await;
        assert_eq!((st, slug(&v)), (400, "invalid-api-params"));
        assert_eq!(mgr(&sb, "GET", "/auth/ssh-keypair", None).await.1["ssh_public_key"], json!(rsa_pub));
        // Unsigned and logged-out requests are refused.
        let r = reqwest::get(format!("{}/auth/ssh-keypair", sb.manager_url())).await.unwrap();
        assert_eq!(r.status(), 400);
        let r = reqwest::get(format!("{}/func/auth/ssh-keypair", sb.webserver_url())).await.unwrap();
        assert_eq!(r.status(), 401);
        sb.shutdown().await;
    })
    .await
}
