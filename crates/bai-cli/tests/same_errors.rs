//! The CLI and the app speak one error vocabulary: the same failure gives the same
//! `ErrorCode` (the CLI's exit code is a function of it) and the same wording. The app's side is
//! `bai_core::Workspace`, which its commands call one line each and whose errors it serializes
//! as `{code: e.code(), message: e.to_string(), hint: e.hint()}`.

use std::sync::Arc;

use bai_core::bai_api::{Mode, Sensitive};
use bai_core::{ErrorCode, FileStore, LoginForm, SecretStore, Workspace};
use bai_sandbox::{SessionSpec, Status};
use bai_testkit::{text, within, CliWorld, TEST_SECS};

const BAI: &str = env!("CARGO_BIN_EXE_bai");

/// The exit code the CLI documents for each code (`bai --help`).
fn exit_code(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::Config | ErrorCode::BadUrl | ErrorCode::UnsupportedVersion => 3,
        ErrorCode::AuthFailed | ErrorCode::TotpRequired => 4,
        ErrorCode::LoginRequired => 5,
        ErrorCode::SessionNotFound => 6,
        ErrorCode::AppNotFound => 7,
        ErrorCode::SessionNotRunning => 8,
        ErrorCode::Network | ErrorCode::Unreachable | ErrorCode::Tls => 9,
        ErrorCode::PortInUse => 10,
        ErrorCode::FileNotFound => 11,
        ErrorCode::HostKeyChanged | ErrorCode::SshAuthFailed => 12,
        ErrorCode::Exists => 13,
        ErrorCode::Cancelled => 130,
        ErrorCode::InvalidInput => 2,
        _ => 1,
    }
}

#[track_caller]
fn same(fault: &str, cli: &std::process::Output, app: &bai_core::Error, code: ErrorCode) {
    let err = text(&cli.stderr);
    assert_eq!(app.code(), code, "{fault}: the app's code ({app})");
    assert_eq!(
        cli.status.code(),
        Some(exit_code(code)),
        "{fault}: the CLI's exit code\n{err}"
    );
    let message = app.to_string();
    assert!(
        err.contains(&message),
        "{fault}: the CLI says what the app says\n  app: {message}\n  cli: {err}"
    );
    if let Some(hint) = app.hint() {
        assert!(
            err.contains(&format!("hint: {hint}")),
            "{fault}: same hint\n{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_app_report_the_same_failures_alike() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        w.session("s1").await;
        w.sb()
            .create_session(SessionSpec::with_status("prep", Status::Preparing))
            .await
            .expect("prep");
        let user = w.sb().user().clone();
        let app_dir = w.root().join("app-config");
        let store: Arc<dyn SecretStore> = Arc::new(FileStore::new(&app_dir));
        let ws = Workspace::new(app_dir.clone(), store);
        let form = |endpoint: &str, password: &str| LoginForm {
            endpoint: endpoint.to_owned(),
            mode: Mode::Session,
            email: Some(user.email.clone()),
            password: Some(Sensitive::new(password.to_owned())),
            remember: true,
            ..LoginForm::default()
        };
        let cli_login = |endpoint: &str, password: &str| {
            let cmd = w.bai([
                "login",
                "--endpoint",
                endpoint,
                "--email",
                &user.email,
                "--password-stdin",
            ]);
            (cmd, format!("{password}\n"))
        };

        // A server address that is not a URL.
        let (cmd, input) = cli_login("bai.example.com", "x");
        let cli = w.run(cmd, Some(&input)).await;
        let app = ws
            .login(form("bai.example.com", "x"))
            .await
            .expect_err("bad url");
        same("bad URL", &cli, &app, ErrorCode::BadUrl);

        // Nothing listens there (port 9 is closed on loopback).
        let (cmd, input) = cli_login("http://127.0.0.1:9", "x");
        let cli = w.run(cmd, Some(&input)).await;
        let app = ws
            .login(form("http://127.0.0.1:9", "x"))
            .await
            .expect_err("unreachable");
        same("unreachable", &cli, &app, ErrorCode::Unreachable);

        // A wrong password.
        let (cmd, input) = cli_login(&w.webserver, "not-the-password");
        let cli = w.run(cmd, Some(&input)).await;
        let app = ws
            .login(form(&w.webserver, "not-the-password"))
            .await
            .expect_err("wrong password");
        same("wrong password", &cli, &app, ErrorCode::AuthFailed);

        // A preferred port the rules refuse.
        let (cmd, input) = cli_login(&w.webserver, &user.password);
        let mut cmd = cmd;
        cmd.args(["--preferred-port", "80"]);
        let cli = w.run(cmd, Some(&input)).await;
        let app = ws.set_profile_prefs(Some(80), "work").expect_err("port 80");
        same("preferred port 80", &cli, &app, ErrorCode::InvalidInput);

        // Logged in on both sides: SSH to sessions that cannot give it.
        w.login("work").await;
        ws.login(form(&w.webserver, &user.password))
            .await
            .expect("the app logs in");
        let cli = w.bai_run(["ssh", "nope", "--", "true"]).await;
        let app = ws
            .open_ssh("nope", None)
            .await
            .expect_err("no such session");
        same("unknown session", &cli, &app, ErrorCode::SessionNotFound);

        let cli = w.bai_run(["ssh", "prep", "--", "true"]).await;
        let app = ws.open_ssh("prep", None).await.expect_err("not running");
        same(
            "session not running",
            &cli,
            &app,
            ErrorCode::SessionNotRunning,
        );

        // An account that is not a user name.
        let cli = w
            .bai_run(["--user", "a b", "ssh", "s1", "--", "true"])
            .await;
        let app = ws
            .open_ssh("s1", Some("a b".into()))
            .await
            .expect_err("bad account");
        same("bad account", &cli, &app, ErrorCode::InvalidInput);
        ws.logout().await.expect("logout");
    })
    .await;
}
