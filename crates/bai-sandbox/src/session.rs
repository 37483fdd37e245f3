//! Compute sessions: their public description, and the real SSH server behind a RUNNING one.
//!
//! Each session owns a directory `<sandbox root>/sessions/<name>-<id8>/` holding its host key,
//! server config and log (`sshd_config`, `sshd.log`; root-readable), the `enter` wrapper, and
//! `home/` (owned by the login account), which stands in for `/home/work`:
//! `home/.ssh/authorized_keys` and `home/id_container`.
//!
//! The server is OpenSSH's `sshd` (the default) or Dropbear, which production runs
//! ([`SshServer`]; how Dropbear is given the session's home is explained in `dropbear.rs`).
//! Either way it is forked under `setpriv --pdeathsig KILL` from one long-lived thread, and
//! [`SshdProcess`]'s `Drop` kills and reaps it with everything it forked.

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

/// Which SSH server runs behind a RUNNING session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SshServer {
    /// OpenSSH's `sshd` (package `openssh-server`).
    #[default]
    OpenSsh,
    /// Dropbear, as production Backend.AI runs it (package `dropbear-bin`).
    Dropbear,
}

impl SshServer {
    /// Every server, default first.
    pub const ALL: [SshServer; 2] = [SshServer::OpenSsh, SshServer::Dropbear];

    /// The lower-case name (`openssh`, `dropbear`), as `--sshd` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SshServer::OpenSsh => "openssh",
            SshServer::Dropbear => "dropbear",
        }
    }

    /// Fails with [`Error::NotInstalled`] when this server's programs are missing.
    pub fn check_installed(self) -> Result<(), Error> {
        match self {
            SshServer::OpenSsh => {
                Path::new(SSHD)
                    .exists()
                    .then_some(())
                    .ok_or_else(|| Error::NotInstalled {
                        program: SSHD.into(),
                        hint: "install openssh-server (make deps does)".into(),
                    })
            }
            SshServer::Dropbear => crate::dropbear::Tools::find().map(drop),
        }
    }
}

impl fmt::Display for SshServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SshServer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        SshServer::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown SSH server {s:?} (expected openssh or dropbear)"
                ))
            })
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
    /// The SSH server; `None` takes the sandbox's ([`crate::Config::ssh_server`]).
    pub ssh_server: Option<SshServer>,
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
            ssh_server: None,
        }
    }

    /// Adds an extra TCP app.
    pub fn app(mut self, name: impl Into<String>, target: SocketAddr) -> Self {
        self.apps.push((name.into(), target));
        self
    }

    /// Runs this session on the given SSH server instead of the sandbox's default.
    pub fn ssh_server(mut self, server: SshServer) -> Self {
        self.ssh_server = Some(server);
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
    /// The SSH server behind the session.
    pub ssh_server: SshServer,
    /// The SSH server's port on 127.0.0.1, when RUNNING.
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
    pub ssh_server: SshServer,
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
            ssh_server: self.ssh_server,
            sshd_port: self.sshd.as_ref().map(|s| s.port),
            id_container: self.id_container.clone(),
            apps: self.apps.clone(),
        }
    }

    /// Closes the tunnels and hands back the SSH server (if any) for the caller to kill outside
    /// the sessions lock (dropping it blocks).
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
    /// The account's uid and gid.
    pub uid: u32,
    pub gid: u32,
    /// The home directory in the passwd database (Dropbear reads `authorized_keys` there).
    pub passwd_home: Option<PathBuf>,
}

pub(crate) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// One row of the passwd database.
#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl PasswdEntry {
    /// Parses `name:pw:uid:gid:gecos:home:shell`.
    fn parse(line: &str) -> Option<PasswdEntry> {
        let f: Vec<&str> = line.split(':').collect();
        Some(PasswdEntry {
            name: f.first()?.to_string(),
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: PathBuf::from(f.get(5)?),
        })
    }
}

/// The rows of /etc/passwd.
fn passwd() -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines().filter_map(PasswdEntry::parse).collect()
}

