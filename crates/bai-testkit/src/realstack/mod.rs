//! The real Backend.AI stack on loopback, for end-to-end tests against the real server:
//! PostgreSQL, etcd, Redis, `backend.ai-manager`, `backend.ai-agent` (dummy backend, patched
//! by `realstack/sitecustomize.py`: each session gets a local sshd of its own, stopped when the
//! session is destroyed) and `backend.ai-webserver`, all 26.9.6 from the venv that
//! `scripts/deps.sh` creates at `.venv-realstack`. `realstack/up.sh` brings it up (free ports,
//! the project's own minimal configs and fixtures); see docs/compatibility.md, "The real
//! manager (26.9.6)".
//!
//! One stack per test process: [`shared`] brings it up at the first call (about a minute) and
//! a watchdog tears it down by pid when the process ends, however it ends; stacks of killed
//! test processes are swept at the next start. [`Stack::start`] gives a stack of one's own,
//! torn down on drop. Sessions: [`Stack::create_session`] (RUNNING through the real API).
//!
//! `BAI_SKIP_REAL_MANAGER=1` skips the tests that use it, loudly ([`shared`] returns `None`
//! after saying so); otherwise a missing prerequisite is a failure that names it.

mod procs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::text;

/// The variable that skips every real-stack test (value `1`).
pub const SKIP_VAR: &str = "BAI_SKIP_REAL_MANAGER";

/// The Backend.AI version the stack runs (and `scripts/deps.sh` installs).
pub const VERSION: &str = "26.9.6";

/// How long bring-up may take before it is a failure.
const UP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long creating or destroying one session may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(120);

/// A running real stack and what a test needs to reach it.
#[derive(Debug)]
pub struct Stack {
    dir: PathBuf,
    venv: PathBuf,
    watchdog: std::process::Child,
    /// The manager's URL (API mode), `http://127.0.0.1:PORT`.
    pub manager: String,
    /// The webserver's URL (session mode).
    pub webserver: String,
    /// The test user's email (a superadmin of the stack's own fixture).
    pub email: String,
    /// The test user's password (random per stack).
    pub password: String,
    /// The test user's access key.
    pub access_key: String,
    /// The test user's secret key (random per stack).
    pub secret_key: String,
    /// The one image sessions run.
    pub image: String,
    /// The OS account sessions log in as (`work` as root, else the current user).
    pub account: String,
    /// The private key the sessions' sshd accepts (the dummy agent has no `id_container`).
    pub key: PathBuf,
    /// How long bring-up took.
    pub bring_up: Duration,
}

/// The workspace root (two levels above this crate).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This crate's `realstack/` folder: up.sh, down.sh, the config templates, the patches.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("realstack")
}

/// Whether the real-stack tests are skipped (`BAI_SKIP_REAL_MANAGER=1`).
pub fn skipped() -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v == "1")
}

/// The shared stack of this test process, brought up at the first call; `None` (after saying
/// so on stderr, naming `test`) when [`SKIP_VAR`] is set.
pub fn shared(test: &str) -> Option<&'static Stack> {
    // A failed bring-up is remembered: the other tests fail at once with the same report
    // instead of trying again for minutes each.
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    if skipped() {
        say_skipped(test);
        return None;
    }
    let stack = STACK.get_or_init(|| {
        std::panic::catch_unwind(Stack::start).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "bring-up panicked".to_owned())
        })
    });
    match stack {
        Ok(s) => Some(s),
        Err(why) => panic!("{why}"),
    }
}

/// Says on stderr that `test` is skipped, past the test harness's output capture (a skipped
/// test must not look like a passed one).
pub fn say_skipped(test: &str) {
    use std::io::Write as _;
    let line = format!(
        "SKIPPED {test}: {SKIP_VAR}=1, the real Backend.AI {VERSION} stack is not tested\n"
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// What is missing to bring the stack up, if anything.
fn missing_prerequisites(venv: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !venv.join(format!(".bai-realstack-{VERSION}")).is_file() {
        missing.push(format!(
            "the venv {} with backend.ai-manager/agent/webserver {VERSION} (Python 3.13)",
            venv.display()
        ));
    }
    let pg = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().join("bin/postgres").is_file())
        })
        .unwrap_or(false);
    if !pg {
        missing.push("PostgreSQL (Debian package postgresql)".to_owned());
    }
    for (program, package) in [
        ("etcd", "etcd-server"),
        ("redis-server", "redis-server"),
        ("curl", "curl"),
        ("ssh-keygen", "openssh-client"),
    ] {
        if !on_path(program) {
            missing.push(format!("{program} (Debian package {package})"));
        }
    }
    if !Path::new("/usr/sbin/sshd").is_file() {
        missing.push("/usr/sbin/sshd (Debian package openssh-server)".to_owned());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
        .unwrap_or(false);
    if root {
        let work = std::fs::read_to_string("/etc/passwd")
            .map(|p| p.lines().any(|l| l.starts_with("work:")))
            .unwrap_or(false);
        if !work {
            missing.push("the OS account `work` that sessions log in as".to_owned());
        }
    }
    missing
}

/// Whether `program` is an executable on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

