//! bai-core against an in-process sandbox: login and restore through the secret store, a tunnel
//! with preferred-port fallback that is ready only after the SSH banner, the registry, and the
//! stdio proxy.

use std::sync::Arc;

use bai_core::{
    Config, Connection, Credentials, EnvOverrides, ErrorCode, MemoryStore, Overrides, SecretKind,
    SecretStore, TunnelRegistry, TunnelRequest,
};
use bai_sandbox::SessionSpec;
use bai_testkit::{sandbox, taken_port, within, TEST_SECS};
use tokio::io::AsyncReadExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_restore_tunnel_registry_and_stdio() {
    within(TEST_SECS, async {
        let (sb, _) =
            sandbox::with_sessions(bai_sandbox::Config::default(), [SessionSpec::running("s1")])
                .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::load_from(dir.path()).expect("config");
        let p = config.profile_mut("default");
        p.endpoint = Some(sb.webserver_url());
        let profile = config
            .resolve("default", &EnvOverrides::default(), &Overrides::default())
            .expect("resolve");
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());

        let user = sb.user().clone();
        let wrong = Connection::login(
            profile.clone(),
            store.clone(),
            Credentials::Password {
                email: user.email.clone(),
                password: "nope".into(),
                otp: None,
                save_password: false,
            },
        )
        .await
        .expect_err("wrong password");
        assert_eq!(wrong.code(), ErrorCode::AuthFailed);
        Connection::login(
            profile.clone(),
            store.clone(),
            Credentials::Password {
                email: user.email.clone(),
                password: user.password.clone().into(),
                otp: None,
                save_password: false,
            },
        )
        .await
        .expect("login");
        assert!(store
            .get("default", SecretKind::LoginSession)
            .expect("get")
            .is_some());

        // A later run restores the login from the store.
        let conn = Connection::restore(profile, store).expect("restore");
        assert_eq!(conn.session_apps("s1").await.expect("apps"), ["sshd"]);
        let e = conn.session_apps("nope").await.expect_err("unknown");
        assert_eq!(e.code(), ErrorCode::SessionNotFound);

        // Preferred port taken: fallback, reported, and ready only after the banner.
        let (taken, port) = taken_port();
        let t = conn
            .open_tunnel(TunnelRequest::new(&conn, "s1", "sshd", Some(port)))
            .await
            .expect("tunnel");
        assert!(t.fell_back(), "{}", t.port_note);
        assert!(t.port_note.contains(&port.to_string()));
        assert!(t
            .banner
            .as_deref()
            .is_some_and(|b| b.starts_with("SSH-2.0-")));
        let mut strict = TunnelRequest::new(&conn, "s1", "sshd", Some(port));
        strict.bind.fallback = false;
        let e = conn.open_tunnel(strict).await.expect_err("in use");
        assert_eq!(e.code(), ErrorCode::PortInUse);

        let registry = TunnelRegistry::new();
        let addr = t.local_addr();
        registry.insert(t);
        let key = registry
            .find(&conn.login_id(), "s1", "sshd")
            .expect("found by its login");
        assert_eq!(registry.local_addr(&key), Some(addr));
        let list = registry.list();
        assert_eq!(list.len(), 1);
        assert!(list[0].stats.total >= 1, "the probe went through it");
        assert!(registry.stop(&key).await);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());

        // stdio mode: the server's banner arrives on the writer.
        let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
        let (r, w) = tokio::io::split(theirs);
        let cancel = tokio_util::sync::CancellationToken::new();
        let c2 = conn.clone();
        let cancel2 = cancel.clone();
        let task = tokio::spawn(async move { c2.proxy_stdio("s1", "sshd", r, w, cancel2).await });
        let mut buf = [0u8; 8];
        ours.read_exact(&mut buf).await.expect("banner");
        assert_eq!(&buf, b"SSH-2.0-");
        cancel.cancel();
        drop(ours);
        task.await.expect("join").expect("stdio");
        drop(taken);
        sb.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_leaves_no_secret_of_the_old_one() {
    // A saved password of a session-mode login must not survive an API-mode login of the same
    // profile (to another server): a `.env` flipping the mode back would send it there.
    within(TEST_SECS, async {
        let (sb, _) = sandbox::with_sessions(bai_sandbox::Config::default(), []).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::load_from(dir.path()).expect("config");
        config.profile_mut("default").endpoint = Some(sb.webserver_url());
        let profile = config
            .resolve("default", &EnvOverrides::default(), &Overrides::default())
            .expect("resolve");
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());
        let user = sb.user().clone();
        let conn = Connection::login(
            profile,
            store.clone(),
            Credentials::Password {
                email: user.email.clone(),
                password: user.password.clone().into(),
                otp: None,
                save_password: true,
            },
        )
        .await
        .expect("session login");
        assert_eq!(
            conn.profile().login_endpoint.as_ref(),
            Some(&conn.profile().endpoint),
            "the new secrets belong to the endpoint just logged in to"
        );
        assert!(store
            .get("default", SecretKind::Password)
            .expect("get")
            .is_some());

        let api = config
            .resolve(
                "default",
                &EnvOverrides::default(),
                &Overrides {
                    endpoint: Some(sb.manager_url()),
                    mode: Some(bai_core::bai_api::Mode::Api),
                    ..Overrides::default()
                },
            )
            .expect("resolve");
        let conn2 = Connection::login(
            api,
            store.clone(),
            Credentials::Keypair {
                access_key: user.access_key.clone(),
                secret_key: user.secret_key.clone().into(),
            },
        )
        .await
        .expect("api login");
        for kind in [SecretKind::Password, SecretKind::LoginSession] {
            assert!(
                store.get("default", kind).expect("get").is_none(),
                "{kind:?} of the old login is gone"
            );
        }
        assert!(store
            .get("default", SecretKind::SecretKey)
            .expect("get")
            .is_some());
        assert_ne!(
            conn.login_id(),
            conn2.login_id(),
            "two logins are two owners of tunnels"
        );
    })
    .await;
}