/// The account's row as the servers see it: `getent passwd` (NSS, like `getpwnam`), else
/// /etc/passwd.
fn lookup_passwd(name: &str) -> Option<PasswdEntry> {
    Command::new("getent")
        .args(["passwd", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| PasswdEntry::parse(String::from_utf8_lossy(&o.stdout).trim_end()))
        .or_else(|| passwd().into_iter().find(|e| e.name == name))
}

/// The command that makes the OS user `work` (what `make deps` runs).
pub(crate) const CREATE_WORK_USER: &str = "useradd -m -s /bin/bash work && usermod -p '*' work";

/// `work` when running as root (it must exist: sessions never log in as root), else the
/// current user.
pub(crate) fn detect_account() -> Result<Account, Error> {
    let root = running_as_root();
    if root {
        return match lookup_passwd("work") {
            Some(e) => Ok(Account {
                name: e.name,
                owner: Some((e.uid, e.gid)),
                uid: e.uid,
                gid: e.gid,
                passwd_home: Some(e.home),
            }),
            None => Err(Error::InvalidArgument(format!(
                "the sandbox runs as root but sessions never log in as root: create the OS user \
                 'work' ({CREATE_WORK_USER}), as make deps does"
            ))),
        };
    }
    let meta = std::fs::metadata("/proc/self").ok();
    let uid = meta.as_ref().map(|m| m.uid());
    let name = uid
        .and_then(|uid| passwd().into_iter().find(|e| e.uid == uid).map(|e| e.name))
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
    let entry = lookup_passwd(&name);
    Ok(Account {
        uid: uid.or(entry.as_ref().map(|e| e.uid)).unwrap_or(0),
        gid: meta
            .as_ref()
            .map(|m| m.gid())
            .or(entry.as_ref().map(|e| e.gid))
            .unwrap_or(0),
        passwd_home: entry.map(|e| e.home),
        name,
        owner: None,
    })
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
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

pub(crate) async fn run_tool(program: &str, args: &[&str]) -> Result<(), Error> {
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

/// Creates the session's directory, home, host key (for `server`), and keys; does not start
/// the server.
pub(crate) async fn prepare_files(
    dir: &Path,
    account: &Account,
    authorized_keys: Option<&str>,
    server: SshServer,
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

    match server {
        SshServer::OpenSsh => {
            let host_key = dir.join("host_key");
            let host_key_s = host_key.to_string_lossy().into_owned();
            run_tool(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", &host_key_s],
            )
            .await?;
        }
        SshServer::Dropbear => crate::dropbear::generate_host_key(dir).await?,
    }

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

/// A running SSH server (sshd, or Dropbear inside its namespaces). Dropping it kills the
/// listener and every process it forked, and reaps it (blocking: async code drops it through
/// [`reap`]).
#[derive(Debug)]
pub(crate) struct SshdProcess {
    /// `sshd` itself, or for Dropbear the `unshare` that holds its namespaces.
    child: Child,
    server: SshServer,
    pub port: u16,
    pub log: PathBuf,
}

/// Kills and reaps servers off the async workers (the kill scans `/proc` and waits).
pub(crate) async fn reap(procs: Vec<SshdProcess>) {
    if procs.is_empty() {
        return;
    }
    // If the runtime is shutting down the closure is dropped instead, which kills them too.
    let _ = tokio::task::spawn_blocking(move || drop(procs)).await;
}

/// `setpriv`, when installed: it makes the server die with the thread that forked it.
pub(crate) fn setpriv() -> Option<&'static Path> {
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
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes `<dir>/enter`, the forced command (sshd's `ForceCommand`, dropbear's `-c`) that
/// starts every command, shell, scp, rsync and sftp in the session home (with `HOME` pointing
/// there), as `/home/work` in production. Both servers pass the client's request in
/// `SSH_ORIGINAL_COMMAND`: sshd's sftp subsystem arrives as `internal-sftp …` (the `Subsystem`
/// line), dropbear's as its compiled-in sftp-server path (Debian: `/usr/lib/sftp-server`).
/// Without an `sftp_server` the SFTP lines are left out (sftp then fails).
fn write_enter_script(
    dir: &Path,
    home: &Path,
    sftp_server: Option<&Path>,
) -> Result<PathBuf, Error> {
    let path = dir.join("enter");
    let home = sh_quote(&home.to_string_lossy());
    let sftp = sftp_server
        .map(|p| {
            format!(
                "\x20 internal-sftp*|*/sftp-server) exec {} -d \"$HOME\" ;;\n",
                sh_quote(&p.to_string_lossy())
            )
        })
        .unwrap_or_default();
    let text = format!(
        "#!/bin/sh\n\
         # bai-sandbox: run the client's command in the session home.\n\
         HOME={home}\n\
         export HOME\n\
         cd \"$HOME\" || exit 1\n\
         [ -n \"$SHELL\" ] || SHELL=/bin/sh\n\
         case \"$SSH_ORIGINAL_COMMAND\" in\n\
         \x20 '') exec \"$SHELL\" -l ;;\n\
         {sftp}\
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
    /// Someone else took the port, or the server could not bind it: try another port.
    PortLost(Error),
}

/// What a start attempt needs beyond the session's paths, checked once per start.
enum Launcher {
    OpenSsh {
        enter: Option<PathBuf>,
    },
    Dropbear {
        tools: crate::dropbear::Tools,
        passwd_home: PathBuf,
        enter: PathBuf,
    },
}

/// The path of OpenSSH's server.
const SSHD: &str = "/usr/sbin/sshd";

impl SshdProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `server` for the session (under `setpriv --pdeathsig KILL` when installed,
    /// forked by [`spawn_from_spawner`]), then waits until it accepts connections.
    pub async fn start(
        server: SshServer,
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &Account,
    ) -> Result<SshdProcess, Error> {
        let launcher = match server {
            SshServer::OpenSsh => {
                if running_as_root() {
                    let _ = std::fs::create_dir_all("/run/sshd");
                }
                let enter = match sftp_server() {
                    Some(sftp) => Some(write_enter_script(dir, home, Some(sftp))?),
                    None => None,
                };
                Launcher::OpenSsh { enter }
            }
            SshServer::Dropbear => {
                let tools = crate::dropbear::Tools::find()?;
                let passwd_home = crate::dropbear::passwd_home(account, home)?;
                // Dropbear starts in the mounted passwd home; the wrapper gives commands the
                // session home's own path (cwd and HOME, as with sshd) and maps its sftp path.
                let enter = write_enter_script(dir, home, sftp_server())?;
                Launcher::Dropbear {
                    tools,
                    passwd_home,
                    enter,
                }
            }
        };
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(&launcher, dir, home, authorized_keys, account).await? {
                Attempt::Up(p) => return Ok(p),
                Attempt::PortLost(e) => {
                    tracing::debug!(error = %e, %server, "the SSH server lost its port; retrying");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Sshd {
            message: format!("{server} did not start"),
            log: String::new(),
        }))
    }

    /// Writes sshd's config and builds its command line.
    fn sshd_command(
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &str,
        enter: Option<&Path>,
        port: u16,
    ) -> Result<Command, Error> {
        let config = dir.join("sshd_config");
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
        let mut cmd = match setpriv() {
            Some(sp) => {
                let mut c = Command::new(sp);
                c.args(["--pdeathsig", "KILL", "--", SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        cmd.arg("-D").arg("-e").arg("-f").arg(&config);
        Ok(cmd)
    }

    async fn try_start(
        launcher: &Launcher,
        dir: &Path,
        home: &Path,
        authorized_keys: &Path,
        account: &Account,
    ) -> Result<Attempt, Error> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(io_err("binding a free port"))?;
            l.local_addr()
                .map_err(io_err("reading a free port"))?
                .port()
        };
        let (server, mut cmd, log) = match launcher {
            Launcher::OpenSsh { enter } => (
                SshServer::OpenSsh,
                Self::sshd_command(
                    dir,
                    home,
                    authorized_keys,
                    &account.name,
                    enter.as_deref(),
                    port,
                )?,
                dir.join("sshd.log"),
            ),
            Launcher::Dropbear {
                tools,
                passwd_home,
                enter,
            } => (
                SshServer::Dropbear,
                crate::dropbear::command(tools, dir, home, passwd_home, account, enter, port),
                dir.join("dropbear.log"),
            ),
        };
        let log_file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&log)
                .map_err(io_err(format!("creating {}", log.display())))?
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child =
            spawn_from_spawner(cmd).map_err(io_err(format!("spawning the {server} server")))?;
        let mut proc = SshdProcess {
            child,
            server,
            port,
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                let log = proc.read_log();
                let lost = log.contains("Address already in use") || log.contains("Cannot bind");
                let mut message = format!("{server} exited early ({status})");
                if let Some(hint) = (server == SshServer::Dropbear)
                    .then(|| crate::dropbear::explain_failure(&log))
                    .flatten()
                {
                    message = format!("{message}: {hint}");
                }
                let e = Error::Sshd { message, log };
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
                        "{server} did not listen on port {port} within {SSHD_READY_TIMEOUT:?}"
                    ),
                    log: proc.read_log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the port answers with an SSH banner *and* the listening socket is our server's
    /// (the port was free when picked, but another process may have bound it since). Dropbear
    /// listens in a grandchild (under `unshare`), so the whole tree counts.
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
            Some(inode) => {
                let root = self.pid();
                holds_socket(root, inode)
                    || descendants(root)
                        .into_iter()
                        .any(|p| holds_socket(p, inode))
            }
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
        // Both servers' per-connection children call setsid(), so a process-group kill misses
        // them: collect the tree before anything dies (orphans get reparented) and kill it all.
        let tree = descendants(self.child.id());
        let kill_tree = |tree: &[u32]| {
            if !tree.is_empty() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .args(tree.iter().map(u32::to_string))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        };
        match self.server {
            // The listener first, so that it forks nothing after the snapshot.
            SshServer::OpenSsh => {
                let _ = self.child.kill();
                kill_tree(&tree);
            }
            // Dropbear is the init of its PID namespace: killing it makes the kernel kill
            // everything inside (nothing can escape the snapshot), and `unshare`, still alive,
            // reaps it before we kill and reap `unshare`.
            SshServer::Dropbear => {
                kill_tree(&tree);
                let deadline = Instant::now() + Duration::from_secs(2);
                while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
