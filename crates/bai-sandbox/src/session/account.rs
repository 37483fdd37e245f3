//! The OS account sessions log in as: `work` when the sandbox runs as root (sessions never
//! log in as root), else the current user; read from NSS (`getent`) or `/etc/passwd`.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;

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
