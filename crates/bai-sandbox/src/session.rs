//! Compute sessions: their public description, and the real `sshd` behind a RUNNING one.
//!
//! Each session owns a directory `<sandbox root>/sessions/<name>-<id8>/` holding its host key,
//! `sshd_config` and `sshd.log` (root-readable), and `home/` (owned by the login account), which
//! stands in for `/home/work`: `home/.ssh/authorized_keys` and `home/id_container`.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::faults::Faults;
use crate::Error;

/// How long a fresh sshd may take to accept connections.
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A session's status, as Backend.AI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Waiting in the scheduler queue.
    Pending,
    /// Scheduled onto an agent.
    Scheduled,
    /// Pulling images and preparing the kernel.
    Preparing,
    /// The container is being created.
    Creating,
    /// Up: its sshd (and apps) answer.
    Running,
    /// Being torn down.
    Terminating,
    /// Gone: not found by name any more.
    Terminated,
    /// Failed.
    Error,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Scheduled,
        Status::Preparing,
        Status::Creating,
        Status::Running,
        Status::Terminating,
        Status::Terminated,
        Status::Error,
    ];

    /// The upper-case wire name (`RUNNING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Scheduled => "SCHEDULED",
            Status::Preparing => "PREPARING",
            Status::Creating => "CREATING",
            Status::Running => "RUNNING",
            Status::Terminating => "TERMINATING",
            Status::Terminated => "TERMINATED",
            Status::Error => "ERROR",
        }
    }

    /// Terminal statuses are invisible to name lookups (protocol.md §4.1).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Terminated)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::InvalidArgument(format!("unknown session status {s:?}")))
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Session name (unique among non-terminal sessions).
    pub name: String,
    /// Initial status; RUNNING starts an sshd.
    pub status: Status,
    /// Extra TCP apps (service ports) that the tcpproxy connects to: `(name, target)`.
    pub apps: Vec<(String, SocketAddr)>,
    /// The user's own `authorized_keys` text; when set, no keypair and no `id_container`.
    pub authorized_keys: Option<String>,
}

impl SessionSpec {
    /// A RUNNING session with no extra apps and a generated keypair.
    pub fn running(name: impl Into<String>) -> Self {
        Self::with_status(name, Status::Running)
    }

    /// A session in the given status, with no extra apps and a generated keypair.
    pub fn with_status(name: impl Into<String>, status: Status) -> Self {
        SessionSpec {
            name: name.into(),
            status,
            apps: Vec::new(),
            authorized_keys: None,
        }
    }

    /// Adds an extra TCP app.
    pub fn app(mut self, name: impl Into<String>, target: SocketAddr) -> Self {
        self.apps.push((name.into(), target));
        self
    }
}

/// A snapshot of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Name.
    pub name: String,
    /// Session UUID.
    pub id: Uuid,
    /// Current status.
    pub status: Status,
    /// The OS account that logs in through its sshd (`work` when available).
    pub account: String,
    /// The directory standing in for `/home/work`.
    pub home: PathBuf,
    /// The sshd's port on 127.0.0.1, when RUNNING.
    pub sshd_port: Option<u16>,
    /// The private key (`home/id_container`), unless the session was made with the user's own
    /// `authorized_keys`.
    pub id_container: Option<PathBuf>,
    /// Extra TCP apps.
    pub apps: Vec<(String, SocketAddr)>,
}

/// The sandbox's record of a session.
#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub name: String,
    pub id: Uuid,
    pub status: Status,
    pub account: String,
    pub dir: PathBuf,
    pub home: PathBuf,
    pub authorized_keys_file: PathBuf,
    pub id_container: Option<PathBuf>,
    pub apps: Vec<(String, SocketAddr)>,
    pub sshd: Option<SshdProcess>,
    pub faults: Faults,
    /// Cancelled when the sshd stops: closes this session's tunnels.
    pub tunnels: CancellationToken,
    pub created_at: DateTime<Utc>,
    pub status_changed: DateTime<Utc>,
    pub terminated_at: Option<DateTime<Utc>>,
}

impl SessionEntry {
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            name: self.name.clone(),
            id: self.id,
            status: self.status,
            account: self.account.clone(),
            home: self.home.clone(),
            sshd_port: self.sshd.as_ref().map(|s| s.port),
            id_container: self.id_container.clone(),
            apps: self.apps.clone(),
        }
    }

    /// Stops the sshd (if any) and closes the tunnels.
    pub fn stop(&mut self) {
        self.tunnels.cancel();
        self.sshd = None;
    }
}

/// The login account and, when we must hand it files, its uid/gid.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub name: String,
    /// Set when running as root for another account: chown the home to this.
    pub owner: Option<(u32, u32)>,
}

