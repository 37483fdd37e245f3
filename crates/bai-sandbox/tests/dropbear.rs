//! The Dropbear backend: real ssh, sftp, scp and rsync clients against real dropbear, directly
//! and through the tcpproxy; one `authorized_keys` and home per session; both servers in one
//! sandbox; and no dropbear (or anything it forked) left after stop, terminate, drop, or a
//! SIGKILLed sandbox binary. Needs the Debian package `dropbear-bin` (make deps installs it).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bai_sandbox::{Config, Sandbox, SessionSpec, SshServer, Status};
use bai_testkit::process::descendants;
use bai_testkit::{run_ok, SshTarget};
use common::*;
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

async fn dropbear_sandbox(demo: usize) -> Sandbox {
    Sandbox::start(Config {
        demo_sessions: demo,
        ssh_server: SshServer::Dropbear,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// The first bytes a server sends.
async fn banner(port: u16) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The account's home in the passwd database (what dropbear would read without the sandbox).
fn passwd_home(account: &str) -> PathBuf {
    let out = std::process::Command::new("getent")
        .args(["passwd", account])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    PathBuf::from(line.trim_end().split(':').nth(5).unwrap())
}

/// ssh, sftp, scp (SFTP and legacy modes) and rsync, both ways, with hashes compared; every
/// relative remote path lands in the session home.
async fn exercise(t: &SshTarget, home: &Path, tag: &str) {
    let canonical = std::fs::canonicalize(home).unwrap();
    assert_eq!(run_ok(t.ssh(&["echo", "ok"])).await.trim(), "ok");
    assert_eq!(
        Path::new(run_ok(t.ssh(&["pwd"])).await.trim()),
        canonical,
        "commands start in the session home"
    );
    assert_eq!(
        Path::new(run_ok(t.ssh(&["echo", "$HOME"])).await.trim()),
        home
    );

    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src.bin");
    std::fs::write(&src, noise(3 << 20, tag.len() as u64 + 7)).unwrap();
    let want = sha256_file(&src);
    let src_s = src.to_str().unwrap();
    let back = |name: &str| local.path().join(format!("back-{name}"));

    // sftp: put, get, and pwd in the home.
    let name = format!("{tag}-sftp.bin");
    let out = t
        .sftp_batch(&format!(
            "pwd\nput {src_s} {name}\nget {name} {}\n",
            back(&name).display()
        ))
        .await;
    assert!(
        out.contains(&canonical.display().to_string()),
        "sftp starts in the home: {out}"
    );
    assert_eq!(sha256_file(&home.join(&name)), want, "{name} uploaded");
    assert_eq!(sha256_file(&back(&name)), want, "{name} downloaded");

    // scp both ways, in SFTP mode (the default) and the legacy protocol (`scp -t` / `-f`).
    for legacy in [false, true] {
        let name = format!("{tag}-scp-{}.bin", if legacy { "legacy" } else { "sftp" });
        run_ok(t.scp(legacy, src_s, t.remote(&name))).await;
        assert_eq!(sha256_file(&home.join(&name)), want, "{name} uploaded");
        let to = back(&name);
        run_ok(t.scp(legacy, t.remote(&name), to.to_str().unwrap())).await;
        assert_eq!(sha256_file(&to), want, "{name} downloaded");
    }

    // rsync both ways (`rsync --server` through the wrapper's shell).
    let name = format!("{tag}-rsync.bin");
    run_ok(t.rsync(src_s, &t.remote(&name))).await;
    assert_eq!(sha256_file(&home.join(&name)), want, "{name} uploaded");
    let to = back(&name);
    run_ok(t.rsync(&t.remote(&name), to.to_str().unwrap())).await;
    assert_eq!(sha256_file(&to), want, "{name} downloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_sftp_scp_and_rsync_work_directly_and_through_the_tcpproxy() {
    within(180, async {
        let sb = dropbear_sandbox(0).await;
        assert_eq!(sb.ssh_server(), SshServer::Dropbear);
        let s = sb.create_session(SessionSpec::running("db")).await.unwrap();
        assert_eq!(s.ssh_server, SshServer::Dropbear);
        let dir = s.home.parent().unwrap();
        assert!(dir.join("dropbear_rsa_host_key").exists());
        assert!(!dir.join("sshd_config").exists());
        let b = banner(s.sshd_port.unwrap()).await;
        assert!(b.starts_with("SSH-2.0-dropbear"), "{b:?}");

        let direct = SshTarget::direct(&s);
        exercise(&direct, &s.home, "direct").await;
        let (port, bridge) = sshd_bridge(&sb, "db").await;
        let tunneled = SshTarget {
            port,
            ..direct.clone()
        };
        exercise(&tunneled, &s.home, "tunnel").await;
        bridge.abort();

        // The session home was mounted over the account's home only inside dropbear's
        // namespace: nothing landed in the real home, and no mount is visible out here.
        let real = passwd_home(&s.account);
        for name in ["direct-sftp.bin", "tunnel-rsync.bin"] {
            assert!(s.home.join(name).exists());
            assert!(!real.join(name).exists(), "{name} leaked into {real:?}");
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&s.home.display().to_string()), "{mounts}");
        sb.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_has_its_own_keys_and_one_sandbox_runs_both_servers() {
    within(90, async {
        // The default server stays OpenSSH; sessions choose dropbear one by one.
        let sb = Sandbox::start(Config::default()).await.unwrap();
        let keys = tempfile::tempdir().unwrap();
        let key = keys.path().join("own");
        run_ok({
            let mut c = tokio::process::Command::new("ssh-keygen");
            c.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key);
            c
        })
        .await;
        let public = std::fs::read_to_string(keys.path().join("own.pub")).unwrap();
        let own = sb
            .create_session(SessionSpec {
                authorized_keys: Some(public),
                ..SessionSpec::running("own").ssh_server(SshServer::Dropbear)
            })
            .await
            .unwrap();
        assert!(own.id_container.is_none());
        assert_eq!(own.ssh_server, SshServer::Dropbear);
        let other = sb
            .create_session(SessionSpec::running("other").ssh_server(SshServer::Dropbear))
            .await
            .unwrap();
        let openssh = sb.create_session(SessionSpec::running("o")).await.unwrap();
        assert_eq!(openssh.ssh_server, SshServer::OpenSsh);
        let b = banner(openssh.sshd_port.unwrap()).await;
        assert!(b.starts_with("SSH-2.0-OpenSSH"), "{b:?}");
        let b = banner(own.sshd_port.unwrap()).await;
        assert!(b.starts_with("SSH-2.0-dropbear"), "{b:?}");

        // The user's own key opens their session, through the tunnel too.
        let mine = SshTarget::new(own.sshd_port.unwrap(), key.clone(), own.account.clone());
        let pwd = run_ok(mine.ssh(&["pwd"])).await;
        assert_eq!(
            Path::new(pwd.trim()),
            std::fs::canonicalize(&own.home).unwrap()
        );
        let (port, bridge) = sshd_bridge(&sb, "own").await;
        let via = SshTarget { port, ..mine };
        assert_eq!(run_ok(via.ssh(&["echo", "ok"])).await.trim(), "ok");
        bridge.abort();

        // Another session's key does not, and nobody logs in as root (-w).
        let theirs = SshTarget {
            port: own.sshd_port.unwrap(),
            ..SshTarget::direct(&other)
        };
        let out = theirs.ssh(&["true"]).output().await.unwrap();
        assert!(!out.status.success(), "another session's key opened 'own'");
        let root = SshTarget {
            account: "root".into(),
            ..SshTarget::direct(&other)
        };
        let out = root.ssh(&["true"]).output().await.unwrap();
        assert!(!out.status.success(), "root logged in");
        // Both servers answer their own keys.
        for s in [&other, &openssh] {
            assert_eq!(
                run_ok(SshTarget::direct(s).ssh(&["echo", "ok"]))
                    .await
                    .trim(),
                "ok",
                "{}",
                s.name
            );
        }
        sb.shutdown().await;
    })
    .await
}

/// `root` and every descendant.
fn tree(root: u32) -> Vec<u32> {
    let mut out = vec![root];
    out.extend(descendants(root));
    out
}

fn left(pids: &[u32]) -> Vec<u32> {
    pids.iter().copied().filter(|p| !pid_gone(*p)).collect()
}

/// An ssh client running `sleep 60` in the session, once the session is up.
type Held = (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
);

async fn hold(t: &SshTarget) -> Held {
    let mut child = t
        .ssh(&["echo", "up;", "sleep", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "up");
    (child, lines)
}

async fn assert_client_ends((mut child, _): Held) {
    let st = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the ssh client still runs: its connection survived");
    assert!(!st.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dropbear_process_survives_stop_terminate_or_drop() {
    within(90, async {
        let sb = dropbear_sandbox(3).await;
        let sessions_dir = sb
            .session("demo-1")
            .unwrap()
            .home
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .display()
            .to_string();
        let mut trees = Vec::new();
        let mut held = Vec::new();
        for name in ["demo-1", "demo-2", "demo-3"] {
            let s = sb.session(name).unwrap();
            held.push(hold(&SshTarget::direct(&s)).await);
            let t = tree(sb.session_sshd_pid(name).unwrap());
            // unshare, dropbear, its per-connection child, the wrapper's shell (and sleep).
            assert!(t.len() >= 4, "{name}: {t:?}");
            trees.push(t);
        }
        let mut held = held.into_iter();
        let mut trees = trees.into_iter();

        // Stopping a session closes its tunnel (1001) and kills its whole tree.
        let mut ws = manager_ws(&sb, "/stream/session/demo-1/tcpproxy?app=sshd")
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Got::Data(d) if d.starts_with(b"SSH-2.0-dropbear")));
        sb.set_status("demo-1", Status::Preparing).await.unwrap();
        assert!(matches!(next(&mut ws).await, Got::Close(Some(1001))));
        let t = trees.next().unwrap();
        assert!(all_gone(&t, 5).await, "left after stop: {:?}", left(&t));
        assert_client_ends(held.next().unwrap()).await;
        // RUNNING again: a new dropbear in a new namespace, same home and key.
        sb.set_status("demo-1", Status::Running).await.unwrap();
        let s = sb.session("demo-1").unwrap();
        assert_eq!(
            run_ok(SshTarget::direct(&s).ssh(&["echo", "ok"]))
                .await
                .trim(),
            "ok"
        );
        let mut restarted = tree(sb.session_sshd_pid("demo-1").unwrap());

        // Terminating one kills its tree.
        sb.terminate("demo-2").await.unwrap();
        let t = trees.next().unwrap();
        assert!(
            all_gone(&t, 5).await,
            "left after terminate: {:?}",
            left(&t)
        );
        assert_client_ends(held.next().unwrap()).await;

        // Dropping the sandbox (no shutdown, as when a test panics) kills the rest.
        restarted.extend(trees.next().unwrap());
        tokio::task::spawn_blocking(move || drop(sb)).await.unwrap();
        assert!(
            all_gone(&restarted, 5).await,
            "left after drop: {:?}",
            left(&restarted)
        );
        assert_client_ends(held.next().unwrap()).await;
        assert!(
            live_with_cmdline(&sessions_dir).is_empty(),
            "a process of {sessions_dir} survived"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_dropbear_which_dies_with_a_sigkilled_sandbox() {
    within(60, async {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bai-sandbox"))
            .args([
                "--port",
                "0",
                "--json",
                "--sessions",
                "2",
                "--sshd",
                "dropbear",
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(v["ssh_server"], "dropbear", "{v}");
        let running: Vec<&Value> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "RUNNING")
            .collect();
        assert_eq!(running.len(), 2, "{v}");
        let mut pids = Vec::new();
        let mut ports = Vec::new();
        let mut held = Vec::new();
        for s in running {
            assert_eq!(s["ssh_server"], "dropbear", "{s}");
            let t = SshTarget::new(
                s["sshd_port"].as_u64().unwrap() as u16,
                PathBuf::from(s["id_container"].as_str().unwrap()),
                s["account"].as_str().unwrap(),
            );
            held.push(hold(&t).await);
            ports.push(t.port);
            pids.extend(tree(s["sshd_pid"].as_u64().unwrap() as u32));
        }
        child.start_kill().unwrap(); // SIGKILL: no clean-up code runs
        child.wait().await.unwrap();
        assert!(
            all_gone(&pids, 5).await,
            "outlived the SIGKILLed sandbox: {:?}",
            left(&pids)
        );
        for p in ports {
            assert!(tokio::net::TcpStream::connect(("127.0.0.1", p))
                .await
                .is_err());
        }
        for h in held {
            assert_client_ends(h).await;
        }

        // An unknown server is refused, naming the choices.
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bai-sandbox"))
            .args(["--port", "0", "--sshd", "nope"])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("dropbear") && err.contains("openssh"), "{err}");
    })
    .await
}
