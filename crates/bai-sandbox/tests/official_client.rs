//! Proof that the sandbox speaks the real protocol: the official Python client
//! (`backend.ai-client==23.9.10`, in the `.venv` that `make test` creates) logs in, lists
//! sessions, downloads `id_container` and runs its own `app … sshd` proxy against the sandbox,
//! in session mode and in API mode; then real `ssh` and `scp` go through that proxy. The
//! sandbox plays the client's own generation, 23.09 (`docs/compatibility.md`).
//!
//! Outside CI the test is skipped (with a message) when the venv is missing; under CI it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bai_sandbox::{Config, Generation, Sandbox, SessionSpec};
use bai_testkit::{free_port, sha256_file, within, SshTarget};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const TEST_SECS: u64 = 180;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The official client's entry point, or `None` (skip) outside CI when it is not installed.
fn official_client() -> Option<PathBuf> {
    let exe = workspace_root().join(".venv/bin/backend.ai");
    if exe.exists() {
        return Some(exe);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the official client is missing at {} (make test installs it via scripts/deps.sh)",
        exe.display()
    );
    eprintln!(
        "skipping: {} not found; run `make deps` to install the official client",
        exe.display()
    );
    None
}

/// A throwaway environment for the Python client: its own HOME and state dirs so that its
/// cookie jar and config never touch the real ones.
struct PyEnv {
    exe: PathBuf,
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl PyEnv {
    fn new(exe: PathBuf, vars: &[(&str, &str)]) -> PyEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_string_lossy().into_owned();
        let mut all = vec![
            ("HOME".to_owned(), home.clone()),
            ("XDG_STATE_HOME".to_owned(), format!("{home}/.local/state")),
            ("XDG_CONFIG_HOME".to_owned(), format!("{home}/.config")),
            ("XDG_CACHE_HOME".to_owned(), format!("{home}/.cache")),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        PyEnv {
            exe,
            dir,
            vars: all,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("BACKEND_ACCESS_KEY")
            .env_remove("BACKEND_SECRET_KEY")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn backend.ai");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).await.expect("stdin");
        drop(input);
        let out = child.wait_with_output().await.expect("backend.ai output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "backend.ai {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        format!("{stdout}{stderr}")
    }
}

/// The flow after authentication, identical in both modes: ps, download the key, run the
/// official proxy, then ssh and scp through it.
async fn ps_download_proxy_ssh_scp(env: &PyEnv, session: &str, account: &str) {
    let ps = env.run(&["ps"], "").await;
    assert!(
        ps.contains(session),
        "`backend.ai ps` lists {session}: {ps}"
    );

    env.run(&["session", "download", session, "id_container"], "")
        .await;
    let key = env.dir.path().join("id_container");
    let pem = std::fs::read_to_string(&key).expect("id_container downloaded");
    assert!(pem.contains("PRIVATE KEY-----"), "a private key: {pem:.40}");
    // ssh refuses a key others can read.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");

    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut proxy = env
        .cmd(&["app", session, "sshd", "-b", &bind])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backend.ai app");
    // The official client prints its notices, the address among them, to stderr.
    let mut lines = BufReader::new(proxy.stderr.take().expect("stderr")).lines();
    let wanted = format!("tcp://127.0.0.1:{port}");
    loop {
        let line = lines
            .next_line()
            .await
            .expect("read proxy output")
            .unwrap_or_else(|| panic!("`backend.ai app` exited before printing {wanted}"));
        if line.contains(&wanted) {
            break;
        }
    }
    // Keep draining so the proxy never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let ssh = SshTarget::new(port, &key, account);
    let out = ssh.ssh(&["echo ok"]).output().await.expect("run ssh");
    assert!(
        out.status.success(),
        "ssh through the official proxy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");

    // scp up and back down, comparing sha256.
    let src = env.dir.path().join("payload.bin");
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).expect("write payload");
    let remote = ssh.remote(&format!("payload-{session}.bin"));
    for (from, to) in [
        (src.to_string_lossy().into_owned(), remote.clone()),
        (
            remote.clone(),
            env.dir
                .path()
                .join("back.bin")
                .to_string_lossy()
                .into_owned(),
        ),
    ] {
        let out = ssh.scp(false, &from, &to).output().await.expect("run scp");
        assert!(
            out.status.success(),
            "scp {from} {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        sha256_file(&env.dir.path().join("back.bin")),
        sha256_file(&src),
        "scp round trip keeps every byte"
    );

    // SIGINT-less stop: the official proxy has nothing to flush.
    proxy.kill().await.expect("stop proxy");
}

/// A sandbox playing the official client's own generation (`--emulate 23.09`): its API
/// version, POST downloads with a JSON body, exact session lookup, a webserver that swallows
/// the manager's close.
async fn start_sandbox(session: &str) -> (Sandbox, String) {
    let config = Config {
        generation: Generation::G23_09,
        ..Config::default()
    };
    let (sandbox, infos) =
        bai_testkit::sandbox::with_sessions(config, [SessionSpec::running(session)]).await;
    assert_eq!(sandbox.server_version(), "v7.20230615");
    (sandbox, infos[0].account.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_session_mode() {
    let Some(exe) = official_client() else { return };
    within(TEST_SECS, async {
        let (sandbox, account) = start_sandbox("py-session").await;
        // `localhost`, not 127.0.0.1: aiohttp's cookie jar drops cookies set by an IP host
        // (protocol.md §9), which breaks the official client on IP endpoints.
        let endpoint = sandbox.webserver_url().replace("127.0.0.1", "localhost");
        let env = PyEnv::new(
            exe,
            &[
                ("BACKEND_ENDPOINT", &endpoint),
                ("BACKEND_ENDPOINT_TYPE", "session"),
            ],
        );
        let user = sandbox.user().clone();
        let out = env
            .run(&["login"], &format!("{}\n{}\n", user.email, user.password))
            .await;
        assert!(out.contains("Login succeeded"), "login output: {out}");
        ps_download_proxy_ssh_scp(&env, "py-session", &account).await;
        let out = env.run(&["logout"], "").await;
        assert!(out.contains("Logout done"), "logout output: {out}");
        sandbox.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_api_mode() {
    let Some(exe) = official_client() else { return };
    within(TEST_SECS, async {
        let (sandbox, account) = start_sandbox("py-api").await;
        let user = sandbox.user().clone();
        let endpoint = sandbox.manager_url();
        let env = PyEnv::new(
            exe,
            &[
                ("BACKEND_ENDPOINT", &endpoint),
                ("BACKEND_ENDPOINT_TYPE", "api"),
                ("BACKEND_ACCESS_KEY", &user.access_key),
                ("BACKEND_SECRET_KEY", &user.secret_key),
            ],
        );
        ps_download_proxy_ssh_scp(&env, "py-api", &account).await;
        sandbox.shutdown().await;
    })
    .await;
}