pub(crate) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `(name, uid, gid)` rows of /etc/passwd.
fn passwd() -> Vec<(String, u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `work` when running as root and that user exists, else the current user.
pub(crate) fn detect_account() -> Account {
    let root = running_as_root();
    let users = passwd();
    if root {
        if let Some((_, uid, gid)) = users.iter().find(|(n, _, _)| n == "work") {
            return Account {
                name: "work".into(),
                owner: Some((*uid, *gid)),
            };
        }
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = uid
        .and_then(|uid| {
            users
                .iter()
                .find(|(_, u, _)| *u == uid)
                .map(|(n, _, _)| n.clone())
        })
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| {
            Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "root".into());
    Account { name, owner: None }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut f =
        std::fs::File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
    f.write_all(contents)
        .map_err(io_err(format!("writing {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), Error> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(io_err(format!("chown {}", path.display())))?;
    }
    Ok(())
}

async fn run_tool(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io_err(format!("running {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            program: program.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Creates the session's directory, home, host key, and keys; does not start sshd.
pub(crate) async fn prepare_files(
    dir: &Path,
    account: &Account,
    authorized_keys: Option<&str>,
) -> Result<(PathBuf, PathBuf, Option<PathBuf>), Error> {
    let home = dir.join("home");
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).map_err(io_err(format!("creating {}", ssh_dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", dir.display())))?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", home.display())))?;
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod {}", ssh_dir.display())))?;

    let host_key = dir.join("host_key");
    let host_key_s = host_key.to_string_lossy().into_owned();
    run_tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", &host_key_s],
    )
    .await?;

    let ak_file = ssh_dir.join("authorized_keys");
    let id_container = match authorized_keys {
        Some(text) => {
            write_file(&ak_file, text.as_bytes(), 0o600)?;
            None
        }
        None => {
            let user_key = dir.join("user_key");
            let user_key_s = user_key.to_string_lossy().into_owned();
            run_tool(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "rsa",
                    "-b",
                    "2048",
                    "-m",
                    "PEM",
                    "-N",
                    "",
                    "-C",
                    "work@bai-sandbox",
                    "-f",
                    &user_key_s,
                ],
            )
            .await?;
            let private = std::fs::read(&user_key).map_err(io_err("reading generated key"))?;
            let public =
                std::fs::read(dir.join("user_key.pub")).map_err(io_err("reading generated key"))?;
            write_file(&ak_file, &public, 0o600)?;
            let idc = home.join("id_container");
            write_file(&idc, &private, 0o600)?;
            chown(&idc, account.owner)?;
            Some(idc)
        }
    };
    chown(&ak_file, account.owner)?;
    chown(&ssh_dir, account.owner)?;
    chown(&home, account.owner)?;
    Ok((home, ak_file, id_container))
}

/// A running sshd. Dropping it kills the listener and every process it forked, and reaps it.
#[derive(Debug)]
pub(crate) struct SshdProcess {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl SshdProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes the config and starts `sshd -D -e`, then waits until it accepts connections.
    pub async fn start(
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &str,
    ) -> Result<SshdProcess, Error> {
        if running_as_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(io_err("binding a free port"))?;
            l.local_addr()
                .map_err(io_err("reading a free port"))?
                .port()
        };
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        let text = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             PidFile none\n\
             AuthorizedKeysFile {ak}\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             AllowUsers {account}\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             MaxStartups 256:30:512\n\
             MaxSessions 64\n\
             LoginGraceTime 30\n\
             Subsystem sftp internal-sftp -d {home}\n",
            hk = dir.join("host_key").display(),
            ak = authorized_keys.display(),
            home = home.display(),
        );
        write_file(&config, text.as_bytes(), 0o644)?;
        let log_file = std::fs::File::create(&log).map_err(io_err("creating sshd.log"))?;
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(io_err("spawning /usr/sbin/sshd"))?;
        let mut proc = SshdProcess { child, port, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(Error::Sshd {
                    message: format!("sshd exited early ({status})"),
                    log: proc.read_log(),
                });
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(proc);
            }
            if started.elapsed() > SSHD_READY_TIMEOUT {
                return Err(Error::Sshd {
                    message: format!(
                        "sshd did not listen on port {port} within {SSHD_READY_TIMEOUT:?}"
                    ),
                    log: proc.read_log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn read_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

/// Every descendant of `root` (children first found by scanning `/proc/*/stat`).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: read after the last ')'.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

impl Drop for SshdProcess {
    fn drop(&mut self) {
        // sshd's per-connection children call setsid(), so a process-group kill misses them:
        // collect the tree before the listener dies (orphans get reparented) and kill it all.
        let tree = descendants(self.child.id());
        let _ = self.child.kill();
        if !tree.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(tree.iter().map(u32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }
}
