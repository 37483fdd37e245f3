//! Starting a session's SSH server: sshd's config, the Dropbear launcher's inputs, forking
//! from one long-lived thread under `setpriv --pdeathsig KILL`, and waiting until the port
//! answers with an SSH banner from our own process tree (retrying on another port when it was
//! lost to someone else).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cleanup::descendants;
use super::home::{io_err, write_enter_script, write_file};
use super::{running_as_root, Account, SshServer};
use crate::Error;

/// How long a fresh sshd may take to accept connections.
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running SSH server (sshd, or Dropbear inside its namespaces). Dropping it kills the
/// listener and every process it forked, and reaps it (blocking: async code drops it through
/// [`reap`](super::reap)).
#[derive(Debug)]
pub(crate) struct SshdProcess {
    /// `sshd` itself, or for Dropbear the `unshare` that holds its namespaces.
    pub(super) child: Child,
    pub(super) server: SshServer,
    pub port: u16,
    pub log: PathBuf,
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
pub(super) const SSHD: &str = "/usr/sbin/sshd";

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
