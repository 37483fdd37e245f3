//! Small file helpers: atomic writes with a given mode (0600 for secrets and keys).

use std::io::Write as _;
use std::path::Path;

use crate::{Error, Result};

/// Creates `dir` (and parents); new directories get mode 0700 on Unix.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Writes `data` to `path` atomically (temp file in the same directory, then rename), with
/// `mode` on Unix. The parent directory is created (0700) when missing.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_private_dir(parent)?;
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".bai-tmp-")
        .tempfile_in(parent)
        .map_err(|e| Error::io(ctx("writing"), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(ctx("setting permissions of"), e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(ctx("writing"), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(ctx("writing"), e.error))?;
    Ok(())
}

/// Writes a private file (mode 0600) atomically.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, 0o600)
}

/// Reads a file to a string; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_private_files_with_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/b/key");
        write_private(&p, b"secret").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        write_private(&p, b"new").expect("overwrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"new");
    }
}
