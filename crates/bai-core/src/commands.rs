//! Command lines for OpenSSH clients (ssh, scp, sftp, rsync) through a local tunnel, and the
//! VS Code `~/.ssh/config` snippet. Session host keys are regenerated per session, so host-key
//! checking is off, as in the Backend.AI guide.

use std::path::PathBuf;

/// Where an SSH client connects: a tunnel's local port, the session account and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    /// The host, normally `127.0.0.1`.
    pub host: String,
    /// The tunnel's local port.
    pub port: u16,
    /// The account inside the session (`work`).
    pub account: String,
    /// The private key (`None`: the user's own keys/agent).
    pub key: Option<PathBuf>,
}

impl SshEndpoint {
    /// `127.0.0.1:port` as `account`, with `key`.
    pub fn loopback(port: u16, account: &str, key: Option<PathBuf>) -> Self {
        SshEndpoint {
            host: "127.0.0.1".into(),
            port,
            account: account.to_owned(),
            key,
        }
    }

    /// `account@host`.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.account, self.host)
    }

    /// The `-o` options (and `-i KEY`) every client gets.
    pub fn common_options(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "NoHostAuthenticationForLocalhost=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(k) = &self.key {
            v.push("-i".into());
            v.push(k.display().to_string());
            v.push("-o".into());
            v.push("IdentitiesOnly=yes".into());
        }
        v
    }

    /// `ssh` arguments: options, `-p PORT`, `account@host`, then `extra` (a remote command or
    /// more options).
    pub fn ssh_args(&self, extra: &[String]) -> Vec<String> {
        let mut v = self.common_options();
        v.push("-p".into());
        v.push(self.port.to_string());
        v.push(self.destination());
        v.extend(extra.iter().cloned());
        v
    }

    /// The `host:path` form of a remote path for scp/rsync.
    pub fn remote(&self, path: &str) -> String {
        format!("{}:{}", self.destination(), path)
    }

    /// `scp` arguments: options, `-P PORT`, `extra` flags (e.g. `-r`), then the operands
    /// (already mapped with [`SshEndpoint::remote`] where remote).
    pub fn scp_args(&self, extra: &[String], operands: &[String]) -> Vec<String> {
        let mut v = self.common_options();
        v.push("-P".into());
        v.push(self.port.to_string());
        v.extend(extra.iter().cloned());
        v.extend(operands.iter().cloned());
        v
    }

    /// `sftp` arguments: options, `-P PORT`, `account@host`.
    pub fn sftp_args(&self) -> Vec<String> {
        let mut v = self.common_options();
        v.push("-P".into());
        v.push(self.port.to_string());
        v.push(self.destination());
        v
    }

    /// `rsync` arguments: `-e "ssh OPTIONS -p PORT"` then the operands.
    pub fn rsync_args(&self, operands: &[String]) -> Vec<String> {
        let mut e = vec!["ssh".to_owned()];
        e.extend(self.common_options());
        e.push("-p".into());
        e.push(self.port.to_string());
        let mut v = vec!["-e".to_owned(), join_shell(&e)];
        v.extend(operands.iter().cloned());
        v
    }

    /// A copyable `ssh …` command line.
    pub fn ssh_command_line(&self) -> String {
        let mut v = vec!["ssh".to_owned()];
        v.extend(self.ssh_args(&[]));
        join_shell(&v)
    }

    /// A copyable `sftp …` command line.
    pub fn sftp_command_line(&self) -> String {
        let mut v = vec!["sftp".to_owned()];
        v.extend(self.sftp_args());
        join_shell(&v)
    }

    /// A copyable `scp` upload example (`LOCAL_FILE` to the session home).
    pub fn scp_command_line(&self) -> String {
        let mut v = vec!["scp".to_owned()];
        v.extend(self.scp_args(&[], &["LOCAL_FILE".into(), self.remote("~/")]));
        join_shell(&v)
    }

    /// A copyable `rsync` example.
    pub fn rsync_command_line(&self) -> String {
        let mut v = vec!["rsync".to_owned(), "-av".to_owned()];
        v.extend(self.rsync_args(&["LOCAL_DIR/".into(), self.remote("~/LOCAL_DIR/")]));
        join_shell(&v)
    }

    /// The `~/.ssh/config` block VS Code Remote-SSH needs (the guide's "vscode" host).
    pub fn vscode_snippet(&self, alias: &str) -> String {
        let mut s = format!(
            "Host {alias}\n  HostName {}\n  User {}\n  Port {}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n",
            self.host, self.account, self.port
        );
        if let Some(k) = &self.key {
            s.push_str(&format!(
                "  IdentityFile {}\n",
                config_quote(&k.display().to_string())
            ));
        }
        s
    }
}

