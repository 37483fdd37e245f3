//! Uploads and downloads of files and folder trees over one SFTP session, with pipelined
//! requests (up to [`IN_FLIGHT`] reads or writes of up to 256 KiB outstanding), progress
//! counters and cancellation that removes what the transfer created.
//!
//! Safety: a download writes only below the folder the user chose. Every remote name is a
//! checked single component ([`super::sftp::is_safe_component`]); remote symlinks inside a
//! folder are skipped (never followed), special files too. Every file is written under a
//! temporary name next to its target and renamed over it only when complete, so a failed or
//! cancelled transfer removes only its own temporary file and never what it was replacing, and a
//! symlink in the way is replaced, never written through. Uploaded files get the local
//! permission bits; downloaded ones the remote bits without group and other write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt as _};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::sftp::{base_name, is_safe_component, join, EntryKind, Sftp};
use crate::{Error, Result};

/// Requests kept outstanding per file.
pub const IN_FLIGHT: usize = 16;

/// A transfer's counters, read by the queue for progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes moved so far.
    pub bytes: AtomicU64,
    /// Bytes to move (known after the scan; `u64::MAX`: unknown).
    pub total: AtomicU64,
    /// Files finished.
    pub files: AtomicU64,
    /// Files to move (`u64::MAX`: unknown).
    pub files_total: AtomicU64,
}

impl Progress {
    /// Fresh counters with unknown totals.
    pub fn new() -> Arc<Progress> {
        let p = Progress::default();
        p.total.store(u64::MAX, Ordering::Relaxed);
        p.files_total.store(u64::MAX, Ordering::Relaxed);
        Arc::new(p)
    }

    fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// A temporary name next to `name`: `.NAME.bai-part-UNIQUE` (hidden, unique per process).
fn part_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Long names keep their start: the result stays a valid file name (< 255 bytes).
    let mut short = name;
    while short.len() > 200 {
        let mut end = short.len() - 1;
        while !short.is_char_boundary(end) {
            end -= 1;
        }
        short = &short[..end];
    }
    format!(".{short}.bai-part-{}-{n}-{nanos:x}", std::process::id())
}

fn local_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

fn check(cancel: &CancellationToken) -> Result<()> {
    if cancel.is_cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------- upload

/// One thing to upload: a local path and where it goes.
enum UpItem {
    Dir(String, u32),
    File(PathBuf, String, u32),
}

/// Walks a local file or folder: the items in order (folders before their contents) and the
/// byte total. Symlinks are followed to regular files only; special files are skipped.
fn scan_local(local: &Path, remote: &str) -> Result<(Vec<UpItem>, u64)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut items = Vec::new();
    let mut total = 0u64;
    // Inside a folder, a symlink is followed only to a file inside the same folder: a link to
    // `~/.ssh/id_ed25519` in a cloned repository must not upload the key.
    let root = std::fs::canonicalize(local).map_err(|e| local_err("reading", local, e))?;
    let mut stack = vec![(local.to_path_buf(), remote.to_owned(), true)];
    while let Some((path, target, top)) = stack.pop() {
        let lmeta = std::fs::symlink_metadata(&path).map_err(|e| local_err("reading", &path, e))?;
        let meta = if lmeta.file_type().is_symlink() {
            let inside =
                top || std::fs::canonicalize(&path).is_ok_and(|real| real.starts_with(&root));
            match std::fs::metadata(&path) {
                Ok(m) if inside && (m.is_file() || (top && m.is_dir())) => m,
                _ => {
                    tracing::info!(path = %path.display(), "symlink skipped in upload (not a file inside the folder)");
                    continue;
                }
            }
        } else {
            lmeta
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            items.push(UpItem::Dir(target.clone(), mode));
            let mut children: Vec<_> = std::fs::read_dir(&path)
                .map_err(|e| local_err("listing", &path, e))?
                .filter_map(|e| e.ok())
                .collect();
            children.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for c in children {
                let Some(name) = c.file_name().to_str().map(str::to_owned) else {
                    tracing::warn!(path = %c.path().display(), "a name that is not UTF-8 skipped");
                    continue;
                };
                stack.push((c.path(), join(&target, &name), false));
            }
        } else if meta.is_file() {
            total += meta.len();
            items.push(UpItem::File(path, target, mode));
        } else {
            tracing::info!(path = %path.display(), "special file skipped in upload");
        }
    }
    Ok((items, total))
}

