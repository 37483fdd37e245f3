//! Login and restore: a [`Connection`] is a `bai_api::Client` built from a
//! [`ResolvedProfile`] plus its stored secrets, whose errors name the profile and say
//! "run bai login" when the login is missing or expired.
//!
//! Length: under 500 lines of code; the rest are its unit tests, kept beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bai_api::{Client, ClientConfig, DownloadStyle, DownloadedFile, Mode, Sensitive, Session};

use crate::config::ResolvedProfile;
use crate::fsutil;
use crate::secrets::{SecretKind, SecretStore};
use crate::{Error, Result};

/// An API client bound to a profile and its secret store.
#[derive(Debug, Clone)]
pub struct Connection {
    client: Client,
    profile: ResolvedProfile,
    store: Arc<dyn SecretStore>,
    // Tells logins apart even when they are the same account on the same server: a tunnel
    // belongs to one login, and a re-login is another login.
    generation: u64,
}

/// The next login's generation (see [`Connection::login_id`]).
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Forgets every stored secret of `profile`: a new login replaces all of them, so nothing of
/// an earlier login (another server, another mode) can be sent along with the new one.
fn forget_all(store: &dyn SecretStore, profile: &str) -> Result<()> {
    for kind in SecretKind::ALL {
        store.delete(profile, kind)?;
    }
    Ok(())
}

/// How to log in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Session mode: the web UI's email and password, and a one-time password if needed.
    Password {
        /// Email (user id).
        email: String,
        /// Password.
        password: Sensitive<String>,
        /// TOTP code.
        otp: Option<String>,
        /// Also keep the password in the secret store.
        save_password: bool,
    },
    /// API mode: an access/secret key pair.
    Keypair {
        /// Access key.
        access_key: String,
        /// Secret key.
        secret_key: Sensitive<String>,
    },
}

fn base_config(p: &ResolvedProfile) -> ClientConfig {
    let mut cfg = ClientConfig::session(p.endpoint.clone());
    cfg.tls = p.tls.clone();
    cfg
}

impl Connection {
    /// Logs in and persists what later runs need: the login session id (session mode) or the
    /// secret key (API mode, checked with one signed call). The caller saves the non-secret
    /// parts (email, access key, mode) in the profile.
    pub async fn login(
        profile: ResolvedProfile,
        store: Arc<dyn SecretStore>,
        creds: Credentials,
    ) -> Result<Connection> {
        let name = profile.name.clone();
        match creds {
            Credentials::Password {
                email,
                password,
                otp,
                save_password,
            } => {
                let client = Client::new(base_config(&profile))?;
                client.login(&email, &password, otp.as_deref()).await?;
                let id = client.session_id().ok_or_else(|| {
                    Error::Config("the server accepted the login but sent no session id".into())
                })?;
                forget_all(store.as_ref(), &name)?;
                store.set(&name, SecretKind::LoginSession, &id)?;
                if save_password {
                    store.set(&name, SecretKind::Password, &password)?;
                }
                let mut profile = profile;
                profile.mode = Mode::Session;
                profile.access_key = None;
                // The secrets just stored were issued by this endpoint.
                profile.login_endpoint = Some(profile.endpoint.clone());
                Ok(Connection {
                    client,
                    profile,
                    store,
                    generation: next_generation(),
                })
            }
            Credentials::Keypair {
                access_key,
                secret_key,
            } => {
                let mut cfg = base_config(&profile);
                cfg.mode = Mode::Api;
                cfg.access_key = Some(Sensitive::new(access_key.clone()));
                cfg.secret_key = Some(secret_key.clone());
                let client = Client::new(cfg)?;
                // One signed call proves the pair (a wrong one is AuthFailed).
                client.list_sessions(bai_api::StatusFilter::Running).await?;
                forget_all(store.as_ref(), &name)?;
                store.set(&name, SecretKind::SecretKey, &secret_key)?;
                let mut profile = profile;
                profile.access_key = Some(access_key);
                profile.email = None;
                profile.mode = Mode::Api;
                profile.login_endpoint = Some(profile.endpoint.clone());
                Ok(Connection {
                    client,
                    profile,
                    store,
                    generation: next_generation(),
                })
            }
        }
    }

