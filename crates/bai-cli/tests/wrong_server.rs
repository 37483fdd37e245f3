//! `bai login` at a wrong server address says precisely what is wrong, in the same words the
//! app shows (both come from bai-core): the other kind of Backend.AI server, a page that is
//! not Backend.AI, each TLS failure, each way of being unreachable.

use std::sync::Arc;

use bai_core::bai_api::{Mode, Sensitive};
use bai_core::{ErrorCode, LoginForm, MemoryStore, SecretStore, Workspace};
use bai_testkit::fake::{self, BadCert};
use bai_testkit::{text, within, CliWorld, TEST_SECS};

const BAI: &str = env!("CARGO_BIN_EXE_bai");

/// One wrong address: how to log in there, and what both front ends must say.
struct Case {
    what: &'static str,
    endpoint: String,
    mode: Mode,
    code: ErrorCode,
    exit: i32,
    says: &'static [&'static str],
    hint_says: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bai_login_explains_a_wrong_server_address() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let foreign = fake::foreign_site().await;
        let untrusted = fake::tls_server(BadCert::SelfSigned).await;
        let (closed, port) = bai_testkit::taken_port();
        drop(closed);
        let cases = [
            Case {
                what: "session mode at the manager",
                endpoint: w.manager.clone(),
                mode: Mode::Session,
                code: ErrorCode::BadUrl,
                exit: 3,
                says: &["is a Backend.AI manager", "use API mode"],
                hint_says: "--mode api",
            },
            Case {
                what: "API mode at the webserver",
                endpoint: w.webserver.clone(),
                mode: Mode::Api,
                code: ErrorCode::BadUrl,
                exit: 3,
                says: &["is a Backend.AI webserver", "use session mode"],
                hint_says: "--mode session",
            },
            Case {
                what: "a foreign web page",
                endpoint: format!("http://{foreign}/"),
                mode: Mode::Session,
                code: ErrorCode::BadUrl,
                exit: 3,
                says: &["is not a Backend.AI server", "HTML page"],
                hint_says: "web UI",
            },
            Case {
                what: "https at a plain http port",
                endpoint: w.webserver.replace("http://", "https://"),
                mode: Mode::Session,
                code: ErrorCode::Tls,
                exit: 9,
                says: &["does not speak TLS"],
                hint_says: "http://",
            },
            Case {
                what: "an untrusted certificate",
                endpoint: format!("https://{}/", untrusted.addr),
                mode: Mode::Api,
                code: ErrorCode::Tls,
                exit: 9,
                says: &["certificate is not trusted"],
                hint_says: "--ca-file",
            },
            Case {
                what: "a closed port",
                endpoint: format!("http://127.0.0.1:{port}/"),
                mode: Mode::Session,
                code: ErrorCode::Unreachable,
                exit: 9,
                says: &["connection refused"],
                hint_says: "port",
            },
            Case {
                what: "a host name that does not resolve",
                endpoint: "http://bai-test.invalid/".into(),
                mode: Mode::Api,
                code: ErrorCode::Unreachable,
                exit: 9,
                says: &["does not resolve"],
                hint_says: "host name",
            },
        ];
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());
        let ws = Workspace::new(w.root().join("app-config"), store);
        for c in cases {
            let mut cmd = match c.mode {
                Mode::Api => w.bai([
                    "login",
                    "--endpoint",
                    &c.endpoint,
                    "--mode",
                    "api",
                    "--access-key",
                    "AKIATEST",
                    "--password-stdin",
                ]),
                _ => w.bai([
                    "login",
                    "--endpoint",
                    &c.endpoint,
                    "--email",
                    "me@example.com",
                    "--password-stdin",
                ]),
            };
            cmd.env_remove("BACKEND_ENDPOINT");
            let cli = w.run(cmd, Some("secret\n")).await;
            let err = text(&cli.stderr);
            assert_eq!(cli.status.code(), Some(c.exit), "{}: {err}", c.what);
            for s in c.says {
                assert!(err.contains(s), "{}: {s:?} missing in\n{err}", c.what);
            }
            let app = ws
                .login(LoginForm {
                    endpoint: c.endpoint.clone(),
                    mode: c.mode,
                    email: Some("me@example.com".into()),
                    password: Some(Sensitive::new("secret".into())),
                    access_key: Some("AKIATEST".into()),
                    secret_key: Some(Sensitive::new("secret".into())),
                    ..LoginForm::default()
                })
                .await
                .expect_err(c.what);
            assert_eq!(app.code(), c.code, "{}: {app}", c.what);
            assert!(
                err.contains(&app.to_string()),
                "{}: the CLI says what the app says\n  app: {app}\n  cli: {err}",
                c.what
            );
            let hint = app.hint().unwrap_or_default();
            assert!(hint.contains(c.hint_says), "{}: hint {hint:?}", c.what);
            assert!(err.contains(&format!("hint: {hint}")), "{}: {err}", c.what);
        }
    })
    .await;
}