/// The remote target of uploading `local` into `remote_dir`.
pub fn upload_target(local: &Path, remote_dir: &str) -> Result<String> {
    let name = local
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| is_safe_component(n))
        .ok_or_else(|| Error::InvalidInput(format!("cannot upload {}", local.display())))?;
    Ok(join(remote_dir, name))
}

/// Uploads a file or folder into `remote_dir` (existing files are replaced: the caller asked
/// before). On cancellation or failure, a target that did not exist before is removed whole,
/// otherwise the file being written.
pub async fn upload(
    sftp: &Sftp,
    local: &Path,
    remote_dir: &str,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    let target = upload_target(local, remote_dir)?;
    let (local_c, target_c) = (local.to_path_buf(), target.clone());
    let (items, total) = tokio::task::spawn_blocking(move || scan_local(&local_c, &target_c))
        .await
        .map_err(|e| Error::io("scanning", std::io::Error::other(e)))??;
    progress.total.store(total, Ordering::Relaxed);
    let files = items
        .iter()
        .filter(|i| matches!(i, UpItem::File(..)))
        .count() as u64;
    progress.files_total.store(files, Ordering::Relaxed);
    let existed = sftp.lstat(&target).await?.is_some();
    let result = async {
        for item in &items {
            check(cancel)?;
            match item {
                UpItem::Dir(path, mode) => match sftp.lstat(path).await? {
                    Some(a) if EntryKind::of_mode(a.permissions) == EntryKind::Dir => {}
                    Some(_) => return Err(Error::Exists { path: path.clone() }),
                    None => {
                        let attrs = FileAttributes {
                            permissions: Some(*mode),
                            ..FileAttributes::empty()
                        };
                        sftp.raw()
                            .mkdir(path.as_str(), attrs)
                            .await
                            .map_err(|e| sftp.err("creating the folder", path, e))?;
                    }
                },
                UpItem::File(from, to, mode) => {
                    upload_file(sftp, from, to, *mode, progress, cancel).await?;
                    progress.files.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
    .await;
    // A failed file removed its own temporary copy; what did not exist before goes whole.
    if result.is_err() && !existed {
        if let Err(e) = sftp.delete_tree(&target).await {
            tracing::warn!(path = %target.escape_debug(), error = %e, "cannot remove a partial upload");
        }
    }
    result
}

/// Renames the complete temporary `part` over `to` (a file or symlink there is replaced, a
/// folder is not): OpenSSH's `posix-rename@openssh.com` when the server has it, else remove +
/// rename.
async fn replace_remote(sftp: &Sftp, part: &str, to: &str) -> Result<()> {
    if let Some(a) = sftp.lstat(to).await? {
        if EntryKind::of_mode(a.permissions) == EntryKind::Dir {
            return Err(Error::Exists {
                path: to.to_owned(),
            });
        }
    }
    let raw = sftp.raw();
    let mut data = Vec::with_capacity(8 + part.len() + to.len());
    for s in [part, to] {
        data.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    if raw.extended("posix-rename@openssh.com", data).await.is_ok()
        && sftp.lstat(part).await?.is_none()
    {
        return Ok(());
    }
    if sftp.lstat(to).await?.is_some() {
        raw.remove(to)
            .await
            .map_err(|e| sftp.err("replacing", to, e))?;
    }
    raw.rename(part, to)
        .await
        .map_err(|e| sftp.err("renaming into place", to, e))?;
    Ok(())
}

async fn upload_file(
    sftp: &Sftp,
    from: &Path,
    to: &str,
    mode: u32,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Non-blocking open: a path that turned into a FIFO since the scan must not hang us; only a
    // regular file is read.
    let std_file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(from)
        .map_err(|e| local_err("opening", from, e))?;
    if !std_file
        .metadata()
        .map_err(|e| local_err("reading", from, e))?
        .is_file()
    {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file",
            from.display()
        )));
    }
    if let Some(a) = sftp.lstat(to).await? {
        if EntryKind::of_mode(a.permissions) == EntryKind::Dir {
            return Err(Error::Exists {
                path: to.to_owned(),
            });
        }
    }
    let mut file = tokio::fs::File::from_std(std_file);
    let (dir, name) = match to.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", to),
    };
    let part = join(dir, &part_name(name));
    let raw = sftp.raw().clone();
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
    let attrs = FileAttributes {
        permissions: Some(mode & 0o777 | 0o600),
        ..FileAttributes::empty()
    };
    let handle = raw
        .open(part.as_str(), flags, attrs)
        .await
        .map_err(|e| sftp.err("creating", &part, e))?
        .handle;
    let written = upload_part(sftp, &mut file, from, &part, &handle, progress, cancel).await;
    let closed = raw.close(handle.as_str()).await;
    let done = match (written, closed) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(sftp.err("closing", &part, e)),
        (Ok(()), Ok(_)) => {
            set_remote_times(sftp, from, &part, mode).await;
            replace_remote(sftp, &part, to).await
        }
    };
    if done.is_err() {
        if let Err(e) = raw.remove(part.as_str()).await {
            tracing::info!(path = %part.escape_debug(), error = %e, "cannot remove a partial upload");
        }
    }
    done
}