impl Stack {
    /// Brings up a stack of its own (torn down on drop). Panics with what is missing, or with
    /// the logs of what failed.
    pub fn start() -> Stack {
        let venv = std::env::var_os("BAI_REALSTACK_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join(".venv-realstack"));
        let missing = missing_prerequisites(&venv);
        assert!(
            missing.is_empty(),
            "the real Backend.AI stack cannot start; missing: {}.\nRun `make deps` (scripts/deps.sh, \
             as root) to install them, or set {SKIP_VAR}=1 to skip these tests.",
            missing.join("; ")
        );
        let tmp = std::env::temp_dir();
        for d in procs::sweep(&tmp) {
            eprintln!(
                "realstack: removed the stack of a killed test run: {}",
                d.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(procs::DIR_PREFIX)
            .tempdir_in(&tmp)
            .expect("create the stack's directory")
            .keep();
        procs::claim(&dir);
        let watchdog = procs::watchdog(&dir, &scripts().join("down.sh"));

        let started = Instant::now();
        let log = dir.join("up.log");
        let result = run_up(&dir, &venv, &log);
        let bring_up = started.elapsed();
        if let Err(why) = result {
            let report = failure_report(&dir, &log);
            let left = procs::stop(&dir, Duration::from_secs(10));
            panic!(
                "the real Backend.AI stack did not come up ({why}) after {:.0} s; stopped \
                 (left: {left:?}).\n{report}",
                bring_up.as_secs_f64()
            );
        }
        let env = std::fs::read_to_string(dir.join("stack.env")).expect("read stack.env");
        let get = |k: &str| -> String {
            env.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("stack.env has no {k}"))
                .to_owned()
        };
        let stack = Stack {
            manager: get("MANAGER_URL"),
            webserver: get("WEBSERVER_URL"),
            email: get("EMAIL"),
            password: get("PASSWORD"),
            access_key: get("ACCESS_KEY"),
            secret_key: get("SECRET_KEY"),
            image: get("IMAGE"),
            account: get("ACCOUNT"),
            key: PathBuf::from(get("KEY")),
            bring_up,
            dir,
            venv,
            watchdog,
        };
        eprintln!(
            "realstack: Backend.AI {VERSION} up in {:.1} s (manager {}, webserver {}, logs in {})",
            bring_up.as_secs_f64(),
            stack.manager,
            stack.webserver,
            stack.dir.join("logs").display()
        );
        stack
    }

    /// The stack's directory (configs, `logs/`, `pids/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pids of the stack's processes still running.
    pub fn processes(&self) -> Vec<u32> {
        procs::members(&self.dir)
    }

    /// The official client (`backend.ai`, 26.9.6) with `args`, in API mode as the test user.
    pub fn client<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> tokio::process::Command {
        let home = self.dir.join("client-home");
        let _ = std::fs::create_dir_all(&home);
        let mut c = tokio::process::Command::new(self.venv.join("bin/backend.ai"));
        c.args(args)
            .env("HOME", home)
            .env("BACKEND_ENDPOINT", &self.manager)
            .env("BACKEND_ENDPOINT_TYPE", "api")
            .env("BACKEND_ACCESS_KEY", &self.access_key)
            .env("BACKEND_SECRET_KEY", &self.secret_key)
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Creates the interactive session `name` through the real API (the official client) and
    /// waits until it is RUNNING. Names are 4 to 64 characters (the server's rule).
    pub async fn create_session(&self, name: &str) {
        let mut c = self.client([
            "session",
            "create",
            "-t",
            "interactive",
            "--name",
            name,
            "-r",
            "cpu=1",
            "-r",
            "mem=256m",
        ]);
        c.arg(&self.image);
        self.client_ok(c, &format!("create session {name}")).await;
    }

    /// Destroys (terminates) the session `name` through the real API.
    pub async fn destroy_session(&self, name: &str) {
        let c = self.client(["session", "destroy", name]);
        self.client_ok(c, &format!("destroy session {name}")).await;
    }

    async fn client_ok(&self, c: tokio::process::Command, what: &str) {
        let out = crate::process::output_within(c, None, SESSION_TIMEOUT).await;
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// Stops every process of the stack (by pid) and removes its directory; returns the pids
    /// still running afterwards (none, normally).
    pub fn stop(mut self) -> Vec<u32> {
        self.teardown()
    }

    fn teardown(&mut self) -> Vec<u32> {
        let left = procs::stop(&self.dir, Duration::from_secs(15));
        // The watchdog has nothing left to do (its shell and its `sleep`).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.watchdog.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.watchdog.wait();
        if left.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        left
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let left = self.teardown();
        if !left.is_empty() {
            eprintln!("realstack: processes left after teardown: {left:?}");
        }
    }
}

/// Runs `up.sh` with its output in `log`, under [`UP_TIMEOUT`].
fn run_up(dir: &Path, venv: &Path, log: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    let out = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("bash")
        .arg(scripts().join("up.sh"))
        .arg(dir)
        .env("BAI_REALSTACK_VENV", venv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: on a timeout the whole group goes (its foreground children
        // too: schema migration, fixture loading, psql), not only bash.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start up.sh: {e}"))?;
    let deadline = Instant::now() + UP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("up.sh failed: {st}")),
            Ok(None) if Instant::now() > deadline => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("up.sh took longer than {} s", UP_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for up.sh: {e}")),
        }
    }
}

/// up.sh's output and the end of every server's log.
fn failure_report(dir: &Path, up_log: &Path) -> String {
    let tail = |p: &Path, n: usize| -> String {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    };
    let mut out = format!("--- up.sh ---\n{}\n", tail(up_log, 60));
    if let Ok(rd) = std::fs::read_dir(dir.join("logs")) {
        for e in rd.flatten() {
            out.push_str(&format!(
                "--- {} ---\n{}\n",
                e.file_name().to_string_lossy(),
                tail(&e.path(), 15)
            ));
        }
    }
    out
}
