//! Credentials: passwords, secret keys and login session ids, kept in the OS keyring.
//!
//! [`SecretStore`] is the seam: [`KeyringStore`] (macOS Keychain, Windows Credential Manager,
//! Secret Service/keyutils on Linux), [`FileStore`] (a 0600 JSON file in the config directory),
//! [`AutoStore`] (the keyring, falling back to the file with a one-time warning when no keyring
//! is available, as on a headless Linux box) and [`MemoryStore`] for unit tests.
//! `BAI_SECRET_STORE=file|keyring|auto` picks one in [`open_store`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bai_api::Sensitive;

use crate::fsutil;
use crate::{Error, Result};

/// Forces a secret store: `file`, `keyring` or `auto` (the default).
pub const SECRET_STORE_ENV: &str = "BAI_SECRET_STORE";
/// The keyring service name.
pub const KEYRING_SERVICE: &str = "bai";
/// The fallback file inside the config directory.
pub const SECRETS_FILE: &str = "secrets.json";

/// Which secret of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// The login password (only when the user asked to save it).
    Password,
    /// The API-mode secret key.
    SecretKey,
    /// The webserver login session id (the login cookie).
    LoginSession,
}

impl SecretKind {
    /// The stable name used in store keys.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::SecretKey => "secret-key",
            SecretKind::LoginSession => "login-session",
        }
    }

    /// Every kind (for `logout`, which forgets all of them).
    pub const ALL: [SecretKind; 3] = [
        SecretKind::Password,
        SecretKind::SecretKey,
        SecretKind::LoginSession,
    ];
}

fn key(profile: &str, kind: SecretKind) -> String {
    format!("{profile}/{}", kind.as_str())
}

/// Where secrets live. Implementations are cheap to share (`Arc<dyn SecretStore>`).
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// A short name for messages (`keyring`, `file`, `memory`).
    fn name(&self) -> &'static str;
    /// The secret, `None` when absent.
    fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Sensitive<String>>>;
    /// Stores (replaces) the secret.
    fn set(&self, profile: &str, kind: SecretKind, value: &Sensitive<String>) -> Result<()>;
    /// Deletes the secret; deleting an absent secret is not an error.
    fn delete(&self, profile: &str, kind: SecretKind) -> Result<()>;
}

/// An in-memory store for unit tests (and for callers that must not persist anything).
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<String, Sensitive<String>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SecretStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Sensitive<String>>> {
        Ok(lock(&self.map).get(&key(profile, kind)).cloned())
    }
    fn set(&self, profile: &str, kind: SecretKind, value: &Sensitive<String>) -> Result<()> {
        lock(&self.map).insert(key(profile, kind), value.clone());
        Ok(())
    }
    fn delete(&self, profile: &str, kind: SecretKind) -> Result<()> {
        lock(&self.map).remove(&key(profile, kind));
        Ok(())
    }
}

/// A JSON file of secrets, mode 0600, written atomically.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    // Serialises read-modify-write cycles within the process.
    guard: Mutex<()>,
}

