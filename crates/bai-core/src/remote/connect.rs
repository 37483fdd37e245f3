//! One SSH connection to a session through the in-process tunnel: key exchange with the pinned
//! host key, public-key authentication with a key held in memory, keep-alives.

use std::sync::Arc;
use std::time::Duration;

use bai_tunnel::{Connector, Options};
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio_util::sync::CancellationToken;

use super::hostkey;
use super::sftp::Sftp;
use crate::commands::HostKeyPin;
use crate::{Error, ErrorCode, Result};

/// The buffer of the in-memory pipe between russh and the tunnel (each way).
const PIPE_BUF: usize = 1 << 20;
/// How long connecting and authenticating may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive interval (a silent server is probed this often) and how many may go unanswered.
const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_MAX: usize = 3;

/// What a connection needs. The key never leaves memory ([`PrivateKey`] zeroizes on drop).
pub struct Target {
    /// The session as the user named it (for messages).
    pub session: String,
    /// The account inside the session.
    pub user: String,
    /// The private key.
    pub key: Arc<PrivateKey>,
    /// Which key it is, for messages: "the session's id_container" or the own key's path.
    pub key_label: String,
    /// The host-key pin (alias = the session id).
    pub pin: HostKeyPin,
    /// Opens the WebSocket to the session's sshd.
    pub connector: Arc<dyn Connector + Send + Sync>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("session", &self.session)
            .field("user", &self.user)
            .field("key_label", &self.key_label)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

/// Parses a private key (OpenSSH or PEM, unencrypted) into memory.
///
/// # Errors
/// [`Error::InvalidInput`] when it cannot be read (the key text is never in the message).
pub fn parse_key(pem: &str, label: &str) -> Result<Arc<PrivateKey>> {
    russh::keys::decode_secret_key(pem, None)
        .map(Arc::new)
        .map_err(|e| {
            Error::InvalidInput(format!(
                "{label} cannot be used as an SSH key ({e}); bai needs an unencrypted key"
            ))
        })
}

/// russh's callbacks: the host-key check.
struct Callbacks {
    pin: HostKeyPin,
    session: String,
}

/// A failure inside russh, or our refusal of the host key.
#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    Refused(Error),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for Callbacks {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                hostkey::check(&self.pin, &self.session, key)
                    .map(|()| true)
                    .map_err(HandlerError::Refused)
            }
            PublicKeyOrCertificate::Certificate(_) => Err(HandlerError::Refused(Error::Remote {
                code: ErrorCode::Network,
                message: format!(
                    "the SSH server of session {} offered a host certificate, which bai does not check",
                    self.session
                ),
            })),
        }
    }
}

/// An SSH error as bai's error, with what was being done.
pub(crate) fn ssh_error(context: &str, e: &russh::Error) -> Error {
    Error::Remote {
        code: ErrorCode::Network,
        message: format!("{context}: {e}"),
    }
}

/// An open SSH connection to a session. Dropping it closes the connection and its tunnel.
pub struct SshClient {
    handle: Handle<Callbacks>,
    session: String,
    user: String,
    stop_tunnel: CancellationToken,
    browse: tokio::sync::Mutex<Option<Arc<Sftp>>>,
}

impl std::fmt::Debug for SshClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshClient")
            .field("session", &self.session)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Drop for SshClient {
    fn drop(&mut self) {
        self.stop_tunnel.cancel();
    }
}

fn config() -> client::Config {
    client::Config {
        keepalive_interval: Some(KEEPALIVE),
        keepalive_max: KEEPALIVE_MAX,
        // Bulk SFTP: a larger channel window than the default 2 MiB.
        window_size: 8 << 20,
        nodelay: true,
        ..client::Config::default()
    }
}

