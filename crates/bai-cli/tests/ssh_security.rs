//! The security review's end-to-end checks, with the built `bai` against an in-process
//! `bai_sandbox::Sandbox` (real sshd sessions) and the real OpenSSH clients: hostile session
//! names never reach `ssh_config`, host keys are pinned per session on first use, and odd
//! profile names cannot make `config-ssh --remove` delete anything outside bai's folders.

use bai_sandbox::{SessionSpec, SshServer};
use bai_testkit::{assert_success as ok, mode, text, within, CliWorld};

const BAI: &str = env!("CARGO_BIN_EXE_bai");
const TEST_SECS: u64 = 120;

type World = CliWorld;

/// Session names a hostile server could send.
const HOSTILE: &[&str] = &[
    "x *",
    "y\nMatch exec \"touch PWNED\"\nHost z",
    "$(touch PWNED)",
    "q'\"",
    "\x1b[31mred\x1b[0m",
    "-oProxyCommand=touch PWNED",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_session_names_never_reach_ssh_config() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        for name in HOSTILE {
            // Dropbear takes its paths as arguments (sshd's config file cannot hold these).
            w.sb()
                .create_session(SessionSpec::running(*name).ssh_server(SshServer::Dropbear))
                .await
                .expect("create session");
        }
        w.login(&s1.account).await;
        let ssh_dir = w.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).expect("mkdir");
        let main = ssh_dir.join("config");
        std::fs::write(&main, "Host github.com\n  User git\n").expect("write");
        let before_github = w.ssh_g("github.com", &main).await;
        let before_other = w.ssh_g("other.example", &main).await;

        let out = w.bai_run(&["config-ssh", "--dry-run"]).await;
        ok(&out);
        let shown = text(&out.stdout);
        assert!(shown.contains("+ Host bai-s1"), "{shown}");
        for bytes in [&b"\x1b"[..], b"Match", b"PWNED", b"Host bai-x", b"$("] {
            assert!(
                !out.stdout.windows(bytes.len()).any(|w| w == bytes),
                "{:?} in the dry run: {shown}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Skipped sessions are named, escaped, on stderr.
        let err = text(&out.stderr);
        assert!(err.contains("skipped session"), "{err}");
        assert!(!err.contains('\x1b'), "raw ESC on stderr: {err:?}");

        ok(&w.bai_run(&["config-ssh"]).await);
        let include = std::fs::read_to_string(ssh_dir.join("bai/config")).expect("include");
        assert!(
            !include.chars().any(|c| c.is_control() && c != '\n'),
            "{include:?}"
        );
        assert_eq!(include.matches("\nHost ").count(), 1, "{include}");
        assert!(!include.contains("Match") && !include.contains("PWNED"));
        // bai's file changes nothing for any other host.
        assert_eq!(w.ssh_g("github.com", &main).await, before_github);
        assert_eq!(w.ssh_g("other.example", &main).await, before_other);
        assert!(!w.cwd.join("PWNED").exists() && !w.home.join("PWNED").exists());
    })
    .await;
}

