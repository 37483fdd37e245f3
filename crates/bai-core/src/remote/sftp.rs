//! SFTP on a session channel: the file browser's operations (home, list, mkdir, rename,
//! recursive delete that never follows symlinks) over russh-sftp's raw session, whose requests
//! can be pipelined ([`super::transfer`]). Remote names are checked: a name with `/`, a NUL,
//! `.` or `..` from a listing is never used as a path component.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use russh::client::Msg;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::connect::ssh_error;
use crate::{Error, ErrorCode, Result};

/// The largest read or write bai asks for (OpenSSH's sftp-server allows 255 KiB).
pub const MAX_CHUNK: u32 = 256 * 1024;
/// Seconds one request may take before the SFTP session gives up on it.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by delete).
    Symlink,
    /// A device, FIFO, socket, or unknown.
    Other,
}

impl EntryKind {
    /// The kind of a POSIX mode (`None`: unknown, taken as a file).
    pub fn of_mode(mode: Option<u32>) -> EntryKind {
        match mode.map(|m| m & 0o170_000) {
            Some(0o040_000) => EntryKind::Dir,
            Some(0o120_000) => EntryKind::Symlink,
            Some(0o100_000) | None | Some(0) => EntryKind::File,
            Some(_) => EntryKind::Other,
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The name (checked: no `/`, no NUL, not `.` or `..`).
    pub name: String,
    /// What it is (a symlink is a symlink, not its target).
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (Unix seconds).
    pub mtime: Option<u64>,
    /// The POSIX mode.
    pub mode: Option<u32>,
    /// `drwxr-xr-x`.
    pub permissions: String,
    /// A symlink's target.
    pub link_target: Option<String>,
    /// What a symlink points to (`None`: dangling or not a symlink).
    pub target_kind: Option<EntryKind>,
}

/// A directory's entries: directories first, then by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The directory (as asked, canonical when the server resolved it).
    pub path: String,
    /// The entries, hidden ones included.
    pub entries: Vec<FileEntry>,
}

/// `drwxr-xr-x` of a mode.
pub fn permissions_text(mode: Option<u32>) -> String {
    let Some(m) = mode else {
        return "?---------".to_owned();
    };
    let kind = match EntryKind::of_mode(Some(m)) {
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::File => '-',
        EntryKind::Other => match m & 0o170_000 {
            0o020_000 => 'c',
            0o060_000 => 'b',
            0o010_000 => 'p',
            0o140_000 => 's',
            _ => '?',
        },
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, m & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Whether `name` is safe as one path component (from a listing or for a new name).
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// `dir/name` for a remote POSIX path.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The last component of a remote path (`None` for `/` or `..`-like paths).
pub fn base_name(path: &str) -> Option<&str> {
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    is_safe_component(name).then_some(name)
}

/// Checks a remote path from the UI: absolute, no NUL.
pub fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') || path.contains('\0') || path.len() > 4096 {
        return Err(Error::InvalidInput(format!(
            "\"{}\" is not an absolute remote path",
            path.escape_debug()
        )));
    }
    Ok(())
}

/// An SFTP session on one channel.
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    session: String,
    dead: AtomicBool,
    read_len: u32,
    write_len: u32,
}