    /// Builds a client from the profile and stored secrets, without a request. A missing
    /// login is [`Error::NotLoggedIn`]; an expired one shows up as [`Error::LoginExpired`] on
    /// the first call.
    pub fn restore(profile: ResolvedProfile, store: Arc<dyn SecretStore>) -> Result<Connection> {
        let not_logged_in = || Error::NotLoggedIn {
            profile: profile.name.clone(),
        };
        let mut cfg = base_config(&profile);
        match profile.mode {
            Mode::Api => {
                let ak = profile.access_key.clone().ok_or_else(not_logged_in)?;
                let sk = match profile.env_secret_key.clone() {
                    // The user's own BACKEND_SECRET_KEY goes with the endpoint in effect.
                    Some(sk) => sk,
                    None => {
                        profile.check_stored_secrets()?;
                        store
                            .get(&profile.name, SecretKind::SecretKey)?
                            .ok_or_else(not_logged_in)?
                    }
                };
                cfg.mode = Mode::Api;
                cfg.access_key = Some(Sensitive::new(ak));
                cfg.secret_key = Some(sk);
            }
            _ => {
                profile.check_stored_secrets()?;
                let id = store
                    .get(&profile.name, SecretKind::LoginSession)?
                    .ok_or_else(not_logged_in)?;
                cfg.session_id = Some(id);
            }
        }
        let client = Client::new(cfg)?;
        Ok(Connection {
            client,
            profile,
            store,
            generation: next_generation(),
        })
    }

