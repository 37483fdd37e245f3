//! The tar of one requested file or directory, for multi-file downloads: planned first
//! (directory walks by descriptor, sizes from `fstat`, the exact length known), then written
//! from descriptors that must still be the planned files.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType};

use super::{exact, file_not_found, open_beneath, open_confined, too_large};
use crate::problem::ProblemReply;

enum Kind {
    /// The requested regular file itself, read from the descriptor opened at planning.
    Root {
        size: u64,
    },
    Dir,
    /// A regular file below the requested directory, reopened (by descriptor walk) when its
    /// turn comes and required to be the very file planned.
    File {
        rel: PathBuf,
        dev: u64,
        ino: u64,
        size: u64,
    },
    Link(PathBuf),
}

struct Entry {
    name: PathBuf,
    header: tar::Header,
    kind: Kind,
}

/// One part of a multi-file download: the tar of one requested file or directory.
pub(crate) struct Part {
    root: File,
    entries: Vec<Entry>,
    len: u64,
}

impl Part {
    /// The exact length of the part's tar.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

fn header(st: &rustix::fs::Stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(size);
    h
}

fn padded(size: u64) -> u64 {
    size.div_ceil(512) * 512
}

/// Plans the tar of one requested path (the entry keeps the requested name; the home itself is
/// `home`). Symlinks below a directory are stored as links, never followed; sockets, FIFOs and
/// devices are left out. Fails with [`too_large`] when the tar would exceed `limit` bytes,
/// before any file content is read.
pub(crate) fn plan_part(home: &Path, path: &Path, limit: u64) -> Result<Part, ProblemReply> {
    let (fd, st, is_home) = open_confined(home, path)?;
    let name = match path.file_name() {
        Some(n) if !is_home => PathBuf::from(n),
        _ => PathBuf::from("home"),
    };
    let mut entries = Vec::new();
    // Lower bound of the tar's length while walking (header blocks and data), so that a huge
    // tree is refused without listing all of it.
    let mut estimate = 0u64;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let size = u64::try_from(st.st_size).unwrap_or(0);
            estimate = 512 + padded(size);
            entries.push(Entry {
                header: header(&st, tar::EntryType::Regular, size),
                name,
                kind: Kind::Root { size },
            });
        }
        FileType::Directory => {
            entries.push(Entry {
                header: header(&st, tar::EntryType::Directory, 0),
                name: name.clone(),
                kind: Kind::Dir,
            });
            walk(
                fd.as_fd(),
                Path::new(""),
                &name,
                &mut entries,
                &mut estimate,
                limit,
            )?;
        }
        _ => return Err(file_not_found()),
    }
    if estimate > limit {
        return Err(too_large(limit));
    }
    let mut part = Part {
        root: File::from(fd),
        entries,
        len: 0,
    };
    // The exact length: the headers (GNU long names included) and end blocks as the tar
    // builder writes them, plus every file's padded data.
    let mut counter = Counter(0);
    write_part_with(&part, &mut counter, true).map_err(|_| file_not_found())?;
    part.len = counter.0
        + part
            .entries
            .iter()
            .map(|e| match e.kind {
                Kind::Root { size } | Kind::File { size, .. } => padded(size),
                _ => 0,
            })
            .sum::<u64>();
    if part.len > limit {
        return Err(too_large(limit));
    }
    Ok(part)
}

fn walk(
    dir: BorrowedFd<'_>,
    rel: &Path,
    name: &Path,
    entries: &mut Vec<Entry>,
    estimate: &mut u64,
    limit: u64,
) -> Result<(), ProblemReply> {
    let list = rustix::fs::Dir::read_from(dir).map_err(|_| file_not_found())?;
    let mut names = Vec::new();
    for e in list {
        let e = e.map_err(|_| file_not_found())?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(std::ffi::OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    for n in names {
        *estimate += 512;
        if *estimate > limit {
            return Err(too_large(limit));
        }
        // Gone since the listing: left out, as `tar` does.
        let Ok(st) = rustix::fs::statat(dir, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let (rel, name) = (rel.join(&n), name.join(&n));
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let size = u64::try_from(st.st_size).unwrap_or(0);
                *estimate += padded(size);
                if *estimate > limit {
                    return Err(too_large(limit));
                }
                entries.push(Entry {
                    header: header(&st, tar::EntryType::Regular, size),
                    name,
                    kind: Kind::File {
                        rel,
                        dev: st.st_dev,
                        ino: st.st_ino,
                        size,
                    },
                });
            }
            FileType::Directory => {
                let Ok(sub) = open_beneath(dir, Path::new(&n)) else {
                    continue;
                };
                entries.push(Entry {
                    header: header(&st, tar::EntryType::Directory, 0),
                    name: name.clone(),
                    kind: Kind::Dir,
                });
                walk(sub.as_fd(), &rel, &name, entries, estimate, limit)?;
            }
            FileType::Symlink => {
                let Ok(target) = rustix::fs::readlinkat(dir, n.as_os_str(), Vec::new()) else {
                    continue;
                };
                entries.push(Entry {
                    header: header(&st, tar::EntryType::Symlink, 0),
                    name,
                    kind: Kind::Link(PathBuf::from(std::ffi::OsStr::from_bytes(
                        target.as_bytes(),
                    ))),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the part's tar to `out`, reading every file from a descriptor that is checked to be
/// the planned file. Fails (mid-stream) when a file changed since it was planned.
pub(crate) fn write_part(part: &Part, out: &mut dyn Write) -> io::Result<()> {
    write_part_with(part, out, false)
}

/// `headers_only`: the data of regular files is left out (to measure the headers).
fn write_part_with(part: &Part, out: &mut dyn Write, headers_only: bool) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    for e in &part.entries {
        let mut h = e.header.clone();
        match &e.kind {
            Kind::Dir => b.append_data(&mut h, &e.name, io::empty())?,
            Kind::Link(target) => b.append_link(&mut h, &e.name, target)?,
            _ if headers_only => b.append_data(&mut h, &e.name, io::empty())?,
            Kind::Root { size } => b.append_data(&mut h, &e.name, exact(&part.root, *size))?,
            Kind::File {
                rel,
                dev,
                ino,
                size,
            } => {
                let fd = open_beneath(part.root.as_fd(), rel)?;
                let st = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
                    || st.st_dev != *dev
                    || st.st_ino != *ino
                {
                    return Err(io::Error::other(format!(
                        "{} changed while it was downloaded",
                        rel.display()
                    )));
                }
                let f = File::from(fd);
                b.append_data(&mut h, &e.name, exact(&f, *size))?
            }
        }
    }
    b.into_inner()?;
    Ok(())
}
