//! Security and robustness: random demo password, no root logins, confined downloads, private
//! key modes, sessions starting in their home, the swallow-close fault, 1011 closes, and process
//! clean-up (per-connection sshd children; sshd dying with a SIGKILLed sandbox binary).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use bai_sandbox::{Config, Sandbox, SessionInfo, SessionSpec};
use bai_testkit::sandbox::demo as sandbox;
use bai_testkit::{free_addr, mode, run_ok, SshTarget};
use common::*;
use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The login account's home in a real container (protocol.md §6).
const CONTAINER_HOME: &str = "/home/work";

fn ssh_cmd(s: &SessionInfo, args: &[&str]) -> tokio::process::Command {
    SshTarget::direct(s).ssh(args)
}

/// Whether nothing arrives on `ws` for a while.
async fn silent(ws: &mut Ws) -> Result<Got, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_millis(700), next(ws)).await
}

fn config_path(s: &SessionInfo) -> std::path::PathBuf {
    s.home.parent().unwrap().join("sshd_config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_password_no_root_login_and_private_modes() {
    within(40, async {
        let a = sandbox(1).await;
        let b = sandbox(0).await;
        assert_eq!(a.user().email, "demo@example.com");
        assert_ne!(a.user().password, "demo-password");
        assert!(a.user().password.len() >= 16);
        assert_ne!(
            a.user().password,
            b.user().password,
            "a new password per start"
        );
        let fixed = Sandbox::start(Config {
            password: Some("fixed-for-scripts".into()),
            ..Config::default()
        })
        .await
        .unwrap();
        assert_eq!(fixed.user().password, "fixed-for-scripts");

        assert_ne!(a.account(), "root");
        let s = a.session("demo-1").unwrap();
        let config = std::fs::read_to_string(config_path(&s)).unwrap();
        assert!(config.contains("PermitRootLogin no\n"), "{config}");
        assert!(!config.contains("prohibit-password"));
        assert_eq!(mode(s.id_container.as_ref().unwrap()), 0o600);
        assert_eq!(mode(&s.home.join(".ssh/authorized_keys")), 0o600);

        // Logging in as root is refused even with the session's key.
        let root = SshTarget {
            account: "root".into(),
            ..SshTarget::direct(&s)
        };
        let out = root.ssh(&["true"]).output().await.unwrap();
        assert!(!out.status.success());
        for sb in [a, b, fixed] {
            sb.shutdown().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_never_follow_symlinks_out_of_the_home() {
    within(40, async {
        let sb = sandbox(0).await;
        let s = sb.create_session(SessionSpec::running("d")).await.unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), b"secret outside the home").unwrap();
        std::os::unix::fs::symlink(outside.path(), s.home.join("leak")).unwrap();
        std::os::unix::fs::symlink("/etc", s.home.join("etc")).unwrap();
        std::fs::write(s.home.join("inside.txt"), b"in").unwrap();
        std::os::unix::fs::symlink("inside.txt", s.home.join("ok-link")).unwrap();
        std::fs::create_dir(s.home.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.path(), s.home.join("dir/leak")).unwrap();

        // The container's home as clients name it in absolute paths.
        let absolute = format!("{CONTAINER_HOME}/leak");
        for f in ["leak", absolute.as_str(), "etc/passwd"] {
            let r = api(
                &sb,
                "POST",
                &format!("/session/d/download_single?file={f}"),
                None,
            )
            .await;
            assert_eq!(r.status(), 500, "download_single {f}");
            let r = api(&sb, "POST", &format!("/session/d/download?files={f}"), None).await;
            assert_eq!(r.status(), 500, "download {f}");
        }
        // A symlink that stays inside the home is fine.
        let r = api(&sb, "POST", "/session/d/download_single?file=ok-link", None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"in");
        // A directory's symlinks are archived as links, not as their targets' contents.
        let r = api(&sb, "POST", "/session/d/download?files=dir", None).await;
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        assert!(
            !body
                .windows(b"secret outside".len())
                .any(|w| w == b"secret outside"),
            "the target's content leaked"
        );
        sb.shutdown().await;
    })
    .await
}

/// Stops (and joins) a background thread when dropped, even when the test panics.
struct StopOnDrop(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<u64>>,
);

impl StopOnDrop {
    fn stop(mut self) -> u64 {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        self.1.take().unwrap().join().unwrap()
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// The session user swaps a directory of the home with a symlink to a directory outside it, as
/// fast as it can, while downloading through it: whatever the timing, the sandbox (root, maybe)
/// must never return what is outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_racing_a_symlink_swap_never_leak_outside_files() {
    within(60, async {
        const SECRET: &[u8] = b"OUTSIDE SECRET racing";
        let sb = sandbox(0).await;
        let s = sb
            .create_session(SessionSpec::running("race"))
            .await
            .unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("f"), SECRET).unwrap();
        std::fs::create_dir(s.home.join("d")).unwrap();
        std::fs::write(s.home.join("d/f"), b"inside").unwrap();
        std::os::unix::fs::symlink(outside.path(), s.home.join("x")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, x, flag) = (s.home.join("d"), s.home.join("x"), stop.clone());
        let swapper = StopOnDrop(
            stop,
            Some(std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let cwd = rustix::fs::CWD;
                    rustix::fs::renameat_with(cwd, &d, cwd, &x, rustix::fs::RenameFlags::EXCHANGE)
                        .unwrap();
                    swaps += 1;
                }
                swaps
            })),
        );
        let leaked = |b: &[u8]| b.windows(SECRET.len()).any(|w| w == SECRET);
        let (mut ok, mut refused) = (0u32, 0u32);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            for path in [
                "/session/race/download?files=d/f",
                "/session/race/download?files=d",
                "/session/race/download_single?file=d/f",
            ] {
                let r = api(&sb, "POST", path, None).await;
                let status = r.status();
                // A stream aborted mid-way is fine (an error, not a leak).
                let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                assert!(
                    !leaked(&body),
                    "{path} returned the outside file ({status})"
                );
                if status == 200 {
                    ok += 1;
                } else {
                    refused += 1;
                }
            }
        }
        let swaps = swapper.stop();
        eprintln!("{swaps} swaps, {ok} downloads, {refused} refused");
        assert!(swaps > 100 && ok > 0 && refused > 0, "the race was run");
        sb.shutdown().await;
    })
    .await
}