impl FileStore {
    /// The store in `<config_dir>/secrets.json`.
    pub fn new(config_dir: &Path) -> Self {
        FileStore {
            path: config_dir.join(SECRETS_FILE),
            guard: Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, String>> {
        match fsutil::read_optional(&self.path)? {
            None => Ok(BTreeMap::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| Error::SecretStore {
                store: "file",
                detail: format!("cannot parse {}: {e}", self.path.display()),
            }),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<()> {
        let text = serde_json::to_string_pretty(map).map_err(|e| Error::SecretStore {
            store: "file",
            detail: e.to_string(),
        })?;
        fsutil::write_private(&self.path, text.as_bytes())
    }
}

/// An advisory lock on `<secrets file>.lock`, held for one read or read-modify-write cycle so
/// that the CLI and the app (or two CLIs) never lose each other's updates. Released on drop.
struct ProcessLock(std::fs::File);

impl ProcessLock {
    /// The lock for a write (exclusive; the config directory is created 0700 when missing).
    fn exclusive(secrets: &Path) -> Result<ProcessLock> {
        Self::take(secrets, true)
    }

    /// The lock for a read; `None` when the lock file cannot be opened (a read-only config
    /// directory): a read never fails for want of a lock, it only risks seeing the previous
    /// file, which is replaced atomically anyway.
    fn shared(secrets: &Path) -> Option<ProcessLock> {
        match Self::take(secrets, false) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::debug!(error = %e, "reading the secrets file without a lock");
                None
            }
        }
    }

    fn take(secrets: &Path, exclusive: bool) -> Result<ProcessLock> {
        let mut name = secrets.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if exclusive {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fsutil::create_private_dir(dir)?;
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(ProcessLock(file))
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it immediate.
        let _ = self.0.unlock();
    }
}

impl SecretStore for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }
    fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Sensitive<String>>> {
        let _g = lock(&self.guard);
        if !self.path.exists() {
            // No file, no secret: nothing to lock (and no lock file left behind).
            return Ok(None);
        }
        let _p = ProcessLock::shared(&self.path);
        Ok(self.read()?.remove(&key(profile, kind)).map(Sensitive::new))
    }
    fn set(&self, profile: &str, kind: SecretKind, value: &Sensitive<String>) -> Result<()> {
        let _g = lock(&self.guard);
        let _p = ProcessLock::exclusive(&self.path)?;
        let mut map = self.read()?;
        map.insert(key(profile, kind), value.expose().clone());
        self.write(&map)
    }
    fn delete(&self, profile: &str, kind: SecretKind) -> Result<()> {
        let _g = lock(&self.guard);
        if !self.path.exists() {
            return Ok(());
        }
        let _p = ProcessLock::exclusive(&self.path)?;
        let mut map = self.read()?;
        if map.remove(&key(profile, kind)).is_some() {
            if map.is_empty() {
                std::fs::remove_file(&self.path)
                    .map_err(|e| Error::io(format!("removing {}", self.path.display()), e))?;
            } else {
                self.write(&map)?;
            }
        }
        Ok(())
    }
}

/// The OS keyring (service `bai`, user `<profile>/<kind>`).
#[derive(Debug, Default)]
pub struct KeyringStore;

fn keyring_error(e: keyring::Error) -> Error {
    Error::SecretStore {
        store: "keyring",
        detail: e.to_string(),
    }
}

impl KeyringStore {
    fn entry(profile: &str, kind: SecretKind) -> Result<keyring::Entry> {
        keyring::Entry::new(KEYRING_SERVICE, &key(profile, kind)).map_err(keyring_error)
    }
}

impl SecretStore for KeyringStore {
    fn name(&self) -> &'static str {
        "keyring"
    }
    fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Sensitive<String>>> {
        match Self::entry(profile, kind)?.get_password() {
            Ok(s) => Ok(Some(Sensitive::new(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }
    fn set(&self, profile: &str, kind: SecretKind, value: &Sensitive<String>) -> Result<()> {
        Self::entry(profile, kind)?
            .set_password(value.expose())
            .map_err(keyring_error)?;
        // Some backends (keyutils without a session keyring) accept the write and lose it:
        // read it back so that a silent loss becomes an error (and the caller can fall back).
        match Self::entry(profile, kind)?.get_password() {
            Ok(s) if s == *value.expose() => Ok(()),
            Ok(_) | Err(keyring::Error::NoEntry) => Err(Error::SecretStore {
                store: "keyring",
                detail: "the keyring did not keep the secret".into(),
            }),
            Err(e) => Err(keyring_error(e)),
        }
    }
    fn delete(&self, profile: &str, kind: SecretKind) -> Result<()> {
        match Self::entry(profile, kind)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// The keyring, with the 0600 file as fallback when the keyring is unavailable. The first time
/// the fallback file is created a warning is logged (once: later runs find the file).
#[derive(Debug)]
pub struct AutoStore {
    keyring: Box<dyn SecretStore>,
    file: FileStore,
}

impl AutoStore {
    /// The OS keyring with a fallback file in `config_dir`.
    pub fn new(config_dir: &Path) -> Self {
        Self::with_primary(Box::new(KeyringStore), config_dir)
    }

    /// Any primary store with the file fallback (tests inject a failing primary).
    pub fn with_primary(primary: Box<dyn SecretStore>, config_dir: &Path) -> Self {
        AutoStore {
            keyring: primary,
            file: FileStore::new(config_dir),
        }
    }
}

impl SecretStore for AutoStore {
    fn name(&self) -> &'static str {
        "auto"
    }
    fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Sensitive<String>>> {
        if let Some(v) = self.file.get(profile, kind)? {
            return Ok(Some(v));
        }
        match self.keyring.get(profile, kind) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::debug!(error = %e, "keyring unavailable for reading");
                Ok(None)
            }
        }
    }
    fn set(&self, profile: &str, kind: SecretKind, value: &Sensitive<String>) -> Result<()> {
        match self.keyring.set(profile, kind, value) {
            Ok(()) => self.file.delete(profile, kind),
            Err(e) => {
                if !self.file.path().exists() {
                    tracing::warn!(
                        "no usable OS keyring ({e}); storing credentials in {} (mode 0600) instead",
                        self.file.path().display()
                    );
                }
                self.file.set(profile, kind, value)
            }
        }
    }
    fn delete(&self, profile: &str, kind: SecretKind) -> Result<()> {
        self.file.delete(profile, kind)?;
        if let Err(e) = self.keyring.delete(profile, kind) {
            tracing::debug!(error = %e, "keyring unavailable for deleting");
        }
        Ok(())
    }
}

/// The store selected by `$BAI_SECRET_STORE` (`file`, `keyring`, `auto`; default `auto`).
pub fn open_store(config_dir: &Path) -> Result<Arc<dyn SecretStore>> {
    let choice = std::env::var(SECRET_STORE_ENV).unwrap_or_default();
    match choice.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(Arc::new(AutoStore::new(config_dir))),
        "file" => Ok(Arc::new(FileStore::new(config_dir))),
        "keyring" => Ok(Arc::new(KeyringStore)),
        other => Err(Error::Config(format!(
            "{SECRET_STORE_ENV}={other:?}: expected file, keyring or auto"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A primary store that always fails, like a keyring without a D-Bus session.
    #[derive(Debug)]
    struct Broken;
    impl SecretStore for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn get(&self, _: &str, _: SecretKind) -> Result<Option<Sensitive<String>>> {
            Err(Error::SecretStore {
                store: "broken",
                detail: "no D-Bus".into(),
            })
        }
        fn set(&self, _: &str, _: SecretKind, _: &Sensitive<String>) -> Result<()> {
            self.get("", SecretKind::Password).map(|_| ())
        }
        fn delete(&self, _: &str, _: SecretKind) -> Result<()> {
            self.set("", SecretKind::Password, &Sensitive::new(String::new()))
        }
    }

    fn exercise(store: &dyn SecretStore) {
        assert!(store.get("p", SecretKind::Password).expect("get").is_none());
        store
            .set("p", SecretKind::Password, &"pw".into())
            .expect("set");
        store
            .set("q", SecretKind::Password, &"other".into())
            .expect("set");
        assert_eq!(
            store
                .get("p", SecretKind::Password)
                .expect("get")
                .map(Sensitive::into_inner),
            Some("pw".to_owned())
        );
        assert!(store
            .get("p", SecretKind::SecretKey)
            .expect("get")
            .is_none());
        store.delete("p", SecretKind::Password).expect("delete");
        store
            .delete("p", SecretKind::Password)
            .expect("delete twice");
        assert!(store.get("p", SecretKind::Password).expect("get").is_none());
        assert!(store.get("q", SecretKind::Password).expect("get").is_some());
    }

    #[test]
    fn memory_store_behaves() {
        exercise(&MemoryStore::new());
    }

    #[test]
    fn file_store_updates_are_not_lost_across_processes() {
        // Separate stores share no in-process mutex, like the CLI and the app: only the lock
        // file keeps their read-modify-write cycles apart.
        let dir = tempfile::tempdir().expect("tempdir");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        FileStore::new(&d)
                            .set(&format!("p{w}-{i}"), SecretKind::Password, &"x".into())
                            .expect("set");
                    }
                })
            })
            .collect();
        for t in writers {
            t.join().expect("writer");
        }
        let store = FileStore::new(dir.path());
        for w in 0..4 {
            for i in 0..25 {
                assert!(
                    store
                        .get(&format!("p{w}-{i}"), SecretKind::Password)
                        .expect("get")
                        .is_some(),
                    "p{w}-{i} was lost"
                );
            }
        }
    }

    #[test]
    fn file_store_behaves_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        exercise(&store);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second instance sees the same data.
        assert!(FileStore::new(dir.path())
            .get("q", SecretKind::Password)
            .expect("get")
            .is_some());
    }

    #[test]
    fn auto_store_falls_back_to_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AutoStore::with_primary(Box::new(Broken), dir.path());
        exercise(&store);
        assert!(dir.path().join(SECRETS_FILE).exists());
    }

    #[test]
    fn auto_store_prefers_a_working_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AutoStore::with_primary(Box::new(MemoryStore::new()), dir.path());
        exercise(&store);
        assert!(!dir.path().join(SECRETS_FILE).exists());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let store = MemoryStore::new();
        store
            .set("p", SecretKind::LoginSession, &"cookie-value".into())
            .expect("set");
        assert!(!format!("{store:?}").contains("cookie-value"));
    }
}
