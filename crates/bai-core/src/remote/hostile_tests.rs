//! A hostile SFTP server (russh-sftp's server side over an in-memory pipe): names with `/`,
//! `..`, `.` and NUL in listings, a symlink, a reply longer than asked. Listing and downloading
//! never panic, never use those names, and write nothing outside the chosen folder.

use std::collections::HashMap;

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use tokio_util::sync::CancellationToken;

use super::sftp::{EntryKind, Sftp};
use super::transfer::{self, Progress};

struct Hostile {
    listed: HashMap<String, bool>,
}

fn attrs(mode: u32, size: u64) -> FileAttributes {
    FileAttributes {
        size: Some(size),
        permissions: Some(mode),
        mtime: Some(1_700_000_000),
        ..FileAttributes::empty()
    }
}

fn file(mode: u32, size: u64) -> FileAttributes {
    attrs(0o100_000 | mode, size)
}

fn dir() -> FileAttributes {
    attrs(0o040_755, 0)
}

fn kind_of(path: &str) -> Option<FileAttributes> {
    match path {
        "/d" | "/d/sub" => Some(dir()),
        "/d/ok.txt" | "/d/sub/inner.txt" => Some(file(0o640, 3)),
        "/d/link" => Some(attrs(0o120_777, 4)),
        _ => None,
    }
}

impl russh_sftp::server::Handler for Hostile {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        kind_of(&path)
            .map(|attrs| Attrs { id, attrs })
            .ok_or(StatusCode::NoSuchFile)
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        kind_of(&path).ok_or(StatusCode::NoSuchFile)?;
        self.listed.insert(path.clone(), false);
        Ok(Handle { id, handle: path })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        if self.listed.insert(handle.clone(), true) != Some(false) {
            return Err(StatusCode::Eof);
        }
        let files = if handle == "/d" {
            vec![
                File::new(".", dir()),
                File::new("..", dir()),
                File::new("../evil", file(0o644, 3)),
                File::new("a/b", file(0o644, 3)),
                File::new("/etc/x", file(0o644, 3)),
                File::new("nul\0name", file(0o644, 3)),
                File::new("..", file(0o644, 3)),
                File::new("ok.txt", file(0o640, 3)),
                File::new("link", attrs(0o120_777, 4)),
                File::new("sub", dir()),
            ]
        } else {
            vec![
                File::new("../../escape", file(0o644, 3)),
                File::new("inner.txt", file(0o640, 3)),
            ]
        };
        Ok(Name { id, files })
    }

    async fn readlink(&mut self, id: u32, _path: String) -> Result<Name, Self::Error> {
        Ok(Name {
            id,
            files: vec![File::dummy("/etc/passwd")],
        })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        _pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        kind_of(&filename).ok_or(StatusCode::NoSuchFile)?;
        Ok(Handle {
            id,
            handle: filename,
        })
    }

    async fn read(
        &mut self,
        id: u32,
        _handle: String,
        offset: u64,
        _len: u32,
    ) -> Result<Data, Self::Error> {
        if offset == 0 {
            Ok(Data {
                id,
                data: b"abc".to_vec(),
            })
        } else {
            Err(StatusCode::Eof)
        }
    }

    async fn close(&mut self, id: u32, _handle: String) -> Result<Status, Self::Error> {
        Ok(Status {
            id,
            status_code: StatusCode::Ok,
            error_message: String::new(),
            language_tag: "en-US".into(),
        })
    }
}

async fn client() -> Sftp {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    russh_sftp::server::run(
        theirs,
        Hostile {
            listed: HashMap::new(),
        },
    )
    .await;
    Sftp::over(ours, "hostile").await.expect("sftp")
}

#[tokio::test]
async fn hostile_names_are_never_used_and_nothing_escapes_the_chosen_folder() {
    let sftp = client().await;
    let listing = sftp.list("/d").await.expect("list");
    let names: Vec<_> = listing
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("sub", EntryKind::Dir),
            ("link", EntryKind::Symlink),
            ("ok.txt", EntryKind::File)
        ]
    );
    let link = &listing.entries[1];
    assert_eq!(link.link_target.as_deref(), Some("/etc/passwd"));

    let root = tempfile::tempdir().expect("tempdir");
    let chosen = root.path().join("chosen");
    std::fs::create_dir(&chosen).expect("mkdir");
    let p = Progress::new();
    transfer::download(&sftp, "/d", &chosen, &p, &CancellationToken::new())
        .await
        .expect("download");
    let mut found = Vec::new();
    let mut stack = vec![root.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let rel = e
                .path()
                .strip_prefix(root.path())
                .expect("prefix")
                .display()
                .to_string();
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            }
            found.push(rel);
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "chosen",
            "chosen/d",
            "chosen/d/ok.txt",
            "chosen/d/sub",
            "chosen/d/sub/inner.txt"
        ],
        "the symlink is skipped, no hostile name is written"
    );
    assert_eq!(
        std::fs::read(chosen.join("d/ok.txt")).expect("read"),
        b"abc"
    );
    assert_eq!(
        crate::remote::sftp::permissions_text(Some(0o100_640)),
        "-rw-r-----"
    );

    // A remote path whose last component is hostile is refused before anything is written.
    for bad in ["/d/..", "/", "/d/."] {
        let e = transfer::download(&sftp, bad, &chosen, &p, &CancellationToken::new())
            .await
            .expect_err(bad);
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{bad}: {e}");
    }
}
