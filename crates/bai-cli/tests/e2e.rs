//! End to end: the built `bai` binary against an in-process `bai_sandbox::Sandbox` (real sshd
//! sessions) with the real OpenSSH clients. Every test has its own sandbox, HOME, config dir,
//! working directory and TMPDIR, and runs under a timeout.

use std::process::Output;
use std::time::Duration;

use bai_sandbox::{Config, SessionSpec, Status};
use bai_testkit::{
    assert_success as ok, mode, sha256_file, text, within, CliWorld, SshTarget, CMD_TIMEOUT,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const BAI: &str = env!("CARGO_BIN_EXE_bai");
const TEST_SECS: u64 = 90;

type World = CliWorld;

#[track_caller]
fn fails_with(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert!(err.contains("error: "), "no error line: {err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_login_ps_and_logout() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.sb()
            .create_session(SessionSpec::with_status("s2", Status::Preparing))
            .await
            .expect("s2");
        w.login(&s1.account).await;
        // Profile saved; the login cookie in the 0600 fallback file, never in the config.
        let config = std::fs::read_to_string(w.cfg.join("config.toml")).expect("config");
        assert!(
            config.contains(&w.webserver) && config.contains("mode = \"session\""),
            "{config}"
        );
        assert!(
            config.contains(&format!("account = \"{}\"", s1.account)),
            "{config}"
        );
        let secrets = w.cfg.join("secrets.json");
        assert_eq!(mode(&secrets), 0o600);

        let out = w.bai_run(&["ps"]).await;
        ok(&out);
        let table = text(&out.stdout);
        assert!(table.starts_with("NAME"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("s1 ") && l.contains("RUNNING") && l.contains("sshd")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("s2 ") && l.contains("PREPARING")),
            "{table}"
        );

        w.sb().terminate("s2").await.expect("terminate");
        let out = w.bai_run(&["ps", "--json"]).await;
        ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let names: Vec<&str> = v
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names, ["s1"]);
        assert_eq!(v[0]["ssh"], true);
        let out = w.bai_run(&["ps", "--all", "--json"]).await;
        ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(
            v.as_array()
                .expect("array")
                .iter()
                .any(|s| s["name"] == "s2" && s["status"] == "TERMINATED"),
            "{v}"
        );

        ok(&w.bai_run(&["logout"]).await);
        fails_with(&w.bai_run(&["ps"]).await, 5, "not logged in");
        assert!(text(&w.bai_run(&["ps"]).await.stderr).contains("hint: run `bai login`"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_login_says_run_bai_login_unless_the_password_was_saved() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let user = w.sb().user().clone();
        let secrets = w.cfg.join("secrets.json");
        let expire = || {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&secrets).expect("secrets")).expect("json");
            v["default/login-session"] = "expired-or-revoked".into();
            std::fs::write(&secrets, v.to_string()).expect("write");
        };
        w.login("work").await;
        expire();
        let out = w.bai_run(&["ps"]).await;
        fails_with(&out, 5, "has expired");
        assert!(text(&out.stderr).contains("hint: run `bai login`"));

        let out = w
            .run(
                w.bai([
                    "login",
                    "--email",
                    &user.email,
                    "--password-stdin",
                    "--save-password",
                ]),
                Some(&format!("{}\n", user.password)),
            )
            .await;
        ok(&out);
        expire();
        ok(&w.bai_run(&["ps"]).await);
        ok(&w.bai_run(&["logout"]).await);
        assert!(!secrets.exists(), "logout forgets every secret");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_login_from_dotenv_then_ssh() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        let user = w.sb().user().clone();
        // The guide's .env, API flavour.
        std::fs::write(
            w.cwd.join(".env"),
            format!(
                "BACKEND_ENDPOINT_TYPE=api\nBACKEND_ENDPOINT={}\nBACKEND_ACCESS_KEY={}\n",
                w.manager, user.access_key
            ),
        )
        .expect(".env");
        let out = w
            .run(
                w.bai(["login", "--password-stdin"]),
                Some(&format!("{}\n", user.secret_key)),
            )
            .await;
        ok(&out);
        assert!(
            text(&out.stdout).contains("api mode"),
            "{}",
            text(&out.stdout)
        );
        let config = std::fs::read_to_string(w.cfg.join("config.toml")).expect("config");
        assert!(
            !config.contains(&user.secret_key),
            "secret key leaked into the config"
        );
        ok(&w.bai_run(&["ps"]).await);
        let out = w
            .bai_run(&["--user", &s1.account, "ssh", "s1", "--", "echo", "ok"])
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");

        // Only environment variables, no stored login at all (as the Python client).
        let mut cmd = w.bai(["ps", "--json"]);
        cmd.env("BAI_CONFIG_DIR", w.tmp.join("fresh"))
            .env("BACKEND_ENDPOINT", &w.manager)
            .env("BACKEND_ACCESS_KEY", &user.access_key)
            .env("BACKEND_SECRET_KEY", &user.secret_key);
        ok(&w.run(cmd, None).await);

        // A wrong secret key is an authentication failure.
        let out = w
            .run(w.bai(["login", "--password-stdin"]), Some("wrong\n"))
            .await;
        fails_with(&out, 4, "auth");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_totp() {
    within(TEST_SECS, async {
        let secret = "JBSWY3DPEHPK3PXP".to_owned();
        let w = World::start_with(
            BAI,
            Config {
                totp_secret: Some(secret.clone()),
                ..Config::default()
            },
        )
        .await;
        let user = w.sb().user().clone();
        let login = |extra: &[&str]| {
            let mut args = vec![
                "login",
                "--endpoint",
                &w.webserver,
                "--email",
                &user.email,
                "--password-stdin",
            ];
            args.extend_from_slice(extra);
            w.bai(&args)
        };
        let out = w.run(login(&[]), Some("not-the-password\n")).await;
        fails_with(&out, 4, "login failed");
        assert!(
            text(&out.stderr).contains("hint: "),
            "{}",
            text(&out.stderr)
        );
        let out = w
            .run(login(&[]), Some(&format!("{}\n", user.password)))
            .await;
        fails_with(&out, 4, "one-time password");
        assert!(text(&out.stderr).contains("--otp"), "{}", text(&out.stderr));
        let otp = bai_sandbox::totp_now(&secret);
        let out = w
            .run(
                login(&["--otp", &otp]),
                Some(&format!("{}\n", user.password)),
            )
            .await;
        ok(&out);
        ok(&w.bai_run(&["ps"]).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_runs_commands_and_returns_their_status() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;
        let out = w.bai_run(&["ssh", "s1", "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
        let out = w.bai_run(&["ssh", "s1", "--", "exit", "3"]).await;
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        // The temporary key is gone.
        let left: Vec<_> = std::fs::read_dir(&w.tmp).expect("tmp").collect();
        assert!(left.is_empty(), "temp files left: {left:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_with_port_fallback_then_plain_ssh_with_downloaded_key() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;

        // The guide: download id_container, run the proxy, ssh with the key.
        let keys = w.cwd.join("keys");
        let out = w
            .bai_run(&[
                "session",
                "download",
                "s1",
                "id_container",
                "-o",
                keys.to_str().expect("utf8"),
            ])
            .await;
        ok(&out);
        let key = keys.join("id_container");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(
            std::fs::read(&key).expect("key"),
            std::fs::read(s1.id_container.as_ref().expect("id_container")).expect("original")
        );

        // A taken preferred port falls back, and says so.
        let (taken, taken_port) = bai_testkit::taken_port();
        let mut cmd = w.bai(["app", "s1", "-b", &format!("127.0.0.1:{taken_port}")]);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null());
        let mut app = cmd.spawn().expect("spawn app");
        let mut lines = BufReader::new(app.stdout.take().expect("stdout")).lines();
        let url = tokio::time::timeout(CMD_TIMEOUT, lines.next_line())
            .await
            .expect("app ready in time")
            .expect("read")
            .expect("a line");
        let port: u16 = url
            .strip_prefix("tcp://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected line {url:?}"))
            .parse()
            .expect("port");
        assert_ne!(port, taken_port);

        let args = SshTarget::new(port, &key, s1.account.clone()).ssh_args(&["echo", "ok"]);
        let out = w.run(w.command("ssh", &args), None).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");

        // Ctrl-C stops it cleanly.
        let pid = app.id().expect("pid").to_string();
        let st = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(st.success());
        let out = tokio::time::timeout(CMD_TIMEOUT, app.wait_with_output())
            .await
            .expect("app stopped in time")
            .expect("wait");
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains(&format!("port {taken_port} cannot be used")),
            "{err}"
        );
        assert!(
            err.contains(" from 127.0.0.1:") && err.contains(" closed ("),
            "no connection events: {err}"
        );
        // The close event names why the connection ended (ssh ended it, or the manager's 1001
        // after the session's sshd closed its side).
        assert!(
            err.lines().any(|l| l.contains(" closed (")
                && (l.ends_with("): local client closed")
                    || l.contains("): the server closed the connection (1001: "))),
            "no close reason: {err}"
        );
        drop(taken);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_both_ways_keeps_the_bytes() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;
        let local = w.cwd.join("up.bin");
        let data: Vec<u8> = (0..8 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&local, &data).expect("write");
        let remote = s1.home.join("up.bin");
        let out = w
            .bai_run(&["scp", "up.bin", &format!("s1:{}", remote.display())])
            .await;
        ok(&out);
        assert_eq!(sha256_file(&remote), sha256_file(&local));
        let out = w
            .bai_run(&["scp", &format!("s1:{}", remote.display()), "down.bin"])
            .await;
        ok(&out);
        assert_eq!(sha256_file(&w.cwd.join("down.bin")), sha256_file(&local));
        // A local-only command line is a usage error.
        fails_with(&w.bai_run(&["scp", "a", "b"]).await, 2, "no remote operand");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_ssh_then_ssh_by_alias_and_remove_restores_the_config() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;
        let ssh_dir = w.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).expect("mkdir");
        let main = ssh_dir.join("config");
        let original = "# my config\nHost github.com\n  User git\n";
        std::fs::write(&main, original).expect("write");

        let out = w.bai_run(&["config-ssh", "--dry-run"]).await;
        ok(&out);
        assert!(
            text(&out.stdout).contains("+ Host bai-s1"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(std::fs::read_to_string(&main).expect("main"), original);

        ok(&w.bai_run(&["config-ssh"]).await);
        ok(&w.bai_run(&["config-ssh"]).await);
        let content = std::fs::read_to_string(&main).expect("main");
        assert_eq!(content.matches("Include ").count(), 1, "{content}");
        assert!(
            content.find("Include").expect("include")
                < content.find("Host github.com").expect("host")
        );
        let include = ssh_dir.join("bai").join("config");
        let entries = std::fs::read_to_string(&include).expect("include file");
        assert!(entries.contains("Host bai-s1\n"), "{entries}");
        assert!(
            entries.contains(&format!("User {}\n", s1.account)),
            "{entries}"
        );
        assert!(entries.contains("proxy --stdio s1"), "{entries}");
        let key = w.cfg.join("keys/default/s1/id_container");
        assert_eq!(mode(&key), 0o600);

        let main_s = main.display().to_string();
        let out = w
            .run(
                w.command(
                    "ssh",
                    ["-F", &main_s, "-o", "BatchMode=yes", "bai-s1", "echo", "ok"],
                ),
                None,
            )
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");

        ok(&w.bai_run(&["config-ssh", "--remove"]).await);
        assert_eq!(std::fs::read(&main).expect("main"), original.as_bytes());
        assert!(!include.exists());
        assert!(!key.exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear_with_distinct_exit_codes() {
    within(TEST_SECS, async {
        let mut w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        w.sb()
            .create_session(SessionSpec::with_status("booting", Status::Preparing))
            .await
            .expect("booting");
        // No endpoint at all.
        fails_with(&w.bai_run(&["ps"]).await, 3, "no Backend.AI endpoint");
        w.login(&s1.account).await;
        fails_with(
            &w.bai_run(&["ssh", "nosuch", "--", "true"]).await,
            6,
            "no such session",
        );
        // As against the real 26.9.6 (its `entity-not-found` answers, which the sandbox now
        // gives too): exit 6 for the session whatever the command, 7 for the app.
        fails_with(&w.bai_run(&["app", "nosuch"]).await, 6, "no such session");
        fails_with(
            &w.bai_run(&["proxy", "--stdio", "nosuch"]).await,
            6,
            "no such session",
        );
        fails_with(&w.bai_run(&["app", "s1", "jupyter"]).await, 7, "jupyter");
        fails_with(
            &w.bai_run(&["ssh", "booting", "--", "true"]).await,
            8,
            "not running",
        );
        // sshd not answering inside a running session: the manager refuses (close 1013), and
        // the webserver, like the real one, does not pass the close on, so bai's readiness
        // probe is what notices (no SSH banner).
        w.sb()
            .session_faults("s1")
            .expect("faults")
            .set_refuse_port(true);
        let out = w.bai_run(&["ssh", "s1", "--", "true"]).await;
        fails_with(&out, 7, "no SSH banner");
        // A port taken with --strict-port.
        let (_taken, p) = bai_testkit::taken_port();
        let p = p.to_string();
        w.sb()
            .session_faults("s1")
            .expect("faults")
            .set_refuse_port(false);
        fails_with(
            &w.bai_run(&["app", "s1", "-b", &p, "--strict-port"]).await,
            10,
            "in use",
        );
        // The server is gone.
        w.sb.take().expect("sandbox").shutdown().await;
        let out = w.bai_run(&["ps"]).await;
        fails_with(&out, 9, "cannot reach");
        assert!(
            text(&out.stderr).contains("hint: "),
            "{}",
            text(&out.stderr)
        );
    })
    .await;
}

/// A server that records every byte sent to it and answers 401: where a hostile `.env` points.
struct Recorder {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> Recorder {
        use tokio::io::AsyncReadExt as _;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
                    {
                        seen.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        Recorder { url, seen, task }
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_secrets_never_follow_a_dotenv_endpoint() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        w.session("s1").await;
        let user = w.sb().user().clone();
        // Session mode with a saved password (the re-login path sends email and password).
        let out = w
            .run(
                w.bai([
                    "login",
                    "--endpoint",
                    &w.webserver,
                    "--email",
                    &user.email,
                    "--password-stdin",
                    "--save-password",
                ]),
                Some(&format!("{}\n", user.password)),
            )
            .await;
        ok(&out);
        // API mode in a second profile.
        let out = w
            .run(
                w.bai([
                    "--profile",
                    "api",
                    "login",
                    "--endpoint",
                    &w.manager,
                    "--access-key",
                    &user.access_key,
                    "--password-stdin",
                ]),
                Some(&format!("{}\n", user.secret_key)),
            )
            .await;
        ok(&out);
        ok(&w.bai_run(&["ps"]).await);

        let mock = Recorder::start().await;
        std::fs::write(
            w.cwd.join(".env"),
            format!("BACKEND_ENDPOINT={}\n", mock.url),
        )
        .expect(".env");
        for profile in ["default", "api"] {
            let out = w.bai_run(&["--profile", profile, "ps"]).await;
            fails_with(&out, 5, "is not the server profile");
            let err = text(&out.stderr);
            assert!(err.contains(&mock.url), "names the .env server: {err}");
            assert!(
                err.contains("BACKEND_ENDPOINT"),
                "says where it came from: {err}"
            );
            assert!(err.contains("hint: "), "{err}");
        }
        // `bai logout` under the .env: the server-side logout is not sent there either.
        let seen = mock.seen();
        for secret in [
            "Cookie",
            "X-BackendAI-SessionID",
            "Authorization",
            "login",
            user.email.as_str(),
            user.password.as_str(),
            user.access_key.as_str(),
        ] {
            assert!(
                !seen
                    .to_ascii_lowercase()
                    .contains(&secret.to_ascii_lowercase()),
                "the .env server saw {secret:?}: {seen}"
            );
        }
        assert_eq!(seen, "", "nothing at all goes to the .env server");

        // `bai proxy --stdio` (ssh's ProxyCommand, run in ssh's working directory) reads no .env:
        // it reaches the profile's server and the session's sshd.
        let mut cmd = w.bai(["proxy", "--stdio", "s1"]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let banner = tokio::time::timeout(CMD_TIMEOUT, lines.next_line())
            .await
            .expect("banner in time")
            .expect("read");
        assert!(
            banner.as_deref().is_some_and(|b| b.starts_with("SSH-2.0-")),
            "{banner:?}"
        );
        drop(child.stdin.take());
        let _ = child.kill().await;
        assert_eq!(mock.seen(), "", "the proxy did not go to the .env server");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_reaches_the_terminal_without_control_characters() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        w.session("evil\u{1b}]0;owned\u{7}\u{1b}[2J").await;
        w.login("work").await;
        let out = w.bai_run(&["ps"]).await;
        ok(&out);
        let table = text(&out.stdout);
        assert!(
            !table.contains('\u{1b}') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(
            table.contains("evil\\u{1b}]0;owned"),
            "shown escaped: {table}"
        );
        // JSON output escapes them as JSON does.
        let out = w.bai_run(&["ps", "--json"]).await;
        ok(&out);
        assert!(!text(&out.stdout).contains('\u{1b}'));
        // Preferred ports and accounts follow the app's rules.
        let out = w
            .run(
                w.bai([
                    "login",
                    "--preferred-port",
                    "80",
                    "--email",
                    &w.sb().user().email,
                    "--password-stdin",
                ]),
                Some(&format!("{}\n", w.sb().user().password)),
            )
            .await;
        fails_with(&out, 2, "between 1025 and 65534");
        let out = w.bai_run(&["--user", "x\nMatch exec id", "ps"]).await;
        fails_with(&out, 2, "the account must be a user name");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_and_extra_ca_can_be_turned_off_again() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let user = w.sb().user().clone();
        let ca = w.tmp.join("ca.pem");
        std::fs::write(&ca, "").expect("ca file");
        let login = |extra: &[&str]| {
            let mut args = vec![
                "login",
                "--endpoint",
                w.webserver.as_str(),
                "--email",
                user.email.as_str(),
                "--password-stdin",
            ];
            args.extend_from_slice(extra);
            w.bai(&args)
        };
        let tls = || {
            let config = std::fs::read_to_string(w.cfg.join("config.toml")).expect("config");
            (
                config.contains("insecure = true"),
                config.contains("ca_file"),
            )
        };
        let pw = format!("{}\n", user.password);
        ok(&w.run(login(&["--insecure"]), Some(&pw)).await);
        assert_eq!(tls(), (true, false));
        ok(&w.run(login(&["--no-insecure"]), Some(&pw)).await);
        assert_eq!(
            tls(),
            (false, false),
            "--no-insecure verifies certificates again"
        );
        let out = w
            .run(login(&["--insecure", "--no-insecure"]), Some(&pw))
            .await;
        assert_eq!(out.status.code(), Some(2), "the two options conflict");
        let ca_s = ca.display().to_string();
        // An empty CA file is refused by the TLS setup only for https; the option is saved.
        let _ = w.run(login(&["--ca-file", &ca_s]), Some(&pw)).await;
        ok(&w.run(login(&["--no-ca-file"]), Some(&pw)).await);
        assert_eq!(tls(), (false, false), "--no-ca-file forgets the CA file");
    })
    .await;
}
