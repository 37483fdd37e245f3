//! Confined, streamed reads for the download routes.
//!
//! The sandbox may run as root, so a path a session user controls must never lead it to read
//! outside the session home. A requested path is resolved once (symlinks that stay inside the
//! home are allowed, as in a container), then opened from a descriptor of the home one
//! component at a time with `O_NOFOLLOW`: a symlink swapped in after the check makes the open
//! fail instead of escaping. Every check (file type, size) is made on the opened descriptor and
//! the bytes are read from that same descriptor.
//!
//! Multi-file downloads are planned first (directory walks by descriptor, sizes from `fstat`),
//! so that an oversize request is refused before anything is read and every part's exact
//! `Content-Length` is known; the tars are then written to the response as they are read, in
//! chunks of 64 KiB.
//!
//! This module holds the confinement (opening by descriptor, the refusals as problems) and
//! single-file reads; `archive` plans and writes the tar of one requested path, and `body`
//! turns a blocking writer into a streamed response body.

mod archive;
mod body;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use crate::problem::ProblemReply;

pub(crate) use archive::{plan_part, write_part};
pub(crate) use body::streamed_body;

pub(crate) fn file_not_found() -> ProblemReply {
    ProblemReply::new(400, "invalid-api-params", "The file is not found.")
        .msg("The file is not found.")
}

pub(crate) fn outside_home() -> ProblemReply {
    ProblemReply::internal("The path is outside /home/work.")
}

fn is_directory() -> ProblemReply {
    ProblemReply::invalid_params("The path is a directory.")
}

/// The refusal of a file (or a part's tar) larger than `limit` bytes.
pub(crate) fn too_large(limit: u64) -> ProblemReply {
    let size = if limit >= 1 << 20 && limit & ((1 << 20) - 1) == 0 {
        format!("{} MiB", limit >> 20)
    } else if limit >= 1 << 10 && limit & ((1 << 10) - 1) == 0 {
        format!("{} KiB", limit >> 10)
    } else {
        format!("{limit} bytes")
    };
    ProblemReply::invalid_params(format!("The file is larger than {size}."))
}

/// A symlink met where none may be (it was swapped in after the check) means "outside".
fn open_problem(e: io::Error) -> ProblemReply {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        outside_home()
    } else {
        file_not_found()
    }
}

#[cfg(test)]
thread_local! {
    /// Runs between the check of a requested path and its open (tests race it from here).
    pub(crate) static AFTER_CHECK: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        std::cell::RefCell::new(None);
}

fn after_check() {
    #[cfg(test)]
    AFTER_CHECK.with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f()
        }
    });
}

/// Opens `rel` below `dir` one component at a time, never following a symlink (`ELOOP` or
/// `ENOTDIR` when one is met). `rel` must hold only normal components; an empty `rel` reopens
/// `dir` itself. The final open adds `O_NONBLOCK` (a FIFO must not hang the reader).
fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let names: Vec<_> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a relative path",
            )),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, parents)) = names.split_last() else {
        return Ok(rustix::fs::openat(
            dir,
            ".",
            base | OFlags::DIRECTORY,
            Mode::empty(),
        )?);
    };
    let mut cur: Option<OwnedFd> = None;
    for name in parents {
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        cur = Some(rustix::fs::openat(
            at,
            *name,
            base | OFlags::DIRECTORY,
            Mode::empty(),
        )?);
    }
    let at = cur.as_ref().map_or(dir, |f| f.as_fd());
    Ok(rustix::fs::openat(
        at,
        *last,
        base | OFlags::NONBLOCK,
        Mode::empty(),
    )?)
}

/// The home's descriptor and canonical path.
fn open_home(home: &Path) -> Result<(OwnedFd, PathBuf), ProblemReply> {
    let canon = std::fs::canonicalize(home).map_err(|_| file_not_found())?;
    let fd = rustix::fs::open(
        &canon,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| file_not_found())?;
    Ok((fd, canon))
}

/// Opens `path` (a path inside `home`) with every symlink resolved, refusing anything that
/// resolves outside the home or changes between the check and the open. Returns the opened
/// descriptor, its `fstat` and whether the path names the home itself.
fn open_confined(
    home: &Path,
    path: &Path,
) -> Result<(OwnedFd, rustix::fs::Stat, bool), ProblemReply> {
    let (home_fd, home_canon) = open_home(home)?;
    let real = std::fs::canonicalize(path).map_err(|_| file_not_found())?;
    let rel = real
        .strip_prefix(&home_canon)
        .map_err(|_| outside_home())?
        .to_path_buf();
    after_check();
    let fd = open_beneath(home_fd.as_fd(), &rel).map_err(open_problem)?;
    let st = rustix::fs::fstat(&fd).map_err(|_| file_not_found())?;
    Ok((fd, st, rel.as_os_str().is_empty()))
}

/// Opens one regular file of the home for `download_single`: returns it and its size.
pub(crate) fn open_single(
    home: &Path,
    path: &Path,
    limit: u64,
) -> Result<(File, u64), ProblemReply> {
    let (fd, st, _) = open_confined(home, path)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(is_directory()),
        _ => return Err(file_not_found()),
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > limit {
        return Err(too_large(limit));
    }
    Ok((File::from(fd), size))
}