fn known_hosts_lines(w: &World, id: &str) -> Vec<String> {
    std::fs::read_to_string(w.cfg.join("known_hosts"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(id))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_are_pinned_per_session_on_first_use() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let s1 = w.session("s1").await;
        let s2 = w.session("s2").await;
        w.login(&s1.account).await;
        let id = s1.id.to_string();
        let known_hosts = w.cfg.join("known_hosts");

        // First use: accepted silently and recorded under the session id.
        let out = w.bai_run(&["ssh", "s1", "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
        assert!(
            !text(&out.stderr).contains("Permanently added"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(mode(&known_hosts), 0o600);
        let pinned = known_hosts_lines(&w, &id);
        assert_eq!(pinned.len(), 1, "{pinned:?}");
        // Again: the same key, fine.
        let out = w.bai_run(&["ssh", "s1", "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(known_hosts_lines(&w, &id), pinned);

        // A different key for the same session id: refused, with bai's explanation.
        let other = w.tmp.join("other_key");
        let out = w
            .run(
                w.command(
                    "ssh-keygen",
                    [
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-f",
                        other.to_str().expect("utf8"),
                    ],
                ),
                None,
            )
            .await;
        ok(&out);
        let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
        let mut f = other_pub.split_whitespace();
        let (t, k) = (f.next().expect("type"), f.next().expect("key"));
        let tampered = std::fs::read_to_string(&known_hosts)
            .expect("read")
            .lines()
            .map(|l| {
                if l.split_whitespace().next() == Some(id.as_str()) {
                    format!("{id} {t} {k}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>();
        std::fs::write(&known_hosts, tampered).expect("tamper");
        std::fs::remove_file(&other).expect("rm");
        std::fs::remove_file(other.with_extension("pub")).expect("rm");
        let out = w.bai_run(&["ssh", "s1", "--", "echo", "ok"]).await;
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(text(&out.stdout).trim().is_empty());
        assert!(
            err.contains("error: the SSH host key of session \"s1\"")
                && err.contains("has changed since bai first connected to it"),
            "{err}"
        );
        assert!(
            err.contains(&format!("ssh-keygen -R {id} -f {}", known_hosts.display())),
            "{err}"
        );
        // scp through the same pin is refused too.
        std::fs::write(w.cwd.join("f"), "x").expect("write");
        let out = w.bai_run(&["scp", "f", "s1:"]).await;
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("has changed since"),
            "{}",
            text(&out.stderr)
        );
        // Another session is unaffected, and the reset command works.
        ok(&w.bai_run(&["ssh", "s2", "--", "true"]).await);
        let out = w
            .run(
                w.command(
                    "ssh-keygen",
                    ["-R", &id, "-f", known_hosts.to_str().expect("utf8")],
                ),
                None,
            )
            .await;
        ok(&out);
        ok(&w.bai_run(&["ssh", "s1", "--", "true"]).await);
        assert_eq!(known_hosts_lines(&w, &id), pinned);

        // config-ssh entries pin the same way, and `ssh bai-<session>` works through them.
        let out = w.bai_run(&["config-ssh"]).await;
        ok(&out);
        let main = w.home.join(".ssh/config");
        let entries = std::fs::read_to_string(w.home.join(".ssh/bai/config")).expect("include");
        for want in [
            format!("  HostKeyAlias {id}\n"),
            format!("  HostKeyAlias {}\n", s2.id),
            "  StrictHostKeyChecking accept-new\n".to_owned(),
            format!("  UserKnownHostsFile {}\n", known_hosts.display()),
        ] {
            assert!(entries.contains(&want), "{want:?} not in {entries}");
        }
        assert!(!entries.contains("StrictHostKeyChecking no"), "{entries}");
        let main_s = main.display().to_string();
        let out = w
            .run(
                w.command(
                    "ssh",
                    ["-F", &main_s, "-o", "BatchMode=yes", "bai-s2", "echo", "ok"],
                ),
                None,
            )
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
        assert_eq!(known_hosts_lines(&w, &s2.id.to_string()).len(), 1);
        // The tampered pin refuses `ssh bai-s1` as well.
        std::fs::write(
            &known_hosts,
            std::fs::read_to_string(&known_hosts)
                .expect("read")
                .replace(&pinned[0], &format!("{id} {t} {k}")),
        )
        .expect("tamper");
        let out = w
            .run(
                w.command(
                    "ssh",
                    ["-F", &main_s, "-o", "BatchMode=yes", "bai-s1", "true"],
                ),
                None,
            )
            .await;
        assert!(!out.status.success(), "{}", text(&out.stderr));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_with_odd_profile_names_stays_inside_bai_folders() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        // <root>/cfg/keys/../../victim is <root>/victim.
        let victim = w.root().join("victim");
        let abs_victim = w.root().join("abs-victim");
        for d in [&victim, &abs_victim, &w.cfg.join("victim")] {
            std::fs::create_dir_all(d).expect("mkdir");
            std::fs::write(d.join("keep"), "precious").expect("write");
        }
        let ssh_dir = w.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).expect("mkdir");
        std::fs::write(w.home.join("keep"), "precious").expect("write");
        let abs = abs_victim.display().to_string();
        for profile in [
            "../../victim",
            "../victim",
            "..",
            abs.as_str(),
            "../../home/keep",
        ] {
            for dry in [true, false] {
                let mut args = vec!["--profile", profile, "config-ssh", "--remove"];
                if dry {
                    args.push("--dry-run");
                }
                let out = w.bai_run(&args).await;
                ok(&out);
            }
        }
        for d in [&victim, &abs_victim, &w.cfg.join("victim")] {
            assert!(d.join("keep").exists(), "{} was deleted", d.display());
        }
        assert!(w.home.join("keep").exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_keeps_a_symlinked_ssh_config_a_symlink() {
    within(TEST_SECS, async {
        let w = World::start(BAI).await;
        let ssh_dir = w.home.join(".ssh");
        let dotfiles = w.home.join("dotfiles");
        std::fs::create_dir_all(&ssh_dir).expect("mkdir");
        std::fs::create_dir_all(&dotfiles).expect("mkdir");
        let target = dotfiles.join("ssh_config");
        let original = "Host github.com\n  User git\n";
        std::fs::write(
            &target,
            format!(
                "# Added by `bai config-ssh`; `bai config-ssh --remove` takes it out.\nInclude {}\n\n{original}",
                ssh_dir.join("bai/config").display()
            ),
        )
        .expect("write");
        let main = ssh_dir.join("config");
        std::os::unix::fs::symlink("../dotfiles/ssh_config", &main).expect("symlink");
        ok(&w.bai_run(&["config-ssh", "--remove"]).await);
        assert!(
            std::fs::symlink_metadata(&main)
                .expect("meta")
                .file_type()
                .is_symlink(),
            "~/.ssh/config is no longer a symlink"
        );
        assert_eq!(std::fs::read_to_string(&target).expect("target"), original);
    })
    .await;
}