impl SshClient {
    /// Connects through a new tunnel connection, checks the host key against the pin (first
    /// use: pinned), and authenticates with the key.
    ///
    /// # Errors
    /// [`Error::HostKeyChanged`], [`Error::SshAuthFailed`], or a [`ErrorCode::Network`] error
    /// naming what failed (no SSH server answering, the tunnel refused, a timeout).
    pub async fn connect(target: Target) -> Result<SshClient> {
        let (ours, theirs) = tokio::io::duplex(PIPE_BUF);
        let stop_tunnel = CancellationToken::new();
        let connector = target.connector.clone();
        let stop = stop_tunnel.clone();
        let session = target.session.clone();
        let tunnel = tokio::spawn(async move {
            let (r, w) = tokio::io::split(theirs);
            let out = bai_tunnel::run_stdio(&*connector, r, w, &Options::default(), stop).await;
            if let Err(e) = &out {
                tracing::info!(session = %session, error = %e, "the SSH tunnel connection ended");
            }
            out
        });
        let work = Self::handshake(&target, ours, stop_tunnel.clone());
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Remote {
                code: ErrorCode::Network,
                message: format!(
                    "the SSH server of session {} did not answer within {}s",
                    target.session,
                    CONNECT_TIMEOUT.as_secs()
                ),
            }),
        };
        match result {
            Ok(c) => Ok(c),
            Err(e) => {
                stop_tunnel.cancel();
                // A tunnel that failed (refused upgrade, closed) explains better than russh's
                // "disconnected".
                if matches!(e.code(), ErrorCode::Network) {
                    if let Ok(Ok(Err(t))) =
                        tokio::time::timeout(Duration::from_millis(500), tunnel).await
                    {
                        return Err(Error::Remote {
                            code: ErrorCode::Network,
                            message: format!(
                                "cannot reach the SSH server of session {}: {t}",
                                target.session
                            ),
                        });
                    }
                }
                Err(e)
            }
        }
    }

    async fn handshake(
        target: &Target,
        stream: tokio::io::DuplexStream,
        stop_tunnel: CancellationToken,
    ) -> Result<SshClient> {
        let callbacks = Callbacks {
            pin: target.pin.clone(),
            session: target.session.clone(),
        };
        let mut handle = match client::connect_stream(Arc::new(config()), stream, callbacks).await {
            Ok(h) => h,
            Err(HandlerError::Refused(e)) => return Err(e),
            Err(HandlerError::Ssh(e)) => {
                return Err(ssh_error(
                    &format!("the SSH connection to session {} failed", target.session),
                    &e,
                ))
            }
        };
        let failed = |e: russh::Error| {
            ssh_error(
                &format!("authenticating to session {} failed", target.session),
                &e,
            )
        };
        let hash = if target.key.algorithm().is_rsa() {
            match handle.best_supported_rsa_hash().await.map_err(failed)? {
                Some(h) => h,
                // No server-sig-algs: SHA-256, which every current server accepts.
                None => Some(russh::keys::HashAlg::Sha256),
            }
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(target.key.clone(), hash),
            )
            .await
            .map_err(failed)?;
        if !auth.success() {
            return Err(Error::SshAuthFailed {
                session: target.session.clone(),
                user: target.user.clone(),
                key: target.key_label.clone(),
            });
        }
        tracing::info!(session = %target.session, user = %target.user, "SSH connection ready");
        Ok(SshClient {
            handle,
            session: target.session.clone(),
            user: target.user.clone(),
            stop_tunnel,
            browse: tokio::sync::Mutex::new(None),
        })
    }

    /// The session as the caller named it.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The account logged in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether the connection is gone (closed by either side, keep-alives unanswered).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.stop_tunnel.is_cancelled()
    }

    /// Opens a session channel.
    pub(crate) async fn channel(&self) -> Result<russh::Channel<client::Msg>> {
        self.handle.channel_open_session().await.map_err(|e| {
            ssh_error(
                &format!("opening a channel to session {}", self.session),
                &e,
            )
        })
    }

    /// The SFTP session the file browser shares (opened on first use, reopened if it died).
    pub async fn browser(&self) -> Result<Arc<Sftp>> {
        let mut slot = self.browse.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let s = Arc::new(self.sftp().await?);
        *slot = Some(s.clone());
        Ok(s)
    }

    /// A new SFTP session on its own channel (each transfer has one).
    pub async fn sftp(&self) -> Result<Sftp> {
        Sftp::open(self.channel().await?, &self.session).await
    }

    /// Runs `command` without a PTY; returns its stdout and exit status (tests, benchmarks).
    pub async fn exec(&self, command: &str) -> Result<(Vec<u8>, Option<u32>)> {
        let mut ch = self.channel().await?;
        ch.exec(true, command)
            .await
            .map_err(|e| ssh_error("starting a command", &e))?;
        let mut out = Vec::new();
        let mut status = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
                russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                russh::ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok((out, status))
    }

    /// Disconnects.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        self.stop_tunnel.cancel();
    }
}
