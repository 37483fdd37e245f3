//! Command lines for OpenSSH clients (ssh, scp, sftp, rsync) through a local tunnel, and the
//! VS Code `~/.ssh/config` snippet.
//!
//! Everything written here is either checked or quoted: shell words with [`shell_quote`] (a
//! copied line gives the shell exactly the argv bai means), `ssh_config` values with
//! [`config_value`] (no line breaks, no `%`-token or `${VAR}` surprises), and names that
//! become syntax (the account, `Host` aliases, `HostKeyAlias`) must match strict patterns.
//!
//! Host keys: by default (the Backend.AI guide's form) host-key checking is off. With a
//! [`HostKeyPin`] the key is trusted on first use and pinned per session in bai's own
//! `known_hosts`, under the session id (`HostKeyAlias`), with `StrictHostKeyChecking
//! accept-new`: ssh refuses a changed key for the same session.
//!
//! Length: a little over 500 lines of code because each command-line form (ssh, scp, sftp,
//! rsync, VS Code, pinned or not) is built and quoted here, in one place, on purpose.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The file name of bai's own `known_hosts`, in the config directory.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

/// Where bai pins session host keys: `<config dir>/known_hosts`.
pub fn known_hosts_path(config_dir: &Path) -> PathBuf {
    config_dir.join(KNOWN_HOSTS_FILE)
}

/// Creates `path` (mode 0600, parent 0700) when missing; never truncates it. ssh itself would
/// create it world-readable.
pub fn ensure_known_hosts(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::fsutil::create_private_dir(parent)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
        .map(drop)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

/// Whether `s` is a safe name for ssh_config syntax (a `Host` alias, a `HostKeyAlias`, a
/// `ProxyCommand` argument): 1 to 128 of `[A-Za-z0-9._-]`, not starting with `-` (so it is
/// never taken for an option either).
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` is a valid account (login) name: [`crate::config::validate_account`]'s strict
/// POSIX-style user name (`[A-Za-z_][A-Za-z0-9_.-]*`, at most 32), with nothing to trim.
pub fn is_valid_account(s: &str) -> bool {
    crate::config::validate_account(s).is_ok_and(|a| a == s)
}

/// Checks an account name ([`is_valid_account`]).
///
/// # Errors
/// [`Error::InvalidInput`] naming the (escaped) value.
pub fn validate_account(s: &str) -> Result<()> {
    match crate::config::validate_account(s) {
        Ok(a) if a == s => Ok(()),
        Ok(_) => Err(Error::InvalidInput(format!(
            "the account \"{}\" has leading or trailing spaces",
            s.escape_debug()
        ))),
        Err(e) => Err(e),
    }
}

/// An `ssh_config` alias that is always safe: `raw` itself when [`is_safe_name`], otherwise
/// `raw` with every other character replaced by `_`, plus `-` and 8 hex digits of a hash of
/// `raw` (so two different names never share an alias by accident).
pub fn safe_alias(raw: &str) -> String {
    if is_safe_name(raw) {
        return raw.to_owned();
    }
    use sha1::Digest as _;
    let mut base: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if base.starts_with('-') || base.is_empty() {
        base.insert(0, '_');
    }
    let h = sha1::Sha1::digest(raw.as_bytes());
    format!("{base}-{}", hex::encode(&h[..4]))
}

/// Pins the session's host key on first use: `UserKnownHostsFile` = bai's own `known_hosts`,
/// `HostKeyAlias` = the session id, `StrictHostKeyChecking accept-new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPin {
    /// bai's `known_hosts` ([`known_hosts_path`]).
    pub known_hosts: PathBuf,
    /// The name the key is stored under: the session id ([`is_safe_name`]).
    pub alias: String,
}

impl HostKeyPin {
    /// A pin for session `session_id` in `known_hosts`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the id is not a safe name or the path cannot be written
    /// into `ssh_config`.
    pub fn new(known_hosts: PathBuf, session_id: &str) -> Result<Self> {
        let pin = HostKeyPin {
            known_hosts,
            alias: session_id.to_owned(),
        };
        pin.validate()?;
        Ok(pin)
    }

    /// Checks the alias and the path.
    ///
    /// # Errors
    /// [`Error::InvalidInput`].
    pub fn validate(&self) -> Result<()> {
        if !is_safe_name(&self.alias) {
            return Err(Error::InvalidInput(format!(
                "the session id \"{}\" cannot be used as a host key alias (only letters, digits, `.`, `_`, `-`)",
                self.alias.escape_debug()
            )));
        }
        config_path_value(&self.known_hosts).map(drop)
    }

    /// The `ssh_config` lines (two-space indented) of the pin.
    pub(crate) fn config_lines(&self) -> Result<String> {
        self.validate()?;
        Ok(format!(
            "  HostKeyAlias {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking accept-new\n  HashKnownHosts no\n  CheckHostIP no\n",
            self.alias,
            config_path_value(&self.known_hosts)?
        ))
    }

    /// `ssh-keygen -R ALIAS -f FILE`: the command that forgets the pinned key.
    pub fn reset_command(&self) -> String {
        join_shell(&[
            "ssh-keygen".to_owned(),
            "-R".to_owned(),
            self.alias.clone(),
            "-f".to_owned(),
            self.known_hosts.display().to_string(),
        ])
    }
}

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
    /// Trust-on-first-use host key pinning (`None`: no host key checking, the guide's form).
    pub pin: Option<HostKeyPin>,
}

