//! End to end against the real Backend.AI 26.9.6: the built `bai` binary and the real OpenSSH
//! clients through the real manager (API mode) and the real webserver (session mode), with
//! sessions RUNNING on the real agent in its dummy mode (bai_testkit::realstack: one stack per
//! test binary, each session with an sshd of its own). Every test has its own sessions, HOME,
//! config dir, working directory and TMPDIR, and runs under a timeout.
//!
//! `BAI_SKIP_REAL_MANAGER=1` skips these tests (each says so); a missing prerequisite is a
//! failure that names it. The dummy agent has no files, so no `id_container`: the tests log in
//! with the key the sessions' sshd accepts (`-i`), and check that bai's download error is the
//! clear one.
//!
//! Length: tests only; one file, so that every test shares the binary's one stack.

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bai_testkit::realstack::{self, Stack};
use bai_testkit::{
    assert_success as ok, sha256_file, text, within, write_noise_file, Isolated, SshTarget,
    CMD_TIMEOUT,
};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Child;

const BAI: &str = env!("CARGO_BIN_EXE_bai");
/// A test's limit, bring-up of the shared stack (about a minute) and session creation included.
const TEST_SECS: u64 = 420;

/// One test's world: the shared real stack and private directories.
struct Real {
    stack: &'static Stack,
    dirs: Isolated,
}

impl std::ops::Deref for Real {
    type Target = Isolated;
    fn deref(&self) -> &Isolated {
        &self.dirs
    }
}

impl Real {
    /// The shared stack (brought up by the first test) and fresh directories; `None` when
    /// skipped.
    fn new(test: &str) -> Option<Real> {
        let stack = realstack::shared(test)?;
        Some(Real {
            stack,
            dirs: Isolated::new(),
        })
    }

    fn bai<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> tokio::process::Command {
        self.command(BAI, args)
    }

    async fn bai_run<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> Output {
        self.run(self.bai(args), None).await
    }

    /// Session-mode login through the real webserver, with the sessions' account.
    async fn login_session(&self) {
        let s = self.stack;
        let cmd = self.bai([
            "--user",
            &s.account,
            "login",
            "--endpoint",
            &s.webserver,
            "--email",
            &s.email,
            "--password-stdin",
        ]);
        let out = self.run(cmd, Some(&format!("{}\n", s.password))).await;
        ok(&out);
        assert!(
            text(&out.stdout).contains("session mode"),
            "{}",
            text(&out.stdout)
        );
    }

    /// API-mode login at the real manager, with the sessions' account.
    async fn login_api(&self) {
        let s = self.stack;
        let cmd = self.bai([
            "--user",
            &s.account,
            "login",
            "--mode",
            "api",
            "--endpoint",
            &s.manager,
            "--access-key",
            &s.access_key,
            "--password-stdin",
        ]);
        let out = self.run(cmd, Some(&format!("{}\n", s.secret_key))).await;
        ok(&out);
        assert!(
            text(&out.stdout).contains("api mode"),
            "{}",
            text(&out.stdout)
        );
    }

    /// The OpenSSH client options for a tunnel on `port`, with the sessions' key.
    fn target(&self, port: u16) -> SshTarget {
        SshTarget::new(port, &self.stack.key, self.stack.account.clone()).hermetic()
    }

    /// `bai app SESSION args…`, up and listening.
    async fn app(&self, session: &str, args: &[&str]) -> App {
        let mut cmd = self.bai(["app", session]);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bai app");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = tokio::time::timeout(CMD_TIMEOUT, lines.next_line())
            .await
            .expect("bai app ready in time")
            .expect("read")
            .unwrap_or_else(|| panic!("bai app ended: {}", stderr.lock().expect("lock")));
        let port = url
            .strip_prefix("tcp://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected line {url:?}"))
            .parse()
            .expect("port");
        App {
            child,
            port,
            stderr,
        }
    }
}