/// Sets the uploaded file's permission bits (the server's umask applied at creation) and mtime.
async fn set_remote_times(sftp: &Sftp, from: &Path, part: &str, mode: u32) {
    let mtime = std::fs::metadata(from)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u32::try_from(d.as_secs()).ok());
    let attrs = FileAttributes {
        permissions: Some(mode),
        atime: mtime,
        mtime,
        ..FileAttributes::empty()
    };
    if let Err(e) = sftp.raw().setstat(part, attrs).await {
        tracing::info!(path = %part.escape_debug(), error = %e, "cannot set the uploaded file's mode");
    }
}

/// Writes `file` to the open remote `handle` with [`IN_FLIGHT`] writes outstanding.
async fn upload_part(
    sftp: &Sftp,
    file: &mut tokio::fs::File,
    from: &Path,
    to: &str,
    handle: &str,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    let raw = sftp.raw().clone();
    let handle = handle.to_owned();
    let (_, chunk) = sftp.chunk_sizes();
    let mut pending = FuturesUnordered::new();
    let mut offset = 0u64;
    let mut eof = false;
    let result: Result<()> = async {
        loop {
            while !eof && pending.len() < IN_FLIGHT {
                check(cancel)?;
                let mut buf = vec![0u8; chunk as usize];
                let mut n = 0;
                while n < buf.len() {
                    let r = file
                        .read(&mut buf[n..])
                        .await
                        .map_err(|e| local_err("reading", from, e))?;
                    if r == 0 {
                        break;
                    }
                    n += r;
                }
                if n == 0 {
                    eof = true;
                    break;
                }
                buf.truncate(n);
                let (raw, h, at) = (raw.clone(), handle.clone(), offset);
                pending.push(async move { raw.write(h, at, buf).await.map(|_| n as u64) });
                offset += n as u64;
            }
            // Cancel does not wait for a stalled server's answers.
            let next = tokio::select! {
                n = pending.next() => n,
                () = cancel.cancelled() => return Err(Error::Cancelled),
            };
            let Some(done) = next else {
                break;
            };
            progress.add(done.map_err(|e| sftp.err("writing", to, e))?);
        }
        Ok(())
    }
    .await;
    drop(pending);
    result
}

// ---------------------------------------------------------------- download

enum DownItem {
    Dir(PathBuf),
    File(String, PathBuf, u32, u64),
}

/// The local target of downloading `remote` into `local_dir`.
pub fn download_target(remote: &str, local_dir: &Path) -> Result<PathBuf> {
    let name = base_name(remote).ok_or_else(|| {
        Error::InvalidInput(format!("cannot download \"{}\"", remote.escape_debug()))
    })?;
    Ok(local_dir.join(name))
}

