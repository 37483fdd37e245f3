//! The in-app SSH/SFTP client (bai-core::remote) against the sandbox's real sshd, through the
//! in-process tunnel: a PTY shell (commands, exit status, resize), the file browser's
//! operations, transfers (a 64 MiB file and a folder tree, sha256 both ways; cancel leaves
//! nothing; overwrite is refused without asking), and the refusals (a changed host key, a
//! wrong account). The 1 GiB case is `make bench` (`bai-bench sftp`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bai_core::bai_api::{Mode, Sensitive};
use bai_core::remote::{
    transfer, Direction, EntryKind, Remotes, ShellEvent, ShellReader, SshClient, TransferState,
    Transfers,
};
use bai_core::{ErrorCode, LoginForm, MemoryStore, Workspace};
use bai_sandbox::{Sandbox, SessionSpec};
use bai_testkit::{sandbox, sha256_file, within, write_noise_file};

struct World {
    sb: Sandbox,
    ws: Workspace,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let (sb, _) =
        sandbox::with_sessions(bai_sandbox::Config::default(), [SessionSpec::running("s1")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = Workspace::new(dir.path().to_path_buf(), Arc::new(MemoryStore::new()));
    let user = sb.user().clone();
    ws.login(LoginForm {
        endpoint: sb.webserver_url(),
        mode: Mode::Session,
        email: Some(user.email.clone()),
        password: Some(Sensitive::new(user.password.clone())),
        ..LoginForm::default()
    })
    .await
    .expect("login");
    let account = sb.session("s1").expect("s1").account;
    ws.set_profile_prefs(None, &account).expect("account");
    World { sb, ws, _dir: dir }
}

/// Reads shell output until `want` appears in what was not consumed yet (`pending`, which
/// keeps what came after the match for the next call); returns what was consumed.
async fn read_until(r: &mut ShellReader, pending: &mut String, want: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(at) = pending.find(want) {
                let rest = pending.split_off(at + want.len());
                return Some(std::mem::replace(pending, rest));
            }
            match r.next().await {
                Some(ShellEvent::Data(d)) => pending.push_str(&String::from_utf8_lossy(&d)),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    match found {
        Ok(Some(seen)) => seen,
        _ => panic!("{want:?} not in {pending:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_runs_commands_reports_the_exit_status_and_follows_resizes() {
    within(120, async {
        let w = world().await;
        let remotes = Remotes::new();
        let client = remotes.client(&w.ws, "s1").await.expect("connect");
        let again = remotes.client(&w.ws, "s1").await.expect("reuse");
        assert!(Arc::ptr_eq(&client, &again), "one connection per session");

        let (input, mut output) = client.shell(80, 24).await.expect("shell");
        let mut pending = String::new();
        input.send(b"echo $((6*7))\n").await.expect("type");
        read_until(&mut output, &mut pending, "42\r\n").await;
        input.send(b"stty size\n").await.expect("type");
        read_until(&mut output, &mut pending, "24 80").await;
        input.resize(132, 50).await.expect("resize");
        input
            .send(b"stty size; echo \"\xc3\xa9t\xc3\xa9 $TERM\"\n")
            .await
            .expect("type");
        read_until(&mut output, &mut pending, "50 132").await;
        read_until(&mut output, &mut pending, "\u{e9}t\u{e9} xterm-256color").await;
        input.send(b"exit 3\n").await.expect("type");
        let mut status = None;
        while let Some(ev) = output.next().await {
            if let ShellEvent::Exit { status: s, .. } = ev {
                status = s;
            }
        }
        assert_eq!(status, Some(3));

        // Several shells on one connection; exec for scripts.
        let (_a, _ra) = client.shell(80, 24).await.expect("shell a");
        let (_b, _rb) = client.shell(80, 24).await.expect("shell b");
        let (out, code) = client.exec("echo hi; exit 7").await.expect("exec");
        assert_eq!((out.as_slice(), code), (b"hi\n".as_slice(), Some(7)));
        w.sb.shutdown().await;
    })
    .await;
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(root.join(".hidden"), "h\n").expect("write");
    write_noise_file(&root.join("sub/b.bin"), 3 << 20, 7);
    std::fs::write(root.join("sub/deeper/c.txt"), "").expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(root.join("a.txt"), std::fs::Permissions::from_mode(0o751))
        .expect("chmod");
    // A link to a file is uploaded as that file (as sftp/scp do); one to a folder is skipped
    // (no loops), and so is a dangling one.
    std::os::unix::fs::symlink("a.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink("sub", root.join("dirlink")).expect("symlink");
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).expect("symlink");
}

fn hashes(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            let m = std::fs::symlink_metadata(&p).expect("meta");
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                out.push((rel, sha256_file(&p)));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_browse_transfer_cancel_and_refuse_overwrites() {
    within(300, async {
        let w = world().await;
        let remotes = Remotes::new();
        let client = remotes.client(&w.ws, "s1").await.expect("connect");
        let sftp = client.browser().await.expect("sftp");
        let home = sftp.home().await.expect("home");
        assert!(home.starts_with('/'), "{home}");
        let local = tempfile::tempdir().expect("tempdir");

        // Folders: create, refuse a duplicate, rename, refuse renaming onto an existing name.
        let up = format!("{home}/up");
        sftp.mkdir(&up).await.expect("mkdir");
        assert_eq!(sftp.mkdir(&up).await.expect_err("exists").code(), ErrorCode::Exists);
        sftp.mkdir(&format!("{home}/other")).await.expect("mkdir");
        let e = sftp.rename(&format!("{home}/other"), &up).await.expect_err("exists");
        assert_eq!(e.code(), ErrorCode::Exists);
        assert!(e.to_string().contains("/up"), "{e}");
        sftp.rename(&format!("{home}/other"), &format!("{home}/renamed")).await.expect("rename");

        // A 64 MiB file up and down through the queue, sha256 both ways.
        let big = local.path().join("big.bin");
        let sum = write_noise_file(&big, 64 << 20, 42);
        let q = Transfers::default();
        let (c, b) = (client.clone(), big.clone());
        let up2 = up.clone();
        let id = q.start("s1", Direction::Upload, "big.bin", "", "", move |(p, cancel)| async move {
            let s = c.sftp().await?;
            transfer::upload(&s, &b, &up2, &p, &cancel).await
        });
        let done = q.wait(id).await.expect("known");
        assert_eq!(done.state, TransferState::Done, "{done:?}");
        assert_eq!((done.bytes, done.total, done.files, done.files_total), (64 << 20, Some(64 << 20), 1, Some(1)));
        let listing = sftp.list(&up).await.expect("list");
        let entry = listing.entries.iter().find(|e| e.name == "big.bin").expect("listed");
        assert_eq!((entry.kind, entry.size), (EntryKind::File, 64 << 20));
        let down = local.path().join("down");
        std::fs::create_dir(&down).expect("mkdir");
        let s = client.sftp().await.expect("sftp");
        let p = transfer::Progress::new();
        let never = tokio_util::sync::CancellationToken::new();
        transfer::download(&s, &format!("{up}/big.bin"), &down, &p, &never).await.expect("download");
        assert_eq!(sha256_file(&down.join("big.bin")), sum);

        // A folder tree (hidden file, empty file, nested folders, a mode, a symlink skipped).
        let src = local.path().join("tree");
        tree(&src);
        transfer::upload(&s, &src, &up, &p, &never).await.expect("upload tree");
        let remote_tree = format!("{up}/tree");
        let names: Vec<_> = sftp.list(&remote_tree).await.expect("list").entries.into_iter().map(|e| (e.name, e.permissions)).collect();
        assert_eq!(
            names,
            [
                ("sub".into(), "drwxr-xr-x".into()),
                (".hidden".into(), "-rw-r--r--".into()),
                ("a.txt".into(), "-rwxr-x--x".into()),
                ("link".into(), "-rwxr-x--x".into())
            ],
            "dirs first, hidden listed, the local mode kept, links to folders skipped"
        );
        transfer::download(&s, &remote_tree, &down, &p, &never).await.expect("download tree");
        let mut want = hashes(&src);
        want.push(("link".into(), sha256_file(&src.join("a.txt"))));
        want.sort();
        assert_eq!(hashes(&down.join("tree")), want);
        assert_eq!(bai_testkit::mode(&down.join("tree/a.txt")) & 0o777, 0o751);

        // Cancel: nothing left behind, remote or local.
        let (c, b, up2) = (client.clone(), big.clone(), format!("{home}/renamed"));
        // Cancelled as soon as the first bytes are written (from inside the job: the queue's
        // progress events come every 200 ms, and a fast machine could finish before one).
        let id = q.start("s1", Direction::Upload, "big.bin", "", "", move |(p, cancel)| async move {
            let s = c.sftp().await?;
            let (watch, stop) = (p.clone(), cancel.clone());
            let watcher = tokio::spawn(async move {
                while watch.bytes.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                stop.cancel();
            });
            let r = transfer::upload(&s, &b, &up2, &p, &cancel).await;
            watcher.abort();
            r
        });
        assert_eq!(q.wait(id).await.map(|t| t.state), Some(TransferState::Cancelled));
        assert!(sftp.lstat(&format!("{home}/renamed/big.bin")).await.expect("lstat").is_none());
        let dl = local.path().join("dl");
        std::fs::create_dir(&dl).expect("mkdir");
        let cancel = tokio_util::sync::CancellationToken::new();
        let (s2, c2) = (client.sftp().await.expect("sftp"), cancel.clone());
        let (from, to) = (format!("{up}/big.bin"), dl.clone());
        let task = tokio::spawn(async move {
            let p = transfer::Progress::new();
            let p2 = p.clone();
            let work = async move { transfer::download(&s2, &from, &to, &p2, &c2).await };
            tokio::pin!(work);
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    () = tokio::time::sleep(Duration::from_millis(5)) => {
                        if p.bytes.load(std::sync::atomic::Ordering::Relaxed) > 0 { c2_cancel(&cancel) }
                    }
                }
            }
        });
        let r = task.await.expect("join");
        assert_eq!(r.expect_err("cancelled").code(), ErrorCode::Cancelled);
        assert_eq!(std::fs::read_dir(&dl).expect("dl").count(), 0, "the partial file is removed");

        // Delete: a symlink is removed, never its target; a folder with everything in it.
        let (_, code) = client.exec(&format!("ln -s {up} {home}/link-to-up")).await.expect("ln");
        assert_eq!(code, Some(0));
        sftp.delete(&format!("{home}/link-to-up")).await.expect("delete link");
        assert!(sftp.lstat(&format!("{up}/big.bin")).await.expect("lstat").is_some());
        sftp.delete(&up).await.expect("delete tree");
        assert!(sftp.lstat(&up).await.expect("lstat").is_none());
        assert_eq!(sftp.list("/nonexistent-dir").await.expect_err("missing").code(), ErrorCode::FileNotFound);
        w.sb.shutdown().await;
    })
    .await;
}

fn c2_cancel(c: &tokio_util::sync::CancellationToken) {
    c.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_a_wrong_account_no_sshd_and_a_broken_connection_fail_cleanly() {
    within(300, async {
        let w = world().await;
        // First use pins the key in bai's known_hosts under the session id.
        let first = SshClient::connect(w.ws.remote_target("s1").await.expect("target")).await.expect("connect");
        first.close().await;
        let target = w.ws.remote_target("s1").await.expect("target");
        let kh = target.pin.known_hosts.clone();
        let pinned = std::fs::read_to_string(&kh).expect("known_hosts");
        let id = w.sb.session("s1").expect("s1").id.to_string();
        assert!(pinned.starts_with(&format!("{id} ")), "{pinned}");
        SshClient::connect(target).await.expect("the pinned key matches");

        // Another key pinned for the session: refused, with the reset command.
        std::fs::write(
            &kh,
            format!("{id} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"),
        )
        .expect("corrupt the pin");
        let e = SshClient::connect(w.ws.remote_target("s1").await.expect("target")).await.expect_err("changed");
        assert_eq!(e.code(), ErrorCode::HostKeyChanged, "{e}");
        assert!(e.to_string().contains("has changed"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("ssh-keygen -R")), "{:?}", e.hint());

        // A wrong account: the key is refused.
        let account = w.sb.session("s1").expect("s1").account;
        std::fs::write(&kh, pinned).expect("restore the pin");
        w.ws.set_profile_prefs(None, "nosuchuser").expect("account");
        let e = SshClient::connect(w.ws.remote_target("s1").await.expect("target")).await.expect_err("refused");
        assert_eq!(e.code(), ErrorCode::SshAuthFailed, "{e}");
        assert!(e.to_string().contains("nosuchuser"), "{e}");
        w.ws.set_profile_prefs(None, &account).expect("account");

        // No SSH server answering behind the tunnel (the port refuses): a network error that
        // says so.
        let faults = w.sb.session_faults("s1").expect("faults");
        faults.set_refuse_port(true);
        let e = SshClient::connect(w.ws.remote_target("s1").await.expect("target"))
            .await
            .expect_err("no sshd");
        assert_eq!(e.code(), ErrorCode::Network, "{e}");
        assert!(e.to_string().contains("SSH server of session s1"), "{e}");
        faults.set_refuse_port(false);

        // The connection breaks in the middle of a download: failed, the partial file removed.
        let c = SshClient::connect(w.ws.remote_target("s1").await.expect("target"))
            .await
            .expect("connect");
        let (_, code) = c
            .exec("head -c 8388608 /dev/zero > zeros.bin")
            .await
            .expect("exec");
        assert_eq!(code, Some(0));
        let s = c.sftp().await.expect("sftp");
        let home = s.home().await.expect("home");
        faults.set_drop_after(Some(1 << 20));
        let c2 = SshClient::connect(w.ws.remote_target("s1").await.expect("target"))
            .await
            .expect("connect");
        let s2 = c2.sftp().await.expect("sftp");
        let local = tempfile::tempdir().expect("tempdir");
        let p = transfer::Progress::new();
        let never = tokio_util::sync::CancellationToken::new();
        // A dropped connection is usually noticed at once (the tunnel's EOF); on a loaded
        // machine it has taken until the SFTP request timeout (120 s), the last resort, which
        // is what this bounds.
        let e = tokio::time::timeout(
            Duration::from_secs(150),
            transfer::download(&s2, &format!("{home}/zeros.bin"), local.path(), &p, &never),
        )
        .await
        .expect("the broken connection is noticed")
        .expect_err("broken");
        assert_eq!(e.code(), ErrorCode::Network, "{e}");
        assert_eq!(std::fs::read_dir(local.path()).expect("dir").count(), 0);
        assert!(c2.is_closed() || s2.is_closed());
        faults.set_drop_after(None);
        w.sb.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_id_container_uses_the_profiles_own_key() {
    within(120, async {
        let w = world().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id_ed25519");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "me", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
        let mut spec = SessionSpec::running("own");
        spec.authorized_keys = Some(public);
        w.sb.create_session(spec).await.expect("own");

        // No id_container and no own key: a clear error.
        let e = w.ws.remote_target("own").await.expect_err("no key");
        assert_eq!(e.code(), ErrorCode::FileNotFound, "{e}");
        assert!(e.to_string().contains("id_container"), "{e}");

        w.ws.set_own_key(&key).expect("own key");
        let target = w.ws.remote_target("own").await.expect("target");
        assert!(
            target.key_label.contains("your own key"),
            "{}",
            target.key_label
        );
        let c = SshClient::connect(target)
            .await
            .expect("connect with the own key");
        let (out, code) = c.exec("echo own").await.expect("exec");
        assert_eq!((out.as_slice(), code), (b"own\n".as_slice(), Some(0)));
        w.sb.shutdown().await;
    })
    .await;
}

/// Runs `transfer` with a token cancelled as soon as its first bytes moved.
async fn cancelled_midway<F, Fut>(transfer: F) -> bai_core::Result<()>
where
    F: FnOnce(Arc<transfer::Progress>, tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = bai_core::Result<()>>,
{
    let p = transfer::Progress::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (watch, stop) = (p.clone(), cancel.clone());
    let watcher = tokio::spawn(async move {
        while watch.bytes.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.cancel();
    });
    let r = transfer(p, cancel).await;
    watcher.abort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_replace_keeps_the_original_and_links_out_of_a_folder_stay_home() {
    within(180, async {
        let w = world().await;
        let remotes = Remotes::new();
        let client = remotes.client(&w.ws, "s1").await.expect("connect");
        let sftp = client.browser().await.expect("sftp");
        let home = sftp.home().await.expect("home");
        let local = tempfile::tempdir().expect("tempdir");
        let never = tokio_util::sync::CancellationToken::new();
        let s = client.sftp().await.expect("sftp");

        // Upload over an existing remote file, cancelled: the original is untouched and no
        // temporary file is left.
        let small = local.path().join("small");
        std::fs::create_dir(&small).expect("mkdir");
        std::fs::write(small.join("keep.bin"), "original\n").expect("write");
        transfer::upload(
            &s,
            &small.join("keep.bin"),
            &home,
            &transfer::Progress::new(),
            &never,
        )
        .await
        .expect("upload the original");
        let big = local.path().join("big");
        std::fs::create_dir(&big).expect("mkdir");
        write_noise_file(&big.join("keep.bin"), 64 << 20, 3);
        let r = cancelled_midway(|p, c| {
            let (s, from, to) = (&s, big.join("keep.bin"), home.clone());
            async move { transfer::upload(s, &from, &to, &p, &c).await }
        })
        .await;
        assert_eq!(r.expect_err("cancelled").code(), ErrorCode::Cancelled);
        let (out, code) = client.exec("cat ~/keep.bin").await.expect("exec");
        assert_eq!((out.as_slice(), code), (b"original\n".as_slice(), Some(0)));
        let names: Vec<String> = sftp
            .list(&home)
            .await
            .expect("list")
            .entries
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("bai-part")),
            "left behind: {names:?}"
        );

        // Download over an existing local file, cancelled: the same.
        sftp.mkdir(&format!("{home}/bigdir")).await.expect("mkdir");
        transfer::upload(
            &s,
            &big.join("keep.bin"),
            &format!("{home}/bigdir"),
            &transfer::Progress::new(),
            &never,
        )
        .await
        .expect("upload");
        let mine = local.path().join("mine");
        std::fs::create_dir(&mine).expect("mkdir");
        std::fs::write(mine.join("keep.bin"), "mine\n").expect("write");
        let r = cancelled_midway(|p, c| {
            let (s, from, to) = (&s, format!("{home}/bigdir/keep.bin"), mine.clone());
            async move { transfer::download(s, &from, &to, &p, &c).await }
        })
        .await;
        assert_eq!(r.expect_err("cancelled").code(), ErrorCode::Cancelled);
        assert_eq!(
            std::fs::read_to_string(mine.join("keep.bin")).expect("read"),
            "mine\n"
        );
        let left: Vec<_> = std::fs::read_dir(&mine)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "left behind: {left:?}");

        // A folder upload follows a link only to a file inside the folder.
        let outside = local.path().join("outside.txt");
        std::fs::write(&outside, "secret\n").expect("write");
        let tree = local.path().join("repo");
        std::fs::create_dir(&tree).expect("mkdir");
        std::fs::write(tree.join("a.txt"), "a\n").expect("write");
        std::os::unix::fs::symlink("a.txt", tree.join("inside")).expect("symlink");
        std::os::unix::fs::symlink(&outside, tree.join("key")).expect("symlink");
        std::os::unix::fs::symlink("../outside.txt", tree.join("key2")).expect("symlink");
        transfer::upload(&s, &tree, &home, &transfer::Progress::new(), &never)
            .await
            .expect("upload");
        let mut names: Vec<String> = sftp
            .list(&format!("{home}/repo"))
            .await
            .expect("list")
            .entries
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.txt", "inside"],
            "a link out of the folder was followed"
        );
        w.sb.shutdown().await;
    })
    .await;
}