/// The peak resident set of this process since [`reset_peak_rss`], in bytes.
fn peak_rss() -> u64 {
    bai_testkit::process::self_status_kib("VmHWM").unwrap() * 1024
}

fn reset_peak_rss() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    peak_rss()
}

const MIB: u64 = 1 << 20;

/// A 128 MiB file of real (not sparse) data: the tar crate archives sparse files compactly.
fn write_big(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; MIB as usize];
    for _ in 0..128 {
        f.write_all(&block).unwrap();
    }
}

/// Status and problem+json body of an error response.
async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    (status, r.json().await.unwrap())
}

/// A 128 MiB file: refused by the default 1 MiB limit without being read into memory,
/// and streamed, in bounded memory, when the limit allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_downloads_are_refused_unread_and_large_ones_stream() {
    within(120, async {
        let sb = sandbox(0).await;
        let s = sb
            .create_session(SessionSpec::running("big"))
            .await
            .unwrap();
        write_big(&s.home.join("big"));
        std::fs::create_dir(s.home.join("dir")).unwrap();
        std::fs::write(s.home.join("dir/small"), vec![1u8; 700 * 1024]).unwrap();
        std::fs::write(s.home.join("dir/small2"), vec![2u8; 700 * 1024]).unwrap();

        let base = reset_peak_rss();
        for path in [
            "/session/big/download?files=big",
            "/session/big/download_single?file=big",
            // Each file fits, the directory's tar does not.
            "/session/big/download?files=dir",
        ] {
            let (st, body) = problem(api(&sb, "POST", path, None).await).await;
            assert_eq!(st, 400, "{path}: {body}");
            assert_eq!(body["msg"], "The file is larger than 1 MiB.", "{path}");
        }
        let grown = peak_rss().saturating_sub(base);
        assert!(
            grown < 48 * MIB,
            "refusing grew the peak RSS by {} MiB",
            grown / MIB
        );
        sb.shutdown().await;

        let sb = Sandbox::start(Config {
            download_limit: 256 * MIB,
            ..Config::default()
        })
        .await
        .unwrap();
        let s = sb
            .create_session(SessionSpec::running("big"))
            .await
            .unwrap();
        write_big(&s.home.join("big"));
        std::fs::write(s.home.join("b.txt"), b"bee").unwrap();
        let base = reset_peak_rss();
        let mut r = api(
            &sb,
            "POST",
            "/session/big/download?files=big&files=b.txt",
            None,
        )
        .await;
        assert_eq!(r.status(), 200);
        let announced: u64 = r.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (mut n, mut tail) = (0u64, Vec::new());
        while let Some(chunk) = r.chunk().await.unwrap() {
            n += chunk.len() as u64;
            tail.extend_from_slice(&chunk);
            let keep = tail.len().saturating_sub(4096);
            tail.drain(..keep);
        }
        assert_eq!(n, announced);
        assert!(n > 128 * MIB);
        assert!(
            tail.windows(3).any(|w| w == b"bee"),
            "the second part follows"
        );
        assert!(tail.ends_with(b"--\r\n"));
        let grown = peak_rss().saturating_sub(base);
        assert!(
            grown < 48 * MIB,
            "streaming grew the peak RSS by {} MiB",
            grown / MIB
        );
        let r = api(&sb, "POST", "/session/big/download_single?file=big", None).await;
        assert_eq!(
            r.headers()["content-length"],
            (128 * MIB).to_string().as_str()
        );
        let mut n = 0u64;
        let mut r = r;
        while let Some(chunk) = r.chunk().await.unwrap() {
            n += chunk.len() as u64;
        }
        assert_eq!(n, 128 * MIB);
        let grown = peak_rss().saturating_sub(base);
        assert!(
            grown < 48 * MIB,
            "streaming grew the peak RSS by {} MiB",
            grown / MIB
        );
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpproxy_closes_1011_when_connect_fails_otherwise_than_refused() {
    within(40, async {
        let sb = sandbox(0).await;
        // TCP to a multicast address fails at once with ENETUNREACH (not ECONNREFUSED).
        sb.create_session(SessionSpec::running("u").app("mc", "224.0.0.1:9".parse().unwrap()))
            .await
            .unwrap();
        let mut ws = manager_ws(&sb, "/stream/session/u/tcpproxy?app=mc")
            .await
            .unwrap();
        let got = next(&mut ws).await;
        assert!(matches!(got, Got::Close(Some(1011))), "{got:?}");
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swallow_close_keeps_the_webserver_websocket_open() {
    within(40, async {
        let closed = free_addr();
        let hello = greeter(b"hello").await;
        let sb = sandbox(0).await;
        sb.create_session(
            SessionSpec::running("w")
                .app("closed", closed)
                .app("hello", hello),
        )
        .await
        .unwrap();
        sb.create_session(SessionSpec::running("plain").app("closed", closed))
            .await
            .unwrap();
        let sid = login_sid(&sb).await;
        let web = |app: &'static str, s: &'static str| {
            let sid = sid.clone();
            let sb = &sb;
            async move {
                web_ws(
                    sb,
                    &format!("/func/stream/session/{s}/tcpproxy?app={app}"),
                    &[("X-BackendAI-SessionID", &sid)],
                )
                .await
                .unwrap()
            }
        };

        // As the real webserver does (every generation): the refused port's close (1013) never
        // reaches the client; frames sent later vanish.
        let mut ws = web("closed", "w").await;
        assert!(silent(&mut ws).await.is_err(), "close relayed");
        ws.send(Message::Binary(b"dropped".to_vec().into()))
            .await
            .unwrap();
        assert!(silent(&mut ws).await.is_err());
        // TCP EOF: the data arrives, the 1001 does not.
        let mut ws = web("hello", "w").await;
        assert!(matches!(next(&mut ws).await, Got::Data(d) if d == b"hello"));
        assert!(silent(&mut ws).await.is_err(), "close relayed");
        // The client may still close; the manager side (API mode) always sends its close.
        ws.close(None).await.unwrap();
        let mut ws = manager_ws(&sb, "/stream/session/w/tcpproxy?app=closed")
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1013))));
        // The fault knobs (per session, global) keep it so; clearing them changes nothing.
        sb.session_faults("w").unwrap().set_swallow_close(true);
        sb.faults().set_swallow_close(true);
        let mut ws = web("closed", "plain").await;
        assert!(silent(&mut ws).await.is_err(), "close relayed");
        sb.faults().clear();
        let mut ws = web("closed", "plain").await;
        assert!(silent(&mut ws).await.is_err(), "close relayed");
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_scp_sftp_and_rsync_start_in_the_session_home() {
    within(60, async {
        let sb = sandbox(1).await;
        let s = sb.session("demo-1").unwrap();
        let home = std::fs::canonicalize(&s.home).unwrap();
        let pwd = run_ok(ssh_cmd(&s, &["pwd"])).await;
        assert_eq!(Path::new(pwd.trim()), home);
        assert_eq!(run_ok(ssh_cmd(&s, &["echo", "ok"])).await.trim(), "ok");
        assert_eq!(
            Path::new(run_ok(ssh_cmd(&s, &["echo", "$HOME"])).await.trim()),
            s.home
        );

        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("up.txt");
        std::fs::write(&file, b"payload").unwrap();
        let t = SshTarget::direct(&s);
        // scp in SFTP mode (the default) and the legacy protocol.
        for (legacy, name) in [(false, "sftp-mode.txt"), (true, "legacy.txt")] {
            run_ok(t.scp(legacy, &file, t.remote(name))).await;
            assert_eq!(
                std::fs::read(s.home.join(name)).unwrap(),
                b"payload",
                "{name}"
            );
        }
        // sftp: relative paths resolve in the home.
        let out = t
            .sftp_batch(&format!("pwd\nput {} via-sftp.txt\n", file.display()))
            .await;
        assert!(out.contains(&home.display().to_string()), "{out}");
        assert!(s.home.join("via-sftp.txt").exists());
        // rsync (runs `rsync --server` through the shell).
        run_ok(t.rsync(file.to_str().unwrap(), &t.remote("via-rsync.txt"))).await;
        assert_eq!(
            std::fs::read(s.home.join("via-rsync.txt")).unwrap(),
            b"payload"
        );
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_per_connection_sshd_survives_shutdown_or_terminate() {
    within(60, async {
        let sb = sandbox(2).await;
        let mut held = Vec::new();
        let mut tree = Vec::new();
        let mut configs = Vec::new();
        for name in ["demo-1", "demo-2"] {
            let s = sb.session(name).unwrap();
            let pid = sb.session_sshd_pid(name).unwrap();
            let mut child = ssh_cmd(&s, &["echo", "up;", "sleep", "60"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // Wait until the session runs, so that sshd has forked its per-connection children.
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            assert_eq!(lines.next_line().await.unwrap().unwrap(), "up");
            let kids = descendants(pid);
            assert!(!kids.is_empty(), "no per-connection sshd for {name}");
            tree.push(pid);
            tree.extend(kids);
            held.push((child, lines));
            configs.push(config_path(&s).display().to_string());
        }
        // terminate (demo-1) and shutdown (the rest) both take the whole tree down.
        sb.terminate("demo-1").await.unwrap();
        sb.shutdown().await;
        assert!(
            all_gone(&tree, 5).await,
            "left: {:?}",
            tree.iter().filter(|p| !pid_gone(**p)).collect::<Vec<_>>()
        );
        for c in &configs {
            assert!(live_with_cmdline(c).is_empty(), "an sshd for {c} survived");
        }
        for (mut child, _) in held {
            let st = tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .expect("the ssh client still runs: its connection survived");
            assert!(!st.unwrap().success());
        }
    })
    .await
}

/// Starts the binary with `args` and returns it with its `--json` line.
async fn start_binary(args: &[&str]) -> (tokio::process::Child, Value) {
    start_binary_in(None, args).await
}

/// Like [`start_binary`], with its temp dir at `tmp` when given (so that no other test's
/// sandbox sweeps its directory).
async fn start_binary_in(
    tmp: Option<&std::path::Path>,
    args: &[&str],
) -> (tokio::process::Child, Value) {
    use tokio::io::AsyncBufReadExt as _;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bai-sandbox"));
    if let Some(tmp) = tmp {
        cmd.env("TMPDIR", tmp);
    }
    let mut child = cmd
        .args(["--port", "0", "--json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    (child, serde_json::from_str(&first).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_fault_session_flags_and_sshd_dies_with_a_sigkilled_sandbox() {
    within(60, async {
        // Its own temp dir: another test's sandbox starting in between would sweep the
        // killed one's directory before this test looks.
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, v) = start_binary_in(
            Some(tmp.path()),
            &[
                "--sessions",
                "2",
                "--fault-session",
                "demo-1",
                "--fail-route",
                "/session=503",
                "--swallow-close",
            ],
        )
        .await;
        assert_ne!(v["password"], "demo-password");
        let web = v["webserver"].as_str().unwrap();
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{web}/server/login"))
            .json(&json!({"username": v["email"], "password": v["password"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the login route is not failed globally");
        let sid = r.headers()["x-backendai-sessionid"]
            .to_str()
            .unwrap()
            .to_owned();
        let get = |s: &str| {
            c.get(format!("{web}/func/session/{s}"))
                .header("X-BackendAI-SessionID", &sid)
                .send()
        };
        assert_eq!(get("demo-1").await.unwrap().status(), 503);
        assert_eq!(get("demo-2").await.unwrap().status(), 200);

        let pids: Vec<u32> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["sshd_pid"].as_u64())
            .map(|p| p as u32)
            .collect();
        assert_eq!(pids.len(), 2, "{v}");
        let ports: Vec<u16> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["sshd_port"].as_u64())
            .map(|p| p as u16)
            .collect();
        child.start_kill().unwrap(); // SIGKILL: no clean-up code runs
        child.wait().await.unwrap();
        assert!(
            all_gone(&pids, 5).await,
            "sshd outlived its SIGKILLed sandbox"
        );
        for p in ports {
            assert!(tokio::net::TcpStream::connect(("127.0.0.1", p))
                .await
                .is_err());
        }
        // Its directory stays behind (nothing runs at SIGKILL) until the next sandbox starts.
        let home = std::path::PathBuf::from(v["sessions"][0]["home"].as_str().unwrap());
        let root = home.ancestors().nth(3).unwrap().to_path_buf();
        assert!(
            root.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bai-sandbox-"),
            "{}",
            root.display()
        );
        assert_eq!(root.parent(), Some(tmp.path()));
        assert!(root.exists());
        let (mut next, _) = start_binary_in(Some(tmp.path()), &["--sessions", "0"]).await;
        assert!(!root.exists(), "the killed sandbox's directory was swept");
        next.start_kill().unwrap();
        next.wait().await.unwrap();

        // An unknown --fault-session is an error.
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bai-sandbox"))
            .args([
                "--port",
                "0",
                "--sessions",
                "1",
                "--fault-session",
                "nope",
                "--refuse-port",
            ])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_stops_cleanly_on_sighup() {
    within(40, async {
        let (mut child, v) = start_binary(&["--sessions", "1"]).await;
        let pid = v["sessions"][0]["sshd_pid"].as_u64().unwrap() as u32;
        let st = std::process::Command::new("kill")
            .args(["-HUP", &child.id().unwrap().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{status}");
        assert!(pid_gone(pid));
    })
    .await
}
