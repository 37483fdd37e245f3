//! The real OpenSSH clients (`ssh`, `scp`, `sftp`, `rsync -e ssh`), non-interactive, with the
//! options every test uses, and `ssh -G` for reading a configuration back.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bai_sandbox::SessionInfo;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// The options of every non-interactive client here: no prompts, no host-key questions or
/// records, errors only.
pub const NONINTERACTIVE: [&str; 8] = [
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
];

/// Where an OpenSSH client connects (`account@127.0.0.1:port`), with which key and options.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The server's port on 127.0.0.1 (an sshd, dropbear, or a tunnel to one).
    pub port: u16,
    /// The private key (`-i`).
    pub key: PathBuf,
    /// The login account.
    pub account: String,
    /// Options after `-i key`: [`NONINTERACTIVE`] unless changed.
    pub options: Vec<String>,
}

impl SshTarget {
    /// `account@127.0.0.1:port` with `key` and the [`NONINTERACTIVE`] options.
    pub fn new(port: u16, key: impl Into<PathBuf>, account: impl Into<String>) -> SshTarget {
        SshTarget {
            port,
            key: key.into(),
            account: account.into(),
            options: NONINTERACTIVE.map(str::to_owned).to_vec(),
        }
    }

    /// A session's own SSH server, with its `id_container`.
    pub fn direct(s: &SessionInfo) -> SshTarget {
        SshTarget::via(s, s.sshd_port.expect("the session is running"))
    }

    /// A session reached through `port` (a tunnel or proxy), with its `id_container`.
    pub fn via(s: &SessionInfo, port: u16) -> SshTarget {
        let key = s
            .id_container
            .as_ref()
            .expect("the session has an id_container");
        SshTarget::new(port, key, s.account.clone())
    }

    /// Adds `-o option`.
    pub fn option(mut self, option: &str) -> SshTarget {
        self.options.extend(["-o".to_owned(), option.to_owned()]);
        self
    }

    /// Also ignores every user config (`-F /dev/null`), offers only `key`, and gives up
    /// connecting after 30 s.
    pub fn hermetic(mut self) -> SshTarget {
        self.options
            .splice(0..0, ["-F".to_owned(), "/dev/null".to_owned()]);
        self.option("IdentitiesOnly=yes")
            .option("ConnectTimeout=30")
    }

    /// `account@127.0.0.1`.
    pub fn login(&self) -> String {
        format!("{}@127.0.0.1", self.account)
    }

    /// `account@127.0.0.1:path`, an scp/rsync operand.
    pub fn remote(&self, path: &str) -> String {
        format!("{}:{path}", self.login())
    }

    /// `-i key` and the options, without the port (`-p` for ssh, `-P` for scp and sftp).
    pub fn options(&self) -> Vec<String> {
        let mut out = vec!["-i".to_owned(), self.key.display().to_string()];
        out.extend(self.options.iter().cloned());
        out
    }

    /// The arguments of `ssh … -p port account@127.0.0.1 remote…`.
    pub fn ssh_args(&self, remote: &[&str]) -> Vec<String> {
        let mut out = self.options();
        out.extend(["-p".to_owned(), self.port.to_string(), self.login()]);
        out.extend(remote.iter().map(|s| s.to_string()));
        out
    }

    /// `ssh … account@127.0.0.1 remote…` (stdin null, killed on drop).
    pub fn ssh(&self, remote: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.ssh_args(remote))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// `scp … from to` (`legacy`: `-O`, the old SCP protocol instead of SFTP).
    pub fn scp(&self, legacy: bool, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Command {
        let mut c = Command::new("scp");
        c.args(self.options()).args(["-P", &self.port.to_string()]);
        if legacy {
            c.arg("-O");
        }
        c.arg(from.as_ref())
            .arg(to.as_ref())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// `sftp … -b batch account@127.0.0.1` (`batch` a file, or `-` for stdin).
    pub fn sftp(&self, batch: impl AsRef<Path>) -> Command {
        let mut c = Command::new("sftp");
        c.args(self.options())
            .args(["-P", &self.port.to_string(), "-b"])
            .arg(batch.as_ref())
            .arg(self.login())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs an sftp batch given on stdin; asserts success and returns its stdout.
    pub async fn sftp_batch(&self, batch: &str) -> String {
        let mut c = self.sftp("-");
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn sftp");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(batch.as_bytes())
            .await
            .expect("write batch");
        drop(stdin);
        let out = child.wait_with_output().await.expect("sftp output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sftp {batch:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The remote shell for `rsync -e`: `ssh -i key -p port options…`.
    pub fn rsync_shell(&self) -> String {
        format!(
            "ssh -i {} -p {} {}",
            self.key.display(),
            self.port,
            self.options.join(" ")
        )
    }

    /// `rsync -e <ssh> from to`.
    pub fn rsync(&self, from: &str, to: &str) -> Command {
        let mut c = Command::new("rsync");
        c.arg("-e")
            .arg(self.rsync_shell())
            .args([from, to])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

/// `ssh -G host -F config` with `HOME=home`: the effective configuration, without connecting.
pub fn ssh_g(host: &str, config: &Path, home: &Path) -> String {
    let out = std::process::Command::new("ssh")
        .args(["-G", host, "-F"])
        .arg(config)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("ssh -G");
    assert!(
        out.status.success(),
        "ssh -G {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_key_port_and_options() {
        let t = SshTarget::new(2222, "/k/id", "work");
        assert_eq!(t.login(), "work@127.0.0.1");
        assert_eq!(t.remote("f"), "work@127.0.0.1:f");
        let args = t.ssh_args(&["echo", "ok"]);
        assert_eq!(&args[..2], ["-i", "/k/id"]);
        assert_eq!(&args[2..10], NONINTERACTIVE);
        assert_eq!(&args[10..], ["-p", "2222", "work@127.0.0.1", "echo", "ok"]);
        assert_eq!(
            t.rsync_shell(),
            format!("ssh -i /k/id -p 2222 {}", NONINTERACTIVE.join(" "))
        );
        let h = t.hermetic();
        assert_eq!(&h.options()[2..4], ["-F", "/dev/null"]);
        assert!(h.options.contains(&"IdentitiesOnly=yes".to_owned()));
        assert!(h.options.contains(&"ConnectTimeout=30".to_owned()));
    }

    #[test]
    fn ssh_g_reads_a_config_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("config");
        std::fs::write(&cfg, "Host h\n  Port 2200\n").expect("write");
        let g = ssh_g("h", &cfg, dir.path());
        assert!(g.lines().any(|l| l == "port 2200"), "{g}");
    }
}
