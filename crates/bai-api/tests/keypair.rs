//! The account's SSH keypair calls against `bai-sandbox`, in both modes: reading, generating
//! and uploading, their effect on new sessions, and the three refusals as
//! [`ErrorKind::InvalidKey`].

use std::path::Path;

use bai_api::{Client, ClientConfig, ErrorKind, InvalidKeyReason, Sensitive};
use bai_sandbox::{Config, Sandbox, SessionSpec};
use bai_testkit::sandbox::start as sandbox;
use bai_testkit::{within, TEST_SECS};
use url::Url;

fn api_client(sb: &Sandbox) -> Client {
    let u = sb.user();
    Client::new(ClientConfig::api(
        Url::parse(&sb.manager_url()).expect("url"),
        u.access_key.clone().into(),
        u.secret_key.clone().into(),
    ))
    .expect("client")
}

async fn session_client(sb: &Sandbox) -> Client {
    let c = Client::new(ClientConfig::session(
        Url::parse(&sb.webserver_url()).expect("url"),
    ))
    .expect("client");
    let u = sb.user();
    c.login(&u.email, &Sensitive::new(u.password.clone()), None)
        .await
        .expect("login");
    c
}

/// `ssh-keygen` a keypair into `dir/name`; returns (public, private).
async fn keygen(dir: &Path, name: &str, args: &[&str]) -> (String, Sensitive<String>) {
    let f = dir.join(name);
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-C", "me@example"])
        .args(args)
        .arg("-f")
        .arg(&f)
        .output()
        .await
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(f.with_extension("pub")).expect("public key"),
        Sensitive::new(std::fs::read_to_string(&f).expect("private key")),
    )
}

fn refused(e: &bai_api::Error) -> (InvalidKeyReason, String) {
    match e.kind() {
        ErrorKind::InvalidKey { reason, detail } => (*reason, detail.clone()),
        other => panic!("not InvalidKey: {other:?}"),
    }
}

/// `c` is the client under test, `other` the other mode's (they share the account).
async fn exercise(sb: &Sandbox, c: &Client, other: &Client) {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert_eq!(c.ssh_keypair().await.expect("get"), None);

    // Generate: stored, seen by both modes, used by new sessions.
    let k = c.generate_ssh_keypair().await.expect("generate");
    assert!(k.public_key.starts_with("ssh-rsa "), "{}", k.public_key);
    assert!(k
        .private_key
        .expose()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(
        !format!("{k:?}").contains("PRIVATE KEY"),
        "the private key leaks in Debug"
    );
    assert_eq!(
        c.ssh_keypair().await.expect("get"),
        Some(k.public_key.clone())
    );
    assert_eq!(
        other.ssh_keypair().await.expect("get"),
        Some(k.public_key.clone())
    );
    let s = sb
        .create_session(SessionSpec::running("gen"))
        .await
        .expect("session");
    let idc = std::fs::read_to_string(s.id_container.expect("id_container")).expect("read");
    assert_eq!(&idc, k.private_key.expose());

    // Upload an Ed25519 OpenSSH pair.
    let (ed_pub, ed_priv) = keygen(tmp.path(), "ed", &["-t", "ed25519", "-N", ""]).await;
    c.upload_ssh_keypair(&ed_pub, &ed_priv)
        .await
        .expect("upload");
    assert_eq!(c.ssh_keypair().await.expect("get"), Some(ed_pub.clone()));
    let s = sb
        .create_session(SessionSpec::running("ed"))
        .await
        .expect("session");
    let idc = std::fs::read_to_string(s.id_container.expect("id_container")).expect("read");
    assert_eq!(&idc, ed_priv.expose());

    // The three refusals; the stored key stays.
    let (rsa_pub, rsa_priv) =
        keygen(tmp.path(), "rsa", &["-t", "rsa", "-b", "2048", "-N", ""]).await;
    let (_, enc_priv) = keygen(tmp.path(), "enc", &["-t", "ed25519", "-N", "a passphrase"]).await;
    let e = c
        .upload_ssh_keypair(&rsa_pub, &ed_priv)
        .await
        .expect_err("mismatch");
    assert_eq!(refused(&e).0, InvalidKeyReason::Mismatch, "{e}");
    let e = c
        .upload_ssh_keypair("ssh-rsa garbage", &rsa_priv)
        .await
        .expect_err("bad public key");
    assert_eq!(refused(&e).0, InvalidKeyReason::PublicKey, "{e}");
    let e = c
        .upload_ssh_keypair(&rsa_pub, &Sensitive::new("not a key".to_owned()))
        .await
        .expect_err("bad private key");
    assert_eq!(refused(&e).0, InvalidKeyReason::PrivateKey, "{e}");
    let e = c
        .upload_ssh_keypair(&ed_pub, &enc_priv)
        .await
        .expect_err("encrypted private key");
    let (reason, detail) = refused(&e);
    assert_eq!(reason, InvalidKeyReason::PrivateKey);
    assert!(detail.contains("Password-protected"), "{detail}");
    assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");
    assert_eq!(c.ssh_keypair().await.expect("get"), Some(ed_pub));
}

#[tokio::test]
async fn api_mode_keypair() {
    within(TEST_SECS, async {
        let sb = sandbox(Config::default()).await;
        let c = api_client(&sb);
        let other = session_client(&sb).await;
        exercise(&sb, &c, &other).await;
    })
    .await;
}

#[tokio::test]
async fn session_mode_keypair() {
    within(TEST_SECS, async {
        let sb = sandbox(Config::default()).await;
        let c = session_client(&sb).await;
        let other = api_client(&sb);
        exercise(&sb, &c, &other).await;
        // Logged out: no keypair calls.
        c.logout().await.expect("logout");
        let e = c.ssh_keypair().await.expect_err("logged out");
        assert!(
            matches!(e.kind(), ErrorKind::LoginExpired | ErrorKind::NotLoggedIn),
            "{e}"
        );
    })
    .await;
}