impl SshEndpoint {
    /// `127.0.0.1:port` as `account`, with `key`, without host key pinning.
    pub fn loopback(port: u16, account: &str, key: Option<PathBuf>) -> Self {
        SshEndpoint {
            host: "127.0.0.1".into(),
            port,
            account: account.to_owned(),
            key,
            pin: None,
        }
    }

    /// The same endpoint with the host key pinned (opt-in).
    pub fn with_pin(mut self, pin: HostKeyPin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Checks everything that ends up in command lines and `ssh_config`: the account
    /// ([`is_valid_account`]), the host, the key path and the pin.
    ///
    /// # Errors
    /// [`Error::InvalidInput`].
    pub fn validate(&self) -> Result<()> {
        validate_account(&self.account)?;
        let host_ok = !self.host.is_empty()
            && !self.host.starts_with('-')
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !host_ok {
            return Err(Error::InvalidInput(format!(
                "invalid host \"{}\"",
                self.host.escape_debug()
            )));
        }
        if let Some(k) = &self.key {
            config_path_value(k)?;
        }
        if let Some(p) = &self.pin {
            p.validate()?;
        }
        Ok(())
    }

    /// `account@host`.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.account, self.host)
    }

    /// The `-o` options (and `-i KEY`) every client gets.
    pub fn common_options(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut opt = |kv: String| {
            v.push("-o".to_owned());
            v.push(kv);
        };
        match &self.pin {
            None => {
                opt("StrictHostKeyChecking=no".into());
                opt("UserKnownHostsFile=/dev/null".into());
                opt("NoHostAuthenticationForLocalhost=yes".into());
            }
            Some(p) => match (p.validate(), config_path_value(&p.known_hosts)) {
                // An -o value is parsed like an ssh_config line: quoted, `%` doubled.
                (Ok(()), Ok(file)) => {
                    opt("StrictHostKeyChecking=accept-new".into());
                    opt(format!("UserKnownHostsFile={file}"));
                    opt(format!("HostKeyAlias={}", p.alias));
                    opt("NoHostAuthenticationForLocalhost=no".into());
                    opt("HashKnownHosts=no".into());
                    opt("CheckHostIP=no".into());
                }
                // A pin that cannot be expressed fails closed: no key is ever trusted.
                _ => {
                    opt("StrictHostKeyChecking=yes".into());
                    opt("UserKnownHostsFile=/dev/null".into());
                    opt("NoHostAuthenticationForLocalhost=no".into());
                }
            },
        }
        opt("LogLevel=ERROR".into());
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

    /// The `~/.ssh/config` block VS Code Remote-SSH needs (the guide's "vscode" host), or
    /// an error when a value cannot be written safely. `alias` must be [`is_safe_name`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`].
    pub fn try_vscode_snippet(&self, alias: &str) -> Result<String> {
        if !is_safe_name(alias) {
            return Err(Error::InvalidInput(format!(
                "\"{}\" cannot be an ssh_config Host alias (only letters, digits, `.`, `_`, `-`)",
                alias.escape_debug()
            )));
        }
        self.validate()?;
        let mut s = format!(
            "Host {alias}\n  HostName {}\n  User {}\n  Port {}\n",
            self.host, self.account, self.port
        );
        match &self.pin {
            None => s.push_str("  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"),
            Some(p) => s.push_str(&p.config_lines()?),
        }
        if let Some(k) = &self.key {
            s.push_str(&format!("  IdentityFile {}\n", config_path_value(k)?));
        }
        Ok(s)
    }

    /// [`SshEndpoint::try_vscode_snippet`] for any `alias`: one that is not
    /// [`is_safe_name`] becomes [`safe_alias`]`(alias)` (use the same for the
    /// `vscode://…ssh-remote+ALIAS` link); a value that cannot be written safely (an invalid
    /// account, a key path with control characters) gives a comment saying so instead of a
    /// `Host` block.
    pub fn vscode_snippet(&self, alias: &str) -> String {
        match self.try_vscode_snippet(&safe_alias(alias)) {
            Ok(s) => s,
            Err(e) => format!(
                "# bai: no ssh_config block: {}\n",
                e.to_string().escape_debug()
            ),
        }
    }
}

/// Quotes one word for a POSIX shell (only when needed): the shell turns it back into exactly
/// `s`, whatever it holds.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && !s.starts_with(['~', '='])
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

/// Joins words into one shell command line (a first word with `=` is quoted, so it is never
/// taken for an assignment).
pub fn join_shell(words: &[String]) -> String {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 && w.contains('=') {
                format!("'{}'", w.replace('\'', "'\\''"))
            } else {
                shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a value for `ssh_config` (and `-o`): double quotes when it has anything but
/// `[A-Za-z0-9._/:@+,=-]`, with `"` and `\` escaped. Control characters (a line break would
/// start a new directive) cannot be written at all.
///
/// # Errors
/// [`Error::InvalidInput`] for control characters.
pub fn config_value(s: &str) -> Result<String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "\"{}\" cannot be written into an ssh config (empty, or control characters)",
            s.escape_debug()
        )));
    }
    let plain = s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '/' | ':' | '@' | '+' | ',' | '=' | '-')
    });
    Ok(if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// A path for an `ssh_config` keyword that expands `%` tokens and `${VAR}` (`IdentityFile`,
/// `UserKnownHostsFile`): `%` doubled, `${` refused, then [`config_value`].
///
/// # Errors
/// [`Error::InvalidInput`].
pub fn config_path_value(p: &Path) -> Result<String> {
    let s = p.to_str().ok_or_else(|| {
        Error::InvalidInput(format!(
            "the path {} is not valid UTF-8 and cannot be written into an ssh config",
            p.display()
        ))
    })?;
    if s.contains("${") {
        return Err(Error::InvalidInput(format!(
            "the path \"{}\" contains `${{`, which ssh would expand",
            s.escape_debug()
        )));
    }
    config_value(&s.replace('%', "%%"))
}

/// Quotes a value for `ssh_config` the way bai always has (double quotes when it has spaces
/// or `"`; kept for the `Include` line, which must stay byte-identical across versions);
/// control characters become `?`. Prefer [`config_value`], which refuses them.
pub fn config_quote(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.contains(char::is_whitespace) || s.contains('"') {
        format!("\"{}\"", s.replace('"', "\\\""))
    } else {
        s
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
