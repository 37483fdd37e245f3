//! The account's SSH keypair (`/auth/ssh-keypair`: show, generate, upload a private key file)
//! and the profile's own key, the `-i` of sessions that have no `id_container` (a session
//! started with the user's own `.ssh` folder). Split from `workspace.rs` to keep it short.

use std::path::{Path, PathBuf};

use bai_api::Sensitive;

use super::Workspace;
use crate::error::{Error, Result};
use crate::keys::{self, Identity, PublicKey};

/// The account's keypair as the app shows it: the public half only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// The OpenSSH public key line, trimmed.
    pub public_key: String,
    /// Its SHA256 fingerprint (`SHA256:…`), when the line parses.
    pub fingerprint: Option<String>,
}

impl AccountKey {
    fn of_line(line: &str) -> AccountKey {
        let public_key = line.trim().to_owned();
        let fingerprint = PublicKey::parse(&public_key).ok().map(|k| k.fingerprint());
        AccountKey {
            public_key,
            fingerprint,
        }
    }
}

/// Reads a private key file to upload: unencrypted, with its public half (read from the key,
/// else from the `.pub` next to it), checked locally. Returns the public line and the key.
pub fn keypair_of_private_file(path: &Path) -> Result<(PublicKey, Sensitive<String>)> {
    let text = Sensitive::new(crate::keys::read_key_file(path)?);
    let pem = text.expose();
    if PublicKey::parse(pem).is_ok() {
        return Err(Error::InvalidInput(format!(
            "{} is a public key; pick the private key (the file without .pub)",
            path.display()
        )));
    }
    if !pem.contains("PRIVATE KEY") {
        return Err(Error::InvalidInput(format!(
            "{} does not look like an SSH private key",
            path.display()
        )));
    }
    if crate::Connection::private_key_is_encrypted(pem) {
        return Err(Error::InvalidInput(format!(
            "{} is protected by a passphrase; the server accepts only keys without one \
             (make a copy without it: ssh-keygen -p -N \"\" -f COPY)",
            path.display()
        )));
    }
    let derived = keys::public_key_of_private(pem);
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let public = match derived {
        Ok(k) => {
            // Keep the comment of a matching .pub; a .pub of another key is ignored.
            let comment = std::fs::read_to_string(&pub_path)
                .ok()
                .and_then(|t| PublicKey::parse(&t).ok())
                .filter(|p| p.blob == k.blob)
                .and_then(|p| p.comment);
            PublicKey { comment, ..k }
        }
        Err(e) => match std::fs::read_to_string(&pub_path) {
            Ok(t) => keys::validate_public_key(&t)?,
            Err(_) => {
                return Err(Error::InvalidInput(format!(
                    "{e}; put its public key next to it as {}",
                    pub_path.display()
                )))
            }
        },
    };
    let line = public.to_line();
    let public = keys::validate_public_key(&line)?;
    Ok((public, text))
}

impl Workspace {
    /// The account's stored public key (`None`: the account has none).
    pub async fn account_keypair(&self) -> Result<Option<AccountKey>> {
        let conn = self.require_connection()?;
        Ok(conn
            .ssh_keypair()
            .await?
            .filter(|l| !l.trim().is_empty())
            .map(|l| AccountKey::of_line(&l)))
    }

    /// Makes the server generate a new keypair for the account; sessions created from now on
    /// use it (running ones keep theirs). The private key, which the server returns only once,
    /// is saved 0600 where `bai keypair generate` saves it (never shown in the web view).
    pub async fn generate_account_keypair(&self) -> Result<AccountKey> {
        let conn = self.require_connection()?;
        let pair = conn.generate_ssh_keypair().await?;
        crate::save_key(&conn.account_key_path(), &pair.private_key)?;
        tracing::info!(path = %conn.account_key_path().display(), "account keypair generated and its private key saved");
        Ok(AccountKey::of_line(&pair.public_key))
    }

    /// Uploads the private key file at `path` and its public half as the account's keypair
    /// ([`keypair_of_private_file`] checks it locally first); the server's refusal is an
    /// error with its reason.
    pub async fn upload_account_keypair(&self, path: &Path) -> Result<AccountKey> {
        let conn = self.require_connection()?;
        let (public, private) = keypair_of_private_file(path)?;
        let line = public.to_line();
        conn.upload_ssh_keypair(&line, &private).await?;
        tracing::info!(fingerprint = %public.fingerprint(), "account keypair uploaded");
        Ok(AccountKey {
            public_key: line.trim().to_owned(),
            fingerprint: Some(public.fingerprint()),
        })
    }

    /// The profile's own private key (the `-i` of sessions without `id_container`).
    pub fn own_key(&self) -> Result<Option<PathBuf>> {
        let config = self.load_config()?;
        Ok(config.profile(&self.profile_name_now()).own_key)
    }

    /// Checks ([`keys::check_identity`]) and remembers the profile's own private key; returns
    /// the absolute path saved and its fingerprint when readable.
    pub fn set_own_key(&self, path: &Path) -> Result<(PathBuf, Option<String>)> {
        let identity = keys::check_identity(path)?;
        let abs = std::fs::canonicalize(path).map_err(|source| Error::Io {
            context: format!("resolving {}", path.display()),
            source,
        })?;
        let mut config = self.load_config()?;
        let name = self.profile_name_now();
        config.profile_mut(&name).own_key = Some(abs.clone());
        config.save()?;
        tracing::info!(profile = %name, path = %abs.display(), "own key saved");
        let fingerprint = match identity {
            Identity::Known(k) => Some(k.fingerprint()),
            Identity::Opaque => None,
        };
        Ok((abs, fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
        let path = dir.join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "me@laptop", "-f"])
            .arg(&path)
            .args(extra)
            .output()
            .expect("ssh-keygen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    #[test]
    fn private_key_files_are_checked_before_upload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = keygen(dir.path(), "id_ed25519", &["-N", ""]);
        let (public, private) = keypair_of_private_file(&key).expect("a plain key");
        let pub_text = std::fs::read_to_string(key.with_extension("pub")).expect(".pub");
        assert_eq!(public, PublicKey::parse(&pub_text).expect("parse"));
        assert_eq!(public.comment.as_deref(), Some("me@laptop"));
        assert!(private.expose().contains("OPENSSH PRIVATE KEY"));

        let locked = keygen(dir.path(), "locked", &["-N", "secret phrase"]);
        let e = keypair_of_private_file(&locked).expect_err("encrypted");
        assert!(e.to_string().contains("passphrase"), "{e}");

        let e = keypair_of_private_file(&key.with_extension("pub")).expect_err("public");
        assert!(e.to_string().contains("public key"), "{e}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello\n").expect("write");
        assert!(keypair_of_private_file(&junk).is_err());
        assert!(keypair_of_private_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn own_key_is_checked_and_remembered_per_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Workspace::new(
            dir.path().to_path_buf(),
            std::sync::Arc::new(crate::MemoryStore::new()),
        );
        assert_eq!(w.own_key().expect("own key"), None);
        let key = keygen(dir.path(), "id_ed25519", &["-N", ""]);
        assert!(w.set_own_key(&key.with_extension("pub")).is_err());
        let (saved, fp) = w.set_own_key(&key).expect("set");
        assert_eq!(saved, std::fs::canonicalize(&key).expect("abs"));
        assert!(fp.is_some_and(|f| f.starts_with("SHA256:")));
        assert_eq!(w.own_key().expect("own key"), Some(saved));
    }
}
