//! Isolated worlds for tests that run programs: private HOME, config dir, working directory
//! and TMPDIR, and an environment scrubbed of `BACKEND_*` and `BAI_*`, so that nothing of the
//! developer's own setup leaks in (and nothing leaks out).

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Output;

use bai_sandbox::{Config, Sandbox, SessionInfo, SessionSpec};
use tokio::process::Command;

use crate::process::{assert_success, output_within, text};
use crate::time::CMD_TIMEOUT;

/// One test's private directories (removed on drop).
#[derive(Debug)]
pub struct Isolated {
    root: tempfile::TempDir,
    /// `HOME`.
    pub home: PathBuf,
    /// bai's config dir (`BAI_CONFIG_DIR`).
    pub cfg: PathBuf,
    /// The working directory.
    pub cwd: PathBuf,
    /// `TMPDIR`.
    pub tmp: PathBuf,
}

impl Isolated {
    /// Fresh `home`, `cfg`, `cwd` and `tmp` under one temporary root.
    pub fn new() -> Isolated {
        let root = tempfile::tempdir().expect("tempdir");
        let [home, cfg, cwd, tmp] = ["home", "cfg", "cwd", "tmp"].map(|d| root.path().join(d));
        for d in [&home, &cfg, &cwd, &tmp] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        Isolated {
            root,
            home,
            cfg,
            cwd,
            tmp,
        }
    }

    /// The temporary root that holds the four directories.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `program args…` in this world: its cwd, HOME, config dir, TMPDIR and the file secret
    /// store; every inherited `BACKEND_*` and `BAI_*` variable and `RUST_LOG` removed; killed
    /// on drop.
    pub fn command<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if name.starts_with("BACKEND_") || name.starts_with("BAI_") {
                c.env_remove(&k);
            }
        }
        c.args(args)
            .current_dir(&self.cwd)
            .env_remove("RUST_LOG")
            .env("HOME", &self.home)
            .env("BAI_CONFIG_DIR", &self.cfg)
            .env("BAI_SECRET_STORE", "file")
            .env("TMPDIR", &self.tmp)
            .kill_on_drop(true);
        c
    }

    /// Runs `cmd` with `stdin` (or a null stdin) under [`CMD_TIMEOUT`].
    pub async fn run(&self, cmd: Command, stdin: Option<&str>) -> Output {
        output_within(cmd, stdin, CMD_TIMEOUT).await
    }

    /// `ssh -G host -F config` in this world: the effective configuration, without connecting.
    pub async fn ssh_g(&self, host: &str, config: &Path) -> String {
        let config = config.display().to_string();
        let out = self
            .run(self.command("ssh", ["-G", host, "-F", &config]), None)
            .await;
        assert_success(&out);
        text(&out.stdout)
    }
}

impl Default for Isolated {
    fn default() -> Self {
        Isolated::new()
    }
}

/// A CLI test's world: a sandbox, an [`Isolated`] world (its fields through `Deref`), and the
/// binary under test.
#[derive(Debug)]
pub struct CliWorld {
    /// The sandbox, until a test takes it to shut it down.
    pub sb: Option<Sandbox>,
    /// The sandbox's webserver URL (session mode).
    pub webserver: String,
    /// The sandbox's manager URL (API mode).
    pub manager: String,
    bin: PathBuf,
    dirs: Isolated,
}

impl CliWorld {
    /// A default sandbox and fresh directories for `bin` (e.g. `env!("CARGO_BIN_EXE_bai")`).
    pub async fn start(bin: impl Into<PathBuf>) -> CliWorld {
        CliWorld::start_with(bin, Config::default()).await
    }

    /// [`CliWorld::start`] with a sandbox made from `config`.
    pub async fn start_with(bin: impl Into<PathBuf>, config: Config) -> CliWorld {
        let sb = crate::sandbox::start(config).await;
        CliWorld {
            webserver: sb.webserver_url(),
            manager: sb.manager_url(),
            sb: Some(sb),
            bin: bin.into(),
            dirs: Isolated::new(),
        }
    }

    /// The running sandbox.
    pub fn sb(&self) -> &Sandbox {
        self.sb.as_ref().expect("sandbox running")
    }

    /// Creates a RUNNING session `name`.
    pub async fn session(&self, name: &str) -> SessionInfo {
        self.sb()
            .create_session(SessionSpec::running(name))
            .await
            .expect("create session")
    }

    /// The binary under test with `args`, in this world.
    pub fn bai<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        self.command(&self.bin, args)
    }

    /// Runs the binary with `args` (null stdin) under [`CMD_TIMEOUT`].
    pub async fn bai_run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        self.run(self.bai(args), None).await
    }

    /// Session-mode login of the demo user with `--user account` (so that the profile knows
    /// the session account); asserts success.
    pub async fn login(&self, account: &str) {
        let user = self.sb().user().clone();
        let cmd = self.bai([
            "--user",
            account,
            "login",
            "--endpoint",
            &self.webserver,
            "--email",
            &user.email,
            "--password-stdin",
        ]);
        assert_success(&self.run(cmd, Some(&format!("{}\n", user.password))).await);
    }
}

impl Deref for CliWorld {
    type Target = Isolated;

    fn deref(&self) -> &Isolated {
        &self.dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::within;

    #[tokio::test]
    async fn commands_see_only_the_world() {
        within(30, async {
            let w = Isolated::new();
            let mut cmd = w.command("sh", ["-c", "pwd; echo $HOME $TMPDIR $BAI_CONFIG_DIR; env"]);
            cmd.env("BACKEND_ENDPOINT_NOT_SCRUBBED_WHEN_SET_HERE", "x");
            let out = w.run(cmd, None).await;
            assert_success(&out);
            let stdout = text(&out.stdout);
            let mut lines = stdout.lines();
            assert_eq!(lines.next(), Some(w.cwd.to_str().expect("utf8")));
            assert_eq!(
                lines.next().map(str::to_owned),
                Some(format!(
                    "{} {} {}",
                    w.home.display(),
                    w.tmp.display(),
                    w.cfg.display()
                ))
            );
            for line in lines {
                let name = line.split('=').next().unwrap_or_default();
                assert!(
                    !name.starts_with("BAI_")
                        || name == "BAI_CONFIG_DIR"
                        || name == "BAI_SECRET_STORE",
                    "{line}"
                );
                assert!(
                    !name.starts_with("BACKEND_") || name.ends_with("WHEN_SET_HERE"),
                    "{line}"
                );
                assert_ne!(name, "RUST_LOG");
            }
            assert!(w.root().join("home").is_dir());
        })
        .await;
    }
}