async fn scan_remote(sftp: &Sftp, remote: &str, local: &Path) -> Result<(Vec<DownItem>, u64)> {
    let mut items = Vec::new();
    let mut total = 0u64;
    // The top: what the user chose, symlinks followed.
    let top = sftp.stat(remote).await?.ok_or_else(|| Error::Remote {
        code: crate::ErrorCode::FileNotFound,
        message: format!("{} does not exist", remote.escape_debug()),
    })?;
    let mut stack = vec![(remote.to_owned(), local.to_path_buf(), top)];
    while let Some((path, target, attrs)) = stack.pop() {
        match EntryKind::of_mode(attrs.permissions) {
            EntryKind::Dir => {
                items.push(DownItem::Dir(target.clone()));
                let mut children = sftp.read_dir(&path).await?;
                children.sort_by(|a, b| b.0.cmp(&a.0));
                for (name, a) in children {
                    // read_dir checked the name: one component, so the target stays inside.
                    stack.push((join(&path, &name), target.join(&name), a));
                }
            }
            EntryKind::File => {
                let size = attrs.size.unwrap_or(0);
                total += size;
                let mode = attrs.permissions.unwrap_or(0o644) & 0o777;
                items.push(DownItem::File(path, target, mode, size));
            }
            EntryKind::Symlink | EntryKind::Other if path == remote => {
                // What the user chose is neither a file nor a folder (a FIFO, a device…).
                return Err(Error::InvalidInput(format!(
                    "{} is not a file or a folder: only those can be downloaded",
                    remote.escape_debug()
                )));
            }
            EntryKind::Symlink | EntryKind::Other => {
                tracing::info!(path = %path.escape_debug(), "symlink or special file skipped in download");
            }
        }
    }
    Ok((items, total))
}

/// Downloads a remote file or folder into `local_dir` (existing files are replaced: the caller
/// asked before). On cancellation or failure, a target that did not exist before is removed
/// whole, otherwise the file being written.
pub async fn download(
    sftp: &Sftp,
    remote: &str,
    local_dir: &Path,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    let target = download_target(remote, local_dir)?;
    let (items, total) = scan_remote(sftp, remote, &target).await?;
    progress.total.store(total, Ordering::Relaxed);
    let files = items
        .iter()
        .filter(|i| matches!(i, DownItem::File(..)))
        .count() as u64;
    progress.files_total.store(files, Ordering::Relaxed);
    let existed = std::fs::symlink_metadata(&target).is_ok();
    let result = async {
        for item in &items {
            check(cancel)?;
            match item {
                DownItem::Dir(path) => match std::fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::Exists {
                            path: path.display().to_string(),
                        })
                    }
                    Err(_) => {
                        std::fs::create_dir(path).map_err(|e| local_err("creating", path, e))?
                    }
                },
                DownItem::File(from, to, mode, size) => {
                    download_file(sftp, from, to, *mode, *size, progress, cancel).await?;
                    progress.files.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
    .await;
    // A failed file removed its own temporary copy; what did not exist before goes whole.
    if result.is_err() && !existed {
        let gone = match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&target),
            Ok(_) => std::fs::remove_file(&target),
            Err(_) => Ok(()),
        };
        if let Err(e) = gone {
            tracing::warn!(path = %target.display(), error = %e, "cannot remove a partial download");
        }
    }
    result
}

async fn download_file(
    sftp: &Sftp,
    from: &str,
    to: &Path,
    mode: u32,
    size: u64,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // A folder in the way is not replaced by a file.
    if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Exists {
            path: to.display().to_string(),
        });
    }
    let raw = sftp.raw().clone();
    let handle = raw
        .open(from, OpenFlags::READ, FileAttributes::empty())
        .await
        .map_err(|e| sftp.err("opening", from, e))?
        .handle;
    // Written under a new temporary name (never through a symlink), renamed over `to` at the end.
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part = to.with_file_name(part_name(&name));
    let std_file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&part)
    {
        Ok(f) => f,
        Err(e) => {
            let _ = raw.close(handle.as_str()).await;
            return Err(local_err("creating", &part, e));
        }
    };
    let mut file = tokio::fs::File::from_std(std_file);
    let done = download_part(
        sftp, &raw, &handle, from, to, &mut file, size, progress, cancel,
    )
    .await;
    let _ = raw.close(handle.as_str()).await;
    let done = match done {
        Ok(()) => finish_download(sftp, from, &part, to, mode, file).await,
        Err(e) => Err(e),
    };
    if done.is_err() {
        if let Err(e) = std::fs::remove_file(&part) {
            tracing::info!(path = %part.display(), error = %e, "cannot remove a partial download");
        }
    }
    done
}