/// Quotes one word for a POSIX shell (only when needed).
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '_' | '.' | '/' | ':' | '@' | '=' | ',' | '+' | '%' | '~'
                )
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Joins words into one shell command line.
pub fn join_shell(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a value for `ssh_config` (double quotes when it has spaces).
pub fn config_quote(s: &str) -> String {
    if s.contains(char::is_whitespace) || s.contains('"') {
        format!("\"{}\"", s.replace('"', "\\\""))
    } else {
        s.to_owned()
    }
}

/// One scp/rsync operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A local path.
    Local(String),
    /// `SESSION:path`.
    Remote {
        /// The session.
        session: String,
        /// The path inside it.
        path: String,
    },
}

impl Operand {
    /// Parses `SESSION:path` (a colon before any slash, as scp does); anything else is local.
    /// An empty path means the session home.
    pub fn parse(s: &str) -> Operand {
        if let Some((host, path)) = s.split_once(':') {
            if !host.is_empty() && !host.contains('/') && !host.starts_with('.') {
                return Operand::Remote {
                    session: host.to_owned(),
                    path: if path.is_empty() {
                        ".".into()
                    } else {
                        path.to_owned()
                    },
                };
            }
        }
        Operand::Local(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_and_scp_arguments() {
        let e = SshEndpoint::loopback(9922, "work", Some("/k/id".into()));
        let a = e.ssh_args(&["echo".into(), "ok".into()]);
        assert_eq!(
            &a[a.len() - 5..],
            ["-p", "9922", "work@127.0.0.1", "echo", "ok"]
        );
        assert!(a.windows(2).any(|w| w == ["-i", "/k/id"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["-o", "UserKnownHostsFile=/dev/null"]));
        let s = e.scp_args(&["-r".into()], &["a".into(), e.remote("/x")]);
        assert!(s.windows(2).any(|w| w == ["-P", "9922"]));
        assert_eq!(&s[s.len() - 3..], ["-r", "a", "work@127.0.0.1:/x"]);
        assert!(e
            .ssh_command_line()
            .starts_with("ssh -o StrictHostKeyChecking=no"));
        assert!(e.rsync_command_line().contains("-e 'ssh -o"));
    }

    #[test]
    fn vscode_snippet_matches_the_guide() {
        let e = SshEndpoint::loopback(52468, "work", Some("/home/u/.ssh/id container".into()));
        let s = e.vscode_snippet("vscode");
        assert!(s.starts_with("Host vscode\n  HostName 127.0.0.1\n  User work\n  Port 52468\n"));
        assert!(s.contains("IdentityFile \"/home/u/.ssh/id container\""));
    }

    #[test]
    fn operands() {
        assert_eq!(
            Operand::parse("s1:/data/a"),
            Operand::Remote {
                session: "s1".into(),
                path: "/data/a".into()
            }
        );
        assert_eq!(
            Operand::parse("s1:"),
            Operand::Remote {
                session: "s1".into(),
                path: ".".into()
            }
        );
        assert_eq!(Operand::parse("./a:b"), Operand::Local("./a:b".into()));
        assert_eq!(Operand::parse("/a:b"), Operand::Local("/a:b".into()));
        assert_eq!(Operand::parse("file"), Operand::Local("file".into()));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