/// A running `bai app`.
struct App {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl App {
    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Ctrl-C, and it ends successfully.
    async fn stop(mut self) -> String {
        let pid = self.child.id().expect("pid").to_string();
        let st = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(st.success());
        let status = tokio::time::timeout(CMD_TIMEOUT, self.child.wait())
            .await
            .expect("bai app stopped in time")
            .expect("wait");
        // Let the reader take the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let err = self.stderr();
        assert!(status.success(), "bai app: {status}\n{err}");
        err
    }
}

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

/// `bai ps --json`, as JSON.
async fn ps_json(w: &Real) -> serde_json::Value {
    let out = w.bai_run(["ps", "--json"]).await;
    ok(&out);
    serde_json::from_slice(&out.stdout).expect("ps --json")
}

/// The entry of session `name` in `bai ps --json`.
fn entry<'a>(ps: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    ps.as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {ps}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mode_login_ps_and_ssh() {
    let Some(w) = Real::new("api_mode_login_ps_and_ssh") else {
        return;
    };
    within(TEST_SECS, async {
        w.stack.create_session("rm-api").await;
        // A wrong secret key is an authentication failure, from the real HMAC check.
        let cmd = w.bai([
            "login",
            "--mode",
            "api",
            "--endpoint",
            &w.stack.manager,
            "--access-key",
            &w.stack.access_key,
            "--password-stdin",
        ]);
        fails_with(&w.run(cmd, Some("wrong-secret\n")).await, 4, "auth");
        w.login_api().await;

        // The session list is the real GraphQL's.
        let out = w.bai_run(["ps"]).await;
        ok(&out);
        let table = text(&out.stdout);
        assert!(
            table.lines().any(|l| l.starts_with("rm-api ")
                && l.contains("RUNNING")
                && l.contains("sshd")
                && l.contains(&w.stack.image)),
            "{table}"
        );
        let ps = ps_json(&w).await;
        let s = entry(&ps, "rm-api");
        assert_eq!(s["status"], "RUNNING", "{s}");
        assert_eq!(s["ssh"], true, "{s}");
        assert_eq!(s["image"], w.stack.image.as_str(), "{s}");
        assert_eq!(s["type"], "INTERACTIVE", "{s}");
        let apps: Vec<&str> = s["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(apps.contains(&"sshd") && apps.contains(&"jupyter"), "{s}");
        assert_eq!(s["id"].as_str().map(str::len), Some(36), "{s}");

        // ssh through an in-process tunnel (the real tcpproxy, signed per connection).
        let key = w.stack.key.display().to_string();
        let out = w
            .bai_run(["ssh", "-i", &key, "rm-api", "--", "echo", "ok-api"])
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok-api");
        // bai ssh returns the remote command's status.
        let out = w
            .bai_run(["ssh", "-i", &key, "rm-api", "--", "exit", "3"])
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

        // Only environment variables, no stored login (as the Python client).
        let mut cmd = w.bai(["ps", "--json"]);
        cmd.env("BAI_CONFIG_DIR", w.tmp.join("fresh"))
            .env("BACKEND_ENDPOINT", &w.stack.manager)
            .env("BACKEND_ENDPOINT_TYPE", "api")
            .env("BACKEND_ACCESS_KEY", &w.stack.access_key)
            .env("BACKEND_SECRET_KEY", &w.stack.secret_key);
        ok(&w.run(cmd, None).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_login_errors_ps_and_logout() {
    let Some(w) = Real::new("session_mode_login_errors_ps_and_logout") else {
        return;
    };
    within(TEST_SECS, async {
        w.stack.create_session("rm-web").await;
        let s = w.stack;
        // A wrong password: the webserver's own answer, as bai's authentication failure.
        let cmd = w.bai([
            "login",
            "--endpoint",
            &s.webserver,
            "--email",
            &s.email,
            "--password-stdin",
        ]);
        let out = w.run(cmd, Some("wrong-password\n")).await;
        fails_with(&out, 4, "authentication failed");
        assert!(text(&out.stderr).contains("hint: check the email and password"));
        // The manager where the webserver was expected, and the reverse: said as such.
        let cmd = w.bai([
            "login",
            "--endpoint",
            &s.manager,
            "--email",
            &s.email,
            "--password-stdin",
        ]);
        let out = w.run(cmd, Some(&format!("{}\n", s.password))).await;
        fails_with(
            &out,
            3,
            "is a Backend.AI manager (the API endpoint), not a webserver",
        );
        let cmd = w.bai([
            "login",
            "--mode",
            "api",
            "--endpoint",
            &s.webserver,
            "--access-key",
            &s.access_key,
            "--password-stdin",
        ]);
        let out = w.run(cmd, Some(&format!("{}\n", s.secret_key))).await;
        fails_with(
            &out,
            3,
            "is a Backend.AI webserver (the web UI), not the manager API",
        );
        assert!(!text(&out.stderr).contains(&s.secret_key));

        w.login_session().await;
        let config = std::fs::read_to_string(w.cfg.join("config.toml")).expect("config");
        assert!(config.contains("mode = \"session\""), "{config}");
        assert!(
            !config.contains(&s.password),
            "the password leaked into the config"
        );
        let ps = ps_json(&w).await;
        assert_eq!(entry(&ps, "rm-web")["status"], "RUNNING");
        // bai version names the real server's versions.
        let out = w.bai_run(["version", "--json"]).await;
        ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["server"]["manager_version"], realstack::VERSION, "{v}");

        ok(&w.bai_run(["logout"]).await);
        fails_with(&w.bai_run(["ps"]).await, 5, "not logged in");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tunnel_carries_ssh_scp_and_sftp() {
    let Some(w) = Real::new("app_tunnel_carries_ssh_scp_and_sftp") else {
        return;
    };
    within(TEST_SECS, async {
        w.stack.create_session("rm-app").await;
        w.login_session().await;
        let preferred = bai_testkit::free_port();
        let app = w.app("rm-app", &["-b", &preferred.to_string()]).await;
        assert_eq!(app.port, preferred, "the free preferred port is used");
        let t = w.target(app.port);

        let out = w.run(t.ssh(&["echo", "ok-app"]), None).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok-app");

        // scp both ways (SFTP mode and the legacy protocol), checked by sha256. The session's
        // home is the account's own on this machine: unique names, removed afterwards.
        let tag = format!("bai-rm-{}-{}", std::process::id(), app.port);
        let local = w.cwd.join("up.bin");
        let sum = write_noise_file(&local, 8 << 20, 7);
        ok(&w.run(t.scp(false, &local, t.remote(&format!("{tag}.bin"))), None).await);
        let back = w.cwd.join("back.bin");
        ok(&w.run(t.scp(true, t.remote(&format!("{tag}.bin")), &back), None).await);
        assert_eq!(sha256_file(&back), sum);

        // sftp: put, list, get.
        let got = w.cwd.join("sftp.bin");
        let listing = t
            .sftp_batch(&format!(
                "put {} {tag}-sftp.bin\nls -l {tag}-sftp.bin\nget {tag}-sftp.bin {}\nrm {tag}-sftp.bin\nrm {tag}.bin\n",
                local.display(),
                got.display()
            ))
            .await;
        assert!(listing.contains(&format!("{tag}-sftp.bin")), "{listing}");
        assert_eq!(sha256_file(&got), sum);

        let err = app.stop().await;
        assert!(
            err.contains(" from 127.0.0.1:") && err.contains(" closed ("),
            "no connection events: {err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_stdio_and_config_ssh() {
    let Some(w) = Real::new("proxy_stdio_and_config_ssh") else {
        return;
    };
    within(TEST_SECS, async {
        w.stack.create_session("rm-cfg").await;
        w.login_api().await;
        let key = w.stack.key.display().to_string();

        // `bai proxy --stdio` as ssh's ProxyCommand.
        let mut args = w.target(1).options();
        args.extend([
            "-o".to_owned(),
            format!("ProxyCommand={BAI} proxy --stdio rm-cfg"),
            format!("{}@rm-cfg", w.stack.account),
            "echo".to_owned(),
            "ok-stdio".to_owned(),
        ]);
        let out = w.run(w.command("ssh", &args), None).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok-stdio");

        // config-ssh with the key the sessions accept, then ssh by alias.
        let ssh_dir = w.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).expect("mkdir");
        let main = ssh_dir.join("config");
        let original = "# mine\nHost example.org\n  User me\n";
        std::fs::write(&main, original).expect("write");
        ok(&w.bai_run(["config-ssh", "--identity", &key]).await);
        let include = std::fs::read_to_string(ssh_dir.join("bai/config")).expect("include");
        assert!(include.contains("Host bai-rm-cfg\n"), "{include}");
        assert!(include.contains("proxy --stdio rm-cfg"), "{include}");
        let main_s = main.display().to_string();
        let out = w
            .run(
                w.command(
                    "ssh",
                    [
                        "-F",
                        &main_s,
                        "-o",
                        "BatchMode=yes",
                        "bai-rm-cfg",
                        "echo",
                        "ok-alias",
                    ],
                ),
                None,
            )
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok-alias");
        ok(&w.bai_run(["config-ssh", "--remove"]).await);
        assert_eq!(std::fs::read(&main).expect("main"), original.as_bytes());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_tunnels_at_once() {
    let Some(w) = Real::new("several_tunnels_at_once") else {
        return;
    };
    within(TEST_SECS, async {
        let names = ["rm-many-1", "rm-many-2", "rm-many-3"];
        futures_join(names.iter().map(|n| w.stack.create_session(n))).await;
        w.login_session().await;
        let mut apps = Vec::new();
        for n in names {
            apps.push(w.app(n, &[]).await);
        }
        // Three tunnels, three sessions, three sshds: each connection lands on its own
        // session's sshd (its port in SSH_CONNECTION), all at once.
        let runs = apps.iter().map(|a| {
            let c = w.target(a.port).ssh(&["echo", "$SSH_CONNECTION"]);
            w.run(c, None)
        });
        let outs = futures_join(runs).await;
        let mut server_ports = Vec::new();
        for out in &outs {
            ok(out);
            let line = text(&out.stdout);
            let port = line
                .split_whitespace()
                .nth(3)
                .expect("server port")
                .to_owned();
            server_ports.push(port);
        }
        server_ports.sort();
        server_ports.dedup();
        assert_eq!(server_ports.len(), 3, "{outs:?}");
        for a in apps {
            a.stop().await;
        }
    })
    .await;
}

/// `ssh … echo started; sleep 300` through `t`, once it printed `started`.
async fn long_ssh(t: &SshTarget) -> Child {
    let mut long = t.ssh(&["echo", "started;", "sleep", "300"]);
    long.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut long = long.spawn().expect("spawn ssh");
    let mut first = BufReader::new(long.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(CMD_TIMEOUT, first.next_line())
        .await
        .expect("ssh started in time")
        .expect("read");
    assert_eq!(line.as_deref(), Some("started"));
    long
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroyed_session_ends_its_connection_and_the_listener_keeps_serving() {
    let Some(api) =
        Real::new("destroyed_session_ends_its_connection_and_the_listener_keeps_serving")
    else {
        return;
    };
    let Some(web) =
        Real::new("destroyed_session_ends_its_connection_and_the_listener_keeps_serving")
    else {
        return;
    };
    within(TEST_SECS, async {
        api.stack.create_session("rm-kill").await;
        api.login_api().await;
        web.login_session().await;
        let api_app = api.app("rm-kill", &[]).await;
        let web_app = web.app("rm-kill", &[]).await;
        let mut api_ssh = long_ssh(&api.target(api_app.port)).await;
        let mut web_ssh = long_ssh(&web.target(web_app.port)).await;

        let destroyed = Instant::now();
        api.stack.destroy_session("rm-kill").await;
        // API mode: the session's sshd ends with it, the manager closes the WebSocket (1001)
        // and the connection ends cleanly, soon.
        let status = tokio::time::timeout(Duration::from_secs(60), api_ssh.wait())
            .await
            .expect("the connection ended after the session was destroyed")
            .expect("wait");
        assert!(
            !status.success(),
            "ssh should see its connection end: {status}"
        );
        eprintln!(
            "API mode: the connection ended {:.1} s after the destroy call",
            destroyed.elapsed().as_secs_f64()
        );
        // Session mode: the real webserver (26.9.6) does not pass the manager's close on (see
        // docs/compatibility.md): the connection stays open until its client ends it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            web_ssh.try_wait().expect("try_wait").is_none(),
            "the real webserver now passes the close on: update docs/compatibility.md"
        );
        web_ssh.kill().await.expect("kill ssh");

        // Both listeners keep serving: a new connection is accepted, and refused with the
        // server's reason.
        for (w, app) in [(&api, api_app), (&web, web_app)] {
            let out = w.run(w.target(app.port).ssh(&["true"]), None).await;
            assert!(!out.status.success());
            let err = app.stop().await;
            assert!(err.contains(" closed ("), "{err}");
            assert!(
                err.contains(" failed: "),
                "no reason for the refused connection: {err}"
            );
            eprintln!("bai app said:\n{err}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_unknown_app_and_the_missing_key_are_bais_errors() {
    let Some(w) = Real::new("unknown_session_unknown_app_and_the_missing_key_are_bais_errors")
    else {
        return;
    };
    within(TEST_SECS, async {
        w.stack.create_session("rm-err").await;
        w.login_session().await;
        let key = w.stack.key.display().to_string();
        fails_with(
            &w.bai_run(["ssh", "-i", &key, "rm-nosuch", "--", "true"])
                .await,
            6,
            "no such session",
        );
        fails_with(&w.bai_run(["app", "rm-nosuch"]).await, 6, "no such session");
        fails_with(
            &w.bai_run(["proxy", "--stdio", "rm-nosuch"]).await,
            6,
            "no such session",
        );
        fails_with(
            &w.bai_run(["app", "rm-err", "nosuchapp"]).await,
            7,
            "nosuchapp",
        );

        // The dummy agent has no files: the multi-file download is "no such file" (exit 11),
        // never a success with 0 files, and the key fetch finds no id_container (the real
        // manager answers both with empty content) and says how to go on.
        let out = w
            .bai_run(["session", "download", "rm-err", "id_container"])
            .await;
        fails_with(&out, 11, "no such file in session rm-err: id_container");
        assert!(!w.cwd.join("id_container").exists());
        // bai ssh says so and goes on with the user's own keys (none here: ssh fails).
        let out = w.bai_run(["ssh", "rm-err", "--", "true"]).await;
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("the session rm-err has no id_container key")
                && err.contains("pass one with `-i KEY`"),
            "{err}"
        );
    })
    .await;
}

/// Runs futures concurrently and returns their outputs in order.
async fn futures_join<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(futs.len());
    let mut pending: Vec<_> = futs.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("ready")));
    out
}