    /// Like [`Connection::restore`], but when the user chose to save the password (session
    /// mode), logs in again by itself if there is no login or the server no longer accepts it.
    /// That costs one `login-check` request, so it only happens for those profiles.
    pub async fn restore_or_relogin(
        profile: ResolvedProfile,
        store: Arc<dyn SecretStore>,
    ) -> Result<Connection> {
        // A saved password goes only to the server it was saved for.
        let saved = if profile.mode == Mode::Session && profile.check_stored_secrets().is_ok() {
            store.get(&profile.name, SecretKind::Password)?
        } else {
            None
        };
        let (Some(password), Some(email)) = (saved, profile.email.clone()) else {
            return Self::restore(profile, store);
        };
        if let Ok(conn) = Self::restore(profile.clone(), store.clone()) {
            match conn.client.login_check().await {
                Ok(c) if c.authenticated => return Ok(conn),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        bai_api::ErrorKind::LoginExpired
                            | bai_api::ErrorKind::NotLoggedIn
                            | bai_api::ErrorKind::AuthFailed { .. }
                    ) => {}
                Err(e) => return Err(conn.map_err(e)),
            }
        }
        tracing::info!(profile = %profile.name, "logging in again with the saved password");
        Self::login(
            profile,
            store,
            Credentials::Password {
                email,
                password,
                otp: None,
                save_password: true,
            },
        )
        .await
    }

    /// Logs out (session mode: also on the server, best effort) and forgets every stored
    /// secret of the profile. Works without a stored login.
    pub async fn logout(profile: &ResolvedProfile, store: &dyn SecretStore) -> Result<()> {
        // The server-side logout sends the login session: only to the server that issued it.
        if profile.mode == Mode::Session && profile.check_stored_secrets().is_ok() {
            if let Some(id) = store.get(&profile.name, SecretKind::LoginSession)? {
                let mut cfg = base_config(profile);
                cfg.session_id = Some(id);
                if let Ok(client) = Client::new(cfg) {
                    if let Err(e) = client.logout().await {
                        tracing::debug!(error = %e, "server-side logout failed");
                    }
                }
            }
        }
        for kind in SecretKind::ALL {
            store.delete(&profile.name, kind)?;
        }
        Ok(())
    }

    /// Who this login is: endpoint, mode and user. Tunnels opened through it carry it.
    pub fn login_id(&self) -> crate::LoginId {
        let p = &self.profile;
        let user = match p.mode {
            Mode::Api => p.access_key.as_deref(),
            _ => p.email.as_deref(),
        };
        crate::LoginId::new(
            p.endpoint.as_str(),
            crate::config::mode_name(p.mode),
            user.unwrap_or(""),
        )
        .of_generation(self.generation)
    }

    /// The session named `name_or_id` among the caller's active sessions: an exact id match,
    /// else an exact name match.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`] when none matches.
    pub async fn find_session(&self, name_or_id: &str) -> Result<Session> {
        let sessions = self.list_sessions(false).await?;
        sessions
            .iter()
            .find(|s| s.id == name_or_id)
            .or_else(|| sessions.iter().find(|s| s.name == name_or_id))
            .cloned()
            .ok_or_else(|| Error::SessionNotFound {
                session: name_or_id.to_owned(),
            })
    }

    /// The underlying API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The profile.
    pub fn profile(&self) -> &ResolvedProfile {
        &self.profile
    }

    /// The secret store.
    pub fn store(&self) -> &Arc<dyn SecretStore> {
        &self.store
    }

    /// Turns an API error into this crate's, naming the profile when the login is the problem.
    pub fn map_err(&self, e: bai_api::Error) -> Error {
        match e.kind() {
            bai_api::ErrorKind::LoginExpired => Error::LoginExpired {
                profile: self.profile.name.clone(),
            },
            bai_api::ErrorKind::NotLoggedIn => Error::NotLoggedIn {
                profile: self.profile.name.clone(),
            },
            _ => Error::Api(e),
        }
    }

    /// The caller's sessions: active ones, or all (terminated and cancelled included).
    pub async fn list_sessions(&self, all: bool) -> Result<Vec<Session>> {
        let filter = if all {
            bai_api::StatusFilter::Custom(
                [
                    "PENDING",
                    "SCHEDULED",
                    "PULLING",
                    "PREPARED",
                    "PREPARING",
                    "CREATING",
                    "RUNNING",
                    "RUNNING_DEGRADED",
                    "RESTARTING",
                    "TERMINATING",
                    "TERMINATED",
                    "CANCELLED",
                    "ERROR",
                ]
                .map(str::to_owned)
                .to_vec(),
            )
        } else {
            bai_api::StatusFilter::Active
        };
        self.client
            .list_sessions(filter)
            .await
            .map_err(|e| self.map_err(e))
    }

    /// The app names of a session.
    pub async fn session_apps(&self, session: &str) -> Result<Vec<String>> {
        Ok(self
            .client
            .session_apps(session)
            .await
            .map_err(|e| self.map_err(e))?
            .into_iter()
            .map(|a| a.name)
            .collect())
    }

    /// The session's SSH private key (`id_container` in the container home).
    ///
    /// # Errors
    /// [`Error::NoSessionKey`] when the session has none (the user's own `.ssh` is mounted).
    pub async fn fetch_ssh_key(&self, session: &str) -> Result<Sensitive<String>> {
        self.client
            .fetch_ssh_key(session)
            .await
            .map_err(|e| self.map_err(e))?
            .ok_or_else(|| Error::NoSessionKey {
                session: session.to_owned(),
            })
    }

    /// Fetches the session's key and saves it (0600, atomically) at the profile's key path for
    /// the session; returns the path.
    pub async fn save_ssh_key(&self, session: &str) -> Result<PathBuf> {
        let key = self.fetch_ssh_key(session).await?;
        let path = self.profile.key_path(session);
        save_key(&path, &key)?;
        Ok(path)
    }

    /// Fetches the session's current key and makes the copy saved at the profile's key path
    /// for the session that key: a missing or stale one (another fingerprint, e.g. the
    /// session was re-created under the same name) is (re)written; returns the path and what
    /// was done.
    ///
    /// # Errors
    /// As [`Connection::fetch_ssh_key`], or the saved key could not be read or written.
    pub async fn sync_ssh_key(&self, session: &str) -> Result<(PathBuf, crate::keys::SavedKey)> {
        let key = self.fetch_ssh_key(session).await?;
        let path = self.profile.key_path(session);
        let done = crate::keys::sync_saved_key(&path, &key)?;
        Ok((path, done))
    }

    /// The account's stored SSH public key line (`/auth/ssh-keypair`), or `None` when the
    /// account has none.
    pub async fn ssh_keypair(&self) -> Result<Option<String>> {
        self.client.ssh_keypair().await.map_err(|e| self.map_err(e))
    }

    /// Makes the server generate and store a new keypair for the account, replacing the
    /// stored one; it reaches sessions created from now on only. The private key is shown
    /// only this once.
    pub async fn generate_ssh_keypair(&self) -> Result<bai_api::GeneratedKeypair> {
        self.client
            .generate_ssh_keypair()
            .await
            .map_err(|e| self.map_err(e))
    }

    /// Stores the account's keypair (an OpenSSH public key line and its unencrypted private
    /// key); it reaches sessions created from now on only. A refused pair is
    /// `bai_api::ErrorKind::InvalidKey` with the server's reason.
    pub async fn upload_ssh_keypair(
        &self,
        public_key: &str,
        private_key: &Sensitive<String>,
    ) -> Result<()> {
        self.client
            .upload_ssh_keypair(public_key, private_key)
            .await
            .map_err(|e| self.map_err(e))
    }

    /// Whether a private key text is password-protected: an encrypted PEM (`Proc-Type:
    /// 4,ENCRYPTED`, PKCS#8 `BEGIN ENCRYPTED PRIVATE KEY`) or an `openssh-key-v1` key with a
    /// cipher. Nothing is decrypted; an unreadable key is reported as not encrypted (other checks
    /// refuse it).
    pub fn private_key_is_encrypted(pem: &str) -> bool {
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return true;
        }
        if let Some(data) = crate::keys::pem_body(pem, "OPENSSH PRIVATE KEY") {
            return match data {
                Ok(data) => crate::keys::openssh_header(&data).is_ok_and(|h| h.cipher != b"none"),
                Err(m) => m.0 == "the key is encrypted",
            };
        }
        ["RSA", "EC", "DSA"].iter().any(|label| {
            crate::keys::pem_body(pem, &format!("{label} PRIVATE KEY"))
                .is_some_and(|r| r.is_err_and(|m| m.0 == "the key is encrypted"))
        })
    }

    /// The path where the account keypair's private key is saved for this profile
    /// (`<config dir>/account-keys/<profile>/id_rsa`): outside `keys/`, which holds session
    /// keys that `config-ssh --remove` deletes, and which a session named "account" could use.
    pub fn account_key_path(&self) -> PathBuf {
        self.profile
            .config_dir
            .join("account-keys")
            .join(crate::config::sanitize(&self.profile.name))
            .join("id_rsa")
    }

    /// Downloads files (paths relative to `/home/work`, or absolute below it), five per
    /// request, calling `progress(done_files, total_files)` as they arrive.
    pub async fn download(
        &self,
        session: &str,
        files: &[String],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<DownloadedFile>> {
        let mut out = Vec::with_capacity(files.len());
        progress(0, files.len());
        for chunk in files.chunks(bai_api::MAX_DOWNLOAD_FILES) {
            let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let got = self
                .client
                .download(session, &names, DownloadStyle::Query)
                .await
                .map_err(|e| self.map_err(e))?;
            out.extend(got);
            progress(out.len().min(files.len()), files.len());
        }
        Ok(out)
    }
}

