//! The security review's end-to-end checks, with the built `bai` against an in-process
//! `bai_sandbox::Sandbox` (real sshd sessions) and the real OpenSSH clients: hostile session
//! names never reach `ssh_config`, host keys are pinned per session on first use, and odd
//! profile names cannot make `config-ssh --remove` delete anything outside bai's folders.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bai_sandbox::{Config, Sandbox, SessionInfo, SessionSpec, SshServer};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

const BAI: &str = env!("CARGO_BIN_EXE_bai");
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const CMD_TIMEOUT: Duration = Duration::from_secs(40);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out")
}

struct World {
    sb: Sandbox,
    webserver: String,
    root: tempfile::TempDir,
    home: PathBuf,
    cfg: PathBuf,
    cwd: PathBuf,
    tmp: PathBuf,
}

impl World {
    async fn start() -> World {
        let sb = Sandbox::start(Config::default()).await.expect("sandbox");
        let root = tempfile::tempdir().expect("tempdir");
        let [home, cfg, cwd, tmp] = ["home", "cfg", "cwd", "tmp"].map(|d| root.path().join(d));
        for d in [&home, &cfg, &cwd, &tmp] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        World {
            webserver: sb.webserver_url(),
            sb,
            root,
            home,
            cfg,
            cwd,
            tmp,
        }
    }

    async fn session(&self, name: &str) -> SessionInfo {
        self.sb
            .create_session(SessionSpec::running(name))
            .await
            .expect("create session")
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(&self.cwd)
            .env("HOME", &self.home)
            .env("BAI_CONFIG_DIR", &self.cfg)
            .env("BAI_SECRET_STORE", "file")
            .env("TMPDIR", &self.tmp)
            .env_remove("BAI_PROFILE")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        for k in [
            "BACKEND_ENDPOINT",
            "BACKEND_ENDPOINT_TYPE",
            "BACKEND_ACCESS_KEY",
            "BACKEND_SECRET_KEY",
        ] {
            c.env_remove(k);
        }
        c
    }

    async fn run(&self, mut cmd: Command, stdin: Option<&str>) -> Output {
        cmd.stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        if let Some(input) = stdin {
            let mut s = child.stdin.take().expect("stdin");
            s.write_all(input.as_bytes()).await.expect("write stdin");
            drop(s);
        }
        tokio::time::timeout(CMD_TIMEOUT, child.wait_with_output())
            .await
            .expect("command timed out")
            .expect("wait")
    }

    async fn bai(&self, args: &[&str]) -> Output {
        self.run(self.command(BAI, args), None).await
    }

    async fn login(&self, account: &str) {
        let user = self.sb.user().clone();
        let cmd = self.command(
            BAI,
            &[
                "--user",
                account,
                "login",
                "--endpoint",
                &self.webserver,
                "--email",
                &user.email,
                "--password-stdin",
            ],
        );
        ok(&self.run(cmd, Some(&format!("{}\n", user.password))).await);
    }

    /// `ssh -G host -F config`: the effective configuration, without connecting.
    async fn ssh_g(&self, host: &str, config: &Path) -> String {
        let config = config.display().to_string();
        let out = self
            .run(self.command("ssh", &["-G", host, "-F", &config]), None)
            .await;
        ok(&out);
        text(&out.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

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
    within(async {
        let w = World::start().await;
        let s1 = w.session("s1").await;
        for name in HOSTILE {
            // Dropbear takes its paths as arguments (sshd's config file cannot hold these).
            w.sb.create_session(SessionSpec::running(*name).ssh_server(SshServer::Dropbear))
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

        let out = w.bai(&["config-ssh", "--dry-run"]).await;
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

        ok(&w.bai(&["config-ssh"]).await);
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
    within(async {
        let w = World::start().await;
        let s1 = w.session("s1").await;
        let s2 = w.session("s2").await;
        w.login(&s1.account).await;
        let id = s1.id.to_string();
        let known_hosts = w.cfg.join("known_hosts");

        // First use: accepted silently and recorded under the session id.
        let out = w.bai(&["ssh", "s1", "--", "echo", "ok"]).await;
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
        let out = w.bai(&["ssh", "s1", "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(known_hosts_lines(&w, &id), pinned);

        // A different key for the same session id: refused, with bai's explanation.
        let other = w.tmp.join("other_key");
        let out = w
            .run(
                w.command(
                    "ssh-keygen",
                    &[
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
        let out = w.bai(&["ssh", "s1", "--", "echo", "ok"]).await;
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
        let out = w.bai(&["scp", "f", "s1:"]).await;
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("has changed since"),
            "{}",
            text(&out.stderr)
        );
        // Another session is unaffected, and the reset command works.
        ok(&w.bai(&["ssh", "s2", "--", "true"]).await);
        let out = w
            .run(
                w.command(
                    "ssh-keygen",
                    &["-R", &id, "-f", known_hosts.to_str().expect("utf8")],
                ),
                None,
            )
            .await;
        ok(&out);
        ok(&w.bai(&["ssh", "s1", "--", "true"]).await);
        assert_eq!(known_hosts_lines(&w, &id), pinned);

        // config-ssh entries pin the same way, and `ssh bai-<session>` works through them.
        let out = w.bai(&["config-ssh"]).await;
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
                    &["-F", &main_s, "-o", "BatchMode=yes", "bai-s2", "echo", "ok"],
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
                    &["-F", &main_s, "-o", "BatchMode=yes", "bai-s1", "true"],
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
    within(async {
        let w = World::start().await;
        // <root>/cfg/keys/../../victim is <root>/victim.
        let victim = w.root.path().join("victim");
        let abs_victim = w.root.path().join("abs-victim");
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
                let out = w.bai(&args).await;
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
    within(async {
        let w = World::start().await;
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
        ok(&w.bai(&["config-ssh", "--remove"]).await);
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
