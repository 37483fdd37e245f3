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

    /// Closes the tunnels and hands back the sshd (if any) for the caller to kill outside the
    /// sessions lock (dropping it blocks).
    #[must_use]
    pub fn stop(&mut self) -> Option<SshdProcess> {
        self.tunnels.cancel();
        self.sshd.take()
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

/// The command that makes the OS user `work` (what `make deps` runs).
pub(crate) const CREATE_WORK_USER: &str = "useradd -m -s /bin/bash work && usermod -p '*' work";

/// `work` when running as root (it must exist: sessions never log in as root), else the
/// current user.
pub(crate) fn detect_account() -> Result<Account, Error> {
    let root = running_as_root();
    let users = passwd();
    if root {
        return match users.iter().find(|(n, _, _)| n == "work") {
            Some((_, uid, gid)) => Ok(Account {
                name: "work".into(),
                owner: Some((*uid, *gid)),
            }),
            None => Err(Error::InvalidArgument(format!(
                "the sandbox runs as root but sessions never log in as root: create the OS user \
                 'work' ({CREATE_WORK_USER}), as make deps does"
            ))),
        };
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
        .filter(|n| !n.is_empty() && n != "root")
        .ok_or_else(|| Error::InvalidArgument("cannot tell which OS user to log in as".into()))?;
    Ok(Account { name, owner: None })
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Creates (or truncates) `path` with `mode` from the start (never briefly world-readable),
/// writes `contents`, then sets `mode` exactly (the umask may have narrowed it).
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode & 0o700)
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
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

/// A running sshd. Dropping it kills the listener and every process it forked, and reaps it
/// (blocking: async code drops it through [`reap`]).
#[derive(Debug)]
pub(crate) struct SshdProcess {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// Kills and reaps sshds off the async workers (the kill scans `/proc` and waits).
pub(crate) async fn reap(procs: Vec<SshdProcess>) {
    if procs.is_empty() {
        return;
    }
    // If the runtime is shutting down the closure is dropped instead, which kills them too.
    let _ = tokio::task::spawn_blocking(move || drop(procs)).await;
}

/// `setpriv`, when installed: it makes sshd die with the thread that forked it.
fn setpriv() -> Option<&'static Path> {
    ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

/// Spawns `cmd` from one thread that lives as long as the process. `PR_SET_PDEATHSIG` (set
/// by `setpriv`) fires when the *thread* that forked the child exits, so sshd must not be forked
/// from a thread that may end before the sandbox (a blocking-pool thread idles out after 10 s; a
/// caller may `block_on` from a short-lived thread). Falls back to the calling thread.
fn spawn_from_spawner(mut cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, std::sync::mpsc::SyncSender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("bai-sandbox-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(tx) = spawner else {
        return cmd.spawn();
    };
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    if let Err(std::sync::mpsc::SendError((mut cmd, _))) = tx.send((cmd, reply)) {
        return cmd.spawn();
    }
    answer
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the sshd spawner thread is gone")))
}

/// OpenSSH's stand-alone SFTP server (the per-session wrapper runs it for the sftp subsystem).
fn sftp_server() -> Option<&'static Path> {
    [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
        "/usr/lib/ssh/sftp-server",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.exists())
}

/// Quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes `<dir>/enter`, the `ForceCommand` that starts every command, shell, scp, rsync and
/// sftp in the session home (with `HOME` pointing there), as `/home/work` in production.
fn write_enter_script(dir: &Path, home: &Path, sftp_server: &Path) -> Result<PathBuf, Error> {
    let path = dir.join("enter");
    let home = sh_quote(&home.to_string_lossy());
    let sftp = sh_quote(&sftp_server.to_string_lossy());
    let text = format!(
        "#!/bin/sh\n\
         # bai-sandbox: run the client's command in the session home.\n\
         HOME={home}\n\
         export HOME\n\
         cd \"$HOME\" || exit 1\n\
         [ -n \"$SHELL\" ] || SHELL=/bin/sh\n\
         case \"$SSH_ORIGINAL_COMMAND\" in\n\
         \x20 '') exec \"$SHELL\" -l ;;\n\
         \x20 internal-sftp*) exec {sftp} -d \"$HOME\" ;;\n\
         \x20 *) exec \"$SHELL\" -c \"$SSH_ORIGINAL_COMMAND\" ;;\n\
         esac\n"
    );
    write_file(&path, text.as_bytes(), 0o755)?;
    Ok(path)
}

/// The inode of the socket listening on 127.0.0.1:`port` (from `/proc/net/tcp`).
fn listener_inode(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9)?.parse().ok())
            .flatten()
    })
}