/// Saves a private key: mode 0600, atomic, parent directories created, a trailing newline
/// ensured (OpenSSH refuses keys without one).
pub fn save_key(path: &Path, key: &Sensitive<String>) -> Result<()> {
    let mut data = key.expose().clone();
    if !data.ends_with('\n') {
        data.push('\n');
    }
    fsutil::write_private(path, data.as_bytes())
}

/// Whether downloaded content looks like a private key (and so must be written 0600).
pub fn looks_like_private_key(name: &str, data: &[u8]) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base == "id_container" || (base.starts_with("id_") && !base.ends_with(".pub")) {
        return true;
    }
    let head = &data[..data.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.contains("-----BEGIN") && text.contains("PRIVATE KEY")
}

/// Saves downloaded files into `dir`, each under the base name of the path the user *asked
/// for*, never a name the server chose: 0600 when it looks like a key, 0644 otherwise.
/// Returns the paths written, in the order asked for, with the file saved at each.
///
/// The server's answer is not trusted (a hostile one could name an entry `.bashrc` for a
/// request of `notes.txt`):
/// - each requested path maps to the local name of its last `/`-separated component, which
///   must be a plain file name (no separator, not `.` or `..`), else [`Error::InvalidInput`];
/// - the same path asked twice is saved once; two paths with the same base name are
///   [`Error::InvalidInput`] (one would overwrite the other);
/// - the server's entry for a request is the first one named like the request's base name;
///   entries nobody asked for (and repeats) are ignored with a warning;
/// - a requested file missing from the answer is [`bai_api::ErrorKind::FileNotFound`], so an
///   answer without any file is an error too.
///
/// Nothing is written unless every requested file is there.
pub fn write_download<'a>(
    dir: &Path,
    session: &str,
    requested: &[String],
    files: &'a [DownloadedFile],
) -> Result<Vec<(PathBuf, &'a DownloadedFile)>> {
    /// The request's base name, if it is safe as a local file name.
    fn local_name(requested: &str) -> Option<&str> {
        let base = requested.rsplit('/').find(|s| !s.is_empty())?;
        let plain = !matches!(base, "." | "..")
            && !base.contains(['/', '\\', '\0'])
            && matches!(
                Path::new(base).components().collect::<Vec<_>>().as_slice(),
                [std::path::Component::Normal(n)] if *n == std::ffi::OsStr::new(base)
            );
        plain.then_some(base)
    }

    if requested.is_empty() {
        return Err(Error::InvalidInput("no file to download was named".into()));
    }
    // (requested path, local name), each path once, in the order asked for.
    let mut wanted: Vec<(&str, &str)> = Vec::with_capacity(requested.len());
    for req in requested {
        if wanted.iter().any(|(r, _)| r == req) {
            continue;
        }
        let name = local_name(req).ok_or_else(|| {
            Error::InvalidInput(format!(
                "cannot save {req:?}: its last path component is not a plain file name"
            ))
        })?;
        if let Some((other, _)) = wanted.iter().find(|(_, n)| *n == name) {
            return Err(Error::InvalidInput(format!(
                "{other:?} and {req:?} would both be saved as {name:?}; download them into \
                 different directories (-o)"
            )));
        }
        wanted.push((req, name));
    }
    let mut used = vec![false; files.len()];
    let mut picked = Vec::with_capacity(wanted.len());
    let mut missing = None;
    for (req, name) in &wanted {
        let found = files
            .iter()
            .enumerate()
            .find(|(i, f)| !used[*i] && f.name == *name);
        match found {
            Some((i, f)) => {
                used[i] = true;
                picked.push((dir.join(name), f));
            }
            None => {
                missing.get_or_insert(*req);
            }
        }
    }
    for (f, _) in files.iter().zip(&used).filter(|(_, u)| !**u) {
        tracing::warn!(
            name = %f.name.escape_debug(),
            bytes = f.data.len(),
            "ignoring a file the server sent but was not asked for"
        );
    }
    if let Some(req) = missing {
        return Err(Error::Api(
            bai_api::ErrorKind::FileNotFound {
                session: session.to_owned(),
                path: req.to_owned(),
            }
            .into(),
        ));
    }
    for (path, f) in &picked {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let mode = if looks_like_private_key(&name, &f.data) {
            0o600
        } else {
            0o644
        };
        fsutil::write_atomic(path, &f.data, mode)?;
    }
    Ok(picked)
}

#[cfg(test)]
mod tests;