/// Reads exactly `size` bytes of `file` from offset 0 with `pread` (a file that shrank since
/// its `fstat` is an error: the announced length can no longer be kept).
struct Exact<'a> {
    file: &'a File,
    pos: u64,
    size: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.file.read_at(&mut buf[..max], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the first `size` bytes of `file`.
pub(crate) fn exact(file: &File, size: u64) -> impl Read + '_ {
    Exact { file, pos: 0, size }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRET: &[u8] = b"OUTSIDE SECRET";

    struct Fixture {
        _dir: tempfile::TempDir,
        home: PathBuf,
        outside: PathBuf,
    }

    /// A home with `d/f` ("inside") and, outside it, a directory with `f` (the secret).
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(home.join("d")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(home.join("d/f"), b"inside").unwrap();
        std::fs::write(home.join("g"), b"inside too").unwrap();
        std::fs::write(outside.join("f"), SECRET).unwrap();
        std::fs::write(outside.join("g"), SECRET).unwrap();
        Fixture {
            _dir: dir,
            home,
            outside,
        }
    }

    fn leaked(bytes: &[u8]) -> bool {
        bytes.windows(SECRET.len()).any(|w| w == SECRET)
    }

    /// Sets the hook run between the check and the open (this thread only).
    fn between_check_and_open(f: impl FnMut() + 'static) {
        AFTER_CHECK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    /// Replaces `victim` (a file or directory of the home) by a symlink to `target`.
    fn swap_for_symlink(victim: &Path, target: &Path) {
        let mut aside = victim.as_os_str().to_owned();
        aside.push(".aside");
        std::fs::rename(victim, aside).unwrap();
        std::os::unix::fs::symlink(target, victim).unwrap();
    }

    /// The multi-file download of `file`, as the route streams it.
    fn tar_of(home: &Path, file: &str) -> Result<Vec<u8>, String> {
        let part = plan_part(home, &home.join(file), 1 << 20).map_err(|p| p.body().to_string())?;
        let mut out = Vec::new();
        write_part(&part, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_the_check_is_not_followed() {
        let fx = fixture();
        let (d, outside) = (fx.home.join("d"), fx.outside.clone());
        between_check_and_open(move || swap_for_symlink(&d, &outside));
        let got = tar_of(&fx.home, "d/f");
        assert!(
            got.is_err(),
            "refused, got {} bytes",
            got.map_or(0, |b| b.len())
        );
    }

    #[test]
    fn a_requested_directory_swapped_for_a_symlink_after_the_check_is_not_listed() {
        let fx = fixture();
        let (d, outside) = (fx.home.join("d"), fx.outside.clone());
        between_check_and_open(move || swap_for_symlink(&d, &outside));
        if let Ok(bytes) = tar_of(&fx.home, "d") {
            assert!(!leaked(&bytes), "the outside directory was archived");
        }
    }

    #[test]
    fn a_file_swapped_for_a_symlink_after_the_check_is_not_read() {
        let fx = fixture();
        let (g, outside) = (fx.home.join("g"), fx.outside.join("g"));
        between_check_and_open(move || swap_for_symlink(&g, &outside));
        let got = tar_of(&fx.home, "g");
        assert!(got.is_err(), "refused");
        let fx = fixture();
        let (g, outside) = (fx.home.join("g"), fx.outside.join("g"));
        between_check_and_open(move || swap_for_symlink(&g, &outside));
        assert!(open_single(&fx.home, &fx.home.join("g"), 1 << 20).is_err());
    }

    #[test]
    fn a_file_below_a_directory_swapped_after_planning_aborts_the_tar() {
        let fx = fixture();
        let part = plan_part(&fx.home, &fx.home.join("d"), 1 << 20).unwrap();
        swap_for_symlink(&fx.home.join("d/f"), &fx.outside.join("f"));
        let mut out = Vec::new();
        assert!(write_part(&part, &mut out).is_err());
        assert!(!leaked(&out));
        // Replaced by another regular file (say a hard link to a secret): not the planned file.
        let fx = fixture();
        let part = plan_part(&fx.home, &fx.home.join("d"), 1 << 20).unwrap();
        std::fs::hard_link(fx.outside.join("f"), fx.home.join("d/f.new")).unwrap();
        std::fs::rename(fx.home.join("d/f.new"), fx.home.join("d/f")).unwrap();
        let mut out = Vec::new();
        assert!(write_part(&part, &mut out).is_err());
        assert!(!leaked(&out));
    }

    #[test]
    fn planned_lengths_are_exact_and_oversize_parts_are_refused() {
        let fx = fixture();
        let long = "n".repeat(150);
        std::fs::create_dir_all(fx.home.join("d/sub")).unwrap();
        std::fs::write(fx.home.join("d/sub").join(&long), vec![7u8; 1000]).unwrap();
        std::os::unix::fs::symlink("x".repeat(120), fx.home.join("d/l")).unwrap();
        for f in ["d", "g", "."] {
            let part = plan_part(&fx.home, &fx.home.join(f), 1 << 20).unwrap();
            let mut out = Vec::new();
            write_part(&part, &mut out).unwrap();
            assert_eq!(out.len() as u64, part.len(), "{f}");
        }
        let bytes = tar_of(&fx.home, "d").unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&format!("d/sub/{long}")), "{names:?}");
        assert_eq!(names[0], "d");
        assert!(plan_part(&fx.home, &fx.home.join("d"), 2048).is_err());
    }
}