/// Whether process `pid` holds the socket with this inode.
fn holds_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == want.as_str()))
        })
        .unwrap_or(false)
}

/// How a start attempt ended.
enum Attempt {
    Up(SshdProcess),
    /// Someone else took the port, or sshd could not bind it: try another port.
    PortLost(Error),
}

impl SshdProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes the config and starts `sshd -D -e` (under `setpriv --pdeathsig KILL` when
    /// installed, forked by [`spawn_from_spawner`]), then waits until it accepts connections.
    pub async fn start(
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &str,
    ) -> Result<SshdProcess, Error> {
        if running_as_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let enter = match sftp_server() {
            Some(sftp) => Some(write_enter_script(dir, home, sftp)?),
            None => None,
        };
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(dir, home, authorized_keys, account, enter.as_deref()).await? {
                Attempt::Up(p) => return Ok(p),
                Attempt::PortLost(e) => {
                    tracing::debug!(error = %e, "sshd lost its port; retrying");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Sshd {
            message: "sshd did not start".into(),
            log: String::new(),
        }))
    }

    async fn try_start(
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &str,
        enter: Option<&Path>,
    ) -> Result<Attempt, Error> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(io_err("binding a free port"))?;
            l.local_addr()
                .map_err(io_err("reading a free port"))?
                .port()
        };
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        let force = enter
            .map(|e| format!("ForceCommand {}\n", e.display()))
            .unwrap_or_default();
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
             PermitRootLogin no\n\
             AllowUsers {account}\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             MaxStartups 256:30:512\n\
             MaxSessions 64\n\
             LoginGraceTime 30\n\
             Subsystem sftp internal-sftp -d {home}\n\
             {force}",
            hk = dir.join("host_key").display(),
            ak = authorized_keys.display(),
            home = home.display(),
        );
        write_file(&config, text.as_bytes(), 0o644)?;
        let log_file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&log)
                .map_err(io_err("creating sshd.log"))?
        };
        let mut cmd = match setpriv() {
            Some(sp) => {
                let mut c = Command::new(sp);
                c.args(["--pdeathsig", "KILL", "--", "/usr/sbin/sshd"]);
                c
            }
            None => Command::new("/usr/sbin/sshd"),
        };
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = spawn_from_spawner(cmd).map_err(io_err("spawning /usr/sbin/sshd"))?;
        let mut proc = SshdProcess { child, port, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                let log = proc.read_log();
                let e = Error::Sshd {
                    message: format!("sshd exited early ({status})"),
                    log: log.clone(),
                };
                let lost = log.contains("Address already in use") || log.contains("Cannot bind");
                return if lost {
                    Ok(Attempt::PortLost(e))
                } else {
                    Err(e)
                };
            }
            if proc.answers_on_port().await {
                return Ok(Attempt::Up(proc));
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

    /// Whether the port answers with an SSH banner *and* the listening socket is our sshd's
    /// (the port was free when picked, but another process may have bound it since).
    async fn answers_on_port(&mut self) -> bool {
        use tokio::io::AsyncReadExt as _;
        let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut banner = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(2), tcp.read_exact(&mut banner)).await;
        drop(tcp);
        if !matches!(read, Ok(Ok(_))) || &banner != b"SSH-2.0-" {
            return false;
        }
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        match listener_inode(self.port) {
            Some(inode) => holds_socket(self.pid(), inode),
            // No /proc/net/tcp: the banner and a live child must do.
            None => true,
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