/// Flushes the complete temporary file, gives it its mode (the remote bits without group and
/// other write) and the remote mtime, and renames it over `to` (a file or symlink there is
/// replaced, not written through).
async fn finish_download(
    sftp: &Sftp,
    from: &str,
    part: &Path,
    to: &Path,
    mode: u32,
    mut file: tokio::fs::File,
) -> Result<()> {
    file.flush()
        .await
        .map_err(|e| local_err("writing", to, e))?;
    let std_file = file.into_std().await;
    std_file
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
            (mode & 0o755) | 0o600,
        ))
        .map_err(|e| local_err("setting the mode of", to, e))?;
    if let Ok(Some(a)) = sftp.stat(from).await {
        if let Some(t) = a.mtime {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(t));
            let _ = std_file.set_modified(when);
        }
    }
    drop(std_file);
    std::fs::rename(part, to).map_err(|e| local_err("renaming into place", to, e))
}

/// Reads the open remote `handle` into `file` with [`IN_FLIGHT`] reads outstanding.
#[allow(clippy::too_many_arguments)]
async fn download_part(
    sftp: &Sftp,
    raw: &Arc<russh_sftp::client::RawSftpSession>,
    handle: &str,
    from: &str,
    to: &Path,
    file: &mut tokio::fs::File,
    size: u64,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<()> {
    let handle = handle.to_owned();
    let (chunk, _) = sftp.chunk_sizes();
    let mut pending = FuturesOrdered::new();
    let mut next = 0u64;
    // Reads past the size are still asked for: the file may have grown; EOF ends it.
    let mut eof = false;
    let result: Result<()> = async {
        loop {
            while !eof
                && pending.len() < IN_FLIGHT
                && (next < size.saturating_add(u64::from(chunk)) || pending.is_empty())
            {
                check(cancel)?;
                let (raw, h, at) = (raw.clone(), handle.clone(), next);
                pending.push_back(async move { (at, raw.read(h, at, chunk).await) });
                next += u64::from(chunk);
            }
            let next = tokio::select! {
                n = pending.next() => n,
                () = cancel.cancelled() => return Err(Error::Cancelled),
            };
            let Some((at, got)) = next else {
                break;
            };
            match got {
                Ok(d) => {
                    let n = d.data.len() as u64;
                    if n == 0 {
                        eof = true;
                        continue;
                    }
                    file.write_all(&d.data)
                        .await
                        .map_err(|e| local_err("writing", to, e))?;
                    progress.add(n);
                    if n < u64::from(chunk) {
                        // A short read: fetch the rest of this range before going on.
                        let mut pos = at + n;
                        let end = at + u64::from(chunk);
                        while pos < end {
                            check(cancel)?;
                            match raw.read(handle.as_str(), pos, (end - pos) as u32).await {
                                Ok(d) if !d.data.is_empty() => {
                                    file.write_all(&d.data)
                                        .await
                                        .map_err(|e| local_err("writing", to, e))?;
                                    progress.add(d.data.len() as u64);
                                    pos += d.data.len() as u64;
                                }
                                Ok(_) => {
                                    eof = true;
                                    break;
                                }
                                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                                    eof = true;
                                    break;
                                }
                                Err(e) => return Err(sftp.err("reading", from, e)),
                            }
                        }
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => eof = true,
                Err(e) => return Err(sftp.err("reading", from, e)),
            }
            if eof {
                // Outstanding reads past the end answer EOF: drop them.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(pending);
    result
}