impl std::fmt::Debug for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sftp")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Sftp {
    pub(crate) async fn open(channel: russh::Channel<Msg>, session: &str) -> Result<Sftp> {
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| ssh_error("starting SFTP", &e))?;
        Sftp::over(channel.into_stream(), session).await
    }

    /// SFTP over any byte stream (a channel; an in-memory server in tests).
    pub(crate) async fn over<S>(stream: S, session: &str) -> Result<Sftp>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let raw = RawSftpSession::new(stream);
        raw.set_timeout(REQUEST_TIMEOUT_SECS);
        let no_sftp = |e: SftpError| {
            Error::Remote {
            code: ErrorCode::Network,
            message: format!(
                "the SSH server of session {session} has no SFTP (its sftp-server did not answer: {e})"
            ),
        }
        };
        let version = raw.init().await.map_err(no_sftp)?;
        let (mut read_len, mut write_len) = (MAX_CHUNK, MAX_CHUNK);
        let mut raw = raw;
        if version
            .extensions
            .get("limits@openssh.com")
            .is_some_and(|v| v == "1")
        {
            if let Ok(l) = raw.limits().await {
                let clamp = |v: u64| {
                    if v == 0 {
                        MAX_CHUNK
                    } else {
                        v.min(u64::from(MAX_CHUNK)) as u32
                    }
                };
                read_len = clamp(l.max_read_len);
                write_len = clamp(l.max_write_len);
                raw.set_limits(l.into());
            }
        }
        Ok(Sftp {
            raw: Arc::new(raw),
            session: session.to_owned(),
            dead: AtomicBool::new(false),
            read_len,
            write_len,
        })
    }

    pub(crate) fn raw(&self) -> &Arc<RawSftpSession> {
        &self.raw
    }

    /// The largest read and write request sizes.
    pub fn chunk_sizes(&self) -> (u32, u32) {
        (self.read_len, self.write_len)
    }

    /// Whether the session failed at the transport level (the browser opens a new one).
    pub fn is_closed(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Maps an SFTP error of an operation on `path`.
    pub(crate) fn err(&self, what: &str, path: &str, e: SftpError) -> Error {
        let shown = path.escape_debug();
        match e {
            SftpError::Status(s) => {
                let code = match s.status_code {
                    StatusCode::NoSuchFile => ErrorCode::FileNotFound,
                    StatusCode::PermissionDenied => ErrorCode::Io,
                    _ => ErrorCode::Io,
                };
                let detail = if s.error_message.is_empty() {
                    s.status_code.to_string()
                } else {
                    crate::display::clean_line(&s.error_message)
                };
                Error::Remote {
                    code,
                    message: format!(
                        "{what} {shown} in session {} failed: {detail}",
                        self.session
                    ),
                }
            }
            other => {
                self.dead.store(true, Ordering::Relaxed);
                Error::Remote {
                    code: ErrorCode::Network,
                    message: format!("{what} {shown} in session {} failed: {other}", self.session),
                }
            }
        }
    }

    /// The home directory (`realpath .`).
    pub async fn home(&self) -> Result<String> {
        self.realpath(".").await
    }

    /// The canonical form of `path`.
    pub async fn realpath(&self, path: &str) -> Result<String> {
        let name = self
            .raw
            .realpath(path)
            .await
            .map_err(|e| self.err("resolving", path, e))?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| Error::Remote {
                code: ErrorCode::Io,
                message: format!("the server did not resolve {}", path.escape_debug()),
            })
    }

    /// `lstat`; `Ok(None)` when nothing is there.
    pub async fn lstat(&self, path: &str) -> Result<Option<FileAttributes>> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.err("reading", path, e)),
        }
    }

    /// `stat` (follows symlinks); `Ok(None)` when nothing (or a dangling link) is there.
    pub async fn stat(&self, path: &str) -> Result<Option<FileAttributes>> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.err("reading", path, e)),
        }
    }

    /// The raw entries of a directory (unsafe names dropped), without `.` and `..`.
    pub(crate) async fn read_dir(&self, path: &str) -> Result<Vec<(String, FileAttributes)>> {
        let handle = self
            .raw
            .opendir(path)
            .await
            .map_err(|e| self.err("listing", path, e))?
            .handle;
        let mut out = Vec::new();
        // A server that keeps answering without new entries (nor EOF) must not hold us forever.
        let mut idle = 0u32;
        let result = loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    if name
                        .files
                        .iter()
                        .all(|f| f.filename == "." || f.filename == "..")
                    {
                        idle += 1;
                        if idle > 16 {
                            break Err(Error::Remote {
                                code: ErrorCode::Io,
                                message: format!(
                                    "listing {} does not end (the server sends no entries and no end)",
                                    path.escape_debug()
                                ),
                            });
                        }
                    } else {
                        idle = 0;
                    }
                    for f in name.files {
                        if f.filename == "." || f.filename == ".." {
                            continue;
                        }
                        if !is_safe_component(&f.filename) {
                            tracing::warn!(dir = %path.escape_debug(), name = %f.filename.escape_debug(), "unsafe remote name skipped");
                            continue;
                        }
                        out.push((f.filename, f.attrs));
                    }
                    if out.len() > 1_000_000 {
                        break Err(Error::Remote {
                            code: ErrorCode::Io,
                            message: format!("{} has too many entries", path.escape_debug()),
                        });
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(self.err("listing", path, e)),
            }
        };
        let _ = self.raw.close(handle).await;
        result.map(|()| out)
    }

    /// Lists a directory: entries with kind, size, mtime, permissions, and symlink targets.
    pub async fn list(&self, path: &str) -> Result<Listing> {
        check_path(path)?;
        let raw = self.read_dir(path).await?;
        let mut entries = Vec::with_capacity(raw.len());
        for (name, attrs) in raw {
            let kind = EntryKind::of_mode(attrs.permissions);
            let (link_target, target_kind) = if kind == EntryKind::Symlink {
                let full = join(path, &name);
                let target = self
                    .raw
                    .readlink(full.as_str())
                    .await
                    .ok()
                    .and_then(|n| n.files.into_iter().next())
                    .map(|f| f.filename);
                let tk = self
                    .stat(&full)
                    .await
                    .ok()
                    .flatten()
                    .map(|a| EntryKind::of_mode(a.permissions));
                (target, tk)
            } else {
                (None, None)
            };
            entries.push(FileEntry {
                name,
                kind,
                size: attrs.size.unwrap_or(0),
                mtime: attrs.mtime.map(u64::from),
                mode: attrs.permissions,
                permissions: permissions_text(attrs.permissions),
                link_target,
                target_kind,
            });
        }
        let is_dir = |e: &FileEntry| {
            e.kind == EntryKind::Dir
                || (e.kind == EntryKind::Symlink && e.target_kind == Some(EntryKind::Dir))
        };
        entries.sort_by(|a, b| is_dir(b).cmp(&is_dir(a)).then_with(|| a.name.cmp(&b.name)));
        Ok(Listing {
            path: path.to_owned(),
            entries,
        })
    }

    /// Creates a directory; [`Error::Exists`] when something is there already.
    pub async fn mkdir(&self, path: &str) -> Result<()> {
        check_path(path)?;
        if self.lstat(path).await?.is_some() {
            return Err(Error::Exists {
                path: path.to_owned(),
            });
        }
        self.raw
            .mkdir(path, FileAttributes::empty())
            .await
            .map(drop)
            .map_err(|e| self.err("creating the folder", path, e))
    }

    /// Renames; [`Error::Exists`] when `to` exists.
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_path(from)?;
        check_path(to)?;
        if self.lstat(to).await?.is_some() {
            return Err(Error::Exists {
                path: to.to_owned(),
            });
        }
        self.raw
            .rename(from, to)
            .await
            .map(drop)
            .map_err(|e| self.err("renaming", from, e))
    }

    /// Deletes a file, a symlink (never its target) or a folder with everything in it.
    pub async fn delete(&self, path: &str) -> Result<()> {
        check_path(path)?;
        if path.trim_end_matches('/').is_empty() {
            return Err(Error::InvalidInput("refusing to delete /".into()));
        }
        self.delete_tree(path).await
    }

    /// [`Sftp::delete`] without the checks (also for removing partial uploads).
    pub(crate) async fn delete_tree(&self, path: &str) -> Result<()> {
        // Iterative, depth-first: directories are removed after their contents.
        let mut stack: Vec<(String, bool)> = vec![(path.to_owned(), false)];
        while let Some((p, visited)) = stack.pop() {
            if visited {
                self.raw
                    .rmdir(p.as_str())
                    .await
                    .map_err(|e| self.err("deleting the folder", &p, e))?;
                continue;
            }
            let Some(attrs) = self.lstat(&p).await? else {
                continue;
            };
            if EntryKind::of_mode(attrs.permissions) == EntryKind::Dir {
                stack.push((p.clone(), true));
                for (name, _) in self.read_dir(&p).await? {
                    stack.push((join(&p, &name), false));
                }
            } else {
                self.raw
                    .remove(p.as_str())
                    .await
                    .map_err(|e| self.err("deleting", &p, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names() {
        assert_eq!(permissions_text(Some(0o040_755)), "drwxr-xr-x");
        assert_eq!(permissions_text(Some(0o100_644)), "-rw-r--r--");
        assert_eq!(permissions_text(Some(0o120_777)), "lrwxrwxrwx");
        assert_eq!(permissions_text(Some(0o104_755)), "-rwsr-xr-x");
        assert_eq!(permissions_text(Some(0o041_777)), "drwxrwxrwt");
        assert_eq!(permissions_text(Some(0o060_660)), "brw-rw----");
        assert_eq!(permissions_text(None), "?---------");
        assert_eq!(EntryKind::of_mode(Some(0o060_660)), EntryKind::Other);
        for bad in ["", ".", "..", "a/b", "../x", "a\0b"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component(".hidden"));
        assert_eq!(base_name("/home/demo/x.txt"), Some("x.txt"));
        assert_eq!(base_name("/home/demo/dir/"), Some("dir"));
        assert_eq!(base_name("/"), None);
        assert_eq!(base_name("/a/.."), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/h", "a"), "/h/a");
        assert!(check_path("relative").is_err());
        assert!(check_path("/ok").is_ok());
    }
}
